// Test support: a real nginx on 127.0.0.1, started and stopped by a test.
//
//   filebuilder::test::Nginx nginx;            // throws std::runtime_error if it cannot start
//   nginx.url("/files/a.bin")                  // http://127.0.0.1:<port>/files/a.bin
//   nginx.tls_url("/files/a.bin")              // https://127.0.0.1:<tls_port>/files/a.bin
//   nginx.stored_file("/files/a.bin")          // where a PUT stored it
//   nginx.requests()                           // the access log, parsed
//
// Locations: /files/ (WebDAV PUT, any size), /fail503/, /fail403/,
// /flaky/ (PUT like /files/, but 503 while set_flaky_down(true)), and
// /redirect/ (302 to /files/x), /redirect301/, /redirect307/, /redirect308/.
// The https listener uses a self-signed certificate for 127.0.0.1, localhost
// and this machine's host name, generated with the openssl command; ca_file()
// is that certificate. Without /usr/bin/openssl there is no https listener
// (tls_port() is 0). Nginx(cert, key) serves https with a given certificate.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/net.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace filebuilder::test {

/// One access-log line. Absent values ("-" in nginx's log) are empty.
struct LogEntry {
  std::string method;
  std::string uri;  // $request_uri: path and query as sent
  int status = 0;
  std::string content_type;
  std::string expect;
  std::string content_length;
  std::string transfer_encoding;
  std::string connection;       // nginx's connection serial number: equal means reused
  int connection_requests = 0;  // requests made so far on that connection, this one included
};

class Nginx {
 public:
  static constexpr const char* binary = "/usr/sbin/nginx";
  static constexpr const char* openssl = "/usr/bin/openssl";

  Nginx() : dir_("filebuilder-nginx") {
    make_directories();
    make_certificate();
    start();
  }
  /// An https listener with the given certificate (chain) and key, PEM,
  /// instead of a self-signed one.
  Nginx(const std::filesystem::path& certificate, const std::filesystem::path& key)
      : dir_("filebuilder-nginx") {
    make_directories();
    std::filesystem::copy_file(certificate, dir_ / "cert.pem");
    std::filesystem::copy_file(key, dir_ / "key.pem");
    has_tls_ = true;
    start();
  }
  ~Nginx() = default;
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

 private:
  void make_directories() {
    std::filesystem::create_directories(dir_ / "www/files");
    std::filesystem::create_directories(dir_ / "tmp");
  }

  void start() {
    std::string last_error;
    for (int attempt = 0; attempt < 8; ++attempt) {
      port_ = free_port();
      tls_port_ = has_tls_ ? free_port() : 0;
      if (tls_port_ == port_) continue;
      write_config();
      std::error_code ignored;
      std::filesystem::remove(dir_ / "nginx.pid", ignored);
      process_ = std::make_unique<ChildProcess>(
          std::vector<std::string>{binary, "-p", dir_.path().string() + "/", "-c",
                                   (dir_ / "nginx.conf").string(), "-e",
                                   (dir_ / "error.log").string()},
          dir_ / "nginx.out");
      if (wait_ready()) return;
      last_error = error_log();
      process_.reset();
      if (last_error.find("Address already in use") == std::string::npos) break;
    }
    throw std::runtime_error("nginx did not start:\n" + last_error);
  }

 public:
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::uint16_t tls_port() const noexcept { return tls_port_; }
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_.path(); }
  /// The certificate of the https listener: self-signed unless one was given
  /// (empty without openssl).
  [[nodiscard]] std::filesystem::path ca_file() const {
    return has_tls_ ? dir_ / "cert.pem" : std::filesystem::path{};
  }

  /// http://127.0.0.1:<port> followed by PATH ("/files/a").
  [[nodiscard]] std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  /// https://HOST:<tls_port> followed by PATH.
  [[nodiscard]] std::string tls_url(std::string_view path,
                                    std::string_view host = "127.0.0.1") const {
    return "https://" + std::string(host) + ":" + std::to_string(tls_port_) + std::string(path);
  }

  /// Where a PUT to PATH ("/files/a") is stored.
  /// While down, /flaky/ answers 503; then it stores PUTs again (a target that recovers).
  void set_flaky_down(bool down) const {
    const std::filesystem::path flag = dir_.path() / "flaky-down";
    if (down)
      std::ofstream(flag) << "down\n";
    else
      std::filesystem::remove(flag);
  }

  [[nodiscard]] std::filesystem::path stored_file(std::string_view path) const {
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    return dir_ / "www" / std::filesystem::path(std::string(path));
  }

  /// The access log, parsed, one entry per request, oldest first. Waits up
  /// to TIMEOUT until it holds at least AT_LEAST entries (nginx writes a line
  /// just after it has sent the response).
  [[nodiscard]] std::vector<LogEntry> requests(
      std::size_t at_least = 0, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      std::vector<LogEntry> entries = read_log();
      if (entries.size() >= at_least || std::chrono::steady_clock::now() >= deadline) {
        return entries;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  /// Requests whose $request_uri starts with PREFIX.
  [[nodiscard]] std::vector<LogEntry> requests_to(std::string_view prefix,
                                                  std::size_t at_least = 0) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (true) {
      std::vector<LogEntry> matching;
      for (LogEntry& entry : read_log()) {
        if (std::string_view(entry.uri).substr(0, prefix.size()) == prefix) {
          matching.push_back(std::move(entry));
        }
      }
      if (matching.size() >= at_least || std::chrono::steady_clock::now() >= deadline) {
        return matching;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  [[nodiscard]] std::string error_log() const { return read_text(dir_ / "error.log"); }

 private:
  static std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  /// A port that was free a moment ago: bind port 0, read it, close.
  void make_certificate() {
    has_tls_ = false;
    if (::access(openssl, X_OK) != 0) return;
    char host[256] = {};
    std::string names = "IP:127.0.0.1,DNS:localhost";
    if (::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') {
      names += ",DNS:" + std::string(host);
    }
    ChildProcess generate({openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                           "/CN=filebuilder test", "-addext", "subjectAltName=" + names, "-keyout",
                           (dir_ / "key.pem").string(), "-out", (dir_ / "cert.pem").string()},
                          dir_ / "openssl.out");
    const int status = generate.wait();
    has_tls_ = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  void write_config() const {
    const std::string d = dir_.path().string();
    std::ofstream conf(dir_ / "nginx.conf", std::ios::trunc);
    if (::geteuid() == 0) conf << "user root;\n";  // else workers would switch to nobody
    conf << "daemon off;\n"
         << "master_process off;\n"
         << "worker_processes 1;\n"
         << "pid \"" << d << "/nginx.pid\";\n"
         << "error_log \"" << d << "/error.log\" info;\n"
         << "events { worker_connections 256; }\n"
         << "http {\n"
         << "  log_format filebuilder_test \"$request_method\\t$request_uri\\t$status\\t"
            "$content_type\\t$http_expect\\t$content_length\\t$http_transfer_encoding\\t"
            "$connection\t$connection_requests\";\n"
         << "  access_log \"" << d << "/access.log\" filebuilder_test;\n"
         << "  client_body_temp_path \"" << d << "/tmp/body\";\n"
         << "  proxy_temp_path \"" << d << "/tmp/proxy\";\n"
         << "  fastcgi_temp_path \"" << d << "/tmp/fastcgi\";\n"
         << "  uwsgi_temp_path \"" << d << "/tmp/uwsgi\";\n"
         << "  scgi_temp_path \"" << d << "/tmp/scgi\";\n"
         << "  keepalive_timeout 120s;\n"
         << "  keepalive_requests 10000;\n"
         << "  server {\n"
         << "    listen 127.0.0.1:" << port_ << ";\n";
    if (has_tls_) {
      conf << "    listen 127.0.0.1:" << tls_port_ << " ssl;\n"
           << "    ssl_certificate \"" << d << "/cert.pem\";\n"
           << "    ssl_certificate_key \"" << d << "/key.pem\";\n";
    }
    conf << "    server_name _;\n"
         << "    root \"" << d << "/www\";\n"
         << "    location /files/ {\n"
         << "      dav_methods PUT;\n"
         << "      create_full_put_path on;\n"
         << "      client_max_body_size 0;\n"
         << "    }\n"
         << "    location /flaky/ {\n"
         << "      if (-f \"" << d << "/flaky-down\") { return 503; }\n"
         << "      dav_methods PUT;\n"
         << "      create_full_put_path on;\n"
         << "      client_max_body_size 0;\n"
         << "    }\n"
         << "    location /fail503/ { return 503; }\n"
         << "    location /fail403/ { return 403; }\n"
         << "    location /redirect/ { return 302 http://127.0.0.1:" << port_ << "/files/x; }\n"
         << "    location /redirect301/ { return 301 http://127.0.0.1:" << port_ << "/files/x; }\n"
         << "    location /redirect307/ { return 307 http://127.0.0.1:" << port_ << "/files/x; }\n"
         << "    location /redirect308/ { return 308 http://127.0.0.1:" << port_ << "/files/x; }\n"
         << "  }\n"
         << "}\n";
    if (!conf) throw std::runtime_error("cannot write nginx.conf");
  }

  bool wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (process_->poll()) return false;  // it exited: see error.log
      // The pid file is written after the listening sockets are bound, so a
      // connection then reaches this nginx, not whoever else took the port.
      if (std::filesystem::exists(dir_ / "nginx.pid") &&
          read_text(dir_ / "nginx.pid").find(std::to_string(process_->pid())) == 0 &&
          accepts_connections(port_) && (!has_tls_ || accepts_connections(tls_port_))) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::vector<LogEntry> read_log() const {
    std::vector<LogEntry> entries;
    std::ifstream in(dir_ / "access.log");
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> fields;
      std::size_t begin = 0;
      while (true) {
        const std::size_t tab = line.find('\t', begin);
        std::string field = line.substr(begin, tab == std::string::npos ? tab : tab - begin);
        fields.push_back(field == "-" ? std::string() : std::move(field));
        if (tab == std::string::npos) break;
        begin = tab + 1;
      }
      if (fields.size() != 9) continue;
      LogEntry entry;
      entry.method = fields[0];
      entry.uri = fields[1];
      entry.status = std::stoi(fields[2].empty() ? "0" : fields[2]);
      entry.content_type = fields[3];
      entry.expect = fields[4];
      entry.content_length = fields[5];
      entry.transfer_encoding = fields[6];
      entry.connection = fields[7];
      entry.connection_requests = std::stoi(fields[8].empty() ? "0" : fields[8]);
      entries.push_back(std::move(entry));
    }
    return entries;
  }

  TempDir dir_;
  bool has_tls_ = false;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace filebuilder::test
