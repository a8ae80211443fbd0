// filebuilderd kinesis: reads every shard of a stream through the Kinesis API
// (aws/kinesis.hpp), one GetRecords per shard in turn, and feeds each batch
// to EventHandler::handle_records. Record ids are "shardId-.../sequence".
//
// Checkpoints (the store's CheckpointStore side) hold, per stream and shard,
// the last record durably handled: stored, a duplicate, uploaded or rejected.
// After a batch the checkpoint moves to the last record before the first
// failed one; when one failed, the shard is read again from its checkpoint
// after a backoff (the failed record's file is complete but pending: its
// duplicate starts the upload again), so a failure is retried the way a
// stream redelivers, and a restart resumes there too. A closed shard read to
// its end gets a shard_end checkpoint; its children start once every parent
// has one (or is gone from the stream). Shards are listed again periodically
// and whenever a shard ends.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "filebuilder/aws/kinesis.hpp"
#include "filebuilder/concepts.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"

namespace filebuilder::daemon {

struct KinesisConsumerOptions {
  std::string stream;
  aws::ShardIteratorType start = aws::ShardIteratorType::trim_horizon;  // no checkpoint yet
  /// Exit once every open shard has returned no records for this long and
  /// every closed one was read to its end; 0: run until stopped.
  std::chrono::milliseconds idle_exit{0};
  std::chrono::milliseconds poll_interval{1'000};  // the wait when no shard had records
  std::chrono::milliseconds list_interval{60'000};
  std::chrono::milliseconds retry_base{500};  // a failed batch is read again after this, doubled
  std::chrono::milliseconds retry_max{30'000};
  unsigned records_per_call = 10'000;
  /// Called with the shard and MillisBehindLatest after each GetRecords.
  std::function<void(std::string_view shard, std::int64_t millis)> on_millis_behind;
};

/// What one run did, for the summary line on stdout.
struct RunCounts {
  std::uint64_t records = 0;  // user records, each counted once however often it was read
  std::uint64_t uploaded = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t rejected = 0;
  std::uint64_t failed = 0;  // records still failed when the run ended
  std::uint64_t shards = 0;  // shards read from in this run

  [[nodiscard]] std::string json() const {
    return "{\"records\":" + std::to_string(records) + ",\"uploaded\":" + std::to_string(uploaded) +
           ",\"duplicates\":" + std::to_string(duplicates) +
           ",\"rejected\":" + std::to_string(rejected) + ",\"failed\":" + std::to_string(failed) +
           ",\"shards\":" + std::to_string(shards) + "}";
  }
};

template <CheckpointStore Store, typename Handler>
class KinesisConsumer {
 public:
  using Steady = std::chrono::steady_clock;

  KinesisConsumer(aws::KinesisClient& client, Store& store, Handler& handler, Logger& logger,
                  KinesisConsumerOptions options, const std::atomic<bool>& stop)
      : client_(client),
        store_(store),
        handler_(handler),
        logger_(logger),
        options_(std::move(options)),
        stop_(stop) {}

  /// Runs until stopped (or idle, with idle_exit). false when the stream
  /// could not be listed at the start (the log says why).
  bool run() {
    if (!list_shards(true)) return false;
    Steady::time_point next_list = Steady::now() + options_.list_interval;
    while (!stop_.load()) {
      const Steady::time_point now = Steady::now();
      if (relist_ || now >= next_list) {
        relist_ = false;
        (void)list_shards(false);
        next_list = now + options_.list_interval;
      }
      bool any_records = false;
      for (std::size_t i = 0; i < shards_.size() && !stop_.load(); ++i)
        any_records = read_once(shards_[i]) || any_records;
      if (idle()) {
        logger_.info("every shard is idle: exiting", {{"stream", options_.stream}});
        break;
      }
      if (!any_records) sleep(options_.poll_interval);
    }
    for (const ShardState& shard : shards_) {
      if (shard.held) counts_.failed += shard.failed_records;
      if (shard.read_from) ++counts_.shards;
    }
    return true;
  }

  [[nodiscard]] const RunCounts& counts() const noexcept { return counts_; }
  /// Whether records are still failed (their shards' checkpoints held below them).
  [[nodiscard]] bool any_held() const noexcept {
    return std::any_of(shards_.begin(), shards_.end(), [](const ShardState& s) { return s.held; });
  }

 private:
  struct ShardState {
    aws::Shard shard;
    std::optional<Checkpoint> checkpoint;  // as stored
    std::string iterator;                  // empty: get one (from the checkpoint)
    bool ended = false;                    // read to its end, checkpointed so
    bool held = false;                     // a record failed: read again from the checkpoint
    bool read_from = false;                // counted in RunCounts::shards
    std::uint64_t failed_records = 0;      // in the last batch, while held
    unsigned failures = 0;                 // consecutive, for the backoff
    std::string counted;                   // the highest sequence number counted so far
    Steady::time_point retry_at{};
    Steady::time_point last_records = Steady::now();
  };

  // Lists the shards; new ones get their checkpoint from the store.
  bool list_shards(bool first) {
    std::vector<aws::Shard> listed;
    const aws::KinesisStatus status = client_.list_shards(options_.stream, listed);
    if (!status.ok()) {
      logger_.log(first ? LogLevel::error : LogLevel::warn, "cannot list the stream's shards",
                  {{"stream", options_.stream},
                   {"error", error_code_name(status.code)},
                   {"message", status.message}});
      return false;
    }
    for (aws::Shard& shard : listed) {
      auto known = std::find_if(shards_.begin(), shards_.end(), [&](const ShardState& s) {
        return s.shard.shard_id == shard.shard_id;
      });
      if (known != shards_.end()) {
        known->shard = std::move(shard);  // it may have closed meanwhile
        continue;
      }
      ShardState state;
      state.shard = std::move(shard);
      Result<std::optional<Checkpoint>> loaded =
          store_.load_checkpoint(options_.stream, state.shard.shard_id);
      if (!loaded.ok()) {
        logger_.error(
            "cannot read the shard's checkpoint: it is not read",
            {{"shard", state.shard.shard_id}, {"error", error_code_name(loaded.error())}});
        state.retry_at = Steady::time_point::max();
      } else {
        state.checkpoint = std::move(loaded.value_unsafe());
        state.ended = state.checkpoint && state.checkpoint->shard_end;
        if (state.checkpoint) state.counted = state.checkpoint->sequence_number;
      }
      shards_.push_back(std::move(state));
    }
    return true;
  }

  // A child starts once each parent is read to its end, or gone from the stream.
  [[nodiscard]] bool parents_done(const ShardState& state) const {
    for (const std::string* parent :
         {&state.shard.parent_shard_id, &state.shard.adjacent_parent_shard_id}) {
      if (parent->empty()) continue;
      const auto it = std::find_if(shards_.begin(), shards_.end(), [&](const ShardState& s) {
        return s.shard.shard_id == *parent;
      });
      if (it != shards_.end() && !it->ended) return false;
    }
    return true;
  }

  // One GetRecords on the shard, if it is its turn; true when records came.
  bool read_once(ShardState& state) {
    if (state.ended || Steady::now() < state.retry_at || !parents_done(state)) return false;
    if (state.iterator.empty() && !acquire_iterator(state)) return false;
    const aws::KinesisStatus status =
        client_.get_records(state.iterator, batch_, options_.records_per_call);
    if (status.code == ErrorCode::iterator_expired) {
      state.iterator.clear();  // a new one from the checkpoint, at once
      return false;
    }
    if (!status.ok()) {
      logger_.warn("GetRecords failed: the shard is read again later",
                   {{"shard", state.shard.shard_id},
                    {"error", error_code_name(status.code)},
                    {"message", status.message}});
      back_off(state);
      return false;
    }
    if (options_.on_millis_behind)
      options_.on_millis_behind(state.shard.shard_id, batch_.millis_behind_latest);
    state.read_from = state.read_from || !batch_.records.empty();
    if (!batch_.records.empty()) handle_batch(state);
    if (state.held) {
      state.iterator.clear();  // read again from the checkpoint, after the backoff
      back_off(state);
      return !batch_.records.empty();
    }
    state.failures = 0;
    if (batch_.next_shard_iterator) {
      state.iterator = *batch_.next_shard_iterator;
    } else {
      end_shard(state);
    }
    return !batch_.records.empty();
  }

  bool acquire_iterator(ShardState& state) {
    const bool resume = state.checkpoint && !state.checkpoint->sequence_number.empty();
    const aws::KinesisStatus status = client_.get_shard_iterator(
        options_.stream, state.shard.shard_id,
        resume ? aws::ShardIteratorType::after_sequence_number : options_.start,
        resume ? std::string_view(state.checkpoint->sequence_number) : std::string_view(),
        state.iterator);
    if (status.ok()) return true;
    logger_.warn("cannot get a shard iterator: tried again later",
                 {{"shard", state.shard.shard_id},
                  {"error", error_code_name(status.code)},
                  {"message", status.message}});
    state.iterator.clear();
    back_off(state);
    return false;
  }

  void handle_batch(ShardState& state) {
    ids_.resize(batch_.records.size());
    records_.clear();
    for (std::size_t i = 0; i < batch_.records.size(); ++i) {
      const aws::KinesisRecord& record = batch_.records[i];
      ids_[i].assign(state.shard.shard_id).append("/").append(record.sequence_number);
      records_.push_back({ids_[i], record.data, record.error});
    }
    const std::span<const RecordOutcome> outcomes = handler_.handle_records(records_, "kinesis");
    std::optional<std::size_t> last_durable;
    std::uint64_t failed = 0;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      const std::string_view sequence = batch_.records[i].sequence_number;
      // Each record is counted the first time it is read in this run.
      if (filebuilder::detail::compare_decimal(sequence, state.counted) > 0) {
        state.counted.assign(sequence);
        count(outcomes[i]);
      }
      if (outcomes[i].outcome == Outcome::failed) ++failed;
      if (failed == 0) last_durable = i;
    }
    state.last_records = Steady::now();
    state.held = failed > 0;
    state.failed_records = failed;
    if (last_durable) {
      Checkpoint checkpoint;
      checkpoint.sequence_number.assign(batch_.records[*last_durable].sequence_number);
      save(state, checkpoint);
    }
  }

  void count(const RecordOutcome& outcome) {
    ++counts_.records;
    switch (outcome.outcome) {
      case Outcome::accepted: break;
      case Outcome::duplicate: ++counts_.duplicates; break;
      case Outcome::uploaded: ++counts_.uploaded; break;
      case Outcome::rejected: ++counts_.rejected; break;
      case Outcome::failed: break;  // counted at the end, if still failed
    }
  }

  void end_shard(ShardState& state) {
    Checkpoint end;
    if (state.checkpoint) end.sequence_number = state.checkpoint->sequence_number;
    end.shard_end = true;
    save(state, end);
    state.ended = true;
    relist_ = true;  // its children may be new
    logger_.info("shard read to its end", {{"shard", state.shard.shard_id}});
  }

  void save(ShardState& state, const Checkpoint& checkpoint) {
    const ErrorCode error =
        store_.save_checkpoint(options_.stream, state.shard.shard_id, checkpoint);
    if (error != ErrorCode::ok) {
      // Not fatal: the records are handled; a restart reads them again.
      logger_.warn("cannot save the checkpoint",
                   {{"shard", state.shard.shard_id}, {"error", error_code_name(error)}});
      return;
    }
    state.checkpoint = checkpoint;
  }

  void back_off(ShardState& state) {
    auto delay = options_.retry_base;
    for (unsigned i = 0; i < state.failures && delay < options_.retry_max; ++i) delay *= 2;
    ++state.failures;
    state.retry_at = Steady::now() + std::min(delay, options_.retry_max);
  }

  [[nodiscard]] bool idle() const {
    if (options_.idle_exit.count() <= 0) return false;
    const Steady::time_point now = Steady::now();
    for (const ShardState& state : shards_) {
      if (state.ended) continue;
      if (state.shard.closed() || state.held) return false;  // still to be read to its end
      if (now - state.last_records < options_.idle_exit) return false;
    }
    return true;
  }

  void sleep(std::chrono::milliseconds total) const {
    const Steady::time_point until = Steady::now() + total;
    while (!stop_.load() && Steady::now() < until)
      std::this_thread::sleep_for(
          std::min<Steady::duration>(std::chrono::milliseconds(50), until - Steady::now()));
  }

  aws::KinesisClient& client_;
  Store& store_;
  Handler& handler_;
  Logger& logger_;
  KinesisConsumerOptions options_;
  const std::atomic<bool>& stop_;
  std::vector<ShardState> shards_;
  bool relist_ = false;
  aws::GetRecordsResult batch_;
  std::vector<std::string> ids_;
  std::vector<typename Handler::StreamRecord> records_;
  RunCounts counts_;
};

}  // namespace filebuilder::daemon
