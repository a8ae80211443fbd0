// The uploader conformance suite: every test runs against each uploader
// (CurlUploader, and BeastUploader where filebuilder::beast is built), on a
// real nginx on 127.0.0.1, and expects exactly the same results.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "filebuilder/upload/curl.hpp"
#if defined(FILEBUILDER_HAS_BEAST)
#include "filebuilder/upload/beast.hpp"
#endif
#include "support/nginx.hpp"
#include "support/policy_corpus.hpp"
#if defined(FILEBUILDER_TEST_HTTPLIB)
#include "support/put_recorder.hpp"
#endif
#include "support/temp_dir.hpp"
#include "support/tls.hpp"

TYPE_TO_STRING_AS("curl", filebuilder::CurlUploader);
#if defined(FILEBUILDER_HAS_BEAST)
TYPE_TO_STRING_AS("beast", filebuilder::BeastUploader);
#define FILEBUILDER_TEST_UPLOADERS filebuilder::CurlUploader, filebuilder::BeastUploader
#else
#define FILEBUILDER_TEST_UPLOADERS filebuilder::CurlUploader
#endif

namespace {

using filebuilder::CurlUploader;
using filebuilder::ErrorCode;
using filebuilder::Result;
using filebuilder::UploadJob;
using filebuilder::UploadStatus;
using filebuilder::test::Nginx;

/// A body made of parts, read positionally, as a store would serve it.
class PartsBody : public filebuilder::BodyReader {
 public:
  explicit PartsBody(std::vector<std::string> parts) : parts_(std::move(parts)) {}

  [[nodiscard]] std::uint64_t size() const noexcept override {
    std::uint64_t total = 0;
    for (const std::string& part : parts_) total += part.size();
    return total;
  }

  [[nodiscard]] Result<std::size_t> read_at(std::uint64_t offset, std::span<char> dst) override {
    ++reads;
    if (fail_on_read != 0 && reads == fail_on_read) return ErrorCode::store_unavailable;
    if (always_fail) return ErrorCode::store_unavailable;
    std::size_t copied = 0;
    std::uint64_t part_begin = 0;
    for (const std::string& part : parts_) {
      const std::uint64_t part_end = part_begin + part.size();
      if (offset < part_end && copied < dst.size()) {
        const std::size_t from = static_cast<std::size_t>(offset - part_begin);
        const std::size_t n = std::min(part.size() - from, dst.size() - copied);
        std::copy_n(part.data() + from, n, dst.data() + copied);
        copied += n;
        offset += n;
      }
      part_begin = part_end;
    }
    return copied;
  }

  [[nodiscard]] std::string joined() const {
    std::string all;
    for (const std::string& part : parts_) all += part;
    return all;
  }

  unsigned reads = 0;
  unsigned fail_on_read = 0;  // 1-based read_at call that fails once
  bool always_fail = false;

 private:
  std::vector<std::string> parts_;
};

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Options for tests: nginx's host allowed, fast retries.
filebuilder::UploaderOptions test_options(unsigned max_attempts = 4) {
  filebuilder::UploaderOptions options;
  options.policy.allow({"127.0.0.1", std::nullopt});
  options.max_attempts = max_attempts;
  options.backoff_base = std::chrono::milliseconds(1);
  options.backoff_max = std::chrono::milliseconds(5);
  options.connect_timeout = std::chrono::milliseconds(2000);
  options.total_timeout = std::chrono::milliseconds(20000);
  return options;
}

UploadJob job_for(const std::string& url, filebuilder::BodyReader& body) {
  UploadJob job;
  job.url = url;
  job.body = &body;
  return job;
}

/// A name other than localhost that resolves only to non-public addresses
/// (here the machine's own host name, often 127.0.x.1 in /etc/hosts), or "".
std::string name_resolving_to_loopback() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return {};
  const std::string name = host;
  if (filebuilder::detail::is_local_name(name) || filebuilder::detail::ends_in_number(name)) {
    return {};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0) return {};
  bool any = false;
  bool all_private = true;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    any = true;
    if (filebuilder::EndpointPolicy::is_public_address(a->ai_addr)) all_private = false;
  }
  ::freeaddrinfo(found);
  return any && all_private ? name : std::string{};
}

}  // namespace

TEST_SUITE("upload") {
  TEST_CASE_TEMPLATE("a multi-part body arrives byte-identical, with one plain PUT", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    // Over 1 MiB, where libcurl would otherwise send "Expect: 100-continue".
    PartsBody body({random_bytes(700'000, 1), random_bytes(1, 2), random_bytes(0, 3),
                    random_bytes(1'300'000, 4), random_bytes(12'345, 5)});
    const std::string url = nginx.url("/files/dir/a.bin?X-Amz-Signature=abc");
    std::vector<UploadJob> jobs{job_for(url, body)};
    U uploader(test_options());
    uploader.upload(jobs);

    CHECK(jobs[0].status == UploadStatus::success);
    CHECK(jobs[0].error == ErrorCode::ok);
    CHECK(jobs[0].http_status == 201);
    CHECK(jobs[0].attempts == 1);
    CHECK(jobs[0].message.empty());
    CHECK(file_bytes(nginx.stored_file("/files/dir/a.bin")) == body.joined());

    const auto log = nginx.requests(1);
    REQUIRE(log.size() == 1);
    CHECK(log[0].method == "PUT");
    CHECK(log[0].uri == "/files/dir/a.bin?X-Amz-Signature=abc");
    CHECK(log[0].status == 201);
    CHECK(log[0].content_type.empty());
    CHECK(log[0].expect.empty());
    CHECK(log[0].content_length == std::to_string(body.size()));
    CHECK(log[0].transfer_encoding.empty());
  }

  TEST_CASE_TEMPLATE("an empty body is a PUT with Content-Length 0", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody body({});
    const std::string url = nginx.url("/files/empty.bin");
    std::vector<UploadJob> jobs{job_for(url, body)};
    U uploader(test_options());
    uploader.upload(jobs);

    CHECK(jobs[0].status == UploadStatus::success);
    CHECK(jobs[0].attempts == 1);
    REQUIRE(std::filesystem::exists(nginx.stored_file("/files/empty.bin")));
    CHECK(std::filesystem::file_size(nginx.stored_file("/files/empty.bin")) == 0);
    const auto log = nginx.requests(1);
    REQUIRE(log.size() == 1);
    CHECK(log[0].method == "PUT");
    CHECK(log[0].content_length == "0");
    CHECK(log[0].transfer_encoding.empty());
    CHECK(log[0].content_type.empty());
  }

  TEST_CASE_TEMPLATE("all jobs of one call arrive, and connections are reused across calls", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    constexpr std::size_t count = 20;
    std::vector<PartsBody> bodies;
    std::vector<std::string> urls;
    for (std::size_t i = 0; i < count; ++i) {
      bodies.emplace_back(std::vector<std::string>{random_bytes(1000 + i * 997, unsigned(i)),
                                                   random_bytes(i * 31, unsigned(i + 100))});
      urls.push_back(nginx.url("/files/many/" + std::to_string(i)));
    }
    filebuilder::UploaderOptions options = test_options();
    options.max_host_connections = 4;
    U uploader(std::move(options));

    std::vector<UploadJob> first;
    for (std::size_t i = 0; i < count; ++i) first.push_back(job_for(urls[i], bodies[i]));
    uploader.upload(first);
    for (std::size_t i = 0; i < count; ++i) {
      CAPTURE(i);
      CHECK(first[i].status == UploadStatus::success);
      CHECK(first[i].attempts == 1);
      CHECK(file_bytes(nginx.stored_file("/files/many/" + std::to_string(i))) ==
            bodies[i].joined());
    }
    const auto first_log = nginx.requests(count);
    REQUIRE(first_log.size() == count);
    std::set<std::string> first_connections;
    for (const auto& entry : first_log) first_connections.insert(entry.connection);
    CHECK(first_connections.size() <= 4);

    // A second batch: overwrites (204), over the connections already open.
    std::vector<UploadJob> second;
    for (std::size_t i = 0; i < 4; ++i) second.push_back(job_for(urls[i], bodies[i]));
    uploader.upload(second);
    const auto log = nginx.requests(count + 4);
    REQUIRE(log.size() == count + 4);
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK(second[i].status == UploadStatus::success);
      CHECK(second[i].http_status == 204);
      CHECK(first_connections.count(log[count + i].connection) == 1);
      CHECK(log[count + i].connection_requests > 1);  // a kept-alive connection's later request
    }
  }

  TEST_CASE_TEMPLATE("503 is retried max_attempts times, then retryable", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody body({"hello ", "world"});
    const std::string url = nginx.url("/fail503/a");
    std::vector<UploadJob> jobs{job_for(url, body)};
    U uploader(test_options(4));
    uploader.upload(jobs);

    CHECK(jobs[0].status == UploadStatus::retryable);
    CHECK(jobs[0].error == ErrorCode::upload_failed);
    CHECK(jobs[0].http_status == 503);
    CHECK(jobs[0].attempts == 4);
    CHECK(jobs[0].message == "HTTP 503 after 4 attempts");
    const auto log = nginx.requests(4);
    CHECK(log.size() == 4);
    for (const auto& entry : log) {
      CHECK(entry.method == "PUT");
      CHECK(entry.uri == "/fail503/a");
      CHECK(entry.status == 503);
    }
  }

#if defined(FILEBUILDER_TEST_HTTPLIB)
  TEST_CASE_TEMPLATE("503 then 200 within one call: retried and delivered once", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    filebuilder::test::PutRecorder target(std::chrono::milliseconds(0));
    target.refuse_first(2, 503);
    PartsBody body({"second ", "time ", "lucky"});
    const std::string url = target.url("/retry/a.bin");
    std::vector<UploadJob> jobs{job_for(url, body)};
    filebuilder::UploaderOptions options = test_options(4);
    options.policy.allow({"127.0.0.1", std::nullopt});
    U uploader(std::move(options));
    uploader.upload(jobs);
    CHECK(jobs[0].status == UploadStatus::success);
    CHECK(jobs[0].http_status == 200);
    CHECK(jobs[0].attempts == 3);
    CHECK(jobs[0].message.empty());
    CHECK(target.puts("/retry/a.bin") == 1);
    CHECK(target.body("/retry/a.bin") == body.joined());
  }

  TEST_CASE_TEMPLATE("a kept-alive connection the server closed meanwhile costs no attempt", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    // The target closes connections idle for a second; the uploader keeps
    // its own, and finds it closed when it next uses it.
    filebuilder::test::PutRecorder target(std::chrono::milliseconds(0), std::chrono::seconds(1));
    filebuilder::UploaderOptions options = test_options(1);  // no retry to hide behind
    options.policy.allow({"127.0.0.1", std::nullopt});
    U uploader(std::move(options));
    PartsBody body({"kept ", "alive"});
    const std::string first_url = target.url("/stale/1");
    const std::string second_url = target.url("/stale/2");
    std::vector<UploadJob> first{job_for(first_url, body)};
    uploader.upload(first);
    REQUIRE(first[0].status == UploadStatus::success);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    std::vector<UploadJob> second{job_for(second_url, body)};
    uploader.upload(second);
    CHECK(second[0].status == UploadStatus::success);
    CHECK(second[0].attempts == 1);
    CHECK(target.body("/stale/2") == body.joined());
  }
#endif

  TEST_CASE_TEMPLATE("403 is permanent after one request", U, FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody body({"x"});
    const std::string url = nginx.url("/fail403/a");
    std::vector<UploadJob> jobs{job_for(url, body)};
    U uploader(test_options());
    uploader.upload(jobs);

    CHECK(jobs[0].status == UploadStatus::permanent);
    CHECK(jobs[0].error == ErrorCode::upload_refused);
    CHECK(jobs[0].http_status == 403);
    CHECK(jobs[0].attempts == 1);
    CHECK(jobs[0].message == "HTTP 403");
    const auto log = nginx.requests(1);
    CHECK(log.size() == 1);
  }

  TEST_CASE_TEMPLATE("a redirect is permanent and not followed", U, FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody body({"x"});
    const std::string url = nginx.url("/redirect/a");
    std::vector<UploadJob> jobs{job_for(url, body)};
    U uploader(test_options());
    uploader.upload(jobs);

    CHECK(jobs[0].status == UploadStatus::permanent);
    CHECK(jobs[0].error == ErrorCode::upload_refused);
    CHECK(jobs[0].http_status == 302);
    CHECK(jobs[0].attempts == 1);
    CHECK(jobs[0].message == "HTTP 302");
    const auto log = nginx.requests(1);
    REQUIRE(log.size() == 1);
    CHECK(log[0].uri == "/redirect/a");
    CHECK_FALSE(std::filesystem::exists(nginx.stored_file("/files/x")));
  }

  TEST_CASE_TEMPLATE("one call mixes outcomes, each job on its own", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody ok_body({"good"});
    PartsBody bad_body({"bad"});
    PartsBody busy_body({"busy"});
    const std::string ok_url = nginx.url("/files/mixed");
    const std::string bad_url = nginx.url("/fail403/mixed");
    const std::string busy_url = nginx.url("/fail503/mixed");
    std::vector<UploadJob> jobs{job_for(busy_url, busy_body), job_for(ok_url, ok_body),
                                job_for(bad_url, bad_body)};
    U uploader(test_options(3));
    uploader.upload(jobs);

    CHECK(jobs[0].status == UploadStatus::retryable);
    CHECK(jobs[0].attempts == 3);
    CHECK(jobs[1].status == UploadStatus::success);
    CHECK(jobs[1].attempts == 1);
    CHECK(jobs[2].status == UploadStatus::permanent);
    CHECK(jobs[2].attempts == 1);
    CHECK(file_bytes(nginx.stored_file("/files/mixed")) == "good");
    CHECK(nginx.requests(5).size() == 5);
  }

  TEST_CASE_TEMPLATE("the hardening corpus: the policy's verdicts, and nothing reaches the target",
                     U, FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody body({"x"});
    filebuilder::UploaderOptions options = test_options(1);
    options.policy = {};  // nothing allowed, as in production
    U uploader(std::move(options));
    // Every refused form of the corpus, as written (the uploader refuses it
    // before any request)...
    std::vector<std::string> urls;
    std::vector<ErrorCode> expected;
    for (const filebuilder::test::PolicyCase& c : filebuilder::test::policy_corpus) {
      if (c.expected == ErrorCode::ok) continue;  // public hosts: not contacted from tests
      urls.emplace_back(c.url);
      expected.push_back(c.expected);
    }
    // ...and the loopback forms aimed at nginx's own ports, so that a request
    // that got through would be in its log.
    for (const std::uint16_t port : {nginx.port(), nginx.tls_port()}) {
      if (port == 0) continue;  // no TLS listener (no openssl command)
      const std::string p = std::to_string(port);
      for (const std::string host : {"127.0.0.1", "127.1", "0x7f.1", "2130706433", "0177.0.0.1",
                                     "localhost", "LocalHost.", "[::ffff:127.0.0.1]", "[::1]"}) {
        for (const std::string scheme : {"https://", "http://"}) {
          urls.push_back(scheme + host + ":" + p + "/files/leak");
          expected.push_back(scheme == "https://" ? ErrorCode::endpoint_not_allowed
                                                  : ErrorCode::endpoint_scheme);
        }
      }
    }
    std::vector<UploadJob> jobs;
    for (const std::string& url : urls) jobs.push_back(job_for(url, body));
    uploader.upload(jobs);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const std::string url = urls[i];
      CAPTURE(url);
      CHECK(jobs[i].status == UploadStatus::permanent);
      CHECK(jobs[i].error == expected[i]);
      CHECK(jobs[i].attempts == 0);
      CHECK(jobs[i].http_status == 0);
    }
    CHECK(nginx.requests(1, std::chrono::milliseconds(300)).empty());
    CHECK_FALSE(std::filesystem::exists(nginx.stored_file("/files/leak")));
  }

  TEST_CASE_TEMPLATE("the endpoint policy refuses before connecting", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody body({"x"});
    filebuilder::UploaderOptions options = test_options();
    options.policy = {};  // nothing allowed
    U uploader(std::move(options));

    SUBCASE("http to a host not allowed") {
      const std::string url = nginx.url("/files/refused");
      std::vector<UploadJob> jobs{job_for(url, body)};
      uploader.upload(jobs);
      CHECK(jobs[0].status == UploadStatus::permanent);
      CHECK(jobs[0].error == ErrorCode::endpoint_scheme);
      CHECK(jobs[0].attempts == 0);
    }
    SUBCASE("https to a loopback literal") {
      const std::string url = "https://127.0.0.1:" + std::to_string(nginx.port()) + "/files/r";
      std::vector<UploadJob> jobs{job_for(url, body)};
      uploader.upload(jobs);
      CHECK(jobs[0].status == UploadStatus::permanent);
      CHECK(jobs[0].error == ErrorCode::endpoint_not_allowed);
      CHECK(jobs[0].attempts == 0);
    }
    SUBCASE("https to localhost") {
      const std::string url = "https://LocalHost.:" + std::to_string(nginx.port()) + "/files/r";
      std::vector<UploadJob> jobs{job_for(url, body)};
      uploader.upload(jobs);
      CHECK(jobs[0].error == ErrorCode::endpoint_not_allowed);
      CHECK(jobs[0].attempts == 0);
    }
    SUBCASE("another scheme") {
      const std::string url = "ftp://127.0.0.1:" + std::to_string(nginx.port()) + "/files/r";
      std::vector<UploadJob> jobs{job_for(url, body)};
      uploader.upload(jobs);
      CHECK(jobs[0].error == ErrorCode::endpoint_scheme);
      CHECK(jobs[0].attempts == 0);
    }
    SUBCASE("userinfo") {
      const std::string url = "http://a@127.0.0.1:" + std::to_string(nginx.port()) + "/files/r";
      std::vector<UploadJob> jobs{job_for(url, body)};
      uploader.upload(jobs);
      CHECK(jobs[0].error == ErrorCode::endpoint_invalid);
      CHECK(jobs[0].attempts == 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(nginx.requests().empty());
  }

  TEST_CASE_TEMPLATE("a name that resolves to loopback is refused on the connected address", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    const std::string name = name_resolving_to_loopback();
    if (name.empty()) {
      MESSAGE("skipped: the host name does not resolve to loopback here");
      return;
    }
    Nginx nginx;
    PartsBody body({"x"});
    filebuilder::UploaderOptions options = test_options();
    options.policy = {};
    U uploader(std::move(options));
    // https passes the text check (a name, not localhost); the socket is refused.
    const std::string url = "https://" + name + ":" + std::to_string(nginx.port()) + "/files/r";
    std::vector<UploadJob> jobs{job_for(url, body)};
    uploader.upload(jobs);
    CHECK(jobs[0].status == UploadStatus::permanent);
    CHECK(jobs[0].error == ErrorCode::endpoint_not_allowed);
    CHECK(jobs[0].attempts == 1);
    CHECK(jobs[0].http_status == 0);
    CHECK(jobs[0].message.find("is not allowed") != std::string::npos);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(nginx.requests().empty());

    SUBCASE("allow-listing the name opens it, on any address") {
      filebuilder::UploaderOptions allowed = test_options();
      allowed.policy = {};
      allowed.policy.allow({name, nginx.port()});
      U opened(std::move(allowed));
      const std::string http_url =
          "http://" + name + ":" + std::to_string(nginx.port()) + "/files/by-name";
      std::vector<UploadJob> again{job_for(http_url, body)};
      opened.upload(again);
      CHECK(again[0].status == UploadStatus::success);
      CHECK(file_bytes(nginx.stored_file("/files/by-name")) == "x");
    }
  }

  TEST_CASE_TEMPLATE("https is verified against the given CA", U, FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    if (nginx.tls_port() == 0) {
      MESSAGE("skipped: no openssl command to make a certificate");
      return;
    }
    PartsBody body({"secret ", "bytes"});
    const std::string url = nginx.tls_url("/files/tls.bin");

    SUBCASE("with the CA") {
      filebuilder::UploaderOptions options = test_options();
      options.ca_file = nginx.ca_file().string();
      U uploader(std::move(options));
      std::vector<UploadJob> jobs{job_for(url, body)};
      uploader.upload(jobs);
      CHECK(jobs[0].status == UploadStatus::success);
      CHECK(file_bytes(nginx.stored_file("/files/tls.bin")) == "secret bytes");
      const auto log = nginx.requests(1);
      REQUIRE(log.size() == 1);
      CHECK(log[0].content_type.empty());
    }
    SUBCASE("without it the certificate is not trusted") {
      U uploader(test_options(2));
      std::vector<UploadJob> jobs{job_for(url, body)};
      uploader.upload(jobs);
      CHECK(jobs[0].status == UploadStatus::retryable);
      CHECK(jobs[0].error == ErrorCode::upload_failed);
      CHECK(jobs[0].attempts == 2);
      CHECK(jobs[0].http_status == 0);
      CHECK_FALSE(std::filesystem::exists(nginx.stored_file("/files/tls.bin")));
    }
  }

  TEST_CASE_TEMPLATE("a closed port is retryable after max_attempts", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    // A port nobody listens on: nginx's, after it has stopped.
    std::uint16_t port = 0;
    {
      Nginx nginx;
      port = nginx.port();
    }
    PartsBody body({"x"});
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/files/a";
    std::vector<UploadJob> jobs{job_for(url, body)};
    U uploader(test_options(3));
    uploader.upload(jobs);
    CHECK(jobs[0].status == UploadStatus::retryable);
    CHECK(jobs[0].error == ErrorCode::upload_failed);
    CHECK(jobs[0].attempts == 3);
    CHECK(jobs[0].http_status == 0);
    CHECK(jobs[0].message.find("after 3 attempts") != std::string::npos);
  }

  TEST_CASE_TEMPLATE("a server that never answers times out, retryable", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    // A listening socket nobody accepts on: the kernel completes the
    // handshake and buffers the request, no response ever comes.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    PartsBody body({"x"});
    const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/a";
    std::vector<UploadJob> jobs{job_for(url, body)};
    filebuilder::UploaderOptions options = test_options(2);
    options.total_timeout = std::chrono::milliseconds(200);
    U uploader(std::move(options));
    const auto start = std::chrono::steady_clock::now();
    uploader.upload(jobs);
    const auto took = std::chrono::steady_clock::now() - start;
    ::close(fd);
    CHECK(jobs[0].status == UploadStatus::retryable);
    CHECK(jobs[0].error == ErrorCode::upload_failed);
    CHECK(jobs[0].attempts == 2);
    CHECK(jobs[0].http_status == 0);
    CHECK(jobs[0].message.find("after 2 attempts") != std::string::npos);
    CHECK(took >= std::chrono::milliseconds(400));
    CHECK(took < std::chrono::seconds(10));
  }

  TEST_CASE_TEMPLATE("a body read error fails the attempt: the retry starts over from offset 0", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    SUBCASE("a failure once, then success") {
      PartsBody body({random_bytes(300'000, 7), random_bytes(300'000, 8)});
      body.fail_on_read = 2;  // after the first bytes were sent
      const std::string url = nginx.url("/files/flaky.bin");
      std::vector<UploadJob> jobs{job_for(url, body)};
      U uploader(test_options());
      uploader.upload(jobs);
      CHECK(jobs[0].status == UploadStatus::success);
      CHECK(jobs[0].attempts == 2);
      CHECK(file_bytes(nginx.stored_file("/files/flaky.bin")) == body.joined());
    }
    SUBCASE("a failure every time") {
      PartsBody body({"abc"});
      body.always_fail = true;
      const std::string url = nginx.url("/files/broken.bin");
      std::vector<UploadJob> jobs{job_for(url, body)};
      U uploader(test_options(2));
      uploader.upload(jobs);
      CHECK(jobs[0].status == UploadStatus::retryable);
      CHECK(jobs[0].error == ErrorCode::upload_failed);
      CHECK(jobs[0].attempts == 2);
      CHECK(jobs[0].message == "body read failed: store_unavailable after 2 attempts");
      CHECK_FALSE(std::filesystem::exists(nginx.stored_file("/files/broken.bin")));
    }
  }

  TEST_CASE_TEMPLATE("the path is sent as given, and proxies are ignored", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    ::setenv("http_proxy", "http://127.0.0.1:9", 1);
    ::setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
    ::setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
    PartsBody body({"dots"});
    const std::string url = nginx.url("/files/a/../b.bin?x=%2F");
    std::vector<UploadJob> jobs{job_for(url, body)};
    U uploader(test_options());
    uploader.upload(jobs);
    ::unsetenv("http_proxy");
    ::unsetenv("HTTPS_PROXY");
    ::unsetenv("ALL_PROXY");
    CHECK(jobs[0].status == UploadStatus::success);
    const auto log = nginx.requests(1);
    REQUIRE(log.size() == 1);
    CHECK(log[0].uri == "/files/a/../b.bin?x=%2F");
    CHECK(file_bytes(nginx.stored_file("/files/b.bin")) == "dots");
  }

  TEST_CASE_TEMPLATE("result fields are reset: a job without a body is refused", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    U uploader(test_options());
    UploadJob job;
    job.url = "http://127.0.0.1:1/x";
    job.attempts = 7;
    job.http_status = 500;
    job.message = "old";
    std::vector<UploadJob> jobs{job};
    uploader.upload(jobs);
    CHECK(jobs[0].status == UploadStatus::permanent);
    CHECK(jobs[0].attempts == 0);
    CHECK(jobs[0].http_status == 0);
    CHECK(jobs[0].message == "no body");
    std::vector<UploadJob> none;
    uploader.upload(none);
  }
}

TEST_CASE_TEMPLATE("upload: the fixture's /flaky/ location answers 503 while down, then stores", U,
                   FILEBUILDER_TEST_UPLOADERS) {
  Nginx nginx;
  U uploader(test_options(1));
  const std::string url = nginx.url("/flaky/f.bin");
  PartsBody body({"ab", "cd"});
  nginx.set_flaky_down(true);
  UploadJob down = job_for(url, body);
  uploader.upload(std::span<UploadJob>(&down, 1));
  CHECK(down.status == UploadStatus::retryable);
  CHECK(down.http_status == 503);
  nginx.set_flaky_down(false);
  UploadJob up = job_for(url, body);
  uploader.upload(std::span<UploadJob>(&up, 1));
  CHECK(up.status == UploadStatus::success);
  CHECK(file_bytes(nginx.stored_file("/flaky/f.bin")) == "abcd");
}

// --- TLS: verification, extra CAs, the bundle they are added to --------------

namespace {

using filebuilder::test::TestCa;

using TwoCas = filebuilder::test::TwoCaServers;

/// Uploads BODY to /files/NAME on each server in one call; returns the statuses.
template <typename Upload>
std::vector<UploadStatus> upload_to(Upload& uploader, const std::vector<const Nginx*>& servers,
                                    PartsBody& body, const std::string& name) {
  std::vector<std::string> urls;
  for (const Nginx* server : servers) urls.push_back(server->tls_url("/files/" + name));
  std::vector<UploadJob> jobs;
  for (const std::string& url : urls) jobs.push_back(job_for(url, body));
  uploader.upload(jobs);
  std::vector<UploadStatus> statuses;
  for (const UploadJob& job : jobs) statuses.push_back(job.status);
  return statuses;
}

}  // namespace

TEST_SUITE("upload.tls") {
  TEST_CASE_TEMPLATE(
      "ca_file adds its CAs to the bundle's: both are trusted, each alone is not enough", U,
      FILEBUILDER_TEST_UPLOADERS) {
    if (!TestCa::available()) {
      MESSAGE("skipped: no openssl command to make certificates");
      return;
    }
    TwoCas tls;
    PartsBody body({"trusted"});
    const std::vector<const Nginx*> both = {&tls.nginx_a, &tls.nginx_b};
    // ca_bundle stands in for the system's CA bundle: CA A.
    SUBCASE("the bundle alone: A's server is trusted, B's is not") {
      filebuilder::UploaderOptions options = test_options(1);
      options.ca_bundle = tls.a.cert().string();
      U uploader(std::move(options));
      CHECK(upload_to(uploader, both, body, "bundle") ==
            std::vector<UploadStatus>{UploadStatus::success, UploadStatus::retryable});
    }
    SUBCASE("the bundle and ca_file: both servers are trusted, in one batch and the next") {
      filebuilder::UploaderOptions options = test_options(1);
      options.ca_bundle = tls.a.cert().string();
      options.ca_file = tls.b.cert().string();
      U uploader(std::move(options));
      const std::vector<UploadStatus> ok(2, UploadStatus::success);
      CHECK(upload_to(uploader, both, body, "first") == ok);
      CHECK(upload_to(uploader, both, body, "second") == ok);
      CHECK(file_bytes(tls.nginx_a.stored_file("/files/second")) == "trusted");
      CHECK(file_bytes(tls.nginx_b.stored_file("/files/second")) == "trusted");
    }
    SUBCASE("ca_file with libcurl's default bundle: B's server is trusted, A's is not") {
      filebuilder::UploaderOptions options = test_options(1);
      options.ca_file = tls.b.cert().string();
      U uploader(std::move(options));
      CHECK(upload_to(uploader, both, body, "default") ==
            std::vector<UploadStatus>{UploadStatus::retryable, UploadStatus::success});
    }
  }

  TEST_CASE_TEMPLATE("a certificate for another name is refused even from a trusted CA", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    if (!TestCa::available()) {
      MESSAGE("skipped: no openssl command to make certificates");
      return;
    }
    TwoCas tls;
    PartsBody body({"x"});
    filebuilder::UploaderOptions options = test_options(1);
    options.ca_file = tls.b.cert().string();
    // other.test resolves to B's server, whose certificate names only 127.0.0.1.
    const std::string port = std::to_string(tls.nginx_b.tls_port());
    options.resolve = {"other.test:" + port + ":127.0.0.1"};
    options.policy.allow({"other.test", std::nullopt});
    U uploader(std::move(options));
    const std::string by_name = tls.nginx_b.tls_url("/files/n", "other.test");
    const std::string by_ip = tls.nginx_b.tls_url("/files/ip");
    std::vector<UploadJob> jobs{job_for(by_name, body), job_for(by_ip, body)};
    uploader.upload(jobs);
    CHECK(jobs[0].status == UploadStatus::retryable);
    CHECK(jobs[0].error == ErrorCode::upload_failed);
    CHECK(jobs[0].http_status == 0);
    CHECK(jobs[1].status == UploadStatus::success);
    CHECK_FALSE(std::filesystem::exists(tls.nginx_b.stored_file("/files/n")));
  }

  TEST_CASE_TEMPLATE(
      "a ca_file that cannot be read, or holds no certificate, is refused at construction", U,
      FILEBUILDER_TEST_UPLOADERS) {
    filebuilder::test::TempDir dir("filebuilder-tls");
    filebuilder::UploaderOptions missing;
    missing.ca_file = (dir / "missing.pem").string();
    CHECK_THROWS_WITH_AS(U{missing}, ("ca_file: cannot read '" + missing.ca_file + "'").c_str(),
                         std::runtime_error);
    std::ofstream(dir / "empty.pem") << "not a certificate\n";
    filebuilder::UploaderOptions empty;
    empty.ca_file = (dir / "empty.pem").string();
    CHECK_THROWS_WITH_AS(U{empty},
                         ("ca_file: no PEM certificate in '" + empty.ca_file + "'").c_str(),
                         std::runtime_error);
  }
}

// --- The address actually connected -----------------------------------------

TEST_SUITE("upload.connected_address") {
  TEST_CASE_TEMPLATE(
      "a public-looking name pinned to loopback is refused on the socket, not the text", U,
      FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody body({"x"});
    const std::string port = std::to_string(nginx.port());
    filebuilder::UploaderOptions options = test_options(3);
    options.policy = {};  // nothing allowed: https to public names only
    options.resolve = {"rebind.example.com:" + port + ":127.0.0.1"};
    // The text check lets it through: a name, https.
    const std::string url = "https://rebind.example.com:" + port + "/files/rebound";
    REQUIRE(options.policy.check(url) == ErrorCode::ok);
    U uploader(std::move(options));
    std::vector<UploadJob> jobs{job_for(url, body)};
    uploader.upload(jobs);
    CHECK(jobs[0].status == UploadStatus::permanent);
    CHECK(jobs[0].error == ErrorCode::endpoint_not_allowed);
    CHECK(jobs[0].message == "connecting to 127.0.0.1 is not allowed");
    CHECK(jobs[0].attempts == 1);  // permanent: not retried
    CHECK(jobs[0].http_status == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(nginx.requests().empty());

    SUBCASE("allow-listing exactly that name opens it (http, any address)") {
      filebuilder::UploaderOptions allowed = test_options(1);
      allowed.policy = {};
      allowed.policy.allow({"rebind.example.com", nginx.port()});
      allowed.resolve = {"rebind.example.com:" + port + ":127.0.0.1",
                         "other.example.com:" + port + ":127.0.0.1"};
      U opened(std::move(allowed));
      const std::string by_name = "http://rebind.example.com:" + port + "/files/by-name";
      const std::string other = "https://other.example.com:" + port + "/files/other";
      std::vector<UploadJob> again{job_for(by_name, body), job_for(other, body)};
      opened.upload(again);
      CHECK(again[0].status == UploadStatus::success);
      CHECK(file_bytes(nginx.stored_file("/files/by-name")) == "x");
      // Another name on the same address is not opened by it.
      CHECK(again[1].status == UploadStatus::permanent);
      CHECK(again[1].error == ErrorCode::endpoint_not_allowed);
      CHECK_FALSE(std::filesystem::exists(nginx.stored_file("/files/other")));
    }
  }

  TEST_CASE_TEMPLATE("every refused range is refused on the socket, IPv6 and IPv4-mapped included",
                     U, FILEBUILDER_TEST_UPLOADERS) {
    PartsBody body({"x"});
    // Nothing listens there: the refusal comes before any connection.
    const std::vector<std::pair<std::string, std::string>> pinned = {
        {"metadata.example.com", "169.254.169.254"},
        {"ten.example.com", "10.1.2.3"},
        {"cgnat.example.com", "100.64.0.1"},
        {"private.example.com", "172.16.5.4"},
        {"home.example.com", "192.168.1.1"},
        {"zero.example.com", "0.0.0.0"},
        {"v6.example.com", "[::1]"},
        {"mapped.example.com", "[::ffff:127.0.0.1]"},
        {"ula.example.com", "[fd00::1]"},
        {"link.example.com", "[fe80::1]"}};
    filebuilder::UploaderOptions options = test_options(2);
    options.policy = {};
    for (const auto& [name, address] : pinned) options.resolve.push_back(name + ":443:" + address);
    U uploader(std::move(options));
    std::vector<UploadJob> jobs;
    std::vector<std::string> urls;
    for (const auto& entry : pinned) urls.push_back("https://" + entry.first + "/f");
    for (const std::string& url : urls) jobs.push_back(job_for(url, body));
    uploader.upload(jobs);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      CAPTURE(urls[i]);
      std::string address = pinned[i].second;
      if (address.front() == '[') address = address.substr(1, address.size() - 2);
      CHECK(jobs[i].status == UploadStatus::permanent);
      CHECK(jobs[i].error == ErrorCode::endpoint_not_allowed);
      CHECK(jobs[i].message == "connecting to " + address + " is not allowed");
      CHECK(jobs[i].attempts == 1);
    }
  }

  TEST_CASE_TEMPLATE("redirects of every kind are permanent refusals, never followed", U,
                     FILEBUILDER_TEST_UPLOADERS) {
    Nginx nginx;
    PartsBody body({"x"});
    U uploader(test_options());
    for (const char* kind : {"/redirect/", "/redirect301/", "/redirect307/", "/redirect308/"}) {
      const std::string path = std::string(kind) + "a";
      CAPTURE(path);
      const std::string url = nginx.url(path);
      std::vector<UploadJob> jobs{job_for(url, body)};
      uploader.upload(jobs);
      CHECK(jobs[0].status == UploadStatus::permanent);
      CHECK(jobs[0].error == ErrorCode::upload_refused);
      CHECK(jobs[0].attempts == 1);
    }
    const auto log = nginx.requests(4);
    REQUIRE(log.size() == 4);
    CHECK(log[0].status == 302);
    CHECK(log[1].status == 301);
    CHECK(log[2].status == 307);
    CHECK(log[3].status == 308);
    CHECK_FALSE(std::filesystem::exists(nginx.stored_file("/files/x")));
  }
}
