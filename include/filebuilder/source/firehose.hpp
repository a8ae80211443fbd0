// filebuilder: the Firehose data-transformation event and its reply.
//
//   {"invocationId":"...","records":[{"recordId":"...","data":"<base64>",...},...]}
//   -> {"records":[{"recordId":"...","result":"Dropped|Ok|ProcessingFailed","data":"..."},...]}
//
// Every recordId comes back exactly once, in the event's order (CONTRACT.md):
// accepted and duplicate -> Dropped; uploaded -> Ok with an audit line;
// failed and rejected -> ProcessingFailed. Dropped and ProcessingFailed
// return the record's original data.
#pragma once

#include <simdjson.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/envelope.hpp"
#include "filebuilder/upload/policy.hpp"

namespace filebuilder::source {

/// Reads the records of a Firehose transformation event. Returns bad_event
/// when the document is not one (no "records" array).
[[nodiscard]] inline ErrorCode read_firehose_event(simdjson::ondemand::parser& parser,
                                                   simdjson::padded_string_view event,
                                                   std::vector<EnvelopeRecord>& out) {
  const ErrorCode error = detail::read_envelope(
      parser, event, "records", out, [](simdjson::ondemand::object& item, EnvelopeRecord& record) {
        const ErrorCode id = detail::string_field(item, "recordId", record.id);
        return id != ErrorCode::ok ? id : detail::string_field(item, "data", record.data);
      });
  // Without a recordId a record cannot be answered: Firehose would refuse the reply.
  for (const EnvelopeRecord& record : out)
    if (record.id.empty()) return ErrorCode::bad_event;
  return error;
}

/// The audit line of an uploaded file, before base64:
/// {"putEndpoint":"<redacted>","bytes":N,"sha256":"<hex>"}\n
[[nodiscard]] inline std::string firehose_audit_line(const RecordOutcome& outcome) {
  std::string line = "{\"putEndpoint\":";
  filebuilder::detail::append_json_string(line, redact_url(outcome.endpoint));
  line += ",\"bytes\":" + std::to_string(outcome.bytes) + ",\"sha256\":";
  filebuilder::detail::append_json_string(line, outcome.sha256);
  line += "}\n";
  return line;
}

[[nodiscard]] constexpr std::string_view firehose_result(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::accepted:
    case Outcome::duplicate: return "Dropped";
    case Outcome::uploaded: return "Ok";
    case Outcome::failed:
    case Outcome::rejected: return "ProcessingFailed";
  }
  return "ProcessingFailed";
}

/// Appends the reply: every record, in order.
inline void write_firehose_reply(std::span<const EnvelopeRecord> records,
                                 std::span<const RecordOutcome> outcomes, std::string& out) {
  out += "{\"records\":[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i != 0) out += ',';
    const Outcome outcome = i < outcomes.size() ? outcomes[i].outcome : Outcome::failed;
    out += "{\"recordId\":";
    filebuilder::detail::append_json_string(out, records[i].id);
    out += ",\"result\":\"";
    out += firehose_result(outcome);
    out += "\",\"data\":";
    if (outcome == Outcome::uploaded) {
      out += '"';
      base64::encode_append(firehose_audit_line(outcomes[i]), out);
      out += '"';
    } else {
      filebuilder::detail::append_json_string(out, records[i].data);  // returned as received
    }
    out += '}';
  }
  out += "]}";
}

}  // namespace filebuilder::source
