// filebuilder: error codes shared by every layer (parsing, stores, uploads, adapters).
//
// The hot path never throws: functions return an ErrorCode or a Result<T>. The
// snake_case name of a code (error_code_name) is stable and is what logs, dead
// letters and replies carry; never rename one, only add.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

namespace filebuilder {

enum class ErrorCode : std::uint8_t {
  ok = 0,
  // Chunk parsing.
  invalid_json,             // not valid JSON
  not_an_object,            // valid JSON, but not an object
  too_deep,                 // nesting deeper than the fixed limit
  missing_field,            // putEndpoint, partition, partitionCount or content absent
  duplicate_field,          // a known field given twice (ambiguous across parsers)
  wrong_type,               // a known field of the wrong JSON type
  invalid_partition,        // partition not a non-negative integer
  invalid_partition_count,  // partitionCount not a positive integer
  partition_out_of_range,   // partition >= partitionCount
  bad_base64,               // content is not strict RFC 4648 base64
  // Limits.
  part_too_large,       // decoded part larger than Limits::max_part_bytes
  file_too_large,       // the file's parts add up to more than Limits::max_file_bytes
  too_many_partitions,  // partitionCount above Limits::max_partitions
  // Endpoint policy.
  endpoint_invalid,      // putEndpoint is not a URL we can parse safely
  endpoint_scheme,       // neither http nor https (or http to a host not allowed)
  endpoint_not_allowed,  // host or connected address in a refused range
  // State.
  partition_conflict,        // same endpoint+partition, other bytes
  partition_count_conflict,  // other partitionCount for a known endpoint
  store_full,                // a store limit (bytes, open files) is reached: transient
  store_unavailable,         // the store cannot be reached: transient
  invalid_checkpoint,        // a checkpoint's stream, shard or sequence number is malformed
  // Upload.
  upload_failed,   // transient: connection error, timeout, 408, 429, 5xx after retries
  upload_refused,  // permanent: 3xx, other 4xx, refused address
  // Envelopes.
  bad_record_data,  // the envelope's data is not base64
  bad_event,        // the envelope is not a recognised event
  kpl_bad_index,    // a KPL user record's key index is out of range
  // Configuration.
  invalid_config,  // a setting (flag or environment variable) is not valid
  // Adapters.
  deadline,  // not processed: the invocation's deadline was near (transient: retried)
  // AWS.
  missing_credentials,      // no credentials source has credentials (or only partial ones)
  credentials_unavailable,  // a configured credentials source failed (unreachable, bad reply)
  signing_failed,           // a request cannot be signed (a header with a line break)
  // Kinesis.
  kinesis_error,        // Kinesis refused a request (no such stream, a bad argument, access
                        // denied) or its reply is unusable: permanent
  kinesis_unavailable,  // connection error, timeout, HTTP 5xx after the retries: transient
  throttled,            // ProvisionedThroughputExceeded, LimitExceeded, HTTP 429 after the retries
  iterator_expired,     // the shard iterator expired: get another from the checkpoint
};

/// The stable snake_case name of a code, as written in logs and replies.
[[nodiscard]] constexpr std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::ok: return "ok";
    case ErrorCode::invalid_json: return "invalid_json";
    case ErrorCode::not_an_object: return "not_an_object";
    case ErrorCode::too_deep: return "too_deep";
    case ErrorCode::missing_field: return "missing_field";
    case ErrorCode::duplicate_field: return "duplicate_field";
    case ErrorCode::wrong_type: return "wrong_type";
    case ErrorCode::invalid_partition: return "invalid_partition";
    case ErrorCode::invalid_partition_count: return "invalid_partition_count";
    case ErrorCode::partition_out_of_range: return "partition_out_of_range";
    case ErrorCode::bad_base64: return "bad_base64";
    case ErrorCode::part_too_large: return "part_too_large";
    case ErrorCode::file_too_large: return "file_too_large";
    case ErrorCode::too_many_partitions: return "too_many_partitions";
    case ErrorCode::endpoint_invalid: return "endpoint_invalid";
    case ErrorCode::endpoint_scheme: return "endpoint_scheme";
    case ErrorCode::endpoint_not_allowed: return "endpoint_not_allowed";
    case ErrorCode::partition_conflict: return "partition_conflict";
    case ErrorCode::partition_count_conflict: return "partition_count_conflict";
    case ErrorCode::store_full: return "store_full";
    case ErrorCode::store_unavailable: return "store_unavailable";
    case ErrorCode::invalid_checkpoint: return "invalid_checkpoint";
    case ErrorCode::upload_failed: return "upload_failed";
    case ErrorCode::upload_refused: return "upload_refused";
    case ErrorCode::bad_record_data: return "bad_record_data";
    case ErrorCode::bad_event: return "bad_event";
    case ErrorCode::kpl_bad_index: return "kpl_bad_index";
    case ErrorCode::invalid_config: return "invalid_config";
    case ErrorCode::deadline: return "deadline";
    case ErrorCode::missing_credentials: return "missing_credentials";
    case ErrorCode::credentials_unavailable: return "credentials_unavailable";
    case ErrorCode::signing_failed: return "signing_failed";
    case ErrorCode::kinesis_error: return "kinesis_error";
    case ErrorCode::kinesis_unavailable: return "kinesis_unavailable";
    case ErrorCode::throttled: return "throttled";
    case ErrorCode::iterator_expired: return "iterator_expired";
  }
  return "unknown";
}

/// A one-line human description of a code.
[[nodiscard]] constexpr std::string_view error_message(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::ok: return "no error";
    case ErrorCode::invalid_json: return "the record is not valid JSON";
    case ErrorCode::not_an_object: return "the record is not a JSON object";
    case ErrorCode::too_deep: return "the record's JSON is nested too deeply";
    case ErrorCode::missing_field: return "a required field is missing";
    case ErrorCode::duplicate_field: return "a field is given more than once";
    case ErrorCode::wrong_type: return "a field has the wrong JSON type";
    case ErrorCode::invalid_partition: return "partition is not a non-negative integer";
    case ErrorCode::invalid_partition_count: return "partitionCount is not a positive integer";
    case ErrorCode::partition_out_of_range: return "partition is not below partitionCount";
    case ErrorCode::bad_base64: return "content is not valid padded base64";
    case ErrorCode::part_too_large: return "the part is larger than the part size limit";
    case ErrorCode::file_too_large: return "the file is larger than the file size limit";
    case ErrorCode::too_many_partitions: return "partitionCount is above the partition limit";
    case ErrorCode::endpoint_invalid: return "putEndpoint is not a valid URL";
    case ErrorCode::endpoint_scheme: return "putEndpoint's scheme is not allowed";
    case ErrorCode::endpoint_not_allowed: return "putEndpoint's host or address is not allowed";
    case ErrorCode::partition_conflict: return "the partition is already stored with other bytes";
    case ErrorCode::partition_count_conflict:
      return "the file is already known with another partitionCount";
    case ErrorCode::store_full: return "the state store is full";
    case ErrorCode::store_unavailable: return "the state store is unavailable";
    case ErrorCode::invalid_checkpoint:
      return "the checkpoint's stream, shard or sequence number is not valid";
    case ErrorCode::upload_failed: return "the upload failed; it will be retried";
    case ErrorCode::upload_refused: return "the upload target refused the file";
    case ErrorCode::bad_record_data: return "the record's data is not valid base64";
    case ErrorCode::bad_event: return "not a recognised event";
    case ErrorCode::kpl_bad_index: return "a KPL user record's key index is out of range";
    case ErrorCode::invalid_config: return "a setting is not valid";
    case ErrorCode::deadline:
      return "not processed before the invocation's deadline; it will be retried";
    case ErrorCode::missing_credentials: return "no AWS credentials were found";
    case ErrorCode::credentials_unavailable: return "the AWS credentials source failed";
    case ErrorCode::signing_failed: return "the request cannot be signed";
    case ErrorCode::kinesis_error: return "Kinesis refused the request";
    case ErrorCode::kinesis_unavailable: return "Kinesis cannot be reached; it will be retried";
    case ErrorCode::throttled: return "Kinesis throttled the request; it will be retried";
    case ErrorCode::iterator_expired: return "the shard iterator expired";
  }
  return "unknown error";
}

/// A value or an error, in the manner of simdjson_result<T>: check error() or
/// call get(out), which returns the error and assigns the value on success.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT: implicit
      : value_(std::move(value)) {}
  Result(ErrorCode error) noexcept : error_(error) {}  // NOLINT: implicit

  [[nodiscard]] ErrorCode error() const noexcept { return error_; }
  [[nodiscard]] bool ok() const noexcept { return error_ == ErrorCode::ok; }

  [[nodiscard]] ErrorCode get(T& out) && noexcept(std::is_nothrow_move_assignable_v<T>) {
    if (error_ == ErrorCode::ok) out = std::move(value_);
    return error_;
  }
  /// The value; only meaningful when ok().
  [[nodiscard]] T& value_unsafe() & noexcept { return value_; }
  [[nodiscard]] const T& value_unsafe() const& noexcept { return value_; }

 private:
  T value_{};
  ErrorCode error_{ErrorCode::ok};
};

}  // namespace filebuilder

/// Returns early from the enclosing function with the error of EXPR, if any.
#define FILEBUILDER_TRY(EXPR)                            \
  do {                                                   \
    if (::filebuilder::ErrorCode fb_try_error_ = (EXPR); \
        fb_try_error_ != ::filebuilder::ErrorCode::ok)   \
      return fb_try_error_;                              \
  } while (false)
