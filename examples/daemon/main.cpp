// filebuilderd: the long-running consumer.
//
//   filebuilderd kinesis --stream NAME [OPTIONS]   read every shard of a stream (GetRecords)
//   filebuilderd kcl [OPTIONS]           a record processor for the KCL MultiLangDaemon
//   filebuilderd stdin [OPTIONS]         NDJSON of events or bare chunks on stdin,
//                                        one reply line per input line
//
// A thin adapter like the CLI and the Lambda runtime: the options, the store,
// the uploader and the Reassembler are wired by the same code
// (examples/common/adapter.hpp, store/select.hpp); only the sources differ.
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "../common/adapter.hpp"
#include "filebuilder/aws/credentials.hpp"
#include "filebuilder/aws/kinesis.hpp"
#include "filebuilder/config.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/store/select.hpp"
#include "filebuilder/upload/curl.hpp"
#include "filebuilder/upload/select.hpp"
#include "filebuilder/version.hpp"
#include "kcl.hpp"
#include "kinesis_consumer.hpp"
#if FILEBUILDER_DAEMON_METRICS
#include "metrics.hpp"
#endif

namespace {

using namespace filebuilder;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;  // records are still failed at exit
constexpr int exit_usage = 2;   // usage or configuration error

enum class Mode { stdin_lines, kcl, kinesis };

// What every mode takes beside the shared Config.
struct DaemonOptions {
  std::string metrics;  // --metrics HOST:PORT; empty: no metrics server
};

struct KinesisCommand {
  std::string stream;
  std::string endpoint_url;
  std::string region;
  std::string start = "trim-horizon";
  double idle_exit_seconds = 0;
};

// SIGTERM or SIGINT: stop fetching, finish the records in hand, write the
// checkpoints, exit. A second signal exits at once.
std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int) {
  if (stop_requested.exchange(true)) _exit(exit_failed);
}

void install_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "filebuilderd: %s\n", message.c_str());
  return exit_usage;
}

using MillisBehindHook = std::function<void(std::string_view shard, std::int64_t millis)>;

template <typename Store, typename Handler>
int run_kinesis(Store& store, Handler& handler, Logger& logger, const KinesisCommand& command,
                MillisBehindHook on_millis_behind) {
  aws::KinesisOptions options;
  options.region = command.region;
  options.endpoint = command.endpoint_url;
  // Waits between retries end early when a stop is asked for.
  options.retry_wait = [](const aws::KinesisStatus&, std::chrono::milliseconds delay) {
    const auto until = std::chrono::steady_clock::now() + delay;
    while (!stop_requested.load() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return !stop_requested.load();
  };
  std::string problem;
  if (aws::check_kinesis_options(options, problem) != ErrorCode::ok) return usage_error(problem);
  aws::CredentialsProvider credentials;
  if (!credentials.get(problem).ok()) return usage_error("no AWS credentials: " + problem);
  aws::KinesisClient client(options, credentials);
  daemon::KinesisConsumerOptions consumer_options;
  consumer_options.stream = command.stream;
  consumer_options.start = command.start == "latest" ? aws::ShardIteratorType::latest
                                                     : aws::ShardIteratorType::trim_horizon;
  consumer_options.idle_exit =
      std::chrono::milliseconds(static_cast<std::int64_t>(command.idle_exit_seconds * 1000));
  consumer_options.on_millis_behind = std::move(on_millis_behind);
  daemon::KinesisConsumer consumer(client, store, handler, logger, consumer_options,
                                   stop_requested);
  if (!consumer.run()) return exit_usage;  // the stream could not be listed: logged
  const std::string summary = consumer.counts().json() + "\n";
  std::fwrite(summary.data(), 1, summary.size(), stdout);
  std::fflush(stdout);
  return consumer.any_held() ? exit_failed : exit_ok;
}

template <StateStore Store, Uploader Upload>
int run_with(Store& store, Upload& uploader, Mode mode, const Config& config, adapter::Setup& setup,
             Logger& logger, const DaemonOptions& daemon_options, const KinesisCommand& kinesis) {
  std::string error;
  Reassembler reassembler(store, uploader, config.reassembler_options(setup.policy));
  source::EventHandler handler(reassembler, logger);
  if (DeadLetterBox* box = setup.dead_letter_box()) handler.set_dead_letter(box);
  // Declared after the Reassembler, so it stops serving before its stats go.
  MillisBehindHook on_millis_behind;
#if FILEBUILDER_DAEMON_METRICS
  std::optional<daemon::MetricsServer> metrics;
  if (!daemon_options.metrics.empty()) {
    metrics.emplace(reassembler.stats());
    if (!metrics->start(daemon_options.metrics, error)) return usage_error(error);
    logger.info("serving metrics", {{"address", daemon_options.metrics}});
    on_millis_behind = [&metrics](std::string_view shard, std::int64_t millis) {
      metrics->set_millis_behind(shard, millis);
    };
  }
#else
  if (!daemon_options.metrics.empty())
    return usage_error("--metrics: this filebuilderd was built without cpp-httplib");
#endif
  if (mode == Mode::kcl) {
    if (config.store == "memory:" || config.store == "memory")
      logger.warn(
          "kcl with store memory: each shard's process keeps its own parts, so files whose "
          "chunks are spread over shards cannot complete; use redis:// (or file: on one machine)");
    daemon::KclProcessor processor(handler, logger, std::cin, stdout);
    if (on_millis_behind) processor.on_millis_behind(on_millis_behind);
    return processor.run();
  }
  if (mode == Mode::kinesis)
    return run_kinesis(store, handler, logger, kinesis, std::move(on_millis_behind));
  adapter::Replayer replayer(handler, source::InputFormat::detect, false, true);
  replayer.stream(std::cin, "-");
  handler.flush_chunks();
  // Unlike the CLI, a rejected record is not an error of the run: only records
  // still failed at the end are (CONTRACT.md).
  return handler.any_still_failed() ? exit_failed : exit_ok;
}

int run(Mode mode, const Config& config, const DaemonOptions& daemon_options,
        const KinesisCommand& kinesis = {}) {
  adapter::Setup setup;
  if (const std::string problem = adapter::prepare(config, setup); !problem.empty())
    return usage_error(problem);
  Logger logger(setup.level);
  std::string error;
  const int status = with_store(
      config,
      [&](auto& store) {
        std::string problem;
        const int ran = with_uploader(
            config, setup.policy,
            [&](auto& uploader) {
              return run_with(store, uploader, mode, config, setup, logger, daemon_options,
                              kinesis);
            },
            -1, problem);
        return ran == -1 ? usage_error(problem) : ran;
      },
      -1, error);
  return status == -1 ? usage_error(error) : status;
}

}  // namespace

int main(int argc, char** argv) {
  // A metrics client or a reader of stdout that goes away is an error to
  // report, not a reason to die.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"filebuilderd: the long-running filebuilder consumer", "filebuilderd"};
  app.set_version_flag("--version", std::string("filebuilderd ") + FILEBUILDER_VERSION_STRING);
  app.require_subcommand(1);

  DaemonOptions daemon_options;
  auto add_daemon_options = [&daemon_options](CLI::App& command) {
    command.add_option("--metrics", daemon_options.metrics,
                       "Serve /metrics (Prometheus) and /healthz on HOST:PORT");
  };

  Config stdin_config;
  CLI::App* stdin_cmd = app.add_subcommand(
      "stdin", "NDJSON of events or bare chunks on standard input, one reply line per line");
  adapter::add_config_options(*stdin_cmd, stdin_config);
  add_daemon_options(*stdin_cmd);

  KinesisCommand kinesis;
  Config kinesis_config;
  CLI::App* kinesis_cmd =
      app.add_subcommand("kinesis", "Read every shard of a Kinesis stream (GetRecords)");
  kinesis_cmd->add_option("--stream", kinesis.stream, "The stream's name")->required();
  kinesis_cmd->add_option("--endpoint-url", kinesis.endpoint_url,
                          "The Kinesis endpoint (default https://kinesis.REGION.amazonaws.com)");
  kinesis_cmd
      ->add_option("--region", kinesis.region,
                   "The stream's region (default $AWS_REGION, then $AWS_DEFAULT_REGION)")
      ->envname("AWS_REGION");
  kinesis_cmd->add_option("--start", kinesis.start, "Where a shard without a checkpoint starts")
      ->check(CLI::IsMember({"trim-horizon", "latest"}));
  kinesis_cmd
      ->add_option("--idle-exit", kinesis.idle_exit_seconds,
                   "Exit once every open shard was idle this many seconds (0: never)")
      ->check(CLI::NonNegativeNumber);
  adapter::add_config_options(*kinesis_cmd, kinesis_config);
  add_daemon_options(*kinesis_cmd);

  Config kcl_config;
  CLI::App* kcl_cmd =
      app.add_subcommand("kcl", "A record processor for the KCL MultiLangDaemon (stdin/stdout)");
  adapter::add_config_options(*kcl_cmd, kcl_config);
  add_daemon_options(*kcl_cmd);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --version: stdout, 0
    std::fprintf(stderr, "filebuilderd: %s\n", error.what());
    return exit_usage;
  }
  if (kcl_cmd->parsed()) return run(Mode::kcl, kcl_config, daemon_options);
  if (kinesis_cmd->parsed()) {
    if (kinesis.region.empty())
      if (const char* region = std::getenv("AWS_DEFAULT_REGION")) kinesis.region = region;
    if (kinesis.region.empty())
      return usage_error("no region: give --region, or set AWS_REGION or AWS_DEFAULT_REGION");
    install_stop_signals();
    return run(Mode::kinesis, kinesis_config, daemon_options, kinesis);
  }
  return run(Mode::stdin_lines, stdin_config, daemon_options);
}
