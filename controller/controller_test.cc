#include "controller/controller.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "storage/state_store.h"

namespace sluice::controller {
namespace {

using protocol::ErrorCode;

class RecordingListener : public MetadataListener {
 public:
  void on_topic_created(const TopicInfo& t) override { events.push_back("created " + t.name); }
  void on_partitions_added(const TopicInfo& t, int32_t old) override {
    events.push_back("added " + t.name + " " + std::to_string(old) + "->" + std::to_string(t.partitions));
  }
  void on_topic_deleted(const TopicInfo& t) override { events.push_back("deleted " + t.name); }
  std::vector<std::string> events;
};

// A listener whose logs cannot be opened (no descriptors, no space).
class FailingListener : public RecordingListener {
 public:
  void on_topic_created(const TopicInfo& t) override {
    RecordingListener::on_topic_created(t);
    throw std::runtime_error("Too many open files");
  }
  void on_partitions_added(const TopicInfo& t, int32_t old) override {
    RecordingListener::on_partitions_added(t, old);
    throw std::runtime_error("Too many open files");
  }
  void on_partitions_removed(const TopicInfo& t) override {
    events.push_back("removed " + t.name + " from " + std::to_string(t.partitions));
  }
};

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-controller-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    store_ = storage::StateStore::open(dir_.string());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<storage::StateStore> store_;
};

TEST_F(ControllerTest, CreatesTopicsWithDefaultsAndPersistsThem) {
  std::string cluster_id;
  protocol::Uuid id;
  {
    Controller c(*store_, {1, 4, 1});
    RecordingListener listener;
    c.add_listener(&listener);
    cluster_id = c.cluster_id();
    EXPECT_EQ(cluster_id.size(), 22u);
    const TopicInfo* created = nullptr;
    ASSERT_TRUE(c.create_topic("orders", -1, -1, {}, {{"retention.ms", "1000"}}, false, &created).ok());
    EXPECT_EQ(created->partitions, 4);
    id = created->id;
    EXPECT_FALSE(id.is_zero());
    EXPECT_EQ(listener.events, std::vector<std::string>{"created orders"});
  }
  Controller again(*store_, {1, 4, 1});
  EXPECT_EQ(again.cluster_id(), cluster_id);
  const TopicInfo* t = again.find_topic("orders");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->id, id);
  EXPECT_EQ(t->configs.at("retention.ms"), "1000");
  EXPECT_EQ(again.find_topic(id), t);
}

TEST_F(ControllerTest, RejectsWhatKafkaRejects) {
  Controller c(*store_, {1, 1, 1});
  EXPECT_EQ(c.create_topic("bad name", 1, 1, {}, {}, false).error, ErrorCode::kInvalidTopicException);
  EXPECT_EQ(c.create_topic("..", 1, 1, {}, {}, false).error, ErrorCode::kInvalidTopicException);
  EXPECT_EQ(c.create_topic(std::string(250, 'a'), 1, 1, {}, {}, false).error, ErrorCode::kInvalidTopicException);
  EXPECT_EQ(c.create_topic("t", 0, 1, {}, {}, false).error, ErrorCode::kInvalidPartitions);
  EXPECT_EQ(c.create_topic("t", 1, 3, {}, {}, false).error, ErrorCode::kInvalidReplicationFactor);
  EXPECT_EQ(c.create_topic("t", 1, 1, {}, {{"no.such.config", "1"}}, false).error, ErrorCode::kInvalidConfig);
  EXPECT_EQ(c.create_topic("t", 1, 1, {}, {{"retention.ms", "soon"}}, false).error, ErrorCode::kInvalidConfig);
  EXPECT_EQ(c.create_topic("t", 1, 1, {{2}}, {}, false).error, ErrorCode::kInvalidRequest);
  EXPECT_EQ(c.create_topic("t", -1, -1, {{2}}, {}, false).error, ErrorCode::kInvalidReplicaAssignment);
  EXPECT_TRUE(c.create_topic("t", 1, 1, {}, {}, true).ok());
  EXPECT_EQ(c.find_topic("t"), nullptr);  // validate_only changed nothing
  ASSERT_TRUE(c.create_topic("a.b", 1, 1, {}, {}, false).ok());
  EXPECT_EQ(c.create_topic("a.b", 1, 1, {}, {}, false).error, ErrorCode::kTopicAlreadyExists);
  EXPECT_EQ(c.create_topic("a_b", 1, 1, {}, {}, false).error, ErrorCode::kInvalidTopicException);
}

TEST_F(ControllerTest, AddsPartitionsAndDeletes) {
  Controller c(*store_, {1, 1, 1});
  RecordingListener listener;
  c.add_listener(&listener);
  ASSERT_TRUE(c.create_topic("t", 2, 1, {}, {}, false).ok());
  EXPECT_EQ(c.create_partitions("t", 1, false).error, ErrorCode::kInvalidPartitions);
  EXPECT_EQ(c.create_partitions("t", 2, false).error, ErrorCode::kInvalidPartitions);
  EXPECT_TRUE(c.create_partitions("t", 5, true).ok());
  EXPECT_EQ(c.find_topic("t")->partitions, 2);
  EXPECT_TRUE(c.create_partitions("t", 5, false).ok());
  EXPECT_EQ(c.find_topic("t")->partitions, 5);
  EXPECT_EQ(c.create_partitions("nope", 5, false).error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_TRUE(c.delete_topic("t").ok());
  EXPECT_EQ(c.delete_topic("t").error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(listener.events, (std::vector<std::string>{"created t", "added t 2->5", "deleted t"}));
  Controller again(*store_, {1, 1, 1});
  EXPECT_TRUE(again.topics().empty());
}

// A change a listener cannot take is undone everywhere, durably: no half-made topic or partition count.
TEST_F(ControllerTest, ACreationAListenerCannotTakeIsUndone) {
  {
    Controller c(*store_, {1, 1, 1});
    RecordingListener before;
    FailingListener failing;
    c.add_listener(&before);
    c.add_listener(&failing);
    OperationResult r = c.create_topic("orders", 3, 1, {}, {}, false, nullptr);
    EXPECT_EQ(r.error, ErrorCode::kKafkaStorageError);
    EXPECT_NE(r.message.find("Too many open files"), std::string::npos);
    EXPECT_EQ(c.find_topic("orders"), nullptr);
    EXPECT_EQ(before.events, (std::vector<std::string>{"created orders", "deleted orders"}));
  }
  {
    Controller reloaded(*store_, {1, 1, 1});
    EXPECT_EQ(reloaded.find_topic("orders"), nullptr);
    ASSERT_TRUE(reloaded.create_topic("orders", 2, 1, {}, {}, false, nullptr).ok());
    FailingListener failing;
    reloaded.add_listener(&failing);
    OperationResult r = reloaded.create_partitions("orders", 5, false);
    EXPECT_EQ(r.error, ErrorCode::kKafkaStorageError);
    EXPECT_EQ(reloaded.find_topic("orders")->partitions, 2);
    EXPECT_EQ(failing.events, (std::vector<std::string>{"added orders 2->5", "removed orders from 2"}));
  }
  Controller again(*store_, {1, 1, 1});
  EXPECT_EQ(again.find_topic("orders")->partitions, 2);
}

}  // namespace
}  // namespace sluice::controller
