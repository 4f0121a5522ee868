#include "broker/group_coordinator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <boost/asio/io_context.hpp>

#include "storage/state_store.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-groups-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    state_ = storage::StateStore::open(dir_.string());
    store_ = std::make_unique<StateStoreOffsetStore>(*state_);
  }
  void TearDown() override {
    store_.reset();
    state_.reset();
    std::filesystem::remove_all(dir_);
  }
  boost::asio::io_context io_;
  std::filesystem::path dir_;
  std::unique_ptr<storage::StateStore> state_;
  std::unique_ptr<StateStoreOffsetStore> store_;
};

TEST_F(GroupCoordinatorTest, CommitsAreDurableAndPerGroup) {
  {
    GroupCoordinator g(*store_, {}, io_.get_executor());
    g.commit("group/with/slashes", {{{"t", 0}, {10, 2, "meta", 1000}}, {{"t", 1}, {20, -1, "", 1000}}});
    g.commit("other", {{{"t", 0}, {5, -1, std::nullopt, 1000}}});
    g.commit("", {{{"u", 3}, {7, -1, "", 1000}}});  // Kafka allows the empty group id here
  }
  GroupCoordinator again(*store_, {}, io_.get_executor());
  EXPECT_EQ(again.committed("group/with/slashes", {"t", 0}), (CommittedOffset{10, 2, "meta", 1000}));
  EXPECT_EQ(again.committed_offsets("group/with/slashes").size(), 2u);
  EXPECT_EQ(again.committed("other", {"t", 0})->offset, 5);
  EXPECT_FALSE(again.committed("other", {"t", 1}).has_value());
  EXPECT_EQ(again.committed("", {"u", 3})->offset, 7);
  EXPECT_TRUE(again.committed_offsets("nobody").empty());
}

TEST_F(GroupCoordinatorTest, OnlySimpleCommitsWhileGroupsHaveNoMembers) {
  GroupCoordinator g(*store_, {}, io_.get_executor());
  EXPECT_EQ(g.validate_commit({"new", -1, "", std::nullopt}), ErrorCode::kNone);
  EXPECT_EQ(g.validate_commit({"new", 3, "member-1", std::nullopt}), ErrorCode::kIllegalGeneration);
  EXPECT_EQ(g.validate_commit({"new", -1, "member-1", std::nullopt}), ErrorCode::kUnknownMemberId);
  g.commit("known", {{{"t", 0}, {1, -1, "", 0}}});
  EXPECT_EQ(g.validate_commit({"known", 3, "member-1", std::nullopt}), ErrorCode::kUnknownMemberId);
  EXPECT_EQ(g.validate_commit({"known", -1, "", std::string_view("static-1")}), ErrorCode::kUnknownMemberId);
}

TEST_F(GroupCoordinatorTest, ExpiresOldOffsetsAndThoseOfDeletedTopics) {
  {
    GroupCoordinator g(*store_, {4096, 1000}, io_.get_executor());
    g.commit("a", {{{"t", 0}, {1, -1, "", 0}}, {{"t", 1}, {1, -1, "", 5000}}});
    g.commit("b", {{{"gone", 0}, {1, -1, "", 5000}}, {{"t", 0}, {9, -1, "", 5000}}});
    g.expire_offsets(5500);  // (t,0) of "a" is 5.5 s old, the rest 0.5 s
    controller::TopicInfo gone;
    gone.name = "gone";
    g.on_topic_deleted(gone);
  }
  GroupCoordinator again(*store_, {4096, 1000}, io_.get_executor());
  EXPECT_FALSE(again.committed("a", {"t", 0}).has_value());
  EXPECT_TRUE(again.committed("a", {"t", 1}).has_value());
  EXPECT_FALSE(again.committed("b", {"gone", 0}).has_value());
  EXPECT_EQ(again.committed("b", {"t", 0})->offset, 9);
}

}  // namespace
}  // namespace sluice::broker
