// Shared pieces of the libFuzzer targets: a failure that names the target, an
// in-process uploader that accepts everything (reading every body to its
// end), and a whole EventHandler over a MemoryStore, fresh for every input so
// that a finding reproduces from its one input.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/concepts.hpp"
#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/store/memory.hpp"

namespace filebuilder::fuzz {

[[noreturn]] inline void fail(const char* target, const char* what) {
  std::fprintf(stderr, "%s fuzzer: %s\n", target, what);
  std::abort();
}

/// Accepts every upload after reading its whole body in odd-sized steps, and
/// checks that the body is as long as it says.
class AcceptAllUploader {
 public:
  void upload(std::span<UploadJob> jobs) {
    for (UploadJob& job : jobs) {
      char buffer[4099];
      std::uint64_t offset = 0;
      while (offset < job.body->size()) {
        Result<std::size_t> read = job.body->read_at(offset, buffer);
        if (!read.ok() || read.value_unsafe() == 0) fail("uploader", "a body ends early");
        offset += read.value_unsafe();
      }
      job.attempts = 1;
      job.status = UploadStatus::success;
      job.http_status = 200;
      job.error = ErrorCode::ok;
      ++uploads;
    }
  }
  std::size_t uploads = 0;
};

using FuzzReassembler = Reassembler<MemoryStore, AcceptAllUploader>;

/// Small limits, so that inputs of a few KiB reach every one of them.
inline MemoryStoreOptions small_store() {
  MemoryStoreOptions options;
  options.max_bytes = 64 * 1024;
  options.max_open_files = 16;
  options.max_done_marks = 16;
  return options;
}

inline ReassemblerOptions small_limits() {
  ReassemblerOptions options;
  options.limits.max_partitions = 64;
  options.limits.max_part_bytes = 4096;
  options.limits.max_file_bytes = 16 * 1024;
  return options;
}

/// Logs go to /dev/null at debug level: the log code (escaping, redaction)
/// runs on every line, nothing is written anywhere.
inline Logger& null_logger() {
  static std::FILE* sink = std::fopen("/dev/null", "w");
  static Logger logger(LogLevel::debug, sink);
  return logger;
}

/// One EventHandler over a fresh store.
struct Pipeline {
  MemoryStore store{small_store()};
  AcceptAllUploader uploader;
  FuzzReassembler reassembler{store, uploader, small_limits()};
  source::EventHandler<FuzzReassembler> handler{reassembler, null_logger()};

  /// Handles DOCUMENT (copied into a padded buffer of exactly its size plus
  /// simdjson's padding) as FORMAT; returns the reply.
  std::string handle(std::string_view document, source::InputFormat format,
                     source::DocumentKind& kind) {
    simdjson::padded_string padded(document);
    std::string reply;
    kind = handler.handle(padded, format, {"", 1}, reply);
    handler.flush_chunks();
    return reply;
  }
};

/// The parts of BODY between 0xFF bytes (a byte that valid JSON never holds,
/// and a KPL aggregate rarely), a last empty one included.
inline std::vector<std::string> split_records(std::string_view body) {
  std::vector<std::string> parts;
  while (true) {
    const std::size_t separator = body.find('\xff');
    parts.emplace_back(body.substr(0, separator));
    if (separator == std::string_view::npos) break;
    body.remove_prefix(separator + 1);
  }
  return parts;
}

/// Parses a reply: must be one valid JSON object.
inline simdjson::dom::object parse_reply(simdjson::dom::parser& parser, const std::string& reply,
                                         const char* target) {
  simdjson::dom::object object;
  if (parser.parse(reply).get_object().get(object) != simdjson::SUCCESS)
    fail(target, "the reply is not a JSON object");
  return object;
}

}  // namespace filebuilder::fuzz
