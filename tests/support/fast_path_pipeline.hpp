// A whole pipeline (EventHandler over a Reassembler, a MemoryStore and a
// FakeUploader) that writes down everything it produces, so that one with
// ReassemblerOptions::fast_path on and one with it off can be compared: the
// document kind, the reply, the bare-chunk summary, every log line (without
// its timestamp), every upload and the store. Used by the fast-path unit tests
// (tests/source/fast_path_tests.cpp) and the fast_path fuzzer.
#pragma once

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/log.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/store/memory.hpp"
#include "support/fake_uploader.hpp"
#include "support/log_capture.hpp"

namespace filebuilder::test {

/// The endpoint hosts the pipeline allows (any other is refused).
inline constexpr const char* fast_path_hosts = "bucket.example.com,other.example.com";

struct FastPathPipeline {
  using TestReassembler = Reassembler<MemoryStore, FakeUploader>;

  explicit FastPathPipeline(bool fast_path) : reassembler(store, uploader, options(fast_path)) {}

  static ReassemblerOptions options(bool fast_path) {
    ReassemblerOptions o;
    o.fast_path = fast_path;
    o.limits.max_part_bytes = 4096;
    o.limits.max_partitions = 1000;
    if (o.policy.allow_hosts(fast_path_hosts) != ErrorCode::ok) {
      std::fprintf(stderr, "FastPathPipeline: allow_hosts refused %s\n", fast_path_hosts);
      std::abort();
    }
    return o;
  }

  MemoryStore store;
  FakeUploader uploader;
  TestReassembler reassembler;
  LogCapture log;
  Logger logger{LogLevel::debug, log.file};
  source::EventHandler<TestReassembler> handler{reassembler, logger};

  /// Handles one more document (copied into a buffer of exactly its size plus
  /// simdjson's padding); returns everything this pipeline has produced so far.
  std::string run(const std::string& document, source::InputFormat format) {
    std::string padded = document;
    padded.resize(document.size() + simdjson::SIMDJSON_PADDING, '\0');
    std::string reply;
    const source::DocumentKind kind =
        handler.handle(simdjson::padded_string_view(padded.data(), document.size(), padded.size()),
                       format, source::LineId{"", 1}, reply);
    handler.flush_chunks();
    std::string out = "kind " + std::to_string(static_cast<int>(kind)) + "\nreply " + reply +
                      "\nsummary " + handler.chunk_summary().json() + "\nlog\n" +
                      log.without_timestamps() + "uploads\n";
    for (const FakeUploader::Call& call : uploader.calls) out += call.url + " " + call.body + "\n";
    out += "store " + std::to_string(store.open_files()) + " files, " +
           std::to_string(store.bytes_held()) + " bytes, " + std::to_string(store.done_marks()) +
           " done\n";
    return out;
  }
};

/// Runs the documents in order through one fast-path and one strict pipeline,
/// both fresh (so that what a document leaves behind, the endpoint hint, is
/// used by the next). Returns "" when both have produced the same bytes after
/// every document, else the first document after which they differ and what
/// each has produced.
inline std::string fast_path_difference(const std::vector<std::string>& documents,
                                        source::InputFormat format = source::InputFormat::detect) {
  FastPathPipeline fast(true);
  FastPathPipeline strict(false);
  for (const std::string& document : documents) {
    const std::string expected = strict.run(document, format);
    const std::string got = fast.run(document, format);
    if (got != expected)
      return "document:\n" + document + "\n\nfast path:\n" + got + "\nsimdjson only:\n" + expected;
  }
  return {};
}

}  // namespace filebuilder::test
