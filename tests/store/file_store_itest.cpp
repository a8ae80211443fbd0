// FileStore under SIGKILL: child processes put the parts of many files (in
// random order, with duplicates) into one directory, "upload" complete files
// and finish them, and are killed at random moments; a last child runs to the
// end. Every body handed out must be whole, and no file finished before may be
// handed out for upload again. Then the same for checkpoints: a saver killed
// at random moments never leaves a torn checkpoint nor one behind a save it
// was told had succeeded.
#include "filebuilder/digest.hpp"
#include "filebuilder/store/file.hpp"

#include "store/conformance.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace filebuilder;

namespace {

struct Input {
  struct File {
    std::string endpoint;
    std::vector<std::string> parts;
    std::string sha256;
  };
  std::vector<File> files;
  std::vector<std::pair<std::size_t, std::size_t>> chunks;  // (file, part), duplicates included
};

Input make_input(std::uint64_t seed) {
  std::mt19937_64 random(seed);
  Input input;
  for (std::size_t f = 0; f < 30; ++f) {
    Input::File file;
    file.endpoint = "https://bucket.example.com/crash/" + std::to_string(f) + ".bin?sig=x";
    const std::size_t parts = 1 + random() % 8;
    std::string whole;
    for (std::size_t p = 0; p < parts; ++p) {
      std::string bytes(random() % 4 == 0 ? random() % 16 : random() % (32 * 1024), '\0');
      for (char& c : bytes) c = static_cast<char>(random());
      whole += bytes;
      file.parts.push_back(std::move(bytes));
      input.chunks.emplace_back(f, p);
      if (random() % 3 == 0) input.chunks.emplace_back(f, p);  // a redelivery
    }
    file.sha256 = sha256_hex(whole);
    input.files.push_back(std::move(file));
  }
  return input;
}

void log_line(int fd, const std::string& line, bool sync = false) {
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(60);
  if (sync && ::fsync(fd) != 0) ::_exit(61);
}

/// The body of a child process: never returns. Exit codes: 0 done, 20-21 could
/// not start, 22 a complete file had no body, 23 a torn body, 24-25 release or
/// finish failed, 26 a put failed (a conflict: a torn part), 27 the last child
/// did not finish in time, 28 an exception, 60-61 the log. FINAL: run until every file is
/// finished; else run passes until killed (or 5 s have passed). DURABLE: fsync
/// on. A SIGKILL loses nothing the kernel has (page cache), so most children
/// run without fsync, which only slows them down; a few keep it, to be killed
/// inside an fsync too.
[[noreturn]] void run_child(const Input& input, const std::filesystem::path& dir,
                            const std::filesystem::path& log, std::uint64_t seed, bool final,
                            bool durable) {
#ifdef __linux__
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  int code = 0;
  try {
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log_fd < 0) ::_exit(20);
    FileStoreOptions options;
    options.directory = dir;
    options.claim_lease = std::chrono::seconds(1);  // leases of killed children run out soon
    options.fsync = durable;
    FileStore store(options);
    if (store.open() != ErrorCode::ok) ::_exit(21);
    std::mt19937_64 random(seed);
    std::map<std::string_view, std::size_t> index_of;
    for (std::size_t f = 0; f < input.files.size(); ++f) index_of[input.files[f].endpoint] = f;

    // Uploads a file this process has claimed: check the body, then either
    // acknowledge and finish it, or fail it (a retryable upload failure).
    const auto upload = [&](std::size_t f) {
      const Input::File& file = input.files[f];
      log_line(log_fd, "C " + std::to_string(f) + "\n");
      Result<std::unique_ptr<BodyReader>> body = store.open_body(file.endpoint);
      if (!body.ok()) ::_exit(22);
      const std::string sha = sha256_hex(*body.value_unsafe());
      if (sha != file.sha256) {
        log_line(log_fd, "X " + std::to_string(f) + "\n");
        ::_exit(23);
      }
      if (random() % 5 == 0) {
        if (store.release(file.endpoint, Clock::now()) != ErrorCode::ok) ::_exit(24);
        return;
      }
      log_line(log_fd, "U " + std::to_string(f) + " " + sha + "\n", true);  // before finish
      if (store.finish(file.endpoint) != ErrorCode::ok) ::_exit(25);
      log_line(log_fd, "F " + std::to_string(f) + "\n");
    };

    std::vector<std::pair<std::size_t, std::size_t>> order = input.chunks;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    for (;;) {
      std::shuffle(order.begin(), order.end(), random);
      std::vector<bool> finished(input.files.size(), false);
      std::size_t step = 0;
      for (const auto& [f, p] : order) {
        const Input::File& file = input.files[f];
        const PutOutcome put = store.put_part(
            PartInfo{file.endpoint, p, file.parts.size(), UINT64_MAX}, file.parts[p]);
        if (put.error != ErrorCode::ok) ::_exit(26);  // conflicts never happen here
        if (put.status == PutStatus::finished) finished[f] = true;
        if (put.complete && store.claim(file.endpoint) == ClaimStatus::claimed) upload(f);
        if (++step % 16 == 0) {
          for (const PendingFile& pending : store.claim_pending(4, Clock::now()))
            upload(index_of.at(pending.endpoint));
        }
      }
      if (!final) {
        if (std::chrono::steady_clock::now() > deadline - std::chrono::seconds(10)) break;
        continue;
      }
      // Done when a put of every file says finished (a pass that sees one
      // finished file per chunk at the start of the next pass).
      if (std::all_of(finished.begin(), finished.end(), [](bool done) { return done; })) break;
      if (std::chrono::steady_clock::now() > deadline) ::_exit(27);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // leases of the dead
    }
    store.expire(Clock::now());
  } catch (...) {
    code = 28;
  }
  ::_exit(code);
}

pid_t start_child(const Input& input, const std::filesystem::path& dir,
                  const std::filesystem::path& log, std::uint64_t seed, bool final, bool durable) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) run_child(input, dir, log, seed, final, durable);
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

TEST_CASE("file store crash: children killed at random moments lose and tear nothing") {
  const Input input = make_input(20240601);
  test::TempDir dir("filebuilder-filestore-crash");
  const std::filesystem::path store_dir = dir / "store";
  const std::filesystem::path log = dir / "log";
  std::mt19937_64 random(7);

  int kills = 0;
  for (int round = 0; round < 40; ++round) {
    const pid_t pid = start_child(input, store_dir, log, 1000 + round, false, round % 4 == 0);
    REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + random() % 28000));
    ::kill(pid, SIGKILL);
    const int status = wait_for(pid);
    if (WIFSIGNALED(status)) {
      ++kills;
    } else {
      INFO("round " << round);
      REQUIRE(WEXITSTATUS(status) == 0);  // not killed (a very slow machine)
    }
  }
  CHECK(kills >= 20);
  std::size_t finished_before = 0, open_before = 0;
  {
    std::ifstream before(log);
    for (std::string line; std::getline(before, line);) finished_before += line[0] == 'F' ? 1 : 0;
    FileStoreOptions options;
    options.directory = store_dir;
    FileStore store(options);
    REQUIRE(store.open() == ErrorCode::ok);
    open_before = store.open_files();
  }

  const pid_t last = start_child(input, store_dir, log, 99, true, false);
  REQUIRE(last > 0);
  const int status = wait_for(last);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  // The log: C = claimed (handed out), U = acknowledged (with the body's
  // SHA-256), F = finished. X would be a torn body.
  std::ifstream in(log);
  std::vector<int> claims(input.files.size(), 0), acks(input.files.size(), 0);
  std::vector<bool> finished(input.files.size(), false);
  int handed_out_after_finish = 0, torn = 0, lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    std::istringstream fields(line);
    char kind = 0;
    std::size_t f = 0;
    fields >> kind >> f;
    REQUIRE(f < input.files.size());
    switch (kind) {
      case 'C':
        ++claims[f];
        if (finished[f]) ++handed_out_after_finish;
        break;
      case 'U': {
        std::string sha;
        fields >> sha;
        if (sha != input.files[f].sha256) ++torn;
        ++acks[f];
        break;
      }
      case 'F': finished[f] = true; break;
      case 'X': ++torn; break;
      default: FAIL("unexpected log line: " << line);
    }
  }
  MESSAGE(kills << " kills; before the last child: " << finished_before << " files finished, "
                << open_before << " unfinished; " << lines << " log lines");
  CHECK(torn == 0);
  CHECK(handed_out_after_finish == 0);

  FileStoreOptions options;
  options.directory = store_dir;
  FileStore store(options);
  REQUIRE(store.open() == ErrorCode::ok);
  for (std::size_t f = 0; f < input.files.size(); ++f) {
    INFO("file " << f);
    const Input::File& file = input.files[f];
    CHECK(acks[f] >= 1);  // uploaded whole at least once
    CHECK(store.claim(file.endpoint) == ClaimStatus::finished);
    CHECK(
        store.put_part(PartInfo{file.endpoint, 0, file.parts.size(), UINT64_MAX}, "other").status ==
        PutStatus::finished);
  }
  // A child killed inside finish() (done-mark written, parts not yet removed)
  // leaves parts behind that no put or claim hands out; the next expire()
  // removes them, whatever their age.
  (void)store.expire(Clock::now());
  CHECK(store.open_files() == 0);  // every finished file's parts are gone
  std::size_t trash = 0;
  for (const auto& entry : std::filesystem::directory_iterator(store_dir / "tmp"))
    trash += entry.path().filename().string().starts_with(".trash-") ? 1 : 0;
  CHECK(trash == 0);
}

namespace {

/// Saves ascending checkpoints (two shards) from FROM on, and after each
/// acknowledged save writes its number to LOG, until killed.
[[noreturn]] void run_checkpoint_child(const std::filesystem::path& dir,
                                       const std::filesystem::path& log, std::uint64_t from) {
#ifdef __linux__
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  int code = 0;
  try {
    FileStoreOptions options;
    options.directory = dir;
    FileStore store(options);
    if (store.open() != ErrorCode::ok) ::_exit(20);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (out < 0) ::_exit(21);
    for (std::uint64_t n = from;; ++n) {
      const Checkpoint checkpoint{test::checkpoints::sequence(n), n % 3, false};
      if (store.save_checkpoint("stream", n % 2 == 0 ? "even" : "odd", checkpoint) != ErrorCode::ok)
        ::_exit(22);
      const std::string line = std::to_string(n) + "\n";
      if (::write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(23);
    }
  } catch (...) {
    code = 24;
  }
  ::_exit(code);
}

}  // namespace

TEST_CASE("file store crash: a checkpoint saver killed at random moments leaves a whole one") {
  test::TempDir dir("filebuilder-filestore-checkpoint-crash");
  const std::filesystem::path store_dir = dir / "store", log = dir / "log";
  std::mt19937_64 random(11);
  FileStoreOptions options;
  options.directory = store_dir;
  std::uint64_t next = 0;
  int kills = 0;
  for (int round = 0; round < 30; ++round) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    const std::uint64_t from = next;
    if (pid == 0) run_checkpoint_child(store_dir, log, from);
    std::this_thread::sleep_for(std::chrono::microseconds(5000 + random() % 45000));
    ::kill(pid, SIGKILL);
    const int status = wait_for(pid);
    INFO("round " << round);
    REQUIRE(WIFSIGNALED(status));  // the child saves until it is killed
    ++kills;

    // The last save acknowledged to each shard, by the log.
    std::map<std::string, std::uint64_t> acknowledged;
    std::uint64_t last_logged = 0;
    std::ifstream in(log);
    for (std::uint64_t n = 0; in >> n; last_logged = n)
      acknowledged[n % 2 == 0 ? "even" : "odd"] = n;
    FileStore store(options);
    REQUIRE(store.open() == ErrorCode::ok);
    Result<std::vector<ShardCheckpoint>> listed = store.list_checkpoints("stream");
    REQUIRE(listed.ok());  // every checkpoint file parses: none is torn
    for (const auto& entry : acknowledged) {
      const std::string& shard = entry.first;
      const std::uint64_t n = entry.second;
      CAPTURE(shard);
      Result<std::optional<Checkpoint>> loaded = store.load_checkpoint("stream", shard);
      REQUIRE(loaded.ok());
      REQUIRE(loaded.value_unsafe().has_value());
      const Checkpoint& at = *loaded.value_unsafe();
      const std::uint64_t m = std::stoull(at.sequence_number.substr(4));
      CAPTURE(n);
      CAPTURE(m);
      // One a child saved, whole; at or past the acknowledged one; at most the
      // one this round's child saved last without logging it yet.
      CHECK(at == Checkpoint{test::checkpoints::sequence(m), m % 3, false});
      CHECK(m % 2 == n % 2);
      CHECK(m >= n);
      CHECK(m <= std::max(from, last_logged + 1));
      next = std::max(next, m + 1);
    }
    next = std::max(next, last_logged + 1);
  }
  CHECK(kills == 30);
  CHECK(next > 10);  // the children got somewhere
  MESSAGE(kills << " kills, " << next << " checkpoints saved");
}
