// filebuilder: what every HTTP uploader decides the same way: which jobs are
// refused before any request, what the end of one attempt means for its job
// (success, a permanent refusal, or a retry after a backoff), and the job's
// final status and message. CurlUploader and BeastUploader only move bytes;
// the verdicts are made here, once.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "filebuilder/concepts.hpp"
#include "filebuilder/detail/backoff.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/upload/options.hpp"
#include "filebuilder/upload/policy.hpp"

namespace filebuilder::detail {

/// What a finished attempt means for its job.
enum class AttemptVerdict : std::uint8_t { success, retry, permanent };

/// 2xx success; 408, 429 and 5xx retryable; 3xx (never followed) and other
/// 4xx permanent; anything else (no final status) retryable.
[[nodiscard]] constexpr AttemptVerdict classify_http_status(long status) noexcept {
  if (status >= 200 && status <= 299) return AttemptVerdict::success;
  if (status == 408 || status == 429 || (status >= 500 && status <= 599)) {
    return AttemptVerdict::retry;
  }
  if (status >= 300 && status <= 499) return AttemptVerdict::permanent;
  return AttemptVerdict::retry;
}

inline void settle_permanent(UploadJob& job, ErrorCode error, std::string message) {
  job.status = UploadStatus::permanent;
  job.error = error;
  job.message = std::move(message);
}

/// Resets the job's result fields, then refuses it before any request when it
/// has no body, its URL is malformed or the policy refuses it (permanent).
/// The parsed URL when the job may go on.
[[nodiscard]] inline std::optional<Url> admit_job(UploadJob& job, const EndpointPolicy& policy) {
  job.status = UploadStatus::retryable;
  job.http_status = 0;
  job.attempts = 0;
  job.error = ErrorCode::ok;
  job.message.clear();
  job.elapsed = {};
  if (job.body == nullptr) {
    settle_permanent(job, ErrorCode::upload_refused, "no body");
    return std::nullopt;
  }
  Url url;
  if (const ErrorCode error = parse_url(job.url).get(url); error != ErrorCode::ok) {
    settle_permanent(job, error, std::string(error_message(error)));
    return std::nullopt;
  }
  if (const ErrorCode error = policy.check(job.url); error != ErrorCode::ok) {
    settle_permanent(job, error, std::string(error_message(error)));
    return std::nullopt;
  }
  return url;
}

/// How one attempt ended, as the transport saw it.
struct AttemptResult {
  long http_status = 0;         // the final status received, 0 when none
  bool exchanged = false;       // request sent and response read in full
  std::string transport_error;  // why not, when !exchanged ("connection refused", ...)
  bool url_unusable = false;    // the transport cannot use the URL (permanent endpoint_invalid)
  std::optional<std::string> refused_address;  // an address the policy refused ("" unknown)
  std::optional<std::string> read_error;       // the body could not be read
  std::chrono::seconds retry_after{0};         // the server's Retry-After, 0 when none
};

/// The retry policy of one uploader: bounded attempts, exponential backoff
/// with full jitter, Retry-After honoured up to backoff_max.
class RetryPolicy {
 public:
  explicit RetryPolicy(const UploaderOptions& options)
      : max_attempts_(std::max(1U, options.max_attempts)),
        base_(options.backoff_base),
        cap_(options.backoff_max) {
    rng_.seed(std::random_device{}());
  }

  [[nodiscard]] unsigned max_attempts() const noexcept { return max_attempts_; }

  /// Settles `job` after an attempt (job.attempts already counts it). True
  /// when the job's status is final; false when it is to be retried after
  /// `delay` (job.message then says why the attempt failed).
  [[nodiscard]] bool settle(UploadJob& job, AttemptResult result,
                            std::chrono::milliseconds& delay) {
    if (result.http_status != 0) job.http_status = result.http_status;
    if (!result.exchanged && result.refused_address) {
      settle_permanent(job, ErrorCode::endpoint_not_allowed,
                       "connecting to " +
                           (result.refused_address->empty() ? std::string("the address")
                                                            : *result.refused_address) +
                           " is not allowed");
      return true;
    }
    if (result.read_error) return retry_or_fail(job, std::move(*result.read_error), {}, delay);
    const long status = result.http_status;
    if (result.exchanged ||
        (status != 0 && classify_http_status(status) == AttemptVerdict::permanent)) {
      // A refusal that arrived before the body was all sent (the server then
      // closes the connection) counts as a refusal: the status decides.
      switch (classify_http_status(status)) {
        case AttemptVerdict::success:
          job.status = UploadStatus::success;
          job.error = ErrorCode::ok;
          job.message.clear();
          return true;
        case AttemptVerdict::permanent:
          settle_permanent(job, ErrorCode::upload_refused, "HTTP " + std::to_string(status));
          return true;
        case AttemptVerdict::retry:
          return retry_or_fail(job, "HTTP " + std::to_string(status), result.retry_after, delay);
      }
    }
    if (result.url_unusable) {
      settle_permanent(job, ErrorCode::endpoint_invalid, std::move(result.transport_error));
      return true;
    }
    return retry_or_fail(job, std::move(result.transport_error), {}, delay);
  }

 private:
  bool retry_or_fail(UploadJob& job, std::string message, std::chrono::seconds retry_after,
                     std::chrono::milliseconds& delay) {
    if (job.attempts >= max_attempts_) {
      job.status = UploadStatus::retryable;
      job.error = ErrorCode::upload_failed;
      job.message = std::move(message) + " after " + std::to_string(job.attempts) +
                    (job.attempts == 1 ? " attempt" : " attempts");
      return true;
    }
    delay = full_jitter_backoff(base_, cap_, job.attempts, rng_);
    if (retry_after.count() > 0) {
      const auto asked = std::chrono::milliseconds{
          std::min<std::int64_t>(retry_after.count(), std::numeric_limits<std::int32_t>::max()) *
          1000};
      delay = std::max(delay, std::min(asked, cap_));
    }
    job.message = std::move(message);
    return false;
  }

  unsigned max_attempts_;
  std::chrono::milliseconds base_;
  std::chrono::milliseconds cap_;
  std::minstd_rand rng_;
};

}  // namespace filebuilder::detail
