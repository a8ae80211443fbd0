// The fast paths (detail/plain_json.hpp: ChunkParser::parse_plain and
// source::read_plain_event) must never change an answer. Every document here
// goes through two complete pipelines, one with ReassemblerOptions::fast_path
// on and one with it off (simdjson only), and everything they produce is
// compared: the document kind, the reply, every log line, every upload, the
// store, the bare-chunk summary. The documents: well-formed events and chunks
// of every kind, hand-written variants of each (escapes, spacing, order,
// unknown fields, duplicates, broken values), every prefix of a small event,
// and thousands of random mutations.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/split.hpp"
#include "filebuilder/store/memory.hpp"
#include "support/chunks.hpp"
#include "support/fake_uploader.hpp"
#include "support/fast_path_pipeline.hpp"

using namespace filebuilder;
using filebuilder::test::FakeUploader;

namespace {

const std::string endpoint = "https://bucket.example.com/f.bin?X-Amz-Signature=secret";

/// Runs the document through both pipelines (fresh ones) and compares.
void same_answer(const std::string& document,
                 source::InputFormat format = source::InputFormat::detect) {
  const std::string difference = test::fast_path_difference({document}, format);
  CHECK_MESSAGE(difference.empty(), difference);
}

std::string b64(std::string_view bytes) {
  return base64::encode(bytes);
}

std::string chunk_record(std::uint64_t partition, std::uint64_t count, std::string_view bytes,
                         const std::string& url = endpoint) {
  return test::chunk(url, partition, count, bytes);
}

std::string kinesis_item(const std::string& sequence, const std::string& data) {
  return R"({"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"pk","sequenceNumber":")" +
         sequence + R"(","data":")" + data +
         R"(","approximateArrivalTimestamp":1545084650.987},"eventSource":"aws:kinesis",)"
         R"("eventID":"shardId-000000000006:)" +
         sequence + R"(","awsRegion":"us-east-2"})";
}

std::string kinesis_event(const std::vector<std::string>& chunks) {
  std::string event = R"({"Records":[)";
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (i) event += ',';
    event +=
        kinesis_item("4959000000000000000000000000000000000000000000000000000" + std::to_string(i),
                     b64(chunks[i]));
  }
  return event + "]}";
}

std::string firehose_event(const std::vector<std::string>& chunks) {
  std::vector<std::string> items;
  for (std::size_t i = 0; i < chunks.size(); ++i)
    items.push_back(test::firehose_record("r" + std::to_string(i), b64(chunks[i])));
  return test::firehose_event(items);
}

// A small file in three chunks, one of them twice.
std::vector<std::string> three_chunks() {
  return {chunk_record(1, 3, "BBBB"), chunk_record(0, 3, "AAAA"), chunk_record(1, 3, "BBBB"),
          chunk_record(2, 3, "CC")};
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace

TEST_CASE("fast path: well-formed events and chunks of every kind") {
  same_answer(kinesis_event(three_chunks()));
  same_answer(firehose_event(three_chunks()));
  same_answer(kinesis_event({}));
  same_answer(R"({"Records":[]})");
  same_answer(R"({"records":[]})");
  for (const std::string& chunk : three_chunks()) same_answer(chunk);
  same_answer(chunk_record(0, 1, ""));  // an empty file
  same_answer(kinesis_event({chunk_record(0, 1, "")}));
  // Padding variants of content and data.
  for (const char* bytes : {"a", "ab", "abc", "abcd", "abcde"}) {
    same_answer(chunk_record(0, 1, bytes));
    same_answer(kinesis_event({chunk_record(0, 1, bytes)}));
  }
  // Forced formats, right and wrong.
  same_answer(kinesis_event(three_chunks()), source::InputFormat::lambda);
  same_answer(kinesis_event(three_chunks()), source::InputFormat::firehose);
  same_answer(firehose_event(three_chunks()), source::InputFormat::lambda);
  same_answer(firehose_event(three_chunks()), source::InputFormat::firehose);
  same_answer(chunk_record(0, 1, "x"), source::InputFormat::lambda);
  same_answer(kinesis_event(three_chunks()), source::InputFormat::ndjson);
}

TEST_CASE("fast path: events split by filebuilder split, plain and KPL-aggregated") {
  std::string bytes;
  for (int i = 0; i < 3000; ++i) bytes += static_cast<char>(i * 7);
  for (const SplitFormat format : {SplitFormat::lambda, SplitFormat::firehose}) {
    for (const std::size_t aggregate : {std::size_t{0}, std::size_t{4}}) {
      SplitOptions options;
      options.format = format;
      options.chunk_size = 700;
      options.records_per_event = 3;
      options.aggregate = aggregate;
      Splitter splitter(options);
      std::vector<std::string> lines;
      const auto sink = [&](std::string_view line) {
        lines.emplace_back(line.substr(0, line.size() - 1));
      };
      splitter.add_file(endpoint, bytes, sink);
      splitter.finish(sink);
      REQUIRE(!lines.empty());
      for (const std::string& line : lines) same_answer(line);
    }
  }
}

TEST_CASE("fast path: chunk variants the fast path must hand to simdjson, or get right") {
  const std::string good = chunk_record(0, 2, "hello");
  const std::string content = b64("hello");
  const std::vector<std::string> variants = {
      // spacing and order
      R"( { "putEndpoint" : ")" + endpoint +
          R"(" , "partition" : 0 , "partitionCount" : 2 , )"
          R"("content" : ")" +
          content + "\" } \n",
      R"({"content":")" + content + R"(","partitionCount":2,"partition":0,"putEndpoint":")" +
          endpoint + "\"}",
      // escapes: in the endpoint, the content, a key
      replace_all(good, "/f.bin", "\\/f.bin"),
      replace_all(good, content, replace_all(content, "b", "\\u0062")),
      replace_all(good, "\"partition\"", "\"p\\u0061rtition\""),
      replace_all(good, content, content.substr(0, 4) + "\\/" + content.substr(4)),
      // unknown fields, duplicates, missing fields
      replace_all(good, "\"content\"", "\"extra\":{\"a\":[1,2,{\"b\":null}]},\"content\""),
      replace_all(good, "\"content\"", "\"extra\":[1,2,,3],\"content\""),
      replace_all(good, "\"content\"", "\"partition\":1,\"content\""),
      replace_all(good, ",\"partitionCount\":2", ""),
      // numbers
      replace_all(good, "\"partition\":0", "\"partition\":00"),
      replace_all(good, "\"partition\":0", "\"partition\":-0"),
      replace_all(good, "\"partition\":0", "\"partition\":0.0"),
      replace_all(good, "\"partition\":0", "\"partition\":1e0"),
      replace_all(good, "\"partition\":0", "\"partition\":18446744073709551616"),
      replace_all(good, "\"partitionCount\":2", "\"partitionCount\":18446744073709551615"),
      replace_all(good, "\"partitionCount\":2", "\"partitionCount\":0"),
      replace_all(good, "\"partition\":0", "\"partition\":2"),
      replace_all(good, "\"partition\":0", "\"partition\":\"0\""),
      replace_all(good, "\"partitionCount\":2", "\"partitionCount\":100000"),
      // content
      replace_all(good, content, content + "="),
      replace_all(good, content, content.substr(0, content.size() - 1)),
      replace_all(good, content, "aGVsbG9="),  // non-zero pad bits
      replace_all(good, content, "aGVs bG8="),
      replace_all(good, content, b64(std::string(5000, 'x'))),  // over max_part_bytes
      replace_all(good, content, b64(std::string(4096, 'x'))),  // exactly at it
      replace_all(good, "\"content\":\"" + content + "\"", "\"content\":null"),
      // endpoints
      replace_all(good, endpoint, "https://other.example.com/g"),
      replace_all(good, endpoint, "https://elsewhere.example.com/g"),
      replace_all(good, endpoint, "http://127.0.0.1/x"),
      replace_all(good, endpoint, "https://bucket.example.com/\xc3\xa9"),
      replace_all(good, endpoint, "https://bucket.example.com/\x01"),
      // structure
      good + "x",
      good + "{}",
      good.substr(0, good.size() - 1),
      "[" + good + "]",
      "\"" + content + "\"",
      "{}",
      "",
      "   ",
      std::string(40, '[') + std::string(40, ']'),
  };
  for (const std::string& variant : variants) {
    same_answer(variant);
    same_answer(kinesis_event({variant}));
  }
  // Several files in one event, one of them broken.
  same_answer(kinesis_event({chunk_record(0, 2, "a"), variants[2], chunk_record(1, 2, "b"),
                             variants[7], chunk_record(0, 1, "z", "https://other.example.com/z")}));
}

TEST_CASE("fast path: event variants the fast path must hand to simdjson, or get right") {
  const std::string good = kinesis_event(three_chunks());
  const std::string data = b64(three_chunks()[0]);
  const std::vector<std::string> variants = {
      // spacing, order, unknown fields
      replace_all(replace_all(good, ",", " ,\n "), ":", " : "),
      replace_all(good, R"("kinesis":{)", R"("kinesis": { "extra": [true, false, null, -1.5e3], )"),
      replace_all(good, R"("eventSource":"aws:kinesis")",
                  R"("eventSource":{"nested":{"deeper":[[[]]]}})"),
      R"({"before":1,"Records":[)" + kinesis_item("1", data) + R"(],"after":"x"})",
      // escapes in ids, data, keys
      replace_all(good, R"("sequenceNumber":"4959)", R"("sequenceNumber":"\u00344959)"),
      replace_all(good, data, data.substr(0, 8) + "\\/" + data.substr(8)),
      replace_all(good, R"("data":)", R"("d\u0061ta":)"),
      replace_all(good, R"("Records")", R"("R\u0065cords")"),
      replace_all(good, R"("eventSource":"aws:kinesis")", R"("eventSource":"aws:\"kinesis")"),
      // data that is not base64
      replace_all(good, data, data.substr(1)),
      replace_all(good, data, "!!!!"),
      replace_all(good, data, ""),
      // missing or mistyped fields, duplicates
      replace_all(good, R"("sequenceNumber":"4959)", R"("sequenceNumbr":"4959)"),
      replace_all(good, R"("data":")" + data + "\"", R"("data":5)"),
      replace_all(good, R"("kinesis":{)", R"("kinesis":{"data":"AAAA",)"),
      replace_all(good, R"("kinesis":{)", R"("kinesis":5,"other":{)"),
      R"({"Records":[5,)" + kinesis_item("1", data) + "]}",
      R"({"Records":[)" + kinesis_item("1", data) + R"(],"Records":[]})",
      R"({"Records":[)" + kinesis_item("1", data) + R"(],"records":[]})",
      R"({"records":[],"Records":[)" + kinesis_item("1", data) + "]}",
      R"({"Records":{}})",
      R"({"Records":[)" + kinesis_item("1", data) + "}",
      // non-ASCII, control bytes, trailing content
      replace_all(good, "us-east-2",
                  "us-\xc3\xa9"
                  "ast-2"),
      replace_all(good, "us-east-2", "us-\xff"),
      replace_all(good, "us-east-2", "us-\x01"),
      good + " ",
      good + "x",
      good + "{}",
      std::string(40, '{'),
  };
  for (const std::string& variant : variants) same_answer(variant);
  for (const std::string& variant : variants) {
    const std::string firehose =
        replace_all(replace_all(variant, "\"Records\"", "\"records\""), "\"kinesis\"", "\"k\"");
    same_answer(firehose);
  }
  same_answer(replace_all(firehose_event(three_chunks()), "\"recordId\"", "\"recordID\""));
  same_answer(replace_all(firehose_event(three_chunks()), R"("recordId":"r0")",
                          R"("recordId":"r0","kinesisRecordMetadata":{"shardId":"s","n":[1]})"));
}

TEST_CASE("fast path: every prefix of an event") {
  const std::string event = kinesis_event({chunk_record(0, 2, "ab"), chunk_record(1, 2, "c")});
  for (std::size_t n = 0; n <= event.size(); ++n) same_answer(event.substr(0, n));
  const std::string chunk = chunk_record(0, 1, "abcdef");
  for (std::size_t n = 0; n <= chunk.size(); ++n) same_answer(chunk.substr(0, n));
}

TEST_CASE("fast path: random mutations of events and chunks") {
  std::mt19937_64 random(20261201);
  const std::string alphabet = "{}[]:,\"\\ \n0123456789.eE+-=/AQgw_azZtrufnl\x01\x7f\x80\xc3";
  const std::vector<std::string> seeds = {
      kinesis_event({chunk_record(0, 2, "ab"), chunk_record(1, 2, "cd")}),
      firehose_event({chunk_record(0, 1, "xyz")}),
      chunk_record(0, 1, "abcdef"),
  };
  for (int i = 0; i < 3000; ++i) {
    std::string document = seeds[random() % seeds.size()];
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = random() % (document.size() + 1);
      const char c = alphabet[random() % alphabet.size()];
      switch (random() % 3) {
        case 0:
          if (at < document.size()) document[at] = c;
          break;
        case 1: document.insert(document.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        case 2:
          if (at < document.size()) document.erase(at, 1);
          break;
      }
    }
    same_answer(document);
  }
}

TEST_CASE("fast path: parse_plain agrees with parse on every record it takes") {
  std::mt19937_64 random(7);
  const std::string good = chunk_record(3, 10, "some bytes");
  const std::string alphabet = "{}[]:,\"\\ 0123456789eE.-AQgw=";
  ChunkParser strict;
  std::string part;
  int taken = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string record = good;
    const std::size_t at = random() % record.size();
    record[at] = alphabet[random() % alphabet.size()];
    Chunk fast_chunk;
    std::size_t size = 0;
    if (!ChunkParser::parse_plain(record, 1 << 20, fast_chunk, part, size)) continue;
    ++taken;
    Chunk chunk;
    REQUIRE(strict.parse(record, chunk) == ErrorCode::ok);
    CHECK(chunk.put_endpoint == fast_chunk.put_endpoint);
    CHECK(chunk.partition == fast_chunk.partition);
    CHECK(chunk.partition_count == fast_chunk.partition_count);
    CHECK(chunk.content == fast_chunk.content);
    std::string bytes(base64::max_decoded_size(chunk.content.size()), '\0');
    const base64::DecodeResult decoded = base64::decode(chunk.content, bytes.data());
    REQUIRE(decoded.error == ErrorCode::ok);
    CHECK(std::string_view(bytes.data(), decoded.written) == std::string_view(part.data(), size));
  }
  CHECK(taken > 100);  // the mutations that keep a record plain (digits, letters of the content)
}

TEST_CASE("fast path: taken for plain documents, refused for the rest") {
  std::vector<source::EnvelopeRecord> records;
  source::DecodedRecords decoded;
  const std::vector<std::string> chunks = three_chunks();
  const std::string kinesis = kinesis_event(chunks);  // the records are views into it
  REQUIRE(source::read_plain_event(kinesis, records, decoded) == source::PlainEvent::kinesis);
  REQUIRE(records.size() == 4);
  REQUIRE(decoded.spans.size() == 4);
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    CHECK(records[i].id ==
          "4959000000000000000000000000000000000000000000000000000" + std::to_string(i));
    CHECK(records[i].data == b64(chunks[i]));
    CHECK(decoded.of(i) == chunks[i]);
  }
  const std::string firehose = firehose_event(chunks);
  REQUIRE(source::read_plain_event(firehose, records, decoded) == source::PlainEvent::firehose);
  CHECK(records.size() == 4);
  CHECK(records[3].id == "r3");
  CHECK(decoded.of(3) == chunks[3]);
  CHECK(source::read_plain_event(chunks[0], records, decoded) == source::PlainEvent::other);
  const std::string data = b64(chunks[0]);
  const std::string escaped =
      replace_all(kinesis_event(chunks), data, data.substr(0, 8) + "\\/" + data.substr(8));
  CHECK(source::read_plain_event(escaped, records, decoded) == source::PlainEvent::not_plain);
  CHECK(source::read_plain_event(kinesis_event(chunks) + "x", records, decoded) ==
        source::PlainEvent::not_plain);

  Chunk chunk;
  std::string part;
  std::size_t size = 0;
  const std::string record = chunk_record(7, 9, "bytes!");  // the chunk's views point into it
  REQUIRE(ChunkParser::parse_plain(record, 100, chunk, part, size));
  CHECK(chunk.put_endpoint == endpoint);
  CHECK(chunk.partition == 7);
  CHECK(chunk.partition_count == 9);
  CHECK(chunk.content == b64("bytes!"));
  CHECK(std::string_view(part.data(), size) == "bytes!");
  CHECK_FALSE(ChunkParser::parse_plain(chunk_record(7, 9, "bytes!"), 5, chunk, part, size));
  CHECK_FALSE(ChunkParser::parse_plain(replace_all(chunk_record(0, 1, "x"), "/f", "\\/f"), 100,
                                       chunk, part, size));
  CHECK_FALSE(ChunkParser::parse_plain(chunk_record(1, 1, "x"), 100, chunk, part, size));
}

// ---------------------------------------------------------------------------
// The predicted layouts (source/envelope.hpp KinesisLayout, chunk.hpp
// predicted_chunk and PlainHint): every branch, matched or not, gives the
// strict path's answer.

namespace {

using test::lambda_record;

std::vector<std::string> lambda_items(const std::vector<std::string>& chunks) {
  std::vector<std::string> items;
  for (std::size_t i = 0; i < chunks.size(); ++i)
    items.push_back(lambda_record(
        "495900000000000000000000000000000000000000000000000000" + std::to_string(10 + i),
        b64(chunks[i])));
  return items;
}

// Runs the documents in order through one fast and one strict pipeline
// (so that what a record leaves behind, the endpoint hint, is used).
void same_answers(const std::vector<std::string>& documents) {
  const std::string difference = test::fast_path_difference(documents);
  CHECK_MESSAGE(difference.empty(), difference);
}

}  // namespace

TEST_CASE("fast path: a stage takes records as they are read, and their room is reused") {
  std::vector<source::EnvelopeRecord> records;
  source::DecodedRecords decoded;
  const std::vector<std::string> chunks = three_chunks();
  for (const std::string& event : {kinesis_event(chunks), firehose_event(chunks)}) {
    CAPTURE(event);
    std::vector<std::string> offered;
    // Takes records 0, 1 and 3; keeps record 2.
    const auto stage = [&](std::string_view bytes) {
      offered.emplace_back(bytes);
      return offered.size() != 3;
    };
    REQUIRE(source::read_plain_event(event, records, decoded, stage) !=
            source::PlainEvent::not_plain);
    CHECK(offered == chunks);
    REQUIRE(decoded.spans.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
      CAPTURE(i);
      CHECK(decoded.spans[i].staged == (i != 2));
      // The stage's 0th, 1st and 2nd: record 3 is the third it took.
      if (i != 2) CHECK(decoded.spans[i].staged_index == (i == 3 ? 2 : i));
      CHECK(decoded.spans[i].ok);
      // Each record decoded where the last one taken was: 0, 0, 0, after record 2.
      CHECK(decoded.spans[i].offset == (i == 3 ? chunks[2].size() : 0));
    }
    CHECK(decoded.of(0).empty());
    CHECK(decoded.of(2) == chunks[2]);
    CHECK(records[2].data == b64(chunks[2]));
  }
  // A broken event: whatever was offered, the answer is not_plain.
  std::size_t offered = 0;
  CHECK(source::read_plain_event(kinesis_event(chunks) + "x", records, decoded,
                                 [&](std::string_view) { return ++offered > 0; }) ==
        source::PlainEvent::not_plain);
  CHECK(offered == 4);
}

TEST_CASE("fast path: the predicted Kinesis record layout, taken and missed") {
  const std::vector<std::string> chunks = {chunk_record(0, 3, "AAAA"), chunk_record(1, 3, "BBBB"),
                                           chunk_record(1, 3, "BBBB"), chunk_record(2, 3, "CC")};
  const std::vector<std::string> items = lambda_items(chunks);
  const std::string good = test::lambda_event(items);
  same_answer(good);
  {
    std::vector<source::EnvelopeRecord> records;
    source::DecodedRecords decoded;
    REQUIRE(source::read_plain_event(good, records, decoded) == source::PlainEvent::kinesis);
    REQUIRE(records.size() == chunks.size());
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      CHECK(records[i].id ==
            "495900000000000000000000000000000000000000000000000000" + std::to_string(10 + i));
      CHECK(decoded.of(i) == chunks[i]);
    }
  }
  // Each edit applied to one record at a time (the first: no layout seen
  // yet; a middle one: the records around it in the layout; the last).
  const std::vector<std::pair<std::string, std::string>> edits = {
      // keys of each segment renamed, spaced, or their member repeated
      {R"("kinesis":)", R"("kinesiz":)"},
      {R"({"kinesis":{)", R"({"kinesis":{"partitionKey":"x",)"},
      {R"("kinesisSchemaVersion":)", R"("kinesisSchemaVersion" :)"},
      {R"("partitionKey":)", R"("partitionKey": )"},
      {R"("sequenceNumber":)", R"("sequenceNumbe":)"},
      {R"(,"data":)", R"(, "data":)"},
      {R"("data":)", R"("data" :)"},
      {R"("approximateArrivalTimestamp":)", R"("approximateArrivalTimestamp": )"},
      {R"(},"eventSource":)", R"(} ,"eventSource":)"},
      {R"("eventVersion":)", R"("eventVersion":"1.0","eventVersion":)"},
      {R"("eventID":)", R"("eventId":)"},
      {R"("eventName":)", R"("eventName" :)"},
      {R"("invokeIdentityArn":)", R"("invokeIdentityArn":1,"x":)"},
      {R"("awsRegion":)", R"("awsRegion":"us-east-1","awsRegion":)"},
      {R"("eventSourceARN":)", R"("eventSourceArn":)"},
      {R"(stream/s"})", R"(stream/s" })"},
      {R"(stream/s"})", R"(stream/s","data":"AAAA"})"},
      {R"(stream/s"})", R"(stream/s","kinesis":{}})"},
      {R"({"kinesis":{)", R"( {"kinesis":{)"},
      // values of other lengths and kinds
      {R"("1.0","partitionKey")", R"("1.00","partitionKey")"},
      {R"("96f6d314668c23de")", R"("1")"},
      {R"("96f6d314668c23de")", R"("96f6d314668c23de96f6d314668c23de96f6d314668c23de")"},
      {R"("96f6d314668c23de")", R"(96)"},
      {"1700000000.0}", "1700000001.25}"},
      {"1700000000.0}", "17e8}"},
      {"1700000000.0}", "-1}"},
      {"1700000000.0}", "01}"},
      {"1700000000.0}", "1.}"},
      {"1700000000.0}", "\"1700000000.0\"}"},
      {"1700000000.0}", "null}"},
      {R"("aws:kinesis","eventVersion")", R"("aws:kinesis2","eventVersion")"},
      {R"("shardId-000000000000:)", R"("shardId-000000000001:9)"},
      {R"("aws:kinesis:record")", R"("aws:kinesis:rec")"},
      {R"("us-east-1","eventSourceARN")", R"("eu-west-3","eventSourceARN")"},
      {R"(stream/s")", R"(stream/s2")"},
      // escapes and bytes a plain string may not hold, in each segment
      {R"("kinesisSchemaVersion":"1.0")", R"("kinesisSchemaVersion":"1\u002e0")"},
      {R"("96f6d314668c23de")", R"("96f6d314\"668c23de")"},
      {R"("sequenceNumber":"4959)", R"("sequenceNumber":"\u00344959)"},
      {R"("sequenceNumber":"4959)",
       "\"sequenceNumber\":\"\x01"
       "4959"},
      {R"("aws:kinesis","eventVersion")", R"("aws:kin\/esis","eventVersion")"},
      {R"("shardId-000000000000:)", "\"shardId-\xc3\xa9:"},
      {R"("shardId-000000000000:)", R"("shardId-\\:)"},
      {R"("us-east-1","eventSourceARN")",
       "\"us-\x7f"
       "east-1\",\"eventSourceARN\""},
      {R"("us-east-1","eventSourceARN")", "\"us-\xff\",\"eventSourceARN\""},
      {R"(stream/s")", R"(stream/s\")"},
      // the same, keeping each segment's length (so that no later token moves)
      {R"("1.0","partitionKey")", R"("1\0","partitionKey")"},
      {R"("aws:kinesis","eventVersion")", "\"aws:kin\x01sis\",\"eventVersion\""},
      {R"("us-east-1","eventSourceARN")", R"("us-east\1","eventSourceARN")"},
      // data
      {R"("data":")", R"("data":"=)"},
      {R"("data":")", R"("data":5,"x":")"},
  };
  for (const auto& [from, to] : edits) {
    for (const std::size_t which : {std::size_t{0}, std::size_t{1}, items.size() - 1}) {
      std::vector<std::string> edited = items;
      edited[which] = replace_all(edited[which], from, to);
      REQUIRE(edited[which] != items[which]);
      same_answer(test::lambda_event(edited));
    }
    // Every record edited alike (a layout of its own, seen again and again).
    std::vector<std::string> all = items;
    for (std::string& item : all) item = replace_all(item, from, to);
    same_answer(test::lambda_event(all));
  }
  // Arrival times that differ in every record, as in events Lambda sends: a
  // record's middle is then read as the key, the number and the rest, which
  // is compared with the last rest read. Each edit again, on one record, on
  // top of that (the edits of the time itself find nothing to change).
  for (const std::vector<std::string>& times :
       {std::vector<std::string>{"1700000000.125", "1700000000.5", "17000000001234567890.25",
                                 "1700000001"},
        std::vector<std::string>{"0", "-0.0", "12345678.12345678E-12345678", "1e5"}}) {
    std::vector<std::string> timed;
    for (std::size_t i = 0; i < items.size(); ++i)
      timed.push_back(replace_all(items[i], "1700000000.0}", times[i] + "}"));
    CAPTURE(times[0]);
    same_answer(test::lambda_event(timed));
    for (const auto& [from, to] : edits) {
      for (const std::size_t which : {std::size_t{1}, std::size_t{2}}) {
        std::vector<std::string> edited = timed;
        edited[which] = replace_all(edited[which], from, to);
        if (edited[which] != timed[which]) same_answer(test::lambda_event(edited));
      }
    }
  }
  // Records of both layouts in turn, and spacing between the records.
  const std::vector<std::string> other = {kinesis_item("1", b64(chunks[0])), items[1],
                                          kinesis_item("3", b64(chunks[2])), items[3]};
  same_answer(test::lambda_event(other));
  same_answer(replace_all(good, "},{", "}, {"));
  same_answer(replace_all(good, "},{", "}\n,{"));
  same_answer(R"({ "Records" : [ )" + items[0] + " , " + items[1] + " ] }");
  // Values other records reuse: the same partition key for one file,
  // another for the next, arrival times that differ.
  same_answer(test::lambda_event({lambda_record("1", b64(chunks[0]), "a"),
                                  lambda_record("2", b64(chunks[1]), "bb"),
                                  lambda_record("3", b64(chunks[2]), "a", "1700000000.5"),
                                  lambda_record("4", b64(chunks[3]), "a", "1700000001")}));
}

TEST_CASE("fast path: every prefix of an event in the predicted layout") {
  const std::vector<std::string> items =
      lambda_items({chunk_record(0, 2, "ab"), chunk_record(1, 2, "c")});
  const std::string event = test::lambda_event(items);
  for (std::size_t n = 0; n <= event.size(); ++n) same_answer(event.substr(0, n));
  // A broken second record after a first one in the layout.
  for (std::size_t n = 0; n <= items[1].size(); ++n)
    same_answer(R"({"Records":[)" + items[0] + "," + items[1].substr(0, n) + "]}");
}

TEST_CASE("fast path: the predicted chunk layout and the endpoint hint") {
  const std::string good = chunk_record(0, 3, "hello");
  const std::string content = b64("hello");
  const std::vector<std::string> variants = {
      good,
      replace_all(good, R"({"putEndpoint":)", R"({ "putEndpoint":)"),
      replace_all(good, R"("putEndpoint":)", R"("putEndpoint" :)"),
      replace_all(good, R"("putEndpoint":)", R"("putEndpoint": )"),
      replace_all(good, R"(,"partition":)", R"(, "partition":)"),
      replace_all(good, R"("partition":)", R"("partition": )"),
      replace_all(good, R"("partition":0)", R"("partition":0 )"),
      replace_all(good, R"("partitionCount":)", R"("partitionCount": )"),
      replace_all(good, R"("partitionCount":3)", R"("partitionCount":3 )"),
      replace_all(good, R"("content":)", R"("content": )"),
      replace_all(good, "\"}", "\" }"),
      replace_all(good, "\"}", "\"} \n"),
      replace_all(good, "\"}", "\",\"extra\":1}"),
      replace_all(good, "\"}", "\",\"content\":\"\"}"),
      replace_all(good, R"("putEndpoint":)", R"("putEndpoin":)"),
      replace_all(good, R"("partition":)", R"("Partition":)"),
      replace_all(good, R"("partitionCount":)", R"("partitionCoun":)"),
      replace_all(good, R"("content":)", R"("contents":)"),
      replace_all(good, R"("partition":0)", R"("partition":12)"),
      replace_all(good, R"("partition":0)", R"("partition":3)"),
      replace_all(good, R"("partition":0)", R"("partition":-1)"),
      replace_all(good, R"("partitionCount":3)", R"("partitionCount":30000)"),
      replace_all(good, R"("partitionCount":3)", R"("partitionCount":3.0)"),
      replace_all(good, content, content.substr(0, 4) + "\\/" + content.substr(4)),
      good + "x",
  };
  for (const std::string& variant : variants) {
    same_answer(variant);
    same_answer(kinesis_event({variant}));
    same_answer(test::lambda_event(lambda_items({good, variant, good})));
  }
  // Endpoints beside the last one: the same, one byte longer or shorter or
  // other, escaped (so not plain, or plain once unescaped), and a quote or
  // backslash where the last one ended.
  const std::vector<std::string> endpoints = {
      endpoint,
      endpoint + "x",
      endpoint.substr(0, endpoint.size() - 1),
      replace_all(endpoint, "secret", "secreT"),
      "https://other.example.com/g",
      "https://bucket.example.com/a\"b",
      "https://bucket.example.com/a\\b",
      "https://bucket.example.com/\xc3\xa9",
      "",
  };
  std::vector<std::string> records;
  for (const std::string& url : endpoints) {
    records.push_back(chunk_record(0, 2, "ab", url));
    records.push_back(chunk_record(0, 2, "ab", endpoint));
    records.push_back(chunk_record(1, 2, "cd", url));
  }
  // Written by hand: the last endpoint's bytes, then more of a string.
  records.push_back(R"({"putEndpoint":")" + endpoint +
                    R"(\/x","partition":0,"partitionCount":1,)"
                    R"("content":"")"
                    "}");
  records.push_back(chunk_record(0, 1, "z", endpoint));
  records.push_back(R"({"putEndpoint":")" + endpoint +
                    R"(x","partition":0,"partitionCount":1,)"
                    R"("content":"")"
                    "}");
  records.push_back(R"({"putEndpoint":")" + replace_all(endpoint, "/", "\\/") +
                    R"(","partition":1,"partitionCount":2,"content":"YWI="})");
  records.push_back(chunk_record(0, 2, "ab", endpoint));
  std::vector<std::string> documents;
  for (const std::string& record : records) documents.push_back(record);
  documents.push_back(test::lambda_event(lambda_items(records)));
  documents.push_back(kinesis_event(records));
  same_answers(documents);
  for (const std::string& record : records)
    same_answers({test::lambda_event(lambda_items(records)), record});
}

TEST_CASE("fast path: plain_uint64 reads integers as JSON writes them, 8 bytes at a time or not") {
  namespace plain = detail::plain_json;
  struct Case {
    std::string_view text;
    bool plain;
    std::uint64_t value;  // when plain
    std::size_t length;   // consumed, spaces included
  };
  const Case cases[] = {
      {"0", true, 0, 1},
      {"7", true, 7, 1},
      {"42", true, 42, 2},
      {"100", true, 100, 3},
      {"9999999", true, 9999999, 7},  // the most digits 8 bytes hold with a byte after them
      {"1000001", true, 1000001, 7},
      {"12345678", true, 12345678, 8},  // byte by byte from here
      {"999999999999", true, 999999999999, 12},
      {"18446744073709551615", true, 18446744073709551615u, 20},
      {"18446744073709551616", false, 0, 0},
      {"  12", true, 12, 4},
      {"\t\n\r 5", true, 5, 5},
      {"00", false, 0, 0},
      {"0123456", false, 0, 0},
      {"01234567", false, 0, 0},
      {"-1", false, 0, 0},
      {"+1", false, 0, 0},
      {"1.5", false, 0, 0},
      {"1234567.0", false, 0, 0},
      {"1e3", false, 0, 0},
      {"123E3", false, 0, 0},
      {"x", false, 0, 0},
      {"", false, 0, 0},
      {"\"1\"", false, 0, 0},
  };
  // Each case as it is (often fewer than 8 bytes), then followed by what
  // comes after a number in a record: punctuation, or bytes that look like
  // digits to a careless mask (0x80 + '0', '0' - 0x30 + 0x0A, ...).
  for (const Case& test : cases) {
    for (const std::string_view after :
         {"", ",\"partitionCount\":2", "}", " ,", "\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7", ":;<=>?@/"}) {
      const std::string text = std::string(test.text) + std::string(after);
      CAPTURE(text);
      plain::Cursor cursor(text);
      std::uint64_t value = 12345;
      const bool plain_number = plain::plain_uint64(cursor, value);
      CHECK(plain_number == test.plain);
      if (plain_number && test.plain) {
        CHECK(value == test.value);
        CHECK(static_cast<std::size_t>(cursor.p - text.data()) == test.length);
      }
    }
  }
}

TEST_CASE("fast path: skip_number takes exactly a JSON number, 16 or 8 digits at a time or not") {
  namespace plain = detail::plain_json;
  // The number, then what follows it; the length skipped, or 0 for none.
  const std::pair<std::string_view, std::size_t> cases[] = {
      {"0", 1},
      {"-0", 2},
      {"1700000000.0", 12},
      {"1700000000.987", 14},
      {"12345678", 8},
      {"1234567890123456789012345", 25},
      {"0.12345678901234567", 19},
      {"1e5", 3},
      {"12345678.12345678E-12345678", 27},
      {"1E+9", 4},
      {"0123", 1},  // "0", then what is not a number's
      {"1.5e3", 5},
      {"-17.25", 6},
      {"12345678901234", 14},
      {"123456789012345", 15},
      {"1234567890123456", 16},
      {"1234567890123.4", 15},
      {"12345678901234.5", 16},
      {"1234567890123.45", 16},
      {"1.234567890123456", 17},
      {"1.5E+3", 6},
      {"17e", 0},
      {"17.}", 0},
      {"-", 0},
      {"-x", 0},
      {"1.", 0},
      {"1.e5", 0},
      {"1e", 0},
      {"1e+", 0},
      {".5", 0},
      {"x", 0},
      {"", 0},
  };
  for (const auto& [number, length] : cases) {
    // Short and long rests, so that 16 bytes follow the number's start or not
    // (none of them could continue a number).
    for (const std::string_view after : {"", "}", ",\"x\":1}", "\xb0\xb9:;/",
                                         "},\"eventSource\":\"aws:kinesis\"", "}}}}}}}}}}}}}}}}"}) {
      const std::string text = std::string(number) + std::string(after);
      CAPTURE(text);
      plain::Cursor cursor(text);
      const bool skipped = plain::skip_number(cursor);
      CHECK(skipped == (length != 0));
      if (skipped) CHECK(static_cast<std::size_t>(cursor.p - text.data()) == length);
    }
  }
}
