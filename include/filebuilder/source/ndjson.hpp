// filebuilder: framing of newline-delimited input (NDJSON of events or of bare
// chunk records), shared by the adapters that read files or streams.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string_view>

namespace filebuilder::source {

[[nodiscard]] constexpr std::string_view trim_json_space(std::string_view s) noexcept {
  constexpr std::string_view space = " \t\r\n";
  const std::size_t first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

/// Whether `text` is exactly one complete JSON value (fully validated).
[[nodiscard]] inline bool is_json_value(std::string_view text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element element;
  return parser.parse(text.data(), text.size()).get(element) == simdjson::SUCCESS;
}

/// Calls fn(line, number) for every line (1-based physical numbers, '\n'
/// separated, the separator not included; a trailing '\r' is kept for the
/// JSON parser to skip as white space).
template <typename Fn>
void for_each_line(std::string_view content, Fn&& fn) {
  std::uint64_t number = 0;
  while (!content.empty()) {
    const std::size_t end = content.find('\n');
    fn(content.substr(0, end), ++number);
    if (end == std::string_view::npos) break;
    content.remove_prefix(end + 1);
  }
}

}  // namespace filebuilder::source
