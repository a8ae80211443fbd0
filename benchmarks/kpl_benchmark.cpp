// KPL deaggregation next to memcpy of the same bytes: aggregates of up to 100
// user records (as `filebuilder split --aggregate` writes them) of 100 B to
// 100 KiB each. Read the ratios of bytes_per_second to memcpy_baseline in one
// run, not the absolute figures. md5_only shows the share of the checksum,
// which every aggregate needs; aggregate is the producer side. allocs_per_record
// counts heap allocations per user record in the timed loop (expected 0).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>

#include "filebuilder/source/kpl.hpp"

namespace {

std::atomic<std::uint64_t> allocations{0};

constexpr std::size_t records_per_aggregate = 100;

/// One aggregate of up to 100 user records of `size` bytes each, within 1 MiB.
std::string make_aggregate(std::size_t size, std::size_t* records) {
  std::mt19937_64 random(42);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>('a' + random() % 26);
  filebuilder::kpl::Aggregator aggregator(records_per_aggregate);
  std::string out;
  const auto sink = [&](const filebuilder::kpl::Aggregate& aggregate) {
    if (out.empty()) {
      out.assign(aggregate.bytes);
      *records = aggregate.records;
    }
  };
  for (std::size_t i = 0; i < records_per_aggregate; ++i)
    aggregator.add("0123456789abcdef", {}, data, sink);
  aggregator.flush(sink);
  return out;
}

void memcpy_baseline(benchmark::State& state) {
  std::size_t records = 0;
  const std::string input = make_aggregate(static_cast<std::size_t>(state.range(0)), &records);
  std::string out(input.size(), '\0');
  for (auto _ : state) {
    std::memcpy(out.data(), input.data(), input.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
}

void deaggregate(benchmark::State& state) {
  std::size_t records = 0;
  const std::string input = make_aggregate(static_cast<std::size_t>(state.range(0)), &records);
  filebuilder::kpl::Deaggregator deaggregator;
  std::size_t total = 0;
  const auto sink = [&](const filebuilder::kpl::UserRecord& user) { total += user.data.size(); };
  (void)deaggregator.deaggregate(input, sink);  // warm: buffers sized, MD5 fetched
  const std::uint64_t before = allocations.load();
  for (auto _ : state) {
    const auto result = deaggregator.deaggregate(input, sink);
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(total);
  }
  const std::uint64_t allocs = allocations.load() - before;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
  state.counters["allocs_per_record"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations() * records);
}

void md5_only(benchmark::State& state) {
  std::size_t records = 0;
  const std::string input = make_aggregate(static_cast<std::size_t>(state.range(0)), &records);
  filebuilder::detail::kpl::Md5 md5;
  unsigned char digest[16];
  for (auto _ : state) {
    benchmark::DoNotOptimize(md5.digest(input, digest));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
}

void aggregate(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::string data(size, 'x');
  filebuilder::kpl::Aggregator aggregator(records_per_aggregate);
  std::size_t bytes = 0;
  std::size_t records = 0;
  const auto sink = [&](const filebuilder::kpl::Aggregate& out) {
    bytes += out.bytes.size();
    records += out.records;
  };
  for (auto _ : state) {
    for (std::size_t i = 0; i < records_per_aggregate; ++i)
      aggregator.add("0123456789abcdef", {}, data, sink);
    aggregator.flush(sink);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(records));
}

}  // namespace

// Counts every allocation of the process (the timed loops read the difference).
// Not inlined: g++ would otherwise pair the malloc and free inside with new and delete.
[[gnu::noinline]] void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

BENCHMARK(memcpy_baseline)->Arg(100)->Arg(1 << 10)->Arg(10 << 10)->Arg(100 << 10);
BENCHMARK(deaggregate)->Arg(100)->Arg(1 << 10)->Arg(10 << 10)->Arg(100 << 10);
BENCHMARK(md5_only)->Arg(100)->Arg(1 << 10)->Arg(10 << 10)->Arg(100 << 10);
BENCHMARK(aggregate)->Arg(100)->Arg(1 << 10)->Arg(10 << 10)->Arg(100 << 10);
BENCHMARK_MAIN();
