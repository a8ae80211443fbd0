#include "filebuilder/config.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <type_traits>

#include "filebuilder/upload/options.hpp"
#include "filebuilder/upload/select.hpp"

using namespace filebuilder;

TEST_CASE("config: allow-list entries, repeated and comma-separated, become one policy") {
  Config config;
  config.allow_hosts = {"127.0.0.1:8080, Example.COM", "[::1]"};
  EndpointPolicy policy;
  std::string bad;
  REQUIRE(config.endpoint_policy(policy, bad) == ErrorCode::ok);
  CHECK(policy.allowed().size() == 3);
  CHECK(policy.check("http://127.0.0.1:8080/x") == ErrorCode::ok);
  CHECK(policy.check("http://127.0.0.1:8081/x") == ErrorCode::endpoint_scheme);
  CHECK(policy.check("http://example.com/x") == ErrorCode::ok);
  CHECK(policy.check("http://[::1]:9/x") == ErrorCode::ok);
  CHECK(policy.check("http://other.example.com/x") == ErrorCode::endpoint_scheme);
}

TEST_CASE("config: a bad allow-list entry is named") {
  Config config;
  config.allow_hosts = {"good.example.com,bad host:99999"};
  EndpointPolicy policy;
  std::string bad;
  CHECK(config.endpoint_policy(policy, bad) == ErrorCode::endpoint_invalid);
  CHECK(bad == "bad host:99999");
}

TEST_CASE("config: limits and store and uploader options follow the settings") {
  Config config;
  config.limits.max_part_bytes = 10;
  config.max_memory_bytes = 1234;
  config.max_open_files = 7;
  config.expire_after_seconds = 60;
  config.upload_attempts = 0;
  config.retry_backoff_ms = 5;
  config.upload_timeout_seconds = 9;
  config.ca_file = "/tmp/ca.pem";
  config.ca_bundle = "/tmp/bundle.pem";
  const MemoryStoreOptions store = config.memory_store_options();
  CHECK(store.max_bytes == 1234);
  CHECK(store.max_open_files == 7);
  CHECK(store.expire_after == std::chrono::seconds(60));
  EndpointPolicy policy;
  const ReassemblerOptions reassembler = config.reassembler_options(policy);
  CHECK(reassembler.limits.max_part_bytes == 10);
  const UploaderOptions uploader = uploader_options(config, policy);
  CHECK(uploader.max_attempts == 1);  // at least one attempt
  CHECK(uploader.backoff_base == std::chrono::milliseconds(5));
  CHECK(uploader.total_timeout == std::chrono::seconds(9));
  CHECK(uploader.ca_file == "/tmp/ca.pem");
  CHECK(uploader.ca_bundle == "/tmp/bundle.pem");
}

TEST_CASE("config: with_uploader builds the uploader named, and names the ones there are") {
  Config config;
  EndpointPolicy policy;
  std::string error;
  std::string built;
  const auto name_of = [&built](auto& uploader) {
#if defined(FILEBUILDER_HAS_CURL)
    if constexpr (std::is_same_v<std::decay_t<decltype(uploader)>, CurlUploader>) built = "curl";
#endif
#if defined(FILEBUILDER_HAS_BEAST)
    if constexpr (std::is_same_v<std::decay_t<decltype(uploader)>, BeastUploader>) built = "beast";
#endif
    return 7;
  };
  std::string there = available_uploaders();
#if defined(FILEBUILDER_HAS_CURL)
  CHECK(config.uploader == "curl");  // the default
  CHECK(with_uploader(config, policy, name_of, -1, error) == 7);
  CHECK(built == "curl");
#endif
#if defined(FILEBUILDER_HAS_BEAST)
  config.uploader = "beast";
  CHECK(with_uploader(config, policy, name_of, -1, error) == 7);
  CHECK(built == "beast");
#endif
  config.uploader = "wget";
  CHECK(with_uploader(config, policy, name_of, -1, error) == -1);
  CHECK(error == "unknown uploader 'wget' (" + there + ")");
  // An uploader that cannot be built is a configuration error, not an exception.
  config.uploader = "curl";
  config.ca_file = "/nonexistent/ca.pem";
#if defined(FILEBUILDER_HAS_CURL)
  CHECK(with_uploader(config, policy, name_of, -1, error) == -1);
  CHECK(error == "ca_file: cannot read '/nonexistent/ca.pem'");
#endif
}

TEST_CASE("config: read from the environment, numbers checked") {
  std::map<std::string, std::string> env = {
      {"FILEBUILDER_STORE", "file:/tmp/fb"},
      {"FILEBUILDER_ALLOW_HOSTS", "127.0.0.1:9000,example.com"},
      {"LOG_LEVEL", "debug"},
      {"FILEBUILDER_MAX_PART_BYTES", "2048"},
      {"FILEBUILDER_UPLOAD_ATTEMPTS", "2"},
      {"FILEBUILDER_CA_FILE", "/etc/extra.pem"},
      {"FILEBUILDER_CA_BUNDLE", "/etc/pki/tls/certs/ca-bundle.crt"},
      {"FILEBUILDER_UPLOADER", "beast"},
  };
  const auto get = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  Config config;
  std::string bad;
  REQUIRE(Config::from_environment(get, config, bad) == ErrorCode::ok);
  CHECK(config.store == "file:/tmp/fb");
  CHECK(config.log_level == "debug");
  CHECK(config.limits.max_part_bytes == 2048);
  CHECK(config.limits.max_partitions == Limits{}.max_partitions);
  CHECK(config.upload_attempts == 2);
  CHECK(config.ca_file == "/etc/extra.pem");
  CHECK(config.ca_bundle == "/etc/pki/tls/certs/ca-bundle.crt");
  CHECK(config.uploader == "beast");
  EndpointPolicy policy;
  REQUIRE(config.endpoint_policy(policy, bad) == ErrorCode::ok);
  CHECK(policy.allowed().size() == 2);

  for (const char* value : {"", "12x", "-1", "99999999999999999999", "4294967296"}) {
    CAPTURE(std::string(value));
    env["FILEBUILDER_UPLOAD_ATTEMPTS"] = value;
    CHECK(Config::from_environment(get, config, bad) == ErrorCode::invalid_config);
    CHECK(bad == "FILEBUILDER_UPLOAD_ATTEMPTS");
  }
}
