// Test support: a fake AWS Lambda Runtime API on 127.0.0.1, serving queued
// events in order and recording every request.
//
//   filebuilder::test::FakeRuntimeApi api;
//   api.queue({.request_id = "req-1", .event = R"({"Records":[]})"});
//   api.address()        // "127.0.0.1:<port>", for AWS_LAMBDA_RUNTIME_API
//   ... run the runtime ...
//   api.posts()          // every POST, in arrival order: path, headers, body
//   api.next_calls()     // how many times /next was asked
//   api.connections()    // how many connections were opened
//
// GET /2018-06-01/runtime/invocation/next answers the next queued event with
// the headers Lambda sends: Lambda-Runtime-Aws-Request-Id,
// Lambda-Runtime-Deadline-Ms (now + deadline_in_ms, when the event is handed
// out), Lambda-Runtime-Invoked-Function-Arn and Lambda-Runtime-Trace-Id.
// When the queue is empty it answers 500 with an error body: the Runtime
// API's documented answer for a non-recoverable state, upon which a runtime
// exits. That is how a test ends the runtime once its events are served.
// set_hold(true) makes /next wait for queue() (or set_hold(false)) instead,
// so a test can act while the runtime waits for its next event.
//
// POST .../invocation/{id}/response and .../invocation/{id}/error answer 202
// for an id that was handed out (400 otherwise); POST .../init/error answers
// 202; anything else 404. All are recorded. One thread per connection;
// requests must carry Content-Length (no chunked bodies).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/http_request.hpp"

namespace filebuilder::test {

class FakeRuntimeApi {
 public:
  struct Event {
    std::string request_id;
    std::string event;  // the body of /next
    std::int64_t deadline_in_ms = 300'000;
    std::string trace_id =
        "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0";
  };

  /// One request as received. Header names are lower-cased.
  using Request = RecordedRequest;

  /// What /next handed out: the request id and the deadline header sent.
  struct Served {
    std::string request_id;
    std::int64_t deadline_ms = 0;
  };

  static constexpr std::string_view prefix = "/2018-06-01/runtime/";

  FakeRuntimeApi() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) throw std::runtime_error("socket() failed");
    const int yes = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(listener_);
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FakeRuntimeApi() {
    {
      std::lock_guard lock(mutex_);  // so that a waiting /next cannot miss it
      stopping_ = true;
    }
    changed_.notify_all();
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::thread> connections;
    {
      std::lock_guard lock(mutex_);
      connections.swap(connections_);
    }
    for (std::thread& connection : connections) connection.join();
    ::close(listener_);
  }
  FakeRuntimeApi(const FakeRuntimeApi&) = delete;
  FakeRuntimeApi& operator=(const FakeRuntimeApi&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void queue(Event event) {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(event));
    }
    changed_.notify_all();
  }

  /// While held, /next waits for an event instead of answering 500.
  void set_hold(bool hold) {
    {
      std::lock_guard lock(mutex_);
      hold_ = hold;
    }
    changed_.notify_all();
  }

  /// Every POST so far, in arrival order.
  [[nodiscard]] std::vector<Request> posts() const {
    std::lock_guard lock(mutex_);
    std::vector<Request> out;
    for (const Request& request : requests_)
      if (request.method == "POST") out.push_back(request);
    return out;
  }

  /// Every request so far (GETs of /next included), in arrival order.
  [[nodiscard]] std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  /// What /next handed out, in order.
  [[nodiscard]] std::vector<Served> served() const {
    std::lock_guard lock(mutex_);
    return served_;
  }

  /// How many connections the runtime opened (1 when it keeps one open).
  [[nodiscard]] std::size_t connections() const {
    std::lock_guard lock(mutex_);
    return connections_.size();
  }

  [[nodiscard]] std::size_t next_calls() const {
    std::lock_guard lock(mutex_);
    std::size_t count = 0;
    for (const Request& request : requests_)
      count += request.method == "GET" && request.path == std::string(prefix) + "invocation/next";
    return count;
  }

  /// Waits until at least `count` POSTs arrived; false on timeout.
  bool wait_for_posts(std::size_t count,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] {
      std::size_t posts = 0;
      for (const Request& request : requests_) posts += request.method == "POST";
      return posts >= count;
    });
  }

  /// Waits until /next was asked at least `count` times; false on timeout.
  bool wait_for_next_calls(std::size_t count,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (next_calls() < count) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd fd{listener_, POLLIN, 0};
      if (::poll(&fd, 1, 50) <= 0) continue;
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, client] {
        serve_connection(client);
        ::close(client);
      });
    }
  }

  /// Reads into `buffer` until it holds `size` bytes; false at end of
  /// stream, on error, or when stopping.
  bool read_until(int fd, std::string& buffer, std::size_t size) {
    char chunk[64 * 1024];
    while (buffer.size() < size) {
      if (!read_some(fd, buffer, chunk, sizeof chunk)) return false;
    }
    return true;
  }

  bool read_some(int fd, std::string& buffer, char* chunk, std::size_t capacity) {
    while (!stopping_) {
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, 50);
      if (ready < 0 && errno != EINTR) return false;
      if (ready <= 0) continue;
      const ssize_t n = ::recv(fd, chunk, capacity, 0);
      if (n > 0) {
        buffer.append(chunk, static_cast<std::size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    return false;
  }

  static bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  static bool respond(int fd, int status, std::string_view reason, std::string_view body,
                      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    std::string response =
        "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n";
    for (const auto& header : headers) response += header.first + ": " + header.second + "\r\n";
    response += "\r\n";
    response += body;
    return send_all(fd, response);
  }

  static std::string lower(std::string text) {
    for (char& c : text)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return text;
  }

  void serve_connection(int fd) {
    std::string buffer;
    char chunk[64 * 1024];
    while (!stopping_) {
      std::size_t end = buffer.find("\r\n\r\n");
      while (end == std::string::npos) {
        if (!read_some(fd, buffer, chunk, sizeof chunk)) return;
        end = buffer.find("\r\n\r\n");
      }
      Request request;
      const std::string head = buffer.substr(0, end);
      buffer.erase(0, end + 4);
      std::size_t line_end = head.find("\r\n");
      const std::string request_line = head.substr(0, line_end);
      const std::size_t space1 = request_line.find(' ');
      const std::size_t space2 = request_line.find(' ', space1 + 1);
      if (space1 == std::string::npos || space2 == std::string::npos) return;
      request.method = request_line.substr(0, space1);
      request.path = request_line.substr(space1 + 1, space2 - space1 - 1);
      while (line_end != std::string::npos) {
        const std::size_t start = line_end + 2;
        line_end = head.find("\r\n", start);
        const std::string line = head.substr(
            start, line_end == std::string::npos ? std::string::npos : line_end - start);
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        while (!value.empty() && value.back() == ' ') value.pop_back();
        request.headers[lower(line.substr(0, colon))] = value;
      }
      if (!request.header("transfer-encoding").empty()) {
        record(request);
        respond(fd, 501, "Not Implemented",
                R"({"errorMessage":"chunked bodies are not supported"})");
        return;
      }
      const std::size_t length =
          std::strtoul(request.header("content-length").c_str(), nullptr, 10);
      if (!read_until(fd, buffer, length)) return;
      request.body = buffer.substr(0, length);
      buffer.erase(0, length);
      if (!dispatch(fd, request)) return;
    }
  }

  void record(const Request& request) {
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    changed_.notify_all();
  }

  bool dispatch(int fd, const Request& request) {
    record(request);
    const std::string path = request.path;
    const std::string base(prefix);
    if (request.method == "GET" && path == base + "invocation/next") return next(fd);
    if (request.method == "POST" && path == base + "init/error")
      return respond(fd, 202, "Accepted", R"({"status":"OK"})");
    const std::string invocation = base + "invocation/";
    if (request.method == "POST" && path.starts_with(invocation)) {
      const std::string rest = path.substr(invocation.size());
      const std::size_t slash = rest.find('/');
      const std::string id = rest.substr(0, slash);
      const std::string what = slash == std::string::npos ? "" : rest.substr(slash + 1);
      bool known = false;
      {
        std::lock_guard lock(mutex_);
        known = handed_out_.count(id) != 0;
      }
      if (what == "response" || what == "error") {
        if (known) return respond(fd, 202, "Accepted", R"({"status":"OK"})");
        return respond(fd, 400, "Bad Request",
                       R"({"errorMessage":"unknown request id","errorType":"InvalidRequestID"})");
      }
    }
    return respond(fd, 404, "Not Found", R"({"errorMessage":"not found","errorType":"NotFound"})");
  }

  bool next(int fd) {
    std::optional<Event> event;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !events_.empty() || !hold_; });
      if (!events_.empty()) {
        event = std::move(events_.front());
        events_.pop_front();
      }
    }
    if (!event) {
      return respond(fd, 500, "Internal Server Error",
                     R"({"errorMessage":"no more events","errorType":"Runtime.Exit"})");
    }
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    const std::int64_t deadline = now_ms + event->deadline_in_ms;
    {
      std::lock_guard lock(mutex_);
      handed_out_.insert(event->request_id);
      served_.push_back({event->request_id, deadline});
    }
    return respond(fd, 200, "OK", event->event,
                   {{"Lambda-Runtime-Aws-Request-Id", event->request_id},
                    {"Lambda-Runtime-Deadline-Ms", std::to_string(deadline)},
                    {"Lambda-Runtime-Invoked-Function-Arn",
                     "arn:aws:lambda:us-east-1:123456789012:function:filebuilder"},
                    {"Lambda-Runtime-Trace-Id", event->trace_id}});
  }

  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::deque<Event> events_;
  bool hold_ = false;
  std::set<std::string> handed_out_;
  std::vector<Served> served_;
  std::vector<Request> requests_;
  std::vector<std::thread> connections_;
  std::thread acceptor_;
};

}  // namespace filebuilder::test
