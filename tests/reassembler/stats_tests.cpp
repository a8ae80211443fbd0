#include "filebuilder/stats.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "filebuilder/reassembler.hpp"
#include "filebuilder/store/memory.hpp"
#include "support/chunks.hpp"
#include "support/fake_uploader.hpp"

using namespace filebuilder;
using filebuilder::test::chunk;
using filebuilder::test::FakeUploader;

namespace {

const std::string a = "https://bucket.example.com/a.bin?X-Amz-Signature=abc";
const std::string b = "https://bucket.example.com/b.bin";

}  // namespace

TEST_CASE("stats: error_code_count covers every code, and no more") {
  for (std::size_t i = 0; i < error_code_count; ++i) {
    CAPTURE(i);
    CHECK(error_code_name(static_cast<ErrorCode>(i)) != "unknown");
  }
  CHECK(error_code_name(static_cast<ErrorCode>(error_code_count)) == "unknown");
}

TEST_CASE("stats: a Reassembler counts outcomes, bytes and uploads at each flush") {
  MemoryStore store;
  FakeUploader uploader;
  uploader.elapsed = std::chrono::milliseconds(30);
  Reassembler reassembler(store, uploader);
  uploader.script(b, {UploadStatus::retryable});

  (void)reassembler.add(chunk(a, 0, 2, "AA"));
  (void)reassembler.add(chunk(a, 0, 2, "AA"));
  CHECK(ReassemblerStats::get(reassembler.stats().records_accepted) == 0);  // not flushed yet
  (void)reassembler.flush();
  (void)reassembler.add(chunk(a, 1, 2, "BBB"));
  (void)reassembler.add("not json");
  (void)reassembler.add(R"({"putEndpoint":")" + b +
                        R"(","partition":0,"partitionCount":1,"content":"!!!!"})");
  (void)reassembler.add(chunk(b, 0, 1, "hello"));
  (void)reassembler.flush();

  const ReassemblerStats& stats = reassembler.stats();
  CHECK(stats.records() == 6);
  std::string text;
  write_prometheus(stats, text);
  CHECK(text ==
        "# HELP filebuilder_records_total Records handled, by outcome (a redelivered record "
        "counts again).\n"
        "# TYPE filebuilder_records_total counter\n"
        "filebuilder_records_total{outcome=\"accepted\"} 1\n"
        "filebuilder_records_total{outcome=\"duplicate\"} 1\n"
        "filebuilder_records_total{outcome=\"uploaded\"} 1\n"
        "filebuilder_records_total{outcome=\"failed\"} 1\n"
        "filebuilder_records_total{outcome=\"rejected\"} 2\n"
        "# HELP filebuilder_records_rejected_total Records rejected, by error code.\n"
        "# TYPE filebuilder_records_rejected_total counter\n"
        "filebuilder_records_rejected_total{code=\"invalid_json\"} 1\n"
        "filebuilder_records_rejected_total{code=\"bad_base64\"} 1\n"
        "# HELP filebuilder_bytes_decoded_total Decoded chunk content bytes handed to the store.\n"
        "# TYPE filebuilder_bytes_decoded_total counter\n"
        "filebuilder_bytes_decoded_total 12\n"
        "# HELP filebuilder_files_uploaded_total Files uploaded.\n"
        "# TYPE filebuilder_files_uploaded_total counter\n"
        "filebuilder_files_uploaded_total 1\n"
        "# HELP filebuilder_upload_failures_total Uploads that failed after their retries (the "
        "file stays pending).\n"
        "# TYPE filebuilder_upload_failures_total counter\n"
        "filebuilder_upload_failures_total 1\n"
        "# HELP filebuilder_upload_refusals_total Uploads the target refused for good (the parts "
        "are dropped).\n"
        "# TYPE filebuilder_upload_refusals_total counter\n"
        "filebuilder_upload_refusals_total 0\n"
        "# HELP filebuilder_upload_duration_seconds Upload latency, from the first request to the "
        "final status.\n"
        "# TYPE filebuilder_upload_duration_seconds histogram\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"0.005\"} 0\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"0.01\"} 0\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"0.025\"} 0\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"0.05\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"0.1\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"0.25\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"0.5\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"1\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"2.5\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"5\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"10\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"30\"} 2\n"
        "filebuilder_upload_duration_seconds_bucket{le=\"+Inf\"} 2\n"
        "filebuilder_upload_duration_seconds_sum 0.06\n"
        "filebuilder_upload_duration_seconds_count 2\n");
}

TEST_CASE("stats: a pending upload retried by flush() counts as an upload, not a record") {
  MemoryStore store;
  FakeUploader uploader;
  ReassemblerOptions options;
  options.pending_retry_base = std::chrono::seconds(0);
  Reassembler reassembler(store, uploader, options);
  uploader.script(a, {UploadStatus::retryable});
  CHECK(reassembler.process(chunk(a, 0, 1, "x")).outcome == Outcome::failed);
  (void)reassembler.flush();  // retries the pending file: uploaded
  REQUIRE(reassembler.retried().size() == 1);
  CHECK(reassembler.retried()[0].outcome == Outcome::uploaded);
  const ReassemblerStats& stats = reassembler.stats();
  CHECK(stats.records() == 1);
  CHECK(ReassemblerStats::get(stats.records_failed) == 1);
  CHECK(ReassemblerStats::get(stats.upload_failures) == 1);
  CHECK(ReassemblerStats::get(stats.files_uploaded) == 1);
  CHECK(ReassemblerStats::get(stats.latency_count) == 2);
}

TEST_CASE("stats: a copy holds the same counts") {
  ReassemblerStats stats;
  ReassemblerStats::add(stats.records_rejected[static_cast<std::size_t>(ErrorCode::too_deep)], 3);
  stats.observe_upload(std::chrono::seconds(100));  // past the last bound: +Inf only
  const ReassemblerStats copy = stats;
  CHECK(ReassemblerStats::get(
            copy.records_rejected[static_cast<std::size_t>(ErrorCode::too_deep)]) == 3);
  CHECK(ReassemblerStats::get(copy.latency_buckets.back()) == 1);
  CHECK(ReassemblerStats::get(copy.latency_sum_ns) == 100'000'000'000ull);
}
