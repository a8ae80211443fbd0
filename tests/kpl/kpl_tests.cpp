// Tests of filebuilder/source/kpl.hpp (the KPL deaggregator) and
// detail/kpl_writer.hpp (the aggregator): every rule of the format with exact
// expectations, the 1 MiB packing limit, Splitter's --aggregate output, and the
// Kinesis reply of user records that share their parent's sequence number.
// Aggregates are built here by a separate, minimal protobuf encoder, so that
// the deaggregator is not only tested against our own writer; the cross-tests
// against the official aws-kinesis-agg package are in kpl_itest.cpp.
#include "filebuilder/source/kpl.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <simdjson.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/envelope.hpp"
#include "filebuilder/source/kinesis.hpp"
#include "filebuilder/split.hpp"

namespace {

namespace kpl = filebuilder::kpl;
using filebuilder::ErrorCode;
using kpl::RecordKind;

// --- an independent encoder -------------------------------------------------

std::string md5(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  REQUIRE(EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_md5(), nullptr) == 1);
  REQUIRE(size == 16);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

const std::string magic = "\xF3\x89\x9A\xC2";

std::string varint(std::uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
  return out;
}

/// A length-delimited field.
std::string bytes_field(unsigned field, std::string_view bytes) {
  return varint(field << 3 | 2) + varint(bytes.size()) + std::string(bytes);
}

std::string varint_field(unsigned field, std::uint64_t value) {
  return varint(field << 3 | 0) + varint(value);
}

/// Magic + protobuf + its MD5.
std::string aggregate_of(std::string_view protobuf) {
  return magic + std::string(protobuf) + md5(protobuf);
}

/// A Record message's field in an AggregatedRecord.
std::string record_field(std::uint64_t key_index, std::string_view data,
                         const std::string& extra = {}) {
  return bytes_field(3, varint_field(1, key_index) + bytes_field(3, data) + extra);
}

std::string record_field_with_hash(std::uint64_t key_index, std::uint64_t hash_index,
                                   std::string_view data) {
  return bytes_field(
      3, varint_field(1, key_index) + varint_field(2, hash_index) + bytes_field(3, data));
}

std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

// --- what the deaggregator yields, copied -------------------------------------

struct Yielded {
  std::string data;
  std::string partition_key;
  std::string explicit_hash_key;
  std::uint64_t sub = 0;
  bool aggregated = false;
  ErrorCode error = ErrorCode::ok;
  std::string message;

  bool operator==(const Yielded&) const = default;
};

struct Deaggregated {
  kpl::DeaggregateResult result;
  std::vector<Yielded> records;
};

Deaggregated deaggregate(kpl::Deaggregator& deaggregator, std::string_view bytes) {
  Deaggregated out;
  out.result = deaggregator.deaggregate(bytes, [&](const kpl::UserRecord& user) {
    out.records.push_back({std::string(user.data), std::string(user.partition_key),
                           std::string(user.explicit_hash_key), user.sub, user.aggregated,
                           user.error, deaggregator.message(user)});
  });
  return out;
}

Deaggregated deaggregate(std::string_view bytes) {
  kpl::Deaggregator deaggregator;
  return deaggregate(deaggregator, bytes);
}

Yielded user(std::string data, std::string key, std::string hash_key, std::uint64_t sub) {
  return {std::move(data), std::move(key), std::move(hash_key), sub, true, ErrorCode::ok, {}};
}

/// The one record a pass-through yields: the Kinesis record whole.
void check_passed_through(const Deaggregated& out, std::string_view bytes, RecordKind kind) {
  CHECK(out.result.kind == kind);
  CHECK(out.result.records == 1);
  CHECK(out.result.passed_through());
  REQUIRE(out.records.size() == 1);
  const Yielded& whole = out.records[0];
  CHECK(whole.data == bytes);
  CHECK(whole.partition_key == "");
  CHECK(whole.explicit_hash_key == "");
  CHECK(whole.sub == 0);
  CHECK_FALSE(whole.aggregated);
  CHECK(whole.error == ErrorCode::ok);
}

// --- the writer, collected ------------------------------------------------------

struct Emitted {
  std::string bytes;
  std::string partition_key;
  std::string explicit_hash_key;
  std::size_t records = 0;
};

struct Input {
  std::string key;
  std::string hash_key;
  std::string data;
};

std::vector<Emitted> aggregate_all(kpl::Aggregator& aggregator, const std::vector<Input>& inputs) {
  std::vector<Emitted> out;
  const auto sink = [&](const kpl::Aggregate& aggregate) {
    out.push_back({std::string(aggregate.bytes), std::string(aggregate.partition_key),
                   std::string(aggregate.explicit_hash_key), aggregate.records});
  };
  for (const Input& input : inputs) aggregator.add(input.key, input.hash_key, input.data, sink);
  aggregator.flush(sink);
  return out;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t size) {
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
  return bytes;
}

/// An aggregate generated by the aws-kinesis-agg package (4.2.8) for the user
/// records {"a", "hello"} and {"b", explicit hash key "123", "world"}.
const std::string official_vector = from_hex(
    "f3899ac20a01610a016212033132331a0908001a0568656c6c6f1a0b080110001a05776f726c64"
    "03df21c9456b8cb24a2cd0db8a70f0a9");

}  // namespace

TEST_SUITE("kpl") {
  TEST_CASE("a record without the magic is yielded whole, as one ordinary record") {
    for (const std::string& bytes :
         {std::string(R"({"putEndpoint":"https://a/b"})"), std::string(),
          std::string("\xF3\x89\x9A"), std::string("\xF3\x89\x9A\xC3") + md5("")}) {
      CAPTURE(bytes);
      check_passed_through(deaggregate(bytes), bytes, RecordKind::plain);
    }
  }

  TEST_CASE("an aggregate by aws-kinesis-agg: both user records, keys and order") {
    const Deaggregated out = deaggregate(official_vector);
    CHECK(out.result.kind == RecordKind::aggregate);
    CHECK(out.result.records == 2);
    CHECK_FALSE(out.result.passed_through());
    REQUIRE(out.records.size() == 2);
    CHECK(out.records[0] == user("hello", "a", "", 0));
    CHECK(out.records[1] == user("world", "b", "123", 1));
  }

  TEST_CASE("the writer produces the official encoding byte for byte") {
    kpl::Aggregator aggregator;
    const std::vector<Emitted> out =
        aggregate_all(aggregator, {{"a", "", "hello"}, {"b", "123", "world"}});
    REQUIRE(out.size() == 1);
    CHECK(out[0].bytes == official_vector);
    CHECK(out[0].partition_key == "a");
    CHECK(out[0].explicit_hash_key == "");
    CHECK(out[0].records == 2);
  }

  TEST_CASE("the writer: key tables once per aggregate, in first-use order") {
    kpl::Aggregator aggregator;
    const std::vector<Emitted> out = aggregate_all(
        aggregator, {{"k1", "", "x"}, {"k2", "h1", "y"}, {"k1", "h1", ""}, {"k2", "h2", "z"}});
    REQUIRE(out.size() == 1);
    const std::string protobuf =
        bytes_field(1, "k1") + bytes_field(1, "k2") + bytes_field(2, "h1") + bytes_field(2, "h2") +
        record_field(0, "x") + record_field_with_hash(1, 0, "y") +
        record_field_with_hash(0, 0, "") + record_field_with_hash(1, 1, "z");
    CHECK(out[0].bytes == aggregate_of(protobuf));
    CHECK(out[0].records == 4);
    CHECK(out[0].partition_key == "k1");
  }

  TEST_CASE("round trip: random user records with and without explicit hash keys") {
    std::mt19937_64 rng(7);
    std::vector<Input> inputs;
    for (int i = 0; i < 300; ++i) {
      const std::size_t size = rng() % 5 == 0 ? 0 : rng() % 3000;
      inputs.push_back({"key-" + std::to_string(rng() % 7),
                        rng() % 2 ? std::to_string(rng() % 5) + "12345678901234567890" : "",
                        random_bytes(rng, size)});
    }
    kpl::Aggregator aggregator(64);
    kpl::Deaggregator deaggregator;
    std::size_t next = 0;
    for (const Emitted& emitted : aggregate_all(aggregator, inputs)) {
      const Deaggregated out = deaggregate(deaggregator, emitted.bytes);
      CHECK(out.result.kind == RecordKind::aggregate);
      CHECK(out.records.size() == emitted.records);
      CHECK(emitted.records <= 64);
      REQUIRE(next < inputs.size());
      CHECK(emitted.partition_key == inputs[next].key);
      CHECK(emitted.explicit_hash_key == inputs[next].hash_key);
      for (std::size_t i = 0; i < out.records.size(); ++i, ++next) {
        REQUIRE(next < inputs.size());
        CHECK(out.records[i] ==
              user(inputs[next].data, inputs[next].key, inputs[next].hash_key, i));
      }
    }
    CHECK(next == inputs.size());
  }

  TEST_CASE("a wrong MD5 passes the record through whole") {
    std::string bytes = official_vector;
    bytes.back() = static_cast<char>(bytes.back() ^ 1);
    check_passed_through(deaggregate(bytes), bytes, RecordKind::bad_checksum);
    // A checksum of other bytes, and 16 bytes that are not the MD5 of nothing.
    const std::string protobuf = record_field(0, "x");
    check_passed_through(deaggregate(magic + protobuf + md5("x")), magic + protobuf + md5("x"),
                         RecordKind::bad_checksum);
    const std::string zeros = magic + std::string(16, '\0');
    check_passed_through(deaggregate(zeros), zeros, RecordKind::bad_checksum);
  }

  TEST_CASE("the magic alone, or too short for an MD5, passes through whole") {
    for (std::size_t extra = 0; extra < 16; ++extra) {
      CAPTURE(extra);
      const std::string bytes = magic + md5("").substr(0, extra);
      check_passed_through(deaggregate(bytes), bytes, RecordKind::too_short);
    }
  }

  TEST_CASE("an empty aggregate yields no user records") {
    // The MD5 of the empty protobuf: an AggregatedRecord with nothing in it.
    const std::string empty = magic + md5("");
    int calls = 0;
    kpl::Deaggregator deaggregator;
    const kpl::DeaggregateResult result =
        deaggregator.deaggregate(empty, [&](const kpl::UserRecord&) { ++calls; });
    CHECK(result.kind == RecordKind::aggregate);
    CHECK(result.records == 0);
    CHECK(calls == 0);
    // Key tables but no records: none either.
    const Deaggregated keys_only =
        deaggregate(aggregate_of(bytes_field(1, "a") + bytes_field(2, "1")));
    CHECK(keys_only.result.kind == RecordKind::aggregate);
    CHECK(keys_only.records.empty());
  }

  TEST_CASE("a protobuf that does not parse passes the record through whole") {
    const std::string good = bytes_field(1, "a") + record_field(0, "hello");
    struct Case {
      const char* name;
      std::string protobuf;
    };
    const std::vector<Case> cases = {
        {"truncated by one byte", good.substr(0, good.size() - 1)},
        {"a length beyond the end", bytes_field(1, "a") + "\x1a\x7f" + varint_field(1, 0)},
        {"a truncated varint", bytes_field(1, "a") + "\x1a\x02\x08\x80"},
        {"a varint of 11 bytes", "\x08" + std::string(10, '\x80') + "\x01"},
        {"a key that ends the buffer", "\x0a"},
        {"a group wire type", bytes_field(1, "a") + "\x1b\x1c"},
        {"wire type 7", std::string("\x0f\x00", 2)},
        {"field number 0", std::string("\x02\x00", 2)},
        {"a record without data", bytes_field(1, "a") + bytes_field(3, varint_field(1, 0))},
        {"a record without partition_key_index",
         bytes_field(1, "a") + bytes_field(3, bytes_field(3, "x"))},
        {"a record whose data is a varint",
         bytes_field(1, "a") + bytes_field(3, varint_field(1, 0) + varint_field(3, 5))},
        {"a tag without key",
         bytes_field(1, "a") + record_field(0, "x", bytes_field(4, bytes_field(2, "v")))},
        {"a broken tag", bytes_field(1, "a") + record_field(0, "x", bytes_field(4, "\x0a\x05v"))},
        {"a broken record among good ones", good + bytes_field(3, "\x08") + record_field(0, "z")},
    };
    for (const Case& c : cases) {
      CAPTURE(c.name);
      const std::string bytes = aggregate_of(c.protobuf);
      check_passed_through(deaggregate(bytes), bytes, RecordKind::bad_protobuf);
    }
    // Control: the good one parses.
    CHECK(deaggregate(aggregate_of(good)).records ==
          std::vector<Yielded>{user("hello", "a", "", 0)});
  }

  TEST_CASE("a key index out of range is an error on that user record only") {
    const std::string protobuf =
        bytes_field(1, "a") + bytes_field(1, "b") + bytes_field(2, "7") + record_field(0, "first") +
        record_field(2, "bad key") + record_field_with_hash(1, 1, "bad hash key") +
        record_field_with_hash(5, 3, "both bad") + record_field_with_hash(1, 0, "last");
    const Deaggregated out = deaggregate(aggregate_of(protobuf));
    CHECK(out.result.kind == RecordKind::aggregate);
    CHECK(out.result.records == 5);
    REQUIRE(out.records.size() == 5);
    CHECK(out.records[0] == user("first", "a", "", 0));
    const ErrorCode bad = kpl::bad_index_error;
    CHECK(out.records[1] ==
          Yielded{"bad key", "", "", 1, true, bad,
                  "KPL user record 1: partition_key_index 2 is out of range (2 partition keys)"});
    CHECK(out.records[2] == Yielded{"bad hash key", "", "", 2, true, bad,
                                    "KPL user record 2: explicit_hash_key_index 1 is out of range "
                                    "(1 explicit hash keys)"});
    CHECK(out.records[3] == Yielded{"both bad", "", "", 3, true, bad,
                                    "KPL user record 3: partition_key_index 5 is out of range (2 "
                                    "partition keys); explicit_hash_key_index 3 is out of range "
                                    "(1 explicit hash keys)"});
    CHECK(out.records[4] == user("last", "b", "7", 4));
    // No table at all: index 0 is already out of range.
    const Deaggregated no_table = deaggregate(aggregate_of(record_field(0, "x")));
    REQUIRE(no_table.records.size() == 1);
    CHECK(no_table.records[0].error == bad);
    CHECK(no_table.records[0].message ==
          "KPL user record 0: partition_key_index 0 is out of range (0 partition keys)");
  }

  TEST_CASE("tags are ignored") {
    const std::string tags = bytes_field(4, bytes_field(1, "k") + bytes_field(2, "v")) +
                             bytes_field(4, bytes_field(1, "only key"));
    const Deaggregated out = deaggregate(
        aggregate_of(bytes_field(1, "a") + record_field(0, "x", tags) + record_field(0, "y")));
    CHECK(out.result.kind == RecordKind::aggregate);
    CHECK(out.records == std::vector<Yielded>{user("x", "a", "", 0), user("y", "a", "", 1)});
  }

  TEST_CASE("protobuf's rules: any field order, unknown fields, last value wins") {
    // Records before the key tables.
    const Deaggregated reordered =
        deaggregate(aggregate_of(record_field_with_hash(1, 0, "x") + bytes_field(2, "h") +
                                 bytes_field(1, "a") + bytes_field(1, "b")));
    CHECK(reordered.records == std::vector<Yielded>{user("x", "b", "h", 0)});

    // Unknown fields of every wire type, at both levels.
    const std::string unknown = varint_field(9, 300) + "\x55" + std::string("\x01\x02\x03\x04") +
                                "\x59" + std::string(8, '\x07') + bytes_field(15, "skip me");
    const Deaggregated with_unknown = deaggregate(aggregate_of(
        unknown + bytes_field(1, "a") + unknown + record_field(0, "x", unknown) + unknown));
    CHECK(with_unknown.records == std::vector<Yielded>{user("x", "a", "", 0)});

    // A known field with an unexpected wire type is an unknown field.
    const Deaggregated wrong_types = deaggregate(
        aggregate_of(varint_field(1, 4) + bytes_field(1, "a") + varint_field(3, 1) +
                     bytes_field(3, bytes_field(1, "not an index") + varint_field(1, 0) +
                                        bytes_field(2, "not an index") + bytes_field(3, "x"))));
    CHECK(wrong_types.records == std::vector<Yielded>{user("x", "a", "", 0)});

    // A singular field given twice: its last value counts.
    const Deaggregated twice = deaggregate(aggregate_of(
        bytes_field(1, "a") + bytes_field(1, "b") + bytes_field(2, "h0") + bytes_field(2, "h1") +
        bytes_field(3, varint_field(1, 0) + bytes_field(3, "old") + varint_field(2, 0) +
                           varint_field(1, 1) + bytes_field(3, "new") + varint_field(2, 1))));
    CHECK(twice.records == std::vector<Yielded>{user("new", "b", "h1", 0)});

    // A non-minimal varint index (0 in two bytes) is still 0.
    const Deaggregated long_varint = deaggregate(
        aggregate_of(bytes_field(1, "a") +
                     bytes_field(3, std::string("\x08\x80\x00", 3) + bytes_field(3, "x"))));
    CHECK(long_varint.records == std::vector<Yielded>{user("x", "a", "", 0)});
  }

  TEST_CASE("one Deaggregator across records: nothing carries over") {
    kpl::Deaggregator deaggregator;
    const Deaggregated first = deaggregate(deaggregator, official_vector);
    CHECK(first.records.size() == 2);
    CHECK(deaggregator.partition_keys().size() == 2);
    CHECK(deaggregator.explicit_hash_keys().size() == 1);
    // A record whose tables parse before a broken record must not leave keys behind.
    const std::string broken = aggregate_of(bytes_field(1, "a") + bytes_field(3, "\x08"));
    check_passed_through(deaggregate(deaggregator, broken), broken, RecordKind::bad_protobuf);
    CHECK(deaggregator.partition_keys().empty());
    CHECK(deaggregator.explicit_hash_keys().empty());
    const Deaggregated plain = deaggregate(deaggregator, "{}");
    check_passed_through(plain, "{}", RecordKind::plain);
    CHECK(deaggregator.partition_keys().empty());
    const Deaggregated again = deaggregate(deaggregator, official_vector);
    CHECK(again.records == first.records);
  }

  TEST_CASE("the writer keeps every aggregate within 1 MiB, and packs up to it") {
    constexpr std::size_t limit = 1048576;
    std::mt19937_64 rng(11);
    std::vector<Input> inputs;
    for (int i = 0; i < 120; ++i)
      inputs.push_back({"k" + std::to_string(rng() % 3), rng() % 3 == 0 ? "99" : "",
                        random_bytes(rng, 1000 + rng() % 150000)});
    kpl::Aggregator aggregator;
    const std::vector<Emitted> out = aggregate_all(aggregator, inputs);
    REQUIRE(out.size() > 5);
    std::size_t next = 0;
    kpl::Deaggregator deaggregator;
    for (std::size_t i = 0; i < out.size(); ++i) {
      CAPTURE(i);
      CHECK(out[i].bytes.size() <= limit);
      next += deaggregate(deaggregator, out[i].bytes).records.size();
      if (i + 1 == out.size()) break;
      // Packed: the next user record would not have fitted.
      kpl::Aggregator probe(kpl::Aggregator::unlimited, kpl::Aggregator::unlimited);
      std::size_t size = 0;
      const auto sink = [&](const kpl::Aggregate& aggregate) { size = aggregate.bytes.size(); };
      const std::size_t first = next - out[i].records;
      for (std::size_t j = first; j <= next; ++j)
        probe.add(inputs[j].key, inputs[j].hash_key, inputs[j].data,
                  [](const kpl::Aggregate&) { FAIL("an aggregate was emitted before the limit"); });
      probe.flush(sink);
      CHECK(size > limit);
    }
    CHECK(next == inputs.size());
  }

  TEST_CASE("the writer: exactly 1 MiB fits, one byte more starts a new aggregate") {
    constexpr std::size_t limit = 1048576;
    // One user record "k" with n bytes of data in an aggregate of its own.
    const std::size_t overhead = kpl::Aggregator::single_size("k", "", 0);
    std::size_t n = limit - overhead;
    while (kpl::Aggregator::single_size("k", "", n) > limit) --n;
    REQUIRE(kpl::Aggregator::single_size("k", "", n) == limit);
    for (const std::size_t size : {n, n + 1}) {
      CAPTURE(size);
      kpl::Aggregator aggregator;
      const std::vector<Emitted> out =
          aggregate_all(aggregator, {{"k", "", std::string(size, 'x')}, {"k", "", "y"}});
      REQUIRE(out.size() == 2);
      CHECK(out[0].records == 1);
      CHECK(out[0].bytes.size() == (size == n ? limit : limit + 1));
      CHECK(out[1].records == 1);
    }
    // Two records of one key that together make exactly 1 MiB share one
    // aggregate; with one byte more they do not. Sizes by the format: magic,
    // the key table entry 0a 01 'k', the two Record fields, the MD5.
    const auto record_size = [](std::size_t data) {
      const std::size_t inner = 2 + 1 + varint(data).size() + data;  // 08 00, 1a len data
      return 1 + varint(inner).size() + inner;
    };
    const std::size_t second = 1000;
    std::size_t first = limit;
    while (4 + 3 + record_size(first) + record_size(second) + 16 > limit) --first;
    REQUIRE(4 + 3 + record_size(first) + record_size(second) + 16 == limit);
    for (const std::size_t size : {first, first + 1}) {
      CAPTURE(size);
      kpl::Aggregator aggregator;
      const std::vector<Emitted> out = aggregate_all(
          aggregator, {{"k", "", std::string(size, 'a')}, {"k", "", std::string(second, 'b')}});
      if (size == first) {
        REQUIRE(out.size() == 1);
        CHECK(out[0].bytes.size() == limit);
        CHECK(out[0].records == 2);
      } else {
        REQUIRE(out.size() == 2);
        CHECK(out[0].records == 1);
        CHECK(out[1].records == 1);
      }
    }
  }

  TEST_CASE("the writer: an oversize user record is emitted alone") {
    const std::string big(1048576 + 10, 'B');
    kpl::Aggregator aggregator;
    const std::vector<Emitted> out = aggregate_all(
        aggregator,
        {{"k", "", "before1"}, {"k", "", "before2"}, {"k", "", big}, {"k", "", "after"}});
    REQUIRE(out.size() == 3);
    CHECK(out[0].records == 2);
    CHECK(out[1].records == 1);
    CHECK(out[1].bytes.size() == kpl::Aggregator::single_size("k", "", big.size()));
    CHECK(out[1].bytes.size() > 1048576);
    CHECK(out[2].records == 1);
    const Deaggregated alone = deaggregate(out[1].bytes);
    CHECK(alone.records == std::vector<Yielded>{user(big, "k", "", 0)});
    const Deaggregated after = deaggregate(out[2].bytes);
    CHECK(after.records == std::vector<Yielded>{user("after", "k", "", 0)});
  }

  TEST_CASE("the writer: max_records per aggregate, emitted as soon as full") {
    kpl::Aggregator aggregator(3);
    std::vector<std::size_t> sizes;
    const auto sink = [&](const kpl::Aggregate& aggregate) { sizes.push_back(aggregate.records); };
    for (int i = 0; i < 7; ++i) {
      aggregator.add("k", "", "x", sink);
      CHECK(aggregator.pending() == static_cast<std::size_t>((i + 1) % 3));
    }
    CHECK(sizes == std::vector<std::size_t>{3, 3});
    aggregator.flush(sink);
    CHECK(sizes == std::vector<std::size_t>{3, 3, 1});
    aggregator.flush(sink);  // nothing pending: nothing emitted
    CHECK(sizes.size() == 3);
    CHECK(aggregator.size() == 0);
    kpl::Aggregator zero(0);  // 0 is taken as 1
    zero.add("k", "", "x", sink);
    CHECK(sizes.size() == 4);
  }

  TEST_CASE("the Kinesis reply lists a parent shared by failed user records once") {
    using filebuilder::Outcome;
    using filebuilder::RecordOutcome;
    using filebuilder::source::EnvelopeRecord;
    // Three user records of one aggregate (one parent id), then a plain record,
    // then two user records of another aggregate; failures spread over them.
    const std::vector<EnvelopeRecord> records = {
        {"seq-1", "", ErrorCode::ok}, {"seq-1", "", ErrorCode::ok}, {"seq-1", "", ErrorCode::ok},
        {"seq-2", "", ErrorCode::ok}, {"seq-3", "", ErrorCode::ok}, {"seq-3", "", ErrorCode::ok}};
    std::vector<RecordOutcome> outcomes(6);
    for (RecordOutcome& outcome : outcomes) outcome.outcome = Outcome::accepted;
    outcomes[0].outcome = Outcome::failed;
    outcomes[2].outcome = Outcome::failed;
    outcomes[3].outcome = Outcome::rejected;
    outcomes[4].outcome = Outcome::failed;
    outcomes[5].outcome = Outcome::failed;
    std::string reply;
    filebuilder::source::write_kinesis_reply(records, outcomes, reply);
    CHECK(reply ==
          R"({"batchItemFailures":[{"itemIdentifier":"seq-1"},{"itemIdentifier":"seq-3"}]})");
  }

  TEST_CASE("Splitter --aggregate: lambda and firehose records are aggregates of chunk records") {
    using filebuilder::SplitFormat;
    using filebuilder::Splitter;
    std::mt19937_64 rng(3);
    const std::string a = random_bytes(rng, 1000);
    const std::string b = random_bytes(rng, 250);
    const std::string endpoint_a = "https://bucket.example/a.bin?X-Amz-Signature=1";
    const std::string endpoint_b = "https://bucket.example/b.bin";
    // The chunk records, in order, as ndjson would write them.
    std::vector<std::string> expected;
    Splitter plain({.chunk_size = 100});
    const auto collect = [&](std::string_view line) {
      expected.emplace_back(line.substr(0, line.size() - 1));
    };
    plain.add_file(endpoint_a, a, collect);
    plain.add_file(endpoint_b, b, collect);
    REQUIRE(expected.size() == 13);

    for (const SplitFormat format : {SplitFormat::lambda, SplitFormat::firehose}) {
      CAPTURE(filebuilder::split_format_name(format));
      Splitter splitter(
          {.chunk_size = 100, .format = format, .records_per_event = 2, .aggregate = 4});
      std::vector<std::string> lines;
      const auto sink = [&](std::string_view line) { lines.emplace_back(line); };
      splitter.add_file(endpoint_a, a, sink);
      splitter.add_file(endpoint_b, b, sink);
      splitter.finish(sink);
      // a: 10 chunks -> aggregates of 4, 4, 2; b: 3 chunks -> one of 3 (a new file, a new
      // aggregate).
      CHECK(splitter.records() == 13);
      CHECK(splitter.kinesis_records() == 4);
      CHECK(lines.size() == 2);

      simdjson::dom::parser parser;
      kpl::Deaggregator deaggregator;
      std::vector<std::string> chunks;
      std::vector<std::size_t> per_aggregate;
      std::uint64_t counter = 0;
      for (const std::string& line : lines) {
        simdjson::dom::element event;
        REQUIRE(parser.parse(line).get(event) == simdjson::SUCCESS);
        simdjson::dom::array records;
        REQUIRE(event[format == SplitFormat::lambda ? "Records" : "records"].get(records) ==
                simdjson::SUCCESS);
        for (simdjson::dom::element record : records) {
          ++counter;
          std::string_view data;
          if (format == SplitFormat::lambda) {
            REQUIRE(record["kinesis"]["data"].get(data) == simdjson::SUCCESS);
            std::string_view key;
            std::string_view sequence;
            REQUIRE(record["kinesis"]["partitionKey"].get(key) == simdjson::SUCCESS);
            REQUIRE(record["kinesis"]["sequenceNumber"].get(sequence) == simdjson::SUCCESS);
            CHECK(sequence == Splitter::sequence_number(endpoint_a, counter));
            CHECK(key == Splitter::partition_key(counter <= 3 ? endpoint_a : endpoint_b));
          } else {
            REQUIRE(record["data"].get(data) == simdjson::SUCCESS);
            std::string_view id;
            REQUIRE(record["recordId"].get(id) == simdjson::SUCCESS);
            CHECK(id == "r" + Splitter::sequence_number(endpoint_a, counter));
          }
          std::string bytes(filebuilder::base64::max_decoded_size(data.size()), '\0');
          const auto decoded = filebuilder::base64::decode(data, bytes.data());
          REQUIRE(decoded.error == ErrorCode::ok);
          bytes.resize(decoded.written);
          CHECK(bytes.size() <= 1048576);
          const Deaggregated out = deaggregate(deaggregator, bytes);
          CHECK(out.result.kind == RecordKind::aggregate);
          per_aggregate.push_back(out.records.size());
          for (const Yielded& y : out.records) {
            CHECK(y.aggregated);
            CHECK(y.explicit_hash_key == "");
            chunks.push_back(y.data);
          }
          // Every user record carries its file's key.
          for (std::size_t i = 0; i < out.records.size(); ++i)
            CHECK(out.records[i].partition_key ==
                  Splitter::partition_key(counter <= 3 ? endpoint_a : endpoint_b));
        }
      }
      CHECK(per_aggregate == std::vector<std::size_t>{4, 4, 2, 3});
      CHECK(chunks == expected);
    }
  }

  TEST_CASE("Splitter --aggregate: the 1 MiB limit, and a chunk record too large goes alone") {
    using filebuilder::SplitFormat;
    using filebuilder::Splitter;
    std::mt19937_64 rng(5);
    // Each Kinesis record of the one event: (user records, bytes).
    const auto split = [&](std::size_t chunk_size, std::size_t file_size) {
      Splitter splitter(
          {.chunk_size = chunk_size, .format = SplitFormat::lambda, .aggregate = 100});
      std::vector<std::string> lines;
      const auto sink = [&](std::string_view line) { lines.emplace_back(line); };
      splitter.add_file("https://x.example/f", random_bytes(rng, file_size), sink);
      splitter.finish(sink);
      REQUIRE(lines.size() == 1);
      simdjson::dom::parser parser;
      simdjson::dom::element event;
      REQUIRE(parser.parse(lines[0]).get(event) == simdjson::SUCCESS);
      std::vector<std::pair<std::size_t, std::size_t>> out;
      kpl::Deaggregator deaggregator;
      for (simdjson::dom::element record : event["Records"].get_array()) {
        const std::string_view data = record["kinesis"]["data"].get_string().value();
        std::string bytes(filebuilder::base64::max_decoded_size(data.size()), '\0');
        const auto decoded = filebuilder::base64::decode(data, bytes.data());
        REQUIRE(decoded.error == ErrorCode::ok);
        bytes.resize(decoded.written);
        out.emplace_back(deaggregate(deaggregator, bytes).records.size(), bytes.size());
      }
      return out;
    };
    // 300 KB chunks (~400 KB chunk records): two per aggregate, never three.
    const auto packed = split(300000, 5 * 300000);
    REQUIRE(packed.size() == 3);
    CHECK(packed[0].first == 2);
    CHECK(packed[1].first == 2);
    CHECK(packed[2].first == 1);
    for (std::size_t i = 0; i < packed.size(); ++i) CHECK(packed[i].second <= 1048576);
    CHECK(packed[0].second > 800000);
    // 800 KB chunks: a chunk record of ~1.07 MB goes alone, over the limit.
    const auto oversize = split(800000, 1000000);
    REQUIRE(oversize.size() == 2);
    CHECK(oversize[0].first == 1);
    CHECK(oversize[0].second > 1048576);
    CHECK(oversize[1].first == 1);
    CHECK(oversize[1].second < 300000);
  }

  TEST_CASE("Splitter --aggregate: options") {
    using filebuilder::SplitFormat;
    using filebuilder::SplitOptions;
    CHECK(filebuilder::validate_split_options({.format = SplitFormat::ndjson, .aggregate = 5}) ==
          "KPL aggregation needs the lambda or firehose format");
    CHECK(filebuilder::validate_split_options({.format = SplitFormat::lambda, .aggregate = 5})
              .empty());
    CHECK(filebuilder::validate_split_options({.format = SplitFormat::firehose, .aggregate = 1})
              .empty());
    CHECK(SplitOptions{}.aggregate == 0);
    // Without aggregation nothing changes: one chunk record per Kinesis record.
    filebuilder::Splitter splitter({.chunk_size = 2, .format = SplitFormat::lambda});
    splitter.add_file("https://x.example/f", "abcdef", [](std::string_view) {});
    splitter.finish([](std::string_view) {});
    CHECK(splitter.kinesis_records() == 3);
    CHECK(splitter.records() == 3);
  }
}
