// Milliseconds on the monotonic clock: what session, lag and retry deadlines
// are measured in (never wall-clock time, which can jump).
#pragma once

#include <chrono>
#include <cstdint>

namespace sluice::broker {

inline int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice::broker
