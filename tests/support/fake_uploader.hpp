// A test Uploader that records every body it is given and answers with a
// scripted status. It stands in for HTTP only in unit tests of the core; the
// integration tests use CurlUploader against a real nginx.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "filebuilder/concepts.hpp"

namespace filebuilder::test {

class FakeUploader {
 public:
  struct Call {
    std::string url;
    std::string body;
  };

  /// Status for the next calls to `url` (consumed in order); default success.
  void script(const std::string& url, std::vector<UploadStatus> statuses) {
    for (UploadStatus s : statuses) scripted_[url].push_back(s);
  }

  void upload(std::span<UploadJob> jobs) {
    ++batches;
    for (UploadJob& job : jobs) {
      Call call{std::string(job.url), {}};
      call.body.resize(job.body->size());
      // Read in odd-sized pieces to exercise positional reads across parts.
      std::uint64_t offset = 0;
      while (offset < call.body.size()) {
        const std::size_t want = std::min<std::size_t>(7, call.body.size() - offset);
        Result<std::size_t> read =
            job.body->read_at(offset, std::span<char>(call.body.data() + offset, want));
        if (!read.ok() || read.value_unsafe() == 0) break;
        offset += read.value_unsafe();
      }
      calls.push_back(std::move(call));
      job.attempts = 1;
      job.elapsed = elapsed;
      UploadStatus status = UploadStatus::success;
      auto it = scripted_.find(std::string(job.url));
      if (it != scripted_.end() && !it->second.empty()) {
        status = it->second.front();
        it->second.pop_front();
      }
      job.status = status;
      job.http_status = status == UploadStatus::success     ? 200
                        : status == UploadStatus::retryable ? 503
                                                            : 403;
      job.error = status == UploadStatus::success     ? ErrorCode::ok
                  : status == UploadStatus::retryable ? ErrorCode::upload_failed
                                                      : ErrorCode::upload_refused;
      job.message =
          status == UploadStatus::success ? "" : "HTTP " + std::to_string(job.http_status);
    }
  }

  std::vector<Call> calls;
  unsigned batches = 0;
  std::chrono::nanoseconds elapsed{0};  // what every job reports as its latency

 private:
  std::map<std::string, std::deque<UploadStatus>> scripted_;
};

static_assert(Uploader<FakeUploader>);

}  // namespace filebuilder::test
