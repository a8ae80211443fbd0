// filebuilder: JSON-lines logging for the adapters, one object per line:
//   {"ts":"2026-11-25T10:00:00.123Z","level":"error","msg":"record
//   rejected","record":"4959...","error":"bad_base64"}
// Endpoints are credentials (presigned URLs): log them through redact_url().
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/detail/utc_time.hpp"

namespace filebuilder {

enum class LogLevel : std::uint8_t { debug, info, warn, error, off };

[[nodiscard]] constexpr std::string_view log_level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
  }
  return "off";
}

/// Parses "debug", "info", "warn"/"warning", "error", "off" (any case); false if unknown.
[[nodiscard]] inline bool parse_log_level(std::string_view text, LogLevel& out) noexcept {
  std::string lower;
  for (char c : text) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "debug" || lower == "trace")
    out = LogLevel::debug;
  else if (lower == "info")
    out = LogLevel::info;
  else if (lower == "warn" || lower == "warning")
    out = LogLevel::warn;
  else if (lower == "error" || lower == "fatal")
    out = LogLevel::error;
  else if (lower == "off" || lower == "none")
    out = LogLevel::off;
  else
    return false;
  return true;
}

struct LogField {
  std::string_view key;
  std::variant<std::string_view, std::int64_t, std::uint64_t, bool> value;

  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, std::int64_t v) : key(k), value(v) {}
  LogField(std::string_view k, int v) : key(k), value(std::int64_t{v}) {}
  LogField(std::string_view k, std::uint64_t v) : key(k), value(v) {}
  LogField(std::string_view k, unsigned v) : key(k), value(std::uint64_t{v}) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
};

/// Writes one JSON object per line to a FILE* (stderr by default). Thread-safe.
class Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::info, std::FILE* out = stderr)
      : level_(level), out_(out) {}

  void set_level(LogLevel level) noexcept { level_ = level; }
  [[nodiscard]] LogLevel level() const noexcept { return level_; }
  [[nodiscard]] bool enabled(LogLevel level) const noexcept {
    return level >= level_ && level != LogLevel::off;
  }
  /// Fields added to every line (e.g. the Lambda request id).
  void set_context(std::initializer_list<LogField> fields) {
    context_.clear();
    append_fields(context_, fields);
  }

  void log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {}) {
    if (!enabled(level)) return;
    std::string line;
    line.reserve(128);
    line += "{\"ts\":\"";
    line += detail::utc_timestamp("%Y-%m-%dT%H:%M:%S");  // RFC 3339
    line += "\",\"level\":\"";
    line += log_level_name(level);
    line += "\",\"msg\":";
    detail::append_json_string(line, msg);
    append_fields(line, fields);
    line += context_;
    line += "}\n";
    std::lock_guard lock(mutex_);
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
  }

  void debug(std::string_view msg, std::initializer_list<LogField> f = {}) {
    log(LogLevel::debug, msg, f);
  }
  void info(std::string_view msg, std::initializer_list<LogField> f = {}) {
    log(LogLevel::info, msg, f);
  }
  void warn(std::string_view msg, std::initializer_list<LogField> f = {}) {
    log(LogLevel::warn, msg, f);
  }
  void error(std::string_view msg, std::initializer_list<LogField> f = {}) {
    log(LogLevel::error, msg, f);
  }

 private:
  static void append_fields(std::string& line, std::initializer_list<LogField> fields) {
    for (const LogField& field : fields) {
      line += ',';
      detail::append_json_string(line, field.key);
      line += ':';
      if (const auto* s = std::get_if<std::string_view>(&field.value)) {
        detail::append_json_string(line, *s);
      } else if (const auto* i = std::get_if<std::int64_t>(&field.value)) {
        line += std::to_string(*i);
      } else if (const auto* u = std::get_if<std::uint64_t>(&field.value)) {
        line += std::to_string(*u);
      } else {
        line += std::get<bool>(field.value) ? "true" : "false";
      }
    }
  }

  LogLevel level_;
  std::FILE* out_;
  std::string context_;
  std::mutex mutex_;
};

}  // namespace filebuilder
