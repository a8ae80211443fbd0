// Test support: kinesalite (npm kinesalite@3: the Kinesis API on Node, LevelDB
// underneath) on 127.0.0.1, started and stopped by a test, and a stream helper
// that drives it through aws::KinesisClient.
//
//   if (const std::string why = Kinesalite::skip_reason(); !why.empty()) { MESSAGE(why); return; }
//   filebuilder::test::Kinesalite kinesalite;     // throws std::runtime_error if it cannot start
//   kinesalite.endpoint()                          // http://127.0.0.1:<port>
//   aws::KinesisClient client = kinesalite.client();
//   KinesisStream stream(client, "chunks");
//   stream.create(2);                              // 2 shards, ACTIVE on return
//   stream.put("bytes", "partition-key");          // -> {shard_id, sequence_number}
//   stream.put_records(entries);                   // PutRecords, 500 a request, failures resent
//   stream.split_in_half(stream.shards()[0]);      // SplitShard at the middle of its hash range
//   stream.read_all("shardId-000000000000");       // TRIM_HORIZON to the end, copied
//   kinesalite.stop(); kinesalite.start();         // same port, same data (LevelDB in a temp dir)
//
// The package is installed into the build tree on first use (support/npm.hpp);
// skip_reason() is not empty when node or npm is missing (the tests then pass
// without checking anything, as the KPL cross-tests do). kinesalite does not
// check signatures, ignores ListShards pagination and expires iterators only
// after 300 s: those paths are tested against scripted replies instead.
// Readiness: the launcher (kinesalite.js) prints its line only once it
// listens, with its pid, so a server of someone else on the port never counts.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "filebuilder/aws/kinesis.hpp"
#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "support/net.hpp"
#include "support/npm.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace filebuilder::test {

/// Credentials for servers that do not check them.
inline aws::CredentialsSource test_credentials(std::string session_token = {}) {
  return [session_token = std::move(session_token)](std::string&) -> Result<aws::Credentials> {
    aws::Credentials credentials;
    credentials.access_key_id = "AKIDEXAMPLE";
    credentials.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    credentials.session_token = session_token;
    credentials.source = "test";
    return credentials;
  };
}

/// Client options for a test endpoint: region us-east-1, quick retries.
inline aws::KinesisOptions test_kinesis_options(std::string endpoint) {
  aws::KinesisOptions options;
  options.region = "us-east-1";
  options.endpoint = std::move(endpoint);
  options.backoff_base = std::chrono::milliseconds(10);
  options.backoff_max = std::chrono::milliseconds(200);
  return options;
}

class Kinesalite {
 public:
  /// "" when kinesalite can run here, else why not (node or npm is missing).
  /// Installs it on first use; throws std::runtime_error when npm fails.
  static std::string skip_reason() {
    const NpmPackage& package = npm_package("kinesalite", "kinesalite@3");
    if (!package.skip.empty()) return package.skip;
    if (!package.install_log.empty()) throw std::runtime_error(package.install_log);
    return {};
  }

  Kinesalite() : dir_("filebuilder-kinesalite") {
    const std::string why = skip_reason();
    if (!why.empty()) throw std::runtime_error(why);
    start_on_free_port(
        "kinesalite", port_, "EADDRINUSE",
        [this] {
          if (launch()) return true;
          process_.reset();
          return false;
        },
        [this] { return log(); });
  }
  ~Kinesalite() = default;
  Kinesalite(const Kinesalite&) = delete;
  Kinesalite& operator=(const Kinesalite&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] bool running() { return process_ && !process_->poll(); }

  /// Stops the server; its streams stay in its LevelDB directory.
  void stop() {
    if (process_) process_->stop(std::chrono::seconds(10));
    process_.reset();
  }
  /// Starts it again on the same port, with the same streams.
  void start() {
    if (process_) return;
    if (!launch()) {
      process_.reset();
      throw std::runtime_error("kinesalite did not restart:\n" + log());
    }
  }

  /// Client options for this server: region us-east-1, quick retries.
  [[nodiscard]] aws::KinesisOptions client_options() const {
    return test_kinesis_options(endpoint());
  }
  [[nodiscard]] aws::KinesisClient client() const {
    return aws::KinesisClient(client_options(), test_credentials());
  }

  [[nodiscard]] std::string log() const {
    std::ifstream in(dir_ / "kinesalite.out", std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  bool launch() {
    const NpmPackage& package = npm_package("kinesalite", "kinesalite@3");
    const std::filesystem::path script =
        std::filesystem::path(__FILE__).parent_path() / "kinesalite.js";
    const std::size_t log_start = log().size();
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{package.node, script.string(), package.modules,
                                 std::to_string(port_), (dir_ / "db").string()},
        dir_ / "kinesalite.out");
    const std::string ready = "kinesalite listening on 127.0.0.1:" + std::to_string(port_) +
                              " pid " + std::to_string(process_->pid());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (process_->poll()) return false;  // it exited: see the log
      if (log().find(ready, log_start) != std::string::npos && accepts_connections(port_))
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  TempDir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

/// Drives one stream through a client; every failure throws std::runtime_error.
class KinesisStream {
 public:
  struct Entry {
    std::string data{};  // raw bytes (base64-encoded on the wire)
    std::string partition_key{};
    std::string explicit_hash_key{};  // "" for none
  };
  struct Put {
    std::string shard_id;
    std::string sequence_number;
  };
  /// A record as read, copied.
  struct Record {
    std::string sequence_number;
    std::string partition_key;
    std::string data;
    std::int64_t approximate_arrival_ms = 0;
  };

  KinesisStream(aws::KinesisClient& client, std::string name)
      : client_(client), name_(std::move(name)) {}

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  /// CreateStream with `shards` shards; returns once the stream is ACTIVE.
  void create(unsigned shards) {
    call("CreateStream",
         "{\"StreamName\":" + quoted(name_) + ",\"ShardCount\":" + std::to_string(shards) + "}");
    wait_active();
  }

  /// StreamStatus from DescribeStreamSummary: CREATING, ACTIVE, UPDATING, DELETING.
  [[nodiscard]] std::string status() {
    const std::string reply =
        call("DescribeStreamSummary", "{\"StreamName\":" + quoted(name_) + "}");
    simdjson::dom::parser parser;
    std::string_view text;
    if (parser.parse(reply)["StreamDescriptionSummary"]["StreamStatus"].get_string().get(text) !=
        simdjson::SUCCESS)
      throw std::runtime_error("DescribeStreamSummary: unexpected reply " + reply);
    return std::string(text);
  }

  void wait_active(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (status() != "ACTIVE") {
      if (std::chrono::steady_clock::now() >= deadline)
        throw std::runtime_error("stream " + name_ + " did not become ACTIVE");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  [[nodiscard]] std::vector<aws::Shard> shards() {
    std::vector<aws::Shard> shards;
    check(client_.list_shards(name_, shards));
    return shards;
  }

  Put put(std::string_view data, std::string_view partition_key,
          std::string_view explicit_hash_key = {}) {
    std::string body = "{\"StreamName\":" + quoted(name_) + ",\"Data\":\"";
    base64::encode_append(data, body);
    body += "\",\"PartitionKey\":" + quoted(partition_key);
    if (!explicit_hash_key.empty()) body += ",\"ExplicitHashKey\":" + quoted(explicit_hash_key);
    body += "}";
    const std::string reply = call("PutRecord", body);
    simdjson::dom::parser parser;
    simdjson::dom::object object;
    std::string_view shard, sequence;
    if (parser.parse(reply).get(object) != simdjson::SUCCESS ||
        object["ShardId"].get_string().get(shard) != simdjson::SUCCESS ||
        object["SequenceNumber"].get_string().get(sequence) != simdjson::SUCCESS)
      throw std::runtime_error("PutRecord: unexpected reply " + reply);
    return {std::string(shard), std::string(sequence)};
  }

  /// PutRecords, at most 500 records and 4 MiB of base64 a request; entries
  /// the service failed (throttled) are sent again. One Put per entry, in order.
  std::vector<Put> put_records(const std::vector<Entry>& entries) {
    std::vector<Put> puts(entries.size());
    std::vector<std::size_t> pending(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) pending[i] = i;
    for (int round = 0; !pending.empty(); ++round) {
      if (round == 20) throw std::runtime_error("PutRecords: entries still failing");
      std::vector<std::size_t> failed;
      std::size_t at = 0;
      while (at < pending.size()) {
        std::string body = "{\"StreamName\":" + quoted(name_) + ",\"Records\":[";
        const std::size_t first = at;
        while (at < pending.size() && at - first < 500 && body.size() < (4u << 20)) {
          const Entry& entry = entries[pending[at]];
          if (at > first) body += ',';
          body += "{\"Data\":\"";
          base64::encode_append(entry.data, body);
          body += "\",\"PartitionKey\":" + quoted(entry.partition_key);
          if (!entry.explicit_hash_key.empty())
            body += ",\"ExplicitHashKey\":" + quoted(entry.explicit_hash_key);
          body += "}";
          ++at;
        }
        body += "]}";
        const std::string reply = call("PutRecords", body);
        simdjson::dom::parser parser;
        simdjson::dom::array results;
        if (parser.parse(reply)["Records"].get_array().get(results) != simdjson::SUCCESS ||
            results.size() != at - first)
          throw std::runtime_error("PutRecords: unexpected reply " + reply.substr(0, 500));
        std::size_t i = first;
        for (simdjson::dom::element result : results) {
          std::string_view shard, sequence;
          if (result["ShardId"].get_string().get(shard) == simdjson::SUCCESS &&
              result["SequenceNumber"].get_string().get(sequence) == simdjson::SUCCESS) {
            puts[pending[i]] = {std::string(shard), std::string(sequence)};
          } else {
            failed.push_back(pending[i]);
          }
          ++i;
        }
      }
      pending = std::move(failed);
      if (!pending.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return puts;
  }

  /// SplitShard at `new_starting_hash_key`; returns once the stream is ACTIVE again.
  void split(std::string_view shard_id, std::string_view new_starting_hash_key) {
    call("SplitShard", "{\"StreamName\":" + quoted(name_) +
                           ",\"ShardToSplit\":" + quoted(shard_id) +
                           ",\"NewStartingHashKey\":" + quoted(new_starting_hash_key) + "}");
    wait_active();
  }

  /// SplitShard in the middle of the shard's hash key range.
  void split_in_half(const aws::Shard& shard) {
    const Uint128 start = parse_u128(shard.starting_hash_key);
    const Uint128 end = parse_u128(shard.ending_hash_key);
    split(shard.shard_id, u128_text(start + (end - start) / 2 + 1));
  }

  /// MergeShards of two adjacent shards; returns once the stream is ACTIVE again.
  void merge(std::string_view shard_id, std::string_view adjacent_shard_id) {
    call("MergeShards", "{\"StreamName\":" + quoted(name_) +
                            ",\"ShardToMerge\":" + quoted(shard_id) +
                            ",\"AdjacentShardToMerge\":" + quoted(adjacent_shard_id) + "}");
    wait_active();
  }

  /// Every record of the shard from TRIM_HORIZON, until a call returns no
  /// records (an open shard) or no next iterator (a closed one read to its end).
  std::vector<Record> read_all(std::string_view shard_id) {
    std::string iterator;
    check(client_.get_shard_iterator(name_, shard_id, aws::ShardIteratorType::trim_horizon, {},
                                     iterator));
    std::vector<Record> records;
    aws::GetRecordsResult batch;
    for (int call = 0; call < 10'000; ++call) {
      check(client_.get_records(iterator, batch));
      for (const aws::KinesisRecord& r : batch.records)
        records.push_back({std::string(r.sequence_number), std::string(r.partition_key),
                           std::string(r.data), r.approximate_arrival_ms});
      if (!batch.next_shard_iterator || batch.records.empty()) return records;
      iterator = *batch.next_shard_iterator;
    }
    throw std::runtime_error("read_all: the shard does not end");
  }

  /// The reply of any operation; throws unless it succeeded.
  std::string call(std::string_view operation, std::string_view body) {
    std::string reply;
    check(client_.call(operation, body, reply));
    return reply;
  }

 private:
  __extension__ using Uint128 = unsigned __int128;

  static void check(const aws::KinesisStatus& status) {
    if (!status.ok()) throw std::runtime_error(status.message);
  }

  static std::string quoted(std::string_view text) {
    std::string out;
    filebuilder::detail::append_json_string(out, text);
    return out;
  }

  static Uint128 parse_u128(std::string_view text) {
    Uint128 value = 0;
    for (char c : text) {
      if (c < '0' || c > '9') throw std::runtime_error("not a hash key: " + std::string(text));
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value;
  }

  static std::string u128_text(Uint128 value) {
    std::string text;
    do {
      text.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
      value /= 10;
    } while (value != 0);
    std::reverse(text.begin(), text.end());
    return text;
  }

  aws::KinesisClient& client_;
  std::string name_;
};

}  // namespace filebuilder::test
