// Integration tests of `filebuilder replay --ca-file` and `--ca-bundle`
// against nginx servers with certificates from test CAs. The real test of
// "--ca-file adds to the system's trust": in a private mount namespace, a test
// CA is bind-mounted over libcurl's own default CA bundle file, so that the
// CLI's default trust is that CA; --ca-file must add to it, not replace it.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/bytes.hpp"
#include "support/chunks.hpp"
#include "support/nginx.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"
#include "support/tls.hpp"

#ifdef FILEBUILDER_CLI_PATH

namespace {

namespace fs = std::filesystem;
using filebuilder::test::chunk;
using filebuilder::test::Nginx;
using filebuilder::test::read_bytes;
using filebuilder::test::run;
using filebuilder::test::RunResult;
using filebuilder::test::TempDir;
using filebuilder::test::TestCa;
using filebuilder::test::TwoCaServers;

const std::string cli = FILEBUILDER_CLI_PATH;

/// libcurl's compiled-in CA bundle file, or "" when it has none.
std::string default_ca_bundle() {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL* easy = curl_easy_init();
  char* path = nullptr;
  std::string bundle;
  if (easy != nullptr && curl_easy_getinfo(easy, CURLINFO_CAINFO, &path) == CURLE_OK &&
      path != nullptr)
    bundle = path;
  if (easy != nullptr) curl_easy_cleanup(easy);
  return bundle;
}

/// Runs ARGV with FILE bind-mounted over TARGET in a private mount namespace.
RunResult run_with_file_over(const fs::path& file, const std::string& target,
                             std::vector<std::string> argv) {
  std::vector<std::string> command = {"/usr/bin/unshare",
                                      "-m",
                                      "/bin/sh",
                                      "-c",
                                      "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
                                      "sh",
                                      file.string(),
                                      target};
  command.insert(command.end(), argv.begin(), argv.end());
  return run(command);
}

/// Bare chunk records, one file for each server: /files/A_NAME.bin holding
/// A_NAME, /files/B_NAME.bin holding B_NAME.
fs::path two_chunks(const fs::path& dir, const TwoCaServers& tls, const std::string& a_name,
                    const std::string& b_name) {
  const fs::path input = dir / "chunks.ndjson";
  std::ofstream(input) << chunk(tls.nginx_a.tls_url("/files/" + a_name + ".bin"), 0, 1, a_name)
                       << "\n"
                       << chunk(tls.nginx_b.tls_url("/files/" + b_name + ".bin"), 0, 1, b_name)
                       << "\n";
  return input;
}

/// Whether this machine lets us mount in a private namespace (root, unshare).
bool can_bind_mount(const fs::path& scratch) {
  if (::geteuid() != 0 || ::access("/usr/bin/unshare", X_OK) != 0) return false;
  std::ofstream(scratch / "probe") << "probe\n";
  const RunResult probe =
      run_with_file_over(scratch / "probe", (scratch / "probe").string(), {"/bin/true"});
  return probe.exit_code == 0;
}

}  // namespace

TEST_CASE("cli: --ca-file adds to libcurl's default CA bundle, which stays trusted") {
  const std::string bundle = default_ca_bundle();
  TempDir dir("filebuilder-cli-tls");
  if (!TestCa::available() || bundle.empty() || !fs::exists(bundle) ||
      !can_bind_mount(dir.path())) {
    MESSAGE("skipped: needs openssl, libcurl's CA bundle file, root and unshare -m");
    return;
  }
  // A stands in for the system's CAs, B is the extra one.
  const TwoCaServers tls;
  const fs::path input = two_chunks(dir.path(), tls, "system", "extra");
  const std::vector<std::string> replay = {
      cli, "replay", "--allow-host", "127.0.0.1", "--upload-attempts", "1"};

  SUBCASE("without --ca-file: the system CA's server only (the bundle is the test CA)") {
    std::vector<std::string> argv = replay;
    argv.push_back(input.string());
    const RunResult result = run_with_file_over(tls.a.cert(), bundle, argv);
    CHECK(result.exit_code == 1);
    CHECK(result.out == R"({"records":2,"uploaded":1,"duplicates":0,"rejected":[],"failed":[2]})"
                        "\n");
    CHECK(read_bytes(tls.nginx_a.stored_file("/files/system.bin")) == "system");
    CHECK_FALSE(fs::exists(tls.nginx_b.stored_file("/files/extra.bin")));
  }
  SUBCASE("with --ca-file: both servers") {
    std::vector<std::string> argv = replay;
    argv.insert(argv.end(), {"--ca-file", tls.b.cert().string(), input.string()});
    const RunResult result = run_with_file_over(tls.a.cert(), bundle, argv);
    CAPTURE(result.err);
    CHECK(result.exit_code == 0);
    CHECK(result.out == R"({"records":2,"uploaded":2,"duplicates":0,"rejected":[],"failed":[]})"
                        "\n");
    CHECK(read_bytes(tls.nginx_a.stored_file("/files/system.bin")) == "system");
    CHECK(read_bytes(tls.nginx_b.stored_file("/files/extra.bin")) == "extra");
  }
}

TEST_CASE("cli: --ca-bundle replaces the default bundle, and --ca-file adds to it") {
  TempDir dir("filebuilder-cli-tls");
  if (!TestCa::available()) {
    MESSAGE("skipped: no openssl command to make certificates");
    return;
  }
  const TwoCaServers tls;
  const fs::path input = two_chunks(dir.path(), tls, "a", "b");
  const RunResult result =
      run({cli, "replay", "--allow-host", "127.0.0.1", "--upload-attempts", "1", "--ca-bundle",
           tls.a.cert().string(), "--ca-file", tls.b.cert().string(), input.string()});
  CAPTURE(result.err);
  CHECK(result.exit_code == 0);
  CHECK(read_bytes(tls.nginx_a.stored_file("/files/a.bin")) == "a");
  CHECK(read_bytes(tls.nginx_b.stored_file("/files/b.bin")) == "b");

  SUBCASE("FILEBUILDER_CA_BUNDLE and FILEBUILDER_CA_FILE mean the same") {
    ::setenv("FILEBUILDER_CA_BUNDLE", tls.a.cert().string().c_str(), 1);
    ::setenv("FILEBUILDER_CA_FILE", tls.b.cert().string().c_str(), 1);
    const RunResult env =
        run({cli, "replay", "--allow-host", "127.0.0.1", "--upload-attempts", "1", input.string()});
    ::unsetenv("FILEBUILDER_CA_BUNDLE");
    ::unsetenv("FILEBUILDER_CA_FILE");
    CHECK(env.exit_code == 0);
    CHECK(env.out == R"({"records":2,"uploaded":2,"duplicates":0,"rejected":[],"failed":[]})"
                     "\n");
  }
}

TEST_CASE("cli: an unreadable --ca-file is a usage error, exit 2 with one line") {
  TempDir dir("filebuilder-cli-tls");
  const fs::path missing = dir / "missing.pem";
  const RunResult result = run({cli, "replay", "--ca-file", missing.string()}, "");
  CHECK(result.exit_code == 2);
  CHECK(result.err == "filebuilder: ca_file: cannot read '" + missing.string() + "'\n");
  CHECK(result.out.empty());
}

#endif  // FILEBUILDER_CLI_PATH
