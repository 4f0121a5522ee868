// The metadata log's pieces on their own: record framing, the image's
// replay rules, the log's durability and snapshots.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "controller/controller.h"
#include "controller/metadata_delta.h"
#include "controller/metadata_image.h"
#include "controller/metadata_log.h"
#include "controller/metadata_records.h"
#include "protocol/record_batch.h"
#include "storage/state_store.h"

namespace sluice::controller {
namespace {

TEST(MetadataRecords, FramedAsKafkaFramesThem) {
  protocol::TopicRecord topic{"orders", random_uuid()};
  const std::string bytes = encode_record(topic);
  // Frame version 1, record type 2 (TopicRecord), version 0, then the flexible struct.
  ASSERT_GE(bytes.size(), 3u);
  EXPECT_EQ(bytes.substr(0, 3), std::string("\x01\x02\x00", 3));
  EXPECT_EQ(std::get<protocol::TopicRecord>(decode_record(bytes)), topic);

  protocol::PartitionChangeRecord change;
  change.topic_id = topic.topic_id;
  change.partition_id = 4;
  change.isr = std::vector<int32_t>{1, 3};
  const auto decoded = std::get<protocol::PartitionChangeRecord>(decode_record(encode_record(change)));
  EXPECT_EQ(decoded, change);
  EXPECT_EQ(decoded.leader, -2);  // not named: no leader change
  EXPECT_EQ(record_name(decoded), "PartitionChangeRecord");
}

TEST(MetadataRecords, RefusesWhatThisBuildCannotRead) {
  const std::string good = encode_record(protocol::NoOpRecord{});
  EXPECT_THROW(decode_record(std::string("\x02") + good.substr(1)), protocol::DecodeError);  // frame version
  EXPECT_THROW(decode_record(std::string("\x01\x63\x00\x00", 4)), protocol::DecodeError);  // type 99
  EXPECT_THROW(decode_record(std::string("\x01\x02\x09\x00", 4)), protocol::DecodeError);  // TopicRecord v9
  EXPECT_THROW(decode_record(good + "x"), protocol::DecodeError);                           // trailing bytes
  EXPECT_THROW(decode_record(std::string()), protocol::DecodeError);
}

TEST(MetadataImage, AppliesPartitionChangesAsKafkaMergesThem) {
  MetadataImage image;
  const protocol::Uuid id = random_uuid();
  image.apply(protocol::TopicRecord{"t", id});
  protocol::PartitionRecord p;
  p.partition_id = 0;
  p.topic_id = id;
  p.replicas = {1, 2, 3};
  p.isr = {1, 2, 3};
  p.leader = 1;
  p.leader_epoch = 0;
  p.partition_epoch = 0;
  image.apply(p);

  protocol::PartitionChangeRecord shrink;
  shrink.topic_id = id;
  shrink.partition_id = 0;
  shrink.isr = std::vector<int32_t>{1, 2};
  image.apply(shrink);
  const PartitionState* s = &image.find_topic("t")->partitions[0];
  EXPECT_EQ(s->isr, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(s->leader_epoch, 0);  // the leader did not change
  EXPECT_EQ(s->partition_epoch, 1);

  protocol::PartitionChangeRecord elect;
  elect.topic_id = id;
  elect.partition_id = 0;
  elect.leader = 2;
  image.apply(elect);
  s = &image.find_topic("t")->partitions[0];
  EXPECT_EQ(s->leader, 2);
  EXPECT_EQ(s->leader_epoch, 1);
  EXPECT_EQ(s->partition_epoch, 2);

  // Records that do not fit the image mean a corrupt log.
  protocol::PartitionRecord gap = p;
  gap.partition_id = 5;
  EXPECT_THROW(image.apply(gap), std::runtime_error);
  protocol::PartitionChangeRecord unknown = elect;
  unknown.topic_id = random_uuid();
  EXPECT_THROW(image.apply(unknown), std::runtime_error);

  image.apply(protocol::RemoveTopicRecord{id});
  EXPECT_EQ(image.find_topic("t"), nullptr);
}

TEST(MetadataImage, FencingFollowsTheBrokerEpoch) {
  MetadataImage image;
  protocol::RegisterBrokerRecord r;
  r.broker_id = 2;
  r.broker_epoch = 10;
  r.fenced = true;
  image.apply(r);
  image.apply(protocol::UnfenceBrokerRecord{2, 9});  // an older registration's
  EXPECT_TRUE(image.find_broker(2)->fenced);
  image.apply(protocol::UnfenceBrokerRecord{2, 10});
  EXPECT_EQ(image.unfenced_brokers(), std::vector<int32_t>{2});
  protocol::BrokerRegistrationChangeRecord change;
  change.broker_id = 2;
  change.broker_epoch = 10;
  change.fenced = 1;
  image.apply(change);
  EXPECT_TRUE(image.unfenced_brokers().empty());
}

class MetadataLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-metadata-log-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    store_ = storage::StateStore::open(dir_.string());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::vector<std::string> replayed() {
    MetadataLog log(*store_);
    std::vector<std::string> out;
    log.replay([&](std::string_view r) { out.emplace_back(r); });
    return out;
  }
  std::filesystem::path dir_;
  std::unique_ptr<storage::StateStore> store_;
};

TEST_F(MetadataLogTest, AppendsDurablyInOrderAndSnapshots) {
  {
    MetadataLog log(*store_);
    EXPECT_TRUE(log.empty());
    EXPECT_EQ(log.append({"a", "b"}), 0);
    EXPECT_EQ(log.append({"c"}, {{"other/key", "v"}}), 2);
    EXPECT_EQ(log.end_offset(), 3);
    EXPECT_EQ(*store_->get("other/key"), "v");  // in the same transaction
  }
  EXPECT_EQ(replayed(), (std::vector<std::string>{"a", "b", "c"}));
  {
    MetadataLog log(*store_);
    EXPECT_EQ(log.end_offset(), 3);
    log.write_snapshot(log.end_offset(), {"image"});
    EXPECT_EQ(log.snapshot_offset(), 3);
    EXPECT_EQ(log.bytes_since_snapshot(), 0u);
    EXPECT_EQ(log.append({"d"}), 3);
    std::vector<int64_t> offsets;
    log.read(3, [&](int64_t o, std::string_view) {
      offsets.push_back(o);
      return true;
    });
    EXPECT_EQ(offsets, std::vector<int64_t>{3});
    EXPECT_THROW(log.read(2, [](int64_t, std::string_view) { return true; }), std::invalid_argument);
  }
  EXPECT_EQ(replayed(), (std::vector<std::string>{"image", "d"}));
  MetadataLog reopened(*store_);
  EXPECT_EQ(reopened.snapshot_offset(), 3);
  EXPECT_EQ(reopened.end_offset(), 4);
}

// Writes handed to a committer (a thread in the broker; here a queue the test
// drains): the end runs ahead, readers see only what is durable, a snapshot
// taken while appends are in flight erases them too, and a failed write stops
// the log.
TEST_F(MetadataLogTest, WritesInTheBackgroundInOrder) {
  struct Queued {
    std::vector<storage::StateStore::Change> changes;
    std::function<void(bool)> done;
  };
  std::vector<Queued> queue;
  std::vector<int64_t> durable;
  auto complete = [&](size_t n, bool ok = true) {
    for (size_t i = 0; i < n; ++i) {
      Queued q = std::move(queue.front());
      queue.erase(queue.begin());
      if (ok) store_->apply(q.changes);
      q.done(ok);
    }
  };
  {
    MetadataLog log(*store_);
    log.append({"a"});  // in place: durable at once
    log.write_in_background([&](auto changes, auto done) { queue.push_back({std::move(changes), std::move(done)}); },
                            [&](int64_t end) { durable.push_back(end); });
    EXPECT_EQ(log.append({"b", "c"}), 1);
    EXPECT_EQ(log.append({"d"}), 3);
    EXPECT_EQ(log.end_offset(), 4);
    EXPECT_EQ(log.durable_end_offset(), 1);
    auto read_all = [&] {
      std::vector<int64_t> offsets;
      log.read(0, [&](int64_t o, std::string_view) {
        offsets.push_back(o);
        return true;
      });
      return offsets;
    };
    EXPECT_EQ(read_all(), std::vector<int64_t>{0});
    complete(1);
    EXPECT_EQ(log.durable_end_offset(), 3);
    EXPECT_EQ(durable, std::vector<int64_t>{3});
    EXPECT_EQ(read_all(), (std::vector<int64_t>{0, 1, 2}));
    log.write_snapshot(log.end_offset(), {"image"});  // "d" still in flight
    EXPECT_EQ(log.snapshot_offset(), 4);
    EXPECT_EQ(log.durable_snapshot_offset(), 0);
    complete(2);
    EXPECT_EQ(log.durable_snapshot_offset(), 4);
    EXPECT_EQ(durable, (std::vector<int64_t>{3, 4, 4}));
    log.append({"e"});
    EXPECT_THROW(complete(1, false), MetadataLogWriteFailed);
  }
  EXPECT_EQ(replayed(), (std::vector<std::string>{"image"}));  // no record left below the snapshot
  MetadataLog reopened(*store_);
  EXPECT_EQ(reopened.end_offset(), 4);
}

TEST_F(MetadataLogTest, KeepsLeaderEpochsAndTruncatesWhereACopyDiverged) {
  {
    MetadataLog log(*store_);
    EXPECT_EQ(log.last_epoch(), 0);
    EXPECT_EQ(log.end_offset_for_epoch(3), std::make_pair(-1, int64_t{-1}));
    log.append({"a", "b"}, {}, 1);
    log.append({"c"}, {}, 1);
    log.append({"d", "e"}, {}, 3);
    EXPECT_THROW(log.append({"x"}, {}, 2), std::invalid_argument);  // epochs never go back
    EXPECT_EQ(log.end_offset(), 5);
    EXPECT_EQ(log.last_epoch(), 3);
    EXPECT_EQ(log.epoch_of(2), 1);
    EXPECT_EQ(log.epoch_of(3), 3);
    // Kafka's OffsetForLeaderEpoch: an epoch with no records answers for the one before it.
    EXPECT_EQ(log.end_offset_for_epoch(1), std::make_pair(1, int64_t{3}));
    EXPECT_EQ(log.end_offset_for_epoch(2), std::make_pair(1, int64_t{3}));
    EXPECT_EQ(log.end_offset_for_epoch(3), std::make_pair(3, int64_t{5}));
    EXPECT_EQ(log.end_offset_for_epoch(9), std::make_pair(3, int64_t{5}));
    EXPECT_EQ(log.end_offset_for_epoch(0), std::make_pair(-1, int64_t{-1}));
  }
  {
    MetadataLog log(*store_);  // the epochs are durable with the records
    EXPECT_EQ(log.end_offset_for_epoch(2), std::make_pair(1, int64_t{3}));
    log.truncate_to(4);  // drops "e"; epoch 3 keeps "d"
    EXPECT_EQ(log.end_offset_for_epoch(3), std::make_pair(3, int64_t{4}));
    log.truncate_to(3);  // epoch 3 has nothing left
    EXPECT_EQ(log.last_epoch(), 1);
    EXPECT_EQ(log.end_offset(), 3);
    log.append({"f"}, {}, 4);
    EXPECT_THROW(log.truncate_to(7), std::invalid_argument);
  }
  EXPECT_EQ(replayed(), (std::vector<std::string>{"a", "b", "c", "f"}));
  {
    MetadataLog log(*store_);
    EXPECT_EQ(log.end_offset_for_epoch(3), std::make_pair(1, int64_t{3}));
    EXPECT_EQ(log.last_epoch(), 4);
    // A snapshot of what is committed (below the end): the records after it stay.
    log.write_snapshot(2, {"image at 2"});
    EXPECT_THROW(log.truncate_to(1), std::invalid_argument);  // never into the snapshot
    EXPECT_EQ(log.epoch_of(1), 1);
  }
  EXPECT_EQ(replayed(), (std::vector<std::string>{"image at 2", "c", "f"}));
  {
    MetadataLog log(*store_);
    // A follower taking its leader's snapshot: everything is replaced; what came before is of its epoch.
    log.install_snapshot(10, {"leader image"}, 6);
    EXPECT_EQ(log.end_offset(), 10);
    EXPECT_EQ(log.last_epoch(), 6);
    EXPECT_EQ(log.end_offset_for_epoch(6), std::make_pair(6, int64_t{10}));
    log.append({"g"}, {}, 7);
  }
  EXPECT_EQ(replayed(), (std::vector<std::string>{"leader image", "g"}));
}

TEST(MetadataLog, SplitsFetchedBatchesByEpoch) {
  const std::string batches = protocol::build_record_batch(5, 2, 0, {"a", "b"}) +
                              protocol::build_record_batch(7, 2, 0, {"c"}) +
                              protocol::build_record_batch(8, 4, 0, {"d"});
  const auto runs = split_fetched_records(batches, 5);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].epoch, 2);
  EXPECT_EQ(runs[0].records, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(runs[1].epoch, 4);
  EXPECT_EQ(runs[1].records, (std::vector<std::string>{"d"}));
  EXPECT_THROW(split_fetched_records(batches, 4), std::runtime_error);  // not where the copy ends
  EXPECT_THROW(split_fetched_records(batches.substr(0, batches.size() - 3), 5), std::runtime_error);  // cut
}

TEST_F(MetadataLogTest, AWriteInFlightAcrossATruncationIsDurableOnlyUpToIt) {
  std::vector<std::pair<std::vector<storage::StateStore::Change>, std::function<void(bool)>>> queue;
  auto complete = [&](size_t n) {
    for (size_t i = 0; i < n; ++i) {
      auto [changes, done] = std::move(queue.front());
      queue.erase(queue.begin());
      store_->apply(changes);
      done(true);
    }
  };
  MetadataLog log(*store_);
  log.append({"a", "b"}, {}, 1);
  log.write_in_background([&](auto changes, auto done) { queue.emplace_back(std::move(changes), std::move(done)); },
                          nullptr);
  log.append({"c", "d", "e"}, {}, 1);  // [2, 5) in flight
  log.truncate_to(3);                  // a leader says the copy diverges after "c"
  log.append({"x", "y"}, {}, 2);       // the leader's [3, 5), in flight
  complete(1);  // the stale write lands: durable only up to the truncation
  EXPECT_EQ(log.durable_end_offset(), 3);
  complete(1);  // the truncation
  EXPECT_EQ(log.durable_end_offset(), 3);
  std::vector<std::string> seen;
  log.read(0, [&](int64_t, std::string_view r) {
    seen.emplace_back(r);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c"}));  // never the stale "d"
  complete(1);
  EXPECT_EQ(log.durable_end_offset(), 5);
  EXPECT_EQ(replayed(), (std::vector<std::string>{"a", "b", "c", "x", "y"}));
}

TEST_F(MetadataLogTest, RecordsFromBeforeEpochsAreEpochZero) {
  MetadataLog log(*store_);
  log.append({"old", "older"});  // a log written before epochs were kept
  log.append({"new"}, {}, 2);
  EXPECT_EQ(log.epoch_of(1), 0);
  EXPECT_EQ(log.end_offset_for_epoch(0), std::make_pair(0, int64_t{2}));
  EXPECT_EQ(log.end_offset_for_epoch(1), std::make_pair(0, int64_t{2}));
  EXPECT_EQ(log.end_offset_for_epoch(2), std::make_pair(2, int64_t{3}));
}

TEST_F(MetadataLogTest, AGapIsACorruptLog) {
  {
    MetadataLog log(*store_);
    log.append({"a", "b", "c"});
  }
  store_->erase("metadata/log/0000000000000001");
  EXPECT_THROW(MetadataLog log(*store_), std::runtime_error);
}

// Every event a listener hears, in order.
class EventLog : public MetadataListener {
 public:
  void on_topic_created(const TopicInfo& t) override { events.push_back("created " + t.name); }
  void on_partitions_added(const TopicInfo& t, int32_t old) override {
    events.push_back("added " + t.name + " " + std::to_string(old) + "->" + std::to_string(t.partition_count()));
  }
  void on_topic_deleted(const TopicInfo& t) override {
    events.push_back("deleted " + t.name + " with " + std::to_string(t.partition_count()));
  }
  void on_topic_configs_changed(const TopicInfo& t) override { events.push_back("configs " + t.name); }
  void on_partition_changed(const TopicInfo& t, int32_t index) override {
    events.push_back("changed " + t.name + "-" + std::to_string(index));
  }
  std::vector<std::string> events;
};

protocol::PartitionRecord partition_record(const protocol::Uuid& topic, int32_t index) {
  protocol::PartitionRecord p;
  p.topic_id = topic;
  p.partition_id = index;
  p.replicas = {1, 2};
  p.isr = {1, 2};
  p.leader = 1;
  return p;
}

// TouchedTopics (the controller's and a broker's publishing, without a copy
// of the whole image) tells listeners exactly what publish_delta(before,
// after) does, whatever the batch: creations with their partitions, new
// partitions, ISR and leader changes, configs, deletions, a namesake
// re-created in the same batch, broker records, and untouched topics.
TEST(MetadataDelta, TouchedTopicsTellWhatTheWholeImagesTell) {
  const protocol::Uuid a = random_uuid(), b = random_uuid(), c = random_uuid(), b2 = random_uuid(),
                       d = random_uuid();
  MetadataImage image;
  for (const auto& [name, id] : {std::pair{"a", a}, std::pair{"b", b}, std::pair{"c", c}}) {
    image.apply(protocol::TopicRecord{name, id});
    image.apply(partition_record(id, 0));
  }
  std::vector<MetadataRecord> batch;
  protocol::PartitionChangeRecord shrink;
  shrink.topic_id = a;
  shrink.partition_id = 0;
  shrink.isr = std::vector<int32_t>{1};
  batch.push_back(shrink);
  batch.push_back(partition_record(a, 1));  // a grows
  protocol::ConfigRecord config;
  config.resource_type = kTopicResource;
  config.resource_name = "a";
  config.name = "retention.ms";
  config.value = "1000";
  batch.push_back(config);
  batch.push_back(protocol::RemoveTopicRecord{b});  // b goes, and a namesake comes
  batch.push_back(protocol::TopicRecord{"b", b2});
  batch.push_back(partition_record(b2, 0));
  batch.push_back(protocol::TopicRecord{"d", d});  // d is new, with its partitions
  batch.push_back(partition_record(d, 0));
  batch.push_back(partition_record(d, 1));
  protocol::RegisterBrokerRecord broker;
  broker.broker_id = 7;
  batch.push_back(broker);
  protocol::ConfigRecord broker_config;
  broker_config.resource_type = kBrokerResource;
  broker_config.resource_name = "7";
  broker_config.name = "log.retention.ms";
  broker_config.value = "5";
  batch.push_back(broker_config);
  batch.push_back(protocol::RemoveTopicRecord{c});  // c goes; nothing else touches it

  // Every prefix of the batch, as a broker may fetch it in pieces.
  for (size_t n = 1; n <= batch.size(); ++n) {
    MetadataImage after = image;
    TouchedTopics touched;
    for (size_t i = 0; i < n; ++i) {
      touched.note(after, batch[i]);
      after.apply(batch[i]);
    }
    EventLog whole, partial;
    publish_delta(image, after, {&whole});
    touched.publish(after, {&partial});
    EXPECT_EQ(partial.events, whole.events) << "the first " << n << " records";
    if (n == batch.size()) {
      EXPECT_EQ(whole.events, (std::vector<std::string>{"deleted b with 1", "deleted c with 1", "added a 1->2",
                                                        "configs a", "changed a-0", "created b", "created d"}));
    }
  }
}

}  // namespace
}  // namespace sluice::controller
