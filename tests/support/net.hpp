// Test support: loopback ports for the servers the tests start.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace filebuilder::test {

/// A TCP port on 127.0.0.1 that was free a moment ago (servers retry on a race).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("bind() to 127.0.0.1:0 failed");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

/// Whether something accepts TCP connections on 127.0.0.1:port.
inline bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

/// Starts a server on a free port: sets `port` to one and calls launch() (true
/// once the server answers); on failure, again on another port (8 tries in
/// all) as long as log() says the port was taken meanwhile (`port_taken`).
/// Throws std::runtime_error with the last log.
template <typename Launch, typename Log>
void start_on_free_port(const std::string& name, std::uint16_t& port, std::string_view port_taken,
                        Launch&& launch, Log&& log) {
  std::string last_log;
  for (int attempt = 0; attempt < 8; ++attempt) {
    port = free_port();
    if (launch()) return;
    last_log = log();
    if (last_log.find(port_taken) == std::string::npos) break;
  }
  throw std::runtime_error(name + " did not start:\n" + last_log);
}

}  // namespace filebuilder::test
