#include "broker/replication_quota.h"

#include <algorithm>

namespace sluice::broker {

void ReplicationQuota::record(int64_t bytes, int64_t now_ms) {
  const int64_t index = now_ms / kWindowMs;
  Window& w = windows_[static_cast<size_t>(index % kWindows)];
  if (w.index != index) w = {index, 0};
  w.bytes += bytes;
}

double ReplicationQuota::rate(int64_t now_ms) const {
  const int64_t index = now_ms / kWindowMs;
  int64_t bytes = 0;
  int64_t oldest = index;
  for (const Window& w : windows_)
    if (w.index > index - kWindows && w.index <= index) {
      bytes += w.bytes;
      oldest = std::min(oldest, w.index);
    }
  // From the start of the oldest window in use: a burst right after a quiet
  // spell is measured over the time it took, not the whole span.
  const int64_t elapsed_ms = std::max<int64_t>(now_ms - oldest * kWindowMs, kWindowMs);
  return static_cast<double>(bytes) * 1000.0 / static_cast<double>(elapsed_ms);
}

}  // namespace sluice::broker
