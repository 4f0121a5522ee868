// The rebalance protocol driven directly: joins, syncs, heartbeats, leaves,
// session expiry and static members, as clients drive it over the wire.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <thread>

#include "broker/group_coordinator.h"
#include "storage/state_store.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;

class GroupMembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-membership-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    state_ = storage::StateStore::open(dir_.string());
    store_ = std::make_unique<StateStoreOffsetStore>(*state_);
    GroupCoordinator::Options options;
    options.min_session_timeout_ms = 1;  // lets tests expire sessions quickly
    options.initial_rebalance_delay_ms = 0;
    coordinator_ = std::make_unique<GroupCoordinator>(*store_, options, io_.get_executor());
  }
  void TearDown() override {
    coordinator_.reset();
    store_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<PendingReply<JoinOutcome>> join(const std::string& member_id, bool two_step = true,
                                                   std::optional<std::string> instance = std::nullopt,
                                                   int32_t session_ms = 10000) {
    GroupCoordinator::JoinRequest r;
    r.group_id = "g";
    r.member_id = member_id;
    r.group_instance_id = std::move(instance);
    r.client_id = "client";
    r.session_timeout_ms = session_ms;
    r.rebalance_timeout_ms = session_ms;
    r.protocol_type = "consumer";
    r.protocols = {{"range", "meta-" + member_id}};
    r.require_known_member_id = two_step;
    auto reply = std::make_shared<PendingReply<JoinOutcome>>(io_.get_executor());
    coordinator_->join(r, reply);
    return reply;
  }
  // Joins a new dynamic member through both steps; returns its pending reply.
  std::shared_ptr<PendingReply<JoinOutcome>> join_new(std::string* id_out) {
    auto first = join("");
    EXPECT_TRUE(first->ready.is_set());
    EXPECT_EQ(first->outcome.error, ErrorCode::kMemberIdRequired);
    *id_out = first->outcome.member_id;
    return join(*id_out);
  }
  std::shared_ptr<PendingReply<SyncOutcome>> sync(const std::string& member_id, int32_t generation,
                                                   std::vector<std::pair<std::string, std::string>> assignments = {}) {
    GroupCoordinator::SyncRequest r;
    r.group_id = "g";
    r.generation_id = generation;
    r.member_id = member_id;
    r.assignments = std::move(assignments);
    auto reply = std::make_shared<PendingReply<SyncOutcome>>(io_.get_executor());
    coordinator_->sync(r, reply);
    return reply;
  }
  std::string state() { return coordinator_->describe("g")->state; }

  boost::asio::io_context io_;
  std::filesystem::path dir_;
  std::unique_ptr<storage::StateStore> state_;
  std::unique_ptr<StateStoreOffsetStore> store_;
  std::unique_ptr<GroupCoordinator> coordinator_;
};

TEST_F(GroupMembershipTest, FirstMemberJoinsInTwoStepsAndLeads) {
  std::string a;
  auto joined = join_new(&a);
  ASSERT_TRUE(joined->ready.is_set());
  EXPECT_EQ(joined->outcome.error, ErrorCode::kNone);
  EXPECT_EQ(joined->outcome.generation_id, 1);
  EXPECT_EQ(joined->outcome.leader, a);
  EXPECT_EQ(joined->outcome.protocol_name, "range");
  ASSERT_EQ(joined->outcome.members.size(), 1u);
  EXPECT_EQ(joined->outcome.members[0].metadata, "meta-" + a);
  EXPECT_EQ(state(), "CompletingRebalance");
  auto synced = sync(a, 1, {{a, "all-partitions"}});
  ASSERT_TRUE(synced->ready.is_set());
  EXPECT_EQ(synced->outcome.assignment, "all-partitions");
  EXPECT_EQ(state(), "Stable");
  EXPECT_EQ(join("never-handed-out")->outcome.error, ErrorCode::kUnknownMemberId);
}

TEST_F(GroupMembershipTest, SecondMemberTriggersARebalanceThatWaitsForEveryone) {
  std::string a, b;
  join_new(&a);
  sync(a, 1, {{a, "A1"}});
  auto b_join = join_new(&b);
  EXPECT_FALSE(b_join->ready.is_set());  // waits for a to rejoin
  EXPECT_EQ(state(), "PreparingRebalance");
  EXPECT_EQ(coordinator_->heartbeat("g", 1, a, std::nullopt), ErrorCode::kRebalanceInProgress);
  auto a_join = join(a);
  ASSERT_TRUE(a_join->ready.is_set() && b_join->ready.is_set());
  EXPECT_EQ(a_join->outcome.generation_id, 2);
  EXPECT_EQ(a_join->outcome.leader, a);  // the leader stays
  EXPECT_EQ(a_join->outcome.members.size(), 2u);
  EXPECT_TRUE(b_join->outcome.members.empty());  // only the leader gets subscriptions
  auto b_sync = sync(b, 2);
  EXPECT_FALSE(b_sync->ready.is_set());  // waits for the leader's assignment
  EXPECT_EQ(sync(a, 1)->outcome.error, ErrorCode::kIllegalGeneration);
  auto a_sync = sync(a, 2, {{a, "A2"}, {b, "B2"}});
  ASSERT_TRUE(b_sync->ready.is_set());
  EXPECT_EQ(a_sync->outcome.assignment, "A2");
  EXPECT_EQ(b_sync->outcome.assignment, "B2");
  EXPECT_EQ(coordinator_->heartbeat("g", 2, b, std::nullopt), ErrorCode::kNone);
}

TEST_F(GroupMembershipTest, ASilentMemberExpiresAndTheOthersRebalance) {
  std::string a, b;
  join_new(&a);
  sync(a, 1, {{a, "A"}});
  auto b_first = join("", true, std::nullopt, 50);
  b = b_first->outcome.member_id;
  join(b, true, std::nullopt, 50);
  join(a);
  sync(a, 2, {{a, "A"}, {b, "B"}});
  ASSERT_EQ(state(), "Stable");
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_EQ(coordinator_->heartbeat("g", 2, a, std::nullopt), ErrorCode::kNone);  // a keeps its session
  coordinator_->tick();
  EXPECT_EQ(coordinator_->heartbeat("g", 2, b, std::nullopt), ErrorCode::kUnknownMemberId);
  EXPECT_EQ(coordinator_->heartbeat("g", 2, a, std::nullopt), ErrorCode::kRebalanceInProgress);
  auto a_again = join(a);
  ASSERT_TRUE(a_again->ready.is_set());
  EXPECT_EQ(a_again->outcome.generation_id, 3);
  EXPECT_EQ(a_again->outcome.members.size(), 1u);
}

TEST_F(GroupMembershipTest, LeavingHandsOverAtOnceAndTheLastOneEmptiesTheGroup) {
  std::string a, b;
  join_new(&a);
  sync(a, 1, {{a, "A"}});
  auto b_join = join_new(&b);
  join(a);
  sync(a, 2, {{a, "A"}, {b, "B"}});
  auto [error, results] = coordinator_->leave("g", {{b, std::nullopt}, {"stranger", std::nullopt}});
  EXPECT_EQ(error, ErrorCode::kNone);
  EXPECT_EQ(results[0].error, ErrorCode::kNone);
  EXPECT_EQ(results[1].error, ErrorCode::kUnknownMemberId);
  EXPECT_EQ(state(), "PreparingRebalance");
  EXPECT_EQ(coordinator_->delete_group("g"), ErrorCode::kNonEmptyGroup);
  coordinator_->leave("g", {{a, std::nullopt}});
  EXPECT_EQ(state(), "Empty");
  EXPECT_EQ(coordinator_->delete_group("g"), ErrorCode::kNone);
  EXPECT_EQ(coordinator_->delete_group("g"), ErrorCode::kGroupIdNotFound);
}

TEST_F(GroupMembershipTest, StaticLeaderRestartSkipsTheAssignmentAndFencesItsOldId) {
  auto a_join = join("", false, "instance-a");
  const std::string a = a_join->outcome.member_id;
  std::string b;
  auto b_join = join_new(&b);
  join(a, false, "instance-a");
  sync(a, 2, {{a, "A"}, {b, "B"}});
  sync(b, 2);
  ASSERT_EQ(state(), "Stable");
  // The leader restarts as a static member does: a new process, an empty
  // member id, the same instance id. As in Kafka, the group does not
  // rebalance: the leader gets the members but is told to skip the assignment.
  auto restarted = join("", false, "instance-a");
  ASSERT_TRUE(restarted->ready.is_set());
  EXPECT_EQ(restarted->outcome.generation_id, 2);
  EXPECT_TRUE(restarted->outcome.skip_assignment);
  EXPECT_EQ(restarted->outcome.leader, restarted->outcome.member_id);
  EXPECT_EQ(restarted->outcome.members.size(), 2u);
  EXPECT_EQ(state(), "Stable");
  EXPECT_EQ(sync(restarted->outcome.member_id, 2)->outcome.assignment, "A");
  EXPECT_EQ(coordinator_->heartbeat("g", 2, a, std::string("instance-a")), ErrorCode::kFencedInstanceId);
}

TEST_F(GroupMembershipTest, StaticFollowerRestartIsInvisibleToTheGroup) {
  std::string a;
  join_new(&a);
  sync(a, 1, {{a, "A"}});
  auto b_first = join("", false, "instance-b");
  join(a);
  const std::string b = b_first->outcome.member_id;
  sync(a, 2, {{a, "A"}, {b, "B"}});
  ASSERT_EQ(state(), "Stable");
  auto restarted = join("", false, "instance-b");
  ASSERT_TRUE(restarted->ready.is_set());
  EXPECT_EQ(restarted->outcome.error, ErrorCode::kNone);
  EXPECT_EQ(restarted->outcome.generation_id, 2);  // same generation: no rebalance
  EXPECT_NE(restarted->outcome.member_id, b);
  EXPECT_EQ(state(), "Stable");
  auto s = sync(restarted->outcome.member_id, 2);
  EXPECT_EQ(s->outcome.assignment, "B");  // its assignment carried over
  EXPECT_EQ(coordinator_->heartbeat("g", 2, b, std::string("instance-b")), ErrorCode::kFencedInstanceId);
  EXPECT_EQ(coordinator_->heartbeat("g", 2, a, std::nullopt), ErrorCode::kNone);
}

TEST_F(GroupMembershipTest, OffsetCommitsFollowTheGeneration) {
  std::string a;
  join_new(&a);
  EXPECT_EQ(coordinator_->validate_commit({"g", 1, a, std::nullopt}), ErrorCode::kRebalanceInProgress);
  sync(a, 1, {{a, "A"}});
  EXPECT_EQ(coordinator_->validate_commit({"g", 1, a, std::nullopt}), ErrorCode::kNone);
  EXPECT_EQ(coordinator_->validate_commit({"g", 0, a, std::nullopt}), ErrorCode::kIllegalGeneration);
  EXPECT_EQ(coordinator_->validate_commit({"g", 1, "stranger", std::nullopt}), ErrorCode::kUnknownMemberId);
  EXPECT_EQ(coordinator_->validate_commit({"g", -1, "", std::nullopt}), ErrorCode::kRebalanceInProgress);
}

TEST_F(GroupMembershipTest, OffsetsOfALiveGroupDoNotExpire) {
  std::string a;
  join_new(&a);
  sync(a, 1, {{a, "A"}});
  coordinator_->commit("g", {{{"t", 0}, {5, -1, "", 0}}});
  coordinator_->expire_offsets(INT64_MAX / 2);
  EXPECT_TRUE(coordinator_->committed("g", {"t", 0}).has_value());
  coordinator_->leave("g", {{a, std::nullopt}});
  coordinator_->expire_offsets(INT64_MAX / 2);
  EXPECT_FALSE(coordinator_->committed("g", {"t", 0}).has_value());
}

TEST_F(GroupMembershipTest, ANewGroupWaitsTheInitialDelayForMoreMembers) {
  GroupCoordinator::Options options;
  options.initial_rebalance_delay_ms = 150;
  coordinator_ = std::make_unique<GroupCoordinator>(*store_, options, io_.get_executor());
  std::string a, b;
  auto a_join = join_new(&a);
  auto b_join = join_new(&b);
  coordinator_->tick();
  EXPECT_FALSE(a_join->ready.is_set());  // still inside the delay
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  coordinator_->tick();
  ASSERT_TRUE(a_join->ready.is_set() && b_join->ready.is_set());
  EXPECT_EQ(a_join->outcome.generation_id, 1);  // both in the first generation: one rebalance, not two
  EXPECT_EQ(a_join->outcome.members.size() + b_join->outcome.members.size(), 2u);
}

TEST_F(GroupMembershipTest, RejectsBadJoins) {
  GroupCoordinator::JoinRequest r;
  r.group_id = "";
  r.session_timeout_ms = 10000;
  r.protocol_type = "consumer";
  r.protocols = {{"range", ""}};
  auto reply = std::make_shared<PendingReply<JoinOutcome>>(io_.get_executor());
  coordinator_->join(r, reply);
  EXPECT_EQ(reply->outcome.error, ErrorCode::kInvalidGroupId);
  std::string a;
  join_new(&a);
  r.group_id = "g";
  r.protocol_type = "connect";  // not what the group speaks
  reply = std::make_shared<PendingReply<JoinOutcome>>(io_.get_executor());
  coordinator_->join(r, reply);
  EXPECT_EQ(reply->outcome.error, ErrorCode::kInconsistentGroupProtocol);
}

}  // namespace
}  // namespace sluice::broker
