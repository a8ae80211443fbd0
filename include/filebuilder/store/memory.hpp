// filebuilder: MemoryStore, the default StateStore. Thread-safe, bounded, not durable.
//
// It is a CheckpointStore too: checkpoints are a map under the same mutex,
// and live only as long as the process (a restart with memory: starts every
// shard from --start again). They are not counted against max_bytes.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "filebuilder/concepts.hpp"

namespace filebuilder {

struct MemoryStoreOptions {
  std::uint64_t max_bytes = std::uint64_t{512} << 20;  // parts + bookkeeping
  std::size_t max_open_files = 100'000;
  std::chrono::seconds expire_after{86'400};  // unfinished files untouched this long
  std::size_t max_done_marks = 100'000;       // oldest marks go first beyond this
  std::chrono::seconds done_mark_ttl{86'400};
  std::chrono::seconds claim_lease{300};
  Clock::time_point (*now)() = &Clock::now;  // injectable for tests
};

class MemoryStore {
 public:
  explicit MemoryStore(MemoryStoreOptions options = {}) : options_(options) {}

  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  [[nodiscard]] PutOutcome put_part(const PartInfo& part, std::string_view bytes);
  [[nodiscard]] ClaimStatus claim(std::string_view endpoint);
  [[nodiscard]] Result<std::unique_ptr<BodyReader>> open_body(std::string_view endpoint);
  [[nodiscard]] ErrorCode finish(std::string_view endpoint);
  [[nodiscard]] ErrorCode release(std::string_view endpoint, Clock::time_point retry_at);
  [[nodiscard]] std::vector<PendingFile> claim_pending(std::size_t max, Clock::time_point now);
  std::size_t expire(Clock::time_point now);

  // CheckpointStore (concepts.hpp): kept in memory, for this process only.
  [[nodiscard]] Result<std::optional<Checkpoint>> load_checkpoint(std::string_view stream,
                                                                  std::string_view shard) const;
  [[nodiscard]] ErrorCode save_checkpoint(std::string_view stream, std::string_view shard,
                                          const Checkpoint& checkpoint);
  [[nodiscard]] Result<std::vector<ShardCheckpoint>> list_checkpoints(
      std::string_view stream) const;

  // Introspection, for tests and metrics.
  [[nodiscard]] std::size_t open_files() const;
  [[nodiscard]] std::uint64_t bytes_held() const;
  [[nodiscard]] std::size_t done_marks() const;
  [[nodiscard]] bool pending(std::string_view endpoint) const;

 private:
  using Part = std::shared_ptr<const std::string>;
  // Lets the maps be searched with a string_view, without building a string.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
      return std::hash<std::string_view>{}(key);
    }
  };
  template <typename V>
  using Map = std::unordered_map<std::string, V, Hash, std::equal_to<>>;
  struct File {
    std::uint64_t partition_count = 0;
    std::map<std::uint64_t, Part> parts;  // sparse: partitionCount may be large
    std::uint64_t bytes = 0;              // sum of part sizes
    Clock::time_point touched{};
    Clock::time_point lease_until{};
    bool claimed = false;
    bool pending = false;  // complete, an upload failed: retry it at retry_at
    Clock::time_point retry_at{};
    unsigned failures = 0;
  };
  class Body;

  // Bytes charged against max_bytes for a part or a file beyond their content.
  static constexpr std::uint64_t part_overhead = 96;
  static constexpr std::uint64_t file_overhead = 256;

  void drop_file_locked(Map<File>::iterator it);
  void add_done_mark_locked(std::string_view endpoint, Clock::time_point now);

  MemoryStoreOptions options_;
  mutable std::mutex mutex_;
  Map<File> files_;
  std::uint64_t bytes_ = 0;
  // Done-marks: a set in insertion (= time) order, so the oldest go first.
  Map<Clock::time_point> done_;
  std::deque<const std::string*> done_order_;  // keys of done_ (node-stable)
  // Pending files by due time. Entries may be stale (the file was finished or
  // claimed meanwhile): checked against the file when taken.
  std::multimap<Clock::time_point, std::string> pending_by_time_;
  // Checkpoints by stream, then shard (ordered: list_checkpoints sorts by shard).
  std::map<std::string, std::map<std::string, Checkpoint, std::less<>>, std::less<>> checkpoints_;
};

// ---------------------------------------------------------------------------

class MemoryStore::Body final : public BodyReader {
 public:
  explicit Body(std::vector<Part> parts) : parts_(std::move(parts)) {
    offsets_.reserve(parts_.size() + 1);
    offsets_.push_back(0);
    for (const Part& part : parts_) offsets_.push_back(offsets_.back() + part->size());
  }
  [[nodiscard]] std::uint64_t size() const noexcept override { return offsets_.back(); }
  [[nodiscard]] Result<std::size_t> read_at(std::uint64_t offset, std::span<char> dst) override {
    if (offset >= size()) return std::size_t{0};
    // Uploads read sequentially: try the part after the last one first.
    if (!(offsets_[cursor_] <= offset && offset < offsets_[cursor_ + 1])) {
      cursor_ = static_cast<std::size_t>(
          std::upper_bound(offsets_.begin(), offsets_.end(), offset) - offsets_.begin() - 1);
    }
    std::size_t copied = 0;
    while (copied < dst.size() && cursor_ < parts_.size()) {
      const std::string& part = *parts_[cursor_];
      const std::uint64_t within = offset + copied - offsets_[cursor_];
      const std::size_t n = std::min<std::size_t>(dst.size() - copied, part.size() - within);
      std::memcpy(dst.data() + copied, part.data() + within, n);
      copied += n;
      if (within + n == part.size()) ++cursor_;
    }
    if (cursor_ == parts_.size()) cursor_ = parts_.empty() ? 0 : parts_.size() - 1;
    return copied;
  }

 private:
  std::vector<Part> parts_;  // shared: safe even if the file is dropped meanwhile
  std::vector<std::uint64_t> offsets_;
  std::size_t cursor_ = 0;
};

inline PutOutcome MemoryStore::put_part(const PartInfo& part, std::string_view bytes) {
  const Clock::time_point now = options_.now();
  std::lock_guard lock(mutex_);
  if (done_.find(part.endpoint) != done_.end()) return {ErrorCode::ok, PutStatus::finished, false};

  auto it = files_.find(part.endpoint);
  if (it == files_.end()) {
    if (files_.size() >= options_.max_open_files) return {ErrorCode::store_full};
    if (bytes_ + file_overhead + part.endpoint.size() > options_.max_bytes)
      return {ErrorCode::store_full};
    it = files_.emplace(std::string(part.endpoint), File{}).first;
    it->second.partition_count = part.partition_count;
    it->second.touched = now;
    bytes_ += file_overhead + part.endpoint.size();
  }
  File& file = it->second;
  if (file.partition_count != part.partition_count) return {ErrorCode::partition_count_conflict};

  PutOutcome outcome;
  auto existing = file.parts.find(part.partition);
  if (existing != file.parts.end()) {
    if (std::string_view(*existing->second) != bytes) return {ErrorCode::partition_conflict};
    outcome.status = PutStatus::duplicate;
  } else {
    const auto undo_empty = [&] {
      if (file.parts.empty()) drop_file_locked(it);
    };
    if (file.bytes + bytes.size() > part.max_file_bytes) {
      undo_empty();
      return {ErrorCode::file_too_large};
    }
    if (bytes_ + bytes.size() + part_overhead > options_.max_bytes) {
      undo_empty();
      return {ErrorCode::store_full};
    }
    file.parts.emplace(part.partition, std::make_shared<const std::string>(bytes));
    file.bytes += bytes.size();
    bytes_ += bytes.size() + part_overhead;
    outcome.status = PutStatus::stored;
  }
  file.touched = now;
  outcome.complete = file.parts.size() == file.partition_count;
  return outcome;
}

inline ClaimStatus MemoryStore::claim(std::string_view endpoint) {
  const Clock::time_point now = options_.now();
  std::lock_guard lock(mutex_);
  if (done_.find(endpoint) != done_.end()) return ClaimStatus::finished;
  auto it = files_.find(endpoint);
  if (it == files_.end() || it->second.parts.size() != it->second.partition_count)
    return ClaimStatus::incomplete;
  File& file = it->second;
  if (file.claimed && file.lease_until > now) return ClaimStatus::busy;
  file.claimed = true;
  file.lease_until = now + options_.claim_lease;
  return ClaimStatus::claimed;
}

inline Result<std::unique_ptr<BodyReader>> MemoryStore::open_body(std::string_view endpoint) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(endpoint);
  if (it == files_.end()) return ErrorCode::store_unavailable;
  std::vector<Part> parts;
  parts.reserve(it->second.parts.size());
  for (const auto& [index, part] : it->second.parts) parts.push_back(part);
  return std::unique_ptr<BodyReader>(std::make_unique<Body>(std::move(parts)));
}

inline ErrorCode MemoryStore::finish(std::string_view endpoint) {
  const Clock::time_point now = options_.now();
  std::lock_guard lock(mutex_);
  auto it = files_.find(endpoint);
  if (it != files_.end()) drop_file_locked(it);
  add_done_mark_locked(endpoint, now);
  return ErrorCode::ok;
}

inline ErrorCode MemoryStore::release(std::string_view endpoint, Clock::time_point retry_at) {
  std::lock_guard lock(mutex_);
  auto it = files_.find(endpoint);
  if (it == files_.end()) return ErrorCode::store_unavailable;
  File& file = it->second;
  file.claimed = false;
  file.pending = true;
  file.retry_at = retry_at;
  ++file.failures;
  pending_by_time_.emplace(retry_at, it->first);
  return ErrorCode::ok;
}

inline std::vector<PendingFile> MemoryStore::claim_pending(std::size_t max, Clock::time_point now) {
  std::vector<PendingFile> claimed;
  std::lock_guard lock(mutex_);
  for (auto entry = pending_by_time_.begin();
       entry != pending_by_time_.end() && entry->first <= now && claimed.size() < max;) {
    auto it = files_.find(entry->second);
    const bool current = it != files_.end() && it->second.pending &&
                         it->second.retry_at == entry->first &&
                         !(it->second.claimed && it->second.lease_until > now);
    if (current) {
      it->second.claimed = true;
      it->second.lease_until = now + options_.claim_lease;
      claimed.push_back(PendingFile{it->first, it->second.failures});
    }
    entry = pending_by_time_.erase(entry);  // taken, or stale
  }
  return claimed;
}

inline std::size_t MemoryStore::expire(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::size_t removed = 0;
  for (auto it = files_.begin(); it != files_.end();) {
    const File& file = it->second;
    const bool leased = file.claimed && file.lease_until > now;
    if (!leased && now - file.touched > options_.expire_after) {
      drop_file_locked(it++);
      ++removed;
    } else {
      ++it;
    }
  }
  while (!done_order_.empty()) {
    auto oldest = done_.find(*done_order_.front());
    if (now - oldest->second <= options_.done_mark_ttl) break;
    done_order_.pop_front();
    done_.erase(oldest);
  }
  return removed;
}

inline Result<std::optional<Checkpoint>> MemoryStore::load_checkpoint(
    std::string_view stream, std::string_view shard) const {
  FILEBUILDER_TRY(check_checkpoint_names(stream, shard));
  std::lock_guard lock(mutex_);
  auto shards = checkpoints_.find(stream);
  if (shards == checkpoints_.end()) return std::optional<Checkpoint>{};
  auto it = shards->second.find(shard);
  if (it == shards->second.end()) return std::optional<Checkpoint>{};
  return std::optional<Checkpoint>{it->second};
}

inline ErrorCode MemoryStore::save_checkpoint(std::string_view stream, std::string_view shard,
                                              const Checkpoint& checkpoint) {
  FILEBUILDER_TRY(check_checkpoint(stream, shard, checkpoint));
  std::lock_guard lock(mutex_);
  auto shards = checkpoints_.find(stream);
  if (shards == checkpoints_.end()) shards = checkpoints_.try_emplace(std::string(stream)).first;
  auto it = shards->second.find(shard);
  if (it == shards->second.end())
    shards->second.emplace(std::string(shard), checkpoint);
  else if (it->second < checkpoint)
    it->second = checkpoint;  // else at or past it already: never backwards
  return ErrorCode::ok;
}

inline Result<std::vector<ShardCheckpoint>> MemoryStore::list_checkpoints(
    std::string_view stream) const {
  FILEBUILDER_TRY(check_checkpoint_name(stream));
  std::lock_guard lock(mutex_);
  std::vector<ShardCheckpoint> out;
  if (auto shards = checkpoints_.find(stream); shards != checkpoints_.end())
    out.assign(shards->second.begin(), shards->second.end());
  return out;
}

inline std::size_t MemoryStore::open_files() const {
  std::lock_guard lock(mutex_);
  return files_.size();
}

inline std::uint64_t MemoryStore::bytes_held() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

inline std::size_t MemoryStore::done_marks() const {
  std::lock_guard lock(mutex_);
  return done_.size();
}

inline bool MemoryStore::pending(std::string_view endpoint) const {
  std::lock_guard lock(mutex_);
  auto it = files_.find(endpoint);
  return it != files_.end() && it->second.pending;
}

inline void MemoryStore::drop_file_locked(Map<File>::iterator it) {
  bytes_ -=
      file_overhead + it->first.size() + it->second.bytes + part_overhead * it->second.parts.size();
  files_.erase(it);
}

inline void MemoryStore::add_done_mark_locked(std::string_view endpoint, Clock::time_point now) {
  auto [mark, inserted] = done_.try_emplace(std::string(endpoint), now);
  if (!inserted) return;
  done_order_.push_back(&mark->first);
  while (done_.size() > options_.max_done_marks) {
    auto oldest = done_.find(*done_order_.front());
    done_order_.pop_front();
    done_.erase(oldest);
  }
}

static_assert(StateStore<MemoryStore>);
static_assert(CheckpointStore<MemoryStore>);

}  // namespace filebuilder
