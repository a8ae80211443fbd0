// A StateStore that counts what it is handed and keeps nothing, and an
// Uploader that accepts everything: the pipeline without a backend, for the
// benchmarks and the allocation test. No file ever completes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "filebuilder/concepts.hpp"

namespace filebuilder::test {

class DiscardStore {
 public:
  PutOutcome put_part(const PartInfo& part, std::string_view bytes) {
    ++parts_;
    bytes_ += bytes.size();
    checksum_ += part.partition + (bytes.empty() ? 0 : static_cast<unsigned char>(bytes.back()));
    return {ErrorCode::ok, PutStatus::stored, false};
  }
  ClaimStatus claim(std::string_view) { return ClaimStatus::incomplete; }
  Result<std::unique_ptr<BodyReader>> open_body(std::string_view) {
    return ErrorCode::store_unavailable;
  }
  ErrorCode finish(std::string_view) { return ErrorCode::ok; }
  ErrorCode release(std::string_view, Clock::time_point) { return ErrorCode::ok; }
  std::vector<PendingFile> claim_pending(std::size_t, Clock::time_point) { return {}; }
  std::size_t expire(Clock::time_point) { return 0; }

  [[nodiscard]] std::uint64_t parts() const noexcept { return parts_; }
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::uint64_t checksum() const noexcept { return checksum_; }

 private:
  std::uint64_t parts_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t checksum_ = 0;
};

struct AcceptingUploader {
  void upload(std::span<UploadJob> jobs) {
    for (UploadJob& job : jobs) job.status = UploadStatus::success;
  }
};

}  // namespace filebuilder::test
