// Integration tests of the Lambda custom runtime (examples/lambda): the built
// binary (FILEBUILDER_LAMBDA_PATH) and the deployment zip
// (FILEBUILDER_LAMBDA_ZIP) against a fake Runtime API (support/lambda_runtime.hpp)
// and a real nginx on 127.0.0.1 as the upload target. Where the runtime
// without libcurl is built (FILEBUILDER_LAMBDA_BEAST_PATH and _ZIP: Runtime API
// client and uploader on Boost.Beast), every test runs against both binaries:
// a TEST_CASE_TEMPLATE over CurlRuntime and BeastRuntime ("...<curl>",
// "...<beast>"), since both must behave alike to the byte.
//
// A runtime serves the queued events in order; when the queue is empty the
// fake answers /next with 500 ("non-recoverable, the runtime should exit"),
// and the runtime exits with status 1 after logging why. That is how each
// test ends it.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"
#include "filebuilder/digest.hpp"
#include "filebuilder/split.hpp"
#include "support/bytes.hpp"
#include "support/lambda_runtime.hpp"
#include "support/nginx.hpp"
#include "support/process.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#ifdef FILEBUILDER_LAMBDA_PATH

namespace {

namespace fs = std::filesystem;
using filebuilder::SplitFormat;
using filebuilder::Splitter;
using filebuilder::test::ChildProcess;
using filebuilder::test::FakeRuntimeApi;
using filebuilder::test::lines_of;
using filebuilder::test::LogEntry;
using filebuilder::test::Nginx;
using filebuilder::test::random_bytes;
using filebuilder::test::read_bytes;
using filebuilder::test::run;
using filebuilder::test::RunResult;
using filebuilder::test::TempDir;

// The binaries under test; `links_curl`: its zip and its ldd name libcurl.
struct CurlRuntime {
  static constexpr const char* path = FILEBUILDER_LAMBDA_PATH;
  static constexpr bool links_curl = true;
#ifdef FILEBUILDER_LAMBDA_ZIP
  static constexpr const char* zip = FILEBUILDER_LAMBDA_ZIP;
#endif
};
#ifdef FILEBUILDER_LAMBDA_BEAST_PATH
struct BeastRuntime {
  static constexpr const char* path = FILEBUILDER_LAMBDA_BEAST_PATH;
  static constexpr bool links_curl = false;
#ifdef FILEBUILDER_LAMBDA_BEAST_ZIP
  static constexpr const char* zip = FILEBUILDER_LAMBDA_BEAST_ZIP;
#endif
};
#endif
constexpr std::string_view no_failures = R"({"batchItemFailures":[]})";
constexpr std::string_view bad_event_error =
    R"({"errorMessage":"the event is neither a Lambda Kinesis event nor a Firehose )"
    R"(transformation event","errorType":"filebuilder.BadEvent"})";
constexpr std::string_view exit_message = "runtime API: no next invocation; exiting";

// --- bytes and files ---------------------------------------------------------

std::string without_query(const std::string& url) {
  return url.substr(0, url.find('?'));
}

std::string decode_base64(std::string_view text) {
  std::string out(filebuilder::base64::max_decoded_size(text.size()), '\0');
  const auto result = filebuilder::base64::decode(text, out.data());
  REQUIRE(result.error == filebuilder::ErrorCode::ok);
  out.resize(result.written);
  return out;
}

// --- events -------------------------------------------------------------------

struct File {
  std::string endpoint;  // with a presigned-looking query string
  std::string bytes;
};

/// The events Splitter writes for FILES (one line each, without the '\n').
std::vector<std::string> split_events(SplitFormat format, const std::vector<File>& files,
                                      std::size_t chunk_size, std::size_t records_per_event) {
  std::vector<std::string> events;
  Splitter splitter(
      {.chunk_size = chunk_size, .format = format, .records_per_event = records_per_event});
  const auto sink = [&](std::string_view line) {
    events.emplace_back(line.substr(0, line.size() - 1));
  };
  for (const File& file : files) splitter.add_file(file.endpoint, file.bytes, sink);
  splitter.finish(sink);
  return events;
}

std::string json_string(std::string_view text) {
  std::string out;
  filebuilder::detail::append_json_string(out, text);
  return out;
}

/// A 56-digit sequence number unlike Splitter's ("4961..." rather than "4959...").
std::string sequence_number(std::uint64_t n) {
  const std::string digits = std::to_string(n);
  return "4961" + std::string(52 - digits.size(), '0') + digits;
}

struct KinesisRecord {
  std::string seq;
  std::string data;  // as written in the envelope (normally base64)
};

/// A Lambda Kinesis event shaped like the ones Lambda sends.
std::string kinesis_event(const std::vector<KinesisRecord>& records) {
  std::string event = R"({"Records":[)";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i != 0) event += ',';
    event += R"({"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"0123456789abcdef",)";
    event += R"("sequenceNumber":")" + records[i].seq + R"(","data":)" +
             json_string(records[i].data) + R"(,"approximateArrivalTimestamp":1700000000.0},)";
    event +=
        R"("eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000000:)" +
        records[i].seq + R"(","eventName":"aws:kinesis:record",)";
    event += R"("invokeIdentityArn":"arn:aws:iam::123456789012:role/filebuilder",)";
    event += R"("awsRegion":"us-east-1",)";
    event += R"("eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/chunks"})";
  }
  return event + "]}";
}

std::string failures_reply(const std::vector<std::string>& seqs) {
  std::string reply = R"({"batchItemFailures":[)";
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    if (i != 0) reply += ',';
    reply += R"({"itemIdentifier":")" + seqs[i] + R"("})";
  }
  return reply + "]}";
}

/// One record of an event as Splitter wrote it: its id, data, and the chunk in it.
struct EventRecord {
  std::string id;  // sequence number or recordId
  std::string data;
  std::string endpoint;
  std::uint64_t partition = 0;
  std::uint64_t count = 0;
};

std::vector<EventRecord> records_of(const std::string& event) {
  simdjson::dom::parser parser;
  simdjson::dom::parser chunk_parser;
  simdjson::dom::object root;
  REQUIRE(parser.parse(event).get(root) == simdjson::SUCCESS);
  const bool firehose = root["records"].error() == simdjson::SUCCESS;
  std::vector<EventRecord> out;
  for (simdjson::dom::element item : root[firehose ? "records" : "Records"].get_array()) {
    EventRecord record;
    const simdjson::dom::element envelope = firehose ? item : item["kinesis"];
    record.id =
        std::string(envelope[firehose ? "recordId" : "sequenceNumber"].get_string().value());
    record.data = std::string(envelope["data"].get_string().value());
    const std::string chunk = decode_base64(record.data);
    simdjson::dom::element parsed;
    REQUIRE(chunk_parser.parse(chunk).get(parsed) == simdjson::SUCCESS);
    record.endpoint = std::string(parsed["putEndpoint"].get_string().value());
    record.partition = parsed["partition"].get_uint64().value();
    record.count = parsed["partitionCount"].get_uint64().value();
    out.push_back(std::move(record));
  }
  return out;
}

std::string audit_line(const std::string& endpoint, std::string_view bytes) {
  return R"({"putEndpoint":")" + without_query(endpoint) + R"(","bytes":)" +
         std::to_string(bytes.size()) + R"(,"sha256":")" + filebuilder::sha256_hex(bytes) + "\"}\n";
}

/// The exact reply to a Firehose event of whole files seen for the first
/// time: the record completing a file is Ok with its audit line, the others
/// Dropped with their own data.
std::string firehose_reply(const std::string& event,
                           const std::map<std::string, std::string>& bytes_of) {
  std::map<std::string, std::set<std::uint64_t>> seen;
  std::string reply = R"({"records":[)";
  bool first = true;
  for (const EventRecord& record : records_of(event)) {
    if (!first) reply += ',';
    first = false;
    std::set<std::uint64_t>& parts = seen[record.endpoint];
    const bool completes = parts.insert(record.partition).second && parts.size() == record.count;
    reply += R"({"recordId":")" + record.id + R"(","result":)";
    if (completes) {
      REQUIRE(bytes_of.count(record.endpoint) == 1);
      reply +=
          R"("Ok","data":")" +
          filebuilder::base64::encode(audit_line(record.endpoint, bytes_of.at(record.endpoint))) +
          "\"}";
    } else {
      reply += R"("Dropped","data":")" + record.data + "\"}";
    }
  }
  return reply + "]}";
}

/// Every record of a Firehose event, ProcessingFailed with its own data.
std::string firehose_all_failed(const std::string& event) {
  std::string reply = R"({"records":[)";
  bool first = true;
  for (const EventRecord& record : records_of(event)) {
    if (!first) reply += ',';
    first = false;
    reply += R"({"recordId":")" + record.id + R"(","result":"ProcessingFailed","data":")" +
             record.data + "\"}";
  }
  return reply + "]}";
}

std::vector<std::string> ids_of(const std::string& event) {
  std::vector<std::string> ids;
  for (const EventRecord& record : records_of(event)) ids.push_back(record.id);
  return ids;
}

/// A request id shaped like Lambda's (a UUID).
std::string request_id(int n) {
  const std::string digits = std::to_string(n);
  return "8476a536-e9f4-11e8-9739-" + std::string(12 - digits.size(), '0') + digits;
}

// --- running the runtime --------------------------------------------------------

/// The runtime in a clean environment (as in Lambda: only what is set here).
std::vector<std::string> runtime_command(const FakeRuntimeApi& api,
                                         const std::vector<std::string>& environment,
                                         const std::string& program) {
  std::vector<std::string> argv = {"/usr/bin/env", "-i", "PATH=/usr/bin:/bin",
                                   "AWS_LAMBDA_RUNTIME_API=" + api.address()};
  argv.insert(argv.end(), environment.begin(), environment.end());
  argv.push_back(program);
  return argv;
}

std::string allow_host(const Nginx& nginx) {
  return "FILEBUILDER_ALLOW_HOSTS=127.0.0.1:" + std::to_string(nginx.port());
}

// --- logs ---------------------------------------------------------------------

struct LogLine {
  std::string level;
  std::string msg;
  std::string record;
  std::string error;
  std::string request_id;  // "" when absent
  bool has_request_id = false;
  std::string trace_id;
  std::int64_t deadline_ms = 0;
};

std::string text_field(simdjson::dom::object object, std::string_view key) {
  simdjson::dom::element value;
  if (object[key].get(value) != simdjson::SUCCESS) return {};
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) return std::string(text);
  std::uint64_t number = 0;
  if (value.get_uint64().get(number) == simdjson::SUCCESS) return std::to_string(number);
  return "<other type>";
}

/// Every line of a log, parsed; a line that is not a JSON object fails the test.
std::vector<LogLine> parse_logs(const std::string& err) {
  std::vector<LogLine> logs;
  simdjson::dom::parser parser;
  for (const std::string& line : lines_of(err)) {
    simdjson::dom::object object;
    if (parser.parse(line).get_object().get(object) != simdjson::SUCCESS) {
      FAIL_CHECK("a stderr line is not a JSON object: " << line);
      continue;
    }
    LogLine log;
    log.level = text_field(object, "level");
    log.msg = text_field(object, "msg");
    log.record = text_field(object, "record");
    log.error = text_field(object, "error");
    log.has_request_id = object["requestId"].error() == simdjson::SUCCESS;
    log.request_id = text_field(object, "requestId");
    log.trace_id = text_field(object, "traceId");
    std::int64_t deadline = 0;
    if (object["deadlineMs"].get_int64().get(deadline) == simdjson::SUCCESS)
      log.deadline_ms = deadline;
    logs.push_back(std::move(log));
  }
  return logs;
}

/// Checks that every line but the last carries one of REQUEST_IDS as
/// requestId, and that the last says the runtime exits (no request id).
void check_log_shape(const std::vector<LogLine>& logs, const std::set<std::string>& request_ids) {
  REQUIRE_FALSE(logs.empty());
  for (std::size_t i = 0; i + 1 < logs.size(); ++i) {
    CAPTURE(logs[i].msg);
    CHECK(logs[i].has_request_id);
    CHECK(request_ids.count(logs[i].request_id) == 1);
  }
  CHECK(logs.back().msg == exit_message);
  CHECK(logs.back().level == "error");
  CHECK_FALSE(logs.back().has_request_id);
}

/// (requestId, record) -> the error codes of its warn and error lines.
std::map<std::pair<std::string, std::string>, std::vector<std::string>> problems(
    const std::vector<LogLine>& logs) {
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> out;
  for (const LogLine& log : logs)
    if ((log.level == "error" || log.level == "warn") && log.msg != exit_message)
      out[{log.request_id, log.record}].push_back(log.level + ":" + log.error);
  return out;
}

// --- nginx ---------------------------------------------------------------------

/// Checks that every file was PUT exactly once, without a Content-Type, and
/// stored byte for byte, and that nothing else under PREFIX was requested.
void check_uploaded_once(const Nginx& nginx, std::string_view prefix,
                         const std::map<std::string, std::string>& bytes_of) {
  (void)nginx.requests_to(prefix, bytes_of.size());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::vector<LogEntry> requests = nginx.requests_to(prefix);
  CHECK(requests.size() == bytes_of.size());
  std::map<std::string, int> puts;
  for (const LogEntry& entry : requests) {
    CAPTURE(entry.uri);
    CHECK(entry.method == "PUT");
    CHECK(entry.content_type == "");
    CHECK(entry.status == 201);
    ++puts[entry.uri];
  }
  for (const auto& file : bytes_of) {
    const std::string uri = file.first.substr(nginx.url("").size());
    CAPTURE(uri);
    CHECK(puts[uri] == 1);
    const std::optional<std::string> stored = read_bytes(nginx.stored_file(without_query(uri)));
    REQUIRE(stored.has_value());
    CHECK(stored->size() == file.second.size());
    CHECK(*stored == file.second);
  }
}

void check_response(const FakeRuntimeApi::Request& post, const std::string& id,
                    std::string_view body) {
  CHECK(post.path == "/2018-06-01/runtime/invocation/" + id + "/response");
  CHECK(post.body == body);
  CHECK(post.header("lambda-runtime-function-error-type") == "");
}

void check_error(const FakeRuntimeApi::Request& post, const std::string& id, std::string_view type,
                 std::string_view body) {
  CHECK(post.path == "/2018-06-01/runtime/invocation/" + id + "/error");
  CHECK(post.body == body);
  CHECK(post.header("lambda-runtime-function-error-type") == type);
}

}  // namespace

TYPE_TO_STRING_AS("curl", CurlRuntime);
#ifdef FILEBUILDER_LAMBDA_BEAST_PATH
TYPE_TO_STRING_AS("beast", BeastRuntime);
#define FILEBUILDER_LAMBDA_RUNTIMES CurlRuntime, BeastRuntime
#else
#define FILEBUILDER_LAMBDA_RUNTIMES CurlRuntime
#endif

// ---------------------------------------------------------------------------

TEST_CASE_TEMPLATE(
    "lambda: Kinesis, bad records, a 503 target, Firehose and non-events, answered exactly",
    Runtime, FILEBUILDER_LAMBDA_RUNTIMES) {
  Nginx nginx;
  FakeRuntimeApi api;
  std::mt19937_64 rng(0x1A3BDA);
  const auto url = [&](const std::string& path) {
    return nginx.url(path) + "?X-Amz-Signature=secret" + std::to_string(rng() % 1000);
  };
  std::map<std::string, std::string> uploaded;  // endpoint -> bytes, under /files/

  // 1. A good Kinesis event: three files split by the library.
  const std::vector<File> good = {{url("/files/k/a.bin"), random_bytes(rng, 10000)},
                                  {url("/files/k/b.bin"), random_bytes(rng, 70000)},
                                  {url("/files/k/empty.bin"), ""}};
  for (const File& file : good) uploaded[file.endpoint] = file.bytes;
  const std::vector<std::string> good_events = split_events(SplitFormat::lambda, good, 4096, 1000);
  REQUIRE(good_events.size() == 1);

  // 2. Bad records of several kinds, and one good one: the batch goes on.
  const std::string c_endpoint = url("/files/k/c.bin");
  const std::string c_bytes = random_bytes(rng, 300);
  uploaded[c_endpoint] = c_bytes;
  const std::string some = url("/files/k/never.bin");
  using filebuilder::base64::encode;
  std::vector<KinesisRecord> bad = {
      {sequence_number(1), encode("not json")},
      {sequence_number(2),
       encode(R"({"putEndpoint":)" + json_string(some) + R"(,"partition":0,"partitionCount":1})")},
      {sequence_number(3), encode(R"({"putEndpoint":)" + json_string(some) +
                                  R"(,"partition":0,"partitionCount":1,"content":"@@@@"})")},
      {sequence_number(4), "not base64!"},
      {sequence_number(5), encode(Splitter::chunk_record(some, 2, 2, "x"))},
      {sequence_number(6),
       encode(Splitter::chunk_record(
           "https://169.254.169.254/latest/meta-data?X-Amz-Signature=secret", 0, 1, "x"))},
      {sequence_number(7), encode(Splitter::chunk_record(c_endpoint, 0, 1, c_bytes))},
  };
  const std::map<std::string, std::string> bad_codes = {
      {sequence_number(1), "error:invalid_json"},
      {sequence_number(2), "error:missing_field"},
      {sequence_number(3), "error:bad_base64"},
      {sequence_number(4), "error:bad_record_data"},
      {sequence_number(5), "error:partition_out_of_range"},
      {sequence_number(6), "error:endpoint_not_allowed"}};

  // 3. A file whose target answers 503 (listed), beside a good one (not listed).
  const std::string d_endpoint = url("/fail503/d.bin");
  const std::string e_endpoint = url("/files/k/e.bin");
  const std::string e_bytes = random_bytes(rng, 5);
  uploaded[e_endpoint] = e_bytes;
  const std::vector<KinesisRecord> failing = {
      {sequence_number(11), encode(Splitter::chunk_record(d_endpoint, 0, 2, "first half "))},
      {sequence_number(12), encode(Splitter::chunk_record(e_endpoint, 0, 1, e_bytes))},
      {sequence_number(13), encode(Splitter::chunk_record(d_endpoint, 1, 2, "second half"))}};

  // 4. A Firehose event.
  const std::vector<File> firehose_files = {{url("/files/f/f.bin"), random_bytes(rng, 5000)},
                                            {url("/files/f/g.bin"), random_bytes(rng, 1)}};
  for (const File& file : firehose_files) uploaded[file.endpoint] = file.bytes;
  const std::vector<std::string> firehose_events =
      split_events(SplitFormat::firehose, firehose_files, 2048, 1000);
  REQUIRE(firehose_events.size() == 1);
  const std::string firehose_expected = firehose_reply(firehose_events[0], uploaded);

  const std::vector<std::string> events = {good_events[0],         kinesis_event(bad),
                                           kinesis_event(failing), firehose_events[0],
                                           R"({"hello":"world"})", "this is not JSON"};
  std::set<std::string> ids;
  for (std::size_t i = 0; i < events.size(); ++i) {
    api.queue({.request_id = request_id(static_cast<int>(i + 1)), .event = events[i]});
    ids.insert(request_id(static_cast<int>(i + 1)));
  }

  const RunResult result = run(
      runtime_command(api, {allow_host(nginx), "FILEBUILDER_UPLOAD_ATTEMPTS=1"}, Runtime::path));
  CAPTURE(result.err);
  CHECK_FALSE(result.timed_out);
  CHECK(result.exit_code == 1);  // after the last event, /next answered 500
  CHECK(result.out == "");

  const std::vector<FakeRuntimeApi::Request> posts = api.posts();
  REQUIRE(posts.size() == 6);
  check_response(posts[0], request_id(1), no_failures);
  check_response(posts[1], request_id(2), no_failures);  // rejected records are not retried
  check_response(posts[2], request_id(3), failures_reply({sequence_number(13)}));
  check_response(posts[3], request_id(4), firehose_expected);
  check_error(posts[4], request_id(5), "filebuilder.BadEvent", bad_event_error);
  check_error(posts[5], request_id(6), "filebuilder.BadEvent", bad_event_error);
  for (const auto& post : posts) CHECK(post.header("content-type") == "application/json");
  CHECK(api.next_calls() == 7);
  CHECK(api.connections() == 1);  // one connection to the API, kept open

  check_uploaded_once(nginx, "/files/", uploaded);
  const std::vector<LogEntry> failed = nginx.requests_to("/fail503/", 1);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].status == 503);

  const std::vector<LogLine> logs = parse_logs(result.err);
  check_log_shape(logs, ids);
  auto found = problems(logs);
  for (const auto& expected : bad_codes) {
    CAPTURE(expected.first);
    CHECK(found[{request_id(2), expected.first}] == std::vector<std::string>{expected.second});
    found.erase({request_id(2), expected.first});
  }
  CHECK(found[{request_id(3), sequence_number(13)}] ==
        std::vector<std::string>{"warn:upload_failed"});
  found.erase({request_id(3), sequence_number(13)});
  CHECK(found[{request_id(5), request_id(5) + ":1"}] ==
        std::vector<std::string>{"error:bad_event"});
  found.erase({request_id(5), request_id(5) + ":1"});
  CHECK(found[{request_id(6), request_id(6) + ":1"}] ==
        std::vector<std::string>{"error:bad_event"});
  found.erase({request_id(6), request_id(6) + ":1"});
  CHECK(found.empty());                                   // no other warning or error
  CHECK(result.err.find("secret") == std::string::npos);  // presigned URLs are redacted
}

TEST_CASE_TEMPLATE(
    "lambda: state lives across invocations: a file spread over three events is PUT once", Runtime,
    FILEBUILDER_LAMBDA_RUNTIMES) {
  Nginx nginx;
  FakeRuntimeApi api;
  std::mt19937_64 rng(77);
  const std::string endpoint = nginx.url("/files/spread/x.bin") + "?X-Amz-Signature=s";
  const std::string bytes = random_bytes(rng, 6000);
  std::vector<std::string> chunks;
  for (std::uint64_t i = 0; i < 6; ++i)
    chunks.push_back(Splitter::chunk_record(endpoint, i, 6, bytes.substr(i * 1000, 1000)));
  const auto event_of = [&](std::vector<std::pair<std::uint64_t, std::size_t>> picks) {
    std::vector<KinesisRecord> records;
    for (const auto& pick : picks)
      records.push_back(
          {sequence_number(pick.first), filebuilder::base64::encode(chunks[pick.second])});
    return kinesis_event(records);
  };
  // Shuffled, with duplicates within and across events; part 1 arrives last.
  api.queue({.request_id = request_id(1), .event = event_of({{1, 4}, {2, 0}, {3, 4}})});
  api.queue({.request_id = request_id(2), .event = event_of({{4, 2}, {5, 0}, {6, 5}, {7, 3}})});
  api.queue({.request_id = request_id(3), .event = event_of({{8, 2}, {9, 1}, {10, 3}})});
  api.queue({.request_id = request_id(4), .event = event_of({{11, 1}})});  // a finished file

  const RunResult result = run(runtime_command(api, {allow_host(nginx)}, Runtime::path));
  CAPTURE(result.err);
  CHECK(result.exit_code == 1);
  const std::vector<FakeRuntimeApi::Request> posts = api.posts();
  REQUIRE(posts.size() == 4);
  for (int i = 0; i < 4; ++i)
    check_response(posts[static_cast<std::size_t>(i)], request_id(i + 1), no_failures);
  check_uploaded_once(nginx, "/files/spread/", {{endpoint, bytes}});

  const std::vector<LogLine> logs = parse_logs(result.err);
  check_log_shape(logs, {request_id(1), request_id(2), request_id(3), request_id(4)});
  std::size_t uploads = 0;
  for (const LogLine& log : logs) {
    if (log.msg != "file uploaded") continue;
    ++uploads;
    CHECK(log.request_id == request_id(3));
    CHECK(log.record == sequence_number(9));
  }
  CHECK(uploads == 1);
}

TEST_CASE_TEMPLATE(
    "lambda: with FILEBUILDER_STORE=file:DIR a file outlives its execution environment", Runtime,
    FILEBUILDER_LAMBDA_RUNTIMES) {
  Nginx nginx;
  TempDir dir("filebuilder-lambda-store");
  const std::string store = "FILEBUILDER_STORE=file:" + (dir.path() / "state").string();
  std::mt19937_64 rng(78);
  const std::string endpoint = nginx.url("/files/durable/x.bin") + "?X-Amz-Signature=s";
  const std::string bytes = random_bytes(rng, 3000);
  std::vector<std::string> chunks;
  for (std::uint64_t i = 0; i < 3; ++i)
    chunks.push_back(Splitter::chunk_record(endpoint, i, 3, bytes.substr(i * 1000, 1000)));
  const auto event_of = [&](std::uint64_t sequence, std::size_t chunk) {
    return kinesis_event({{sequence_number(sequence), filebuilder::base64::encode(chunks[chunk])}});
  };
  // Two parts reach one environment, which then ends; the last part reaches a new one.
  {
    FakeRuntimeApi api;
    api.queue({.request_id = request_id(1), .event = event_of(1, 2)});
    api.queue({.request_id = request_id(2), .event = event_of(2, 0)});
    const RunResult result = run(runtime_command(api, {allow_host(nginx), store}, Runtime::path));
    CAPTURE(result.err);
    REQUIRE(api.posts().size() == 2);
    CHECK(nginx.requests().empty());
  }
  FakeRuntimeApi api;
  api.queue({.request_id = request_id(3), .event = event_of(3, 1)});
  const RunResult result = run(runtime_command(api, {allow_host(nginx), store}, Runtime::path));
  CAPTURE(result.err);
  REQUIRE(api.posts().size() == 1);
  check_response(api.posts()[0], request_id(3), no_failures);
  check_uploaded_once(nginx, "/files/durable/", {{endpoint, bytes}});
}

TEST_CASE_TEMPLATE(
    "lambda: a record failed by a 503 heals when it is redelivered after the target recovers",
    Runtime, FILEBUILDER_LAMBDA_RUNTIMES) {
  Nginx nginx;
  FakeRuntimeApi api;
  TempDir dir("filebuilder-lambda");
  nginx.set_flaky_down(true);
  const std::string endpoint = nginx.url("/flaky/heal.bin") + "?X-Amz-Signature=s";
  const std::vector<KinesisRecord> records = {
      {sequence_number(1),
       filebuilder::base64::encode(Splitter::chunk_record(endpoint, 0, 2, "he"))},
      {sequence_number(2),
       filebuilder::base64::encode(Splitter::chunk_record(endpoint, 1, 2, "al"))}};
  api.set_hold(true);
  api.queue({.request_id = request_id(1), .event = kinesis_event(records)});
  ChildProcess runtime(
      runtime_command(api, {allow_host(nginx), "FILEBUILDER_UPLOAD_ATTEMPTS=1"}, Runtime::path),
      dir / "runtime.log");
  REQUIRE(api.wait_for_posts(1));
  check_response(api.posts()[0], request_id(1), failures_reply({sequence_number(2)}));

  // Lambda redelivers from the first failed record on; the target is back.
  nginx.set_flaky_down(false);
  api.queue({.request_id = request_id(2), .event = kinesis_event({records[1]})});
  REQUIRE(api.wait_for_posts(2));
  check_response(api.posts()[1], request_id(2), no_failures);
  api.set_hold(false);
  const int status = runtime.wait();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);

  const std::vector<LogEntry> requests = nginx.requests_to("/flaky/", 2);
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].status == 503);
  CHECK(requests[1].status == 201);
  CHECK(read_bytes(nginx.stored_file("/flaky/heal.bin")) == std::optional<std::string>("heal"));
}

TEST_CASE_TEMPLATE(
    "lambda: a bad setting is posted to init/error and the runtime exits without polling", Runtime,
    FILEBUILDER_LAMBDA_RUNTIMES) {
  struct Case {
    std::string variable;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"FILEBUILDER_STORE=s3://bucket/prefix",
       "FILEBUILDER_STORE: store 's3://bucket/prefix' is not one of memory:, file:DIR, "
       "redis://HOST:PORT[/DB]"},
      {"FILEBUILDER_STORE=file:",
       "FILEBUILDER_STORE: store 'file:': file: needs a directory (file:DIR)"},
      {"FILEBUILDER_MAX_PARTITIONS=many", "FILEBUILDER_MAX_PARTITIONS: not a valid number"},
      {"FILEBUILDER_UPLOAD_TIMEOUT=-1", "FILEBUILDER_UPLOAD_TIMEOUT: not a valid number"},
      {"LOG_LEVEL=loud", "LOG_LEVEL: unknown log level 'loud'"},
      {"FILEBUILDER_ALLOW_HOSTS=good.example,bad host",
       "FILEBUILDER_ALLOW_HOSTS: invalid host 'bad host'"},
      {"FILEBUILDER_DEADLINE_MARGIN_MS=soon", "FILEBUILDER_DEADLINE_MARGIN_MS: not a valid number"},
      {"FILEBUILDER_DEAD_LETTER=/proc/filebuilder-dead-letter",
       "FILEBUILDER_DEAD_LETTER: cannot create directory '/proc/filebuilder-dead-letter'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.variable);
    FakeRuntimeApi api;
    api.queue({.request_id = request_id(1), .event = R"({"Records":[]})"});
    const RunResult result = run(runtime_command(api, {c.variable}, Runtime::path));
    CHECK(result.exit_code == 1);
    const std::vector<FakeRuntimeApi::Request> posts = api.posts();
    REQUIRE(posts.size() == 1);
    CHECK(posts[0].path == "/2018-06-01/runtime/init/error");
    CHECK(posts[0].body == R"({"errorMessage":)" + json_string(c.message) +
                               R"(,"errorType":"filebuilder.InvalidConfig"})");
    CHECK(posts[0].header("lambda-runtime-function-error-type") == "filebuilder.InvalidConfig");
    CHECK(api.next_calls() == 0);
    const std::vector<LogLine> logs = parse_logs(result.err);
    REQUIRE(logs.size() == 1);
    CHECK(logs[0].level == "error");
    CHECK(logs[0].error == "invalid_config");
  }
}

TEST_CASE_TEMPLATE("lambda: without AWS_LAMBDA_RUNTIME_API the runtime says so and exits 1",
                   Runtime, FILEBUILDER_LAMBDA_RUNTIMES) {
  const RunResult result = run({"/usr/bin/env", "-i", "PATH=/usr/bin:/bin", Runtime::path});
  CHECK(result.exit_code == 1);
  const std::vector<LogLine> logs = parse_logs(result.err);
  REQUIRE(logs.size() == 1);
  CHECK(logs[0].level == "error");
  CHECK(logs[0].msg.find("AWS_LAMBDA_RUNTIME_API") != std::string::npos);
}

TEST_CASE_TEMPLATE(
    "lambda: request id, trace id and deadline of each invocation reach its log lines", Runtime,
    FILEBUILDER_LAMBDA_RUNTIMES) {
  FakeRuntimeApi api;
  const std::string trace1 =
      "Root=1-65a1b2c3-0123456789abcdef01234567;Parent=1111111111111111;Sampled=1";
  const std::string trace2 =
      "Root=1-65a1b2c4-76543210fedcba9876543210;Parent=2222222222222222;Sampled=0";
  api.queue({.request_id = request_id(1),
             .event = R"({"Records":[]})",
             .deadline_in_ms = 60'000,
             .trace_id = trace1});
  api.queue({.request_id = request_id(2),
             .event = R"({"records":[]})",
             .deadline_in_ms = 90'000,
             .trace_id = trace2});
  const RunResult result = run(runtime_command(api, {"LOG_LEVEL=debug"}, Runtime::path));
  CHECK(result.exit_code == 1);
  const std::vector<FakeRuntimeApi::Request> posts = api.posts();
  REQUIRE(posts.size() == 2);
  check_response(posts[0], request_id(1), no_failures);
  check_response(posts[1], request_id(2), R"({"records":[]})");
  const std::vector<FakeRuntimeApi::Served> served = api.served();
  REQUIRE(served.size() == 2);

  std::vector<LogLine> invocations;
  for (const LogLine& log : parse_logs(result.err))
    if (log.msg == "invocation") invocations.push_back(log);
  REQUIRE(invocations.size() == 2);
  CHECK(invocations[0].level == "debug");
  CHECK(invocations[0].request_id == request_id(1));
  CHECK(invocations[0].trace_id == trace1);  // read back from _X_AMZN_TRACE_ID
  CHECK(invocations[0].deadline_ms == served[0].deadline_ms);
  CHECK(invocations[1].request_id == request_id(2));
  CHECK(invocations[1].trace_id == trace2);
  CHECK(invocations[1].deadline_ms == served[1].deadline_ms);
}

TEST_CASE_TEMPLATE(
    "lambda: near the deadline no record is taken: all reported failed, then all delivered",
    Runtime, FILEBUILDER_LAMBDA_RUNTIMES) {
  Nginx nginx;
  FakeRuntimeApi api;
  std::mt19937_64 rng(2024);
  std::map<std::string, std::string> uploaded;
  const std::vector<File> files = {
      {nginx.url("/files/late/a.bin") + "?X-Amz-Signature=s", random_bytes(rng, 9000)},
      {nginx.url("/files/late/b.bin") + "?X-Amz-Signature=s", random_bytes(rng, 10)}};
  const std::vector<File> firehose_files = {
      {nginx.url("/files/late/c.bin") + "?X-Amz-Signature=s", random_bytes(rng, 5000)}};
  for (const File& file : files) uploaded[file.endpoint] = file.bytes;
  for (const File& file : firehose_files) uploaded[file.endpoint] = file.bytes;
  const std::string kinesis = split_events(SplitFormat::lambda, files, 4096, 1000).at(0);
  const std::string firehose =
      split_events(SplitFormat::firehose, firehose_files, 2048, 1000).at(0);

  // 1 s left, below the 2 s default margin: nothing is taken, everything is retried.
  api.queue({.request_id = request_id(1), .event = kinesis, .deadline_in_ms = 1000});
  api.queue({.request_id = request_id(2), .event = firehose, .deadline_in_ms = 1000});
  // Delivered again with time enough: everything is taken.
  api.queue({.request_id = request_id(3), .event = kinesis});
  api.queue({.request_id = request_id(4), .event = firehose});
  const RunResult result = run(runtime_command(api, {allow_host(nginx)}, Runtime::path));
  CAPTURE(result.err);
  CHECK(result.exit_code == 1);
  const std::vector<FakeRuntimeApi::Request> posts = api.posts();
  REQUIRE(posts.size() == 4);
  check_response(posts[0], request_id(1), failures_reply(ids_of(kinesis)));
  check_response(posts[1], request_id(2), firehose_all_failed(firehose));
  check_response(posts[2], request_id(3), no_failures);
  check_response(posts[3], request_id(4), firehose_reply(firehose, uploaded));
  check_uploaded_once(nginx, "/files/late/", uploaded);

  const std::vector<LogLine> logs = parse_logs(result.err);
  std::size_t deadline_lines = 0;
  for (const LogLine& log : logs) {
    if (log.error != "deadline") continue;
    ++deadline_lines;
    CHECK(log.level == "warn");
    CHECK((log.request_id == request_id(1) || log.request_id == request_id(2)));
  }
  CHECK(deadline_lines == ids_of(kinesis).size() + ids_of(firehose).size());
}

#if defined(FILEBUILDER_LAMBDA_ZIP) && defined(FILEBUILDER_LAMBDA_BEAST_ZIP)
#define FILEBUILDER_LAMBDA_ZIPS CurlRuntime, BeastRuntime
#elif defined(FILEBUILDER_LAMBDA_ZIP)
#define FILEBUILDER_LAMBDA_ZIPS CurlRuntime
#elif defined(FILEBUILDER_LAMBDA_BEAST_ZIP)
#define FILEBUILDER_LAMBDA_ZIPS BeastRuntime
#endif

#ifdef FILEBUILDER_LAMBDA_ZIPS

TEST_CASE_TEMPLATE(
    "lambda: the zip runs through its bundled loader and loads nothing from outside it", Runtime,
    FILEBUILDER_LAMBDA_ZIPS) {
  const std::string zip = Runtime::zip;
  TempDir dir("filebuilder-lambda-zip");
  const fs::path task = dir / "task";
  const RunResult unzip = run({"/usr/bin/unzip", "-q", zip, "-d", task.string()});
  REQUIRE(unzip.exit_code == 0);

  // The layout: bootstrap at the root, the binary, the loader and glibc in lib/.
  const RunResult listing = run({"/usr/bin/unzip", "-Z1", zip});
  REQUIRE(listing.exit_code == 0);
  std::set<std::string> names;
  for (const std::string& name : lines_of(listing.out)) names.insert(name);
  for (const std::string name : {"bootstrap", "bin/filebuilder-lambda", "lib/ld-linux-x86-64.so.2",
                                 "lib/libc.so.6", "lib/libstdc++.so.6", "lib/libcrypto.so.3"}) {
    CAPTURE(name);
    CHECK(names.count(name) == 1);
  }
  CHECK(names.count("lib/libcurl.so.4") == (Runtime::links_curl ? 1 : 0));
  for (const std::string& name : names) {
    CAPTURE(name);
    CHECK((name == "bootstrap" || name.starts_with("bin/") || name.starts_with("lib/")));
  }
  for (const std::string name :
       {"bootstrap", "bin/filebuilder-lambda", "lib/ld-linux-x86-64.so.2"}) {
    CAPTURE(name);
    struct stat info {};
    REQUIRE(::stat((task / name).c_str(), &info) == 0);
    CHECK((info.st_mode & 0111) == 0111);
  }

  Nginx nginx;
  FakeRuntimeApi api;
  const File file{nginx.url("/files/zip/z.bin") + "?X-Amz-Signature=s", "from the zip"};
  api.set_hold(true);  // so that the runtime waits for a second event while we look at it
  api.queue({.request_id = request_id(1),
             .event = split_events(SplitFormat::lambda, {file}, 4096, 100).at(0)});
  std::vector<std::string> command = runtime_command(
      api, {allow_host(nginx), "LAMBDA_TASK_ROOT=" + task.string(), "LD_DEBUG=libs"},
      (task / "bootstrap").string());
  ChildProcess runtime(command, dir / "runtime.log");
  REQUIRE(api.wait_for_posts(1));
  REQUIRE(api.wait_for_next_calls(2));  // served, and waiting for the next event

  // While it waits: every file mapped into the process is inside the unpacked zip.
  const std::string root = task.string() + "/";
  std::size_t mapped = 0;
  {
    std::ifstream maps("/proc/" + std::to_string(runtime.pid()) + "/maps");
    REQUIRE(maps.good());
    std::string line;
    while (std::getline(maps, line)) {
      const std::size_t slash = line.find('/');
      if (slash == std::string::npos) continue;  // anonymous, [heap], [stack], [vdso]...
      const std::string path = line.substr(slash);
      CAPTURE(path);
      CHECK(path.starts_with(root));
      ++mapped;
    }
  }
  CHECK(mapped > 10);
  api.set_hold(false);
  const int status = runtime.wait();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  check_response(api.posts().at(0), request_id(1), no_failures);
  check_uploaded_once(nginx, "/files/zip/", {{file.endpoint, file.bytes}});

  // LD_DEBUG=libs: the shell running bootstrap loads its own libraries first;
  // after it hands over (exec of the bundled loader, same pid), every library
  // is searched for, found and initialised inside the unpacked zip only.
  const std::optional<std::string> output = read_bytes(dir / "runtime.log");
  REQUIRE(output.has_value());
  bool shell_done = false;
  bool runtime_started = false;
  std::size_t initialised = 0;
  std::set<std::string> initialised_names;
  std::string json_lines;
  for (const std::string& line : lines_of(*output)) {
    if (line.starts_with("{")) {
      json_lines += line + "\n";
      continue;
    }
    if (line.empty()) continue;
    const std::size_t tab = line.find(":\t");
    if (tab == std::string::npos) {
      FAIL_CHECK("neither a log line nor LD_DEBUG output: " << line);
      continue;
    }
    const std::string what = line.substr(tab + 2);
    if (!shell_done) {
      if (what.starts_with("transferring control: ")) shell_done = true;
      continue;
    }
    CAPTURE(what);
    CHECK(what.find("search cache=") == std::string::npos);  // /etc/ld.so.cache: the system's
    if (const std::size_t at = what.find("search path="); at != std::string::npos) {
      std::string paths = what.substr(at + 12);
      paths = paths.substr(0, paths.find_first_of(" \t"));
      std::stringstream list(paths);
      std::string path;
      while (std::getline(list, path, ':')) CHECK(path.starts_with(root));
    }
    for (const std::string key : {"trying file=", "calling init: ", "calling fini: "}) {
      const std::size_t at = what.find(key);
      if (at == std::string::npos) continue;
      std::string path = what.substr(at + key.size());
      path = path.substr(0, path.find(" ["));                 // "calling fini: PATH [namespace]"
      if (path.empty() && key == "calling fini: ") continue;  // the program itself
      CHECK(path.starts_with(root));
      if (key == "calling init: ") {
        ++initialised;
        initialised_names.insert(fs::path(path).filename().string());
      }
    }
    if (what == "transferring control: " + task.string() + "/bin/filebuilder-lambda")
      runtime_started = true;
  }
  CHECK(shell_done);
  CHECK(runtime_started);
  CHECK(initialised > (Runtime::links_curl ? 10 : 5));          // without libcurl, 9 here
  CHECK(initialised_names.count("ld-linux-x86-64.so.2") == 1);  // the bundled loader
  CHECK(initialised_names.count("libc.so.6") == 1);
  CHECK(initialised_names.count("libcurl.so.4") == (Runtime::links_curl ? 1 : 0));
  const std::vector<LogLine> logs = parse_logs(json_lines);
  check_log_shape(logs, {request_id(1)});
}

#endif  // FILEBUILDER_LAMBDA_ZIPS

#ifdef FILEBUILDER_LAMBDA_BEAST_PATH

namespace {

/// The sonames `ldd BINARY` lists (the vDSO and the loader included).
std::set<std::string> needed_libraries(const std::string& binary) {
  const RunResult ldd = run({"/usr/bin/ldd", binary});
  REQUIRE(ldd.exit_code == 0);
  std::set<std::string> names;
  for (const std::string& line : lines_of(ldd.out)) {
    const std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    std::string name = line.substr(start);
    name = name.substr(0, name.find(' '));
    names.insert(fs::path(name).filename().string());
  }
  return names;
}

}  // namespace

TEST_CASE("lambda: the runtime on Boost.Beast links no libcurl, and its zip ships none") {
  const std::set<std::string> beast = needed_libraries(FILEBUILDER_LAMBDA_BEAST_PATH);
  const std::set<std::string> curl = needed_libraries(FILEBUILDER_LAMBDA_PATH);
  CHECK(curl.count("libcurl.so.4") == 1);  // else this test proves nothing
  CHECK(beast.count("libc.so.6") == 1);
  for (const std::string& name : beast) {
    CAPTURE(name);
    CHECK_FALSE(name.starts_with("libcurl"));
    CHECK(curl.count(name) == 1);  // nothing the libcurl binary does not need too
  }
  CHECK(beast.size() < curl.size());
  MESSAGE("shared libraries (ldd): curl " << curl.size() << ", beast " << beast.size());
#ifdef FILEBUILDER_LAMBDA_BEAST_ZIP
  const RunResult listing = run({"/usr/bin/unzip", "-Z1", FILEBUILDER_LAMBDA_BEAST_ZIP});
  REQUIRE(listing.exit_code == 0);
  std::size_t libraries = 0;
  for (const std::string& name : lines_of(listing.out)) {
    if (!name.starts_with("lib/") || name == "lib/") continue;
    CAPTURE(name);
    CHECK(name.find("libcurl") == std::string::npos);
    ++libraries;
  }
  CHECK(libraries > 3);
  MESSAGE("filebuilder-lambda-beast.zip: " << fs::file_size(FILEBUILDER_LAMBDA_BEAST_ZIP)
                                           << " bytes, " << libraries << " files in lib/");
#endif
}

TEST_CASE("lambda: the runtime without libcurl refuses FILEBUILDER_UPLOADER=curl at init") {
  FakeRuntimeApi api;
  api.queue({.request_id = request_id(1), .event = R"({"Records":[]})"});
  const RunResult result =
      run(runtime_command(api, {"FILEBUILDER_UPLOADER=curl"}, FILEBUILDER_LAMBDA_BEAST_PATH));
  CHECK(result.exit_code == 1);
  const std::vector<FakeRuntimeApi::Request> posts = api.posts();
  REQUIRE(posts.size() == 1);
  CHECK(posts[0].path == "/2018-06-01/runtime/init/error");
  CHECK(posts[0].body ==
        R"x({"errorMessage":"cannot start: uploader 'curl': not in this build (it has beast)",)x"
        R"("errorType":"filebuilder.InvalidConfig"})");
  CHECK(api.next_calls() == 0);
}

#endif  // FILEBUILDER_LAMBDA_BEAST_PATH

#endif  // FILEBUILDER_LAMBDA_PATH
