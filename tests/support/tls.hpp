// Test support: certificate authorities made with the openssl command, for
// https tests.
//
//   filebuilder::test::TestCa ca(dir / "a", "Test CA A");   // ca.cert() is its PEM certificate
//   const auto [cert, key] = ca.issue("server", {"IP:127.0.0.1", "DNS:a.test"});
//   filebuilder::test::Nginx nginx(cert, key);              // https signed by that CA
//
// TestCa::available() is false without /usr/bin/openssl. TwoCaServers: two CAs,
// an nginx for each.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/nginx.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace filebuilder::test {

class TestCa {
 public:
  static constexpr const char* openssl = "/usr/bin/openssl";

  [[nodiscard]] static bool available() { return ::access(openssl, X_OK) == 0; }

  /// A new CA (P-256 key, valid two days) in DIR, which is created.
  TestCa(std::filesystem::path dir, const std::string& name) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    run({openssl,
         "req",
         "-x509",
         "-newkey",
         "ec",
         "-pkeyopt",
         "ec_paramgen_curve:prime256v1",
         "-nodes",
         "-days",
         "2",
         "-subj",
         "/CN=" + name,
         "-addext",
         "basicConstraints=critical,CA:TRUE",
         "-addext",
         "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout",
         (dir_ / "ca.key").string(),
         "-out",
         cert().string()});
  }

  /// The CA's certificate (PEM).
  [[nodiscard]] std::filesystem::path cert() const { return dir_ / "ca.pem"; }

  /// A server certificate signed by this CA for the subjectAltName entries
  /// NAMES ("IP:127.0.0.1", "DNS:a.test"); returns its certificate and key.
  std::pair<std::filesystem::path, std::filesystem::path> issue(
      const std::string& stem, const std::vector<std::string>& names) const {
    const std::filesystem::path key = dir_ / (stem + ".key");
    const std::filesystem::path request = dir_ / (stem + ".csr");
    const std::filesystem::path certificate = dir_ / (stem + ".pem");
    const std::filesystem::path extensions = dir_ / (stem + ".ext");
    std::string alt;
    for (const std::string& name : names) alt += (alt.empty() ? "" : ",") + name;
    std::ofstream(extensions) << "basicConstraints=CA:FALSE\n"
                              << "keyUsage=critical,digitalSignature\n"
                              << "extendedKeyUsage=serverAuth\n"
                              << "subjectAltName=" << alt << "\n";
    run({openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", "/CN=" + stem, "-keyout", key.string(), "-out", request.string()});
    run({openssl, "x509", "-req", "-in", request.string(), "-CA", cert().string(), "-CAkey",
         (dir_ / "ca.key").string(), "-CAcreateserial", "-days", "2", "-extfile",
         extensions.string(), "-out", certificate.string()});
    return {certificate, key};
  }

 private:
  void run(const std::vector<std::string>& argv) const {
    ChildProcess child(argv, dir_ / "openssl.out");
    const int status = child.wait();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("openssl failed: " + argv[1] + " (see " +
                               (dir_ / "openssl.out").string() + ")");
  }

  std::filesystem::path dir_;
};

/// Two CAs, A and B, each with an nginx whose https certificate for 127.0.0.1
/// it signed (A's also names a.test).
struct TwoCaServers {
  TempDir dir{"filebuilder-tls"};
  TestCa a{dir / "a", "filebuilder test CA A"};
  TestCa b{dir / "b", "filebuilder test CA B"};
  std::pair<std::filesystem::path, std::filesystem::path> a_server =
      a.issue("server", {"IP:127.0.0.1", "DNS:a.test"});
  std::pair<std::filesystem::path, std::filesystem::path> b_server =
      b.issue("server", {"IP:127.0.0.1"});
  Nginx nginx_a{a_server.first, a_server.second};
  Nginx nginx_b{b_server.first, b_server.second};
};

}  // namespace filebuilder::test
