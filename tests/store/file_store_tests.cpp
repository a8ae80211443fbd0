#include "filebuilder/store/file.hpp"

#include "store/conformance.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>
#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace filebuilder;
namespace fs = std::filesystem;

namespace {

Clock::time_point fake_now = Clock::time_point{} + std::chrono::hours(1000);
Clock::time_point now_for_test() {
  return fake_now;
}

FileStoreOptions fake_clock_options() {
  FileStoreOptions options;
  options.now = &now_for_test;
  return options;
}

FileStoreOptions with_directory(FileStoreOptions options, const fs::path& directory) {
  options.directory = directory;
  return options;
}

/// A FileStore opened in a directory of its own, removed with it.
struct TempStore {
  explicit TempStore(FileStoreOptions options = {})
      : store(with_directory(std::move(options), dir / "store")) {
    REQUIRE(store.open() == ErrorCode::ok);
  }
  FileStore& operator*() { return store; }
  FileStore* operator->() { return &store; }
  [[nodiscard]] fs::path root() const { return dir / "store"; }

  test::TempDir dir{"filebuilder-filestore"};
  FileStore store;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

PartInfo part(std::string_view endpoint, std::uint64_t index, std::uint64_t count,
              std::uint64_t max_file_bytes = UINT64_MAX) {
  return PartInfo{endpoint, index, count, max_file_bytes};
}

std::string read_body(FileStore& store, std::string_view endpoint, std::size_t step = 5) {
  Result<std::unique_ptr<BodyReader>> body = store.open_body(endpoint);
  REQUIRE(body.ok());
  return test::conformance::read_all(*body.value_unsafe(), step);
}

std::size_t open_descriptors() {
  std::size_t count = 0;
#ifdef __linux__
  const char* const directory = "/proc/self/fd";
#else
  const char* const directory = "/dev/fd";
#endif
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(directory)) ++count;
  return count;
}

std::string ns_text(Clock::time_point time) {
  return std::to_string(detail::file_store::to_ns(time));
}

int exit_code(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("file store: layout: a directory per SHA-256 of the endpoint, meta, parts, claim, done") {
  TempStore store(fake_clock_options());
  const std::string key = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  CHECK(FileStore::key("abc") == key);  // the FIPS 180-2 test vector
  CHECK(read_file(store.root() / "FORMAT") == "filebuilder file store 1\n");
  struct stat st;
  REQUIRE(::stat(store.root().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  CHECK(store->put_part(part("abc", 1, 2), "BB").status == PutStatus::stored);
  const fs::path dir = store.root() / "files" / key;
  CHECK(read_file(dir / "meta") == "filebuilder-meta 1\npartition_count=2\nendpoint=abc");
  CHECK(read_file(dir / "00000000000000000001") == "BB");
  CHECK_FALSE(fs::exists(dir / "00000000000000000000"));
  REQUIRE(::stat((dir / "00000000000000000001").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const std::string state = read_file(dir / "state");
  CHECK(state.size() == detail::file_store::state_size);
  CHECK(state.starts_with("filebuilder-state 1 "));
  REQUIRE(::stat((dir / "state").c_str(), &st) == 0);
  CHECK(detail::file_store::mtime_of(st) == fake_now);  // the last put, by the store's clock

  CHECK(store->put_part(part("abc", 0, 2), "A").complete);
  CHECK(store->claim("abc") == ClaimStatus::claimed);
  CHECK(read_file(dir / "claim") ==
        ns_text(fake_now + std::chrono::seconds(300)) + " " + std::to_string(::getpid()) + "\n");
  CHECK(read_body(*store, "abc") == "ABB");
  CHECK(store->finish("abc") == ErrorCode::ok);
  CHECK_FALSE(fs::exists(dir));
  CHECK(read_file(store.root() / "done" / key) == ns_text(fake_now) + "\n");
  CHECK(fs::is_empty(store.root() / "tmp"));
  CHECK(fs::is_empty(store.root() / "pending"));
  CHECK(store->open_files() == 0);
  CHECK(store->done_marks() == 1);
}

TEST_CASE("file store: open creates the directory and refuses one it cannot use") {
  test::TempDir dir("filebuilder-filestore");
  FileStoreOptions options;
  options.directory = dir / "a" / "b" / "store";
  FileStore nested(options);
  CHECK(nested.open() == ErrorCode::ok);
  CHECK(fs::is_directory(dir / "a" / "b" / "store" / "files"));

  write_file(dir / "plain", "not a directory");
  options.directory = dir / "plain" / "store";
  FileStore broken(options);
  CHECK(broken.open() == ErrorCode::store_unavailable);
  // Every call says so, none throws.
  CHECK(broken.put_part(part("e", 0, 1), "x").error == ErrorCode::store_unavailable);
  CHECK(broken.claim("e") == ClaimStatus::unavailable);
  CHECK(broken.open_body("e").error() == ErrorCode::store_unavailable);
  CHECK(broken.finish("e") == ErrorCode::store_unavailable);
  CHECK(broken.release("e", Clock::now()) == ErrorCode::store_unavailable);
  CHECK(broken.claim_pending(10, Clock::now()).empty());
  CHECK(broken.expire(Clock::now()) == 0);

  FileStore unopened(options);
  CHECK(unopened.claim("e") == ClaimStatus::unavailable);

  fs::create_directories(dir / "foreign");
  write_file(dir / "foreign" / "FORMAT", "something else 9\n");
  options.directory = dir / "foreign";
  FileStore foreign(options);
  CHECK(foreign.open() == ErrorCode::store_unavailable);
}

TEST_CASE("file store: a torn temp file is ignored, and expire cleans it up") {
  TempStore store(fake_clock_options());
  const fs::path tmp = store.root() / "tmp";
  // A writer that died mid-write an hour and more ago, and one writing now.
  write_file(tmp / ".tmp-99999-deadbeef-0", "tor");
  write_file(tmp / ".tmp-99999-deadbeef-1", "being written");
  const timespec old_times[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 7200, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (tmp / ".tmp-99999-deadbeef-0").c_str(), old_times, 0) == 0);

  CHECK(store->put_part(part("e", 0, 2), "first").status == PutStatus::stored);
  // Debris inside a file's directory (and a record that no longer parses, so
  // that the parts are counted from the directory): neither is taken for a part.
  const fs::path dir = store.root() / "files" / FileStore::key("e");
  write_file(dir / ".tmp-99999-deadbeef-2", "torn part");
  write_file(dir / "state", "garbage");
  const PutOutcome last = store->put_part(part("e", 1, 2), "second");
  CHECK(last.status == PutStatus::stored);
  CHECK(last.complete);
  REQUIRE(store->claim("e") == ClaimStatus::claimed);
  CHECK(read_body(*store, "e") == "firstsecond");

  CHECK(store->expire(fake_now) == 0);
  CHECK_FALSE(fs::exists(tmp / ".tmp-99999-deadbeef-0"));
  CHECK(fs::exists(tmp / ".tmp-99999-deadbeef-1"));  // young: maybe a live writer's
}

TEST_CASE("file store: a writer that died between announcing and linking a part is undone") {
  TempStore store(fake_clock_options());
  REQUIRE(store->put_part(part("e", 0, 3), "aa").status == PutStatus::stored);
  const fs::path state_path = store.root() / "files" / FileStore::key("e") / "state";
  const std::string boot = read_file(state_path).substr(20, 36);
  // Counts raised for part 1 (5 bytes), which never made it to its name.
  detail::file_store::State crashed{3, 2, 7, true, 1, 5};
  write_file(state_path, detail::file_store::format_state(crashed, boot));
  CHECK(store->claim("e") == ClaimStatus::incomplete);
  PutOutcome put = store->put_part(part("e", 1, 3), "bbb");
  CHECK(put.status == PutStatus::stored);
  CHECK_FALSE(put.complete);
  // The byte sum was taken back too: the bound sees 2 + 3 bytes stored.
  CHECK(store->put_part(part("e", 2, 3, 6), "cc").error == ErrorCode::file_too_large);
  CHECK(store->put_part(part("e", 2, 3, 7), "cc").complete);

  // A record from before a reboot is not trusted: the directory is recounted.
  detail::file_store::State stale{3, 0, 0, false, 0, 0};
  write_file(state_path,
             detail::file_store::format_state(stale, "00000000-0000-0000-0000-000000000000"));
  CHECK(store->claim("e") == ClaimStatus::claimed);
  CHECK(read_body(*store, "e") == "aabbbcc");
}

TEST_CASE("file store: a part written with other bytes by another process is a conflict") {
  TempStore store;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 1;
    try {
      FileStore other(with_directory({}, store.root()));
      if (other.open() == ErrorCode::ok &&
          other.put_part(part("e", 0, 2), "child").status == PutStatus::stored)
        code = 0;
    } catch (...) {
    }
    ::_exit(code);
  }
  REQUIRE(exit_code(pid) == 0);
  CHECK(store->put_part(part("e", 0, 2), "parent").error == ErrorCode::partition_conflict);
  CHECK(store->put_part(part("e", 0, 2), "chilD").error == ErrorCode::partition_conflict);
  CHECK(store->put_part(part("e", 0, 2), "child").status == PutStatus::duplicate);
  CHECK(store->put_part(part("e", 0, 3), "child").error == ErrorCode::partition_count_conflict);
  CHECK(store->put_part(part("e", 1, 2), "!").complete);
  REQUIRE(store->claim("e") == ClaimStatus::claimed);
  CHECK(read_body(*store, "e") == "child!");
}

TEST_CASE("file store: leases expire with the injected clock") {
  FileStoreOptions options = fake_clock_options();
  options.expire_after = std::chrono::seconds(100);
  TempStore store(options);
  REQUIRE(store->put_part(part("e", 0, 1), "x").complete);
  CHECK(store->claim("e") == ClaimStatus::claimed);
  CHECK(store->claim("e") == ClaimStatus::busy);
  fake_now += std::chrono::seconds(301);  // the default lease is 300 s: a crashed winner
  CHECK(store->claim("e") == ClaimStatus::claimed);
  // Untouched for longer than expire_after, but leased: kept until the lease ends.
  CHECK(store->expire(fake_now + std::chrono::seconds(200)) == 0);
  CHECK(store->expire(fake_now + std::chrono::seconds(400)) == 1);
  CHECK(store->claim("e") == ClaimStatus::incomplete);

  // claim_pending leases too: a retrier that died gives the file back later.
  REQUIRE(store->put_part(part("f", 0, 1), "y").complete);
  REQUIRE(store->claim("f") == ClaimStatus::claimed);
  REQUIRE(store->release("f", fake_now) == ErrorCode::ok);
  CHECK_FALSE(fs::exists(store.root() / "files" / FileStore::key("f") / "claim"));
  std::vector<PendingFile> due = store->claim_pending(10, fake_now);
  REQUIRE(due.size() == 1);
  CHECK(due[0].endpoint == "f");
  CHECK(due[0].failures == 1);
  CHECK(store->claim_pending(10, fake_now).empty());
  due = store->claim_pending(10, fake_now + std::chrono::seconds(301));
  REQUIRE(due.size() == 1);
  CHECK(due[0].failures == 1);
}

TEST_CASE("file store: claim_pending takes due files once, oldest first, within max") {
  TempStore store(fake_clock_options());
  for (const char* key : {"p1", "p2", "p3"}) {
    (void)store->put_part(part(key, 0, 1), "x");
    REQUIRE(store->claim(key) == ClaimStatus::claimed);
  }
  REQUIRE(store->release("p2", fake_now + std::chrono::seconds(5)) == ErrorCode::ok);
  REQUIRE(store->release("p1", fake_now + std::chrono::seconds(10)) == ErrorCode::ok);
  REQUIRE(store->release("p3", fake_now + std::chrono::seconds(60)) == ErrorCode::ok);
  CHECK(store->pending("p1"));
  CHECK(store->claim_pending(10, fake_now).empty());  // none due yet
  const std::vector<PendingFile> due = store->claim_pending(1, fake_now + std::chrono::seconds(30));
  REQUIRE(due.size() == 1);
  CHECK(due[0].endpoint == "p2");
  CHECK(due[0].failures == 1);
  const std::vector<PendingFile> next =
      store->claim_pending(10, fake_now + std::chrono::seconds(30));
  REQUIRE(next.size() == 1);
  CHECK(next[0].endpoint == "p1");
  CHECK(store->claim("p1") == ClaimStatus::busy);  // claimed by claim_pending
  CHECK(store->claim_pending(10, fake_now + std::chrono::seconds(30)).empty());
  // A second failure counts (one index entry per file), and a finished file is
  // never handed out again.
  REQUIRE(store->release("p1", fake_now + std::chrono::seconds(40)) == ErrorCode::ok);
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(store.root() / "pending"))
    ++entries;
  CHECK(entries == 3);
  REQUIRE(store->finish("p3") == ErrorCode::ok);
  // p2's retrier never came back (neither finish nor release): once its lease
  // has run out, p2 is handed out again. (The memory store forgets it.)
  const std::vector<PendingFile> later = store->claim_pending(10, fake_now + std::chrono::hours(1));
  REQUIRE(later.size() == 2);
  CHECK(later[0].endpoint == "p2");
  CHECK(later[0].failures == 1);
  CHECK(later[1].endpoint == "p1");
  CHECK(later[1].failures == 2);
}

TEST_CASE("file store: pending files and done-marks survive a restart") {
  TempStore store(fake_clock_options());
  (void)store->put_part(part("p", 0, 1), "x");
  (void)store->put_part(part("d", 0, 1), "y");
  REQUIRE(store->claim("p") == ClaimStatus::claimed);
  REQUIRE(store->claim("d") == ClaimStatus::claimed);
  REQUIRE(store->release("p", fake_now + std::chrono::seconds(10)) == ErrorCode::ok);
  REQUIRE(store->finish("d") == ErrorCode::ok);

  FileStore restarted(with_directory(fake_clock_options(), store.root()));
  REQUIRE(restarted.open() == ErrorCode::ok);
  CHECK(restarted.pending("p"));
  CHECK(restarted.claim("d") == ClaimStatus::finished);
  CHECK(restarted.put_part(part("d", 0, 1), "other").status == PutStatus::finished);
  const std::vector<PendingFile> due =
      restarted.claim_pending(10, fake_now + std::chrono::seconds(10));
  REQUIRE(due.size() == 1);
  CHECK(due[0].endpoint == "p");
  CHECK(read_body(restarted, "p") == "x");
}

TEST_CASE("file store: two FileStore objects on one directory share parts and one claim wins") {
  test::TempDir dir("filebuilder-filestore");
  FileStoreOptions options;
  options.directory = dir / "store";
  FileStore first(options), second(options);
  REQUIRE(first.open() == ErrorCode::ok);
  REQUIRE(second.open() == ErrorCode::ok);
  const std::string e = "https://bucket.example.com/shared";
  CHECK(first.put_part(part(e, 0, 200), "0").status == PutStatus::stored);
  CHECK(second.put_part(part(e, 0, 200), "0").status == PutStatus::duplicate);
  CHECK(second.put_part(part(e, 0, 200), "x").error == ErrorCode::partition_conflict);

  std::atomic<int> claims{0}, errors{0}, stored{0};
  auto writer = [&](FileStore& store, int start) {
    for (int i = 0; i < 200; ++i) {
      const int index = (i * 7 + start) % 200;
      const PutOutcome put =
          store.put_part(part(e, static_cast<std::uint64_t>(index), 200), std::to_string(index));
      if (put.error != ErrorCode::ok) ++errors;
      if (put.status == PutStatus::stored) ++stored;
      if (put.complete && store.claim(e) == ClaimStatus::claimed) ++claims;
    }
  };
  std::thread t1(writer, std::ref(first), 0), t2(writer, std::ref(second), 50),
      t3(writer, std::ref(first), 100), t4(writer, std::ref(second), 150);
  t1.join();
  t2.join();
  t3.join();
  t4.join();
  CHECK(errors == 0);
  CHECK(stored == 199);  // each part stored once (part 0 before the threads)
  CHECK(claims == 1);
  std::string expected;
  for (int i = 0; i < 200; ++i) expected += std::to_string(i);
  CHECK(read_body(first, e, 64) == expected);
  CHECK(read_body(second, e, 11) == expected);
}

TEST_CASE("file store: a part refused as too large leaves no file behind") {
  TempStore store;
  CHECK(store->put_part(part("e", 0, 2, 2), "123").error == ErrorCode::file_too_large);
  CHECK(store->open_files() == 0);
  CHECK(fs::is_empty(store.root() / "tmp"));
  CHECK(store->put_part(part("e", 0, 2), "1").status == PutStatus::stored);
  CHECK(store->put_part(part("e", 2, 2), "1").error == ErrorCode::partition_out_of_range);
}

TEST_CASE("file store: expire drops abandoned files, old done-marks and orphan pending entries") {
  TempStore store(fake_clock_options());
  (void)store->put_part(part("old", 0, 2), "x");
  (void)store->put_part(part("done", 0, 1), "y");
  REQUIRE(store->claim("done") == ClaimStatus::claimed);
  REQUIRE(store->finish("done") == ErrorCode::ok);
  fake_now += std::chrono::hours(20);
  (void)store->put_part(part("fresh", 0, 2), "z");
  const std::string orphan = "00000000000000000001-" + FileStore::key("gone");
  write_file(store.root() / "pending" / orphan, "");
  CHECK(store->expire(fake_now) == 0);  // nothing old enough yet
  CHECK(store->done_marks() == 1);
  CHECK_FALSE(fs::exists(store.root() / "pending" / orphan));
  CHECK(store->expire(fake_now + std::chrono::hours(5)) == 1);
  CHECK(store->open_files() == 1);
  CHECK(store->done_marks() == 0);
  CHECK(store->put_part(part("fresh", 1, 2), "w").complete);
  CHECK(store->put_part(part("old", 1, 2), "x").complete == false);  // starts afresh
}

TEST_CASE("file store: bodies stream from disk, one part open at a time") {
  TempStore store;
  std::string expected;
  constexpr int parts = 60;
  for (int i = parts - 1; i >= 0; --i) {
    const std::string bytes(static_cast<std::size_t>(i % 5 == 0 ? 0 : i),
                            static_cast<char>('a' + i % 26));
    (void)store->put_part(part("e", static_cast<std::uint64_t>(i), parts), bytes);
  }
  for (int i = 0; i < parts; ++i)
    expected +=
        std::string(static_cast<std::size_t>(i % 5 == 0 ? 0 : i), static_cast<char>('a' + i % 26));
  REQUIRE(store->claim("e") == ClaimStatus::claimed);
  const std::size_t before = open_descriptors();
  Result<std::unique_ptr<BodyReader>> body = store->open_body("e");
  REQUIRE(body.ok());
  BodyReader& reader = *body.value_unsafe();
  REQUIRE(reader.size() == expected.size());
  std::string out(expected.size(), '\0');
  std::size_t most = 0;
  for (std::uint64_t offset = 0; offset < out.size();) {
    Result<std::size_t> read = reader.read_at(
        offset,
        std::span<char>(out.data() + offset, std::min<std::size_t>(7, out.size() - offset)));
    REQUIRE(read.ok());
    REQUIRE(read.value_unsafe() > 0);
    offset += read.value_unsafe();
    most = std::max(most, open_descriptors());
  }
  CHECK(out == expected);
  CHECK(most <= before + 2);  // the directory and the part being read
  // Positional: any offset, in any order.
  char byte = 0;
  for (std::uint64_t offset : {std::uint64_t{1000}, std::uint64_t{3}, std::uint64_t{1439}}) {
    REQUIRE(reader.read_at(offset, std::span<char>(&byte, 1)).value_unsafe() == 1);
    CHECK(byte == expected[offset]);
  }
  body.value_unsafe().reset();
  CHECK(open_descriptors() == before);
}

#ifdef __linux__
TEST_CASE("file store: a full disk is store_full, and what was stored stays whole") {
  // A 64 KiB tmpfs in a mount namespace of a child process (root, or an
  // unprivileged user namespace); skipped where neither is allowed.
  test::TempDir dir("filebuilder-filestore");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int flags = ::geteuid() == 0 ? CLONE_NEWNS : CLONE_NEWUSER | CLONE_NEWNS;
    if (::unshare(flags) != 0 || ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=64k") != 0)
      ::_exit(77);
    int code = 10;
    try {
      FileStore store(with_directory({}, dir / "store"));
      if (store.open() != ErrorCode::ok) ::_exit(11);
      const std::string bytes(8192, 'x');
      ErrorCode error = ErrorCode::ok;
      std::uint64_t stored = 0;
      for (; stored < 32; ++stored) {
        error = store.put_part(part("e", stored, 33), bytes).error;
        if (error != ErrorCode::ok) break;
      }
      if (error != ErrorCode::store_full) ::_exit(12);
      // Nothing half-written counts: the file is incomplete, and the parts
      // stored before the disk filled read back whole.
      if (stored == 0 || store.claim("e") != ClaimStatus::incomplete) ::_exit(13);
      const PutOutcome again = store.put_part(part("e", 0, 33), bytes);
      if (again.error != ErrorCode::ok || again.status != PutStatus::duplicate) ::_exit(14);
      code = 0;
    } catch (...) {
      code = 15;
    }
    ::_exit(code);
  }
  const int code = exit_code(pid);
  if (code == 77) {
    MESSAGE("skipped: cannot mount a small tmpfs here");
  } else {
    CHECK(code == 0);
  }
}
#endif

// clang-format off
FILEBUILDER_STORE_CONFORMANCE("file", [] { return TempStore(); })
// clang-format on

// ---------------------------------------------------------------------------
// Checkpoints

namespace {

struct FileCheckpoints {
  static TempStore make() { return TempStore(); }
};
}  // namespace

FILEBUILDER_CHECKPOINT_CONFORMANCE("file", FileCheckpoints);

using namespace test::checkpoints;  // at, sequence, load, list

TEST_CASE("file store: checkpoint layout: checkpoints/<sha256 of stream>/<sha256 of shard>") {
  TempStore store;
  const std::string stream = "../stream/..", shard = "shardId-000000000007\n";
  REQUIRE(store->save_checkpoint(stream, shard, at(sequence(5), 2)) == ErrorCode::ok);
  const fs::path dir = store.root() / "checkpoints" / FileStore::key(stream);
  const fs::path file = dir / FileStore::key(shard);
  CHECK(read_file(file) ==
        "filebuilder-checkpoint 1\n0 " + sequence(5) + " 2\n12 21\n" + stream + shard);
  struct stat st;
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{FileStore::key(shard), FileStore::key(shard) + ".lock"});
  CHECK(fs::is_empty(store.root() / "tmp"));  // the temp file was renamed into place

  REQUIRE(store->save_checkpoint(stream, shard, Checkpoint{"", 0, true}) == ErrorCode::ok);
  CHECK(read_file(file) == "filebuilder-checkpoint 1\n1  0\n12 21\n" + stream + shard);
  // Checkpoints never expire, however old.
  (void)store->expire(Clock::now() + std::chrono::hours(24 * 365));
  CHECK(load(*store, stream, shard) == Checkpoint{"", 0, true});
}

TEST_CASE("file store: checkpoints survive reopening the store") {
  TempStore store;
  REQUIRE(store->save_checkpoint("stream", "shard-1", at(sequence(10), 3)) == ErrorCode::ok);
  REQUIRE(store->save_checkpoint("stream", "shard-2", Checkpoint{sequence(4), 0, true}) ==
          ErrorCode::ok);
  REQUIRE(store->save_checkpoint("other", "shard-1", at("1")) == ErrorCode::ok);

  FileStore reopened(with_directory({}, store.root()));
  REQUIRE(reopened.open() == ErrorCode::ok);
  CHECK(load(reopened, "stream", "shard-1") == at(sequence(10), 3));
  CHECK(list(reopened, "stream") ==
        std::vector<ShardCheckpoint>{{"shard-1", at(sequence(10), 3)},
                                     {"shard-2", Checkpoint{sequence(4), 0, true}}});
  CHECK(load(reopened, "other", "shard-1") == at("1"));
  // Never backwards holds across objects too.
  CHECK(reopened.save_checkpoint("stream", "shard-1", at(sequence(9))) == ErrorCode::ok);
  CHECK(load(*store, "stream", "shard-1") == at(sequence(10), 3));

  FileStore unopened(with_directory({}, store.root()));
  CHECK(unopened.load_checkpoint("stream", "shard-1").error() == ErrorCode::store_unavailable);
  CHECK(unopened.save_checkpoint("stream", "shard-1", at("1")) == ErrorCode::store_unavailable);
  CHECK(unopened.list_checkpoints("stream").error() == ErrorCode::store_unavailable);
}

TEST_CASE("file store: a crash between the temp write and the rename leaves the old checkpoint") {
  TempStore store;
  REQUIRE(store->save_checkpoint("stream", "shard", at(sequence(1))) == ErrorCode::ok);
  // What a saver killed before its rename leaves: a whole temp file of a
  // further checkpoint under tmp/, and maybe its lock file (there already).
  write_file(store.root() / "tmp" / ".tmp-99999-deadbeef-0",
             detail::file_store::format_checkpoint_file("stream", "shard", at(sequence(2))));
  CHECK(load(*store, "stream", "shard") == at(sequence(1)));
  FileStore restarted(with_directory({}, store.root()));
  REQUIRE(restarted.open() == ErrorCode::ok);
  CHECK(load(restarted, "stream", "shard") == at(sequence(1)));
  CHECK(list(restarted, "stream") == std::vector<ShardCheckpoint>{{"shard", at(sequence(1))}});
  // The lock is free: the next save goes through.
  REQUIRE(restarted.save_checkpoint("stream", "shard", at(sequence(3))) == ErrorCode::ok);
  CHECK(load(*store, "stream", "shard") == at(sequence(3)));
}

TEST_CASE(
    "file store: a checkpoint file that does not parse is never guessed, and a save heals it") {
  TempStore store;
  REQUIRE(store->save_checkpoint("stream", "shard", at(sequence(8))) == ErrorCode::ok);
  REQUIRE(store->save_checkpoint("stream", "other", at(sequence(1))) == ErrorCode::ok);
  const fs::path dir = store.root() / "checkpoints" / FileStore::key("stream");
  const fs::path file = dir / FileStore::key("shard");
  const std::string good = read_file(file);
  for (const std::string& bad :
       {std::string("garbage"), good.substr(0, good.size() - 1), good + "x",
        std::string("filebuilder-checkpoint 1\n0 01 0\n6 5\nstreamshard"),
        std::string("filebuilder-checkpoint 2\n0 1 0\n6 5\nstreamshard"),
        read_file(dir / FileStore::key("other")), std::string(1 << 16, 'x')}) {
    CAPTURE(bad.substr(0, 64));
    write_file(file, bad);
    CHECK(store->load_checkpoint("stream", "shard").error() == ErrorCode::store_unavailable);
    CHECK(store->list_checkpoints("stream").error() == ErrorCode::store_unavailable);
  }
  // It holds no position to keep: any valid save replaces it.
  REQUIRE(store->save_checkpoint("stream", "shard", at(sequence(2))) == ErrorCode::ok);
  CHECK(load(*store, "stream", "shard") == at(sequence(2)));
  CHECK(list(*store, "stream").size() == 2);
}

TEST_CASE("file store: two processes racing checkpoint saves end at the greatest, never behind") {
  TempStore store;
  FileStoreOptions options;
  options.fsync = false;  // faster saves, more interleaving: the lock is what is tested
  constexpr int children = 2;
  constexpr std::uint64_t saves = 300;
  std::vector<pid_t> pids;
  std::fflush(nullptr);
  for (int c = 0; c < children; ++c) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        FileStore mine(with_directory(options, store.root()));
        if (mine.open() != ErrorCode::ok) ::_exit(10);
        // Both ascending, interleaved: each save must find the store at or past it.
        for (std::uint64_t i = 0; i < saves && code == 0; ++i) {
          const Checkpoint checkpoint = at(sequence(2 * i + static_cast<std::uint64_t>(c)));
          if (mine.save_checkpoint("stream", "shard", checkpoint) != ErrorCode::ok) code = 11;
          Result<std::optional<Checkpoint>> now = mine.load_checkpoint("stream", "shard");
          if (!now.ok() || !now.value_unsafe() || *now.value_unsafe() < checkpoint) code = 12;
        }
      } catch (...) {
        code = 13;
      }
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) CHECK(exit_code(pid) == 0);
  CHECK(load(*store, "stream", "shard") == at(sequence(2 * saves - 1)));
}
