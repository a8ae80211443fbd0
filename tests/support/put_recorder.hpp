// Test support: a PUT target on 127.0.0.1 (cpp-httplib) that answers each PUT
// after a delay, keeps every body and counts the PUTs per path (optionally
// refusing the first few of each path, to see them retried). The slow
// upload target of the daemon's shutdown tests, where nginx cannot be made
// slow; and a way to scrape the daemon's /metrics.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace filebuilder::test {

class PutRecorder {
 public:
  /// keep_alive: how long an idle connection stays open (cpp-httplib closes it then).
  explicit PutRecorder(std::chrono::milliseconds delay,
                       std::chrono::seconds keep_alive = std::chrono::seconds(5))
      : delay_(delay) {
    server_.set_keep_alive_timeout(static_cast<time_t>(keep_alive.count()));
    server_.Put(".*", [this](const httplib::Request& request, httplib::Response& response) {
      started_.fetch_add(1);
      std::this_thread::sleep_for(delay_);
      {
        const std::lock_guard lock(mutex_);
        if (++refusals_seen_[request.path] <= refuse_first_) {
          response.status = refusal_status_;
          return;
        }
        ++puts_[request.path];
        bodies_[request.path] = request.body;
      }
      response.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("PutRecorder: cannot bind 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 5000 && !server_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~PutRecorder() {
    server_.stop();
    thread_.join();
  }
  PutRecorder(const PutRecorder&) = delete;
  PutRecorder& operator=(const PutRecorder&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  /// The first `count` PUTs to each path are answered `status` and not kept.
  void refuse_first(int count, int status) {
    const std::lock_guard lock(mutex_);
    refuse_first_ = count;
    refusal_status_ = status;
  }
  /// PUTs that reached the handler, finished or not.
  [[nodiscard]] int started() const noexcept { return started_.load(); }
  [[nodiscard]] int puts(const std::string& path) const {
    const std::lock_guard lock(mutex_);
    const auto it = puts_.find(path);
    return it == puts_.end() ? 0 : it->second;
  }
  [[nodiscard]] std::optional<std::string> body(const std::string& path) const {
    const std::lock_guard lock(mutex_);
    const auto it = bodies_.find(path);
    if (it == bodies_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::chrono::milliseconds delay_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> started_{0};
  mutable std::mutex mutex_;
  std::map<std::string, int> puts_;
  std::map<std::string, std::string> bodies_;
  int refuse_first_ = 0;
  int refusal_status_ = 503;
  std::map<std::string, int> refusals_seen_;  // PUTs per path, refused or not
};

/// GET http://127.0.0.1:PORT/PATH: the status and the body (status 0: no answer).
inline std::pair<int, std::string> http_get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  const httplib::Result result = client.Get(path.c_str());
  if (!result) return {0, {}};
  return {result->status, result->body};
}

}  // namespace filebuilder::test
