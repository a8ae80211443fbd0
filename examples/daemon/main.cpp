// filebuilderd: the long-running consumer.
//
//   filebuilderd stdin [OPTIONS]         NDJSON of events or bare chunks on stdin,
//                                        one reply line per input line
//   filebuilderd kcl [OPTIONS]           a record processor for the KCL MultiLangDaemon
//
// A thin adapter like the CLI and the Lambda runtime: the options, the store,
// the uploader and the Reassembler are wired by the same code
// (examples/common/adapter.hpp, store/select.hpp); only the sources differ.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "../common/adapter.hpp"
#include "filebuilder/config.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/store/select.hpp"
#include "filebuilder/upload/curl.hpp"
#include "filebuilder/version.hpp"
#include "kcl.hpp"

namespace {

using namespace filebuilder;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;  // records are still failed at exit
constexpr int exit_usage = 2;   // usage or configuration error

enum class Mode { stdin_lines, kcl };

int usage_error(const std::string& message) {
  std::fprintf(stderr, "filebuilderd: %s\n", message.c_str());
  return exit_usage;
}

template <StateStore Store>
int run_with(Store& store, Mode mode, const Config& config, adapter::Setup& setup, Logger& logger) {
  std::string error;
  std::optional<CurlUploader> made = adapter::make_uploader(config, setup.policy, error);
  if (!made) return usage_error(error);
  CurlUploader& uploader = *made;
  Reassembler reassembler(store, uploader, config.reassembler_options(setup.policy));
  source::EventHandler handler(reassembler, logger);
  if (DeadLetterBox* box = setup.dead_letter_box()) handler.set_dead_letter(box);
  if (mode == Mode::kcl) {
    if (config.store == "memory:" || config.store == "memory")
      logger.warn(
          "kcl with store memory: each shard's process keeps its own parts, so files whose "
          "chunks are spread over shards cannot complete; use redis:// (or file: on one machine)");
    daemon::KclProcessor processor(handler, logger, std::cin, stdout);
    return processor.run();
  }
  adapter::Replayer replayer(handler, source::InputFormat::detect, false, true);
  replayer.stream(std::cin, "-");
  handler.flush_chunks();
  return handler.any_problem() ? exit_failed : exit_ok;
}

int run(Mode mode, const Config& config) {
  adapter::Setup setup;
  if (const std::string problem = adapter::prepare(config, setup); !problem.empty())
    return usage_error(problem);
  Logger logger(setup.level);
  std::string error;
  const int status = with_store(
      config, [&](auto& store) { return run_with(store, mode, config, setup, logger); }, -1, error);
  return status == -1 ? usage_error(error) : status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"filebuilderd: the long-running filebuilder consumer", "filebuilderd"};
  app.set_version_flag("--version", std::string("filebuilderd ") + FILEBUILDER_VERSION_STRING);
  app.require_subcommand(1);

  Config stdin_config;
  CLI::App* stdin_cmd = app.add_subcommand(
      "stdin", "NDJSON of events or bare chunks on standard input, one reply line per line");
  adapter::add_config_options(*stdin_cmd, stdin_config);

  Config kcl_config;
  CLI::App* kcl_cmd =
      app.add_subcommand("kcl", "A record processor for the KCL MultiLangDaemon (stdin/stdout)");
  adapter::add_config_options(*kcl_cmd, kcl_config);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version: stdout, 0
    std::fprintf(stderr, "filebuilderd: %s\n", error.what());
    return exit_usage;
  }
  if (kcl_cmd->parsed()) return run(Mode::kcl, kcl_config);
  return run(Mode::stdin_lines, stdin_config);
}
