// filebuilder: the command-line harness.
//
//   filebuilder replay [OPTIONS] [FILE...]   rebuild files from events / chunks and PUT them
//   filebuilder split --endpoint URL FILE    write the chunk records (or events) of FILE
//
// A thin adapter: input framing, options and output only; everything else is
// the library (EventHandler, Reassembler, Splitter).
#include <simdjson.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "filebuilder/config.hpp"
#include "filebuilder/dead_letter.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/source/ndjson.hpp"
#include "filebuilder/split.hpp"
#include "filebuilder/store/memory.hpp"
#include "filebuilder/store/select.hpp"
#include "filebuilder/upload/curl.hpp"
#include "filebuilder/upload/policy.hpp"
#include "filebuilder/version.hpp"

namespace {

using namespace filebuilder;

constexpr int exit_ok = 0;
constexpr int exit_records = 1;  // a record was rejected or failed
constexpr int exit_usage = 2;    // usage error or unreadable FILE

// Bare chunks are uploaded in batches of this many records (concurrently).
constexpr std::size_t chunk_batch = 256;

struct ReplayCommand {
  std::vector<std::string> files;
  std::string format = "detect";
  Config config;
};

struct SplitCommandOptions {
  std::string endpoint;
  std::size_t chunk_size = SplitOptions{}.chunk_size;
  std::string format = "ndjson";
  std::size_t records_per_event = SplitOptions{}.records_per_event;
  std::size_t aggregate = 0;  // chunk records per KPL aggregate; 0: off
  std::string file;
};

template <typename Handler>
class Replayer {
 public:
  Replayer(Handler& handler, source::InputFormat format, bool name_files)
      : handler_(handler), format_(format), name_files_(name_files) {}

  // A line read into `text`: given simdjson's padding in place, without a copy.
  void line(std::string& text, const std::string& file, std::uint64_t number) {
    if (source::trim_json_space(text).empty()) return;
    if (text.capacity() < text.size() + simdjson::SIMDJSON_PADDING)
      text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
    padded_document(simdjson::padded_string_view(text.data(), text.size(), text.capacity()), file,
                    number);
  }

  void padded_document(simdjson::padded_string_view text, const std::string& file,
                       std::uint64_t line) {
    reply_.clear();
    const source::LineId id{name_files_ ? file : std::string(), line};
    const source::DocumentKind kind = handler_.handle(text, format_, id, reply_);
    if (kind == source::DocumentKind::lambda || kind == source::DocumentKind::firehose) {
      reply_ += '\n';
      std::fwrite(reply_.data(), 1, reply_.size(), stdout);
      std::fflush(stdout);
    } else if (handler_.pending_chunks() >= chunk_batch) {
      handler_.flush_chunks();
    }
  }

  void stream(std::istream& in, const std::string& file, std::uint64_t number = 0) {
    while (std::getline(in, line_)) line(line_, file, ++number);
  }

  /// Replays a file; false if it cannot be read. NDJSON is streamed line by
  /// line, so memory stays flat whatever the file's size. A file whose first
  /// line is not a JSON value by itself (a pretty-printed event) is read whole
  /// and, if it is one document, handled as one; if not, line by line.
  bool file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      errno = EISDIR;
      return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    if (!std::getline(in, line_)) return !in.bad();  // empty
    const bool one_line = in.peek() == std::char_traits<char>::eof();
    if (format_ == source::InputFormat::ndjson || one_line || source::is_json_value(line_)) {
      line(line_, path, 1);
      stream(in, path, 1);
      return !in.bad();
    }
    simdjson::padded_string content;
    if (simdjson::padded_string::load(path).get(content) != simdjson::SUCCESS) return false;
    const std::string_view text(content.data(), content.size());
    if (source::is_json_value(text)) {
      padded_document(content, path, 1);
    } else {
      source::for_each_line(text, [&](std::string_view view, std::uint64_t number) {
        line_.assign(view);
        line(line_, path, number);
      });
    }
    return true;
  }

 private:
  Handler& handler_;
  source::InputFormat format_;
  bool name_files_;
  std::string line_;  // the current line, reused
  std::string reply_;
};

// Reads a whole file; on failure returns nullopt with errno set (EISDIR for a
// directory, which a stream would rather throw about).
std::optional<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    errno = EISDIR;
    return std::nullopt;
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return std::nullopt;
  std::string content;
  char buffer[64 * 1024];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) content.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) {
    errno = error;
    return std::nullopt;
  }
  return content;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "filebuilder: %s\n", message.c_str());
  return exit_usage;
}

source::InputFormat input_format(std::string_view name) {
  if (name == "lambda") return source::InputFormat::lambda;
  if (name == "firehose") return source::InputFormat::firehose;
  if (name == "ndjson") return source::InputFormat::ndjson;
  return source::InputFormat::detect;
}

// Everything after the store is chosen: the same for every store.
template <StateStore Store>
int replay_with(Store& store, const ReplayCommand& command, const EndpointPolicy& policy,
                Logger& logger, DeadLetterBox* dead_letter) {
  std::optional<CurlUploader> made;
  try {
    made.emplace(curl_uploader_options(command.config, policy));
  } catch (const std::exception& error) {  // an unreadable --ca-file, or no libcurl
    return usage_error(error.what());
  }
  CurlUploader& uploader = *made;
  Reassembler reassembler(store, uploader, command.config.reassembler_options(policy));
  source::EventHandler handler(reassembler, logger);
  if (dead_letter != nullptr) handler.set_dead_letter(dead_letter);

  std::vector<std::string> files = command.files;
  if (files.empty()) files.emplace_back("-");
  Replayer replayer(handler, input_format(command.format), files.size() > 1);
  bool unreadable = false;
  for (const std::string& file : files) {
    if (file == "-") {
      replayer.stream(std::cin, file);
      continue;
    }
    if (!replayer.file(file)) {
      logger.error("cannot read file", {{"file", file}, {"error", std::strerror(errno)}});
      unreadable = true;
    }
  }
  handler.flush_chunks();
  if (handler.saw_chunks()) {
    const std::string summary = handler.chunk_summary().json() + "\n";
    std::fwrite(summary.data(), 1, summary.size(), stdout);
    std::fflush(stdout);
  }
  if (unreadable) return exit_usage;
  return handler.any_problem() ? exit_records : exit_ok;
}

int run_replay(const ReplayCommand& command) {
  const Config& config = command.config;
  LogLevel level = LogLevel::info;
  if (!parse_log_level(config.log_level, level))
    return usage_error("unknown log level '" + config.log_level + "'");
  EndpointPolicy policy;
  std::string bad_host;
  if (config.endpoint_policy(policy, bad_host) != ErrorCode::ok)
    return usage_error("invalid --allow-host '" + bad_host + "'");
  std::optional<DeadLetterBox> dead_letter;
  if (!config.dead_letter.empty()) {
    dead_letter.emplace(config.dead_letter);
    if (!dead_letter->ok())
      return usage_error("cannot create dead-letter directory '" + config.dead_letter + "'");
  }
  Logger logger(level);
  DeadLetterBox* box = dead_letter ? &*dead_letter : nullptr;
  std::string error;
  const int status = with_store(
      config, [&](auto& store) { return replay_with(store, command, policy, logger, box); }, -1,
      error);
  return status == -1 ? usage_error(error) : status;
}

int run_split(const SplitCommandOptions& options) {
  SplitOptions split;
  split.chunk_size = options.chunk_size;
  split.records_per_event = options.records_per_event;
  split.aggregate = options.aggregate;
  if (options.format == "lambda")
    split.format = SplitFormat::lambda;
  else if (options.format == "firehose")
    split.format = SplitFormat::firehose;
  else
    split.format = SplitFormat::ndjson;
  if (split.chunk_size == 0) return usage_error("--chunk-size must be at least 1");
  if (split.records_per_event == 0) return usage_error("--records-per-event must be at least 1");
  if (split.aggregate != 0 && split.format == SplitFormat::ndjson)
    return usage_error("--aggregate needs --format lambda or firehose");

  std::string content;
  if (options.file == "-") {
    content.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::optional<std::string> read = read_file(options.file);
    if (!read) return usage_error("cannot read '" + options.file + "': " + std::strerror(errno));
    content = std::move(*read);
  }
  const auto sink = [](std::string_view line) { std::fwrite(line.data(), 1, line.size(), stdout); };
  Splitter splitter(split);
  splitter.add_file(options.endpoint, content, sink);
  splitter.finish(sink);
  return std::fflush(stdout) == 0 ? exit_ok : exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"filebuilder: rebuild files streamed as chunks and PUT them to their endpoint",
               "filebuilder"};
  app.set_version_flag("--version", std::string("filebuilder ") + FILEBUILDER_VERSION_STRING);
  app.require_subcommand(1);

  ReplayCommand replay;
  Config& config = replay.config;
  CLI::App* replay_cmd =
      app.add_subcommand("replay", "Feed events or chunk records to one Reassembler");
  replay_cmd->add_option("FILE", replay.files, "Input files ('-' or none: standard input)");
  replay_cmd->add_option("--format", replay.format, "Input kind (default: detected per file)")
      ->check(CLI::IsMember({"detect", "lambda", "firehose", "ndjson"}));
  replay_cmd
      ->add_option("--store", config.store,
                   "State store: memory:, file:DIR or redis://HOST:PORT[/DB]")
      ->envname("FILEBUILDER_STORE");
  replay_cmd
      ->add_option("--allow-host", config.allow_hosts,
                   "HOST[:PORT] that may be reached over http and on private addresses")
      ->allow_extra_args(false)
      ->envname("FILEBUILDER_ALLOW_HOSTS");
  replay_cmd
      ->add_option("--ca-file", config.ca_file,
                   "CA certificates (PEM) trusted in addition to the system's")
      ->envname("FILEBUILDER_CA_FILE");
  replay_cmd
      ->add_option("--ca-bundle", config.ca_bundle,
                   "CA bundle (PEM) that replaces libcurl's default bundle file")
      ->envname("FILEBUILDER_CA_BUNDLE");
  replay_cmd->add_option("--dead-letter", config.dead_letter, "Keep every rejected record in DIR")
      ->envname("FILEBUILDER_DEAD_LETTER");
  replay_cmd->add_option("--log-level", config.log_level, "debug|info|warn|error|off")
      ->envname("LOG_LEVEL");
  replay_cmd
      ->add_option("--max-partitions", config.limits.max_partitions, "Most partitions per file")
      ->envname("FILEBUILDER_MAX_PARTITIONS");
  replay_cmd
      ->add_option("--max-part-bytes", config.limits.max_part_bytes, "Most decoded bytes per part")
      ->envname("FILEBUILDER_MAX_PART_BYTES");
  replay_cmd->add_option("--max-file-bytes", config.limits.max_file_bytes, "Most bytes per file")
      ->envname("FILEBUILDER_MAX_FILE_BYTES");
  replay_cmd
      ->add_option("--max-memory-bytes", config.max_memory_bytes,
                   "Most bytes the memory store holds")
      ->envname("FILEBUILDER_MAX_MEMORY_BYTES");
  replay_cmd->add_option("--max-open-files", config.max_open_files, "Most unfinished files")
      ->envname("FILEBUILDER_MAX_OPEN_FILES");
  replay_cmd
      ->add_option("--expire-after", config.expire_after_seconds,
                   "Seconds before an abandoned file is dropped")
      ->envname("FILEBUILDER_EXPIRE_AFTER");
  replay_cmd
      ->add_option("--claim-lease", config.claim_lease_seconds,
                   "Seconds an upload's claim holds before another consumer may take over")
      ->envname("FILEBUILDER_CLAIM_LEASE");
  replay_cmd
      ->add_option("--upload-attempts", config.upload_attempts,
                   "Requests per upload, retries included")
      ->envname("FILEBUILDER_UPLOAD_ATTEMPTS");
  replay_cmd
      ->add_option("--retry-backoff-ms", config.retry_backoff_ms,
                   "First retry delay (doubles, jittered)")
      ->envname("FILEBUILDER_RETRY_BACKOFF_MS");
  replay_cmd
      ->add_option("--upload-timeout", config.upload_timeout_seconds, "Seconds per upload attempt")
      ->envname("FILEBUILDER_UPLOAD_TIMEOUT");

  SplitCommandOptions split;
  CLI::App* split_cmd = app.add_subcommand("split", "Write the chunk records (or events) for FILE");
  split_cmd->add_option("--endpoint", split.endpoint, "The putEndpoint URL")->required();
  split_cmd->add_option("--chunk-size", split.chunk_size, "Bytes per chunk");
  split_cmd->add_option("--format", split.format, "Output kind")
      ->check(CLI::IsMember({"ndjson", "lambda", "firehose"}));
  split_cmd->add_option("--records-per-event", split.records_per_event, "Records per event");
  split_cmd
      ->add_option("--aggregate", split.aggregate,
                   "Pack up to N chunk records per Kinesis record as KPL aggregates (within "
                   "1 MiB); N defaults to 100; 0: off")
      ->expected(0, 1)
      ->default_str("100")
      ->check(CLI::Validator(
          [](const std::string& value) {
            const bool digits =
                !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
            return digits ? std::string() : "'" + value + "' is not a number of records";
          },
          "N"));
  split_cmd->add_option("FILE", split.file, "Input file ('-': standard input)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version: stdout, 0
    std::fprintf(stderr, "filebuilder: %s\n", error.what());
    return exit_usage;
  }
  if (replay_cmd->parsed()) return run_replay(replay);
  return run_split(split);
}
