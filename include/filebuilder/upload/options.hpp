// filebuilder: UploaderOptions, what every HTTP uploader of the library is
// configured with (CurlUploader and BeastUploader take the same struct), and
// the options a Config asks for.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "filebuilder/config.hpp"
#include "filebuilder/upload/policy.hpp"

namespace filebuilder {

struct UploaderOptions {
  EndpointPolicy policy;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds total_timeout{300'000};  // per attempt
  unsigned max_attempts = 4;                         // 1 + retries; 0 counts as 1
  std::chrono::milliseconds backoff_base{200};       // the first retry waits up to this
  std::chrono::milliseconds backoff_max{5'000};      // no wait is longer
  long max_host_connections = 8;                     // per scheme, host and port; at least 1
  // A PEM file of CA certificates trusted in addition to the system's (the
  // default CA bundle and directory, or ca_bundle): read once by the
  // constructor. Empty: none. Self-signed endpoints in tests, private CAs in
  // production.
  std::string ca_file;
  // A PEM bundle that replaces the default CA bundle file, for a system whose
  // bundle is not where the library was built to look (the Lambda runtime on
  // Amazon Linux runs Debian's libraries). Empty: the default.
  std::string ca_bundle;
  // Pinned name resolutions, "HOST:PORT:ADDRESS[,ADDRESS...]" as curl's
  // --resolve, used instead of DNS for those names. For tests and pinned
  // endpoints; the addresses are still checked against the policy.
  std::vector<std::string> resolve;
};

/// The uploader options a Config asks for (CLI flags, Lambda and daemon environment).
[[nodiscard]] inline UploaderOptions uploader_options(const Config& config,
                                                      const EndpointPolicy& policy) {
  UploaderOptions options;
  options.policy = policy;
  options.ca_file = config.ca_file;
  options.ca_bundle = config.ca_bundle;
  options.max_attempts = std::max(1u, config.upload_attempts);
  options.backoff_base = std::chrono::milliseconds(config.retry_backoff_ms);
  options.total_timeout = std::chrono::seconds(config.upload_timeout_seconds);
  return options;
}

}  // namespace filebuilder
