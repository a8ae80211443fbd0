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
#include "filebuilder/source/envelope.hpp"

namespace filebuilder::source {

/// Reads the records of a Lambda Kinesis event. Returns bad_event when the
/// document is not one (no "Records" array); records whose own fields are
/// unusable come back with their error set.
[[nodiscard]] inline ErrorCode read_kinesis_event(simdjson::ondemand::parser& parser,
                                                  simdjson::padded_string_view event,
                                                  std::vector<EnvelopeRecord>& out) {
  return detail::read_envelope(
      parser, event, "Records", out, [](simdjson::ondemand::object& item, EnvelopeRecord& record) {
        simdjson::ondemand::object kinesis;
        if (item.find_field_unordered("kinesis").get_object().get(kinesis) != simdjson::SUCCESS)
          return ErrorCode::bad_event;
        const ErrorCode error = detail::string_field(kinesis, "sequenceNumber", record.id);
        return error != ErrorCode::ok ? error : detail::string_field(kinesis, "data", record.data);
      });
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
