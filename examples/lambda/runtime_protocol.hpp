// filebuilder-lambda: what the two Runtime API clients share (runtime_api.hpp
// over libcurl, runtime_api_beast.hpp over Boost.Beast): the invocation, the
// paths and header names of the API (2018-06-01), how the reply to
// invocation/next is read, and the errors the clients report. One place, so
// that the two binaries cannot drift apart; nothing here needs an HTTP library.
//
//   GET  /2018-06-01/runtime/invocation/next           the next event (blocks)
//   POST /2018-06-01/runtime/invocation/{id}/response  its reply
//   POST /2018-06-01/runtime/invocation/{id}/error     or why it failed
//   POST /2018-06-01/runtime/init/error                the runtime cannot start
//
// Errors are posted as {"errorMessage":"...","errorType":"..."} with the
// header Lambda-Runtime-Function-Error-Type: <errorType>.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "filebuilder/detail/json_escape.hpp"

namespace filebuilder::lambda {

/// One invocation, as GET .../invocation/next returned it. Reused from one
/// invocation to the next, buffers included.
struct Invocation {
  std::string request_id;        // Lambda-Runtime-Aws-Request-Id
  std::string trace_id;          // Lambda-Runtime-Trace-Id, empty when absent
  std::int64_t deadline_ms = 0;  // Lambda-Runtime-Deadline-Ms (Unix time, ms); 0 when absent
  std::string event;             // the body; its capacity leaves simdjson's padding after it

  /// The event for simdjson, without a copy.
  [[nodiscard]] simdjson::padded_string_view padded_event() const noexcept {
    return simdjson::padded_string_view(event.data(), event.size(), event.capacity());
  }

  /// Forgets the previous invocation, keeping the buffers.
  void clear() noexcept {
    request_id.clear();
    trace_id.clear();
    deadline_ms = 0;
    event.clear();
  }
};

namespace runtime {

inline constexpr std::string_view base_path = "/2018-06-01/runtime/";
inline constexpr std::string_view next_path = "invocation/next";  // after base_path
inline constexpr std::string_view init_error_path = "init/error";
inline constexpr std::string_view user_agent = "filebuilder-lambda";
inline constexpr std::string_view request_id_header = "Lambda-Runtime-Aws-Request-Id";
inline constexpr std::string_view trace_id_header = "Lambda-Runtime-Trace-Id";
inline constexpr std::string_view deadline_header = "Lambda-Runtime-Deadline-Ms";
inline constexpr std::string_view error_type_header = "Lambda-Runtime-Function-Error-Type";
// The connection to the API is local and made once: a slow connect means the
// API is not there.
inline constexpr long connect_timeout_ms = 10'000;

/// Request ids are UUIDs; percent-encoding every byte but RFC 3986's
/// unreserved ones (as curl_easy_escape does) keeps any other text inside its
/// path segment.
[[nodiscard]] inline std::string escape_segment(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '.' || u == '_' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0x0f];
    }
  }
  return out;
}

/// The paths under base_path the runtime posts to.
[[nodiscard]] inline std::string response_path(std::string_view request_id) {
  return "invocation/" + escape_segment(request_id) + "/response";
}
[[nodiscard]] inline std::string error_path(std::string_view request_id) {
  return "invocation/" + escape_segment(request_id) + "/error";
}

/// {"errorMessage":"<message>","errorType":"<type>"}
[[nodiscard]] inline std::string error_json(std::string_view type, std::string_view message) {
  std::string json = "{\"errorMessage\":";
  filebuilder::detail::append_json_string(json, message);
  json += ",\"errorType\":";
  filebuilder::detail::append_json_string(json, type);
  json += '}';
  return json;
}

/// Header names compare without regard to case (RFC 9110).
[[nodiscard]] inline bool same_name(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

/// Takes one header of the reply to invocation/next into `invocation`; other
/// headers are ignored. `value` is trimmed of surrounding blanks.
inline void read_next_header(Invocation& invocation, std::string_view name,
                             std::string_view value) {
  if (same_name(name, request_id_header)) {
    invocation.request_id.assign(value);
  } else if (same_name(name, trace_id_header)) {
    invocation.trace_id.assign(value);
  } else if (same_name(name, deadline_header)) {
    invocation.deadline_ms = std::strtoll(std::string(value).c_str(), nullptr, 10);
  }
}

/// Reserves room for a body of `content_length` bytes and simdjson's padding
/// in one allocation, before the body is read.
inline void reserve_padded(std::string& body, std::uint64_t content_length) {
  if (content_length < (1ULL << 31))
    body.reserve(static_cast<std::size_t>(content_length) + simdjson::SIMDJSON_PADDING);
}

/// Checks the reply to invocation/next, whose headers and body are in
/// `invocation`: false, with the reason in `error`, unless it is 200 and
/// names a request id (the runtime should then exit). Leaves simdjson's
/// padding after the event.
[[nodiscard]] inline bool check_next_reply(long status, Invocation& invocation,
                                           std::string& error) {
  if (status != 200) {
    error = "GET invocation/next answered HTTP " + std::to_string(status) + ": " +
            invocation.event.substr(0, 200);
    return false;
  }
  if (invocation.request_id.empty()) {
    error = "GET invocation/next answered without Lambda-Runtime-Aws-Request-Id";
    return false;
  }
  if (invocation.event.capacity() < invocation.event.size() + simdjson::SIMDJSON_PADDING)
    invocation.event.reserve(invocation.event.size() + simdjson::SIMDJSON_PADDING);
  return true;
}

/// Checks the reply to a POST to `path` (under base_path): false, with the
/// reason in `error`, unless it is 2xx.
[[nodiscard]] inline bool check_post_reply(std::string_view path, long status,
                                           std::string_view answer, std::string& error) {
  if (status >= 200 && status <= 299) return true;
  error = "POST " + std::string(path) + " answered HTTP " + std::to_string(status) + ": " +
          std::string(answer.substr(0, 200));
  return false;
}

}  // namespace runtime

/// The posts every Runtime API client makes, written once over the client's
/// own transport: `Client` (CRTP) provides
///   bool post(const std::string& path, std::string_view body,
///             const std::string_view* error_type, std::string& error)
/// and befriends this base.
template <typename Client>
class RuntimePosts {
 public:
  /// Posts the reply of invocation `request_id`.
  bool respond(std::string_view request_id, std::string_view body, std::string& error) {
    return client().post(runtime::response_path(request_id), body, nullptr, error);
  }

  /// Posts why invocation `request_id` failed.
  bool fail_invocation(std::string_view request_id, std::string_view type, std::string_view message,
                       std::string& error) {
    return client().post(runtime::error_path(request_id), runtime::error_json(type, message), &type,
                         error);
  }

  /// Posts why the runtime cannot start; it should exit then.
  bool fail_init(std::string_view type, std::string_view message, std::string& error) {
    return client().post(std::string(runtime::init_error_path), runtime::error_json(type, message),
                         &type, error);
  }

 private:
  Client& client() noexcept { return static_cast<Client&>(*this); }
};

// The names main.cpp and the tests have always used.
using runtime::error_json;

}  // namespace filebuilder::lambda
