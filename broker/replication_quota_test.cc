#include "broker/replication_quota.h"

#include <gtest/gtest.h>

namespace sluice::broker {
namespace {

TEST(ReplicationQuotaTest, UnlimitedIsNeverExceeded) {
  ReplicationQuota q;
  q.record(1LL << 40, 1000);
  EXPECT_FALSE(q.exceeded(1000));
}

TEST(ReplicationQuotaTest, RateOverTheWindowsInUse) {
  ReplicationQuota q;
  q.set_limit(1000);
  q.record(500, 10'000);  // half a second's worth in the first second
  EXPECT_DOUBLE_EQ(q.rate(10'500), 500.0);
  EXPECT_FALSE(q.exceeded(10'500));
  q.record(600, 10'900);
  EXPECT_TRUE(q.exceeded(10'900));  // 1,100 bytes in one second
  EXPECT_FALSE(q.exceeded(11'900));  // the same bytes over nearly two seconds
  EXPECT_DOUBLE_EQ(q.rate(12'000), 550.0);
}

TEST(ReplicationQuotaTest, OldWindowsAgeOut) {
  ReplicationQuota q;
  q.set_limit(100);
  q.record(10'000, 0);
  EXPECT_TRUE(q.exceeded(5'000));     // 10,000 bytes over 5 s
  EXPECT_FALSE(q.exceeded(12'000));   // out of the last 11 windows
  EXPECT_DOUBLE_EQ(q.rate(12'000), 0.0);
}

}  // namespace
}  // namespace sluice::broker
