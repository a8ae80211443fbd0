// Test support: a child process (a server) started and stopped by a test.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace filebuilder::test {

/// Runs ARGV[0] (a path, not searched in PATH) with standard input from
/// /dev/null and standard output and error appended to OUTPUT. The destructor
/// stops it (SIGTERM, then SIGKILL). On Linux the child is killed when the
/// test process dies, so a crashed test leaves no server behind.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, const std::filesystem::path& output) {
    if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (in < 0 || out < 0) {
      const int error = errno;
      if (in >= 0) ::close(in);
      if (out >= 0) ::close(out);
      throw std::system_error(error, std::generic_category(), "open " + output.string());
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls from here on.
#ifdef __linux__
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
#endif
      ::dup2(in, STDIN_FILENO);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    const int error = errno;
    ::close(in);
    ::close(out);
    if (pid < 0) throw std::system_error(error, std::generic_category(), "fork");
    (void)parent;
    pid_ = pid;
  }
  ~ChildProcess() {
    stop();
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] pid_t pid() const noexcept {
    return pid_;
  }

  /// The exit status (as from waitpid) once the child has ended, else nullopt.
  [[nodiscard]] std::optional<int> poll() {
    if (status_) return status_;
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
    return status_;
  }

  /// Waits for the child to end by itself. Returns its status.
  int wait() {
    while (!poll()) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, 0);
      if (done == pid_) status_ = status;
      if (done < 0 && errno != EINTR) status_ = -1;
    }
    return *status_;
  }

  /// Stops the child: SIGTERM, then SIGKILL after GRACE. Returns its status.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    if (pid_ <= 0 || poll()) return status_.value_or(0);
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (!poll() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!poll()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      status_ = status;
    }
    return *status_;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace filebuilder::test
