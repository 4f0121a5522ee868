#include "broker/share_partition.h"

#include <gtest/gtest.h>

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
constexpr int8_t kAccept = 1, kRelease = 2, kReject = 3, kRenew = 4, kGap = 0;

SharePartitionLimits limits(int32_t max_locks = 2000, int32_t deliveries = 5, int64_t lock_ms = 1000) {
  return {lock_ms, deliveries, max_locks};
}

TEST(SharePartitionTest, HandsEachRecordToOneMemberAndMovesTheStartOverAcceptedOnes) {
  SharePartition p(10, limits());
  EXPECT_EQ(p.acquire("a", 3, 20, 0), (std::vector<AcquiredRange>{{10, 12, 1}}));
  EXPECT_EQ(p.acquire("b", 100, 20, 0), (std::vector<AcquiredRange>{{13, 19, 1}}));
  EXPECT_TRUE(p.acquire("c", 100, 20, 0).empty());  // nothing left below the high watermark
  EXPECT_EQ(p.acknowledge("a", 10, 12, {kAccept}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 13);
  // b's records are not a's to acknowledge; nothing changes.
  EXPECT_EQ(p.acknowledge("a", 13, 13, {kAccept}, 0), ErrorCode::kInvalidRecordState);
  EXPECT_EQ(p.acknowledge("b", 13, 19, {kAccept}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 20);
  EXPECT_EQ(p.end_offset(), 20);
  // Acknowledged again once the start passed it: skipped, as Kafka skips offsets below the SPSO.
  EXPECT_EQ(p.acknowledge("b", 13, 13, {kAccept}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 20);
}

TEST(SharePartitionTest, ReleasedRecordsComeBackFirstWithTheirDeliveryCount) {
  SharePartition p(0, limits());
  p.acquire("a", 4, 10, 0);
  EXPECT_EQ(p.acknowledge("a", 0, 3, {kAccept, kRelease, kAccept, kRelease}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 1);
  EXPECT_EQ(p.acquire("b", 10, 10, 0),
            (std::vector<AcquiredRange>{{1, 1, 2}, {3, 3, 2}, {4, 9, 1}}));
}

TEST(SharePartitionTest, RejectedRecordsAreNeverDeliveredAgain) {
  SharePartition p(0, limits());
  p.acquire("a", 2, 2, 0);
  EXPECT_EQ(p.acknowledge("a", 0, 1, {kReject}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 2);
  EXPECT_TRUE(p.acquire("a", 10, 2, 0).empty());
}

TEST(SharePartitionTest, ExpiredLocksGiveRecordsBackAndTheLimitArchivesAPoisonRecord) {
  SharePartition p(0, limits(2000, 3, 1000));
  for (int delivery = 1; delivery <= 3; ++delivery) {
    const int64_t now = delivery * 10'000;
    EXPECT_EQ(p.acquire("a", 1, 1, now), (std::vector<AcquiredRange>{{0, 0, static_cast<int16_t>(delivery)}}));
    EXPECT_FALSE(p.expire_locks(now + 999));
    EXPECT_EQ(p.next_deadline(), now + 1000);
    EXPECT_TRUE(p.expire_locks(now + 1000));
    // An acknowledgement after the lock expired is refused (once archived, it is below the start: skipped).
    EXPECT_EQ(p.acknowledge("a", 0, 0, {kAccept}, now + 1000),
              delivery < 3 ? ErrorCode::kInvalidRecordState : ErrorCode::kNone);
  }
  // Delivered three times (the limit): archived, and the start moves past it.
  EXPECT_EQ(p.state_of(0), ShareRecordState::kAvailable);  // outside the window now
  EXPECT_EQ(p.start_offset(), 1);
  EXPECT_TRUE(p.acquire("a", 1, 1, 100'000).empty());
}

TEST(SharePartitionTest, ReleaseAtTheLimitArchives) {
  SharePartition p(0, limits(2000, 1));
  p.acquire("a", 1, 1, 0);
  EXPECT_EQ(p.acknowledge("a", 0, 0, {kRelease}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 1);
}

TEST(SharePartitionTest, RenewPushesTheLockOut) {
  SharePartition p(0, limits(2000, 5, 1000));
  p.acquire("a", 1, 1, 0);
  EXPECT_EQ(p.acknowledge("a", 0, 0, {kRenew}, 900), ErrorCode::kNone);
  EXPECT_FALSE(p.expire_locks(1500));
  EXPECT_EQ(p.acknowledge("a", 0, 0, {kAccept}, 1500), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 1);
}

TEST(SharePartitionTest, TheInFlightWindowIsBounded) {
  SharePartition p(0, limits(5));
  EXPECT_EQ(p.acquire("a", 100, 100, 0), (std::vector<AcquiredRange>{{0, 4, 1}}));
  EXPECT_TRUE(p.acquire("b", 100, 100, 0).empty());
  EXPECT_EQ(p.acknowledge("a", 0, 1, {kAccept}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.acquire("b", 100, 100, 0), (std::vector<AcquiredRange>{{5, 6, 1}}));
}

TEST(SharePartitionTest, FinishingABatchMayPassTheWindowsBound) {
  SharePartition p(0, limits(5));
  EXPECT_EQ(p.acquire("a", 3, 100, 0), (std::vector<AcquiredRange>{{0, 2, 1}}));
  // The rest of a log batch ending at offset 7: past the bound of 5.
  EXPECT_EQ(p.acquire("a", 5, 8, 0, SharePartition::Window::kFinishBatch), (std::vector<AcquiredRange>{{3, 7, 1}}));
  EXPECT_EQ(p.end_offset(), 8);
  // A new acquisition still finds no room until the window is back under its bound.
  EXPECT_TRUE(p.acquire("b", 100, 100, 0).empty());
  EXPECT_EQ(p.acknowledge("a", 0, 3, {kAccept}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 4);
  EXPECT_EQ(p.acquire("b", 100, 100, 0), (std::vector<AcquiredRange>{{8, 8, 1}}));
}

TEST(SharePartitionTest, AMemberThatLeavesGivesItsRecordsBack) {
  SharePartition p(0, limits());
  p.acquire("a", 2, 4, 0);
  p.acquire("b", 2, 4, 0);
  EXPECT_TRUE(p.release_member("a"));
  EXPECT_FALSE(p.release_member("a"));
  EXPECT_EQ(p.acquire("c", 10, 4, 0), (std::vector<AcquiredRange>{{0, 1, 1}}));  // a's delivery not counted
  EXPECT_EQ(p.state_of(2), ShareRecordState::kAcquired);
}

TEST(SharePartitionTest, BadAcknowledgementsChangeNothing) {
  SharePartition p(0, limits());
  p.acquire("a", 3, 3, 0);
  EXPECT_EQ(p.acknowledge("a", 2, 1, {kAccept}, 0), ErrorCode::kInvalidRequest);           // backwards
  EXPECT_EQ(p.acknowledge("a", 0, 2, {kAccept, kAccept}, 0), ErrorCode::kInvalidRequest);  // 2 types for 3
  EXPECT_EQ(p.acknowledge("a", 0, 0, {9}, 0), ErrorCode::kInvalidRequest);
  EXPECT_EQ(p.acknowledge("a", 0, 0, {}, 0), ErrorCode::kInvalidRequest);
  EXPECT_EQ(p.acknowledge("a", 0, 5, {kAccept}, 0), ErrorCode::kInvalidRequest);      // runs past the window
  EXPECT_EQ(p.acknowledge("a", 5, 6, {kAccept}, 0), ErrorCode::kInvalidRequest);      // wholly past it
  // Out of order, or one bad batch among good ones: nothing of it applies.
  EXPECT_EQ(p.acknowledge("a", {{1, 1, {kAccept}}, {0, 0, {kAccept}}}, true, 0), ErrorCode::kInvalidRequest);
  EXPECT_EQ(p.acknowledge("a", {{0, 0, {kAccept}}, {1, 1, {kRenew}}}, false, 0), ErrorCode::kInvalidRequest);
  EXPECT_EQ(p.count(ShareRecordState::kAcquired), 3);
  EXPECT_EQ(p.acknowledge("a", 0, 2, {kGap, kAccept, kReject}, 0), ErrorCode::kNone);
  EXPECT_EQ(p.start_offset(), 3);
}

TEST(SharePartitionTest, DurableStateRoundTripsWithLocksDropped) {
  SharePartition p(100, limits());
  p.acquire("a", 6, 200, 0);
  ASSERT_EQ(p.acknowledge("a", 101, 102, {kAccept, kReject}, 0), ErrorCode::kNone);
  ASSERT_EQ(p.acknowledge("a", 104, 104, {kRelease}, 0), ErrorCode::kNone);
  const DurableShareState state = p.durable_state();
  EXPECT_EQ(state.start_offset, 100);
  EXPECT_EQ(state.batches, (std::vector<ShareStateBatch>{{100, 100, ShareRecordState::kAvailable, 1},
                                                          {101, 101, ShareRecordState::kAcknowledged, 1},
                                                          {102, 102, ShareRecordState::kArchived, 1},
                                                          {103, 105, ShareRecordState::kAvailable, 1}}));
  SharePartition back = SharePartition::restore(state, limits());
  EXPECT_EQ(back.durable_state(), state);
  // Everything that was acquired is available again; the done ones stay done.
  EXPECT_EQ(back.acquire("b", 100, 108, 0),
            (std::vector<AcquiredRange>{{100, 100, 2}, {103, 105, 2}, {106, 107, 1}}));
}

TEST(SharePartitionTest, ResetMovesTheStartBothWays) {
  SharePartition p(10, limits());
  p.acquire("a", 5, 20, 0);
  p.reset_start(12);
  EXPECT_EQ(p.start_offset(), 12);
  EXPECT_EQ(p.end_offset(), 15);
  p.reset_start(30);
  EXPECT_EQ(p.start_offset(), 30);
  EXPECT_EQ(p.end_offset(), 30);
  p.reset_start(25);
  EXPECT_EQ(p.start_offset(), 25);
  EXPECT_EQ(p.acquire("a", 100, 28, 0), (std::vector<AcquiredRange>{{25, 27, 1}}));
}

TEST(SharePartitionTest, WhatCouldNotBeSentIsNotCountedAsDelivered) {
  SharePartition p(0, limits());
  p.acquire("a", 2, 10, 0);
  ASSERT_EQ(p.acknowledge("a", 0, 1, {kRelease}, 0), ErrorCode::kNone);
  auto ranges = p.acquire("a", 10, 10, 0);
  ASSERT_EQ(ranges, (std::vector<AcquiredRange>{{0, 1, 2}, {2, 9, 1}}));
  p.unacquire(ranges, 1);
  EXPECT_EQ(ranges, (std::vector<AcquiredRange>{{0, 0, 2}}));
  EXPECT_EQ(p.end_offset(), 2);  // offsets 2.. were never delivered: out of the window again
  EXPECT_EQ(p.acquire("b", 10, 10, 0), (std::vector<AcquiredRange>{{1, 1, 2}, {2, 9, 1}}));
}

TEST(SharePartitionTest, NeverDeliversPastTheLimitAfterARestartOrALowerLimit) {
  SharePartition p(0, limits(2000, 3));
  p.acquire("a", 2, 2, 0);
  ASSERT_EQ(p.acknowledge("a", 0, 1, {kRelease}, 0), ErrorCode::kNone);
  p.acquire("a", 2, 2, 0);
  ASSERT_EQ(p.acknowledge("a", 0, 1, {kRelease}, 0), ErrorCode::kNone);
  p.acquire("a", 2, 2, 0);  // the third and last delivery, held when the state is written
  SharePartition back = SharePartition::restore(p.durable_state(), limits(2000, 3));
  EXPECT_EQ(back.start_offset(), 2);
  EXPECT_TRUE(back.acquire("b", 10, 2, 0).empty());
  // A limit lowered under what records have had: archived when next handed out.
  SharePartition q(0, limits(2000, 5));
  q.acquire("a", 1, 1, 0);
  ASSERT_EQ(q.acknowledge("a", 0, 0, {kRelease}, 0), ErrorCode::kNone);
  q.set_limits(limits(2000, 1));
  EXPECT_TRUE(q.acquire("a", 1, 1, 0).empty());
  EXPECT_EQ(q.start_offset(), 1);
}

}  // namespace
}  // namespace sluice::broker
