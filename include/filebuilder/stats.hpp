// filebuilder: counters of what a Reassembler did, readable from any thread,
// and their Prometheus text form.
//
// The Reassembler tallies a batch in plain variables and adds it to these
// atomics once per flush(), so the hot path pays nothing per record and a
// metrics thread can read them while the consumer runs.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "filebuilder/error.hpp"

namespace filebuilder {

/// How many ErrorCode values there are (ok included): the size of per-code tables.
inline constexpr std::size_t error_code_count =
    static_cast<std::size_t>(ErrorCode::iterator_expired) + 1;

/// Monotonic counters and a latency histogram of uploads. Each field is read
/// on its own (relaxed): a reader sees every counter at or behind the truth,
/// never ahead, but two counters are not a consistent pair.
class ReassemblerStats {
 public:
  using Counter = std::atomic<std::uint64_t>;

  /// Upper bounds of the upload latency buckets, in seconds (then +Inf).
  static constexpr std::array<double, 12> latency_bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                         0.5,   1,    2.5,   5,    10,  30};

  ReassemblerStats() = default;
  ReassemblerStats(const ReassemblerStats& other) noexcept { copy_from(other); }
  ReassemblerStats& operator=(const ReassemblerStats& other) noexcept {
    if (this != &other) copy_from(other);
    return *this;
  }

  // Records, each time it is handed to add() (a redelivered record counts again).
  Counter records_accepted{0};   // a new part stored
  Counter records_duplicate{0};  // the part was stored already
  Counter records_uploaded{0};   // completed a file that was uploaded
  Counter records_failed{0};     // transient failure: the source retries it
  std::array<Counter, error_code_count> records_rejected{};  // by error code

  Counter bytes_decoded{0};  // decoded content bytes handed to the store

  // Uploads (files), pending retries by flush() included.
  Counter files_uploaded{0};
  Counter upload_failures{0};  // ended retryable: the file stays pending
  Counter upload_refusals{0};  // ended permanent: the parts are dropped

  // Upload latency (from the first attempt to the final status) of every
  // upload that made at least one request: cumulative buckets as Prometheus
  // wants them are built when writing; these are per-bucket counts.
  std::array<Counter, latency_bounds.size() + 1> latency_buckets{};
  Counter latency_count{0};
  Counter latency_sum_ns{0};

  [[nodiscard]] std::uint64_t records() const noexcept {
    std::uint64_t total = get(records_accepted) + get(records_duplicate) + get(records_uploaded) +
                          get(records_failed);
    for (const Counter& c : records_rejected) total += get(c);
    return total;
  }

  void observe_upload(std::chrono::nanoseconds elapsed) noexcept {
    const double seconds = std::chrono::duration<double>(elapsed).count();
    std::size_t bucket = 0;
    while (bucket < latency_bounds.size() && seconds > latency_bounds[bucket]) ++bucket;
    add(latency_buckets[bucket], 1);
    add(latency_count, 1);
    add(latency_sum_ns, static_cast<std::uint64_t>(elapsed.count() > 0 ? elapsed.count() : 0));
  }

  static void add(Counter& counter, std::uint64_t n) noexcept {
    if (n != 0) counter.fetch_add(n, std::memory_order_relaxed);
  }
  [[nodiscard]] static std::uint64_t get(const Counter& counter) noexcept {
    return counter.load(std::memory_order_relaxed);
  }

 private:
  void copy_from(const ReassemblerStats& other) noexcept {
    auto copy = [](Counter& to, const Counter& from) {
      to.store(get(from), std::memory_order_relaxed);
    };
    copy(records_accepted, other.records_accepted);
    copy(records_duplicate, other.records_duplicate);
    copy(records_uploaded, other.records_uploaded);
    copy(records_failed, other.records_failed);
    for (std::size_t i = 0; i < records_rejected.size(); ++i)
      copy(records_rejected[i], other.records_rejected[i]);
    copy(bytes_decoded, other.bytes_decoded);
    copy(files_uploaded, other.files_uploaded);
    copy(upload_failures, other.upload_failures);
    copy(upload_refusals, other.upload_refusals);
    for (std::size_t i = 0; i < latency_buckets.size(); ++i)
      copy(latency_buckets[i], other.latency_buckets[i]);
    copy(latency_count, other.latency_count);
    copy(latency_sum_ns, other.latency_sum_ns);
  }
};

namespace detail {

inline void prometheus_header(std::string& out, std::string_view name, std::string_view type,
                              std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

inline void prometheus_sample(std::string& out, std::string_view name, std::string_view labels,
                              std::uint64_t value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(std::to_string(value)).append("\n");
}

/// A double in the shortest form that reads back exactly enough for bounds
/// and sums ("0.005", "2.5", "30").
[[nodiscard]] inline std::string prometheus_number(double value) {
  std::string text = std::to_string(value);  // fixed, 6 decimals
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

}  // namespace detail

/// Appends the stats in the Prometheus text exposition format (version 0.0.4):
///   filebuilder_records_total{outcome="accepted|duplicate|uploaded|failed|rejected"}
///   filebuilder_records_rejected_total{code="..."}   one line per code seen
///   filebuilder_bytes_decoded_total
///   filebuilder_files_uploaded_total, filebuilder_upload_failures_total,
///   filebuilder_upload_refusals_total
///   filebuilder_upload_duration_seconds (histogram)
inline void write_prometheus(const ReassemblerStats& stats, std::string& out) {
  using detail::prometheus_header;
  using detail::prometheus_sample;
  using S = ReassemblerStats;

  std::uint64_t rejected = 0;
  for (const S::Counter& c : stats.records_rejected) rejected += S::get(c);
  prometheus_header(out, "filebuilder_records_total", "counter",
                    "Records handled, by outcome (a redelivered record counts again).");
  prometheus_sample(out, "filebuilder_records_total", "outcome=\"accepted\"",
                    S::get(stats.records_accepted));
  prometheus_sample(out, "filebuilder_records_total", "outcome=\"duplicate\"",
                    S::get(stats.records_duplicate));
  prometheus_sample(out, "filebuilder_records_total", "outcome=\"uploaded\"",
                    S::get(stats.records_uploaded));
  prometheus_sample(out, "filebuilder_records_total", "outcome=\"failed\"",
                    S::get(stats.records_failed));
  prometheus_sample(out, "filebuilder_records_total", "outcome=\"rejected\"", rejected);

  prometheus_header(out, "filebuilder_records_rejected_total", "counter",
                    "Records rejected, by error code.");
  for (std::size_t i = 1; i < stats.records_rejected.size(); ++i) {
    const std::uint64_t n = S::get(stats.records_rejected[i]);
    if (n == 0) continue;
    std::string labels = "code=\"";
    labels.append(error_code_name(static_cast<ErrorCode>(i))).append("\"");
    prometheus_sample(out, "filebuilder_records_rejected_total", labels, n);
  }

  prometheus_header(out, "filebuilder_bytes_decoded_total", "counter",
                    "Decoded chunk content bytes handed to the store.");
  prometheus_sample(out, "filebuilder_bytes_decoded_total", {}, S::get(stats.bytes_decoded));
  prometheus_header(out, "filebuilder_files_uploaded_total", "counter", "Files uploaded.");
  prometheus_sample(out, "filebuilder_files_uploaded_total", {}, S::get(stats.files_uploaded));
  prometheus_header(out, "filebuilder_upload_failures_total", "counter",
                    "Uploads that failed after their retries (the file stays pending).");
  prometheus_sample(out, "filebuilder_upload_failures_total", {}, S::get(stats.upload_failures));
  prometheus_header(out, "filebuilder_upload_refusals_total", "counter",
                    "Uploads the target refused for good (the parts are dropped).");
  prometheus_sample(out, "filebuilder_upload_refusals_total", {}, S::get(stats.upload_refusals));

  const std::string_view histogram = "filebuilder_upload_duration_seconds";
  prometheus_header(out, histogram, "histogram",
                    "Upload latency, from the first request to the final status.");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < stats.latency_buckets.size(); ++i) {
    cumulative += S::get(stats.latency_buckets[i]);
    const std::string bound =
        i < S::latency_bounds.size() ? detail::prometheus_number(S::latency_bounds[i]) : "+Inf";
    out.append(histogram).append("_bucket{le=\"").append(bound).append("\"} ");
    out.append(std::to_string(cumulative)).append("\n");
  }
  out.append(histogram).append("_sum ");
  out.append(detail::prometheus_number(static_cast<double>(S::get(stats.latency_sum_ns)) / 1e9));
  out.append("\n");
  // The count is the +Inf bucket, so the two always agree.
  prometheus_sample(out, std::string(histogram) + "_count", {}, cumulative);
}

}  // namespace filebuilder
