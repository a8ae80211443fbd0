// filebuilder: writing a JSON string literal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace filebuilder::detail {

/// Appends `s` to `out` as a JSON string, quotes included. Escapes '"' and
/// '\\', writes \b \f \n \r \t for those controls and \u00XX for the other
/// bytes below 0x20; every other byte (UTF-8 included, and DEL) passes through
/// unchanged. The bytes are not checked for valid UTF-8.
inline void append_json_string(std::string& out, std::string_view s);

// ---------------------------------------------------------------------------
// Definitions

inline void append_json_string(std::string& out, std::string_view s) {
  constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default: {
        const char escape[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0x0F]};
        out.append(escape, sizeof escape);
        break;
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace filebuilder::detail
