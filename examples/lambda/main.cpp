// filebuilder-lambda: an AWS Lambda custom runtime for Kinesis and Firehose.
//
// Started by the `bootstrap` script (through the dynamic loader and libraries
// bundled in the zip), it asks the Runtime API for one event after another,
// hands each to one EventHandler, and posts the reply:
//   Lambda Kinesis event      -> {"batchItemFailures":[...]}
//   Firehose transformation   -> {"records":[...]}
//   anything else             -> an invocation error, errorType filebuilder.BadEvent
// The store, the uploader (and its connections), the Reassembler and the
// handler, with their buffers, live as long as the process: a file may be
// completed by a later invocation than the one that started it.
//
// Environment: AWS_LAMBDA_RUNTIME_API (set by Lambda); LOG_LEVEL and the
// FILEBUILDER_* variables of Config::from_environment (FILEBUILDER_UPLOADER:
// curl by default, beast in the binary without libcurl, which has no other); and
// FILEBUILDER_DEADLINE_MARGIN_MS (default 2000): records are no longer taken
// once the time left before the invocation's deadline is below this margin
// plus the expected length of the upload phase; they are reported failed so
// that the source delivers them again. A bad setting is posted to
// /runtime/init/error (errorType filebuilder.InvalidConfig) and the process
// exits 1; so it does when the Runtime API cannot give the next event.
#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "filebuilder/config.hpp"
#include "filebuilder/dead_letter.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/store/memory.hpp"
#include "filebuilder/store/select.hpp"
#include "filebuilder/upload/policy.hpp"
#include "filebuilder/upload/select.hpp"
#include "filebuilder/version.hpp"
// The Runtime API client: over libcurl, or over Boost.Beast in the binary
// built without libcurl (target filebuilder_lambda_beast), whose zip then
// ships no libcurl and none of the libraries libcurl needs.
#if defined(FILEBUILDER_LAMBDA_HTTP_BEAST)
#include "runtime_api_beast.hpp"
#else
#include "runtime_api.hpp"
#endif

namespace {

using namespace filebuilder;
using lambda::Invocation;
using lambda::RuntimeApi;

constexpr std::string_view bad_event_type = "filebuilder.BadEvent";
constexpr std::string_view bad_event_message =
    "the event is neither a Lambda Kinesis event nor a Firehose transformation event";
constexpr std::string_view invalid_config_type = "filebuilder.InvalidConfig";
constexpr std::string_view internal_error_type = "filebuilder.InternalError";

constexpr std::int64_t default_deadline_margin_ms = 2000;

struct Settings {
  Config config;
  LogLevel level = LogLevel::info;
  EndpointPolicy policy;
  std::chrono::milliseconds deadline_margin{default_deadline_margin_ms};
};

/// Reads every setting from the environment; false with "<VARIABLE>: <what
/// is wrong>" in `problem` on the first bad one.
bool read_settings(Settings& out, std::string& problem) {
  const auto get = [](const char* name) -> const char* { return std::getenv(name); };
  std::string bad;
  if (Config::from_environment(get, out.config, bad) != ErrorCode::ok) {
    problem = bad + ": not a valid number";
    return false;
  }
#if defined(FILEBUILDER_LAMBDA_HTTP_BEAST)
  // This binary has no curl uploader: the one it has is the default.
  if (get("FILEBUILDER_UPLOADER") == nullptr) out.config.uploader = "beast";
#endif
  if (!parse_log_level(out.config.log_level, out.level)) {
    problem = "LOG_LEVEL: unknown log level '" + out.config.log_level + "'";
    return false;
  }
  if (out.config.endpoint_policy(out.policy, bad) != ErrorCode::ok) {
    problem = "FILEBUILDER_ALLOW_HOSTS: invalid host '" + bad + "'";
    return false;
  }
  if (const char* margin = get("FILEBUILDER_DEADLINE_MARGIN_MS"); margin != nullptr) {
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(margin, &end, 10);
    if (*margin == '\0' || *end != '\0' || errno != 0 || value < 0) {
      problem = "FILEBUILDER_DEADLINE_MARGIN_MS: not a valid number";
      return false;
    }
    out.deadline_margin = std::chrono::milliseconds(value);
  }
  return true;
}

/// Tells when to stop taking records: once the time left before the
/// invocation's deadline is below the margin plus the expected length of the
/// upload phase (every file the taken records completed is uploaded after the
/// last record is taken). That length is learnt: the time from the last
/// record taken to the end of the event, the longest recently seen, decaying
/// by a quarter per event.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Deadline(std::chrono::milliseconds margin) : margin_(margin) {}

  /// A new invocation; deadline_ms is Unix time in ms, 0 for none.
  void start(std::int64_t deadline_ms) noexcept {
    deadline_ms_ = deadline_ms;
    last_check_ = {};
  }

  /// Whether to stop taking records now. Consulted before each record.
  [[nodiscard]] bool stop_now() noexcept {
    last_check_ = Clock::now();
    if (deadline_ms_ <= 0) return false;
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    return deadline_ms_ - now_ms < (margin_ + upload_estimate_).count();
  }

  /// The event is answered: learn how long its upload phase took.
  void finish() noexcept {
    if (last_check_ == Clock::time_point{}) return;  // no record was consulted
    const auto upload =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_check_);
    upload_estimate_ = std::max(upload, upload_estimate_ * 3 / 4);
  }

  [[nodiscard]] std::chrono::milliseconds upload_estimate() const noexcept {
    return upload_estimate_;
  }

 private:
  std::chrono::milliseconds margin_;
  std::chrono::milliseconds upload_estimate_{0};
  std::int64_t deadline_ms_ = 0;
  Clock::time_point last_check_{};
};

/// The envelope an event names, as EventHandler detects it: the first of
/// "Records" (Kinesis) and "records" (Firehose) among the root object's keys.
/// Anything else goes to the handler as Kinesis, which rejects it as
/// bad_event (logged, and kept as a dead letter when configured).
source::InputFormat event_format(simdjson::ondemand::parser& parser,
                                 simdjson::padded_string_view event) {
  using namespace simdjson;
  ondemand::document doc;
  ondemand::object root;
  if (parser.iterate(event).get(doc) != SUCCESS || doc.get_object().get(root) != SUCCESS)
    return source::InputFormat::lambda;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key) != SUCCESS) break;
    if (key == "records") return source::InputFormat::firehose;
    if (key == "Records") break;
  }
  return source::InputFormat::lambda;
}

/// Sets _X_AMZN_TRACE_ID for this invocation (X-Ray), or clears it.
void set_trace_id(const std::string& trace_id) {
  if (trace_id.empty())
    ::unsetenv("_X_AMZN_TRACE_ID");
  else
    ::setenv("_X_AMZN_TRACE_ID", trace_id.c_str(), 1);
}

/// Serves invocations until the Runtime API cannot give the next one.
template <StateStore Store, Uploader Upload>
int serve(Store& store, Upload& uploader, const Settings& settings, RuntimeApi& api, Logger& logger,
          DeadLetterBox* dead_letter) {
  Reassembler reassembler(store, uploader, settings.config.reassembler_options(settings.policy));
  source::EventHandler handler(reassembler, logger);
  if (dead_letter != nullptr) handler.set_dead_letter(dead_letter);
  Deadline deadline(settings.deadline_margin);
  // EventHandler::set_deadline is the proposed hook (see the issue note); until
  // the handler has it, every record of an event is taken.
  handler.set_deadline([&deadline] { return deadline.stop_now(); });

  simdjson::ondemand::parser detect_parser;
  Invocation invocation;
  std::string reply;
  std::string error;
  logger.debug("runtime ready", {{"version", FILEBUILDER_VERSION_STRING}});
  while (true) {
    if (!api.next(invocation, error)) {
      logger.set_context({});
      logger.error("runtime API: no next invocation; exiting", {{"error", error}});
      return 1;
    }
    logger.set_context({{"requestId", invocation.request_id}});
    set_trace_id(invocation.trace_id);
    if (logger.enabled(LogLevel::debug)) {
      const char* trace = std::getenv("_X_AMZN_TRACE_ID");
      logger.debug("invocation", {{"bytes", std::uint64_t{invocation.event.size()}},
                                  {"deadlineMs", std::int64_t{invocation.deadline_ms}},
                                  {"traceId", trace != nullptr ? trace : ""}});
    }
    deadline.start(invocation.deadline_ms);
    reply.clear();
    source::DocumentKind kind = source::DocumentKind::bad_event;
    try {
      const simdjson::padded_string_view event = invocation.padded_event();
      kind = handler.handle(event, event_format(detect_parser, event),
                            source::LineId{invocation.request_id, 1}, reply);
    } catch (const std::exception& exception) {
      // The Reassembler may be left mid-batch: report, then let Lambda start
      // a fresh environment rather than go on in an unknown state.
      logger.error("invocation failed; exiting", {{"error", exception.what()}});
      if (!api.fail_invocation(invocation.request_id, internal_error_type, exception.what(), error))
        logger.error("runtime API: cannot post the invocation error", {{"error", error}});
      return 1;
    }
    deadline.finish();
    const bool posted =
        kind == source::DocumentKind::bad_event
            ? api.fail_invocation(invocation.request_id, bad_event_type, bad_event_message, error)
            : api.respond(invocation.request_id, reply, error);
    if (!posted) logger.error("runtime API: cannot post the reply", {{"error", error}});
  }
}

int init_error(RuntimeApi& api, Logger& logger, const std::string& problem) {
  logger.error("invalid configuration",
               {{"error", error_code_name(ErrorCode::invalid_config)}, {"message", problem}});
  std::string error;
  if (!api.fail_init(invalid_config_type, problem, error))
    logger.error("runtime API: cannot post the init error", {{"error", error}});
  return 1;
}

}  // namespace

int main() {
  Logger logger(LogLevel::info);
  const char* address = std::getenv("AWS_LAMBDA_RUNTIME_API");
  if (address == nullptr || *address == '\0') {
    logger.error(
        "AWS_LAMBDA_RUNTIME_API is not set: filebuilder-lambda runs inside AWS Lambda "
        "(or a Runtime API emulator); to replay events locally use `filebuilder replay`");
    return 1;
  }
  std::optional<RuntimeApi> api;
  try {
    api.emplace(address);
  } catch (const std::exception& exception) {
    logger.error("cannot start", {{"error", exception.what()}});
    return 1;
  }

  Settings settings;
  std::string problem;
  if (!read_settings(settings, problem)) return init_error(*api, logger, problem);
  logger.set_level(settings.level);
  std::optional<DeadLetterBox> dead_letter;
  if (!settings.config.dead_letter.empty()) {
    dead_letter.emplace(settings.config.dead_letter);
    if (!dead_letter->ok())
      return init_error(
          *api, logger,
          "FILEBUILDER_DEAD_LETTER: cannot create directory '" + settings.config.dead_letter + "'");
  }
  DeadLetterBox* box = dead_letter ? &*dead_letter : nullptr;
  // FILEBUILDER_UPLOADER (curl or beast), and memory:, file:DIR or redis://:
  // the store and the uploader outlive invocations, as the rest does.
  constexpr int bad_setting = std::numeric_limits<int>::min();
  std::string uploader_error;
  const int status = with_uploader(
      settings.config, settings.policy,
      [&](auto& uploader) {
        std::string store_error;
        const int served = with_store(
            settings.config,
            [&](auto& store) { return serve(store, uploader, settings, *api, logger, box); },
            bad_setting, store_error);
        if (served == bad_setting)
          return init_error(*api, logger, "FILEBUILDER_STORE: " + store_error);
        return served;
      },
      bad_setting, uploader_error);
  if (status == bad_setting)
    return init_error(*api, logger, std::string("cannot start: ") + uploader_error);
  return status;
}
