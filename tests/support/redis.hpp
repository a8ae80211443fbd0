// Test support: a real redis-server on 127.0.0.1, started and stopped by a test.
//
//   filebuilder::test::RedisServer redis;          // throws std::runtime_error if it cannot start
//   redis.url()                                    // redis://127.0.0.1:<port>/0
//   redis.command({"SCAN", "0"})                   // one command on a fresh connection
//   redis.keys()                                   // every key of a database (SCAN)
//   redis.restart()                                // stop, then start on the same port and dir
//
// No persistence by default; RedisServerOptions::append_only turns the AOF on
// (fsync always) in the server's own temporary directory, so that restart()
// keeps the data. Readiness: the server answers PING with PONG and INFO shows
// our child's process id (so a server of someone else on the port never counts).
#pragma once

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/net.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace filebuilder::test {

struct RedisServerOptions {
  bool append_only = false;  // AOF on, fsync always: data survives restart()
  std::string password;      // requirepass, when not empty
};

/// A reply, converted from hiredis's.
struct RedisValue {
  int type = REDIS_REPLY_NIL;  // REDIS_REPLY_*
  std::string str;             // string, status or error text
  long long integer = 0;
  std::vector<RedisValue> elements;

  [[nodiscard]] bool is_error() const { return type == REDIS_REPLY_ERROR; }
  [[nodiscard]] bool is_nil() const { return type == REDIS_REPLY_NIL; }
};

class RedisServer {
 public:
  static constexpr const char* binary = "/usr/bin/redis-server";

  explicit RedisServer(RedisServerOptions options = {})
      : options_(std::move(options)), dir_("filebuilder-redis") {
    start_on_free_port(
        "redis-server", port_, "Address already in use",
        [this] {
          if (launch()) return true;
          process_.reset();
          return false;
        },
        [this] { return log(); });
  }
  ~RedisServer() = default;
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_.path(); }
  [[nodiscard]] bool running() { return process_ && !process_->poll(); }

  /// redis://[:PASSWORD@]127.0.0.1:<port>/DB, with ?prefix= when PREFIX is given.
  [[nodiscard]] std::string url(unsigned db = 0, const std::string& prefix = {}) const {
    std::string url = "redis://";
    if (!options_.password.empty()) url += ":" + options_.password + "@";
    url += "127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
    if (!prefix.empty()) url += "?prefix=" + prefix;
    return url;
  }

  /// Stops the server (SIGTERM: with the AOF on, everything is written first).
  void stop() {
    if (process_) process_->stop(std::chrono::seconds(10));
    process_.reset();
  }
  /// Starts it again on the same port with the same directory.
  void start() {
    if (process_) return;
    if (!launch()) {
      process_.reset();
      throw std::runtime_error("redis-server did not restart:\n" + log());
    }
  }
  void restart() {
    stop();
    start();
  }

  /// Runs one command on a new connection (AUTH first when there is a
  /// password; SELECT DB when not 0). Throws when the server cannot be reached.
  [[nodiscard]] RedisValue command(const std::vector<std::string>& args, unsigned db = 0) const {
    Connection connection = connect();
    if (!options_.password.empty()) (void)run(connection, {"AUTH", options_.password});
    if (db != 0) (void)run(connection, {"SELECT", std::to_string(db)});
    return run(connection, args);
  }

  /// Every key of database DB, found with SCAN.
  [[nodiscard]] std::vector<std::string> keys(unsigned db = 0) const {
    Connection connection = connect();
    if (!options_.password.empty()) (void)run(connection, {"AUTH", options_.password});
    if (db != 0) (void)run(connection, {"SELECT", std::to_string(db)});
    std::vector<std::string> keys;
    std::string cursor = "0";
    do {
      const RedisValue page = run(connection, {"SCAN", cursor, "COUNT", "1000"});
      if (page.type != REDIS_REPLY_ARRAY || page.elements.size() != 2)
        throw std::runtime_error("SCAN: unexpected reply");
      cursor = page.elements[0].str;
      for (const RedisValue& key : page.elements[1].elements) keys.push_back(key.str);
    } while (cursor != "0");
    return keys;
  }

  [[nodiscard]] std::string log() const {
    std::ifstream in(dir_ / "redis.out", std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  struct ContextDeleter {
    void operator()(redisContext* context) const noexcept { redisFree(context); }
  };
  using Connection = std::unique_ptr<redisContext, ContextDeleter>;

  static RedisValue convert(const redisReply* reply) {
    RedisValue value;
    value.type = reply->type;
    value.integer = reply->integer;
    if (reply->str) value.str.assign(reply->str, reply->len);
    for (std::size_t i = 0; i < reply->elements; ++i)
      value.elements.push_back(convert(reply->element[i]));
    return value;
  }

  Connection connect() const {
    const timeval timeout{2, 0};
    Connection connection(redisConnectWithTimeout("127.0.0.1", port_, timeout));
    if (!connection || connection->err != 0) {
      throw std::runtime_error("cannot connect to redis-server on port " + std::to_string(port_));
    }
    (void)redisSetTimeout(connection.get(), timeout);
    return connection;
  }

  static RedisValue run(Connection& connection, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    void* raw = redisCommandArgv(connection.get(), static_cast<int>(argv.size()), argv.data(),
                                 lengths.data());
    if (raw == nullptr) throw std::runtime_error("redis command failed: connection error");
    std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw),
                                                       &freeReplyObject);
    return convert(reply.get());
  }

  /// A port that was free a moment ago: bind port 0, read it, close.
  void write_config() const {
    std::ofstream conf(dir_ / "redis.conf", std::ios::trunc);
    conf << "port " << port_ << "\n"
         << "bind 127.0.0.1\n"
         << "daemonize no\n"
         << "logfile \"\"\n"  // standard output: redis.out
         << "dir \"" << dir_.path().string() << "\"\n"
         << "save \"\"\n"
         << "appendonly " << (options_.append_only ? "yes" : "no") << "\n"
         << "appendfsync always\n"
         << "maxmemory-policy noeviction\n";
    if (!options_.password.empty()) conf << "requirepass \"" << options_.password << "\"\n";
    if (!conf) throw std::runtime_error("cannot write redis.conf");
  }

  bool launch() {
    write_config();
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{binary, (dir_ / "redis.conf").string()}, dir_ / "redis.out");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    const std::string our_pid = "process_id:" + std::to_string(process_->pid()) + "\r";
    while (std::chrono::steady_clock::now() < deadline) {
      if (process_->poll()) return false;  // it exited: see the log
      try {
        Connection connection = connect();
        if (!options_.password.empty()) (void)run(connection, {"AUTH", options_.password});
        const RedisValue pong = run(connection, {"PING"});  // LOADING while reading the AOF
        if (pong.str == "PONG" &&
            run(connection, {"INFO", "server"}).str.find(our_pid) != std::string::npos)
          return true;
      } catch (const std::runtime_error&) {
        // not listening yet
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  RedisServerOptions options_;
  TempDir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace filebuilder::test
