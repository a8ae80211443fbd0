// The credentials chain against loopback fakes (cpp-httplib on 127.0.0.1) of
// the container credentials endpoint and the EC2 instance metadata service
// (IMDSv2): the authorization token, the token flow, the order of precedence,
// failures, and a refresh before expiry with an injected clock.
#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "aws/fake_env.hpp"
#include "filebuilder/aws/credentials.hpp"
#include "support/net.hpp"
#include "support/temp_dir.hpp"

namespace aws = filebuilder::aws;
using filebuilder::ErrorCode;
using namespace std::chrono_literals;

using filebuilder::test::FakeEnv;

namespace {

std::string iso8601(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  return std::string(buffer, std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc));
}

std::string credentials_json(const std::string& key, std::chrono::system_clock::time_point expires,
                             bool imds = false) {
  return std::string("{") + (imds ? R"("Code":"Success","Type":"AWS-HMAC",)" : "") +
         R"("AccessKeyId":")" + key + R"(","SecretAccessKey":"secret-)" + key +
         R"(","Token":"token-)" + key + R"(","Expiration":")" + iso8601(expires) + "\"}";
}

/// The container endpoint (GET /creds, GET /full) and IMDS (PUT
/// /latest/api/token, GET /latest/meta-data/iam/security-credentials/[role])
/// on one loopback server; every request is recorded.
class FakeAws {
 public:
  struct Seen {
    std::string method;
    std::string path;
    std::map<std::string, std::string> headers;  // the few the fakes look at, when sent
  };

  FakeAws() {
    server_.Get("/creds", [this](const httplib::Request& request, httplib::Response& response) {
      record(request);
      std::lock_guard lock(mutex_);
      if (!container_token.empty() &&
          request.get_header_value("Authorization") != container_token) {
        response.status = 401;
        return;
      }
      response.status = container_status;
      response.set_content(container_body, "application/json");
    });
    server_.Get("/full", [this](const httplib::Request& request, httplib::Response& response) {
      record(request);
      response.set_content(credentials_json("FULL", std::chrono::system_clock::now() + 1h),
                           "application/json");
    });
    server_.Put("/latest/api/token",
                [this](const httplib::Request& request, httplib::Response& response) {
                  record(request);
                  if (!request.has_header("X-aws-ec2-metadata-token-ttl-seconds")) {
                    response.status = 400;
                    return;
                  }
                  response.set_content(imds_token, "text/plain");
                });
    server_.Get(R"(/latest/meta-data/iam/security-credentials/(.*))",
                [this](const httplib::Request& request, httplib::Response& response) {
                  record(request);
                  std::lock_guard lock(mutex_);
                  if (request.get_header_value("X-aws-ec2-metadata-token") != imds_token) {
                    response.status = 401;
                    return;
                  }
                  const std::string role = request.matches[1];
                  if (role.empty() && !imds_role.empty()) {
                    response.set_content(imds_role + "\n", "text/plain");
                  } else if (!role.empty() && role == imds_role) {
                    response.set_content(imds_body, "text/plain");
                  } else {
                    response.status = 404;
                  }
                });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("cannot listen on 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 1000 && !server_.is_running(); ++i) std::this_thread::sleep_for(1ms);
  }
  ~FakeAws() {
    server_.stop();
    thread_.join();
  }
  FakeAws(const FakeAws&) = delete;
  FakeAws& operator=(const FakeAws&) = delete;

  [[nodiscard]] std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }

  [[nodiscard]] std::vector<Seen> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  [[nodiscard]] std::size_t count(const std::string& path_prefix) const {
    std::size_t n = 0;
    for (const Seen& s : seen()) n += s.path.starts_with(path_prefix);
    return n;
  }

  void set_container(int status, std::string body) {
    std::lock_guard lock(mutex_);
    container_status = status;
    container_body = std::move(body);
  }

  // Scripted replies; set before the requests (or under set_container).
  std::string container_token;
  int container_status = 200;
  std::string container_body;
  std::string imds_token = "imds-session-token";
  std::string imds_role = "filebuilder-role";
  std::string imds_body;

 private:
  void record(const httplib::Request& request) {
    Seen s{request.method, request.path, {}};
    for (const char* name :
         {"Authorization", "X-aws-ec2-metadata-token-ttl-seconds", "X-aws-ec2-metadata-token"})
      if (request.has_header(name)) s.headers[name] = request.get_header_value(name);
    std::lock_guard lock(mutex_);
    seen_.push_back(std::move(s));
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Seen> seen_;
};

aws::Credentials resolve_ok(const aws::CredentialsOptions& options) {
  std::string message;
  aws::Credentials credentials;
  const ErrorCode error = aws::resolve_credentials(options, message).get(credentials);
  INFO(message);
  REQUIRE(error == ErrorCode::ok);
  return credentials;
}

ErrorCode resolve_error(const aws::CredentialsOptions& options, std::string& message) {
  aws::Credentials credentials;
  return aws::resolve_credentials(options, message).get(credentials);
}

}  // namespace

TEST_CASE("credentials: the container endpoint (FULL_URI) with its authorization token") {
  FakeAws fake;
  const auto expires = std::chrono::system_clock::from_time_t(1'700'003'600);
  fake.container_token = "Bearer secret-token";
  fake.container_body = credentials_json("ASIACONTAINER", expires);
  FakeEnv env;
  env.vars = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", fake.base() + "/creds"},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer secret-token"},
              {"AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.base()}};
  const aws::Credentials credentials = resolve_ok(env.options());
  CHECK(credentials.access_key_id == "ASIACONTAINER");
  CHECK(credentials.secret_access_key == "secret-ASIACONTAINER");
  CHECK(credentials.session_token == "token-ASIACONTAINER");
  REQUIRE(credentials.expiration);
  CHECK(*credentials.expiration == expires);
  CHECK(credentials.source == "container endpoint " + fake.base() + "/creds");
  const std::vector<FakeAws::Seen> seen = fake.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "GET");
  CHECK(seen[0].headers.at("Authorization") == "Bearer secret-token");

  // A wrong token: the endpoint refuses, the chain stops there (IMDS is not asked).
  env.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "Bearer wrong";
  std::string message;
  CHECK(resolve_error(env.options(), message) == ErrorCode::credentials_unavailable);
  CHECK(message.find("HTTP 401") != std::string::npos);
  CHECK(message.find("/creds") != std::string::npos);
  CHECK(fake.count("/latest") == 0);
}

TEST_CASE("credentials: RELATIVE_URI comes before FULL_URI, the token file before the token") {
  FakeAws fake;
  filebuilder::test::TempDir dir;
  std::ofstream(dir / "token") << "from-the-file\n";
  fake.container_token = "from-the-file";
  fake.container_body = credentials_json("RELATIVE", std::chrono::system_clock::now() + 1h);
  FakeEnv env;
  env.vars = {{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds"},
              {"AWS_CONTAINER_CREDENTIALS_FULL_URI", fake.base() + "/full"},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", (dir / "token").string()},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "from-the-variable"}};
  aws::CredentialsOptions options = env.options();
  options.container_endpoint = fake.base();  // stands for http://169.254.170.2
  CHECK(resolve_ok(options).access_key_id == "RELATIVE");
  CHECK(fake.count("/full") == 0);

  env.vars.erase("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  CHECK(resolve_ok(options).access_key_id == "FULL");

  env.vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = (dir / "missing").string();
  std::string message;
  CHECK(resolve_error(options, message) == ErrorCode::credentials_unavailable);
  CHECK(message.find("cannot be read") != std::string::npos);
}

TEST_CASE("credentials: FULL_URI over http only to loopback or the container agents") {
  FakeEnv env;
  env.vars = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds"},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret"}};
  std::string message;
  CHECK(resolve_error(env.options(), message) == ErrorCode::invalid_config);
  CHECK(message.find("http://example.com/creds") != std::string::npos);
  CHECK(aws::detail::container_host_allowed("http://127.0.0.2:80/x"));
  CHECK(aws::detail::container_host_allowed("http://[::1]/x"));
  CHECK(aws::detail::container_host_allowed("http://169.254.170.2/v2/credentials/x"));
  CHECK(aws::detail::container_host_allowed("http://169.254.170.23/v1/credentials"));
  CHECK(aws::detail::container_host_allowed("https://example.com/creds"));
  CHECK(!aws::detail::container_host_allowed("http://169.254.169.254/"));
  CHECK(!aws::detail::container_host_allowed("http://10.0.0.1/"));
}

TEST_CASE("credentials: a container endpoint that fails stops the chain") {
  FakeAws fake;
  fake.container_status = 500;
  fake.container_body = "oops";
  fake.imds_body = credentials_json("IMDS", std::chrono::system_clock::now() + 1h, true);
  FakeEnv env;
  env.vars = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", fake.base() + "/creds"},
              {"AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.base()}};
  std::string message;
  CHECK(resolve_error(env.options(), message) == ErrorCode::credentials_unavailable);
  CHECK(message.find("HTTP 500") != std::string::npos);
  fake.set_container(200, "{\"AccessKeyId\":\"only\"}");
  CHECK(resolve_error(env.options(), message) == ErrorCode::credentials_unavailable);
  CHECK(message.find("no AccessKeyId or SecretAccessKey") != std::string::npos);
  CHECK(fake.count("/latest") == 0);
}

TEST_CASE("credentials: IMDSv2, a session token first, then the role and its credentials") {
  FakeAws fake;
  const auto expires = std::chrono::system_clock::from_time_t(1'700'021'600);
  fake.imds_body = credentials_json("ASIAIMDS", expires, true);
  FakeEnv env;
  env.vars = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.base() + "/"}};
  const aws::Credentials credentials = resolve_ok(env.options());
  CHECK(credentials.access_key_id == "ASIAIMDS");
  CHECK(credentials.session_token == "token-ASIAIMDS");
  REQUIRE(credentials.expiration);
  CHECK(*credentials.expiration == expires);
  CHECK(credentials.source.find("(role filebuilder-role)") != std::string::npos);

  const std::vector<FakeAws::Seen> seen = fake.seen();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].method == "PUT");
  CHECK(seen[0].path == "/latest/api/token");
  CHECK(seen[0].headers.at("X-aws-ec2-metadata-token-ttl-seconds") == "21600");
  CHECK(seen[1].method == "GET");
  CHECK(seen[1].path == "/latest/meta-data/iam/security-credentials/");
  CHECK(seen[1].headers.at("X-aws-ec2-metadata-token") == "imds-session-token");
  CHECK(seen[2].path == "/latest/meta-data/iam/security-credentials/filebuilder-role");
  CHECK(seen[2].headers.at("X-aws-ec2-metadata-token") == "imds-session-token");
}

TEST_CASE("credentials: IMDS without a role, unreachable, or disabled has nothing") {
  FakeAws fake;
  fake.imds_role.clear();
  FakeEnv env;
  env.vars = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.base()}};
  std::string message;
  CHECK(resolve_error(env.options(), message) == ErrorCode::missing_credentials);
  CHECK(message.find("no IAM role attached") != std::string::npos);
  CHECK(fake.count("/latest") == 2);

  env.vars["AWS_EC2_METADATA_DISABLED"] = "true";
  CHECK(resolve_error(env.options(), message) == ErrorCode::missing_credentials);
  CHECK(message.find("AWS_EC2_METADATA_DISABLED is true") != std::string::npos);
  CHECK(fake.count("/latest") == 2);

  env.vars.erase("AWS_EC2_METADATA_DISABLED");
  const std::string closed = "http://127.0.0.1:" + std::to_string(filebuilder::test::free_port());
  env.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = closed;
  CHECK(resolve_error(env.options(), message) == ErrorCode::missing_credentials);
  CHECK(message.find("instance metadata: EC2 instance metadata " + closed) != std::string::npos);
}

TEST_CASE("credentials: environment, then file, then container, then IMDS") {
  FakeAws fake;
  fake.container_body = credentials_json("CONTAINER", std::chrono::system_clock::now() + 1h);
  fake.imds_body = credentials_json("IMDS", std::chrono::system_clock::now() + 1h, true);
  filebuilder::test::TempDir dir;
  std::ofstream(dir / "credentials") << "[default]\naws_access_key_id=FILE\n"
                                        "aws_secret_access_key=s\n";
  FakeEnv env;
  env.vars = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.base()}};
  CHECK(resolve_ok(env.options()).access_key_id == "IMDS");
  env.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = fake.base() + "/creds";
  CHECK(resolve_ok(env.options()).access_key_id == "CONTAINER");
  env.vars["AWS_SHARED_CREDENTIALS_FILE"] = (dir / "credentials").string();
  CHECK(resolve_ok(env.options()).access_key_id == "FILE");
  env.vars["AWS_ACCESS_KEY_ID"] = "ENV";
  env.vars["AWS_SECRET_ACCESS_KEY"] = "s";
  CHECK(resolve_ok(env.options()).access_key_id == "ENV");
  CHECK(fake.count("/latest") == 3);  // IMDS asked only the first time
  CHECK(fake.count("/creds") == 1);   // the container only the second
}

TEST_CASE("credentials: the provider fetches container credentials again 5 minutes before expiry") {
  FakeAws fake;
  const auto start = std::chrono::system_clock::from_time_t(1'700'000'000);
  auto now = start;
  fake.container_body = credentials_json("ONE", start + 1h);
  FakeEnv env;
  env.vars = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", fake.base() + "/creds"}};
  aws::CredentialsOptions options = env.options();
  options.clock = [&now] { return now; };
  aws::CredentialsProvider provider(options);
  aws::Credentials got;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "ONE");
  now = start + 54min;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "ONE");
  CHECK(fake.count("/creds") == 1);

  fake.set_container(200, credentials_json("TWO", start + 2h));
  now = start + 56min;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "TWO");
  CHECK(fake.count("/creds") == 2);
}
