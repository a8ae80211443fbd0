// The record pipeline, from a Lambda Kinesis event to the bytes a store is
// handed: event JSON -> base64 `data` -> chunk JSON -> base64 `content` -> a
// store that discards them. Three events, as a producer using `filebuilder
// split` would send them:
//   0  small: 100 records, chunks of 1,400 bytes, a 400-character presigned
//      URL (about 340 KB of event JSON); one arrival timestamp for all
//      records, as `filebuilder split` writes them
//   1  large: 4 records of about 1 MB each (the Kinesis record limit), 5.5 MB
//   2  the small one with a distinct arrival timestamp in each record, in
//      milliseconds as Lambda delivers them (1700000000.013, ...): what the
//      fast path's record-layout prediction costs when the records' metadata
//      differs
// Four ways, all timed in one run, all counting the event's size as
// bytes_per_second, so that their ratios are ratios of time:
//   floor        only the two base64 decodes, at offsets found in advance: no
//                JSON work at all (best kernel). Nothing can be faster.
//   filebuilder  source::EventHandler over a Reassembler, as the CLI and the
//                Lambda runtime run it (fast path on), replies included
//   strict       the same with ReassemblerOptions::fast_path off: simdjson
//                on-demand for both JSON layers (best base64 kernel)
//   baseline     the straightforward composition: simdjson on-demand for both
//                layers and a plain scalar base64 decoder
//   floor_two_pass  the floor in EventHandler's order: every record's data
//                decoded into one buffer (260 KB on the small event) before
//                the first content; what that order costs beside the floor,
//                whose data buffer stays in L1
//   floor_staged the floor in a staged order: each record's data decoded into
//                one small buffer (it stays in L1) and every content kept in
//                one growing buffer, as a handler that checks the whole
//                event before adding any record could do it; what that order
//                would cost beside the floor
// benchmarks/run prints the ratios to the floor.
#include <benchmark/benchmark.h>

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/reassembler.hpp"
#include "filebuilder/source/handler.hpp"
#include "filebuilder/split.hpp"
#include "page_buffer.hpp"
#include "support/allocation_counter.hpp"
#include "support/discard_store.hpp"

namespace {

namespace fb = filebuilder;
using fb::bench::page_aligned;
using fb::bench::PageBuffer;

using DiscardStore = fb::test::DiscardStore;
using NullUploader = fb::test::AcceptingUploader;

/// One benchmark input: the event, and where its base64 strings are.
struct Event {
  std::string json;
  std::size_t records = 0;
  std::string_view note;  // what sets it apart, for the label
  struct Record {
    std::size_t data_offset, data_size;        // in json
    std::size_t content_offset, content_size;  // in the decoded data
  };
  std::vector<Record> layout;
};

// A presigned S3 URL of 400 characters, as producers send them.
std::string presigned_url(std::size_t file) {
  std::string url = "https://example-bucket.s3.us-east-1.amazonaws.com/uploads/2026/12/01/file-" +
                    std::to_string(file) +
                    ".bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
                    "%2F20261201%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261201T000000Z"
                    "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=";
  while (url.size() < 400) url += "0123456789abcdef"[url.size() % 16];
  return url;
}

// Gives each record its own arrival timestamp, seconds.milliseconds as
// Lambda writes it, 0.1 s after the one before (1700000000.013, .113, ...).
void distinct_arrival_timestamps(std::string& json) {
  constexpr std::string_view key = R"("approximateArrivalTimestamp":)";
  std::string out;
  std::size_t record = 0, from = 0;
  for (std::size_t at = json.find(key); at != std::string::npos; at = json.find(key, from)) {
    at += key.size();
    out.append(json, from, at - from);
    out += std::to_string(1'700'000'000 + record / 10) + '.' + char('0' + record % 10) + "13";
    from = json.find_first_not_of("0123456789.", at);
    ++record;
  }
  out.append(json, from);
  json = std::move(out);
}

Event make_event(std::size_t chunk_size, std::size_t records, bool distinct_timestamps = false) {
  fb::SplitOptions options;
  options.format = fb::SplitFormat::lambda;
  options.chunk_size = chunk_size;
  options.records_per_event = records;
  fb::Splitter splitter(options);
  std::string bytes(chunk_size * records, '\0');
  std::uint64_t state = 42;
  for (char& c : bytes) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    c = static_cast<char>(state >> 56);
  }
  Event event;
  const auto sink = [&](std::string_view line) {
    if (event.json.empty()) event.json.assign(line.substr(0, line.size() - 1));  // no '\n'
  };
  splitter.add_file(presigned_url(0), bytes, sink);
  splitter.finish(sink);
  if (distinct_timestamps) {
    distinct_arrival_timestamps(event.json);
    event.note = ", distinct arrival times";
  }
  event.records = records;
  // Find the strings once, for the floor (split writes no escapes).
  std::string decoded;
  for (std::size_t at = event.json.find("\"data\":\""); at != std::string::npos;
       at = event.json.find("\"data\":\"", at)) {
    at += 8;
    const std::string_view data =
        std::string_view(event.json).substr(at, event.json.find('"', at) - at);
    decoded.resize(fb::base64::max_decoded_size(data.size()));
    decoded.resize(fb::base64::decode(data, decoded.data()).written);
    const std::size_t content = decoded.find("\"content\":\"") + 11;
    event.layout.push_back({at, data.size(), content, decoded.find('"', content) - content});
  }
  return event;
}

const Event& event_for(std::int64_t which) {
  static const Event small = make_event(1400, 100);
  static const Event large = make_event(780'000, 4);
  static const Event arrivals = make_event(1400, 100, true);
  return which == 0 ? small : which == 1 ? large : arrivals;
}

void finish(benchmark::State& state, const Event& event) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * event.json.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * event.records));
  state.SetLabel(std::to_string(event.records) + " records, " + std::to_string(event.json.size()) +
                 " B" + std::string(event.note));
}

// The floor's three buffers start on page boundaries: where the heap puts
// them instead, their offsets modulo 4 KiB make loads alias earlier stores
// and the floor up to 25% slower from one run to the next (measured on Zen 5
// over 32 placements; page-aligned was the fastest). The floor must be the
// best case, and the same in every run.
struct FloorBuffers {
  explicit FloorBuffers(const Event& event)
      : json(page_aligned(event.json.size())),
        data(page_aligned(event.json.size())),
        part(page_aligned(event.json.size())) {
    std::memcpy(json.get(), event.json.data(), event.json.size());
  }
  /// Decodes the record's data to `at` in the data buffer; returns its size.
  std::size_t decode_data(const Event::Record& record, std::size_t at) const {
    const auto decoded = fb::base64::decode(
        std::string_view(json.get() + record.data_offset, record.data_size), data.get() + at);
    benchmark::DoNotOptimize(decoded);
    return decoded.written;
  }
  /// Decodes the record's content from its data, decoded at `at`, to `to` in
  /// the part buffer; returns its size.
  std::size_t decode_content(const Event::Record& record, std::size_t at,
                             std::size_t to = 0) const {
    const auto content = fb::base64::decode(
        std::string_view(data.get() + at + record.content_offset, record.content_size),
        part.get() + to);
    benchmark::DoNotOptimize(content);
    return content.written;
  }
  PageBuffer json, data, part;
};

void floor(benchmark::State& state) {
  const Event& event = event_for(state.range(0));
  const FloorBuffers buffers(event);
  for (auto _ : state) {
    for (const Event::Record& record : event.layout) {
      (void)buffers.decode_data(record, 0);
      (void)buffers.decode_content(record, 0);
    }
    benchmark::ClobberMemory();
  }
  finish(state, event);
}

void floor_two_pass(benchmark::State& state) {
  const Event& event = event_for(state.range(0));
  const FloorBuffers buffers(event);
  std::vector<std::size_t> data_at(event.layout.size());
  for (auto _ : state) {
    std::size_t offset = 0;
    for (std::size_t i = 0; i < event.layout.size(); ++i) {
      data_at[i] = offset;
      offset += buffers.decode_data(event.layout[i], offset);
    }
    for (std::size_t i = 0; i < event.layout.size(); ++i)
      (void)buffers.decode_content(event.layout[i], data_at[i]);
    benchmark::ClobberMemory();
  }
  finish(state, event);
}

// Every content kept (the records are added after the event is read), each
// data decoded at the same place.
void floor_staged(benchmark::State& state) {
  const Event& event = event_for(state.range(0));
  const FloorBuffers buffers(event);
  for (auto _ : state) {
    std::size_t offset = 0;
    for (const Event::Record& record : event.layout) {
      (void)buffers.decode_data(record, 0);
      offset += buffers.decode_content(record, 0, offset);
    }
    benchmark::ClobberMemory();
  }
  finish(state, event);
}

void run_handler(benchmark::State& state, bool fast_path) {
  const Event& event = event_for(state.range(0));
  DiscardStore store;
  NullUploader uploader;
  fb::ReassemblerOptions options;
  if (options.policy.allow_hosts("example-bucket.s3.us-east-1.amazonaws.com") != fb::ErrorCode::ok)
    state.SkipWithError("allow_hosts");
  options.fast_path = fast_path;
  fb::Reassembler reassembler(store, uploader, options);
  fb::Logger logger(fb::LogLevel::off);
  fb::source::EventHandler handler(reassembler, logger);
  const simdjson::padded_string padded(event.json);
  std::string reply;
  const fb::source::LineId line{};
  // One event before the timed ones, so that the buffers have grown:
  // allocs_per_record counts the steady state (no_allocation.cpp wants 0).
  (void)handler.handle(padded, fb::source::InputFormat::detect, line, reply);
  std::uint64_t allocations = 0;
  for (auto _ : state) {
    reply.clear();
    const std::uint64_t before = fb::test::allocations();
    const auto kind = handler.handle(padded, fb::source::InputFormat::detect, line, reply);
    allocations += fb::test::allocations() - before;
    if (kind != fb::source::DocumentKind::lambda || reply != R"({"batchItemFailures":[]})")
      state.SkipWithError("the event was not handled as expected");
    benchmark::DoNotOptimize(reply.data());
  }
  benchmark::DoNotOptimize(store.bytes());
  finish(state, event);
  state.counters["allocs_per_record"] =
      static_cast<double>(allocations) / static_cast<double>(state.iterations() * event.records);
}

void filebuilder_pipeline(benchmark::State& state) {
  run_handler(state, true);
}
void strict(benchmark::State& state) {
  run_handler(state, false);
}

void baseline(benchmark::State& state) {
  const Event& event = event_for(state.range(0));
  DiscardStore store;
  simdjson::ondemand::parser event_parser;
  simdjson::ondemand::parser chunk_parser;
  const simdjson::padded_string padded(event.json);
  std::string data(event.json.size() + simdjson::SIMDJSON_PADDING, '\0');
  std::string part(event.json.size(), '\0');
  for (auto _ : state) {
    simdjson::ondemand::document doc = event_parser.iterate(padded);
    for (auto record : doc["Records"]) {
      const std::string_view text = record["kinesis"]["data"].get_string();
      const auto decoded = fb::base64::decode_with(fb::base64::Kernel::scalar, text, data.data());
      simdjson::ondemand::document chunk = chunk_parser.iterate(
          simdjson::padded_string_view(data.data(), decoded.written, data.size()));
      const std::string_view endpoint = chunk["putEndpoint"].get_string();
      const std::uint64_t partition = chunk["partition"].get_uint64();
      const std::uint64_t count = chunk["partitionCount"].get_uint64();
      const std::string_view content = chunk["content"].get_string();
      const auto bytes = fb::base64::decode_with(fb::base64::Kernel::scalar, content, part.data());
      (void)store.put_part({endpoint, partition, count},
                           std::string_view(part.data(), bytes.written));
    }
  }
  benchmark::DoNotOptimize(store.bytes());
  finish(state, event);
}

// Where the time of pipeline/filebuilder goes: the fast path's two layers
// alone (each decodes its base64 on the way, so each includes one decode).
void envelope(benchmark::State& state) {
  const Event& event = event_for(state.range(0));
  std::vector<fb::source::EnvelopeRecord> records;
  fb::source::DecodedRecords decoded;
  for (auto _ : state) {
    if (fb::source::read_plain_event(event.json, records, decoded) !=
        fb::source::PlainEvent::kinesis)
      state.SkipWithError("not plain");
  }
  finish(state, event);
}

void chunks(benchmark::State& state) {
  const Event& event = event_for(state.range(0));
  std::vector<fb::source::EnvelopeRecord> records;
  fb::source::DecodedRecords decoded;
  (void)fb::source::read_plain_event(event.json, records, decoded);
  std::string part;
  std::size_t size = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < records.size(); ++i) {
      fb::Chunk chunk;
      if (!fb::ChunkParser::parse_plain(decoded.of(i), 1 << 20, chunk, part, size))
        state.SkipWithError("not plain");
    }
  }
  finish(state, event);
}

}  // namespace

// FILEBUILDER_BENCH_ITERATIONS=K runs every benchmark exactly K times, no
// trial runs: benchmarks/instruction-table counts instructions under
// cachegrind at two values of K, and their difference is per event.
int main(int argc, char** argv) {
  const char* iterations = std::getenv("FILEBUILDER_BENCH_ITERATIONS");
  const auto add = [&](const char* name, void (*run)(benchmark::State&)) {
    benchmark::internal::Benchmark* b =
        benchmark::RegisterBenchmark(name, run)->Arg(0)->Arg(1)->Arg(2);
    if (iterations != nullptr) b->Iterations(std::strtoll(iterations, nullptr, 10));
  };
  add("pipeline/floor", floor);
  add("pipeline/floor_two_pass", floor_two_pass);
  add("pipeline/floor_staged", floor_staged);
  add("pipeline/filebuilder", filebuilder_pipeline);
  add("pipeline/strict", strict);
  add("pipeline/baseline", baseline);
  add("pipeline/envelope", envelope);
  add("pipeline/chunks", chunks);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
