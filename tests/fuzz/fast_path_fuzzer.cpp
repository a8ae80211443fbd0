// libFuzzer target: the fast path never changes an answer. Every input goes
// through two complete pipelines (tests/support/fast_path_pipeline.hpp), one
// with ReassemblerOptions::fast_path on and one with it off (simdjson only),
// and everything they produce must be the same bytes: the document kind, the
// reply, the chunk summary, every log line, every upload, the store.
//
// An input starting with '{' (or whitespace) is the document itself, its
// format detected. Any other input is records: its bytes after the first,
// split on 0xFF, are chunk records, base64-encoded into an event in the
// layout the Lambda service writes (the one the fast path predicts, see
// source/envelope.hpp) or, when the first byte is odd, a Firehose event. The
// first byte's next bits: 2, a distinct arrival timestamp in each record (as
// Lambda delivers them) instead of one for all; 4, a second event with the
// same records after the first, through the same pipelines (what a record
// leaves behind, the endpoint hint and the predicted layouts, is then used).
// Built only with clang, under -DFILEBUILDER_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "fuzz_support.hpp"
#include "support/fast_path_pipeline.hpp"

namespace {

using namespace filebuilder;

std::string lambda_event(const std::vector<std::string>& records, bool distinct_timestamps) {
  std::string event = R"({"Records":[)";
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::string sequence =
        "4959150035549185030137890000000000000000000000000000000" + std::to_string(i);
    if (i != 0) event += ',';
    event +=
        R"({"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"pk)" + std::to_string(i) +
        R"(","sequenceNumber":")" + sequence + R"(","data":")" + base64::encode(records[i]) +
        R"(","approximateArrivalTimestamp":)" +
        (distinct_timestamps ? "1700000000." + std::to_string(100 + i * 7 % 900) : "1700000000.0") +
        R"(},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000000:)" +
        sequence +
        R"(","eventName":"aws:kinesis:record",)"
        R"("invokeIdentityArn":"arn:aws:iam::123456789012:role/filebuilder",)"
        R"("awsRegion":"us-east-1",)"
        R"("eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/filebuilder"})";
  }
  return event + "]}";
}

std::string firehose_event(const std::vector<std::string>& records, bool distinct_timestamps) {
  std::string event =
      R"({"invocationId":"fuzz","deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:)"
      R"(deliverystream/filebuilder","region":"us-east-1","records":[)";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i != 0) event += ',';
    event += R"({"recordId":"r)" + std::to_string(i) + R"(","approximateArrivalTimestamp":)" +
             std::to_string(1700000000000 + (distinct_timestamps ? i * 37 : 0)) + R"(,"data":")" +
             base64::encode(records[i]) + "\"}";
  }
  return event + "]}";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> documents;
  const bool raw = !input.empty() && (input[0] == '{' || input[0] == ' ' || input[0] == '\n' ||
                                      input[0] == '\t' || input[0] == '\r');
  if (raw || input.empty()) {
    documents.emplace_back(input);
  } else {
    const auto mode = static_cast<unsigned char>(input[0]);
    const std::vector<std::string> records = fuzz::split_records(input.substr(1));
    const bool distinct_timestamps = (mode & 2) != 0;
    documents.push_back((mode & 1) != 0 ? firehose_event(records, distinct_timestamps)
                                        : lambda_event(records, distinct_timestamps));
    if ((mode & 4) != 0) documents.push_back(documents.back());
  }
  test::FastPathPipeline fast(true);
  test::FastPathPipeline strict(false);
  for (const std::string& document : documents) {
    const std::string expected = strict.run(document, source::InputFormat::detect);
    const std::string got = fast.run(document, source::InputFormat::detect);
    if (got != expected) {
      std::fprintf(stderr, "document:\n%s\n\nfast path:\n%s\nsimdjson:\n%s\n", document.c_str(),
                   got.c_str(), expected.c_str());
      fuzz::fail("fast_path", "the fast path and simdjson answer differently");
    }
  }
  return 0;
}
