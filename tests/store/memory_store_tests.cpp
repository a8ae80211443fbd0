#include "filebuilder/store/memory.hpp"

#include "filebuilder/reassembler.hpp"
#include "store/conformance.hpp"
#include "support/chunks.hpp"
#include "support/fake_uploader.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

using namespace filebuilder;

namespace {

Clock::time_point fake_now = Clock::time_point{} + std::chrono::hours(1000);
Clock::time_point now_for_test() {
  return fake_now;
}

MemoryStoreOptions test_options() {
  MemoryStoreOptions options;
  options.now = &now_for_test;
  return options;
}

std::string read_all(BodyReader& body) {
  std::string out(body.size(), '\0');
  std::uint64_t offset = 0;
  while (offset < out.size()) {
    Result<std::size_t> read = body.read_at(offset, std::span<char>(out.data() + offset, 3));
    REQUIRE(read.ok());
    offset += read.value_unsafe();
  }
  return out;
}

PartInfo part(std::string_view endpoint, std::uint64_t index, std::uint64_t count) {
  return PartInfo{endpoint, index, count, UINT64_MAX};
}

}  // namespace

TEST_CASE("put_part reports stored, duplicate, conflicts and completeness") {
  MemoryStore store(test_options());
  PutOutcome first = store.put_part(part("e", 1, 2), "BB");
  CHECK(first.error == ErrorCode::ok);
  CHECK(first.status == PutStatus::stored);
  CHECK_FALSE(first.complete);
  CHECK(store.put_part(part("e", 1, 2), "BB").status == PutStatus::duplicate);
  CHECK(store.put_part(part("e", 1, 2), "XX").error == ErrorCode::partition_conflict);
  CHECK(store.put_part(part("e", 0, 3), "AA").error == ErrorCode::partition_count_conflict);
  PutOutcome last = store.put_part(part("e", 0, 2), "AA");
  CHECK(last.status == PutStatus::stored);
  CHECK(last.complete);
  CHECK(store.put_part(part("e", 0, 2), "AA").complete);  // a duplicate of a complete file says so
}

TEST_CASE("claim, read in order, finish leaves a done-mark") {
  MemoryStore store(test_options());
  (void)store.put_part(part("e", 2, 3), "789");
  CHECK(store.claim("e") == ClaimStatus::incomplete);
  (void)store.put_part(part("e", 0, 3), "");
  (void)store.put_part(part("e", 1, 3), "123456");
  CHECK(store.claim("e") == ClaimStatus::claimed);
  CHECK(store.claim("e") == ClaimStatus::busy);
  Result<std::unique_ptr<BodyReader>> body = store.open_body("e");
  REQUIRE(body.ok());
  CHECK(body.value_unsafe()->size() == 9);
  CHECK(read_all(*body.value_unsafe()) == "123456789");
  char byte = 0;
  Result<std::size_t> middle = body.value_unsafe()->read_at(7, std::span<char>(&byte, 1));
  CHECK(middle.value_unsafe() == 1);
  CHECK(byte == '8');
  CHECK(body.value_unsafe()->read_at(9, std::span<char>(&byte, 1)).value_unsafe() == 0);
  CHECK(store.finish("e") == ErrorCode::ok);
  CHECK(store.open_files() == 0);
  CHECK(store.bytes_held() == 0);
  CHECK(store.claim("e") == ClaimStatus::finished);
  CHECK(store.put_part(part("e", 0, 3), "anything").status == PutStatus::finished);
  // The body stays readable after the file is dropped.
  CHECK(read_all(*body.value_unsafe()) == "123456789");
}

TEST_CASE("release keeps the parts and marks the file pending: an expired lease can be retaken") {
  MemoryStore store(test_options());
  (void)store.put_part(part("e", 0, 1), "x");
  REQUIRE(store.claim("e") == ClaimStatus::claimed);
  CHECK(store.release("e", fake_now) == ErrorCode::ok);
  CHECK(store.pending("e"));
  CHECK(store.claim("e") == ClaimStatus::claimed);
  CHECK(store.claim("e") == ClaimStatus::busy);
  fake_now += std::chrono::seconds(301);  // the default lease is 300 s: a crashed winner
  CHECK(store.claim("e") == ClaimStatus::claimed);
}

TEST_CASE("expire drops abandoned files and old done-marks, not fresh ones") {
  MemoryStore store(test_options());
  (void)store.put_part(part("old", 0, 2), "x");
  (void)store.put_part(part("done", 0, 1), "y");
  REQUIRE(store.claim("done") == ClaimStatus::claimed);
  REQUIRE(store.finish("done") == ErrorCode::ok);
  fake_now += std::chrono::hours(20);
  (void)store.put_part(part("fresh", 0, 2), "z");
  CHECK(store.expire(fake_now + std::chrono::hours(5)) == 1);
  CHECK(store.open_files() == 1);
  CHECK(store.done_marks() == 0);
  CHECK(store.put_part(part("fresh", 1, 2), "w").complete);
}

TEST_CASE("done-marks are bounded in count, oldest first") {
  MemoryStoreOptions options = test_options();
  options.max_done_marks = 3;
  MemoryStore store(options);
  for (int i = 0; i < 5; ++i) {
    std::string key = "f";  // not "f" + to_string(i): g++ 12 false -Wrestrict (PR 105651)
    key += std::to_string(i);
    (void)store.put_part(part(key, 0, 1), "x");
    REQUIRE(store.claim(key) == ClaimStatus::claimed);
    REQUIRE(store.finish(key) == ErrorCode::ok);
  }
  CHECK(store.done_marks() == 3);
  CHECK(store.put_part(part("f0", 0, 1), "x").status == PutStatus::stored);    // forgotten
  CHECK(store.put_part(part("f4", 0, 1), "x").status == PutStatus::finished);  // remembered
}

TEST_CASE("byte and open-file bounds make the store full, without storing") {
  MemoryStoreOptions options = test_options();
  options.max_open_files = 2;
  MemoryStore store(options);
  (void)store.put_part(part("a", 0, 2), "x");
  (void)store.put_part(part("b", 0, 2), "x");
  CHECK(store.put_part(part("c", 0, 2), "x").error == ErrorCode::store_full);
  CHECK(store.open_files() == 2);

  MemoryStoreOptions small = test_options();
  small.max_bytes = 1000;
  MemoryStore bounded(small);
  CHECK(bounded.put_part(part("a", 0, 3), std::string(500, 'x')).error == ErrorCode::ok);
  const std::uint64_t held = bounded.bytes_held();
  CHECK(bounded.put_part(part("a", 1, 3), std::string(500, 'x')).error == ErrorCode::store_full);
  CHECK(bounded.bytes_held() == held);
  CHECK(bounded.put_part(part("b", 0, 1), std::string(900, 'x')).error == ErrorCode::store_full);
  CHECK(bounded.open_files() == 1);  // the file created for the refused part is gone again
  CHECK(bounded.bytes_held() == held);
}

TEST_CASE("file size bound") {
  MemoryStore store(test_options());
  CHECK(store.put_part(PartInfo{"a", 0, 2, 5}, "123").error == ErrorCode::ok);
  CHECK(store.put_part(PartInfo{"a", 1, 2, 5}, "456").error == ErrorCode::file_too_large);
}

TEST_CASE("concurrent writers: every part stored once, exactly one claim wins") {
  MemoryStore store;
  constexpr int parts = 2000;
  std::atomic<int> completions{0};
  std::atomic<int> claims{0};
  auto writer = [&](int start) {
    for (int i = 0; i < parts; ++i) {
      const int index = (i + start) % parts;
      const std::string bytes = std::to_string(index);
      const PutOutcome put =
          store.put_part(part("shared", static_cast<std::uint64_t>(index), parts), bytes);
      REQUIRE(put.error == ErrorCode::ok);
      if (put.complete) {
        ++completions;
        if (store.claim("shared") == ClaimStatus::claimed) ++claims;
      }
    }
  };
  std::thread t1(writer, 0), t2(writer, parts / 2), t3(writer, parts / 3);
  t1.join();
  t2.join();
  t3.join();
  CHECK(completions >= 1);
  CHECK(claims == 1);
}

TEST_CASE("claim_pending takes due pending files once, oldest first, within max") {
  MemoryStore store(test_options());
  for (const char* key : {"p1", "p2", "p3"}) {
    (void)store.put_part(part(key, 0, 1), "x");
    REQUIRE(store.claim(key) == ClaimStatus::claimed);
  }
  REQUIRE(store.release("p2", fake_now + std::chrono::seconds(5)) == ErrorCode::ok);
  REQUIRE(store.release("p1", fake_now + std::chrono::seconds(10)) == ErrorCode::ok);
  REQUIRE(store.release("p3", fake_now + std::chrono::seconds(60)) == ErrorCode::ok);
  CHECK(store.claim_pending(10, fake_now).empty());  // none due yet
  const std::vector<PendingFile> due = store.claim_pending(1, fake_now + std::chrono::seconds(30));
  REQUIRE(due.size() == 1);
  CHECK(due[0].endpoint == "p2");
  CHECK(due[0].failures == 1);
  const std::vector<PendingFile> next =
      store.claim_pending(10, fake_now + std::chrono::seconds(30));
  REQUIRE(next.size() == 1);
  CHECK(next[0].endpoint == "p1");
  CHECK(store.claim("p1") == ClaimStatus::busy);  // claimed by claim_pending
  CHECK(store.claim_pending(10, fake_now + std::chrono::seconds(30)).empty());
  // A second failure counts, and a finished file is never handed out again.
  REQUIRE(store.release("p1", fake_now + std::chrono::seconds(40)) == ErrorCode::ok);
  REQUIRE(store.finish("p3") == ErrorCode::ok);
  const std::vector<PendingFile> later = store.claim_pending(10, fake_now + std::chrono::hours(1));
  REQUIRE(later.size() == 1);
  CHECK(later[0].endpoint == "p1");
  CHECK(later[0].failures == 2);
}

TEST_CASE(
    "memory store: Reassemblers in several threads share one store: each file uploaded once") {
  MemoryStore store;
  constexpr int files = 30;
  constexpr int parts = 5;
  std::vector<std::string> records;
  for (int f = 0; f < files; ++f) {
    for (int p = 0; p < parts; ++p) {
      records.push_back(filebuilder::test::chunk(
          "https://bucket.example.com/shared/" + std::to_string(f), static_cast<std::uint64_t>(p),
          parts, std::to_string(f) + "/" + std::to_string(p) + ";"));
    }
  }
  constexpr int consumers = 3;
  std::vector<filebuilder::test::FakeUploader> uploaders(consumers);
  std::vector<int> uploaded(consumers, 0);
  std::vector<int> problems(consumers, 0);
  const auto consume = [&](int c) {
    Reassembler reassembler(store, uploaders[static_cast<std::size_t>(c)]);
    // Every consumer gets every record (at-least-once delivery), each in its own order,
    // in batches of 8.
    for (std::size_t i = 0; i < records.size();) {
      for (std::size_t n = 0; n < 8 && i < records.size(); ++n, ++i)
        reassembler.add(records[(i * (2 * static_cast<std::size_t>(c) + 1) + 3) % records.size()]);
      for (const RecordOutcome& outcome : reassembler.flush()) {
        uploaded[static_cast<std::size_t>(c)] += outcome.outcome == Outcome::uploaded;
        problems[static_cast<std::size_t>(c)] += !outcome.ok();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) threads.emplace_back(consume, c);
  for (std::thread& thread : threads) thread.join();
  int total = 0;
  std::map<std::string, std::string> bodies;
  for (int c = 0; c < consumers; ++c) {
    CHECK(problems[static_cast<std::size_t>(c)] == 0);
    total += uploaded[static_cast<std::size_t>(c)];
    for (const auto& call : uploaders[static_cast<std::size_t>(c)].calls) {
      CHECK(bodies.count(call.url) == 0);
      bodies[call.url] = call.body;
    }
  }
  CHECK(total == files);
  REQUIRE(bodies.size() == files);
  for (int f = 0; f < files; ++f) {
    std::string expected;
    for (int p = 0; p < parts; ++p) expected += std::to_string(f) + "/" + std::to_string(p) + ";";
    CHECK(bodies["https://bucket.example.com/shared/" + std::to_string(f)] == expected);
  }
  CHECK(store.open_files() == 0);
}

// clang-format off
FILEBUILDER_STORE_CONFORMANCE("memory", [] { return std::make_unique<MemoryStore>(); })
// clang-format on

namespace {
struct MemoryCheckpoints {
  static auto make() { return std::make_unique<MemoryStore>(); }
};
}  // namespace
FILEBUILDER_CHECKPOINT_CONFORMANCE("memory", MemoryCheckpoints);
