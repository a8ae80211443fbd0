// filebuilder: strict base64 (RFC 4648 section 4: standard alphabet, padded).
//
// decode() accepts exactly the canonical encodings, the strings encode()
// produces, and nothing else:
//
//   - The empty input is valid and decodes to 0 bytes.
//   - The length must be a multiple of 4.
//   - Characters: A-Z a-z 0-9 + / and '=' only. No whitespace or line breaks,
//     no URL-safe alphabet ('-' '_'), no NUL, no byte >= 0x80.
//   - '=' only as padding: the last character ("xxx=") or the last two
//     ("xx==") of the last quartet. "x===", "====" and "xx=y" are invalid,
//     and so is '=' anywhere in an earlier quartet.
//   - The pad bits must be zero: the unused low bits of the last data
//     character before the padding ("QQ==" and "QUI=" are valid; "QR==" and
//     "QUJ=" are not), so that every byte string has one encoding only.
//
// On error, DecodeResult says where and what was written:
//   - position is the index in the input of the first offending character:
//       * a character outside the alphabet, or a '=' that is not padding
//         (for "xx=y" the '=', for "x===" the first '=');
//       * for non-zero pad bits, the last data character before the padding;
//       * for a length that is not a multiple of 4, the index where the
//         incomplete last quartet starts, unless an offending character comes
//         earlier.
//   - written is the number of bytes of the complete, valid quartets before
//     the offending one. Bytes of `out` after them (within
//     max_decoded_size(input.size())) may have been overwritten.
//
// Kernels. decode() runs the bulk of the input (the quartets before the last
// one) through one of several kernels, all giving the same answer (bytes,
// error, position, written) on every input; the last quartet and the error
// paths are shared scalar code:
//   scalar  portable (detail/base64_scalar.hpp), the reference
//   avx2    x86-64 with AVX2 (detail/base64_avx2.hpp)
//   avx512  x86-64 with AVX-512 F/BW/VL/VBMI (detail/base64_avx512.hpp)
// The SIMD kernels are compiled with target attributes (no -march needed) and
// only with GCC or Clang on x86-64. The best kernel the CPU and the OS
// support (detail/cpu.hpp) is chosen once, on first use, atomically. The
// environment variable FILEBUILDER_FORCE_IMPLEMENTATION=scalar|avx2|avx512,
// read at that first use, forces one (a name the CPU lacks, or any other
// text, is ignored); set_kernel() and decode_with() do the same from code,
// for tests and benchmarks.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "filebuilder/detail/base64_avx2.hpp"
#include "filebuilder/detail/base64_avx512.hpp"
#include "filebuilder/detail/base64_scalar.hpp"
#include "filebuilder/detail/cpu.hpp"
#include "filebuilder/error.hpp"

namespace filebuilder::base64 {

/// The outcome of decode(), in the manner of simdutf's full_result.
struct DecodeResult {
  /// ErrorCode::ok or ErrorCode::bad_base64.
  ErrorCode error;
  /// On error, the input index of the first offending character (see the
  /// header comment); on success, input.size().
  std::size_t position;
  /// Bytes written to out: all of them on success; on error, those of the
  /// complete valid quartets before the error.
  std::size_t written;
};

/// Room decode() needs for an input of this length: length / 4 * 3. (A length
/// that is not a multiple of 4 is an error, so no room for a partial quartet.)
[[nodiscard]] constexpr std::size_t max_decoded_size(std::size_t input_length) noexcept;

/// The exact decoded size of a valid input: length / 4 * 3 minus the padding.
/// Meaningless (but safe) for an invalid input.
[[nodiscard]] constexpr std::size_t decoded_size(std::string_view input) noexcept;

/// Decodes `input` strictly (see the header comment) into `out`, which must
/// have room for max_decoded_size(input.size()) bytes and must not overlap
/// `input` (the SIMD kernels write whole steps, past the bytes decoded so far,
/// before they read the rest). Bytes of that room past `written` are
/// unspecified. Never throws, never reads outside `input`.
[[nodiscard]] inline DecodeResult decode(std::string_view input, char* out) noexcept;

/// The outcome of decode_until().
struct PrefixResult {
  /// ErrorCode::ok or ErrorCode::bad_base64.
  ErrorCode error;
  /// On success, the length of the encoding (where the terminator is).
  std::size_t length;
  /// On success, the bytes written to out.
  std::size_t written;
};

/// Decodes the encoding at the start of `text` that `terminator` ends, for
/// parsers that do not know yet where a string ends (a JSON string body ends
/// at '"'): one pass, no search first. ok when text starts with a valid
/// encoding (as decode() defines it) followed by the terminator, which must
/// not be in the alphabet nor '='; the first terminator then ends it. Anything
/// else is bad_base64, without a position: decode() the real string to learn
/// where it breaks. `out` needs room for max_decoded_size(text.size()) bytes
/// and must not overlap `text`, as for decode().
///
/// expected_length, when not 0, is a guess at the encoding's length (say, the
/// length of the one before, in a stream of same-sized strings). The answer
/// is the same whatever the guess; a right one saves the search for the
/// terminator: the bulk kernel, which tests its characters in groups, would
/// otherwise decode up to a group past it and then find the quartet where
/// it stopped (for strings of a few KB, some 5% of the work). A wrong one
/// costs about nothing (the search goes on from where it went wrong).
[[nodiscard]] inline PrefixResult decode_until(std::string_view text, char terminator, char* out,
                                               std::size_t expected_length = 0) noexcept;

/// A decoding kernel (see the header comment).
enum class Kernel : unsigned char { scalar, avx2, avx512 };

/// "scalar", "avx2" or "avx512".
[[nodiscard]] constexpr std::string_view kernel_name(Kernel kernel) noexcept;

/// The kernel of that name (kernel_name), if any.
[[nodiscard]] constexpr std::optional<Kernel> kernel_from_name(std::string_view name) noexcept;

/// Whether this build and this CPU (with its OS) can run the kernel.
[[nodiscard]] inline bool kernel_supported(Kernel kernel) noexcept;

/// The kernels kernel_supported() accepts, scalar first, the best last.
[[nodiscard]] inline std::span<const Kernel> available_kernels() noexcept;

/// The kernel decode() uses (chosen now if it has not been yet).
[[nodiscard]] inline Kernel active_kernel() noexcept;

/// Makes decode() use `kernel` from now on, in every thread. Returns false,
/// changing nothing, when the kernel is not supported.
inline bool set_kernel(Kernel kernel) noexcept;

/// decode() with the given kernel, whatever the active one; a kernel that is
/// not supported is replaced by the scalar one (the answer is the same).
[[nodiscard]] inline DecodeResult decode_with(Kernel kernel, std::string_view input,
                                              char* out) noexcept;

/// The padded encoded length of n bytes: 4 * ceil(n / 3).
[[nodiscard]] constexpr std::size_t encoded_size(std::size_t n) noexcept;

/// Encodes `input` into `out`, which must have room for
/// encoded_size(input.size()) characters. Returns the count written.
inline std::size_t encode(std::string_view input, char* out) noexcept;

/// Appends the encoding of `input` to `out` (`input` must not view `out`).
inline void encode_append(std::string_view input, std::string& out);

/// The encoding of `input`.
[[nodiscard]] inline std::string encode(std::string_view input);

// ---------------------------------------------------------------------------
// Definitions

constexpr std::size_t max_decoded_size(std::size_t input_length) noexcept {
  return input_length / 4 * 3;
}

constexpr std::size_t decoded_size(std::string_view input) noexcept {
  const std::size_t n = input.size();
  std::size_t size = n / 4 * 3;
  if (n >= 4 && n % 4 == 0) {
    if (input[n - 1] == '=') --size;
    if (input[n - 2] == '=') --size;
  }
  return size;
}

}  // namespace filebuilder::base64

namespace filebuilder::detail::dispatch {

using base64::DecodeResult;
using base64::Kernel;

/// The bulk loop of a kernel: scalar::decode_quartets or a replacement.
using DecodeQuartets = std::size_t (*)(const char*, std::size_t, char*) noexcept;

/// decode() with the given bulk loop.
inline DecodeResult decode_using(DecodeQuartets decode_quartets, std::string_view input,
                                 char* out) noexcept {
  const std::size_t n = input.size();
  const std::size_t whole = n / 4;
  const bool aligned = n % 4 == 0;
  // Every whole quartet but the last of an aligned input: no padding allowed.
  const std::size_t inner = (aligned && whole > 0) ? whole - 1 : whole;

  const std::size_t done = decode_quartets(input.data(), inner, out);
  if (done < inner) {
    const std::size_t at = 4 * done;
    return {ErrorCode::bad_base64, at + scalar::first_invalid_in_quartet(input.data() + at),
            3 * done};
  }
  if (!aligned) return {ErrorCode::bad_base64, 4 * whole, 3 * whole};
  if (whole == 0) return {ErrorCode::ok, 0, 0};

  const std::size_t at = 4 * inner;
  const scalar::FinalQuartet last =
      scalar::decode_final_quartet(input.data() + at, out + 3 * inner);
  if (last.error_index < 4) return {ErrorCode::bad_base64, at + last.error_index, 3 * inner};
  return {ErrorCode::ok, n, 3 * inner + last.written};
}

struct Entry {
  Kernel kernel;
  DecodeQuartets decode_quartets;
};

/// The bulk loop of a not yet chosen kernel: chooses, then runs the choice.
inline std::size_t choose_then_decode_quartets(const char* in, std::size_t quartets,
                                               char* out) noexcept;

#if FILEBUILDER_X86_KERNELS
inline constexpr Entry entries[] = {{Kernel::scalar, &scalar::decode_quartets},
                                    {Kernel::avx2, &avx2::decode_quartets},
                                    {Kernel::avx512, &avx512::decode_quartets}};
#else
inline constexpr Entry entries[] = {{Kernel::scalar, &scalar::decode_quartets},
                                    {Kernel::avx2, &scalar::decode_quartets},
                                    {Kernel::avx512, &scalar::decode_quartets}};
#endif

inline constexpr Entry not_chosen{Kernel::scalar, &choose_then_decode_quartets};

/// The kernel of decode(): &not_chosen until the first use.
inline std::atomic<const Entry*> active{&not_chosen};

/// The kernel to use when the environment variable holds `forced` (or is
/// unset: nullptr): the forced one if supported, else the best.
inline Kernel choose(const char* forced) noexcept {
  if (forced != nullptr) {
    const std::optional<Kernel> kernel = base64::kernel_from_name(forced);
    if (kernel && base64::kernel_supported(*kernel)) return *kernel;
  }
  return base64::available_kernels().back();
}

/// The active kernel, chosen first if need be (once: a racing thread's
/// choice, or set_kernel()'s, wins over ours).
inline const Entry* active_entry() noexcept {
  const Entry* entry = active.load(std::memory_order_acquire);
  if (entry != &not_chosen) return entry;
  const Entry* chosen =
      &entries[static_cast<unsigned>(choose(std::getenv("FILEBUILDER_FORCE_IMPLEMENTATION")))];
  if (active.compare_exchange_strong(entry, chosen, std::memory_order_acq_rel)) return chosen;
  return entry;
}

inline std::size_t choose_then_decode_quartets(const char* in, std::size_t quartets,
                                               char* out) noexcept {
  return active_entry()->decode_quartets(in, quartets, out);
}

/// decode_until's padded last quartet at `in` (4 characters are there). Not
/// inlined: g++ 12 then warns about reads past short string literals that
/// the caller has ruled out.
[[gnu::noinline]] inline base64::PrefixResult decode_padded_end(const char* in, char* out,
                                                                std::size_t length,
                                                                std::size_t written) noexcept {
  const scalar::FinalQuartet last = scalar::decode_final_quartet(in, out);
  if (last.error_index < 4) return {ErrorCode::bad_base64, 0, 0};
  return {ErrorCode::ok, length + 4, written + last.written};
}

}  // namespace filebuilder::detail::dispatch

namespace filebuilder::base64 {

inline DecodeResult decode(std::string_view input, char* out) noexcept {
  return detail::dispatch::decode_using(
      detail::dispatch::active.load(std::memory_order_acquire)->decode_quartets, input, out);
}

inline PrefixResult decode_until(std::string_view text, char terminator, char* out,
                                 std::size_t expected_length) noexcept {
  // The search below starts at quartet `from`: those before it are decoded.
  std::size_t from = 0;
  if (expected_length != 0 && expected_length < text.size()) {
    // The terminator is neither in the alphabet nor '=': when the guess
    // decodes and is followed by it, no terminator comes earlier, so this is
    // the first one and the search would give the same. The terminator is
    // read after the decode: read before, it was a cache miss (the string's
    // end a few KB ahead) that the decode's sequential reads would have
    // hidden. A wrong guess costs nothing: the search goes on from where
    // the decode got to.
    const DecodeResult exact = decode(std::string_view(text.data(), expected_length), out);
    if (exact.error == ErrorCode::ok) {
      if (text[expected_length] == terminator)
        return {ErrorCode::ok, expected_length, exact.written};
      // (A length that decodes is a positive multiple of 4.) Its last
      // quartet again, as an inner one: it may hold padding.
      from = expected_length / 4 - 1;
    } else {
      from = exact.position / 4;  // every quartet before the broken one is decoded
    }
  }
  const PrefixResult bad{ErrorCode::bad_base64, 0, 0};
  // The bulk loop stops before the first quartet holding a character outside
  // the alphabet: the terminator, padding, or something wrong.
  const std::size_t quartets = text.size() / 4;
  // (The min tells the compiler what the kernels promise: done <= quartets.)
  const std::size_t done =
      from + std::min(quartets - from, detail::dispatch::active.load(std::memory_order_acquire)
                                           ->decode_quartets(text.data() + 4 * from,
                                                             quartets - from, out + 3 * from));
  const std::size_t at = 4 * done;
  if (at < text.size() && text[at] == terminator) return {ErrorCode::ok, at, 3 * done};
  // "xx==" or "xxx=", then the terminator.
  if (text.size() - at < 5 || text[at + 4] != terminator) return bad;
  return detail::dispatch::decode_padded_end(text.data() + at, out + 3 * done, at, 3 * done);
}

constexpr std::string_view kernel_name(Kernel kernel) noexcept {
  switch (kernel) {
    case Kernel::scalar: return "scalar";
    case Kernel::avx2: return "avx2";
    case Kernel::avx512: return "avx512";
  }
  return "unknown";
}

constexpr std::optional<Kernel> kernel_from_name(std::string_view name) noexcept {
  for (const Kernel kernel : {Kernel::scalar, Kernel::avx2, Kernel::avx512}) {
    if (kernel_name(kernel) == name) return kernel;
  }
  return std::nullopt;
}

inline bool kernel_supported(Kernel kernel) noexcept {
  switch (kernel) {
    case Kernel::scalar: return true;
    case Kernel::avx2: return FILEBUILDER_X86_KERNELS && detail::cpu::features().avx2;
    case Kernel::avx512: return FILEBUILDER_X86_KERNELS && detail::cpu::features().avx512vbmi;
  }
  return false;
}

inline std::span<const Kernel> available_kernels() noexcept {
  struct List {
    std::array<Kernel, 3> kernels{};
    std::size_t size = 0;
  };
  static const List list = [] {
    List l;
    for (const Kernel kernel : {Kernel::scalar, Kernel::avx2, Kernel::avx512}) {
      if (kernel_supported(kernel)) l.kernels[l.size++] = kernel;
    }
    return l;
  }();
  return {list.kernels.data(), list.size};
}

inline Kernel active_kernel() noexcept {
  return detail::dispatch::active_entry()->kernel;
}

inline bool set_kernel(Kernel kernel) noexcept {
  if (!kernel_supported(kernel)) return false;
  detail::dispatch::active.store(&detail::dispatch::entries[static_cast<unsigned>(kernel)],
                                 std::memory_order_release);
  return true;
}

inline DecodeResult decode_with(Kernel kernel, std::string_view input, char* out) noexcept {
  const Kernel use = kernel_supported(kernel) ? kernel : Kernel::scalar;
  return detail::dispatch::decode_using(
      detail::dispatch::entries[static_cast<unsigned>(use)].decode_quartets, input, out);
}

constexpr std::size_t encoded_size(std::size_t n) noexcept {
  return n / 3 * 4 + (n % 3 != 0 ? 4 : 0);
}

inline std::size_t encode(std::string_view input, char* out) noexcept {
  return detail::scalar::encode(input.data(), input.size(), out);
}

inline void encode_append(std::string_view input, std::string& out) {
  const std::size_t old_size = out.size();
  out.resize(old_size + encoded_size(input.size()));
  encode(input, out.data() + old_size);
}

inline std::string encode(std::string_view input) {
  std::string out;
  encode_append(input, out);
  return out;
}

}  // namespace filebuilder::base64
