// Test support: what a kpl::Deaggregator yields, copied out of its views.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/error.hpp"
#include "filebuilder/source/kpl.hpp"

namespace filebuilder::test {

struct Yielded {
  std::string data;
  std::string partition_key;
  std::string explicit_hash_key;
  std::uint64_t sub = 0;
  bool aggregated = false;
  filebuilder::ErrorCode error = filebuilder::ErrorCode::ok;
  std::string message;

  bool operator==(const Yielded&) const = default;
};

struct Deaggregated {
  filebuilder::kpl::DeaggregateResult result;
  std::vector<Yielded> records;
};

inline Deaggregated deaggregate(filebuilder::kpl::Deaggregator& deaggregator,
                                std::string_view bytes) {
  Deaggregated out;
  out.result = deaggregator.deaggregate(bytes, [&](const filebuilder::kpl::UserRecord& user) {
    out.records.push_back({std::string(user.data), std::string(user.partition_key),
                           std::string(user.explicit_hash_key), user.sub, user.aggregated,
                           user.error, deaggregator.message(user)});
  });
  return out;
}

inline Deaggregated deaggregate(std::string_view bytes) {
  filebuilder::kpl::Deaggregator deaggregator;
  return deaggregate(deaggregator, bytes);
}

}  // namespace filebuilder::test
