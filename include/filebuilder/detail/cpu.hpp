// filebuilder: what the CPU and the OS let us run, for the runtime dispatch of
// the SIMD kernels (base64.hpp).
//
// A kernel is usable when the CPU has its instructions (CPUID) AND the OS
// saves and restores the registers they use (XCR0, read with xgetbv): a CPU
// with AVX-512 under an OS that does not enable the zmm state must not run
// AVX-512 code. Detection runs once; the result is cached.
//
// On anything but x86-64 with GCC or Clang, no SIMD kernel is compiled and
// every feature reads false.
#pragma once

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FILEBUILDER_X86_KERNELS 1
#include <cpuid.h>
#else
#define FILEBUILDER_X86_KERNELS 0
#endif

#include <cstdint>

namespace filebuilder::detail::cpu {

/// The instruction sets the kernels need, each with its OS support.
struct Features {
  /// AVX2 (CPUID) with the ymm state enabled by the OS (XCR0 bits 1 and 2).
  bool avx2 = false;
  /// AVX-512 F, BW, VL and VBMI and AVX2 (CPUID) with the opmask and full zmm state
  /// enabled by the OS (XCR0 bits 1, 2, 5, 6 and 7).
  bool avx512vbmi = false;
};

/// Asks the CPU and the OS (no caching).
[[nodiscard]] inline Features detect() noexcept;

/// detect(), run once (thread-safe).
[[nodiscard]] inline const Features& features() noexcept;

// ---------------------------------------------------------------------------
// Definitions

#if FILEBUILDER_X86_KERNELS

namespace util {

struct Registers {
  std::uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

inline Registers cpuid(std::uint32_t leaf, std::uint32_t subleaf) noexcept {
  Registers r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

/// XCR0, the state components the OS saves. Only valid when CPUID says OSXSAVE.
/// Written as the raw instruction so that no target attribute is needed.
inline std::uint64_t xcr0() noexcept {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
}

inline bool bit(std::uint32_t value, unsigned index) noexcept {
  return (value >> index) & 1u;
}

}  // namespace util

inline Features detect() noexcept {
  Features f;
  const std::uint32_t max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  const util::Registers leaf1 = util::cpuid(1, 0);
  // OSXSAVE (the OS uses XSAVE, so xgetbv works) and AVX.
  if (!util::bit(leaf1.ecx, 27) || !util::bit(leaf1.ecx, 28)) return f;
  const std::uint64_t xcr0 = util::xcr0();
  const bool ymm_state = (xcr0 & 0x06) == 0x06;  // SSE + AVX state
  const bool zmm_state = (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM_Hi256, Hi16_ZMM
  const util::Registers leaf7 = util::cpuid(7, 0);
  f.avx2 = ymm_state && util::bit(leaf7.ebx, 5);
  const bool avx512f = util::bit(leaf7.ebx, 16);
  const bool avx512bw = util::bit(leaf7.ebx, 30);
  const bool avx512vl = util::bit(leaf7.ebx, 31);
  const bool avx512vbmi = util::bit(leaf7.ecx, 1);
  f.avx512vbmi = f.avx2 && zmm_state && avx512f && avx512bw && avx512vl && avx512vbmi;
  return f;
}

#else

inline Features detect() noexcept {
  return {};
}

#endif

inline const Features& features() noexcept {
  static const Features cached = detect();
  return cached;
}

}  // namespace filebuilder::detail::cpu
