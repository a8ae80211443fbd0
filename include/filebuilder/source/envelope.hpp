// filebuilder: what the event envelopes have in common: an array of records,
// each with an id and base64 data, read with simdjson on-demand.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/plain_json.hpp"
#include "filebuilder/error.hpp"

namespace filebuilder::source {

/// One record of an event: views into the event parser, valid until its next read.
struct EnvelopeRecord {
  std::string_view id;    // Kinesis: sequenceNumber; Firehose: recordId
  std::string_view data;  // base64 of the record bytes
  /// ok, or why this record's envelope is unusable (bad_event: a field missing
  /// or mistyped). Such a record is rejected; the others go on.
  ErrorCode error = ErrorCode::ok;
};

/// The decoded `data` of every record of an event, in one buffer (reused
/// from event to event).
struct DecodedRecords {
  struct Span {
    std::size_t offset = 0;
    std::size_t size = 0;
    bool ok = true;                  // false: the data is not base64
    std::size_t error_position = 0;  // then where it breaks
    bool staged = false;             // read_plain_event() handed the bytes on (size 0)
    std::size_t staged_index = 0;    // then: the stage took as many records before it
  };
  std::string bytes;
  std::vector<Span> spans;  // one per record
  /// The length of the last base64 data read_plain_event() decoded: its guess
  /// for the next (records of one stream tend to be the same size).
  std::size_t last_data_length = 0;

  [[nodiscard]] std::string_view of(std::size_t record) const noexcept {
    return std::string_view(bytes.data() + spans[record].offset, spans[record].size);
  }
  /// Makes room for `size` bytes in all (keeping what is there).
  void reserve(std::size_t size) {
    if (bytes.size() < size) bytes.resize(std::max(size, bytes.size() * 2));
  }
};

/// Decodes the data of each record (a failure is kept in its span).
inline void decode_records(std::span<const EnvelopeRecord> records, DecodedRecords& out) {
  std::size_t capacity = 0;
  for (const EnvelopeRecord& record : records)
    capacity += base64::max_decoded_size(record.data.size());
  out.reserve(capacity);
  out.spans.clear();
  std::size_t offset = 0;
  for (const EnvelopeRecord& record : records) {
    DecodedRecords::Span& span = out.spans.emplace_back();
    span.offset = offset;
    if (record.error != ErrorCode::ok) continue;
    const base64::DecodeResult result = base64::decode(record.data, out.bytes.data() + offset);
    if (result.error != ErrorCode::ok) {
      span.ok = false;
      span.error_position = result.position;
      continue;
    }
    span.size = result.written;
    offset += result.written;
  }
}

namespace detail {

inline ErrorCode string_field(simdjson::ondemand::object& object, std::string_view key,
                              std::string_view& out) noexcept {
  simdjson::ondemand::value value;
  if (object.find_field_unordered(key).get(value) != simdjson::SUCCESS) return ErrorCode::bad_event;
  if (value.get_string().get(out) != simdjson::SUCCESS) return ErrorCode::bad_event;
  return ErrorCode::ok;
}

/// Reads the array `array_key` of the event's root object, calling
/// read_item(object, record) for each element that is an object. Returns
/// bad_event when the document has no such array or the array is broken.
template <typename ReadItem>
[[nodiscard]] ErrorCode read_envelope(simdjson::ondemand::parser& parser,
                                      simdjson::padded_string_view event,
                                      std::string_view array_key, std::vector<EnvelopeRecord>& out,
                                      ReadItem&& read_item) {
  using namespace simdjson;
  out.clear();
  ondemand::document doc;
  ondemand::object root;
  ondemand::array records;
  if (parser.iterate(event).get(doc) != SUCCESS || doc.get_object().get(root) != SUCCESS ||
      root.find_field_unordered(array_key).get_array().get(records) != SUCCESS)
    return ErrorCode::bad_event;
  for (auto element : records) {
    ondemand::value value;
    if (element.get(value) != SUCCESS) return ErrorCode::bad_event;  // the array itself is broken
    EnvelopeRecord record;
    ondemand::object item;
    if (value.get_object().get(item) != SUCCESS) {
      record.error = ErrorCode::bad_event;
    } else {
      record.error = read_item(item, record);
    }
    out.push_back(record);
  }
  return ErrorCode::ok;
}

namespace plain = filebuilder::detail::plain_json;

// The record's data, decoded at the end of `out`.
inline bool plain_data(plain::Cursor& c, EnvelopeRecord& record, DecodedRecords& out) {
  const std::size_t offset = out.spans.back().offset;
  out.reserve(offset + plain::base64_room(c));
  std::size_t written = 0;
  if (!plain::base64_string(c, out.bytes.data() + offset, record.data, written, SIZE_MAX,
                            out.last_data_length))
    return false;
  out.spans.back().size = written;
  out.last_data_length = record.data.size();
  return true;
}

// {"sequenceNumber": plain, "data": base64, ...}: each once.
inline bool plain_kinesis_fields(plain::Cursor& c, EnvelopeRecord& record, DecodedRecords& out) {
  bool id = false, data = false;
  if (!plain::consume(c, '{')) return false;
  const bool ok = plain::object_members(c, [&](std::string_view key, plain::Cursor& value) {
    if (plain::key_is(key, "sequenceNumber"))
      return !std::exchange(id, true) && plain::plain_string(value, record.id);
    if (plain::key_is(key, "data"))
      return !std::exchange(data, true) && plain_data(value, record, out);
    return plain::skip_member_value(value, 4);
  });
  return ok && id && data;
}

// {"kinesis": {...}, ...}: "kinesis" once.
inline bool plain_kinesis_record(plain::Cursor& c, EnvelopeRecord& record, DecodedRecords& out) {
  bool kinesis = false;
  if (!plain::consume(c, '{')) return false;
  const bool ok = plain::object_members(c, [&](std::string_view key, plain::Cursor& value) {
    if (plain::key_is(key, "kinesis"))
      return !std::exchange(kinesis, true) && plain_kinesis_fields(value, record, out);
    return plain::skip_member_value(value, 3);
  });
  return ok && kinesis;
}

// The predicted layout of a Lambda Kinesis record, the one the Lambda service
// (and `filebuilder split`) writes: these keys in this order, no spaces.
//   H  {"kinesis":{"kinesisSchemaVersion":"S","partitionKey":"S","sequenceNumber":"
//      the sequence number, then ","data": and the data
//   M  ,"approximateArrivalTimestamp":N},"eventSource":"S","eventVersion":"S","eventID":"
//      the event id
//   T  ,"eventName":"S","invokeIdentityArn":"S","awsRegion":"S","eventSourceARN":"S"}
// Each of H, M and T is either the same bytes as in the record before (read
// the same way, so plain and holding the same tokens) or read here, key by
// key. Records of one event often differ in M's arrival timestamp alone: a
// new M is read as the literal, the number, then R (the rest of M), itself
// the same bytes as the R last read or read here. A record in any other
// layout is read by plain_kinesis_record(). Both give the same
// sequenceNumber and data.
struct KinesisLayout {
  // Of the last record read this way (R: the last whose M was read), or empty.
  std::string_view head, middle, middle_rest, tail;
};

inline bool predicted_head(plain::Cursor& c) noexcept {
  return plain::literal(c, R"({"kinesis":{"kinesisSchemaVersion":")") &&
         plain::skip_string_body(c) && plain::literal(c, R"(,"partitionKey":")") &&
         plain::skip_string_body(c) && plain::literal(c, R"(,"sequenceNumber":")");
}

inline bool predicted_middle_rest(plain::Cursor& c) noexcept {
  return plain::literal(c, R"(},"eventSource":")") && plain::skip_string_body(c) &&
         plain::literal(c, R"(,"eventVersion":")") && plain::skip_string_body(c) &&
         plain::literal(c, R"(,"eventID":")");
}

inline bool predicted_tail(plain::Cursor& c) noexcept {
  return plain::literal(c, R"(,"eventName":")") && plain::skip_string_body(c) &&
         plain::literal(c, R"(,"invokeIdentityArn":")") && plain::skip_string_body(c) &&
         plain::literal(c, R"(,"awsRegion":")") && plain::skip_string_body(c) &&
         plain::literal(c, R"(,"eventSourceARN":")") && plain::skip_string_body(c) &&
         plain::literal(c, "}");
}

// One segment: the bytes seen last time, or read by `read`; `seen` becomes it.
template <typename Read>
[[gnu::always_inline]] inline bool predicted_segment(plain::Cursor& c, std::string_view& seen,
                                                     Read&& read) noexcept {
  const char* start = c.p;
  if (plain::same_bytes(c, seen)) return true;
  if (!read(c)) return false;
  seen = std::string_view(start, static_cast<std::size_t>(c.p - start));
  return true;
}

inline bool predicted_middle(plain::Cursor& c, KinesisLayout& layout) noexcept {
  return plain::literal(c, R"(,"approximateArrivalTimestamp":)") && plain::skip_number(c) &&
         predicted_segment(c, layout.middle_rest, predicted_middle_rest);
}

// A record in the predicted layout (see KinesisLayout), its data decoded at
// the end of `out`; false (the cursor anywhere) for any other.
inline bool predicted_kinesis_record(plain::Cursor& c, EnvelopeRecord& record, DecodedRecords& out,
                                     KinesisLayout& layout) {
  // A segment read here stays a valid prediction even if the record then
  // fails: it was read from the same state as the next record's will be.
  std::string_view event_id;
  return predicted_segment(c, layout.head, predicted_head) && plain::string_body(c, record.id) &&
         plain::literal(c, R"(,"data":)") && plain_data(c, record, out) &&
         predicted_segment(c, layout.middle,
                           [&](plain::Cursor& m) { return predicted_middle(m, layout); }) &&
         plain::string_body(c, event_id) && predicted_segment(c, layout.tail, predicted_tail);
}

// {"recordId": plain, "data": base64, ...}: each once.
inline bool plain_firehose_record(plain::Cursor& c, EnvelopeRecord& record, DecodedRecords& out) {
  bool id = false, data = false;
  if (!plain::consume(c, '{')) return false;
  const bool ok = plain::object_members(c, [&](std::string_view key, plain::Cursor& value) {
    if (plain::key_is(key, "recordId"))
      return !std::exchange(id, true) && plain::plain_string(value, record.id);
    if (plain::key_is(key, "data"))
      return !std::exchange(data, true) && plain_data(value, record, out);
    return plain::skip_member_value(value, 3);
  });
  return ok && id && data;
}

}  // namespace detail

/// What read_plain_event() found.
enum class PlainEvent : std::uint8_t {
  not_plain,  // not in the plain subset, or not as expected: use simdjson
  kinesis,    // a Lambda Kinesis event ("Records")
  firehose,   // a Firehose transformation event ("records")
  other,      // a plain object with neither array (a bare chunk, say)
};

/// read_plain_event() without a stage: every record's bytes are kept.
struct KeepAllRecords {
  constexpr bool operator()(std::string_view) const noexcept { return false; }
};

/// The fast path of event reading (detail/plain_json.hpp): one pass over a
/// plain event, every record well formed, its data decoded into `decoded` on
/// the way, without simdjson. Then `out` and `decoded` are what
/// read_kinesis_event() or read_firehose_event() and decode_records() give.
/// Anything unexpected (an escape, a record lacking its id, data that is not
/// base64, two record arrays, ...) is not_plain: ask those instead.
///
/// stage(bytes) is offered each record's decoded data as soon as it is read,
/// while it is still in the cache; when it returns true it has taken what it
/// needs: that span is marked staged (staged_index counts the records taken
/// before it in this event), holds no bytes, and the next record's
/// data is decoded over them (so an event of small records is decoded within
/// a few KB). Whatever it took belongs to a plain event only when the call
/// returns kinesis or firehose.
template <typename Stage = KeepAllRecords>
[[nodiscard]] PlainEvent read_plain_event(std::string_view event, std::vector<EnvelopeRecord>& out,
                                          DecodedRecords& decoded, Stage&& stage = {}) {
  namespace plain = filebuilder::detail::plain_json;
  out.clear();
  decoded.spans.clear();
  plain::Cursor c(event);
  if (!plain::consume(c, '{')) return PlainEvent::not_plain;
  PlainEvent kind = PlainEvent::other;
  const bool ok = plain::object_members(c, [&](std::string_view key, plain::Cursor& value) {
    const bool kinesis = plain::key_is(key, "Records");
    if (!kinesis && key != "records") return plain::skip_member_value(value, 1);
    if (kind != PlainEvent::other) return false;  // both arrays, or one twice
    kind = kinesis ? PlainEvent::kinesis : PlainEvent::firehose;
    if (!plain::consume(value, '[')) return false;
    detail::KinesisLayout layout;
    std::size_t staged_records = 0;
    const auto read_record = [&](plain::Cursor& item, EnvelopeRecord& record) {
      if (!kinesis) return detail::plain_firehose_record(item, record, decoded);
      const char* start = item.p;
      if (detail::predicted_kinesis_record(item, record, decoded, layout)) return true;
      item.p = start;  // another layout: read it key by key
      record = EnvelopeRecord{};
      decoded.spans.back().size = 0;
      return detail::plain_kinesis_record(item, record, decoded);
    };
    return plain::array_elements(value, [&](plain::Cursor& item) {
      EnvelopeRecord& record = out.emplace_back();
      const std::size_t offset =
          decoded.spans.empty() ? 0 : decoded.spans.back().offset + decoded.spans.back().size;
      DecodedRecords::Span& span = decoded.spans.emplace_back();
      span.offset = offset;
      if (!read_record(item, record)) return false;
      if (stage(decoded.of(decoded.spans.size() - 1))) {
        span.staged = true;
        span.staged_index = staged_records++;
        span.size = 0;
      }
      return true;
    });
  });
  if (!ok || !plain::at_end(c)) return PlainEvent::not_plain;
  return kind;
}

}  // namespace filebuilder::source
