// filebuilder: EventHandler, the wiring every adapter shares (CLI, Lambda, daemon).
//
// It takes one JSON document at a time: a Lambda Kinesis event, a Firehose
// transformation event, or a bare chunk record; feeds the records to a
// Reassembler; logs every failed or rejected record with its id and error
// code; keeps dead letters; and writes the source's reply. Needs
// filebuilder::crypto (SHA-256 of uploaded files for the audit trail).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/dead_letter.hpp"
#include "filebuilder/digest.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/firehose.hpp"
#include "filebuilder/source/kinesis.hpp"
#include "filebuilder/source/kpl.hpp"
#include "filebuilder/upload/policy.hpp"

namespace filebuilder::source {

enum class InputFormat : std::uint8_t { detect, lambda, firehose, ndjson };

enum class DocumentKind : std::uint8_t { lambda, firehose, chunk, bad_event };

/// What a bare chunk record is called in logs and summaries: its 1-based line
/// number, or "file:line" when several files are read.
struct LineId {
  std::string file;  // empty: the number alone
  std::uint64_t line = 0;

  [[nodiscard]] std::string text() const {
    return file.empty() ? std::to_string(line) : file + ":" + std::to_string(line);
  }
  /// The "record" field of a log line: a number, or a string when a file is named.
  [[nodiscard]] LogField log_field(const std::string& text) const {
    return file.empty() ? LogField("record", line) : LogField("record", text);
  }
  /// As a JSON value: a number, or a string when a file is named.
  void append_json(std::string& out) const {
    if (file.empty())
      out += std::to_string(line);
    else
      filebuilder::detail::append_json_string(out, text());
  }
};

/// Counts of bare chunk records, for the NDJSON summary.
struct ChunkSummary {
  std::uint64_t records = 0;
  std::uint64_t uploaded = 0;
  std::uint64_t duplicates = 0;
  std::vector<LineId> rejected;
  std::vector<LineId> failed;

  /// {"records":N,"uploaded":U,"duplicates":D,"rejected":[...],"failed":[...]}
  [[nodiscard]] std::string json() const {
    std::string out = "{\"records\":" + std::to_string(records) +
                      ",\"uploaded\":" + std::to_string(uploaded) +
                      ",\"duplicates\":" + std::to_string(duplicates) + ",\"rejected\":[";
    for (std::size_t i = 0; i < rejected.size(); ++i) {
      if (i) out += ',';
      rejected[i].append_json(out);
    }
    out += "],\"failed\":[";
    for (std::size_t i = 0; i < failed.size(); ++i) {
      if (i) out += ',';
      failed[i].append_json(out);
    }
    out += "]}";
    return out;
  }
};

template <typename R>  // a Reassembler<S, U>
class EventHandler {
 public:
  EventHandler(R& reassembler, Logger& logger) : reassembler_(reassembler), logger_(logger) {
    reassembler_.set_on_upload_done(
        [this](std::size_t index, RecordOutcome& outcome, BodyReader& body) {
          on_upload_done(index, outcome, body);
        });
  }
  EventHandler(const EventHandler&) = delete;
  EventHandler& operator=(const EventHandler&) = delete;

  void set_dead_letter(DeadLetterBox* box) noexcept { dead_letter_ = box; }

  /// Consulted before each record of an event: once it returns true, that
  /// record and the rest of the event are not processed but reported failed
  /// (error `deadline`): listed in batchItemFailures, or ProcessingFailed
  /// with their original data, so the source delivers them again.
  void set_deadline(std::function<bool()> stop_now) { stop_now_ = std::move(stop_now); }

  /// Handles one document (an event, or a bare chunk unless the format is
  /// lambda or firehose). Appends an event's reply to `reply`. A bare chunk is
  /// added now and uploaded at flush_chunks() (or before the next event).
  DocumentKind handle(simdjson::padded_string_view document, InputFormat format, const LineId& line,
                      std::string& reply) {
    const std::string_view text(document.data(), document.size());
    // The fast path reads a plain event in one pass and is kept only when
    // every record's data decodes (which proves the data plain too); then it
    // has found exactly what simdjson would. Otherwise simdjson decides.
    // Each record of it that is a plain chunk is parsed and decoded as soon as
    // its data is (Reassembler::stage()), and added once the event is known
    // to be plain (the contract adds no record of a broken event).
    std::optional<DocumentKind> plain;
    staged_.clear();
    if (format != InputFormat::ndjson && reassembler_.options().fast_path) {
      plain = plain_kind(read_plain_event(text, records_, decoded_,
                                          [this](std::string_view bytes) {
                                            return reassembler_.stage(bytes, staged_);
                                          }),
                         format);
    }
    const DocumentKind kind = plain                             ? *plain
                              : format == InputFormat::lambda   ? DocumentKind::lambda
                              : format == InputFormat::firehose ? DocumentKind::firehose
                              : format == InputFormat::ndjson   ? DocumentKind::chunk
                                                                : detect(document);
    if (kind == DocumentKind::chunk) {
      add_chunk(text, line);
      return kind;
    }
    flush_chunks();
    const ErrorCode envelope = plain ? ErrorCode::ok
                               : kind == DocumentKind::lambda
                                   ? read_kinesis_event(event_parser_, document, records_)
                                   : read_firehose_event(event_parser_, document, records_);
    if (envelope == ErrorCode::ok && !plain) decode_records(records_, decoded_);
    if (envelope != ErrorCode::ok) {
      any_problem_ = true;
      const std::string id = line.text();
      logger_.error("not a recognised event",
                    {line.log_field(id), {"error", error_code_name(envelope)}});
      if (dead_letter_)
        dead_letter_->write({id,
                             envelope,
                             error_message(envelope),
                             "event",
                             std::string_view(document.data(), document.size()),
                             {}});
      return DocumentKind::bad_event;
    }
    source_ = kind == DocumentKind::lambda ? "lambda" : "firehose";
    add_each_record([this](std::size_t i) { add_envelope_record(i); });
    const std::span<const RecordOutcome> outcomes = flush_and_report();
    if (kind == DocumentKind::lambda) {
      // User records of one aggregate share their parent's id: listed once.
      write_kinesis_reply(user_records_, outcomes, reply);
    } else {
      // Firehose answers each recordId once: the worst outcome of its user records.
      write_firehose_reply(records_, merge_by_record(outcomes), reply);
    }
    return kind;
  }

  /// One record that a stream adapter already holds as bytes (the daemon's
  /// GetRecords, the KCL's processRecords).
  struct StreamRecord {
    std::string_view id;    // for logs and dead letters: "shardId-000000000000/4959..."
    std::string_view data;  // the record's bytes, decoded (a KPL aggregate is deaggregated)
    /// ok, or why the source could not give the bytes (bad_record_data: its
    /// base64 was broken): the record is rejected with that code.
    ErrorCode error = ErrorCode::ok;
  };

  /// Handles a batch of stream records as one event: deaggregation, the
  /// Reassembler, logs and dead letters, as for events. Returns one outcome
  /// per record, the worst of its user records (failed, then rejected, then
  /// the rest), valid until the next call. `source` names the adapter in
  /// dead letters.
  std::span<const RecordOutcome> handle_records(std::span<const StreamRecord> records,
                                                std::string_view source) {
    flush_chunks();
    source_ = source;
    raw_records_ = true;
    records_.clear();
    for (const StreamRecord& record : records) records_.push_back({record.id, record.data});
    add_each_record([&](std::size_t i) {
      if (records[i].error != ErrorCode::ok) {
        reassembler_.add_rejected(records[i].error, "the source could not decode the record");
        add_user(i, 0, false, false);
      } else {
        add_record_bytes(i, records_[i].data);
      }
    });
    const std::span<const RecordOutcome> merged = merge_by_record(flush_and_report());
    raw_records_ = false;
    return merged;
  }

  /// Uploads the files that pending bare chunks completed (and retries due
  /// pending uploads), then reports them. Returns their outcomes, in order
  /// (valid until the next call); empty when none was pending.
  std::span<const RecordOutcome> flush_chunks() {
    if (chunk_ids_.empty()) return {};
    source_ = "ndjson";
    const std::span<const RecordOutcome> outcomes = reassembler_.flush();
    report_retried();
    for (std::size_t i = 0; i < chunk_ids_.size(); ++i) {
      const RecordOutcome& outcome = outcomes[i];
      const std::string id = chunk_ids_[i].text();
      report(chunk_ids_[i].log_field(id), id, outcome, {}, chunk_lines_[i]);
      ++summary_.records;
      switch (outcome.outcome) {
        case Outcome::accepted: break;
        case Outcome::duplicate: ++summary_.duplicates; break;
        case Outcome::uploaded: ++summary_.uploaded; break;
        case Outcome::failed: summary_.failed.push_back(chunk_ids_[i]); break;
        case Outcome::rejected: summary_.rejected.push_back(chunk_ids_[i]); break;
      }
    }
    chunk_ids_.clear();
    chunk_lines_.clear();
    return outcomes;
  }

  [[nodiscard]] std::size_t pending_chunks() const noexcept { return chunk_ids_.size(); }
  [[nodiscard]] const ChunkSummary& chunk_summary() const noexcept { return summary_; }
  [[nodiscard]] bool saw_chunks() const noexcept {
    return summary_.records > 0 || !chunk_ids_.empty();
  }
  /// Whether any record (or document) was rejected or failed so far.
  [[nodiscard]] bool any_problem() const noexcept { return any_problem_; }
  /// Whether records are failed still: a failed upload whose file was not
  /// uploaded (or refused) later in this run, or a record that failed before
  /// its file was known (the store was unavailable). What a long-running
  /// adapter's exit status reports, where any_problem() is the CLI's.
  [[nodiscard]] bool any_still_failed() const noexcept {
    return !failed_endpoints_.empty() || failed_without_file_ > 0;
  }

 private:
  DocumentKind detect(simdjson::padded_string_view document) {
    using namespace simdjson;
    ondemand::document doc;
    ondemand::object root;
    if (event_parser_.iterate(document).get(doc) != SUCCESS ||
        doc.get_object().get(root) != SUCCESS)
      return DocumentKind::chunk;  // the chunk parser names the error
    for (auto field : root) {
      std::string_view key;
      if (field.unescaped_key().get(key) != SUCCESS) return DocumentKind::chunk;
      if (key == "Records") return DocumentKind::lambda;
      if (key == "records") return DocumentKind::firehose;
    }
    return DocumentKind::chunk;
  }

  // What a plain event is, if the format allows it.
  static std::optional<DocumentKind> plain_kind(PlainEvent event, InputFormat format) noexcept {
    DocumentKind kind = DocumentKind::chunk;
    switch (event) {
      case PlainEvent::not_plain: return std::nullopt;
      case PlainEvent::kinesis: kind = DocumentKind::lambda; break;
      case PlainEvent::firehose: kind = DocumentKind::firehose; break;
      case PlainEvent::other: kind = DocumentKind::chunk; break;
    }
    if (format == InputFormat::lambda && kind != DocumentKind::lambda) return std::nullopt;
    if (format == InputFormat::firehose && kind != DocumentKind::firehose) return std::nullopt;
    return kind;
  }

  void add_chunk(std::string_view bytes, const LineId& line) {
    reassembler_.add(bytes);
    chunk_ids_.push_back(line);
    chunk_lines_.emplace_back(dead_letter_ ? bytes : std::string_view());
  }

  static int severity(Outcome outcome) noexcept {
    switch (outcome) {
      case Outcome::accepted: return 0;
      case Outcome::duplicate: return 1;
      case Outcome::uploaded: return 2;
      case Outcome::rejected: return 3;
      case Outcome::failed: return 4;
    }
    return 4;
  }

  void add_user(std::size_t index, std::uint64_t sub, bool aggregated, bool decoded) {
    users_.push_back({index, sub, aggregated, decoded});
    user_records_.push_back(records_[index]);
  }

  void add_envelope_record(std::size_t index) {
    const EnvelopeRecord& record = records_[index];
    if (record.error != ErrorCode::ok) {
      reassembler_.add_rejected(record.error,
                                "the record's envelope lacks sequenceNumber/recordId or data");
      add_user(index, 0, false, false);
      return;
    }
    if (!decoded_.spans[index].ok) {
      reassembler_.add_rejected(ErrorCode::bad_record_data,
                                "the record's data is not valid base64 (at offset " +
                                    std::to_string(decoded_.spans[index].error_position) + ")");
      add_user(index, 0, false, false);
      return;
    }
    if (decoded_.spans[index].staged) {  // a chunk record: no KPL aggregate
      // The stage appended one entry for each record it took, in order.
      reassembler_.add_staged(staged_, decoded_.spans[index].staged_index);
      add_user(index, 0, false, true);
      return;
    }
    add_record_bytes(index, decoded_.of(index));
  }

  // Adds every record of records_ with add(i), but once stop_now_ says so,
  // the rest are failed with `deadline` (the source delivers them again).
  template <typename Add>
  void add_each_record(Add&& add) {
    users_.clear();
    user_records_.clear();
    bool stopped = false;
    for (std::size_t i = 0; i < records_.size(); ++i) {
      stopped = stopped || (stop_now_ && stop_now_());
      if (stopped) {
        reassembler_.add_failed(ErrorCode::deadline, "not processed: the deadline is near");
        add_user(i, 0, false, !raw_records_);
      } else {
        add(i);
      }
    }
  }

  // The bytes of record `index`: a KPL aggregate or one chunk record.
  void add_record_bytes(std::size_t index, std::string_view bytes) {
    deaggregator_.deaggregate(bytes, [&](const kpl::UserRecord& user) {
      if (user.error != ErrorCode::ok)
        reassembler_.add_rejected(user.error, deaggregator_.message(user));
      else
        reassembler_.add(user.data);
      add_user(index, user.sub, user.aggregated, !raw_records_);
    });
  }

  // Uploads what the records completed, logs every record's outcome (with its
  // KPL sub-record index), then the pending uploads retried.
  std::span<const RecordOutcome> flush_and_report() {
    const std::span<const RecordOutcome> outcomes = reassembler_.flush();
    const bool debug = logger_.enabled(LogLevel::debug);
    for (std::size_t k = 0; k < users_.size(); ++k) {
      // The common case, which report() would neither log nor track.
      if (!debug &&
          (outcomes[k].outcome == Outcome::accepted || outcomes[k].outcome == Outcome::duplicate))
        continue;
      const EnvelopeRecord& record = records_[users_[k].record];
      // Data that is not base64 goes into a dead letter encoded, like any raw bytes.
      const bool data_is_base64 = users_[k].decoded;
      const std::string_view data = record.data;
      std::optional<std::uint64_t> sub;
      if (users_[k].aggregated) sub = users_[k].sub;
      report(LogField("record", record.id), record.id, outcomes[k],
             data_is_base64 ? data : std::string_view(), data_is_base64 ? std::string_view() : data,
             sub);
    }
    report_retried();
    return outcomes;
  }

  // One outcome per record of the batch: the worst of its user records.
  std::span<const RecordOutcome> merge_by_record(std::span<const RecordOutcome> outcomes) {
    merged_.assign(records_.size(), RecordOutcome{});
    for (RecordOutcome& outcome : merged_) outcome.outcome = Outcome::accepted;
    for (std::size_t k = 0; k < users_.size(); ++k) {
      RecordOutcome& merged = merged_[users_[k].record];
      if (severity(outcomes[k].outcome) > severity(merged.outcome)) merged = outcomes[k];
    }
    return merged_;
  }

  void on_upload_done(std::size_t index, RecordOutcome& outcome, BodyReader& body) {
    if (outcome.outcome == Outcome::uploaded) {
      outcome.sha256 = sha256_hex(body);
      return;
    }
    // A permanent refusal drops the parts: the dead letter keeps the body.
    if (dead_letter_ == nullptr) return;
    if (index == R::no_record) {  // a pending upload retried: no record behind it
      dead_letter_->write(
          {redact_url(outcome.endpoint), outcome.error, outcome.message, "pending", {}, {}}, &body);
      return;
    }
    const bool chunk = !chunk_ids_.empty();
    const std::string id = chunk ? chunk_ids_[index].text() : std::string(user_records_[index].id);
    const std::string_view data = chunk ? std::string_view() : user_records_[index].data;
    dead_letter_->write({id, outcome.error, outcome.message, source_,
                         chunk          ? std::string_view(chunk_lines_[index])
                         : raw_records_ ? data
                                        : std::string_view(),
                         raw_records_ ? std::string_view() : data},
                        &body);
  }

  // Pending uploads retried by the last flush: logged; their records were
  // already reported failed when the upload first failed.
  void report_retried() {
    if (const std::size_t expired = reassembler_.take_expired(); expired > 0)
      logger_.warn("abandoned files expired: their parts were dropped",
                   {{"files", std::uint64_t{expired}}});
    for (const RecordOutcome& retry : reassembler_.retried()) {
      track_failure(retry);
      const std::string endpoint = redact_url(retry.endpoint);
      if (retry.outcome == Outcome::uploaded) {
        logger_.info("pending upload retried: file uploaded",
                     {{"endpoint", endpoint}, {"bytes", retry.bytes}, {"sha256", retry.sha256}});
      } else {
        logger_.log(retry.outcome == Outcome::failed ? LogLevel::warn : LogLevel::error,
                    "pending upload retried: not uploaded",
                    {{"endpoint", endpoint},
                     {"error", error_code_name(retry.error)},
                     {"message", retry.message}});
      }
    }
  }

  // A failed upload stays failed until its file is uploaded or refused later
  // (a duplicate chunk completing it again, or a pending retry).
  void track_failure(const RecordOutcome& outcome) {
    switch (outcome.outcome) {
      case Outcome::failed:
        if (outcome.endpoint.empty())
          ++failed_without_file_;
        else
          failed_endpoints_.insert(outcome.endpoint);
        return;
      case Outcome::uploaded:
      case Outcome::rejected:
        if (!outcome.endpoint.empty() && !failed_endpoints_.empty())
          failed_endpoints_.erase(outcome.endpoint);
        return;
      case Outcome::accepted:
      case Outcome::duplicate: return;
    }
  }

  // `record` is the log field naming the record, `id` its text (for dead letters).
  void report(const LogField& record, std::string_view id, const RecordOutcome& outcome,
              std::string_view data_base64, std::string_view raw,
              std::optional<std::uint64_t> sub = std::nullopt) {
    track_failure(outcome);
    switch (outcome.outcome) {
      case Outcome::accepted:
      case Outcome::duplicate:
        if (logger_.enabled(LogLevel::debug))
          logger_.debug(outcome_name(outcome.outcome), {record});
        return;
      case Outcome::uploaded:
        logger_.info("file uploaded", {record,
                                       {"endpoint", redact_url(outcome.endpoint)},
                                       {"bytes", outcome.bytes},
                                       {"sha256", outcome.sha256}});
        return;
      case Outcome::failed:
      case Outcome::rejected: break;
    }
    any_problem_ = true;
    const bool rejected = outcome.outcome == Outcome::rejected;
    const std::string endpoint =
        outcome.endpoint.empty() ? std::string() : redact_url(outcome.endpoint);
    const LogLevel level = rejected ? LogLevel::error : LogLevel::warn;
    const std::string_view msg = rejected ? "record rejected" : "record failed; it will be retried";
    if (sub)
      logger_.log(level, msg,
                  {record,
                   {"sub", *sub},
                   {"error", error_code_name(outcome.error)},
                   {"message", outcome.message},
                   {"endpoint", endpoint}});
    else
      logger_.log(level, msg,
                  {record,
                   {"error", error_code_name(outcome.error)},
                   {"message", outcome.message},
                   {"endpoint", endpoint}});
    if (rejected && dead_letter_ != nullptr && outcome.error != ErrorCode::upload_refused)
      dead_letter_->write({id, outcome.error, outcome.message, source_, raw, data_base64});
  }

  R& reassembler_;
  Logger& logger_;
  DeadLetterBox* dead_letter_ = nullptr;
  std::function<bool()> stop_now_;
  simdjson::ondemand::parser event_parser_;
  std::vector<EnvelopeRecord> records_;
  /// One per outcome of an event: which envelope record, which user record of it.
  struct UserId {
    std::size_t record;
    std::uint64_t sub;
    bool aggregated;  // a KPL user record (log its sub)
    bool decoded;     // the envelope's data was base64
  };
  std::vector<UserId> users_;
  std::vector<EnvelopeRecord> user_records_;  // records_[users_[k].record], for replies
  std::vector<RecordOutcome> merged_;         // Firehose: one outcome per record
  kpl::Deaggregator deaggregator_;
  DecodedRecords decoded_;  // the data of every record of the event (reused)
  StagedChunks staged_;     // the plain chunk records of the event (reused)
  std::vector<LineId> chunk_ids_;
  std::vector<std::string> chunk_lines_;  // raw bare chunks, kept only for dead letters
  ChunkSummary summary_;
  std::string_view source_ = "ndjson";
  bool raw_records_ = false;  // handle_records(): records_ hold bytes, not base64
  bool any_problem_ = false;
  std::set<std::string, std::less<>> failed_endpoints_;  // see track_failure()
  std::uint64_t failed_without_file_ = 0;
};

}  // namespace filebuilder::source
