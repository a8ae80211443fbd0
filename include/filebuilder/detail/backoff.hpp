// filebuilder: exponential backoff with full jitter, for every retry loop (uploads, Kinesis).
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace filebuilder::detail {

/// The wait before the retry that follows attempt number `attempts` (1 for the
/// first retry): uniform in [0, min(cap, base * 2^(attempts - 1))], "full
/// jitter", so that many clients failing together do not retry together.
template <typename Rng>
[[nodiscard]] std::chrono::milliseconds full_jitter_backoff(std::chrono::milliseconds base,
                                                            std::chrono::milliseconds cap,
                                                            unsigned attempts, Rng& rng) {
  using std::chrono::milliseconds;
  const auto floor = std::max<milliseconds::rep>(0, base.count());
  const auto limit = std::max<milliseconds::rep>(0, cap.count());
  // base * 2^(attempts - 1), saturating at the cap.
  milliseconds::rep ceiling = floor;
  for (unsigned i = 1; i < attempts && ceiling < limit; ++i)
    ceiling = ceiling > limit / 2 ? limit : ceiling * 2;
  ceiling = std::min(ceiling, limit);
  if (ceiling <= 0) return milliseconds{0};
  std::uniform_int_distribution<milliseconds::rep> jitter(0, ceiling);
  return milliseconds{jitter(rng)};
}

}  // namespace filebuilder::detail
