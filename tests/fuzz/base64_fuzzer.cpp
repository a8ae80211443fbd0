// libFuzzer target: every base64 kernel this CPU runs must give the scalar
// kernel's answer (bytes, error, position, written) on every input, and stay
// inside its buffers (ASan). Built only with clang, under -DFILEBUILDER_FUZZ=ON
// (tests/fuzz/CMakeLists.txt).
//
// Each input is used twice:
//   1. as base64 text, decoded as it is;
//   2. as control bytes + payload: the payload (from byte 3 on) is encoded,
//      byte 2 replaces the character at index (byte 0 | byte 1 << 8) when
//      that index is inside the encoding, and the result is decoded; without
//      a replacement it must decode back to the payload. This reaches long,
//      almost valid inputs (the SIMD kernels' main loops) far more often than
//      random text does.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "filebuilder/base64.hpp"

namespace {

namespace base64 = filebuilder::base64;

[[noreturn]] void fail(const char* what, base64::Kernel kernel, std::string_view in) {
  std::fprintf(stderr, "base64 fuzzer: %s (kernel %s, input of %zu bytes)\n", what,
               std::string(base64::kernel_name(kernel)).c_str(), in.size());
  std::abort();
}

// Decodes `text` with every kernel, each from a heap block of exactly its size
// into one of exactly max_decoded_size bytes; returns the scalar result and
// leaves its bytes in `bytes`.
base64::DecodeResult check(std::string_view text, std::string& bytes) {
  const std::size_t room = base64::max_decoded_size(text.size());
  const std::unique_ptr<char[]> copy(new char[text.size()]);
  if (!text.empty()) std::memcpy(copy.get(), text.data(), text.size());
  const std::string_view in(copy.get(), text.size());

  const std::unique_ptr<char[]> want_out(new char[room]);
  const base64::DecodeResult want = base64::decode_with(base64::Kernel::scalar, in, want_out.get());
  if (want.written > room) fail("written > max_decoded_size", base64::Kernel::scalar, in);
  if ((want.error == filebuilder::ErrorCode::ok) != (want.position == in.size())) {
    fail("position inconsistent with the error", base64::Kernel::scalar, in);
  }
  for (const base64::Kernel kernel : base64::available_kernels()) {
    if (kernel == base64::Kernel::scalar) continue;
    const std::unique_ptr<char[]> out(new char[room]);
    const base64::DecodeResult got = base64::decode_with(kernel, in, out.get());
    if (got.error != want.error) fail("error differs from scalar", kernel, in);
    if (got.position != want.position) fail("position differs from scalar", kernel, in);
    if (got.written != want.written) fail("written differs from scalar", kernel, in);
    if (want.written > 0 && std::memcmp(out.get(), want_out.get(), want.written) != 0) {
      fail("bytes differ from scalar", kernel, in);
    }
  }
  bytes.assign(want_out.get(), want.written);
  return want;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string bytes;

  // 1. The input as base64 text.
  const base64::DecodeResult direct = check(input, bytes);
  if (direct.error == filebuilder::ErrorCode::ok && base64::encode(bytes) != input) {
    fail("a valid input is not the encoding of its bytes", base64::Kernel::scalar, input);
  }

  // 2. A valid encoding of the payload, with at most one character replaced.
  if (size < 3) return 0;
  const std::string_view payload = input.substr(3);
  std::string text = base64::encode(payload);
  const std::size_t at = static_cast<std::size_t>(data[0]) | static_cast<std::size_t>(data[1]) << 8;
  const bool replaced = at < text.size();
  if (replaced) text[at] = static_cast<char>(data[2]);
  const base64::DecodeResult derived = check(text, bytes);
  if (!replaced && (derived.error != filebuilder::ErrorCode::ok || bytes != payload)) {
    fail("the encoding of the payload does not decode back to it", base64::Kernel::scalar, text);
  }
  return 0;
}
