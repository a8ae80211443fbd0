#include "filebuilder/chunk.hpp"

#include <doctest/doctest.h>

#include <string>

using filebuilder::Chunk;
using filebuilder::ChunkParser;
using filebuilder::ErrorCode;

namespace {

ErrorCode parse(std::string_view record) {
  ChunkParser parser;
  Chunk chunk;
  return parser.parse(record, chunk);
}

}  // namespace

TEST_CASE("a well-formed chunk parses into views of its fields") {
  ChunkParser parser;
  Chunk chunk;
  REQUIRE(parser.parse(R"({"putEndpoint":"https://b.example/a.jpg?X=1","partition":3,)"
                       R"("partitionCount":10,"content":"aGVsbG8="})",
                       chunk) == ErrorCode::ok);
  CHECK(chunk.put_endpoint == "https://b.example/a.jpg?X=1");
  CHECK(chunk.partition == 3);
  CHECK(chunk.partition_count == 10);
  CHECK(chunk.content == "aGVsbG8=");
}

TEST_CASE("field order, whitespace, unknown fields and escapes are accepted") {
  ChunkParser parser;
  Chunk chunk;
  REQUIRE(parser.parse("  {\n \"content\" : \"\", \"extra\": {\"a\":[1,2,{\"b\":null}]},\n"
                       " \"partitionCount\": 1, \"partition\": 0,"
                       " \"put\\u0045ndpoint\": \"https:\\/\\/b.example\\/x\" }\n",
                       chunk) == ErrorCode::ok);
  CHECK(chunk.put_endpoint == "https://b.example/x");
  CHECK(chunk.partition == 0);
  CHECK(chunk.partition_count == 1);
  CHECK(chunk.content.empty());
}

TEST_CASE("the parser is reusable and keeps no state between records") {
  ChunkParser parser;
  Chunk chunk;
  REQUIRE(parser.parse(
              R"({"putEndpoint":"https://a/1","partition":0,"partitionCount":2,"content":"QQ=="})",
              chunk) == ErrorCode::ok);
  CHECK(parser.parse("{", chunk) == ErrorCode::invalid_json);
  REQUIRE(parser.parse(
              R"({"putEndpoint":"https://a/2","partition":1,"partitionCount":2,"content":"Qg=="})",
              chunk) == ErrorCode::ok);
  CHECK(chunk.put_endpoint == "https://a/2");
  CHECK(chunk.partition == 1);
}

TEST_CASE("every parse error has its own code") {
  const std::string tail = R"("partition":0,"partitionCount":1,"content":"")";
  const std::string ep = R"("putEndpoint":"https://a/x",)";

  SUBCASE("invalid_json") {
    CHECK(parse("") == ErrorCode::invalid_json);
    CHECK(parse("   ") == ErrorCode::invalid_json);
    CHECK(parse("{") == ErrorCode::invalid_json);
    CHECK(parse("not json") == ErrorCode::invalid_json);
    CHECK(parse("{" + ep + tail) == ErrorCode::invalid_json);                  // unterminated
    CHECK(parse("{" + ep + tail + "}}") == ErrorCode::invalid_json);           // trailing
    CHECK(parse("{" + ep + tail + "} {}") == ErrorCode::invalid_json);         // two documents
    CHECK(parse("{" + ep + tail + ",\"x\":tru}") == ErrorCode::invalid_json);  // bad unknown value
    CHECK(parse("{" + ep + tail + ",\"x\":[1,}") == ErrorCode::invalid_json);
    CHECK(parse("{" + ep + "\"partition\":0 \"partitionCount\":1,\"content\":\"\"}") ==
          ErrorCode::invalid_json);  // missing comma
    CHECK(parse("{\"putEndpoint\":\"https://a/\x01\"," + tail + "}") == ErrorCode::invalid_json);
    CHECK(parse("{\"putEndpoint\":\"https://a/\xff\"," + tail + "}") == ErrorCode::invalid_json);
    CHECK(parse("{" + ep + "\"partition\":01,\"partitionCount\":1,\"content\":\"\"}") ==
          ErrorCode::invalid_json);  // leading zero is not JSON
  }
  SUBCASE("not_an_object") {
    CHECK(parse("[]") == ErrorCode::not_an_object);
    CHECK(parse("[{\"putEndpoint\":\"https://a/x\"}]") == ErrorCode::not_an_object);
    CHECK(parse("\"text\"") == ErrorCode::not_an_object);
    CHECK(parse("42") == ErrorCode::not_an_object);
    CHECK(parse("null") == ErrorCode::not_an_object);
  }
  SUBCASE("too_deep") {
    CHECK(parse("{" + ep + tail + ",\"x\":[[[[[[[[1]]]]]]]]}") == ErrorCode::too_deep);
    CHECK(parse("{" + ep + tail + ",\"x\":[[[[[[1]]]]]]}") == ErrorCode::ok);  // depth 7
  }
  SUBCASE("missing_field") {
    CHECK(parse("{}") == ErrorCode::missing_field);
    CHECK(parse("{" + tail + "}") == ErrorCode::missing_field);
    CHECK(parse("{" + ep + "\"partitionCount\":1,\"content\":\"\"}") == ErrorCode::missing_field);
    CHECK(parse("{" + ep + "\"partition\":0,\"content\":\"\"}") == ErrorCode::missing_field);
    CHECK(parse("{" + ep + "\"partition\":0,\"partitionCount\":1}") == ErrorCode::missing_field);
    CHECK(parse("{\"PutEndpoint\":\"https://a/x\"," + tail + "}") == ErrorCode::missing_field);
  }
  SUBCASE("duplicate_field") {
    CHECK(parse("{" + ep + ep + tail + "}") == ErrorCode::duplicate_field);
    CHECK(parse("{" + ep + tail + ",\"partition\":0}") == ErrorCode::duplicate_field);
  }
  SUBCASE("wrong_type") {
    CHECK(parse("{\"putEndpoint\":42," + tail + "}") == ErrorCode::wrong_type);
    CHECK(parse("{\"putEndpoint\":null," + tail + "}") == ErrorCode::wrong_type);
    CHECK(parse("{" + ep + "\"partition\":\"0\",\"partitionCount\":1,\"content\":\"\"}") ==
          ErrorCode::wrong_type);
    CHECK(parse("{" + ep + "\"partition\":0,\"partitionCount\":[1],\"content\":\"\"}") ==
          ErrorCode::wrong_type);
    CHECK(parse("{" + ep + "\"partition\":0,\"partitionCount\":1,\"content\":null}") ==
          ErrorCode::wrong_type);
    CHECK(parse("{" + ep + "\"partition\":true,\"partitionCount\":1,\"content\":\"\"}") ==
          ErrorCode::wrong_type);
  }
  SUBCASE("invalid_partition") {
    for (std::string value : {"-1", "1.5", "1.0", "1e2", "18446744073709551616", "-0.0"}) {
      CAPTURE(value);
      CHECK(parse("{" + ep + "\"partition\":" + value +
                  ",\"partitionCount\":1000,\"content\":\"\"}") == ErrorCode::invalid_partition);
    }
  }
  SUBCASE("invalid_partition_count") {
    for (std::string value : {"0", "-3", "2.5", "1e3", "99999999999999999999"}) {
      CAPTURE(value);
      CHECK(parse("{" + ep + "\"partition\":0,\"partitionCount\":" + value +
                  ",\"content\":\"\"}") == ErrorCode::invalid_partition_count);
    }
  }
  SUBCASE("partition_out_of_range") {
    CHECK(parse("{" + ep + "\"partition\":1,\"partitionCount\":1,\"content\":\"\"}") ==
          ErrorCode::partition_out_of_range);
    CHECK(parse("{" + ep + "\"partition\":7,\"partitionCount\":3,\"content\":\"\"}") ==
          ErrorCode::partition_out_of_range);
  }
}

TEST_CASE("limits: too_many_partitions, part_too_large, file_too_large") {
  filebuilder::Limits limits;
  limits.max_partitions = 10;
  limits.max_part_bytes = 6;
  Chunk chunk;
  chunk.put_endpoint = "https://a/x";
  chunk.partition_count = 10;
  chunk.content = "QUJDREVG";  // 6 bytes
  CHECK(check_limits(chunk, limits) == ErrorCode::ok);
  chunk.partition_count = 11;
  CHECK(check_limits(chunk, limits) == ErrorCode::too_many_partitions);
  chunk.partition_count = 10;
  chunk.content = "QUJDREVGRw==";  // 7 bytes
  CHECK(check_limits(chunk, limits) == ErrorCode::part_too_large);
  limits.max_part_bytes = 100;
  limits.max_file_bytes = 5;
  CHECK(check_limits(chunk, limits) == ErrorCode::file_too_large);
}
