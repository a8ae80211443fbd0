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
// The kernel is chosen here; today only the scalar one
// (detail/base64_scalar.hpp) exists.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "filebuilder/detail/base64_scalar.hpp"
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
/// have room for max_decoded_size(input.size()) bytes. Never throws, never
/// reads outside `input`.
[[nodiscard]] inline DecodeResult decode(std::string_view input, char* out) noexcept;

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

inline DecodeResult decode(std::string_view input, char* out) noexcept {
  const std::size_t n = input.size();
  const std::size_t whole = n / 4;
  const bool aligned = n % 4 == 0;
  // Every whole quartet but the last of an aligned input: no padding allowed.
  const std::size_t inner = (aligned && whole > 0) ? whole - 1 : whole;

  const std::size_t done = detail::scalar::decode_quartets(input.data(), inner, out);
  if (done < inner) {
    const std::size_t at = 4 * done;
    return {ErrorCode::bad_base64, at + detail::scalar::first_invalid_in_quartet(input.data() + at),
            3 * done};
  }
  if (!aligned) return {ErrorCode::bad_base64, 4 * whole, 3 * whole};
  if (whole == 0) return {ErrorCode::ok, 0, 0};

  const std::size_t at = 4 * inner;
  const detail::scalar::FinalQuartet last =
      detail::scalar::decode_final_quartet(input.data() + at, out + 3 * inner);
  if (last.error_index < 4) return {ErrorCode::bad_base64, at + last.error_index, 3 * inner};
  return {ErrorCode::ok, n, 3 * inner + last.written};
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
