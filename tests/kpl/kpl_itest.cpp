// Cross-tests of filebuilder's KPL aggregation against the official
// aws-kinesis-agg npm package (both directions), and end-to-end runs of the
// `filebuilder` binary on KPL-aggregated Lambda events against a real nginx.
//
// The package is installed once per build tree (support/npm.hpp: npm install
// --prefix <test binary's directory>/npm/aws-kinesis-agg aws-kinesis-agg@4,
// under a file lock, as CTest may run several of these at once). Without npm or node on PATH the
// tests that need them say so and pass without checking anything.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/source/kpl.hpp"
#include "filebuilder/split.hpp"
#include "support/bytes.hpp"
#include "support/nginx.hpp"
#include "support/npm.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using filebuilder::test::lines_of;
using filebuilder::test::random_bytes;
using filebuilder::test::read_bytes;
namespace kpl = filebuilder::kpl;
using filebuilder::Splitter;
using filebuilder::test::run;
using filebuilder::test::RunResult;

// --- node and the package -----------------------------------------------------

struct Node {
  std::string node;         // the node binary
  std::string modules;      // <prefix>/node_modules, holding aws-kinesis-agg
  std::string skip;         // why the tests that need node cannot run ("" if they can)
  std::string scripts;      // tests/kpl, where aggregate.js and deaggregate.js are
  std::string install_log;  // npm's output, when it had to install and failed
};

/// Finds node and npm, and installs aws-kinesis-agg@4 into the build tree once.
const Node& node_setup() {
  static const Node setup = [] {
    const filebuilder::test::NpmPackage& package =
        filebuilder::test::npm_package("aws-kinesis-agg", "aws-kinesis-agg@4");
    Node n{package.node, package.modules, package.skip, {}, package.install_log};
    n.scripts = (fs::path(FILEBUILDER_TEST_DATA_DIR).parent_path() / "kpl").string();
    return n;
  }();
  return setup;
}

/// True when the cross-tests can run; otherwise says why (a skip) or fails (npm failed).
bool have_node() {
  const Node& n = node_setup();
  if (!n.skip.empty()) {
    MESSAGE(n.skip);
    return false;
  }
  REQUIRE_MESSAGE(n.install_log.empty(), n.install_log);
  return true;
}

// --- user records ---------------------------------------------------------------

struct UserRecord {
  std::string partition_key;
  std::string explicit_hash_key;  // "" for none
  std::string data;

  bool operator==(const UserRecord&) const = default;
};

std::string decode_base64(std::string_view text) {
  std::string out(filebuilder::base64::max_decoded_size(text.size()), '\0');
  const auto result = filebuilder::base64::decode(text, out.data());
  REQUIRE(result.error == filebuilder::ErrorCode::ok);
  out.resize(result.written);
  return out;
}

/// Chunk records of several files of random sizes, each with its file's
/// partition key; explicit hash keys by `hash_keys`: "none", "all" or "some".
std::vector<UserRecord> chunk_records(std::mt19937_64& rng, std::string_view hash_keys,
                                      std::size_t files, std::size_t max_size,
                                      std::size_t chunk_size) {
  std::vector<UserRecord> records;
  for (std::size_t f = 0; f < files; ++f) {
    const std::string endpoint = "https://bucket.example/kpl/" + std::to_string(f) +
                                 ".bin?X-Amz-Signature=s" + std::to_string(f);
    Splitter splitter({.chunk_size = chunk_size});
    const std::string bytes = random_bytes(rng, rng() % (max_size + 1));
    splitter.add_file(endpoint, bytes, [&](std::string_view line) {
      std::string hash_key;
      if (hash_keys == "all" || (hash_keys == "some" && rng() % 2 == 0))
        hash_key = std::to_string(rng() % 4) + "0000000000000000000000000000000000000";
      records.push_back({Splitter::partition_key(endpoint), hash_key,
                         std::string(line.substr(0, line.size() - 1))});
    });
  }
  return records;
}

/// The records aggregated by aws-kinesis-agg: each aggregate's bytes.
std::vector<std::string> official_aggregate(const std::vector<UserRecord>& records) {
  const Node& n = node_setup();
  std::string input;
  for (const UserRecord& record : records) {
    input += R"({"partitionKey":")" + record.partition_key + "\"";
    if (!record.explicit_hash_key.empty())
      input += R"(,"explicitHashKey":")" + record.explicit_hash_key + "\"";
    input += R"(,"data":")" + filebuilder::base64::encode(record.data) + "\"}\n";
  }
  const RunResult result = run({n.node, n.scripts + "/aggregate.js", n.modules}, input);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  std::vector<std::string> aggregates;
  for (const std::string& line : lines_of(result.out)) aggregates.push_back(decode_base64(line));
  return aggregates;
}

/// One user record as aws-kinesis-agg's deaggregate gave it.
struct Official {
  std::uint64_t record = 0;
  std::optional<std::uint64_t> sub;  // absent for a record that is not an aggregate
  std::string partition_key;
  std::optional<std::string> explicit_hash_key;
  std::string data;
};

std::vector<Official> official_deaggregate(const std::vector<std::string>& kinesis_records) {
  const Node& n = node_setup();
  std::string input;
  for (const std::string& record : kinesis_records)
    input += filebuilder::base64::encode(record) + "\n";
  const RunResult result = run({n.node, n.scripts + "/deaggregate.js", n.modules}, input);
  INFO(result.err);
  INFO(result.out.substr(0, 2000));
  REQUIRE(result.exit_code == 0);
  std::vector<Official> out;
  simdjson::dom::parser parser;
  for (const std::string& line : lines_of(result.out)) {
    simdjson::dom::object object;
    REQUIRE(parser.parse(line).get(object) == simdjson::SUCCESS);
    Official entry;
    REQUIRE(object["record"].get(entry.record) == simdjson::SUCCESS);
    std::uint64_t sub = 0;
    if (object["sub"].get(sub) == simdjson::SUCCESS) entry.sub = sub;
    std::string_view text;
    if (object["partitionKey"].get(text) == simdjson::SUCCESS) entry.partition_key = text;
    if (object["explicitHashKey"].get(text) == simdjson::SUCCESS) entry.explicit_hash_key = text;
    REQUIRE(object["data"].get(text) == simdjson::SUCCESS);
    entry.data = decode_base64(text);
    out.push_back(std::move(entry));
  }
  return out;
}

struct Ours {
  std::vector<UserRecord> records;
  std::vector<std::uint64_t> subs;
  std::vector<std::size_t> per_aggregate;
};

Ours our_deaggregate(const std::vector<std::string>& aggregates) {
  Ours out;
  kpl::Deaggregator deaggregator;
  for (const std::string& aggregate : aggregates) {
    CHECK(aggregate.size() <= kpl::max_kinesis_record_bytes);
    const kpl::DeaggregateResult result =
        deaggregator.deaggregate(aggregate, [&](const kpl::UserRecord& user) {
          CHECK(user.aggregated);
          CHECK(user.error == filebuilder::ErrorCode::ok);
          out.records.push_back({std::string(user.partition_key),
                                 std::string(user.explicit_hash_key), std::string(user.data)});
          out.subs.push_back(user.sub);
        });
    CHECK(result.kind == kpl::RecordKind::aggregate);
    out.per_aggregate.push_back(result.records);
  }
  return out;
}

std::vector<std::string> our_aggregate(const std::vector<UserRecord>& records,
                                       std::size_t max_records = kpl::Aggregator::unlimited) {
  std::vector<std::string> out;
  kpl::Aggregator aggregator(max_records);
  const auto sink = [&](const kpl::Aggregate& aggregate) { out.emplace_back(aggregate.bytes); };
  for (const UserRecord& record : records)
    aggregator.add(record.partition_key, record.explicit_hash_key, record.data, sink);
  aggregator.flush(sink);
  return out;
}

// --- events and the CLI -----------------------------------------------------------

std::string sequence_number(std::uint64_t n) {
  const std::string digits = std::to_string(n);
  return "4959" + std::string(52 - digits.size(), '0') + digits;
}

struct KinesisRecord {
  std::string seq;
  std::string partition_key;
  std::string bytes;  // the record's data, before base64
};

std::string lambda_event(const std::vector<KinesisRecord>& records) {
  std::string event = R"({"Records":[)";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i != 0) event += ',';
    event += R"({"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":")" +
             records[i].partition_key + R"(","sequenceNumber":")" + records[i].seq +
             R"(","data":")" + filebuilder::base64::encode(records[i].bytes) +
             R"(","approximateArrivalTimestamp":1700000000.0},"eventSource":"aws:kinesis"})";
  }
  return event + "]}";
}

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

struct LogLine {
  std::string level;
  std::string record;
  std::optional<std::uint64_t> sub;
  std::string error;
};

std::vector<LogLine> parse_logs(const std::string& err) {
  std::vector<LogLine> logs;
  simdjson::dom::parser parser;
  for (const std::string& line : lines_of(err)) {
    simdjson::dom::object object;
    if (parser.parse(line).get(object) != simdjson::SUCCESS) {
      FAIL_CHECK("a stderr line is not a JSON object: " << line);
      continue;
    }
    LogLine log;
    std::string_view text;
    if (object["level"].get(text) == simdjson::SUCCESS) log.level = text;
    if (object["record"].get(text) == simdjson::SUCCESS) log.record = text;
    std::uint64_t sub = 0;
    if (object["sub"].get(sub) == simdjson::SUCCESS) log.sub = sub;
    if (object["error"].get(text) == simdjson::SUCCESS) log.error = text;
    logs.push_back(std::move(log));
  }
  return logs;
}

#ifdef FILEBUILDER_CLI_PATH
const std::string cli = FILEBUILDER_CLI_PATH;
#endif

}  // namespace

TEST_SUITE("kpl cross") {
  TEST_CASE("kpl: aws-kinesis-agg's aggregates of chunk records deaggregate byte for byte") {
    if (!have_node()) return;
    std::mt19937_64 rng(20240611);
    for (const std::string_view hash_keys : {"none", "all", "some"}) {
      CAPTURE(hash_keys);
      // ~3 MB in all: several aggregates, split by the package at its 1 MiB limit.
      const std::vector<UserRecord> records = chunk_records(rng, hash_keys, 12, 400000, 16384);
      REQUIRE(records.size() > 50);
      const std::vector<std::string> aggregates = official_aggregate(records);
      CHECK(aggregates.size() >= 3);
      const Ours ours = our_deaggregate(aggregates);
      CHECK(ours.records.size() == records.size());
      CHECK(ours.records == records);
      // Sub-sequence numbers count from 0 in each aggregate.
      std::size_t next = 0;
      for (const std::size_t count : ours.per_aggregate) {
        for (std::size_t i = 0; i < count; ++i, ++next) {
          REQUIRE(next < ours.subs.size());
          CHECK(ours.subs[next] == i);
        }
      }
      // And our writer, given the same user records, writes the same bytes.
      CHECK(our_aggregate(records) == aggregates);
    }
  }

  TEST_CASE("kpl: filebuilder's aggregates deaggregate with aws-kinesis-agg identically") {
    if (!have_node()) return;
    std::mt19937_64 rng(99);
    for (const std::string_view hash_keys : {"none", "all", "some"}) {
      for (const std::size_t max_records :
           {std::size_t{1}, std::size_t{7}, kpl::Aggregator::unlimited}) {
        CAPTURE(hash_keys);
        CAPTURE(max_records);
        const std::vector<UserRecord> records = chunk_records(rng, hash_keys, 6, 300000, 50000);
        const std::vector<std::string> aggregates = our_aggregate(records, max_records);
        const std::vector<Official> official = official_deaggregate(aggregates);
        REQUIRE(official.size() == records.size());
        std::uint64_t sub = 0;
        for (std::size_t i = 0; i < records.size(); ++i) {
          CAPTURE(i);
          if (i > 0 && official[i].record != official[i - 1].record) sub = 0;
          CHECK(official[i].sub == std::optional<std::uint64_t>(sub++));
          CHECK(official[i].partition_key == records[i].partition_key);
          CHECK(official[i].data == records[i].data);
          // The package reads an absent explicit_hash_key_index as 0: a user
          // record without a key shows the table's first key when the
          // aggregate has one (a quirk of the package, not of the bytes).
          if (!records[i].explicit_hash_key.empty())
            CHECK(official[i].explicit_hash_key == records[i].explicit_hash_key);
          else if (hash_keys == "none")
            CHECK_FALSE(official[i].explicit_hash_key.has_value());
        }
        if (max_records == 7) {
          for (const Official& entry : official) CHECK(entry.sub.value_or(99) < 7);
        }
      }
    }
  }

#ifdef FILEBUILDER_CLI_PATH
  TEST_CASE("kpl: filebuilder split --aggregate writes aggregates aws-kinesis-agg reads") {
    if (!have_node()) return;
    filebuilder::test::TempDir dir("filebuilder-kpl");
    std::mt19937_64 rng(4);
    const std::string bytes = random_bytes(rng, 2500);
    write_bytes(dir / "in.bin", bytes);
    const std::string endpoint = "https://bucket.example/k.bin?X-Amz-Signature=abc";
    const RunResult ndjson = run(
        {cli, "split", "--endpoint", endpoint, "--chunk-size", "10", (dir / "in.bin").string()});
    REQUIRE(ndjson.exit_code == 0);
    const std::vector<std::string> chunks = lines_of(ndjson.out);
    REQUIRE(chunks.size() == 250);

    struct Case {
      std::vector<std::string> args;
      std::vector<std::size_t> per_aggregate;
    };
    // "--aggregate" without a value means 100; here it is followed by an option.
    const std::vector<Case> cases = {
        {{"--aggregate", "--format", "lambda"}, {100, 100, 50}},
        {{"--format", "lambda", "--aggregate", "30"}, {30, 30, 30, 30, 30, 30, 30, 30, 10}},
        {{"--format", "firehose", "--aggregate=100"}, {100, 100, 50}},
        {{"--format", "lambda", "--aggregate", "0"}, std::vector<std::size_t>(250, 1)},
    };
    for (const Case& c : cases) {
      std::vector<std::string> args = {cli, "split", "--endpoint", endpoint, "--chunk-size", "10"};
      args.insert(args.end(), c.args.begin(), c.args.end());
      args.push_back((dir / "in.bin").string());
      const std::string joined = [&] {
        std::string text;
        for (const std::string& arg : c.args) text += arg + " ";
        return text;
      }();
      CAPTURE(joined);
      const RunResult split = run(args);
      REQUIRE(split.exit_code == 0);
      CHECK(split.err == "");
      const bool lambda = joined.find("lambda") != std::string::npos;
      std::vector<std::string> kinesis_records;
      simdjson::dom::parser parser;
      for (const std::string& line : lines_of(split.out)) {
        simdjson::dom::element event;
        REQUIRE(parser.parse(line).get(event) == simdjson::SUCCESS);
        for (simdjson::dom::element record : event[lambda ? "Records" : "records"].get_array()) {
          std::string_view data;
          REQUIRE((lambda ? record["kinesis"]["data"] : record["data"]).get(data) ==
                  simdjson::SUCCESS);
          kinesis_records.push_back(decode_base64(data));
        }
      }
      const std::vector<Official> official = official_deaggregate(kinesis_records);
      REQUIRE(official.size() == chunks.size());
      std::vector<std::size_t> per_aggregate(kinesis_records.size(), 0);
      for (std::size_t i = 0; i < official.size(); ++i) {
        CHECK(official[i].data == chunks[i]);
        REQUIRE(official[i].record < per_aggregate.size());
        ++per_aggregate[official[i].record];
        if (official[i].sub) CHECK(official[i].partition_key == Splitter::partition_key(endpoint));
      }
      CHECK(per_aggregate == c.per_aggregate);
    }
  }

  TEST_CASE("kpl: split --aggregate usage errors exit 2 with one line") {
    filebuilder::test::TempDir dir("filebuilder-kpl");
    write_bytes(dir / "in.bin", "abc");
    const std::string file = (dir / "in.bin").string();
    for (const std::vector<std::string>& extra :
         {std::vector<std::string>{"--aggregate", "5"},  // ndjson, the default format
          std::vector<std::string>{"--format", "lambda", "--aggregate", "many"},
          std::vector<std::string>{"--format", "lambda", "--aggregate", "-1"}}) {
      std::vector<std::string> args = {cli, "split", "--endpoint", "https://b.example/x"};
      args.insert(args.end(), extra.begin(), extra.end());
      args.push_back(file);
      const RunResult result = run(args);
      CAPTURE(result.err);
      CHECK(result.exit_code == 2);
      CHECK(result.out == "");
      CHECK(lines_of(result.err).size() == 1);
    }
    const RunResult ndjson =
        run({cli, "split", "--endpoint", "https://b.example/x", "--aggregate", "5", file});
    CHECK(ndjson.err == "filebuilder: --aggregate needs --format lambda or firehose\n");
  }

  TEST_CASE("kpl: files aggregated by aws-kinesis-agg, replayed as Lambda events, arrive whole") {
    if (!have_node()) return;
    filebuilder::test::Nginx nginx;
    filebuilder::test::TempDir dir("filebuilder-kpl");
    std::mt19937_64 rng(77);
    // Files of several sizes, chunked, their chunk records interleaved.
    std::map<std::string, std::string> files;  // path -> bytes
    std::vector<UserRecord> records;
    for (int f = 0; f < 8; ++f) {
      const std::string path = "/files/kpl/" + std::to_string(f) + ".bin";
      const std::string bytes = random_bytes(rng, f == 0 ? 0 : rng() % 700000);
      files[path] = bytes;
      const std::string endpoint = nginx.url(path) + "?X-Amz-Signature=secret";
      Splitter splitter({.chunk_size = 65536});
      splitter.add_file(endpoint, bytes, [&](std::string_view line) {
        records.push_back({Splitter::partition_key(endpoint), f % 2 ? "12345" : "",
                           std::string(line.substr(0, line.size() - 1))});
      });
    }
    std::shuffle(records.begin(), records.end(), rng);
    const std::vector<std::string> aggregates = official_aggregate(records);
    REQUIRE(aggregates.size() >= 3);
    // Two aggregates per event, one event per line.
    std::string input;
    std::size_t events = 0;
    for (std::size_t i = 0; i < aggregates.size(); i += 2) {
      std::vector<KinesisRecord> batch;
      for (std::size_t j = i; j < aggregates.size() && j < i + 2; ++j)
        batch.push_back({sequence_number(j + 1), "outer", aggregates[j]});
      input += lambda_event(batch) + "\n";
      ++events;
    }
    write_bytes(dir / "events.ndjson", input);
    const RunResult replay =
        run({cli, "replay", "--allow-host", "127.0.0.1:" + std::to_string(nginx.port()),
             (dir / "events.ndjson").string()});
    INFO(replay.err);
    CHECK(replay.exit_code == 0);
    std::string expected;
    for (std::size_t i = 0; i < events; ++i) expected += "{\"batchItemFailures\":[]}\n";
    CHECK(replay.out == expected);
    for (const LogLine& log : parse_logs(replay.err)) CHECK(log.level == "info");
    (void)nginx.requests_to("/files/kpl/", files.size());
    for (const auto& entry : files) {
      CAPTURE(entry.first);
      const std::optional<std::string> stored = read_bytes(nginx.stored_file(entry.first));
      REQUIRE(stored.has_value());
      CHECK(stored->size() == entry.second.size());
      CHECK(*stored == entry.second);
    }
    CHECK(nginx.requests_to("/files/kpl/").size() == files.size());
  }

  TEST_CASE("kpl: filebuilder split --aggregate then replay rebuilds the file") {
    filebuilder::test::Nginx nginx;
    filebuilder::test::TempDir dir("filebuilder-kpl");
    std::mt19937_64 rng(8);
    for (const std::string format : {"lambda", "firehose"}) {
      CAPTURE(format);
      const std::string path = "/files/kpl-split/" + format + ".bin";
      const std::string bytes = random_bytes(rng, 3000000);
      write_bytes(dir / "in.bin", bytes);
      const RunResult split =
          run({cli, "split", "--endpoint", nginx.url(path) + "?X-Amz-Signature=x", "--chunk-size",
               "100000", "--format", format, "--records-per-event", "3", "--aggregate", "4",
               (dir / "in.bin").string()});
      REQUIRE(split.exit_code == 0);
      write_bytes(dir / "events.ndjson", split.out);
      const RunResult replay =
          run({cli, "replay", "--allow-host", "127.0.0.1:" + std::to_string(nginx.port()),
               (dir / "events.ndjson").string()});
      INFO(replay.err);
      CHECK(replay.exit_code == 0);
      (void)nginx.requests_to(path, 1);
      const std::optional<std::string> stored = read_bytes(nginx.stored_file(path));
      REQUIRE(stored.has_value());
      CHECK(*stored == bytes);
    }
  }

  TEST_CASE("kpl: failed user records list their parent once, bad ones are named with sub") {
    filebuilder::test::Nginx nginx;
    filebuilder::test::TempDir dir("filebuilder-kpl");
    // Aggregate 1: the 3 chunks of a file whose upload fails (503), then a chunk
    // of a file that is fine. Aggregate 2: a good chunk, and a user record whose
    // partition key index is out of range. Record 3: an aggregate with a wrong
    // MD5, passed through and rejected as a chunk (no sub).
    const std::string failing = nginx.url("/fail503/kpl.bin");
    const std::string good = nginx.url("/files/kpl-good.bin");
    kpl::Aggregator aggregator;
    std::vector<std::string> aggregates;
    const auto sink = [&](const kpl::Aggregate& aggregate) {
      aggregates.emplace_back(aggregate.bytes);
    };
    for (std::uint64_t p = 0; p < 3; ++p)
      aggregator.add("f", "", Splitter::chunk_record(failing, p, 3, "part" + std::to_string(p)),
                     sink);
    aggregator.add("g", "", Splitter::chunk_record(good, 0, 2, "good0"), sink);
    aggregator.flush(sink);
    REQUIRE(aggregates.size() == 1);
    // A hand-made aggregate: key table ["g"], record 0 fine, record 1 with index 4.
    const auto field = [](char key, std::string_view bytes) {
      std::string out(1, key);
      out += static_cast<char>(bytes.size());  // < 128 here
      return out + std::string(bytes);
    };
    const std::string chunk1 = Splitter::chunk_record(good, 1, 2, "good1");
    REQUIRE(chunk1.size() < 120);  // one-byte lengths below
    const std::string protobuf = field('\x0a', "g") +
                                 field('\x1a', std::string("\x08\x00", 2) + field('\x1a', chunk1)) +
                                 field('\x1a', std::string("\x08\x04", 2) + field('\x1a', chunk1));
    unsigned char digest[16];
    unsigned int size = 0;
    REQUIRE(EVP_Digest(protobuf.data(), protobuf.size(), digest, &size, EVP_md5(), nullptr) == 1);
    const std::string magic = "\xF3\x89\x9A\xC2";
    aggregates.push_back(magic + protobuf + std::string(reinterpret_cast<char*>(digest), 16));
    std::string broken = aggregates[0];
    broken.back() = static_cast<char>(broken.back() ^ 0x55);
    aggregates.push_back(broken);

    const std::string event = lambda_event({{sequence_number(1), "f", aggregates[0]},
                                            {sequence_number(2), "g", aggregates[1]},
                                            {sequence_number(3), "h", aggregates[2]}});
    const RunResult replay =
        run({cli, "replay", "--allow-host", "127.0.0.1:" + std::to_string(nginx.port()),
             "--upload-attempts", "1", "-"},
            event + "\n");
    INFO(replay.err);
    CHECK(replay.exit_code == 1);
    // The 503 fails user record 2 of record 1 (it completed the file): record 1
    // is listed once; rejected records are never listed.
    CHECK(replay.out ==
          "{\"batchItemFailures\":[{\"itemIdentifier\":\"" + sequence_number(1) + "\"}]}\n");
    std::vector<std::string> problems;
    for (const LogLine& log : parse_logs(replay.err)) {
      if (log.level != "warn" && log.level != "error") continue;
      problems.push_back(log.record + (log.sub ? "/" + std::to_string(*log.sub) : "") + " " +
                         log.error);
    }
    CHECK(problems == std::vector<std::string>{
                          sequence_number(1) + "/2 upload_failed",
                          sequence_number(2) + "/1 " +
                              std::string(filebuilder::error_code_name(kpl::bad_index_error)),
                          sequence_number(3) + " invalid_json"});
    // The good file was completed by user record 0 of record 2.
    const std::optional<std::string> stored = read_bytes(nginx.stored_file("/files/kpl-good.bin"));
    REQUIRE(stored.has_value());
    CHECK(*stored == "good0good1");
  }
#endif
}
