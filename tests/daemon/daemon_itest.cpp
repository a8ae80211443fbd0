// filebuilderd end to end: the KCL record processor driven by a scripted
// MultiLangDaemon (the KCL's Java distribution cannot be installed here, so the
// test plays its side of the protocol), and the stdin mode, both uploading to
// a real nginx on 127.0.0.1.
#include <doctest/doctest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/split.hpp"
#include "support/bytes.hpp"
#include "support/net.hpp"
#include "support/nginx.hpp"
#ifdef FILEBUILDER_TEST_HTTPLIB
#include "support/put_recorder.hpp"
#endif
#include "support/run.hpp"

#ifdef FILEBUILDER_DAEMON_PATH

namespace {

using filebuilder::Splitter;
using filebuilder::test::InteractiveProcess;
using filebuilder::test::Nginx;
using filebuilder::test::random_bytes;
using filebuilder::test::read_bytes;
using filebuilder::test::RunResult;

const std::string daemon_path = FILEBUILDER_DAEMON_PATH;

std::string bytes_of(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return random_bytes(rng, size);
}

std::string stored(const Nginx& nginx, const std::string& path) {
  return read_bytes(nginx.stored_file(path)).value_or("(missing)");
}

std::vector<std::string> daemon_args(const Nginx& nginx, const std::string& mode) {
  return {daemon_path,         mode, "--allow-host", "127.0.0.1:" + std::to_string(nginx.port()),
          "--upload-attempts", "1",  "--log-level",  "info"};
}

/// The chunk records of one file, in partition order.
std::vector<std::string> chunks_of(const std::string& url, const std::string& bytes,
                                   std::size_t chunk_size) {
  std::vector<std::string> out;
  const std::uint64_t count = (bytes.size() + chunk_size - 1) / chunk_size;
  for (std::uint64_t i = 0; i < count; ++i)
    out.push_back(Splitter::chunk_record(url, i, count, bytes.substr(i * chunk_size, chunk_size)));
  return out;
}

std::string sequence_number(std::uint64_t n) {
  std::string digits = std::to_string(n);
  return "4959" + std::string(52 - digits.size(), '0') + digits;
}

/// {"action":"processRecords","records":[...]} with sequence numbers from `first`.
std::string process_records(const std::vector<std::string>& chunks, std::uint64_t first) {
  std::string message = R"({"action":"processRecords","millisBehindLatest":0,"records":[)";
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (i) message += ',';
    message += R"({"data":")" + filebuilder::base64::encode(chunks[i]) +
               R"(","partitionKey":"pk","sequenceNumber":")" + sequence_number(first + i) +
               R"(","subSequenceNumber":0,"approximateArrivalTimestamp":1700000000000})";
  }
  return message + "]}";
}

std::string status_for(const std::string& action) {
  return R"({"action":"status","responseFor":")" + action + "\"}";
}

std::string checkpoint_at(std::uint64_t n) {
  return R"({"action":"checkpoint","sequenceNumber":")" + sequence_number(n) +
         R"(","subSequenceNumber":0})";
}

/// The MultiLangDaemon's side: sends `message`, answers every checkpoint
/// request, and returns the checkpoints asked for before the status line.
std::vector<std::string> send(InteractiveProcess& processor, const std::string& message,
                              const std::string& action) {
  std::vector<std::string> checkpoints;
  REQUIRE(processor.write_line(message));
  while (true) {
    const std::optional<std::string> line = processor.read_line();
    REQUIRE(line.has_value());
    if (line->find(R"("action":"checkpoint")") != std::string::npos) {
      checkpoints.push_back(*line);
      REQUIRE(processor.write_line(R"({"action":"checkpoint","error":null})"));
      continue;
    }
    CHECK(*line == status_for(action));
    return checkpoints;
  }
}

}  // namespace

TEST_CASE("filebuilderd kcl: statuses, a checkpoint after each batch, the shard end") {
  Nginx nginx;
  const std::string bytes = bytes_of(5000, 1);
  const std::vector<std::string> chunks = chunks_of(nginx.url("/files/kcl.bin"), bytes, 1024);
  REQUIRE(chunks.size() == 5);
  InteractiveProcess processor(daemon_args(nginx, "kcl"));
  CHECK(
      send(
          processor,
          R"({"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0})",
          "initialize")
          .empty());
  // Two batches, a duplicate in the second; the file completes in the second.
  const std::vector<std::string> first =
      send(processor, process_records({chunks[3], chunks[0], chunks[1]}, 1), "processRecords");
  CHECK(first == std::vector<std::string>{checkpoint_at(3)});
  const std::vector<std::string> second =
      send(processor, process_records({chunks[1], chunks[4], chunks[2]}, 4), "processRecords");
  CHECK(second == std::vector<std::string>{checkpoint_at(6)});
  CHECK(stored(nginx, "/files/kcl.bin") == bytes);
  const std::vector<std::string> end = send(processor, R"({"action":"shardEnded"})", "shardEnded");
  CHECK(end == std::vector<std::string>{
                   R"({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null})"});
  const RunResult result = processor.finish();
  CHECK(result.exit_code == 0);
  CHECK(result.out.empty());  // stdout carries protocol lines only
  CHECK(result.err.find(R"("msg":"file uploaded")") != std::string::npos);
  CHECK(result.err.find(R"("record":"shardId-000000000001/)") != std::string::npos);
  CHECK(result.err.find("cannot complete") != std::string::npos);  // the memory: warning
}

TEST_CASE("filebuilderd kcl: a failed upload holds the checkpoint below its record") {
  Nginx nginx;
  const std::string good = bytes_of(100, 2);
  const std::string bad = bytes_of(100, 3);
  const std::vector<std::string> failing = chunks_of(nginx.url("/fail503/f.bin"), bad, 60);
  const std::vector<std::string> fine = chunks_of(nginx.url("/files/g.bin"), good, 60);
  REQUIRE(failing.size() == 2);
  REQUIRE(fine.size() == 2);
  InteractiveProcess processor(daemon_args(nginx, "kcl"));
  (void)send(processor, R"({"action":"initialize","shardId":"shardId-000000000002"})",
             "initialize");
  // Records 1..3: record 2 completes the file whose PUT fails (503).
  CHECK(send(processor, process_records({failing[0], failing[1], fine[0]}, 1), "processRecords") ==
        std::vector<std::string>{checkpoint_at(1)});
  // Later batches succeed, but the checkpoint must not pass record 2.
  CHECK(send(processor, process_records({fine[1]}, 4), "processRecords").empty());
  CHECK(stored(nginx, "/files/g.bin") == good);
  // The shard ends: no checkpoint at its end, so the KCL retries it.
  CHECK(send(processor, R"({"action":"shardEnded"})", "shardEnded").empty());
  const RunResult result = processor.finish();
  CHECK(result.exit_code == 1);
  CHECK(result.err.find(R"("error":"upload_failed")") != std::string::npos);
  CHECK(result.err.find(R"("record":"shardId-000000000002/)" + sequence_number(2) + "\"") !=
        std::string::npos);
}

TEST_CASE("filebuilderd kcl: leaseLost and shutdown ZOMBIE never checkpoint, TERMINATE does") {
  Nginx nginx;
  const std::vector<std::string> chunks = chunks_of(nginx.url("/files/z.bin"), bytes_of(10, 4), 4);
  for (const std::string& ending : {std::string(R"({"action":"leaseLost"})"),
                                    std::string(R"({"action":"shutdown","reason":"ZOMBIE"})"),
                                    std::string(R"({"action":"shutdown","reason":"TERMINATE"})")}) {
    CAPTURE(ending);
    InteractiveProcess processor(daemon_args(nginx, "kcl"));
    (void)send(processor, R"({"action":"initialize","shardId":"shardId-000000000003"})",
               "initialize");
    CHECK(send(processor, process_records({chunks[0]}, 1), "processRecords") ==
          std::vector<std::string>{checkpoint_at(1)});
    const std::string action =
        ending.find("leaseLost") != std::string::npos ? "leaseLost" : "shutdown";
    const std::vector<std::string> checkpoints = send(processor, ending, action);
    if (ending.find("TERMINATE") != std::string::npos)
      CHECK(checkpoints.size() == 1);
    else
      CHECK(checkpoints.empty());
    CHECK(processor.finish().exit_code == 0);
  }
}

TEST_CASE("filebuilderd stdin: one reply line per input line") {
  Nginx nginx;
  const std::string bytes = bytes_of(300, 5);
  const std::vector<std::string> chunks = chunks_of(nginx.url("/files/s.bin"), bytes, 200);
  REQUIRE(chunks.size() == 2);
  InteractiveProcess daemon(daemon_args(nginx, "stdin"));
  CHECK(daemon.exchange(chunks[1]) ==
        std::optional<std::string>(R"({"record":1,"outcome":"accepted"})"));
  CHECK(daemon.exchange("not json") ==
        std::optional<std::string>(R"({"record":2,"outcome":"rejected","error":"invalid_json"})"));
  const std::string event = R"({"Records":[{"kinesis":{"sequenceNumber":"7","data":")" +
                            filebuilder::base64::encode(chunks[0]) + R"("}}]})";
  CHECK(daemon.exchange(event) == std::optional<std::string>(R"({"batchItemFailures":[]})"));
  CHECK(stored(nginx, "/files/s.bin") == bytes);
  CHECK(daemon.exchange(R"({"Records":5})") ==
        std::optional<std::string>(R"({"record":4,"outcome":"rejected","error":"bad_event"})"));
  const RunResult result = daemon.finish();
  // Rejected lines are logged and answered; only records still failed at the
  // end make the daemon exit 1 (CONTRACT.md).
  CHECK(result.exit_code == 0);
  CHECK(result.err.find(R"("error":"invalid_json")") != std::string::npos);
}

TEST_CASE("filebuilderd stdin: exits 1 while an upload is still failed, 0 once it healed") {
  Nginx nginx;
  const std::string bytes = bytes_of(50, 6);
  SUBCASE("still failed at the end") {
    const std::vector<std::string> chunks = chunks_of(nginx.url("/fail503/x.bin"), bytes, 50);
    InteractiveProcess daemon(daemon_args(nginx, "stdin"));
    CHECK(daemon.exchange(chunks[0]) ==
          std::optional<std::string>(R"({"record":1,"outcome":"failed","error":"upload_failed"})"));
    CHECK(daemon.finish().exit_code == 1);
  }
  SUBCASE("failed, then uploaded when a duplicate completes the file again") {
    const std::vector<std::string> chunks = chunks_of(nginx.url("/flaky/y.bin"), bytes, 50);
    nginx.set_flaky_down(true);
    InteractiveProcess daemon(daemon_args(nginx, "stdin"));
    CHECK(daemon.exchange(chunks[0]) ==
          std::optional<std::string>(R"({"record":1,"outcome":"failed","error":"upload_failed"})"));
    nginx.set_flaky_down(false);
    CHECK(daemon.exchange(chunks[0]) ==
          std::optional<std::string>(R"({"record":2,"outcome":"uploaded"})"));
    CHECK(stored(nginx, "/flaky/y.bin") == bytes);
    CHECK(daemon.finish().exit_code == 0);
  }
}

#ifdef FILEBUILDER_TEST_HTTPLIB

namespace {

using filebuilder::test::http_get;

/// The value of the sample `name` (with its labels) on a /metrics page, or -1.
long sample(const std::string& page, const std::string& name) {
  const std::string prefix = "\n" + name + " ";
  const std::size_t at = ("\n" + page).find(prefix);
  if (at == std::string::npos) return -1;
  return std::stol(page.substr(at + prefix.size() - 1));
}

}  // namespace

TEST_CASE("filebuilderd stdin --metrics: /metrics counts what was handled, /healthz answers") {
  Nginx nginx;
  const std::string bytes = bytes_of(300, 7);
  const std::vector<std::string> chunks = chunks_of(nginx.url("/files/m.bin"), bytes, 200);
  const int port = filebuilder::test::free_port();
  std::vector<std::string> args = daemon_args(nginx, "stdin");
  args.insert(args.end(), {"--metrics", "127.0.0.1:" + std::to_string(port)});
  InteractiveProcess daemon(args);
  CHECK(daemon.exchange(chunks[1]).has_value());
  CHECK(daemon.exchange(chunks[1]).has_value());  // a duplicate
  CHECK(daemon.exchange("not json").has_value());
  CHECK(daemon.exchange(chunks[0]) ==
        std::optional<std::string>(R"({"record":4,"outcome":"uploaded"})"));
  // (clang 14: CAPTURE cannot name a structured binding)
  const std::pair<int, std::string> reply = http_get(port, "/metrics");
  const std::string& page = reply.second;
  CHECK(reply.first == 200);
  CAPTURE(page);
  CHECK(sample(page, R"(filebuilder_records_total{outcome="accepted"})") == 1);
  CHECK(sample(page, R"(filebuilder_records_total{outcome="duplicate"})") == 1);
  CHECK(sample(page, R"(filebuilder_records_total{outcome="uploaded"})") == 1);
  CHECK(sample(page, R"(filebuilder_records_total{outcome="rejected"})") == 1);
  CHECK(sample(page, R"(filebuilder_records_rejected_total{code="invalid_json"})") == 1);
  CHECK(sample(page, "filebuilder_bytes_decoded_total") == 100 + 100 + 200);
  CHECK(sample(page, "filebuilder_files_uploaded_total") == 1);
  CHECK(sample(page, "filebuilder_upload_failures_total") == 0);
  CHECK(sample(page, "filebuilder_upload_duration_seconds_count") == 1);
  CHECK(sample(page, R"(filebuilder_upload_duration_seconds_bucket{le="+Inf"})") == 1);
  CHECK(page.find("# TYPE filebuilder_upload_duration_seconds histogram\n") != std::string::npos);
  CHECK(page.find("/files/m.bin") == std::string::npos);  // no endpoint in any label
  const auto health = http_get(port, "/healthz");
  CHECK(health.first == 200);
  CHECK(health.second == "ok\n");
  CHECK(http_get(port, "/other").first == 404);
  CHECK(daemon.finish().exit_code == 0);
}

TEST_CASE("filebuilderd kcl --metrics: millisBehindLatest of the shard") {
  Nginx nginx;
  const std::vector<std::string> chunks = chunks_of(nginx.url("/files/l.bin"), bytes_of(10, 8), 4);
  const int port = filebuilder::test::free_port();
  std::vector<std::string> args = daemon_args(nginx, "kcl");
  args.insert(args.end(), {"--metrics", "127.0.0.1:" + std::to_string(port)});
  InteractiveProcess processor(args);
  (void)send(processor, R"({"action":"initialize","shardId":"shardId-000000000007"})",
             "initialize");
  std::string batch = process_records({chunks[0]}, 1);
  batch.replace(batch.find(R"("millisBehindLatest":0)"), 22, R"("millisBehindLatest":4321)");
  (void)send(processor, batch, "processRecords");
  // (clang 14: CAPTURE cannot name a structured binding)
  const std::pair<int, std::string> reply = http_get(port, "/metrics");
  const std::string& page = reply.second;
  CHECK(reply.first == 200);
  CAPTURE(page);
  CHECK(sample(page, R"(filebuilder_millis_behind_latest{shard="shardId-000000000007"})") == 4321);
  CHECK(sample(page, R"(filebuilder_records_total{outcome="accepted"})") == 1);
  (void)send(processor, R"({"action":"leaseLost"})", "leaseLost");
  CHECK(processor.finish().exit_code == 0);
}

TEST_CASE("filebuilderd --metrics: a malformed address or a port in use exits 2") {
  Nginx nginx;
  for (const std::string& address :
       {std::string("9464"), std::string("::1:9464"), std::string("127.0.0.1:99999"),
        "127.0.0.1:" + std::to_string(nginx.port())}) {
    CAPTURE(address);
    std::vector<std::string> args = daemon_args(nginx, "stdin");
    args.insert(args.end(), {"--metrics", address});
    const RunResult result = filebuilder::test::run(args, "");
    CHECK(result.exit_code == 2);
    CHECK(result.err.find("--metrics") != std::string::npos);
  }
}

#endif  // FILEBUILDER_TEST_HTTPLIB

#endif  // FILEBUILDER_DAEMON_PATH
