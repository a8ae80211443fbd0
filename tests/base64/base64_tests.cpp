// Tests of filebuilder/base64.hpp: RFC 4648 vectors, round trips, and every
// strictness rule with its exact error position, checked against a slow
// reference decoder written independently below.
#include "filebuilder/base64.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using filebuilder::ErrorCode;
namespace base64 = filebuilder::base64;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// ---------------------------------------------------------------------------
// The reference: one character at a time, no tables, rules spelled out.

struct Reference {
  bool ok = false;
  std::size_t position = 0;
  std::string bytes;  // on error: the bytes of the complete valid quartets before it
};

int sextet(char c) {
  const std::size_t i = kAlphabet.find(c);
  return i == std::string_view::npos ? -1 : static_cast<int>(i);
}

Reference reference_decode(std::string_view in) {
  Reference r;
  const std::size_t quartets = in.size() / 4;
  const bool aligned = in.size() % 4 == 0;
  for (std::size_t q = 0; q < quartets; ++q) {
    const bool last = aligned && q + 1 == quartets;
    const std::string_view quartet = in.substr(4 * q, 4);
    int values[4] = {0, 0, 0, 0};
    int pads = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      const char c = quartet[i];
      const bool is_padding = c == '=' && last && (i == 3 || (i == 2 && quartet[3] == '='));
      if (is_padding) {
        ++pads;
        continue;
      }
      values[i] = sextet(c);
      if (values[i] < 0) {
        r.position = 4 * q + i;
        return r;
      }
    }
    const std::uint32_t bits = (static_cast<std::uint32_t>(values[0]) << 18) |
                               (static_cast<std::uint32_t>(values[1]) << 12) |
                               (static_cast<std::uint32_t>(values[2]) << 6) |
                               static_cast<std::uint32_t>(values[3]);
    const unsigned char bytes[3] = {static_cast<unsigned char>(bits >> 16),
                                    static_cast<unsigned char>(bits >> 8),
                                    static_cast<unsigned char>(bits)};
    // The bytes the padding stands for must be zero (canonical encoding).
    if (pads == 1 && bytes[2] != 0) {
      r.position = 4 * q + 2;
      return r;
    }
    if (pads == 2 && (bytes[1] != 0 || bytes[2] != 0)) {
      r.position = 4 * q + 1;
      return r;
    }
    for (int i = 0; i < 3 - pads; ++i) r.bytes.push_back(static_cast<char>(bytes[i]));
  }
  if (!aligned) {
    r.position = 4 * quartets;
    return r;
  }
  r.ok = true;
  r.position = in.size();
  return r;
}

// ---------------------------------------------------------------------------
// Helpers

struct Decoded {
  base64::DecodeResult result;
  std::string bytes;  // the `written` bytes
};

// Decodes into a heap buffer of exactly max_decoded_size, so that the
// sanitizers catch any write past it.
Decoded decode(std::string_view in) {
  std::vector<char> buffer(base64::max_decoded_size(in.size()));
  const base64::DecodeResult result = base64::decode(in, buffer.data());
  REQUIRE(result.written <= buffer.size());
  return {result, std::string(buffer.data(), result.written)};
}

// Decodes and checks the outcome against the reference.
void check_against_reference(std::string_view in) {
  CAPTURE(in);
  const Decoded got = decode(in);
  const Reference want = reference_decode(in);
  CHECK(got.result.error == (want.ok ? ErrorCode::ok : ErrorCode::bad_base64));
  CHECK(got.result.position == want.position);
  CHECK(got.result.written == want.bytes.size());
  CHECK(got.bytes == want.bytes);
  if (want.ok) CHECK(base64::decoded_size(in) == want.bytes.size());
}

void check_error(std::string_view in, std::size_t position, std::size_t written) {
  CAPTURE(in);
  const Decoded got = decode(in);
  CHECK(got.result.error == ErrorCode::bad_base64);
  CHECK(got.result.position == position);
  CHECK(got.result.written == written);
  const Reference want = reference_decode(in);
  CHECK_FALSE(want.ok);
  CHECK(want.position == position);
  CHECK(want.bytes.size() == written);
  CHECK(got.bytes == want.bytes);
}

void check_ok(std::string_view in, std::string_view bytes) {
  CAPTURE(in);
  const Decoded got = decode(in);
  CHECK(got.result.error == ErrorCode::ok);
  CHECK(got.result.position == in.size());
  CHECK(got.result.written == bytes.size());
  CHECK(got.bytes == bytes);
  CHECK(base64::decoded_size(in) == bytes.size());
}

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string encode_exact(std::string_view bytes) {
  // Into a heap buffer of exactly encoded_size, for the sanitizers.
  std::vector<char> buffer(base64::encoded_size(bytes.size()));
  const std::size_t n = base64::encode(bytes, buffer.data());
  REQUIRE(n == buffer.size());
  return std::string(buffer.data(), n);
}

}  // namespace

TEST_SUITE("base64") {
  TEST_CASE("RFC 4648 section 10 test vectors, both ways") {
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& vector : vectors) {
      const std::string_view plain = vector.first;
      const std::string_view encoded = vector.second;
      CAPTURE(plain);
      CHECK(base64::encode(plain) == encoded);
      CHECK(encode_exact(plain) == encoded);
      check_ok(encoded, plain);
    }
  }

  TEST_CASE("the empty input is valid, even with a null output") {
    const base64::DecodeResult r = base64::decode(std::string_view{}, nullptr);
    CHECK(r.error == ErrorCode::ok);
    CHECK(r.position == 0);
    CHECK(r.written == 0);
    CHECK(base64::encode(std::string_view{}, nullptr) == 0);
  }

  TEST_CASE("every alphabet character and the 0xFB 0xFF edge") {
    // All 64 characters in order encode the bytes 0x00 0x10 0x83 ... 0xFF.
    const std::string all(kAlphabet);
    const Decoded got = decode(all);
    REQUIRE(got.result.error == ErrorCode::ok);
    CHECK(got.bytes.size() == 48);
    CHECK(base64::encode(got.bytes) == all);
    check_ok("+/+/", "\xFB\xFF\xBF");
    check_ok("////", "\xFF\xFF\xFF");
    check_ok("AAAA", std::string_view("\0\0\0", 3));
  }

  TEST_CASE("round trip of random buffers of every length 0..300") {
    std::mt19937_64 rng(20240601);
    for (std::size_t n = 0; n <= 300; ++n) {
      CAPTURE(n);
      const std::string bytes = random_bytes(rng, n);
      const std::string encoded = encode_exact(bytes);
      CHECK(encoded.size() == base64::encoded_size(n));
      CHECK(base64::encode(bytes) == encoded);
      const Decoded got = decode(encoded);
      CHECK(got.result.error == ErrorCode::ok);
      CHECK(got.result.position == encoded.size());
      CHECK(got.bytes == bytes);
      CHECK(base64::decoded_size(encoded) == n);
      CHECK(reference_decode(encoded).bytes == bytes);
    }
  }

  TEST_CASE("round trip of large buffers") {
    std::mt19937_64 rng(7);
    for (const std::size_t n : {std::size_t{1} << 20, (std::size_t{1} << 20) + 1,
                                (std::size_t{1} << 20) + 2, std::size_t{3} << 18}) {
      CAPTURE(n);
      const std::string bytes = random_bytes(rng, n);
      const std::string encoded = encode_exact(bytes);
      const Decoded got = decode(encoded);
      CHECK(got.result.error == ErrorCode::ok);
      CHECK(got.result.written == n);
      CHECK(got.bytes == bytes);
    }
  }

  TEST_CASE("encode_append appends") {
    std::string out = "prefix:";
    base64::encode_append("foob", out);
    CHECK(out == "prefix:Zm9vYg==");
    base64::encode_append("", out);
    CHECK(out == "prefix:Zm9vYg==");
  }

  TEST_CASE("a bad character at every position of a short input") {
    const std::string_view valid_inputs[] = {
        "Zm9vYmFy", "Zm9vYg==", "Zm9vYmE=", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"};
    const char bad_chars[] = {'!', ' ',  '\n',   '\r',   '\t',   '-',    '_', '.',
                              '*', '\0', '\x7F', '\x80', '\xC3', '\xFF', '~', '@'};
    for (const std::string_view valid : valid_inputs) {
      for (std::size_t i = 0; i < valid.size(); ++i) {
        for (const char bad : bad_chars) {
          std::string in(valid);
          in[i] = bad;
          check_against_reference(in);
          const Decoded got = decode(in);
          CHECK(got.result.error == ErrorCode::bad_base64);
          // Replacing padding may move the offending character to the '='.
          if (valid[i] != '=') {
            CHECK(got.result.position == i);
            CHECK(got.result.written == i / 4 * 3);
          }
        }
      }
    }
    // A '=' replacing the last padding character of "xx==" leaves "xx=!":
    // the first '=' is then the offending character.
    check_error("Zm9vYg=!", 6, 3);
  }

  TEST_CASE("lengths that are not a multiple of 4") {
    check_error("Z", 0, 0);
    check_error("Zm", 0, 0);
    check_error("Zm9", 0, 0);
    check_error("Zg=", 0, 0);
    check_error("Zm9vY", 4, 3);
    check_error("Zm9vYm", 4, 3);
    check_error("Zm9vYmF", 4, 3);
    check_error("Zm9vYg=", 4, 3);
    check_error("Zm9vYmFyZ", 8, 6);
    // An invalid character before the incomplete quartet comes first...
    check_error("!m9vY", 0, 0);
    check_error("Zm9!Y", 3, 0);
    check_error("Zm=vY", 2, 0);
    // ...one inside it does not.
    check_error("Zm9vY!", 4, 3);
    check_error("Zm9v!", 4, 3);
    // Padding in a quartet that is not the last one.
    check_error("Zg===", 2, 0);
    check_error("Zg==Z", 2, 0);
    check_error("Zm8=Zm", 3, 0);
  }

  TEST_CASE("'=' in the middle") {
    check_error("=m9v", 0, 0);
    check_error("Z=9v", 1, 0);
    check_error("Zm=v", 2, 0);
    check_error("Zg==Zm9v", 2, 0);
    check_error("Zm8=Zm9v", 3, 0);
    check_error("Zm9vZ=9v", 5, 3);
    check_error("Zm9vYg==Zm9v", 6, 3);
    check_error("ab=c", 2, 0);
    check_error("Zm9vab=c", 6, 3);
    check_error("Zm9vab=!", 6, 3);
  }

  TEST_CASE("too much padding") {
    check_error("====", 0, 0);
    check_error("Z===", 1, 0);
    check_error("Zm9v====", 4, 3);
    check_error("Zm9vZ===", 5, 3);
    check_error("=Zm9", 0, 0);
    check_error("==Zm", 0, 0);
  }

  TEST_CASE("non-zero pad bits are rejected") {
    check_ok("QQ==", "A");
    check_error("QR==", 1, 0);
    check_ok("QUI=", "AB");
    check_error("QUJ=", 2, 0);
    check_error("Zm9vQR==", 5, 3);
    check_error("Zm9vQUJ=", 6, 3);
    // Every second character of "Q?==": valid exactly when its low 4 bits are 0.
    for (std::size_t v = 0; v < 64; ++v) {
      const std::string in = std::string("Q") + kAlphabet[v] + "==";
      CAPTURE(in);
      if (v % 16 == 0) {
        check_ok(in, std::string(1, static_cast<char>(0x40 | (v >> 4))));
      } else {
        check_error(in, 1, 0);
      }
    }
    // Every third character of "QU?=": valid exactly when its low 2 bits are 0.
    for (std::size_t v = 0; v < 64; ++v) {
      const std::string in = std::string("QU") + kAlphabet[v] + "=";
      CAPTURE(in);
      if (v % 4 == 0) {
        const std::string bytes = {'A', static_cast<char>(0x40 | (v >> 2))};
        check_ok(in, bytes);
      } else {
        check_error(in, 2, 0);
      }
    }
  }

  TEST_CASE("whitespace is rejected") {
    check_error(" Zm9", 0, 0);
    check_error("Zm 9v", 2, 0);
    check_error("Zm9v\nYmFy", 4, 3);
    check_error("Zm9vYmFy\n", 8, 6);
    check_error("Zm9vYmF\n", 7, 3);
    check_error("Zm9vYmFy\r\n", 8, 6);
    check_error("Zm9v\r\nYmFy", 4, 3);
    check_error("Zm9v\tYmF", 4, 3);
    check_error("Zm9vYg== ", 6, 3);
  }

  TEST_CASE("the URL-safe alphabet is rejected") {
    check_error("-_-_", 0, 0);
    check_error("Zm9-", 3, 0);
    check_error("Zm_v", 2, 0);
    check_error("Zm9vYmFy-w==", 8, 6);
    check_error("Zm9vYmFy_w==", 8, 6);
  }

  TEST_CASE("bytes >= 0x80 and NUL are rejected") {
    check_error("Zm9\x80", 3, 0);
    check_error("\xFFm9v", 0, 0);
    check_error("Zm9vYm\xC3\xA9", 6, 3);
    check_error(std::string_view("Zm\0v", 4), 2, 0);
    check_error(std::string_view("\0\0\0\0", 4), 0, 0);
    check_error(std::string_view("Zm9vYg=\0", 8), 6, 3);
    for (int c = 0x80; c <= 0xFF; ++c) {
      std::string in = "Zm9vYmFy";
      in[5] = static_cast<char>(c);
      check_error(in, 5, 3);
    }
  }

  TEST_CASE("every byte value at every position of a two-quartet input") {
    const std::string_view valid_inputs[] = {"Zm9vYmFy", "Zm9vYg==", "Zm9vYmE="};
    for (const std::string_view valid : valid_inputs) {
      for (std::size_t i = 0; i < valid.size(); ++i) {
        for (int c = 0; c < 256; ++c) {
          std::string in(valid);
          in[i] = static_cast<char>(c);
          check_against_reference(in);
        }
      }
    }
  }

  TEST_CASE("all short strings over a small mixed alphabet match the reference") {
    // 'A' 'Q' 'g' 'w' have zero low bits in different places; '=' '!' '-' and
    // 0x80 are not data. Lengths 0..5 cover padding, lengths and positions.
    const char chars[] = {'A', 'B', 'Q', 'g', 'w', '/', '=', '!', '-', '\x80'};
    constexpr std::size_t kChars = sizeof chars;
    for (std::size_t length = 0; length <= 5; ++length) {
      std::size_t combos = 1;
      for (std::size_t i = 0; i < length; ++i) combos *= kChars;
      for (std::size_t k = 0; k < combos; ++k) {
        std::string in(length, ' ');
        std::size_t rest = k;
        for (std::size_t i = 0; i < length; ++i) {
          in[i] = chars[rest % kChars];
          rest /= kChars;
        }
        check_against_reference(in);
        // The same behind a valid quartet: positions shift by 4, written by 3.
        check_against_reference("Zm9v" + in);
      }
    }
  }

  TEST_CASE("random corruptions of long inputs match the reference") {
    std::mt19937_64 rng(99);
    for (int round = 0; round < 3000; ++round) {
      const std::size_t n = rng() % 200;
      std::string in = base64::encode(random_bytes(rng, n));
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits; ++e) {
        switch (rng() % 4) {
          case 0:  // replace a character with any byte
            if (!in.empty()) in[rng() % in.size()] = static_cast<char>(rng() & 0xFF);
            break;
          case 1: {  // insert a character
            const auto at = static_cast<std::ptrdiff_t>(rng() % (in.size() + 1));
            in.insert(in.begin() + at, kAlphabet[rng() % 64]);
            break;
          }
          case 2:  // delete one
            if (!in.empty()) in.erase(in.begin() + static_cast<std::ptrdiff_t>(rng() % in.size()));
            break;
          default:  // a '=' somewhere
            if (!in.empty()) in[rng() % in.size()] = '=';
            break;
        }
      }
      check_against_reference(in);
    }
  }

  TEST_CASE("written on error covers the valid quartets before it") {
    check_error("Zm9vYmFyZm9v!!!!", 12, 9);
    CHECK(decode("Zm9vYmFyZm9v!!!!").bytes == "foobarfoo");

    std::mt19937_64 rng(5);
    const std::string bytes = random_bytes(rng, 3000);
    const std::string valid = base64::encode(bytes);  // 4000 characters, no padding
    for (const std::size_t at :
         {std::size_t{0}, std::size_t{1}, std::size_t{4}, std::size_t{7}, std::size_t{8},
          std::size_t{13}, std::size_t{2047}, std::size_t{2048}, std::size_t{3991},
          std::size_t{3995}, std::size_t{3996}, std::size_t{3999}}) {
      std::string in = valid;
      in[at] = '#';
      CAPTURE(at);
      const Decoded got = decode(in);
      CHECK(got.result.error == ErrorCode::bad_base64);
      CHECK(got.result.position == at);
      CHECK(got.result.written == at / 4 * 3);
      CHECK(got.bytes == bytes.substr(0, at / 4 * 3));
    }
  }

  TEST_CASE("size helpers") {
    static_assert(base64::max_decoded_size(0) == 0);
    static_assert(base64::max_decoded_size(3) == 0);
    static_assert(base64::max_decoded_size(4) == 3);
    static_assert(base64::max_decoded_size(7) == 3);
    static_assert(base64::max_decoded_size(8) == 6);
    static_assert(base64::max_decoded_size(1000) == 750);

    static_assert(base64::decoded_size("") == 0);
    static_assert(base64::decoded_size("Zg==") == 1);
    static_assert(base64::decoded_size("Zm8=") == 2);
    static_assert(base64::decoded_size("Zm9v") == 3);
    static_assert(base64::decoded_size("Zm9vYg==") == 4);
    static_assert(base64::decoded_size("Zm9vYmE=") == 5);
    static_assert(base64::decoded_size("Zm9vYmFy") == 6);
    CHECK(base64::decoded_size("Zm9vY") == 3);  // invalid length: safe, meaningless

    static_assert(base64::encoded_size(0) == 0);
    static_assert(base64::encoded_size(1) == 4);
    static_assert(base64::encoded_size(2) == 4);
    static_assert(base64::encoded_size(3) == 4);
    static_assert(base64::encoded_size(4) == 8);
    static_assert(base64::encoded_size(262144) == 349528);
    static_assert(base64::encoded_size(std::size_t{1} << 20) == 1398104);
    for (std::size_t n = 0; n < 100; ++n) {
      CHECK(base64::encoded_size(n) == (n + 2) / 3 * 4);
      CHECK(base64::max_decoded_size(base64::encoded_size(n)) >= n);
    }
  }

  TEST_CASE("decode and encode are noexcept") {
    char out[8];
    static_assert(noexcept(base64::decode(std::string_view{}, out)));
    static_assert(noexcept(base64::encode(std::string_view{}, out)));
  }
}
