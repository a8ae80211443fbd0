// filebuilder benchmarks: buffers that start on a 4 KiB page boundary.
//
// Where the heap puts a buffer, its offset modulo 4 KiB against another
// buffer decides whether loads alias earlier stores; timings then move from
// run to run with the placement. The suites put their inputs and outputs on
// page boundaries so that every run measures the same placement.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace filebuilder::bench {

struct FreeDeleter {
  void operator()(char* p) const noexcept { std::free(p); }
};
using PageBuffer = std::unique_ptr<char, FreeDeleter>;

/// At least `size` bytes (a whole number of pages) at the start of a page.
inline PageBuffer page_aligned(std::size_t size) {
  constexpr std::size_t kPage = 4096;
  const std::size_t rounded = (size + kPage - 1) / kPage * kPage;
  auto* block = static_cast<char*>(std::aligned_alloc(kPage, rounded == 0 ? kPage : rounded));
  if (block == nullptr) throw std::bad_alloc();
  return PageBuffer(block);
}

}  // namespace filebuilder::bench
