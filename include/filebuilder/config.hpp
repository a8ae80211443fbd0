// filebuilder: the configuration every adapter shares (CLI flags, Lambda and
// daemon environment), turned into the options of the policy, the store, the
// uploader and the Reassembler. One place, so that `--max-part-bytes` and
// FILEBUILDER_MAX_PART_BYTES mean the same everywhere.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "filebuilder/chunk.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/store/memory.hpp"
#include "filebuilder/upload/policy.hpp"

namespace filebuilder {

struct Config {
  std::string store = "memory:";         // FILEBUILDER_STORE
  std::string uploader = "curl";         // FILEBUILDER_UPLOADER: curl or beast
  std::vector<std::string> allow_hosts;  // FILEBUILDER_ALLOW_HOSTS (comma-separated entries)
  std::string ca_file;                   // FILEBUILDER_CA_FILE (CAs added to the system's)
  std::string ca_bundle;                 // FILEBUILDER_CA_BUNDLE (replaces libcurl's bundle file)
  std::string dead_letter;               // FILEBUILDER_DEAD_LETTER
  std::string log_level = "info";        // LOG_LEVEL
  Limits limits{};  // FILEBUILDER_MAX_PARTITIONS, _MAX_PART_BYTES, _MAX_FILE_BYTES
  std::uint64_t max_memory_bytes = MemoryStoreOptions{}.max_bytes;  // FILEBUILDER_MAX_MEMORY_BYTES
  std::uint64_t max_open_files = MemoryStoreOptions{}.max_open_files;  // FILEBUILDER_MAX_OPEN_FILES
  std::int64_t expire_after_seconds =
      MemoryStoreOptions{}.expire_after.count();  // FILEBUILDER_EXPIRE_AFTER
  // How long an upload's claim holds before another consumer may take the file
  // over (a consumer that died mid-upload). Longer than an upload can take.
  std::int64_t claim_lease_seconds =
      MemoryStoreOptions{}.claim_lease.count();  // FILEBUILDER_CLAIM_LEASE
  unsigned upload_attempts = 4;                  // FILEBUILDER_UPLOAD_ATTEMPTS (retries included)
  std::int64_t retry_backoff_ms = 200;           // FILEBUILDER_RETRY_BACKOFF_MS (first retry delay)
  std::int64_t upload_timeout_seconds = 300;     // FILEBUILDER_UPLOAD_TIMEOUT (per attempt)

  /// Reads the FILEBUILDER_* variables and LOG_LEVEL (the names above) over
  /// the defaults. `get` is getenv or a test's stand-in. A variable that is
  /// set but not a valid number is invalid_config, naming it in `bad`.
  template <typename Getenv>
  [[nodiscard]] static ErrorCode from_environment(Getenv&& get, Config& out, std::string& bad) {
    Config config;
    const auto text = [&](const char* name, std::string& field) {
      if (const char* value = get(name); value != nullptr) field = value;
    };
    bool ok = true;
    const auto number = [&](const char* name, auto& field) {
      const char* value = get(name);
      if (value == nullptr || !ok) return;
      using T = std::remove_reference_t<decltype(field)>;
      char* end = nullptr;
      errno = 0;
      const long long parsed = std::strtoll(value, &end, 10);
      if (*value == '\0' || *end != '\0' || errno != 0 || parsed < 0 ||
          static_cast<unsigned long long>(parsed) >
              static_cast<unsigned long long>(std::numeric_limits<T>::max())) {
        ok = false;
        bad = name;
        return;
      }
      field = static_cast<T>(parsed);
    };
    text("FILEBUILDER_STORE", config.store);
    text("FILEBUILDER_UPLOADER", config.uploader);
    if (const char* hosts = get("FILEBUILDER_ALLOW_HOSTS"); hosts != nullptr)
      config.allow_hosts = {hosts};
    text("FILEBUILDER_CA_FILE", config.ca_file);
    text("FILEBUILDER_CA_BUNDLE", config.ca_bundle);
    text("FILEBUILDER_DEAD_LETTER", config.dead_letter);
    text("LOG_LEVEL", config.log_level);
    number("FILEBUILDER_MAX_PARTITIONS", config.limits.max_partitions);
    number("FILEBUILDER_MAX_PART_BYTES", config.limits.max_part_bytes);
    number("FILEBUILDER_MAX_FILE_BYTES", config.limits.max_file_bytes);
    number("FILEBUILDER_MAX_MEMORY_BYTES", config.max_memory_bytes);
    number("FILEBUILDER_MAX_OPEN_FILES", config.max_open_files);
    number("FILEBUILDER_EXPIRE_AFTER", config.expire_after_seconds);
    number("FILEBUILDER_CLAIM_LEASE", config.claim_lease_seconds);
    number("FILEBUILDER_UPLOAD_ATTEMPTS", config.upload_attempts);
    number("FILEBUILDER_RETRY_BACKOFF_MS", config.retry_backoff_ms);
    number("FILEBUILDER_UPLOAD_TIMEOUT", config.upload_timeout_seconds);
    if (!ok) return ErrorCode::invalid_config;
    out = std::move(config);
    return ErrorCode::ok;
  }

  /// The allow-list as a policy; endpoint_invalid names a bad entry in `bad`.
  [[nodiscard]] ErrorCode endpoint_policy(EndpointPolicy& out, std::string& bad) const {
    EndpointPolicy policy;
    for (const std::string& entry : allow_hosts) {
      std::string_view rest = entry;
      while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        std::string_view host = rest.substr(0, comma);
        while (!host.empty() && host.front() == ' ') host.remove_prefix(1);
        while (!host.empty() && host.back() == ' ') host.remove_suffix(1);
        if (!host.empty()) {
          AllowedHost allowed;
          if (parse_allowed_host(host).get(allowed) != ErrorCode::ok) {
            bad = std::string(host);
            return ErrorCode::endpoint_invalid;
          }
          policy.allow(std::move(allowed));
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
    out = std::move(policy);
    return ErrorCode::ok;
  }

  [[nodiscard]] MemoryStoreOptions memory_store_options() const {
    MemoryStoreOptions options;
    options.max_bytes = max_memory_bytes;
    options.max_open_files = static_cast<std::size_t>(max_open_files);
    options.expire_after = std::chrono::seconds(expire_after_seconds);
    options.claim_lease = std::chrono::seconds(claim_lease_seconds);
    return options;
  }

  [[nodiscard]] ReassemblerOptions reassembler_options(const EndpointPolicy& policy) const {
    ReassemblerOptions options;
    options.limits = limits;
    options.policy = policy;
    return options;
  }
};

}  // namespace filebuilder
