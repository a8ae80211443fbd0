// aws::KinesisClient against kinesalite (a real Kinesis API on 127.0.0.1) and
// against scripted replies (cpp-httplib) for what kinesalite cannot show:
// pagination, expired iterators, throttling, 5xx, bad replies, refused
// connections; and its signature checked against botocore's.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "filebuilder/aws/kinesis.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "support/bytes.hpp"
#include "support/fake_kinesis.hpp"
#include "support/kinesalite.hpp"
#include "support/net.hpp"
#include "support/run.hpp"

namespace aws = filebuilder::aws;
using filebuilder::ErrorCode;
using filebuilder::test::FakeKinesis;
using filebuilder::test::Kinesalite;
using filebuilder::test::KinesisStream;
using namespace std::chrono_literals;

namespace {

/// True when kinesalite can run; otherwise says why (a skip).
bool have_kinesalite() {
  const std::string why = Kinesalite::skip_reason();
  if (!why.empty()) MESSAGE(why);
  return why.empty();
}

std::string iterator_for(aws::KinesisClient& client, const std::string& stream,
                         const std::string& shard, aws::ShardIteratorType type,
                         std::string_view sequence = {}) {
  std::string iterator;
  const aws::KinesisStatus status =
      client.get_shard_iterator(stream, shard, type, sequence, iterator);
  INFO(status.message);
  REQUIRE(status.ok());
  REQUIRE_FALSE(iterator.empty());
  return iterator;
}

/// The data of every record from the iterator until a call returns none.
std::vector<std::string> read_data(aws::KinesisClient& client, std::string iterator) {
  std::vector<std::string> data;
  aws::GetRecordsResult batch;
  for (int i = 0; i < 100; ++i) {
    const aws::KinesisStatus status = client.get_records(iterator, batch);
    INFO(status.message);
    REQUIRE(status.ok());
    for (const aws::KinesisRecord& record : batch.records) data.emplace_back(record.data);
    if (batch.records.empty() || !batch.next_shard_iterator) break;
    iterator = *batch.next_shard_iterator;
  }
  return data;
}

}  // namespace

TEST_CASE("kinesis on kinesalite: ListShards of a 2-shard stream, and of a missing stream") {
  if (!have_kinesalite()) return;
  Kinesalite kinesalite;
  aws::KinesisClient client = kinesalite.client();
  KinesisStream stream(client, "two-shards");
  stream.create(2);
  const std::vector<aws::Shard> shards = stream.shards();
  REQUIRE(shards.size() == 2);
  CHECK(shards[0].shard_id == "shardId-000000000000");
  CHECK(shards[1].shard_id == "shardId-000000000001");
  for (const aws::Shard& shard : shards) {
    CHECK(shard.parent_shard_id.empty());
    CHECK_FALSE(shard.closed());
    CHECK_FALSE(shard.starting_sequence_number.empty());
  }
  CHECK(shards[0].starting_hash_key == "0");
  CHECK(shards[1].ending_hash_key == "340282366920938463463374607431768211455");

  std::vector<aws::Shard> none;
  const aws::KinesisStatus missing = client.list_shards("no-such-stream", none);
  CHECK(missing.code == ErrorCode::kinesis_error);
  CHECK(missing.type == "ResourceNotFoundException");
  CHECK(missing.http_status == 400);
  CHECK(missing.attempts == 1);  // not retried
  CHECK_FALSE(missing.request_id.empty());
  CHECK(missing.message.find("Kinesis ListShards: HTTP 400 ResourceNotFoundException: ") == 0);
}

TEST_CASE("kinesis on kinesalite: binary data round trip (every byte value, 0 bytes, 1 MiB)") {
  if (!have_kinesalite()) return;
  Kinesalite kinesalite;
  aws::KinesisClient client = kinesalite.client();
  KinesisStream stream(client, "binary");
  stream.create(1);
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  std::mt19937_64 rng(11);
  const std::string big_key = "big";
  const std::string big = filebuilder::test::random_bytes(rng, (1u << 20) - big_key.size());
  const std::vector<KinesisStream::Entry> entries = {
      {all_bytes, "all"}, {"", "empty"}, {big, big_key}, {std::string(1, '\0'), "nul"}};
  const auto before = std::chrono::system_clock::now();
  const std::vector<KinesisStream::Put> puts = stream.put_records(entries);
  const std::string shard = "shardId-000000000000";

  aws::GetRecordsResult batch;
  const aws::KinesisStatus status = client.get_records(
      iterator_for(client, "binary", shard, aws::ShardIteratorType::trim_horizon), batch);
  INFO(status.message);
  REQUIRE(status.ok());
  REQUIRE(batch.records.size() == entries.size());
  const auto ms = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  };
  for (std::size_t i = 0; i < entries.size(); ++i) {
    CAPTURE(i);
    const aws::KinesisRecord& record = batch.records[i];
    CHECK(record.error == ErrorCode::ok);
    CHECK(record.data.size() == entries[i].data.size());
    CHECK(record.data == entries[i].data);
    CHECK(record.partition_key == entries[i].partition_key);
    CHECK(record.sequence_number == puts[i].sequence_number);
    CHECK(record.approximate_arrival_ms >= ms(before) - 1000);
    CHECK(record.approximate_arrival_ms <= ms(std::chrono::system_clock::now()) + 1000);
  }
  REQUIRE(batch.next_shard_iterator);
  CHECK(batch.millis_behind_latest == 0);

  // The views of one batch stay valid while other calls are made.
  std::vector<aws::Shard> shards;
  REQUIRE(client.list_shards("binary", shards).ok());
  CHECK(batch.records[0].data == all_bytes);

  // Limit: one record a call, in order, to the end.
  std::string iterator =
      iterator_for(client, "binary", shard, aws::ShardIteratorType::trim_horizon);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    REQUIRE(client.get_records(iterator, batch, 1).ok());
    REQUIRE(batch.records.size() == 1);
    CHECK(batch.records[0].data == entries[i].data);
    iterator = *batch.next_shard_iterator;
  }
  REQUIRE(client.get_records(iterator, batch, 1).ok());
  CHECK(batch.records.empty());
  CHECK(batch.next_shard_iterator);  // an open shard never ends
}

TEST_CASE("kinesis on kinesalite: AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER and LATEST") {
  if (!have_kinesalite()) return;
  Kinesalite kinesalite;
  aws::KinesisClient client = kinesalite.client();
  KinesisStream stream(client, "positions");
  stream.create(1);
  const std::string shard = "shardId-000000000000";
  std::vector<KinesisStream::Put> puts;
  for (int i = 0; i < 5; ++i) puts.push_back(stream.put("record " + std::to_string(i), "k"));

  using Type = aws::ShardIteratorType;
  CHECK(read_data(client, iterator_for(client, "positions", shard, Type::after_sequence_number,
                                       puts[1].sequence_number)) ==
        std::vector<std::string>{"record 2", "record 3", "record 4"});
  CHECK(read_data(client, iterator_for(client, "positions", shard, Type::at_sequence_number,
                                       puts[1].sequence_number)) ==
        std::vector<std::string>{"record 1", "record 2", "record 3", "record 4"});
  CHECK(read_data(client, iterator_for(client, "positions", shard, Type::after_sequence_number,
                                       puts[4].sequence_number))
            .empty());

  const std::string latest = iterator_for(client, "positions", shard, Type::latest);
  std::this_thread::sleep_for(5ms);
  stream.put("new 0", "k");
  stream.put("new 1", "k");
  CHECK(read_data(client, latest) == std::vector<std::string>{"new 0", "new 1"});

  // A sequence number that is not of this shard: Kinesis refuses it.
  std::string iterator;
  const aws::KinesisStatus bad =
      client.get_shard_iterator("positions", shard, Type::after_sequence_number, "12", iterator);
  CHECK(bad.code == ErrorCode::kinesis_error);
  CHECK(bad.type == "InvalidArgumentException");
}

TEST_CASE(
    "kinesis on kinesalite: SplitShard closes the parent, read to its end, then its children") {
  if (!have_kinesalite()) return;
  Kinesalite kinesalite;
  aws::KinesisClient client = kinesalite.client();
  KinesisStream stream(client, "resharded");
  stream.create(1);
  for (int i = 0; i < 3; ++i) stream.put("before " + std::to_string(i), "k" + std::to_string(i));
  stream.split_in_half(stream.shards().at(0));
  for (int i = 0; i < 4; ++i) stream.put("after " + std::to_string(i), "key " + std::to_string(i));

  const std::vector<aws::Shard> shards = stream.shards();
  REQUIRE(shards.size() == 3);
  const aws::Shard& parent = shards[0];
  CHECK(parent.shard_id == "shardId-000000000000");
  REQUIRE(parent.closed());
  CHECK_FALSE(parent.ending_sequence_number->empty());
  for (int i = 1; i <= 2; ++i) {
    CAPTURE(i);
    CHECK(shards[i].parent_shard_id == parent.shard_id);
    CHECK_FALSE(shards[i].closed());
  }
  CHECK(shards[1].starting_hash_key == "0");
  CHECK(shards[2].ending_hash_key == parent.ending_hash_key);

  // The parent holds exactly the records from before the split, and ends.
  std::string iterator =
      iterator_for(client, "resharded", parent.shard_id, aws::ShardIteratorType::trim_horizon);
  std::vector<std::string> from_parent;
  aws::GetRecordsResult batch;
  bool ended = false;
  for (int i = 0; i < 10 && !ended; ++i) {
    const aws::KinesisStatus status = client.get_records(iterator, batch);
    INFO(status.message);
    REQUIRE(status.ok());
    for (const aws::KinesisRecord& record : batch.records) from_parent.emplace_back(record.data);
    if (batch.next_shard_iterator) {
      iterator = *batch.next_shard_iterator;
    } else {
      ended = true;
    }
  }
  CHECK(ended);
  CHECK(from_parent == std::vector<std::string>{"before 0", "before 1", "before 2"});

  std::vector<std::string> from_children;
  for (int i = 1; i <= 2; ++i)
    for (const KinesisStream::Record& record : stream.read_all(shards[i].shard_id))
      from_children.push_back(record.data);
  std::sort(from_children.begin(), from_children.end());
  CHECK(from_children == std::vector<std::string>{"after 0", "after 1", "after 2", "after 3"});

  // Merging the children back: the new shard names both parents.
  stream.merge(shards[1].shard_id, shards[2].shard_id);
  const std::vector<aws::Shard> merged = stream.shards();
  REQUIRE(merged.size() == 4);
  CHECK(merged[3].parent_shard_id == shards[1].shard_id);
  CHECK(merged[3].adjacent_parent_shard_id == shards[2].shard_id);
  CHECK(merged[1].closed());
  CHECK(merged[2].closed());
}

TEST_CASE("kinesis on kinesalite: stopped for a moment, calls fail transiently, then work") {
  if (!have_kinesalite()) return;
  Kinesalite kinesalite;
  aws::KinesisOptions options = kinesalite.client_options();
  options.max_attempts = 2;
  aws::KinesisClient client(options, filebuilder::test::test_credentials());
  KinesisStream stream(client, "restarted");
  stream.create(1);
  stream.put("kept", "k");
  kinesalite.stop();
  std::vector<aws::Shard> shards;
  const aws::KinesisStatus down = client.list_shards("restarted", shards);
  CHECK(down.code == ErrorCode::kinesis_unavailable);
  CHECK(down.transient());
  CHECK(down.attempts == 2);
  kinesalite.start();
  REQUIRE(client.list_shards("restarted", shards).ok());
  const std::vector<KinesisStream::Record> records = stream.read_all("shardId-000000000000");
  REQUIRE(records.size() == 1);
  CHECK(records[0].data == "kept");
}

// --- scripted replies ---------------------------------------------------------

namespace {

std::string shard_json(const std::string& id, const std::string& parent = {}) {
  std::string json = R"({"ShardId":")" + id + "\"";
  if (!parent.empty()) json += R"(,"ParentShardId":")" + parent + "\"";
  return json + R"(,"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"1"},)"
                R"("SequenceNumberRange":{"StartingSequenceNumber":"1"}})";
}

/// Records the waits the client asks for, without sleeping.
struct Waits {
  std::vector<std::chrono::milliseconds> delays;
  std::vector<aws::KinesisStatus> reasons;
  bool go_on = true;

  void install(aws::KinesisOptions& options) {
    options.retry_wait = [this](const aws::KinesisStatus& last, std::chrono::milliseconds delay) {
      delays.push_back(delay);
      reasons.push_back(last);
      return go_on;
    };
  }
};

const std::string records_reply =
    R"({"Records":[{"Data":"aGk=","PartitionKey":"p","SequenceNumber":"7",)"
    R"("ApproximateArrivalTimestamp":1700000000.5}],"NextShardIterator":"next","MillisBehindLatest":3})";

}  // namespace

TEST_CASE("kinesis scripted: ListShards follows NextToken over 3 pages, NextToken alone") {
  FakeKinesis fake;
  fake.script({{200, R"({"Shards":[)" + shard_json("shardId-000000000000") +
                         R"(],"NextToken":"token one"})"},
               {200, R"({"Shards":[)" + shard_json("shardId-000000000001") + "," +
                         shard_json("shardId-000000000002", "shardId-000000000000") +
                         R"(],"NextToken":"token\"two"})"},
               {200, R"({"Shards":[)" + shard_json("shardId-000000000003") + "]}"}});
  aws::KinesisClient client(fake.client_options(), filebuilder::test::test_credentials());
  std::vector<aws::Shard> shards;
  const aws::KinesisStatus status = client.list_shards("paged", shards);
  INFO(status.message);
  REQUIRE(status.ok());
  CHECK(status.attempts == 3);
  REQUIRE(shards.size() == 4);
  for (std::size_t i = 0; i < shards.size(); ++i)
    CHECK(shards[i].shard_id == "shardId-00000000000" + std::to_string(i));
  CHECK(shards[2].parent_shard_id == "shardId-000000000000");

  const std::vector<FakeKinesis::Request> requests = fake.requests();
  REQUIRE(requests.size() == 3);
  simdjson::dom::parser parser;
  const auto field = [&](const std::string& body, const char* key) -> std::string {
    std::string_view text;
    if (parser.parse(body)[key].get_string().get(text) != simdjson::SUCCESS) return "<absent>";
    return std::string(text);
  };
  for (const FakeKinesis::Request& request : requests) {
    CHECK(request.operation() == "ListShards");
    CHECK(request.path == "/");
    CHECK(request.header("content-type") == "application/x-amz-json-1.1");
  }
  CHECK(field(requests[0].body, "StreamName") == "paged");
  CHECK(field(requests[0].body, "NextToken") == "<absent>");
  CHECK(field(requests[1].body, "StreamName") == "<absent>");
  CHECK(field(requests[1].body, "NextToken") == "token one");
  CHECK(field(requests[2].body, "StreamName") == "<absent>");
  CHECK(field(requests[2].body, "NextToken") == "token\"two");
}

TEST_CASE("kinesis scripted: an expired iterator is its own code and is not retried") {
  FakeKinesis fake;
  fake.script({{400, R"({"__type":"ExpiredIteratorException","message":"Iterator expired."})"}});
  fake.set_default({200, records_reply});
  aws::KinesisOptions options = fake.client_options();
  Waits waits;
  waits.install(options);
  aws::KinesisClient client(options, filebuilder::test::test_credentials());
  aws::GetRecordsResult batch;
  const aws::KinesisStatus status = client.get_records("old-iterator", batch);
  CHECK(status.code == ErrorCode::iterator_expired);
  CHECK(status.type == "ExpiredIteratorException");
  CHECK(status.http_status == 400);
  CHECK(status.attempts == 1);
  CHECK_FALSE(status.transient());
  CHECK(status.message ==
        "Kinesis GetRecords: HTTP 400 ExpiredIteratorException: Iterator expired. (after 1 "
        "attempt)");
  CHECK(waits.delays.empty());
  CHECK(fake.requests().size() == 1);
  CHECK(batch.records.empty());

  // The namespaced form of the type, as AWS also writes it.
  fake.script({{400, R"({"__type":"com.amazonaws.kinesis.v20131202#ExpiredIteratorException"})"}});
  CHECK(client.get_records("old-iterator", batch).code == ErrorCode::iterator_expired);
}

TEST_CASE("kinesis scripted: throttling is retried with growing jittered waits, then succeeds") {
  FakeKinesis fake;
  const std::string throttled =
      R"({"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard"})";
  fake.script(
      {{400, throttled}, {400, throttled}, {400, R"({"__type":"LimitExceededException"})"}});
  fake.set_default({200, records_reply});
  aws::KinesisOptions options = fake.client_options();
  options.backoff_base = 40ms;
  options.backoff_max = 1000ms;
  Waits waits;
  waits.install(options);
  aws::KinesisClient client(options, filebuilder::test::test_credentials());
  aws::GetRecordsResult batch;
  const aws::KinesisStatus status = client.get_records("iterator", batch);
  INFO(status.message);
  REQUIRE(status.ok());
  CHECK(status.attempts == 4);
  REQUIRE(batch.records.size() == 1);
  CHECK(batch.records[0].data == "hi");
  CHECK(batch.records[0].approximate_arrival_ms == 1'700'000'000'500);
  CHECK(batch.millis_behind_latest == 3);
  CHECK(*batch.next_shard_iterator == "next");

  REQUIRE(waits.delays.size() == 3);
  for (std::size_t i = 0; i < waits.delays.size(); ++i) {
    CAPTURE(i);
    CHECK(waits.delays[i] <= 40ms * (1 << i));  // full jitter under base * 2^(attempt - 1)
    CHECK(waits.reasons[i].code == ErrorCode::throttled);
    CHECK(waits.reasons[i].attempts == i + 1);
  }
  CHECK(waits.reasons[0].type == "ProvisionedThroughputExceededException");
  CHECK(waits.reasons[0].message.find("Rate exceeded for shard") != std::string::npos);
  CHECK(waits.reasons[2].type == "LimitExceededException");

  // Each attempt is signed anew and carries the same request.
  const std::vector<FakeKinesis::Request> requests = fake.requests();
  REQUIRE(requests.size() == 4);
  for (const FakeKinesis::Request& request : requests) {
    CHECK(request.operation() == "GetRecords");
    CHECK(request.body == R"({"ShardIterator":"iterator","Limit":10000})");
    CHECK(request.header("authorization").starts_with("AWS4-HMAC-SHA256 Credential="));
  }

  // The wait ends the retries when it says so (a stop was requested).
  waits.go_on = false;
  fake.script({{429, ""}});
  const aws::KinesisStatus stopped = client.get_records("iterator", batch);
  CHECK(stopped.code == ErrorCode::throttled);
  CHECK(stopped.http_status == 429);
  CHECK(stopped.attempts == 1);
  CHECK(stopped.message == "Kinesis GetRecords: HTTP 429 (after 1 attempt, retries stopped)");
}

TEST_CASE("kinesis scripted: HTTP 500 every time gives up after the bounded attempts") {
  FakeKinesis fake;
  fake.set_default({500, R"({"__type":"InternalFailure","message":"try later"})"});
  aws::KinesisOptions options = fake.client_options();
  options.max_attempts = 4;
  Waits waits;
  waits.install(options);
  aws::KinesisClient client(options, filebuilder::test::test_credentials());
  std::string iterator;
  const aws::KinesisStatus status = client.get_shard_iterator(
      "s", "shardId-000000000000", aws::ShardIteratorType::trim_horizon, {}, iterator);
  CHECK(status.code == ErrorCode::kinesis_unavailable);
  CHECK(status.transient());
  CHECK(status.http_status == 500);
  CHECK(status.attempts == 4);
  CHECK(status.type == "InternalFailure");
  CHECK(status.message ==
        "Kinesis GetShardIterator: HTTP 500 InternalFailure: try later (after 4 attempts)");
  CHECK(waits.delays.size() == 3);
  CHECK(fake.requests().size() == 4);
  CHECK(iterator.empty());

  // A 502 page that is not JSON: the status, and the start of the page.
  fake.set_default({502, "<html>Bad Gateway</html>", "text/html"});
  options.max_attempts = 2;
  aws::KinesisClient second(options, filebuilder::test::test_credentials());
  const aws::KinesisStatus gateway = second.get_shard_iterator(
      "s", "shardId-000000000000", aws::ShardIteratorType::latest, {}, iterator);
  CHECK(gateway.code == ErrorCode::kinesis_unavailable);
  CHECK(gateway.message ==
        "Kinesis GetShardIterator: HTTP 502: <html>Bad Gateway</html> (after 2 attempts)");

  // The time bound: no retry that would end past the budget.
  options.max_attempts = 100;
  options.backoff_base = 10'000ms;
  options.backoff_max = 10'000ms;
  options.retry_budget = 5ms;
  options.retry_wait = {};
  aws::KinesisClient bounded(options, filebuilder::test::test_credentials());
  const auto started = std::chrono::steady_clock::now();
  const aws::KinesisStatus spent = bounded.get_shard_iterator(
      "s", "shardId-000000000000", aws::ShardIteratorType::latest, {}, iterator);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(spent.code == ErrorCode::kinesis_unavailable);
  CHECK(spent.attempts <= 2);  // a jitter of almost 0 may still fit once
  CHECK(spent.message.find("retry budget of 5 ms spent") != std::string::npos);
}

TEST_CASE("kinesis scripted: a reply that is not the JSON expected is a clear error") {
  FakeKinesis fake;
  fake.script({{200, "<html>captive portal</html>", "text/html"},
               {200, R"({"Records":[{"Data":"aGk="}]})"},
               {200, R"({"NotShardIterator":1})"}});
  aws::KinesisOptions options = fake.client_options();
  Waits waits;
  waits.install(options);
  aws::KinesisClient client(options, filebuilder::test::test_credentials());
  std::vector<aws::Shard> shards;
  const aws::KinesisStatus html = client.list_shards("s", shards);
  CHECK(html.code == ErrorCode::kinesis_error);
  CHECK(html.http_status == 200);
  CHECK(
      html.message ==
      "Kinesis ListShards: the reply (HTTP 200, 27 bytes) is not the JSON expected: <html>captive "
      "portal</html>");
  aws::GetRecordsResult batch;
  const aws::KinesisStatus partial = client.get_records("i", batch);
  CHECK(partial.code == ErrorCode::kinesis_error);
  CHECK(batch.records.empty());
  std::string iterator;
  CHECK(client
            .get_shard_iterator("s", "shardId-000000000000", aws::ShardIteratorType::latest, {},
                                iterator)
            .code == ErrorCode::kinesis_error);
  CHECK(waits.delays.empty());  // none of these is retried
  CHECK(fake.requests().size() == 3);

  // Other refusals are not retried either.
  fake.script({{400, R"({"__type":"AccessDeniedException","message":"not allowed"})"}});
  const aws::KinesisStatus denied = client.list_shards("s", shards);
  CHECK(denied.code == ErrorCode::kinesis_error);
  CHECK(denied.type == "AccessDeniedException");
  CHECK(denied.attempts == 1);
}

TEST_CASE("kinesis scripted: a refused connection is retried, then a clear error") {
  aws::KinesisOptions options;
  options.region = "us-east-1";
  options.endpoint = "http://127.0.0.1:" + std::to_string(filebuilder::test::free_port());
  options.max_attempts = 3;
  Waits waits;
  waits.install(options);
  aws::KinesisClient client(options, filebuilder::test::test_credentials());
  std::vector<aws::Shard> shards;
  const aws::KinesisStatus status = client.list_shards("s", shards);
  CHECK(status.code == ErrorCode::kinesis_unavailable);
  CHECK(status.http_status == 0);
  CHECK(status.attempts == 3);
  CHECK(waits.delays.size() == 2);
  CHECK(status.message.starts_with("Kinesis ListShards: "));
  CHECK(status.message.find("onnect") != std::string::npos);  // libcurl's "Couldn't connect ..."
  CHECK(status.message.ends_with("(after 3 attempts)"));
}

TEST_CASE("kinesis scripted: requests are signed as botocore signs them") {
  const std::filesystem::path script =
      std::filesystem::path(__FILE__).parent_path() / "botocore_sign.py";
  for (const std::string token : {"", "IQoJb3JpZ2luX2VjEXAMPLE+token/=="}) {
    CAPTURE(token);
    FakeKinesis fake;
    fake.set_default({200, R"({"ShardIterator":"AAAA"})"});
    aws::KinesisOptions options = fake.client_options();
    options.user_agent = "filebuilderd/test";
    aws::KinesisClient client(options, filebuilder::test::test_credentials(token));
    std::string iterator;
    REQUIRE(client
                .get_shard_iterator(
                    "chunks", "shardId-000000000001", aws::ShardIteratorType::after_sequence_number,
                    "49590338271490256608559692538361571095921575989136588898", iterator)
                .ok());
    CHECK(iterator == "AAAA");
    const std::vector<FakeKinesis::Request> requests = fake.requests();
    REQUIRE(requests.size() == 1);
    const FakeKinesis::Request& request = requests[0];
    CHECK(request.method == "POST");
    CHECK(request.header("x-amz-target") == "Kinesis_20131202.GetShardIterator");
    CHECK(request.header("content-type") == "application/x-amz-json-1.1");
    CHECK(request.header("user-agent") == "filebuilderd/test");
    CHECK(request.header("expect").empty());
    CHECK(request.header("x-amz-security-token") == token);
    const std::string date = request.header("x-amz-date");
    REQUIRE(date.size() == 16);
    const std::string authorization = request.header("authorization");
    const std::string signed_headers =
        token.empty() ? "content-type;host;x-amz-date;x-amz-target"
                      : "content-type;host;x-amz-date;x-amz-security-token;x-amz-target";
    CHECK(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + date.substr(0, 8) +
                                    "/us-east-1/kinesis/aws4_request, " +
                                    "SignedHeaders=" + signed_headers + ", Signature="));
    CHECK(
        request.body ==
        R"({"StreamName":"chunks","ShardId":"shardId-000000000001",)"
        R"("ShardIteratorType":"AFTER_SEQUENCE_NUMBER",)"
        R"("StartingSequenceNumber":"49590338271490256608559692538361571095921575989136588898"})");

    // botocore signs the same request at the same time: the same Authorization.
    std::tm utc{};
    utc.tm_year = std::stoi(date.substr(0, 4)) - 1900;
    utc.tm_mon = std::stoi(date.substr(4, 2)) - 1;
    utc.tm_mday = std::stoi(date.substr(6, 2));
    utc.tm_hour = std::stoi(date.substr(9, 2));
    utc.tm_min = std::stoi(date.substr(11, 2));
    utc.tm_sec = std::stoi(date.substr(13, 2));
    using filebuilder::detail::append_json_string;
    std::string line = R"({"method":"POST","url":)";
    append_json_string(line, fake.endpoint() + "/");
    line += R"(,"headers":[["Content-Type","application/x-amz-json-1.1"],["X-Amz-Target",)";
    append_json_string(line, request.header("x-amz-target"));
    line += "]],\"body\":";
    append_json_string(line, request.body);
    line += R"(,"region":"us-east-1","service":"kinesis","access_key":"AKIDEXAMPLE",)";
    line += R"("secret_key":"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY","token":)";
    append_json_string(line, token);
    line += ",\"time\":" + std::to_string(timegm(&utc)) + "}\n";
    const filebuilder::test::RunResult botocore =
        filebuilder::test::run({"/usr/bin/python3", script.string()}, line);
    INFO("botocore_sign.py stderr: " << botocore.err);
    REQUIRE_MESSAGE(botocore.exit_code == 0,
                    "/usr/bin/python3 with python3-botocore is needed (scripts/install-deps)");
    simdjson::dom::parser parser;
    std::string_view expected;
    REQUIRE(parser.parse(botocore.out)["headers"]["Authorization"].get_string().get(expected) ==
            simdjson::SUCCESS);
    CHECK(authorization == expected);
  }
}
