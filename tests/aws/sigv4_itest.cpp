// SigV4 against botocore: the same requests signed by aws::Signer and by
// botocore.auth.SigV4Auth / S3SigV4Auth (tests/aws/botocore_sign.py, run with
// /usr/bin/python3 and Debian's python3-botocore) at a fixed time must give
// the same canonical request, string to sign and headers. The URLs are encoded
// canonically, as botocore's serialisers write them: botocore signs a query
// as written, while aws::Signer re-encodes it (so "%7E" is signed as "~", as
// the service computes it).
#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "filebuilder/aws/sigv4.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "support/bytes.hpp"
#include "support/run.hpp"

namespace aws = filebuilder::aws;
using filebuilder::ErrorCode;

namespace {

struct Case {
  std::string name{};
  std::string method{};
  std::string url{};
  std::vector<aws::Header> headers{};
  std::string body{};
  std::string region = "us-east-1";
  std::string service{};
  std::string token{};
  bool s3 = false;
  bool unsigned_payload = false;
  int expires = 0;  // not 0: a presigned URL valid this many seconds
};

constexpr std::int64_t signing_time = 1700000000;  // 2023-11-14T22:13:20Z

std::string json_line(const Case& c) {
  using filebuilder::detail::append_json_string;
  std::string out = "{\"method\":";
  append_json_string(out, c.method);
  out += ",\"url\":";
  append_json_string(out, c.url);
  out += ",\"headers\":[";
  for (std::size_t i = 0; i < c.headers.size(); ++i) {
    out += i ? ",[" : "[";
    append_json_string(out, c.headers[i].name);
    out += ',';
    append_json_string(out, c.headers[i].value);
    out += ']';
  }
  out += "],\"body\":";
  append_json_string(out, c.body);
  out += ",\"region\":";
  append_json_string(out, c.region);
  out += ",\"service\":";
  append_json_string(out, c.service);
  out += ",\"access_key\":\"AKIAIOSFODNN7EXAMPLE\",\"secret_key\":";
  append_json_string(out, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  out += ",\"token\":";
  append_json_string(out, c.token);
  out += ",\"time\":" + std::to_string(signing_time);
  out += std::string(",\"s3\":") + (c.s3 ? "true" : "false");
  out += std::string(",\"unsigned_payload\":") + (c.unsigned_payload ? "true" : "false");
  if (c.expires != 0) out += ",\"expires\":" + std::to_string(c.expires);
  out += "}\n";
  return out;
}

const std::string kinesis_json = "application/x-amz-json-1.1";

std::vector<Case> cases() {
  std::vector<Case> all;
  all.push_back(
      {.name = "kinesis ListShards",
       .method = "POST",
       .url = "https://kinesis.us-east-1.amazonaws.com/",
       .headers = {{"Content-Type", kinesis_json}, {"X-Amz-Target", "Kinesis_20131202.ListShards"}},
       .body = R"({"StreamName":"chunks","MaxResults":1000})",
       .service = "kinesis"});
  all.push_back(
      {.name = "kinesis GetRecords with a session token",
       .method = "POST",
       .url = "https://kinesis.eu-west-1.amazonaws.com",
       .headers = {{"Content-Type", kinesis_json}, {"X-Amz-Target", "Kinesis_20131202.GetRecords"}},
       .body = R"({"ShardIterator":"AAAAAAAAAAH/+abc==","Limit":10000})",
       .region = "eu-west-1",
       .service = "kinesis",
       .token = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token="});
  all.push_back({.name = "kinesis on a loopback port (kinesalite)",
                 .method = "POST",
                 .url = "http://127.0.0.1:4567/",
                 .headers = {{"Content-Type", kinesis_json},
                             {"X-Amz-Target", "Kinesis_20131202.GetShardIterator"},
                             {"User-Agent", "filebuilderd/0.1"}},
                 .body = R"({"StreamName":"s","ShardId":"shardId-000000000000",)"
                         R"("ShardIteratorType":"TRIM_HORIZON"})",
                 .service = "kinesis"});
  all.push_back({.name = "GET with a query string",
                 .method = "GET",
                 .url = "https://sts.amazonaws.com/?Version=2011-06-15&Action=GetCallerIdentity",
                 .service = "sts"});
  all.push_back({.name = "GET, path normalised and double-encoded, encoded query, trimmed header",
                 .method = "GET",
                 .url = "https://abc.execute-api.us-east-1.amazonaws.com/stage/a%20b/./c//d?"
                        "z=1&a=x%2Fy&empty=&a=~",
                 .headers = {{"X-Custom", "  one   two  "}},
                 .service = "execute-api"});
  all.push_back({.name = "S3 PUT, UNSIGNED-PAYLOAD",
                 .method = "PUT",
                 .url = "https://bucket.s3.us-east-1.amazonaws.com/dir/a%20b%2Bc.jpg",
                 .body = "the file's bytes",
                 .service = "s3",
                 .s3 = true,
                 .unsigned_payload = true});
  all.push_back({.name = "S3 PUT, signed payload, session token",
                 .method = "PUT",
                 .url = "http://127.0.0.1:9000/bucket/dir/./key..txt",
                 .headers = {{"Content-Type", "text/plain"}},
                 .body = "hello, world\n",
                 .service = "s3",
                 .token = "session",
                 .s3 = true});
  all.push_back({.name = "S3 presigned PUT",
                 .method = "PUT",
                 .url = "https://bucket.s3.amazonaws.com/uploads/a%20b.jpg",
                 .service = "s3",
                 .s3 = true,
                 .expires = 900});
  all.push_back(
      {.name = "S3 presigned GET with a query and a session token",
       .method = "GET",
       .url = "https://bucket.s3.eu-west-1.amazonaws.com/k?versionId=3%2F4&x-id=GetObject",
       .region = "eu-west-1",
       .service = "s3",
       .token = "FwoGZXIvYXdzEXAMPLE/token+==",
       .s3 = true,
       .expires = 604800});
  all.push_back({.name = "presigned GET for another service",
                 .method = "GET",
                 .url = "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
                 .headers = {{"X-Custom", "v"}},
                 .service = "sts",
                 .expires = 60});
  return all;
}

}  // namespace

TEST_CASE("sigv4: our signatures equal botocore's for Kinesis, GET, S3 and presigned requests") {
  const std::filesystem::path script =
      std::filesystem::path(__FILE__).parent_path() / "botocore_sign.py";
  const std::vector<Case> all = cases();
  std::string input;
  for (const Case& c : all) input += json_line(c);
  const filebuilder::test::RunResult botocore =
      filebuilder::test::run({"/usr/bin/python3", script.string()}, input);
  INFO("botocore_sign.py stderr: " << botocore.err);
  REQUIRE_MESSAGE(botocore.exit_code == 0,
                  "/usr/bin/python3 with python3-botocore is needed (scripts/install-deps)");
  const std::vector<std::string> lines = filebuilder::test::lines_of(botocore.out);
  REQUIRE(lines.size() == all.size());

  aws::Credentials credentials;
  credentials.access_key_id = "AKIAIOSFODNN7EXAMPLE";
  credentials.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  const auto time = std::chrono::system_clock::from_time_t(signing_time);
  simdjson::dom::parser parser;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const Case& c = all[i];
    CAPTURE(c.name);
    simdjson::dom::element reply;
    REQUIRE(parser.parse(lines[i]).get(reply) == simdjson::SUCCESS);
    std::string_view expected_creq, expected_sts, expected_url;
    REQUIRE(reply["canonical_request"].get_string().get(expected_creq) == simdjson::SUCCESS);
    REQUIRE(reply["string_to_sign"].get_string().get(expected_sts) == simdjson::SUCCESS);
    REQUIRE(reply["url"].get_string().get(expected_url) == simdjson::SUCCESS);
    std::map<std::string, std::string> expected_headers;
    simdjson::dom::object headers;
    REQUIRE(reply["headers"].get_object().get(headers) == simdjson::SUCCESS);
    for (auto field : headers) {
      std::string_view value;
      REQUIRE(field.value.get_string().get(value) == simdjson::SUCCESS);
      expected_headers[aws::detail::lower(std::string(field.key))] = std::string(value);
    }

    aws::SigningRequest request;
    REQUIRE(aws::SigningRequest::for_url(c.method, c.url, request) == ErrorCode::ok);
    request.headers = c.headers;
    request.payload = c.body;
    credentials.session_token = c.token;
    aws::SigningOptions options;
    if (c.s3) options = aws::SigningOptions::s3(c.unsigned_payload);
    const aws::Signer signer(c.region, c.service, options);
    aws::Signature signature;
    if (c.expires != 0) {
      REQUIRE(signer.presign(request, credentials, time, std::chrono::seconds(c.expires))
                  .get(signature) == ErrorCode::ok);
      CHECK(c.url.substr(0, c.url.find('?')) + "?" + signature.query == expected_url);
      CHECK(signature.headers.empty());
    } else {
      REQUIRE(signer.sign(request, credentials, time).get(signature) == ErrorCode::ok);
      CHECK(expected_url == c.url);
    }

    CHECK(signature.canonical_request == expected_creq);
    CHECK(signature.string_to_sign == expected_sts);
    // botocore's request holds the caller's headers plus the ones it added.
    std::map<std::string, std::string> ours;
    for (const aws::Header& header : c.headers)
      ours[aws::detail::lower(header.name)] = header.value;
    for (const aws::Header& header : signature.headers)
      ours[aws::detail::lower(header.name)] = header.value;
    CHECK(ours == expected_headers);
    if (c.expires == 0) {
      CHECK(expected_headers.count("authorization") == 1);
      CHECK(expected_headers.count("x-amz-security-token") == (c.token.empty() ? 0u : 1u));
      CHECK(expected_headers.count("x-amz-content-sha256") == (c.s3 ? 1u : 0u));
    }
  }
}
