// Test support for the credentials tests: a stand-in environment in which
// only what a test sets exists (so the real ~/.aws and AWS_* never leak in).
#pragma once

#include <map>
#include <string>

#include "filebuilder/aws/credentials.hpp"

namespace filebuilder::test {

struct FakeEnv {
  std::map<std::string, std::string> vars;

  /// A getenv over `vars`; valid while this FakeEnv lives.
  [[nodiscard]] aws::detail::Getenv getenv() const {
    return [this](const char* name) -> const char* {
      const auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
  /// Default options over this environment.
  [[nodiscard]] aws::CredentialsOptions options() const {
    aws::CredentialsOptions options;
    options.getenv = getenv();
    return options;
  }
};

}  // namespace filebuilder::test
