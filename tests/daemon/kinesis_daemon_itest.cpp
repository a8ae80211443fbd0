// filebuilderd kinesis end to end: kinesalite (npm) as the Kinesis endpoint,
// fed with `filebuilder split`-style chunk records on random partition keys,
// and nginx as the PUT target, both on 127.0.0.1, started by the tests.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "filebuilder/split.hpp"
#include "support/bytes.hpp"
#include "support/kinesalite.hpp"
#include "support/net.hpp"
#include "support/nginx.hpp"
#include "support/process.hpp"
#ifdef FILEBUILDER_TEST_HTTPLIB
#include "support/put_recorder.hpp"
#endif
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#ifdef FILEBUILDER_DAEMON_PATH

namespace {

namespace fs = std::filesystem;
namespace aws = filebuilder::aws;
using filebuilder::Splitter;
using filebuilder::test::Kinesalite;
using filebuilder::test::KinesisStream;
using filebuilder::test::Nginx;
using filebuilder::test::read_bytes;
using filebuilder::test::RunResult;
using filebuilder::test::TempDir;

const std::string daemon_path = FILEBUILDER_DAEMON_PATH;

// The credentials the daemon reads from its environment (kinesalite checks none).
struct TestCredentials {
  TestCredentials() {
    ::setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
  }
  ~TestCredentials() {
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
  }
};

struct Files {
  std::map<std::string, std::string> bytes;  // path on nginx -> content
  std::vector<std::string> records;          // chunk records, shuffled, 15% twice
};

// `target` is the Nginx (or PutRecorder) the files are PUT to.
template <typename Target>
Files make_files(const Target& target, const std::string& prefix, int count, std::uint64_t seed,
                 const std::string& location = "/files/") {
  std::mt19937_64 rng(seed);
  Files files;
  for (int i = 0; i < count; ++i) {
    const std::string path = location + prefix + "-" + std::to_string(i) + ".bin";
    const std::string bytes = filebuilder::test::random_bytes(rng, rng() % 6000);
    files.bytes[path] = bytes;
    const std::string url = target.url(path) + "?X-Amz-Signature=secret";
    const std::uint64_t parts = bytes.empty() ? 1 : (bytes.size() + 999) / 1000;
    for (std::uint64_t p = 0; p < parts; ++p)
      files.records.push_back(
          Splitter::chunk_record(url, p, parts, std::string_view(bytes).substr(p * 1000, 1000)));
  }
  const std::size_t unique = files.records.size();
  for (std::size_t i = 0; i < unique * 15 / 100; ++i)
    files.records.push_back(files.records[rng() % unique]);
  std::shuffle(files.records.begin(), files.records.end(), rng);
  return files;
}

void put_all(KinesisStream& stream, const std::vector<std::string>& records, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<KinesisStream::Entry> entries;
  for (const std::string& record : records)
    entries.push_back({record, "pk-" + std::to_string(rng()), ""});
  (void)stream.put_records(entries);
}

std::vector<std::string> daemon_args(const Kinesalite& kinesalite, const Nginx& nginx,
                                     const std::string& stream, const std::string& store,
                                     const std::string& idle_exit = "2") {
  std::vector<std::string> args = {daemon_path,         "kinesis",
                                   "--stream",          stream,
                                   "--endpoint-url",    kinesalite.endpoint(),
                                   "--region",          "us-east-1",
                                   "--store",           store,
                                   "--allow-host",      "127.0.0.1:" + std::to_string(nginx.port()),
                                   "--upload-attempts", "1",
                                   "--log-level",       "info"};
  if (!idle_exit.empty()) args.insert(args.end(), {"--idle-exit", idle_exit});
  return args;
}

// The one JSON line a run prints on stdout, field by field.
std::map<std::string, long> summary_of(const std::string& out) {
  std::map<std::string, long> fields;
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  REQUIRE_MESSAGE(parser.parse(out).get(object) == simdjson::SUCCESS, out);
  for (auto [key, value] : object) fields[std::string(key)] = static_cast<long>(value.get_int64());
  return fields;
}

// Every file is on nginx, byte for byte, PUT exactly once (counted from `from`).
void check_delivered(const Nginx& nginx, const Files& files, std::size_t from = 0) {
  std::map<std::string, int> puts;
  const auto requests = nginx.requests();
  for (std::size_t i = from; i < requests.size(); ++i)
    if (requests[i].method == "PUT" && requests[i].status / 100 == 2)
      ++puts[requests[i].uri.substr(0, requests[i].uri.find('?'))];
  for (const auto& file : files.bytes) {
    const std::string& path = file.first;  // (clang 14: CAPTURE cannot name a structured binding)
    CAPTURE(path);
    CHECK(read_bytes(nginx.stored_file(path)).value_or("(missing)") == file.second);
    CHECK(puts[path] == 1);
  }
}

// What every daemon test runs against: kinesalite with one stream, nginx,
// a file: store in a scratch directory, and credentials in the environment.
struct Setup {
  Setup(const std::string& name, unsigned shards) : stream(client, name) { stream.create(shards); }
  [[nodiscard]] std::vector<std::string> args(const std::string& idle_exit = "2") const {
    return daemon_args(kinesalite, nginx, stream.name(), store, idle_exit);
  }

  TestCredentials credentials;
  Kinesalite kinesalite;
  Nginx nginx;
  TempDir dir{"filebuilderd-kinesis"};
  aws::KinesisClient client = kinesalite.client();
  KinesisStream stream;
  std::string store = "file:" + (dir.path() / "state").string();
};

#define SKIP_WITHOUT_KINESALITE()                                        \
  if (const std::string why = Kinesalite::skip_reason(); !why.empty()) { \
    MESSAGE("kinesalite unavailable: " << why);                          \
    return;                                                              \
  }

}  // namespace

TEST_CASE("filebuilderd kinesis: two shards, duplicates, a restart reads only what is new") {
  SKIP_WITHOUT_KINESALITE();
  Setup setup("chunks", 2);
  auto& [credentials, kinesalite, nginx, dir, client, stream, store] = setup;
  const Files first = make_files(nginx, "first", 20, 1);
  put_all(stream, first.records, 2);

  RunResult run1 = filebuilder::test::run(daemon_args(kinesalite, nginx, "chunks", store), {},
                                          std::chrono::seconds(120));
  CAPTURE(run1.err);
  REQUIRE(run1.exit_code == 0);
  std::map<std::string, long> summary = summary_of(run1.out);
  CHECK(summary["records"] == static_cast<long>(first.records.size()));
  CHECK(summary["uploaded"] == 20);
  CHECK(summary["failed"] == 0);
  CHECK(summary["rejected"] == 0);
  CHECK(summary["shards"] == 2);
  check_delivered(nginx, first);
  CHECK(run1.err.find("secret") == std::string::npos);  // presigned URLs are redacted

  const std::size_t requests_before = nginx.requests().size();
  const Files second = make_files(nginx, "second", 5, 3);
  put_all(stream, second.records, 4);
  RunResult run2 = filebuilder::test::run(daemon_args(kinesalite, nginx, "chunks", store), {},
                                          std::chrono::seconds(120));
  CAPTURE(run2.err);
  REQUIRE(run2.exit_code == 0);
  summary = summary_of(run2.out);
  CHECK(summary["records"] == static_cast<long>(second.records.size()));
  CHECK(summary["uploaded"] == 5);
  check_delivered(nginx, second, requests_before);
}

TEST_CASE("filebuilderd kinesis: a split shard's children are read after their parent") {
  SKIP_WITHOUT_KINESALITE();
  Setup setup("resharded", 1);
  auto& [credentials, kinesalite, nginx, dir, client, stream, store] = setup;
  const Files before = make_files(nginx, "before", 6, 5);
  put_all(stream, before.records, 6);
  RunResult run1 = filebuilder::test::run(daemon_args(kinesalite, nginx, "resharded", store), {},
                                          std::chrono::seconds(120));
  CAPTURE(run1.err);
  REQUIRE(run1.exit_code == 0);

  stream.split_in_half(stream.shards().at(0));
  stream.wait_active();
  // Files whose chunks land in both children, and in the parent before the split.
  Files after = make_files(nginx, "after", 8, 7);
  put_all(stream, after.records, 8);
  RunResult run2 = filebuilder::test::run(daemon_args(kinesalite, nginx, "resharded", store), {},
                                          std::chrono::seconds(120));
  CAPTURE(run2.err);
  REQUIRE(run2.exit_code == 0);
  std::map<std::string, long> summary = summary_of(run2.out);
  CHECK(summary["records"] == static_cast<long>(after.records.size()));
  CHECK(summary["uploaded"] == 8);
  CHECK(summary["shards"] == 2);  // the children (the parent had nothing new)
  check_delivered(nginx, before);
  check_delivered(nginx, after);
  CHECK(run2.err.find("shard read to its end") != std::string::npos);
}

TEST_CASE("filebuilderd kinesis: a failed upload holds the checkpoint, a rerun heals it") {
  SKIP_WITHOUT_KINESALITE();
  Setup setup("held", 1);
  auto& [credentials, kinesalite, nginx, dir, client, stream, store] = setup;
  const Files files = make_files(nginx, "held", 3, 9, "/flaky/");
  put_all(stream, files.records, 10);
  nginx.set_flaky_down(true);
  {
    filebuilder::test::ChildProcess daemon(daemon_args(kinesalite, nginx, "held", store, ""),
                                           dir.path() / "run1.log");
    std::this_thread::sleep_for(std::chrono::seconds(3));
    ::kill(daemon.pid(), SIGTERM);
    const auto stopped_at = std::chrono::steady_clock::now();
    const int status = daemon.wait();
    CHECK(std::chrono::steady_clock::now() - stopped_at < std::chrono::seconds(10));
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 1));  // records are still failed
  }
  const std::string log1 = read_bytes(dir.path() / "run1.log").value_or("");
  CAPTURE(log1);
  CHECK(log1.find(R"("error":"upload_failed")") != std::string::npos);
  CHECK(log1.find(R"("record":"shardId-000000000000/)") != std::string::npos);
  CHECK(log1.find(R"("failed":0)") == std::string::npos);

  nginx.set_flaky_down(false);
  const std::size_t requests_before = nginx.requests().size();
  RunResult run2 = filebuilder::test::run(daemon_args(kinesalite, nginx, "held", store), {},
                                          std::chrono::seconds(120));
  CAPTURE(run2.err);
  CHECK(run2.exit_code == 0);
  std::map<std::string, long> summary = summary_of(run2.out);
  CHECK(summary["failed"] == 0);
  check_delivered(nginx, files, requests_before);
}

TEST_CASE("filebuilderd kinesis: kinesalite down for a while mid-run: retried, nothing lost") {
  SKIP_WITHOUT_KINESALITE();
  Setup setup("outage", 2);
  auto& [credentials, kinesalite, nginx, dir, client, stream, store] = setup;
  const Files first = make_files(nginx, "early", 4, 11);
  put_all(stream, first.records, 12);
  filebuilder::test::ChildProcess daemon(daemon_args(kinesalite, nginx, "outage", store, "4"),
                                         dir.path() / "run.log");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  kinesalite.stop();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  kinesalite.start();
  const Files later = make_files(nginx, "late", 4, 13);
  put_all(stream, later.records, 14);
  const int status = daemon.wait();
  const std::string log = read_bytes(dir.path() / "run.log").value_or("");
  CAPTURE(log);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  check_delivered(nginx, first);
  check_delivered(nginx, later);
}

#ifdef FILEBUILDER_TEST_HTTPLIB

namespace {

// The summary line among a ChildProcess's output (stdout and stderr in one file).
std::map<std::string, long> summary_in(const std::string& output) {
  const std::size_t at = output.find("{\"records\":");
  REQUIRE(at != std::string::npos);
  return summary_of(output.substr(at, output.find('\n', at) - at));
}

template <typename Done>
bool wait_for(Done&& done, std::chrono::seconds limit = std::chrono::seconds(60)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace

TEST_CASE("filebuilderd kinesis: SIGTERM while uploads are slow, exit 0 in seconds, no PUT twice") {
  SKIP_WITHOUT_KINESALITE();
  Setup setup("slow", 2);
  auto& [credentials, kinesalite, nginx, dir, client, stream, store] = setup;
  filebuilder::test::PutRecorder target(std::chrono::milliseconds(1500));
  const Files early = make_files(target, "early", 8, 21);
  put_all(stream, early.records, 22);
  std::vector<std::string> args = setup.args("");
  args.insert(args.end(), {"--allow-host", "127.0.0.1:" + std::to_string(target.port())});

  const Files late = make_files(target, "late", 6, 23);
  {
    filebuilder::test::ChildProcess daemon(args, dir.path() / "run1.log");
    REQUIRE(wait_for([&] { return target.started() > 0; }));
    // Records that arrive while the uploads are in flight: left for the next run.
    put_all(stream, late.records, 24);
    ::kill(daemon.pid(), SIGTERM);
    const auto stopped_at = std::chrono::steady_clock::now();
    const int status = daemon.wait();
    CHECK(std::chrono::steady_clock::now() - stopped_at < std::chrono::seconds(10));
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  const std::string log1 = read_bytes(dir.path() / "run1.log").value_or("");
  CAPTURE(log1);
  const std::map<std::string, long> summary1 = summary_in(log1);
  CHECK(summary1.at("failed") == 0);
  // Every upload that had started when the signal came finished: none cut off.
  CHECK(summary1.at("uploaded") == target.started());
  CHECK(summary1.at("uploaded") < 14);  // stopped before the end: the rest is left

  args.insert(args.end(), {"--idle-exit", "2"});
  RunResult run2 = filebuilder::test::run(args, {}, std::chrono::seconds(120));
  CAPTURE(run2.err);
  CHECK(run2.exit_code == 0);
  const std::map<std::string, long> summary2 = summary_of(run2.out);
  // The second run reads exactly what the first did not.
  CHECK(summary1.at("records") + summary2.at("records") ==
        static_cast<long>(early.records.size() + late.records.size()));
  CHECK(summary1.at("uploaded") + summary2.at("uploaded") == 14);
  for (const Files* files : {&early, &late}) {
    for (const auto& file : files->bytes) {
      const std::string& path = file.first;
      CAPTURE(path);
      CHECK(target.body(path) == std::optional<std::string>(file.second));
      CHECK(target.puts(path) == 1);
    }
  }
}

TEST_CASE("filebuilderd kinesis --metrics: millisBehindLatest of every shard, and the counts") {
  SKIP_WITHOUT_KINESALITE();
  Setup setup("lag", 2);
  auto& [credentials, kinesalite, nginx, dir, client, stream, store] = setup;
  const Files files = make_files(nginx, "lag", 5, 31);
  put_all(stream, files.records, 32);
  const int port = filebuilder::test::free_port();
  std::vector<std::string> args = setup.args("");
  args.insert(args.end(), {"--metrics", "127.0.0.1:" + std::to_string(port)});
  filebuilder::test::ChildProcess daemon(args, dir.path() / "run.log");
  std::string page;
  const bool ready = wait_for([&] {
    page = filebuilder::test::http_get(port, "/metrics").second;
    // (Counters are read one by one: wait until each has caught up.)
    return page.find("filebuilder_files_uploaded_total 5\n") != std::string::npos &&
           page.find("filebuilder_records_total{outcome=\"uploaded\"} 5\n") != std::string::npos &&
           page.find(R"(filebuilder_millis_behind_latest{shard="shardId-000000000001"} )") !=
               std::string::npos;
  });
  CAPTURE(page);
  CHECK(ready);
  CHECK(page.find(R"(filebuilder_millis_behind_latest{shard="shardId-000000000000"} )") !=
        std::string::npos);
  CHECK(page.find("filebuilder_records_total{outcome=\"uploaded\"} 5\n") != std::string::npos);
  CHECK(filebuilder::test::http_get(port, "/healthz").first == 200);
  ::kill(daemon.pid(), SIGTERM);
  const int status = daemon.wait();
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  check_delivered(nginx, files);
}

#endif  // FILEBUILDER_TEST_HTTPLIB

TEST_CASE("filebuilderd kinesis: usage and configuration errors exit 2 with one clear line") {
  Nginx nginx;
  // No credentials anywhere.
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
  ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  RunResult no_credentials =
      filebuilder::test::run({daemon_path, "kinesis", "--stream", "s", "--region", "us-east-1",
                              "--endpoint-url", "http://127.0.0.1:9"});
  ::unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  ::unsetenv("AWS_EC2_METADATA_DISABLED");
  CHECK(no_credentials.exit_code == 2);
  CHECK(no_credentials.err.find("no AWS credentials") != std::string::npos);
  RunResult no_stream = filebuilder::test::run({daemon_path, "kinesis", "--region", "us-east-1"});
  CHECK(no_stream.exit_code == 2);
  CHECK(no_stream.err.find("--stream") != std::string::npos);
  RunResult bad_start = filebuilder::test::run(
      {daemon_path, "kinesis", "--stream", "s", "--region", "us-east-1", "--start", "middle"});
  CHECK(bad_start.exit_code == 2);
}

#endif  // FILEBUILDER_DAEMON_PATH
