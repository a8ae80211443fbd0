// The body of the two event fuzzers (kinesis_event_fuzzer.cpp,
// firehose_event_fuzzer.cpp): a whole source::EventHandler over a fresh
// MemoryStore with small limits and an uploader that accepts everything, so
// that envelopes, base64 data, KPL aggregates, chunk records, uploads and
// replies all run.
//
// An input starting with '{' (or whitespace) is the event document itself.
// Any other input is records: its bytes after the first, split on 0xFF, are
// the records' bytes, wrapped by the harness into a well-formed event (data
// base64-encoded, ids "s0", "s1", ...), so that mutations reach the chunk
// parser and the KPL deaggregator instead of breaking the envelope.
//
// Invariants: the reply is one valid JSON object; Kinesis: batchItemFailures
// lists only ids of the event's records, each at most once in a row;
// Firehose: exactly one reply record per event record, in order, with its
// recordId, a known result, and its original data unless Ok (then an audit
// line: JSON with the redacted endpoint, bytes and SHA-256). A well-formed
// event is never bad_event.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "fuzz_support.hpp"

namespace filebuilder::fuzz {

struct InputRecord {
  std::string id;
  std::string data;  // as in the envelope (base64 text)
};

inline std::string build_event(bool firehose, const std::vector<InputRecord>& records) {
  std::string event = firehose ? "{\"invocationId\":\"fuzz\",\"records\":[" : "{\"Records\":[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i != 0) event += ',';
    if (firehose) {
      event += "{\"recordId\":";
      filebuilder::detail::append_json_string(event, records[i].id);
      event += ",\"approximateArrivalTimestamp\":1,\"data\":\"" + records[i].data + "\"}";
    } else {
      event += "{\"kinesis\":{\"partitionKey\":\"pk\",\"sequenceNumber\":";
      filebuilder::detail::append_json_string(event, records[i].id);
      event += ",\"data\":\"" + records[i].data + "\"},\"eventSource\":\"aws:kinesis\"}";
    }
  }
  return event + "]}";
}

/// The records of an event as the DOM parser reads them; false when it is not
/// a well-formed event of that kind (then only the reply's validity is checked).
inline bool reference_records(simdjson::dom::parser& parser, std::string_view event, bool firehose,
                              std::vector<InputRecord>& out) {
  simdjson::dom::object root;
  simdjson::dom::array records;
  if (parser.parse(event.data(), event.size()).get_object().get(root) != simdjson::SUCCESS ||
      root[firehose ? "records" : "Records"].get_array().get(records) != simdjson::SUCCESS)
    return false;
  for (simdjson::dom::element element : records) {
    simdjson::dom::object item;
    if (element.get_object().get(item) != simdjson::SUCCESS) return false;
    if (!firehose && item["kinesis"].get_object().get(item) != simdjson::SUCCESS) return false;
    std::string_view id;
    std::string_view data;
    if (item[firehose ? "recordId" : "sequenceNumber"].get_string().get(id) != simdjson::SUCCESS ||
        item["data"].get_string().get(data) != simdjson::SUCCESS)
      return false;
    out.push_back({std::string(id), std::string(data)});
  }
  return true;
}

inline void check_kinesis_reply(const simdjson::dom::object& reply,
                                const std::vector<InputRecord>* records) {
  constexpr const char* target = "kinesis_event";
  simdjson::dom::array failures;
  if (reply["batchItemFailures"].get_array().get(failures) != simdjson::SUCCESS)
    fail(target, "the reply has no batchItemFailures array");
  std::string_view last;
  bool first = true;
  for (simdjson::dom::element failure : failures) {
    std::string_view id;
    if (failure["itemIdentifier"].get_string().get(id) != simdjson::SUCCESS)
      fail(target, "a batchItemFailures entry without an itemIdentifier string");
    if (!first && id == last) fail(target, "an itemIdentifier listed twice in a row");
    first = false;
    last = id;
    if (records != nullptr) {
      bool known = false;
      for (const InputRecord& record : *records) known = known || record.id == id;
      if (!known) fail(target, "an itemIdentifier that is not a record of the event");
    }
  }
}

inline void check_firehose_reply(simdjson::dom::parser& audit_parser,
                                 const simdjson::dom::object& reply,
                                 const std::vector<InputRecord>* records) {
  constexpr const char* target = "firehose_event";
  simdjson::dom::array answers;
  if (reply["records"].get_array().get(answers) != simdjson::SUCCESS)
    fail(target, "the reply has no records array");
  std::size_t i = 0;
  for (simdjson::dom::element answer : answers) {
    std::string_view id;
    std::string_view result;
    std::string_view data;
    if (answer["recordId"].get_string().get(id) != simdjson::SUCCESS ||
        answer["result"].get_string().get(result) != simdjson::SUCCESS ||
        answer["data"].get_string().get(data) != simdjson::SUCCESS)
      fail(target, "a reply record without recordId, result and data strings");
    if (result != "Ok" && result != "Dropped" && result != "ProcessingFailed")
      fail(target, "a reply record with an unknown result");
    if (records != nullptr) {
      if (i >= records->size()) fail(target, "more reply records than event records");
      if ((*records)[i].id != id) fail(target, "a reply record out of order or renamed");
      if (result != "Ok" && (*records)[i].data != data)
        fail(target, "a Dropped or ProcessingFailed record does not return its data");
    }
    if (result == "Ok") {
      std::string line(base64::max_decoded_size(data.size()), '\0');
      const base64::DecodeResult decoded = base64::decode(data, line.data());
      if (decoded.error != ErrorCode::ok) fail(target, "an Ok record's data is not base64");
      line.resize(decoded.written);
      simdjson::dom::object audit;
      std::string_view endpoint;
      std::uint64_t bytes = 0;
      std::string_view sha256;
      if (audit_parser.parse(line).get_object().get(audit) != simdjson::SUCCESS ||
          audit["putEndpoint"].get_string().get(endpoint) != simdjson::SUCCESS ||
          audit["bytes"].get_uint64().get(bytes) != simdjson::SUCCESS ||
          audit["sha256"].get_string().get(sha256) != simdjson::SUCCESS)
        fail(target, "an Ok record's audit line is not the audit JSON");
      if (line.empty() || line.back() != '\n') fail(target, "an audit line without its newline");
      if (sha256.size() != 64) fail(target, "an audit line without a SHA-256");
      if (endpoint.find('?') != std::string_view::npos)
        fail(target, "an audit line with an unredacted endpoint");
    }
    ++i;
  }
  if (records != nullptr && i != records->size())
    fail(target, "fewer reply records than event records");
}

inline int run_event_fuzzer(const std::uint8_t* data, std::size_t size, bool firehose) {
  const char* target = firehose ? "firehose_event" : "kinesis_event";
  static simdjson::dom::parser reference;
  static simdjson::dom::parser reply_parser;
  static simdjson::dom::parser audit_parser;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  std::string event;
  std::vector<InputRecord> records;
  bool known = false;
  const bool raw = !input.empty() && (input[0] == '{' || input[0] == ' ' || input[0] == '\n' ||
                                      input[0] == '\t' || input[0] == '\r');
  if (raw) {
    event.assign(input);
    known = reference_records(reference, event, firehose, records);
  } else {
    const std::vector<std::string> lines = split_records(input.empty() ? input : input.substr(1));
    for (std::size_t i = 0; i < lines.size(); ++i)
      records.push_back({"s" + std::to_string(i), base64::encode(lines[i])});
    event = build_event(firehose, records);
    known = true;
  }

  Pipeline pipeline;
  source::DocumentKind kind{};
  const std::string reply = pipeline.handle(
      event, firehose ? source::InputFormat::firehose : source::InputFormat::lambda, kind);
  if (kind == source::DocumentKind::bad_event) {
    if (!raw) fail(target, "a well-formed event was refused as bad_event");
    if (!reply.empty()) fail(target, "a bad_event has a reply");
    return 0;
  }
  if (kind != (firehose ? source::DocumentKind::firehose : source::DocumentKind::lambda))
    fail(target, "the forced format was not obeyed");
  const simdjson::dom::object object = parse_reply(reply_parser, reply, target);
  if (firehose)
    check_firehose_reply(audit_parser, object, known ? &records : nullptr);
  else
    check_kinesis_reply(object, known ? &records : nullptr);
  return 0;
}

}  // namespace filebuilder::fuzz
