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
// first byte's other bits: 2, a distinct arrival timestamp in each record (as
// Lambda delivers them, of varying lengths) instead of one for all; 4, a
// second event with the same records after the first, through the same
// pipelines (the Reassembler's endpoint hint and content-length guess carry
// over); 8, a distinct partition key in each record instead of one for all
// (one producer's file usually has one).
// Built only with clang, under -DFILEBUILDER_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "fuzz_support.hpp"
#include "support/chunks.hpp"
#include "support/fast_path_pipeline.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace filebuilder;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> documents;
  const bool raw = !input.empty() && (input[0] == '{' || input[0] == ' ' || input[0] == '\n' ||
                                      input[0] == '\t' || input[0] == '\r');
  if (raw || input.empty()) {
    documents.emplace_back(input);
  } else {
    const auto mode = static_cast<unsigned char>(input[0]);
    const bool firehose = (mode & 1) != 0, distinct_timestamps = (mode & 2) != 0;
    const bool twice = (mode & 4) != 0, distinct_keys = (mode & 8) != 0;
    std::vector<std::string> items;
    const std::vector<std::string> records = fuzz::split_records(input.substr(1));
    for (std::size_t i = 0; i < records.size(); ++i) {
      const std::string n = std::to_string(i);
      const std::string bytes = base64::encode(records[i]);
      if (firehose) {
        items.push_back(test::firehose_record(
            "r" + n, bytes,
            distinct_timestamps ? std::to_string(1700000000000 + i * 37) : "1700000000000"));
      } else {
        const std::string sequence = "4959150035549185030137890000000000000000000000000000000" + n;
        items.push_back(test::lambda_record(
            sequence, bytes, distinct_keys ? "pk" + n : "96f6d314668c23de",
            distinct_timestamps ? std::to_string(1700000000 + i) + "." + std::to_string(i % 1000)
                                : "1700000000.0"));
      }
    }
    documents.push_back(firehose ? test::firehose_event(items) : test::lambda_event(items));
    if (twice) documents.push_back(documents.back());
  }
  const std::string difference = test::fast_path_difference(documents);
  if (!difference.empty()) {
    std::fwrite(difference.data(), 1, difference.size(), stderr);
    fuzz::fail("fast_path", "the fast path and simdjson answer differently");
  }
  return 0;
}
