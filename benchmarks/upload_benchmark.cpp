// The uploaders against a real nginx on 127.0.0.1 (issue #13): 1,000 PUTs of
// 4,096 bytes per iteration, all in one upload() call, at most 8 connections:
//   upload/curl   CurlUploader (libcurl multi)
//   upload/beast  BeastUploader (Boost.Beast on one io_context)
//   upload/floor  a bare PUT loop: 8 keep-alive sockets driven by poll(), each
//                 request preformatted in one buffer and sent with one send(),
//                 each response read just far enough to know its status and
//                 where it ends. No HTTP client can do less, so the ratio of
//                 an uploader to it is the cost of being an HTTP client.
// Rates are PUTs per second of wall time (the work is mostly waiting on the
// server). Beside them, the CPU time per PUT of this process (every thread:
// resolvers included) and of nginx (one process: master_process off), since
// a client that spends less of the shared cores leaves more to the server.
// Uploaders and sockets live as long as the process, so keep-alive reuse
// across iterations counts, as in production. benchmarks/upload-table prints
// the ratios.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/concepts.hpp"
#include "filebuilder/upload/options.hpp"
#if defined(FILEBUILDER_HAS_CURL)
#include "filebuilder/upload/curl.hpp"
#endif
#if defined(FILEBUILDER_HAS_BEAST)
#include "filebuilder/upload/beast.hpp"
#endif
#include "support/nginx.hpp"

namespace {

namespace fb = filebuilder;

constexpr std::size_t kPuts = 1000;
constexpr std::size_t kBodyBytes = 4096;
constexpr long kConnections = 8;

/// One body for every job: read_at is positional, so jobs can share it.
class StringBody final : public fb::BodyReader {
 public:
  explicit StringBody(std::string bytes) : bytes_(std::move(bytes)) {}
  [[nodiscard]] std::uint64_t size() const noexcept override { return bytes_.size(); }
  [[nodiscard]] fb::Result<std::size_t> read_at(std::uint64_t offset,
                                                std::span<char> dst) override {
    if (offset >= bytes_.size()) return std::size_t{0};
    const std::size_t n = std::min(dst.size(), bytes_.size() - static_cast<std::size_t>(offset));
    std::copy_n(bytes_.data() + offset, n, dst.data());
    return n;
  }
  [[nodiscard]] const std::string& bytes() const noexcept { return bytes_; }

 private:
  std::string bytes_;
};

std::string body_bytes() {
  std::string bytes(kBodyBytes, '\0');
  std::uint32_t x = 0x9E3779B9u;
  for (char& c : bytes) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return bytes;
}

/// The server, started once for the process; nullptr (and why) when it cannot start.
struct Server {
  std::unique_ptr<fb::test::Nginx> nginx;
  std::string error;
  pid_t pid = 0;  // for its CPU time
};

Server& server() {
  static Server s = [] {
    Server out;
    try {
      out.nginx = std::make_unique<fb::test::Nginx>();
      std::ifstream pid_file(out.nginx->dir() / "nginx.pid");
      pid_file >> out.pid;
    } catch (const std::exception& e) {
      out.error = std::string("cannot start nginx: ") + e.what();
    }
    return out;
  }();
  return s;
}

StringBody& shared_body() {
  static StringBody body(body_bytes());
  return body;
}

/// The 1,000 paths of one benchmark: its own directory, overwritten every iteration.
std::vector<std::string> paths_for(std::string_view name) {
  std::vector<std::string> paths;
  paths.reserve(kPuts);
  for (std::size_t i = 0; i < kPuts; ++i)
    paths.push_back("/files/bench/" + std::string(name) + "/" + std::to_string(i));
  return paths;
}

// CPU seconds of this process (every thread) and of the nginx process.
double self_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double process_cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name may hold spaces: fields are counted after its ')'.
  const std::size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && (fields >> field); ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// Times the loop of one benchmark: `batch()` does 1,000 PUTs and says
/// whether all succeeded (else `error` says why).
template <typename Batch>
void run_puts(benchmark::State& state, Batch&& batch) {
  Server& s = server();
  std::string error;
  // One untimed batch, so every benchmark starts with its connections open
  // whichever runs first.
  if (!batch(error)) {
    state.SkipWithError(error.c_str());
    return;
  }
  const double client_before = self_cpu_seconds();
  const double server_before = process_cpu_seconds(s.pid);
  for (auto _ : state) {
    if (!batch(error)) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
  const double puts = static_cast<double>(state.iterations()) * kPuts;
  state.SetItemsProcessed(static_cast<std::int64_t>(puts));
  state.SetBytesProcessed(static_cast<std::int64_t>(puts) * static_cast<std::int64_t>(kBodyBytes));
  state.counters["client_cpu_us_per_put"] = (self_cpu_seconds() - client_before) * 1e6 / puts;
  state.counters["server_cpu_us_per_put"] =
      (process_cpu_seconds(s.pid) - server_before) * 1e6 / puts;
}

// --- the uploaders -------------------------------------------------------------

/// One uploader and its 1,000 jobs, kept for the process.
template <typename U>
struct UploaderBench {
  explicit UploaderBench(std::string_view name) {
    fb::UploaderOptions options;
    options.policy.allow({"127.0.0.1", std::nullopt});
    options.max_host_connections = kConnections;
    options.max_attempts = 1;  // a retry would hide a failure from the count
    uploader.emplace(std::move(options));
    for (const std::string& path : paths_for(name)) urls.push_back(server().nginx->url(path));
    jobs.resize(kPuts);
    for (std::size_t i = 0; i < kPuts; ++i) {
      jobs[i].url = urls[i];
      jobs[i].body = &shared_body();
    }
  }

  bool batch(std::string& error) {
    uploader->upload(jobs);
    for (const fb::UploadJob& job : jobs) {
      if (job.status != fb::UploadStatus::success) {
        error = std::string(job.url) + ": " + job.message + " (HTTP " +
                std::to_string(job.http_status) + ")";
        return false;
      }
    }
    return true;
  }

  std::optional<U> uploader;
  std::vector<std::string> urls;
  std::vector<fb::UploadJob> jobs;
};

template <typename U>
void upload_with(benchmark::State& state, const char* name) {
  if (!server().nginx) {
    state.SkipWithError(server().error.c_str());
    return;
  }
  static std::optional<UploaderBench<U>> bench;
  if (!bench) {
    try {
      bench.emplace(name);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
  }
  run_puts(state, [](std::string& error) { return bench->batch(error); });
}

// --- the floor --------------------------------------------------------------------

/// 8 keep-alive connections, one request in flight on each, poll() for all.
class FloorClient {
 public:
  FloorClient(std::uint16_t port, const std::vector<std::string>& paths, const std::string& body) {
    port_ = port;
    const std::string host = "127.0.0.1:" + std::to_string(port);
    for (const std::string& path : paths) {
      requests_.push_back("PUT " + path + " HTTP/1.1\r\nHost: " + host +
                          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  }
  ~FloorClient() {
    for (Connection& c : connections_) close_connection(c);
  }
  FloorClient(const FloorClient&) = delete;
  FloorClient& operator=(const FloorClient&) = delete;

  bool batch(std::string& error) {
    std::size_t next = 0, done = 0;
    const auto take = [&](Connection& c) {
      c.job = next < requests_.size() ? static_cast<long>(next++) : -1;
      c.sent = 0;
      c.in.clear();
    };
    for (Connection& c : connections_) {
      if (c.fd < 0 && !open_connection(c, error)) return false;
      take(c);
    }
    std::array<pollfd, kConnections> fds{};
    while (done < requests_.size()) {
      std::size_t n = 0;
      std::array<Connection*, kConnections> polled{};
      for (Connection& c : connections_) {
        if (c.job < 0) continue;
        const bool sending = c.sent < requests_[static_cast<std::size_t>(c.job)].size();
        fds[n] = {c.fd, static_cast<short>(sending ? POLLOUT : POLLIN), 0};
        polled[n++] = &c;
      }
      if (::poll(fds.data(), n, 10'000) <= 0) {
        error = "floor: poll timed out or failed";
        return false;
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (fds[i].revents == 0) continue;
        Connection& c = *polled[i];
        const std::string& request = requests_[static_cast<std::size_t>(c.job)];
        if (c.sent < request.size()) {
          const ssize_t w =
              ::send(c.fd, request.data() + c.sent, request.size() - c.sent, MSG_NOSIGNAL);
          if (w > 0) {
            c.sent += static_cast<std::size_t>(w);
            continue;
          }
          if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
          if (!resend(c, error)) return false;  // the server closed it meanwhile
          continue;
        }
        const Read r = read_response(c);
        if (r == Read::more) continue;
        if (r == Read::closed) {
          if (!resend(c, error)) return false;
          continue;
        }
        if (c.status < 200 || c.status > 299) {
          error = "floor: HTTP " + std::to_string(c.status);
          return false;
        }
        ++done;
        if (c.close_after) {  // nginx's keepalive_requests reached
          close_connection(c);
          if (!open_connection(c, error)) return false;
        }
        take(c);
      }
    }
    return true;
  }

 private:
  struct Connection {
    int fd = -1;
    long job = -1;
    std::size_t sent = 0;
    std::string in;
    int status = 0;
    bool close_after = false;
  };
  enum class Read : std::uint8_t { more, complete, closed };

  bool open_connection(Connection& c, std::string& error) const {
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Blocking connect (loopback: at once), then non-blocking for poll().
    if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      error = "floor: cannot connect";
      return false;
    }
    const int yes = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);  // as the clients do
    ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    return true;
  }

  static void close_connection(Connection& c) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
  }

  // A kept-alive connection the server closed before answering: the request
  // goes again on a new one, as every client does.
  bool resend(Connection& c, std::string& error) {
    if (!c.in.empty()) {
      error = "floor: connection closed in the middle of a response";
      return false;
    }
    close_connection(c);
    c.sent = 0;
    return open_connection(c, error);
  }

  static bool name_is(std::string_view line, std::string_view name) {
    if (line.size() <= name.size() || line[name.size()] != ':') return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
      const char a = line[i] >= 'A' && line[i] <= 'Z' ? static_cast<char>(line[i] + 32) : line[i];
      if (a != name[i]) return false;
    }
    return true;
  }

  // Reads what is there; complete once the status line, the headers and
  // Content-Length bytes of body are in (nginx's PUT replies have no chunked body).
  Read read_response(Connection& c) {
    char chunk[16 * 1024];
    while (true) {
      const ssize_t r = ::recv(c.fd, chunk, sizeof chunk, 0);
      if (r > 0) {
        c.in.append(chunk, static_cast<std::size_t>(r));
        continue;
      }
      if (r == 0) return Read::closed;
      if (errno == EINTR) continue;
      break;  // EAGAIN: all there is for now
    }
    const std::size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return Read::more;
    const std::string_view head(c.in.data(), end);
    if (head.size() < 12 || !head.starts_with("HTTP/1.1 ")) {
      c.status = 0;
      return Read::complete;
    }
    c.status = std::atoi(std::string(head.substr(9, 3)).c_str());
    std::size_t length = 0;
    c.close_after = false;
    for (std::size_t at = head.find("\r\n"); at != std::string_view::npos;) {
      const std::size_t from = at + 2;
      at = head.find("\r\n", from);
      const std::string_view line =
          head.substr(from, at == std::string_view::npos ? at : at - from);
      if (name_is(line, "content-length"))
        length = std::strtoull(std::string(line.substr(15)).c_str(), nullptr, 10);
      else if (name_is(line, "connection"))
        c.close_after = line.find("close") != std::string_view::npos;
    }
    if (c.in.size() < end + 4 + length) return Read::more;
    return Read::complete;
  }

  std::uint16_t port_ = 0;
  std::vector<std::string> requests_;
  std::array<Connection, kConnections> connections_{};
};

void upload_floor(benchmark::State& state) {
  if (!server().nginx) {
    state.SkipWithError(server().error.c_str());
    return;
  }
  static FloorClient floor(server().nginx->port(), paths_for("floor"), shared_body().bytes());
  run_puts(state, [](std::string& error) { return floor.batch(error); });
}

void upload_curl(benchmark::State& state) {
#if defined(FILEBUILDER_HAS_CURL)
  upload_with<fb::CurlUploader>(state, "curl");
#else
  state.SkipWithError("built without filebuilder::curl (FILEBUILDER_WITH_CURL=OFF)");
#endif
}

void upload_beast(benchmark::State& state) {
#if defined(FILEBUILDER_HAS_BEAST)
  upload_with<fb::BeastUploader>(state, "beast");
#else
  state.SkipWithError(
      "built without filebuilder::beast (FILEBUILDER_WITH_BEAST=OFF or no Boost >= 1.74)");
#endif
}

}  // namespace

BENCHMARK(upload_floor)->Name("upload/floor")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(upload_curl)->Name("upload/curl")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(upload_beast)->Name("upload/beast")->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
