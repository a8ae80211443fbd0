// filebuilder: the portable base64 kernel (RFC 4648 standard alphabet).
//
// The reference every SIMD kernel is checked against, and the fallback of the
// runtime dispatch in base64.hpp. The rules (strictness, error positions) live
// in base64.hpp; this file provides the building blocks it assembles:
//
//   decode_quartets          the bulk loop: whole quartets of alphabet characters,
//                            stopping before the first quartet holding anything else
//                            (a SIMD kernel replaces exactly this function)
//   first_invalid_in_quartet where a rejected inner quartet breaks
//   decode_final_quartet     the last quartet, with its padding and pad-bit checks
//   encode                   3 bytes -> 4 characters, padded
//
// Decoding is table-driven: one 256-entry table per position in the quartet
// holds the sextet already shifted into place, or a marker with bits above
// the 24 data bits for anything outside the alphabet. A quartet is the OR of
// four lookups and a single compare, so the good path has no per-byte branch.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace filebuilder::detail::scalar {

/// The standard alphabet, index -> character.
inline constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The table marker for a character outside the alphabet ('=' included).
inline constexpr std::uint32_t invalid_entry = 0xFF000000u;

/// Decodes `quartets` whole quartets from `in` (4 * quartets characters) into
/// `out` (3 * quartets bytes). Every character must be in the alphabet: '=' is
/// not accepted here. Stops before the first quartet holding another character
/// and returns the number of quartets decoded (== quartets when all are good);
/// their 3 * result bytes are in `out`. Bytes of `out` after those may be
/// overwritten, but nothing outside out[0, 3 * quartets).
[[nodiscard]] inline std::size_t decode_quartets(const char* in, std::size_t quartets,
                                                 char* out) noexcept;

/// The index (0..3) of the first character of the 4 at `in` that is not in
/// the alphabet; 4 when all are.
[[nodiscard]] inline unsigned first_invalid_in_quartet(const char* in) noexcept;

/// The outcome of decode_final_quartet.
struct FinalQuartet {
  /// 4 when the quartet is good, else the index (0..3) of the offending character.
  unsigned error_index;
  /// Bytes written (1, 2 or 3) when good, else 0.
  unsigned written;
};

/// Decodes the last quartet of an input: "xxxx", "xxx=" or "xx==", with the
/// pad bits of a padded quartet required to be zero. Writes at most 3 bytes.
[[nodiscard]] inline FinalQuartet decode_final_quartet(const char* in, char* out) noexcept;

/// Encodes n bytes into 4 * ceil(n / 3) characters (padded); returns that count.
inline std::size_t encode(const char* in, std::size_t n, char* out) noexcept;

// ---------------------------------------------------------------------------
// Definitions

namespace tables {

constexpr std::array<std::uint32_t, 256> make_decode_table(unsigned shift) {
  std::array<std::uint32_t, 256> table{};
  for (auto& entry : table) entry = invalid_entry;
  for (std::uint32_t i = 0; i < 64; ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = i << shift;
  }
  return table;
}

// Position k of a quartet contributes its sextet at bit 18 - 6k.
inline constexpr std::array<std::uint32_t, 256> d0 = make_decode_table(18);
inline constexpr std::array<std::uint32_t, 256> d1 = make_decode_table(12);
inline constexpr std::array<std::uint32_t, 256> d2 = make_decode_table(6);
inline constexpr std::array<std::uint32_t, 256> d3 = make_decode_table(0);

// Two characters for each 12-bit value: halves the lookups of encode.
constexpr std::array<char, 8192> make_encode_pairs() {
  std::array<char, 8192> pairs{};
  for (std::size_t v = 0; v < 4096; ++v) {
    pairs[2 * v] = alphabet[v >> 6];
    pairs[2 * v + 1] = alphabet[v & 63];
  }
  return pairs;
}

inline constexpr std::array<char, 8192> encode_pairs = make_encode_pairs();

}  // namespace tables

namespace util {

/// The 24 data bits of a quartet, or a value >= 2^24 when a character is bad.
inline std::uint32_t quartet_bits(const unsigned char* s) noexcept {
  return tables::d0[s[0]] | tables::d1[s[1]] | tables::d2[s[2]] | tables::d3[s[3]];
}

inline std::uint64_t to_big_endian(std::uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::big) {
    return v;
  } else {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_bswap64(v);
#else
    v = ((v & 0x00FF00FF00FF00FFull) << 8) | ((v >> 8) & 0x00FF00FF00FF00FFull);
    v = ((v & 0x0000FFFF0000FFFFull) << 16) | ((v >> 16) & 0x0000FFFF0000FFFFull);
    return (v << 32) | (v >> 32);
#endif
  }
}

/// Stores the 48 low bits of v big-endian at out, as one 8-byte store
/// (the 2 bytes after them are overwritten with garbage).
inline void store48(char* out, std::uint64_t v) noexcept {
  const std::uint64_t word = to_big_endian(v << 16);
  std::memcpy(out, &word, sizeof word);
}

inline void store24(char* out, std::uint32_t v) noexcept {
  out[0] = static_cast<char>(v >> 16);
  out[1] = static_cast<char>(v >> 8);
  out[2] = static_cast<char>(v);
}

}  // namespace util

inline std::size_t decode_quartets(const char* in, std::size_t quartets, char* out) noexcept {
  const auto* src = reinterpret_cast<const unsigned char*>(in);
  std::size_t q = 0;
  // Two quartets per step with one 8-byte store; a third quartet must follow,
  // so that the 2 extra bytes of the store land in its own slot of `out`.
  for (; q + 3 <= quartets; q += 2) {
    const std::uint32_t a = util::quartet_bits(src + 4 * q);
    const std::uint32_t b = util::quartet_bits(src + 4 * q + 4);
    if ((a | b) > 0xFFFFFFu) break;  // the loop below finds which quartet
    util::store48(out + 3 * q, (static_cast<std::uint64_t>(a) << 24) | b);
  }
  for (; q < quartets; ++q) {
    const std::uint32_t a = util::quartet_bits(src + 4 * q);
    if (a > 0xFFFFFFu) return q;
    util::store24(out + 3 * q, a);
  }
  return quartets;
}

inline unsigned first_invalid_in_quartet(const char* in) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(in);
  for (unsigned i = 0; i < 4; ++i) {
    if (tables::d3[s[i]] == invalid_entry) return i;
  }
  return 4;
}

inline FinalQuartet decode_final_quartet(const char* in, char* out) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(in);
  const std::uint32_t v0 = tables::d3[s[0]];
  const std::uint32_t v1 = tables::d3[s[1]];
  if (v0 == invalid_entry) return {0, 0};
  if (v1 == invalid_entry) return {1, 0};
  if (s[2] == '=') {
    if (s[3] != '=') return {2, 0};       // "xx=y": the '=' is not padding
    if ((v1 & 0x0F) != 0) return {1, 0};  // non-canonical: pad bits set
    out[0] = static_cast<char>((v0 << 2) | (v1 >> 4));
    return {4, 1};
  }
  const std::uint32_t v2 = tables::d3[s[2]];
  if (v2 == invalid_entry) return {2, 0};
  if (s[3] == '=') {
    if ((v2 & 0x03) != 0) return {2, 0};  // non-canonical: pad bits set
    const std::uint32_t bits = (v0 << 18) | (v1 << 12) | (v2 << 6);
    out[0] = static_cast<char>(bits >> 16);
    out[1] = static_cast<char>(bits >> 8);
    return {4, 2};
  }
  const std::uint32_t v3 = tables::d3[s[3]];
  if (v3 == invalid_entry) return {3, 0};
  util::store24(out, (v0 << 18) | (v1 << 12) | (v2 << 6) | v3);
  return {4, 3};
}

inline std::size_t encode(const char* in, std::size_t n, char* out) noexcept {
  const auto* src = reinterpret_cast<const unsigned char*>(in);
  const char* pairs = tables::encode_pairs.data();
  char* o = out;
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (static_cast<std::uint32_t>(src[i]) << 16) |
                            (static_cast<std::uint32_t>(src[i + 1]) << 8) | src[i + 2];
    std::memcpy(o, pairs + 2 * (v >> 12), 2);
    std::memcpy(o + 2, pairs + 2 * (v & 0xFFF), 2);
    o += 4;
  }
  const std::size_t rest = n - i;
  if (rest == 1) {
    const std::uint32_t v = src[i];
    o[0] = alphabet[v >> 2];
    o[1] = alphabet[(v & 0x03) << 4];
    o[2] = '=';
    o[3] = '=';
    o += 4;
  } else if (rest == 2) {
    const std::uint32_t v = (static_cast<std::uint32_t>(src[i]) << 8) | src[i + 1];
    o[0] = alphabet[v >> 10];
    o[1] = alphabet[(v >> 4) & 63];
    o[2] = alphabet[(v & 0x0F) << 2];
    o[3] = '=';
    o += 4;
  }
  return static_cast<std::size_t>(o - out);
}

}  // namespace filebuilder::detail::scalar
