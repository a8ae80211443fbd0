// Memory of FileStore on a big file, measured by hand (not in CI: it writes
// SIZE MiB to disk): writes one file of SIZE MiB through FileStore in 1 MiB
// parts, reads it back through open_body into SHA-256, checks the digest, and
// prints the peak RSS. The RSS must not grow with SIZE: bodies stream from
// disk with pread. benchmarks/filestore-1g builds and runs this.
//
//   filestore_1g DIR [SIZE_MIB=1024] [--no-fsync]
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/digest.hpp"
#include "filebuilder/store/file.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

long peak_rss_kib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // KiB on Linux
}

// Different bytes in every part (xorshift), cheap to make.
void fill(std::vector<char>& part, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (std::size_t i = 0; i + 8 <= part.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(part.data() + i, &x, 8);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace filebuilder;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR [SIZE_MIB=1024] [--no-fsync]\n", argv[0]);
    return 2;
  }
  FileStoreOptions options;
  options.directory = argv[1];
  std::uint64_t parts = 1024;
  for (int i = 2; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--no-fsync")
      options.fsync = false;
    else
      parts = std::stoull(argv[i]);
  }
  FileStore store(options);
  if (const ErrorCode error = store.open(); error != ErrorCode::ok) {
    std::fprintf(stderr, "open %s: %s\n", argv[1], error_code_name(error).data());
    return 1;
  }
  const std::string endpoint = "https://bucket.example.com/bench/big.bin?X-Amz-Signature=x";
  std::vector<char> part(std::size_t{1} << 20);
  Sha256 written;
  const auto write_start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < parts; ++i) {
    fill(part, i);
    const std::string_view bytes(part.data(), part.size());
    written.update(bytes);
    const PutOutcome put = store.put_part(PartInfo{endpoint, i, parts, UINT64_MAX}, bytes);
    if (put.error != ErrorCode::ok || put.complete != (i + 1 == parts)) {
      std::fprintf(stderr, "put_part %llu: %s\n", static_cast<unsigned long long>(i),
                   error_code_name(put.error).data());
      return 1;
    }
  }
  const double write_seconds = seconds_since(write_start);
  const long rss_after_write = peak_rss_kib();
  if (store.claim(endpoint) != ClaimStatus::claimed) {
    std::fprintf(stderr, "claim failed\n");
    return 1;
  }
  const auto read_start = std::chrono::steady_clock::now();
  Result<std::unique_ptr<BodyReader>> body = store.open_body(endpoint);
  if (!body.ok()) {
    std::fprintf(stderr, "open_body: %s\n", error_code_name(body.error()).data());
    return 1;
  }
  const std::string read_digest = sha256_hex(*body.value_unsafe());  // 64 KiB reads
  const double read_seconds = seconds_since(read_start);
  body.value_unsafe().reset();
  const std::string written_digest = written.hex();
  const bool same = read_digest == written_digest;
  if (store.finish(endpoint) != ErrorCode::ok) std::fprintf(stderr, "finish failed\n");

  const double mib = static_cast<double>(parts);
  std::printf("file: %llu MiB in 1 MiB parts, fsync %s\n", static_cast<unsigned long long>(parts),
              options.fsync ? "on" : "off");
  std::printf("write: %.2f s (%.0f MiB/s), peak RSS after writing %ld KiB\n", write_seconds,
              mib / write_seconds, rss_after_write);
  std::printf("read:  %.2f s (%.0f MiB/s) into SHA-256 %s\n", read_seconds, mib / read_seconds,
              same ? "(matches)" : "(MISMATCH)");
  std::printf("peak RSS: %ld KiB\n", peak_rss_kib());
  return same ? 0 : 1;
}
