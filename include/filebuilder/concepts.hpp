// filebuilder: the two extension points of the core, StateStore and Uploader.
//
// A backend author reads only this file. Reassembler<S, U> drives them:
//   put_part -> (complete?) claim -> open_body -> Uploader::upload -> finish | release
// See docs/design.md for the guarantees each step must keep when several
// consumers share one store.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
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
};

/// Sends bodies with HTTP PUT and no Content-Type header. upload() runs every
/// job of the span, concurrently where it can, retrying transient failures
/// within its own bounds, and returns when each job has its final status.
template <typename U>
concept Uploader = requires(U& uploader, std::span<UploadJob> jobs) {
  { uploader.upload(jobs) } -> std::same_as<void>;
};

}  // namespace filebuilder
