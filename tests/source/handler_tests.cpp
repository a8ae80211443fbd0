#include "filebuilder/source/handler.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "filebuilder/digest.hpp"
#include "filebuilder/store/memory.hpp"
#include "support/chunks.hpp"
#include "support/fake_uploader.hpp"
#include "support/log_capture.hpp"
#include "support/temp_dir.hpp"

using namespace filebuilder;
using filebuilder::test::chunk;
using filebuilder::test::FakeUploader;

namespace {

const std::string endpoint = "https://bucket.example.com/f.bin?X-Amz-Signature=secret";

std::string kinesis_event(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string event = "{\"Records\":[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i) event += ',';
    event += "{\"kinesis\":{\"partitionKey\":\"pk\",\"sequenceNumber\":\"" + records[i].first +
             "\",\"data\":\"" + records[i].second + "\"},\"eventSource\":\"aws:kinesis\"}";
  }
  return event + "]}";
}

std::string firehose_event(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string event = "{\"invocationId\":\"inv\",\"records\":[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i) event += ',';
    event += "{\"recordId\":\"" + records[i].first + "\",\"data\":\"" + records[i].second + "\"}";
  }
  return event + "]}";
}

std::string b64(std::string_view bytes) {
  return base64::encode(bytes);
}

using test::LogCapture;

struct Harness {
  MemoryStore store;
  FakeUploader uploader;
  Reassembler<MemoryStore, FakeUploader> reassembler{store, uploader};
  LogCapture log;
  Logger logger{LogLevel::info, log.file};
  source::EventHandler<Reassembler<MemoryStore, FakeUploader>> handler{reassembler, logger};
  std::string padded;

  source::DocumentKind handle(const std::string& document, std::string& reply,
                              source::LineId line = {"", 1},
                              source::InputFormat format = source::InputFormat::detect) {
    padded = document;
    padded.resize(document.size() + simdjson::SIMDJSON_PADDING);
    return handler.handle(
        simdjson::padded_string_view(padded.data(), document.size(), padded.size()), format, line,
        reply);
  }
};

}  // namespace

TEST_CASE("a Lambda Kinesis event: good and bad records, none of the bad ones listed") {
  Harness h;
  std::string reply;
  const std::string event = kinesis_event({
      {"101", b64(chunk(endpoint, 1, 2, "world"))},
      {"102", "not base64!"},
      {"103", b64("{\"putEndpoint\":1}")},
      {"104", b64(chunk(endpoint, 0, 2, "hello "))},
  });
  CHECK(h.handle(event, reply) == source::DocumentKind::lambda);
  CHECK(reply == R"({"batchItemFailures":[]})");
  REQUIRE(h.uploader.calls.size() == 1);
  CHECK(h.uploader.calls[0].body == "hello world");
  CHECK(h.handler.any_problem());
  const std::string log = h.log.text();
  CHECK(log.find(R"("msg":"record rejected","record":"102","error":"bad_record_data")") !=
        std::string::npos);
  CHECK(log.find(R"("msg":"record rejected","record":"103","error":"wrong_type")") !=
        std::string::npos);
  CHECK(
      log.find(
          R"("msg":"file uploaded","record":"104","endpoint":"https://bucket.example.com/f.bin","bytes":11,"sha256":")" +
          sha256_hex("hello world") + "\"") != std::string::npos);
  CHECK(log.find("secret") == std::string::npos);  // presigned URLs are redacted
}

TEST_CASE("a failed upload lists the completing record: redelivery heals the file") {
  Harness h;
  h.uploader.script(endpoint, {UploadStatus::retryable});
  std::string reply;
  h.handle(kinesis_event(
               {{"1", b64(chunk(endpoint, 0, 2, "a"))}, {"2", b64(chunk(endpoint, 1, 2, "b"))}}),
           reply);
  CHECK(reply == R"({"batchItemFailures":[{"itemIdentifier":"2"}]})");
  CHECK(
      h.log.text().find(
          R"("level":"warn","msg":"record failed; it will be retried","record":"2","error":"upload_failed")") !=
      std::string::npos);
  reply.clear();
  h.handle(kinesis_event({{"2", b64(chunk(endpoint, 1, 2, "b"))}}), reply);
  CHECK(reply == R"({"batchItemFailures":[]})");
  REQUIRE(h.uploader.calls.size() == 2);
  CHECK(h.uploader.calls[1].body == "ab");
}

TEST_CASE("a Firehose event: every recordId back once, in order, with the audit line") {
  Harness h;
  std::string reply;
  const std::string first = b64(chunk(endpoint, 0, 2, "hello "));
  const std::string bad = b64("nope");
  const std::string last = b64(chunk(endpoint, 1, 2, "world"));
  CHECK(h.handle(firehose_event({{"r1", first}, {"r2", bad}, {"r3", first}, {"r4", last}}),
                 reply) == source::DocumentKind::firehose);
  const std::string audit =
      "{\"putEndpoint\":\"https://bucket.example.com/f.bin\",\"bytes\":11,\"sha256\":\"" +
      sha256_hex("hello world") + "\"}\n";
  CHECK(reply == "{\"records\":[{\"recordId\":\"r1\",\"result\":\"Dropped\",\"data\":\"" + first +
                     "\"},{\"recordId\":\"r2\",\"result\":\"ProcessingFailed\",\"data\":\"" + bad +
                     "\"},{\"recordId\":\"r3\",\"result\":\"Dropped\",\"data\":\"" + first +
                     "\"},{\"recordId\":\"r4\",\"result\":\"Ok\",\"data\":\"" + b64(audit) +
                     "\"}]}");
}

TEST_CASE("bare chunks: uploaded at flush, counted in the summary") {
  Harness h;
  std::string reply;
  CHECK(h.handle(chunk(endpoint, 1, 2, "b"), reply, {"", 1}) == source::DocumentKind::chunk);
  h.handle("{oops", reply, {"", 2});
  h.handle(chunk(endpoint, 1, 2, "b"), reply, {"", 3});
  h.handle(chunk(endpoint, 0, 2, "a"), reply, {"", 5});
  CHECK(reply.empty());
  CHECK(h.uploader.calls.empty());
  h.handler.flush_chunks();
  CHECK(h.uploader.calls.size() == 1);
  CHECK(h.handler.chunk_summary().json() ==
        R"({"records":4,"uploaded":1,"duplicates":1,"rejected":[2],"failed":[]})");
  CHECK(h.log.text().find(R"("record":2,"error":"invalid_json")") != std::string::npos);
}

TEST_CASE("line ids name the file when several files are read") {
  source::ChunkSummary summary;
  summary.rejected.push_back({"a.ndjson", 3});
  summary.failed.push_back({"", 7});
  CHECK(summary.json() ==
        R"({"records":0,"uploaded":0,"duplicates":0,"rejected":["a.ndjson:3"],"failed":[7]})");
}

TEST_CASE("envelopes that are not events are bad_event: forced formats are obeyed") {
  Harness h;
  std::string reply;
  CHECK(h.handle(R"({"Records":"nope"})", reply) == source::DocumentKind::bad_event);
  CHECK(h.handle(R"({"records":[{"data":"QQ=="}]})", reply) == source::DocumentKind::bad_event);
  CHECK(h.handle(chunk(endpoint, 0, 1, "x"), reply, {"", 9}, source::InputFormat::lambda) ==
        source::DocumentKind::bad_event);
  CHECK(reply.empty());
  CHECK(h.log.text().find(R"("msg":"not a recognised event","record":9,"error":"bad_event")") !=
        std::string::npos);
  // A record whose own envelope lacks data is rejected; the others go on.
  CHECK(
      h.handle(
          R"({"Records":[{"kinesis":{"sequenceNumber":"7"}},{"kinesis":{"sequenceNumber":"8","data":")" +
              b64(chunk(endpoint, 0, 1, "x")) + "\"}}]}",
          reply) == source::DocumentKind::lambda);
  CHECK(reply == R"({"batchItemFailures":[]})");
  CHECK(h.uploader.calls.size() == 1);
}

TEST_CASE("dead letters keep every rejected record, and the body of a refused upload") {
  filebuilder::test::TempDir dir;
  Harness h;
  DeadLetterBox box(dir.path() / "dead");
  REQUIRE(box.ok());
  h.handler.set_dead_letter(&box);
  h.uploader.script(endpoint, {UploadStatus::permanent});
  std::string reply;
  const std::string bad = b64("{\"partition\":1}");
  h.handle(kinesis_event({{"11", bad}, {"12", b64(chunk(endpoint, 0, 1, "body!"))}}), reply);
  CHECK(reply == R"({"batchItemFailures":[]})");
  CHECK((std::filesystem::status(box.dir()).permissions() & std::filesystem::perms::all) ==
        std::filesystem::perms::owner_all);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(box.dir()))
    files.push_back(entry.path());
  std::sort(files.begin(), files.end(), [](const auto& x, const auto& y) {
    return x.filename().string().substr(19) < y.filename().string().substr(19);
  });
  REQUIRE(files.size() == 3);
  const auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  CHECK(files[0].filename().string().ends_with("-11.json"));
  CHECK(read(files[0]) ==
        "{\"record\":\"11\",\"error\":\"missing_field\",\"message\":\"a required field is "
        "missing\",\"source\":\"lambda\",\"data\":\"" +
            bad + "\"}\n");
  CHECK(files[1].filename().string().ends_with("-12.bin"));
  CHECK(read(files[1]) == "body!");
  CHECK(files[2].filename().string().ends_with("-12.json"));
  CHECK(read(files[2]).find("\"error\":\"upload_refused\"") != std::string::npos);
  CHECK((std::filesystem::status(files[0]).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
}

TEST_CASE("a bare chunk's log id is its line number, or file:line when files are named") {
  Harness h;
  std::string reply;
  h.handle("[]", reply, {"", 4});
  h.handle("[]", reply, {"b.ndjson", 6});
  h.handler.flush_chunks();
  const std::string log = h.log.text();
  CHECK(log.find(R"("record":4,"error":"not_an_object")") != std::string::npos);
  CHECK(log.find(R"("record":"b.ndjson:6","error":"not_an_object")") != std::string::npos);
}

TEST_CASE("pending uploads retried by a later event are logged, not replied") {
  MemoryStore store;
  FakeUploader uploader;
  ReassemblerOptions options;
  options.pending_retry_base = std::chrono::seconds(0);
  Reassembler<MemoryStore, FakeUploader> reassembler(store, uploader, options);
  LogCapture log;
  Logger logger(LogLevel::info, log.file);
  source::EventHandler<Reassembler<MemoryStore, FakeUploader>> handler(reassembler, logger);
  uploader.script(endpoint, {UploadStatus::retryable});
  std::string first = kinesis_event({{"1", b64(chunk(endpoint, 0, 1, "late"))}});
  std::string second =
      kinesis_event({{"2", b64(chunk("https://bucket.example.com/other", 0, 2, "x"))}});
  for (std::string* event : {&first, &second}) event->append(simdjson::SIMDJSON_PADDING, ' ');
  std::string reply;
  handler.handle(simdjson::padded_string_view(
                     first.data(), first.size() - simdjson::SIMDJSON_PADDING, first.size()),
                 source::InputFormat::detect, {"", 1}, reply);
  CHECK(reply == R"({"batchItemFailures":[{"itemIdentifier":"1"}]})");
  reply.clear();
  handler.handle(simdjson::padded_string_view(
                     second.data(), second.size() - simdjson::SIMDJSON_PADDING, second.size()),
                 source::InputFormat::detect, {"", 2}, reply);
  CHECK(reply == R"({"batchItemFailures":[]})");
  REQUIRE(uploader.calls.size() == 2);
  CHECK(uploader.calls[1].body == "late");
  CHECK(
      log.text().find(
          R"("msg":"pending upload retried: file uploaded","endpoint":"https://bucket.example.com/f.bin","bytes":4,"sha256":")" +
          sha256_hex("late") + "\"") != std::string::npos);
}

TEST_CASE("deeply nested events are bad_event or too_deep records, never a crash") {
  Harness h;
  std::string reply;
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  CHECK(h.handle(deep, reply, {"", 1}, source::InputFormat::lambda) ==
        source::DocumentKind::bad_event);
  CHECK(h.handle("{\"records\":" + deep + "}", reply, {"", 3}, source::InputFormat::firehose) ==
        source::DocumentKind::bad_event);  // a Firehose record without a recordId
  CHECK(reply.empty());
  // A Kinesis record that is a deep array instead of an object: that record is bad_event.
  CHECK(h.handle("{\"Records\":" + deep + "}", reply, {"", 2}, source::InputFormat::lambda) ==
        source::DocumentKind::lambda);
  CHECK(reply == R"({"batchItemFailures":[]})");
  CHECK(h.log.text().find(R"("error":"bad_event")") != std::string::npos);
  reply.clear();
  // A record whose chunk is nested too deeply: rejected with its own code, not listed.
  const std::string record = chunk(endpoint, 0, 1, "x");
  const std::string deep_chunk =
      record.substr(0, record.size() - 1) + ",\"x\":[[[[[[[[[1]]]]]]]]]}";
  h.handle(kinesis_event({{"5", b64(deep_chunk)}}), reply);
  CHECK(reply == R"({"batchItemFailures":[]})");
  CHECK(h.log.text().find(R"("record":"5","error":"too_deep")") != std::string::npos);
  CHECK(h.uploader.calls.empty());
}
