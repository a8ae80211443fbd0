// filebuilder: UTC timestamps with milliseconds, for logs and file names.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace filebuilder::detail {

/// `time` formatted with strftime's `format` in UTC, then ".mmmZ".
inline std::string utc_timestamp(const char* format, std::chrono::system_clock::time_point time =
                                                         std::chrono::system_clock::now()) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[48];
  const std::size_t n = std::strftime(buffer, sizeof buffer - 8, format, &utc);
  std::snprintf(buffer + n, sizeof buffer - n, ".%03dZ", static_cast<int>(millis));
  return buffer;
}

}  // namespace filebuilder::detail
