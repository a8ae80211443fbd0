// Builds chunk records for tests.
#pragma once

#include <string>
#include <string_view>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"

namespace filebuilder::test {

inline std::string chunk(std::string_view endpoint, std::uint64_t partition, std::uint64_t count,
                         std::string_view bytes) {
  std::string record = "{\"putEndpoint\":";
  detail::append_json_string(record, endpoint);
  record += ",\"partition\":" + std::to_string(partition) +
            ",\"partitionCount\":" + std::to_string(count) + ",\"content\":\"";
  base64::encode_append(bytes, record);
  record += "\"}";
  return record;
}

}  // namespace filebuilder::test
