// Test support: node and npm packages installed into the build tree.
//
//   const NpmPackage& agg = npm_package("aws-kinesis-agg", "aws-kinesis-agg@4");
//   if (!agg.skip.empty()) { MESSAGE(agg.skip); return; }   // no node or npm on PATH
//   REQUIRE_MESSAGE(agg.install_log.empty(), agg.install_log);  // npm install failed
//   run({agg.node, "script.js", agg.modules});
//
// Each package is installed once per build tree, under <test binary's
// directory>/npm/<name>, by `npm install --prefix`, under a file lock, as
// CTest may run several tests at once: one installs, the others wait and then
// find it installed.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "support/run.hpp"

namespace filebuilder::test {

/// The first executable NAME in PATH, or "" if there is none.
inline std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const std::size_t colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    if (!dir.empty()) {
      const std::string candidate = dir + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string_view::npos) return {};
    dirs.remove_prefix(colon + 1);
  }
}

struct NpmPackage {
  std::string node;         // the node binary
  std::string modules;      // <prefix>/node_modules, holding the package
  std::string skip;         // why tests that need it cannot run ("" if they can)
  std::string install_log;  // npm's output, when it had to install and failed
};

/// Finds node and npm and installs SPEC (for example "kinesalite@3"), whose
/// package is NAME, once per build tree.
inline const NpmPackage& npm_package(const std::string& name, const std::string& spec) {
  static std::mutex mutex;
  static std::map<std::string, NpmPackage> installed;
  std::lock_guard guard(mutex);
  const auto found = installed.find(name);
  if (found != installed.end()) return found->second;
  NpmPackage& package = installed[name];
  package.node = find_in_path("node");
  const std::string npm = find_in_path("npm");
  if (package.node.empty() || npm.empty()) {
    package.skip = "node or npm is not on PATH: the tests that need " + name + " are skipped";
    return package;
  }
  namespace fs = std::filesystem;
  const fs::path prefix = fs::read_symlink("/proc/self/exe").parent_path() / "npm" / name;
  fs::create_directories(prefix);
  package.modules = (prefix / "node_modules").string();
  const fs::path marker = prefix / "node_modules" / name / "package.json";
  const int lock = ::open((prefix / "install.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  if (!fs::exists(marker)) {
    const RunResult install = run({npm, "install", "--prefix", prefix.string(), "--no-audit",
                                   "--no-fund", "--loglevel=error", spec},
                                  {}, std::chrono::minutes(5));
    if (install.exit_code != 0 || !fs::exists(marker))
      package.install_log = "npm install " + spec + " failed (exit " +
                            std::to_string(install.exit_code) + "):\n" + install.out + install.err;
  }
  if (lock >= 0) ::close(lock);  // releases the lock
  return package;
}

}  // namespace filebuilder::test
