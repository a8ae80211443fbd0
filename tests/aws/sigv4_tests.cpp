// SigV4 signing: the published AWS test-suite vectors (tests/aws/vectors), and
// the rules the vectors do not reach (S3 paths, payload options, the key cache).
#include "filebuilder/aws/sigv4.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "support/bytes.hpp"

namespace aws = filebuilder::aws;
using filebuilder::ErrorCode;

namespace {

const std::filesystem::path vectors_dir = std::filesystem::path(__FILE__).parent_path() / "vectors";

// 2015-08-30T12:36:00Z, the suite's time.
const std::chrono::system_clock::time_point suite_time =
    std::chrono::system_clock::from_time_t(1440938160);

aws::Credentials suite_credentials() {
  aws::Credentials credentials;
  credentials.access_key_id = "AKIDEXAMPLE";
  credentials.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  return credentials;
}

std::string read(const std::filesystem::path& path) {
  auto bytes = filebuilder::test::read_bytes(path);
  REQUIRE_MESSAGE(bytes.has_value(), "cannot read " << path);
  return *bytes;
}

/// A .req file: "METHOD PATH[?QUERY] HTTP/1.1", header lines "Name:value" (a
/// line starting with whitespace is one more value of the header before it),
/// then an empty line and the body. X-Amz-Date is left out (sign() adds it);
/// X-Amz-Security-Token becomes the credentials' session token.
struct ParsedRequest {
  aws::SigningRequest request;
  std::string body;
  std::string session_token;
};

ParsedRequest parse_req(const std::string& text) {
  ParsedRequest parsed;
  const std::size_t blank = text.find("\n\n");
  const std::string head = text.substr(0, blank);
  if (blank != std::string::npos) parsed.body = text.substr(blank + 2);
  const std::vector<std::string> lines = filebuilder::test::lines_of(head);
  REQUIRE(!lines.empty());
  const std::string& first = lines[0];
  const std::size_t space = first.find(' ');
  const std::size_t version = first.rfind(" HTTP/");
  REQUIRE(space != std::string::npos);
  REQUIRE(version != std::string::npos);
  parsed.request.method = first.substr(0, space);
  const std::string target = first.substr(space + 1, version - space - 1);
  const std::size_t question = target.find('?');
  parsed.request.path = target.substr(0, question);
  if (question != std::string::npos) parsed.request.query = target.substr(question + 1);
  std::vector<aws::Header> headers;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      REQUIRE(!headers.empty());
      headers.push_back({headers.back().name, std::string(filebuilder::detail::trim_spaces(line))});
      continue;
    }
    const std::size_t colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
  }
  for (aws::Header& header : headers) {
    const std::string lower = aws::detail::lower(header.name);
    if (lower == "x-amz-date") continue;
    if (lower == "x-amz-security-token") {
      parsed.session_token = header.value;
      continue;
    }
    if (lower == "host") parsed.request.host = header.value;
    parsed.request.headers.push_back(std::move(header));
  }
  return parsed;
}

aws::Signature sign_ok(const aws::Signer& signer, const aws::SigningRequest& request,
                       const aws::Credentials& credentials,
                       std::chrono::system_clock::time_point time = suite_time) {
  aws::Signature signature;
  REQUIRE(signer.sign(request, credentials, time).get(signature) == ErrorCode::ok);
  return signature;
}

std::string header_value(const aws::Signature& signature, const std::string& name) {
  for (const aws::Header& header : signature.headers)
    if (header.name == name) return header.value;
  return {};
}

}  // namespace

TEST_CASE(
    "sigv4: every AWS test-suite vector gives its canonical request, string to sign and "
    "Authorization") {
  std::vector<std::filesystem::path> cases;
  for (const auto& entry : std::filesystem::directory_iterator(vectors_dir))
    if (entry.is_directory()) cases.push_back(entry.path());
  std::sort(cases.begin(), cases.end());
  CHECK(cases.size() >= 37);
  for (const std::filesystem::path& dir : cases) {
    const std::string name = dir.filename().string();
    CAPTURE(name);
    const auto file = [&](const char* extension) { return read(dir / (name + extension)); };
    ParsedRequest parsed = parse_req(file(".req"));
    parsed.request.payload = parsed.body;
    aws::Credentials credentials = suite_credentials();
    credentials.session_token = parsed.session_token;
    aws::SigningOptions options;
    // The suite's unnormalized cases are signed as S3 signs paths.
    options.s3_path = name.ends_with("-unnormalized");
    const aws::Signer signer("us-east-1", "service", options);
    const aws::Signature signature = sign_ok(signer, parsed.request, credentials);
    CHECK(signature.canonical_request == file(".creq"));
    CHECK(signature.string_to_sign == file(".sts"));
    CHECK(signature.authorization == file(".authz"));
    CHECK(header_value(signature, "Authorization") == signature.authorization);
    CHECK(header_value(signature, "X-Amz-Date") == "20150830T123600Z");
    CHECK(header_value(signature, "X-Amz-Security-Token") == parsed.session_token);
  }
}

TEST_CASE("sigv4: a path is double-encoded and normalised, except for S3") {
  using aws::detail::canonical_uri;
  CHECK(canonical_uri("/a%20b/c", false) == "/a%2520b/c");
  CHECK(canonical_uri("/a%20b/c", true) == "/a%20b/c");
  CHECK(canonical_uri("/a b+c", true) == "/a%20b%2Bc");  // raw characters are encoded once
  CHECK(canonical_uri("/a/./b/../c//d/", false) == "/a/c/d/");
  CHECK(canonical_uri("/a/./b/../c//d/", true) == "/a/./b/../c//d/");
  CHECK(canonical_uri("/a/b/..", false) == "/a/");
  CHECK(canonical_uri("/..", false) == "/");
  CHECK(canonical_uri("", false) == "/");
  CHECK(canonical_uri("", true) == "/");
  CHECK(canonical_uri("/%zz%4", true) == "/%25zz%254");  // a bad escape is a literal '%'
  CHECK(canonical_uri("/%7e%41", true) == "/~A");
}

TEST_CASE("sigv4: query parameters are decoded, re-encoded and sorted") {
  using aws::detail::canonical_query;
  CHECK(canonical_query("") == "");
  CHECK(canonical_query("b=2&a=1&a=0") == "a=0&a=1&b=2");
  CHECK(canonical_query("flag&x=") == "flag=&x=");
  CHECK(canonical_query("a=%2F&b=/&c=+&d=%7E&e=a%20b") == "a=%2F&b=%2F&c=%2B&d=~&e=a%20b");
  CHECK(canonical_query("&&a=1&") == "a=1");
  CHECK(canonical_query("k=v=w") == "k=v%3Dw");
}

TEST_CASE(
    "sigv4: for_url splits the URL, and the Host has the port only when it is not the default") {
  aws::SigningRequest request;
  REQUIRE(aws::SigningRequest::for_url("POST", "https://kinesis.us-east-1.amazonaws.com",
                                       request) == ErrorCode::ok);
  CHECK(request.method == "POST");
  CHECK(request.host == "kinesis.us-east-1.amazonaws.com");
  CHECK(request.path == "/");
  CHECK(request.query.empty());
  REQUIRE(aws::SigningRequest::for_url("GET", "http://127.0.0.1:4567/a/b?x=1&y=2", request) ==
          ErrorCode::ok);
  CHECK(request.host == "127.0.0.1:4567");
  CHECK(request.path == "/a/b");
  CHECK(request.query == "x=1&y=2");
  REQUIRE(aws::SigningRequest::for_url("GET", "https://example.com:443/?q", request) ==
          ErrorCode::ok);
  CHECK(request.host == "example.com");
  CHECK(request.query == "q");
  REQUIRE(aws::SigningRequest::for_url("GET", "http://[::1]:8080/", request) == ErrorCode::ok);
  CHECK(request.host == "[::1]:8080");
  CHECK(aws::SigningRequest::for_url("GET", "ftp://example.com/", request) ==
        ErrorCode::endpoint_scheme);
  CHECK(aws::SigningRequest::for_url("GET", "not a url", request) == ErrorCode::endpoint_invalid);
}

TEST_CASE("sigv4: S3 options sign x-amz-content-sha256, and UNSIGNED-PAYLOAD on request") {
  aws::SigningRequest request;
  REQUIRE(aws::SigningRequest::for_url("PUT", "https://bucket.s3.amazonaws.com/a%20b.jpg",
                                       request) == ErrorCode::ok);
  request.payload = "hello";
  const std::string hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

  const aws::Signature hashed = sign_ok(aws::Signer("us-east-1", "s3", aws::SigningOptions::s3()),
                                        request, suite_credentials());
  CHECK(header_value(hashed, "x-amz-content-sha256") == hello);
  CHECK(hashed.canonical_request.starts_with("PUT\n/a%20b.jpg\n\n"));
  CHECK(hashed.canonical_request.ends_with("\nhost;x-amz-content-sha256;x-amz-date\n" + hello));

  const aws::Signature unsigned_payload = sign_ok(
      aws::Signer("us-east-1", "s3", aws::SigningOptions::s3(true)), request, suite_credentials());
  CHECK(header_value(unsigned_payload, "x-amz-content-sha256") == "UNSIGNED-PAYLOAD");
  CHECK(unsigned_payload.canonical_request.ends_with("\nUNSIGNED-PAYLOAD"));

  // A precomputed hash is used as given, and a caller's own x-amz-content-sha256 is replaced.
  request.payload_hash = std::string(64, 'a');
  request.headers = {{"X-Amz-Content-Sha256", "stale"}};
  const aws::Signature given = sign_ok(aws::Signer("us-east-1", "s3", aws::SigningOptions::s3()),
                                       request, suite_credentials());
  CHECK(header_value(given, "x-amz-content-sha256") == request.payload_hash);
  CHECK(given.canonical_request.find("stale") == std::string::npos);

  // Without the options there is no such header, and the body's hash is signed.
  request.payload_hash.clear();
  request.headers.clear();
  const aws::Signature plain =
      sign_ok(aws::Signer("us-east-1", "s3"), request, suite_credentials());
  CHECK(header_value(plain, "x-amz-content-sha256").empty());
  CHECK(plain.canonical_request.ends_with("\nhost;x-amz-date\n" + hello));
}

TEST_CASE("sigv4: what is signed and what is returned") {
  aws::SigningRequest request;
  REQUIRE(aws::SigningRequest::for_url("POST", "https://kinesis.eu-west-1.amazonaws.com/",
                                       request) == ErrorCode::ok);
  request.headers = {{"Content-Type", "application/x-amz-json-1.1"},
                     {"X-Amz-Target", "Kinesis_20131202.ListShards"},
                     {"User-Agent", "filebuilderd/0.1"},
                     {"Authorization", "old"},
                     {"X-Amz-Date", "19700101T000000Z"}};
  request.payload = "{}";
  aws::Credentials credentials = suite_credentials();
  credentials.session_token = "token/with+chars=";
  const aws::Signer signer("eu-west-1", "kinesis");
  const aws::Signature signature = sign_ok(signer, request, credentials);
  CHECK(signature.canonical_request ==
        "POST\n/\n\n"
        "content-type:application/x-amz-json-1.1\n"
        "host:kinesis.eu-west-1.amazonaws.com\n"
        "x-amz-date:20150830T123600Z\n"
        "x-amz-security-token:token/with+chars=\n"
        "x-amz-target:Kinesis_20131202.ListShards\n\n"
        "content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n"
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  CHECK(signature.string_to_sign.starts_with(
      "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/eu-west-1/kinesis/aws4_request\n"));
  REQUIRE(signature.headers.size() == 3);
  CHECK(signature.headers[0] == aws::Header{"X-Amz-Date", "20150830T123600Z"});
  CHECK(signature.headers[1] == aws::Header{"X-Amz-Security-Token", "token/with+chars="});
  CHECK(signature.headers[2].name == "Authorization");
  CHECK(signature.signature.size() == 64);
}

TEST_CASE("sigv4: the signing key is derived again for another day or secret") {
  aws::SigningRequest request;
  REQUIRE(aws::SigningRequest::for_url("GET", "https://example.amazonaws.com/", request) ==
          ErrorCode::ok);
  const aws::Signer signer("us-east-1", "service");
  const aws::Signature first = sign_ok(signer, request, suite_credentials());
  CHECK(sign_ok(signer, request, suite_credentials()).signature == first.signature);
  // Another day: a fresh signer (empty cache) must agree with the cached one.
  const auto next_day = suite_time + std::chrono::hours(24);
  const std::string cached_next = sign_ok(signer, request, suite_credentials(), next_day).signature;
  CHECK(cached_next != first.signature);
  CHECK(sign_ok(aws::Signer("us-east-1", "service"), request, suite_credentials(), next_day)
            .signature == cached_next);
  aws::Credentials other = suite_credentials();
  other.secret_access_key = "another-secret";
  const std::string other_signature = sign_ok(signer, request, other, next_day).signature;
  CHECK(other_signature != cached_next);
  CHECK(sign_ok(aws::Signer("us-east-1", "service"), request, other, next_day).signature ==
        other_signature);
  // Back to the first credentials and day.
  CHECK(sign_ok(signer, request, suite_credentials()).signature == first.signature);
}

TEST_CASE("sigv4: a header with a line break cannot be signed") {
  aws::SigningRequest request;
  REQUIRE(aws::SigningRequest::for_url("GET", "https://example.amazonaws.com/", request) ==
          ErrorCode::ok);
  const aws::Signer signer("us-east-1", "service");
  aws::Signature signature;
  request.headers = {{"X-Test", "a\r\nX-Injected: 1"}};
  CHECK(signer.sign(request, suite_credentials(), suite_time).get(signature) ==
        ErrorCode::signing_failed);
  request.headers = {{"X-Test\n", "a"}};
  CHECK(signer.sign(request, suite_credentials(), suite_time).get(signature) ==
        ErrorCode::signing_failed);
}

TEST_CASE("sigv4: amz_date and uri_encode_append") {
  CHECK(aws::amz_date(suite_time) == "20150830T123600Z");
  CHECK(aws::amz_date(std::chrono::system_clock::from_time_t(0)) == "19700101T000000Z");
  std::string out;
  aws::uri_encode_append(out, "a/b c~\xE1\x88\xB4", true);
  CHECK(out == "a/b%20c~%E1%88%B4");
  out.clear();
  aws::uri_encode_append(out, "a/b", false);
  CHECK(out == "a%2Fb");
}

TEST_CASE("sigv4: presign adds the X-Amz parameters and the signature to the query") {
  aws::SigningRequest request;
  REQUIRE(aws::SigningRequest::for_url("PUT", "https://bucket.s3.amazonaws.com/a.jpg?x=1",
                                       request) == ErrorCode::ok);
  aws::Credentials credentials = suite_credentials();
  credentials.session_token = "t/1";
  const aws::Signer signer("us-east-1", "s3", aws::SigningOptions::s3());
  aws::Signature signature;
  REQUIRE(
      signer.presign(request, credentials, suite_time, std::chrono::seconds(900)).get(signature) ==
      ErrorCode::ok);
  CHECK(signature.headers.empty());
  CHECK(signature.query ==
        "x=1&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
        "&X-Amz-Security-Token=t%2F1&X-Amz-Signature=" +
            signature.signature);
  CHECK(signature.canonical_request.ends_with("\nhost\nUNSIGNED-PAYLOAD"));
  CHECK(signature.canonical_request.find("X-Amz-Signature") == std::string::npos);
  for (long seconds : {0L, -1L, 604801L})
    CHECK(signer.presign(request, credentials, suite_time, std::chrono::seconds(seconds))
              .get(signature) == ErrorCode::signing_failed);
  CHECK(signer.presign(request, credentials, suite_time, std::chrono::seconds(604800))
            .get(signature) == ErrorCode::ok);
}
