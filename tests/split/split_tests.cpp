// Tests of filebuilder/split.hpp: exact output bytes of every format,
// partition counts, sequence numbers, event sizes, JSON escaping, and a round
// trip through simdjson and the base64 decoder back to the input files.
#include "filebuilder/split.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"

namespace {

using filebuilder::SplitFormat;
using filebuilder::SplitOptions;
using filebuilder::Splitter;

// Expected outputs, computed independently (Python's json and base64 modules)
// for the file "hello world" at https://example.com/a.txt?X=1, chunk size 4,
// 2 records per event.

constexpr std::string_view kNdjson =
    R"({"putEndpoint":"https://example.com/a.txt?X=1","partition":0,"partitionCount":3)"
    R"(,"content":"aGVsbA=="})"
    "\n"
    R"({"putEndpoint":"https://example.com/a.txt?X=1","partition":1,"partitionCount":3)"
    R"(,"content":"byB3bw=="})"
    "\n"
    R"({"putEndpoint":"https://example.com/a.txt?X=1","partition":2,"partitionCount":3)"
    R"(,"content":"cmxk"})"
    "\n";

constexpr std::string_view kLambda =
    R"({"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0")"
    R"(,"partitionKey":"4be67cab2ab826e8")"
    R"(,"sequenceNumber":"49590546919587208600957600000000000000000000000000000001")"
    R"(,"data":"eyJwdXRFbmRwb2ludCI6Imh0dHBzOi8vZXhhbXBsZS5jb20vYS50eHQ/WD0xIiwicGFydGl0aW9)"
    R"(uIjowLCJwYXJ0aXRpb25Db3VudCI6MywiY29udGVudCI6ImFHVnNiQT09In0=")"
    R"(,"approximateArrivalTimestamp":1700000000.0},"eventSource":"aws:kinesis")"
    R"(,"eventVersion":"1.0")"
    R"(,"eventID":"shardId-000000000000:495905469195872086009576000000000000000000000000000)"
    R"(00001")"
    R"(,"eventName":"aws:kinesis:record")"
    R"(,"invokeIdentityArn":"arn:aws:iam::123456789012:role/filebuilder")"
    R"(,"awsRegion":"us-east-1")"
    R"(,"eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/filebuilder"})"
    R"(,{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"4be67cab2ab826e8")"
    R"(,"sequenceNumber":"49590546919587208600957600000000000000000000000000000002")"
    R"(,"data":"eyJwdXRFbmRwb2ludCI6Imh0dHBzOi8vZXhhbXBsZS5jb20vYS50eHQ/WD0xIiwicGFydGl0aW9)"
    R"(uIjoxLCJwYXJ0aXRpb25Db3VudCI6MywiY29udGVudCI6ImJ5QjNidz09In0=")"
    R"(,"approximateArrivalTimestamp":1700000000.0},"eventSource":"aws:kinesis")"
    R"(,"eventVersion":"1.0")"
    R"(,"eventID":"shardId-000000000000:495905469195872086009576000000000000000000000000000)"
    R"(00002")"
    R"(,"eventName":"aws:kinesis:record")"
    R"(,"invokeIdentityArn":"arn:aws:iam::123456789012:role/filebuilder")"
    R"(,"awsRegion":"us-east-1")"
    R"(,"eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/filebuilder"}]})"
    "\n"
    R"({"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0")"
    R"(,"partitionKey":"4be67cab2ab826e8")"
    R"(,"sequenceNumber":"49590546919587208600957600000000000000000000000000000003")"
    R"(,"data":"eyJwdXRFbmRwb2ludCI6Imh0dHBzOi8vZXhhbXBsZS5jb20vYS50eHQ/WD0xIiwicGFydGl0aW9)"
    R"(uIjoyLCJwYXJ0aXRpb25Db3VudCI6MywiY29udGVudCI6ImNteGsifQ==")"
    R"(,"approximateArrivalTimestamp":1700000000.0},"eventSource":"aws:kinesis")"
    R"(,"eventVersion":"1.0")"
    R"(,"eventID":"shardId-000000000000:495905469195872086009576000000000000000000000000000)"
    R"(00003")"
    R"(,"eventName":"aws:kinesis:record")"
    R"(,"invokeIdentityArn":"arn:aws:iam::123456789012:role/filebuilder")"
    R"(,"awsRegion":"us-east-1")"
    R"(,"eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/filebuilder"}]})"
    "\n";

constexpr std::string_view kFirehose =
    R"({"invocationId":"00000000-0000-4000-8000-000000000001")"
    R"(,"deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/filebui)"
    R"(lder")"
    R"(,"region":"us-east-1")"
    R"(,"records":[{"recordId":"r49590546919587208600957600000000000000000000000000000001")"
    R"(,"approximateArrivalTimestamp":1700000000000)"
    R"(,"data":"eyJwdXRFbmRwb2ludCI6Imh0dHBzOi8vZXhhbXBsZS5jb20vYS50eHQ/WD0xIiwicGFydGl0aW9)"
    R"(uIjowLCJwYXJ0aXRpb25Db3VudCI6MywiY29udGVudCI6ImFHVnNiQT09In0="})"
    R"(,{"recordId":"r49590546919587208600957600000000000000000000000000000002")"
    R"(,"approximateArrivalTimestamp":1700000000000)"
    R"(,"data":"eyJwdXRFbmRwb2ludCI6Imh0dHBzOi8vZXhhbXBsZS5jb20vYS50eHQ/WD0xIiwicGFydGl0aW9)"
    R"(uIjoxLCJwYXJ0aXRpb25Db3VudCI6MywiY29udGVudCI6ImJ5QjNidz09In0="}]})"
    "\n"
    R"({"invocationId":"00000000-0000-4000-8000-000000000002")"
    R"(,"deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/filebui)"
    R"(lder")"
    R"(,"region":"us-east-1")"
    R"(,"records":[{"recordId":"r49590546919587208600957600000000000000000000000000000003")"
    R"(,"approximateArrivalTimestamp":1700000000000)"
    R"(,"data":"eyJwdXRFbmRwb2ludCI6Imh0dHBzOi8vZXhhbXBsZS5jb20vYS50eHQ/WD0xIiwicGFydGl0aW9)"
    R"(uIjoyLCJwYXJ0aXRpb25Db3VudCI6MywiY29udGVudCI6ImNteGsifQ=="}]})"
    "\n";

constexpr std::string_view kEmptyLambda =
    R"({"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0")"
    R"(,"partitionKey":"af63d84c8601e5c0")"
    R"(,"sequenceNumber":"49591263818280250912915200000000000000000000000000000001")"
    R"(,"data":"eyJwdXRFbmRwb2ludCI6ImUiLCJwYXJ0aXRpb24iOjAsInBhcnRpdGlvbkNvdW50IjoxLCJjb25)"
    R"(0ZW50IjoiIn0=")"
    R"(,"approximateArrivalTimestamp":1700000000.0},"eventSource":"aws:kinesis")"
    R"(,"eventVersion":"1.0")"
    R"(,"eventID":"shardId-000000000000:495912638182802509129152000000000000000000000000000)"
    R"(00001")"
    R"(,"eventName":"aws:kinesis:record")"
    R"(,"invokeIdentityArn":"arn:aws:iam::123456789012:role/filebuilder")"
    R"(,"awsRegion":"us-east-1")"
    R"(,"eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/filebuilder"}]})"
    "\n";

constexpr std::string_view kEndpoint = "https://example.com/a.txt?X=1";
constexpr std::string_view kHello = "hello world";

/// Runs one Splitter over the files and returns its lines (finish() included).
std::vector<std::string> split_lines(
    const SplitOptions& options, const std::vector<std::pair<std::string, std::string>>& files) {
  Splitter splitter(options);
  std::vector<std::string> lines;
  const auto sink = [&lines](std::string_view line) { lines.emplace_back(line); };
  for (const auto& [endpoint, bytes] : files) splitter.add_file(endpoint, bytes, sink);
  splitter.finish(sink);
  CHECK(splitter.lines() == lines.size());
  return lines;
}

std::string join(const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& line : lines) all += line;
  return all;
}

std::string split_all(const SplitOptions& options, std::string_view endpoint,
                      std::string_view bytes) {
  return join(split_lines(options, {{std::string(endpoint), std::string(bytes)}}));
}

std::string decode_base64(std::string_view text) {
  std::string out(filebuilder::base64::max_decoded_size(text.size()), '\0');
  const auto result = filebuilder::base64::decode(text, out.data());
  REQUIRE(result.error == filebuilder::ErrorCode::ok);
  out.resize(result.written);
  return out;
}

std::string get_string(simdjson::ondemand::value value) {
  std::string_view s;
  REQUIRE(value.get_string().get(s) == simdjson::SUCCESS);
  return std::string(s);
}

struct ChunkRecord {
  std::string endpoint;
  std::uint64_t partition = 0;
  std::uint64_t partition_count = 0;
  std::string bytes;
};

// Parses one chunk record with simdjson, checking the exact field order.
ChunkRecord parse_chunk_record(std::string_view json) {
  simdjson::ondemand::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::ondemand::document doc;
  REQUIRE(parser.iterate(padded).get(doc) == simdjson::SUCCESS);
  simdjson::ondemand::object object;
  REQUIRE(doc.get_object().get(object) == simdjson::SUCCESS);
  ChunkRecord record;
  std::vector<std::string> keys;
  for (auto field : object) {
    std::string_view key;
    REQUIRE(field.unescaped_key().get(key) == simdjson::SUCCESS);
    keys.emplace_back(key);
    simdjson::ondemand::value value;
    REQUIRE(field.value().get(value) == simdjson::SUCCESS);
    if (key == "putEndpoint") {
      record.endpoint = get_string(value);
    } else if (key == "partition") {
      REQUIRE(value.get_uint64().get(record.partition) == simdjson::SUCCESS);
    } else if (key == "partitionCount") {
      REQUIRE(value.get_uint64().get(record.partition_count) == simdjson::SUCCESS);
    } else if (key == "content") {
      record.bytes = decode_base64(get_string(value));
    }
  }
  CHECK(keys == std::vector<std::string>{"putEndpoint", "partition", "partitionCount", "content"});
  return record;
}

struct EnvelopeRecord {
  std::string id;  // Kinesis sequence number or Firehose recordId
  std::string partition_key;
  std::string event_id;
  ChunkRecord chunk;
};

struct Event {
  std::string invocation_id;  // Firehose only
  std::vector<EnvelopeRecord> records;
};

// Parses one output line of the given format into the records it carries.
Event parse_line(SplitFormat format, std::string_view line) {
  REQUIRE(!line.empty());
  REQUIRE(line.back() == '\n');
  line.remove_suffix(1);
  REQUIRE(line.find('\n') == std::string_view::npos);
  Event event;
  if (format == SplitFormat::ndjson) {
    event.records.push_back({{}, {}, {}, parse_chunk_record(line)});
    return event;
  }
  simdjson::ondemand::parser parser;
  const simdjson::padded_string padded(line);
  simdjson::ondemand::document doc;
  REQUIRE(parser.iterate(padded).get(doc) == simdjson::SUCCESS);
  simdjson::ondemand::array records;
  if (format == SplitFormat::lambda) {
    REQUIRE(doc["Records"].get_array().get(records) == simdjson::SUCCESS);
    for (auto item : records) {
      simdjson::ondemand::object record;
      REQUIRE(item.get_object().get(record) == simdjson::SUCCESS);
      EnvelopeRecord r;
      simdjson::ondemand::object kinesis;
      REQUIRE(record["kinesis"].get_object().get(kinesis) == simdjson::SUCCESS);
      r.partition_key = get_string(kinesis["partitionKey"]);
      r.id = get_string(kinesis["sequenceNumber"]);
      const std::string data = get_string(kinesis["data"]);
      r.event_id = get_string(record["eventID"]);
      CHECK(get_string(record["eventSource"]) == "aws:kinesis");
      r.chunk = parse_chunk_record(decode_base64(data));
      event.records.push_back(std::move(r));
    }
  } else {
    event.invocation_id = get_string(doc["invocationId"]);
    REQUIRE(doc["records"].get_array().get(records) == simdjson::SUCCESS);
    for (auto item : records) {
      simdjson::ondemand::object record;
      REQUIRE(item.get_object().get(record) == simdjson::SUCCESS);
      EnvelopeRecord r;
      r.id = get_string(record["recordId"]);
      r.chunk = parse_chunk_record(decode_base64(get_string(record["data"])));
      event.records.push_back(std::move(r));
    }
  }
  return event;
}

std::vector<Event> parse_all(SplitFormat format, const std::vector<std::string>& lines) {
  std::vector<Event> events;
  for (const auto& line : lines) events.push_back(parse_line(format, line));
  return events;
}

std::vector<EnvelopeRecord> all_records(const std::vector<Event>& events) {
  std::vector<EnvelopeRecord> records;
  for (const auto& event : events) {
    records.insert(records.end(), event.records.begin(), event.records.end());
  }
  return records;
}

bool all_digits(std::string_view s) {
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

constexpr SplitFormat kFormats[] = {SplitFormat::ndjson, SplitFormat::lambda,
                                    SplitFormat::firehose};

}  // namespace

TEST_SUITE("split") {
  TEST_CASE("exact ndjson output") {
    CHECK(split_all({.chunk_size = 4}, kEndpoint, kHello) == kNdjson);
  }

  TEST_CASE("exact lambda output") {
    const SplitOptions options{
        .chunk_size = 4, .format = SplitFormat::lambda, .records_per_event = 2};
    CHECK(split_all(options, kEndpoint, kHello) == kLambda);
  }

  TEST_CASE("exact firehose output") {
    const SplitOptions options{
        .chunk_size = 4, .format = SplitFormat::firehose, .records_per_event = 2};
    CHECK(split_all(options, kEndpoint, kHello) == kFirehose);
  }

  TEST_CASE("an empty file is one partition with empty content") {
    CHECK(split_all({}, "e", "") ==
          R"({"putEndpoint":"e","partition":0,"partitionCount":1,"content":""})"
          "\n");
    CHECK(split_all({.format = SplitFormat::lambda}, "e", "") == kEmptyLambda);
    const auto events = parse_all(SplitFormat::firehose,
                                  split_lines({.format = SplitFormat::firehose}, {{"e", ""}}));
    REQUIRE(events.size() == 1);
    REQUIRE(events[0].records.size() == 1);
    CHECK(events[0].records[0].chunk.partition == 0);
    CHECK(events[0].records[0].chunk.partition_count == 1);
    CHECK(events[0].records[0].chunk.bytes.empty());
  }

  TEST_CASE("chunk size 1") {
    CHECK(split_all({.chunk_size = 1}, "u", "abc") ==
          R"({"putEndpoint":"u","partition":0,"partitionCount":3,"content":"YQ=="})"
          "\n"
          R"({"putEndpoint":"u","partition":1,"partitionCount":3,"content":"Yg=="})"
          "\n"
          R"({"putEndpoint":"u","partition":2,"partitionCount":3,"content":"Yw=="})"
          "\n");
    std::mt19937_64 rng(1);
    const std::string bytes = random_bytes(rng, 300);
    const auto records =
        all_records(parse_all(SplitFormat::ndjson, split_lines({.chunk_size = 1}, {{"u", bytes}})));
    REQUIRE(records.size() == bytes.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      CHECK(records[i].chunk.partition == i);
      CHECK(records[i].chunk.partition_count == bytes.size());
      CHECK(records[i].chunk.bytes == bytes.substr(i, 1));
    }
  }

  TEST_CASE("the part count is ceil(size / chunk size), at least 1") {
    for (std::size_t chunk = 1; chunk <= 9; ++chunk) {
      const Splitter splitter({.chunk_size = chunk});
      for (std::size_t size = 0; size <= 40; ++size) {
        CAPTURE(chunk);
        CAPTURE(size);
        const std::uint64_t expected = size == 0 ? 1 : (size + chunk - 1) / chunk;
        CHECK(splitter.partition_count(size) == expected);
        const auto records = all_records(
            parse_all(SplitFormat::ndjson,
                      split_lines({.chunk_size = chunk}, {{"x", std::string(size, 'z')}})));
        REQUIRE(records.size() == expected);
        for (std::size_t i = 0; i < records.size(); ++i) {
          CHECK(records[i].chunk.partition == i);
          CHECK(records[i].chunk.partition_count == expected);
          const std::size_t want = i + 1 < expected ? chunk : size - chunk * i;
          CHECK(records[i].chunk.bytes.size() == want);
        }
      }
    }
    const Splitter one({.chunk_size = 1});
    CHECK(one.partition_count(UINT64_MAX) == UINT64_MAX);
    const Splitter big({.chunk_size = 262144});
    CHECK(big.partition_count(262144) == 1);
    CHECK(big.partition_count(262145) == 2);
    CHECK(big.partition_count(UINT64_MAX) == UINT64_MAX / 262144 + 1);
    CHECK(Splitter().options().chunk_size == 262144);
    CHECK(Splitter().options().records_per_event == 100);
    CHECK(Splitter().options().format == SplitFormat::ndjson);
  }

  TEST_CASE("sequence numbers are 56 digits and strictly increasing") {
    // "4959", the stream id (FNV-1a 64 of the first endpoint) in 20 digits, the counter in 32.
    CHECK(Splitter::sequence_number("https://example.com/a.txt?X=1", 1) ==
          "4959"
          "05469195872086009576" +
              std::string(31, '0') + "1");
    CHECK(Splitter::sequence_number("", UINT64_MAX) ==
          "4959"
          "14695981039346656037" +
              std::string(12, '0') + "18446744073709551615");
    CHECK(Splitter::sequence_number("a", UINT64_MAX).size() == 56);
    CHECK(Splitter::sequence_number("a", 1) != Splitter::sequence_number("b", 1));

    std::mt19937_64 rng(3);
    std::vector<std::pair<std::string, std::string>> files;
    for (int i = 0; i < 5; ++i) {
      files.emplace_back("https://h/f" + std::to_string(i), random_bytes(rng, 10 + 7 * i));
    }
    const SplitOptions lambda{
        .chunk_size = 3, .format = SplitFormat::lambda, .records_per_event = 4};
    const auto records = all_records(parse_all(SplitFormat::lambda, split_lines(lambda, files)));
    REQUIRE(records.size() > 20);
    std::string previous;
    for (const auto& record : records) {
      CAPTURE(record.id);
      CHECK(record.id.size() == 56);
      CHECK(all_digits(record.id));
      CHECK(record.id > previous);  // same length: string order is numeric order
      CHECK(record.event_id == "shardId-000000000000:" + record.id);
      previous = record.id;
    }

    const SplitOptions firehose{
        .chunk_size = 3, .format = SplitFormat::firehose, .records_per_event = 4};
    const auto events = parse_all(SplitFormat::firehose, split_lines(firehose, files));
    std::set<std::string> record_ids;
    std::set<std::string> invocation_ids;
    previous.clear();
    for (const auto& event : events) {
      CHECK(event.invocation_id.size() == 36);
      invocation_ids.insert(event.invocation_id);
      for (const auto& record : event.records) {
        CHECK(record.id.size() == 57);
        CHECK(record.id[0] == 'r');
        CHECK(all_digits(record.id.substr(1)));
        CHECK(record.id > previous);
        previous = record.id;
        record_ids.insert(record.id);
      }
    }
    CHECK(record_ids.size() == records.size());
    CHECK(invocation_ids.size() == events.size());
  }

  TEST_CASE("events hold at most records_per_event records") {
    std::mt19937_64 rng(4);
    std::vector<std::pair<std::string, std::string>> files;
    std::size_t total = 0;
    for (int i = 0; i < 6; ++i) {
      const std::size_t size = rng() % 50;
      files.emplace_back("https://h/" + std::to_string(i), random_bytes(rng, size));
      total += size == 0 ? 1 : (size + 4) / 5;
    }
    for (const SplitFormat format : {SplitFormat::lambda, SplitFormat::firehose}) {
      for (const std::size_t per_event : {1, 2, 3, 7, 100}) {
        CAPTURE(per_event);
        const auto events = parse_all(
            format, split_lines({.chunk_size = 5, .format = format, .records_per_event = per_event},
                                files));
        REQUIRE(events.size() == (total + per_event - 1) / per_event);
        std::size_t seen = 0;
        for (std::size_t e = 0; e < events.size(); ++e) {
          CHECK(events[e].records.size() <= per_event);
          CHECK(!events[e].records.empty());
          if (e + 1 < events.size()) CHECK(events[e].records.size() == per_event);
          seen += events[e].records.size();
        }
        CHECK(seen == total);
      }
    }
  }

  TEST_CASE("events mix the records of several files") {
    const SplitOptions options{
        .chunk_size = 2, .format = SplitFormat::lambda, .records_per_event = 3};
    // Two files of 2 chunks each: the first event holds a record of the second file.
    const auto events = parse_all(
        SplitFormat::lambda, split_lines(options, {{"https://a", "abcd"}, {"https://b", "wxyz"}}));
    REQUIRE(events.size() == 2);
    REQUIRE(events[0].records.size() == 3);
    CHECK(events[0].records[0].chunk.endpoint == "https://a");
    CHECK(events[0].records[1].chunk.endpoint == "https://a");
    CHECK(events[0].records[2].chunk.endpoint == "https://b");
    REQUIRE(events[1].records.size() == 1);
    CHECK(events[1].records[0].chunk.endpoint == "https://b");
    CHECK(events[1].records[0].chunk.partition == 1);
    // The partition key depends on the endpoint only.
    CHECK(events[0].records[0].partition_key == events[0].records[1].partition_key);
    CHECK(events[0].records[2].partition_key == events[1].records[0].partition_key);
    CHECK(events[0].records[0].partition_key != events[0].records[2].partition_key);
    CHECK(events[0].records[0].partition_key == Splitter::partition_key("https://a"));
  }

  TEST_CASE("partition keys") {
    CHECK(Splitter::partition_key("") == "cbf29ce484222325");  // the FNV-1a offset basis
    CHECK(Splitter::partition_key(kEndpoint) == "4be67cab2ab826e8");
    CHECK(Splitter::partition_key("a") == "af63dc4c8601ec8c");
  }

  TEST_CASE("round trip through simdjson and base64, every format") {
    std::mt19937_64 rng(5);
    std::vector<std::pair<std::string, std::string>> files;
    const std::size_t sizes[] = {0, 1, 2, 3, 100, 1000, 4096, 4097, 70000};
    for (std::size_t i = 0; i < std::size(sizes); ++i) {
      files.emplace_back("https://bucket.s3.amazonaws.com/f" + std::to_string(i) +
                             ".bin?X-Amz-Signature=abc&n=" + std::to_string(i),
                         random_bytes(rng, sizes[i]));
    }
    for (const SplitFormat format : kFormats) {
      for (const std::size_t chunk : {1000, 4096, 65536, 262144}) {
        CAPTURE(filebuilder::split_format_name(format));
        CAPTURE(chunk);
        const auto records = all_records(parse_all(
            format,
            split_lines({.chunk_size = chunk, .format = format, .records_per_event = 5}, files)));
        // Reassemble by endpoint, in whatever order the parts come.
        std::map<std::string, std::map<std::uint64_t, std::string>> parts;
        std::map<std::string, std::uint64_t> counts;
        for (const auto& record : records) {
          const ChunkRecord& c = record.chunk;
          CHECK(c.partition < c.partition_count);
          CHECK(c.bytes.size() <= chunk);
          CHECK(parts[c.endpoint].emplace(c.partition, c.bytes).second);
          const auto [it, inserted] = counts.emplace(c.endpoint, c.partition_count);
          CHECK(it->second == c.partition_count);
        }
        REQUIRE(parts.size() == files.size());
        for (const auto& [endpoint, bytes] : files) {
          const auto& file_parts = parts[endpoint];
          REQUIRE(file_parts.size() == counts[endpoint]);
          std::string rebuilt;
          for (const auto& [partition, part] : file_parts) rebuilt += part;
          CHECK(rebuilt == bytes);
        }
      }
    }
  }

  TEST_CASE("the output is deterministic and one Splitter numbers files as one stream") {
    const std::vector<std::pair<std::string, std::string>> files = {{"https://a", "first file"},
                                                                    {"https://b", "second"}};
    for (const SplitFormat format : kFormats) {
      const SplitOptions options{.chunk_size = 3, .format = format, .records_per_event = 2};
      const auto once = split_lines(options, files);
      CHECK(split_lines(options, files) == once);
      // Continuing: the second file's records follow the first's.
      const auto first = split_lines(options, {files[0]});
      const auto records = all_records(parse_all(format, once));
      CHECK(records.size() == 4 + 2);
      if (format != SplitFormat::ndjson) {
        CHECK(records[4].id.substr(records[4].id.size() - 2) == "05");
        CHECK(records[5].id.substr(records[5].id.size() - 2) == "06");
      }
      CHECK(all_records(parse_all(format, first)).size() == 4);
    }
  }

  TEST_CASE("add_chunk streams the same output as add_file") {
    std::mt19937_64 rng(6);
    const std::string bytes = random_bytes(rng, 1000);
    for (const SplitFormat format : kFormats) {
      const SplitOptions options{.chunk_size = 64, .format = format, .records_per_event = 3};
      Splitter splitter(options);
      std::string streamed;
      const auto sink = [&streamed](std::string_view line) { streamed += line; };
      const std::uint64_t count = splitter.partition_count(bytes.size());
      for (std::uint64_t p = 0; p < count; ++p) {
        splitter.add_chunk("https://s", p, count, std::string_view(bytes).substr(p * 64, 64), sink);
      }
      splitter.finish(sink);
      CHECK(splitter.records() == count);
      CHECK(streamed == split_all(options, "https://s", bytes));
    }
  }

  TEST_CASE("lines reach the sink as soon as they are complete") {
    Splitter splitter({.chunk_size = 1, .format = SplitFormat::lambda, .records_per_event = 2});
    std::vector<std::string> lines;
    const auto sink = [&lines](std::string_view line) { lines.emplace_back(line); };
    splitter.add_file("a", "x", sink);
    CHECK(lines.empty());  // one record pending
    splitter.add_file("b", "y", sink);
    CHECK(lines.size() == 1);  // full: written without waiting for finish()
    splitter.finish(sink);
    CHECK(lines.size() == 1);  // nothing pending
    splitter.add_file("c", "zz", sink);
    CHECK(lines.size() == 2);
    splitter.add_file("d", "w", sink);
    splitter.finish(sink);
    CHECK(lines.size() == 3);
    CHECK(splitter.records() == 5);
    CHECK(splitter.lines() == 3);

    Splitter ndjson({.chunk_size = 1});
    std::size_t calls = 0;
    const auto count = [&calls](std::string_view) { ++calls; };
    ndjson.add_file("a", "xyz", count);
    CHECK(calls == 3);
    ndjson.finish(count);
    CHECK(calls == 3);
  }

  TEST_CASE("JSON escaping of the endpoint") {
    std::string out;
    filebuilder::detail::append_json_string(out, "plain/é\x7F");
    CHECK(out == "\"plain/é\x7F\"");
    out.clear();
    filebuilder::detail::append_json_string(out,
                                            std::string_view("q\"b\\s\n\t\r\b\f\x01\x1f\0!", 14));
    CHECK(out == R"("q\"b\\s\n\t\r\b\f\u0001\u001f\u0000!")");
    out.clear();
    filebuilder::detail::append_json_string(out, "");
    CHECK(out == R"("")");

    const std::string endpoint = std::string("https://h/a\"b\\c\nd\x02") + "e\xC3\xA9";
    const std::string record = Splitter::chunk_record(endpoint, 0, 1, "hi");
    CHECK(record == R"({"putEndpoint":"https://h/a\"b\\c\nd\u0002e)"
                    "\xC3\xA9"
                    R"(","partition":0,"partitionCount":1,"content":"aGk="})");
    const ChunkRecord parsed = parse_chunk_record(record);
    CHECK(parsed.endpoint == endpoint);
    CHECK(parsed.bytes == "hi");
    for (const SplitFormat format : kFormats) {
      const auto records =
          all_records(parse_all(format, split_lines({.format = format}, {{endpoint, "body"}})));
      REQUIRE(records.size() == 1);
      CHECK(records[0].chunk.endpoint == endpoint);
    }
  }

  TEST_CASE("options: names, validation, zero values") {
    CHECK(filebuilder::split_format_name(SplitFormat::ndjson) == "ndjson");
    CHECK(filebuilder::split_format_name(SplitFormat::lambda) == "lambda");
    CHECK(filebuilder::split_format_name(SplitFormat::firehose) == "firehose");
    CHECK(filebuilder::parse_split_format("lambda") == SplitFormat::lambda);
    CHECK(filebuilder::parse_split_format("firehose") == SplitFormat::firehose);
    CHECK(filebuilder::parse_split_format("ndjson") == SplitFormat::ndjson);
    CHECK_FALSE(filebuilder::parse_split_format("Lambda").has_value());
    CHECK_FALSE(filebuilder::parse_split_format("").has_value());

    CHECK(filebuilder::validate_split_options({}).empty());
    CHECK_FALSE(filebuilder::validate_split_options({.chunk_size = 0}).empty());
    CHECK_FALSE(filebuilder::validate_split_options({.records_per_event = 0}).empty());
    CHECK_FALSE(
        filebuilder::validate_split_options({.format = static_cast<SplitFormat>(9)}).empty());

    // Zero values are taken as 1.
    const Splitter zero({.chunk_size = 0, .records_per_event = 0});
    CHECK(zero.options().chunk_size == 1);
    CHECK(zero.options().records_per_event == 1);
    CHECK(split_all({.chunk_size = 0}, "u", "ab") == split_all({.chunk_size = 1}, "u", "ab"));
  }

  TEST_CASE("chunk_record") {
    CHECK(Splitter::chunk_record("u", 2, 5, "foobar") ==
          R"({"putEndpoint":"u","partition":2,"partitionCount":5,"content":"Zm9vYmFy"})");
    CHECK(Splitter::chunk_record("u", UINT64_MAX - 1, UINT64_MAX, "") ==
          R"({"putEndpoint":"u","partition":18446744073709551614,)"
          R"("partitionCount":18446744073709551615,"content":""})");
    std::string out = "x";
    Splitter::append_chunk_record(out, "u", 0, 1, "f");
    CHECK(out == R"(x{"putEndpoint":"u","partition":0,"partitionCount":1,"content":"Zg=="})");
  }
}
