// filebuilder-lambda: a client of the AWS Lambda Runtime API (2018-06-01),
// over one libcurl easy handle, so the connection to the API is kept open
// from one invocation to the next. The paths, headers, replies and errors are
// runtime_protocol.hpp's, shared with the Boost.Beast client
// (runtime_api_beast.hpp, the binary without libcurl).
#pragma once

#include <curl/curl.h>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "filebuilder/upload/curl.hpp"
#include "runtime_protocol.hpp"

namespace filebuilder::lambda {

/// The posts (respond, fail_invocation, fail_init) are RuntimePosts'.
class RuntimeApi : public RuntimePosts<RuntimeApi> {
 public:
  /// `address` is AWS_LAMBDA_RUNTIME_API ("127.0.0.1:9001"). Throws
  /// std::runtime_error when libcurl cannot be initialised.
  explicit RuntimeApi(std::string_view address)
      : base_("http://" + std::string(address) + std::string(runtime::base_path)) {
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
    out.clear();
    Exchange exchange{&out, &out.event};
    long status = 0;
    if (!perform(base_ + std::string(runtime::next_path), nullptr, {}, exchange, status, error))
      return false;
    return runtime::check_next_reply(status, out, error);
  }

 private:
  friend class RuntimePosts<RuntimeApi>;  // respond, fail_invocation, fail_init: over post()

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
      type_header = std::string(runtime::error_type_header) + ": " + std::string(*error_type);
    long status = 0;
    if (!perform(base_ + path, &body, type_header, exchange, status, error)) return false;
    return runtime::check_post_reply(path, status, answer, error);
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
    set(curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS, runtime::connect_timeout_ms));
    set(curl_easy_setopt(easy_, CURLOPT_TCP_KEEPALIVE, 1L));
    set(curl_easy_setopt(easy_, CURLOPT_USERAGENT, runtime::user_agent.data()));
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

  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto& exchange = *static_cast<Exchange*>(user);
    exchange.body->append(data, size * count);
    return size * count;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto& exchange = *static_cast<Exchange*>(user);
    const std::string_view line(data, size * count);
    Invocation* invocation = exchange.invocation;
    if (line.starts_with("HTTP/")) {  // a new response (after a 100 Continue, say)
      exchange.body->clear();
      if (invocation != nullptr) invocation->clear();
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
    const std::string_view name = line.substr(0, colon);
    if (runtime::same_name(name, "Content-Length"))
      runtime::reserve_padded(*exchange.body,
                              std::strtoull(std::string(value).c_str(), nullptr, 10));
    if (invocation != nullptr) runtime::read_next_header(*invocation, name, value);
    return line.size();
  }

  std::string base_;  // http://<address>/2018-06-01/runtime/
  CURL* easy_ = nullptr;
};

}  // namespace filebuilder::lambda
