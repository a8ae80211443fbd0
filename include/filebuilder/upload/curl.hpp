// filebuilder: CurlUploader, the libcurl Uploader (target filebuilder::curl).
//
// Every job of one upload() call runs concurrently on one libcurl multi
// handle, which lives as long as the uploader, so connections (and TLS
// sessions, DNS answers) are reused across batches. Each job is retried on its
// own: a retryable failure waits for its backoff (exponential, full jitter)
// without holding up the others.
//
// What is sent: PUT, Content-Length (never chunked), no Content-Type, no
// Expect, the body streamed from BodyReader::read_at. Redirects are never
// followed, proxies are ignored, TLS is verified (ca_file adds CAs to the
// system's), and the address actually connected is checked against the
// EndpointPolicy.
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/concepts.hpp"
#include "filebuilder/config.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/upload/ca.hpp"
#include "filebuilder/upload/options.hpp"
#include "filebuilder/upload/policy.hpp"
#include "filebuilder/upload/retry.hpp"

namespace filebuilder {

/// CurlUploader takes the options every uploader takes (upload/options.hpp).
using CurlUploaderOptions = UploaderOptions;

namespace detail {
class CurlState;
}

class CurlUploader {
 public:
  /// Throws std::runtime_error when libcurl cannot be initialised, or when
  /// options.ca_file cannot be read, holds no PEM certificate, or cannot be
  /// used (a libcurl without OpenSSL). A moved-from uploader may only be
  /// destroyed or assigned to.
  explicit CurlUploader(CurlUploaderOptions options = {});
  ~CurlUploader();
  CurlUploader(CurlUploader&&) noexcept;
  CurlUploader& operator=(CurlUploader&&) noexcept;
  CurlUploader(const CurlUploader&) = delete;
  CurlUploader& operator=(const CurlUploader&) = delete;

  /// Runs every job concurrently and returns when each has its final status.
  /// Each job's result fields are reset first. Not for concurrent calls.
  void upload(std::span<UploadJob> jobs);

  [[nodiscard]] const CurlUploaderOptions& options() const noexcept;

 private:
  std::unique_ptr<detail::CurlState> state_;
};

static_assert(Uploader<CurlUploader>);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

/// curl_global_init, once per process, thread-safe.
[[nodiscard]] inline CURLcode curl_global() noexcept {
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  return code;
}

/// What every libcurl request of the library sets: redirects are never
/// followed, only http and https are spoken, no proxy is used (whatever the
/// environment says), no signals. False when libcurl refused one of them.
[[nodiscard]] inline bool curl_set_safe_defaults(CURL* easy) noexcept {
  bool ok = curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
  ok = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK && ok;
#else
  ok = curl_easy_setopt(easy, CURLOPT_PROTOCOLS,
                        static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK &&
       ok;
#endif
  ok = curl_easy_setopt(easy, CURLOPT_PROXY, "") == CURLE_OK && ok;
  ok = curl_easy_setopt(easy, CURLOPT_NOPROXY, "*") == CURLE_OK && ok;
  ok = curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK && ok;
  return ok;
}

/// The state of one job across its attempts.
struct CurlTransfer {
  UploadJob* job = nullptr;
  std::string url;  // NUL-terminated copy for libcurl
  std::string host;
  std::uint16_t port = 0;
  bool host_allowed = false;
  CURL* easy = nullptr;
  std::uint64_t offset = 0;
  bool address_refused = false;
  std::string refused_address;
  bool read_failed = false;
  std::string read_message;
  std::chrono::steady_clock::time_point start_at{};
  char error_buffer[CURL_ERROR_SIZE] = {};
};

/// Checks that libcurl reads the same host from URL as parse_url did, so the
/// allow-list decision and the connection agree on what host is meant.
[[nodiscard]] inline bool curl_sees_same_host(const std::string& url, std::string_view host) {
  CURLU* handle = curl_url();
  if (handle == nullptr) return false;
  bool same = false;
  char* curl_host = nullptr;
  if (curl_url_set(handle, CURLUPART_URL, url.c_str(), CURLU_PATH_AS_IS) == CURLUE_OK &&
      curl_url_get(handle, CURLUPART_HOST, &curl_host, 0) == CURLUE_OK && curl_host != nullptr) {
    std::string_view seen = curl_host;
    if (seen.size() >= 2 && seen.front() == '[' && seen.back() == ']') {
      seen = seen.substr(1, seen.size() - 2);
    }
    if (same_host(seen, host)) {
      same = true;
    } else if (host.find(':') == std::string_view::npos && ends_in_number(host)) {
      // libcurl may write IPv4 literals in dotted-quad form ("127.1" -> "127.0.0.1").
      const auto ours = parse_ipv4(host);
      const auto theirs = parse_ipv4(seen);
      same = ours && theirs && *ours == *theirs;
    }
  }
  curl_free(curl_host);
  curl_url_cleanup(handle);
  return same;
}

class CurlState {
 public:
  explicit CurlState(CurlUploaderOptions options) : options_(std::move(options)), retry_(options_) {
    if (curl_global() != CURLE_OK) throw std::runtime_error("curl_global_init failed");
    if (!options_.ca_file.empty()) {
      extra_cas_ = read_pem_certificates(options_.ca_file);
      // CURLOPT_SSL_CTX_FUNCTION exists only for some TLS backends (OpenSSL's among them).
      CURL* probe = curl_easy_init();
      const bool usable =
          probe != nullptr &&
          curl_easy_setopt(probe, CURLOPT_SSL_CTX_FUNCTION, &CurlState::on_ssl_context) == CURLE_OK;
      if (probe != nullptr) curl_easy_cleanup(probe);
      if (!usable) throw std::runtime_error("ca_file: this libcurl cannot add CAs (not OpenSSL)");
    }
    multi_ = curl_multi_init();
    if (multi_ == nullptr) throw std::runtime_error("curl_multi_init failed");
    const long per_host = std::max(1L, options_.max_host_connections);
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, std::max(16L, per_host * 4));
    for (const char* header : {"Content-Type:", "Expect:"}) append_or_throw(headers_, header);
    for (const std::string& entry : options_.resolve) append_or_throw(resolve_, entry.c_str());
  }
  ~CurlState() { cleanup(); }
  CurlState(const CurlState&) = delete;
  CurlState& operator=(const CurlState&) = delete;

  [[nodiscard]] const CurlUploaderOptions& options() const noexcept { return options_; }

  void upload(std::span<UploadJob> jobs);

 private:
  using SteadyClock = std::chrono::steady_clock;

  void cleanup() noexcept {
    for (CURL* easy : idle_) curl_easy_cleanup(easy);
    idle_.clear();
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
    multi_ = nullptr;
    curl_slist_free_all(headers_);
    headers_ = nullptr;
    curl_slist_free_all(resolve_);
    resolve_ = nullptr;
  }

  void append_or_throw(curl_slist*& list, const char* text) {
    curl_slist* more = curl_slist_append(list, text);
    if (more == nullptr) {
      cleanup();
      throw std::runtime_error("curl_slist_append failed");
    }
    list = more;
  }

  [[nodiscard]] CURL* acquire_easy() {
    if (!idle_.empty()) {
      CURL* easy = idle_.back();
      idle_.pop_back();
      return easy;
    }
    return curl_easy_init();
  }

  void release_easy(CURL* easy) noexcept {
    curl_easy_reset(easy);
    try {
      idle_.push_back(easy);
    } catch (...) {
      curl_easy_cleanup(easy);
    }
  }

  [[nodiscard]] bool configure(CurlTransfer& t);
  [[nodiscard]] bool start(CurlTransfer& t);
  void finish_attempt(CurlTransfer& t, CURLcode code, std::vector<CurlTransfer*>& waiting);
  // Settles t's job after an attempt; a retry goes back to `waiting`.
  void settle(CurlTransfer& t, AttemptResult result, std::vector<CurlTransfer*>& waiting);

  static std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user);
  static int on_seek(void* user, curl_off_t offset, int origin);
  static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user);
  static curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* address);
  static CURLcode on_ssl_context(CURL* easy, void* ssl_context, void* user);

  CurlUploaderOptions options_;
  std::vector<X509Pointer> extra_cas_;  // options_.ca_file, read once
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  curl_slist* resolve_ = nullptr;  // options_.resolve
  std::vector<CURL*> idle_;
  RetryPolicy retry_;
};

inline std::size_t CurlState::on_read(char* buffer, std::size_t size, std::size_t count,
                                      void* user) {
  auto& t = *static_cast<CurlTransfer*>(user);
  const std::uint64_t total = t.job->body->size();
  const std::size_t capacity = size * count;
  if (t.offset >= total || capacity == 0) return 0;
  try {
    std::size_t copied = 0;
    const ErrorCode error =
        t.job->body->read_at(t.offset, std::span<char>(buffer, capacity)).get(copied);
    if (error != ErrorCode::ok) {
      t.read_failed = true;
      t.read_message = "body read failed: " + std::string(error_code_name(error));
      return CURL_READFUNC_ABORT;
    }
    if (copied == 0 || copied > capacity) {
      t.read_failed = true;
      t.read_message = "body read failed: short body";
      return CURL_READFUNC_ABORT;
    }
    t.offset += copied;
    return copied;
  } catch (...) {
    t.read_failed = true;
    t.read_message = "body read failed: exception";
    return CURL_READFUNC_ABORT;
  }
}

inline int CurlState::on_seek(void* user, curl_off_t offset, int origin) {
  auto& t = *static_cast<CurlTransfer*>(user);
  if (origin != SEEK_SET || offset < 0 ||
      static_cast<std::uint64_t>(offset) > t.job->body->size()) {
    return CURL_SEEKFUNC_FAIL;
  }
  t.offset = static_cast<std::uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

inline std::size_t CurlState::on_write(char* /*data*/, std::size_t size, std::size_t count,
                                       void* /*user*/) {
  return size * count;  // the response body is not needed: only its status
}

inline curl_socket_t CurlState::on_open_socket(void* user, curlsocktype purpose,
                                               curl_sockaddr* address) {
  auto& t = *static_cast<CurlTransfer*>(user);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  if (!t.host_allowed && !EndpointPolicy::is_public_address(&address->addr)) {
    t.address_refused = true;
    try {
      t.refused_address = address_text(&address->addr);
    } catch (...) {
      t.refused_address.clear();
    }
    return CURL_SOCKET_BAD;
  }
  int type = address->socktype;
#ifdef SOCK_CLOEXEC
  type |= SOCK_CLOEXEC;
#endif
  return socket(address->family, type, address->protocol);
}

// Adds the extra CAs to the trust store libcurl has just set up (its default
// bundle and directory, or ca_bundle), so they are trusted besides the system's.
// libcurl may share one store between connections: adding a certificate that
// is already there is harmless.
inline CURLcode CurlState::on_ssl_context(CURL* /*easy*/, void* ssl_context, void* user) {
  const auto& self = *static_cast<const CurlState*>(user);
  return add_certificates(SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(ssl_context)),
                          self.extra_cas_)
             ? CURLE_OK
             : CURLE_SSL_CERTPROBLEM;
}

inline bool CurlState::configure(CurlTransfer& t) {
  CURL* e = t.easy;
  const auto ms = [](std::chrono::milliseconds d) {
    return static_cast<long>(
        std::clamp<std::chrono::milliseconds::rep>(d.count(), 1, std::numeric_limits<long>::max()));
  };
  bool ok = true;
  const auto set = [&ok](CURLcode code) { ok = ok && code == CURLE_OK; };
  set(curl_easy_setopt(e, CURLOPT_URL, t.url.c_str()));
  set(curl_easy_setopt(e, CURLOPT_PRIVATE, static_cast<void*>(&t)));
  set(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer));
  ok = curl_set_safe_defaults(e) && ok;
  set(curl_easy_setopt(e, CURLOPT_UPLOAD, 1L));
  set(curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t.job->body->size())));
  set(curl_easy_setopt(e, CURLOPT_READFUNCTION, &CurlState::on_read));
  set(curl_easy_setopt(e, CURLOPT_READDATA, static_cast<void*>(&t)));
  set(curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &CurlState::on_seek));
  set(curl_easy_setopt(e, CURLOPT_SEEKDATA, static_cast<void*>(&t)));
  set(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &CurlState::on_write));
  set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_));
  set(curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L));  // a signed path is sent as signed
#if LIBCURL_VERSION_NUM >= 0x075500
  set(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
#else
  set(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS,
                       static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS)));
#endif
  set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L));
  set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L));
  set(curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2)));
  if (!options_.ca_bundle.empty()) {
    set(curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_bundle.c_str()));
  }
  if (!extra_cas_.empty()) {
    set(curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, &CurlState::on_ssl_context));
    set(curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, static_cast<void*>(this)));
  }
  set(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms(options_.connect_timeout)));
  set(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms(options_.total_timeout)));
  if (resolve_ != nullptr) set(curl_easy_setopt(e, CURLOPT_RESOLVE, resolve_));
  set(curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &CurlState::on_open_socket));
  set(curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, static_cast<void*>(&t)));
  set(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L));
  set(curl_easy_setopt(e, CURLOPT_USERAGENT, "filebuilder"));
  return ok;
}

inline bool CurlState::start(CurlTransfer& t) {
  t.offset = 0;
  t.address_refused = false;
  t.refused_address.clear();
  t.read_failed = false;
  t.read_message.clear();
  t.error_buffer[0] = '\0';
  t.easy = acquire_easy();
  if (t.easy == nullptr) return false;
  if (!configure(t) || curl_multi_add_handle(multi_, t.easy) != CURLM_OK) {
    release_easy(t.easy);
    t.easy = nullptr;
    return false;
  }
  ++t.job->attempts;
  return true;
}

inline void CurlState::settle(CurlTransfer& t, AttemptResult result,
                              std::vector<CurlTransfer*>& waiting) {
  std::chrono::milliseconds delay{0};
  if (retry_.settle(*t.job, std::move(result), delay)) return;
  t.start_at = SteadyClock::now() + delay;
  waiting.push_back(&t);
}

inline void CurlState::finish_attempt(CurlTransfer& t, CURLcode code,
                                      std::vector<CurlTransfer*>& waiting) {
  AttemptResult result;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &result.http_status);
  curl_off_t retry_after = 0;
  if (curl_easy_getinfo(t.easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
      retry_after > 0) {
    result.retry_after = std::chrono::seconds{
        std::min<curl_off_t>(retry_after, std::numeric_limits<std::int32_t>::max())};
  }
  result.exchanged = code == CURLE_OK;
  if (!result.exchanged) {
    result.transport_error = t.error_buffer[0] != '\0' ? std::string(t.error_buffer)
                                                       : std::string(curl_easy_strerror(code));
  }
  result.url_unusable = code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT;
  if (t.address_refused) result.refused_address = std::move(t.refused_address);
  if (t.read_failed) result.read_error = std::move(t.read_message);
  curl_multi_remove_handle(multi_, t.easy);
  release_easy(t.easy);
  t.easy = nullptr;
  settle(t, std::move(result), waiting);
}

inline void CurlState::upload(std::span<UploadJob> jobs) {
  const auto began = SteadyClock::now();
  std::vector<CurlTransfer> transfers(jobs.size());
  std::vector<CurlTransfer*> waiting;
  waiting.reserve(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    UploadJob& job = jobs[i];
    CurlTransfer& t = transfers[i];
    t.job = &job;
    const std::optional<Url> admitted = admit_job(job, options_.policy);
    if (!admitted) continue;
    const Url& url = *admitted;
    t.url.assign(job.url);
    t.host.assign(url.host);
    t.port = url.port;
    t.host_allowed = options_.policy.host_allowed(url.host, url.port);
    if (!curl_sees_same_host(t.url, t.host)) {
      settle_permanent(job, ErrorCode::endpoint_invalid, "libcurl reads another host from the URL");
      continue;
    }
    waiting.push_back(&t);
  }

  std::size_t active = 0;
  // Whatever happens, no easy handle stays in the multi handle after upload().
  struct Detach {
    CurlState& self;
    std::vector<CurlTransfer>& transfers;
    ~Detach() {
      for (CurlTransfer& t : transfers) {
        if (t.easy != nullptr) {
          curl_multi_remove_handle(self.multi_, t.easy);
          self.release_easy(t.easy);
          t.easy = nullptr;
        }
      }
    }
  } detach{*this, transfers};

  while (active > 0 || !waiting.empty()) {
    // Start every attempt that is due.
    const auto now = SteadyClock::now();
    auto next_start = SteadyClock::time_point::max();
    for (std::size_t i = 0; i < waiting.size();) {
      CurlTransfer& t = *waiting[i];
      if (t.start_at > now) {
        next_start = std::min(next_start, t.start_at);
        ++i;
        continue;
      }
      waiting[i] = waiting.back();
      waiting.pop_back();
      if (start(t)) {
        ++active;
      } else {
        ++t.job->attempts;
        AttemptResult result;
        result.transport_error = "could not set up the transfer";
        settle(t, std::move(result), waiting);
        if (waiting.empty() || waiting.back() != &t)
          t.job->elapsed = SteadyClock::now() - began;
        else if (t.start_at > now)
          next_start = std::min(next_start, t.start_at);
      }
    }

    int running = 0;
    curl_multi_perform(multi_, &running);
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
      if (message->msg != CURLMSG_DONE) continue;
      void* user = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &user);
      auto& t = *static_cast<CurlTransfer*>(user);
      const CURLcode code = message->data.result;
      --active;
      finish_attempt(t, code, waiting);
      if (!waiting.empty() && waiting.back() == &t)
        next_start = std::min(next_start, t.start_at);
      else
        t.job->elapsed = SteadyClock::now() - began;  // final
    }
    if (active == 0 && waiting.empty()) break;

    // Sleep until libcurl has something to do or the next retry is due.
    long wait_ms = 1000;
    if (next_start != SteadyClock::time_point::max()) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(next_start - SteadyClock::now());
      wait_ms = std::clamp<long>(static_cast<long>(left.count()), 0, wait_ms);
    }
    if (wait_ms > 0) curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait_ms), nullptr);
  }
}

}  // namespace detail

inline CurlUploader::CurlUploader(CurlUploaderOptions options)
    : state_(std::make_unique<detail::CurlState>(std::move(options))) {}
inline CurlUploader::~CurlUploader() = default;
inline CurlUploader::CurlUploader(CurlUploader&&) noexcept = default;
inline CurlUploader& CurlUploader::operator=(CurlUploader&&) noexcept = default;

inline void CurlUploader::upload(std::span<UploadJob> jobs) {
  state_->upload(jobs);
}

inline const CurlUploaderOptions& CurlUploader::options() const noexcept {
  return state_->options();
}

/// The uploader options a Config asks for (kept for the name; see uploader_options).
[[nodiscard]] inline CurlUploaderOptions curl_uploader_options(const Config& config,
                                                               const EndpointPolicy& policy) {
  return uploader_options(config, policy);
}

}  // namespace filebuilder
