// base64::decode_until: the one-pass decode of a string whose end is found on
// the way (the JSON fast paths), with every kernel.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "filebuilder/base64.hpp"

using namespace filebuilder;

namespace {

// What decode_until must answer, from decode() on the real string.
base64::PrefixResult expected(std::string_view text, char terminator, std::string& bytes) {
  const std::size_t end = text.find(terminator);
  if (end == std::string_view::npos) return {ErrorCode::bad_base64, 0, 0};
  bytes.assign(base64::max_decoded_size(end), '\0');
  const base64::DecodeResult result = base64::decode(text.substr(0, end), bytes.data());
  if (result.error != ErrorCode::ok) return {ErrorCode::bad_base64, 0, 0};
  bytes.resize(result.written);
  return {ErrorCode::ok, end, result.written};
}

// decode_until's answer `got` (its bytes at `out`) is `want` (bytes `want_bytes`).
void same_answer(const base64::PrefixResult& got, const char* out, const base64::PrefixResult& want,
                 const std::string& want_bytes) {
  REQUIRE(got.error == want.error);
  if (want.error != ErrorCode::ok) return;
  CHECK(got.length == want.length);
  REQUIRE(got.written == want.written);
  CHECK(std::string_view(out, got.written) == want_bytes);
}

struct KernelGuard {
  base64::Kernel saved = base64::active_kernel();
  ~KernelGuard() { (void)base64::set_kernel(saved); }
};

}  // namespace

TEST_CASE("decode_until: exact cases") {
  char out[64];
  base64::PrefixResult r = base64::decode_until("aGVsbG8=\",\"x", '"', out);
  CHECK(r.error == ErrorCode::ok);
  CHECK(r.length == 8);
  CHECK(std::string_view(out, r.written) == "hello");
  r = base64::decode_until("\"", '"', out);
  CHECK(r.error == ErrorCode::ok);
  CHECK(r.length == 0);
  CHECK(r.written == 0);
  CHECK(base64::decode_until("", '"', out).error == ErrorCode::bad_base64);
  CHECK(base64::decode_until("aGVsbG8=", '"', out).error == ErrorCode::bad_base64);  // no end
  CHECK(base64::decode_until("aGVsbG8", '"', out).error == ErrorCode::bad_base64);
  CHECK(base64::decode_until("aGVsbG8\"", '"', out).error == ErrorCode::bad_base64);
  CHECK(base64::decode_until("aGVsbG9=\"", '"', out).error == ErrorCode::bad_base64);  // pad bits
  CHECK(base64::decode_until("aGVs\\/G8=\"", '"', out).error == ErrorCode::bad_base64);
  CHECK(base64::decode_until("aG==aGVs\"", '"', out).error == ErrorCode::bad_base64);
  r = base64::decode_until("YWJj}", '}', out);
  CHECK(r.error == ErrorCode::ok);
  CHECK(std::string_view(out, r.written) == "abc");
}

TEST_CASE("decode_until: every kernel agrees with decode() on the string it ends at") {
  KernelGuard guard;
  std::mt19937_64 random(99);
  const std::string tails[] = {"\"", "\",\"k\":1}", "\"}", "x\"", "=\"", "==\"", "\\\"\"", ""};
  for (const base64::Kernel kernel : base64::available_kernels()) {
    REQUIRE(base64::set_kernel(kernel));
    INFO("kernel " << base64::kernel_name(kernel));
    for (std::size_t n = 0; n < 700; ++n) {
      std::string bytes(n, '\0');
      for (char& c : bytes) c = static_cast<char>(random());
      const std::string encoded = base64::encode(bytes);
      for (const std::string& tail : tails) {
        std::string text = encoded + tail;
        // Sometimes one character broken, sometimes more alphabet after the end.
        if (random() % 4 == 0 && !text.empty())
          text[random() % text.size()] = "A=\"\\\x80"[random() % 5];
        if (random() % 4 == 0) text += base64::encode(bytes);
        std::string want_bytes;
        const base64::PrefixResult want = expected(text, '"', want_bytes);
        std::string out(base64::max_decoded_size(text.size()) + 1, '\0');
        const base64::PrefixResult got = base64::decode_until(text, '"', out.data());
        same_answer(got, out.data(), want, want_bytes);
      }
    }
  }
}

TEST_CASE("decode_until: a guess at the length never changes the answer") {
  KernelGuard guard;
  char out[64];
  // The guess is followed by a terminator, but an earlier one ends the string.
  base64::PrefixResult r = base64::decode_until("QUJD\"QUJD\"", '"', out, 9);
  CHECK(r.error == ErrorCode::ok);
  CHECK(r.length == 4);
  CHECK(std::string_view(out, r.written) == "ABC");
  // Right, short, long, past the end.
  for (const std::size_t guess : {8, 4, 9, 12, 100}) {
    CAPTURE(guess);
    r = base64::decode_until("aGVsbG8=\",\"x\"", '"', out, guess);
    CHECK(r.error == ErrorCode::ok);
    CHECK(r.length == 8);
    CHECK(std::string_view(out, r.written) == "hello");
  }
  CHECK(base64::decode_until("aGVsbG9=\"", '"', out, 8).error == ErrorCode::bad_base64);
  // A guess that decodes, ending in padding, where the string goes on.
  for (const std::size_t guess : {0, 4, 8, 9}) {
    CAPTURE(guess);
    CHECK(base64::decode_until("aGk=aGk=\"", '"', out, guess).error == ErrorCode::bad_base64);
  }

  std::mt19937_64 random(7);
  for (const base64::Kernel kernel : base64::available_kernels()) {
    REQUIRE(base64::set_kernel(kernel));
    INFO("kernel " << base64::kernel_name(kernel));
    for (std::size_t n = 0; n < 400; ++n) {
      std::string bytes(n, '\0');
      for (char& c : bytes) c = static_cast<char>(random());
      std::string text = base64::encode(bytes) + "\"" + base64::encode(bytes.substr(n / 2)) + "\"";
      const bool broken = random() % 3 == 0;
      if (broken) text[random() % text.size()] = "A=\"\\"[random() % 4];
      std::string want_bytes;
      const base64::PrefixResult want = expected(text, '"', want_bytes);
      std::vector<std::size_t> guesses = {0, 1, text.size() - 1, text.size(), text.size() + 3};
      for (std::size_t at = 0; at < text.size(); ++at)
        if (text[at] == '"') {
          guesses.push_back(at);  // every terminator, the first one or a later one
          guesses.push_back(at + 1);
          if (at >= 4) guesses.push_back(at - 4);
        }
      guesses.push_back(random() % (text.size() + 1));
      // Broken strings: a guess at every quartet (before the break, at it, past it).
      if (broken)
        for (std::size_t at = 4; at < text.size(); at += 4) guesses.push_back(at);
      for (const std::size_t guess : guesses) {
        CAPTURE(guess);
        std::string got_bytes(base64::max_decoded_size(text.size()) + 1, '\0');
        const base64::PrefixResult got = base64::decode_until(text, '"', got_bytes.data(), guess);
        same_answer(got, got_bytes.data(), want, want_bytes);
      }
    }
  }
}
