// Test support: one HTTP request as a fake server received it.
#pragma once

#include <map>
#include <string>

namespace filebuilder::test {

struct RecordedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  [[nodiscard]] std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

}  // namespace filebuilder::test
