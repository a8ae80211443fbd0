// filebuilder: one stream record = one chunk, parsed strictly with simdjson on-demand.
//
//   {"putEndpoint": URL, "partition": i, "partitionCount": n, "content": base64}
//
// parse() checks the JSON and the fields; check_limits() the configured limits.
// The base64 of `content` and the endpoint policy are checked by the Reassembler,
// which decodes `content` straight into its part buffer.
//
// parse_plain() is the fast path for the common record (the four fields, no
// escapes; detail/plain_json.hpp): no copy, no simdjson, and `content` decoded
// in the pass that finds its end. It only ever says "yes: here are the fields
// and the bytes" or "not plain"; the Reassembler then uses parse(), which
// names any error.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/plain_json.hpp"
#include "filebuilder/error.hpp"

namespace filebuilder {

/// Limits on what one record may ask of us. Defaults as in CONTRACT.md.
struct Limits {
  std::uint64_t max_partitions = 100'000;
  std::uint64_t max_part_bytes = std::uint64_t{1} << 20;  // decoded
  std::uint64_t max_file_bytes = std::uint64_t{5} << 30;  // S3's single-PUT limit
};

/// The deepest JSON nesting a chunk record may have (the chunk itself is depth 1).
inline constexpr std::size_t max_chunk_depth = 8;

/// A parsed chunk. The views point into the parser and stay valid until its next parse().
struct Chunk {
  std::string_view put_endpoint;
  std::uint64_t partition = 0;
  std::uint64_t partition_count = 0;
  std::string_view content;  // base64, as in the record
};

/// The first limit a chunk breaks, or ok.
[[nodiscard]] inline ErrorCode check_limits(const Chunk& chunk, const Limits& limits) noexcept {
  if (chunk.partition_count > limits.max_partitions) return ErrorCode::too_many_partitions;
  // An upper bound is enough to refuse early; the exact size is known after decoding.
  if (base64::decoded_size(chunk.content) > limits.max_part_bytes) return ErrorCode::part_too_large;
  if (base64::decoded_size(chunk.content) > limits.max_file_bytes) return ErrorCode::file_too_large;
  return ErrorCode::ok;
}

/// What parse_plain() may know from the records before (the Reassembler's).
struct PlainHint {
  /// An endpoint without any byte that ends a plain string body (a quote, a
  /// backslash, a control byte or a byte >= 0x80), or empty: the last one
  /// seen. A record whose endpoint has the same bytes is recognised by one
  /// comparison.
  std::string_view endpoint;
  /// Set by parse_plain(): the record's endpoint is `endpoint`.
  bool same_endpoint = false;
  /// A guess at the length of the content's base64 (the last one's), or 0
  /// (base64::decode_until: a right guess saves searching for its end).
  std::size_t content_length = 0;
};

/// Parses chunk records. Reuse one parser for many records (it keeps its buffers);
/// one thread at a time, like simdjson's parser.
class ChunkParser {
 public:
  ChunkParser() = default;

  /// Parses `record` (any memory: it is copied into a padded buffer first).
  [[nodiscard]] ErrorCode parse(std::string_view record, Chunk& out) {
    const std::size_t needed = record.size() + simdjson::SIMDJSON_PADDING;
    if (buffer_.size() < needed) buffer_.resize(std::max(needed, buffer_.size() * 2));
    if (!record.empty()) std::memcpy(buffer_.data(), record.data(), record.size());
    std::memset(buffer_.data() + record.size(), 0, simdjson::SIMDJSON_PADDING);
    return parse_padded(simdjson::padded_string_view(buffer_.data(), record.size(), buffer_.size()),
                        out);
  }

  /// Parses a record that already sits in a padded buffer (no copy).
  [[nodiscard]] ErrorCode parse_padded(simdjson::padded_string_view record, Chunk& out);

  /// The fast path: true when `record` is a plain chunk (the four fields once
  /// each, in any order, nothing else; plain strings and integers; a valid
  /// partition; a content of valid base64 that decodes to at most
  /// max_part_bytes), with `out` filled in as parse() fills it and the
  /// content decoded into `part` from offset `at` on (`part` grown as
  /// needed, its first `at` bytes kept), `part_size` bytes. Else false,
  /// `out` unspecified, and parse() is the one to ask (it names the error).
  /// A hint, if given, is used for the producers' layout and tells whether
  /// the endpoint is the one seen before.
  [[nodiscard]] static bool parse_plain(std::string_view record, std::uint64_t max_part_bytes,
                                        Chunk& out, std::string& part, std::size_t& part_size,
                                        PlainHint* hint = nullptr, std::size_t at = 0);

 private:
  ErrorCode classify_failure(simdjson::padded_string_view record);

  simdjson::ondemand::parser parser_{};
  std::string buffer_;
  std::unique_ptr<simdjson::dom::parser> validator_;  // only on the error path
};

// ---------------------------------------------------------------------------

namespace detail {

enum ChunkField : unsigned {
  field_endpoint = 1,
  field_partition = 2,
  field_count = 4,
  field_content = 8
};

// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
[[nodiscard]] constexpr bool is_json_number(std::string_view token) noexcept {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < token.size() && token[i] >= '0' && token[i] <= '9') ++i;
    return i - start;
  };
  if (i < token.size() && token[i] == '-') ++i;
  if (i < token.size() && token[i] == '0')
    ++i;
  else if (digits() == 0)
    return false;
  if (i < token.size() && token[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
    ++i;
    if (i < token.size() && (token[i] == '+' || token[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == token.size();
}

inline ErrorCode read_index(simdjson::ondemand::value value, std::uint64_t& out,
                            ErrorCode invalid) noexcept {
  simdjson::ondemand::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return ErrorCode::invalid_json;
  if (type != simdjson::ondemand::json_type::number) return ErrorCode::wrong_type;
  // Negative, fractional, exponent or out-of-range numbers are all "not a
  // non-negative integer" (1.0 included: producers send integers).
  if (value.get_uint64().get(out) == simdjson::SUCCESS) return ErrorCode::ok;
  std::string_view token = value.raw_json_token();
  while (!token.empty() && (token.back() == ' ' || token.back() == '\n' || token.back() == '\r' ||
                            token.back() == '\t'))
    token.remove_suffix(1);
  return is_json_number(token) ? invalid : ErrorCode::invalid_json;
}

inline ErrorCode read_string(simdjson::ondemand::value value, std::string_view& out) noexcept {
  simdjson::ondemand::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return ErrorCode::invalid_json;
  if (type != simdjson::ondemand::json_type::string) return ErrorCode::wrong_type;
  if (value.get_string().get(out) != simdjson::SUCCESS) return ErrorCode::invalid_json;
  return ErrorCode::ok;
}

}  // namespace detail

inline ErrorCode ChunkParser::parse_padded(simdjson::padded_string_view record, Chunk& out) {
  using namespace simdjson;
  if (parser_.max_depth() != max_chunk_depth) {
    if (parser_.allocate(std::max<std::size_t>(record.size(), 4096), max_chunk_depth) != SUCCESS)
      return ErrorCode::store_full;
  }
  ondemand::document doc;
  if (parser_.iterate(record).get(doc) != SUCCESS) return classify_failure(record);
  ondemand::object object;
  if (doc.get_object().get(object) != SUCCESS) return classify_failure(record);

  // Inside an object a failure is never "not an object".
  const auto structural_error = [&] {
    const ErrorCode error = classify_failure(record);
    return error == ErrorCode::not_an_object ? ErrorCode::invalid_json : error;
  };
  unsigned seen = 0;
  bool skipped_unknown = false;
  Chunk chunk;
  for (auto field_result : object) {
    ondemand::field field;
    if (std::move(field_result).get(field) != SUCCESS) return structural_error();
    std::string_view key;
    // Keys are compared unescaped, so {"put\u0045ndpoint": ...} is putEndpoint too.
    if (field.unescaped_key().get(key) != SUCCESS) return structural_error();
    unsigned which = 0;
    ErrorCode error = ErrorCode::ok;
    if (key == "putEndpoint") {
      which = detail::field_endpoint;
      error = detail::read_string(field.value(), chunk.put_endpoint);
    } else if (key == "partition") {
      which = detail::field_partition;
      error = detail::read_index(field.value(), chunk.partition, ErrorCode::invalid_partition);
    } else if (key == "partitionCount") {
      which = detail::field_count;
      error = detail::read_index(field.value(), chunk.partition_count,
                                 ErrorCode::invalid_partition_count);
    } else if (key == "content") {
      which = detail::field_content;
      error = detail::read_string(field.value(), chunk.content);
    } else {
      skipped_unknown = true;  // ignored, and skipped lazily by the iterator
      continue;
    }
    // The first problem in document order is the one reported.
    if (error == ErrorCode::invalid_json) return structural_error();
    if (error != ErrorCode::ok) return error;
    if (seen & which) return ErrorCode::duplicate_field;
    seen |= which;
  }
  // A location left after the object means trailing content ("{...} {...}").
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == SUCCESS) return ErrorCode::invalid_json;
  // On-demand validates what it reads (keys, separators, the known values) but
  // skips unknown values without validating them: check those records fully.
  if (skipped_unknown) {
    const ErrorCode structural = classify_failure(record);
    if (structural != ErrorCode::not_an_object) return structural;
  }

  if (seen != (detail::field_endpoint | detail::field_partition | detail::field_count |
               detail::field_content))
    return ErrorCode::missing_field;
  if (chunk.partition_count == 0) return ErrorCode::invalid_partition_count;
  if (chunk.partition >= chunk.partition_count) return ErrorCode::partition_out_of_range;
  out = chunk;
  return ErrorCode::ok;
}

namespace detail {

// The content of a plain chunk at the cursor, decoded into `part` at `at`.
[[gnu::always_inline]] inline bool plain_content(plain_json::Cursor& c,
                                                 std::uint64_t max_part_bytes,
                                                 std::string_view& content, std::string& part,
                                                 std::size_t& part_size, std::size_t at,
                                                 const PlainHint* hint) {
  namespace plain = plain_json;
  // Longer content cannot decode to max_part_bytes or fewer: the decode stops
  // there. 1.5 n + 4 >= 4 ceil(n / 3), the exact length, and needs no
  // division (g++ emits one here); the decoded size is checked exactly below.
  const std::size_t max_length =
      max_part_bytes >= SIZE_MAX / 4 ? SIZE_MAX : max_part_bytes + max_part_bytes / 2 + 4;
  const std::size_t room = at + plain::base64_room(c, max_length);
  if (part.size() < room) part.resize(std::max(room, part.size() * 2));
  return plain::base64_string(c, part.data() + at, content, part_size, max_length,
                              hint != nullptr ? hint->content_length : 0) &&
         part_size <= max_part_bytes;
}

// The layout producers write (`filebuilder split`, the README's):
//   {"putEndpoint":"URL","partition":I,"partitionCount":N,"content":"BASE64"}
// No spaces around the punctuation (the numbers may have spaces before
// them, as plain_uint64 reads them). True with `chunk` filled in; false
// (the cursor anywhere) when the record is not in this layout.
[[gnu::always_inline]] inline bool predicted_chunk(std::string_view record,
                                                   std::uint64_t max_part_bytes, Chunk& chunk,
                                                   std::string& part, std::size_t& part_size,
                                                   PlainHint* hint, std::size_t at) {
  namespace plain = plain_json;
  plain::Cursor c(record);
  if (!plain::literal(c, R"({"putEndpoint":")")) return false;
  const char* start = c.p;
  if (hint != nullptr && plain::same_bytes(c, hint->endpoint) && c.p != c.end && *c.p == '"') {
    chunk.put_endpoint = std::string_view(start, hint->endpoint.size());
    hint->same_endpoint = true;
    ++c.p;
  } else {
    c.p = start;
    if (!plain::string_body(c, chunk.put_endpoint)) return false;
  }
  return plain::literal(c, R"(,"partition":)") && plain::plain_uint64(c, chunk.partition) &&
         plain::literal(c, R"(,"partitionCount":)") &&
         plain::plain_uint64(c, chunk.partition_count) && plain::literal(c, R"(,"content":)") &&
         plain_content(c, max_part_bytes, chunk.content, part, part_size, at, hint) &&
         plain::literal(c, "}") && plain::at_end(c);
}

}  // namespace detail

inline bool ChunkParser::parse_plain(std::string_view record, std::uint64_t max_part_bytes,
                                     Chunk& out, std::string& part, std::size_t& part_size,
                                     PlainHint* hint, std::size_t at) {
  namespace plain = detail::plain_json;
  // `out` is filled in as the fields are read: a Chunk built aside and then
  // copied is read back with wide loads that its narrow stores cannot
  // forward to (a stall per record, measured).
  Chunk& chunk = out;
  if (hint != nullptr) hint->same_endpoint = false;
  if (detail::predicted_chunk(record, max_part_bytes, chunk, part, part_size, hint, at))
    return chunk.partition < chunk.partition_count;  // else parse() names it
  if (hint != nullptr) hint->same_endpoint = false;
  chunk = Chunk{};
  plain::Cursor cursor(record);
  if (!plain::consume(cursor, '{')) return false;
  unsigned seen = 0;
  const bool members = plain::object_members(cursor, [&](std::string_view key, plain::Cursor& c) {
    unsigned which = 0;
    bool ok = false;
    if (plain::key_is(key, "putEndpoint")) {
      which = detail::field_endpoint;
      ok = plain::plain_string(c, chunk.put_endpoint);
    } else if (plain::key_is(key, "partition")) {
      which = detail::field_partition;
      ok = plain::plain_uint64(c, chunk.partition);
    } else if (plain::key_is(key, "partitionCount")) {
      which = detail::field_count;
      ok = plain::plain_uint64(c, chunk.partition_count);
    } else if (plain::key_is(key, "content")) {
      which = detail::field_content;
      ok = detail::plain_content(c, max_part_bytes, chunk.content, part, part_size, at, hint);
    }
    if (!ok || (seen & which) != 0) return false;  // unknown or repeated fields: parse()
    seen |= which;
    return true;
  });
  if (!members || !plain::at_end(cursor)) return false;
  if (seen != (detail::field_endpoint | detail::field_partition | detail::field_count |
               detail::field_content))
    return false;
  return chunk.partition < chunk.partition_count;  // else parse() names it
}

// Full validation with the DOM parser: tells invalid_json and too_deep apart
// from a valid document. Returns not_an_object when the record is valid JSON
// (the caller knows whether it is an object).
inline ErrorCode ChunkParser::classify_failure(simdjson::padded_string_view record) {
  if (!validator_) {
    validator_ = std::make_unique<simdjson::dom::parser>();
    if (validator_->allocate(4096, max_chunk_depth) != simdjson::SUCCESS)
      return ErrorCode::invalid_json;
  }
  simdjson::dom::element element;
  const auto error = validator_->parse(record.data(), record.size(), false).get(element);
  if (error == simdjson::DEPTH_ERROR) return ErrorCode::too_deep;
  if (error != simdjson::SUCCESS) return ErrorCode::invalid_json;
  return ErrorCode::not_an_object;  // valid JSON: the caller tells object from not
}

}  // namespace filebuilder
