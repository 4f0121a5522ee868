// Kafka's replication throttle (KIP-73): a byte rate, measured over the last
// few seconds, that replication of the throttled partitions may not pass.
// The leader stops sending a throttled partition to a follower out of the
// ISR while its quota is exceeded (leader.replication.throttled.rate); a
// follower stops asking for a throttled partition it is not in sync for
// while its own is (follower.replication.throttled.rate). Which partitions
// are throttled is a topic config (leader/follower.replication.throttled.replicas).
// Network thread only.
#pragma once

#include <array>
#include <cstdint>
#include <limits>

namespace sluice::broker {

class ReplicationQuota {
 public:
  static constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

  void set_limit(int64_t bytes_per_second) { limit_ = bytes_per_second; }
  int64_t limit() const { return limit_; }
  void record(int64_t bytes, int64_t now_ms);
  // Bytes per second over the recorded windows (at least one second long).
  double rate(int64_t now_ms) const;
  bool exceeded(int64_t now_ms) const { return limit_ != kUnlimited && rate(now_ms) > static_cast<double>(limit_); }

 private:
  // Kafka's replication.quota.window.num (11) windows of
  // replication.quota.window.size.seconds (1).
  static constexpr int64_t kWindows = 11;
  static constexpr int64_t kWindowMs = 1000;
  struct Window {
    int64_t index = -1;  // now_ms / kWindowMs when it was started
    int64_t bytes = 0;
  };
  std::array<Window, kWindows> windows_{};
  int64_t limit_ = kUnlimited;
};

}  // namespace sluice::broker
