// Integration tests of the `filebuilder` command line (replay and split)
// against a real nginx on 127.0.0.1. The system under test is the binary
// (FILEBUILDER_CLI_PATH); the library only builds inputs and expected values.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/digest.hpp"
#include "filebuilder/split.hpp"
#include "filebuilder/version.hpp"
#include "support/bytes.hpp"
#include "support/nginx.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#ifdef FILEBUILDER_CLI_PATH

namespace {

namespace fs = std::filesystem;
using filebuilder::Splitter;
using filebuilder::test::InteractiveProcess;
using filebuilder::test::lines_of;
using filebuilder::test::LogEntry;
using filebuilder::test::Nginx;
using filebuilder::test::random_bytes;
using filebuilder::test::read_bytes;
using filebuilder::test::run;
using filebuilder::test::RunResult;
using filebuilder::test::TempDir;

const std::string cli = FILEBUILDER_CLI_PATH;
constexpr std::string_view empty_reply = R"({"batchItemFailures":[]})";

// --- files and bytes --------------------------------------------------------

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string repeat_line(std::string_view line, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) {
    out += line;
    out += '\n';
  }
  return out;
}

// --- events -----------------------------------------------------------------

/// A 56-digit Kinesis sequence number, increasing with n.
std::string sequence_number(std::uint64_t n) {
  std::string digits = std::to_string(n);
  return "4959" + std::string(52 - digits.size(), '0') + digits;
}

/// One record of a Lambda Kinesis event: its sequence number and its data
/// exactly as written in the envelope (normally base64).
struct KinesisRecord {
  std::string seq;
  std::string data;
};

KinesisRecord kinesis_record(std::uint64_t n, std::string_view record_bytes) {
  return {sequence_number(n), filebuilder::base64::encode(record_bytes)};
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[(c >> 4) & 0xF];
      out += hex[c & 0xF];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// {"Records":[{"kinesis":{"data":"..","sequenceNumber":".."}},...]} on one line.
std::string lambda_event(const std::vector<KinesisRecord>& records) {
  std::string event = R"({"Records":[)";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i != 0) event += ',';
    event += R"({"kinesis":{"data":)" + json_string(records[i].data) + R"(,"sequenceNumber":")" +
             records[i].seq + R"("},"eventSource":"aws:kinesis"})";
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

std::string chunk(std::string_view endpoint, std::uint64_t partition, std::uint64_t count,
                  std::string_view bytes) {
  return Splitter::chunk_record(endpoint, partition, count, bytes);
}

/// The chunk records of a whole file, split every CHUNK_SIZE bytes.
std::vector<std::string> chunks_of(std::string_view endpoint, std::string_view bytes,
                                   std::size_t chunk_size) {
  std::vector<std::string> records;
  Splitter splitter({.chunk_size = chunk_size, .format = filebuilder::SplitFormat::ndjson});
  const auto sink = [&](std::string_view line) {
    records.emplace_back(line.substr(0, line.size() - 1));  // without '\n'
  };
  splitter.add_file(endpoint, bytes, sink);
  splitter.finish(sink);
  return records;
}

// --- logs -------------------------------------------------------------------

struct LogLine {
  std::string level;
  std::string msg;
  std::string record;  // a string, or a number as text
  std::string error;
};

std::string text_field(simdjson::dom::object object, std::string_view key) {
  simdjson::dom::element value;
  if (object[key].get(value) != simdjson::SUCCESS) return {};
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) return std::string(text);
  std::uint64_t number = 0;
  if (value.get_uint64().get(number) == simdjson::SUCCESS) return std::to_string(number);
  return "<" + std::string(key) + " of another type>";
}

/// Every stderr line, parsed; a line that is not a JSON object fails the test.
std::vector<LogLine> parse_logs(const std::string& err) {
  std::vector<LogLine> logs;
  simdjson::dom::parser parser;
  for (const std::string& line : lines_of(err)) {
    simdjson::dom::object object;
    if (parser.parse(line).get_object().get(object) != simdjson::SUCCESS) {
      FAIL_CHECK("a stderr line is not a JSON object: " << line);
      continue;
    }
    logs.push_back({text_field(object, "level"), text_field(object, "msg"),
                    text_field(object, "record"), text_field(object, "error")});
  }
  return logs;
}

/// record id -> the error codes of its "level":"error" log lines.
std::map<std::string, std::vector<std::string>> error_lines(const std::string& err) {
  std::map<std::string, std::vector<std::string>> errors;
  for (const LogLine& log : parse_logs(err))
    if (log.level == "error") errors[log.record].push_back(log.error);
  return errors;
}

std::size_t count_level(const std::string& err, std::string_view level) {
  std::size_t n = 0;
  for (const LogLine& log : parse_logs(err)) n += log.level == level ? 1 : 0;
  return n;
}

// --- nginx ------------------------------------------------------------------

std::string allow_host(const Nginx& nginx) {
  return "127.0.0.1:" + std::to_string(nginx.port());
}

/// The requests whose URI starts with PREFIX, once at least EXPECTED have
/// arrived (or 5 s passed), and after a short pause, so that an extra one shows.
std::vector<LogEntry> settled_requests(const Nginx& nginx, std::string_view prefix,
                                       std::size_t expected) {
  (void)nginx.requests_to(prefix, expected);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return nginx.requests_to(prefix);
}

/// Checks that every (path -> bytes) was PUT exactly once, without a
/// Content-Type, answered 201, stored byte for byte, and that nothing else
/// under PREFIX was requested. URIS maps each path to the URI as sent
/// (with its query string).
void check_uploaded_once(const Nginx& nginx, std::string_view prefix,
                         const std::map<std::string, std::string>& uri_to_bytes) {
  const std::vector<LogEntry> requests = settled_requests(nginx, prefix, uri_to_bytes.size());
  CHECK(requests.size() == uri_to_bytes.size());
  std::map<std::string, int> puts;
  for (const LogEntry& entry : requests) {
    CAPTURE(entry.uri);
    CHECK(entry.method == "PUT");
    CHECK(entry.content_type == "");
    CHECK(entry.status == 201);
    ++puts[entry.uri];
  }
  for (const auto& entry : uri_to_bytes) {
    // Not a structured binding: clang 14 cannot capture one in doctest's lambdas.
    const std::string& uri = entry.first;
    const auto& bytes = entry.second;
    CAPTURE(uri);
    CHECK(puts[uri] == 1);
    const std::string path = uri.substr(0, uri.find('?'));
    const std::optional<std::string> stored = read_bytes(nginx.stored_file(path));
    REQUIRE(stored.has_value());
    CHECK(stored->size() == bytes.size());
    CHECK(*stored == bytes);
  }
}

/// The path and query of one of nginx's URLs, as its access log shows it.
std::string uri_of(const Nginx& nginx, const std::string& url) {
  return url.substr(nginx.url("").size());
}

std::string without_query(const std::string& url) {
  return url.substr(0, url.find('?'));
}

std::string audit_line(const std::string& endpoint, std::string_view bytes) {
  return R"({"putEndpoint":")" + without_query(endpoint) + R"(","bytes":)" +
         std::to_string(bytes.size()) + R"(,"sha256":")" + filebuilder::sha256_hex(bytes) + "\"}\n";
}

std::string decode_base64(std::string_view text) {
  std::string out(filebuilder::base64::max_decoded_size(text.size()), '\0');
  const filebuilder::base64::DecodeResult result = filebuilder::base64::decode(text, out.data());
  REQUIRE(result.error == filebuilder::ErrorCode::ok);
  out.resize(result.written);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("cli: split then replay rebuilds every file once, in lambda, firehose and ndjson") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  std::mt19937_64 rng(20240601);
  struct Sample {
    std::string name;
    std::string bytes;
    std::size_t chunk_size;
  };
  const std::vector<Sample> samples = {{"empty.bin", "", 262144},
                                       {"one.bin", random_bytes(rng, 1), 262144},
                                       {"thousand.bin", random_bytes(rng, 1000), 300},
                                       {"big.bin", random_bytes(rng, 300 * 1024), 65536}};

  for (const std::string format : {"lambda", "firehose", "ndjson"}) {
    CAPTURE(format);
    const std::string prefix = "/files/" + format + "/";
    std::vector<std::string> args = {cli, "replay", "--allow-host", allow_host(nginx)};
    std::map<std::string, std::string> uploads;        // uri -> bytes
    std::map<std::string, const Sample*> by_endpoint;  // endpoint -> sample
    std::vector<std::string> event_lines;              // every line split wrote
    for (const Sample& sample : samples) {
      CAPTURE(sample.name);
      const fs::path source = dir / (format + "-" + sample.name);
      write_bytes(source, sample.bytes);
      const std::string endpoint =
          nginx.url(prefix + sample.name) + "?X-Amz-Signature=secret-" + sample.name;
      const RunResult split = run({cli, "split", "--endpoint", endpoint, "--chunk-size",
                                   std::to_string(sample.chunk_size), "--format", format,
                                   "--records-per-event", "2", source.string()});
      REQUIRE(split.exit_code == 0);
      CHECK(split.err == "");
      REQUIRE_FALSE(split.out.empty());
      const std::vector<std::string> lines = lines_of(split.out);
      CHECK(split.out.back() == '\n');
      const std::size_t parts =
          sample.bytes.empty() ? 1
                               : (sample.bytes.size() + sample.chunk_size - 1) / sample.chunk_size;
      if (format == "ndjson") {
        // Exactly the library's chunk records, in order.
        CHECK(lines == chunks_of(endpoint, sample.bytes, sample.chunk_size));
      } else {
        CHECK(lines.size() == (parts + 1) / 2);
      }
      const fs::path input = dir / (format + "-" + sample.name + ".in");
      write_bytes(input, split.out);
      args.push_back(input.string());
      event_lines.insert(event_lines.end(), lines.begin(), lines.end());
      uploads[uri_of(nginx, endpoint)] = sample.bytes;
      by_endpoint[endpoint] = &sample;
    }

    const RunResult replay = run(args);
    CHECK(replay.exit_code == 0);
    CHECK(count_level(replay.err, "error") == 0);
    CHECK(count_level(replay.err, "warn") == 0);
    CHECK(replay.err.find("secret") == std::string::npos);  // presigned URLs are redacted

    std::string expected;
    if (format == "lambda") {
      expected = repeat_line(empty_reply, event_lines.size());
    } else if (format == "ndjson") {
      expected = R"({"records":)" + std::to_string(event_lines.size()) +
                 R"(,"uploaded":4,"duplicates":0,"rejected":[],"failed":[]})" + "\n";
    } else {
      // Firehose: every record back in order; the one completing a file is Ok
      // with its audit line, the others Dropped with their own data.
      simdjson::dom::parser parser;
      simdjson::dom::parser chunk_parser;
      for (const std::string& line : event_lines) {
        simdjson::dom::element event;
        REQUIRE(parser.parse(line).get(event) == simdjson::SUCCESS);
        std::string reply = R"({"records":[)";
        bool first = true;
        for (simdjson::dom::element record : event["records"].get_array()) {
          const std::string record_id(record["recordId"].get_string().value());
          const std::string data(record["data"].get_string().value());
          const std::string decoded = decode_base64(data);
          simdjson::dom::element parsed;
          REQUIRE(chunk_parser.parse(decoded).get(parsed) == simdjson::SUCCESS);
          const std::string endpoint(parsed["putEndpoint"].get_string().value());
          const std::uint64_t partition = parsed["partition"].get_uint64().value();
          const std::uint64_t count = parsed["partitionCount"].get_uint64().value();
          REQUIRE(by_endpoint.count(endpoint) == 1);
          if (!first) reply += ',';
          first = false;
          reply += R"({"recordId":")" + record_id + R"(","result":)";
          if (partition + 1 == count) {
            reply +=
                R"("Ok","data":")" +
                filebuilder::base64::encode(audit_line(endpoint, by_endpoint[endpoint]->bytes)) +
                "\"}";
          } else {
            reply += R"("Dropped","data":")" + data + "\"}";
          }
        }
        expected += reply + "]}\n";
      }
    }
    CHECK(replay.out == expected);
    check_uploaded_once(nginx, prefix, uploads);
  }
}

TEST_CASE("cli: new-user trial: 200 files, shuffled and duplicated chunks, each uploaded once") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  std::mt19937_64 rng(0xF11EB01DULL);
  constexpr std::size_t file_count = 200;
  constexpr std::array<std::size_t, 4> chunk_sizes = {1000, 4096, 65536, 262144};
  std::uniform_int_distribution<std::size_t> any_size(0, 256 * 1024);
  std::uniform_int_distribution<std::size_t> any_chunk_size(0, chunk_sizes.size() - 1);

  std::map<std::string, std::string> uploads;  // uri -> bytes
  std::vector<std::string> records;
  for (std::size_t i = 0; i < file_count; ++i) {
    // A few empty files, one byte, exactly one and two chunks of 1000; the rest at random.
    std::size_t size = any_size(rng);
    if (i < 4) size = 0;
    if (i == 4) size = 1;
    if (i == 5) size = 1000;
    if (i == 6) size = 2000;
    if (i == 7) size = 256 * 1024;
    const std::size_t chunk_size = i >= 5 && i <= 6 ? 1000 : chunk_sizes[any_chunk_size(rng)];
    const std::string bytes = random_bytes(rng, size);
    const std::string endpoint =
        nginx.url("/files/trial/f" + std::to_string(i) + ".bin") + "?sig=" + std::to_string(i);
    for (std::string& record : chunks_of(endpoint, bytes, chunk_size))
      records.push_back(std::move(record));
    uploads[uri_of(nginx, endpoint)] = bytes;
  }
  // 20% of the records again, then everything shuffled together.
  std::vector<std::size_t> indices(records.size());
  std::iota(indices.begin(), indices.end(), std::size_t{0});
  std::shuffle(indices.begin(), indices.end(), rng);
  const std::size_t unique_records = records.size();
  for (std::size_t i = 0; i < unique_records / 5; ++i) records.push_back(records[indices[i]]);
  std::shuffle(records.begin(), records.end(), rng);

  // Lambda events of 50..150 records, one per line, unique increasing sequence numbers.
  std::uniform_int_distribution<std::size_t> event_size(50, 150);
  std::string input;
  std::size_t events = 0;
  std::uint64_t counter = 0;
  for (std::size_t next = 0; next < records.size();) {
    const std::size_t end = std::min(records.size(), next + event_size(rng));
    std::vector<KinesisRecord> batch;
    for (; next < end; ++next) batch.push_back(kinesis_record(++counter, records[next]));
    input += lambda_event(batch) + "\n";
    ++events;
  }
  const fs::path events_file = dir / "trial.ndjson";
  write_bytes(events_file, input);
  MESSAGE("trial: " << unique_records << " chunk records + " << unique_records / 5
                    << " duplicates in " << events << " events, " << input.size() << " bytes");

  const auto start = std::chrono::steady_clock::now();
  const RunResult replay =
      run({cli, "replay", "--allow-host", allow_host(nginx), events_file.string()}, {},
          std::chrono::seconds(120));
  MESSAGE("trial replay took " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - start)
                                      .count()
                               << " ms");
  CHECK_FALSE(replay.timed_out);
  CHECK(replay.exit_code == 0);
  CHECK(replay.out == repeat_line(empty_reply, events));
  CHECK(count_level(replay.err, "error") == 0);
  CHECK(count_level(replay.err, "warn") == 0);
  check_uploaded_once(nginx, "/files/trial/", uploads);
}

TEST_CASE("cli: a Lambda batch of good and malformed records rejects each bad one by name") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  std::mt19937_64 rng(7);
  const std::string a_endpoint = nginx.url("/files/mixed/a.bin") + "?sig=a";
  const std::string b_endpoint = nginx.url("/files/mixed/b.bin") + "?sig=b";
  const std::string e_endpoint = nginx.url("/files/mixed/empty.bin");
  const std::string a = random_bytes(rng, 2500);  // 3 parts of 1000
  const std::string b = random_bytes(rng, 10);
  const std::vector<std::string> a_parts = chunks_of(a_endpoint, a, 1000);
  REQUIRE(a_parts.size() == 3);
  const std::string other_a0 = random_bytes(rng, 1000);

  std::vector<KinesisRecord> records;
  std::map<std::string, std::string> bad;  // seq -> expected code
  std::uint64_t n = 0;
  const auto good = [&](std::string_view record) {
    records.push_back(kinesis_record(++n, record));
  };
  const auto reject = [&](std::string_view record, std::string_view code) {
    records.push_back(kinesis_record(++n, record));
    bad[records.back().seq] = code;
  };
  const std::string b_json = json_string(b_endpoint);

  good(a_parts[0]);
  reject(R"({"putEndpoint":)", "invalid_json");
  reject("[1,2,3]", "not_an_object");
  reject(R"({"putEndpoint":)" + b_json + R"(,"partition":0,"partitionCount":1})", "missing_field");
  reject(R"({"putEndpoint":42,"partition":0,"partitionCount":1,"content":""})", "wrong_type");
  reject(R"({"putEndpoint":)" + b_json + R"(,"partition":1.5,"partitionCount":2,"content":""})",
         "invalid_partition");
  reject(R"({"putEndpoint":)" + b_json + R"(,"partition":0,"partitionCount":0,"content":""})",
         "invalid_partition_count");
  reject(R"({"putEndpoint":)" + b_json + R"(,"partition":2,"partitionCount":2,"content":""})",
         "partition_out_of_range");
  reject(R"({"putEndpoint":)" + b_json + R"(,"partition":0,"partitionCount":1,"content":"abc"})",
         "bad_base64");
  records.push_back({sequence_number(++n), "%%% not base64 %%%"});  // the envelope's data
  bad[records.back().seq] = "bad_record_data";
  reject(chunk(nginx.url("/files/mixed/large.bin"), 0, 1, random_bytes(rng, 3000)),
         "part_too_large");  // --max-part-bytes 2000
  reject(chunk(nginx.url("/files/mixed/many.bin"), 0, 11, "x"),
         "too_many_partitions");  // --max-partitions 10
  reject(chunk("http://example.com/files/mixed/http.bin", 0, 1, "x"), "endpoint_scheme");
  reject(chunk("https://127.0.0.1/files/mixed/loopback.bin", 0, 1, "x"), "endpoint_not_allowed");
  reject(
      chunk("ftp://127.0.0.1:" + std::to_string(nginx.port()) + "/files/mixed/ftp.bin", 0, 1, "x"),
      "endpoint_scheme");
  reject(chunk(nginx.url("/files/mixed/sp ace.bin"), 0, 1, "x"), "endpoint_invalid");
  reject(R"({"putEndpoint":)" + b_json +
             R"(,"partition":0,"partitionCount":1,"content":"","x":[[[[[[[[[[1]]]]]]]]]]})",
         "too_deep");
  reject(chunk(a_endpoint, 0, 3, other_a0), "partition_conflict");
  good(a_parts[1]);
  reject(chunk(a_endpoint, 3, 4, "xyz"), "partition_count_conflict");
  good(a_parts[2]);                   // completes a
  good(chunk(b_endpoint, 0, 1, b));   // completes b
  good(chunk(e_endpoint, 0, 1, ""));  // an empty file
  good(chunk(b_endpoint, 0, 1, b));   // a duplicate of a finished file: silent
  good(a_parts[0]);                   // and of a part of one
  std::string event = lambda_event(records);
  // An envelope record without data: rejected as bad_event, the batch goes on.
  const std::string no_data_seq = sequence_number(++n);
  event.insert(event.size() - 2, R"(,{"kinesis":{"sequenceNumber":")" + no_data_seq + R"("}})");
  bad[no_data_seq] = "bad_event";

  const fs::path input = dir / "mixed.json";
  write_bytes(input, event + "\n");
  const RunResult replay =
      run({cli, "replay", "--allow-host", allow_host(nginx), "--max-part-bytes", "2000",
           "--max-partitions", "10", input.string()});
  CHECK(replay.exit_code == 1);
  CHECK(replay.out == std::string(empty_reply) + "\n");

  std::map<std::string, std::vector<std::string>> expected;
  for (const auto& [seq, code] : bad) expected[seq] = {code};
  const std::map<std::string, std::vector<std::string>> actual = error_lines(replay.err);
  CHECK(actual.size() == expected.size());
  for (const auto& entry : expected) {
    const std::string& seq = entry.first;  // clang 14 cannot capture structured bindings
    const std::vector<std::string>& codes = entry.second;
    CAPTURE(seq);
    const auto found = actual.find(seq);
    REQUIRE_MESSAGE(found != actual.end(), "no error log line for " << codes.front());
    CHECK(found->second == codes);
  }
  for (const auto& entry : actual) {
    const std::string& seq = entry.first;
    const std::vector<std::string>& codes = entry.second;
    CAPTURE(seq);
    CHECK_MESSAGE(expected.count(seq) == 1, "unexpected error log line: " << codes.front());
  }
  CHECK(count_level(replay.err, "warn") == 0);
  CHECK(replay.err.find("sig=") == std::string::npos);

  check_uploaded_once(nginx, "/files/mixed/",
                      {{uri_of(nginx, a_endpoint), a},
                       {uri_of(nginx, b_endpoint), b},
                       {uri_of(nginx, e_endpoint), ""}});
}

TEST_CASE("cli: a 503 target lists the completing record, 403 and 302 are refused and not listed") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  std::mt19937_64 rng(503);
  const std::string failing = nginx.url("/fail503/f.bin") + "?sig=f";
  const std::string f = random_bytes(rng, 3000);
  const std::vector<std::string> f_parts = chunks_of(failing, f, 2000);
  REQUIRE(f_parts.size() == 2);
  const std::vector<KinesisRecord> records = {
      kinesis_record(1, f_parts[0]), kinesis_record(2, f_parts[1]),
      kinesis_record(3, chunk(nginx.url("/fail403/r.bin"), 0, 1, "refused")),
      kinesis_record(4, chunk(nginx.url("/redirect/d.bin"), 0, 1, "redirected"))};
  const fs::path input = dir / "event.json";
  write_bytes(input, lambda_event(records));

  const RunResult replay =
      run({cli, "replay", "--allow-host", allow_host(nginx), "--upload-attempts", "3",
           "--retry-backoff-ms", "1", input.string()});
  CHECK(replay.exit_code == 1);
  CHECK(replay.out == failures_reply({records[1].seq}) + "\n");

  const std::vector<LogEntry> attempts = settled_requests(nginx, "/fail503/", 3);
  CHECK(attempts.size() == 3);
  for (const LogEntry& entry : attempts) {
    CHECK(entry.method == "PUT");
    CHECK(entry.status == 503);
    CHECK(entry.content_type == "");
  }
  const std::vector<LogEntry> refused = settled_requests(nginx, "/fail403/", 1);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].status == 403);
  const std::vector<LogEntry> redirected = settled_requests(nginx, "/redirect/", 1);
  REQUIRE(redirected.size() == 1);
  CHECK(redirected[0].status == 302);
  CHECK(nginx.requests_to("/files/").empty());  // the redirect is not followed

  bool upload_failed_logged = false;
  for (const LogLine& log : parse_logs(replay.err)) {
    if (log.record == records[1].seq && log.error == "upload_failed") upload_failed_logged = true;
    CHECK_MESSAGE(log.record != records[0].seq, "the first part was fine: " << log.msg);
  }
  CHECK(upload_failed_logged);
  const std::map<std::string, std::vector<std::string>> errors = error_lines(replay.err);
  CHECK(errors.size() == 2);
  CHECK(errors.count(records[2].seq) == 1);
  if (errors.count(records[2].seq) == 1)
    CHECK(errors.at(records[2].seq) == std::vector<std::string>{"upload_refused"});
  CHECK(errors.count(records[3].seq) == 1);
  if (errors.count(records[3].seq) == 1)
    CHECK(errors.at(records[3].seq) == std::vector<std::string>{"upload_refused"});
}

TEST_CASE("cli: Firehose: Ok with the audit line, ProcessingFailed for rejected and failed") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  const std::string good = nginx.url("/files/fh/good.bin") + "?X-Amz-Signature=s";
  const std::string failing = nginx.url("/fail503/fh.bin") + "?X-Amz-Signature=s";
  struct Record {
    std::string id;
    std::string data;
  };
  const std::vector<Record> records = {
      {"r-good", filebuilder::base64::encode(chunk(good, 0, 1, "firehose bytes"))},
      {"r-invalid", filebuilder::base64::encode("{nope")},
      {"r-failing", filebuilder::base64::encode(chunk(failing, 0, 1, "never stored"))},
      {"r-duplicate", filebuilder::base64::encode(chunk(good, 0, 1, "firehose bytes"))}};
  std::string event = R"({"invocationId":"00000000-0000-4000-8000-000000000001","records":[)";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i != 0) event += ',';
    event += R"({"recordId":")" + records[i].id + R"(","data":")" + records[i].data +
             R"(","approximateArrivalTimestamp":1700000000000})";
  }
  event += "]}";
  write_bytes(dir / "firehose.json", event);

  const RunResult r = run({cli, "replay", "--allow-host", allow_host(nginx), "--upload-attempts",
                           "1", (dir / "firehose.json").string()});
  CHECK(r.exit_code == 1);
  const std::string expected =
      R"({"records":[{"recordId":"r-good","result":"Ok","data":")" +
      filebuilder::base64::encode(audit_line(good, "firehose bytes")) +
      R"("},{"recordId":"r-invalid","result":"ProcessingFailed","data":")" + records[1].data +
      R"("},{"recordId":"r-failing","result":"ProcessingFailed","data":")" + records[2].data +
      R"("},{"recordId":"r-duplicate","result":"Dropped","data":")" + records[3].data + "\"}]}\n";
  CHECK(r.out == expected);
  CHECK(error_lines(r.err) ==
        std::map<std::string, std::vector<std::string>>{{"r-invalid", {"invalid_json"}}});
  bool failed_logged = false;
  for (const LogLine& log : parse_logs(r.err))
    failed_logged = failed_logged || (log.record == "r-failing" && log.error == "upload_failed");
  CHECK(failed_logged);
  CHECK(settled_requests(nginx, "/fail503/", 1).size() == 1);
  check_uploaded_once(nginx, "/files/fh/", {{uri_of(nginx, good), "firehose bytes"}});
}

TEST_CASE(
    "cli: a failed upload is healed by replaying its record, exactly once (stdin, per line)") {
  Nginx nginx;
  std::mt19937_64 rng(42);
  const std::string endpoint = nginx.url("/flaky/healed.bin") + "?sig=h";
  const std::string bytes = random_bytes(rng, 5000);
  const std::vector<std::string> parts = chunks_of(endpoint, bytes, 2000);
  REQUIRE(parts.size() == 3);
  const std::string first =
      lambda_event({kinesis_record(1, parts[0]), kinesis_record(2, parts[1])});
  const std::string completing = lambda_event({kinesis_record(3, parts[2])});

  InteractiveProcess replay({cli, "replay", "--allow-host", allow_host(nginx), "--upload-attempts",
                             "2", "--retry-backoff-ms", "1"});
  CHECK(replay.exchange(first, std::chrono::seconds(10)) == std::string(empty_reply));

  nginx.set_flaky_down(true);
  CHECK(replay.exchange(completing, std::chrono::seconds(10)) ==
        failures_reply({sequence_number(3)}));
  const std::vector<LogEntry> down = settled_requests(nginx, "/flaky/", 2);
  CHECK(down.size() == 2);
  for (const LogEntry& entry : down) CHECK(entry.status == 503);

  nginx.set_flaky_down(false);
  CHECK(replay.exchange(completing, std::chrono::seconds(10)) == std::string(empty_reply));
  CHECK(replay.exchange(completing, std::chrono::seconds(10)) == std::string(empty_reply));
  CHECK(replay.exchange(first, std::chrono::seconds(10)) == std::string(empty_reply));

  const RunResult end = replay.finish(std::chrono::seconds(10));
  CHECK_FALSE(end.timed_out);
  CHECK(end.exit_code == 1);  // a record failed when it was processed
  CHECK(end.out == "");

  const std::vector<LogEntry> all = settled_requests(nginx, "/flaky/", 3);
  CHECK(all.size() == 3);
  int successes = 0;
  for (const LogEntry& entry : all) {
    CHECK(entry.method == "PUT");
    CHECK(entry.content_type == "");
    if (entry.status == 201 || entry.status == 204) ++successes;
  }
  CHECK(successes == 1);
  CHECK(read_bytes(nginx.stored_file("/flaky/healed.bin")) == bytes);
}

TEST_CASE("cli: --dead-letter keeps every rejected record as JSON, and a refused body as .bin") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  const fs::path letters = dir / "dead" / "letters";  // created by replay
  const std::string good_endpoint = nginx.url("/files/dl/good.bin");
  const std::string refused_body = "the body nobody wanted";
  const std::string invalid = R"({"putEndpoint":)";
  const std::string plain_http = chunk("http://example.com/dl/x.bin", 0, 1, "x");
  const std::vector<KinesisRecord> records = {
      kinesis_record(1, invalid), kinesis_record(2, plain_http),
      kinesis_record(3, chunk(good_endpoint, 0, 1, "good")),
      kinesis_record(4, chunk(nginx.url("/fail403/z.bin") + "?sig=z", 0, 1, refused_body))};
  const fs::path input = dir / "event.json";
  write_bytes(input, lambda_event(records));

  const RunResult replay = run({cli, "replay", "--allow-host", allow_host(nginx), "--dead-letter",
                                letters.string(), input.string()});
  CHECK(replay.exit_code == 1);
  CHECK(replay.out == std::string(empty_reply) + "\n");
  check_uploaded_once(nginx, "/files/dl/", {{uri_of(nginx, good_endpoint), "good"}});

  struct Expected {
    std::string error;
    std::string data;  // base64
  };
  std::map<std::string, Expected> expected = {
      {records[0].seq, {"invalid_json", records[0].data}},
      {records[1].seq, {"endpoint_scheme", records[1].data}},
      {records[3].seq, {"upload_refused", records[3].data}}};

  REQUIRE(fs::is_directory(letters));
  CHECK((fs::status(letters).permissions() & fs::perms::all) == fs::perms::owner_all);
  std::set<std::string> seen;
  simdjson::dom::parser parser;
  std::size_t bins = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(letters)) {
    const std::string name = entry.path().filename().string();
    CAPTURE(name);
    CHECK((entry.status().permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    if (entry.path().extension() == ".bin") {
      ++bins;
      CHECK(name.ends_with("-" + records[3].seq + ".bin"));
      CHECK(read_bytes(entry.path()) == refused_body);
      continue;
    }
    REQUIRE(entry.path().extension() == ".json");
    const std::optional<std::string> text = read_bytes(entry.path());
    REQUIRE(text.has_value());
    simdjson::dom::object letter;
    REQUIRE(parser.parse(*text).get_object().get(letter) == simdjson::SUCCESS);
    const std::string record = text_field(letter, "record");
    CAPTURE(record);
    REQUIRE(expected.count(record) == 1);
    CHECK(seen.insert(record).second);
    CHECK(name.ends_with("-" + record + ".json"));
    CHECK(text_field(letter, "error") == expected[record].error);
    CHECK(text_field(letter, "source") == "lambda");
    CHECK(text_field(letter, "data") == expected[record].data);
    CHECK_FALSE(text_field(letter, "message").empty());
    CHECK(text->find("sig=") == std::string::npos);
  }
  CHECK(seen.size() == expected.size());
  CHECK(bins == 1);

  SUBCASE("bare chunks: the raw line, base64, with its line number") {
    const fs::path chunks = dir / "chunks.ndjson";
    const std::string bad_line = R"({"putEndpoint":"x",)";
    write_bytes(chunks, chunk(nginx.url("/files/dl/n.bin"), 0, 1, "n") + "\n" + bad_line + "\n");
    const fs::path more = dir / "more-letters";
    const RunResult bare = run({cli, "replay", "--allow-host", allow_host(nginx), "--dead-letter",
                                more.string(), chunks.string()});
    CHECK(bare.exit_code == 1);
    CHECK(bare.out == R"({"records":2,"uploaded":1,"duplicates":0,"rejected":[2],"failed":[]})"
                      "\n");
    std::vector<fs::path> files;
    for (const fs::directory_entry& entry : fs::directory_iterator(more))
      files.push_back(entry.path());
    REQUIRE(files.size() == 1);
    CHECK(files[0].filename().string().ends_with("-2.json"));
    const std::optional<std::string> text = read_bytes(files[0]);
    REQUIRE(text.has_value());
    simdjson::dom::object letter;
    REQUIRE(parser.parse(*text).get_object().get(letter) == simdjson::SUCCESS);
    CHECK(text_field(letter, "record") == "2");
    CHECK(text_field(letter, "error") == "invalid_json");
    CHECK(text_field(letter, "source") == "ndjson");
    CHECK(text_field(letter, "data") == filebuilder::base64::encode(bad_line));
  }
}

// The dead letter of a record whose envelope data is not base64 carries that
// text base64-encoded, in a valid JSON file.
TEST_CASE(
    "cli: the dead letter of envelope data that is not base64 is valid JSON with base64 data") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  const fs::path letters = dir / "letters";
  const std::string raw = R"(not base64 "quoted" \ )";
  const fs::path input = dir / "event.json";
  write_bytes(input, lambda_event({{sequence_number(1), raw}}));
  const RunResult replay = run({cli, "replay", "--allow-host", allow_host(nginx), "--dead-letter",
                                letters.string(), input.string()});
  CHECK(replay.exit_code == 1);
  CHECK(replay.out == std::string(empty_reply) + "\n");
  CHECK(error_lines(replay.err)[sequence_number(1)] == std::vector<std::string>{"bad_record_data"});
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(letters))
    files.push_back(entry.path());
  REQUIRE(files.size() == 1);
  const std::optional<std::string> text = read_bytes(files[0]);
  REQUIRE(text.has_value());
  simdjson::dom::parser parser;
  simdjson::dom::object letter;
  REQUIRE_MESSAGE(parser.parse(*text).get_object().get(letter) == simdjson::SUCCESS,
                  "not JSON: " << *text);
  CHECK(text_field(letter, "error") == "bad_record_data");
  CHECK(text_field(letter, "data") == filebuilder::base64::encode(raw));
}

TEST_CASE("cli: usage errors exit 2 with one line on stderr, --help and --version exit 0") {
  SUBCASE("unknown option") {
    const RunResult r = run({cli, "replay", "--no-such-option"});
    CHECK(r.exit_code == 2);
    CHECK(r.out == "");
    CHECK(lines_of(r.err).size() == 1);
    CHECK(r.err.ends_with("\n"));
  }
  SUBCASE("no subcommand") {
    const RunResult r = run({cli});
    CHECK(r.exit_code == 2);
    CHECK(r.out == "");
    CHECK(lines_of(r.err).size() == 1);
  }
  SUBCASE("replay --help") {
    const RunResult r = run({cli, "replay", "--help"});
    CHECK(r.exit_code == 0);
    CHECK(r.err == "");
    CHECK(r.out.find("--allow-host") != std::string::npos);
    CHECK(r.out.find("--dead-letter") != std::string::npos);
    CHECK(r.out.find("--upload-attempts") != std::string::npos);
  }
  SUBCASE("--version") {
    const RunResult r = run({cli, "--version"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == std::string("filebuilder ") + FILEBUILDER_VERSION_STRING + "\n");
    CHECK(r.err == "");
  }
  SUBCASE("invalid --allow-host") {
    for (const std::string host : {"bad host", "127.0.0.1:99999", "127.0.0.1:", "[::1"}) {
      CAPTURE(host);
      const RunResult r = run({cli, "replay", "--allow-host", host}, "");
      CHECK(r.exit_code == 2);
      CHECK(r.out == "");
      CHECK(lines_of(r.err).size() == 1);
    }
  }
  SUBCASE("invalid --format and --log-level") {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{cli, "replay", "--format", "csv"},
          std::vector<std::string>{cli, "replay", "--log-level", "loud"},
          std::vector<std::string>{cli, "replay", "--max-partitions", "many"}}) {
      CAPTURE(args[2]);
      const RunResult r = run(args, "");
      CHECK(r.exit_code == 2);
      CHECK(r.out == "");
      CHECK(lines_of(r.err).size() == 1);
    }
  }
  SUBCASE("an unknown --uploader, or FILEBUILDER_UPLOADER, names the ones there are") {
    const RunResult flag = run({cli, "replay", "--uploader", "wget"}, "");
    CHECK(flag.exit_code == 2);
    CHECK(flag.out == "");
    std::string known = "curl";
#if defined(FILEBUILDER_HAS_BEAST)
    known += "|beast";
#endif
    CHECK(flag.err == "filebuilder: unknown uploader 'wget' (" + known + ")\n");
    const RunResult env = run({"/usr/bin/env", "FILEBUILDER_UPLOADER=wget", cli, "replay"}, "");
    CHECK(env.exit_code == 2);
    CHECK(env.err == flag.err);
  }
  SUBCASE("replay --help names the uploaders") {
    const RunResult r = run({cli, "replay", "--help"});
    CHECK(r.exit_code == 0);
#if defined(FILEBUILDER_HAS_BEAST)
    CHECK(r.out.find("HTTP uploader: curl|beast") != std::string::npos);
#else
    CHECK(r.out.find("HTTP uploader: curl") != std::string::npos);
#endif
  }
  SUBCASE("split without --endpoint") {
    TempDir dir("filebuilder-cli");
    write_bytes(dir / "f", "abc");
    const RunResult r = run({cli, "split", (dir / "f").string()});
    CHECK(r.exit_code == 2);
    CHECK(r.out == "");
    CHECK(lines_of(r.err).size() == 1);
  }
  SUBCASE("split of a missing file") {
    TempDir dir("filebuilder-cli");
    const RunResult r =
        run({cli, "split", "--endpoint", "https://example.com/a", (dir / "missing").string()});
    CHECK(r.exit_code == 2);
    CHECK(r.out == "");
    CHECK(lines_of(r.err).size() == 1);
  }
}

TEST_CASE("cli: an unreadable FILE exits 2, and the other FILEs are still processed") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  const std::string x = nginx.url("/files/unreadable/x.bin");
  const std::string y = nginx.url("/files/unreadable/y.bin");
  const fs::path first = dir / "first.ndjson";
  const fs::path second = dir / "second.ndjson";
  write_bytes(first, chunk(x, 0, 1, "x bytes") + "\n");
  write_bytes(second, chunk(y, 0, 1, "y bytes") + "\n");
  const fs::path missing = dir / "missing.ndjson";

  const RunResult r = run({cli, "replay", "--allow-host", allow_host(nginx), first.string(),
                           missing.string(), second.string()});
  CHECK(r.exit_code == 2);
  CHECK(r.out == R"({"records":2,"uploaded":2,"duplicates":0,"rejected":[],"failed":[]})"
                 "\n");
  CHECK(r.err.find(missing.string()) != std::string::npos);
  CHECK(count_level(r.err, "error") == 1);
  check_uploaded_once(nginx, "/files/unreadable/",
                      {{uri_of(nginx, x), "x bytes"}, {uri_of(nginx, y), "y bytes"}});
}

TEST_CASE("cli: a directory given as FILE is unreadable: exit 2, the others processed") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  const std::string x = nginx.url("/files/dir/x.bin");
  const std::string y = nginx.url("/files/dir/y.bin");
  const fs::path first = dir / "first.ndjson";
  const fs::path second = dir / "second.ndjson";
  write_bytes(first, chunk(x, 0, 1, "x bytes") + "\n");
  write_bytes(second, chunk(y, 0, 1, "y bytes") + "\n");
  fs::create_directory(dir / "a-directory");

  const RunResult r = run({cli, "replay", "--allow-host", allow_host(nginx), first.string(),
                           (dir / "a-directory").string(), second.string()});
  CHECK(r.signal == 0);
  CHECK(r.exit_code == 2);
  CHECK(r.out == R"({"records":2,"uploaded":2,"duplicates":0,"rejected":[],"failed":[]})"
                 "\n");
  check_uploaded_once(nginx, "/files/dir/",
                      {{uri_of(nginx, x), "x bytes"}, {uri_of(nginx, y), "y bytes"}});
  CHECK(r.err.find(R"("msg":"cannot read file")") != std::string::npos);
  CHECK(r.err.find(R"("error":"Is a directory")") != std::string::npos);
}

// A directory is not readable input: one line on stderr, exit 2 (a stream
// reading one would throw from inside libstdc++).
TEST_CASE("cli: split of a directory is a usage error, exit 2") {
  TempDir dir("filebuilder-cli");
  const RunResult r =
      run({cli, "split", "--endpoint", "https://example.com/a", dir.path().string()});
  CHECK(r.signal == 0);
  CHECK(r.exit_code == 2);
  CHECK(r.out == "");
  CHECK(lines_of(r.err).size() == 1);
}

TEST_CASE("cli: input detection: pretty-printed events, NDJSON of events, bare chunks") {
  Nginx nginx;
  TempDir dir("filebuilder-cli");
  std::mt19937_64 rng(8);
  const std::vector<std::string> replay_args = {cli, "replay", "--allow-host", allow_host(nginx)};
  const auto replay = [&](std::vector<std::string> files, std::string_view stdin_bytes = {}) {
    std::vector<std::string> args = replay_args;
    args.insert(args.end(), files.begin(), files.end());
    return run(args, stdin_bytes);
  };

  SUBCASE("a pretty-printed Lambda event is one event") {
    const std::string endpoint = nginx.url("/files/detect/pretty.bin");
    const std::string bytes = random_bytes(rng, 300);
    const std::vector<std::string> parts = chunks_of(endpoint, bytes, 200);
    REQUIRE(parts.size() == 2);
    std::string event = "{\n  \"Records\": [\n";
    for (std::size_t i = 0; i < parts.size(); ++i) {
      event += "    {\n      \"kinesis\": {\n        \"sequenceNumber\": \"" +
               sequence_number(i + 1) + "\",\n        \"data\": \"" +
               filebuilder::base64::encode(parts[i]) + "\"\n      }\n    }" +
               (i + 1 < parts.size() ? ",\n" : "\n");
    }
    event += "  ]\n}\n";
    write_bytes(dir / "pretty.json", event);
    const RunResult r = replay({(dir / "pretty.json").string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out == std::string(empty_reply) + "\n");
    check_uploaded_once(nginx, "/files/detect/", {{uri_of(nginx, endpoint), bytes}});
  }

  SUBCASE("several events, one per line: one reply per line") {
    const std::string endpoint = nginx.url("/files/detect/lines.bin");
    const std::string bytes = random_bytes(rng, 500);
    const std::vector<std::string> parts = chunks_of(endpoint, bytes, 100);
    REQUIRE(parts.size() == 5);
    const std::string text =
        lambda_event({kinesis_record(1, parts[0]), kinesis_record(2, parts[1])}) + "\n" +
        lambda_event({kinesis_record(3, parts[2])}) + "\n" +
        lambda_event({kinesis_record(4, parts[3]), kinesis_record(5, parts[4]),
                      kinesis_record(6, parts[0])}) +
        "\n";
    write_bytes(dir / "events.ndjson", text);
    const RunResult r = replay({(dir / "events.ndjson").string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out == repeat_line(empty_reply, 3));
    check_uploaded_once(nginx, "/files/detect/", {{uri_of(nginx, endpoint), bytes}});
  }

  SUBCASE("bare chunks whose first line is malformed are still NDJSON") {
    const std::string endpoint = nginx.url("/files/detect/bare.bin");
    const std::string bytes = random_bytes(rng, 250);
    const std::vector<std::string> parts = chunks_of(endpoint, bytes, 100);
    REQUIRE(parts.size() == 3);
    write_bytes(dir / "bare.ndjson",
                "{oops\n" + parts[2] + "\n" + parts[0] + "\n" + parts[1] + "\n");
    const RunResult r = replay({(dir / "bare.ndjson").string()});
    CHECK(r.exit_code == 1);
    CHECK(r.out == R"({"records":4,"uploaded":1,"duplicates":0,"rejected":[1],"failed":[]})"
                   "\n");
    CHECK(error_lines(r.err) ==
          std::map<std::string, std::vector<std::string>>{{"1", {"invalid_json"}}});
    check_uploaded_once(nginx, "/files/detect/", {{uri_of(nginx, endpoint), bytes}});
  }

  SUBCASE("two NDJSON files: records are named file:line") {
    const std::string endpoint = nginx.url("/files/detect/two.bin");
    const std::string bytes = random_bytes(rng, 150);
    const std::vector<std::string> parts = chunks_of(endpoint, bytes, 100);
    REQUIRE(parts.size() == 2);
    const fs::path one = dir / "one.ndjson";
    const fs::path two = dir / "two.ndjson";
    write_bytes(one, parts[0] + "\n[]\n" + parts[0] + "\n");
    write_bytes(two, "{\"putEndpoint\":\n" + parts[1] + "\n");
    const RunResult r = replay({one.string(), two.string()});
    CHECK(r.exit_code == 1);
    CHECK(r.out == R"({"records":5,"uploaded":1,"duplicates":1,"rejected":[")" + one.string() +
                       R"(:2",")" + two.string() + R"(:1"],"failed":[]})" + "\n");
    CHECK(error_lines(r.err) ==
          std::map<std::string, std::vector<std::string>>{{one.string() + ":2", {"not_an_object"}},
                                                          {two.string() + ":1", {"invalid_json"}}});
    check_uploaded_once(nginx, "/files/detect/", {{uri_of(nginx, endpoint), bytes}});
  }

  SUBCASE("--format forces the kind of every input") {
    const std::string endpoint = nginx.url("/files/detect/forced.bin");
    const std::string record = chunk(endpoint, 0, 1, "forced");
    write_bytes(dir / "event.json", lambda_event({kinesis_record(1, record)}) + "\n");
    write_bytes(dir / "chunk.ndjson", record + "\n");

    std::vector<std::string> args = replay_args;
    args.insert(args.end(), {"--format", "ndjson", (dir / "event.json").string()});
    const RunResult as_chunk = run(args);
    CHECK(as_chunk.exit_code == 1);
    CHECK(as_chunk.out == R"({"records":1,"uploaded":0,"duplicates":0,"rejected":[1],"failed":[]})"
                          "\n");
    CHECK(error_lines(as_chunk.err) ==
          std::map<std::string, std::vector<std::string>>{{"1", {"missing_field"}}});

    args = replay_args;
    args.insert(args.end(), {"--format", "lambda", (dir / "chunk.ndjson").string()});
    const RunResult as_event = run(args);
    CHECK(as_event.exit_code == 1);
    CHECK(as_event.out == "");
    CHECK(error_lines(as_event.err) ==
          std::map<std::string, std::vector<std::string>>{{"1", {"bad_event"}}});
    CHECK(nginx.requests().empty());
  }

  SUBCASE("bare chunks on standard input: one summary when the input ends") {
    const std::string endpoint = nginx.url("/files/detect/stdin.bin");
    const std::string bytes = random_bytes(rng, 250);
    const std::vector<std::string> parts = chunks_of(endpoint, bytes, 100);
    REQUIRE(parts.size() == 3);
    const RunResult r =
        replay({"-"}, parts[1] + "\n" + parts[0] + "\n" + parts[1] + "\n" + parts[2] + "\n");
    CHECK(r.exit_code == 0);
    CHECK(r.out == R"({"records":4,"uploaded":1,"duplicates":1,"rejected":[],"failed":[]})"
                   "\n");
    check_uploaded_once(nginx, "/files/detect/", {{uri_of(nginx, endpoint), bytes}});
  }
}

#endif  // FILEBUILDER_CLI_PATH
