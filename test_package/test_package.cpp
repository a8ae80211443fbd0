// The package's test program (Conan's test_package, and CTest's packaging
// tests against installed prefixes): rebuilds a file in memory through the
// public API, no network. Exits non-zero unless the uploaded bytes are the
// file's. The optional components are checked when their targets were linked.
#include <filebuilder/concepts.hpp>
#include <filebuilder/reassembler.hpp>
#include <filebuilder/split.hpp>
#include <filebuilder/store/memory.hpp>
#include <filebuilder/version.hpp>
#if defined(FILEBUILDER_HAS_CURL)
#include <filebuilder/upload/curl.hpp>
#endif
#if defined(FILEBUILDER_HAS_REDIS)
#include <filebuilder/store/redis.hpp>
#endif
#if defined(FILEBUILDER_HAS_BEAST)
#include <filebuilder/upload/beast.hpp>
#endif

#include <algorithm>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Collects bodies instead of sending them.
struct CollectingUploader {
  std::vector<std::string> bodies;
  void upload(std::span<filebuilder::UploadJob> jobs) {
    for (filebuilder::UploadJob& job : jobs) {
      std::string body(job.body->size(), '\0');
      const auto read = job.body->read_at(0, std::span<char>(body.data(), body.size()));
      job.status =
          read.ok() ? filebuilder::UploadStatus::success : filebuilder::UploadStatus::retryable;
      bodies.push_back(std::move(body));
    }
  }
};
static_assert(filebuilder::Uploader<CollectingUploader>);
#if defined(FILEBUILDER_HAS_CURL)
static_assert(filebuilder::Uploader<filebuilder::CurlUploader>);
#endif
#if defined(FILEBUILDER_HAS_REDIS)
static_assert(filebuilder::StateStore<filebuilder::RedisStore>);
#endif
#if defined(FILEBUILDER_HAS_BEAST)
static_assert(filebuilder::Uploader<filebuilder::BeastUploader>);
#endif

}  // namespace

int main() {
  std::string file;
  for (int i = 0; i < 1000; ++i) file += static_cast<char>(i * 7 % 256);

  // Chunk records as a producer writes them, one per line; fed out of order
  // and twice, as a stream may deliver them.
  std::vector<std::string> records;
  filebuilder::Splitter splitter({.chunk_size = 64});
  splitter.add_file("https://bucket.example.com/f.bin", file, [&](std::string_view line) {
    records.emplace_back(line.substr(0, line.size() - 1));
  });
  std::reverse(records.begin(), records.end());
  const std::vector<std::string> again = records;
  records.insert(records.end(), again.begin(), again.end());

  filebuilder::MemoryStore store;
  CollectingUploader uploader;
  filebuilder::Reassembler reassembler(store, uploader);
  for (const std::string& record : records) reassembler.add(record);
  for (const auto& outcome : reassembler.flush()) {
    if (outcome.outcome == filebuilder::Outcome::failed ||
        outcome.outcome == filebuilder::Outcome::rejected) {
      std::fprintf(stderr, "test_package: a record was not taken: %s\n", outcome.message.c_str());
      return 1;
    }
  }
  if (uploader.bodies.size() != 1 || uploader.bodies[0] != file) {
    std::fprintf(stderr, "test_package: %zu uploads, not the file's bytes\n",
                 uploader.bodies.size());
    return 1;
  }
  std::printf("test_package: filebuilder %s rebuilt %zu bytes from %zu records\n",
              FILEBUILDER_VERSION_STRING, file.size(), records.size());
  return 0;
}
