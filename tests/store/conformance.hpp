// One suite, many stores: the StateStore semantics every store must keep.
//
// Instantiate it in a store's own test file with a factory that makes a fresh,
// empty store (with default options unless said otherwise):
//
//   FILEBUILDER_STORE_CONFORMANCE("memory", [] { return std::make_unique<MemoryStore>(); })
//
// Endpoints are unique per test case, so a durable store may be shared.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "filebuilder/concepts.hpp"

namespace filebuilder::test::conformance {

inline std::string unique_endpoint(std::string_view name) {
  static std::atomic<unsigned> counter{0};
  std::string endpoint = "https://bucket.example.com/conformance/";
  endpoint += name;
  endpoint += '-';
  endpoint += std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  endpoint += '-';
  endpoint += std::to_string(counter++);
  endpoint += "?X-Amz-Signature=abc";
  return endpoint;
}

inline PartInfo part(std::string_view endpoint, std::uint64_t index, std::uint64_t count,
                     std::uint64_t max_file_bytes = UINT64_MAX) {
  return PartInfo{endpoint, index, count, max_file_bytes};
}

inline std::string read_all(BodyReader& body, std::size_t step = 3) {
  std::string out(body.size(), '\0');
  std::uint64_t offset = 0;
  while (offset < out.size()) {
    const std::size_t want = std::min<std::size_t>(step, out.size() - offset);
    Result<std::size_t> read = body.read_at(offset, std::span<char>(out.data() + offset, want));
    REQUIRE(read.ok());
    REQUIRE(read.value_unsafe() > 0);
    offset += read.value_unsafe();
  }
  return out;
}

template <StateStore S>
void put_part_semantics(S& store) {
  const std::string e = unique_endpoint("put");
  const PutOutcome first = store.put_part(part(e, 1, 2), "BB");
  CHECK(first.error == ErrorCode::ok);
  CHECK(first.status == PutStatus::stored);
  CHECK_FALSE(first.complete);
  const PutOutcome again = store.put_part(part(e, 1, 2), "BB");
  CHECK(again.error == ErrorCode::ok);
  CHECK(again.status == PutStatus::duplicate);
  CHECK(store.put_part(part(e, 1, 2), "XX").error == ErrorCode::partition_conflict);
  CHECK(store.put_part(part(e, 0, 3), "AA").error == ErrorCode::partition_count_conflict);
  const PutOutcome last = store.put_part(part(e, 0, 2), "AA");
  CHECK(last.status == PutStatus::stored);
  CHECK(last.complete);
  CHECK(store.put_part(part(e, 0, 2), "AA").complete);  // a duplicate of a complete file says so
}

template <StateStore S>
void claim_read_finish(S& store) {
  const std::string e = unique_endpoint("claim");
  (void)store.put_part(part(e, 2, 3), "789");
  CHECK(store.claim(e) == ClaimStatus::incomplete);
  (void)store.put_part(part(e, 0, 3), "");
  (void)store.put_part(part(e, 1, 3), "123456");
  CHECK(store.claim(e) == ClaimStatus::claimed);
  CHECK(store.claim(e) == ClaimStatus::busy);
  Result<std::unique_ptr<BodyReader>> body = store.open_body(e);
  REQUIRE(body.ok());
  BodyReader& reader = *body.value_unsafe();
  CHECK(reader.size() == 9);
  CHECK(read_all(reader) == "123456789");
  CHECK(read_all(reader, 64 * 1024) == "123456789");  // positional: readable again
  char byte = 0;
  CHECK(reader.read_at(7, std::span<char>(&byte, 1)).value_unsafe() == 1);
  CHECK(byte == '8');
  CHECK(reader.read_at(9, std::span<char>(&byte, 1)).value_unsafe() == 0);
  CHECK(store.finish(e) == ErrorCode::ok);
  CHECK(store.claim(e) == ClaimStatus::finished);
  CHECK(store.put_part(part(e, 0, 3), "anything").status == PutStatus::finished);
}

template <StateStore S>
void empty_and_binary_files(S& store) {
  const std::string empty = unique_endpoint("empty");
  CHECK(store.put_part(part(empty, 0, 1), "").complete);
  REQUIRE(store.claim(empty) == ClaimStatus::claimed);
  Result<std::unique_ptr<BodyReader>> body = store.open_body(empty);
  REQUIRE(body.ok());
  CHECK(body.value_unsafe()->size() == 0);
  CHECK(store.finish(empty) == ErrorCode::ok);

  const std::string binary = unique_endpoint("binary");
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  (void)store.put_part(part(binary, 1, 2), bytes);
  CHECK(store.put_part(part(binary, 0, 2), std::string(1, '\0')).complete);
  REQUIRE(store.claim(binary) == ClaimStatus::claimed);
  Result<std::unique_ptr<BodyReader>> body2 = store.open_body(binary);
  REQUIRE(body2.ok());
  CHECK(read_all(*body2.value_unsafe(), 100) == std::string(1, '\0') + bytes);
  CHECK(store.finish(binary) == ErrorCode::ok);
}

template <StateStore S>
void release_and_pending(S& store) {
  const std::string e = unique_endpoint("pending");
  (void)store.put_part(part(e, 0, 1), "x");
  REQUIRE(store.claim(e) == ClaimStatus::claimed);
  const Clock::time_point now = Clock::now();
  CHECK(store.release(e, now + std::chrono::hours(1)) == ErrorCode::ok);
  // The parts are kept: the file can be claimed again (a redelivered record).
  CHECK(store.claim(e) == ClaimStatus::claimed);
  CHECK(store.release(e, now + std::chrono::seconds(1)) == ErrorCode::ok);
  bool found_early = false;
  for (const PendingFile& file : store.claim_pending(1000, now)) found_early |= file.endpoint == e;
  CHECK_FALSE(found_early);  // not due yet
  std::vector<PendingFile> due = store.claim_pending(1000, now + std::chrono::hours(2));
  const auto it = std::find_if(due.begin(), due.end(),
                               [&](const PendingFile& file) { return file.endpoint == e; });
  REQUIRE(it != due.end());
  CHECK(it->failures == 2);
  CHECK(store.claim(e) == ClaimStatus::busy);  // claim_pending claimed it
  Result<std::unique_ptr<BodyReader>> body = store.open_body(e);
  REQUIRE(body.ok());
  CHECK(read_all(*body.value_unsafe()) == "x");
  CHECK(store.finish(e) == ErrorCode::ok);
  for (const PendingFile& file : store.claim_pending(1000, now + std::chrono::hours(3)))
    CHECK(file.endpoint != e);  // finished files are never handed out again
}

template <StateStore S>
void file_size_bound(S& store) {
  const std::string e = unique_endpoint("bound");
  CHECK(store.put_part(part(e, 0, 2, 5), "123").error == ErrorCode::ok);
  CHECK(store.put_part(part(e, 1, 2, 5), "456").error == ErrorCode::file_too_large);
  CHECK(store.put_part(part(e, 1, 2, 5), "45").complete);
}

template <StateStore S>
void expire_abandoned(S& store) {
  const std::string old_file = unique_endpoint("old");
  (void)store.put_part(part(old_file, 0, 2), "x");
  const std::string done = unique_endpoint("done");
  (void)store.put_part(part(done, 0, 1), "y");
  REQUIRE(store.claim(done) == ClaimStatus::claimed);
  REQUIRE(store.finish(done) == ErrorCode::ok);
  CHECK(store.expire(Clock::now()) == 0);
  CHECK(store.put_part(part(done, 0, 1), "y").status == PutStatus::finished);
  CHECK(store.expire(Clock::now() + std::chrono::hours(24 * 30)) >= 1);
  // Both forgotten: the old file starts afresh, the done-mark is gone.
  CHECK(store.put_part(part(old_file, 1, 2), "z").complete == false);
  CHECK(store.put_part(part(done, 0, 1), "y").status == PutStatus::stored);
}

template <StateStore S>
void concurrent_writers(S& store) {
  const std::string e = unique_endpoint("concurrent");
  constexpr int parts = 300;
  std::atomic<int> claims{0};
  std::atomic<int> errors{0};
  auto writer = [&](int start) {
    for (int i = 0; i < parts; ++i) {
      const int index = (i + start) % parts;
      const PutOutcome put =
          store.put_part(part(e, static_cast<std::uint64_t>(index), parts), std::to_string(index));
      if (put.error != ErrorCode::ok) ++errors;
      if (put.complete && store.claim(e) == ClaimStatus::claimed) ++claims;
    }
  };
  std::thread t1(writer, 0), t2(writer, parts / 2), t3(writer, parts / 3);
  t1.join();
  t2.join();
  t3.join();
  CHECK(errors == 0);
  CHECK(claims == 1);
  Result<std::unique_ptr<BodyReader>> body = store.open_body(e);
  REQUIRE(body.ok());
  std::string expected;
  for (int i = 0; i < parts; ++i) expected += std::to_string(i);
  CHECK(read_all(*body.value_unsafe(), 17) == expected);
}

/// Every step at once from several threads, as consumers sharing a store do:
/// writers put the parts of many files (each writer in its own order); the
/// thread whose put completes a file claims it, reads the body and checks its
/// bytes, then finishes it, or, the first time for every other file,
/// releases it (a failed upload); a retrier takes released files with
/// claim_pending and finishes them; expire runs meanwhile (nothing is old
/// enough to go). Every file is finished exactly once, by its claim's holder.
template <StateStore S>
void concurrent_lifecycle(S& store) {
  constexpr int files = 24;
  constexpr int parts = 4;
  constexpr int writers = 3;
  std::vector<std::string> endpoints;
  for (int f = 0; f < files; ++f) endpoints.push_back(unique_endpoint("lifecycle"));
  const auto bytes_of = [](int f, int p) { return std::to_string(f) + ":" + std::to_string(p); };
  std::vector<std::atomic<int>> finishes(files);
  std::vector<std::atomic<bool>> released(files);
  std::atomic<int> errors{0};
  std::atomic<int> done_writers{0};

  const auto upload = [&](int f) {  // the caller holds the claim of file f
    Result<std::unique_ptr<BodyReader>> body = store.open_body(endpoints[f]);
    if (!body.ok()) {
      ++errors;
      return;
    }
    std::string expected;
    for (int p = 0; p < parts; ++p) expected += bytes_of(f, p);
    std::string got(body.value_unsafe()->size(), '\0');
    std::uint64_t offset = 0;
    while (offset < got.size()) {
      Result<std::size_t> read =
          body.value_unsafe()->read_at(offset, std::span<char>(got.data() + offset, 2));
      if (!read.ok() || read.value_unsafe() == 0) break;
      offset += read.value_unsafe();
    }
    if (got != expected) ++errors;
    if (f % 2 == 1 && !released[f].exchange(true)) {
      if (store.release(endpoints[f], Clock::now()) != ErrorCode::ok) ++errors;
      return;
    }
    ++finishes[f];
    if (store.finish(endpoints[f]) != ErrorCode::ok) ++errors;
  };
  const auto writer = [&](int seed) {
    for (int i = 0; i < files * parts; ++i) {
      const int k = (i * 7 + seed * 11) % (files * parts);
      const int f = k / parts;
      const int p = k % parts;
      const PutOutcome put =
          store.put_part(part(endpoints[f], static_cast<std::uint64_t>(p), parts), bytes_of(f, p));
      if (put.error != ErrorCode::ok) ++errors;
      if (put.complete && store.claim(endpoints[f]) == ClaimStatus::claimed) upload(f);
    }
    ++done_writers;
  };
  const auto retrier = [&] {
    while (true) {
      const bool last_round = done_writers == writers;
      for (const PendingFile& file : store.claim_pending(4, Clock::now())) {
        const auto it = std::find(endpoints.begin(), endpoints.end(), file.endpoint);
        if (it != endpoints.end()) upload(static_cast<int>(it - endpoints.begin()));
      }
      (void)store.expire(Clock::now());
      if (last_round) break;
      std::this_thread::yield();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) threads.emplace_back(writer, w);
  threads.emplace_back(retrier);
  for (std::thread& thread : threads) thread.join();
  // A file released after the retrier's last round is still pending: finish it here.
  for (const PendingFile& file : store.claim_pending(files, Clock::now())) {
    const auto it = std::find(endpoints.begin(), endpoints.end(), file.endpoint);
    if (it != endpoints.end()) upload(static_cast<int>(it - endpoints.begin()));
  }
  CHECK(errors == 0);
  for (int f = 0; f < files; ++f) {
    CAPTURE(f);
    CHECK(finishes[f] == 1);
    CHECK(store.claim(endpoints[f]) == ClaimStatus::finished);
  }
}

}  // namespace filebuilder::test::conformance

#define FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, CHECK_FN) \
  TEST_CASE("store conformance (" NAME "): " #CHECK_FN) {           \
    auto store = (FACTORY)();                                       \
    ::filebuilder::test::conformance::CHECK_FN(*store);             \
  }

/// Defines the conformance test cases for one store. FACTORY: a callable
/// returning a pointer-like owner of a fresh store.
#define FILEBUILDER_STORE_CONFORMANCE(NAME, FACTORY)                        \
  FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, put_part_semantics)     \
  FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, claim_read_finish)      \
  FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, empty_and_binary_files) \
  FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, release_and_pending)    \
  FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, file_size_bound)        \
  FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, expire_abandoned)       \
  FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, concurrent_writers)     \
  FILEBUILDER_STORE_CONFORMANCE_CASE(NAME, FACTORY, concurrent_lifecycle)
