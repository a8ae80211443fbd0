// filebuilder: what the durable stores share for checkpoints. The text form of
// a Checkpoint they keep (the file store inside its checkpoint files, the Redis
// store as hash values, which its Lua script compares):
//
//   "<shard_end: 0|1> <sequence_number> <sub_sequence>"    "0
//   49590338271490256608559692538361571095921575989136588898 3"
//                                                          "1  0" (a shard end naming no record)
//
// Both numbers in decimal without leading zeros, so that two of them compare
// as numbers by length, then bytewise.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/concepts.hpp"

namespace filebuilder::detail {

[[nodiscard]] inline std::string format_checkpoint(const Checkpoint& checkpoint) {
  std::string text(checkpoint.shard_end ? "1 " : "0 ");
  text += checkpoint.sequence_number;
  text += ' ';
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, checkpoint.sub_sequence).ptr;
  text.append(digits, end);
  return text;
}

/// Strict: exactly what format_checkpoint writes for a valid checkpoint.
[[nodiscard]] inline bool parse_checkpoint(std::string_view text, Checkpoint& checkpoint) {
  if (text.size() < 4 || (text[0] != '0' && text[0] != '1') || text[1] != ' ') return false;
  const std::size_t space = text.find(' ', 2);
  if (space == std::string_view::npos) return false;
  const std::string_view sub = text.substr(space + 1);
  Checkpoint parsed;
  parsed.shard_end = text[0] == '1';
  parsed.sequence_number = std::string(text.substr(2, space - 2));
  if (sub.empty() || (sub.size() > 1 && sub[0] == '0') || sub[0] < '0' || sub[0] > '9')
    return false;
  const auto [end, error] =
      std::from_chars(sub.data(), sub.data() + sub.size(), parsed.sub_sequence);
  if (error != std::errc{} || end != sub.data() + sub.size()) return false;
  if (check_checkpoint(parsed) != ErrorCode::ok) return false;
  checkpoint = std::move(parsed);
  return true;
}

/// list_checkpoints' order: by shard name, bytewise.
inline void sort_by_shard(std::vector<ShardCheckpoint>& checkpoints) {
  std::sort(checkpoints.begin(), checkpoints.end(),
            [](const ShardCheckpoint& a, const ShardCheckpoint& b) { return a.first < b.first; });
}

}  // namespace filebuilder::detail
