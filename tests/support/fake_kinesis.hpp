// Test support: a scripted Kinesis endpoint on 127.0.0.1 (cpp-httplib), for
// the paths kinesalite cannot show (pagination, expired iterators, throttling,
// 5xx, bad replies). Integration tests only: it needs libcpp-httplib-dev.
//
//   FakeKinesis fake;
//   fake.script({{200, R"({"Shards":[...],"NextToken":"t1"})"}, {500, "oops"}});
//   fake.set_default({200, "{}"});        // once the script is used up (default: 500)
//   aws::KinesisOptions options = fake.client_options();
//   fake.requests()                       // every request: X-Amz-Target, headers, body
#pragma once

#include <httplib.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "filebuilder/aws/kinesis.hpp"
#include "support/http_request.hpp"
#include "support/kinesalite.hpp"

namespace filebuilder::test {

class FakeKinesis {
 public:
  struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/x-amz-json-1.1";
  };
  /// One request as received. Header names are lower-cased.
  struct Request : RecordedRequest {
    /// "ListShards" from X-Amz-Target: Kinesis_20131202.ListShards.
    [[nodiscard]] std::string operation() const {
      const std::string target = header("x-amz-target");
      return target.substr(target.find('.') + 1);
    }
  };

  FakeKinesis() {
    server_.Post("/", [this](const httplib::Request& request, httplib::Response& response) {
      Reply reply;
      {
        std::lock_guard lock(mutex_);
        Request seen;
        seen.method = request.method;
        seen.path = request.path;
        seen.body = request.body;
        for (const auto& [name, value] : request.headers)
          seen.headers[aws::detail::lower(name)] = value;
        requests_.push_back(std::move(seen));
        if (script_.empty()) {
          reply = default_;
        } else {
          reply = std::move(script_.front());
          script_.pop_front();
        }
      }
      response.status = reply.status;
      response.set_content(reply.body, reply.content_type.c_str());
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("cannot listen on 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 1000 && !server_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeKinesis() {
    server_.stop();
    thread_.join();
  }
  FakeKinesis(const FakeKinesis&) = delete;
  FakeKinesis& operator=(const FakeKinesis&) = delete;

  [[nodiscard]] std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// Replies for the next requests, in order (appended to what is left).
  void script(std::vector<Reply> replies) {
    std::lock_guard lock(mutex_);
    for (Reply& reply : replies) script_.push_back(std::move(reply));
  }
  /// The reply once the script is used up.
  void set_default(Reply reply) {
    std::lock_guard lock(mutex_);
    default_ = std::move(reply);
  }

  [[nodiscard]] std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  /// Options for a client of this fake: region us-east-1, no real waits.
  [[nodiscard]] aws::KinesisOptions client_options() const {
    return test_kinesis_options(endpoint());
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::deque<Reply> script_;
  Reply default_{500, R"({"__type":"InternalFailure","message":"no scripted reply"})"};
  std::vector<Request> requests_;
};

}  // namespace filebuilder::test
