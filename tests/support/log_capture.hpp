// Captures a Logger's lines in memory (open_memstream), for tests.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace filebuilder::test {

/// Captures what a Logger writes to `file`.
struct LogCapture {
  char* buffer = nullptr;
  std::size_t size = 0;
  std::FILE* file = open_memstream(&buffer, &size);
  LogCapture() = default;
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  ~LogCapture() {
    std::fclose(file);
    std::free(buffer);
  }
  /// Everything written so far.
  std::string text() {
    std::fflush(file);
    return std::string(buffer, size);
  }
  /// The same, each line's timestamp emptied ({"ts":"", ...}): two runs of the
  /// same work then write the same bytes.
  std::string without_timestamps() {
    std::fflush(file);
    // Every line starts {"ts":"<time>", and a time holds no quote.
    constexpr std::string_view head = R"({"ts":")";
    const std::string_view log(buffer, size);
    std::string out;
    for (std::size_t line = 0; line < log.size();) {
      std::size_t end = log.find('\n', line);
      end = end == std::string_view::npos ? log.size() : end + 1;
      std::size_t from = line;
      if (log.substr(line, head.size()) == head) {
        out.append(head);
        from = log.find('"', line + head.size());
        if (from == std::string_view::npos || from > end) from = end;
      }
      out.append(log.substr(from, end - from));
      line = end;
    }
    return out;
  }
};

}  // namespace filebuilder::test
