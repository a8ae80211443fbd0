// Differential tests of the base64 kernels (base64.hpp's runtime dispatch):
// every kernel this CPU runs must give exactly the scalar kernel's answer
// (bytes, error, position, written) on every input, and never read or write
// outside its buffers. The scalar kernel itself is checked against an
// independent reference in base64_tests.cpp.
//
// Every input is copied into a heap block of exactly its size and decoded into
// one of exactly max_decoded_size bytes, so that ASan (scripts/test
// --sanitize) catches any access past either; a canary test does the same
// without sanitizers.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"

namespace {

using filebuilder::ErrorCode;
namespace base64 = filebuilder::base64;
using base64::Kernel;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool in_alphabet(char c) {
  return kAlphabet.find(c) != std::string_view::npos;
}

// Bytes next to the edges of the alphabet's ranges (and of each nibble
// class of the AVX2 kernel), the padding, whitespace, the URL-safe
// characters, NUL, DEL and high bytes whose low 7 bits are in the alphabet.
constexpr unsigned char kEdgeBytes[] = {0x00, 0x09, 0x0A, 0x0D, 0x20, 0x2A, 0x2C, 0x2D, 0x2E, 0x3A,
                                        0x3D, 0x3F, 0x40, 0x5B, 0x5F, 0x60, 0x7B, 0x7F, 0x80, 0xAB,
                                        0xAF, 0xB0, 0xC1, 0xE1, 0xFA, 0xFF, '+',  '/',  '0',  '9',
                                        'A',  'Z',  'a',  'z',  'O',  'o',  'P',  'p'};

struct Outcome {
  base64::DecodeResult result{};
  std::string bytes;  // the `written` bytes
};

// Decodes `in` (the caller keeps it in a heap block of exactly its size) into
// a heap block of exactly max_decoded_size bytes.
Outcome run(Kernel kernel, std::string_view in) {
  const std::size_t room = base64::max_decoded_size(in.size());
  const std::unique_ptr<char[]> out(new char[room]);
  Outcome o;
  o.result = base64::decode_with(kernel, in, out.get());
  o.bytes.assign(out.get(), std::min(o.result.written, room));
  return o;
}

std::string describe(std::string_view in) {
  std::string s = "length " + std::to_string(in.size()) + ": ";
  static constexpr char hex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < in.size() && i < 400; ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      s += static_cast<char>(c);
    } else {
      s += "\\x";
      s += hex[c >> 4];
      s += hex[c & 15];
    }
  }
  if (in.size() > 400) s += "...";
  return s;
}

std::string describe(const Outcome& o) {
  return std::string(o.result.error == ErrorCode::ok ? "ok" : "bad_base64") + " position " +
         std::to_string(o.result.position) + " written " + std::to_string(o.result.written);
}

// Runs every kernel on each input given to it and counts the disagreements
// with the scalar kernel; reports the first few in full.
class Differential {
 public:
  Differential() {
    for (const Kernel k : base64::available_kernels()) {
      if (k != Kernel::scalar) kernels_.push_back(k);
    }
  }
  Differential(const Differential&) = delete;
  Differential& operator=(const Differential&) = delete;
  ~Differential() {
    MESSAGE(inputs_ << " inputs, " << comparisons_ << " kernel comparisons");
    CHECK(mismatches_ == 0);
  }

  // The scalar outcome of `text`, after comparing the other kernels to it.
  // The input is copied into a heap block of exactly its size, and each
  // kernel decodes into one of exactly max_decoded_size bytes.
  Outcome check(std::string_view text) {
    ++inputs_;
    const std::size_t room = base64::max_decoded_size(text.size());
    const std::unique_ptr<char[]> copy(new char[text.size()]);
    if (!text.empty()) std::memcpy(copy.get(), text.data(), text.size());
    const std::string_view in(copy.get(), text.size());
    const std::unique_ptr<char[]> want_out(new char[room]);
    const std::unique_ptr<char[]> got_out(new char[room]);
    const base64::DecodeResult want = base64::decode_with(Kernel::scalar, in, want_out.get());
    const std::string_view want_bytes(want_out.get(), std::min(want.written, room));
    for (const Kernel k : kernels_) {
      const base64::DecodeResult got = base64::decode_with(k, in, got_out.get());
      ++comparisons_;
      const std::string_view got_bytes(got_out.get(), std::min(got.written, room));
      if (got.error != want.error || got.position != want.position || got.written != want.written ||
          got_bytes != want_bytes) {
        report(k, in, {got, std::string(got_bytes)}, {want, std::string(want_bytes)});
      }
    }
    return {want, std::string(want_bytes)};
  }

  // Checks, independently of the kernels, that `o` is the error of an input
  // whose first offending character is at index `at`.
  void expect_error_at(std::string_view in, const Outcome& o, std::size_t at) {
    if (o.result.error == ErrorCode::bad_base64 && o.result.position == at &&
        o.result.written == at / 4 * 3) {
      return;
    }
    if (++mismatches_ > 10) return;
    FAIL_CHECK("expected the error at " << at << " on " << describe(in) << ", got " << describe(o));
  }

 private:
  void report(Kernel k, std::string_view in, const Outcome& got, const Outcome& want) {
    if (++mismatches_ > 10) return;
    std::string bytes_note;
    if (got.bytes != want.bytes) {
      const auto diff =
          std::mismatch(got.bytes.begin(), got.bytes.end(), want.bytes.begin(), want.bytes.end());
      bytes_note = "; bytes differ from index " +
                   std::to_string(static_cast<std::size_t>(diff.first - got.bytes.begin()));
    }
    FAIL_CHECK(base64::kernel_name(k) << " disagrees with scalar on " << describe(in) << ": "
                                      << describe(got) << " vs " << describe(want) << bytes_note);
  }

  std::vector<Kernel> kernels_;
  std::size_t inputs_ = 0;
  std::size_t comparisons_ = 0;
  std::size_t mismatches_ = 0;
};

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

// A valid encoding of `chars` characters (a multiple of 4) without padding.
std::string random_encoding(std::mt19937_64& rng, std::size_t chars) {
  return base64::encode(random_bytes(rng, chars / 4 * 3));
}

// Base64 characters (no '='), any count, a multiple of 4 or not.
std::string random_characters(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, 'A');
  for (auto& c : s) c = kAlphabet[rng() % 64];
  return s;
}

}  // namespace

TEST_SUITE("base64 kernels") {
  TEST_CASE("the kernel list, names and set_kernel") {
    const auto kernels = base64::available_kernels();
    REQUIRE(!kernels.empty());
    CHECK(kernels.front() == Kernel::scalar);
    std::string names;
    for (const Kernel k : kernels) names += std::string(base64::kernel_name(k)) + " ";
    MESSAGE("available kernels: " << names << "(active: "
                                  << base64::kernel_name(base64::active_kernel()) << ")");
    CHECK(std::find(kernels.begin(), kernels.end(), base64::active_kernel()) != kernels.end());

    for (const Kernel k : {Kernel::scalar, Kernel::avx2, Kernel::avx512}) {
      CHECK(base64::kernel_from_name(base64::kernel_name(k)) == k);
      const bool listed = std::find(kernels.begin(), kernels.end(), k) != kernels.end();
      CHECK(base64::kernel_supported(k) == listed);
    }
    CHECK_FALSE(base64::kernel_from_name("AVX2").has_value());
    CHECK_FALSE(base64::kernel_from_name("").has_value());
    CHECK_FALSE(base64::kernel_from_name("avx512vbmi").has_value());
#if FILEBUILDER_X86_KERNELS
    // On x86-64 with GCC/Clang, AVX-512 VBMI implies AVX2 in the detection.
    if (base64::kernel_supported(Kernel::avx512)) CHECK(base64::kernel_supported(Kernel::avx2));
#else
    CHECK(kernels.size() == 1);
#endif

    const Kernel before = base64::active_kernel();
    for (const Kernel k : {Kernel::scalar, Kernel::avx2, Kernel::avx512}) {
      CAPTURE(base64::kernel_name(k));
      if (base64::kernel_supported(k)) {
        CHECK(base64::set_kernel(k));
        CHECK(base64::active_kernel() == k);
        char out[6];
        const base64::DecodeResult r = base64::decode("Zm9vYmFy", out);
        CHECK(r.error == ErrorCode::ok);
        CHECK(std::string_view(out, r.written) == "foobar");
      } else {
        const Kernel active = base64::active_kernel();
        CHECK_FALSE(base64::set_kernel(k));
        CHECK(base64::active_kernel() == active);
        // decode_with falls back to the scalar kernel: same answer.
        char out[6];
        const base64::DecodeResult r = base64::decode_with(k, "Zm9vYmFy", out);
        CHECK(r.error == ErrorCode::ok);
        CHECK(std::string_view(out, r.written) == "foobar");
      }
    }
    CHECK(base64::set_kernel(before));
  }

  TEST_CASE("FILEBUILDER_FORCE_IMPLEMENTATION picks the kernel at first use") {
    namespace dispatch = filebuilder::detail::dispatch;
    const Kernel best = base64::available_kernels().back();
    CHECK(dispatch::choose(nullptr) == best);
    CHECK(dispatch::choose("") == best);
    CHECK(dispatch::choose("bogus") == best);
    CHECK(dispatch::choose("Scalar") == best);
    for (const Kernel k : {Kernel::scalar, Kernel::avx2, Kernel::avx512}) {
      const std::string name(base64::kernel_name(k));
      CAPTURE(name);
      CHECK(dispatch::choose(name.c_str()) == (base64::kernel_supported(k) ? k : best));
    }

    // The real first use: put the dispatch back in its initial state, set the
    // variable, decode. (doctest runs test cases one at a time.)
    const Kernel before = base64::active_kernel();
    const char* old = std::getenv("FILEBUILDER_FORCE_IMPLEMENTATION");
    const std::string saved = old != nullptr ? old : "";
    for (const Kernel k : base64::available_kernels()) {
      const std::string name(base64::kernel_name(k));
      CAPTURE(name);
      REQUIRE(::setenv("FILEBUILDER_FORCE_IMPLEMENTATION", name.c_str(), 1) == 0);
      dispatch::active.store(&dispatch::not_chosen);
      char out[3];
      const base64::DecodeResult r = base64::decode("Zm9v", out);
      CHECK(r.error == ErrorCode::ok);
      CHECK(base64::active_kernel() == k);
    }
    REQUIRE(::setenv("FILEBUILDER_FORCE_IMPLEMENTATION", "none-such", 1) == 0);
    dispatch::active.store(&dispatch::not_chosen);
    CHECK(base64::active_kernel() == best);
    ::unsetenv("FILEBUILDER_FORCE_IMPLEMENTATION");
    dispatch::active.store(&dispatch::not_chosen);
    CHECK(base64::active_kernel() == best);
    if (old != nullptr) ::setenv("FILEBUILDER_FORCE_IMPLEMENTATION", saved.c_str(), 1);
    CHECK(base64::set_kernel(before));
  }

  TEST_CASE("valid inputs of every length 0..300 bytes decode alike") {
    Differential diff;
    std::mt19937_64 rng(1);
    for (std::size_t n = 0; n <= 300; ++n) {
      CAPTURE(n);
      const std::string bytes = random_bytes(rng, n);
      const Outcome want = diff.check(base64::encode(bytes));
      CHECK(want.result.error == ErrorCode::ok);
      CHECK(want.bytes == bytes);
    }
    // Every run of characters over the nibble classes: all 64 characters at
    // every position of a 4-group block, shifted through a 300-character input.
    for (std::size_t shift = 0; shift < 64; ++shift) {
      std::string in;
      for (std::size_t i = 0; i < 300; ++i) in += kAlphabet[(i + shift) % 64];
      CHECK(diff.check(in).result.error == ErrorCode::ok);
    }
  }

  TEST_CASE("large valid inputs decode alike") {
    Differential diff;
    std::mt19937_64 rng(2);
    for (const std::size_t n :
         {std::size_t{48} << 10, std::size_t{64} << 10, (std::size_t{64} << 10) + 1,
          (std::size_t{64} << 10) + 2, std::size_t{1} << 20, (std::size_t{1} << 20) + 1,
          (std::size_t{1} << 20) + 2, std::size_t{786431}, std::size_t{100003}}) {
      CAPTURE(n);
      const std::string bytes = random_bytes(rng, n);
      const Outcome want = diff.check(base64::encode(bytes));
      CHECK(want.result.error == ErrorCode::ok);
      CHECK(want.bytes == bytes);
    }
  }

  TEST_CASE("every byte value at every position of inputs up to 100 characters") {
    Differential diff;
    std::mt19937_64 rng(3);
    std::size_t inputs = 0;
    // Padded and unpadded valid encodings of 0..75 bytes (up to 100 characters).
    for (std::size_t n = 0; n <= 75; ++n) {
      const std::string valid = base64::encode(random_bytes(rng, n));
      for (std::size_t i = 0; i < valid.size(); ++i) {
        for (int c = 0; c < 256; ++c) {
          std::string in = valid;
          in[i] = static_cast<char>(c);
          const Outcome want = diff.check(in);
          ++inputs;
          if (!in_alphabet(in[i]) && in[i] != '=' && valid[i] != '=') {
            // Independent of the scalar kernel: a non-alphabet character at i
            // is the first offending one.
            diff.expect_error_at(in, want, i);
          }
        }
      }
    }
    // Lengths that are not a multiple of 4 (1..99 characters, no '='), with an
    // offending character before or inside the incomplete quartet: every byte
    // value up to 67 characters (past the first 64-character step), the edge
    // bytes beyond.
    for (std::size_t length = 1; length < 100; ++length) {
      if (length % 4 == 0) continue;
      const std::string valid = random_characters(rng, length);
      for (std::size_t i = 0; i < valid.size(); ++i) {
        for (int c = 0; c < 256; ++c) {
          const auto byte = static_cast<unsigned char>(c);
          if (length > 67 && std::find(std::begin(kEdgeBytes), std::end(kEdgeBytes), byte) ==
                                 std::end(kEdgeBytes)) {
            continue;
          }
          std::string in = valid;
          in[i] = static_cast<char>(byte);
          diff.check(in);
          ++inputs;
        }
      }
    }
    MESSAGE(inputs << " corrupted inputs");
  }

  TEST_CASE("edge bytes at every position of longer inputs, all bytes near block boundaries") {
    Differential diff;
    std::mt19937_64 rng(4);
    // Block sizes in characters: 32 (AVX2 step), 64 (AVX-512 step), 128 (AVX2
    // group of 4), 256 (AVX2 group of 8, AVX-512 group); the kernels' loops
    // change at 34, 66 and 70 quartets left, their last step overlaps the one
    // before, and the final quartet is always the scalar one.
    const std::size_t lengths[] = {128, 132, 136, 256, 260, 264,  268, 280,
                                   284, 288, 516, 520, 524, 1028, 1100};
    for (const std::size_t length : lengths) {
      CAPTURE(length);
      for (const bool padded : {false, true}) {
        std::string valid = random_encoding(rng, length);
        if (padded) {  // "xA==": zero pad bits
          valid[length - 3] = 'A';
          valid[length - 2] = '=';
          valid[length - 1] = '=';
        }
        // The padded variant only where the padding can matter: at the end.
        for (std::size_t i = padded ? length - 68 : 0; i < length; ++i) {
          // Every byte value at block boundaries, where the last steps start
          // and in the last quartets; elsewhere the edge bytes.
          const std::size_t from_end = length - i;
          const bool every_byte = i % 32 == 0 || i % 32 == 31 || from_end <= 8 || from_end == 36 ||
                                  from_end == 37 || from_end == 68 || from_end == 69;
          for (int c = 0; c < 256; ++c) {
            const auto byte = static_cast<unsigned char>(c);
            const bool edge = std::find(std::begin(kEdgeBytes), std::end(kEdgeBytes), byte) !=
                              std::end(kEdgeBytes);
            if (!every_byte && !edge) continue;
            std::string in = valid;
            in[i] = static_cast<char>(byte);
            const Outcome want = diff.check(in);
            if (!in_alphabet(in[i]) && in[i] != '=' && valid[i] != '=') {
              diff.expect_error_at(in, want, i);
            }
          }
        }
      }
    }
  }

  TEST_CASE("random single corruptions of inputs up to 4000 characters") {
    Differential diff;
    std::mt19937_64 rng(5);
    for (int round = 0; round < 20000; ++round) {
      const std::size_t length = 4 * (1 + rng() % 1000);
      std::string in = random_encoding(rng, length);
      const std::size_t i = rng() % length;
      const auto byte = static_cast<unsigned char>(rng());
      const bool was_valid = in_alphabet(static_cast<char>(byte));
      in[i] = static_cast<char>(byte);
      const Outcome want = diff.check(in);
      if (!was_valid && byte != '=') {
        diff.expect_error_at(in, want, i);
      }
    }
  }

  TEST_CASE("every padding variant behind valid prefixes of every kernel path") {
    Differential diff;
    std::mt19937_64 rng(6);
    // The last quartet over a small alphabet: characters with zero low bits in
    // different places, '/', '=', a bad ASCII byte and a high one.
    const char chars[] = {'A', 'B', 'Q', 'g', 'w', '/', '=', '!', '\x80'};
    const std::size_t prefixes[] = {0, 4, 32, 36, 64, 68, 128, 132, 256, 276, 280, 284, 1020};
    for (const std::size_t prefix_length : prefixes) {
      CAPTURE(prefix_length);
      const std::string prefix = random_encoding(rng, prefix_length);
      // Every last quartet, then every incomplete one (1..3 characters).
      for (const char a : chars) {
        diff.check(prefix + a);
        for (const char b : chars) {
          diff.check(prefix + a + b);
          for (const char c : chars) {
            diff.check(prefix + a + b + c);
            for (const char d : chars) diff.check(prefix + a + b + c + d);
          }
        }
      }
      // Pad bits: "Q?==" and "QU?=" with every character.
      for (const char v : kAlphabet) {
        CHECK(diff.check(prefix + "Q" + v + "==").result.error ==
              ((kAlphabet.find(v) % 16 == 0) ? ErrorCode::ok : ErrorCode::bad_base64));
        CHECK(diff.check(prefix + "QU" + v + "=").result.error ==
              ((kAlphabet.find(v) % 4 == 0) ? ErrorCode::ok : ErrorCode::bad_base64));
      }
      // Padding or a padded quartet that is not the last one.
      for (const std::string_view inner : {"Zg==", "Zm8=", "Zg=", "===="}) {
        for (const std::size_t after : {std::size_t{0}, std::size_t{4}, std::size_t{64},
                                        std::size_t{256}, std::size_t{300}}) {
          const std::string in = prefix + std::string(inner) + random_encoding(rng, after);
          const Outcome want = diff.check(in);
          CHECK(want.result.error == (after == 0 && inner.size() == 4 && inner != "===="
                                          ? ErrorCode::ok
                                          : ErrorCode::bad_base64));
        }
      }
    }
  }

  TEST_CASE("random edits (insertions, deletions, '=') of inputs up to 1500 characters") {
    Differential diff;
    std::mt19937_64 rng(7);
    for (int round = 0; round < 10000; ++round) {
      std::string in = base64::encode(random_bytes(rng, rng() % 1100));
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits; ++e) {
        switch (rng() % 4) {
          case 0:
            if (!in.empty()) in[rng() % in.size()] = static_cast<char>(rng() & 0xFF);
            break;
          case 1: {
            const auto at = static_cast<std::ptrdiff_t>(rng() % (in.size() + 1));
            in.insert(in.begin() + at, kAlphabet[rng() % 64]);
            break;
          }
          case 2:
            if (!in.empty()) in.erase(in.begin() + static_cast<std::ptrdiff_t>(rng() % in.size()));
            break;
          default:
            if (!in.empty()) in[rng() % in.size()] = '=';
            break;
        }
      }
      diff.check(in);
    }
  }

  TEST_CASE("misaligned input and output buffers") {
    std::mt19937_64 rng(8);
    for (const std::size_t n :
         {std::size_t{0}, std::size_t{3}, std::size_t{24}, std::size_t{48}, std::size_t{96},
          std::size_t{190}, std::size_t{192}, std::size_t{765}, std::size_t{3000}}) {
      const std::string bytes = random_bytes(rng, n);
      const std::string encoded = base64::encode(bytes);
      std::string corrupted = encoded;
      if (!corrupted.empty()) corrupted[corrupted.size() / 2] = '*';
      for (const std::string* in : {&encoded, static_cast<const std::string*>(&corrupted)}) {
        const Outcome want = run(Kernel::scalar, *in);
        for (const Kernel k : base64::available_kernels()) {
          for (std::size_t offset = 0; offset < 64; ++offset) {
            CAPTURE(n);
            CAPTURE(base64::kernel_name(k));
            CAPTURE(offset);
            // Input and output at `offset` from a 64-byte boundary, each in a
            // block ending exactly where it ends.
            const std::size_t room = base64::max_decoded_size(in->size());
            std::vector<char> input(offset + in->size());
            std::copy(in->begin(), in->end(), input.begin() + static_cast<std::ptrdiff_t>(offset));
            std::vector<char> out(offset + room);
            const base64::DecodeResult r = base64::decode_with(
                k, std::string_view(input.data() + offset, in->size()), out.data() + offset);
            CHECK(r.error == want.result.error);
            CHECK(r.position == want.result.position);
            CHECK(r.written == want.result.written);
            CHECK(std::string_view(out.data() + offset, std::min(r.written, room)) == want.bytes);
          }
        }
      }
    }
  }

  TEST_CASE("no kernel writes outside max_decoded_size, even without sanitizers") {
    std::mt19937_64 rng(9);
    constexpr std::size_t kGuard = 80;
    constexpr char kCanary = '\x5A';
    for (std::size_t length = 0; length <= 1100; ++length) {
      std::string in = random_characters(rng, length);
      if (length % 4 == 0 && length > 0 && rng() % 2 == 0) in[length - 1] = '=';
      if (length > 0 && rng() % 3 == 0) in[rng() % length] = '#';
      const std::size_t room = base64::max_decoded_size(length);
      for (const Kernel k : base64::available_kernels()) {
        std::vector<char> buffer(kGuard + room + kGuard, kCanary);
        const base64::DecodeResult r = base64::decode_with(k, in, buffer.data() + kGuard);
        CHECK(r.written <= room);
        const bool before_intact = std::all_of(buffer.begin(), buffer.begin() + kGuard,
                                               [](char c) { return c == kCanary; });
        const bool after_intact =
            std::all_of(buffer.end() - kGuard, buffer.end(), [](char c) { return c == kCanary; });
        if (!before_intact || !after_intact) {
          FAIL_CHECK(base64::kernel_name(k) << " wrote outside its buffer at length " << length);
        }
      }
    }
  }

  TEST_CASE("decode() gives the active kernel's answer") {
    std::mt19937_64 rng(10);
    for (int round = 0; round < 200; ++round) {
      std::string in = base64::encode(random_bytes(rng, rng() % 2000));
      if (!in.empty() && round % 2 == 1) in[rng() % in.size()] = '-';
      std::vector<char> a(base64::max_decoded_size(in.size()));
      std::vector<char> b(a.size());
      const base64::DecodeResult ra = base64::decode(in, a.data());
      const base64::DecodeResult rb = base64::decode_with(base64::active_kernel(), in, b.data());
      CHECK(ra.error == rb.error);
      CHECK(ra.position == rb.position);
      CHECK(ra.written == rb.written);
      CHECK(std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(ra.written), b.begin()));
    }
  }
}
