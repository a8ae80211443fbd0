// filebuilder: the two extension points of the core, StateStore and Uploader,
// and CheckpointStore, which a store adds for the daemon.
//
// A backend author reads only this file. Reassembler<S, U> drives them:
//   put_part -> (complete?) claim -> open_body -> Uploader::upload -> finish | release
// See docs/design.md for the guarantees each step must keep when several
// consumers share one store.
#pragma once

#include <chrono>
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/error.hpp"

namespace filebuilder {

using Clock = std::chrono::system_clock;

/// Positional read access to one complete file: its parts in partition order,
/// with the total size known up front. Positional, so that an uploader can
/// restart a body from offset 0 on a retry without asking the store again.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  [[nodiscard]] virtual std::uint64_t size() const noexcept = 0;
  /// Copies up to dst.size() bytes starting at `offset` into dst. Returns the
  /// count copied (0 only when offset == size()), or store_unavailable.
  [[nodiscard]] virtual Result<std::size_t> read_at(std::uint64_t offset, std::span<char> dst) = 0;
};

// ---------------------------------------------------------------------------
// StateStore

/// What put_part stores.
struct PartInfo {
  std::string_view endpoint;  // putEndpoint: names the file
  std::uint64_t partition = 0;
  std::uint64_t partition_count = 0;
  std::uint64_t max_file_bytes = UINT64_MAX;  // refuse a part that would exceed it
};

enum class PutStatus : std::uint8_t {
  stored,     // a new part
  duplicate,  // this part with the same bytes was already there
  finished,   // the file carries a done-mark: already uploaded
};

struct PutOutcome {
  /// ok, partition_conflict, partition_count_conflict, file_too_large,
  /// store_full or store_unavailable. When not ok nothing was stored.
  ErrorCode error = ErrorCode::ok;
  PutStatus status = PutStatus::stored;
  /// Every part of the file is present (and it is not finished).
  bool complete = false;
};

enum class ClaimStatus : std::uint8_t {
  claimed,     // the caller holds the lease and must finish() or release()
  busy,        // another caller holds an unexpired lease
  incomplete,  // parts are missing
  finished,    // already uploaded
  unavailable  // the store cannot be reached
};

/// A complete file whose upload failed, claimed again for a retry.
struct PendingFile {
  std::string endpoint;
  unsigned failures = 0;  // failed uploads so far (for the backoff)
};

/// Keeps the parts of unfinished files; safe to share between threads (and,
/// for durable stores, processes). Keys are the endpoint text.
///
///   put_part       store a part if absent; conflicts; is the file complete?
///   claim          one caller wins the right to upload a complete file (a lease)
///   open_body      read the parts in order, size known up front
///   finish         after success (or a permanent refusal): drop the parts, leave a done-mark
///   release        after a retryable failure: give the claim back, keep the parts,
///                  mark the file pending, due again at retry_at
///   claim_pending  claim up to `max` pending files due by `now` (the caller uploads them)
///   expire         drop unfinished files untouched for too long, and old done-marks
template <typename S>
concept StateStore = requires(S& store, const PartInfo& part, std::string_view bytes,
                              std::string_view endpoint, Clock::time_point now, std::size_t max) {
  { store.put_part(part, bytes) } -> std::same_as<PutOutcome>;
  { store.claim(endpoint) } -> std::same_as<ClaimStatus>;
  { store.open_body(endpoint) } -> std::same_as<Result<std::unique_ptr<BodyReader>>>;
  { store.finish(endpoint) } -> std::same_as<ErrorCode>;
  { store.release(endpoint, now) } -> std::same_as<ErrorCode>;
  { store.claim_pending(max, now) } -> std::same_as<std::vector<PendingFile>>;
  { store.expire(now) } -> std::same_as<std::size_t>;
};

// ---------------------------------------------------------------------------
// CheckpointStore

namespace detail {

/// Orders two strings of decimal digits without leading zeros as numbers: the
/// shorter is smaller, equal lengths compare as text. Any length (Kinesis
/// sequence numbers have 56 digits and more).
[[nodiscard]] constexpr std::strong_ordering compare_decimal(std::string_view a,
                                                             std::string_view b) noexcept {
  if (a.size() != b.size()) return a.size() <=> b.size();
  const int order = a.compare(b);
  return order < 0 ? std::strong_ordering::less
                   : (order > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
}

}  // namespace detail

/// A position in one shard of a stream: every record up to and including it
/// is durably handled (stored, a duplicate, or rejected), so a restart resumes
/// after it. Kinesis's sequence number and the KCL's sub-sequence number.
struct Checkpoint {
  /// 1 to max_sequence_number_digits decimal digits, no leading zero ("0"
  /// itself is one). Empty only in a shard_end checkpoint that names no record.
  std::string sequence_number;
  /// The user record's index within a KPL aggregated record; 0 for a plain one.
  std::uint64_t sub_sequence = 0;
  /// The shard is closed and was read to its end: its children may start.
  bool shard_end = false;

  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
  /// How checkpoints advance: every shard_end checkpoint is past every other;
  /// then the sequence number as a number; then sub_sequence.
  friend constexpr std::strong_ordering operator<=>(const Checkpoint& a,
                                                    const Checkpoint& b) noexcept {
    if (a.shard_end != b.shard_end) return a.shard_end <=> b.shard_end;
    if (const auto order = detail::compare_decimal(a.sequence_number, b.sequence_number);
        order != 0)
      return order;
    return a.sub_sequence <=> b.sub_sequence;
  }
};

/// A shard's name and its checkpoint, as list_checkpoints returns them.
using ShardCheckpoint = std::pair<std::string, Checkpoint>;

inline constexpr std::size_t max_sequence_number_digits = 128;
inline constexpr std::size_t max_checkpoint_name_bytes = 1024;  // a stream's or a shard's

/// ok, or invalid_checkpoint when a stream or shard name is empty or longer
/// than max_checkpoint_name_bytes. Names may hold any bytes: stores never use
/// them as paths or keys verbatim.
[[nodiscard]] constexpr ErrorCode check_checkpoint_name(std::string_view name) noexcept {
  return name.empty() || name.size() > max_checkpoint_name_bytes ? ErrorCode::invalid_checkpoint
                                                                 : ErrorCode::ok;
}

/// ok, or invalid_checkpoint when the sequence number is not 1 to
/// max_sequence_number_digits digits without a leading zero (empty is allowed
/// with shard_end only).
[[nodiscard]] constexpr ErrorCode check_checkpoint(const Checkpoint& checkpoint) noexcept {
  const std::string_view digits = checkpoint.sequence_number;
  if (digits.empty()) return checkpoint.shard_end ? ErrorCode::ok : ErrorCode::invalid_checkpoint;
  if (digits.size() > max_sequence_number_digits || (digits.size() > 1 && digits[0] == '0'))
    return ErrorCode::invalid_checkpoint;
  for (const char c : digits)
    if (c < '0' || c > '9') return ErrorCode::invalid_checkpoint;
  return ErrorCode::ok;
}

/// A stream's and a shard's name: load_checkpoint's checks.
[[nodiscard]] constexpr ErrorCode check_checkpoint_names(std::string_view stream,
                                                         std::string_view shard) noexcept {
  return check_checkpoint_name(stream) == ErrorCode::ok ? check_checkpoint_name(shard)
                                                        : ErrorCode::invalid_checkpoint;
}

/// Both names, then the checkpoint: save_checkpoint's checks.
[[nodiscard]] constexpr ErrorCode check_checkpoint(std::string_view stream, std::string_view shard,
                                                   const Checkpoint& checkpoint) noexcept {
  return check_checkpoint_names(stream, shard) == ErrorCode::ok ? check_checkpoint(checkpoint)
                                                                : ErrorCode::invalid_checkpoint;
}

/// Keeps, per stream and shard, the checkpoint up to which a consumer (the
/// daemon) has durably handled the records, beside the parts. Separate from
/// StateStore, so a StateStore without checkpoints still compiles; the
/// library's stores are both. Thread-safe; durable stores share checkpoints
/// between processes and keep them across restarts, as they keep parts.
///
///   load_checkpoint   the shard's checkpoint; nullopt when none was saved
///   save_checkpoint   advances the shard's checkpoint to `checkpoint`
///   list_checkpoints  every shard of the stream with a checkpoint, sorted by
///                     shard name (bytewise), so that a restart knows at once
///                     which shards it resumes and which closed shards ended
///
/// Rules every store keeps:
/// - Never backwards. The stored checkpoint only moves forward in the order of
///   Checkpoint's <=>. A save at or behind the stored checkpoint is ignored:
///   it returns ok and changes nothing. So ok always means "the stored
///   checkpoint is now at or past `checkpoint`" (durably, in a durable store),
///   a save is idempotent, and savers racing end at the greatest, whatever the
///   order (a stale process that finishes late cannot rewind it). load tells
///   where it stands when that matters.
/// - shard_end is final: a shard_end checkpoint is past every other, so once a
///   shard has ended it stays ended (only a shard_end checkpoint further on
///   replaces it).
/// - A malformed stream, shard (check_checkpoint_name) or checkpoint
///   (check_checkpoint) is invalid_checkpoint, and nothing is stored.
/// - A store that cannot be reached is store_unavailable; a full one store_full.
///   A stored checkpoint that cannot be read back is store_unavailable for
///   load and list (never guessed), and the next save replaces it.
/// - Checkpoints never expire: expire() leaves them.
template <typename S>
concept CheckpointStore = requires(S& store, std::string_view stream, std::string_view shard,
                                   const Checkpoint& checkpoint) {
  { store.load_checkpoint(stream, shard) } -> std::same_as<Result<std::optional<Checkpoint>>>;
  { store.save_checkpoint(stream, shard, checkpoint) } -> std::same_as<ErrorCode>;
  { store.list_checkpoints(stream) } -> std::same_as<Result<std::vector<ShardCheckpoint>>>;
};

// ---------------------------------------------------------------------------
// Uploader

enum class UploadStatus : std::uint8_t { success, retryable, permanent };

/// One PUT of one body to one URL. The uploader fills in the result fields.
struct UploadJob {
  std::string_view url;
  BodyReader* body = nullptr;

  UploadStatus status = UploadStatus::retryable;
  long http_status = 0;   // the last HTTP status seen, 0 when none
  unsigned attempts = 0;  // how many requests were made
  // upload_failed (retryable), upload_refused (permanent), or for a URL refused
  // before connecting endpoint_invalid, endpoint_scheme or endpoint_not_allowed.
  ErrorCode error = ErrorCode::ok;
  std::string message;  // why, for logs: "HTTP 503", "connection refused", ...
  // From the start of upload() to this job's final status, retries and their
  // waits included; 0 when it was refused before any request.
  std::chrono::nanoseconds elapsed{0};
};

/// Sends bodies with HTTP PUT and no Content-Type header. upload() runs every
/// job of the span, concurrently where it can, retrying transient failures
/// within its own bounds, and returns when each job has its final status.
template <typename U>
concept Uploader = requires(U& uploader, std::span<UploadJob> jobs) {
  { uploader.upload(jobs) } -> std::same_as<void>;
};

}  // namespace filebuilder
