// filebuilder-lambda: a client of the AWS Lambda Runtime API (2018-06-01),
// over one libcurl easy handle, so the connection to the API is kept open
// from one invocation to the next.
//
//   GET  /2018-06-01/runtime/invocation/next           the next event (blocks)
//   POST /2018-06-01/runtime/invocation/{id}/response  its reply
//   POST /2018-06-01/runtime/invocation/{id}/error     or why it failed
//   POST /2018-06-01/runtime/init/error                the runtime cannot start
//
// Errors are posted as {"errorMessage":"...","errorType":"..."} with the
// header Lambda-Runtime-Function-Error-Type: <errorType>.
#pragma once

#include <curl/curl.h>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/upload/curl.hpp"

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
};

/// {"errorMessage":"<message>","errorType":"<type>"}
[[nodiscard]] inline std::string error_json(std::string_view type, std::string_view message) {
  std::string json = "{\"errorMessage\":";
  filebuilder::detail::append_json_string(json, message);
  json += ",\"errorType\":";
  filebuilder::detail::append_json_string(json, type);
  json += '}';
  return json;
}

class RuntimeApi {
 public:
  /// `address` is AWS_LAMBDA_RUNTIME_API ("127.0.0.1:9001"). Throws
  /// std::runtime_error when libcurl cannot be initialised.
  explicit RuntimeApi(std::string_view address)
      : base_("http://" + std::string(address) + "/2018-06-01/runtime/") {
    if (filebuilder::detail::curl_global() != CURLE_OK || (easy_ = curl_easy_init()) == nullptr)
      throw std::runtime_error("libcurl cannot be initialised");
  }
  ~RuntimeApi() {
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
  }
  RuntimeApi(const RuntimeApi&) = delete;
  RuntimeApi& operator=(const RuntimeApi&) = delete;

  /// Waits for the next invocation (no timeout: Lambda freezes the process
  /// meanwhile). False, with the reason in `error`, when the API cannot be
  /// reached, answers other than 200, or names no request id: the runtime
  /// should then exit.
  bool next(Invocation& out, std::string& error) {
    out.request_id.clear();
    out.trace_id.clear();
    out.deadline_ms = 0;
    out.event.clear();
    Exchange exchange{&out, &out.event};
    long status = 0;
    if (!perform(base_ + "invocation/next", nullptr, {}, exchange, status, error)) return false;
    if (status != 200) {
      error = "GET invocation/next answered HTTP " + std::to_string(status) + ": " +
              out.event.substr(0, 200);
      return false;
    }
    if (out.request_id.empty()) {
      error = "GET invocation/next answered without Lambda-Runtime-Aws-Request-Id";
      return false;
    }
    if (out.event.capacity() < out.event.size() + simdjson::SIMDJSON_PADDING)
      out.event.reserve(out.event.size() + simdjson::SIMDJSON_PADDING);
    return true;
  }

  /// Posts the reply of invocation `request_id`.
  bool respond(std::string_view request_id, std::string_view body, std::string& error) {
    return post("invocation/" + escape(request_id) + "/response", body, nullptr, error);
  }

  /// Posts why invocation `request_id` failed.
  bool fail_invocation(std::string_view request_id, std::string_view type, std::string_view message,
                       std::string& error) {
    return post("invocation/" + escape(request_id) + "/error", error_json(type, message), &type,
                error);
  }

  /// Posts why the runtime cannot start; it should exit then.
  bool fail_init(std::string_view type, std::string_view message, std::string& error) {
    return post("init/error", error_json(type, message), &type, error);
  }

 private:
  // What one request fills in: the invocation's headers (GET next only) and the body.
  struct Exchange {
    Invocation* invocation = nullptr;
    std::string* body = nullptr;
  };

  bool post(const std::string& path, std::string_view body, const std::string_view* error_type,
            std::string& error) {
    std::string answer;
    Exchange exchange{nullptr, &answer};
    std::string type_header;
    if (error_type != nullptr)
      type_header = "Lambda-Runtime-Function-Error-Type: " + std::string(*error_type);
    long status = 0;
    if (!perform(base_ + path, &body, type_header, exchange, status, error)) return false;
    if (status < 200 || status > 299) {
      error = "POST " + path + " answered HTTP " + std::to_string(status) + ": " +
              answer.substr(0, 200);
      return false;
    }
    return true;
  }

  bool perform(const std::string& url, const std::string_view* post_body,
               const std::string& extra_header, Exchange& exchange, long& status,
               std::string& error) {
    // The handle keeps its connection and caches across a reset.
    curl_easy_reset(easy_);
    curl_slist* headers = nullptr;
    bool ok = true;
    const auto set = [&ok](CURLcode code) { ok = ok && code == CURLE_OK; };
    const auto add_header = [&headers, &ok](const char* header) {
      curl_slist* more = curl_slist_append(headers, header);
      if (more == nullptr)
        ok = false;
      else
        headers = more;
    };
    char error_buffer[CURL_ERROR_SIZE] = {};
    set(curl_easy_setopt(easy_, CURLOPT_URL, url.c_str()));
    set(curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_buffer));
    set(curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L));
    set(curl_easy_setopt(easy_, CURLOPT_NOPROXY, "*"));  // the API is local: never via a proxy
    set(curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, 10'000L));
    set(curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L));
    set(curl_easy_setopt(easy_, CURLOPT_USERAGENT, "filebuilder-lambda"));
    set(curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &RuntimeApi::on_body));
    set(curl_easy_setopt(easy_, CURLOPT_WRITEDATA, static_cast<void*>(&exchange)));
    set(curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &RuntimeApi::on_header));
    set(curl_easy_setopt(easy_, CURLOPT_HEADERDATA, static_cast<void*>(&exchange)));
    if (post_body != nullptr) {
      set(curl_easy_setopt(easy_, CURLOPT_POST, 1L));
      set(curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, post_body->data()));
      set(curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE,
                           static_cast<curl_off_t>(post_body->size())));
      add_header("Content-Type: application/json");
      add_header("Expect:");
      if (!extra_header.empty()) add_header(extra_header.c_str());
      set(curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers));
    }
    CURLcode code = CURLE_FAILED_INIT;
    if (ok) code = curl_easy_perform(easy_);
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
    curl_slist_free_all(headers);
    if (!ok) {
      error = "libcurl refused an option";
      return false;
    }
    if (code != CURLE_OK) {
      error = std::string(curl_easy_strerror(code));
      if (error_buffer[0] != '\0') error += std::string(": ") + error_buffer;
      error += " (" + url + ")";
      return false;
    }
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    return true;
  }

  std::string escape(std::string_view text) {
    // Request ids are UUIDs; escaping keeps any other text inside its path segment.
    char* escaped = curl_easy_escape(easy_, text.data(), static_cast<int>(text.size()));
    if (escaped == nullptr) return std::string(text);
    std::string out(escaped);
    curl_free(escaped);
    return out;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto& exchange = *static_cast<Exchange*>(user);
    exchange.body->append(data, size * count);
    return size * count;
  }

  static bool name_is(std::string_view line, std::string_view name) {
    if (line.size() <= name.size() || line[name.size()] != ':') return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
      const auto lower = [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
      };
      if (lower(line[i]) != lower(name[i])) return false;
    }
    return true;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto& exchange = *static_cast<Exchange*>(user);
    const std::string_view line(data, size * count);
    Invocation* invocation = exchange.invocation;
    if (line.starts_with("HTTP/")) {  // a new response (after a 100 Continue, say)
      exchange.body->clear();
      if (invocation != nullptr) {
        invocation->request_id.clear();
        invocation->trace_id.clear();
        invocation->deadline_ms = 0;
      }
      return line.size();
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return line.size();
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ' ||
                              value.back() == '\t'))
      value.remove_suffix(1);
    if (name_is(line, "Content-Length")) {
      // Room for the body and simdjson's padding in one allocation.
      const unsigned long long length = std::strtoull(std::string(value).c_str(), nullptr, 10);
      if (length < (1ULL << 31)) exchange.body->reserve(length + simdjson::SIMDJSON_PADDING);
    }
    if (invocation == nullptr) return line.size();
    if (name_is(line, "Lambda-Runtime-Aws-Request-Id")) {
      invocation->request_id.assign(value);
    } else if (name_is(line, "Lambda-Runtime-Trace-Id")) {
      invocation->trace_id.assign(value);
    } else if (name_is(line, "Lambda-Runtime-Deadline-Ms")) {
      invocation->deadline_ms = std::strtoll(std::string(value).c_str(), nullptr, 10);
    }
    return line.size();
  }

  std::string base_;  // http://<address>/2018-06-01/runtime/
  CURL* easy_ = nullptr;
};

}  // namespace filebuilder::lambda
