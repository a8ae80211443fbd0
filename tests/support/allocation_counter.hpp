// Counts the heap allocations of a whole program: include this header in
// exactly one source file of an executable (it replaces the global operator
// new and delete), then read filebuilder::test::allocations() before and after
// the code under watch. For tests and benchmarks that prove "no allocation per
// record"; never in the library.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace filebuilder::test {

inline std::atomic<std::uint64_t> allocation_count{0};

/// Allocations made through operator new so far, in every thread.
[[nodiscard]] inline std::uint64_t allocations() noexcept {
  return allocation_count.load(std::memory_order_relaxed);
}

}  // namespace filebuilder::test

// Not inlined: g++ would otherwise pair the malloc and free inside with new and delete.
[[gnu::noinline]] void* operator new(std::size_t size) {
  filebuilder::test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) {
  return operator new(size);
}
// The nothrow forms too (simdjson uses them): every form freed by the
// operator delete below must allocate here, or a sanitizer sees a mismatch.
[[gnu::noinline]] void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  filebuilder::test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
[[gnu::noinline]] void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
