#include "filebuilder/reassembler.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "filebuilder/store/memory.hpp"
#include "support/chunks.hpp"
#include "support/fake_uploader.hpp"

using namespace filebuilder;
using filebuilder::test::chunk;
using filebuilder::test::FakeUploader;

namespace {

struct Fixture {
  MemoryStore store;
  FakeUploader uploader;
  Reassembler<MemoryStore, FakeUploader> reassembler{store, uploader};

  explicit Fixture(ReassemblerOptions options = {}, MemoryStoreOptions store_options = {})
      : store(store_options), reassembler(store, uploader, std::move(options)) {}

  RecordOutcome process(const std::string& record) { return reassembler.process(record); }
};

const std::string a = "https://bucket.example.com/a.bin?X-Amz-Signature=abc";
const std::string b = "https://bucket.example.com/b.bin";

}  // namespace

TEST_CASE("a file of one part is uploaded at once with its exact bytes") {
  Fixture f;
  const RecordOutcome outcome = f.process(chunk(a, 0, 1, "hello world"));
  CHECK(outcome.outcome == Outcome::uploaded);
  CHECK(outcome.endpoint == a);
  CHECK(outcome.bytes == 11);
  REQUIRE(f.uploader.calls.size() == 1);
  CHECK(f.uploader.calls[0].url == a);
  CHECK(f.uploader.calls[0].body == "hello world");
  CHECK(f.store.open_files() == 0);
}

TEST_CASE("an empty file is one partition with empty content") {
  Fixture f;
  CHECK(f.process(chunk(a, 0, 1, "")).outcome == Outcome::uploaded);
  REQUIRE(f.uploader.calls.size() == 1);
  CHECK(f.uploader.calls[0].body.empty());
}

TEST_CASE("parts arrive out of order, interleaved, across flushes") {
  Fixture f;
  CHECK(f.process(chunk(a, 2, 3, "CC")).outcome == Outcome::accepted);
  CHECK(f.process(chunk(b, 1, 2, "yy")).outcome == Outcome::accepted);
  CHECK(f.process(chunk(a, 0, 3, "AA")).outcome == Outcome::accepted);
  CHECK(f.uploader.calls.empty());
  CHECK(f.process(chunk(b, 0, 2, "xx")).outcome == Outcome::uploaded);
  CHECK(f.process(chunk(a, 1, 3, "BB")).outcome == Outcome::uploaded);
  REQUIRE(f.uploader.calls.size() == 2);
  CHECK(f.uploader.calls[0].body == "xxyy");
  CHECK(f.uploader.calls[1].body == "AABBCC");
}

TEST_CASE("duplicates are accepted silently, before and after the upload") {
  Fixture f;
  CHECK(f.process(chunk(a, 0, 2, "AA")).outcome == Outcome::accepted);
  CHECK(f.process(chunk(a, 0, 2, "AA")).outcome == Outcome::duplicate);
  CHECK(f.process(chunk(a, 1, 2, "BB")).outcome == Outcome::uploaded);
  // After the upload: a done-mark answers, whatever the bytes.
  CHECK(f.process(chunk(a, 1, 2, "BB")).outcome == Outcome::duplicate);
  CHECK(f.process(chunk(a, 0, 2, "AA")).outcome == Outcome::duplicate);
  CHECK(f.process(chunk(a, 0, 2, "other")).outcome == Outcome::duplicate);
  CHECK(f.uploader.calls.size() == 1);
}

TEST_CASE("conflicts are rejected and the first bytes kept") {
  Fixture f;
  REQUIRE(f.process(chunk(a, 0, 2, "AA")).outcome == Outcome::accepted);
  RecordOutcome other_bytes = f.process(chunk(a, 0, 2, "ZZ"));
  CHECK(other_bytes.outcome == Outcome::rejected);
  CHECK(other_bytes.error == ErrorCode::partition_conflict);
  RecordOutcome other_count = f.process(chunk(a, 1, 3, "BB"));
  CHECK(other_count.outcome == Outcome::rejected);
  CHECK(other_count.error == ErrorCode::partition_count_conflict);
  CHECK(f.process(chunk(a, 1, 2, "BB")).outcome == Outcome::uploaded);
  REQUIRE(f.uploader.calls.size() == 1);
  CHECK(f.uploader.calls[0].body == "AABB");
}

TEST_CASE("1-byte parts and 10,000 parts, shuffled") {
  Fixture f;
  std::string expected;
  std::vector<std::string> records;
  std::mt19937 random(42);
  for (int i = 0; i < 10'000; ++i) {
    const std::string byte(1, static_cast<char>(random() & 0xFF));
    expected += byte;
    records.push_back(chunk(a, static_cast<std::uint64_t>(i), 10'000, byte));
  }
  std::shuffle(records.begin(), records.end(), random);
  std::size_t uploaded = 0;
  for (const std::string& record : records) {
    const RecordOutcome outcome = f.process(record);
    REQUIRE(outcome.ok());
    uploaded += outcome.outcome == Outcome::uploaded;
  }
  CHECK(uploaded == 1);
  REQUIRE(f.uploader.calls.size() == 1);
  CHECK(f.uploader.calls[0].body == expected);
}

TEST_CASE("bad records are rejected with their own code and the batch goes on") {
  Fixture f;
  f.reassembler.add(chunk(a, 0, 2, "AA"));
  f.reassembler.add("{not json");
  f.reassembler.add(
      R"({"putEndpoint":"https://bucket.example.com/a.bin","partition":0,"partitionCount":1,"content":"!!!!"})");
  f.reassembler.add(
      R"({"putEndpoint":"http://bucket.example.com/c","partition":0,"partitionCount":1,"content":""})");
  f.reassembler.add(
      R"({"putEndpoint":"https://127.0.0.1/c","partition":0,"partitionCount":1,"content":""})");
  f.reassembler.add(
      R"({"putEndpoint":"ftp://bucket.example.com/c","partition":0,"partitionCount":1,"content":""})");
  f.reassembler.add(chunk(a, 1, 2, "BB"));
  const auto outcomes = f.reassembler.flush();
  REQUIRE(outcomes.size() == 7);
  CHECK(outcomes[0].outcome == Outcome::accepted);
  CHECK(outcomes[1].error == ErrorCode::invalid_json);
  CHECK(outcomes[2].error == ErrorCode::bad_base64);
  CHECK(outcomes[2].message == "content is not valid padded base64 (at content offset 0)");
  CHECK(outcomes[3].error == ErrorCode::endpoint_scheme);
  CHECK(outcomes[4].error == ErrorCode::endpoint_not_allowed);
  CHECK(outcomes[5].error == ErrorCode::endpoint_scheme);
  for (int i = 1; i <= 5; ++i) CHECK(outcomes[i].outcome == Outcome::rejected);
  CHECK(outcomes[6].outcome == Outcome::uploaded);
  REQUIRE(f.uploader.calls.size() == 1);
  CHECK(f.uploader.calls[0].body == "AABB");
}

TEST_CASE("limits: part size, partition count, file size, store bytes") {
  ReassemblerOptions options;
  options.limits.max_part_bytes = 4;
  options.limits.max_partitions = 3;
  options.limits.max_file_bytes = 6;
  MemoryStoreOptions store_options;
  store_options.max_bytes = 4096;
  Fixture f(options, store_options);
  CHECK(f.process(chunk(a, 0, 3, "12345")).error == ErrorCode::part_too_large);
  CHECK(f.process(chunk(a, 0, 4, "1")).error == ErrorCode::too_many_partitions);
  CHECK(f.process(chunk(a, 0, 3, "1234")).outcome == Outcome::accepted);
  const RecordOutcome too_big = f.process(chunk(a, 1, 3, "567"));
  CHECK(too_big.outcome == Outcome::rejected);
  CHECK(too_big.error == ErrorCode::file_too_large);
  // The store's byte bound is transient: failed, not rejected.
  for (int i = 0; i < 64; ++i) {
    const RecordOutcome outcome =
        f.process(chunk("https://x.example.com/" + std::to_string(i), 0, 2, "1234"));
    if (outcome.outcome == Outcome::failed) {
      CHECK(outcome.error == ErrorCode::store_full);
      CHECK(f.store.bytes_held() <= 4096);
      return;
    }
  }
  FAIL("the store never became full");
}

TEST_CASE("a failed upload keeps every part: replaying the completing record uploads once") {
  Fixture f;
  f.uploader.script(a, {UploadStatus::retryable});
  CHECK(f.process(chunk(a, 0, 2, "AA")).outcome == Outcome::accepted);
  const RecordOutcome failed = f.process(chunk(a, 1, 2, "BB"));
  CHECK(failed.outcome == Outcome::failed);
  CHECK(failed.error == ErrorCode::upload_failed);
  CHECK(failed.message == "HTTP 503");
  CHECK(f.store.pending(a));
  CHECK(f.store.open_files() == 1);
  // Redelivery of the completing record heals the file.
  CHECK(f.process(chunk(a, 1, 2, "BB")).outcome == Outcome::uploaded);
  CHECK(f.process(chunk(a, 1, 2, "BB")).outcome == Outcome::duplicate);
  REQUIRE(f.uploader.calls.size() == 2);
  CHECK(f.uploader.calls[1].body == "AABB");
  CHECK(f.store.open_files() == 0);
}

TEST_CASE("a permanent refusal rejects the record and drops the parts") {
  Fixture f;
  f.uploader.script(a, {UploadStatus::permanent});
  CHECK(f.process(chunk(a, 0, 2, "AA")).outcome == Outcome::accepted);
  const RecordOutcome refused = f.process(chunk(a, 1, 2, "BB"));
  CHECK(refused.outcome == Outcome::rejected);
  CHECK(refused.error == ErrorCode::upload_refused);
  CHECK(refused.message == "the upload target refused the file: HTTP 403");
  CHECK(f.store.open_files() == 0);
  CHECK(f.process(chunk(a, 0, 2, "AA")).outcome == Outcome::duplicate);
  CHECK(f.uploader.calls.size() == 1);
}

TEST_CASE("files completed in one batch are uploaded together, each once") {
  Fixture f;
  f.reassembler.add(chunk(a, 0, 1, "A"));
  f.reassembler.add(chunk(b, 0, 1, "B"));
  f.reassembler.add(chunk(a, 0, 1, "A"));  // completes a again: already claimed
  const auto outcomes = f.reassembler.flush();
  CHECK(outcomes[0].outcome == Outcome::uploaded);
  CHECK(outcomes[1].outcome == Outcome::uploaded);
  CHECK(outcomes[2].outcome == Outcome::duplicate);
  CHECK(f.uploader.batches == 1);
  CHECK(f.uploader.calls.size() == 2);
}

TEST_CASE("the upload hook sees the body before the parts are dropped") {
  Fixture f;
  std::string seen;
  f.reassembler.set_on_upload_done(
      [&](std::size_t index, RecordOutcome& outcome, BodyReader& body) {
        CHECK(index == 1);
        seen.resize(body.size());
        REQUIRE(body.read_at(0, std::span<char>(seen.data(), seen.size())).ok());
        outcome.sha256 = "set by hook";
      });
  f.reassembler.add(chunk(a, 1, 2, "world"));
  f.reassembler.add(chunk(a, 0, 2, "hello "));
  const auto outcomes = f.reassembler.flush();
  CHECK(seen == "hello world");
  CHECK(outcomes[1].sha256 == "set by hook");
}

TEST_CASE("add_rejected keeps indices aligned with the batch") {
  Fixture f;
  f.reassembler.add_rejected(ErrorCode::bad_record_data, "data is not base64");
  f.reassembler.add(chunk(a, 0, 1, "x"));
  const auto outcomes = f.reassembler.flush();
  REQUIRE(outcomes.size() == 2);
  CHECK(outcomes[0].outcome == Outcome::rejected);
  CHECK(outcomes[0].error == ErrorCode::bad_record_data);
  CHECK(outcomes[0].message == "data is not base64");
  CHECK(outcomes[1].outcome == Outcome::uploaded);
}

TEST_CASE("a pending upload is retried by a later flush, without its record") {
  ReassemblerOptions options;
  options.pending_retry_base = std::chrono::seconds(0);  // due at once
  Fixture f(options);
  f.uploader.script(a, {UploadStatus::retryable, UploadStatus::retryable});
  CHECK(f.process(chunk(a, 0, 1, "body")).outcome == Outcome::failed);
  CHECK(f.reassembler.retried().empty());
  // The next call (any record, or none) retries it first: it fails again...
  CHECK(f.process(chunk(b, 0, 2, "x")).outcome == Outcome::accepted);
  REQUIRE(f.reassembler.retried().size() == 1);
  CHECK(f.reassembler.retried()[0].outcome == Outcome::failed);
  CHECK(f.reassembler.retried()[0].endpoint == a);
  // ...then succeeds, once; later flushes have nothing left to retry.
  CHECK(f.reassembler.flush().empty());
  REQUIRE(f.reassembler.retried().size() == 1);
  CHECK(f.reassembler.retried()[0].outcome == Outcome::uploaded);
  CHECK(f.reassembler.retried()[0].bytes == 4);
  CHECK(f.reassembler.flush().empty());
  CHECK(f.reassembler.retried().empty());
  REQUIRE(f.uploader.calls.size() == 3);
  CHECK(f.uploader.calls[2].body == "body");
  CHECK(f.process(chunk(a, 0, 1, "body")).outcome == Outcome::duplicate);
}

TEST_CASE("pending retries wait for their backoff and respect the per-flush bound") {
  ReassemblerOptions options;
  options.pending_retry_base = std::chrono::seconds(3600);
  Fixture f(options);
  f.uploader.script(a, {UploadStatus::retryable});
  CHECK(f.process(chunk(a, 0, 1, "body")).outcome == Outcome::failed);
  (void)f.reassembler.flush();
  CHECK(f.reassembler.retried().empty());  // not due for an hour
  CHECK(f.uploader.calls.size() == 1);

  ReassemblerOptions bounded;
  bounded.pending_retry_base = std::chrono::seconds(0);
  bounded.pending_per_flush = 2;
  Fixture g(bounded);
  for (int i = 0; i < 5; ++i) {
    std::string url = "https://bucket.example.com/p";
    url += std::to_string(i);
    g.uploader.script(url, {UploadStatus::retryable});
    g.reassembler.add(chunk(url, 0, 1, "x"));
  }
  (void)g.reassembler.flush();
  CHECK(g.uploader.calls.size() == 5);
  (void)g.reassembler.flush();
  CHECK(g.reassembler.retried().size() == 2);
  (void)g.reassembler.flush();
  CHECK(g.reassembler.retried().size() == 2);
  (void)g.reassembler.flush();
  CHECK(g.reassembler.retried().size() == 1);
  CHECK(g.uploader.calls.size() == 10);
}

TEST_CASE("abandoned files dropped by expiry are counted for the adapters to log") {
  ReassemblerOptions options;
  options.expire_interval = std::chrono::seconds(0);  // expire on every add
  MemoryStoreOptions store_options;
  store_options.expire_after = std::chrono::seconds(-1);  // anything untouched is abandoned
  Fixture f(options, store_options);
  CHECK(f.process(chunk(a, 0, 2, "AA")).outcome == Outcome::accepted);
  CHECK(f.reassembler.take_expired() == 0);
  // The next record's add() expires the file above (and then stores its own part).
  CHECK(f.process(chunk(b, 0, 2, "BB")).outcome == Outcome::accepted);
  CHECK(f.reassembler.take_expired() == 1);
  CHECK(f.reassembler.take_expired() == 0);
  CHECK(f.store.open_files() == 1);
}

TEST_CASE("a refused endpoint is rejected before anything is stored or uploaded") {
  Fixture f;
  for (const char* endpoint :
       {"https://127.1/a", "https://169.254.169.254/latest", "https://[::ffff:127.0.0.1]/a",
        "https://a@bucket.example.com/a", "file:///etc/passwd", "http://bucket.example.com/a"}) {
    const std::string text = endpoint;
    CAPTURE(text);
    const RecordOutcome outcome = f.process(chunk(endpoint, 0, 1, "secret"));
    CHECK(outcome.outcome == Outcome::rejected);
    CHECK(outcome.error == EndpointPolicy{}.check(endpoint));
    CHECK(outcome.error != ErrorCode::ok);
  }
  CHECK(f.store.open_files() == 0);
  CHECK(f.store.bytes_held() == 0);
  CHECK(f.uploader.calls.empty());
}

TEST_CASE("limits: unfinished files are bounded: at the bound a new file fails, known ones go on") {
  MemoryStoreOptions store_options;
  store_options.max_open_files = 3;
  Fixture f({}, store_options);
  for (int i = 0; i < 3; ++i)
    CHECK(f.process(chunk(a + std::to_string(i), 0, 2, "x")).outcome == Outcome::accepted);
  const RecordOutcome full = f.process(chunk(b, 0, 2, "x"));
  CHECK(full.outcome == Outcome::failed);  // transient: retried, never dropped
  CHECK(full.error == ErrorCode::store_full);
  CHECK(f.store.open_files() == 3);
  // A known file still takes parts and completes, which frees its slot.
  CHECK(f.process(chunk(a + "0", 1, 2, "y")).outcome == Outcome::uploaded);
  CHECK(f.process(chunk(b, 0, 2, "x")).outcome == Outcome::accepted);
  CHECK(f.store.open_files() == 3);
}

TEST_CASE("limits: too_deep records are rejected with their code, at any depth") {
  Fixture f;
  const std::string valid = chunk(a, 0, 1, "x");
  const std::string deep = valid.substr(0, valid.size() - 1) + ",\"x\":" + std::string(9, '[') +
                           std::string(9, ']') + "}";
  CHECK(f.process(deep).error == ErrorCode::too_deep);
  const std::string very_deep = valid.substr(0, valid.size() - 1) +
                                ",\"x\":" + std::string(100'000, '[') + std::string(100'000, ']') +
                                "}";
  CHECK(f.process(very_deep).error == ErrorCode::too_deep);
  CHECK(f.process(std::string(100'000, '[')).error == ErrorCode::invalid_json);  // unterminated
  CHECK(f.store.open_files() == 0);
  CHECK(f.process(valid).outcome == Outcome::uploaded);
}
