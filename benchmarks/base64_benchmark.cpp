// base64 decode next to memcpy of the same input, at 1 KiB .. 1 MiB of input.
// Read the ratio of bytes_per_second (decode / memcpy), not the absolute figures.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>

#include "filebuilder/base64.hpp"

namespace {

std::string encoded_input(std::size_t encoded_size) {
  std::mt19937_64 random(42);
  std::string bytes(encoded_size / 4 * 3, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return filebuilder::base64::encode(bytes);
}

void memcpy_baseline(benchmark::State& state) {
  const std::string input = encoded_input(static_cast<std::size_t>(state.range(0)));
  std::string out(input.size(), '\0');
  for (auto _ : state) {
    std::memcpy(out.data(), input.data(), input.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
}

void decode(benchmark::State& state) {
  const std::string input = encoded_input(static_cast<std::size_t>(state.range(0)));
  std::string out(filebuilder::base64::max_decoded_size(input.size()), '\0');
  for (auto _ : state) {
    const auto result = filebuilder::base64::decode(input, out.data());
    benchmark::DoNotOptimize(result);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
}

}  // namespace

BENCHMARK(memcpy_baseline)->Arg(1 << 10)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(decode)->Arg(1 << 10)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK_MAIN();
