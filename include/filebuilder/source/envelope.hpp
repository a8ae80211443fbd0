// filebuilder: what the event envelopes have in common: an array of records,
// each with an id and base64 data, read with simdjson on-demand.
#pragma once

#include <simdjson.h>

#include <string_view>
#include <vector>

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

}  // namespace detail

}  // namespace filebuilder::source
