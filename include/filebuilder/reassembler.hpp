// filebuilder: Reassembler<StateStore, Uploader>, the core.
//
// Feed it records with add(); each is parsed, checked, decoded and stored at
// once. A record that completes a file claims it; flush() uploads every file
// claimed since the last flush (concurrently, as the uploader can) and returns
// the outcome of every record added since the last flush, in order.
//
//   filebuilder::MemoryStore store;
//   filebuilder::CurlUploader uploader;
//   filebuilder::Reassembler reassembler(store, uploader);
//   for (std::string_view record : batch) reassembler.add(record);
//   for (const filebuilder::RecordOutcome& o : reassembler.flush()) { ... }
//
// One thread at a time per Reassembler; the store may be shared.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/chunk.hpp"
#include "filebuilder/concepts.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/stats.hpp"
#include "filebuilder/upload/policy.hpp"

namespace filebuilder {

/// Every record ends in exactly one of these (CONTRACT.md, "Outcomes of a record").
enum class Outcome : std::uint8_t {
  accepted,   // a new part stored
  duplicate,  // already had it, or its file is finished
  uploaded,   // it completed a file and the PUT succeeded
  failed,     // transient: retry the record later (batchItemFailures)
  rejected,   // can never succeed: never retry
};

[[nodiscard]] constexpr std::string_view outcome_name(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::accepted: return "accepted";
    case Outcome::duplicate: return "duplicate";
    case Outcome::uploaded: return "uploaded";
    case Outcome::failed: return "failed";
    case Outcome::rejected: return "rejected";
  }
  return "unknown";
}

// (Reassembler::start_record resets each field of a reused outcome: a new
// field needs its line there.)
struct RecordOutcome {
  Outcome outcome = Outcome::accepted;
  ErrorCode error = ErrorCode::ok;  // set for failed and rejected
  std::string message;              // more detail for logs ("HTTP 503 after 4 attempts")
  std::string endpoint;             // the file it completed (uploaded, or a failed/refused upload)
  std::uint64_t bytes = 0;          // that file's size
  std::string sha256;               // lowercase hex, when an on_upload_done hook fills it in

  [[nodiscard]] bool ok() const noexcept {
    return outcome != Outcome::failed && outcome != Outcome::rejected;
  }
};

/// Chunk records parsed, checked and decoded ahead of being added
/// (Reassembler::stage(), then add_staged()). Reuse one for many batches: it
/// keeps its room.
struct StagedChunks {
  struct Entry {
    ErrorCode error;  // ok, or why add() would reject the record
    std::uint64_t partition;
    std::uint64_t partition_count;
    std::size_t endpoint_offset, endpoint_size;  // in bytes (empty when rejected)
    std::size_t content_offset, content_size;    // the decoded part, in bytes
  };
  std::vector<Entry> entries;
  std::string bytes;     // the decoded parts and the endpoints, back to back
  std::size_t used = 0;  // of bytes
  // The endpoint appended last, and which check of which Reassembler it matched.
  std::size_t endpoint_offset = 0, endpoint_size = 0;
  const void* endpoint_owner = nullptr;
  std::uint64_t endpoint_generation = 0;

  void clear() noexcept {
    entries.clear();
    used = 0;
    endpoint_owner = nullptr;
  }
  [[nodiscard]] std::string_view view(std::size_t offset, std::size_t size) const noexcept {
    return std::string_view(bytes.data() + offset, size);
  }
  void append_endpoint(std::string_view endpoint) {
    if (bytes.size() < used + endpoint.size())
      bytes.resize(std::max(used + endpoint.size(), bytes.size() * 2));
    std::copy(endpoint.begin(), endpoint.end(), bytes.begin() + static_cast<std::ptrdiff_t>(used));
    endpoint_offset = used;
    endpoint_size = endpoint.size();
    used += endpoint.size();
  }
};

struct ReassemblerOptions {
  Limits limits{};
  /// Checked on every record before anything is stored (the uploader checks
  /// the connected address again).
  EndpointPolicy policy{};
  /// How often add() lets the store drop abandoned files.
  std::chrono::seconds expire_interval{60};
  /// Pending uploads (complete files whose upload failed) retried by each
  /// flush(), at most this many, each due again after pending_retry_base x
  /// 2^(failures - 1), at most pending_retry_max. 0 turns retries off.
  std::size_t pending_per_flush = 4;
  std::chrono::seconds pending_retry_base{10};
  std::chrono::seconds pending_retry_max{900};
  /// Called after an upload ended in success or permanent refusal, before the
  /// store drops the parts: the last moment the body can be read. Used for
  /// Firehose audit digests and dead letters. record_index is
  /// Reassembler::no_record for a pending upload retried by flush().
  std::function<void(std::size_t record_index, RecordOutcome&, BodyReader&)> on_upload_done;
  /// Plain records and events skip simdjson (detail/plain_json.hpp). The
  /// answers are the same either way; off is for tests and benchmarks.
  bool fast_path = true;
};

template <StateStore Store, Uploader Up>
class Reassembler {
 public:
  Reassembler(Store& store, Up& uploader, ReassemblerOptions options = {})
      : store_(store), uploader_(uploader), options_(std::move(options)) {}

  /// Processes one record; returns its index in the batch. The outcome is
  /// final, except for a record that completed a file: flush() decides it.
  std::size_t add(std::string_view record) {
    const std::size_t index = start_record();
    Chunk chunk;
    ErrorCode error = ErrorCode::ok;
    // The fast path takes a plain record (its content decoded on the way):
    // then every check below gives what the strict path would. Anything else
    // goes the strict way, which names the problem.
    PlainHint hint = plain_hint();
    if (options_.fast_path && ChunkParser::parse_plain(record, options_.limits.max_part_bytes,
                                                       chunk, part_, part_size_, &hint)) {
      last_content_length_ = chunk.content.size();
      error = check_limits(chunk, options_.limits);
      if (error == ErrorCode::ok)
        error = hint.same_endpoint ? checked_verdict_ : check_endpoint(chunk.put_endpoint);
    } else {
      error = parser_.parse(record, chunk);
      if (error == ErrorCode::ok) error = check_chunk(chunk);
      if (error == ErrorCode::ok) error = decode_content(chunk.content);
    }
    store_chunk(index, error, chunk, std::string_view(part_.data(), part_size_));
    return index;
  }

  /// Parses, checks and decodes `record` as add() would, but stores nothing:
  /// true when it is a plain chunk (ChunkParser::parse_plain), then appended
  /// to `staged` with the verdict add() would reach (the limits, then the
  /// endpoint policy). add_staged() later gives it exactly the outcome
  /// add(record) would. False when the record is anything else: nothing is
  /// appended, and add() is the one to ask (it names the problem). For
  /// adapters that must read a whole event before adding any record of it:
  /// they can parse each record while its bytes are still in the cache.
  bool stage(std::string_view record, StagedChunks& staged) {
    if (!options_.fast_path) return false;
    PlainHint hint = plain_hint();
    Chunk chunk;
    std::size_t content_size = 0;
    const std::size_t at = staged.used;
    if (!ChunkParser::parse_plain(record, options_.limits.max_part_bytes, chunk, staged.bytes,
                                  content_size, &hint, at))
      return false;
    last_content_length_ = chunk.content.size();
    // Filled in place, field by field: an Entry built on the stack and then
    // copied is read back with wide loads that its narrow stores cannot
    // forward to (a stall of a dozen cycles per record, measured).
    StagedChunks::Entry& entry = staged.entries.emplace_back();
    entry.error = check_limits(chunk, options_.limits);
    entry.partition = chunk.partition;
    entry.partition_count = chunk.partition_count;
    entry.content_offset = at;
    entry.content_size = content_size;
    staged.used += content_size;
    if (entry.error == ErrorCode::ok) {
      const bool same = hint.same_endpoint;
      entry.error = same ? checked_verdict_ : check_endpoint(chunk.put_endpoint);
      // The record's bytes go away (the adapter reuses them): its endpoint is
      // kept, once for a run of records of the same file.
      if (!same || staged.endpoint_owner != this ||
          staged.endpoint_generation != checked_generation_) {
        staged.append_endpoint(chunk.put_endpoint);
        staged.endpoint_owner = this;
        staged.endpoint_generation = checked_generation_;
      }
      entry.endpoint_offset = staged.endpoint_offset;
      entry.endpoint_size = staged.endpoint_size;
    }
    return true;
  }

  /// add() for staged.entries[k] (see stage()); returns its index in the batch.
  std::size_t add_staged(const StagedChunks& staged, std::size_t k) {
    const std::size_t index = start_record();
    const StagedChunks::Entry& entry = staged.entries[k];
    Chunk chunk;
    chunk.put_endpoint = staged.view(entry.endpoint_offset, entry.endpoint_size);
    chunk.partition = entry.partition;
    chunk.partition_count = entry.partition_count;
    store_chunk(index, entry.error, chunk, staged.view(entry.content_offset, entry.content_size));
    return index;
  }

  /// Records an outcome for a record the adapter could not turn into bytes
  /// (e.g. bad_record_data), so that indices stay aligned with the batch.
  std::size_t add_rejected(ErrorCode error, std::string_view message = {}) {
    const std::size_t index = start_record();
    reject(outcomes_[index], error);
    if (!message.empty()) outcomes_[index].message = message;
    return index;
  }

  /// Records a transient failure for a record the adapter did not process
  /// (e.g. deadline), so that indices stay aligned and the source retries it.
  std::size_t add_failed(ErrorCode error, std::string_view message = {}) {
    const std::size_t index = start_record();
    fail(outcomes_[index], error, message);
    return index;
  }

  static constexpr std::size_t no_record = static_cast<std::size_t>(-1);

  /// Uploads the files completed since the last flush, and retries a bounded
  /// number of due pending uploads (files whose upload failed before: so a
  /// file is uploaded even if the stream never redelivers its completing
  /// record). Returns the outcome of every record added since the last flush;
  /// the span stays valid until the next add().
  std::span<const RecordOutcome> flush() {
    if (flushed_) {  // a flush with no record: still a call that retries
      outcome_count_ = 0;
      flushed_ = false;
    }
    retried_.clear();
    claim_due_pending();
    if (!uploads_.empty()) run_uploads();
    flushed_ = true;
    tally_records();
    return batch_outcomes();
  }

  /// The pending uploads retried by the last flush(), one outcome each
  /// (uploaded, failed, or rejected for a permanent refusal); no record
  /// stands behind them.
  [[nodiscard]] std::span<const RecordOutcome> retried() const noexcept { return retried_; }

  /// How many abandoned files the store's expiry dropped since the last call
  /// (expiry runs from add(), at most once per expire_interval); resets it.
  [[nodiscard]] std::size_t take_expired() noexcept { return std::exchange(expired_, 0); }

  /// add() + flush() for one record.
  RecordOutcome process(std::string_view record) {
    const std::size_t index = add(record);
    return flush()[index];
  }

  /// Replaces ReassemblerOptions::on_upload_done (adapters install theirs).
  void set_on_upload_done(decltype(ReassemblerOptions::on_upload_done) hook) {
    options_.on_upload_done = std::move(hook);
  }

  [[nodiscard]] const ReassemblerOptions& options() const noexcept { return options_; }
  /// What this Reassembler did so far (records counted at flush()). Unlike the
  /// rest of the class, safe to read from another thread while it runs.
  [[nodiscard]] const ReassemblerStats& stats() const noexcept { return stats_; }
  [[nodiscard]] Store& store() noexcept { return store_; }

 private:
  struct QueuedUpload {
    std::size_t index;  // into outcomes_, or into retried_ when retry
    bool retry;
    unsigned failures;  // earlier failures (retries only)
    std::unique_ptr<BodyReader> body;
  };

  std::size_t start_record() {
    const bool batch_start = flushed_ || outcome_count_ == 0;
    if (flushed_) {
      outcome_count_ = 0;
      flushed_ = false;
    }
    // The clock is read once a batch, and every 256 records of a long one:
    // expiry works in minutes, and reading the clock costs as much as
    // handling a small record.
    if (batch_start || ++records_since_clock_ % 256 == 0) maybe_expire();
    // The outcomes of earlier batches are reused (their strings keep their
    // room): constructing one costs more than a small record's parsing.
    if (outcome_count_ == outcomes_.size()) {
      outcomes_.emplace_back();
    } else {
      RecordOutcome& outcome = outcomes_[outcome_count_];
      outcome.outcome = Outcome::accepted;
      outcome.error = ErrorCode::ok;
      outcome.message.clear();
      outcome.endpoint.clear();
      outcome.bytes = 0;
      outcome.sha256.clear();
    }
    return outcome_count_++;
  }

  [[nodiscard]] std::span<RecordOutcome> batch_outcomes() noexcept {
    return std::span<RecordOutcome>(outcomes_.data(), outcome_count_);
  }

  void maybe_expire() {
    const Clock::time_point now = Clock::now();
    if (now - last_expire_ < options_.expire_interval) return;
    last_expire_ = now;
    expired_ += store_.expire(now);
  }

  // What parse_plain() may know from the records before.
  [[nodiscard]] PlainHint plain_hint() const noexcept {
    PlainHint hint{checked_plain_ ? std::string_view(checked_endpoint_) : std::string_view()};
    hint.content_length = last_content_length_;
    return hint;
  }

  // The limits and the endpoint policy, in the order they are reported.
  ErrorCode check_chunk(const Chunk& chunk) {
    const ErrorCode error = check_limits(chunk, options_.limits);
    return error != ErrorCode::ok ? error : check_endpoint(chunk.put_endpoint);
  }

  // The policy never changes, and a file's chunks tend to come one after
  // another: the verdict on the last endpoint is kept (parsing a presigned
  // URL costs more than decoding a chunk of 1 KB).
  ErrorCode check_endpoint(std::string_view endpoint) {
    if (!checked_endpoint_valid_ || endpoint != checked_endpoint_) {
      checked_verdict_ = options_.policy.check(endpoint);
      checked_endpoint_.assign(endpoint);
      ++checked_generation_;
      checked_endpoint_valid_ = true;
      checked_plain_ = std::none_of(endpoint.begin(), endpoint.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte == '"' || byte == '\\' || byte < 0x20 || byte >= 0x80;
      });
    }
    return checked_verdict_;
  }

  ErrorCode decode_content(std::string_view content) {
    const std::size_t capacity = base64::max_decoded_size(content.size());
    if (part_.size() < capacity) part_.resize(std::max(capacity, part_.size() * 2));
    const base64::DecodeResult result = base64::decode(content, part_.data());
    if (result.error != ErrorCode::ok) {
      decode_position_ = result.position;
      return result.error;
    }
    part_size_ = result.written;
    return ErrorCode::ok;
  }

  // The end of add() and add_staged(): a record parsed (`error` says how that
  // went) and its part decoded.
  void store_chunk(std::size_t index, ErrorCode error, const Chunk& chunk, std::string_view part) {
    RecordOutcome& outcome = outcomes_[index];
    if (error != ErrorCode::ok) {
      reject(outcome, error);
      return;
    }
    const PutOutcome put =
        store_.put_part(PartInfo{chunk.put_endpoint, chunk.partition, chunk.partition_count,
                                 options_.limits.max_file_bytes},
                        part);
    if (put.error != ErrorCode::ok) {
      // A full or unreachable store is transient: the record is retried, never dropped.
      if (put.error == ErrorCode::store_full || put.error == ErrorCode::store_unavailable)
        fail(outcome, put.error, {});
      else
        reject(outcome, put.error);
      return;
    }
    bytes_decoded_ += part.size();
    outcome.outcome = put.status == PutStatus::stored ? Outcome::accepted : Outcome::duplicate;
    if (put.complete) claim(index, chunk.put_endpoint);
  }

  void reject(RecordOutcome& outcome, ErrorCode error) {
    outcome.outcome = Outcome::rejected;
    outcome.error = error;
    outcome.message = std::string(error_message(error));
    if (error == ErrorCode::bad_base64)
      outcome.message += " (at content offset " + std::to_string(decode_position_) + ")";
  }

  static void fail(RecordOutcome& outcome, ErrorCode error, std::string_view detail) {
    outcome.outcome = Outcome::failed;
    outcome.error = error;
    outcome.message = detail.empty() ? std::string(error_message(error)) : std::string(detail);
  }

  // The record completed (or re-completed) a file: take the right to upload it.
  void claim(std::size_t index, std::string_view endpoint) {
    RecordOutcome& outcome = outcomes_[index];
    switch (store_.claim(endpoint)) {
      case ClaimStatus::claimed: break;
      case ClaimStatus::busy:        // someone (maybe this batch) is uploading it
      case ClaimStatus::finished:    // someone uploaded it meanwhile
      case ClaimStatus::incomplete:  // expired meanwhile
        return;
      case ClaimStatus::unavailable: fail(outcome, ErrorCode::store_unavailable, {}); return;
    }
    outcome.endpoint = std::string(endpoint);
    queue_upload(outcome, index, false, 0);
  }

  void claim_due_pending() {
    if (options_.pending_per_flush == 0) return;
    for (PendingFile& file : store_.claim_pending(options_.pending_per_flush, Clock::now())) {
      RecordOutcome& outcome = retried_.emplace_back();
      outcome.endpoint = std::move(file.endpoint);
      queue_upload(outcome, retried_.size() - 1, true, file.failures);
    }
  }

  void queue_upload(RecordOutcome& outcome, std::size_t index, bool retry, unsigned failures) {
    Result<std::unique_ptr<BodyReader>> body = store_.open_body(outcome.endpoint);
    if (!body.ok()) {
      (void)store_.release(outcome.endpoint, retry_time(failures));
      fail(outcome, body.error(), {});
      return;
    }
    outcome.bytes = body.value_unsafe()->size();
    uploads_.push_back(QueuedUpload{index, retry, failures, std::move(body.value_unsafe())});
  }

  // When a file that has failed `failures` times before fails again is due.
  Clock::time_point retry_time(unsigned failures) const {
    auto delay = std::chrono::duration_cast<Clock::duration>(options_.pending_retry_base);
    const auto cap = std::chrono::duration_cast<Clock::duration>(options_.pending_retry_max);
    for (unsigned i = 0; i < failures && delay < cap; ++i) delay *= 2;
    return Clock::now() + std::min(delay, cap);
  }

  void run_uploads() {
    jobs_.resize(uploads_.size());
    for (std::size_t i = 0; i < uploads_.size(); ++i) {
      jobs_[i] = UploadJob{};
      jobs_[i].url = outcome_of(uploads_[i]).endpoint;
      jobs_[i].body = uploads_[i].body.get();
    }
    uploader_.upload(std::span<UploadJob>(jobs_));
    for (std::size_t i = 0; i < uploads_.size(); ++i) {
      const UploadJob& job = jobs_[i];
      if (job.attempts > 0) stats_.observe_upload(job.elapsed);
      ReassemblerStats::add(job.status == UploadStatus::success     ? stats_.files_uploaded
                            : job.status == UploadStatus::retryable ? stats_.upload_failures
                                                                    : stats_.upload_refusals,
                            1);
      QueuedUpload& upload = uploads_[i];
      RecordOutcome& outcome = outcome_of(upload);
      const std::size_t hook_index = upload.retry ? no_record : upload.index;
      switch (job.status) {
        case UploadStatus::success:
          outcome.outcome = Outcome::uploaded;
          if (options_.on_upload_done) options_.on_upload_done(hook_index, outcome, *upload.body);
          if (const ErrorCode error = store_.finish(outcome.endpoint); error != ErrorCode::ok)
            fail(outcome, error, "uploaded, but the store could not record it");
          break;
        case UploadStatus::retryable:
          // Keep every part: the record is reported failed (and redelivered),
          // and the file is pending: a later flush() retries it too.
          (void)store_.release(outcome.endpoint, retry_time(upload.failures));
          fail(outcome, ErrorCode::upload_failed, job.message);
          break;
        case UploadStatus::permanent:
          // Retrying cannot help: drop the parts (a dead letter keeps the body).
          reject(outcome, ErrorCode::upload_refused);
          if (!job.message.empty()) outcome.message += ": " + job.message;
          if (options_.on_upload_done) options_.on_upload_done(hook_index, outcome, *upload.body);
          (void)store_.finish(outcome.endpoint);
          break;
      }
    }
    uploads_.clear();
    jobs_.clear();
  }

  // Adds the batch's record outcomes to stats_: a handful of atomic adds a
  // batch rather than one per record.
  void tally_records() {
    std::array<std::uint64_t, 5> by_outcome{};
    for (const RecordOutcome& outcome : batch_outcomes()) {
      ++by_outcome[static_cast<std::size_t>(outcome.outcome)];
      if (outcome.outcome == Outcome::rejected)
        ReassemblerStats::add(stats_.records_rejected[static_cast<std::size_t>(outcome.error)], 1);
    }
    ReassemblerStats::add(stats_.records_accepted,
                          by_outcome[static_cast<std::size_t>(Outcome::accepted)]);
    ReassemblerStats::add(stats_.records_duplicate,
                          by_outcome[static_cast<std::size_t>(Outcome::duplicate)]);
    ReassemblerStats::add(stats_.records_uploaded,
                          by_outcome[static_cast<std::size_t>(Outcome::uploaded)]);
    ReassemblerStats::add(stats_.records_failed,
                          by_outcome[static_cast<std::size_t>(Outcome::failed)]);
    ReassemblerStats::add(stats_.bytes_decoded, std::exchange(bytes_decoded_, 0));
  }

  RecordOutcome& outcome_of(const QueuedUpload& upload) {
    return upload.retry ? retried_[upload.index] : outcomes_[upload.index];
  }

  Store& store_;
  Up& uploader_;
  ReassemblerOptions options_;
  ChunkParser parser_;
  std::string checked_endpoint_;  // the last endpoint checked, and the verdict
  ErrorCode checked_verdict_ = ErrorCode::ok;
  bool checked_endpoint_valid_ = false;
  std::uint64_t checked_generation_ = 0;  // bumped when checked_endpoint_ changes (stage())
  bool checked_plain_ = false;            // checked_endpoint_ is a plain string body (PlainHint)
  std::size_t last_content_length_ = 0;   // of the last plain record (PlainHint)
  std::string part_;                      // decoded content of the current record (reused)
  std::size_t part_size_ = 0;
  std::size_t decode_position_ = 0;
  std::vector<RecordOutcome> outcomes_;  // the first outcome_count_ are this batch's
  std::size_t outcome_count_ = 0;
  std::vector<RecordOutcome> retried_;  // pending uploads retried by the last flush
  std::vector<QueuedUpload> uploads_;
  std::vector<UploadJob> jobs_;
  bool flushed_ = false;
  Clock::time_point last_expire_ = Clock::now();
  std::size_t records_since_clock_ = 0;
  std::size_t expired_ = 0;
  std::uint64_t bytes_decoded_ = 0;  // since the last flush
  ReassemblerStats stats_;
};

}  // namespace filebuilder
