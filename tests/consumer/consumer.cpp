// Built against an installed filebuilder with find_package: proves that the
// exported targets carry the include paths and dependencies a user needs.
#include <filebuilder/reassembler.hpp>
#include <filebuilder/split.hpp>
#include <filebuilder/store/memory.hpp>
#include <filebuilder/upload/curl.hpp>

#include <cstdio>
#include <string>

namespace {

// Collects bodies instead of sending them: no network in this test.
struct CollectingUploader {
  std::string body;
  void upload(std::span<filebuilder::UploadJob> jobs) {
    for (filebuilder::UploadJob& job : jobs) {
      body.resize(job.body->size());
      (void)job.body->read_at(0, std::span<char>(body.data(), body.size()));
      job.status = filebuilder::UploadStatus::success;
    }
  }
};

}  // namespace

int main() {
  static_assert(filebuilder::Uploader<filebuilder::CurlUploader>);
  const std::string file = "consumed through find_package(filebuilder)";
  filebuilder::MemoryStore store;
  CollectingUploader uploader;
  filebuilder::Reassembler reassembler(store, uploader);
  filebuilder::Splitter splitter({.chunk_size = 5});
  splitter.add_file("https://bucket.example.com/f.txt", file, [&](std::string_view line) {
    reassembler.add(line.substr(0, line.size() - 1));
  });
  for (const auto& outcome : reassembler.flush())
    if (!outcome.ok()) return 1;
  if (uploader.body != file) return 1;
  std::puts("consumer: ok");
  return 0;
}
