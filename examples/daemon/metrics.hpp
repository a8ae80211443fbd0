// filebuilderd --metrics HOST:PORT: /metrics in the Prometheus text format
// and /healthz, served by cpp-httplib on threads of its own.
//
// The consumer runs on the main thread; the server reads the Reassembler's
// stats (atomics, see stats.hpp) and the shards' millisBehindLatest (kept
// here under a mutex) and never touches anything else.
#pragma once

#include <httplib.h>

#include <atomic>
#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "filebuilder/stats.hpp"

namespace filebuilder::daemon {

/// HOST:PORT as --metrics takes it: "127.0.0.1:9464", "0.0.0.0:9464",
/// "[::1]:9464", "localhost:9464". False when it is not that.
[[nodiscard]] inline bool parse_listen_address(std::string_view text, std::string& host,
                                               int& port) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  std::string_view name = text.substr(0, colon);
  if (name.front() == '[') {
    if (name.size() < 3 || name.back() != ']') return false;
    name = name.substr(1, name.size() - 2);
  } else if (name.find(':') != std::string_view::npos) {
    return false;  // an IPv6 address needs its brackets
  }
  const std::string_view digits = text.substr(colon + 1);
  int value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size() || value < 0 || value > 65535)
    return false;
  host.assign(name);
  port = value;
  return true;
}

class MetricsServer {
 public:
  explicit MetricsServer(const ReassemblerStats& stats) : stats_(stats) {}
  ~MetricsServer() { stop(); }
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// Binds HOST:PORT and serves from a thread. False with the reason in `error`.
  bool start(std::string_view listen, std::string& error) {
    std::string host;
    int port = 0;
    if (!parse_listen_address(listen, host, port)) {
      error = "--metrics wants HOST:PORT, not '" + std::string(listen) + "'";
      return false;
    }
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok\n", "text/plain; charset=utf-8");
    });
    if (!server_.bind_to_port(host.c_str(), port)) {
      error = "cannot listen on " + std::string(listen) + " for --metrics";
      return false;
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return true;
  }

  void stop() {
    if (!thread_.joinable()) return;
    server_.stop();
    thread_.join();
  }

  /// A shard's millisBehindLatest, as its last GetRecords (or processRecords) told.
  void set_millis_behind(std::string_view shard, std::int64_t millis) {
    const std::lock_guard lock(mutex_);
    const auto it = millis_behind_.find(shard);
    if (it != millis_behind_.end())
      it->second = millis;
    else
      millis_behind_.emplace(std::string(shard), millis);
  }

  /// The /metrics page.
  [[nodiscard]] std::string render() const {
    std::string out;
    write_prometheus(stats_, out);
    out.append(
        "# HELP filebuilder_millis_behind_latest How far the shard's last read was behind "
        "the tip of the stream, in milliseconds.\n"
        "# TYPE filebuilder_millis_behind_latest gauge\n");
    const std::lock_guard lock(mutex_);
    for (const auto& [shard, millis] : millis_behind_) {
      out.append("filebuilder_millis_behind_latest{shard=\"");
      append_label_value(out, shard);
      out.append("\"} ").append(std::to_string(millis)).append("\n");
    }
    return out;
  }

 private:
  // The text format's escapes in a label value: backslash, quote, newline.
  static void append_label_value(std::string& out, std::string_view value) {
    for (const char c : value) {
      if (c == '\\' || c == '"')
        out.append(1, '\\').append(1, c);
      else if (c == '\n')
        out.append("\\n");
      else
        out.append(1, c);
    }
  }

  const ReassemblerStats& stats_;
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t, std::less<>> millis_behind_;
  httplib::Server server_;
  std::thread thread_;
};

}  // namespace filebuilder::daemon
