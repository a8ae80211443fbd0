// filebuilder: a scanner for "plain" JSON, the fast path in front of simdjson.
//
// Chunk records and event envelopes are mostly long base64 strings. simdjson's
// stage 1 classifies every byte of them before any field can be read, which
// costs as much as decoding them. The fast paths (chunk.hpp, source/
// envelope.hpp) instead walk the document with this scanner and hand the base64
// bodies straight to the decoder, which validates them anyway.
//
// The scanner accepts a strict subset of JSON and says "no" to everything else,
// so that the caller falls back to simdjson, which then decides (and names the
// error). "Plain" means:
//   - strings of printable ASCII (0x20..0x7F) without any backslash escape,
//   - numbers in JSON's grammar, literals true/false/null,
//   - objects and arrays nested at most max_depth deep,
//   - whitespace as JSON defines it (space, tab, line feed, carriage return).
// Every plain document is valid JSON, and a plain string's bytes are its value.
//
// base64_string() reads the long strings: it decodes them as it finds their
// end (base64::decode_until), so they cost one pass, not a scan and a decode.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "filebuilder/base64.hpp"
#include "filebuilder/error.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// The scanner is a handful of tiny functions called for every token: they
// must be inlined into the readers' loops.
#define FILEBUILDER_PLAIN_INLINE [[gnu::always_inline]] inline

namespace filebuilder::detail::plain_json {

/// Deeper documents are not plain (simdjson decides them).
inline constexpr unsigned max_depth = 32;

/// A position in a document, [p, end), and the stop mask (see
/// find_string_stop) of the 64-byte block it was last asked about.
struct Cursor {
  const char* p;
  const char* end;
  const char* base;             // blocks are 64-byte ranges from here
  const char* block = nullptr;  // the block `stops` describes
  std::uint64_t stops = 0;

  explicit Cursor(std::string_view text) noexcept
      : p(text.data()), end(text.data() + text.size()), base(text.data()) {}
};

[[nodiscard]] constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

FILEBUILDER_PLAIN_INLINE void skip_spaces(Cursor& c) noexcept {
  while (c.p != c.end && is_space(*c.p)) ++c.p;
}

/// Skips spaces, then consumes `expected` if it is next.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool consume(Cursor& c, char expected) noexcept {
  if (c.p != c.end && *c.p == expected) {  // compact JSON: no spaces
    ++c.p;
    return true;
  }
  skip_spaces(c);
  if (c.p == c.end || *c.p != expected) return false;
  ++c.p;
  return true;
}

/// Skips spaces; true when nothing else is left.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool at_end(Cursor& c) noexcept {
  skip_spaces(c);
  return c.p == c.end;
}

/// Bit i set: byte i of the 64 at `block` may not appear in a plain string
/// body (a quote, a backslash, a control byte or a byte >= 0x80), or lies at
/// or past `end`. Reads only [block, end).
[[nodiscard]] inline std::uint64_t stop_mask(const char* block, const char* end) noexcept {
  alignas(16) char tail[64];
  if (end - block < 64) {  // the last block: what lies past the end reads as 0, a stop
    std::memset(tail, 0, sizeof tail);
    std::memcpy(tail, block, static_cast<std::size_t>(end - block));
    block = tail;
  }
  std::uint64_t mask = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  for (int i = 0; i < 4; ++i) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * i));
    // Signed compare: bytes >= 0x80 are negative, so below 0x20 as well.
    const __m128i stop =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                     _mm_cmplt_epi8(v, space));
    mask |= std::uint64_t{static_cast<unsigned>(_mm_movemask_epi8(stop))} << (16 * i);
  }
#else
  for (int i = 0; i < 64; ++i) {
    const auto byte = static_cast<unsigned char>(block[i]);
    if (byte == '"' || byte == '\\' || byte < 0x20 || byte >= 0x80) mask |= std::uint64_t{1} << i;
  }
#endif
  return mask;
}

/// The first byte from `from` on that may not appear in a plain string body
/// (see stop_mask), or c.end. The mask of one 64-byte block is kept in the
/// cursor: the strings of a document are short and many, and most are found
/// with a shift and a bit scan in the block the last one was found in.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE const char* find_string_stop(Cursor& c,
                                                                    const char* from) noexcept {
  const char* p = from;
  while (p < c.end) {
    const char* block = c.base + ((p - c.base) & ~std::ptrdiff_t{63});
    if (block != c.block) {
      c.stops = stop_mask(block, c.end);
      c.block = block;
    }
    const std::uint64_t after = c.stops >> (p - block);
    if (after != 0) {
      const char* stop = p + __builtin_ctzll(after);
      return stop < c.end ? stop : c.end;
    }
    p = block + 64;
  }
  return c.end;
}

/// A plain string at the cursor (after spaces): its body, the cursor past it.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool plain_string(Cursor& c,
                                                         std::string_view& out) noexcept {
  if (!consume(c, '"')) return false;
  const char* stop = find_string_stop(c, c.p);
  if (stop == c.end || *stop != '"') return false;
  out = std::string_view(c.p, static_cast<std::size_t>(stop - c.p));
  c.p = stop + 1;
  return true;
}

/// find_string_stop() for one string of a predicted layout: a scan from
/// `from`, 32 bytes a step, without the cursor's block mask (which pays when
/// many short strings share a block, not for a string or two between long
/// spans compared whole).
[[nodiscard]] FILEBUILDER_PLAIN_INLINE const char* scan_string_stop(Cursor& c,
                                                                    const char* from) noexcept {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  const auto stops = [&](const char* at) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    // Signed compare: bytes >= 0x80 are negative, so below 0x20 as well.
    return static_cast<unsigned>(_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                     _mm_cmplt_epi8(v, space))));
  };
  const char* p = from;
  for (; c.end - p >= 32; p += 32) {
    const unsigned mask = stops(p) | (stops(p + 16) << 16);
    if (mask != 0) return p + __builtin_ctz(mask);
  }
  return find_string_stop(c, p);
#else
  return find_string_stop(c, from);
#endif
}

/// The body of a plain string whose opening quote the cursor is past; the
/// cursor past its closing quote.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool string_body(Cursor& c, std::string_view& out) noexcept {
  const char* stop = scan_string_stop(c, c.p);
  if (stop == c.end || *stop != '"') return false;
  out = std::string_view(c.p, static_cast<std::size_t>(stop - c.p));
  c.p = stop + 1;
  return true;
}

/// string_body() without the body.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool skip_string_body(Cursor& c) noexcept {
  std::string_view ignored;
  return string_body(c, ignored);
}

FILEBUILDER_PLAIN_INLINE std::uint64_t load64(const char* p) noexcept {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

/// The N - 1 bytes at `p` are those of `text`, compared 8 at a time (the
/// last 8 overlapping the ones before), with the text's words folded into
/// constants: g++ calls memcmp instead for some lengths.
template <std::size_t N, std::size_t... Word>
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool same_words(const char* p, const char (&text)[N],
                                                       std::index_sequence<Word...>) noexcept {
  constexpr std::size_t n = N - 1;
  return (((load64(p + 8 * Word) ^ load64(text + 8 * Word)) | ...) |
          (load64(p + n - 8) ^ load64(text + n - 8))) == 0;
}

/// Consumes the bytes of `literal` (known at compile time: a few loads and
/// compares) when they come next, exactly: no spaces skipped.
template <std::size_t N>
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool literal(Cursor& c, const char (&text)[N]) noexcept {
  constexpr std::size_t n = N - 1;
  if (static_cast<std::size_t>(c.end - c.p) < n) return false;
  if constexpr (n < 8) {
    if (std::memcmp(c.p, text, n) != 0) return false;
  } else {
    if (!same_words(c.p, text, std::make_index_sequence<n / 8>{})) return false;
  }
  c.p += n;
  return true;
}

/// Consumes `seen` when the same bytes come next. For predicted layouts:
/// `seen` is a span of an earlier document (or record) that was read from
/// the same state and found plain, so equal bytes are plain too and hold the
/// same tokens. An empty `seen` never matches.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool same_bytes(Cursor& c, std::string_view seen) noexcept {
  if (seen.empty() || static_cast<std::size_t>(c.end - c.p) < seen.size() ||
      std::memcmp(c.p, seen.data(), seen.size()) != 0)
    return false;
  c.p += seen.size();
  return true;
}

/// The room base64_string() needs at this cursor.
[[nodiscard]] inline std::size_t base64_room(const Cursor& c,
                                             std::size_t max_length = SIZE_MAX) noexcept {
  return base64::max_decoded_size(std::min(static_cast<std::size_t>(c.end - c.p),
                                           max_length == SIZE_MAX ? SIZE_MAX : max_length + 1));
}

/// A string of base64 at the cursor, decoded into `out` (room for
/// base64_room(c, max_length) bytes) in the same pass that finds its end; its
/// body, the bytes written, the cursor past it. Not plain when the string is
/// not a valid encoding or is longer than max_length. (The alphabet has no
/// quote, backslash or control byte: a string that decodes is plain.)
/// expected_length: a guess at the body's length, 0 for none
/// (base64::decode_until).
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool base64_string(
    Cursor& c, char* out, std::string_view& body, std::size_t& written,
    std::size_t max_length = SIZE_MAX, std::size_t expected_length = 0) noexcept {
  if (!consume(c, '"')) return false;
  const std::size_t window = std::min(static_cast<std::size_t>(c.end - c.p),
                                      max_length == SIZE_MAX ? SIZE_MAX : max_length + 1);
  const base64::PrefixResult result =
      base64::decode_until(std::string_view(c.p, window), '"', out, expected_length);
  if (result.error != ErrorCode::ok) return false;
  body = std::string_view(c.p, result.length);
  written = result.written;
  c.p += result.length + 1;
  return true;
}

/// The 8 bytes at `p` with digits as their values 0..9 (x ^ '0').
FILEBUILDER_PLAIN_INLINE std::uint64_t digit_values(const char* p) noexcept {
  return load64(p) ^ 0x3030303030303030u;
}

/// Bit 7 of byte i set: byte i of digit_values() was not a digit, set by
/// x >= 0x80 or by x + 0x76 >= 0x80. A carry out of a byte comes only from
/// one >= 0x8A, itself flagged, so the lowest flag is exact (the ones above
/// it may not be).
FILEBUILDER_PLAIN_INLINE std::uint64_t non_digit_flags(std::uint64_t digits) noexcept {
  return (digits | (digits + 0x7676767676767676u)) & 0x8080808080808080u;
}

/// A non-negative integer that fits in 64 bits, written as JSON writes it (no
/// sign, no leading zero, no fraction or exponent), at the cursor.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool plain_uint64(Cursor& c, std::uint64_t& out) noexcept {
  skip_spaces(c);
  const char* p = c.p;
  if (c.end - p >= 8) {
    // Up to 7 digits from one load, as values 0..9 a byte.
    const std::uint64_t digits = digit_values(p);
    const std::uint64_t flags = non_digit_flags(digits);
    const int length = flags != 0 ? __builtin_ctzll(flags) / 8 : 8;
    if (length >= 1 && length < 8) {
      if (*p == '0' && length > 1) return false;  // "01": not plain
      const char next = p[length];
      if (next == '.' || next == 'e' || next == 'E') return false;
      // The digits as an 8-digit number with leading zeros, folded pairwise:
      // 2 digits a byte, 4 a 16-bit lane, then all 8.
      std::uint64_t v = digits << (8 * (8 - length));
      v = (v * 10 + (v >> 8)) & 0x00FF00FF00FF00FFu;
      v = (v * 100 + (v >> 16)) & 0x0000FFFF0000FFFFu;
      out = (v * 10000 + (v >> 32)) & 0xFFFFFFFFu;
      c.p = p + length;
      return true;
    }
  }
  if (p == c.end || *p < '0' || *p > '9') return false;
  std::uint64_t value = 0;
  if (*p == '0') {
    ++p;
  } else {
    // 19 digits never overflow: no check for them.
    const char* unchecked = p + std::min<std::ptrdiff_t>(c.end - p, 19);
    for (; p != unchecked && *p >= '0' && *p <= '9'; ++p)
      value = value * 10 + static_cast<std::uint64_t>(*p - '0');
    for (; p != c.end && *p >= '0' && *p <= '9'; ++p) {
      const auto digit = static_cast<std::uint64_t>(*p - '0');
      if (value > (UINT64_MAX - digit) / 10) return false;  // out of range
      value = value * 10 + digit;
    }
  }
  // "01", "1.5", "1e3", "1x": not a plain integer (simdjson names the problem).
  if (p != c.end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E')) return false;
  out = value;
  c.p = p;
  return true;
}

/// Any number in JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
[[nodiscard]] inline bool skip_number(Cursor& c) noexcept {
#if defined(__SSE2__)
  // The common case from one mask of the next 16 bytes' digits: an unsigned
  // integer, or a decimal like Lambda's arrival timestamps (1700000000.013),
  // ending within them. Anything else (a sign, an exponent, a longer number,
  // a number broken or not there) is left to the reading below, which
  // decides.
  if (c.end - c.p >= 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c.p));
    // '0'..'9' become -128..-119: the only bytes below -118 (signed).
    const __m128i shifted = _mm_sub_epi8(bytes, _mm_set1_epi8(static_cast<char>('0' + 128)));
    const auto digits =
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmplt_epi8(shifted, _mm_set1_epi8(-118))));
    // The run of digits from bit `from` (at most up to bit 16).
    const auto run = [&](unsigned from) {
      return static_cast<unsigned>(__builtin_ctz(~(digits >> from)));
    };
    const unsigned integer = run(0);
    if (integer >= 1 && integer < 15 && (c.p[0] != '0' || integer == 1)) {
      unsigned length = integer;
      if (c.p[length] == '.') length += 1 + run(length + 1);  // "1." keeps length integer + 1
      // (length <= 16; c.p[length] is read only inside the 16 bytes.)
      if (length < 16 && length != integer + 1 && c.p[length] != 'e' && c.p[length] != 'E') {
        c.p += length;
        return true;
      }
    }
  }
#endif
  const char* p = c.p;
  const auto digits = [&] {
    const char* start = p;
    // 8 at a time (an arrival timestamp has 10 before its point), then one by one.
    for (; c.end - p >= 8; p += 8) {
      const std::uint64_t flags = non_digit_flags(digit_values(p));
      if (flags != 0) return (p += __builtin_ctzll(flags) / 8) != start;
    }
    while (p != c.end && *p >= '0' && *p <= '9') ++p;
    return p != start;
  };
  if (p != c.end && *p == '-') ++p;
  if (p != c.end && *p == '0')
    ++p;
  else if (!digits())
    return false;
  if (p != c.end && *p == '.') {
    ++p;
    if (!digits()) return false;
  }
  if (p != c.end && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p != c.end && (*p == '+' || *p == '-')) ++p;
    if (!digits()) return false;
  }
  c.p = p;
  return true;
}

[[nodiscard]] inline bool skip_literal(Cursor& c, std::string_view word) noexcept {
  if (static_cast<std::size_t>(c.end - c.p) < word.size() ||
      std::memcmp(c.p, word.data(), word.size()) != 0)
    return false;
  c.p += word.size();
  return true;
}

/// Any plain value at the cursor, `depth` levels deep already.
[[nodiscard]] inline bool skip_value(Cursor& c, unsigned depth) noexcept;

/// skip_value() with strings, the common case, inline.
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool skip_member_value(Cursor& c, unsigned depth) noexcept {
  if (c.p != c.end && *c.p == '"') {
    std::string_view ignored;
    return plain_string(c, ignored);
  }
  return skip_value(c, depth);
}

/// key == Literal, with the length known at compile time (so that the
/// comparison is a few loads, not a call).
template <std::size_t N>
[[nodiscard]] FILEBUILDER_PLAIN_INLINE bool key_is(std::string_view key,
                                                   const char (&literal)[N]) noexcept {
  return key.size() == N - 1 && std::memcmp(key.data(), literal, N - 1) == 0;
}

/// The members of an object whose '{' was just consumed: calls
/// member(key, cursor) with the cursor before each value; member must consume
/// the value and return whether it was plain. The cursor ends past the '}'.
template <typename Member>
[[nodiscard]] bool object_members(Cursor& c, Member&& member) {
  if (consume(c, '}')) return true;
  while (true) {
    std::string_view key;
    if (!plain_string(c, key) || !consume(c, ':') || !member(key, c)) return false;
    if (consume(c, ',')) continue;
    return consume(c, '}');
  }
}

/// The elements of an array whose '[' was just consumed, as object_members.
template <typename Element>
[[nodiscard]] bool array_elements(Cursor& c, Element&& element) {
  if (consume(c, ']')) return true;
  while (true) {
    if (!element(c)) return false;
    if (consume(c, ',')) continue;
    return consume(c, ']');
  }
}

inline bool skip_value(Cursor& c, unsigned depth) noexcept {
  skip_spaces(c);
  if (c.p == c.end) return false;
  switch (*c.p) {
    case '"': {
      std::string_view ignored;
      return plain_string(c, ignored);
    }
    case '{':
      if (depth + 1 > max_depth) return false;
      ++c.p;
      return object_members(
          c, [depth](std::string_view, Cursor& inner) { return skip_value(inner, depth + 1); });
    case '[':
      if (depth + 1 > max_depth) return false;
      ++c.p;
      return array_elements(c, [depth](Cursor& inner) { return skip_value(inner, depth + 1); });
    case 't': return skip_literal(c, "true");
    case 'f': return skip_literal(c, "false");
    case 'n': return skip_literal(c, "null");
    default: return skip_number(c);
  }
}

}  // namespace filebuilder::detail::plain_json
