// filebuilder: AWS credentials, from the usual chain (component filebuilder::curl).
//
// The chain, in order (CONTRACT.md); the first source that has credentials wins:
//   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
//   2. the shared credentials file: AWS_SHARED_CREDENTIALS_FILE, else
//      ~/.aws/credentials; profile AWS_PROFILE, else "default"
//   3. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (under
//      http://169.254.170.2), else AWS_CONTAINER_CREDENTIALS_FULL_URI; the
//      Authorization header from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, else
//      AWS_CONTAINER_AUTHORIZATION_TOKEN
//   4. EC2 instance metadata, IMDSv2 only (a session token first), at
//      AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254; skipped
//      when AWS_EC2_METADATA_DISABLED=true
//
// A source that is not configured (no variable, no file, no profile, no
// instance metadata answering) passes to the next. A source that is
// configured but wrong stops the chain: partial keys or an AWS_PROFILE that is
// not in the file are missing_credentials; a FULL_URI to a host that may not
// have the token is invalid_config; a container endpoint that fails or any bad
// reply is credentials_unavailable. Nothing found at all is
// missing_credentials. The message then names every source tried and why it
// had nothing.
//
//   aws::CredentialsProvider provider;  // the chain, the real environment and clock
//   std::string why;
//   aws::Credentials credentials;
//   if (provider.get(why).get(credentials) != ErrorCode::ok) { log(why); exit(2); }
//
// CredentialsProvider caches what it got and fetches again once the
// credentials are within `refresh_before` (5 minutes) of their expiration; if
// that fails while they are still valid, it keeps them (and tries again at
// most every `retry_after`). Thread-safe: one caller refreshes, the others
// wait for it.
//
// HTTP goes through a libcurl easy handle per request with short timeouts, no
// proxy (the metadata addresses are link-local) and no redirects.
#pragma once

#include <curl/curl.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/aws/sigv4.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/upload/curl.hpp"
#include "filebuilder/upload/policy.hpp"

namespace filebuilder::aws {

struct CredentialsOptions {
  /// Reads an environment variable (nullptr when unset); empty: std::getenv.
  std::function<const char*(const char*)> getenv;
  /// The time; empty: std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock;
  std::chrono::milliseconds connect_timeout{1'000};
  std::chrono::milliseconds timeout{3'000};  // per HTTP request
  std::chrono::seconds refresh_before{300};  // fetch again this long before expiration
  std::chrono::seconds retry_after{10};      // after a failed early refresh
  std::string container_endpoint = "http://169.254.170.2";  // base of the RELATIVE_URI
  std::string imds_endpoint = "http://169.254.169.254";  // unless AWS_EC2_METADATA_SERVICE_ENDPOINT
  std::chrono::seconds imds_token_ttl{21'600};
};

/// Runs the chain once, without a cache. On failure `message` says why.
[[nodiscard]] inline Result<Credentials> resolve_credentials(const CredentialsOptions& options,
                                                             std::string& message);

/// Any source of credentials: the chain, or a test's stand-in.
using CredentialsSource = std::function<Result<Credentials>(std::string& message)>;

class CredentialsProvider {
 public:
  /// The chain of resolve_credentials().
  explicit CredentialsProvider(CredentialsOptions options = {});
  /// Another source, cached and refreshed the same way (options: clock, refresh_before,
  /// retry_after).
  CredentialsProvider(CredentialsSource source, CredentialsOptions options);

  /// Valid credentials, from the cache or fetched now. On failure `message` says why.
  [[nodiscard]] Result<Credentials> get(std::string& message);
  [[nodiscard]] Result<Credentials> get() {
    std::string ignored;
    return get(ignored);
  }

 private:
  CredentialsSource source_;
  CredentialsOptions options_;
  std::mutex mutex_;
  std::optional<Credentials> cached_;
  std::chrono::system_clock::time_point next_attempt_{};
};

namespace detail {

/// One source's answer: credentials, nothing here (`note` says why), or an error.
struct SourceResult {
  enum Kind { found, absent, failed } kind = absent;
  Credentials credentials;
  ErrorCode error = ErrorCode::ok;
  std::string note;
};

using Getenv = std::function<const char*(const char*)>;

[[nodiscard]] inline SourceResult from_environment(const Getenv& getenv);
[[nodiscard]] inline SourceResult from_shared_file(const Getenv& getenv);
[[nodiscard]] inline SourceResult from_container(const Getenv& getenv,
                                                 const CredentialsOptions& options);
[[nodiscard]] inline SourceResult from_instance_metadata(const Getenv& getenv,
                                                         const CredentialsOptions& options);

/// The keys of PROFILE in the text of a shared credentials file. found,
/// absent (no such profile, or no keys in it) or failed (partial keys).
[[nodiscard]] inline SourceResult parse_credentials_file(std::string_view text,
                                                         std::string_view profile);

/// {"AccessKeyId","SecretAccessKey","Token","Expiration"} as container
/// credentials and IMDS answer; IMDS adds "Code":"Success".
[[nodiscard]] inline ErrorCode parse_credentials_json(std::string_view json, Credentials& out,
                                                      std::string& message);

/// "2015-08-30T12:36:00Z" (fractional seconds and a +hh:mm offset allowed).
[[nodiscard]] inline std::optional<std::chrono::system_clock::time_point> parse_iso8601(
    std::string_view text);

}  // namespace detail

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

[[nodiscard]] inline std::string env(const Getenv& getenv, const char* name) {
  const char* value = getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

/// The first `limit` bytes of a file, or nullopt if it cannot be read.
[[nodiscard]] inline std::optional<std::string> read_small_file(const std::string& path,
                                                                std::size_t limit) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return std::nullopt;
  std::string text;
  char buffer[4096];
  std::size_t n = 0;
  while (text.size() < limit && (n = std::fread(buffer, 1, sizeof buffer, file)) > 0)
    text.append(buffer, std::min(n, limit - text.size()));
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return std::nullopt;
  return text;
}

struct HttpReply {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::string error;  // libcurl's message when code != CURLE_OK
};

/// One request with its own easy handle: no proxy, no redirects, http(s) only.
inline HttpReply http_request(const char* method, const std::string& url,
                              const std::vector<std::string>& headers,
                              const CredentialsOptions& options) {
  HttpReply reply;
  if (filebuilder::detail::curl_global() != CURLE_OK) {
    reply.code = CURLE_FAILED_INIT;
    reply.error = "libcurl cannot be initialised";
    return reply;
  }
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    reply.code = CURLE_FAILED_INIT;
    reply.error = "libcurl cannot be initialised";
    return reply;
  }
  curl_slist* list = nullptr;
  for (const std::string& header : headers) {
    curl_slist* grown = curl_slist_append(list, header.c_str());
    if (grown == nullptr) break;
    list = grown;
  }
  char error[CURL_ERROR_SIZE] = {};
  const auto write = +[](char* data, std::size_t size, std::size_t count, void* out) {
    auto* body = static_cast<std::string*>(out);
    if (body->size() > 64 * 1024) return std::size_t{0};  // no credentials reply is this large
    body->append(data, size * count);
    return size * count;
  };
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
  if (std::string_view(method) == "PUT") {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
  (void)filebuilder::detail::curl_set_safe_defaults(easy);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
  reply.code = curl_easy_perform(easy);
  if (reply.code == CURLE_OK) {
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &reply.status);
  } else {
    reply.error = error[0] != '\0' ? error : curl_easy_strerror(reply.code);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(easy);
  return reply;
}

[[nodiscard]] inline SourceResult absent(std::string note) {
  SourceResult result;
  result.note = std::move(note);
  return result;
}

[[nodiscard]] inline SourceResult failed(ErrorCode error, std::string note) {
  SourceResult result;
  result.kind = SourceResult::failed;
  result.error = error;
  result.note = std::move(note);
  return result;
}

[[nodiscard]] inline SourceResult found(Credentials credentials) {
  SourceResult result;
  result.kind = SourceResult::found;
  result.credentials = std::move(credentials);
  return result;
}

inline SourceResult from_environment(const Getenv& getenv) {
  Credentials credentials;
  credentials.access_key_id = env(getenv, "AWS_ACCESS_KEY_ID");
  credentials.secret_access_key = env(getenv, "AWS_SECRET_ACCESS_KEY");
  credentials.session_token = env(getenv, "AWS_SESSION_TOKEN");
  credentials.source = "environment";
  const bool id = !credentials.access_key_id.empty();
  const bool secret = !credentials.secret_access_key.empty();
  if (id && secret) return found(std::move(credentials));
  if (id) return failed(ErrorCode::missing_credentials, "AWS_SECRET_ACCESS_KEY is not set");
  if (secret) return failed(ErrorCode::missing_credentials, "AWS_ACCESS_KEY_ID is not set");
  return absent("AWS_ACCESS_KEY_ID is not set");
}

inline SourceResult parse_credentials_file(std::string_view text, std::string_view profile) {
  bool in_profile = false;
  bool seen = false;
  Credentials credentials;
  std::string legacy_token;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // An indented line continues the value before it (nested settings): not ours.
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) continue;
    line = filebuilder::detail::trim_spaces(line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      const std::size_t close = line.find(']');
      const std::string_view name = filebuilder::detail::trim_spaces(
          line.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
      in_profile = name == profile;
      seen = seen || in_profile;
      continue;
    }
    if (!in_profile) continue;
    const std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string key =
        aws::detail::lower(filebuilder::detail::trim_spaces(line.substr(0, equals)));
    const std::string value(filebuilder::detail::trim_spaces(line.substr(equals + 1)));
    if (key == "aws_access_key_id") credentials.access_key_id = value;
    if (key == "aws_secret_access_key") credentials.secret_access_key = value;
    if (key == "aws_session_token") credentials.session_token = value;
    if (key == "aws_security_token") legacy_token = value;
  }
  if (credentials.session_token.empty()) credentials.session_token = legacy_token;
  const std::string name = "profile '" + std::string(profile) + "'";
  if (!seen) return absent("no " + name);
  const bool id = !credentials.access_key_id.empty();
  const bool secret = !credentials.secret_access_key.empty();
  if (id && secret) return found(std::move(credentials));
  if (id || secret)
    return failed(ErrorCode::missing_credentials,
                  name + " has " + (id ? "aws_access_key_id" : "aws_secret_access_key") +
                      " without " + (id ? "aws_secret_access_key" : "aws_access_key_id"));
  return absent(name + " has no aws_access_key_id");
}

inline SourceResult from_shared_file(const Getenv& getenv) {
  std::string path = env(getenv, "AWS_SHARED_CREDENTIALS_FILE");
  if (path.empty()) {
    const std::string home = env(getenv, "HOME");
    if (home.empty()) return absent("HOME is not set");
    path = home + "/.aws/credentials";
  } else if (path.starts_with("~/")) {
    path = env(getenv, "HOME") + path.substr(1);
  }
  const std::string profile_env = env(getenv, "AWS_PROFILE");
  const std::string profile = profile_env.empty() ? "default" : profile_env;
  const std::optional<std::string> text = read_small_file(path, 1 << 20);
  if (!text) return absent(path + " cannot be read");
  SourceResult result = parse_credentials_file(*text, profile);
  result.credentials.source = "shared credentials file " + path + " (profile " + profile + ")";
  // An AWS_PROFILE that names nothing is a mistake to report, not to step over.
  if (result.kind == SourceResult::absent && !profile_env.empty())
    return failed(ErrorCode::missing_credentials, path + ": " + result.note + " (AWS_PROFILE)");
  if (result.kind != SourceResult::found) result.note = path + ": " + result.note;
  return result;
}

/// Whether http:// to this host may carry a container authorization token:
/// loopback and the ECS / EKS agent addresses only (as the AWS SDKs allow).
[[nodiscard]] inline bool container_host_allowed(std::string_view url) {
  Url parsed;
  if (parse_url(url).get(parsed) != ErrorCode::ok) return false;
  if (filebuilder::detail::iequals(parsed.scheme, "https")) return true;
  const std::string host = aws::detail::lower(parsed.host);
  if (host == "localhost" || host == "::1" || host == "169.254.170.2" || host == "169.254.170.23" ||
      host == "fd00:ec2::23")
    return true;
  const auto ipv4 = filebuilder::detail::parse_ipv4(host);
  return ipv4 && (*ipv4 >> 24) == 127;
}

[[nodiscard]] inline std::string describe(const HttpReply& reply) {
  if (reply.code != CURLE_OK) return reply.error;
  return "HTTP " + std::to_string(reply.status);
}

inline SourceResult from_container(const Getenv& getenv, const CredentialsOptions& options) {
  const std::string relative = env(getenv, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const std::string full = env(getenv, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  std::string url;
  if (!relative.empty()) {
    url = options.container_endpoint + (relative.starts_with('/') ? "" : "/") + relative;
  } else if (!full.empty()) {
    url = full;
    if (!container_host_allowed(url))
      return failed(ErrorCode::invalid_config,
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a loopback or container "
                    "agent address: " +
                        redact_url(url));
  } else {
    return absent("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and _FULL_URI are not set");
  }
  std::vector<std::string> headers;
  const std::string token_file = env(getenv, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  std::string token = env(getenv, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
  if (!token_file.empty()) {
    const std::optional<std::string> text = read_small_file(token_file, 16 * 1024);
    if (!text)
      return failed(ErrorCode::credentials_unavailable,
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE " + token_file + " cannot be read");
    token = *text;
    const std::size_t first = token.find_first_not_of(" \t\r\n");
    const std::size_t last = token.find_last_not_of(" \t\r\n");
    token = first == std::string::npos ? std::string() : token.substr(first, last - first + 1);
  }
  if (token.find_first_of("\r\n") != std::string::npos)
    return failed(ErrorCode::invalid_config, "the container authorization token has a line break");
  if (!token.empty()) headers.push_back("Authorization: " + token);
  const HttpReply reply = http_request("GET", url, headers, options);
  const std::string where = "container endpoint " + redact_url(url);
  if (reply.code != CURLE_OK || reply.status != 200)
    return failed(ErrorCode::credentials_unavailable, where + ": " + describe(reply));
  Credentials credentials;
  std::string why;
  if (parse_credentials_json(reply.body, credentials, why) != ErrorCode::ok)
    return failed(ErrorCode::credentials_unavailable, where + ": " + why);
  credentials.source = where;
  return found(std::move(credentials));
}

inline SourceResult from_instance_metadata(const Getenv& getenv,
                                           const CredentialsOptions& options) {
  const std::string disabled = aws::detail::lower(env(getenv, "AWS_EC2_METADATA_DISABLED"));
  if (disabled == "true") return absent("AWS_EC2_METADATA_DISABLED is true");
  std::string base = env(getenv, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (base.empty()) base = options.imds_endpoint;
  while (base.ends_with('/')) base.pop_back();
  const std::string where = "EC2 instance metadata " + base;

  const HttpReply token = http_request(
      "PUT", base + "/latest/api/token",
      {"X-aws-ec2-metadata-token-ttl-seconds: " + std::to_string(options.imds_token_ttl.count())},
      options);
  // Not on EC2 (nothing answers), or IMDS turned off: this source has nothing.
  if (token.code != CURLE_OK) return absent(where + ": " + describe(token));
  if (token.status != 200 || token.body.empty() ||
      token.body.find_first_of("\r\n") != std::string::npos)
    return absent(where + ": token " + describe(token));
  const std::vector<std::string> headers = {"X-aws-ec2-metadata-token: " + token.body};

  const std::string roles_url = base + "/latest/meta-data/iam/security-credentials/";
  const HttpReply roles = http_request("GET", roles_url, headers, options);
  if (roles.code == CURLE_OK && roles.status == 404)
    return absent(where + ": no IAM role attached to the instance");
  if (roles.code != CURLE_OK || roles.status != 200)
    return failed(ErrorCode::credentials_unavailable, where + ": role " + describe(roles));
  std::string_view role = roles.body;
  role = role.substr(0, role.find('\n'));
  role = filebuilder::detail::trim_spaces(role);
  if (!role.empty() && role.back() == '\r') role.remove_suffix(1);
  if (role.empty()) return absent(where + ": no IAM role attached to the instance");
  for (char c : role) {
    const auto u = static_cast<unsigned char>(c);
    if (!(is_unreserved(u) || c == '+' || c == '=' || c == ',' || c == '@'))
      return failed(ErrorCode::credentials_unavailable, where + ": unexpected role name");
  }
  const HttpReply keys = http_request("GET", roles_url + std::string(role), headers, options);
  if (keys.code != CURLE_OK || keys.status != 200)
    return failed(ErrorCode::credentials_unavailable,
                  where + ": role " + std::string(role) + ": " + describe(keys));
  Credentials credentials;
  std::string why;
  if (parse_credentials_json(keys.body, credentials, why) != ErrorCode::ok)
    return failed(ErrorCode::credentials_unavailable, where + ": " + why);
  credentials.source = where + " (role " + std::string(role) + ")";
  return found(std::move(credentials));
}

inline std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)
  const auto digits = [&](std::size_t at, std::size_t count) -> std::optional<int> {
    if (at + count > text.size()) return std::nullopt;
    int value = 0;
    for (std::size_t i = at; i < at + count; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':')
    return std::nullopt;
  const auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2), hour = digits(11, 2),
             minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || *month < 1 || *month > 12 ||
      *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60)
    return std::nullopt;
  std::size_t at = 19;
  if (at < text.size() && text[at] == '.') {
    ++at;
    const std::size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    if (at == start) return std::nullopt;
  }
  long offset = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const auto oh = digits(at + 1, 2), om = digits(at + 4, 2);
    if (!oh || !om || at + 3 >= text.size() || text[at + 3] != ':') return std::nullopt;
    offset = (text[at] == '+' ? 1 : -1) * (*oh * 3600L + *om * 60L);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != text.size()) return std::nullopt;
  std::tm utc{};
  utc.tm_year = *year - 1900;
  utc.tm_mon = *month - 1;
  utc.tm_mday = *day;
  utc.tm_hour = *hour;
  utc.tm_min = *minute;
  utc.tm_sec = *second;
  const std::time_t seconds = timegm(&utc);
  return std::chrono::system_clock::from_time_t(seconds - offset);
}

inline ErrorCode parse_credentials_json(std::string_view json, Credentials& out,
                                        std::string& message) {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  if (parser.parse(json.data(), json.size()).get_object().get(object) != simdjson::SUCCESS) {
    message = "the reply is not a JSON object";
    return ErrorCode::credentials_unavailable;
  }
  const auto text = [&](const char* key, std::string& field) {
    std::string_view value;
    if (object[key].get_string().get(value) == simdjson::SUCCESS) field = std::string(value);
  };
  std::string code, expiration;
  Credentials credentials;
  text("Code", code);
  text("AccessKeyId", credentials.access_key_id);
  text("SecretAccessKey", credentials.secret_access_key);
  text("Token", credentials.session_token);
  text("Expiration", expiration);
  if (!code.empty() && code != "Success") {
    message = "the reply's Code is " + code;
    return ErrorCode::credentials_unavailable;
  }
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    message = "the reply has no AccessKeyId or SecretAccessKey";
    return ErrorCode::credentials_unavailable;
  }
  if (!expiration.empty()) {
    credentials.expiration = parse_iso8601(expiration);
    if (!credentials.expiration) {
      message = "the reply's Expiration is not a time: " + expiration;
      return ErrorCode::credentials_unavailable;
    }
  }
  out = std::move(credentials);
  return ErrorCode::ok;
}

}  // namespace detail

inline Result<Credentials> resolve_credentials(const CredentialsOptions& options,
                                               std::string& message) {
  const detail::Getenv getenv =
      options.getenv
          ? options.getenv
          : detail::Getenv([](const char* name) -> const char* { return std::getenv(name); });
  std::string tried;
  const auto try_source = [&](const char* name, const detail::SourceResult& result) {
    if (!tried.empty()) tried += "; ";
    tried += name;
    tried += ": ";
    tried += result.note;
  };
  for (int source = 0; source < 4; ++source) {
    detail::SourceResult result;
    const char* name = "";
    switch (source) {
      case 0:
        name = "environment";
        result = detail::from_environment(getenv);
        break;
      case 1:
        name = "shared credentials file";
        result = detail::from_shared_file(getenv);
        break;
      case 2:
        name = "container";
        result = detail::from_container(getenv, options);
        break;
      default:
        name = "instance metadata";
        result = detail::from_instance_metadata(getenv, options);
        break;
    }
    if (result.kind == detail::SourceResult::found) return std::move(result.credentials);
    try_source(name, result);
    if (result.kind == detail::SourceResult::failed) {
      message = "AWS credentials from the " + std::string(name) + ": " + result.note + " (tried " +
                tried + ")";
      return result.error;
    }
  }
  message = "no AWS credentials found (tried " + tried + ")";
  return ErrorCode::missing_credentials;
}

inline CredentialsProvider::CredentialsProvider(CredentialsOptions options)
    : CredentialsProvider(CredentialsSource{}, std::move(options)) {}

inline CredentialsProvider::CredentialsProvider(CredentialsSource source,
                                                CredentialsOptions options)
    : source_(std::move(source)), options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
  if (!source_) {
    source_ = [options = options_](std::string& message) {
      return resolve_credentials(options, message);
    };
  }
}

inline Result<Credentials> CredentialsProvider::get(std::string& message) {
  std::lock_guard lock(mutex_);
  const auto now = options_.clock();
  const auto fresh = [&](const Credentials& credentials) {
    return !credentials.expiration || now < *credentials.expiration - options_.refresh_before;
  };
  const bool valid = cached_ && (!cached_->expiration || now < *cached_->expiration);
  if (valid && (fresh(*cached_) || now < next_attempt_)) return *cached_;
  Credentials fetched;
  const ErrorCode error = source_(message).get(fetched);
  if (error == ErrorCode::ok) {
    // Credentials that expire within refresh_before are used, but not fetched
    // again on every call.
    if (!fresh(fetched)) next_attempt_ = now + options_.retry_after;
    cached_ = std::move(fetched);
    return *cached_;
  }
  if (valid) {  // an early refresh failed: the ones we have still work
    next_attempt_ = now + options_.retry_after;
    return *cached_;
  }
  cached_.reset();
  return error;
}

}  // namespace filebuilder::aws
