// filebuilder: the AVX2 base64 decoding kernel (x86-64, GCC/Clang only).
//
// A drop-in replacement for scalar::decode_quartets (same contract, same
// answer), compiled with a target attribute so that the library itself needs
// no -march flag; base64.hpp calls it only when cpu::features().avx2.
//
// 32 characters (8 quartets) per step, the well-known nibble technique:
//   - validity: the low and the high nibble of each character each select a
//     set of bits (pshufb): the high nibble its class (one bit), the low
//     nibble the classes it is valid with. A character is in the alphabet
//     exactly when its class is in that set (one vptest for the 32). The low
//     nibble indexes the table as the raw character, saving a mask: pshufb
//     gives bytes >= 0x80 the empty set, so they are rejected too.
//   - translation: the high nibble selects the offset that turns the
//     character into its sextet (pshufb + add); '/', which shares its
//     nibble with '+', comes out as 66 and a minimum with 63 corrects it.
//   - packing: pmaddubsw merges sextet pairs into 12 bits, pmaddwd those
//     pairs into 24 bits per 32-bit lane; a byte shuffle puts them in big-
//     endian order, 12 bytes at the start of each 128-bit lane, and the two
//     lanes are stored 12 bytes apart (no lane-crossing permute).
// On Zen 5 (measured) a step is bound by the core's two shuffle pipes, which
// take six of its twelve vector operations (the three lookups, the byte
// shuffle, the lane extract, the vptest): 3 cycles per 32 characters at best,
// about 3.5 in this loop. The main loop runs groups of 8 steps
// (256 characters), then one of 4, each step stored before the group's
// verdict. In the first step with a character outside the alphabet, the
// first such character's index (a byte mask, then a bit scan) says how many
// whole quartets precede it, and the kernel stops before that quartet,
// exactly where the scalar kernel stops. No scalar code runs on inputs of 8
// quartets or more, so that finding where a string ends costs no scalar tail
// (base64::decode_until, the JSON fast paths).
//
// Loads are unaligned and never pass in + 4 * quartets. Stores stay inside
// out[0, 3 * quartets): two 16-byte stores (24 bytes of data, 28 written) are
// used only where 4 more bytes of room follow; elsewhere 16 + 8 bytes are
// stored. The last
// partial step re-decodes the final 32 characters (they overlap quartets
// already decoded, which are rewritten with the same bytes), so that inputs
// of 8 quartets or more need no scalar tail.
#pragma once

#include <cstddef>

#include "filebuilder/detail/base64_scalar.hpp"
#include "filebuilder/detail/cpu.hpp"

#if FILEBUILDER_X86_KERNELS

#include <immintrin.h>

#define FILEBUILDER_TARGET_AVX2 __attribute__((target("avx2")))

namespace filebuilder::detail::avx2 {

/// scalar::decode_quartets with AVX2 (the caller checks that the CPU has it).
[[nodiscard]] FILEBUILDER_TARGET_AVX2 inline std::size_t decode_quartets(const char* in,
                                                                         std::size_t quartets,
                                                                         char* out) noexcept;

// ---------------------------------------------------------------------------
// Definitions

namespace util {

/// The lookup tables and constants of a step, made once per call.
struct Constants {
  __m256i hi_classes;
  __m256i lo_valid;
  __m256i offsets;
  __m256i nibble;
  __m256i max_sextet;
  __m256i merge_pairs;
  __m256i merge_lanes;
  __m256i order;
};

FILEBUILDER_TARGET_AVX2 inline Constants make_constants() noexcept {
  Constants k;
  // The class of each high nibble: 0x01 for 0x2_, 0x02 for 0x3_, 0x04 for
  // 0x4_ and 0x6_, 0x08 for 0x5_ and 0x7_, 0x10 (valid with nothing) for the
  // others.
  k.hi_classes = _mm256_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10,
                                  0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08,
                                  0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  // By low nibble, the classes it is valid with: 0x2_ takes only B and F
  // ('+' '/'), 0x3_ only 0..9, 0x4_/0x6_ all but 0, 0x5_/0x7_ only 0..A.
  k.lo_valid = _mm256_setr_epi8(0x0A, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E, 0x0C,
                                0x05, 0x04, 0x04, 0x04, 0x05, 0x0A, 0x0E, 0x0E, 0x0E, 0x0E, 0x0E,
                                0x0E, 0x0E, 0x0E, 0x0E, 0x0C, 0x05, 0x04, 0x04, 0x04, 0x05);
  // Offset character -> sextet by high nibble. 0x2_ holds '+' (62) and '/'
  // (63): the offset of '+' takes '/' to 66, the only result above 63 of a
  // valid character, brought back to 63 by an unsigned minimum.
  k.offsets = _mm256_setr_epi8(0, 0, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 4,
                               -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  k.nibble = _mm256_set1_epi8(0x0F);
  k.max_sextet = _mm256_set1_epi8(63);
  // (a, b, c, d) -> a * 64 + b, c * 64 + d -> (a * 64 + b) * 4096 + c * 64 + d
  k.merge_pairs = _mm256_set1_epi32(0x01400140);
  k.merge_lanes = _mm256_set1_epi32(0x00011000);
  // The 3 low bytes of each 32-bit lane, high byte first, 12 per 128-bit lane.
  k.order = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2, 1, 0, 6, 5,
                             4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  return k;
}

/// 32 characters -> 32 sextets in `values`; returns 1 when every character
/// is in the alphabet, else 0 (`values` is then garbage where they are not).
FILEBUILDER_TARGET_AVX2 inline int translate(const Constants& k, __m256i chars,
                                             __m256i& values) noexcept {
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(chars, 4), k.nibble);
  // pshufb reads only the low nibble of an index byte below 0x80.
  const __m256i valid_with = _mm256_shuffle_epi8(k.lo_valid, chars);
  const __m256i hi_class = _mm256_shuffle_epi8(k.hi_classes, hi);
  values =
      _mm256_min_epu8(_mm256_add_epi8(chars, _mm256_shuffle_epi8(k.offsets, hi)), k.max_sextet);
  // 1 when every class is in its set: (~valid_with & hi_class) == 0.
  return _mm256_testc_si256(valid_with, hi_class);
}

/// The number of whole quartets of alphabet characters that the 32
/// characters start with (0..8): translate()'s test, byte by byte, for a
/// step already known to hold a bad character.
FILEBUILDER_TARGET_AVX2 inline std::size_t good_quartets(const Constants& k,
                                                         __m256i chars) noexcept {
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(chars, 4), k.nibble);
  const __m256i outside = _mm256_andnot_si256(_mm256_shuffle_epi8(k.lo_valid, chars),
                                              _mm256_shuffle_epi8(k.hi_classes, hi));
  const auto good = static_cast<unsigned>(
      _mm256_movemask_epi8(_mm256_cmpeq_epi8(outside, _mm256_setzero_si256())));
  return ~good == 0 ? 8 : static_cast<std::size_t>(__builtin_ctz(~good)) / 4;
}

/// 32 sextets -> 24 bytes: 12 at the start of each 128-bit lane (the last 4
/// bytes of each lane are zero).
FILEBUILDER_TARGET_AVX2 inline __m256i pack(const Constants& k, __m256i values) noexcept {
  const __m256i pairs = _mm256_maddubs_epi16(values, k.merge_pairs);
  const __m256i lanes = _mm256_madd_epi16(pairs, k.merge_lanes);
  return _mm256_shuffle_epi8(lanes, k.order);
}

FILEBUILDER_TARGET_AVX2 inline __m256i load(const char* in) noexcept {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in));
}

/// Stores the 24 data bytes exactly.
FILEBUILDER_TARGET_AVX2 inline void store24(char* out, __m256i lanes) noexcept {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(lanes));
  const __m128i high = _mm256_extracti128_si256(lanes, 1);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 12), high);
  _mm_storeu_si32(out + 20, _mm_srli_si128(high, 8));
}

/// Stores the 24 data bytes and 4 more (room must follow): 16 bytes from each
/// lane, the second overwriting the 4 spare bytes of the first.
FILEBUILDER_TARGET_AVX2 inline void store28(char* out, __m256i lanes) noexcept {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(lanes));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 12), _mm256_extracti128_si256(lanes, 1));
}

/// Decodes the `Steps` steps at `in` (Steps * 32 characters) to `out` (Steps *
/// 24 bytes, and 4 bytes of room after them that the last store overwrites),
/// storing each step before the verdict. Returns the number of quartets
/// before the first one holding a character outside the alphabet (Steps * 8
/// when there is none); their bytes are stored.
template <int Steps>
FILEBUILDER_TARGET_AVX2 inline std::size_t decode_group(const Constants& k, const char* in,
                                                        char* out) noexcept {
  int good = 1;
#pragma GCC unroll 8
  for (int step = 0; step < Steps; ++step) {
    __m256i values;
    good &= translate(k, load(in + 32 * step), values);
    store28(out + 24 * step, pack(k, values));
  }
  if (good) return 8 * Steps;
  std::size_t quartets = 0;
  for (int step = 0; step < Steps; ++step) {
    const std::size_t in_step = good_quartets(k, load(in + 32 * step));
    quartets += in_step;
    if (in_step < 8) break;
  }
  return quartets;
}

}  // namespace util

FILEBUILDER_TARGET_AVX2 inline std::size_t decode_quartets(const char* in, std::size_t quartets,
                                                           char* out) noexcept {
  if (quartets < 8) return scalar::decode_quartets(in, quartets, out);
  const util::Constants k = util::make_constants();
  std::size_t q = 0;  // quartets decoded so far
  // Groups of 8, then of 4 steps: the last store of a group of S steps ends
  // at 3 * (q + 8 * (S - 1)) + 28 = 3 * q + 24 * S + 4 <= 3 * quartets.
  while (quartets - q >= 66) {
    const std::size_t good = util::decode_group<8>(k, in + 4 * q, out + 3 * q);
    q += good;
    if (good < 64) return q;
  }
  if (quartets - q >= 34) {
    const std::size_t good = util::decode_group<4>(k, in + 4 * q, out + 3 * q);
    q += good;
    if (good < 32) return q;
  }
  // Single steps, storing exactly 24 bytes when no room for 28 follows. A
  // bad step is stored too (its 24 bytes are inside the output), and only
  // its whole quartets before the bad character count.
  while (quartets - q >= 8) {
    const __m256i chars = util::load(in + 4 * q);
    __m256i v;
    const int good = util::translate(k, chars, v);
    if (quartets - q >= 10) {
      util::store28(out + 3 * q, util::pack(k, v));
    } else {
      util::store24(out + 3 * q, util::pack(k, v));
    }
    if (!good) return q + util::good_quartets(k, chars);
    q += 8;
  }
  if (q == quartets) return quartets;
  // 1..7 quartets left: one step over the last 8 quartets, overlapping
  // decoded ones (valid, rewritten with the same bytes; a bad character is
  // past them, at quartet q or later).
  const std::size_t last = quartets - 8;
  const __m256i chars = util::load(in + 4 * last);
  __m256i v;
  const int good = util::translate(k, chars, v);
  util::store24(out + 3 * last, util::pack(k, v));
  return good ? quartets : last + util::good_quartets(k, chars);
}

}  // namespace filebuilder::detail::avx2

#endif  // FILEBUILDER_X86_KERNELS
