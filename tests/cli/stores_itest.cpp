// `filebuilder replay --store file:DIR|redis://...`: state that outlives one
// process, and is shared by several at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "filebuilder/split.hpp"
#include "support/nginx.hpp"
#include "support/redis.hpp"
#include "support/run.hpp"
#include "support/temp_dir.hpp"

#ifdef FILEBUILDER_CLI_PATH

namespace {

using filebuilder::test::Nginx;
using filebuilder::test::run;
using filebuilder::test::RunResult;
using filebuilder::test::TempDir;

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
