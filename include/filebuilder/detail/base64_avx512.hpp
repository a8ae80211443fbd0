// filebuilder: the AVX-512 VBMI base64 decoding kernel (x86-64, GCC/Clang only).
//
// A drop-in replacement for scalar::decode_quartets (same contract, same
// answer), compiled with a target attribute so that the library itself needs
// no -march flag; base64.hpp calls it only when cpu::features().avx512vbmi
// (AVX-512 F, BW, VL, VBMI and the OS's zmm support).
//
// 64 characters (16 quartets) per step:
//   - translation and validity at once: vpermi2b looks each character's low 7
//     bits up in a 128-entry table (two registers) holding the sextet, or a
//     byte with the high bit set for anything outside the alphabet; a
//     character is bad when the high bit of (entry | character) is set, which
//     also catches bytes >= 0x80.
//   - packing: vpmaddubsw merges sextet pairs into 12 bits, vpmaddwd those
//     pairs into 24 bits per 32-bit lane, and one vpermb gathers the 48
//     output bytes in big-endian order.
// Four steps are checked at once (one test for 256 characters). In a step
// with any character outside the alphabet, the first such character's index
// (a mask, then a bit scan) says how many whole quartets precede it; only
// those are stored, and the kernel stops before that quartet, exactly where
// the scalar kernel stops. No scalar code runs, so that finding where a string
// ends costs nothing extra (base64::decode_until, the JSON fast paths).
//
// Loads are unaligned and never pass in + 4 * quartets. Stores stay inside
// out[0, 3 * quartets): a 64-byte store (48 bytes of data) is used only where
// 16 more bytes of room follow; elsewhere a masked store writes the 48. The last
// partial step re-decodes the final 64 characters (they overlap quartets
// already decoded, which are rewritten with the same bytes), so that inputs
// of 16 quartets or more need no scalar tail; shorter ones go to the AVX2
// kernel (every AVX-512 CPU has AVX2).
#pragma once

#include <array>
#include <cstddef>

#include "filebuilder/detail/base64_avx2.hpp"
#include "filebuilder/detail/base64_scalar.hpp"
#include "filebuilder/detail/cpu.hpp"

#if FILEBUILDER_X86_KERNELS

#include <immintrin.h>

#define FILEBUILDER_TARGET_AVX512 \
  __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vbmi")))

namespace filebuilder::detail::avx512 {

/// scalar::decode_quartets with AVX-512 VBMI (the caller checks that the CPU has it).
[[nodiscard]] FILEBUILDER_TARGET_AVX512 inline std::size_t decode_quartets(const char* in,
                                                                           std::size_t quartets,
                                                                           char* out) noexcept;

// ---------------------------------------------------------------------------
// Definitions

namespace util {

/// The 128-entry table: the sextet of each ASCII character, 0x80 when it is
/// not in the alphabet.
constexpr std::array<unsigned char, 128> make_ascii_table() {
  std::array<unsigned char, 128> table{};
  for (auto& entry : table) entry = 0x80;
  for (unsigned char i = 0; i < 64; ++i) {
    table[static_cast<unsigned char>(scalar::alphabet[i])] = i;
  }
  return table;
}

alignas(64) inline constexpr std::array<unsigned char, 128> ascii_table = make_ascii_table();

/// The vpermb index: output byte 3 * i + k is byte 2 - k of 32-bit lane i
/// (the last 16 bytes are not used).
constexpr std::array<unsigned char, 64> make_gather_index() {
  std::array<unsigned char, 64> index{};
  for (unsigned i = 0; i < 16; ++i) {
    for (unsigned k = 0; k < 3; ++k) index[3 * i + k] = static_cast<unsigned char>(4 * i + 2 - k);
  }
  return index;
}

alignas(64) inline constexpr std::array<unsigned char, 64> gather_index = make_gather_index();

/// The table, characters 0..63 in `low` and 64..127 in `high`.
struct Table {
  __m512i low;
  __m512i high;
};

FILEBUILDER_TARGET_AVX512 inline Table load_table() noexcept {
  return {_mm512_loadu_si512(ascii_table.data()), _mm512_loadu_si512(ascii_table.data() + 64)};
}

/// 64 characters -> 64 sextets (valid characters only) or entries with the
/// high bit set; OR `chars` into the error accumulator too.
FILEBUILDER_TARGET_AVX512 inline __m512i translate(const Table& t, __m512i chars) noexcept {
  return _mm512_permutex2var_epi8(t.low, chars, t.high);
}

/// 64 sextets -> 48 bytes at the start of the result (the last 16 are garbage).
FILEBUILDER_TARGET_AVX512 inline __m512i pack(__m512i values, __m512i gather) noexcept {
  // (a, b, c, d) -> a * 64 + b, c * 64 + d -> (a * 64 + b) * 4096 + c * 64 + d
  const __m512i pairs = _mm512_maddubs_epi16(values, _mm512_set1_epi32(0x01400140));
  const __m512i lanes = _mm512_madd_epi16(pairs, _mm512_set1_epi32(0x00011000));
  // (The zero-masking form with every lane kept: the plain one makes GCC 12
  // warn about the undefined source it passes.)
  return _mm512_maskz_permutexvar_epi8(~__mmask64{0}, gather, lanes);
}

FILEBUILDER_TARGET_AVX512 inline __m512i load(const char* in) noexcept {
  return _mm512_loadu_si512(in);
}

/// True when a character (or its table entry) has the high bit set.
FILEBUILDER_TARGET_AVX512 inline bool any_bad(__m512i bits) noexcept {
  return _mm512_movepi8_mask(bits) != 0;
}

/// One step of 64 characters at `in` (16 quartets): stores the 48 bytes and
/// returns true when all are in the alphabet; else stores only the whole
/// quartets before the first bad character, counts them into `good`, and
/// returns false. (The good case must not depend on the count: the next
/// step's address would then wait for this step's validation.)
FILEBUILDER_TARGET_AVX512 inline bool step(const Table& t, __m512i gather, const char* in,
                                           char* out, std::size_t& good) noexcept {
  const __m512i c = load(in);
  const __m512i v = translate(t, c);
  const __mmask64 bad = _mm512_movepi8_mask(_mm512_or_si512(c, v));
  if (bad == 0) {
    _mm512_mask_storeu_epi8(out, 0x0000FFFFFFFFFFFFull, pack(v, gather));
    return true;
  }
  good = static_cast<std::size_t>(__builtin_ctzll(bad)) / 4;
  _mm512_mask_storeu_epi8(out, (__mmask64{1} << (3 * good)) - 1, pack(v, gather));
  return false;
}

/// Stores 64 bytes: the 48 data bytes and 16 more (room must follow).
FILEBUILDER_TARGET_AVX512 inline void store64(char* out, __m512i bytes) noexcept {
  _mm512_storeu_si512(out, bytes);
}

}  // namespace util

FILEBUILDER_TARGET_AVX512 inline std::size_t decode_quartets(const char* in, std::size_t quartets,
                                                             char* out) noexcept {
  if (quartets < 16) return avx2::decode_quartets(in, quartets, out);
  const util::Table table = util::load_table();
  const __m512i gather = _mm512_loadu_si512(util::gather_index.data());
  std::size_t q = 0;  // quartets decoded so far
  // Groups of 4 steps (64 quartets) with 64-byte stores: the last store of a
  // group ends at 3 * (q + 48) + 64 = 3 * q + 208 <= 3 * quartets.
  while (quartets - q >= 70) {
    const char* src = in + 4 * q;
    char* dst = out + 3 * q;
    const __m512i c0 = util::load(src);
    const __m512i c1 = util::load(src + 64);
    const __m512i c2 = util::load(src + 128);
    const __m512i c3 = util::load(src + 192);
    const __m512i v0 = util::translate(table, c0);
    const __m512i v1 = util::translate(table, c1);
    const __m512i v2 = util::translate(table, c2);
    const __m512i v3 = util::translate(table, c3);
    // 0xFE: the OR of the three operands.
    const __m512i bits = _mm512_ternarylogic_epi32(_mm512_ternarylogic_epi32(c0, c1, c2, 0xFE),
                                                   _mm512_ternarylogic_epi32(c3, v0, v1, 0xFE),
                                                   _mm512_or_si512(v2, v3), 0xFE);
    if (util::any_bad(bits)) {
      std::size_t good = 0;
      for (int i = 0; i < 4; ++i, q += 16)
        if (!util::step(table, gather, in + 4 * q, out + 3 * q, good)) return q + good;
      continue;  // (not reached: one of the steps holds the bad character)
    }
    util::store64(dst, util::pack(v0, gather));
    util::store64(dst + 48, util::pack(v1, gather));
    util::store64(dst + 96, util::pack(v2, gather));
    util::store64(dst + 144, util::pack(v3, gather));
    q += 64;
  }
  // Single steps, storing exactly 48 bytes.
  std::size_t good = 0;
  for (; quartets - q >= 16; q += 16)
    if (!util::step(table, gather, in + 4 * q, out + 3 * q, good)) return q + good;
  if (q == quartets) return quartets;
  // 1..15 quartets left: one step over the last 16 quartets, overlapping
  // decoded ones (valid, rewritten with the same bytes, so a bad character
  // can only lie in the new ones).
  const std::size_t last = quartets - 16;
  return util::step(table, gather, in + 4 * last, out + 3 * last, good) ? quartets : last + good;
}

}  // namespace filebuilder::detail::avx512

#endif  // FILEBUILDER_X86_KERNELS
