// base64 decode next to memcpy of the same input, at 1 KiB .. 1 MiB of input,
// once per kernel this CPU runs (decode/scalar, decode/avx2, decode/avx512)
// and once through the dispatch (decode/auto). Read the ratio of
// bytes_per_second (decode / memcpy), not the absolute figures:
// benchmarks/base64-table runs this and prints the ratios.
//
// memcpy is a fair baseline: it copies the very same input buffer into the
// very same output buffer that decode uses, both 64-byte aligned, and the
// output is treated as read after each call (as decode's is). The output is
// placed 2 KiB past a 4 KiB boundary relative to the input, so that neither
// function suffers 4K aliasing (loads and stores at addresses equal modulo
// 4096, which makes memcpy on this kind of CPU up to twice as slow); both
// count the input size as bytes_per_second.
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "filebuilder/base64.hpp"
#include "page_buffer.hpp"

namespace {

namespace base64 = filebuilder::base64;
namespace bench = filebuilder::bench;

constexpr std::int64_t kSizes[] = {1 << 10, 4 << 10, 64 << 10, 1 << 20};

// The input (a valid encoding of random bytes, no padding: every size used
// is a multiple of 4) and the output buffer of one size, shared by memcpy and
// every kernel.
struct Buffers {
  bench::PageBuffer input_block;
  bench::PageBuffer output_block;
  std::string_view input;
  char* output = nullptr;
};

Buffers& buffers(std::size_t encoded_size) {
  static std::map<std::size_t, Buffers> cache;
  Buffers& b = cache[encoded_size];
  if (b.output != nullptr) return b;
  std::mt19937_64 random(42);
  std::string bytes(encoded_size / 4 * 3, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  const std::string encoded = base64::encode(bytes);
  b.input_block = bench::page_aligned(encoded.size());
  b.output_block = bench::page_aligned(encoded.size() + 4096);
  std::memcpy(b.input_block.get(), encoded.data(), encoded.size());
  std::memset(b.output_block.get(), 0, encoded.size() + 4096);
  b.input = std::string_view(b.input_block.get(), encoded.size());
  b.output = b.output_block.get() + 2048;
  return b;
}

void memcpy_baseline(benchmark::State& state) {
  const Buffers& b = buffers(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(b.input.data());
    std::memcpy(b.output, b.input.data(), b.input.size());
    benchmark::DoNotOptimize(b.output);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * b.input.size()));
}

template <class Decode>
void run_decode(benchmark::State& state, Decode decode) {
  const Buffers& b = buffers(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(b.input.data());
    const base64::DecodeResult result = decode(b.input, b.output);
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(b.output);
    benchmark::ClobberMemory();
  }
  const base64::DecodeResult check = decode(b.input, b.output);
  if (check.error != filebuilder::ErrorCode::ok || check.written != b.input.size() / 4 * 3) {
    state.SkipWithError("the input did not decode");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * b.input.size()));
}

void decode_with(benchmark::State& state, base64::Kernel kernel) {
  run_decode(state, [kernel](std::string_view in, char* out) {
    return base64::decode_with(kernel, in, out);
  });
}

void decode_auto(benchmark::State& state) {
  run_decode(state, [](std::string_view in, char* out) { return base64::decode(in, out); });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  auto* baseline = benchmark::RegisterBenchmark("memcpy", memcpy_baseline);
  auto* automatic = benchmark::RegisterBenchmark("decode/auto", decode_auto);
  for (const std::int64_t size : kSizes) {
    baseline->Arg(size);
    automatic->Arg(size);
  }
  for (const base64::Kernel kernel : base64::available_kernels()) {
    const std::string name = "decode/" + std::string(base64::kernel_name(kernel));
    auto* b = benchmark::RegisterBenchmark(name.c_str(), decode_with, kernel);
    for (const std::int64_t size : kSizes) b->Arg(size);
  }
  benchmark::AddCustomContext("base64_active_kernel",
                              std::string(base64::kernel_name(base64::active_kernel())));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
