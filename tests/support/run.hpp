// Test support: run a program (no shell) and capture what it does.
//
//   using filebuilder::test::run;
//   RunResult r = run({"/path/to/filebuilder", "replay", "-"}, "stdin bytes\n");
//   r.exit_code   // the exit status, or -1 if it was killed by a signal
//   r.out, r.err  // standard output and standard error, separately
//
//   InteractiveProcess p({"/path/to/filebuilder", "replay", "-"});
//   std::optional<std::string> reply = p.exchange("{...}");  // one line in, one line out
//   RunResult end = p.finish();  // closes stdin, drains, waits
//
// ARGV[0] is a path (PATH is not searched); the child inherits the
// environment. Standard input, output and error are pipes, read and written
// together with poll(), so a child that writes much before reading (or the
// other way round) cannot deadlock. A child that outlives its timeout is
// killed (SIGKILL) and reported with timed_out set. On Linux a child is also
// killed if the test process dies.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "filebuilder/detail/unique_fd.hpp"

namespace filebuilder::test {

struct RunResult {
  int exit_code = -1;      // WEXITSTATUS, or -1 when the child did not exit normally
  int signal = 0;          // the terminating signal, if any
  bool timed_out = false;  // killed because it ran longer than the timeout
  std::string out;         // standard output (for InteractiveProcess: what was not read yet)
  std::string err;         // standard error
};

namespace detail::run {

using Fd = filebuilder::detail::UniqueFd;

inline std::pair<Fd, Fd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  return {Fd(fds[0]), Fd(fds[1])};
}

inline void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    throw std::system_error(errno, std::generic_category(), "fcntl O_NONBLOCK");
}

/// A started child with the parent's ends of its three pipes (non-blocking).
struct Spawned {
  pid_t pid = -1;
  Fd in;   // write end of the child's stdin
  Fd out;  // read end of its stdout
  Fd err;  // read end of its stderr
};

inline Spawned spawn(std::vector<std::string> argv) {
  if (argv.empty()) throw std::invalid_argument("run: empty argv");
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);

  auto [in_read, in_write] = make_pipe();
  auto [out_read, out_write] = make_pipe();
  auto [err_read, err_write] = make_pipe();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
#ifdef __linux__
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
#endif
    ::signal(SIGPIPE, SIG_DFL);  // the parent ignores it; exec keeps ignored signals ignored
    // dup2 clears FD_CLOEXEC on the new descriptor; every pipe end is closed by exec.
    if (::dup2(in_read.get(), STDIN_FILENO) < 0 || ::dup2(out_write.get(), STDOUT_FILENO) < 0 ||
        ::dup2(err_write.get(), STDERR_FILENO) < 0)
      ::_exit(127);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  (void)parent;
  Spawned child;
  child.pid = pid;
  child.in = std::move(in_write);
  child.out = std::move(out_read);
  child.err = std::move(err_read);
  set_nonblocking(child.in.get());
  set_nonblocking(child.out.get());
  set_nonblocking(child.err.get());
  return child;
}

/// Writing to a pipe whose reader is gone must give EPIPE, not kill the test.
inline void ignore_sigpipe() {
  static const bool done = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

/// Reads what is available from fd into out. False at end of file (or error).
inline bool drain(int fd, std::string& out) {
  std::array<char, 64 * 1024> buffer;
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      out.append(buffer.data(), static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

/// Writes as much of `pending` as the pipe takes now. False if the reader is gone.
inline bool feed(int fd, std::string_view& pending) {
  while (!pending.empty()) {
    const ssize_t n = ::write(fd, pending.data(), pending.size());
    if (n > 0) {
      pending.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  return true;
}

inline int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1000));
}

inline void set_status(RunResult& result, int status) {
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
}

/// Waits for pid until the deadline, then kills it. Fills the status fields.
inline void reap(pid_t pid, std::chrono::steady_clock::time_point deadline, RunResult& result) {
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    ::usleep(1000);
  }
  set_status(result, status);
}

}  // namespace detail::run

/// Runs ARGV with INPUT on standard input (then end of file) and returns its
/// exit status, standard output and standard error.
inline RunResult run(std::vector<std::string> argv, std::string_view input = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  using namespace detail::run;
  ignore_sigpipe();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Spawned child = spawn(std::move(argv));
  RunResult result;
  std::string_view pending = input;
  if (pending.empty()) child.in.reset();
  while ((child.out.valid() || child.err.valid()) && std::chrono::steady_clock::now() < deadline) {
    std::array<pollfd, 3> fds{};
    nfds_t count = 0;
    const auto add = [&](const Fd& fd, short events) {
      if (fd.valid()) fds[count++] = pollfd{fd.get(), events, 0};
    };
    add(child.out, POLLIN);
    add(child.err, POLLIN);
    add(child.in, POLLOUT);
    const int ready = ::poll(fds.data(), count, remaining_ms(deadline));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == child.out.get()) {
        if (!drain(child.out.get(), result.out)) child.out.reset();
      } else if (fds[i].fd == child.err.get()) {
        if (!drain(child.err.get(), result.err)) child.err.reset();
      } else if (fds[i].fd == child.in.get()) {
        if (!feed(child.in.get(), pending) || pending.empty()) child.in.reset();
      }
    }
  }
  child.in.reset();
  reap(child.pid, deadline, result);
  // Whatever is still buffered in the pipes after the exit.
  if (child.out.valid()) drain(child.out.get(), result.out);
  if (child.err.valid()) drain(child.err.get(), result.err);
  return result;
}

/// A child fed one line at a time: write a line, read its reply line, repeat.
class InteractiveProcess {
 public:
  explicit InteractiveProcess(std::vector<std::string> argv) {
    detail::run::ignore_sigpipe();
    child_ = detail::run::spawn(std::move(argv));
  }
  ~InteractiveProcess() {
    if (!finished_) {
      ::kill(child_.pid, SIGKILL);
      int status = 0;
      while (::waitpid(child_.pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  InteractiveProcess(const InteractiveProcess&) = delete;
  InteractiveProcess& operator=(const InteractiveProcess&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return child_.pid; }

  /// Writes LINE and a '\n' to the child's standard input (all of it, within
  /// TIMEOUT). False if the child stopped reading.
  bool write_line(std::string_view line,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::string text(line);
    text += '\n';
    std::string_view pending = text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (child_.in.valid() && !pending.empty()) {
      if (!detail::run::feed(child_.in.get(), pending)) return false;
      if (pending.empty()) break;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      // Keep draining the output pipes while the input pipe is full.
      wait_io(true, detail::run::remaining_ms(deadline));
    }
    return child_.in.valid() && pending.empty();
  }

  /// The next line of standard output (without its '\n'), or nullopt if none
  /// is complete within TIMEOUT (or the output ended).
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const std::size_t newline = out_.find('\n');
      if (newline != std::string::npos) {
        std::string line = out_.substr(0, newline);
        out_.erase(0, newline + 1);
        return line;
      }
      if (!child_.out.valid() || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      wait_io(false, detail::run::remaining_ms(deadline));
    }
  }

  /// write_line, then read_line.
  std::optional<std::string> exchange(
      std::string_view line, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    if (!write_line(line, timeout)) return std::nullopt;
    return read_line(timeout);
  }

  /// Standard error so far.
  [[nodiscard]] const std::string& err() const noexcept { return err_; }

  /// Closes standard input, reads the rest of both outputs and waits for the
  /// child. out holds the standard output not returned by read_line.
  RunResult finish(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    child_.in.reset();
    while ((child_.out.valid() || child_.err.valid()) &&
           std::chrono::steady_clock::now() < deadline) {
      wait_io(false, detail::run::remaining_ms(deadline));
    }
    RunResult result;
    detail::run::reap(child_.pid, deadline, result);
    finished_ = true;
    if (child_.out.valid()) detail::run::drain(child_.out.get(), out_);
    if (child_.err.valid()) detail::run::drain(child_.err.get(), err_);
    result.out = std::move(out_);
    result.err = std::move(err_);
    out_.clear();
    err_.clear();
    return result;
  }

 private:
  /// Waits up to timeout_ms for output (and, if want_write, for room in the
  /// input pipe), and reads whatever output arrived.
  void wait_io(bool want_write, int timeout_ms) {
    std::array<pollfd, 3> fds{};
    nfds_t count = 0;
    if (child_.out.valid()) fds[count++] = pollfd{child_.out.get(), POLLIN, 0};
    if (child_.err.valid()) fds[count++] = pollfd{child_.err.get(), POLLIN, 0};
    if (want_write && child_.in.valid()) fds[count++] = pollfd{child_.in.get(), POLLOUT, 0};
    if (count == 0) return;
    if (::poll(fds.data(), count, timeout_ms) <= 0) return;
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == child_.out.get()) {
        if (!detail::run::drain(child_.out.get(), out_)) child_.out.reset();
      } else if (fds[i].fd == child_.err.get()) {
        if (!detail::run::drain(child_.err.get(), err_)) child_.err.reset();
      }
    }
  }

  detail::run::Spawned child_;
  std::string out_;
  std::string err_;
  bool finished_ = false;
};

}  // namespace filebuilder::test
