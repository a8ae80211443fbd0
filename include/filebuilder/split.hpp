// filebuilder: the producer side. Turns files into chunk records, or into the
// Lambda Kinesis / Firehose events that would carry them, one line at a time.
//
// A chunk record, exactly (field order fixed, no spaces):
//   {"putEndpoint":"<endpoint>","partition":I,"partitionCount":N,"content":"<base64>"}
// with the endpoint JSON-escaped and content the strict base64 of bytes
// [I * chunk_size, (I + 1) * chunk_size) of the file. N = ceil(size / chunk_size),
// and an empty file is one partition with empty content.
//
// Output formats (SplitOptions::format), every line '\n'-terminated:
//   ndjson    one chunk record per line.
//   lambda    one Lambda Kinesis event per line, {"Records":[...]}, with up to
//             records_per_event records; each record's data is the base64 of
//             one chunk record.
//   firehose  one Firehose transformation event per line,
//             {"invocationId":...,"records":[...]}, the same way.
// Events are filled in order and may mix the records of several files.
//
// KPL aggregation (SplitOptions::aggregate = N > 0, lambda and firehose only):
// each Kinesis record's data is then a KPL aggregated record (see
// source/kpl.hpp) of up to N chunk records, within 1 MiB (the Kinesis record
// limit, magic and checksum included); a chunk record too large for that is
// sent alone in an aggregate of its own, over the limit. An aggregate holds
// the chunks of one file only (a new file starts a new aggregate), so that
// all of a file's chunks still share one partition key. Sequence numbers,
// recordIds and records_per_event then count Kinesis records (aggregates);
// user record i of an aggregate is named by its sequence number and sub i.
// This header therefore needs filebuilder::crypto (OpenSSL, for MD5).
//
// The output depends only on the input and the options (no clock, no
// randomness), so the same input gives the same bytes:
//   - Kinesis sequence numbers are 56-digit decimal strings: "4959", a
//     20-digit stream id (the FNV-1a 64 hash of the first endpoint the
//     Splitter sees, so that separate runs over different files do not reuse
//     ids), then a 32-digit record counter that starts at 1 and increases
//     across everything one Splitter writes; eventID is
//     "shardId-000000000000:<sequence number>".
//   - The Kinesis partition key is the 16-hex-digit FNV-1a 64 hash of the
//     endpoint: every chunk of a file has the same key, so on a real stream all
//     of a file's chunks land on one shard, and thus one consumer.
//   - Firehose recordIds are "r" + the sequence number; invocationIds are
//     UUID-shaped, "00000000-XXXX-4000-8000-XXXXXXXXXXXX" from the event counter.
//   - Arrival timestamps are the constant 1700000000 (s for Kinesis, ms for
//     Firehose); account, region and ARNs are fixed placeholders.
//
// Use:
//   using filebuilder::SplitFormat;
//   filebuilder::Splitter splitter({.chunk_size = 65536, .format = SplitFormat::lambda});
//   auto write = [](std::string_view line) { std::fwrite(line.data(), 1, line.size(), stdout); };
//   splitter.add_file("https://bucket.s3.amazonaws.com/a.jpg?X-Amz-...", bytes, write);
//   splitter.finish(write);  // flushes a partial event
//
// To stream a file too large to hold, compute partition_count(size) up front
// and feed the chunks in order with add_chunk(), reading chunk_size bytes at a
// time. An event is held in memory until it is full: for lambda and firehose
// about records_per_event * chunk_size * 16 / 9 bytes (the defaults give
// events of ~47 MB, above Lambda's 6 MB payload limit: fine for replay, lower
// them to invoke a real function). With aggregation an event holds up to
// records_per_event aggregates of up to 1 MiB each, base64-encoded.
#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/detail/kpl_writer.hpp"

namespace filebuilder {

enum class SplitFormat : std::uint8_t {
  ndjson,    // one chunk record per line
  lambda,    // Lambda Kinesis events, one per line
  firehose,  // Firehose transformation events, one per line
};

/// "ndjson", "lambda" or "firehose".
[[nodiscard]] constexpr std::string_view split_format_name(SplitFormat format) noexcept;

/// The format named `name` (as split_format_name writes it), if any.
[[nodiscard]] constexpr std::optional<SplitFormat> parse_split_format(
    std::string_view name) noexcept;

struct SplitOptions {
  /// Decoded bytes per chunk (the last chunk of a file may be shorter); >= 1.
  std::size_t chunk_size = 262144;
  SplitFormat format = SplitFormat::ndjson;
  /// Records per event, for lambda and firehose; >= 1.
  std::size_t records_per_event = 100;
  /// KPL aggregation, for lambda and firehose: up to this many chunk records
  /// per Kinesis record (within 1 MiB); 0: off, one chunk record per Kinesis record.
  std::size_t aggregate = 0;
};

/// Empty when the options are usable; else a one-line reason, e.g. for a CLI
/// usage error.
[[nodiscard]] constexpr std::string_view validate_split_options(
    const SplitOptions& options) noexcept;

/// Receives the output, one complete line ('\n' included) per call. The view
/// is valid only during the call.
template <typename F>
concept SplitSink = std::invocable<F&, std::string_view>;

/// Splits files into records and events. Keeps its counters across files, so
/// that several files split by one Splitter form one stream (unique,
/// increasing sequence numbers). Not thread-safe; may be reused after
/// finish(). If a sink throws, the exception propagates and the line it was
/// given is lost.
class Splitter {
 public:
  /// A chunk_size or records_per_event of 0 is taken as 1: check options with
  /// validate_split_options() first to report them.
  explicit Splitter(SplitOptions options = {}) noexcept;

  [[nodiscard]] const SplitOptions& options() const noexcept { return options_; }

  /// The partitionCount of a file of file_size bytes: ceil(file_size /
  /// chunk_size), and 1 for an empty file.
  [[nodiscard]] std::uint64_t partition_count(std::uint64_t file_size) const noexcept;

  /// Adds every chunk of one file, in partition order. Complete lines go to
  /// sink; with lambda and firehose the last event may stay pending until a
  /// later call or finish().
  template <SplitSink Sink>
  void add_file(std::string_view endpoint, std::string_view bytes, Sink&& sink);

  /// Adds one chunk, for producers that read a file piece by piece. The caller
  /// keeps partition < partition_count and gives each file's chunks with the
  /// same partition_count (see partition_count()); nothing is checked.
  template <SplitSink Sink>
  void add_chunk(std::string_view endpoint, std::uint64_t partition, std::uint64_t partition_count,
                 std::string_view bytes, Sink&& sink);

  /// Writes the pending partial event, if any. Call it once the input ends;
  /// records not flushed are lost when the Splitter is destroyed.
  template <SplitSink Sink>
  void finish(Sink&& sink);

  /// Chunk records added so far (without aggregation also the last sequence
  /// counter used).
  [[nodiscard]] std::uint64_t records() const noexcept { return records_; }
  /// Kinesis records (or Firehose records) written so far: with aggregation
  /// the aggregates, else the chunk records of lambda and firehose events.
  [[nodiscard]] std::uint64_t kinesis_records() const noexcept { return kinesis_records_; }
  /// Lines passed to sinks so far.
  [[nodiscard]] std::uint64_t lines() const noexcept { return lines_; }

  /// One chunk record, without a newline.
  [[nodiscard]] static std::string chunk_record(std::string_view endpoint, std::uint64_t partition,
                                                std::uint64_t partition_count,
                                                std::string_view bytes);
  /// Appends one chunk record, without a newline, to out.
  static void append_chunk_record(std::string& out, std::string_view endpoint,
                                  std::uint64_t partition, std::uint64_t partition_count,
                                  std::string_view bytes);

  /// The 56-digit sequence number of the counter-th record (counter >= 1) of
  /// the stream whose first endpoint is `first_endpoint`.
  [[nodiscard]] static std::string sequence_number(std::string_view first_endpoint,
                                                   std::uint64_t counter);
  /// The Kinesis partition key of an endpoint's records (16 lowercase hex digits).
  [[nodiscard]] static std::string partition_key(std::string_view endpoint);

 private:
  template <typename Sink>
  void emit(Sink& sink);
  template <typename Sink>
  void close_event(Sink& sink);
  /// Appends one Kinesis record carrying `data` to the pending event.
  template <typename Sink>
  void add_kinesis_record(std::string_view partition_key, std::string_view data, Sink& sink);
  void open_event();
  void append_lambda_record(std::string_view partition_key, std::string_view data,
                            std::uint64_t counter);
  void append_firehose_record(std::string_view data, std::uint64_t counter);

  SplitOptions options_;
  std::string line_;    // the line being built: a record, or the pending event
  std::string record_;  // scratch: the chunk record wrapped in an event
  std::size_t in_event_ = 0;
  std::uint64_t records_ = 0;
  std::uint64_t stream_ = 0;  // the stream id in sequence numbers, set by the first record
  std::uint64_t events_ = 0;
  std::uint64_t lines_ = 0;
  std::uint64_t kinesis_records_ = 0;  // the sequence counter of lambda and firehose records
  kpl::Aggregator aggregator_;
  std::string key_;  // scratch: a partition key
};

// ---------------------------------------------------------------------------
// Definitions

constexpr std::string_view split_format_name(SplitFormat format) noexcept {
  switch (format) {
    case SplitFormat::ndjson: return "ndjson";
    case SplitFormat::lambda: return "lambda";
    case SplitFormat::firehose: return "firehose";
  }
  return "unknown";
}

constexpr std::optional<SplitFormat> parse_split_format(std::string_view name) noexcept {
  for (const SplitFormat format :
       {SplitFormat::ndjson, SplitFormat::lambda, SplitFormat::firehose}) {
    if (name == split_format_name(format)) return format;
  }
  return std::nullopt;
}

constexpr std::string_view validate_split_options(const SplitOptions& options) noexcept {
  if (options.chunk_size == 0) return "the chunk size must be at least 1 byte";
  if (options.records_per_event == 0) return "the records per event must be at least 1";
  if (options.aggregate != 0 && options.format == SplitFormat::ndjson)
    return "KPL aggregation needs the lambda or firehose format";
  switch (options.format) {
    case SplitFormat::ndjson:
    case SplitFormat::lambda:
    case SplitFormat::firehose: return {};
  }
  return "unknown split format";
}

namespace detail::split {

inline constexpr std::string_view kinesis_record_head =
    R"({"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":")";
inline constexpr std::string_view kinesis_record_tail =
    R"(","approximateArrivalTimestamp":1700000000.0},"eventSource":"aws:kinesis",)"
    R"("eventVersion":"1.0","eventID":"shardId-000000000000:)";
inline constexpr std::string_view kinesis_record_end =
    R"(","eventName":"aws:kinesis:record",)"
    R"("invokeIdentityArn":"arn:aws:iam::123456789012:role/filebuilder",)"
    R"("awsRegion":"us-east-1",)"
    R"("eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/filebuilder"})";
inline constexpr std::string_view firehose_event_tail =
    R"(","deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/filebuilder",)"
    R"("region":"us-east-1","records":[)";

inline void append_decimal(std::string& out, std::uint64_t value) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

/// Appends the `width` low hex digits of value, lowercase, zero-padded.
inline void append_hex(std::string& out, std::uint64_t value, unsigned width) {
  constexpr char hex[] = "0123456789abcdef";
  for (unsigned i = width; i-- > 0;) out.push_back(hex[(value >> (4 * i)) & 0x0F]);
}

inline void append_padded_decimal(std::string& out, std::uint64_t value, std::size_t width) {
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  const auto length = static_cast<std::size_t>(end - digits);
  out.append(width - length, '0');
  out.append(digits, length);
}

/// "4959" + the stream id in 20 digits + the counter in 32 digits.
inline void append_sequence_number(std::string& out, std::uint64_t stream, std::uint64_t counter) {
  out.append("4959");
  append_padded_decimal(out, stream, 20);
  append_padded_decimal(out, counter, 32);
}

/// FNV-1a, 64 bits.
[[nodiscard]] constexpr std::uint64_t fnv1a64(std::string_view s) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (const char c : s) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace detail::split

inline Splitter::Splitter(SplitOptions options) noexcept
    : options_(options), aggregator_(options.aggregate) {
  if (options_.chunk_size == 0) options_.chunk_size = 1;
  if (options_.records_per_event == 0) options_.records_per_event = 1;
  if (options_.format == SplitFormat::ndjson) options_.aggregate = 0;
}

inline std::uint64_t Splitter::partition_count(std::uint64_t file_size) const noexcept {
  const std::uint64_t chunk = options_.chunk_size;
  if (file_size == 0) return 1;
  return file_size / chunk + (file_size % chunk != 0 ? 1 : 0);
}

template <SplitSink Sink>
void Splitter::add_file(std::string_view endpoint, std::string_view bytes, Sink&& sink) {
  const std::uint64_t count = partition_count(bytes.size());
  for (std::uint64_t partition = 0; partition < count; ++partition) {
    const auto offset = static_cast<std::size_t>(partition * options_.chunk_size);
    add_chunk(endpoint, partition, count, bytes.substr(offset, options_.chunk_size), sink);
  }
}

template <SplitSink Sink>
void Splitter::add_chunk(std::string_view endpoint, std::uint64_t partition,
                         std::uint64_t partition_count, std::string_view bytes, Sink&& sink) {
  const std::uint64_t counter = ++records_;
  if (counter == 1) stream_ = detail::split::fnv1a64(endpoint);
  if (options_.format == SplitFormat::ndjson) {
    line_.clear();
    append_chunk_record(line_, endpoint, partition, partition_count, bytes);
    line_.push_back('\n');
    emit(sink);
    return;
  }
  record_.clear();
  append_chunk_record(record_, endpoint, partition, partition_count, bytes);
  key_.clear();
  detail::split::append_hex(key_, detail::split::fnv1a64(endpoint), 16);
  if (options_.aggregate == 0) {
    add_kinesis_record(key_, record_, sink);
    return;
  }
  const auto add = [&](const kpl::Aggregate& aggregate) {
    add_kinesis_record(aggregate.partition_key, aggregate.bytes, sink);
  };
  // One file per aggregate: a file's chunks keep one partition key.
  if (aggregator_.pending() > 0 && aggregator_.partition_key() != key_) aggregator_.flush(add);
  aggregator_.add(key_, {}, record_, add);
}

template <SplitSink Sink>
void Splitter::finish(Sink&& sink) {
  aggregator_.flush([&](const kpl::Aggregate& aggregate) {
    add_kinesis_record(aggregate.partition_key, aggregate.bytes, sink);
  });
  close_event(sink);
}

template <typename Sink>
void Splitter::add_kinesis_record(std::string_view partition_key, std::string_view data,
                                  Sink& sink) {
  const std::uint64_t counter = ++kinesis_records_;
  if (in_event_ == 0) {
    open_event();
  } else {
    line_.push_back(',');
  }
  if (options_.format == SplitFormat::lambda) {
    append_lambda_record(partition_key, data, counter);
  } else {
    append_firehose_record(data, counter);
  }
  if (++in_event_ == options_.records_per_event) close_event(sink);
}

template <typename Sink>
void Splitter::close_event(Sink& sink) {
  if (in_event_ == 0) return;
  in_event_ = 0;
  line_.append("]}\n");
  emit(sink);
}

template <typename Sink>
void Splitter::emit(Sink& sink) {
  ++lines_;
  sink(std::string_view(line_));
}

inline void Splitter::open_event() {
  line_.clear();
  ++events_;
  if (options_.format == SplitFormat::lambda) {
    line_.append(R"({"Records":[)");
  } else {
    // A UUID-shaped id: the top 16 bits of the counter, then the low 48.
    line_.append(R"({"invocationId":"00000000-)");
    detail::split::append_hex(line_, events_ >> 48, 4);
    line_.append("-4000-8000-");
    detail::split::append_hex(line_, events_, 12);
    line_.append(detail::split::firehose_event_tail);
  }
}

inline void Splitter::append_lambda_record(std::string_view partition_key, std::string_view data,
                                           std::uint64_t counter) {
  line_.append(detail::split::kinesis_record_head);
  line_.append(partition_key);
  line_.append(R"(","sequenceNumber":")");
  detail::split::append_sequence_number(line_, stream_, counter);
  line_.append(R"(","data":")");
  base64::encode_append(data, line_);
  line_.append(detail::split::kinesis_record_tail);
  detail::split::append_sequence_number(line_, stream_, counter);
  line_.append(detail::split::kinesis_record_end);
}

inline void Splitter::append_firehose_record(std::string_view data, std::uint64_t counter) {
  line_.append(R"({"recordId":"r)");
  detail::split::append_sequence_number(line_, stream_, counter);
  line_.append(R"(","approximateArrivalTimestamp":1700000000000,"data":")");
  base64::encode_append(data, line_);
  line_.append(R"("})");
}

inline std::string Splitter::chunk_record(std::string_view endpoint, std::uint64_t partition,
                                          std::uint64_t partition_count, std::string_view bytes) {
  std::string out;
  append_chunk_record(out, endpoint, partition, partition_count, bytes);
  return out;
}

inline void Splitter::append_chunk_record(std::string& out, std::string_view endpoint,
                                          std::uint64_t partition, std::uint64_t partition_count,
                                          std::string_view bytes) {
  out.reserve(out.size() + endpoint.size() + base64::encoded_size(bytes.size()) + 96);
  out.append(R"({"putEndpoint":)");
  detail::append_json_string(out, endpoint);
  out.append(R"(,"partition":)");
  detail::split::append_decimal(out, partition);
  out.append(R"(,"partitionCount":)");
  detail::split::append_decimal(out, partition_count);
  out.append(R"(,"content":")");
  base64::encode_append(bytes, out);
  out.append(R"("})");
}

inline std::string Splitter::sequence_number(std::string_view first_endpoint,
                                             std::uint64_t counter) {
  std::string out;
  detail::split::append_sequence_number(out, detail::split::fnv1a64(first_endpoint), counter);
  return out;
}

inline std::string Splitter::partition_key(std::string_view endpoint) {
  std::string out;
  detail::split::append_hex(out, detail::split::fnv1a64(endpoint), 16);
  return out;
}

}  // namespace filebuilder
