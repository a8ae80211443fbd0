// What the command-line adapters share (`filebuilder replay` and
// `filebuilderd`): the Config options with their environment variables, the
// checks that turn a Config into what every adapter runs with, and the
// framing of NDJSON input into EventHandler documents. The Lambda runtime
// reads the same Config from its environment (Config::from_environment).
#pragma once

#include <simdjson.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <istream>
#include <optional>
#include <string>

#include "filebuilder/config.hpp"
#include "filebuilder/dead_letter.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/source/ndjson.hpp"
#include "filebuilder/upload/policy.hpp"
#include "filebuilder/upload/select.hpp"

namespace filebuilder::adapter {

/// Adds the options every adapter takes, bound to `config`, each with its
/// environment variable (CONTRACT.md, "Options, limits, environment").
inline void add_config_options(CLI::App& app, Config& config) {
  app.add_option("--store", config.store,
                 "State store: memory:, file:DIR or redis://HOST:PORT[/DB]")
      ->envname("FILEBUILDER_STORE");
  app.add_option("--uploader", config.uploader, "HTTP uploader: " + available_uploaders())
      ->envname("FILEBUILDER_UPLOADER");
  app.add_option("--allow-host", config.allow_hosts,
                 "HOST[:PORT] that may be reached over http and on private addresses")
      ->allow_extra_args(false)
      ->envname("FILEBUILDER_ALLOW_HOSTS");
  app.add_option("--ca-file", config.ca_file,
                 "CA certificates (PEM) trusted in addition to the system's")
      ->envname("FILEBUILDER_CA_FILE");
  app.add_option("--ca-bundle", config.ca_bundle,
                 "CA bundle (PEM) that replaces libcurl's default bundle file")
      ->envname("FILEBUILDER_CA_BUNDLE");
  app.add_option("--dead-letter", config.dead_letter, "Keep every rejected record in DIR")
      ->envname("FILEBUILDER_DEAD_LETTER");
  app.add_option("--log-level", config.log_level, "debug|info|warn|error|off")
      ->envname("LOG_LEVEL");
  app.add_option("--max-partitions", config.limits.max_partitions, "Most partitions per file")
      ->envname("FILEBUILDER_MAX_PARTITIONS");
  app.add_option("--max-part-bytes", config.limits.max_part_bytes, "Most decoded bytes per part")
      ->envname("FILEBUILDER_MAX_PART_BYTES");
  app.add_option("--max-file-bytes", config.limits.max_file_bytes, "Most bytes per file")
      ->envname("FILEBUILDER_MAX_FILE_BYTES");
  app.add_option("--max-memory-bytes", config.max_memory_bytes, "Most bytes the memory store holds")
      ->envname("FILEBUILDER_MAX_MEMORY_BYTES");
  app.add_option("--max-open-files", config.max_open_files, "Most unfinished files")
      ->envname("FILEBUILDER_MAX_OPEN_FILES");
  app.add_option("--expire-after", config.expire_after_seconds,
                 "Seconds before an abandoned file is dropped")
      ->envname("FILEBUILDER_EXPIRE_AFTER");
  app.add_option("--claim-lease", config.claim_lease_seconds,
                 "Seconds an upload's claim holds before another consumer may take over")
      ->envname("FILEBUILDER_CLAIM_LEASE");
  app.add_option("--upload-attempts", config.upload_attempts,
                 "Requests per upload, retries included")
      ->envname("FILEBUILDER_UPLOAD_ATTEMPTS");
  app.add_option("--retry-backoff-ms", config.retry_backoff_ms,
                 "First retry delay (doubles, jittered)")
      ->envname("FILEBUILDER_RETRY_BACKOFF_MS");
  app.add_option("--upload-timeout", config.upload_timeout_seconds, "Seconds per upload attempt")
      ->envname("FILEBUILDER_UPLOAD_TIMEOUT");
}

/// What a checked Config gives every adapter.
struct Setup {
  LogLevel level = LogLevel::info;
  EndpointPolicy policy;
  std::optional<DeadLetterBox> dead_letter;

  [[nodiscard]] DeadLetterBox* dead_letter_box() noexcept {
    return dead_letter ? &*dead_letter : nullptr;
  }
};

/// Checks the parts of `config` that can be wrong before anything runs (log
/// level, allow-list, dead-letter directory). Empty when usable; else the
/// one-line reason for a usage error.
[[nodiscard]] inline std::string prepare(const Config& config, Setup& out) {
  if (!parse_log_level(config.log_level, out.level))
    return "unknown log level '" + config.log_level + "'";
  std::string bad_host;
  if (config.endpoint_policy(out.policy, bad_host) != ErrorCode::ok)
    return "invalid --allow-host '" + bad_host + "'";
  if (!config.dead_letter.empty()) {
    out.dead_letter.emplace(config.dead_letter);
    if (!out.dead_letter->ok())
      return "cannot create dead-letter directory '" + config.dead_letter + "'";
  }
  return {};
}

/// Feeds NDJSON lines (and whole documents) to an EventHandler. Events get
/// their reply line at once; bare chunks are uploaded in batches of
/// `chunk_batch`, or, with per_line_replies, one at a time with a reply line
/// each: {"record":LINE,"outcome":"uploaded"} (and "error":"code" when failed
/// or rejected), for pipes that wait for an answer per line.
template <typename Handler>
class Replayer {
 public:
  Replayer(Handler& handler, source::InputFormat format, bool name_files,
           bool per_line_replies = false)
      : handler_(handler),
        format_(format),
        name_files_(name_files),
        per_line_replies_(per_line_replies) {}

  // Bare chunks are uploaded in batches of this many records (concurrently).
  static constexpr std::size_t chunk_batch = 256;

  /// A line read into `text`: given simdjson's padding in place, without a copy.
  void line(std::string& text, const std::string& file, std::uint64_t number) {
    if (source::trim_json_space(text).empty()) return;
    if (text.capacity() < text.size() + simdjson::SIMDJSON_PADDING)
      text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
    document(simdjson::padded_string_view(text.data(), text.size(), text.capacity()), file, number);
  }

  void document(simdjson::padded_string_view text, const std::string& file, std::uint64_t line) {
    reply_.clear();
    const source::LineId id{name_files_ ? file : std::string(), line};
    const source::DocumentKind kind = handler_.handle(text, format_, id, reply_);
    if (kind == source::DocumentKind::lambda || kind == source::DocumentKind::firehose) {
      write_reply();
    } else if (kind == source::DocumentKind::chunk && per_line_replies_) {
      const std::span<const RecordOutcome> outcomes = handler_.flush_chunks();
      if (!outcomes.empty()) {
        const RecordOutcome& outcome = outcomes.back();
        reply_ = "{\"record\":";
        id.append_json(reply_);
        reply_ += ",\"outcome\":\"";
        reply_ += outcome_name(outcome.outcome);
        reply_ += '"';
        if (!outcome.ok()) {
          reply_ += ",\"error\":\"";
          reply_ += error_code_name(outcome.error);
          reply_ += '"';
        }
        reply_ += '}';
        write_reply();
      }
    } else if (kind == source::DocumentKind::bad_event && per_line_replies_) {
      reply_ = "{\"record\":";
      id.append_json(reply_);
      reply_ += ",\"outcome\":\"rejected\",\"error\":\"bad_event\"}";
      write_reply();
    } else if (handler_.pending_chunks() >= chunk_batch) {
      handler_.flush_chunks();
    }
  }

  /// Every line of `in`, numbered from number + 1.
  void stream(std::istream& in, const std::string& file, std::uint64_t number = 0) {
    while (std::getline(in, line_)) line(line_, file, ++number);
  }

 private:
  void write_reply() {
    reply_ += '\n';
    std::fwrite(reply_.data(), 1, reply_.size(), stdout);
    std::fflush(stdout);
  }

  Handler& handler_;
  source::InputFormat format_;
  bool name_files_;
  bool per_line_replies_;
  std::string line_;  // the current line, reused
  std::string reply_;
};

}  // namespace filebuilder::adapter
