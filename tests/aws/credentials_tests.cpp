// The credentials chain without servers: the environment, the shared
// credentials file, the JSON replies, the order of precedence, and the
// provider's cache and refresh (a fake source and an injected clock). The
// container and instance-metadata sources are tested against loopback fakes
// in credentials_itest.cpp.
#include "filebuilder/aws/credentials.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "aws/fake_env.hpp"
#include "support/temp_dir.hpp"

namespace aws = filebuilder::aws;
using filebuilder::ErrorCode;
using Kind = aws::detail::SourceResult::Kind;
using namespace std::chrono_literals;

namespace {

using filebuilder::test::FakeEnv;

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

const std::string two_profiles =
    "# a comment\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT\n"
    "aws_secret_access_key = secret/default+key\n"
    "\n"
    "; another comment\n"
    "[prod]\r\n"
    "aws_access_key_id=AKIDPROD\r\n"
    "aws_secret_access_key=secretprod\r\n"
    "aws_session_token = tokenprod\r\n"
    "s3 =\n"
    "  max_concurrent_requests = 20\n";

}  // namespace

TEST_CASE("credentials: the environment") {
  FakeEnv env;
  CHECK(aws::detail::from_environment(env.getenv()).kind == Kind::absent);

  env.vars = {{"AWS_ACCESS_KEY_ID", "AKID"}, {"AWS_SECRET_ACCESS_KEY", "secret"}};
  aws::detail::SourceResult result = aws::detail::from_environment(env.getenv());
  REQUIRE(result.kind == Kind::found);
  CHECK(result.credentials.access_key_id == "AKID");
  CHECK(result.credentials.secret_access_key == "secret");
  CHECK(result.credentials.session_token.empty());
  CHECK(!result.credentials.expiration);
  CHECK(result.credentials.source == "environment");

  env.vars["AWS_SESSION_TOKEN"] = "token";
  CHECK(aws::detail::from_environment(env.getenv()).credentials.session_token == "token");

  env.vars.erase("AWS_SECRET_ACCESS_KEY");
  result = aws::detail::from_environment(env.getenv());
  CHECK(result.kind == Kind::failed);
  CHECK(result.error == ErrorCode::missing_credentials);
  CHECK(result.note == "AWS_SECRET_ACCESS_KEY is not set");
}

TEST_CASE("credentials: the shared credentials file's profiles") {
  using aws::detail::parse_credentials_file;
  aws::detail::SourceResult result = parse_credentials_file(two_profiles, "default");
  REQUIRE(result.kind == Kind::found);
  CHECK(result.credentials.access_key_id == "AKIDDEFAULT");
  CHECK(result.credentials.secret_access_key == "secret/default+key");
  CHECK(result.credentials.session_token.empty());

  result = parse_credentials_file(two_profiles, "prod");
  REQUIRE(result.kind == Kind::found);
  CHECK(result.credentials.access_key_id == "AKIDPROD");
  CHECK(result.credentials.secret_access_key == "secretprod");
  CHECK(result.credentials.session_token == "tokenprod");

  CHECK(parse_credentials_file(two_profiles, "dev").kind == Kind::absent);
  CHECK(parse_credentials_file("", "default").kind == Kind::absent);
  CHECK(parse_credentials_file("[default]\nregion = eu-west-1\n", "default").kind == Kind::absent);
  // The legacy name of the token, and keys in any case.
  result = parse_credentials_file(
      "[default]\nAWS_ACCESS_KEY_ID=a\naws_secret_access_key=b\naws_security_token=t", "default");
  REQUIRE(result.kind == Kind::found);
  CHECK(result.credentials.session_token == "t");

  result = parse_credentials_file("[default]\naws_access_key_id=a\n", "default");
  CHECK(result.kind == Kind::failed);
  CHECK(result.error == ErrorCode::missing_credentials);
  CHECK(result.note.find("without aws_secret_access_key") != std::string::npos);
}

TEST_CASE("credentials: the shared credentials file is found and its profile chosen") {
  filebuilder::test::TempDir dir;
  FakeEnv env;
  std::filesystem::create_directories(dir / ".aws");
  write_file(dir / ".aws" / "credentials", two_profiles);
  write_file(dir / "other", "[default]\naws_access_key_id=OTHER\naws_secret_access_key=s\n");

  CHECK(aws::detail::from_shared_file(env.getenv()).kind == Kind::absent);  // no HOME

  env.vars["HOME"] = dir.path().string();
  aws::detail::SourceResult result = aws::detail::from_shared_file(env.getenv());
  REQUIRE(result.kind == Kind::found);
  CHECK(result.credentials.access_key_id == "AKIDDEFAULT");
  CHECK(result.credentials.source.find("(profile default)") != std::string::npos);

  env.vars["AWS_PROFILE"] = "prod";
  result = aws::detail::from_shared_file(env.getenv());
  REQUIRE(result.kind == Kind::found);
  CHECK(result.credentials.access_key_id == "AKIDPROD");

  env.vars["AWS_SHARED_CREDENTIALS_FILE"] = (dir / "other").string();
  env.vars.erase("AWS_PROFILE");
  result = aws::detail::from_shared_file(env.getenv());
  REQUIRE(result.kind == Kind::found);
  CHECK(result.credentials.access_key_id == "OTHER");

  // A profile named by AWS_PROFILE must exist; the implicit default need not.
  env.vars["AWS_PROFILE"] = "prod";
  result = aws::detail::from_shared_file(env.getenv());
  CHECK(result.kind == Kind::failed);
  CHECK(result.error == ErrorCode::missing_credentials);
  CHECK(result.note.find("no profile 'prod'") != std::string::npos);
  write_file(dir / "other", "[prod]\naws_access_key_id=P\naws_secret_access_key=s\n");
  env.vars.erase("AWS_PROFILE");
  CHECK(aws::detail::from_shared_file(env.getenv()).kind == Kind::absent);

  env.vars["AWS_SHARED_CREDENTIALS_FILE"] = (dir / "missing").string();
  result = aws::detail::from_shared_file(env.getenv());
  CHECK(result.kind == Kind::absent);
  CHECK(result.note.find("cannot be read") != std::string::npos);
}

TEST_CASE("credentials: the chain's order, and a message naming every source tried") {
  filebuilder::test::TempDir dir;
  write_file(dir / "credentials", "[default]\naws_access_key_id=FILE\naws_secret_access_key=s\n");
  FakeEnv env;
  env.vars = {{"AWS_EC2_METADATA_DISABLED", "TRUE"}};
  std::string message;
  aws::Credentials credentials;
  CHECK(aws::resolve_credentials(env.options(), message).get(credentials) ==
        ErrorCode::missing_credentials);
  CHECK(message.starts_with("no AWS credentials found (tried environment: "));
  for (const char* source : {"shared credentials file: ", "container: ", "instance metadata: ",
                             "AWS_EC2_METADATA_DISABLED is true"})
    CHECK_MESSAGE(message.find(source) != std::string::npos, source);

  env.vars["AWS_SHARED_CREDENTIALS_FILE"] = (dir / "credentials").string();
  // The container source comes after the file: with the file present it is never asked.
  env.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:1/never";
  REQUIRE(aws::resolve_credentials(env.options(), message).get(credentials) == ErrorCode::ok);
  CHECK(credentials.access_key_id == "FILE");

  env.vars["AWS_ACCESS_KEY_ID"] = "ENV";
  env.vars["AWS_SECRET_ACCESS_KEY"] = "s";
  REQUIRE(aws::resolve_credentials(env.options(), message).get(credentials) == ErrorCode::ok);
  CHECK(credentials.access_key_id == "ENV");
  CHECK(credentials.source == "environment");

  // A source that is configured but wrong stops the chain.
  env.vars.erase("AWS_SECRET_ACCESS_KEY");
  CHECK(aws::resolve_credentials(env.options(), message).get(credentials) ==
        ErrorCode::missing_credentials);
  CHECK(message.find("environment: AWS_SECRET_ACCESS_KEY is not set") != std::string::npos);
}

TEST_CASE("credentials: container and instance-metadata replies") {
  using aws::detail::parse_credentials_json;
  aws::Credentials credentials;
  std::string message;
  REQUIRE(parse_credentials_json(R"({"Code":"Success","LastUpdated":"2015-08-30T06:00:00Z",)"
                                 R"("Type":"AWS-HMAC","AccessKeyId":"ASIA1","SecretAccessKey":"s",)"
                                 R"("Token":"t","Expiration":"2015-08-30T12:36:00Z"})",
                                 credentials, message) == ErrorCode::ok);
  CHECK(credentials.access_key_id == "ASIA1");
  CHECK(credentials.secret_access_key == "s");
  CHECK(credentials.session_token == "t");
  REQUIRE(credentials.expiration);
  CHECK(*credentials.expiration == std::chrono::system_clock::from_time_t(1440938160));

  CHECK(parse_credentials_json(R"({"AccessKeyId":"a","SecretAccessKey":"s"})", credentials,
                               message) == ErrorCode::ok);
  CHECK(!credentials.expiration);
  CHECK(parse_credentials_json(R"({"Code":"Failed","AccessKeyId":"a","SecretAccessKey":"s"})",
                               credentials, message) == ErrorCode::credentials_unavailable);
  CHECK(message == "the reply's Code is Failed");
  CHECK(parse_credentials_json(R"({"AccessKeyId":"a"})", credentials, message) ==
        ErrorCode::credentials_unavailable);
  CHECK(parse_credentials_json("[1]", credentials, message) == ErrorCode::credentials_unavailable);
  CHECK(parse_credentials_json("not json", credentials, message) ==
        ErrorCode::credentials_unavailable);
  CHECK(parse_credentials_json(R"({"AccessKeyId":"a","SecretAccessKey":"s","Expiration":"soon"})",
                               credentials, message) == ErrorCode::credentials_unavailable);
}

TEST_CASE("credentials: ISO 8601 times") {
  using aws::detail::parse_iso8601;
  const auto t = std::chrono::system_clock::from_time_t(1440938160);
  CHECK(parse_iso8601("2015-08-30T12:36:00Z") == t);
  CHECK(parse_iso8601("2015-08-30T12:36:00.123456Z") == t);
  CHECK(parse_iso8601("2015-08-30T14:36:00+02:00") == t);
  CHECK(parse_iso8601("2015-08-30T11:36:00-01:00") == t);
  CHECK(parse_iso8601("1970-01-01T00:00:00Z") == std::chrono::system_clock::from_time_t(0));
  for (const char* bad : {"", "2015-08-30", "2015-08-30T12:36:00", "2015-13-30T12:36:00Z",
                          "2015-08-30T12:36:00Zjunk", "2015-08-30 12:36:00Z", "2015-08-30T12:36Z",
                          "2015-08-30T12:36:00.Z", "2015-08-30T12:36:00+0200"})
    CHECK_MESSAGE(!parse_iso8601(bad), bad);
}

namespace {

/// A source that counts its calls and answers what the test scripted.
struct FakeSource {
  std::atomic<int> calls{0};
  std::mutex mutex;
  ErrorCode error = ErrorCode::ok;
  aws::Credentials next;

  aws::CredentialsSource source() {
    return [this](std::string& message) -> filebuilder::Result<aws::Credentials> {
      ++calls;
      std::lock_guard lock(mutex);
      if (error != ErrorCode::ok) {
        message = "scripted failure";
        return error;
      }
      return next;
    };
  }
};

aws::Credentials expiring(const std::string& key, std::chrono::system_clock::time_point at) {
  aws::Credentials credentials;
  credentials.access_key_id = key;
  credentials.secret_access_key = "secret-" + key;  // (a short literal trips GCC 12's -Wrestrict)
  credentials.expiration = at;
  return credentials;
}

}  // namespace

TEST_CASE("credentials: the provider refreshes 5 minutes before expiration, not before") {
  const auto start = std::chrono::system_clock::from_time_t(1'700'000'000);
  auto now = start;
  aws::CredentialsOptions options;
  options.clock = [&now] { return now; };
  FakeSource fake;
  fake.next = expiring("FIRST", start + 1h);
  aws::CredentialsProvider provider(fake.source(), options);

  aws::Credentials got;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "FIRST");
  CHECK(fake.calls == 1);
  now = start + 54min;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "FIRST");
  CHECK(fake.calls == 1);

  fake.next = expiring("SECOND", start + 2h);
  now = start + 55min + 1s;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "SECOND");
  CHECK(fake.calls == 2);
  now = start + 1h + 30min;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "SECOND");
  CHECK(fake.calls == 2);
}

TEST_CASE("credentials: a failed early refresh keeps the valid credentials, then fails at expiry") {
  const auto start = std::chrono::system_clock::from_time_t(1'700'000'000);
  auto now = start;
  aws::CredentialsOptions options;
  options.clock = [&now] { return now; };
  options.retry_after = 10s;
  FakeSource fake;
  fake.next = expiring("FIRST", start + 1h);
  aws::CredentialsProvider provider(fake.source(), options);
  aws::Credentials got;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);

  fake.error = ErrorCode::credentials_unavailable;
  now = start + 57min;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "FIRST");
  CHECK(fake.calls == 2);
  now += 5s;  // within retry_after: not asked again
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(fake.calls == 2);
  now += 6s;
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(fake.calls == 3);

  now = start + 1h;  // expired: an error, with the source's message
  std::string message;
  CHECK(provider.get(message).get(got) == ErrorCode::credentials_unavailable);
  CHECK(message == "scripted failure");
  CHECK(fake.calls == 4);

  fake.error = ErrorCode::ok;
  fake.next = expiring("AGAIN", start + 3h);
  REQUIRE(provider.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "AGAIN");
}

TEST_CASE("credentials: credentials without expiration are fetched once") {
  auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
  aws::CredentialsOptions options;
  options.clock = [&now] { return now; };
  FakeSource fake;
  fake.next.access_key_id = "STATIC";
  fake.next.secret_access_key = "s";
  aws::CredentialsProvider provider(fake.source(), options);
  aws::Credentials got;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(provider.get().get(got) == ErrorCode::ok);
    now += std::chrono::hours(24 * 365);
  }
  CHECK(fake.calls == 1);

  // Credentials that are already close to expiry are used, and asked for again
  // only after retry_after.
  FakeSource short_lived;
  short_lived.next = expiring("SHORT", now + 2min);
  aws::CredentialsProvider other(short_lived.source(), options);
  REQUIRE(other.get().get(got) == ErrorCode::ok);
  REQUIRE(other.get().get(got) == ErrorCode::ok);
  CHECK(got.access_key_id == "SHORT");
  CHECK(short_lived.calls == 1);
  now += 11s;
  REQUIRE(other.get().get(got) == ErrorCode::ok);
  CHECK(short_lived.calls == 2);
}

TEST_CASE("credentials: the provider is shared by threads, one of which fetches") {
  std::atomic<std::int64_t> seconds{1'700'000'000};
  aws::CredentialsOptions options;
  options.clock = [&seconds] { return std::chrono::system_clock::from_time_t(seconds.load()); };
  FakeSource fake;
  fake.next = expiring("SHARED", std::chrono::system_clock::from_time_t(1'700'003'600));
  aws::CredentialsProvider provider(fake.source(), options);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        aws::Credentials got;
        if (provider.get().get(got) == ErrorCode::ok && got.access_key_id == "SHARED") ++ok;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(ok == 8 * 200);
  CHECK(fake.calls == 1);
}
