// filebuilder: AWS Signature Version 4 (component filebuilder::crypto: OpenSSL).
//
// Signs one HTTP request with the Authorization header, as every AWS API
// (Kinesis, S3, STS, ...) expects it:
//
//   aws::Signer signer("us-east-1", "kinesis");
//   aws::SigningRequest request;
//   aws::SigningRequest::for_url("POST", "https://kinesis.us-east-1.amazonaws.com/", request);
//   request.headers = {{"Content-Type", "application/x-amz-json-1.1"},
//                      {"X-Amz-Target", "Kinesis_20131202.ListShards"}};
//   request.payload = body;
//   aws::Signature signature;
//   if (signer.sign(request, credentials, std::chrono::system_clock::now()).get(signature) ==
//       ErrorCode::ok)
//     for (const aws::Header& h : signature.headers) ...  // send these too
//
// Every header given is signed (except User-Agent, Expect and X-Amzn-Trace-Id,
// which proxies and SDKs rewrite), plus Host (from `host`), X-Amz-Date,
// X-Amz-Security-Token when the credentials carry a session token, and
// x-amz-content-sha256 when asked (S3). sign() returns the headers to add:
// X-Amz-Date, X-Amz-Security-Token, x-amz-content-sha256 and Authorization.
// Host is not among them: libcurl sends the same value from the URL.
// presign() signs in the query instead (presigned URLs, as S3 hands out).
//
// The path and query are as they appear in the URL. For every service but S3
// the path is normalised (dot segments and repeated slashes removed) and
// URI-encoded again ("double encoding": a '%' becomes "%25"); for S3
// (SigningOptions::s3()) it is signed as the URI-encoding of its decoded form,
// not normalised. Query parameters are decoded, re-encoded (RFC 3986
// unreserved characters kept, everything else %XX), and sorted by name, then
// value.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/digest.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/upload/policy.hpp"

namespace filebuilder::aws {

/// AWS credentials. A session token comes with temporary credentials
/// (containers, EC2 roles, STS); `expiration` is set for those that expire.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: none
  std::optional<std::chrono::system_clock::time_point> expiration;
  std::string source;  // where they came from ("environment", ...), for logs; never secret
};

struct Header {
  std::string name;
  std::string value;
  friend bool operator==(const Header&, const Header&) = default;
};

/// What is signed of one request.
struct SigningRequest {
  std::string method = "GET";
  std::string host;             // the Host header: "kinesis.us-east-1.amazonaws.com", "[::1]:4567"
  std::string path = "/";       // as in the URL, without the query
  std::string query;            // as in the URL, without '?'; empty: none
  std::vector<Header> headers;  // the headers to be sent (Host not needed)
  std::string_view payload;     // the body (not copied: it must outlive sign())
  std::string payload_hash;     // if not empty, used instead of hashing `payload`

  /// Sets method, host, path and query from an absolute http(s) URL.
  /// endpoint_invalid / endpoint_scheme as parse_url().
  [[nodiscard]] static ErrorCode for_url(std::string_view method, std::string_view url,
                                         SigningRequest& out);
};

struct SigningOptions {
  bool s3_path = false;                // S3: the path is not normalised nor double-encoded
  bool unsigned_payload = false;       // sign "UNSIGNED-PAYLOAD" instead of the body's hash
  bool content_sha256_header = false;  // add and sign x-amz-content-sha256 (S3 requires it)

  /// S3's rules: single-encoded path, x-amz-content-sha256; `unsigned_payload`
  /// to sign the body's hash as UNSIGNED-PAYLOAD (for streamed uploads).
  [[nodiscard]] static SigningOptions s3(bool unsigned_payload = false) noexcept {
    return SigningOptions{true, unsigned_payload, true};
  }
};

/// The result of sign(). The intermediate strings are kept for tests and for
/// debugging a SignatureDoesNotMatch (AWS replies with its canonical request).
struct Signature {
  std::vector<Header> headers;  // to add to the request
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // lowercase hex
  std::string authorization;  // sign(): the Authorization header's value (also in `headers`)
  std::string query;          // presign(): the query string to send, signature included
};

/// Signs requests for one region and service. Thread-safe; keeps the derived
/// signing key of the last (secret key, date) it used.
class Signer {
 public:
  Signer(std::string region, std::string service, SigningOptions options = {});

  /// signing_failed when a header has a line break (it could not be sent as
  /// signed) or OpenSSL fails.
  [[nodiscard]] Result<Signature> sign(const SigningRequest& request,
                                       const Credentials& credentials,
                                       std::chrono::system_clock::time_point now) const;

  /// A presigned request (query authentication, as S3 presigned URLs): the
  /// result's `query` is the request's query with the X-Amz-* parameters and
  /// X-Amz-Signature, to send as the URL's query; `headers` is empty (the
  /// given headers must be sent as they were signed). The payload is signed as
  /// UNSIGNED-PAYLOAD for S3. `expires` from 1 s to 7 days, else signing_failed.
  [[nodiscard]] Result<Signature> presign(const SigningRequest& request,
                                          const Credentials& credentials,
                                          std::chrono::system_clock::time_point now,
                                          std::chrono::seconds expires) const;

  [[nodiscard]] const std::string& region() const noexcept { return region_; }
  [[nodiscard]] const std::string& service() const noexcept { return service_; }

 private:
  using Key = std::array<unsigned char, 32>;
  /// Canonical request, string to sign and signature into `result`. `added`
  /// are signed headers that replace any of the caller's of the same name;
  /// `query` is the query to sign, or a null view for the request's own.
  [[nodiscard]] ErrorCode sign_common(const SigningRequest& request, const Credentials& credentials,
                                      const std::string& date_time, std::string_view query,
                                      std::string payload_hash,
                                      std::vector<std::pair<std::string, std::string>> added,
                                      Signature& result, std::string& signed_headers) const;
  [[nodiscard]] std::string scope(std::string_view date) const;
  [[nodiscard]] bool signing_key(const std::string& secret, std::string_view date, Key& out) const;

  std::string region_;
  std::string service_;
  SigningOptions options_;
  mutable std::mutex mutex_;
  mutable std::string cached_secret_;
  mutable std::string cached_date_;
  mutable Key cached_key_{};
};

/// "20150830T123600Z"
[[nodiscard]] inline std::string amz_date(std::chrono::system_clock::time_point time);

/// RFC 3986 percent-encoding: unreserved characters (A-Z a-z 0-9 - . _ ~) are
/// kept, every other byte becomes %XX (upper-case hex); '/' is kept when
/// `keep_slash`.
inline void uri_encode_append(std::string& out, std::string_view text, bool keep_slash);

/// The signing steps, exposed for tests.
namespace detail {
[[nodiscard]] inline std::string canonical_uri(std::string_view path, bool s3_path);
[[nodiscard]] inline std::string canonical_query(std::string_view query);
[[nodiscard]] inline std::string percent_decode(std::string_view text);
[[nodiscard]] inline std::string remove_dot_segments(std::string_view path);
}  // namespace detail

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

[[nodiscard]] inline bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

[[nodiscard]] inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// %XX decoded; a '%' not followed by two hex digits stays as it is; '+' is
/// not a space (AWS reads it literally).
inline std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

/// RFC 3986 5.2.4, and repeated slashes collapsed (as AWS normalises paths).
/// Keeps a leading and a trailing slash; empty gives "/".
inline std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> segments;
  std::string_view rest = path;
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  std::string out = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  // A trailing slash stays, unless the path collapsed to the root. So does one
  // after a final "." or ".." ("/a/b/.." is the directory "/a/").
  const bool directory = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
  if (!segments.empty() && directory) out.push_back('/');
  return out;
}

inline std::string canonical_uri(std::string_view path, bool s3_path) {
  std::string out;
  if (path.empty()) return "/";
  if (s3_path) {
    uri_encode_append(out, percent_decode(path), true);
  } else {
    uri_encode_append(out, remove_dot_segments(path), true);
  }
  return out;
}

inline std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> parameters;
  std::string_view rest = query;
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    if (!pair.empty()) {
      const std::size_t equals = pair.find('=');
      std::pair<std::string, std::string> encoded;
      uri_encode_append(encoded.first, percent_decode(pair.substr(0, equals)), false);
      if (equals != std::string_view::npos)
        uri_encode_append(encoded.second, percent_decode(pair.substr(equals + 1)), false);
      parameters.push_back(std::move(encoded));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  std::sort(parameters.begin(), parameters.end());
  std::string out;
  for (const auto& [name, value] : parameters) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

[[nodiscard]] inline std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

/// Leading and trailing whitespace removed, inner runs of whitespace as one space.
[[nodiscard]] inline std::string trim_all(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

[[nodiscard]] inline bool hmac_sha256(std::string_view key, std::string_view data,
                                      std::array<unsigned char, 32>& out) {
  unsigned int size = 0;
  return HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
              &size) != nullptr &&
         size == out.size();
}

[[nodiscard]] inline std::string_view as_view(const std::array<unsigned char, 32>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace detail

inline void uri_encode_append(std::string& out, std::string_view text, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (detail::is_unreserved(u) || (keep_slash && c == '/')) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(digits[u >> 4]);
      out.push_back(digits[u & 0xF]);
    }
  }
}

inline std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  const std::size_t n = std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &utc);
  return std::string(buffer, n);
}

inline ErrorCode SigningRequest::for_url(std::string_view method, std::string_view url,
                                         SigningRequest& out) {
  Url parsed;
  FILEBUILDER_TRY(parse_url(url).get(parsed));
  SigningRequest request;
  request.method = std::string(method);
  const bool ipv6 = parsed.host.find(':') != std::string_view::npos;
  request.host = ipv6 ? "[" + std::string(parsed.host) + "]" : std::string(parsed.host);
  const bool https = filebuilder::detail::iequals(parsed.scheme, "https");
  if (parsed.port_given && parsed.port != (https ? 443 : 80))
    request.host += ":" + std::to_string(parsed.port);
  const std::string_view tail = parsed.path_and_query;
  const std::size_t question = tail.find('?');
  request.path = std::string(tail.substr(0, question));
  if (request.path.empty()) request.path = "/";
  if (question != std::string_view::npos) request.query = std::string(tail.substr(question + 1));
  out = std::move(request);
  return ErrorCode::ok;
}

inline Signer::Signer(std::string region, std::string service, SigningOptions options)
    : region_(std::move(region)), service_(std::move(service)), options_(options) {}

inline bool Signer::signing_key(const std::string& secret, std::string_view date, Key& out) const {
  std::lock_guard lock(mutex_);
  if (!cached_date_.empty() && cached_date_ == date && cached_secret_ == secret) {
    out = cached_key_;
    return true;
  }
  Key date_key, region_key, service_key;
  if (!detail::hmac_sha256("AWS4" + secret, date, date_key) ||
      !detail::hmac_sha256(detail::as_view(date_key), region_, region_key) ||
      !detail::hmac_sha256(detail::as_view(region_key), service_, service_key) ||
      !detail::hmac_sha256(detail::as_view(service_key), "aws4_request", out))
    return false;
  cached_secret_ = secret;
  cached_date_ = std::string(date);
  cached_key_ = out;
  return true;
}

inline ErrorCode Signer::sign_common(const SigningRequest& request, const Credentials& credentials,
                                     const std::string& date_time, std::string_view query,
                                     std::string payload_hash,
                                     std::vector<std::pair<std::string, std::string>> added,
                                     Signature& result, std::string& signed_headers) const {
  const std::string_view date = std::string_view(date_time).substr(0, 8);
  // Canonical headers: lower-case names, sorted (stable: values keep their order).
  std::vector<std::pair<std::string, std::string>> headers;
  bool has_host = false;
  for (const Header& header : request.headers) {
    for (const std::string* text : {&header.name, &header.value})
      if (text->find_first_of("\r\n") != std::string::npos) return ErrorCode::signing_failed;
    std::string name = detail::lower(filebuilder::detail::trim_spaces(header.name));
    const bool replaced = std::any_of(added.begin(), added.end(),
                                      [&](const auto& header) { return header.first == name; });
    if (replaced || name == "authorization" || name == "user-agent" || name == "expect" ||
        name == "x-amzn-trace-id")
      continue;
    has_host = has_host || name == "host";
    headers.emplace_back(std::move(name), detail::trim_all(header.value));
  }
  if (!has_host) headers.emplace_back("host", detail::trim_all(request.host));
  for (auto& header : added) headers.push_back(std::move(header));
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string canonical_headers;
  signed_headers.clear();
  for (std::size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      canonical_headers.back() = ',';  // another value of the same header
    } else {
      if (!signed_headers.empty()) signed_headers.push_back(';');
      signed_headers += headers[i].first;
      canonical_headers += headers[i].first;
      canonical_headers.push_back(':');
    }
    canonical_headers += headers[i].second;
    canonical_headers.push_back('\n');
  }
  if (query.data() == nullptr) query = request.query;  // sign(): the request's own query

  std::string& creq = result.canonical_request;
  creq = request.method;
  creq.push_back('\n');
  creq += detail::canonical_uri(request.path, options_.s3_path);
  creq.push_back('\n');
  creq += detail::canonical_query(query);
  creq.push_back('\n');
  creq += canonical_headers;
  creq.push_back('\n');
  creq += signed_headers;
  creq.push_back('\n');
  creq += payload_hash;

  const std::string creq_hash = sha256_hex(creq);
  if (creq_hash.empty()) return ErrorCode::signing_failed;
  result.string_to_sign = "AWS4-HMAC-SHA256\n" + date_time + "\n" + scope(date) + "\n" + creq_hash;
  Key key, signature;
  if (!signing_key(credentials.secret_access_key, date, key) ||
      !detail::hmac_sha256(detail::as_view(key), result.string_to_sign, signature))
    return ErrorCode::signing_failed;
  result.signature = filebuilder::detail::to_hex(signature.data(), signature.size());
  return ErrorCode::ok;
}

inline std::string Signer::scope(std::string_view date) const {
  return std::string(date) + "/" + region_ + "/" + service_ + "/aws4_request";
}

inline Result<Signature> Signer::sign(const SigningRequest& request, const Credentials& credentials,
                                      std::chrono::system_clock::time_point now) const {
  Signature result;
  const std::string date_time = amz_date(now);
  std::string payload_hash = request.payload_hash;
  if (payload_hash.empty())
    payload_hash = options_.unsigned_payload ? "UNSIGNED-PAYLOAD" : sha256_hex(request.payload);
  if (payload_hash.empty()) return ErrorCode::signing_failed;
  std::vector<std::pair<std::string, std::string>> added = {{"x-amz-date", date_time}};
  result.headers.push_back({"X-Amz-Date", date_time});
  if (!credentials.session_token.empty()) {
    added.emplace_back("x-amz-security-token", credentials.session_token);
    result.headers.push_back({"X-Amz-Security-Token", credentials.session_token});
  }
  if (options_.content_sha256_header) {
    added.emplace_back("x-amz-content-sha256", payload_hash);
    result.headers.push_back({"x-amz-content-sha256", payload_hash});
  }
  std::string signed_headers;
  FILEBUILDER_TRY(sign_common(request, credentials, date_time, {}, std::move(payload_hash),
                              std::move(added), result, signed_headers));
  result.authorization = "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" +
                         scope(std::string_view(date_time).substr(0, 8)) +
                         ", SignedHeaders=" + signed_headers + ", Signature=" + result.signature;
  result.headers.push_back({"Authorization", result.authorization});
  return result;
}

inline Result<Signature> Signer::presign(const SigningRequest& request,
                                         const Credentials& credentials,
                                         std::chrono::system_clock::time_point now,
                                         std::chrono::seconds expires) const {
  if (expires.count() < 1 || expires.count() > 604'800) return ErrorCode::signing_failed;
  Signature result;
  const std::string date_time = amz_date(now);
  std::string payload_hash = request.payload_hash;
  if (payload_hash.empty())
    payload_hash = options_.s3_path || options_.unsigned_payload ? "UNSIGNED-PAYLOAD"
                                                                 : sha256_hex(request.payload);
  if (payload_hash.empty()) return ErrorCode::signing_failed;
  // The signed headers are known before signing: they are a parameter.
  Signature probe;
  std::string signed_headers;
  FILEBUILDER_TRY(
      sign_common(request, credentials, date_time, "", payload_hash, {}, probe, signed_headers));
  std::string& query = result.query;
  query = request.query;
  const auto parameter = [&query](std::string_view name, std::string_view value) {
    if (!query.empty()) query.push_back('&');
    query += name;
    query.push_back('=');
    uri_encode_append(query, value, false);
  };
  parameter("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  parameter("X-Amz-Credential",
            credentials.access_key_id + "/" + scope(std::string_view(date_time).substr(0, 8)));
  parameter("X-Amz-Date", date_time);
  parameter("X-Amz-Expires", std::to_string(expires.count()));
  parameter("X-Amz-SignedHeaders", signed_headers);
  if (!credentials.session_token.empty())
    parameter("X-Amz-Security-Token", credentials.session_token);
  FILEBUILDER_TRY(sign_common(request, credentials, date_time, query, std::move(payload_hash), {},
                              result, signed_headers));
  parameter("X-Amz-Signature", result.signature);
  return result;
}

}  // namespace filebuilder::aws
