// filebuilderd kcl: a record processor for the Kinesis Client Library's
// MultiLangDaemon, one process per shard. The daemon leases the shards (and
// keeps their checkpoints); this process turns its messages into
// EventHandler::handle_records calls and answers on stdout:
//
//   in (one JSON object per line)             out
//   {"action":"initialize","shardId":S,...}   {"action":"status","responseFor":"initialize"}
//   {"action":"processRecords","records":[{"data":B64,"sequenceNumber":N,
//     "subSequenceNumber":K,...}],...}        [checkpoint] status
//   {"action":"leaseLost"}                    status (no checkpoint: another worker has it)
//   {"action":"shardEnded"}                   [checkpoint null] status
//   {"action":"shutdownRequested"}            [checkpoint] status
//   {"action":"shutdown","reason":"TERMINATE"|"ZOMBIE"}   as shardEnded | leaseLost
//
// A checkpoint is {"action":"checkpoint","sequenceNumber":N,"subSequenceNumber":K},
// answered by the daemon with {"action":"checkpoint",...,"error":E?} before
// anything else. After each batch the processor checkpoints at the last
// record durably handled (stored, a duplicate, uploaded or rejected): the
// batch's last record, unless one failed; never at or past a failed record,
// and, once one has failed, not again in this lease (the failed record must be
// read again, after the lease passes to a new processor). stdout carries
// protocol lines only; logs go to stderr.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/source/handler.hpp"

namespace filebuilder::daemon {

/// Where a checkpoint points: a sequence number and a KPL sub-record index.
struct KclPosition {
  std::string sequence_number;
  std::uint64_t sub_sequence = 0;
};

template <typename Handler>
class KclProcessor {
 public:
  KclProcessor(Handler& handler, Logger& logger, std::istream& in, std::FILE* out)
      : handler_(handler), logger_(logger), in_(in), out_(out) {}

  /// Called with the shard and each processRecords' millisBehindLatest.
  void on_millis_behind(std::function<void(std::string_view, std::int64_t)> hook) {
    on_millis_behind_ = std::move(hook);
  }

  /// Runs until the daemon closes stdin or a shutdown is answered. Returns
  /// the process's exit status: 0, or 1 when records are still failed.
  int run() {
    while (std::getline(in_, line_)) {
      if (line_.empty()) continue;
      const std::string action = message_action();
      if (action.empty()) {
        logger_.error("kcl: not a MultiLangDaemon message", {{"error", "bad_event"}});
        continue;
      }
      if (action == "initialize") {
        initialize();
      } else if (action == "processRecords") {
        process_records();
      } else if (action == "shardEnded") {
        end_of_shard();
      } else if (action == "leaseLost") {
        logger_.info("kcl: lease lost", {{"shard", shard_}});
      } else if (action == "shutdownRequested") {
        if (!held_ && durable_) checkpoint(durable_);
      } else if (action == "shutdown") {
        if (reason_ == "TERMINATE") end_of_shard();
      } else if (action == "checkpoint") {
        continue;  // an answer nobody waits for: ignore
      } else {
        logger_.warn("kcl: unknown action", {{"action", action}});
      }
      status(action);
      if (action == "shutdown" || action == "shardEnded" || action == "leaseLost") break;
    }
    return held_ ? 1 : 0;
  }

 private:
  // Reads the message in line_: its action, and what the action carries.
  std::string message_action() {
    padded_ = simdjson::padded_string(line_);
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (parser_.iterate(padded_).get(doc) != simdjson::SUCCESS ||
        doc.get_object().get(object) != simdjson::SUCCESS)
      return {};
    std::string action;
    records_.clear();
    reason_.clear();
    millis_behind_.reset();
    for (auto field : object) {
      std::string_view key;
      if (field.unescaped_key().get(key) != simdjson::SUCCESS) return {};
      std::string_view text;
      if (key == "action" || key == "shardId" || key == "reason") {
        if (field.value().get_string().get(text) != simdjson::SUCCESS) return {};
        if (key == "action") action = text;
        if (key == "shardId") shard_ = text;
        if (key == "reason") reason_ = text;
      } else if (key == "millisBehindLatest") {
        std::int64_t millis = 0;
        if (field.value().get_int64().get(millis) == simdjson::SUCCESS) millis_behind_ = millis;
      } else if (key == "records") {
        simdjson::ondemand::array array;
        if (field.value().get_array().get(array) != simdjson::SUCCESS) return {};
        for (auto element : array) {
          simdjson::ondemand::object record;
          if (element.get_object().get(record) != simdjson::SUCCESS) return {};
          Record& out = records_.emplace_back();
          for (auto item : record) {
            std::string_view name;
            if (item.unescaped_key().get(name) != simdjson::SUCCESS) return {};
            if (name == "data") {
              if (item.value().get_string().get(text) != simdjson::SUCCESS) return {};
              out.data = text;
            } else if (name == "sequenceNumber") {
              if (item.value().get_string().get(text) != simdjson::SUCCESS) return {};
              out.position.sequence_number = text;
            } else if (name == "subSequenceNumber") {
              std::uint64_t sub = 0;
              if (item.value().get_uint64().get(sub) == simdjson::SUCCESS)
                out.position.sub_sequence = sub;
            }
          }
        }
      }
    }
    return action;
  }

  void initialize() {
    logger_.info("kcl: shard assigned", {{"shard", shard_}});
    held_ = false;
    durable_.reset();
  }

  void process_records() {
    if (millis_behind_ && on_millis_behind_) on_millis_behind_(shard_, *millis_behind_);
    // Decode every record's data first (views into one buffer), then hand
    // the batch over as one.
    std::size_t room = 0;
    for (const Record& record : records_) room += base64::max_decoded_size(record.data.size());
    bytes_.resize(room);
    ids_.clear();
    batch_.clear();
    std::size_t offset = 0;
    std::vector<bool> bad(records_.size(), false);
    for (std::size_t i = 0; i < records_.size(); ++i) {
      Record& record = records_[i];
      ids_.push_back(shard_ + "/" + record.position.sequence_number);
      const base64::DecodeResult decoded = base64::decode(record.data, bytes_.data() + offset);
      if (decoded.error != ErrorCode::ok) bad[i] = true;
      record.bytes = std::string_view(bytes_.data() + offset, decoded.written);
      offset += decoded.written;
    }
    for (std::size_t i = 0; i < records_.size(); ++i) {
      // Data that is not base64 is passed as it came: the chunk parser names it.
      batch_.push_back({ids_[i], bad[i] ? std::string_view(records_[i].data) : records_[i].bytes});
    }
    const std::span<const RecordOutcome> outcomes = handler_.handle_records(batch_, "kcl");
    const bool was_held = held_;
    std::optional<std::size_t> last_durable;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      if (outcomes[i].outcome == Outcome::failed) {
        held_ = true;
        break;
      }
      last_durable = i;
    }
    // Up to the record before the first failure, and never again after one.
    if (!was_held && last_durable) {
      durable_ = records_[*last_durable].position;
      checkpoint(durable_);
    }
  }

  void end_of_shard() {
    if (held_) {
      logger_.warn("kcl: shard ended with failed records: not checkpointed at its end",
                   {{"shard", shard_}});
      return;
    }
    checkpoint(std::nullopt);
  }

  // Sends a checkpoint and reads the daemon's answer.
  void checkpoint(const std::optional<KclPosition>& at) {
    std::string message = "{\"action\":\"checkpoint\",\"sequenceNumber\":";
    if (at) {
      filebuilder::detail::append_json_string(message, at->sequence_number);
      message += ",\"subSequenceNumber\":" + std::to_string(at->sub_sequence);
    } else {
      message += "null,\"subSequenceNumber\":null";
    }
    message += "}\n";
    write(message);
    std::string answer;
    if (!std::getline(in_, answer)) return;
    if (answer.find("\"error\"") != std::string::npos &&
        answer.find("\"error\":null") == std::string::npos)
      logger_.warn("kcl: checkpoint refused", {{"shard", shard_}, {"answer", answer}});
  }

  void status(std::string_view action) {
    std::string message = "{\"action\":\"status\",\"responseFor\":";
    filebuilder::detail::append_json_string(message, action);
    message += "}\n";
    write(message);
  }

  void write(const std::string& message) {
    std::fwrite(message.data(), 1, message.size(), out_);
    std::fflush(out_);
  }

  struct Record {
    std::string data;  // base64, as received
    KclPosition position;
    std::string_view bytes;  // decoded, into bytes_
  };

  Handler& handler_;
  Logger& logger_;
  std::istream& in_;
  std::FILE* out_;
  simdjson::ondemand::parser parser_;
  simdjson::padded_string padded_;
  std::string line_;
  std::string shard_ = "unknown";
  std::string reason_;
  std::vector<Record> records_;
  std::string bytes_;
  std::vector<std::string> ids_;
  std::vector<typename Handler::StreamRecord> batch_;
  std::optional<KclPosition> durable_;         // the last position checkpointed
  bool held_ = false;                          // a record failed in this lease
  std::optional<std::int64_t> millis_behind_;  // of the message being handled
  std::function<void(std::string_view, std::int64_t)> on_millis_behind_;
};

}  // namespace filebuilder::daemon
