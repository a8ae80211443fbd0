// filebuilder: a Kinesis Data Streams client over libcurl (components filebuilder::curl and
// filebuilder::crypto), for consumers that read a stream themselves (filebuilderd).
//
//   aws::KinesisOptions options;
//   options.region = "eu-west-1";             // endpoint https://kinesis.eu-west-1.amazonaws.com
//   aws::KinesisClient kinesis(options);      // credentials: the usual chain (credentials.hpp)
//   std::vector<aws::Shard> shards;
//   aws::KinesisStatus status = kinesis.list_shards("chunks", shards);
//   std::string iterator;
//   status = kinesis.get_shard_iterator("chunks", shards[0].shard_id,
//                                       aws::ShardIteratorType::trim_horizon, {}, iterator);
//   aws::GetRecordsResult batch;              // reuse it: its buffers are kept
//   status = kinesis.get_records(iterator, batch);
//   for (const aws::KinesisRecord& r : batch.records) use(r.sequence_number, r.data);
//   if (status.code == ErrorCode::iterator_expired) ... // AFTER_SEQUENCE_NUMBER the checkpoint
//
// The protocol is Kinesis's JSON one: POST / with Content-Type
// application/x-amz-json-1.1 and X-Amz-Target Kinesis_20131202.<Operation>,
// signed with SigV4 (service "kinesis"). One libcurl easy handle serves every
// request, so the connection (and TLS session) is kept alive between calls.
// Replies are read with simdjson on-demand from a buffer kept between calls;
// record data is decoded with filebuilder::base64 into one buffer the client
// owns: the views of a GetRecordsResult stay valid until the next
// get_records() on the same client (other calls do not touch them).
//
// Retries happen inside each call, for what is worth retrying: throttling
// (ProvisionedThroughputExceededException, LimitExceededException,
// ThrottlingException, KMSThrottlingException, HTTP 429), HTTP 500/502/503/504,
// connection errors and timeouts; waits are exponential with full jitter,
// bounded in count (max_attempts) and time (retry_budget). An expired iterator
// is never retried: it comes back as iterator_expired, and the caller gets a
// new iterator from its checkpoint. Every other refusal (no such stream, bad
// argument, access denied) is kinesis_error; a reply that cannot be read is
// kinesis_error too. Missing credentials are missing_credentials (or
// credentials_unavailable), with the chain's explanation in the message.
//
// The endpoint is trusted configuration: no SSRF policy applies to it (unlike
// upload targets), but redirects are never followed, proxies are never used,
// only http and https are spoken, and TLS is verified.
//
// A client is used by one thread at a time, like a simdjson parser; use one
// client per thread.
#pragma once

#include <curl/curl.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "filebuilder/aws/credentials.hpp"
#include "filebuilder/aws/sigv4.hpp"
#include "filebuilder/base64.hpp"
#include "filebuilder/detail/backoff.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/error.hpp"
#include "filebuilder/upload/curl.hpp"

namespace filebuilder::aws {

struct KinesisStatus;

struct KinesisOptions {
  std::string region;    // required: "us-east-1"
  std::string endpoint;  // empty: default_kinesis_endpoint(region); http(s)://host[:port][/]
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{30'000};  // per attempt
  unsigned max_attempts = 8;                          // 1 + retries; 0 counts as 1
  std::chrono::milliseconds backoff_base{100};        // the first retry waits up to this
  std::chrono::milliseconds backoff_max{5'000};       // no wait is longer
  std::chrono::milliseconds retry_budget{30'000};     // no retry would end past this since the
                                                      // call began
  std::string ca_file;  // PEM file of trusted CAs (CURLOPT_CAINFO); empty: system
  std::string user_agent = "filebuilder";
  std::size_t max_reply_bytes = 64 << 20;  // a GetRecords reply is at most ~14 MB
  /// Waits `delay` before the next attempt after `last` failed; false stops
  /// retrying (the call returns `last` at once): a daemon makes the wait
  /// interruptible by a stop request, and logs. Empty: std::this_thread::sleep_for.
  std::function<bool(const KinesisStatus& last, std::chrono::milliseconds delay)> retry_wait;
};

/// "https://kinesis.REGION.amazonaws.com" (".amazonaws.com.cn" for cn- regions).
[[nodiscard]] inline std::string default_kinesis_endpoint(std::string_view region);

/// invalid_config, with why in `message`, when the options cannot work (no
/// region, an endpoint that is not an http(s) URL with an empty path).
[[nodiscard]] inline ErrorCode check_kinesis_options(const KinesisOptions& options,
                                                     std::string& message);

/// The outcome of one call: ok, or what went wrong.
struct KinesisStatus {
  ErrorCode code = ErrorCode::ok;  // ok, kinesis_error, kinesis_unavailable, throttled,
                                   // iterator_expired, missing_credentials, ...
  std::string type;                // AWS's error type (from __type), e.g.
                                   // "ResourceNotFoundException"; empty when none
  long http_status = 0;            // the last reply's status; 0: no reply
  std::string message;             // one line for logs: operation, status, type, AWS's message
  std::string request_id;          // x-amzn-RequestId of the last reply, for AWS support
  unsigned attempts = 0;           // requests sent

  [[nodiscard]] bool ok() const noexcept { return code == ErrorCode::ok; }
  /// Whether a later call may succeed without changing anything: throttled
  /// and kinesis_unavailable (the client's own retries ran out).
  [[nodiscard]] bool transient() const noexcept {
    return code == ErrorCode::throttled || code == ErrorCode::kinesis_unavailable;
  }
};

enum class ShardIteratorType : std::uint8_t {
  trim_horizon,           // the oldest record kept
  latest,                 // only records added after the iterator
  after_sequence_number,  // right after a sequence number (a checkpoint)
  at_sequence_number,     // at a sequence number
};

/// "TRIM_HORIZON", "LATEST", "AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER".
[[nodiscard]] constexpr std::string_view shard_iterator_type_name(ShardIteratorType type) noexcept;

struct Shard {
  std::string shard_id;
  std::string parent_shard_id;           // empty: none
  std::string adjacent_parent_shard_id;  // empty: none (set after a merge)
  std::string starting_hash_key;
  std::string ending_hash_key;
  std::string starting_sequence_number;
  std::optional<std::string> ending_sequence_number;  // set once the shard is closed

  [[nodiscard]] bool closed() const noexcept { return ending_sequence_number.has_value(); }
};

/// One record of a GetRecords reply. Views valid until the next get_records()
/// on the client that returned it.
struct KinesisRecord {
  std::string_view sequence_number;
  std::string_view partition_key;
  std::string_view data;                    // decoded bytes
  std::int64_t approximate_arrival_ms = 0;  // milliseconds since the epoch; 0 if not given
  /// ok, or bad_record_data when Data is not base64 (data is then empty and
  /// error_position says where the base64 breaks): reject this record only.
  ErrorCode error = ErrorCode::ok;
  std::size_t error_position = 0;
};

/// A shard that follows a closed one (GetRecords at the shard's end).
struct ChildShard {
  std::string shard_id;
  std::vector<std::string> parent_shards;
  std::string starting_hash_key;
  std::string ending_hash_key;
};

struct GetRecordsResult {
  std::vector<KinesisRecord> records;
  /// The iterator for the next call; nullopt once a closed shard is read to
  /// its end (then read its children).
  std::optional<std::string> next_shard_iterator;
  std::int64_t millis_behind_latest = 0;
  std::vector<ChildShard> child_shards;  // present at the end of a closed shard
};

namespace detail {
class KinesisState;
}

class KinesisClient {
 public:
  /// Credentials from `credentials`; empty: a CredentialsProvider of its own
  /// over the usual chain. Throws std::invalid_argument when the options are
  /// not usable (check_kinesis_options' message), std::runtime_error when
  /// libcurl cannot be initialised. A moved-from client may only be destroyed
  /// or assigned to.
  explicit KinesisClient(KinesisOptions options, CredentialsSource credentials = {});
  /// Credentials from a provider the caller keeps (it must outlive the client).
  KinesisClient(KinesisOptions options, CredentialsProvider& provider);
  ~KinesisClient();
  KinesisClient(KinesisClient&&) noexcept;
  KinesisClient& operator=(KinesisClient&&) noexcept;
  KinesisClient(const KinesisClient&) = delete;
  KinesisClient& operator=(const KinesisClient&) = delete;

  /// Every shard of the stream, open and closed, following NextToken (the
  /// follow-up requests carry NextToken only, as the API requires). `shards`
  /// is replaced.
  [[nodiscard]] KinesisStatus list_shards(std::string_view stream, std::vector<Shard>& shards);

  /// An iterator for the shard. `sequence_number` is needed (and only used)
  /// for after_sequence_number and at_sequence_number.
  [[nodiscard]] KinesisStatus get_shard_iterator(std::string_view stream, std::string_view shard_id,
                                                 ShardIteratorType type,
                                                 std::string_view sequence_number,
                                                 std::string& iterator);

  /// Up to `limit` records (1 to 10000) from the iterator. `out` is replaced
  /// (its vectors keep their capacity); its views stay valid until the next
  /// get_records() on this client.
  [[nodiscard]] KinesisStatus get_records(std::string_view iterator, GetRecordsResult& out,
                                          unsigned limit = 10'000);

  /// Any other operation ("PutRecords", "DescribeStreamSummary", ...): `body`
  /// is its JSON request; on success `reply` is the reply's JSON. Signed and
  /// retried like the others.
  [[nodiscard]] KinesisStatus call(std::string_view operation, std::string_view body,
                                   std::string& reply);

  [[nodiscard]] const KinesisOptions& options() const noexcept;
  /// The endpoint in use (the default one when the options left it empty).
  [[nodiscard]] const std::string& endpoint() const noexcept;

 private:
  std::unique_ptr<detail::KinesisState> state_;
};

// ---------------------------------------------------------------------------
// Implementation

inline std::string default_kinesis_endpoint(std::string_view region) {
  std::string url = "https://kinesis." + std::string(region) + ".amazonaws.com";
  if (region.starts_with("cn-")) url += ".cn";
  return url;
}

inline ErrorCode check_kinesis_options(const KinesisOptions& options, std::string& message) {
  if (options.region.empty()) {
    message = "the Kinesis region is not set";
    return ErrorCode::invalid_config;
  }
  for (char c : options.region) {
    const bool fine = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!fine) {
      message = "the Kinesis region is not a region name: " + options.region;
      return ErrorCode::invalid_config;
    }
  }
  const std::string endpoint =
      options.endpoint.empty() ? default_kinesis_endpoint(options.region) : options.endpoint;
  SigningRequest request;
  if (SigningRequest::for_url("POST", endpoint, request) != ErrorCode::ok) {
    message = "the Kinesis endpoint is not an http(s) URL: " + redact_url(endpoint);
    return ErrorCode::invalid_config;
  }
  if (request.path != "/" || !request.query.empty()) {
    message = "the Kinesis endpoint must have no path nor query: " + redact_url(endpoint);
    return ErrorCode::invalid_config;
  }
  return ErrorCode::ok;
}

constexpr std::string_view shard_iterator_type_name(ShardIteratorType type) noexcept {
  switch (type) {
    case ShardIteratorType::trim_horizon: return "TRIM_HORIZON";
    case ShardIteratorType::latest: return "LATEST";
    case ShardIteratorType::after_sequence_number: return "AFTER_SEQUENCE_NUMBER";
    case ShardIteratorType::at_sequence_number: return "AT_SEQUENCE_NUMBER";
  }
  return "TRIM_HORIZON";
}

namespace detail {

namespace od = simdjson::ondemand;

/// AWS's error type from a __type ("com.amazonaws...#ExpiredIteratorException")
/// or an x-amzn-ErrorType header ("ExpiredIteratorException:http://..."): the bare name.
[[nodiscard]] inline std::string_view bare_error_type(std::string_view type) noexcept {
  const std::size_t hash = type.rfind('#');
  if (hash != std::string_view::npos) type.remove_prefix(hash + 1);
  return type.substr(0, type.find(':'));
}

[[nodiscard]] inline bool is_throttling_type(std::string_view type) noexcept {
  return type == "ProvisionedThroughputExceededException" || type == "LimitExceededException" ||
         type == "ThrottlingException" || type == "KMSThrottlingException";
}

/// At most `limit` bytes of a reply, printable, for messages.
[[nodiscard]] inline std::string reply_excerpt(std::string_view body, std::size_t limit = 120) {
  std::string out;
  for (char c : body.substr(0, limit)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7F ? ' ' : c);
  }
  if (body.size() > limit) out += "...";
  return out;
}

/// Calls fn(key, value) for each field of an object, keys unescaped, in
/// document order; false when the object is broken or fn returns false.
template <typename Fn>
[[nodiscard]] bool each_field(od::object object, Fn&& fn) {
  for (auto item : object) {
    od::field field;
    std::string_view key;
    if (std::move(item).get(field) != simdjson::SUCCESS ||
        field.unescaped_key().get(key) != simdjson::SUCCESS || !fn(key, field.value()))
      return false;
  }
  return true;
}

template <typename Fn>
[[nodiscard]] bool each_field(od::value value, Fn&& fn) {
  od::object object;
  return value.get_object().get(object) == simdjson::SUCCESS &&
         each_field(object, std::forward<Fn>(fn));
}

/// Calls fn(value) for each element of an array; false when it is not one, or fn says so.
template <typename Fn>
[[nodiscard]] bool each_element(od::value value, Fn&& fn) {
  od::array array;
  if (value.get_array().get(array) != simdjson::SUCCESS) return false;
  for (auto item : array) {
    od::value element;
    if (std::move(item).get(element) != simdjson::SUCCESS || !fn(element)) return false;
  }
  return true;
}

/// The root object of a document, and nothing after it.
template <typename Fn>
[[nodiscard]] bool each_root_field(od::parser& parser, simdjson::padded_string_view json, Fn&& fn) {
  od::document document;
  od::object root;
  if (parser.iterate(json).get(document) != simdjson::SUCCESS ||
      document.get_object().get(root) != simdjson::SUCCESS ||
      !each_field(root, std::forward<Fn>(fn)))
    return false;
  const char* trailing = nullptr;
  return document.current_location().get(trailing) != simdjson::SUCCESS;
}

/// A string into `out`; null as nullopt. False when it is neither.
[[nodiscard]] inline bool optional_string(od::value value, std::optional<std::string>& out) {
  od::json_type type;
  if (value.type().get(type) != simdjson::SUCCESS) return false;
  if (type == od::json_type::null) {
    out.reset();
    return true;
  }
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS) return false;
  out = std::string(text);
  return true;
}

/// A string into `out`; null as empty. False when it is neither.
[[nodiscard]] inline bool string_or_null(od::value value, std::string& out) {
  std::optional<std::string> text;
  if (!optional_string(value, text)) return false;
  out = std::move(text).value_or(std::string());
  return true;
}

/// {"StartingHashKey":..,"EndingHashKey":..}, or the same of sequence numbers.
[[nodiscard]] inline bool read_range(od::value value, std::string_view first_key,
                                     std::string& first, std::string_view second_key,
                                     std::optional<std::string>& second) {
  return each_field(value, [&](std::string_view key, od::value item) {
    if (key == first_key) return string_or_null(item, first);
    if (key == second_key) return optional_string(item, second);
    return true;
  });
}

[[nodiscard]] inline bool read_hash_key_range(od::value value, std::string& start,
                                              std::string& end) {
  std::optional<std::string> ending;
  if (!read_range(value, "StartingHashKey", start, "EndingHashKey", ending)) return false;
  end = std::move(ending).value_or(std::string());
  return true;
}

[[nodiscard]] inline bool read_shard(od::value value, Shard& shard) {
  return each_field(
             value,
             [&](std::string_view key, od::value item) {
               if (key == "ShardId") return string_or_null(item, shard.shard_id);
               if (key == "ParentShardId") return string_or_null(item, shard.parent_shard_id);
               if (key == "AdjacentParentShardId")
                 return string_or_null(item, shard.adjacent_parent_shard_id);
               if (key == "HashKeyRange")
                 return read_hash_key_range(item, shard.starting_hash_key, shard.ending_hash_key);
               if (key == "SequenceNumberRange")
                 return read_range(item, "StartingSequenceNumber", shard.starting_sequence_number,
                                   "EndingSequenceNumber", shard.ending_sequence_number);
               return true;
             }) &&
         !shard.shard_id.empty();
}

/// A ListShards reply: its shards appended to `out`, its NextToken (empty: none).
[[nodiscard]] inline bool parse_list_shards(od::parser& parser, simdjson::padded_string_view json,
                                            std::vector<Shard>& out, std::string& next_token) {
  next_token.clear();
  return each_root_field(parser, json, [&](std::string_view key, od::value item) {
    if (key == "Shards")
      return each_element(item,
                          [&](od::value shard) { return read_shard(shard, out.emplace_back()); });
    if (key == "NextToken") return string_or_null(item, next_token);
    return true;
  });
}

/// A base64 string value, decoded into `out` (room for max_decoded_size of its
/// length). Decodes straight from the reply when the string has no escapes.
[[nodiscard]] inline bool decode_data(od::value value, char* out, KinesisRecord& record) {
  std::string_view text = value.raw_json_token();
  while (!text.empty() &&
         (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' || text.back() == '\r'))
    text.remove_suffix(1);
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return false;
  text = text.substr(1, text.size() - 2);
  if (text.find('\\') != std::string_view::npos &&
      value.get_string().get(text) != simdjson::SUCCESS)  // "\/" and the like: unescape first
    return false;
  const base64::DecodeResult decoded = base64::decode(text, out);
  if (decoded.error != ErrorCode::ok) {
    record.error = ErrorCode::bad_record_data;
    record.error_position = decoded.position;
    return true;
  }
  record.data = std::string_view(out, decoded.written);
  return true;
}

[[nodiscard]] inline bool read_record(od::value value, std::string& data, std::size_t& used,
                                      KinesisRecord& record) {
  bool has_data = false;
  return each_field(value,
                    [&](std::string_view key, od::value item) {
                      if (key == "Data") {
                        if (has_data || !decode_data(item, data.data() + used, record))
                          return false;
                        used += record.data.size();
                        has_data = true;
                      } else if (key == "SequenceNumber") {
                        return item.get_string().get(record.sequence_number) == simdjson::SUCCESS;
                      } else if (key == "PartitionKey") {
                        return item.get_string().get(record.partition_key) == simdjson::SUCCESS;
                      } else if (key == "ApproximateArrivalTimestamp") {
                        double seconds = 0;
                        if (item.get_double().get(seconds) != simdjson::SUCCESS) return false;
                        record.approximate_arrival_ms =
                            static_cast<std::int64_t>(std::llround(seconds * 1000.0));
                      }
                      return true;
                    }) &&
         has_data && !record.sequence_number.empty();
}

[[nodiscard]] inline bool read_child_shard(od::value value, ChildShard& child) {
  return each_field(value,
                    [&](std::string_view key, od::value item) {
                      if (key == "ShardId") return string_or_null(item, child.shard_id);
                      if (key == "ParentShards")
                        return each_element(item, [&](od::value parent) {
                          return string_or_null(parent, child.parent_shards.emplace_back());
                        });
                      if (key == "HashKeyRange")
                        return read_hash_key_range(item, child.starting_hash_key,
                                                   child.ending_hash_key);
                      return true;
                    }) &&
         !child.shard_id.empty();
}

/// A GetRecords reply into `out`; record data decoded into `data`, which is
/// made large enough first (so the views never move while they are made).
[[nodiscard]] inline bool parse_get_records(od::parser& parser, simdjson::padded_string_view json,
                                            std::string& data, GetRecordsResult& out) {
  out.records.clear();
  out.next_shard_iterator.reset();
  out.millis_behind_latest = 0;
  out.child_shards.clear();
  const std::size_t room = base64::max_decoded_size(json.size());
  if (data.size() < room) data.resize(std::max(room, data.size() + data.size() / 2));
  std::size_t used = 0;
  return each_root_field(parser, json, [&](std::string_view key, od::value item) {
    if (key == "Records")
      return each_element(item, [&](od::value record) {
        return read_record(record, data, used, out.records.emplace_back());
      });
    if (key == "NextShardIterator") {
      if (!optional_string(item, out.next_shard_iterator)) return false;
      if (out.next_shard_iterator && out.next_shard_iterator->empty())
        out.next_shard_iterator.reset();
      return true;
    }
    if (key == "MillisBehindLatest")
      return item.get_int64().get(out.millis_behind_latest) == simdjson::SUCCESS;
    if (key == "ChildShards")
      return each_element(item, [&](od::value child) {
        return read_child_shard(child, out.child_shards.emplace_back());
      });
    return true;
  });
}

/// {"__type":"...","message":"..."} of an error reply (either may be absent).
inline void parse_error_reply(od::parser& parser, simdjson::padded_string_view json,
                              std::string& type, std::string& message) {
  (void)each_root_field(parser, json, [&](std::string_view key, od::value item) {
    std::string_view text;
    if (key == "__type" && item.get_string().get(text) == simdjson::SUCCESS)
      type = std::string(bare_error_type(text));
    else if ((key == "message" || key == "Message") &&
             item.get_string().get(text) == simdjson::SUCCESS)
      message = std::string(text);
    return true;
  });
}

class KinesisState {
 public:
  KinesisState(KinesisOptions options, CredentialsSource credentials)
      : options_(std::move(options)), credentials_(std::move(credentials)) {
    std::string why;
    if (check_kinesis_options(options_, why) != ErrorCode::ok) throw std::invalid_argument(why);
    endpoint_ =
        options_.endpoint.empty() ? default_kinesis_endpoint(options_.region) : options_.endpoint;
    if (SigningRequest::for_url("POST", endpoint_, request_) != ErrorCode::ok)
      throw std::invalid_argument("the Kinesis endpoint is not an http(s) URL");
    signer_.emplace(options_.region, "kinesis");
    if (!credentials_) {
      owned_provider_ = std::make_unique<CredentialsProvider>();
      credentials_ = [provider = owned_provider_.get()](std::string& message) {
        return provider->get(message);
      };
    }
    if (filebuilder::detail::curl_global() != CURLE_OK)
      throw std::runtime_error("curl_global_init failed");
    easy_ = curl_easy_init();
    if (easy_ == nullptr) throw std::runtime_error("curl_easy_init failed");
    if (!configure()) {
      curl_easy_cleanup(easy_);
      throw std::runtime_error("libcurl refuses the options of a Kinesis client");
    }
    rng_.seed(std::random_device{}());
  }
  ~KinesisState() {
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
  }
  KinesisState(const KinesisState&) = delete;
  KinesisState& operator=(const KinesisState&) = delete;

  [[nodiscard]] const KinesisOptions& options() const noexcept { return options_; }
  [[nodiscard]] const std::string& endpoint() const noexcept { return endpoint_; }

  KinesisStatus list_shards(std::string_view stream, std::vector<Shard>& shards);
  KinesisStatus get_shard_iterator(std::string_view stream, std::string_view shard_id,
                                   ShardIteratorType type, std::string_view sequence_number,
                                   std::string& iterator);
  KinesisStatus get_records(std::string_view iterator, GetRecordsResult& out, unsigned limit);
  KinesisStatus call(std::string_view operation, std::string_view body, std::string& reply) {
    KinesisStatus status = exchange(operation, body);
    if (status.ok()) reply.assign(reply_);
    return status;
  }

 private:
  /// What one attempt came to.
  struct Attempt {
    KinesisStatus status;
    bool retry = false;
  };

  /// The options of every request; false when libcurl refuses the essential ones.
  [[nodiscard]] bool configure() {
    CURL* e = easy_;
    const auto ms = [](std::chrono::milliseconds d) {
      return static_cast<long>(std::clamp<std::chrono::milliseconds::rep>(
          d.count(), 1, std::numeric_limits<long>::max()));
    };
    curl_easy_setopt(e, CURLOPT_URL, endpoint_.c_str());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer_);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &KinesisState::on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, static_cast<void*>(this));
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &KinesisState::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, static_cast<void*>(this));
    if (!filebuilder::detail::curl_set_safe_defaults(e)) return false;
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    if (!options_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms(options_.connect_timeout));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms(options_.request_timeout));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
    return true;
  }

  static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
    auto& self = *static_cast<KinesisState*>(user);
    const std::size_t n = size * count;
    if (self.reply_.size() + n > self.options_.max_reply_bytes) {
      self.reply_too_large_ = true;
      return 0;
    }
    try {
      self.reply_.append(data, n);
    } catch (...) {
      self.reply_too_large_ = true;
      return 0;
    }
    return n;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto& self = *static_cast<KinesisState*>(user);
    const std::size_t n = size * count;
    const std::string_view line(data, n);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return n;
    const std::string name = aws::detail::lower(line.substr(0, colon));
    const std::string_view value = filebuilder::detail::trim_spaces(
        line.substr(colon + 1, line.find_first_of("\r\n") - colon - 1));
    try {
      if (name == "x-amzn-requestid") self.request_id_.assign(value);
      if (name == "x-amzn-errortype") self.error_type_header_.assign(value);
    } catch (...) {
      // only for messages
    }
    return n;
  }

  /// The reply buffer as simdjson wants it: padded.
  simdjson::padded_string_view padded_reply() {
    reply_.reserve(reply_.size() + simdjson::SIMDJSON_PADDING);
    return simdjson::padded_string_view(reply_.data(), reply_.size(), reply_.capacity());
  }

  Attempt attempt(std::string_view operation, std::string_view body);
  KinesisStatus exchange(std::string_view operation, std::string_view body);
  KinesisStatus bad_reply(std::string_view operation, KinesisStatus status);

  KinesisOptions options_;
  CredentialsSource credentials_;
  std::unique_ptr<CredentialsProvider> owned_provider_;
  std::string endpoint_;
  SigningRequest request_;  // method, host and path of every request
  std::optional<Signer> signer_;
  CURL* easy_ = nullptr;
  char error_buffer_[CURL_ERROR_SIZE] = {};
  std::string reply_;
  bool reply_too_large_ = false;
  std::string request_id_;
  std::string error_type_header_;
  std::string body_;  // the request being built
  od::parser parser_;
  od::parser records_parser_;  // only GetRecords: its strings back the records' views
  std::string records_data_;   // decoded record data
  std::minstd_rand rng_;
};

inline KinesisState::Attempt KinesisState::attempt(std::string_view operation,
                                                   std::string_view body) {
  Attempt result;
  KinesisStatus& status = result.status;
  std::string why;
  Credentials credentials;
  if (const ErrorCode error = credentials_(why).get(credentials); error != ErrorCode::ok) {
    status.code = error;
    status.message = why.empty() ? std::string(error_message(error)) : why;
    return result;
  }
  const std::string target = "Kinesis_20131202." + std::string(operation);
  request_.headers = {{"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Target", target}};
  request_.payload = body;
  Signature signature;
  if (const ErrorCode error =
          signer_->sign(request_, credentials, std::chrono::system_clock::now()).get(signature);
      error != ErrorCode::ok) {
    status.code = error;
    status.message = "the request cannot be signed";
    return result;
  }
  curl_slist* headers = nullptr;
  bool listed = true;
  const auto add = [&](const std::string& line) {
    curl_slist* more = curl_slist_append(headers, line.c_str());
    if (more == nullptr) listed = false;
    if (more != nullptr) headers = more;
  };
  for (const Header& header : request_.headers) add(header.name + ": " + header.value);
  for (const Header& header : signature.headers) add(header.name + ": " + header.value);
  add("Expect:");  // no 100-continue round trip
  if (!listed) {
    curl_slist_free_all(headers);
    status.code = ErrorCode::kinesis_unavailable;
    status.message = "out of memory building the request";
    return result;
  }
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  reply_.clear();
  reply_too_large_ = false;
  request_id_.clear();
  error_type_header_.clear();
  error_buffer_[0] = '\0';
  const CURLcode code = curl_easy_perform(easy_);
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  ++status.attempts;
  long http = 0;
  curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &http);
  status.http_status = http;
  status.request_id = request_id_;

  if (code != CURLE_OK) {
    const std::string text =
        error_buffer_[0] != '\0' ? std::string(error_buffer_) : curl_easy_strerror(code);
    status.message = text;
    switch (code) {
      case CURLE_WRITE_ERROR:
        if (reply_too_large_) {
          status.code = ErrorCode::kinesis_error;
          status.message =
              "the reply is larger than " + std::to_string(options_.max_reply_bytes) + " bytes";
          return result;
        }
        break;
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT: status.code = ErrorCode::invalid_config; return result;
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_ISSUER_ERROR:
        status.code = ErrorCode::kinesis_error;  // TLS will not verify better next time
        return result;
      default: break;
    }
    status.code = ErrorCode::kinesis_unavailable;
    result.retry = true;
    return result;
  }
  if (http == 200) return result;

  std::string message;
  parse_error_reply(parser_, padded_reply(), status.type, message);
  if (status.type.empty()) status.type = std::string(bare_error_type(error_type_header_));
  status.message = "HTTP " + std::to_string(http);
  if (!status.type.empty()) status.message += " " + status.type;
  if (!message.empty()) {
    status.message += ": " + message;
  } else if (status.type.empty() && !reply_.empty()) {
    status.message += ": " + reply_excerpt(reply_);
  }
  if (status.type == "ExpiredIteratorException") {
    status.code = ErrorCode::iterator_expired;
  } else if (is_throttling_type(status.type) || http == 429) {
    status.code = ErrorCode::throttled;
    result.retry = true;
  } else if (http == 500 || http == 502 || http == 503 || http == 504) {
    status.code = ErrorCode::kinesis_unavailable;
    result.retry = true;
  } else {
    status.code = ErrorCode::kinesis_error;
  }
  return result;
}

inline KinesisStatus KinesisState::exchange(std::string_view operation, std::string_view body) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const unsigned max_attempts = std::max(1U, options_.max_attempts);
  unsigned attempts = 0;
  while (true) {
    Attempt result = attempt(operation, body);
    KinesisStatus& status = result.status;
    attempts += status.attempts;
    status.attempts = attempts;
    if (status.ok()) return std::move(status);
    status.message = "Kinesis " + std::string(operation) + ": " + status.message;
    std::string stopped;
    if (result.retry && attempts < max_attempts) {
      const auto delay = filebuilder::detail::full_jitter_backoff(
          options_.backoff_base, options_.backoff_max, attempts, rng_);
      if (Clock::now() - start + delay > options_.retry_budget) {
        stopped =
            ", retry budget of " + std::to_string(options_.retry_budget.count()) + " ms spent";
      } else if (options_.retry_wait ? options_.retry_wait(status, delay)
                                     : (std::this_thread::sleep_for(delay), true)) {
        continue;
      } else {
        stopped = ", retries stopped";
      }
    }
    if (attempts > 0)
      status.message += " (after " + std::to_string(attempts) +
                        (attempts == 1 ? " attempt" : " attempts") + stopped + ")";
    return std::move(status);
  }
}

inline KinesisStatus KinesisState::bad_reply(std::string_view operation, KinesisStatus status) {
  status.code = ErrorCode::kinesis_error;
  status.message = "Kinesis " + std::string(operation) + ": the reply (HTTP " +
                   std::to_string(status.http_status) + ", " + std::to_string(reply_.size()) +
                   " bytes) is not the JSON expected: " + reply_excerpt(reply_);
  return status;
}

inline KinesisStatus KinesisState::list_shards(std::string_view stream,
                                               std::vector<Shard>& shards) {
  shards.clear();
  std::string token;
  KinesisStatus status;
  unsigned attempts = 0;
  do {
    // The first page names the stream; the next ones carry NextToken alone.
    body_.clear();
    body_.append(token.empty() ? "{\"StreamName\":" : "{\"NextToken\":");
    filebuilder::detail::append_json_string(body_, token.empty() ? stream : token);
    body_ += ",\"MaxResults\":1000}";
    status = exchange("ListShards", body_);
    attempts += status.attempts;
    status.attempts = attempts;
    if (!status.ok()) return status;
    if (!parse_list_shards(parser_, padded_reply(), shards, token))
      return bad_reply("ListShards", std::move(status));
  } while (!token.empty());
  return status;
}

inline KinesisStatus KinesisState::get_shard_iterator(std::string_view stream,
                                                      std::string_view shard_id,
                                                      ShardIteratorType type,
                                                      std::string_view sequence_number,
                                                      std::string& iterator) {
  using filebuilder::detail::append_json_string;
  body_ = "{\"StreamName\":";
  append_json_string(body_, stream);
  body_ += ",\"ShardId\":";
  append_json_string(body_, shard_id);
  body_ += ",\"ShardIteratorType\":";
  append_json_string(body_, shard_iterator_type_name(type));
  if (type == ShardIteratorType::after_sequence_number ||
      type == ShardIteratorType::at_sequence_number) {
    body_ += ",\"StartingSequenceNumber\":";
    append_json_string(body_, sequence_number);
  }
  body_ += '}';
  KinesisStatus status = exchange("GetShardIterator", body_);
  if (!status.ok()) return status;
  od::document document;
  std::string_view text;
  if (parser_.iterate(padded_reply()).get(document) != simdjson::SUCCESS ||
      document.find_field_unordered("ShardIterator").get_string().get(text) != simdjson::SUCCESS ||
      text.empty())
    return bad_reply("GetShardIterator", std::move(status));
  iterator.assign(text);
  return status;
}

inline KinesisStatus KinesisState::get_records(std::string_view iterator, GetRecordsResult& out,
                                               unsigned limit) {
  out.records.clear();
  out.next_shard_iterator.reset();
  out.child_shards.clear();
  body_ = "{\"ShardIterator\":";
  filebuilder::detail::append_json_string(body_, iterator);
  body_ += ",\"Limit\":" + std::to_string(std::clamp(limit, 1U, 10'000U)) + "}";
  KinesisStatus status = exchange("GetRecords", body_);
  if (!status.ok()) return status;
  if (!parse_get_records(records_parser_, padded_reply(), records_data_, out)) {
    out.records.clear();
    return bad_reply("GetRecords", std::move(status));
  }
  return status;
}

}  // namespace detail

inline KinesisClient::KinesisClient(KinesisOptions options, CredentialsSource credentials)
    : state_(std::make_unique<detail::KinesisState>(std::move(options), std::move(credentials))) {}

inline KinesisClient::KinesisClient(KinesisOptions options, CredentialsProvider& provider)
    : KinesisClient(std::move(options), CredentialsSource([&provider](std::string& message) {
                      return provider.get(message);
                    })) {}

inline KinesisClient::~KinesisClient() = default;
inline KinesisClient::KinesisClient(KinesisClient&&) noexcept = default;
inline KinesisClient& KinesisClient::operator=(KinesisClient&&) noexcept = default;

inline KinesisStatus KinesisClient::list_shards(std::string_view stream,
                                                std::vector<Shard>& shards) {
  return state_->list_shards(stream, shards);
}

inline KinesisStatus KinesisClient::get_shard_iterator(std::string_view stream,
                                                       std::string_view shard_id,
                                                       ShardIteratorType type,
                                                       std::string_view sequence_number,
                                                       std::string& iterator) {
  return state_->get_shard_iterator(stream, shard_id, type, sequence_number, iterator);
}

inline KinesisStatus KinesisClient::get_records(std::string_view iterator, GetRecordsResult& out,
                                                unsigned limit) {
  return state_->get_records(iterator, out, limit);
}

inline KinesisStatus KinesisClient::call(std::string_view operation, std::string_view body,
                                         std::string& reply) {
  return state_->call(operation, body, reply);
}

inline const KinesisOptions& KinesisClient::options() const noexcept {
  return state_->options();
}

inline const std::string& KinesisClient::endpoint() const noexcept {
  return state_->endpoint();
}

}  // namespace filebuilder::aws
