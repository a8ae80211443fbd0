// No heap allocation per record in the steady state: the record pipeline
// (EventHandler -> Reassembler -> chunk parsing -> base64 -> the store) is run
// on events until its buffers have grown, then every allocation of the
// process is counted while more events go through. Its own executable: it
// replaces the global operator new (support/allocation_counter.hpp).
#include <doctest/doctest.h>

#include <simdjson.h>

#include <string>
#include <vector>

#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/split.hpp"
#include "support/allocation_counter.hpp"
#include "support/discard_store.hpp"

using namespace filebuilder;

namespace {

using Pipeline = Reassembler<test::DiscardStore, test::AcceptingUploader>;

// Events of 50 records each, as `filebuilder split` writes them.
std::vector<std::string> events(SplitFormat format, std::size_t aggregate) {
  SplitOptions options;
  options.format = format;
  options.chunk_size = 1400;
  options.records_per_event = 50;
  options.aggregate = aggregate;
  Splitter splitter(options);
  std::vector<std::string> out;
  const auto sink = [&](std::string_view line) {
    out.emplace_back(line.substr(0, line.size() - 1));
  };
  std::string bytes(1400 * 50 * 4, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131);
  splitter.add_file("https://bucket.example.com/a.bin?X-Amz-Signature=0123456789abcdef", bytes,
                    sink);
  splitter.add_file("https://bucket.example.com/b.bin?X-Amz-Signature=fedcba9876543210", bytes,
                    sink);
  splitter.finish(sink);
  return out;
}

// Allocations while `rounds` passes over the events go through, after two
// passes to warm up.
std::uint64_t allocations_in_steady_state(const std::vector<std::string>& documents, bool fast_path,
                                          std::uint64_t* records) {
  test::DiscardStore store;
  test::AcceptingUploader uploader;
  ReassemblerOptions options;
  options.fast_path = fast_path;
  REQUIRE(options.policy.allow_hosts("bucket.example.com") == ErrorCode::ok);
  Pipeline reassembler(store, uploader, options);
  Logger logger(LogLevel::info);
  source::EventHandler<Pipeline> handler(reassembler, logger);
  std::vector<simdjson::padded_string> padded;
  for (const std::string& document : documents) padded.emplace_back(document);
  std::string reply;
  const source::LineId line{};
  const auto pass = [&] {
    for (const simdjson::padded_string& document : padded) {
      reply.clear();
      const source::DocumentKind kind =
          handler.handle(document, source::InputFormat::detect, line, reply);
      REQUIRE(kind != source::DocumentKind::bad_event);
      REQUIRE(!handler.any_problem());
    }
  };
  pass();
  pass();
  const std::uint64_t parts_before = store.parts();
  const std::uint64_t before = test::allocations();
  for (int round = 0; round < 3; ++round) pass();
  const std::uint64_t allocations = test::allocations() - before;
  *records = store.parts() - parts_before;
  return allocations;
}

}  // namespace

TEST_CASE("no heap allocation per record in the steady state") {
  struct Case {
    const char* name;
    SplitFormat format;
    std::size_t aggregate;
  };
  for (const Case c :
       {Case{"lambda", SplitFormat::lambda, 0}, Case{"firehose", SplitFormat::firehose, 0},
        Case{"lambda, KPL-aggregated", SplitFormat::lambda, 2}}) {
    const std::vector<std::string> documents = events(c.format, c.aggregate);
    REQUIRE(documents.size() >= 2);
    for (const bool fast_path : {true, false}) {
      INFO(c.name << (fast_path ? ", fast path" : ", simdjson path"));
      std::uint64_t records = 0;
      const std::uint64_t allocations = allocations_in_steady_state(documents, fast_path, &records);
      CHECK(records == 3 * 2 * 200);
      CHECK(allocations == 0);
    }
  }
}

TEST_CASE("the allocation counter counts") {
  const std::uint64_t before = test::allocations();
  void* p = ::operator new(100);  // a call, which the compiler may not drop
  ::operator delete(p);
  std::vector<int> numbers(1000);
  CHECK(test::allocations() - before == 2);
  CHECK(numbers.size() == 1000);
}
