// filebuilder: the Lambda Kinesis event envelope and its batchItemFailures reply.
//
//   {"Records":[{"kinesis":{"sequenceNumber":"4959...","data":"<base64>",...},
//                "eventSource":"aws:kinesis",...},...]}
//   -> {"batchItemFailures":[{"itemIdentifier":"4959..."},...]}
#pragma once

#include <simdjson.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/reassembler.hpp"

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

}  // namespace detail

/// Reads the records of a Lambda Kinesis event. Returns bad_event when the
/// document is not one (no "Records" array); records whose own fields are
/// unusable come back with their error set.
[[nodiscard]] inline ErrorCode read_kinesis_event(simdjson::ondemand::parser& parser,
                                                  simdjson::padded_string_view event,
                                                  std::vector<EnvelopeRecord>& out) {
  using namespace simdjson;
  out.clear();
  ondemand::document doc;
  ondemand::object root;
  ondemand::array records;
  if (parser.iterate(event).get(doc) != SUCCESS || doc.get_object().get(root) != SUCCESS ||
      root.find_field_unordered("Records").get_array().get(records) != SUCCESS)
    return ErrorCode::bad_event;
  for (auto element : records) {
    ondemand::value value;
    if (element.get(value) != SUCCESS) return ErrorCode::bad_event;  // the array itself is broken
    EnvelopeRecord record;
    ondemand::object item;
    ondemand::object kinesis;
    if (value.get_object().get(item) != SUCCESS ||
        item.find_field_unordered("kinesis").get_object().get(kinesis) != SUCCESS) {
      record.error = ErrorCode::bad_event;
    } else {
      record.error = detail::string_field(kinesis, "sequenceNumber", record.id);
      if (record.error == ErrorCode::ok)
        record.error = detail::string_field(kinesis, "data", record.data);
    }
    out.push_back(record);
  }
  return ErrorCode::ok;
}

/// Appends {"batchItemFailures":[...]}: every failed record, in order, once.
/// Rejected records are never listed: redelivering them cannot help.
inline void write_kinesis_reply(std::span<const EnvelopeRecord> records,
                                std::span<const RecordOutcome> outcomes, std::string& out) {
  out += "{\"batchItemFailures\":[";
  bool first = true;
  std::string_view last;
  for (std::size_t i = 0; i < records.size() && i < outcomes.size(); ++i) {
    if (outcomes[i].outcome != Outcome::failed) continue;
    if (!first && records[i].id == last) continue;  // KPL user records share their parent's id
    if (!first) out += ',';
    out += "{\"itemIdentifier\":";
    filebuilder::detail::append_json_string(out, records[i].id);
    out += '}';
    first = false;
    last = records[i].id;
  }
  out += "]}";
}

}  // namespace filebuilder::source
