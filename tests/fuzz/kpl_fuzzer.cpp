// libFuzzer target: KPL deaggregation (kpl::Deaggregator). Built only with
// clang, under -DFILEBUILDER_FUZZ=ON; needs filebuilder::crypto (MD5).
//
// Each input is used twice: as a Kinesis record's bytes as they are, and as
// the protobuf of an aggregate (magic + input + its MD5), so that the
// protobuf reader runs on almost every input rather than stopping at the
// checksum.
//
// Invariants: never throws, never reads outside the record (ASan); a record
// passed through is yielded once, whole; an aggregate yields subs 0, 1, ...
// whose data and keys are views into the record; kpl_bad_index exactly when
// a key index is outside its table, with a message; one Deaggregator reused
// across records answers as a fresh one does; and the user records of an
// aggregate, packed again by kpl::Aggregator, deaggregate to the same
// records (the writer and the reader agree).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/source/kpl.hpp"
#include "fuzz_support.hpp"
#include "support/kpl.hpp"

namespace {

namespace kpl = filebuilder::kpl;
using filebuilder::ErrorCode;
using filebuilder::fuzz::fail;
using filebuilder::test::deaggregate;
using filebuilder::test::Deaggregated;

constexpr const char* target = "kpl";

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

/// The checks that need the views themselves, not copies.
void check_views(kpl::Deaggregator& deaggregator, std::string_view record) {
  (void)deaggregator.deaggregate(record, [&](const kpl::UserRecord& user) {
    if (!inside(user.data, record) || !inside(user.partition_key, record) ||
        !inside(user.explicit_hash_key, record))
      fail(target, "a user record's view is outside the record");
    if (deaggregator.message(user).empty() != (user.error == ErrorCode::ok))
      fail(target, "message() is empty exactly when there is no error: not so");
    if (user.error != ErrorCode::ok && user.error != kpl::bad_index_error)
      fail(target, "an error other than kpl_bad_index");
    const bool key_ok = user.partition_key_index < deaggregator.partition_keys().size();
    const bool hash_ok = !user.has_explicit_hash_key_index ||
                         user.explicit_hash_key_index < deaggregator.explicit_hash_keys().size();
    if (user.aggregated && (user.error == ErrorCode::ok) != (key_ok && hash_ok))
      fail(target, "kpl_bad_index does not match the key tables");
  });
}

void check(std::string_view record) {
  static kpl::Deaggregator reused;  // across inputs: nothing may carry over
  kpl::Deaggregator fresh;
  check_views(reused, record);
  const Deaggregated got = deaggregate(reused, record);
  const Deaggregated other = deaggregate(fresh, record);
  const kpl::DeaggregateResult result = got.result;
  const std::vector<filebuilder::test::Yielded>& seen = got.records;
  if (result.kind != other.result.kind || result.records != other.result.records ||
      seen != other.records)
    fail(target, "a reused Deaggregator answers differently from a fresh one");
  if (result.records != seen.size()) fail(target, "records differs from the user records yielded");

  if (result.passed_through()) {
    if (seen.size() != 1 || seen[0].data != record || seen[0].aggregated || seen[0].sub != 0 ||
        seen[0].error != ErrorCode::ok)
      fail(target, "a record passed through is not yielded once, whole");
    if (kpl::has_magic(record) == (result.kind == kpl::RecordKind::plain))
      fail(target, "plain exactly when there is no magic: not so");
    return;
  }
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (seen[i].sub != i || !seen[i].aggregated) fail(target, "subs are not 0, 1, 2, ...");
  }

  // Round trip through the writer: the records with valid keys.
  kpl::Aggregator aggregator(kpl::Aggregator::unlimited, std::size_t{1} << 30);
  std::vector<std::string> aggregates;
  const auto sink = [&](const kpl::Aggregate& aggregate) {
    aggregates.emplace_back(aggregate.bytes);
  };
  std::vector<filebuilder::test::Yielded> expected;
  for (const filebuilder::test::Yielded& user : seen) {
    if (user.error != ErrorCode::ok) continue;
    aggregator.add(user.partition_key, user.explicit_hash_key, user.data, sink);
    expected.push_back(user);
  }
  aggregator.flush(sink);
  if (expected.empty()) {
    if (!aggregates.empty()) fail(target, "the writer emitted an aggregate of nothing");
    return;
  }
  if (aggregates.size() != 1) fail(target, "the writer split an aggregate without a limit");
  const Deaggregated again = deaggregate(fresh, aggregates[0]);
  const std::vector<filebuilder::test::Yielded>& round_trip = again.records;
  if (again.result.kind != kpl::RecordKind::aggregate)
    fail(target, "the writer's aggregate does not deaggregate");
  if (round_trip.size() != expected.size()) fail(target, "the round trip lost user records");
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const filebuilder::test::Yielded& want = expected[i];
    const filebuilder::test::Yielded& got = round_trip[i];
    if (got.data != want.data || got.partition_key != want.partition_key ||
        got.explicit_hash_key != want.explicit_hash_key || got.error != ErrorCode::ok)
      fail(target, "the round trip changed a user record");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check(input);

  // The input as the protobuf of an aggregate with a correct checksum.
  static filebuilder::detail::kpl::Md5 md5;
  std::string record(reinterpret_cast<const char*>(kpl::magic.data()), kpl::magic.size());
  record += input;
  unsigned char checksum[kpl::checksum_size];
  if (!md5.digest(input, checksum)) fail(target, "OpenSSL computes no MD5");
  record.append(reinterpret_cast<const char*>(checksum), kpl::checksum_size);
  check(record);
  return 0;
}
