#include "broker/offsets_topic.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "protocol/wire.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;

// An OffsetStore that keeps nothing: the sharding tests need none.
class NoOffsetStore : public OffsetStore {
 public:
  GroupOffsets load() override { return {}; }
  OffsetWrite apply(std::string_view, const std::map<TopicPartition, CommittedOffset>&,
                    const std::vector<TopicPartition>&) override {
    return OffsetWrite{};
  }
};

// The bytes Kafka's coordinator writes (OffsetCommitKey; OffsetCommitValue v3),
// spelled out so that a change of format shows here.
TEST(OffsetsTopicTest, CommitRecordsHaveKafkasLayout) {
  const CommittedOffset c{42, 7, "md", 1700000000000};
  const protocol::KeyedRecord record = offset_commit_record("g", {"t", 3}, &c);
  protocol::Writer key;
  key.write_int16(1);  // record type: offset commit
  key.write_string("g");
  key.write_string("t");
  key.write_int32(3);
  EXPECT_EQ(record.key, key.buffer());
  protocol::Writer value;
  value.write_int16(3);  // value version
  value.write_int64(42);
  value.write_int32(7);
  value.write_string("md");
  value.write_int64(1700000000000);
  ASSERT_TRUE(record.value.has_value());
  EXPECT_EQ(*record.value, value.buffer());
  EXPECT_FALSE(offset_commit_record("g", {"t", 3}, nullptr).value.has_value());  // a removal: a tombstone
}

TEST(OffsetsTopicTest, ReplayAppliesCommitsAndTombstonesInOrder) {
  GroupOffsets offsets;
  const CommittedOffset first{10, -1, "", 1};
  const CommittedOffset second{20, 2, "x", 2};
  auto replay = [&](const protocol::KeyedRecord& r) {
    std::optional<std::string_view> value;
    if (r.value) value = *r.value;
    return replay_offsets_record(std::string_view(r.key), value, offsets);
  };
  EXPECT_TRUE(replay(offset_commit_record("g", {"t", 0}, &first)));
  EXPECT_TRUE(replay(offset_commit_record("g", {"t", 1}, &first)));
  EXPECT_TRUE(replay(offset_commit_record("g", {"t", 0}, &second)));
  EXPECT_TRUE(replay(offset_commit_record("g", {"t", 1}, nullptr)));
  EXPECT_TRUE(replay(offset_commit_record("h", {"t", 1}, nullptr)));  // removing what is not there
  EXPECT_EQ(offsets, (GroupOffsets{{"g", {{{"t", 0}, second}}}}));

  // A group metadata record (type 2) is skipped; an unknown type or a cut record is unreadable.
  protocol::Writer group_key;
  group_key.write_int16(2);
  group_key.write_string("g");
  EXPECT_TRUE(replay_offsets_record(std::string_view(group_key.buffer()), std::string_view("anything"), offsets));
  protocol::Writer unknown;
  unknown.write_int16(9);
  EXPECT_FALSE(replay_offsets_record(std::string_view(unknown.buffer()), std::nullopt, offsets));
  const std::string cut = offset_commit_record("g", {"t", 0}, &first).key.substr(0, 5);
  EXPECT_FALSE(replay_offsets_record(std::string_view(cut), std::nullopt, offsets));
  EXPECT_FALSE(replay_offsets_record(std::nullopt, std::nullopt, offsets));
  EXPECT_EQ(offsets, (GroupOffsets{{"g", {{{"t", 0}, second}}}}));
}

// Kafka's partition for a group: abs(String.hashCode) % partitions, over UTF-16.
TEST(OffsetsTopicTest, GroupsMapToPartitionsAsKafkaHashesThem) {
  boost::asio::io_context io;
  NoOffsetStore store;
  GroupCoordinator groups(store, {}, io.get_executor());
  groups.shard_by(INT32_MAX);  // the hash itself, for positive hashes
  EXPECT_EQ(groups.shard_of("hello"), 99162322);
  EXPECT_EQ(groups.shard_of("Aa"), 2112);
  EXPECT_EQ(groups.shard_of("BB"), 2112);
  EXPECT_EQ(groups.shard_of("\xc3\xa9"), 233);              // U+00E9: one UTF-16 unit
  EXPECT_EQ(groups.shard_of("\xf0\x9f\x98\x80"), 1772899);  // U+1F600: a surrogate pair
  EXPECT_EQ(groups.shard_of("\xff"), 0xFFFD);               // malformed: U+FFFD, as Java decodes it
  groups.shard_by(50);
  // "polygenelubricants".hashCode() is Integer.MIN_VALUE, which Kafka's abs makes 0.
  EXPECT_EQ(groups.shard_of("polygenelubricants"), 0);
  // Negative hashes: "orders".hashCode() is -1008770331, "analytics" -1693017210.
  EXPECT_EQ(groups.shard_of("orders"), 31);
  EXPECT_EQ(groups.shard_of("analytics"), 10);
}

// Which groups a broker of a cluster answers for: those of the shards it
// leads, once loaded; members waiting when it stops leading are told so.
TEST(OffsetsTopicTest, OwnershipFollowsLoadedShards) {
  boost::asio::io_context io;
  NoOffsetStore store;
  GroupCoordinator groups(store, {}, io.get_executor());
  EXPECT_EQ(groups.ownership("any"), ErrorCode::kNone);  // a single node: every group
  groups.shard_by(2);
  const int32_t shard = groups.shard_of("g");
  EXPECT_EQ(groups.ownership("g"), ErrorCode::kNotCoordinator);
  EXPECT_TRUE(groups.begin_loading(shard, 4));
  EXPECT_FALSE(groups.begin_loading(shard, 4));  // already loading
  EXPECT_TRUE(groups.loading(shard, 4));
  EXPECT_FALSE(groups.loading(shard, 5));
  EXPECT_EQ(groups.ownership("g"), ErrorCode::kCoordinatorLoadInProgress);
  EXPECT_EQ(groups.validate_commit({"g", -1, "", std::nullopt}), ErrorCode::kCoordinatorLoadInProgress);
  groups.finish_loading(shard, {{"g", {{{"t", 0}, CommittedOffset{5, -1, "", 1}}}}});
  EXPECT_EQ(groups.ownership("g"), ErrorCode::kNone);
  EXPECT_EQ(groups.committed("g", {"t", 0})->offset, 5);
  EXPECT_FALSE(groups.begin_loading(shard, 6));  // a new epoch, same leader: nothing to reload

  auto join = std::make_shared<PendingReply<JoinOutcome>>(io.get_executor());
  GroupCoordinator::JoinRequest request;
  request.group_id = "g";
  request.client_id = "c";
  request.session_timeout_ms = 10000;
  request.rebalance_timeout_ms = 10000;
  request.protocol_type = "consumer";
  request.protocols = {{"range", ""}};
  groups.join(request, join);  // waits for the rebalance (initial delay)
  groups.unload(shard);
  EXPECT_TRUE(join->ready.is_set());
  EXPECT_EQ(join->outcome.error, ErrorCode::kNotCoordinator);
  EXPECT_EQ(groups.ownership("g"), ErrorCode::kNotCoordinator);
  EXPECT_TRUE(groups.committed_offsets("g").empty());
  EXPECT_EQ(groups.heartbeat("g", 1, "m", std::nullopt), ErrorCode::kNotCoordinator);
}

}  // namespace
}  // namespace sluice::broker
