// filebuilder: KPL aggregated records (Kinesis Producer Library). Needs
// filebuilder::crypto (OpenSSL, for MD5) and protozero's headers
// (Debian: libprotozero-dev).
//
// A Kinesis record whose bytes start with F3 89 9A C2 is an aggregate of user
// records (the format: detail/kpl_writer.hpp). kpl::Deaggregator yields the
// user records of one Kinesis record as views into its bytes, without
// allocating per user record:
//
//   filebuilder::kpl::Deaggregator deaggregator;  // reuse it: it keeps its buffers
//   deaggregator.deaggregate(bytes, [&](const filebuilder::kpl::UserRecord& user) {
//     if (user.error != filebuilder::ErrorCode::ok)
//       reassembler.add_rejected(user.error, deaggregator.message(user));
//     else
//       reassembler.add(user.data);
//   });
//
// Rules (the KCL's, where it has one):
//   - no magic: the record is yielded whole, as one ordinary record;
//   - the magic, but shorter than magic + MD5, or a wrong MD5, or a protobuf
//     that does not parse as an AggregatedRecord (malformed wire format, a
//     Record without partition_key_index or data, a Tag without key): also
//     yielded whole, as one ordinary record (it is then rejected as a chunk,
//     unless it really is one);
//   - a valid aggregate: each user record in order, sub = its index; none
//     for an aggregate without records; tags and unknown fields are ignored,
//     a known field of an unexpected wire type is taken as an unknown one,
//     and a repeated singular field counts with its last value (protobuf's
//     rules);
//   - a key index out of its table's range: that user record comes with
//     error bad_index_error (kpl_bad_index) and empty keys; message() says
//     which index. The other user records of the aggregate are unaffected.
// Every user record of an aggregate shares the Kinesis record's sequence
// number: name one as sequence number + sub.
#pragma once

#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/detail/kpl_writer.hpp"
#include "filebuilder/error.hpp"

namespace filebuilder::kpl {

/// What a Kinesis record turned out to be.
enum class RecordKind : std::uint8_t {
  plain,         // no magic: an ordinary record, yielded whole
  aggregate,     // a valid aggregate: its user records were yielded (maybe none)
  too_short,     // the magic, but too short to hold an MD5: yielded whole
  bad_checksum,  // the magic, but the MD5 does not match (or OpenSSL has no MD5): yielded whole
  bad_protobuf,  // the magic and a matching MD5, but no AggregatedRecord: yielded whole
};

/// "plain", "aggregate", "too_short", "bad_checksum", "bad_protobuf".
[[nodiscard]] constexpr std::string_view record_kind_name(RecordKind kind) noexcept {
  switch (kind) {
    case RecordKind::plain: return "plain";
    case RecordKind::aggregate: return "aggregate";
    case RecordKind::too_short: return "too_short";
    case RecordKind::bad_checksum: return "bad_checksum";
    case RecordKind::bad_protobuf: return "bad_protobuf";
  }
  return "unknown";
}

/// One user record: views into the Kinesis record's bytes (and into the
/// Deaggregator), valid until the next deaggregate() call or until those
/// bytes change.
struct UserRecord {
  std::string_view data;
  /// The user record's partition key; "" for a record that is not an
  /// aggregate (the Kinesis record's own key is in its envelope).
  std::string_view partition_key;
  /// The explicit hash key; "" when the user record has none.
  std::string_view explicit_hash_key;
  /// The sub-sequence number: the index in the aggregate (0 when not aggregated).
  std::uint64_t sub = 0;
  /// True for a user record of an aggregate; false for a Kinesis record
  /// yielded whole (no sub to log then).
  bool aggregated = false;
  /// ok, or bad_index_error (kpl_bad_index): a key index is out of its
  /// table's range (the keys are then empty; data is still the user record's).
  ErrorCode error = ErrorCode::ok;
  std::uint64_t partition_key_index = 0;
  std::uint64_t explicit_hash_key_index = 0;
  bool has_explicit_hash_key_index = false;
};

/// What deaggregate() did with one Kinesis record.
struct DeaggregateResult {
  RecordKind kind = RecordKind::plain;
  std::size_t records = 0;  // user records yielded (1 unless kind is aggregate)

  /// Whether the record was yielded whole, as one ordinary record.
  [[nodiscard]] bool passed_through() const noexcept { return kind != RecordKind::aggregate; }
};

template <typename F>
concept UserRecordSink = std::invocable<F&, const UserRecord&>;

/// The error of a user record whose key index is out of range.
inline constexpr ErrorCode bad_index_error = ErrorCode::kpl_bad_index;

/// Splits Kinesis records into user records. Reusable: it keeps the key
/// tables and the MD5 context between calls. Not thread-safe.
class Deaggregator {
 public:
  /// Calls sink(const UserRecord&) for each user record of `record`, in
  /// order. Malformed input never throws; exceptions from sink (and
  /// std::bad_alloc) propagate.
  template <UserRecordSink Sink>
  DeaggregateResult deaggregate(std::string_view record, Sink&& sink) {
    partition_keys_.clear();
    explicit_hash_keys_.clear();
    const RecordKind kind = classify(record);
    if (kind != RecordKind::aggregate) {
      UserRecord whole;
      whole.data = record;
      sink(static_cast<const UserRecord&>(whole));
      return {kind, 1};
    }
    const std::string_view protobuf = body(record);
    std::size_t count = 0;
    protozero::pbf_reader message(protobuf.data(), protobuf.size());
    // classify() parsed the whole message: nothing below can throw.
    while (message.next()) {
      if (message.tag() != 3 || message.wire_type() != protozero::pbf_wire_type::length_delimited) {
        message.skip();
        continue;
      }
      UserRecord user = read_record(message.get_view());
      user.sub = count++;
      user.aggregated = true;
      resolve_keys(user);
      sink(static_cast<const UserRecord&>(user));
    }
    return {RecordKind::aggregate, count};
  }

  /// Why user.error was set, for logs and dead letters ("" when it was not).
  /// Call it before the next deaggregate().
  [[nodiscard]] std::string message(const UserRecord& user) const {
    if (user.error == ErrorCode::ok) return {};
    std::string text = "KPL user record " + std::to_string(user.sub) + ":";
    const std::size_t keys = partition_keys_.size();
    bool first = true;
    if (user.partition_key_index >= keys) {
      text += " partition_key_index " + std::to_string(user.partition_key_index) +
              " is out of range (" + std::to_string(keys) + " partition keys)";
      first = false;
    }
    const std::size_t hash_keys = explicit_hash_keys_.size();
    if (user.has_explicit_hash_key_index && user.explicit_hash_key_index >= hash_keys) {
      text += first ? " " : "; ";
      text += "explicit_hash_key_index " + std::to_string(user.explicit_hash_key_index) +
              " is out of range (" + std::to_string(hash_keys) + " explicit hash keys)";
    }
    return text;
  }

  /// The key tables of the last aggregate (empty for other records).
  [[nodiscard]] const std::vector<std::string_view>& partition_keys() const noexcept {
    return partition_keys_;
  }
  [[nodiscard]] const std::vector<std::string_view>& explicit_hash_keys() const noexcept {
    return explicit_hash_keys_;
  }

 private:
  /// The protobuf between the magic and the checksum.
  static std::string_view body(std::string_view record) noexcept {
    return record.substr(magic.size(), record.size() - overhead);
  }

  static std::string_view view(protozero::data_view bytes) noexcept {
    return {bytes.data(), bytes.size()};
  }

  /// Checks the magic, the MD5 and the whole protobuf; fills the key tables.
  RecordKind classify(std::string_view record) {
    if (!has_magic(record)) return RecordKind::plain;
    if (record.size() < overhead) return RecordKind::too_short;
    const std::string_view protobuf = body(record);
    unsigned char checksum[checksum_size];
    if (!md5_.digest(protobuf, checksum) ||
        std::memcmp(checksum, record.data() + record.size() - checksum_size, checksum_size) != 0)
      return RecordKind::bad_checksum;
    try {
      if (parse_aggregate(protobuf)) return RecordKind::aggregate;
    } catch (const protozero::exception&) {
    }
    partition_keys_.clear();
    explicit_hash_keys_.clear();
    return RecordKind::bad_protobuf;
  }

  static bool length_delimited(const protozero::pbf_reader& reader) noexcept {
    return reader.wire_type() == protozero::pbf_wire_type::length_delimited;
  }
  static bool varint(const protozero::pbf_reader& reader) noexcept {
    return reader.wire_type() == protozero::pbf_wire_type::varint;
  }

  /// Parses a whole AggregatedRecord: false (or a protozero exception) if it is not one.
  bool parse_aggregate(std::string_view protobuf) {
    protozero::pbf_reader message(protobuf.data(), protobuf.size());
    while (message.next()) {
      const auto tag = message.tag();
      if (tag == 1 && length_delimited(message)) {
        partition_keys_.push_back(view(message.get_view()));
      } else if (tag == 2 && length_delimited(message)) {
        explicit_hash_keys_.push_back(view(message.get_view()));
      } else if (tag == 3 && length_delimited(message)) {
        if (!valid_record(message.get_view())) return false;
      } else {
        message.skip();
      }
    }
    return true;
  }

  static bool valid_record(protozero::data_view bytes) {
    protozero::pbf_reader record(bytes);
    bool has_key_index = false;
    bool has_data = false;
    while (record.next()) {
      const auto tag = record.tag();
      if (tag == 1 && varint(record)) {
        (void)record.get_uint64();
        has_key_index = true;
      } else if (tag == 3 && length_delimited(record)) {
        (void)record.get_view();
        has_data = true;
      } else if (tag == 4 && length_delimited(record)) {
        if (!valid_tag(record.get_view())) return false;
      } else {
        record.skip();  // explicit_hash_key_index (a varint), and unknown fields
      }
    }
    return has_key_index && has_data;
  }

  static bool valid_tag(protozero::data_view bytes) {
    protozero::pbf_reader tag(bytes);
    bool has_key = false;
    while (tag.next()) {
      if (tag.tag() == 1 && length_delimited(tag)) has_key = true;
      tag.skip();
    }
    return has_key;
  }

  /// The fields of a Record that valid_record() accepted.
  static UserRecord read_record(protozero::data_view bytes) {
    UserRecord user;
    protozero::pbf_reader record(bytes);
    while (record.next()) {
      const auto tag = record.tag();
      if (tag == 1 && varint(record)) {
        user.partition_key_index = record.get_uint64();
      } else if (tag == 2 && varint(record)) {
        user.explicit_hash_key_index = record.get_uint64();
        user.has_explicit_hash_key_index = true;
      } else if (tag == 3 && length_delimited(record)) {
        user.data = view(record.get_view());
      } else {
        record.skip();
      }
    }
    return user;
  }

  void resolve_keys(UserRecord& user) const noexcept {
    const bool key_ok = user.partition_key_index < partition_keys_.size();
    const bool hash_ok = !user.has_explicit_hash_key_index ||
                         user.explicit_hash_key_index < explicit_hash_keys_.size();
    if (!key_ok || !hash_ok) {
      user.error = bad_index_error;
      return;
    }
    user.partition_key = partition_keys_[static_cast<std::size_t>(user.partition_key_index)];
    if (user.has_explicit_hash_key_index)
      user.explicit_hash_key =
          explicit_hash_keys_[static_cast<std::size_t>(user.explicit_hash_key_index)];
  }

  std::vector<std::string_view> partition_keys_;
  std::vector<std::string_view> explicit_hash_keys_;
  detail::kpl::Md5 md5_;
};

}  // namespace filebuilder::kpl
