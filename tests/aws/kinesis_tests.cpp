// The Kinesis client's reply parsing, options and errors, without a server.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/aws/kinesis.hpp"
#include "filebuilder/base64.hpp"

namespace aws = filebuilder::aws;
using filebuilder::ErrorCode;

namespace {

simdjson::padded_string padded(std::string_view json) {
  return simdjson::padded_string(json);
}

}  // namespace

TEST_CASE("kinesis: ListShards replies, open and closed shards, NextToken") {
  simdjson::ondemand::parser parser;
  const auto json = padded(R"({"NextToken":"AAAA==","Shards":[
    {"ShardId":"shardId-000000000000","HashKeyRange":{"StartingHashKey":"0",
     "EndingHashKey":"340282366920938463463374607431768211455"},
     "SequenceNumberRange":{"StartingSequenceNumber":"4959","EndingSequenceNumber":"4960"}},
    {"SequenceNumberRange":{"StartingSequenceNumber":"4961"},"ShardId":"shardId-000000000001",
     "ParentShardId":"shardId-000000000000","AdjacentParentShardId":null,"Extra":[1,{"a":2}]}]})");
  std::vector<aws::Shard> shards;
  std::string token;
  REQUIRE(aws::detail::parse_list_shards(parser, json, shards, token));
  CHECK(token == "AAAA==");
  REQUIRE(shards.size() == 2);
  CHECK(shards[0].shard_id == "shardId-000000000000");
  CHECK(shards[0].parent_shard_id.empty());
  CHECK(shards[0].ending_hash_key == "340282366920938463463374607431768211455");
  CHECK(shards[0].starting_sequence_number == "4959");
  REQUIRE(shards[0].closed());
  CHECK(*shards[0].ending_sequence_number == "4960");
  CHECK(shards[1].parent_shard_id == "shardId-000000000000");
  CHECK(shards[1].adjacent_parent_shard_id.empty());
  CHECK_FALSE(shards[1].closed());

  for (const char* bad : {"[]", R"({"Shards":{}})", R"({"Shards":[{"ShardId":7}]})",
                          R"({"Shards":[]} trailing)", "<html>", R"({"Shards":[{}]})"}) {
    CAPTURE(bad);
    std::vector<aws::Shard> none;
    CHECK_FALSE(aws::detail::parse_list_shards(parser, padded(bad), none, token));
  }
}

TEST_CASE("kinesis: GetRecords replies decode data, escaped or not, and keep bad records apart") {
  simdjson::ondemand::parser parser;
  std::string data;
  aws::GetRecordsResult out;
  const std::string all_bytes = [] {
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
    return bytes;
  }();
  std::string escaped = filebuilder::base64::encode(all_bytes);
  std::string with_slashes;  // "\/" as some JSON writers emit it
  for (char c : escaped) with_slashes += c == '/' ? std::string("\\/") : std::string(1, c);
  const std::string json =
      R"({"Records":[{"SequenceNumber":"1","ApproximateArrivalTimestamp":1.700000000123E9,)"
      R"("Data":")" +
      with_slashes + R"(","PartitionKey":"k\u00e9"},)" +
      R"({"Data":"","PartitionKey":"empty","SequenceNumber":"2","EncryptionType":"NONE"},)"
      R"({"Data":"not base64!","PartitionKey":"bad","SequenceNumber":"3"},)"
      R"({"Data" : "aGk=" ,"PartitionKey":"hi","SequenceNumber":"4"}],)"
      R"("NextShardIterator":"iter-2","MillisBehindLatest":42})";
  REQUIRE(aws::detail::parse_get_records(parser, padded(json), data, out));
  REQUIRE(out.records.size() == 4);
  CHECK(out.records[0].data == all_bytes);
  CHECK(out.records[0].partition_key == "k\xc3\xa9");
  CHECK(out.records[0].sequence_number == "1");
  CHECK(out.records[0].approximate_arrival_ms == 1'700'000'000'123);
  CHECK(out.records[1].data.empty());
  CHECK(out.records[1].error == ErrorCode::ok);
  CHECK(out.records[2].error == ErrorCode::bad_record_data);
  CHECK(out.records[2].error_position == 3);
  CHECK(out.records[2].data.empty());
  CHECK(out.records[3].data == "hi");
  REQUIRE(out.next_shard_iterator);
  CHECK(*out.next_shard_iterator == "iter-2");
  CHECK(out.millis_behind_latest == 42);
  CHECK(out.child_shards.empty());

  // The end of a closed shard: no iterator (null or absent), its children.
  const auto end = padded(R"({"Records":[],"NextShardIterator":null,"MillisBehindLatest":0,
    "ChildShards":[{"ShardId":"shardId-000000000002","ParentShards":["shardId-000000000000"],
    "HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"17"}},
    {"ShardId":"shardId-000000000003","ParentShards":["shardId-000000000000"]}]})");
  REQUIRE(aws::detail::parse_get_records(parser, end, data, out));
  CHECK(out.records.empty());
  CHECK_FALSE(out.next_shard_iterator);
  REQUIRE(out.child_shards.size() == 2);
  CHECK(out.child_shards[0].shard_id == "shardId-000000000002");
  CHECK(out.child_shards[0].parent_shards == std::vector<std::string>{"shardId-000000000000"});
  CHECK(out.child_shards[0].ending_hash_key == "17");
  REQUIRE(aws::detail::parse_get_records(parser, padded(R"({"Records":[]})"), data, out));
  CHECK_FALSE(out.next_shard_iterator);

  for (const char* bad : {R"({"Records":[{"Data":"aGk="}]})",         // no sequence number
                          R"({"Records":[{"SequenceNumber":"1"}]})",  // no data
                          R"({"Records":[{"Data":5,"SequenceNumber":"1"}]})",
                          R"({"Records":[],"MillisBehindLatest":"x"})", "null", "{"}) {
    CAPTURE(bad);
    CHECK_FALSE(aws::detail::parse_get_records(parser, padded(bad), data, out));
  }
}

TEST_CASE("kinesis: error types, options and the default endpoint") {
  using aws::detail::bare_error_type;
  CHECK(bare_error_type("com.amazonaws.kinesis.v20131202#ExpiredIteratorException") ==
        "ExpiredIteratorException");
  CHECK(bare_error_type("ResourceNotFoundException:http://internal.amazon.com/coral/") ==
        "ResourceNotFoundException");
  CHECK(bare_error_type("LimitExceededException") == "LimitExceededException");

  CHECK(aws::default_kinesis_endpoint("eu-west-1") == "https://kinesis.eu-west-1.amazonaws.com");
  CHECK(aws::default_kinesis_endpoint("cn-north-1") ==
        "https://kinesis.cn-north-1.amazonaws.com.cn");

  std::string message;
  aws::KinesisOptions options;
  CHECK(aws::check_kinesis_options(options, message) == ErrorCode::invalid_config);
  CHECK(message.find("region") != std::string::npos);
  options.region = "us-east-1";
  CHECK(aws::check_kinesis_options(options, message) == ErrorCode::ok);
  options.region = "us-east-1/../x";
  CHECK(aws::check_kinesis_options(options, message) == ErrorCode::invalid_config);
  options.region = "us-east-1";
  for (const char* bad : {"ftp://127.0.0.1:4567", "http://127.0.0.1:4567/kinesis", "not a url",
                          "http://127.0.0.1:4567/?a=b"}) {
    CAPTURE(bad);
    options.endpoint = bad;
    CHECK(aws::check_kinesis_options(options, message) == ErrorCode::invalid_config);
  }
  CHECK_THROWS_AS((void)aws::KinesisClient{options}, std::invalid_argument);
  options.endpoint = "http://127.0.0.1:4567/";
  CHECK(aws::check_kinesis_options(options, message) == ErrorCode::ok);
}

TEST_CASE("kinesis: missing credentials are a clear error, before anything is sent") {
  aws::KinesisOptions options;
  options.region = "us-east-1";
  options.endpoint = "http://127.0.0.1:9";  // never reached
  aws::KinesisClient client(
      options, [](std::string& message) -> filebuilder::Result<aws::Credentials> {
        message = "no AWS credentials found (tried environment: AWS_ACCESS_KEY_ID is not set)";
        return ErrorCode::missing_credentials;
      });
  std::vector<aws::Shard> shards;
  const aws::KinesisStatus status = client.list_shards("chunks", shards);
  CHECK(status.code == ErrorCode::missing_credentials);
  CHECK(status.attempts == 0);
  CHECK(status.http_status == 0);
  CHECK_FALSE(status.transient());
  CHECK(status.message ==
        "Kinesis ListShards: no AWS credentials found (tried environment: AWS_ACCESS_KEY_ID is not "
        "set)");
}

TEST_CASE("kinesis: every error code has its own name") {
  std::set<std::string_view> names;
  for (int code = 0; code <= static_cast<int>(ErrorCode::iterator_expired); ++code) {
    const std::string_view name = filebuilder::error_code_name(static_cast<ErrorCode>(code));
    CHECK(name != "unknown");
    CHECK(filebuilder::error_message(static_cast<ErrorCode>(code)) != "unknown error");
    CHECK(names.insert(name).second);
  }
  CHECK(filebuilder::error_code_name(ErrorCode::iterator_expired) == "iterator_expired");
  CHECK(filebuilder::error_code_name(ErrorCode::throttled) == "throttled");
}
