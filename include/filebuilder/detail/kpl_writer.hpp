// filebuilder: the KPL aggregated record format, producer side: kpl::Aggregator
// packs user records (partition key, optional explicit hash key, data) into
// aggregated Kinesis records. Needs filebuilder::crypto (OpenSSL, for MD5).
// Users include it through filebuilder/source/kpl.hpp or filebuilder/split.hpp.
//
// An aggregated record is
//   F3 89 9A C2  |  protobuf AggregatedRecord  |  MD5 of the protobuf (16 bytes)
// with
//   message AggregatedRecord {
//     repeated string partition_key_table = 1;
//     repeated string explicit_hash_key_table = 2;
//     repeated Record records = 3;
//   }
//   message Record {
//     required uint64 partition_key_index = 1;
//     optional uint64 explicit_hash_key_index = 2;
//     required bytes data = 3;
//     repeated Tag tags = 4;  // message Tag { required string key = 1; optional string value = 2;
//     }
//   }
//
// The Aggregator writes the fields in field-number order (the key tables, then
// the records), each key once per aggregate, and never writes tags. It keeps
// every aggregate within max_bytes (magic and checksum included; 1 MiB, the
// Kinesis record limit, by default) and max_records user records. A user record
// too large for an aggregate of its own is still emitted, alone, in an
// aggregate larger than max_bytes: the caller decides what to do with it.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace filebuilder {

namespace kpl {

/// The first four bytes of every aggregated record.
inline constexpr std::array<unsigned char, 4> magic = {0xF3, 0x89, 0x9A, 0xC2};
/// The MD5 checksum at the end of every aggregated record.
inline constexpr std::size_t checksum_size = 16;
/// Magic and checksum: the bytes an aggregate has besides its protobuf.
inline constexpr std::size_t overhead = magic.size() + checksum_size;
/// The largest Kinesis record, and so the default limit of an aggregate.
inline constexpr std::size_t max_kinesis_record_bytes = 1024 * 1024;

/// Whether `record` starts with the magic of an aggregated record.
[[nodiscard]] inline bool has_magic(std::string_view record) noexcept {
  if (record.size() < magic.size()) return false;
  for (std::size_t i = 0; i < magic.size(); ++i)
    if (static_cast<unsigned char>(record[i]) != magic[i]) return false;
  return true;
}

}  // namespace kpl

namespace detail::kpl {

struct Md5ContextDeleter {
  void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
};

/// MD5 with a context kept for reuse. Copies start with a fresh context.
class Md5 {
 public:
  Md5() = default;
  Md5(const Md5&) noexcept {}
  Md5& operator=(const Md5&) noexcept { return *this; }
  Md5(Md5&&) noexcept = default;
  Md5& operator=(Md5&&) noexcept = default;
  ~Md5() = default;

  /// The MD5 of bytes into out; false if OpenSSL cannot compute one (no
  /// memory, or MD5 disabled, as in a FIPS configuration).
  bool digest(std::string_view bytes, unsigned char* out) noexcept {
    const EVP_MD* md = algorithm();
    if (md == nullptr) return false;
    if (!context_) context_.reset(EVP_MD_CTX_new());
    if (!context_) return false;
    unsigned int size = 0;
    return EVP_DigestInit_ex(context_.get(), md, nullptr) == 1 &&
           EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size()) == 1 &&
           EVP_DigestFinal_ex(context_.get(), out, &size) == 1 &&
           size == filebuilder::kpl::checksum_size;
  }

 private:
  static const EVP_MD* algorithm() noexcept {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    // Fetched once for the process (an implicit fetch on every init costs a lookup).
    static EVP_MD* const fetched = EVP_MD_fetch(nullptr, "MD5", nullptr);
    return fetched;
#else
    return EVP_md5();
#endif
  }

  std::unique_ptr<EVP_MD_CTX, Md5ContextDeleter> context_;
};

/// Bytes of the varint encoding of value.
[[nodiscard]] constexpr std::size_t varint_size(std::uint64_t value) noexcept {
  std::size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

inline void append_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

/// Bytes of a length-delimited field (one-byte key) holding `size` bytes.
[[nodiscard]] constexpr std::size_t field_size(std::size_t size) noexcept {
  return 1 + varint_size(size) + size;
}

// Field keys: (field number << 3) | wire type.
inline constexpr char key_partition_key_table = (1 << 3) | 2;
inline constexpr char key_explicit_hash_key_table = (2 << 3) | 2;
inline constexpr char key_records = (3 << 3) | 2;
inline constexpr char key_partition_key_index = (1 << 3) | 0;
inline constexpr char key_explicit_hash_key_index = (2 << 3) | 0;
inline constexpr char key_data = (3 << 3) | 2;

/// One key table of an aggregate being built: the encoded table entries and
/// an index by key.
class KeyTable {
 public:
  /// The index of key: its existing one, or the next (not added yet).
  [[nodiscard]] std::uint64_t find(std::string_view key) const {
    if (count_ > 0 && key == last_) return last_index_;
    const auto it = index_.find(key);
    return it == index_.end() ? count_ : it->second;
  }
  /// Adds key if it is new; returns its index.
  std::uint64_t add(std::string_view key, char field_key) {
    const std::uint64_t index = find(key);
    if (index == count_) {
      encoded_.push_back(field_key);
      append_varint(encoded_, key.size());
      encoded_.append(key);
      index_.emplace(std::string(key), index);
      ++count_;
    }
    last_.assign(key);
    last_index_ = index;
    return index;
  }
  void clear() noexcept {
    encoded_.clear();
    index_.clear();
    count_ = 0;
  }
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] const std::string& encoded() const noexcept { return encoded_; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
      return std::hash<std::string_view>{}(key);
    }
  };

  std::string encoded_;
  std::unordered_map<std::string, std::uint64_t, Hash, std::equal_to<>> index_;
  std::uint64_t count_ = 0;
  std::string last_;
  std::uint64_t last_index_ = 0;
};

}  // namespace detail::kpl

namespace kpl {

/// One aggregated record, as given to an AggregateSink. Views valid only
/// during the call.
struct Aggregate {
  std::string_view bytes;              // magic + protobuf + MD5: the Kinesis record's data
  std::string_view partition_key;      // of its first user record: the Kinesis record's key
  std::string_view explicit_hash_key;  // of its first user record ("" if none)
  std::size_t records = 0;             // user records in it
};

template <typename F>
concept AggregateSink = std::invocable<F&, const Aggregate&>;

/// Packs user records into aggregated records. Not thread-safe; reusable.
class Aggregator {
 public:
  static constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

  /// At most max_records user records (0 is taken as 1) and max_bytes bytes
  /// (magic and checksum included) per aggregate.
  explicit Aggregator(std::size_t max_records = unlimited,
                      std::size_t max_bytes = max_kinesis_record_bytes) noexcept
      : max_records_(max_records == 0 ? 1 : max_records), max_bytes_(max_bytes) {}

  /// Adds one user record (an empty explicit_hash_key: none). When it does not
  /// fit beside the pending ones, the pending aggregate goes to sink first; when
  /// it fills the aggregate to max_records, the aggregate goes to sink at once.
  /// A record too large to fit even alone is emitted alone.
  template <AggregateSink Sink>
  void add(std::string_view partition_key, std::string_view explicit_hash_key,
           std::string_view data, Sink&& sink) {
    if (pending_ > 0 && size_with(partition_key, explicit_hash_key, data.size()) > max_bytes_)
      flush(sink);
    append(partition_key, explicit_hash_key, data);
    if (pending_ >= max_records_ || size() > max_bytes_) flush(sink);
  }

  /// Emits the pending aggregate, if any. Throws std::runtime_error if OpenSSL
  /// cannot compute MD5 (disabled, as in a FIPS configuration).
  template <AggregateSink Sink>
  void flush(Sink&& sink) {
    if (pending_ == 0) return;
    out_.clear();
    out_.reserve(size());
    out_.append(reinterpret_cast<const char*>(magic.data()), magic.size());
    out_.append(partition_keys_.encoded());
    out_.append(explicit_hash_keys_.encoded());
    out_.append(records_);
    unsigned char checksum[checksum_size] = {};
    const std::string_view protobuf = std::string_view(out_).substr(magic.size());
    if (!md5_.digest(protobuf, checksum))
      throw std::runtime_error("filebuilder: OpenSSL cannot compute MD5 (is it disabled?)");
    out_.append(reinterpret_cast<const char*>(checksum), checksum_size);
    const Aggregate aggregate{out_, first_partition_key_, first_explicit_hash_key_, pending_};
    clear();
    sink(aggregate);
  }

  /// User records pending (not emitted yet).
  [[nodiscard]] std::size_t pending() const noexcept { return pending_; }
  /// The size the pending aggregate would have if emitted now (0 if empty).
  [[nodiscard]] std::size_t size() const noexcept {
    return pending_ == 0 ? 0 : overhead + protobuf_size();
  }
  /// The partition key of the pending aggregate (its first user record's).
  [[nodiscard]] std::string_view partition_key() const noexcept { return first_partition_key_; }

  /// The size of an aggregate holding one user record.
  [[nodiscard]] static std::size_t single_size(std::string_view partition_key,
                                               std::string_view explicit_hash_key,
                                               std::size_t data_size) noexcept {
    return overhead + detail::kpl::field_size(partition_key.size()) +
           (explicit_hash_key.empty() ? 0 : detail::kpl::field_size(explicit_hash_key.size())) +
           detail::kpl::field_size(record_size(0, !explicit_hash_key.empty(), 0, data_size));
  }

 private:
  /// Bytes of a Record message's contents.
  static constexpr std::size_t record_size(std::uint64_t key_index, bool has_hash_key,
                                           std::uint64_t hash_key_index,
                                           std::size_t data_size) noexcept {
    return 1 + detail::kpl::varint_size(key_index) +
           (has_hash_key ? 1 + detail::kpl::varint_size(hash_key_index) : 0) +
           detail::kpl::field_size(data_size);
  }

  [[nodiscard]] std::size_t protobuf_size() const noexcept {
    return partition_keys_.encoded().size() + explicit_hash_keys_.encoded().size() +
           records_.size();
  }

  /// The size of the pending aggregate with one more user record.
  [[nodiscard]] std::size_t size_with(std::string_view partition_key,
                                      std::string_view explicit_hash_key,
                                      std::size_t data_size) const {
    std::size_t total = overhead + protobuf_size();
    const std::uint64_t key_index = partition_keys_.find(partition_key);
    if (key_index == partition_keys_.count())
      total += detail::kpl::field_size(partition_key.size());
    std::uint64_t hash_index = 0;
    if (!explicit_hash_key.empty()) {
      hash_index = explicit_hash_keys_.find(explicit_hash_key);
      if (hash_index == explicit_hash_keys_.count())
        total += detail::kpl::field_size(explicit_hash_key.size());
    }
    return total + detail::kpl::field_size(
                       record_size(key_index, !explicit_hash_key.empty(), hash_index, data_size));
  }

  void append(std::string_view partition_key, std::string_view explicit_hash_key,
              std::string_view data) {
    if (pending_ == 0) {
      first_partition_key_.assign(partition_key);
      first_explicit_hash_key_.assign(explicit_hash_key);
    }
    const std::uint64_t key_index =
        partition_keys_.add(partition_key, detail::kpl::key_partition_key_table);
    const bool has_hash_key = !explicit_hash_key.empty();
    const std::uint64_t hash_index =
        has_hash_key
            ? explicit_hash_keys_.add(explicit_hash_key, detail::kpl::key_explicit_hash_key_table)
            : 0;
    records_.push_back(detail::kpl::key_records);
    detail::kpl::append_varint(records_,
                               record_size(key_index, has_hash_key, hash_index, data.size()));
    records_.push_back(detail::kpl::key_partition_key_index);
    detail::kpl::append_varint(records_, key_index);
    if (has_hash_key) {
      records_.push_back(detail::kpl::key_explicit_hash_key_index);
      detail::kpl::append_varint(records_, hash_index);
    }
    records_.push_back(detail::kpl::key_data);
    detail::kpl::append_varint(records_, data.size());
    records_.append(data);
    ++pending_;
  }

  void clear() noexcept {
    partition_keys_.clear();
    explicit_hash_keys_.clear();
    records_.clear();
    pending_ = 0;
  }

  std::size_t max_records_;
  std::size_t max_bytes_;
  detail::kpl::KeyTable partition_keys_;
  detail::kpl::KeyTable explicit_hash_keys_;
  std::string records_;  // the encoded Record fields of the pending aggregate
  std::string out_;      // the aggregate being emitted
  std::string first_partition_key_;
  std::string first_explicit_hash_key_;
  std::size_t pending_ = 0;
  detail::kpl::Md5 md5_;
};

}  // namespace kpl

}  // namespace filebuilder
