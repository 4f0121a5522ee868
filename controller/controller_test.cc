#include "controller/controller.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "controller/metadata_log.h"
#include "controller/metadata_records.h"
#include "storage/state_store.h"

namespace sluice::controller {
namespace {

using protocol::ErrorCode;

class RecordingListener : public MetadataListener {
 public:
  void prepare_topic(const TopicInfo& t) override { events.push_back("prepare " + t.name); }
  void prepare_partitions(const TopicInfo& t, int32_t old) override {
    events.push_back("prepare " + t.name + " " + std::to_string(old) + "->" + std::to_string(t.partition_count()));
  }
  void abandon_topic(const TopicInfo& t) override { events.push_back("abandon " + t.name); }
  void on_topic_created(const TopicInfo& t) override { events.push_back("created " + t.name); }
  void on_partitions_added(const TopicInfo& t, int32_t old) override {
    events.push_back("added " + t.name + " " + std::to_string(old) + "->" + std::to_string(t.partition_count()));
  }
  void on_topic_deleted(const TopicInfo& t) override { events.push_back("deleted " + t.name); }
  std::vector<std::string> events;
};

// A listener whose logs cannot be opened (no descriptors, no space).
class FailingListener : public RecordingListener {
 public:
  void prepare_topic(const TopicInfo& t) override {
    RecordingListener::prepare_topic(t);
    throw std::runtime_error("Too many open files");
  }
  void prepare_partitions(const TopicInfo& t, int32_t old) override {
    RecordingListener::prepare_partitions(t, old);
    throw std::runtime_error("Too many open files");
  }
  void abandon_partitions(const TopicInfo& t) override {
    events.push_back("abandon " + t.name + " from " + std::to_string(t.partition_count()));
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
  // A controller with broker 1 registered and unfenced, as a single node starts.
  std::unique_ptr<Controller> start(Controller::Options options) {
    auto c = std::make_unique<Controller>(*store_, options);
    register_broker(*c, options.node_id);
    return c;
  }
  static int64_t register_broker(Controller& c, int32_t id, std::optional<std::string> rack = std::nullopt) {
    int64_t epoch = -1;
    EXPECT_TRUE(c.register_broker(id, random_uuid(), {{"PLAINTEXT", "127.0.0.1", 9092, 0}}, rack, &epoch).ok());
    EXPECT_TRUE(c.unfence_broker(id, epoch).ok());
    return epoch;
  }
  std::filesystem::path dir_;
  std::unique_ptr<storage::StateStore> store_;
};

TEST_F(ControllerTest, CreatesTopicsWithDefaultsAndPersistsThem) {
  std::string cluster_id;
  protocol::Uuid id;
  {
    auto c_owner = start({1, 4, 1});
    Controller& c = *c_owner;
    RecordingListener listener;
    c.add_listener(&listener);
    cluster_id = c.cluster_id();
    EXPECT_EQ(cluster_id.size(), 22u);
    const TopicInfo* created = nullptr;
    ASSERT_TRUE(c.create_topic("orders", -1, -1, {}, {{"retention.ms", "1000"}}, false, &created).ok());
    EXPECT_EQ(created->partition_count(), 4);
    id = created->id;
    EXPECT_FALSE(id.is_zero());
    EXPECT_EQ(listener.events, (std::vector<std::string>{"prepare orders", "created orders"}));
  }
  auto again_owner = start({1, 4, 1});
  Controller& again = *again_owner;
  EXPECT_EQ(again.cluster_id(), cluster_id);
  const TopicInfo* t = again.find_topic("orders");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->id, id);
  EXPECT_EQ(t->configs.at("retention.ms"), "1000");
  EXPECT_EQ(again.find_topic(id), t);
}

TEST_F(ControllerTest, RejectsWhatKafkaRejects) {
  auto c_owner = start({1, 1, 1});
  Controller& c = *c_owner;
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
  auto c_owner = start({1, 1, 1});
  Controller& c = *c_owner;
  RecordingListener listener;
  c.add_listener(&listener);
  ASSERT_TRUE(c.create_topic("t", 2, 1, {}, {}, false).ok());
  EXPECT_EQ(c.create_partitions("t", 1, false).error, ErrorCode::kInvalidPartitions);
  EXPECT_EQ(c.create_partitions("t", 2, false).error, ErrorCode::kInvalidPartitions);
  EXPECT_TRUE(c.create_partitions("t", 5, true).ok());
  EXPECT_EQ(c.find_topic("t")->partition_count(), 2);
  EXPECT_TRUE(c.create_partitions("t", 5, false).ok());
  EXPECT_EQ(c.find_topic("t")->partition_count(), 5);
  EXPECT_EQ(c.create_partitions("nope", 5, false).error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_TRUE(c.delete_topic("t").ok());
  EXPECT_EQ(c.delete_topic("t").error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(listener.events,
            (std::vector<std::string>{"prepare t", "created t", "prepare t 2->5", "added t 2->5", "deleted t"}));
  auto again_owner = start({1, 1, 1});
  Controller& again = *again_owner;
  EXPECT_TRUE(again.topics().empty());
}

// A change a listener cannot take is undone everywhere, durably: no half-made topic or partition count.
TEST_F(ControllerTest, ACreationAListenerCannotTakeIsUndone) {
  {
    auto c_owner = start({1, 1, 1});
    Controller& c = *c_owner;
    RecordingListener before;
    FailingListener failing;
    c.add_listener(&before);
    c.add_listener(&failing);
    OperationResult r = c.create_topic("orders", 3, 1, {}, {}, false, nullptr);
    EXPECT_EQ(r.error, ErrorCode::kKafkaStorageError);
    EXPECT_NE(r.message.find("Too many open files"), std::string::npos);
    EXPECT_EQ(c.find_topic("orders"), nullptr);
    EXPECT_EQ(before.events, (std::vector<std::string>{"prepare orders", "abandon orders"}));
  }
  {
    auto reloaded_owner = start({1, 1, 1});
    Controller& reloaded = *reloaded_owner;
    EXPECT_EQ(reloaded.find_topic("orders"), nullptr);
    ASSERT_TRUE(reloaded.create_topic("orders", 2, 1, {}, {}, false, nullptr).ok());
    FailingListener failing;
    reloaded.add_listener(&failing);
    OperationResult r = reloaded.create_partitions("orders", 5, false);
    EXPECT_EQ(r.error, ErrorCode::kKafkaStorageError);
    EXPECT_EQ(reloaded.find_topic("orders")->partition_count(), 2);
    EXPECT_EQ(failing.events, (std::vector<std::string>{"prepare orders 2->5", "abandon orders from 2"}));
  }
  auto again_owner = start({1, 1, 1});
  Controller& again = *again_owner;
  EXPECT_EQ(again.find_topic("orders")->partition_count(), 2);
}

// With the log written in the background, an operation returns once its
// records are appended: validation sees them at once (a second create of the
// same name is refused), but listeners and the committed image get them only
// once they are durable, in order.
TEST_F(ControllerTest, ListenersHearOfChangesOnlyOnceTheyAreDurable) {
  auto c = start({1, 1, 1});
  RecordingListener listener;
  c->add_listener(&listener);
  std::vector<std::function<void()>> in_flight;
  std::vector<std::string> reported;
  c->write_in_background(
      [&](std::vector<storage::StateStore::Change> changes, std::function<void(bool)> done) {
        in_flight.push_back([this, changes = std::move(changes), done = std::move(done)] {
          store_->apply(changes);
          done(true);
        });
      },
      [&](const std::string& what) { reported.push_back(what); });
  ASSERT_TRUE(c->create_topic("t", 2, 1, {}, {}, false).ok());
  EXPECT_EQ(c->create_topic("t", 2, 1, {}, {}, false).error, ErrorCode::kTopicAlreadyExists);
  ASSERT_TRUE(c->delete_topic("t").ok());
  EXPECT_EQ(c->committed_image().find_topic("t"), nullptr);
  EXPECT_EQ(listener.events, std::vector<std::string>{"prepare t"});  // its logs are opened before the commit
  EXPECT_EQ(c->log().durable_end_offset() + 4, c->log().end_offset());  // a topic, two partitions, a removal
  ASSERT_EQ(in_flight.size(), 2u);
  in_flight[0]();
  ASSERT_NE(c->committed_image().find_topic("t"), nullptr);
  EXPECT_EQ(listener.events, (std::vector<std::string>{"prepare t", "created t"}));
  in_flight[1]();
  EXPECT_EQ(c->committed_image().find_topic("t"), nullptr);
  EXPECT_EQ(listener.events, (std::vector<std::string>{"prepare t", "created t", "deleted t"}));
  EXPECT_EQ(c->log().durable_end_offset(), c->log().end_offset());
  EXPECT_TRUE(reported.empty());
}

// What the controller holds is exactly what replaying its log gives, across
// snapshots: a reload sees the same topics, partitions, configs and brokers.
TEST_F(ControllerTest, TheImageIsWhatReplayingTheLogGives) {
  std::vector<std::string> before;
  {
    Controller::Options options{1, 3, 1};
    options.snapshot_after_bytes = 400;  // a snapshot every few operations
    auto c = start(options);
    for (int i = 0; i < 12; ++i) {
      const std::string name = "t" + std::to_string(i);
      ASSERT_TRUE(c->create_topic(name, -1, -1, {}, {{"retention.ms", std::to_string(i + 1)}}, false).ok());
      if (i % 3 == 0) {
        ASSERT_TRUE(c->create_partitions(name, 5, false).ok());
      }
      if (i % 4 == 1) {
        ASSERT_TRUE(c->delete_topic(name).ok());
      }
      if (i % 4 == 2) {
        ASSERT_TRUE(c->alter_topic_configs(name, {{"cleanup.policy", "delete"}}, false).ok());
      }
    }
    EXPECT_GT(c->log().snapshot_offset(), 0);  // snapshots were taken ...
    int64_t kept = 0;
    c->log().read(c->log().snapshot_offset(), [&](int64_t, std::string_view) { return ++kept > 0; });
    EXPECT_LT(kept, c->log().end_offset() / 2);  // ... and the records below them dropped
    for (const auto& r : c->image().to_records()) before.push_back(encode_record(r));
    EXPECT_EQ(c->topics().size(), 9u);
    EXPECT_EQ(c->find_topic("t3")->partition_count(), 5);
    EXPECT_EQ(c->find_topic("t2")->configs, (std::map<std::string, std::string>{{"cleanup.policy", "delete"}}));
  }
  Controller reloaded(*store_, {1, 3, 1});
  std::vector<std::string> after;
  for (const auto& r : reloaded.image().to_records()) after.push_back(encode_record(r));
  EXPECT_EQ(after, before);
}

// A data directory from before the metadata log keeps its topics, configs and
// producer ids: migrated once into the log, the old keys gone in the same transaction.
TEST_F(ControllerTest, MigratesTopicsKeptBeforeTheMetadataLog) {
  protocol::Writer w;
  w.write_int8(1);
  protocol::Uuid id = random_uuid();
  w.write_uuid(id);
  w.write_int32(3);
  w.write_int16(1);
  w.write_int32(1);
  w.write_string("retention.ms");
  w.write_string("5000");
  store_->put("topic/legacy", w.buffer());
  store_->put("cluster/next-producer-id", "2000");
  {
    auto c = start({1, 1, 1});
    const TopicInfo* t = c->find_topic("legacy");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->id, id);
    EXPECT_EQ(t->partition_count(), 3);
    EXPECT_EQ(t->partitions[2].leader, 1);
    EXPECT_EQ(t->partitions[2].replicas, std::vector<int32_t>{1});
    EXPECT_EQ(t->configs.at("retention.ms"), "5000");
    EXPECT_EQ(c->allocate_producer_ids(1000), 2000);
    EXPECT_FALSE(store_->get("topic/legacy"));
    EXPECT_FALSE(store_->get("cluster/next-producer-id"));
  }
  auto again = start({1, 1, 1});
  EXPECT_EQ(again->find_topic("legacy")->partition_count(), 3);
  EXPECT_EQ(again->allocate_producer_ids(1000), 3000);
}

// A restarted broker registers under a new epoch; its old epoch no longer
// unfences it (KIP-903: a stale registration is not mistaken for the new one).
TEST_F(ControllerTest, BrokersRegisterUnderNewEpochs) {
  Controller c(*store_, {1, 1, 1});
  EXPECT_TRUE(c.live_brokers().empty());
  int64_t first = -1, second = -1;
  ASSERT_TRUE(c.register_broker(2, random_uuid(), {}, "a", &first).ok());
  EXPECT_TRUE(c.live_brokers().empty());  // fenced until unfenced
  ASSERT_TRUE(c.register_broker(2, random_uuid(), {}, "a", &second).ok());
  EXPECT_GT(second, first);
  EXPECT_EQ(c.unfence_broker(2, first).error, ErrorCode::kStaleBrokerEpoch);
  EXPECT_TRUE(c.live_brokers().empty());
  EXPECT_TRUE(c.unfence_broker(2, second).ok());
  EXPECT_EQ(c.live_brokers(), std::vector<int32_t>{2});
  EXPECT_EQ(*c.image().find_broker(2)->rack, "a");
  Controller reloaded(*store_, {1, 1, 1});
  EXPECT_EQ(reloaded.image().find_broker(2)->epoch, second);
  EXPECT_EQ(reloaded.live_brokers(), std::vector<int32_t>{2});
}

// Placement spreads leaders evenly over the brokers, never puts two replicas
// of a partition on one broker, and puts them on different racks when it can.
TEST_F(ControllerTest, PlacementSpreadsLeadersReplicasAndRacks) {
  Controller c(*store_, {1, 1, 3});
  const std::map<int32_t, std::string> racks{{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}, {5, "c"}, {6, "c"}};
  for (const auto& [id, rack] : racks) register_broker(c, id, rack);
  const TopicInfo* t = nullptr;
  ASSERT_TRUE(c.create_topic("spread", 12, 3, {}, {}, false, &t).ok());
  std::map<int32_t, int> leaders, replicas;
  for (const auto& p : t->partitions) {
    ASSERT_EQ(p.replicas.size(), 3u);
    EXPECT_EQ(p.leader, p.replicas[0]);
    EXPECT_EQ(p.isr, p.replicas);
    ++leaders[p.leader];
    std::set<int32_t> distinct(p.replicas.begin(), p.replicas.end());
    EXPECT_EQ(distinct.size(), 3u);
    std::set<std::string> rack_set;
    for (int32_t r : p.replicas) {
      ++replicas[r];
      rack_set.insert(racks.at(r));
    }
    EXPECT_EQ(rack_set.size(), 3u);
  }
  for (const auto& [id, _] : racks) {
    EXPECT_EQ(leaders[id], 2) << "broker " << id;
    EXPECT_EQ(replicas[id], 6) << "broker " << id;
  }
  // Manual assignments are taken as given.
  ASSERT_TRUE(c.create_topic("manual", -1, -1, {{4, 1}, {2, 6}}, {}, false, &t).ok());
  EXPECT_EQ(t->partitions[1].replicas, (std::vector<int32_t>{2, 6}));
  EXPECT_EQ(t->partitions[1].leader, 2);
  EXPECT_EQ(t->replication_factor(), 2);
}

// Heartbeats keep a broker's session; one not heard from for the session
// timeout is fenced: it leaves the ISRs (but never empties one) and its
// leaderships go to in-sync replicas. Back, it is unfenced only once caught up.
TEST_F(ControllerTest, BrokersMissingHeartbeatsAreFencedAndLoseLeadership) {
  Controller::Options options{1, 1, 3};
  options.session_timeout_ms = 1000;
  Controller c(*store_, options);
  std::map<int32_t, int64_t> epochs;
  for (int32_t id : {1, 2, 3}) {
    ASSERT_TRUE(c.register_broker(id, random_uuid(), {}, std::nullopt, &epochs[id], 0).ok());
    auto reply = c.heartbeat(id, epochs[id], epochs[id] - 1, false, false, 0);
    EXPECT_TRUE(reply.is_fenced);  // not caught up with its own registration yet
    reply = c.heartbeat(id, epochs[id], c.log().end_offset(), false, false, 0);
    EXPECT_TRUE(reply.result.ok());
    EXPECT_FALSE(reply.is_fenced);
  }
  ASSERT_TRUE(c.create_topic("t", -1, -1, {{1, 2, 3}, {2, 3, 1}}, {}, false).ok());
  ASSERT_TRUE(c.create_topic("solo", -1, -1, {{1}}, {}, false).ok());

  for (int64_t now : {400, 800, 1200}) {  // 2 and 3 keep heartbeating, 1 has gone quiet
    c.heartbeat(2, epochs[2], c.log().end_offset(), false, false, now);
    c.heartbeat(3, epochs[3], c.log().end_offset(), false, false, now);
    EXPECT_TRUE(c.fence_expired_brokers(now).empty() || now == 1200);
  }
  EXPECT_EQ(c.live_brokers(), (std::vector<int32_t>{2, 3}));
  const TopicInfo* t = c.find_topic("t");
  EXPECT_EQ(t->partitions[0].leader, 2);  // the next in preference order that is in sync
  EXPECT_EQ(t->partitions[0].leader_epoch, 1);
  EXPECT_EQ(t->partitions[0].isr, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(t->partitions[1].leader, 2);  // unchanged ...
  EXPECT_EQ(t->partitions[1].leader_epoch, 0);
  EXPECT_EQ(t->partitions[1].isr, (std::vector<int32_t>{2, 3}));  // ... but 1 left its ISR
  const TopicInfo* solo = c.find_topic("solo");
  EXPECT_EQ(solo->partitions[0].leader, -1);  // offline ...
  EXPECT_EQ(solo->partitions[0].isr, std::vector<int32_t>{1});  // ... and 1 kept as the last in sync

  // A heartbeat with the old epoch after a restart is stale; the new registration is fenced until caught up.
  int64_t again = -1;
  ASSERT_TRUE(c.register_broker(1, random_uuid(), {}, std::nullopt, &again, 1300).ok());
  EXPECT_EQ(c.heartbeat(1, epochs[1], c.log().end_offset(), false, false, 1300).result.error, ErrorCode::kStaleBrokerEpoch);
  EXPECT_EQ(c.heartbeat(9, 0, 0, false, false, 1300).result.error, ErrorCode::kBrokerIdNotRegistered);
  auto reply = c.heartbeat(1, again, c.log().end_offset(), false, false, 1300);
  EXPECT_FALSE(reply.is_fenced);
  EXPECT_EQ(c.find_topic("solo")->partitions[0].leader, 1);  // its partition has its leader back
  EXPECT_EQ(c.find_topic("solo")->partitions[0].leader_epoch, 2);  // no leader was epoch 1
}

// While a broker's session is alive, another incarnation cannot take its id;
// the same incarnation registering again gets its epoch back.
TEST_F(ControllerTest, ALiveBrokersIdCannotBeTakenByAnotherIncarnation) {
  Controller::Options options{1, 1, 1};
  options.session_timeout_ms = 1000;
  Controller c(*store_, options);
  const protocol::Uuid incarnation = random_uuid();
  int64_t epoch = -1, retry = -1, other = -1;
  ASSERT_TRUE(c.register_broker(1, incarnation, {}, std::nullopt, &epoch, 0).ok());
  ASSERT_FALSE(c.heartbeat(1, epoch, c.log().end_offset(), false, false, 0).is_fenced);
  ASSERT_TRUE(c.register_broker(1, incarnation, {}, std::nullopt, &retry, 100).ok());
  EXPECT_EQ(retry, epoch);
  EXPECT_EQ(c.register_broker(1, random_uuid(), {}, std::nullopt, &other, 500).error,
            ErrorCode::kDuplicateBrokerRegistration);
  EXPECT_TRUE(c.register_broker(1, random_uuid(), {}, std::nullopt, &other, 1200).ok());  // its session expired
  EXPECT_GT(other, epoch);
}

// Controlled shutdown: leaderships move away before the broker is let go.
TEST_F(ControllerTest, ControlledShutdownMovesLeadershipAway) {
  Controller c(*store_, {1, 1, 2});
  std::map<int32_t, int64_t> epochs;
  for (int32_t id : {1, 2}) {
    ASSERT_TRUE(c.register_broker(id, random_uuid(), {}, std::nullopt, &epochs[id], 0).ok());
    c.heartbeat(id, epochs[id], c.log().end_offset(), false, false, 0);
  }
  ASSERT_TRUE(c.create_topic("t", -1, -1, {{1, 2}}, {}, false).ok());
  auto reply = c.heartbeat(1, epochs[1], c.log().end_offset(), false, true, 10);
  EXPECT_TRUE(reply.should_shut_down);
  EXPECT_TRUE(reply.is_fenced);
  EXPECT_EQ(c.find_topic("t")->partitions[0].leader, 2);
  EXPECT_TRUE(c.image().find_broker(1)->in_controlled_shutdown);
}


// AlterPartition. Four live brokers; "t" has replicas {1, 2, 3}, led by 1.
class AlterPartitionTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    open();
    for (int32_t id : {1, 2, 3, 4}) epochs_[id] = register_broker(*c_, id);
    ASSERT_TRUE(c_->create_topic("t", -1, -1, {{1, 2, 3}, {1, 2, 3}, {1, 2, 3}}, {}, false).ok());
    topic_ = c_->find_topic("t")->id;
  }
  void TearDown() override {
    c_.reset();
    ControllerTest::TearDown();
  }
  void open() { c_ = std::make_unique<Controller>(*store_, Controller::Options{1, 1, 3}); }
  // Writes records no operation makes yet straight to the log, and reloads.
  void inject(const std::vector<MetadataRecord>& records) {
    c_.reset();
    std::vector<std::string> encoded;
    for (const auto& r : records) encoded.push_back(encode_record(r));
    MetadataLog(*store_).append(encoded);
    open();
  }
  const PartitionState& part(int32_t partition = 0) const { return c_->find_topic("t")->partitions.at(partition); }
  // What t-`partition`'s leader sends for `isr`, under the current epochs.
  Controller::PartitionAlteration alter(const std::vector<int32_t>& isr, int32_t partition = 0) {
    const PartitionState& s = part(partition);
    Controller::PartitionAlteration a{topic_, partition, s.leader_epoch, s.partition_epoch, {}, s.leader_recovery_state};
    for (int32_t id : isr) a.new_isr.push_back({id, epochs_.count(id) ? epochs_[id] : -1});
    return a;
  }
  Controller::AlteredPartition send(int32_t sender, const Controller::PartitionAlteration& a) {
    auto reply = c_->alter_partition(sender, epochs_[sender], {a});
    EXPECT_TRUE(reply.result.ok()) << reply.result.message;
    EXPECT_EQ(reply.partitions.size(), 1u);
    if (reply.partitions.empty()) {
      Controller::AlteredPartition none;
      none.error = ErrorCode::kUnknownServerError;
      return none;
    }
    return reply.partitions[0];
  }
  std::vector<std::string> image_records() const {
    std::vector<std::string> out;
    for (const auto& r : c_->image().to_records()) out.push_back(encode_record(r));
    return out;
  }
  // The error `a` gets, checking that a refusal changed nothing and says why.
  ErrorCode error_of(int32_t sender, const Controller::PartitionAlteration& a) {
    const std::vector<std::string> before = image_records();
    const int64_t end = c_->log().end_offset();
    auto result = send(sender, a);
    if (result.error != ErrorCode::kNone) {
      EXPECT_EQ(c_->log().end_offset(), end);
      EXPECT_EQ(image_records(), before);
      EXPECT_FALSE(result.message.empty());
    }
    return result.error;
  }
  std::unique_ptr<Controller> c_;
  std::map<int32_t, int64_t> epochs_;
  protocol::Uuid topic_;
};

class ChangeCounter : public RecordingListener {
 public:
  void on_partition_changed(const TopicInfo& t, int32_t index) override {
    events.push_back("changed " + t.name + "-" + std::to_string(index));
  }
  void on_committed(int64_t) override { ++commits; }
  int commits = 0;
};

// Shrink, then expand: each a new partition epoch under the same leader and leader epoch.
TEST_F(AlterPartitionTest, ShrinksAndExpandsTheIsr) {
  ChangeCounter listener;
  c_->add_listener(&listener);
  const int64_t end = c_->log().end_offset();
  auto shrunk = send(1, alter({1, 2}));
  ASSERT_EQ(shrunk.error, ErrorCode::kNone) << shrunk.message;
  EXPECT_EQ(shrunk.leader, 1);
  EXPECT_EQ(shrunk.leader_epoch, 0);
  EXPECT_EQ(shrunk.partition_epoch, 1);
  EXPECT_EQ(shrunk.isr, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(shrunk.leader_recovery_state, 0);
  EXPECT_EQ(part().isr, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(part().leader, 1);
  EXPECT_EQ(part().leader_epoch, 0);
  EXPECT_EQ(part().partition_epoch, 1);
  EXPECT_EQ(c_->log().end_offset(), end + 1);  // one PartitionChangeRecord
  bool found = false;
  c_->log().read(end, [&](int64_t, std::string_view bytes) {
    const auto record = std::get<protocol::PartitionChangeRecord>(decode_record(bytes));
    EXPECT_EQ(record.leader, -2);  // no leader named: the leader epoch stays
    EXPECT_EQ(record.isr, (std::vector<int32_t>{1, 2}));
    EXPECT_EQ(record.leader_recovery_state, -1);
    found = true;
    return true;
  });
  EXPECT_TRUE(found);

  auto expanded = send(1, alter({1, 2, 3}));
  ASSERT_EQ(expanded.error, ErrorCode::kNone) << expanded.message;
  EXPECT_EQ(expanded.isr, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(expanded.leader_epoch, 0);
  EXPECT_EQ(expanded.partition_epoch, 2);
  EXPECT_EQ(part().isr, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(part().partition_epoch, 2);
  EXPECT_EQ(listener.events, (std::vector<std::string>{"changed t-0", "changed t-0"}));
  EXPECT_EQ(listener.commits, 2);
}

// The ISR the partition already has: success with the current state, nothing committed.
TEST_F(AlterPartitionTest, TheSameIsrCommitsNothing) {
  const int64_t end = c_->log().end_offset();
  auto same = send(1, alter({1, 2, 3}));
  EXPECT_EQ(same.error, ErrorCode::kNone);
  EXPECT_EQ(same.isr, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(same.leader, 1);
  EXPECT_EQ(same.partition_epoch, 0);
  EXPECT_EQ(c_->log().end_offset(), end);
  // The same members in another order are another ISR to Kafka (it compares lists).
  EXPECT_EQ(send(1, alter({3, 2, 1})).partition_epoch, 1);
}

// Shrinking below min.insync.replicas is allowed: only acks=all produce is refused then.
TEST_F(AlterPartitionTest, ShrinksBelowMinInsyncReplicas) {
  ASSERT_TRUE(c_->alter_topic_configs("t", {{"min.insync.replicas", "2"}}, false).ok());
  auto alone = send(1, alter({1}));
  EXPECT_EQ(alone.error, ErrorCode::kNone);
  EXPECT_EQ(part().isr, std::vector<int32_t>{1});
}

// The sender's own registration is checked first, for the whole request.
TEST_F(AlterPartitionTest, AStaleSenderEpochRefusesTheWholeRequest) {
  const int64_t end = c_->log().end_offset();
  auto reply = c_->alter_partition(1, epochs_[1] - 1, {alter({1, 2})});
  EXPECT_EQ(reply.result.error, ErrorCode::kStaleBrokerEpoch);
  EXPECT_TRUE(reply.partitions.empty());
  reply = c_->alter_partition(9, 0, {alter({1, 2})});  // not registered at all
  EXPECT_EQ(reply.result.error, ErrorCode::kStaleBrokerEpoch);
  EXPECT_TRUE(reply.partitions.empty());
  EXPECT_EQ(c_->log().end_offset(), end);
  EXPECT_EQ(part().isr, (std::vector<int32_t>{1, 2, 3}));
}

TEST_F(AlterPartitionTest, UnknownTopicsAndPartitions) {
  auto a = alter({1, 2});
  a.topic_id = random_uuid();
  EXPECT_EQ(error_of(1, a), ErrorCode::kUnknownTopicId);
  a.topic_id = protocol::Uuid{};
  EXPECT_EQ(error_of(1, a), ErrorCode::kUnknownTopicId);
  a = alter({1, 2});
  a.partition = 3;
  EXPECT_EQ(error_of(1, a), ErrorCode::kUnknownTopicOrPartition);
  a.partition = -1;
  EXPECT_EQ(error_of(1, a), ErrorCode::kUnknownTopicOrPartition);
}

// A leader that knows newer epochs than this controller has heard from a newer controller.
TEST_F(AlterPartitionTest, EpochsAheadOfTheControllerAnswerNotController) {
  auto a = alter({1, 2});
  ++a.leader_epoch;
  EXPECT_EQ(error_of(1, a), ErrorCode::kNotController);
  a = alter({1, 2});
  ++a.partition_epoch;
  EXPECT_EQ(error_of(1, a), ErrorCode::kNotController);
}

// Broker 1 fenced: 2 leads in leader epoch 1. What 1 sends under epoch 0 is fenced.
TEST_F(AlterPartitionTest, AnOlderLeaderEpochIsFenced) {
  ASSERT_TRUE(c_->heartbeat(1, epochs_[1], c_->log().end_offset(), true, false, 0).result.ok());
  ASSERT_EQ(part().leader, 2);
  ASSERT_EQ(part().leader_epoch, 1);
  auto a = alter({2, 3});
  a.leader_epoch = 0;
  EXPECT_EQ(error_of(2, a), ErrorCode::kFencedLeaderEpoch);  // the leader itself, behind
  EXPECT_EQ(error_of(1, a), ErrorCode::kFencedLeaderEpoch);  // the old leader: the epoch is checked first
  a.partition_epoch = part().partition_epoch + 1;
  EXPECT_EQ(error_of(2, a), ErrorCode::kNotController);  // a newer partition epoch, before the older leader epoch
  EXPECT_EQ(send(2, alter({2})).error, ErrorCode::kNone);
}

TEST_F(AlterPartitionTest, OnlyTheLeaderMayAlterTheIsr) {
  EXPECT_EQ(error_of(2, alter({1, 2})), ErrorCode::kInvalidRequest);
  EXPECT_EQ(part().isr, (std::vector<int32_t>{1, 2, 3}));
}

TEST_F(AlterPartitionTest, AnOlderPartitionEpochIsAnInvalidUpdateVersion) {
  auto stale = alter({1, 2});
  ASSERT_EQ(send(1, alter({1, 3})).error, ErrorCode::kNone);  // partition epoch 1 now
  EXPECT_EQ(error_of(1, stale), ErrorCode::kInvalidUpdateVersion);
  EXPECT_EQ(part().isr, (std::vector<int32_t>{1, 3}));
}

TEST_F(AlterPartitionTest, TheIsrMustBeReplicasAndHoldTheLeader) {
  EXPECT_EQ(error_of(1, alter({1, 2, 4})), ErrorCode::kInvalidRequest);  // 4 is live, but no replica
  EXPECT_EQ(error_of(1, alter({1, 2, 2})), ErrorCode::kInvalidRequest);  // a duplicate
  auto negative = alter({1});
  negative.new_isr.push_back({-1, -1});
  EXPECT_EQ(error_of(1, negative), ErrorCode::kInvalidRequest);
  EXPECT_EQ(error_of(1, alter({2, 3})), ErrorCode::kInvalidRequest);  // without the leader
  EXPECT_EQ(error_of(1, alter({})), ErrorCode::kInvalidRequest);
  EXPECT_EQ(part().isr, (std::vector<int32_t>{1, 2, 3}));
}

// RECOVERING (after an unclean election) allows the leader alone in the ISR,
// and only turns into RECOVERED; RECOVERED never turns back.
TEST_F(AlterPartitionTest, LeaderRecoveryStateRules) {
  auto recovering = alter({1});
  recovering.leader_recovery_state = 1;
  EXPECT_EQ(error_of(1, recovering), ErrorCode::kInvalidRequest);  // RECOVERED -> RECOVERING
  auto unknown = alter({1, 2});
  unknown.leader_recovery_state = 2;
  EXPECT_EQ(error_of(1, unknown), ErrorCode::kInvalidRequest);

  // As an unclean election leaves it (no operation makes one yet).
  protocol::PartitionChangeRecord unclean;
  unclean.topic_id = topic_;
  unclean.partition_id = 0;
  unclean.isr = std::vector<int32_t>{1};
  unclean.leader = 1;
  unclean.leader_recovery_state = 1;
  inject({unclean});
  ASSERT_EQ(part().leader_recovery_state, 1);
  ASSERT_EQ(part().leader_epoch, 1);
  const int32_t epoch = part().partition_epoch;

  auto grow = alter({1, 2});  // still recovering: no one else may join
  EXPECT_EQ(grow.leader_recovery_state, 1);
  EXPECT_EQ(error_of(1, grow), ErrorCode::kInvalidRequest);
  auto same = send(1, alter({1}));  // recovering, alone: nothing to change
  EXPECT_EQ(same.error, ErrorCode::kNone);
  EXPECT_EQ(same.leader_recovery_state, 1);
  EXPECT_EQ(part().partition_epoch, epoch);

  auto recovered = alter({1});
  recovered.leader_recovery_state = 0;
  auto done = send(1, recovered);
  ASSERT_EQ(done.error, ErrorCode::kNone) << done.message;
  EXPECT_EQ(done.leader_recovery_state, 0);
  EXPECT_EQ(done.partition_epoch, epoch + 1);
  EXPECT_EQ(done.leader_epoch, 1);
  EXPECT_EQ(part().leader_recovery_state, 0);
  EXPECT_EQ(send(1, alter({1, 2})).error, ErrorCode::kNone);  // now others may join
}

// KIP-903: members must be registered, live, not shutting down, and the
// registration the leader saw (the epoch it sent), unless it sent -1.
TEST_F(AlterPartitionTest, IneligibleReplicasDoNotJoinTheIsr) {
  ASSERT_EQ(send(1, alter({1, 2})).error, ErrorCode::kNone);

  // Fenced.
  ASSERT_TRUE(c_->heartbeat(3, epochs_[3], c_->log().end_offset(), true, false, 0).result.ok());
  EXPECT_EQ(error_of(1, alter({1, 2, 3})), ErrorCode::kIneligibleReplica);
  ASSERT_FALSE(c_->heartbeat(3, epochs_[3], c_->log().end_offset(), false, false, 0).is_fenced);
  EXPECT_EQ(send(1, alter({1, 2, 3})).error, ErrorCode::kNone);
  ASSERT_EQ(send(1, alter({1, 2})).error, ErrorCode::kNone);

  // Another registration than the one the leader saw: 3 restarted (maybe on
  // an empty disk) since; the leader's delayed request must not add it.
  auto delayed = alter({1, 2, 3});
  ASSERT_TRUE(c_->register_broker(3, random_uuid(), {}, std::nullopt, &epochs_[3], 100'000).ok());
  ASSERT_TRUE(c_->unfence_broker(3, epochs_[3]).ok());
  EXPECT_EQ(error_of(1, delayed), ErrorCode::kIneligibleReplica);
  auto unchecked = alter({1, 2, 3});
  unchecked.new_isr[2].broker_epoch = -1;  // as a v2 request: no epoch to check
  EXPECT_EQ(send(1, unchecked).error, ErrorCode::kNone);
  ASSERT_EQ(send(1, alter({1, 2})).error, ErrorCode::kNone);

  // In controlled shutdown, not fenced yet.
  protocol::BrokerRegistrationChangeRecord shutting_down;
  shutting_down.broker_id = 3;
  shutting_down.broker_epoch = epochs_[3];
  shutting_down.in_controlled_shutdown = 1;
  inject({shutting_down});
  ASSERT_FALSE(c_->image().find_broker(3)->fenced);
  EXPECT_EQ(error_of(1, alter({1, 2, 3})), ErrorCode::kIneligibleReplica);

  // No longer registered.
  inject({protocol::UnregisterBrokerRecord{3, epochs_[3]}});
  ASSERT_EQ(c_->image().find_broker(3), nullptr);
  EXPECT_EQ(error_of(1, alter({1, 2, 3})), ErrorCode::kIneligibleReplica);
  EXPECT_EQ(part().isr, (std::vector<int32_t>{1, 2}));
}

// Where several rules are broken, the first in Kafka's order answers.
TEST_F(AlterPartitionTest, ChecksInKafkasOrder) {
  ASSERT_EQ(send(1, alter({1, 2})).error, ErrorCode::kNone);  // partition epoch 1; 3 out
  ASSERT_TRUE(c_->heartbeat(3, epochs_[3], c_->log().end_offset(), true, false, 0).result.ok());  // 3 fenced
  auto a = alter({1, 2});
  ++a.leader_epoch;
  EXPECT_EQ(error_of(2, a), ErrorCode::kNotController);  // before the leader check
  a = alter({2});
  a.partition_epoch = 0;
  EXPECT_EQ(error_of(2, a), ErrorCode::kInvalidRequest);  // not the leader, before the partition epoch
  a = alter({2, 4});
  a.partition_epoch = 0;
  EXPECT_EQ(error_of(1, a), ErrorCode::kInvalidUpdateVersion);  // before the ISR
  EXPECT_EQ(error_of(1, alter({1, 3, 4})), ErrorCode::kInvalidRequest);  // not a replica, before eligibility
  auto r = alter({1, 3});
  r.leader_recovery_state = 1;
  EXPECT_EQ(error_of(1, r), ErrorCode::kInvalidRequest);  // recovery state, before eligibility
  EXPECT_EQ(error_of(1, alter({1, 3})), ErrorCode::kIneligibleReplica);
}

// Each partition is validated on its own; those that pass go in one commit.
TEST_F(AlterPartitionTest, PartitionsAreValidatedOneByOneAndCommittedTogether) {
  ChangeCounter listener;
  c_->add_listener(&listener);
  auto unknown = alter({1, 2});
  unknown.topic_id = random_uuid();
  auto reply = c_->alter_partition(1, epochs_[1], {alter({1, 2}, 0), alter({2, 3}, 1), unknown, alter({1, 3}, 2),
                                                   alter({1, 2, 3}, 1)});
  ASSERT_TRUE(reply.result.ok());
  ASSERT_EQ(reply.partitions.size(), 5u);
  EXPECT_EQ(reply.partitions[0].error, ErrorCode::kNone);
  EXPECT_EQ(reply.partitions[1].error, ErrorCode::kInvalidRequest);
  EXPECT_EQ(reply.partitions[2].error, ErrorCode::kUnknownTopicId);
  EXPECT_EQ(reply.partitions[3].error, ErrorCode::kNone);
  EXPECT_EQ(reply.partitions[4].error, ErrorCode::kNone);  // a no-op
  EXPECT_EQ(reply.partitions[3].isr, (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(reply.partitions[3].partition_epoch, 1);
  EXPECT_EQ(part(0).isr, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(part(1).isr, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(part(1).partition_epoch, 0);
  EXPECT_EQ(part(2).isr, (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(listener.commits, 1);
  EXPECT_EQ(listener.events, (std::vector<std::string>{"changed t-0", "changed t-2"}));
}

// A partition named twice: the second is validated against what the first did.
TEST_F(AlterPartitionTest, APartitionNamedTwiceSeesTheFirstChange) {
  auto first = alter({1, 2});
  auto again = alter({1});  // the same, stale, partition epoch
  auto next = alter({1});
  next.partition_epoch = 1;  // the epoch the first change gives
  auto reply = c_->alter_partition(1, epochs_[1], {first, again, next});
  ASSERT_EQ(reply.partitions.size(), 3u);
  EXPECT_EQ(reply.partitions[0].error, ErrorCode::kNone);
  EXPECT_EQ(reply.partitions[0].partition_epoch, 1);
  EXPECT_EQ(reply.partitions[1].error, ErrorCode::kInvalidUpdateVersion);
  EXPECT_EQ(reply.partitions[2].error, ErrorCode::kNone);
  EXPECT_EQ(reply.partitions[2].partition_epoch, 2);
  EXPECT_EQ(part().isr, std::vector<int32_t>{1});
  EXPECT_EQ(part().partition_epoch, 2);
}

TEST_F(AlterPartitionTest, AnAlteredIsrSurvivesARestart) {
  ASSERT_EQ(send(1, alter({1, 3})).error, ErrorCode::kNone);
  ASSERT_EQ(send(1, alter({1})).error, ErrorCode::kNone);
  c_.reset();
  open();
  EXPECT_EQ(part().isr, std::vector<int32_t>{1});
  EXPECT_EQ(part().leader, 1);
  EXPECT_EQ(part().leader_epoch, 0);
  EXPECT_EQ(part().partition_epoch, 2);
  EXPECT_EQ(part(1).isr, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(send(1, alter({1, 2})).partition_epoch, 3);  // and it goes on from there
}

// Unclean leader election, only where allowed: the last in-sync replica gone,
// a live replica out of sync may lead alone (marked recovering).
TEST_F(ControllerTest, UncleanElectionOnlyWhereTheTopicAllowsIt) {
  Controller::Options options{1, 1, 2};
  options.session_timeout_ms = 1000;
  Controller c(*store_, options);
  std::map<int32_t, int64_t> epochs;
  for (int32_t id : {1, 2}) {
    ASSERT_TRUE(c.register_broker(id, random_uuid(), {}, std::nullopt, &epochs[id], 0).ok());
    c.heartbeat(id, epochs[id], c.log().end_offset(), false, false, 0);
  }
  ASSERT_TRUE(c.create_topic("clean", -1, -1, {{1, 2}}, {}, false).ok());
  ASSERT_TRUE(c.create_topic("unclean", -1, -1, {{1, 2}}, {{"unclean.leader.election.enable", "true"}}, false).ok());
  // Broker 2 falls behind: leaves both ISRs (as AlterPartition would do), then broker 1 dies.
  for (const char* name : {"clean", "unclean"}) {
    const TopicInfo* t = c.find_topic(name);
    Controller::PartitionAlteration a{t->id, 0, t->partitions[0].leader_epoch, t->partitions[0].partition_epoch,
                                      {{1, epochs[1]}}, 0};
    ASSERT_EQ(c.alter_partition(1, epochs[1], {a}).partitions[0].error, ErrorCode::kNone);
  }
  c.heartbeat(2, epochs[2], c.log().end_offset(), false, false, 900);
  c.fence_expired_brokers(1500);  // broker 1 is silent
  EXPECT_EQ(c.find_topic("clean")->partitions[0].leader, -1);  // waits for its in-sync replica
  EXPECT_EQ(c.find_topic("clean")->partitions[0].isr, std::vector<int32_t>{1});
  const PartitionState& unclean = c.find_topic("unclean")->partitions[0];
  EXPECT_EQ(unclean.leader, 2);
  EXPECT_EQ(unclean.isr, std::vector<int32_t>{2});
  EXPECT_EQ(unclean.leader_recovery_state, 1);
}

// ElectLeaders: Kafka's answers for each case, and one commit for all.
class ElectLeadersTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    Controller::Options options{1, 1, 3};
    options.session_timeout_ms = 1000;
    c_ = std::make_unique<Controller>(*store_, options);
    for (int32_t id : {1, 2, 3}) {
      ASSERT_TRUE(c_->register_broker(id, random_uuid(), {}, std::nullopt, &epochs_[id], 0).ok());
      c_->heartbeat(id, epochs_[id], c_->log().end_offset(), false, false, 0);
    }
    // Preferred leaders 1, 2, 3 for partitions 0, 1, 2.
    ASSERT_TRUE(c_->create_topic("t", -1, -1, {{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}, {}, false).ok());
  }
  // Broker `id` misses its session (the others heartbeat at `now`).
  void fence(int32_t id, int64_t now) {
    for (auto [b, e] : epochs_)
      if (b != id) c_->heartbeat(b, e, c_->log().end_offset(), false, false, now - 100);
    c_->fence_expired_brokers(now);
  }
  // Broker `id` comes back (same incarnation, caught up).
  void unfence(int32_t id, int64_t now) { c_->heartbeat(id, epochs_[id], c_->log().end_offset(), false, false, now); }
  const PartitionState& part(int32_t p) { return c_->find_topic("t")->partitions[p]; }
  static ErrorCode error_of(const std::vector<Controller::TopicElectionResults>& r, size_t topic, size_t p) {
    return r.at(topic).partitions.at(p).result.error;
  }
  std::unique_ptr<Controller> c_;
  std::map<int32_t, int64_t> epochs_;
};

TEST_F(ElectLeadersTest, PreferredElectionGivesLeadershipBack) {
  fence(1, 1500);
  EXPECT_EQ(part(0).leader, 2);
  unfence(1, 1600);  // back, and (as AlterPartition would have it) in sync again
  const TopicInfo* t = c_->find_topic("t");
  Controller::PartitionAlteration grow{t->id, 0, part(0).leader_epoch, part(0).partition_epoch,
                                       {{2, epochs_[2]}, {3, epochs_[3]}, {1, epochs_[1]}}, 0};
  ASSERT_EQ(c_->alter_partition(2, epochs_[2], {grow}).partitions[0].error, ErrorCode::kNone);
  const int32_t epoch_before = part(0).leader_epoch;
  const int64_t end_before = c_->log().end_offset();
  // Partition 0 named twice: elected once (one record, one new epoch), answered twice.
  auto r = c_->elect_leaders(Controller::ElectionType::kPreferred,
                             Controller::ElectionTargets{{"t", {0, 1, 7, 0}}, {"nope", {0}}});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(error_of(r, 0, 3), ErrorCode::kNone);
  EXPECT_EQ(error_of(r, 0, 0), ErrorCode::kNone);
  EXPECT_EQ(error_of(r, 0, 1), ErrorCode::kElectionNotNeeded);  // already led by its preferred replica
  EXPECT_EQ(error_of(r, 0, 2), ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(error_of(r, 1, 0), ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(part(0).leader, 1);
  EXPECT_EQ(part(0).leader_epoch, epoch_before + 1);
  EXPECT_EQ(c_->log().end_offset(), end_before + 1);  // one record
}

TEST_F(ElectLeadersTest, APreferredReplicaOutOfTheIsrIsNotAvailable) {
  fence(1, 1500);
  unfence(1, 1600);  // live, but not in partition 0's ISR yet
  EXPECT_EQ(part(0).leader, 2);
  auto r = c_->elect_leaders(Controller::ElectionType::kPreferred, Controller::ElectionTargets{{"t", {0}}});
  EXPECT_EQ(error_of(r, 0, 0), ErrorCode::kPreferredLeaderNotAvailable);
  EXPECT_EQ(part(0).leader, 2);
}

TEST_F(ElectLeadersTest, AllPartitionsReportsOnlyTheElectionsNeeded) {
  fence(3, 1500);
  unfence(3, 1600);
  auto r = c_->elect_leaders(Controller::ElectionType::kPreferred, std::nullopt);
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].partitions.size(), 1u);  // partitions 0 and 1 have their preferred leader
  EXPECT_EQ(r[0].partitions[0].partition, 2);
  EXPECT_EQ(r[0].partitions[0].result.error, ErrorCode::kPreferredLeaderNotAvailable);  // 3 is not in its ISR
}

TEST_F(ElectLeadersTest, UncleanElectionOnlyWithoutALeader) {
  auto led = c_->elect_leaders(Controller::ElectionType::kUnclean, Controller::ElectionTargets{{"t", {0}}});
  EXPECT_EQ(error_of(led, 0, 0), ErrorCode::kElectionNotNeeded);
  // Shrink partition 0's ISR to broker 1, then lose broker 1: no leader (unclean is off for the topic).
  const TopicInfo* t = c_->find_topic("t");
  Controller::PartitionAlteration shrink{t->id, 0, part(0).leader_epoch, part(0).partition_epoch, {{1, epochs_[1]}}, 0};
  ASSERT_EQ(c_->alter_partition(1, epochs_[1], {shrink}).partitions[0].error, ErrorCode::kNone);
  fence(1, 1500);
  ASSERT_EQ(part(0).leader, -1);
  // A preferred election cannot help: broker 1 is the only in-sync replica.
  auto preferred = c_->elect_leaders(Controller::ElectionType::kPreferred, Controller::ElectionTargets{{"t", {0}}});
  EXPECT_EQ(error_of(preferred, 0, 0), ErrorCode::kPreferredLeaderNotAvailable);
  // Unclean: the first live replica leads alone, recovering.
  auto r = c_->elect_leaders(Controller::ElectionType::kUnclean, Controller::ElectionTargets{{"t", {0}}});
  EXPECT_EQ(error_of(r, 0, 0), ErrorCode::kNone);
  EXPECT_EQ(part(0).leader, 2);
  EXPECT_EQ(part(0).isr, std::vector<int32_t>{2});
  EXPECT_EQ(part(0).leader_recovery_state, 1);
}

TEST_F(ElectLeadersTest, UncleanElectionWithNoLiveReplica) {
  const TopicInfo* t = c_->find_topic("t");
  Controller::PartitionAlteration shrink{t->id, 0, part(0).leader_epoch, part(0).partition_epoch, {{1, epochs_[1]}}, 0};
  ASSERT_EQ(c_->alter_partition(1, epochs_[1], {shrink}).partitions[0].error, ErrorCode::kNone);
  // Everyone silent.
  c_->fence_expired_brokers(5000);
  auto r = c_->elect_leaders(Controller::ElectionType::kUnclean, Controller::ElectionTargets{{"t", {0}}});
  EXPECT_EQ(error_of(r, 0, 0), ErrorCode::kEligibleLeadersNotAvailable);
}

TEST_F(ElectLeadersTest, RebalanceGivesPartitionsBackPastTheImbalanceThreshold) {
  fence(1, 1500);
  unfence(1, 1600);
  // Broker 1 prefers partition 0 only and leads none of it: 100% imbalanced.
  // Not in the ISR yet: nothing can move.
  EXPECT_EQ(c_->rebalance_leaders(10), 0);
  const TopicInfo* t = c_->find_topic("t");
  for (int32_t p : {0, 2}) {  // broker 1 back in both ISRs it left
    Controller::PartitionAlteration grow{t->id, p, part(p).leader_epoch, part(p).partition_epoch,
                                         {{1, epochs_[1]}, {2, epochs_[2]}, {3, epochs_[3]}}, 0};
    const int32_t leader = part(p).leader;
    ASSERT_EQ(c_->alter_partition(leader, epochs_[leader], {grow}).partitions[0].error, ErrorCode::kNone);
  }
  EXPECT_EQ(c_->rebalance_leaders(100), 0);  // within an allowance of 100%
  EXPECT_EQ(c_->rebalance_leaders(10), 1);
  EXPECT_EQ(part(0).leader, 1);
  EXPECT_EQ(part(2).leader, 3);
  EXPECT_EQ(c_->rebalance_leaders(10), 0);  // balanced
}

// AlterPartitionReassignments: Kafka's records at each stage.
class ReassignmentTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    c_ = std::make_unique<Controller>(*store_, Controller::Options{1, 1, 3});
    for (int32_t id : {1, 2, 3, 4}) {
      ASSERT_TRUE(c_->register_broker(id, random_uuid(), {}, std::nullopt, &epochs_[id], 0).ok());
      c_->heartbeat(id, epochs_[id], c_->log().end_offset(), false, false, 0);
    }
    ASSERT_TRUE(c_->create_topic("t", -1, -1, {{1, 2, 3}}, {}, false).ok());
  }
  OperationResult reassign(std::optional<std::vector<int32_t>> replicas, bool allow_rf_change = true) {
    return c_->alter_partition_reassignments({{"t", 0, std::move(replicas)}}, allow_rf_change).front();
  }
  // The leader grows the ISR to `isr` (AlterPartition).
  Controller::AlteredPartition grow(const std::vector<int32_t>& isr) {
    const PartitionState& s = part();
    Controller::PartitionAlteration a{c_->find_topic("t")->id, 0, s.leader_epoch, s.partition_epoch, {}, 0};
    for (int32_t r : isr) a.new_isr.push_back({r, epochs_[r]});
    return c_->alter_partition(s.leader, epochs_[s.leader], {a}).partitions.front();
  }
  const PartitionState& part() { return c_->find_topic("t")->partitions[0]; }
  std::unique_ptr<Controller> c_;
  std::map<int32_t, int64_t> epochs_;
};

TEST_F(ReassignmentTest, AddsCopiesThenCompletesWhenTheTargetIsInSync) {
  ASSERT_TRUE(reassign(std::vector<int32_t>{4, 2, 3}).ok());
  EXPECT_EQ(part().replicas, (std::vector<int32_t>{4, 2, 3, 1}));  // target, then removing
  EXPECT_EQ(part().adding_replicas, std::vector<int32_t>{4});
  EXPECT_EQ(part().removing_replicas, std::vector<int32_t>{1});
  EXPECT_EQ(part().leader, 1);
  EXPECT_EQ(part().leader_epoch, 0);  // nothing left yet: no new leader epoch
  EXPECT_TRUE(part().reassigning());
  // Broker 4 caught up: the ISR change completes the reassignment in the same record.
  const int64_t end = c_->log().end_offset();
  auto altered = grow({1, 2, 3, 4});
  EXPECT_EQ(altered.error, ErrorCode::kNone);
  EXPECT_EQ(c_->log().end_offset(), end + 1);
  EXPECT_EQ(part().replicas, (std::vector<int32_t>{4, 2, 3}));
  EXPECT_EQ(part().isr, (std::vector<int32_t>{2, 3, 4}));
  EXPECT_FALSE(part().reassigning());
  EXPECT_EQ(part().leader, 4);  // 1 left: the first target replica in sync leads
  EXPECT_EQ(part().leader_epoch, 1);
  EXPECT_EQ(altered.leader, 4);  // the answer says so (the old leader learns it is not one)
  EXPECT_EQ(altered.leader_epoch, 1);
}

TEST_F(ReassignmentTest, AShrinkInSyncCompletesAtOnceAndAReorderMovesNoLeader) {
  ASSERT_TRUE(reassign(std::vector<int32_t>{2, 1}).ok());
  EXPECT_EQ(part().replicas, (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(part().isr, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(part().leader, 1);       // still valid: it stays
  EXPECT_EQ(part().leader_epoch, 1);  // but 3 left: a new epoch
  EXPECT_FALSE(part().reassigning());
  const int64_t end = c_->log().end_offset();
  ASSERT_TRUE(reassign(std::vector<int32_t>{2, 1}).ok());  // already so: no record
  EXPECT_EQ(c_->log().end_offset(), end);
  ASSERT_TRUE(reassign(std::vector<int32_t>{1, 2}).ok());  // a reorder: one record, same leader and epoch
  EXPECT_EQ(c_->log().end_offset(), end + 1);
  EXPECT_EQ(part().replicas, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(part().leader_epoch, 1);
}

TEST_F(ReassignmentTest, CancelRemovesTheNewReplicas) {
  EXPECT_EQ(reassign(std::nullopt).error, ErrorCode::kNoReassignmentInProgress);
  ASSERT_TRUE(reassign(std::vector<int32_t>{4, 2, 3}).ok());
  ASSERT_TRUE(reassign(std::nullopt).ok());
  EXPECT_EQ(part().replicas, (std::vector<int32_t>{2, 3, 1}));  // Kafka keeps the merged order
  EXPECT_FALSE(part().reassigning());
  EXPECT_EQ(part().leader, 1);
  EXPECT_EQ(part().leader_epoch, 1);
}

TEST_F(ReassignmentTest, RefusesWhatKafkaRefuses) {
  auto error = [&](std::optional<std::vector<int32_t>> replicas, bool allow = true) {
    OperationResult r = reassign(std::move(replicas), allow);
    return std::make_pair(r.error, r.message);
  };
  EXPECT_EQ(error(std::vector<int32_t>{}), std::make_pair(ErrorCode::kInvalidReplicaAssignment,
                                                         std::string("The manual partition assignment includes an empty replica list.")));
  EXPECT_EQ(error(std::vector<int32_t>{9, 1, 1}),
            std::make_pair(ErrorCode::kInvalidReplicaAssignment,
                           std::string("The manual partition assignment includes the broker 1 more than once.")));
  EXPECT_EQ(error(std::vector<int32_t>{9, 1}),
            std::make_pair(ErrorCode::kInvalidReplicaAssignment,
                           std::string("The manual partition assignment includes broker 9, but no such broker is registered.")));
  EXPECT_EQ(error(std::vector<int32_t>{1, 2}, false),
            std::make_pair(ErrorCode::kInvalidReplicationFactor, std::string("The replication factor is changed from 3 to 2")));
  auto unknown = c_->alter_partition_reassignments({{"t", 5, std::vector<int32_t>{1}}, {"u", 0, std::vector<int32_t>{1}}}, true);
  EXPECT_EQ(unknown[0].message, "Unable to find partition t:5.");
  EXPECT_EQ(unknown[1].message, "Unable to find a topic named u.");
  EXPECT_EQ(part().replicas, (std::vector<int32_t>{1, 2, 3}));
}

TEST_F(ReassignmentTest, SurvivesARestart) {
  ASSERT_TRUE(reassign(std::vector<int32_t>{4, 2, 3}).ok());
  c_.reset();
  Controller again(*store_, Controller::Options{1, 1, 3});
  const PartitionState& s = again.find_topic("t")->partitions[0];
  EXPECT_EQ(s.replicas, (std::vector<int32_t>{4, 2, 3, 1}));
  EXPECT_EQ(s.adding_replicas, std::vector<int32_t>{4});
  EXPECT_EQ(s.removing_replicas, std::vector<int32_t>{1});
}

TEST_F(ReassignmentTest, UnregisteringABrokerThatHoldsReplicasIsRefused) {
  EXPECT_EQ(c_->unregister_broker(9).error, ErrorCode::kBrokerIdNotRegistered);
  ASSERT_TRUE(c_->unregister_broker(4).ok());  // holds nothing
  EXPECT_EQ(c_->image().find_broker(4), nullptr);
  OperationResult refused = c_->unregister_broker(3);
  EXPECT_EQ(refused.error, ErrorCode::kInvalidRequest);
  EXPECT_NE(refused.message.find("t-0"), std::string::npos) << refused.message;
  ASSERT_TRUE(reassign(std::vector<int32_t>{1, 2}).ok());  // 3 drained (in sync: at once)
  ASSERT_TRUE(c_->unregister_broker(3).ok());
  EXPECT_EQ(c_->image().find_broker(3), nullptr);
}

}  // namespace
}  // namespace sluice::controller

namespace sluice::controller {
namespace {

// Two voters of a quorum, each with its own store: what broker/quorum_peer.cc
// does with them, without the network (the records copied by hand, as a
// follower's fetch copies them).
class QuorumControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      dirs_[i] = std::filesystem::temp_directory_path() /
                 ("sluice-quorum-test-" + std::to_string(::getpid()) + "-" + std::to_string(i));
      std::filesystem::remove_all(dirs_[i]);
      stores_[i] = storage::StateStore::open(dirs_[i].string());
    }
  }
  void TearDown() override {
    for (int i = 0; i < 2; ++i) {
      stores_[i].reset();
      std::filesystem::remove_all(dirs_[i]);
    }
  }
  Controller::Options voter(int32_t id) {
    Controller::Options o{id, 1, 1};
    o.quorum = true;
    o.new_cluster_id = "quorum-test-cluster-id1";
    return o;
  }
  // Copies what `from` holds past `to`'s log end, in their epochs.
  static void replicate(const Controller& from, Controller& to) {
    std::vector<std::string> records;
    int32_t epoch = -1;
    from.log().read(to.log().end_offset(), [&](int64_t offset, std::string_view r) {
      const int32_t e = from.log().epoch_of(offset);
      if (e != epoch && !records.empty()) {
        to.append_replicated(records, epoch);
        records.clear();
      }
      epoch = e;
      records.emplace_back(r);
      return true;
    });
    if (!records.empty()) to.append_replicated(records, epoch);
  }
  std::filesystem::path dirs_[2];
  std::unique_ptr<storage::StateStore> stores_[2];
};

TEST_F(QuorumControllerTest, CommitsOnlyWhatTheHighWatermarkPasses) {
  Controller leader(*stores_[0], voter(1));
  Controller follower(*stores_[1], voter(2));
  EXPECT_EQ(leader.cluster_id(), "quorum-test-cluster-id1");
  EXPECT_FALSE(leader.active());
  // Not elected: every change is refused (at the commit; the controller listener turns
  // requests away before that).
  int64_t refused_epoch = -1;
  EXPECT_EQ(leader.register_broker(4, random_uuid(), {{"PLAINTEXT", "127.0.0.1", 9092, 0}}, std::nullopt, &refused_epoch).error,
            ErrorCode::kNotController);

  leader.become_leader(1);
  EXPECT_TRUE(leader.active());
  EXPECT_EQ(leader.log().end_offset(), 1);  // the epoch's NoOpRecord
  RecordingListener listener;
  leader.add_listener(&listener);
  int64_t epoch = -1;
  ASSERT_TRUE(leader.register_broker(4, random_uuid(), {{"PLAINTEXT", "127.0.0.1", 9092, 0}}, std::nullopt, &epoch).ok());
  ASSERT_TRUE(leader.unfence_broker(4, epoch).ok());
  ASSERT_TRUE(leader.create_topic("orders", 2, 1, {}, {}, false).ok());
  // Durable here, but no majority holds it yet: validated against, not committed.
  EXPECT_NE(leader.image().find_topic("orders"), nullptr);
  EXPECT_EQ(leader.committed_image().find_topic("orders"), nullptr);
  EXPECT_EQ(leader.committed_offset(), 0);
  EXPECT_EQ(listener.events, (std::vector<std::string>{"prepare orders"}));

  replicate(leader, follower);
  EXPECT_EQ(follower.log().end_offset(), leader.log().end_offset());
  EXPECT_EQ(follower.log().last_epoch(), 1);
  EXPECT_EQ(follower.committed_image().find_topic("orders"), nullptr);
  leader.set_high_watermark(leader.log().end_offset());  // the follower's fetch said it holds everything
  EXPECT_NE(leader.committed_image().find_topic("orders"), nullptr);
  EXPECT_EQ(listener.events, (std::vector<std::string>{"prepare orders", "created orders"}));
  follower.set_high_watermark(leader.committed_offset());
  EXPECT_NE(follower.committed_image().find_topic("orders"), nullptr);
  EXPECT_THROW(follower.truncate_replicated(1), std::runtime_error);  // below what is committed
}

TEST_F(QuorumControllerTest, ANewLeaderKeepsTheTailAndAResignedOneForgetsIt) {
  {
    Controller old_leader(*stores_[0], voter(1));
    Controller follower(*stores_[1], voter(2));
    old_leader.become_leader(1);
    int64_t epoch = -1;
    ASSERT_TRUE(old_leader.register_broker(4, random_uuid(), {{"PLAINTEXT", "127.0.0.1", 9092, 0}}, std::nullopt, &epoch).ok());
    ASSERT_TRUE(old_leader.unfence_broker(4, epoch).ok());
    replicate(old_leader, follower);
    old_leader.set_high_watermark(old_leader.log().end_offset());
    follower.set_high_watermark(old_leader.committed_offset());
    const int64_t committed = old_leader.committed_offset();

    // Appended by the old leader and copied to the follower, not yet committed.
    ASSERT_TRUE(old_leader.create_topic("copied", 1, 1, {}, {}, false).ok());
    replicate(old_leader, follower);
    // Appended by the old leader alone.
    ASSERT_TRUE(old_leader.create_topic("lost", 1, 1, {}, {}, false).ok());
    old_leader.resign();
    EXPECT_FALSE(old_leader.active());
    EXPECT_EQ(old_leader.image().find_topic("lost"), nullptr);  // back to what is committed
    EXPECT_EQ(old_leader.create_topic("refused", 1, 1, {}, {}, false).error, ErrorCode::kNotController);

    // The follower is elected: what it holds past the high watermark stands, and its first
    // record of epoch 2 commits it.
    follower.become_leader(2);
    EXPECT_NE(follower.image().find_topic("copied"), nullptr);
    EXPECT_EQ(follower.committed_offset(), committed);
    follower.set_high_watermark(follower.log().end_offset());
    EXPECT_NE(follower.committed_image().find_topic("copied"), nullptr);

    // The old leader's copy diverged after epoch 1's end on the new leader: it truncates there.
    const auto [e, end] = follower.log().end_offset_for_epoch(old_leader.log().last_epoch());
    EXPECT_EQ(e, 1);
    old_leader.truncate_replicated(end);
    replicate(follower, old_leader);
    old_leader.set_high_watermark(follower.committed_offset());
    EXPECT_EQ(old_leader.log().end_offset(), follower.log().end_offset());
    EXPECT_NE(old_leader.committed_image().find_topic("copied"), nullptr);
    EXPECT_EQ(old_leader.committed_image().find_topic("lost"), nullptr);
  }
  // After a restart a voter knows only its snapshot is committed until a leader says more.
  Controller restarted(*stores_[0], voter(1));
  EXPECT_FALSE(restarted.active());
  EXPECT_EQ(restarted.committed_offset(), 0);
  EXPECT_EQ(restarted.committed_image().find_topic("copied"), nullptr);
  restarted.set_high_watermark(restarted.log().end_offset());
  EXPECT_NE(restarted.committed_image().find_topic("copied"), nullptr);
}

}  // namespace
}  // namespace sluice::controller
