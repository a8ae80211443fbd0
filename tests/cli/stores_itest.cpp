// `filebuilder replay --store file:DIR|redis://...`: state that outlives one
// process, and is shared by several at once.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "filebuilder/split.hpp"
#include "support/nginx.hpp"
#include "support/process.hpp"
#include "support/redis.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#ifdef FILEBUILDER_CLI_PATH

namespace {

using filebuilder::test::Nginx;
using filebuilder::test::run;
using filebuilder::test::RunResult;
using filebuilder::test::TempDir;
namespace fs = std::filesystem;

struct Stream {
  std::map<std::string, std::string> files;  // path under /files/ -> bytes
  std::vector<std::string> events;           // one Lambda event (one record) per entry
};

// `count` files split into one-record events, shuffled, one in five duplicated.
Stream make_stream(const Nginx& nginx, const std::string& dir, int count, unsigned seed) {
  std::mt19937 random(seed);
  Stream stream;
  filebuilder::Splitter splitter(
      {.chunk_size = 1000, .format = filebuilder::SplitFormat::lambda, .records_per_event = 1});
  for (int i = 0; i < count; ++i) {
    std::string path = "/files/" + dir + "/f";
    path += std::to_string(i);
    std::string bytes(random() % 5000, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    splitter.add_file(nginx.url(path), bytes,
                      [&](std::string_view line) { stream.events.emplace_back(line); });
    stream.files[path] = std::move(bytes);
  }
  splitter.finish([&](std::string_view line) { stream.events.emplace_back(line); });
  const std::size_t originals = stream.events.size();
  for (std::size_t i = 0; i < originals / 5; ++i)
    stream.events.push_back(stream.events[random() % originals]);
  std::shuffle(stream.events.begin(), stream.events.end(), random);
  return stream;
}

std::string join(const std::vector<std::string>& lines, std::size_t start, std::size_t step) {
  std::string out;
  for (std::size_t i = start; i < lines.size(); i += step) out += lines[i];
  return out;
}

void check_each_uploaded_once(const Nginx& nginx, const Stream& stream) {
  std::map<std::string, int> puts;
  for (const auto& entry : nginx.requests())
    if (entry.method == "PUT" && entry.status >= 200 && entry.status < 300) ++puts[entry.uri];
  for (const auto& file : stream.files) {
    const std::string& path = file.first;
    CAPTURE(path);
    CHECK(puts[path] == 1);
    std::ifstream in(nginx.stored_file(path), std::ios::binary);
    const std::string stored((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    CHECK(stored == file.second);
  }
}

std::vector<std::string> replay_args(const Nginx& nginx, const std::string& store) {
  return {FILEBUILDER_CLI_PATH,
          "replay",
          "--store",
          store,
          "--allow-host",
          "127.0.0.1:" + std::to_string(nginx.port()),
          "--log-level",
          "warn"};
}

}  // namespace

TEST_CASE("cli stores: a file store keeps parts across processes") {
  Nginx nginx;
  TempDir dir("filebuilder-cli-store");
  const Stream stream = make_stream(nginx, "file-store", 20, 11);
  const std::string store = "file:" + (dir.path() / "state").string();
  // Three processes one after the other, each with a third of the stream.
  for (std::size_t part = 0; part < 3; ++part) {
    const RunResult r = run(replay_args(nginx, store), join(stream.events, part, 3));
    CAPTURE(r.err);
    CHECK(r.exit_code == 0);
  }
  check_each_uploaded_once(nginx, stream);
}

TEST_CASE("cli stores: replay processes killed -9 at random moments lose nothing, tear nothing") {
  Nginx nginx;
  TempDir dir("filebuilder-cli-kill");
  const Stream stream = make_stream(nginx, "killed", 50, 21);
  const fs::path events = dir.path() / "events.ndjson";
  std::ofstream(events, std::ios::binary) << join(stream.events, 0, 1);
  std::vector<std::string> argv = replay_args(nginx, "file:" + (dir.path() / "state").string());
  argv.back() = "info";  // --log-level: "file uploaded" lines are the acknowledgements
  argv.insert(argv.end(), {"--claim-lease", "1", events.string()});

  // Each run replays the stream from its start (as a stream redelivers from the
  // last checkpoint); all but the last are killed with SIGKILL.
  std::mt19937 random(5);
  std::vector<std::set<std::string>> acked;  // per run: files logged as uploaded
  std::vector<std::set<std::string>> put;    // per run: files nginx stored
  std::size_t seen_requests = 0;
  std::size_t acknowledged_so_far = 0;
  int kills = 0;
  long window_us = 30'000;  // kill moments: 1 ms + up to this
  // Kill runs until 20 were killed in flight (a run may finish first), then one last run.
  for (int run_index = 0;; ++run_index) {
    const bool last = kills == 20 || run_index == 200;
    if (last) std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // leases of the dead
    const fs::path output = dir.path() / ("run" + std::to_string(run_index) + ".log");
    {
      filebuilder::test::ChildProcess child(argv, output);
      if (!last) {
        // A moment within the window once some run has acknowledged a file;
        // until then a little later each run, so that a slow (loaded) machine
        // gets there too. A run that finishes first shrinks the window to
        // 3/4 of that moment, so that a fast machine gets its kills too.
        const long late_us =
            acknowledged_so_far == 0 ? std::min(run_index * 25'000L, 3'000'000L) : 0;
        const long delay_us = 1000 + static_cast<long>(random() % window_us) + late_us;
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        if (!child.poll()) {
          ::kill(child.pid(), SIGKILL);
          ++kills;
        } else if (late_us == 0) {
          window_us = std::max(1000L, delay_us * 3 / 4);
        }
      }
      const int status = child.wait();
      if (last) {
        std::ifstream in(output);
        const std::string log((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
        CAPTURE(log);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
      }
    }
    std::set<std::string> acked_now;
    std::ifstream log(output);
    for (std::string line; std::getline(log, line);) {
      if (line.find(R"("msg":"file uploaded")") == std::string::npos) continue;
      const std::size_t at = line.find("/files/killed/");
      REQUIRE(at != std::string::npos);
      acked_now.insert(line.substr(at, line.find('"', at) - at));
    }
    std::set<std::string> put_now;
    const auto requests = nginx.requests();
    for (std::size_t i = seen_requests; i < requests.size(); ++i)
      if (requests[i].method == "PUT" && requests[i].status / 100 == 2)
        put_now.insert(requests[i].uri.substr(0, requests[i].uri.find('?')));
    seen_requests = requests.size();
    acknowledged_so_far += acked_now.size();
    acked.push_back(std::move(acked_now));
    put.push_back(std::move(put_now));
    if (last) break;
  }
  MESSAGE(kills << " runs killed in flight, of " << acked.size() - 1);
  CHECK(kills == 20);
  std::size_t acknowledged_before_last = 0;
  for (std::size_t r = 0; r + 1 < acked.size(); ++r) acknowledged_before_last += acked[r].size();
  CHECK(acknowledged_before_last > 0);  // the check below has something to check
  // A file acknowledged (uploaded and recorded) by one run is never PUT by a later one.
  for (std::size_t r = 0; r < acked.size(); ++r)
    for (std::size_t later = r + 1; later < put.size(); ++later)
      for (const std::string& file : acked[r]) {
        CAPTURE(file);
        CHECK(put[later].count(file) == 0);
      }
  // Nothing lost, nothing torn: every file arrived whole.
  for (const auto& file : stream.files) {
    const std::string& path = file.first;
    CAPTURE(path);
    std::ifstream in(nginx.stored_file(path), std::ios::binary);
    const std::string stored((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    CHECK(stored == file.second);
  }
}

TEST_CASE("cli stores: two and four processes sharing one Redis upload every file once") {
  Nginx nginx;
  filebuilder::test::RedisServer redis;
  for (std::size_t consumers : {std::size_t{2}, std::size_t{4}}) {
    CAPTURE(consumers);
    const Stream stream = make_stream(nginx, "redis-" + std::to_string(consumers), 25,
                                      static_cast<unsigned>(consumers));
    std::vector<RunResult> results(consumers);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < consumers; ++i)
      threads.emplace_back([&, i] {
        results[i] = run(replay_args(nginx, redis.url()), join(stream.events, i, consumers));
      });
    for (std::thread& thread : threads) thread.join();
    for (const RunResult& r : results) {
      CAPTURE(r.err);
      CHECK(r.exit_code == 0);
    }
    check_each_uploaded_once(nginx, stream);
  }
}

TEST_CASE(
    "cli stores: Redis restarted mid-run: records it could not store fail, a replay completes") {
  Nginx nginx;
  filebuilder::test::RedisServerOptions options;
  options.append_only = true;
  filebuilder::test::RedisServer redis(options);
  const Stream stream = make_stream(nginx, "redis-restart", 12, 31);
  filebuilder::test::InteractiveProcess replay(replay_args(nginx, redis.url()));
  const std::size_t third = stream.events.size() / 3;
  std::vector<std::string> failed_events;
  const auto send = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      std::string event = stream.events[i];
      event.pop_back();  // the newline
      const std::optional<std::string> reply = replay.exchange(event);
      REQUIRE(reply.has_value());
      if (*reply != R"({"batchItemFailures":[]})") failed_events.push_back(stream.events[i]);
    }
  };
  send(0, third);
  CHECK(failed_events.empty());
  redis.stop();
  send(third, 2 * third);  // every record of these fails: the store is unreachable
  CHECK(failed_events.size() == third);
  redis.start();
  send(2 * third, stream.events.size());
  const RunResult first = replay.finish();
  CHECK(first.exit_code == 1);  // records failed
  CHECK(first.err.find(R"("error":"store_unavailable")") != std::string::npos);
  // The stream redelivers the failed records: every file completes, each once.
  std::string redelivered;
  for (const std::string& event : failed_events) redelivered += event;
  const RunResult second = run(replay_args(nginx, redis.url()), redelivered);
  CAPTURE(second.err);
  CHECK(second.exit_code == 0);
  check_each_uploaded_once(nginx, stream);
}

TEST_CASE("cli stores: an unusable store URL is a usage error") {
  for (const char* store : {"s3://bucket", "file:", "redis://h:notaport"}) {
    CAPTURE(store);
    const RunResult r = run({FILEBUILDER_CLI_PATH, "replay", "--store", store}, "");
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}

#endif  // FILEBUILDER_CLI_PATH
