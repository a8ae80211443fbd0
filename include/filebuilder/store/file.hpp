// filebuilder: FileStore, a durable StateStore in a local directory, shared by
// the threads and processes of one machine (POSIX; component filebuilder::crypto,
// for the SHA-256 keys).
//
//   filebuilder::FileStoreOptions options;
//   options.directory = "/var/lib/filebuilder";
//   filebuilder::FileStore store(options);
//   if (filebuilder::ErrorCode error = store.open(); error != filebuilder::ErrorCode::ok) ...
//
// Layout of DIR (directories 0700, files 0600):
//
//   FORMAT                 "filebuilder file store 1\n"
//   files/<key>/           one unfinished file; <key> = SHA-256 hex of the endpoint
//     meta                 "filebuilder-meta 1\npartition_count=N\nendpoint=URL" (immutable)
//     state                the lock (flock) and a fixed-size record: the count of parts
//                          present and their bytes; its mtime is the last put (for expire)
//     00000000000000000007 part 7: 20-digit zero-padded partition index
//     claim                "<lease end, ns since epoch> <pid>\n": the upload lease
//     pending              "<retry_at ns> <failures>\n": the last upload failed
//   done/<key>             done-mark: "<ns>\n", mtime = the time it was made
//   pending/<due ns, 20 digits>-<key>  index of pending files, sorted by due time
//   checkpoints/<S>/<H>    a shard's checkpoint (CheckpointStore): S = SHA-256 hex of
//                          the stream name, H of the shard name; the names are inside,
//                          for list_checkpoints: "filebuilder-checkpoint 1\n"
//                          "<shard_end> <sequence number> <sub-sequence>\n"
//                          "<stream size> <shard size>\n<stream><shard>"
//   checkpoints/<S>/<H>.lock  the lock (flock) a save holds to read, compare, replace
//   tmp/.tmp-<pid>-<random>-<n>     files and directories being written
//   tmp/.trash-<pid>-<random>-<n>   file directories being removed
//
// Every file is written under tmp/ (fsync'ed), then renamed or linked into
// place (and the directory fsync'ed), so a crash never leaves a torn file under
// a name that counts. A file's directory is built whole under tmp/ and renamed
// into files/ (the loser of a creation race finds it there); it leaves files/ by
// a rename to tmp/.trash-*, then is deleted.
//
// Locking: a flock on files/<key>/state around each read-modify step of one file
// (put, claim, release, finish, expire). After taking the lock the holder checks
// that the state file is still the one at that path (the directory may have been
// removed, or removed and created again, while it waited); otherwise it starts
// over. A new part is linked (link(2): never replaces) from its temp file under
// the lock, so two writers of one partition end with one winner; the loser sees a
// duplicate or a conflict by comparing bytes.
//
// Counting parts: the state record keeps the count and byte sum, updated under
// the lock, so a put costs O(1) whatever the partition count. Before linking a
// part, the writer records its intent (the partition and size) with the new
// counts in the same write; the next lock holder checks that an announced part
// exists, and takes it back out of the counts if the writer died before linking.
// The record also carries the boot id (Linux): after a reboot (power loss may
// have lost unsynced state writes) each file recounts its directory once.
//
// Checkpoints: a save takes the shard's lock file, reads the stored checkpoint,
// and replaces it (temp file, fsync, rename, fsync the directory) only when
// the new one is further on, so processes racing end at the greatest and a
// crash leaves the old or the new one whole. Loads and lists read without the
// lock (a rename is atomic). Checkpoints never expire.
//
// Expiry (expire, meant for once a minute): one stat per unfinished file and per
// done-mark, one listing of pending/ and tmp/.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/concepts.hpp"
#include "filebuilder/detail/checkpoint.hpp"
#include "filebuilder/detail/unique_fd.hpp"
#include "filebuilder/digest.hpp"

namespace filebuilder {

struct FileStoreOptions {
  std::filesystem::path directory;            // created (0700) by open() if missing
  std::chrono::seconds expire_after{86'400};  // unfinished files untouched this long
  std::chrono::seconds done_mark_ttl{86'400};
  std::chrono::seconds claim_lease{300};
  /// Temp files and directories (tmp/.tmp-*) whose mtime is older than this, by
  /// the real clock, are debris of a crashed writer: expire() removes them.
  std::chrono::seconds temp_ttl{3'600};
  /// fsync parts, meta, done-marks and pending records, and the directories that
  /// name them, before reporting success. Off only where durability does not
  /// matter (tests, benchmarks of the logic).
  bool fsync = true;
  Clock::time_point (*now)() = &Clock::now;  // injectable for tests
};

namespace detail::file_store {

/// An owned file descriptor.
using Fd = filebuilder::detail::UniqueFd;

/// A full disk (or quota) is store_full; every other I/O error store_unavailable.
inline ErrorCode from_errno(int error) noexcept {
#ifdef EDQUOT
  if (error == EDQUOT) return ErrorCode::store_full;
#endif
  return error == ENOSPC ? ErrorCode::store_full : ErrorCode::store_unavailable;
}

inline ErrorCode last_error() noexcept {
  return from_errno(errno);
}

inline std::int64_t to_ns(Clock::time_point time) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

inline Clock::time_point from_ns(std::int64_t ns) noexcept {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

inline timespec to_timespec(Clock::time_point time) noexcept {
  const std::int64_t ns = to_ns(time);
  std::int64_t seconds = ns / 1'000'000'000;
  std::int64_t rest = ns % 1'000'000'000;
  if (rest < 0) {
    rest += 1'000'000'000;
    --seconds;
  }
  timespec out{};
  out.tv_sec = static_cast<time_t>(seconds);
  out.tv_nsec = static_cast<long>(rest);
  return out;
}

inline Clock::time_point mtime_of(const struct stat& st) noexcept {
#ifdef __APPLE__
  const timespec& t = st.st_mtimespec;
#else
  const timespec& t = st.st_mtim;
#endif
  return from_ns(static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec);
}

/// Sets a file's mtime (the store's clock, which tests inject), not its atime.
inline ErrorCode set_mtime(int fd, Clock::time_point time) noexcept {
  timespec times[2] = {timespec{}, to_timespec(time)};
  times[0].tv_nsec = UTIME_OMIT;
  return ::futimens(fd, times) == 0 ? ErrorCode::ok : last_error();
}

/// Times in names sort as text: ns since the epoch, clamped at 0, 20 digits.
inline std::uint64_t name_time(Clock::time_point time) noexcept {
  const std::int64_t ns = to_ns(time);
  return ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
}

inline void append_u64(std::string& out, std::uint64_t value, int width = 0) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  const int size = static_cast<int>(end - digits);
  if (width > size) out.append(static_cast<std::size_t>(width - size), '0');
  out.append(digits, end);
}

template <typename T>
inline bool parse_number(std::string_view text, T& value) noexcept {
  if (text.empty()) return false;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size();
}

constexpr std::size_t key_size = 64;  // SHA-256, hex
constexpr std::size_t part_name_size = 20;

inline bool is_key(std::string_view name) noexcept {
  return name.size() == key_size && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

inline bool is_part_name(std::string_view name) noexcept {
  return name.size() == part_name_size &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// "00000000000000000007": a part's file name, without allocating.
struct PartName {
  explicit PartName(std::uint64_t index) noexcept {
    std::memset(text, '0', part_name_size);
    text[part_name_size] = '\0';
    for (std::size_t i = part_name_size; index != 0; index /= 10) {
      text[--i] = static_cast<char>('0' + index % 10);
    }
  }
  [[nodiscard]] const char* c_str() const noexcept { return text; }
  char text[part_name_size + 1];
};

/// "<due ns, 20 digits>-<key>": an entry of pending/.
inline std::string pending_entry(std::uint64_t due, std::string_view key) {
  std::string name;
  append_u64(name, due, 20);
  name += '-';
  name += key;
  return name;
}

inline bool parse_pending_entry(std::string_view name, std::uint64_t& due, std::string_view& key) {
  if (name.size() != 20 + 1 + key_size || name[20] != '-') return false;
  key = name.substr(21);
  return is_part_name(name.substr(0, 20)) && parse_number(name.substr(0, 20), due) && is_key(key);
}

inline ErrorCode write_all(int fd, const char* data, std::size_t size) noexcept {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return ErrorCode::ok;
}

inline ErrorCode pwrite_all(int fd, const char* data, std::size_t size, off_t offset) noexcept {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
  return ErrorCode::ok;
}

inline ssize_t pread_some(int fd, char* data, std::size_t size, off_t offset) noexcept {
  ssize_t n;
  do n = ::pread(fd, data, size, offset);
  while (n < 0 && errno == EINTR);
  return n;
}

/// Reads a small file whole. Returns 0 or the errno (ENOENT: absent).
inline int read_small(int dir, const char* name, std::string& out, std::size_t limit = 1 << 22) {
  Fd fd(::openat(dir, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return errno;
  out.clear();
  char buffer[4096];
  for (;;) {
    const ssize_t n = pread_some(fd.get(), buffer, sizeof buffer, static_cast<off_t>(out.size()));
    if (n < 0) return errno;
    if (n == 0) return 0;
    out.append(buffer, static_cast<std::size_t>(n));
    if (out.size() > limit) return EFBIG;
  }
}

inline int fsync_retry(int fd) noexcept {
  int result;
  do result = ::fsync(fd);
  while (result != 0 && errno == EINTR);
  return result;
}

inline int flock_retry(int fd, int operation) noexcept {
  int result;
  do result = ::flock(fd, operation);
  while (result != 0 && errno == EINTR);
  return result;
}

/// Calls f(name) for every entry of a directory but "." and "..". Entries
/// added or removed meanwhile may or may not be seen; the others are, once.
template <typename F>
inline ErrorCode for_each_entry(int dir, F&& f) {
  const int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return last_error();
  DIR* stream = ::fdopendir(fd);
  if (stream == nullptr) {
    const ErrorCode error = last_error();
    ::close(fd);
    return error;
  }
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(stream);
    if (entry == nullptr) break;
    const std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    f(name);
  }
  const ErrorCode error = errno == 0 ? ErrorCode::ok : last_error();
  ::closedir(stream);
  return error;
}

/// Removes a file, or a directory with its files (and their files: depth 3 at
/// most, more than the store ever makes). Errors are ignored: expire() retries.
inline void remove_tree(int parent, const char* name, int depth = 0) {
  if (::unlinkat(parent, name, 0) == 0 || errno == ENOENT) return;
  if (depth > 2) return;
  Fd dir(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return;
  std::vector<std::string> names;
  (void)for_each_entry(dir.get(), [&](std::string_view entry) { names.emplace_back(entry); });
  for (const std::string& entry : names) remove_tree(dir.get(), entry.c_str(), depth + 1);
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

/// The per-file record in files/<key>/state, fixed size, rewritten in place.
struct State {
  std::uint64_t partition_count = 0;
  std::uint64_t parts = 0;  // distinct parts present
  std::uint64_t bytes = 0;  // their sizes, summed
  bool intent = false;      // a part announced, maybe not yet linked:
  std::uint64_t intent_part = 0;
  std::uint64_t intent_size = 0;
};

constexpr std::string_view state_magic = "filebuilder-state 1 ";
constexpr std::size_t boot_id_size = 36;
// The magic, the boot id, five numbers of " " + 20 digits, a flag " 0" or " 1", "\n".
constexpr std::size_t state_size = state_magic.size() + boot_id_size + 5 * 21 + 2 + 1;

inline std::string format_state(const State& state, std::string_view boot_id) {
  std::string out;
  out.reserve(state_size);
  out += state_magic;
  out += boot_id;
  out.append(boot_id_size - std::min(boot_id.size(), boot_id_size), '-');
  for (std::uint64_t value : {state.partition_count, state.parts, state.bytes}) {
    out += ' ';
    append_u64(out, value, 20);
  }
  out += state.intent ? " 1" : " 0";
  for (std::uint64_t value : {state.intent_part, state.intent_size}) {
    out += ' ';
    append_u64(out, value, 20);
  }
  out += '\n';
  return out;
}

/// False when the record is not one (torn, foreign) or from another boot.
inline bool parse_state(std::string_view text, std::string_view boot_id, State& state) {
  if (text.size() != state_size || text.substr(0, state_magic.size()) != state_magic) return false;
  const std::string_view boot = text.substr(state_magic.size(), boot_id_size);
  if (boot.substr(0, boot_id.size()) != boot_id ||
      boot.find_first_not_of('-', boot_id.size()) != std::string_view::npos)
    return false;
  std::size_t at = state_magic.size() + boot_id_size;
  auto number = [&](std::uint64_t& value) {
    const bool ok = text[at] == ' ' && is_part_name(text.substr(at + 1, 20)) &&
                    parse_number(text.substr(at + 1, 20), value);
    at += 21;
    return ok;
  };
  if (!number(state.partition_count) || !number(state.parts) || !number(state.bytes)) return false;
  if (text[at] != ' ' || (text[at + 1] != '0' && text[at + 1] != '1')) return false;
  state.intent = text[at + 1] == '1';
  at += 2;
  return number(state.intent_part) && number(state.intent_size) && text[at] == '\n';
}

constexpr std::string_view meta_magic = "filebuilder-meta 1\npartition_count=";
constexpr std::string_view meta_endpoint = "\nendpoint=";

inline std::string format_meta(std::string_view endpoint, std::uint64_t partition_count) {
  std::string out(meta_magic);
  append_u64(out, partition_count);
  out += meta_endpoint;
  out += endpoint;
  return out;
}

inline bool parse_meta(std::string_view text, std::uint64_t& partition_count,
                       std::string_view& endpoint) {
  if (text.substr(0, meta_magic.size()) != meta_magic) return false;
  text.remove_prefix(meta_magic.size());
  const std::size_t end = text.find(meta_endpoint);
  if (end == std::string_view::npos || !parse_number(text.substr(0, end), partition_count))
    return false;
  endpoint = text.substr(end + meta_endpoint.size());
  return true;
}

/// "<a> <b>\n" with two decimal numbers: the claim and pending records.
template <typename A, typename B>
inline bool parse_pair(std::string_view text, A& a, B& b) {
  const std::size_t space = text.find(' ');
  if (space == std::string_view::npos || text.empty() || text.back() != '\n') return false;
  return parse_number(text.substr(0, space), a) &&
         parse_number(text.substr(space + 1, text.size() - space - 2), b);
}

constexpr std::string_view checkpoint_magic = "filebuilder-checkpoint 1\n";
constexpr std::string_view lock_suffix = ".lock";

inline std::string format_checkpoint_file(std::string_view stream, std::string_view shard,
                                          const Checkpoint& checkpoint) {
  std::string out(checkpoint_magic);
  out += format_checkpoint(checkpoint);
  out += '\n';
  append_u64(out, stream.size());
  out += ' ';
  append_u64(out, shard.size());
  out += '\n';
  out += stream;
  out += shard;
  return out;
}

// The magic, the checkpoint line, the sizes line, the names: well within this.
constexpr std::size_t checkpoint_file_max = 1024 + 2 * max_checkpoint_name_bytes;

/// A checkpoint file read back; the names are views into `text`.
struct CheckpointFile {
  std::string text;
  bool valid = false;  // it parsed; else the other fields mean nothing
  std::string_view stream, shard;
  Checkpoint checkpoint;
};

inline bool parse_checkpoint_file(CheckpointFile& file) {
  std::string_view text = file.text;
  if (!text.starts_with(checkpoint_magic)) return false;
  text.remove_prefix(checkpoint_magic.size());
  const std::size_t line = text.find('\n');
  if (line == std::string_view::npos || !parse_checkpoint(text.substr(0, line), file.checkpoint))
    return false;
  text.remove_prefix(line + 1);
  const std::size_t sizes = text.find('\n');
  std::size_t stream_size = 0, shard_size = 0;
  if (sizes == std::string_view::npos ||
      !parse_pair(text.substr(0, sizes + 1), stream_size, shard_size))
    return false;
  text.remove_prefix(sizes + 1);
  if (stream_size > text.size() || shard_size != text.size() - stream_size) return false;
  file.stream = text.substr(0, stream_size);
  file.shard = text.substr(stream_size);
  return true;
}

}  // namespace detail::file_store

class FileStore {
 public:
  explicit FileStore(FileStoreOptions options) : options_(std::move(options)) {}
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  /// Creates the directory (0700, parents too) and its layout, or checks an
  /// existing one. Every other call reports store_unavailable until this
  /// succeeded.
  [[nodiscard]] ErrorCode open();

  [[nodiscard]] PutOutcome put_part(const PartInfo& part, std::string_view bytes);
  [[nodiscard]] ClaimStatus claim(std::string_view endpoint);
  [[nodiscard]] Result<std::unique_ptr<BodyReader>> open_body(std::string_view endpoint);
  [[nodiscard]] ErrorCode finish(std::string_view endpoint);
  [[nodiscard]] ErrorCode release(std::string_view endpoint, Clock::time_point retry_at);
  [[nodiscard]] std::vector<PendingFile> claim_pending(std::size_t max, Clock::time_point now);
  std::size_t expire(Clock::time_point now);

  // CheckpointStore (concepts.hpp): checkpoints/<sha256 of stream>/<sha256 of shard>.
  [[nodiscard]] Result<std::optional<Checkpoint>> load_checkpoint(std::string_view stream,
                                                                  std::string_view shard) const;
  [[nodiscard]] ErrorCode save_checkpoint(std::string_view stream, std::string_view shard,
                                          const Checkpoint& checkpoint);
  [[nodiscard]] Result<std::vector<ShardCheckpoint>> list_checkpoints(
      std::string_view stream) const;

  /// The name of a file's directory and done-mark: SHA-256 hex of the endpoint.
  [[nodiscard]] static std::string key(std::string_view endpoint) { return sha256_hex(endpoint); }

  // Introspection, for tests and metrics: each lists a directory (O(n)).
  [[nodiscard]] std::size_t open_files() const;
  [[nodiscard]] std::size_t done_marks() const;
  [[nodiscard]] bool pending(std::string_view endpoint) const;
  [[nodiscard]] const FileStoreOptions& options() const noexcept { return options_; }

 private:
  using Fd = detail::file_store::Fd;
  using State = detail::file_store::State;
  class Body;
  /// A file's directory, with the lock on its state file held.
  struct Locked {
    Fd dir;
    Fd state;
    [[nodiscard]] bool found() const noexcept { return static_cast<bool>(dir); }
  };
  /// A temp file under tmp/, unlinked on destruction unless it was moved.
  class Temp {
   public:
    explicit Temp(int dir) noexcept : dir_(dir) {}
    Temp(const Temp&) = delete;
    Temp& operator=(const Temp&) = delete;
    ~Temp() {
      if (!name_.empty()) ::unlinkat(dir_, name_.c_str(), 0);
    }
    void set(std::string name) { name_ = std::move(name); }
    void forget() noexcept { name_.clear(); }
    [[nodiscard]] bool empty() const noexcept { return name_.empty(); }
    [[nodiscard]] const char* c_str() const noexcept { return name_.c_str(); }

   private:
    int dir_;
    std::string name_;
  };

  [[nodiscard]] std::string temp_name(std::string_view kind = ".tmp-") const;
  [[nodiscard]] ErrorCode write_temp(std::string_view bytes, Clock::time_point* mtime,
                                     Temp& temp) const;
  [[nodiscard]] ErrorCode replace_file(int dir, const char* name, std::string_view bytes,
                                       Clock::time_point* mtime) const;
  [[nodiscard]] Result<bool> done(std::string_view key) const;
  [[nodiscard]] ErrorCode create_file_dir(const std::string& key, const PartInfo& part,
                                          Clock::time_point now) const;
  [[nodiscard]] Result<Locked> lock_file(const std::string& key, const PartInfo* create,
                                         Clock::time_point now) const;
  [[nodiscard]] ErrorCode write_state(const Locked& file, const State& state,
                                      Clock::time_point touched) const;
  [[nodiscard]] ErrorCode read_state(const Locked& file, State& state) const;
  [[nodiscard]] ErrorCode recount(const Locked& file, State& state) const;
  [[nodiscard]] Result<bool> leased(const Locked& file, Clock::time_point now) const;
  [[nodiscard]] ErrorCode write_claim(const Locked& file, Clock::time_point now) const;
  [[nodiscard]] ErrorCode remove_file_dir(const std::string& key, Locked& file) const;
  /// checkpoints/<sha256 of stream>/, made (durably) if missing when `create`;
  /// an empty Fd when it is missing.
  [[nodiscard]] Result<Fd> checkpoint_dir(std::string_view stream, bool create) const;
  /// Reads a checkpoint file: true (file.valid when it parsed), false when it
  /// is absent, or the error that kept it from being read.
  [[nodiscard]] Result<bool> read_checkpoint_file(int dir, const char* name,
                                                  detail::file_store::CheckpointFile& file) const;
  [[nodiscard]] ErrorCode fsync_dir(int dir) const {
    return !options_.fsync || detail::file_store::fsync_retry(dir) == 0
               ? ErrorCode::ok
               : detail::file_store::last_error();
  }

  FileStoreOptions options_;
  Fd root_, files_, done_, pending_, tmp_, checkpoints_;
  std::string boot_id_;
  std::string instance_;  // random, in temp names
  mutable std::atomic<std::uint64_t> sequence_{0};
};

// ---------------------------------------------------------------------------

/// Streams the parts from disk with pread: one directory descriptor and the
/// descriptor of the part being read, whatever the size of the file.
class FileStore::Body final : public BodyReader {
 public:
  Body(Fd dir, std::vector<std::uint64_t> offsets)
      : dir_(std::move(dir)), offsets_(std::move(offsets)) {}
  [[nodiscard]] std::uint64_t size() const noexcept override { return offsets_.back(); }
  [[nodiscard]] Result<std::size_t> read_at(std::uint64_t offset, std::span<char> dst) override {
    if (offset >= size() || dst.empty()) return std::size_t{0};
    const std::size_t parts = offsets_.size() - 1;
    if (!(offsets_[cursor_] <= offset && offset < offsets_[cursor_ + 1])) {
      cursor_ = static_cast<std::size_t>(
          std::upper_bound(offsets_.begin(), offsets_.end(), offset) - offsets_.begin() - 1);
    }
    std::size_t copied = 0;
    while (copied < dst.size() && cursor_ < parts) {
      const std::uint64_t part_size = offsets_[cursor_ + 1] - offsets_[cursor_];
      const std::uint64_t within = offset + copied - offsets_[cursor_];
      if (within >= part_size) {  // this part is done (or empty): the next one
        ++cursor_;
        continue;
      }
      if (open_index_ != cursor_) {
        part_.reset();
        part_ = Fd(::openat(dir_.get(), detail::file_store::PartName(cursor_).c_str(),
                            O_RDONLY | O_CLOEXEC));
        if (!part_) return ErrorCode::store_unavailable;
        open_index_ = cursor_;
      }
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(dst.size() - copied, part_size - within));
      const ssize_t n = detail::file_store::pread_some(part_.get(), dst.data() + copied, want,
                                                       static_cast<off_t>(within));
      if (n <= 0) return ErrorCode::store_unavailable;  // an error, or the part shrank
      copied += static_cast<std::size_t>(n);
    }
    if (cursor_ >= parts) cursor_ = parts - 1;
    return copied;
  }

 private:
  Fd dir_;
  std::vector<std::uint64_t> offsets_;  // offsets_[i]: where part i starts; back(): the size
  std::size_t cursor_ = 0;
  Fd part_;
  std::size_t open_index_ = static_cast<std::size_t>(-1);
};

// ---------------------------------------------------------------------------

inline ErrorCode FileStore::open() {
  namespace fs = detail::file_store;
  root_.reset();
  files_.reset();
  done_.reset();
  pending_.reset();
  tmp_.reset();
  checkpoints_.reset();
  const std::string directory = options_.directory.string();
  if (directory.empty()) return ErrorCode::store_unavailable;
  // mkdir -p, 0700 for what it creates.
  for (std::size_t slash = directory.find('/', 1);; slash = directory.find('/', slash + 1)) {
    const std::string prefix = directory.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return fs::last_error();
    if (slash == std::string::npos) break;
  }
  Fd root(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fs::last_error();
  Fd* subdirs[] = {&files_, &done_, &pending_, &tmp_, &checkpoints_};
  const char* names[] = {"files", "done", "pending", "tmp", "checkpoints"};
  for (std::size_t i = 0; i < std::size(subdirs); ++i) {
    if (::mkdirat(root.get(), names[i], 0700) != 0 && errno != EEXIST) return fs::last_error();
    *subdirs[i] = Fd(::openat(root.get(), names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!*subdirs[i]) return fs::last_error();
  }
  boot_id_.clear();
  if (std::string boot; fs::read_small(AT_FDCWD, "/proc/sys/kernel/random/boot_id", boot) == 0 &&
                        boot.size() == fs::boot_id_size + 1)
    boot_id_ = boot.substr(0, fs::boot_id_size);
  std::uint64_t random = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^
                         reinterpret_cast<std::uintptr_t>(this);
  try {
    std::random_device device;
    random = (std::uint64_t{device()} << 32) ^ device() ^ random;
  } catch (...) {  // no entropy source: the time and the address have to do
  }
  instance_ = detail::to_hex(reinterpret_cast<const unsigned char*>(&random), sizeof random);

  // FORMAT appears whole (linked from tmp/) or not at all: two processes may
  // open a new store at once.
  constexpr std::string_view format = "filebuilder file store 1\n";
  std::string existing;
  int error = fs::read_small(root.get(), "FORMAT", existing);
  if (error == ENOENT) {
    Temp temp(tmp_.get());
    FILEBUILDER_TRY(write_temp(format, nullptr, temp));
    if (::linkat(tmp_.get(), temp.c_str(), root.get(), "FORMAT", 0) != 0 && errno != EEXIST)
      return fs::last_error();
    if (options_.fsync && fs::fsync_retry(root.get()) != 0) return fs::last_error();
    error = fs::read_small(root.get(), "FORMAT", existing);
  }
  if (error != 0) return fs::from_errno(error);
  if (existing != format) return ErrorCode::store_unavailable;  // not a store of this format
  root_ = std::move(root);
  return ErrorCode::ok;
}

inline std::string FileStore::temp_name(std::string_view kind) const {
  std::string name(kind);
  detail::file_store::append_u64(name, static_cast<std::uint64_t>(::getpid()));
  name += '-';
  name += instance_;
  name += '-';
  detail::file_store::append_u64(name, sequence_.fetch_add(1, std::memory_order_relaxed));
  return name;
}

inline ErrorCode FileStore::write_temp(std::string_view bytes, Clock::time_point* mtime,
                                       Temp& temp) const {
  namespace fs = detail::file_store;
  std::string name = temp_name();
  Fd fd(::openat(tmp_.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return fs::last_error();
  temp.set(std::move(name));
  FILEBUILDER_TRY(fs::write_all(fd.get(), bytes.data(), bytes.size()));
  if (mtime != nullptr) FILEBUILDER_TRY(fs::set_mtime(fd.get(), *mtime));
  if (options_.fsync && fs::fsync_retry(fd.get()) != 0) return fs::last_error();
  // close() reports late write errors (NFS, quotas); it closes even when it fails.
  return ::close(fd.release()) == 0 ? ErrorCode::ok : fs::last_error();
}

/// Writes DIR/NAME atomically: a temp file, fsync, rename, fsync DIR.
inline ErrorCode FileStore::replace_file(int dir, const char* name, std::string_view bytes,
                                         Clock::time_point* mtime) const {
  Temp temp(tmp_.get());
  FILEBUILDER_TRY(write_temp(bytes, mtime, temp));
  if (::renameat(tmp_.get(), temp.c_str(), dir, name) != 0) return detail::file_store::last_error();
  temp.forget();
  return fsync_dir(dir);
}

inline Result<bool> FileStore::done(std::string_view key) const {
  struct stat st;
  if (::fstatat(done_.get(), std::string(key).c_str(), &st, 0) == 0) return true;
  if (errno == ENOENT) return false;
  return detail::file_store::last_error();
}

inline ErrorCode FileStore::create_file_dir(const std::string& key, const PartInfo& part,
                                            Clock::time_point now) const {
  namespace fs = detail::file_store;
  const std::string name = temp_name();
  if (::mkdirat(tmp_.get(), name.c_str(), 0700) != 0) return fs::last_error();
  ErrorCode error = [&] {
    Fd dir(::openat(tmp_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return fs::last_error();
    {
      Fd meta(::openat(dir.get(), "meta", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!meta) return fs::last_error();
      const std::string text = fs::format_meta(part.endpoint, part.partition_count);
      FILEBUILDER_TRY(fs::write_all(meta.get(), text.data(), text.size()));
      if (options_.fsync && fs::fsync_retry(meta.get()) != 0) return fs::last_error();
    }
    Fd state(::openat(dir.get(), "state", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!state) return fs::last_error();
    State initial;
    initial.partition_count = part.partition_count;
    FILEBUILDER_TRY(write_state(Locked{Fd(), std::move(state)}, initial, now));
    return fsync_dir(dir.get());
  }();
  if (error == ErrorCode::ok) {
    if (::renameat(tmp_.get(), name.c_str(), files_.get(), key.c_str()) == 0)
      return fsync_dir(files_.get());
    // EEXIST / ENOTEMPTY: another writer created it first, which is as good.
    if (errno != EEXIST && errno != ENOTEMPTY) error = fs::last_error();
  }
  fs::remove_tree(tmp_.get(), name.c_str());
  return error;
}

inline Result<FileStore::Locked> FileStore::lock_file(const std::string& key,
                                                      const PartInfo* create,
                                                      Clock::time_point now) const {
  namespace fs = detail::file_store;
  const std::string state_path = key + "/state";
  for (int attempt = 0; attempt < 100; ++attempt) {
    Fd dir(::openat(files_.get(), key.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
      if (errno != ENOENT) return fs::last_error();
      if (create == nullptr) return Locked{};
      FILEBUILDER_TRY(create_file_dir(key, *create, now));
      continue;
    }
    Fd state(::openat(dir.get(), "state", O_RDWR | O_CLOEXEC));
    if (!state) {
      if (errno == ENOENT) continue;  // being removed: look again
      return fs::last_error();
    }
    if (fs::flock_retry(state.get(), LOCK_EX) != 0) return fs::last_error();
    // Still the file at files/<key>? It may have been removed (and maybe made
    // again) while we waited for the lock.
    struct stat held, current;
    if (::fstat(state.get(), &held) != 0) return fs::last_error();
    if (::fstatat(files_.get(), state_path.c_str(), &current, 0) != 0) {
      if (errno == ENOENT) continue;
      return fs::last_error();
    }
    if (held.st_ino != current.st_ino || held.st_dev != current.st_dev) continue;
    return Locked{std::move(dir), std::move(state)};
  }
  return ErrorCode::store_unavailable;
}

inline ErrorCode FileStore::write_state(const Locked& file, const State& state,
                                        Clock::time_point touched) const {
  namespace fs = detail::file_store;
  const std::string record = fs::format_state(state, boot_id_);
  FILEBUILDER_TRY(fs::pwrite_all(file.state.get(), record.data(), record.size(), 0));
  // Without a boot id a reboot cannot be told: the record is made durable instead.
  if (boot_id_.empty() && options_.fsync && fs::fsync_retry(file.state.get()) != 0)
    return fs::last_error();
  return fs::set_mtime(file.state.get(), touched);
}

inline ErrorCode FileStore::read_state(const Locked& file, State& state) const {
  namespace fs = detail::file_store;
  char buffer[fs::state_size + 16];
  const ssize_t n = fs::pread_some(file.state.get(), buffer, sizeof buffer, 0);
  if (n < 0) return fs::last_error();
  if (!fs::parse_state(std::string_view(buffer, static_cast<std::size_t>(n)), boot_id_, state))
    return recount(file, state);  // torn, foreign, or written before a reboot
  if (!state.intent) return ErrorCode::ok;
  // The last writer announced a part: did it live to link it?
  struct stat st;
  if (::fstatat(file.dir.get(), fs::PartName(state.intent_part).c_str(), &st, 0) == 0)
    return ErrorCode::ok;
  if (errno != ENOENT) return fs::last_error();
  if (state.parts == 0 || state.bytes < state.intent_size) return recount(file, state);
  --state.parts;
  state.bytes -= state.intent_size;
  state.intent = false;
  struct stat self;
  if (::fstat(file.state.get(), &self) != 0) return fs::last_error();
  return write_state(file, state, fs::mtime_of(self));
}

/// Rebuilds the state record from the directory itself: O(parts), only after a
/// crash or a reboot.
inline ErrorCode FileStore::recount(const Locked& file, State& state) const {
  namespace fs = detail::file_store;
  std::string meta;
  std::string_view endpoint;
  if (const int error = fs::read_small(file.dir.get(), "meta", meta); error != 0)
    return fs::from_errno(error);
  state = State{};
  if (!fs::parse_meta(meta, state.partition_count, endpoint)) return ErrorCode::store_unavailable;
  ErrorCode error = ErrorCode::ok;
  FILEBUILDER_TRY(fs::for_each_entry(file.dir.get(), [&](std::string_view name) {
    if (!fs::is_part_name(name)) return;  // meta, state, claim, pending, strays
    struct stat st;
    if (::fstatat(file.dir.get(), std::string(name).c_str(), &st, 0) != 0) {
      error = fs::last_error();
      return;
    }
    ++state.parts;
    state.bytes += static_cast<std::uint64_t>(st.st_size);
  }));
  FILEBUILDER_TRY(error);
  struct stat self;
  if (::fstat(file.state.get(), &self) != 0) return fs::last_error();
  return write_state(file, state, fs::mtime_of(self));
}

inline Result<bool> FileStore::leased(const Locked& file, Clock::time_point now) const {
  namespace fs = detail::file_store;
  std::string text;
  if (const int error = fs::read_small(file.dir.get(), "claim", text, 256); error != 0) {
    if (error == ENOENT) return false;
    return fs::from_errno(error);
  }
  std::int64_t until = 0;
  long pid = 0;
  // A claim file that does not parse was torn by a holder that died writing it.
  return fs::parse_pair(text, until, pid) && fs::from_ns(until) > now;
}

inline ErrorCode FileStore::write_claim(const Locked& file, Clock::time_point now) const {
  namespace fs = detail::file_store;
  // Under the file's lock: written in place (a torn claim reads as no claim).
  Fd fd(::openat(file.dir.get(), "claim", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fs::last_error();
  std::string text;
  const std::int64_t until = fs::to_ns(now + options_.claim_lease);
  text += std::to_string(until);
  text += ' ';
  text += std::to_string(::getpid());
  text += '\n';
  return fs::write_all(fd.get(), text.data(), text.size());
}

/// Under the lock: drops the pending entry, moves the directory out of files/,
/// unlocks, and deletes it.
inline ErrorCode FileStore::remove_file_dir(const std::string& key, Locked& file) const {
  namespace fs = detail::file_store;
  std::string text;
  std::int64_t retry_at = 0;
  unsigned failures = 0;
  if (fs::read_small(file.dir.get(), "pending", text, 256) == 0 &&
      fs::parse_pair(text, retry_at, failures))
    ::unlinkat(pending_.get(), fs::pending_entry(fs::name_time(fs::from_ns(retry_at)), key).c_str(),
               0);
  const std::string trash = temp_name(".trash-");
  if (::renameat(files_.get(), key.c_str(), tmp_.get(), trash.c_str()) != 0)
    return fs::last_error();
  file = Locked{};  // unlock
  fs::remove_tree(tmp_.get(), trash.c_str());
  return ErrorCode::ok;
}

inline PutOutcome FileStore::put_part(const PartInfo& part, std::string_view bytes) {
  namespace fs = detail::file_store;
  if (!root_) return {ErrorCode::store_unavailable};
  if (part.partition >= part.partition_count) return {ErrorCode::partition_out_of_range};
  const Clock::time_point now = options_.now();
  const std::string key = FileStore::key(part.endpoint);
  if (key.size() != fs::key_size) return {ErrorCode::store_unavailable};
  Result<bool> finished = done(key);
  if (!finished.ok()) return {finished.error()};
  if (finished.value_unsafe()) return {ErrorCode::ok, PutStatus::finished, false};

  // A new part is written to tmp/ before taking the lock (a duplicate is not).
  const fs::PartName name(part.partition);
  Temp temp(tmp_.get());
  struct stat st;
  if (::fstatat(files_.get(), (key + '/' + name.c_str()).c_str(), &st, 0) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) return {fs::last_error()};
    if (const ErrorCode error = write_temp(bytes, nullptr, temp); error != ErrorCode::ok)
      return {error};
  }

  Result<Locked> locked = lock_file(key, &part, now);
  if (!locked.ok()) return {locked.error()};
  Locked& file = locked.value_unsafe();
  finished = done(key);  // finish() writes the mark before it takes the lock
  if (!finished.ok()) return {finished.error()};
  State state;
  if (const ErrorCode error = read_state(file, state); error != ErrorCode::ok) return {error};
  if (finished.value_unsafe()) {
    // Finished meanwhile; a directory made again by this put goes again.
    if (state.parts == 0) (void)remove_file_dir(key, file);
    return {ErrorCode::ok, PutStatus::finished, false};
  }
  if (state.partition_count != part.partition_count) return {ErrorCode::partition_count_conflict};

  // Drops a directory this put created but could not fill.
  const auto drop_if_empty = [&] {
    if (state.parts == 0) (void)remove_file_dir(key, file);
  };
  PutOutcome outcome;
  for (int round = 0;; ++round) {
    if (::fstatat(file.dir.get(), name.c_str(), &st, 0) == 0) {
      // Present: the same bytes are a duplicate, others a conflict.
      if (static_cast<std::uint64_t>(st.st_size) != bytes.size())
        return {ErrorCode::partition_conflict};
      Fd stored(::openat(file.dir.get(), name.c_str(), O_RDONLY | O_CLOEXEC));
      if (!stored) return {fs::last_error()};
      char buffer[16 * 1024];
      for (std::size_t at = 0; at < bytes.size();) {
        const ssize_t n =
            fs::pread_some(stored.get(), buffer, std::min(sizeof buffer, bytes.size() - at),
                           static_cast<off_t>(at));
        if (n <= 0) return {n < 0 ? fs::last_error() : ErrorCode::store_unavailable};
        if (std::memcmp(buffer, bytes.data() + at, static_cast<std::size_t>(n)) != 0)
          return {ErrorCode::partition_conflict};
        at += static_cast<std::size_t>(n);
      }
      outcome.status = PutStatus::duplicate;
      if (const ErrorCode error = fs::set_mtime(file.state.get(), now); error != ErrorCode::ok)
        return {error};
      break;
    }
    if (errno != ENOENT) return {fs::last_error()};
    if (state.bytes > part.max_file_bytes || bytes.size() > part.max_file_bytes - state.bytes) {
      drop_if_empty();
      return {ErrorCode::file_too_large};
    }
    if (temp.empty()) {  // seen before the lock, gone since (its file was removed)
      if (const ErrorCode error = write_temp(bytes, nullptr, temp); error != ErrorCode::ok) {
        drop_if_empty();
        return {error};
      }
    }
    State next = state;
    ++next.parts;
    next.bytes += bytes.size();
    next.intent = true;
    next.intent_part = part.partition;
    next.intent_size = bytes.size();
    if (const ErrorCode error = write_state(file, next, now); error != ErrorCode::ok) {
      drop_if_empty();
      return {error};
    }
    int linked = ::linkat(tmp_.get(), temp.c_str(), file.dir.get(), name.c_str(), 0);
    if (linked != 0 && (errno == EPERM || errno == EOPNOTSUPP || errno == ENOTSUP)) {
      // A file system without hard links: under the lock, with the part known
      // to be absent, a rename is as safe.
      linked = ::renameat(tmp_.get(), temp.c_str(), file.dir.get(), name.c_str());
      if (linked == 0) temp.forget();
    }
    if (linked != 0) {
      const int link_error = errno;
      (void)write_state(file, state, now);  // take the announcement back
      if (link_error == EEXIST && round == 0) continue;
      drop_if_empty();
      return {fs::from_errno(link_error)};
    }
    state = next;
    outcome.status = PutStatus::stored;
    break;
  }
  outcome.complete = state.parts == state.partition_count;
  Fd dir = std::move(file.dir);
  file = Locked{};  // unlock; the directory entry is made durable outside the lock
  if (outcome.status == PutStatus::stored) {
    if (const ErrorCode error = fsync_dir(dir.get()); error != ErrorCode::ok) return {error};
  }
  return outcome;
}

inline ClaimStatus FileStore::claim(std::string_view endpoint) {
  if (!root_) return ClaimStatus::unavailable;
  const Clock::time_point now = options_.now();
  const std::string key = FileStore::key(endpoint);
  Result<bool> finished = done(key);
  if (!finished.ok()) return ClaimStatus::unavailable;
  if (finished.value_unsafe()) return ClaimStatus::finished;
  Result<Locked> locked = lock_file(key, nullptr, now);
  if (!locked.ok()) return ClaimStatus::unavailable;
  Locked& file = locked.value_unsafe();
  if (!file.found()) return ClaimStatus::incomplete;
  finished = done(key);
  if (!finished.ok()) return ClaimStatus::unavailable;
  if (finished.value_unsafe()) return ClaimStatus::finished;
  State state;
  if (read_state(file, state) != ErrorCode::ok) return ClaimStatus::unavailable;
  if (state.parts != state.partition_count) return ClaimStatus::incomplete;
  Result<bool> held = leased(file, now);
  if (!held.ok()) return ClaimStatus::unavailable;
  if (held.value_unsafe()) return ClaimStatus::busy;
  return write_claim(file, now) == ErrorCode::ok ? ClaimStatus::claimed : ClaimStatus::unavailable;
}

inline Result<std::unique_ptr<BodyReader>> FileStore::open_body(std::string_view endpoint) {
  namespace fs = detail::file_store;
  if (!root_) return ErrorCode::store_unavailable;
  const std::string key = FileStore::key(endpoint);
  // Parts never change once present: no lock needed to read them.
  Fd dir(::openat(files_.get(), key.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return ErrorCode::store_unavailable;
  std::string meta;
  std::uint64_t partition_count = 0;
  std::string_view stored_endpoint;
  if (fs::read_small(dir.get(), "meta", meta) != 0 ||
      !fs::parse_meta(meta, partition_count, stored_endpoint) || stored_endpoint != endpoint)
    return ErrorCode::store_unavailable;
  std::vector<std::uint64_t> offsets;
  offsets.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(partition_count, 1 << 20)) + 1);
  offsets.push_back(0);
  for (std::uint64_t i = 0; i < partition_count; ++i) {
    struct stat st;
    if (::fstatat(dir.get(), fs::PartName(i).c_str(), &st, 0) != 0)
      return ErrorCode::store_unavailable;  // incomplete, or removed meanwhile
    offsets.push_back(offsets.back() + static_cast<std::uint64_t>(st.st_size));
  }
  return std::unique_ptr<BodyReader>(std::make_unique<Body>(std::move(dir), std::move(offsets)));
}

inline ErrorCode FileStore::finish(std::string_view endpoint) {
  namespace fs = detail::file_store;
  if (!root_) return ErrorCode::store_unavailable;
  const Clock::time_point now = options_.now();
  const std::string key = FileStore::key(endpoint);
  // The done-mark first (durably): from here on every put and claim of this
  // file says finished, even if the parts below are not yet removed.
  std::string text;
  fs::append_u64(text, fs::name_time(now));
  text += '\n';
  Clock::time_point mtime = now;
  FILEBUILDER_TRY(replace_file(done_.get(), key.c_str(), text, &mtime));
  Result<Locked> locked = lock_file(key, nullptr, now);
  if (!locked.ok()) return locked.error();
  if (!locked.value_unsafe().found()) return ErrorCode::ok;
  return remove_file_dir(key, locked.value_unsafe());
}

inline ErrorCode FileStore::release(std::string_view endpoint, Clock::time_point retry_at) {
  namespace fs = detail::file_store;
  if (!root_) return ErrorCode::store_unavailable;
  const Clock::time_point now = options_.now();
  const std::string key = FileStore::key(endpoint);
  Result<Locked> locked = lock_file(key, nullptr, now);
  if (!locked.ok()) return locked.error();
  Locked& file = locked.value_unsafe();
  if (!file.found()) return ErrorCode::store_unavailable;
  std::string text;
  std::int64_t old_retry_at = 0;
  unsigned failures = 0;
  const bool was_pending = fs::read_small(file.dir.get(), "pending", text, 256) == 0 &&
                           fs::parse_pair(text, old_retry_at, failures);
  if (!was_pending) failures = 0;
  if (::unlinkat(file.dir.get(), "claim", 0) != 0 && errno != ENOENT) return fs::last_error();
  text.clear();
  text += std::to_string(fs::to_ns(retry_at));
  text += ' ';
  text += std::to_string(failures + 1);
  text += '\n';
  FILEBUILDER_TRY(replace_file(file.dir.get(), "pending", text, nullptr));
  const std::string entry = fs::pending_entry(fs::name_time(retry_at), key);
  Fd index(::openat(pending_.get(), entry.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!index) return fs::last_error();
  FILEBUILDER_TRY(fsync_dir(pending_.get()));
  if (was_pending) {
    const std::string old_entry = fs::pending_entry(fs::name_time(fs::from_ns(old_retry_at)), key);
    if (old_entry != entry) ::unlinkat(pending_.get(), old_entry.c_str(), 0);
  }
  return ErrorCode::ok;
}

inline std::vector<PendingFile> FileStore::claim_pending(std::size_t max, Clock::time_point now) {
  namespace fs = detail::file_store;
  std::vector<PendingFile> claimed;
  if (!root_ || max == 0) return claimed;
  const std::uint64_t due_by = fs::name_time(now);
  std::vector<std::string> due;
  (void)fs::for_each_entry(pending_.get(), [&](std::string_view name) {
    std::uint64_t when = 0;
    std::string_view key;
    if (fs::parse_pending_entry(name, when, key) && when <= due_by) due.emplace_back(name);
  });
  std::sort(due.begin(), due.end());  // fixed-width due time first: oldest first
  for (const std::string& entry : due) {
    if (claimed.size() >= max) break;
    std::uint64_t when = 0;
    std::string_view key_view;
    (void)fs::parse_pending_entry(entry, when, key_view);
    const std::string key(key_view);
    Result<Locked> locked = lock_file(key, nullptr, now);
    if (!locked.ok()) continue;
    Locked& file = locked.value_unsafe();
    const auto drop_entry = [&] { ::unlinkat(pending_.get(), entry.c_str(), 0); };
    if (!file.found()) {  // finished or expired: a stale entry
      drop_entry();
      continue;
    }
    std::string text;
    std::int64_t retry_at = 0;
    unsigned failures = 0;
    if (fs::read_small(file.dir.get(), "pending", text, 256) != 0 ||
        !fs::parse_pair(text, retry_at, failures) || fs::name_time(fs::from_ns(retry_at)) != when) {
      drop_entry();  // superseded by a later release (or torn): not this entry's
      continue;
    }
    Result<bool> finished = done(key);
    if (!finished.ok()) continue;
    if (finished.value_unsafe()) {
      drop_entry();
      continue;
    }
    State state;
    if (read_state(file, state) != ErrorCode::ok || state.parts != state.partition_count) continue;
    Result<bool> held = leased(file, now);
    if (!held.ok() || held.value_unsafe()) continue;  // someone is uploading it
    std::string meta;
    std::uint64_t partition_count = 0;
    std::string_view endpoint;
    if (fs::read_small(file.dir.get(), "meta", meta) != 0 ||
        !fs::parse_meta(meta, partition_count, endpoint))
      continue;
    // The lease runs from the caller's `now`, as the due time does.
    if (write_claim(file, now) != ErrorCode::ok) continue;
    claimed.push_back(PendingFile{std::string(endpoint), failures});
  }
  return claimed;
}

inline std::size_t FileStore::expire(Clock::time_point now) {
  namespace fs = detail::file_store;
  if (!root_) return 0;
  std::size_t removed = 0;

  // Unfinished files untouched (no put) for longer than expire_after, unless leased.
  // Also the parts of finished files whose finish() was interrupted between
  // the done-mark and the removal (a crash), whatever their age.
  std::vector<std::string> old;
  (void)fs::for_each_entry(files_.get(), [&](std::string_view name) {
    if (!fs::is_key(name)) return;
    struct stat st;
    const std::string state_path = std::string(name) + "/state";
    Result<bool> finished = done(std::string(name));
    if ((finished.ok() && finished.value_unsafe()) ||
        (::fstatat(files_.get(), state_path.c_str(), &st, 0) == 0 &&
         now - fs::mtime_of(st) > options_.expire_after))
      old.emplace_back(name);
  });
  for (const std::string& key : old) {
    Result<Locked> locked = lock_file(key, nullptr, now);
    if (!locked.ok() || !locked.value_unsafe().found()) continue;
    Locked& file = locked.value_unsafe();
    if (Result<bool> finished = done(key); finished.ok() && finished.value_unsafe()) {
      if (remove_file_dir(key, file) == ErrorCode::ok) ++removed;
      continue;
    }
    struct stat st;
    if (::fstat(file.state.get(), &st) != 0 || now - fs::mtime_of(st) <= options_.expire_after)
      continue;  // touched meanwhile
    Result<bool> held = leased(file, now);
    if (!held.ok() || held.value_unsafe()) continue;
    if (remove_file_dir(key, file) == ErrorCode::ok) ++removed;
  }

  // Done-marks older than done_mark_ttl. Moved aside before they are judged
  // for good, so a mark renewed meanwhile is put back, not lost.
  std::vector<std::string> stale_marks;
  (void)fs::for_each_entry(done_.get(), [&](std::string_view name) {
    struct stat st;
    if (fs::is_key(name) && ::fstatat(done_.get(), std::string(name).c_str(), &st, 0) == 0 &&
        now - fs::mtime_of(st) > options_.done_mark_ttl)
      stale_marks.emplace_back(name);
  });
  for (const std::string& key : stale_marks) {
    const std::string trash = temp_name(".trash-");
    if (::renameat(done_.get(), key.c_str(), tmp_.get(), trash.c_str()) != 0) continue;
    struct stat st;
    if (::fstatat(tmp_.get(), trash.c_str(), &st, 0) == 0 &&
        now - fs::mtime_of(st) <= options_.done_mark_ttl)
      ::renameat(tmp_.get(), trash.c_str(), done_.get(), key.c_str());
    else
      ::unlinkat(tmp_.get(), trash.c_str(), 0);
  }

  // Pending entries whose file is gone (a crash between the steps of finish).
  std::vector<std::string> orphans;
  (void)fs::for_each_entry(pending_.get(), [&](std::string_view name) {
    std::uint64_t when = 0;
    std::string_view key;
    struct stat st;
    if (fs::parse_pending_entry(name, when, key) &&
        ::fstatat(files_.get(), std::string(key).c_str(), &st, 0) != 0 && errno == ENOENT)
      orphans.emplace_back(name);
  });
  for (const std::string& name : orphans) ::unlinkat(pending_.get(), name.c_str(), 0);

  // Debris in tmp/: directories being deleted (always), and temp files of
  // writers that died (older than temp_ttl by the real clock: their mtime is).
  const Clock::time_point real_now = Clock::now();
  std::vector<std::string> debris;
  (void)fs::for_each_entry(tmp_.get(), [&](std::string_view name) {
    struct stat st;
    if (name.starts_with(".trash-") ||
        (::fstatat(tmp_.get(), std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         real_now - fs::mtime_of(st) > options_.temp_ttl))
      debris.emplace_back(name);
  });
  for (const std::string& name : debris) fs::remove_tree(tmp_.get(), name.c_str());
  return removed;
}

inline std::size_t FileStore::open_files() const {
  std::size_t count = 0;
  if (files_)
    (void)detail::file_store::for_each_entry(files_.get(), [&](std::string_view name) {
      count += detail::file_store::is_key(name) ? 1 : 0;
    });
  return count;
}

inline std::size_t FileStore::done_marks() const {
  std::size_t count = 0;
  if (done_)
    (void)detail::file_store::for_each_entry(done_.get(), [&](std::string_view name) {
      count += detail::file_store::is_key(name) ? 1 : 0;
    });
  return count;
}

inline bool FileStore::pending(std::string_view endpoint) const {
  struct stat st;
  return files_ && ::fstatat(files_.get(), (key(endpoint) + "/pending").c_str(), &st, 0) == 0;
}

inline Result<FileStore::Fd> FileStore::checkpoint_dir(std::string_view stream, bool create) const {
  namespace fs = detail::file_store;
  const std::string name = key(stream);
  for (int attempt = 0; attempt < 2; ++attempt) {
    Fd dir(::openat(checkpoints_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) return dir;
    if (errno != ENOENT) return fs::last_error();
    if (!create) return Fd();
    if (::mkdirat(checkpoints_.get(), name.c_str(), 0700) == 0) {
      FILEBUILDER_TRY(fsync_dir(checkpoints_.get()));
    } else if (errno != EEXIST) {
      return fs::last_error();
    }
  }
  return ErrorCode::store_unavailable;
}

inline Result<bool> FileStore::read_checkpoint_file(
    int dir, const char* name, detail::file_store::CheckpointFile& file) const {
  namespace fs = detail::file_store;
  const int error = fs::read_small(dir, name, file.text, fs::checkpoint_file_max);
  if (error == ENOENT) return false;
  // Too big to be one of ours: read, but not valid.
  if (error != 0 && error != EFBIG) return fs::from_errno(error);
  file.valid = error == 0 && fs::parse_checkpoint_file(file);
  return true;
}

inline Result<std::optional<Checkpoint>> FileStore::load_checkpoint(std::string_view stream,
                                                                    std::string_view shard) const {
  FILEBUILDER_TRY(check_checkpoint_names(stream, shard));
  if (!root_) return ErrorCode::store_unavailable;
  Result<Fd> dir = checkpoint_dir(stream, false);
  if (!dir.ok()) return dir.error();
  if (!dir.value_unsafe()) return std::optional<Checkpoint>{};
  detail::file_store::CheckpointFile file;
  Result<bool> found = read_checkpoint_file(dir.value_unsafe().get(), key(shard).c_str(), file);
  if (!found.ok()) return found.error();
  if (!found.value_unsafe()) return std::optional<Checkpoint>{};
  // Not a checkpoint, or another stream's or shard's under this name: never guess.
  if (!file.valid || file.stream != stream || file.shard != shard)
    return ErrorCode::store_unavailable;
  return std::optional<Checkpoint>{std::move(file.checkpoint)};
}

inline ErrorCode FileStore::save_checkpoint(std::string_view stream, std::string_view shard,
                                            const Checkpoint& checkpoint) {
  namespace fs = detail::file_store;
  FILEBUILDER_TRY(check_checkpoint(stream, shard, checkpoint));
  if (!root_) return ErrorCode::store_unavailable;
  Result<Fd> opened = checkpoint_dir(stream, true);
  if (!opened.ok()) return opened.error();
  const Fd dir = std::move(opened.value_unsafe());
  const std::string name = key(shard);
  const std::string lock_name = name + std::string(fs::lock_suffix);
  const Fd lock(::openat(dir.get(), lock_name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock) return fs::last_error();
  if (fs::flock_retry(lock.get(), LOCK_EX) != 0) return fs::last_error();
  fs::CheckpointFile stored;
  Result<bool> found = read_checkpoint_file(dir.get(), name.c_str(), stored);
  if (!found.ok()) return found.error();
  // One that does not parse (or names another shard) is replaced: it holds no
  // position of this shard to keep.
  if (stored.valid && stored.stream == stream && stored.shard == shard &&
      checkpoint <= stored.checkpoint)
    return ErrorCode::ok;  // at or past it already: never backwards
  return replace_file(dir.get(), name.c_str(),
                      fs::format_checkpoint_file(stream, shard, checkpoint), nullptr);
}

inline Result<std::vector<ShardCheckpoint>> FileStore::list_checkpoints(
    std::string_view stream) const {
  namespace fs = detail::file_store;
  FILEBUILDER_TRY(check_checkpoint_name(stream));
  if (!root_) return ErrorCode::store_unavailable;
  std::vector<ShardCheckpoint> out;
  Result<Fd> dir = checkpoint_dir(stream, false);
  if (!dir.ok()) return dir.error();
  if (!dir.value_unsafe()) return out;
  std::vector<std::string> names;
  FILEBUILDER_TRY(fs::for_each_entry(dir.value_unsafe().get(), [&](std::string_view name) {
    if (fs::is_key(name)) names.emplace_back(name);  // not the locks, nor strays
  }));
  for (const std::string& name : names) {
    fs::CheckpointFile file;
    Result<bool> found = read_checkpoint_file(dir.value_unsafe().get(), name.c_str(), file);
    if (!found.ok()) return found.error();
    if (!found.value_unsafe()) continue;
    if (!file.valid || file.stream != stream || name != key(file.shard))
      return ErrorCode::store_unavailable;
    out.emplace_back(std::string(file.shard), std::move(file.checkpoint));
  }
  detail::sort_by_shard(out);
  return out;
}

static_assert(StateStore<FileStore>);
static_assert(CheckpointStore<FileStore>);

}  // namespace filebuilder
