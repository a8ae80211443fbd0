// Reassembler::stage() + add_staged() must give every record exactly the
// outcome add() gives it: the same verdicts (limits, then the endpoint
// policy), the same stored parts, the same uploads. Each batch here goes
// through two fresh Reassemblers, one adding every record, one staging every
// record first and adding the staged ones (and add()-ing the ones stage()
// refuses), and everything they produce is compared.
#include <doctest/doctest.h>

#include <string>
#include <vector>

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
const std::string refused = "https://169.254.169.254/latest";

ReassemblerOptions options() {
  ReassemblerOptions o;
  o.limits.max_part_bytes = 64;
  o.limits.max_partitions = 100;
  return o;
}

struct Run {
  MemoryStore store;
  FakeUploader uploader;
  Reassembler<MemoryStore, FakeUploader> reassembler{store, uploader, options()};

  // Every outcome, upload and what the store holds, as text.
  std::string report(std::span<const RecordOutcome> outcomes) const {
    std::string out;
    for (const RecordOutcome& o : outcomes)
      out += std::string(outcome_name(o.outcome)) + " " + std::string(error_code_name(o.error)) +
             " " + o.message + " " + o.endpoint + " " + std::to_string(o.bytes) + "\n";
    for (const FakeUploader::Call& call : uploader.calls) out += call.url + " " + call.body + "\n";
    return out + "store " + std::to_string(store.open_files()) + " " +
           std::to_string(store.bytes_held()) + "\n";
  }
};

// The records, added one by one.
std::string added(const std::vector<std::string>& records) {
  Run run;
  for (const std::string& record : records) run.reassembler.add(record);
  return run.report(run.reassembler.flush());
}

// The records staged first (each from a buffer overwritten right after, as
// an adapter reuses it), then added in order. `staged_count` is how many
// stage() took.
std::string staged(const std::vector<std::string>& records, std::size_t& staged_count) {
  Run run;
  StagedChunks staged;
  std::vector<bool> taken;
  std::string buffer;
  for (const std::string& record : records) {
    buffer = record;
    taken.push_back(run.reassembler.stage(buffer, staged));
    buffer.assign(buffer.size(), '#');
  }
  std::size_t next = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (taken[i])
      run.reassembler.add_staged(staged, next++);
    else
      run.reassembler.add(records[i]);
  }
  staged_count = next;
  CHECK(next == staged.entries.size());
  return run.report(run.reassembler.flush());
}

}  // namespace

TEST_CASE("staged records: the outcomes add() gives, every verdict and upload") {
  const std::vector<std::string> records = {
      chunk(a, 1, 3, "BB"),
      chunk(b, 0, 2, "x"),  // another file between two of a's
      chunk(a, 0, 3, "AA"),
      chunk(a, 0, 3, "AA"),                  // duplicate
      chunk(a, 0, 3, "ZZ"),                  // conflict
      chunk(refused, 0, 1, "s"),             // the endpoint policy
      chunk(a, 0, 1000, "x"),                // too many partitions
      chunk(a, 2, 3, std::string(65, 'c')),  // too large: not plain, add() names it
      chunk(a, 5, 3, "x"),                   // out of range: not plain
      R"({"putEndpoint":"x", "partition":0})",
      "not json",
      chunk(b, 1, 2, "y"),   // completes b
      chunk(a, 2, 3, "CC"),  // completes a
      chunk(a, 2, 3, "CC"),  // a is finished
  };
  std::size_t staged_count = 0;
  const std::string expected = added(records);
  CHECK(staged(records, staged_count) == expected);
  CHECK(staged_count == 10);
  CHECK(expected.find("uploaded ok") != std::string::npos);
  CHECK(expected.find(a + " AABBCC") != std::string::npos);
  CHECK(expected.find(b + " xy") != std::string::npos);
}

TEST_CASE("staged records: endpoints alternating, repeated and refused between them") {
  std::vector<std::string> records;
  for (int i = 0; i < 4; ++i) {
    records.push_back(chunk(i % 2 ? a : b, static_cast<std::uint64_t>(i / 2), 2, "p"));
    records.push_back(chunk(refused, 0, 1, "s"));
    records.push_back(chunk(refused, 0, 1, "s"));
  }
  std::size_t staged_count = 0;
  CHECK(staged(records, staged_count) == added(records));
  CHECK(staged_count == records.size());
}

TEST_CASE("staged records: a StagedChunks reused, and shared by two Reassemblers") {
  MemoryStore store;
  FakeUploader uploader;
  Reassembler<MemoryStore, FakeUploader> first(store, uploader, options());
  Reassembler<MemoryStore, FakeUploader> second(store, uploader, options());
  StagedChunks staged;
  // first checks a, second checks b, then first sees a again: the endpoint
  // staged for it must be a's, though first's check did not change.
  REQUIRE(first.stage(chunk(a, 0, 3, "AA"), staged));
  REQUIRE(second.stage(chunk(b, 0, 1, "B"), staged));
  REQUIRE(first.stage(chunk(a, 1, 3, "BB"), staged));
  first.add_staged(staged, 0);
  second.add_staged(staged, 1);
  first.add_staged(staged, 2);
  CHECK(first.flush().size() == 2);
  CHECK(second.flush()[0].outcome == Outcome::uploaded);
  staged.clear();
  CHECK(staged.entries.empty());
  REQUIRE(first.stage(chunk(a, 2, 3, "CC"), staged));
  first.add_staged(staged, 0);
  CHECK(first.flush()[0].outcome == Outcome::uploaded);
  REQUIRE(uploader.calls.size() == 2);
  CHECK(uploader.calls[0].url == b);
  CHECK(uploader.calls[0].body == "B");
  CHECK(uploader.calls[1].url == a);
  CHECK(uploader.calls[1].body == "AABBCC");
}

TEST_CASE("staged records: nothing is staged with the fast path off") {
  MemoryStore store;
  FakeUploader uploader;
  ReassemblerOptions o = options();
  o.fast_path = false;
  Reassembler<MemoryStore, FakeUploader> reassembler(store, uploader, o);
  StagedChunks staged;
  CHECK_FALSE(reassembler.stage(chunk(a, 0, 1, "x"), staged));
  CHECK(staged.entries.empty());
}
