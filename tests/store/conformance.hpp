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
#include <optional>
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

// ===========================================================================
// CheckpointStore conformance: its own block, separate from the StateStore
// cases above. Instantiate it in a store's test file with a fixture type whose
// static make() returns a pointer-like owner of a fresh store:
//
//   struct MemoryCheckpoints {
//     static auto make() { return std::make_unique<MemoryStore>(); }
//   };
//   FILEBUILDER_CHECKPOINT_CONFORMANCE("memory", MemoryCheckpoints);
//
// Stream names are unique per test case, so a durable store may be shared.

namespace filebuilder::test::checkpoints {

/// A 56-digit sequence number, as Kinesis's: "4959" then n, zero-padded.
inline std::string sequence(std::uint64_t n) {
  // Built in place: g++ 12 -O3 warns (-Wrestrict) about "literal" + std::string(n, c).
  std::string digits(56, '0');
  digits.replace(0, 4, "4959");
  const std::string tail = std::to_string(n);
  digits.replace(digits.size() - tail.size(), tail.size(), tail);
  return digits;
}

inline Checkpoint at(std::string sequence_number, std::uint64_t sub_sequence = 0) {
  return Checkpoint{std::move(sequence_number), sub_sequence, false};
}

inline Checkpoint shard_end(std::string sequence_number, std::uint64_t sub_sequence = 0) {
  return Checkpoint{std::move(sequence_number), sub_sequence, true};
}

template <CheckpointStore S>
std::optional<Checkpoint> load(S& store, std::string_view stream, std::string_view shard) {
  Result<std::optional<Checkpoint>> loaded = store.load_checkpoint(stream, shard);
  REQUIRE(loaded.error() == ErrorCode::ok);
  return loaded.value_unsafe();
}

template <CheckpointStore S>
std::vector<ShardCheckpoint> list(S& store, std::string_view stream) {
  Result<std::vector<ShardCheckpoint>> listed = store.list_checkpoints(stream);
  REQUIRE(listed.error() == ErrorCode::ok);
  return listed.value_unsafe();
}

}  // namespace filebuilder::test::checkpoints

namespace doctest {
template <>
struct StringMaker<filebuilder::Checkpoint> {
  static String convert(const filebuilder::Checkpoint& checkpoint) {
    const std::string text = (checkpoint.shard_end ? "shard_end " : "") +
                             checkpoint.sequence_number + "/" +
                             std::to_string(checkpoint.sub_sequence);
    return String(text.c_str());
  }
};
}  // namespace doctest

namespace filebuilder::test::checkpoints {

// The cases: each gets a fresh store and a stream name of its own.

template <CheckpointStore S>
void round_trip(S& store, const std::string& stream) {
  CHECK(load(store, stream, "shardId-000000000000") == std::nullopt);
  CHECK(list(store, stream).empty());

  const Checkpoint first = at(sequence(1));
  REQUIRE(store.save_checkpoint(stream, "shardId-000000000000", first) == ErrorCode::ok);
  CHECK(load(store, stream, "shardId-000000000000") == first);
  CHECK(load(store, stream, "shardId-000000000001") == std::nullopt);

  const Checkpoint kpl = at(sequence(2), 7);  // a user record of an aggregated record
  REQUIRE(store.save_checkpoint(stream, "shardId-000000000000", kpl) == ErrorCode::ok);
  CHECK(load(store, stream, "shardId-000000000000") == kpl);

  // The extremes: 128 digits and the largest sub-sequence; a shard end naming no record.
  const Checkpoint widest = at(std::string(128, '9'), UINT64_MAX);
  REQUIRE(store.save_checkpoint(stream, "shardId-000000000001", widest) == ErrorCode::ok);
  CHECK(load(store, stream, "shardId-000000000001") == widest);
  const Checkpoint ended = shard_end("");
  REQUIRE(store.save_checkpoint(stream, "shardId-000000000002", ended) == ErrorCode::ok);
  CHECK(load(store, stream, "shardId-000000000002") == ended);
  const Checkpoint zero = at("0");
  REQUIRE(store.save_checkpoint(stream, "shardId-000000000003", zero) == ErrorCode::ok);
  CHECK(load(store, stream, "shardId-000000000003") == zero);
}

template <CheckpointStore S>
void never_backwards(S& store, const std::string& stream) {
  const auto save = [&](std::string_view shard, const Checkpoint& checkpoint) {
    CHECK(store.save_checkpoint(stream, shard, checkpoint) == ErrorCode::ok);  // ignored is ok
  };

  save("a", at(sequence(100), 5));
  save("a", at(sequence(99), 9));  // an earlier record: ignored
  CHECK(load(store, stream, "a") == at(sequence(100), 5));
  save("a", at(sequence(100), 4));  // an earlier user record of the same record
  CHECK(load(store, stream, "a") == at(sequence(100), 5));
  save("a", at(sequence(100), 5));  // the same again: idempotent
  CHECK(load(store, stream, "a") == at(sequence(100), 5));
  save("a", at(sequence(100), 6));
  CHECK(load(store, stream, "a") == at(sequence(100), 6));
  save("a", at(sequence(101)));  // the next record's first user record is past them all
  CHECK(load(store, stream, "a") == at(sequence(101)));

  // 57 digits are more than 56, whatever the text says.
  const std::string nines56(56, '9');
  std::string ten57(57, '0');
  ten57[0] = '1';
  save("b", at(nines56));
  save("b", at(ten57));
  CHECK(load(store, stream, "b") == at(ten57));
  save("b", at(nines56));
  CHECK(load(store, stream, "b") == at(ten57));
  save("c", at("10"));
  save("c", at("9"));
  CHECK(load(store, stream, "c") == at("10"));

  // Sub-sequences beyond a double's 53 bits (Lua numbers): still exact.
  save("d", at(sequence(7), UINT64_MAX));
  save("d", at(sequence(7), UINT64_MAX - 1));
  CHECK(load(store, stream, "d") == at(sequence(7), UINT64_MAX));
  save("e", at(sequence(7), UINT64_MAX - 1));
  save("e", at(sequence(7), UINT64_MAX));
  CHECK(load(store, stream, "e") == at(sequence(7), UINT64_MAX));
  // Sequence numbers that one double cannot tell apart: 128 digits, the last differs.
  const std::string high = std::string(127, '8') + "9", low = std::string(127, '8') + "8";
  save("f", at(low));
  save("f", at(high));
  CHECK(load(store, stream, "f") == at(high));
  save("f", at(low));
  CHECK(load(store, stream, "f") == at(high));
}

template <CheckpointStore S>
void shard_end_is_final(S& store, const std::string& stream) {
  REQUIRE(store.save_checkpoint(stream, "parent", at(sequence(3))) == ErrorCode::ok);
  REQUIRE(store.save_checkpoint(stream, "parent", shard_end(sequence(3))) == ErrorCode::ok);
  CHECK(load(store, stream, "parent") == shard_end(sequence(3)));
  // A stale reader of the shard, later records, the widest numbers: all behind its end.
  CHECK(store.save_checkpoint(stream, "parent", at(sequence(2))) == ErrorCode::ok);
  CHECK(store.save_checkpoint(stream, "parent", at(sequence(4))) == ErrorCode::ok);
  CHECK(store.save_checkpoint(stream, "parent", at(std::string(128, '9'), UINT64_MAX)) ==
        ErrorCode::ok);
  CHECK(load(store, stream, "parent") == shard_end(sequence(3)));
  CHECK(store.save_checkpoint(stream, "parent", shard_end(sequence(3))) == ErrorCode::ok);
  CHECK(store.save_checkpoint(stream, "parent", shard_end("")) == ErrorCode::ok);
  CHECK(load(store, stream, "parent") == shard_end(sequence(3)));

  // A shard ended before any record was handled: only a further end replaces it.
  REQUIRE(store.save_checkpoint(stream, "empty", shard_end("")) == ErrorCode::ok);
  CHECK(store.save_checkpoint(stream, "empty", at(sequence(1))) == ErrorCode::ok);
  CHECK(load(store, stream, "empty") == shard_end(""));
  CHECK(store.save_checkpoint(stream, "empty", shard_end(sequence(1))) == ErrorCode::ok);
  CHECK(load(store, stream, "empty") == shard_end(sequence(1)));
}

template <CheckpointStore S>
void malformed_refused(S& store, const std::string& stream) {
  const std::vector<std::string> bad = {"",
                                        "0123",
                                        "00",
                                        "12a4",
                                        "-1",
                                        "+1",
                                        " 1",
                                        "1 ",
                                        "1.0",
                                        "1e9",
                                        "0x1",
                                        "\xd9\xa1",
                                        std::string(129, '1')};
  for (const std::string& sequence_number : bad) {
    CAPTURE(sequence_number);
    CHECK(store.save_checkpoint(stream, "shard", at(sequence_number)) ==
          ErrorCode::invalid_checkpoint);
    if (!sequence_number.empty()) {
      CHECK(store.save_checkpoint(stream, "shard", shard_end(sequence_number)) ==
            ErrorCode::invalid_checkpoint);
    }
  }
  CHECK(load(store, stream, "shard") == std::nullopt);  // nothing was stored

  const std::string too_long(max_checkpoint_name_bytes + 1, 'n');
  const std::string longest(max_checkpoint_name_bytes, 'n');
  for (const std::string& name : {std::string(), too_long}) {
    CHECK(store.save_checkpoint(stream, name, at("1")) == ErrorCode::invalid_checkpoint);
    CHECK(store.save_checkpoint(name, "shard", at("1")) == ErrorCode::invalid_checkpoint);
    CHECK(store.load_checkpoint(stream, name).error() == ErrorCode::invalid_checkpoint);
    CHECK(store.load_checkpoint(name, "shard").error() == ErrorCode::invalid_checkpoint);
    CHECK(store.list_checkpoints(name).error() == ErrorCode::invalid_checkpoint);
  }
  CHECK(list(store, stream).empty());

  // The limits themselves are fine.
  REQUIRE(store.save_checkpoint(stream, longest, at(std::string(128, '1'))) == ErrorCode::ok);
  CHECK(load(store, stream, longest) == at(std::string(128, '1')));
  const std::string long_stream = longest.substr(0, longest.size() - stream.size()) + stream;
  REQUIRE(store.save_checkpoint(long_stream, "shard", at("1")) == ErrorCode::ok);
  CHECK(load(store, long_stream, "shard") == at("1"));
}

template <CheckpointStore S>
void isolated(S& store, const std::string& stream) {
  // Names that would be paths, keys or lines if a store trusted them.
  std::vector<std::string> shards = {"shardId-000000000000",
                                     "shardId-000000000001",
                                     "a/b",
                                     "../../../../etc/passwd",
                                     "..",
                                     ".",
                                     "/",
                                     "dir/",
                                     "with space",
                                     "tab\there",
                                     "\x01\x02\x7f",
                                     "\xff\xfe",
                                     "\xe6\x97\xa5\xe6\x9c\xac",
                                     "lock",
                                     "c:x",
                                     "1 2 3"};
  const std::string hex64(64, 'a');  // a SHA-256's length, and its lock file's name
  shards.insert(shards.end(),
                {std::string(256, 's'), hex64, hex64 + ".lock", std::string("new\nline"),
                 std::string("filebuilder-checkpoint 1\n")});
  const std::string a = stream + "/../..", b = stream + "\n" + std::string(200, 'b');
  const std::string never = stream + "-none";
  for (std::size_t i = 0; i < shards.size(); ++i) {
    CAPTURE(i);
    REQUIRE(store.save_checkpoint(a, shards[i], at(std::to_string(100 + i))) == ErrorCode::ok);
    REQUIRE(store.save_checkpoint(b, shards[i], at(std::to_string(900 + i), i)) == ErrorCode::ok);
  }
  std::vector<ShardCheckpoint> expected_a, expected_b;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    CAPTURE(i);
    CHECK(load(store, a, shards[i]) == at(std::to_string(100 + i)));
    CHECK(load(store, b, shards[i]) == at(std::to_string(900 + i), i));
    CHECK(load(store, never, shards[i]) == std::nullopt);
    expected_a.emplace_back(shards[i], at(std::to_string(100 + i)));
    expected_b.emplace_back(shards[i], at(std::to_string(900 + i), i));
  }
  const auto by_name = [](const ShardCheckpoint& x, const ShardCheckpoint& y) {
    return x.first < y.first;
  };
  std::sort(expected_a.begin(), expected_a.end(), by_name);
  std::sort(expected_b.begin(), expected_b.end(), by_name);
  CHECK(list(store, a) == expected_a);  // sorted by shard name, bytewise
  CHECK(list(store, b) == expected_b);
  CHECK(list(store, never).empty());
  CHECK(list(store, a.substr(0, a.size() - 1)).empty());  // a prefix is another stream
}

template <CheckpointStore S>
void concurrent_saves(S& store, const std::string& stream) {
  constexpr int threads = 4;
  constexpr std::uint64_t saves = 60;
  std::atomic<int> errors{0}, backwards{0}, writing{threads};
  const auto writer = [&](int t) {
    // Each thread its own order: ascending, descending, interleaved, by stride.
    for (std::uint64_t i = 0; i < saves; ++i) {
      std::uint64_t k = i;
      if (t == 1) k = saves - 1 - i;
      if (t == 2) k = i % 2 == 0 ? i / 2 : saves - 1 - i / 2;
      if (t == 3) k = (i * 7) % saves;
      const Checkpoint checkpoint = at(sequence(k / 2), k % 2 == 0 ? 0 : UINT64_MAX);
      if (store.save_checkpoint(stream, "shard", checkpoint) != ErrorCode::ok) ++errors;
    }
    --writing;
  };
  const auto reader = [&] {
    std::optional<Checkpoint> last;
    while (writing > 0) {
      Result<std::optional<Checkpoint>> now = store.load_checkpoint(stream, "shard");
      if (!now.ok()) {
        ++errors;
        continue;
      }
      if (last && (!now.value_unsafe() || *now.value_unsafe() < *last)) ++backwards;
      if (now.value_unsafe()) last = now.value_unsafe();
    }
  };
  std::vector<std::thread> running;
  running.emplace_back(reader);
  for (int t = 0; t < threads; ++t) running.emplace_back(writer, t);
  for (std::thread& thread : running) thread.join();
  CHECK(errors == 0);
  CHECK(backwards == 0);
  CHECK(load(store, stream, "shard") == at(sequence((saves - 1) / 2), UINT64_MAX));
}

}  // namespace filebuilder::test::checkpoints

#define FILEBUILDER_CHECKPOINT_CASE(NAME, CHECK_FN)                                           \
  TEST_CASE_TEMPLATE_DEFINE("checkpoint conformance: " NAME, F, fb_checkpoints_##CHECK_FN) {  \
    auto store = F::make();                                                                   \
    ::filebuilder::test::checkpoints::CHECK_FN(                                               \
        *store, ::filebuilder::test::conformance::unique_endpoint("checkpoints-" #CHECK_FN)); \
  }

FILEBUILDER_CHECKPOINT_CASE("absent is nullopt, then a save loads back", round_trip)
FILEBUILDER_CHECKPOINT_CASE("never backwards, numbers compared as numbers", never_backwards)
FILEBUILDER_CHECKPOINT_CASE("a shard end is final", shard_end_is_final)
FILEBUILDER_CHECKPOINT_CASE("malformed names and numbers are refused", malformed_refused)
FILEBUILDER_CHECKPOINT_CASE("streams and shards are apart, whatever names", isolated)
FILEBUILDER_CHECKPOINT_CASE("concurrent saves from threads end at the greatest", concurrent_saves)

/// Defines the checkpoint conformance test cases for FIXTURE, named NAME in
/// the test names ("...<NAME>"). At namespace scope (see above).
#define FILEBUILDER_CHECKPOINT_CONFORMANCE(NAME, FIXTURE)                \
  TYPE_TO_STRING_AS(NAME, FIXTURE);                                      \
  TEST_CASE_TEMPLATE_INVOKE(fb_checkpoints_round_trip, FIXTURE);         \
  TEST_CASE_TEMPLATE_INVOKE(fb_checkpoints_never_backwards, FIXTURE);    \
  TEST_CASE_TEMPLATE_INVOKE(fb_checkpoints_shard_end_is_final, FIXTURE); \
  TEST_CASE_TEMPLATE_INVOKE(fb_checkpoints_malformed_refused, FIXTURE);  \
  TEST_CASE_TEMPLATE_INVOKE(fb_checkpoints_isolated, FIXTURE);           \
  TEST_CASE_TEMPLATE_INVOKE(fb_checkpoints_concurrent_saves, FIXTURE)

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
