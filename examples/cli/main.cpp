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

#include "../common/adapter.hpp"
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
#include "filebuilder/upload/select.hpp"
#include "filebuilder/version.hpp"

namespace {

using namespace filebuilder;

constexpr int exit_ok = 0;
constexpr int exit_records = 1;  // a record was rejected or failed
constexpr int exit_usage = 2;    // usage error or unreadable FILE

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

/// Replays a file; false if it cannot be read. NDJSON is streamed line by
/// line, so memory stays flat whatever the file's size. A file whose first
/// line is not a JSON value by itself (a pretty-printed event) is read whole
/// and, if it is one document, handled as one; if not, line by line.
template <typename Replayer>
bool replay_file(Replayer& replayer, source::InputFormat format, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    errno = EISDIR;
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string line;
  if (!std::getline(in, line)) return !in.bad();  // empty
  const bool one_line = in.peek() == std::char_traits<char>::eof();
  if (format == source::InputFormat::ndjson || one_line || source::is_json_value(line)) {
    replayer.line(line, path, 1);
    replayer.stream(in, path, 1);
    return !in.bad();
  }
  simdjson::padded_string content;
  if (simdjson::padded_string::load(path).get(content) != simdjson::SUCCESS) return false;
  const std::string_view text(content.data(), content.size());
  if (source::is_json_value(text)) {
    replayer.document(content, path, 1);
  } else {
    source::for_each_line(text, [&](std::string_view view, std::uint64_t number) {
      line.assign(view);
      replayer.line(line, path, number);
    });
  }
  return true;
}

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

// Everything after the store and the uploader are chosen: the same for each.
template <StateStore Store, Uploader Upload>
int replay_with(Store& store, Upload& uploader, const ReplayCommand& command,
                const EndpointPolicy& policy, Logger& logger, DeadLetterBox* dead_letter) {
  Reassembler reassembler(store, uploader, command.config.reassembler_options(policy));
  source::EventHandler handler(reassembler, logger);
  if (dead_letter != nullptr) handler.set_dead_letter(dead_letter);

  std::vector<std::string> files = command.files;
  if (files.empty()) files.emplace_back("-");
  const source::InputFormat format = input_format(command.format);
  adapter::Replayer replayer(handler, format, files.size() > 1);
  bool unreadable = false;
  for (const std::string& file : files) {
    if (file == "-") {
      replayer.stream(std::cin, file);
      continue;
    }
    if (!replay_file(replayer, format, file)) {
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
  adapter::Setup setup;
  if (const std::string problem = adapter::prepare(config, setup); !problem.empty())
    return usage_error(problem);
  Logger logger(setup.level);
  std::string error;
  const int status = with_store(
      config,
      [&](auto& store) {
        std::string problem;
        const int replayed = with_uploader(
            config, setup.policy,
            [&](auto& uploader) {
              return replay_with(store, uploader, command, setup.policy, logger,
                                 setup.dead_letter_box());
            },
            -1, problem);
        return replayed == -1 ? usage_error(problem) : replayed;  // an unreadable --ca-file, say
      },
      -1, error);
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
  adapter::add_config_options(*replay_cmd, config);

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
