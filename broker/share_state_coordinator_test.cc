#include "broker/share_state_coordinator.h"

#include <gtest/gtest.h>

namespace sluice::broker {
namespace {

constexpr auto kAvailable = ShareRecordState::kAvailable;
constexpr auto kAcked = ShareRecordState::kAcknowledged;
constexpr auto kArchived = ShareRecordState::kArchived;
using Batches = std::vector<ShareStateBatch>;

TEST(MergeShareBatchesTest, AWriteOverlaysWhatItAdvancesAndKeepsTheRest) {
  const Batches stored{{10, 19, kAvailable, 1}};
  // 12-14 acknowledged (same delivery count, higher state), 16 released again (higher count).
  const Batches written{{12, 14, kAcked, 1}, {16, 16, kAvailable, 2}};
  EXPECT_EQ(merge_share_batches(stored, written, 10),
            (Batches{{10, 11, kAvailable, 1}, {12, 14, kAcked, 1}, {15, 15, kAvailable, 1},
                     {16, 16, kAvailable, 2}, {17, 19, kAvailable, 1}}));
}

TEST(MergeShareBatchesTest, TheHigherDeliveryCountThenStateWinsWhateverTheOrder) {
  // An older write arriving with a lower count does not undo a newer state.
  EXPECT_EQ(merge_share_batches({{0, 9, kAcked, 2}}, {{0, 9, kAvailable, 1}}, 0), (Batches{{0, 9, kAcked, 2}}));
  EXPECT_EQ(merge_share_batches({{0, 9, kAvailable, 1}}, {{0, 9, kAcked, 1}}, 0), (Batches{{0, 9, kAcked, 1}}));
  EXPECT_EQ(merge_share_batches({{0, 9, kArchived, 5}}, {{3, 4, kAvailable, 5}}, 0), (Batches{{0, 9, kArchived, 5}}));
}

TEST(MergeShareBatchesTest, CutsAtTheStartOffsetAndCoalescesNeighbours) {
  EXPECT_EQ(merge_share_batches({{0, 4, kAcked, 1}, {5, 9, kAvailable, 1}}, {{5, 7, kAcked, 1}}, 3),
            (Batches{{3, 7, kAcked, 1}, {8, 9, kAvailable, 1}}));
  EXPECT_EQ(merge_share_batches({{0, 4, kAcked, 1}}, {}, 5), Batches{});
  EXPECT_EQ(merge_share_batches({}, {{7, 7, kAcked, 1}, {8, 8, kAcked, 1}}, 0), (Batches{{7, 8, kAcked, 1}}));
  // Nested and identical ranges.
  EXPECT_EQ(merge_share_batches({{0, 9, kAvailable, 1}}, {{0, 9, kAvailable, 1}, {4, 5, kAvailable, 3}}, 0),
            (Batches{{0, 3, kAvailable, 1}, {4, 5, kAvailable, 3}, {6, 9, kAvailable, 1}}));
}

TEST(ShareStateRecordTest, ReplayGivesBackTheStateAndATombstoneRemovesIt) {
  const ShareStateKey key{"group:with:colons", protocol::Uuid{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}, 3};
  StoredShareState state;
  state.state_epoch = 2;
  state.leader_epoch = 7;
  state.snapshot_epoch = 11;
  state.create_timestamp_ms = 1234;
  state.state = DurableShareState{100, {{100, 104, kAcked, 1}, {105, 105, kAvailable, 4}}};
  std::map<ShareStateKey, StoredShareState> states;
  const auto record = share_state_record(key, &state);
  ASSERT_TRUE(replay_share_state_record(record.key, record.value, states));
  ASSERT_EQ(states.count(key), 1u);
  EXPECT_EQ(states[key].state, state.state);
  EXPECT_EQ(states[key].state_epoch, 2);
  EXPECT_EQ(states[key].leader_epoch, 7);
  EXPECT_EQ(states[key].snapshot_epoch, 11);
  EXPECT_EQ(delivery_complete_count(states[key].state), 5);
  const auto removal = share_state_record(key, nullptr);
  EXPECT_FALSE(removal.value.has_value());
  ASSERT_TRUE(replay_share_state_record(removal.key, std::nullopt, states));
  EXPECT_TRUE(states.empty());
  // Something else in the topic is counted unreadable, not applied.
  EXPECT_FALSE(replay_share_state_record(std::string("\x00\x01garbage", 9), std::nullopt, states));
  EXPECT_FALSE(replay_share_state_record(std::nullopt, std::nullopt, states));
}

TEST(ShareStateRecordTest, KafkasCoordinatorKey) {
  const ShareStateKey key{"g", protocol::Uuid{}, 4};
  EXPECT_EQ(share_coordinator_key(key), "g:AAAAAAAAAAAAAAAAAAAAAA:4");
}

}  // namespace
}  // namespace sluice::broker
