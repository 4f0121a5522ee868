// The share coordinator of a cluster (Kafka's): the durable state of every
// share-partition, kept in the __share_group_state topic. A share-partition
// (group, topic id, partition) belongs to partition
// abs(hashCode("group:topicId:partition")) % (the topic's partition count),
// whose leader coordinates it: it keeps the states of its partitions in
// memory, appends each change as a ShareSnapshot record (Kafka's record
// format; a null value removes the state), and answers once every in-sync
// replica has the record. A broker that starts leading a partition replays
// it first (COORDINATOR_LOAD_IN_PROGRESS meanwhile); one that stops forgets
// its states (NOT_COORDINATOR). The topic is created when a partition leader
// first needs it, with share.coordinator.state.topic.num.partitions and
// share.coordinator.state.topic.replication.factor.
//
// The partition leaders are its clients (share_state_persister.h), with
// Kafka's RPCs: InitializeShareGroupState, ReadShareGroupState,
// WriteShareGroupState, DeleteShareGroupState and ReadShareGroupStateSummary.
// Their rules, as Kafka's:
//   - a state is initialized (Initialize: a fresh state at a state epoch, no
//     batches) before it is read or written; otherwise INVALID_REQUEST;
//   - a read or write from an older leader epoch than the state has seen is
//     FENCED_LEADER_EPOCH, and a write or initialize from an older state epoch
//     FENCED_STATE_EPOCH: a partition leader that lost its leadership, or a
//     share-partition reset by AlterShareGroupOffsets, cannot overwrite the
//     state; a read records its leader epoch (durably) before answering;
//   - a write merges its batches into the state: both kept, where they
//     overlap the higher delivery count (then the higher state) wins, and
//     whatever lies below the start offset goes.
//
// Network thread only.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>  // Asio's awaitable.hpp needs std::exchange
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "broker/group_coordinator.h"
#include "broker/share_partition.h"
#include "controller/controller.h"
#include "protocol/error_codes.h"
#include "protocol/record_batch.h"
#include "protocol/wire.h"

namespace sluice::broker {

struct Broker;
struct Partition;

struct ShareStateKey {
  std::string group;
  protocol::Uuid topic_id;
  int32_t partition = 0;
  auto operator<=>(const ShareStateKey& other) const {
    if (auto c = group <=> other.group; c != 0) return c;
    if (auto c = topic_id.bytes <=> other.topic_id.bytes; c != 0) return c;
    return partition <=> other.partition;
  }
  bool operator==(const ShareStateKey&) const = default;
};

// Kafka's coordinator key of a share-partition: "group:topicId:partition".
std::string share_coordinator_key(const ShareStateKey& key);

struct StoredShareState {
  int32_t state_epoch = 0;
  int32_t leader_epoch = -1;
  int32_t snapshot_epoch = 0;
  int64_t create_timestamp_ms = 0;
  DurableShareState state;  // start offset -1: initialized without one
  // The last append of this state here (not part of the record): a read
  // answers only once it is replicated, since the state it returns is
  // already in memory.
  std::optional<OffsetWrite> last_write;
};

// A write's batches merged into `stored` (the rules above), then cut at `start_offset`.
std::vector<ShareStateBatch> merge_share_batches(const std::vector<ShareStateBatch>& stored,
                                                 const std::vector<ShareStateBatch>& written, int64_t start_offset);

// How many offsets from the start offset on are done (acknowledged or
// archived): KIP-1226's DeliveryCompleteCount; -1 without a start offset.
int32_t delivery_complete_count(const DurableShareState& state);

// The record of a state (a null `state`: its removal), and its replay.
protocol::KeyedRecord share_state_record(const ShareStateKey& key, const StoredShareState* state);
bool replay_share_state_record(std::optional<std::string_view> key, std::optional<std::string_view> value,
                               std::map<ShareStateKey, StoredShareState>& states);

class ShareStateCoordinator : public controller::MetadataListener {
 public:
  explicit ShareStateCoordinator(Broker& broker) : broker_(broker) {}

  // The partition of __share_group_state a key belongs to, and whether this
  // broker coordinates it: kNone, NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS.
  int32_t partition_of(const ShareStateKey& key) const;
  protocol::ErrorCode ownership(const ShareStateKey& key) const;

  // The operations, each answered once its record is on every in-sync
  // replica (a read too, when it records a newer leader epoch).
  struct ReadResult {
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    std::string message;
    StoredShareState state;
  };
  boost::asio::awaitable<ReadResult> read(const ShareStateKey& key, int32_t leader_epoch);
  // The state without a leader epoch check or a write (ReadShareGroupStateSummary);
  // nullopt when not initialized.
  std::optional<StoredShareState> peek(const ShareStateKey& key) const;
  // ReadShareGroupStateSummary's answer: this broker's ownership error, or
  // the state's epochs, start offset (-1: not initialized) and how many
  // records from there on are done (acknowledged or archived).
  struct Summary {
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    int32_t state_epoch = 0;
    int32_t leader_epoch = 0;
    int64_t start_offset = -1;
    int32_t delivery_complete_count = -1;
  };
  Summary summary(const ShareStateKey& key) const;
  struct Result {
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    std::string message;
  };
  boost::asio::awaitable<Result> write(const ShareStateKey& key, int32_t state_epoch, int32_t leader_epoch,
                                       int64_t start_offset, const std::vector<ShareStateBatch>& batches);
  boost::asio::awaitable<Result> initialize(const ShareStateKey& key, int32_t state_epoch, int64_t start_offset);
  boost::asio::awaitable<Result> remove(const ShareStateKey& key);

  // The topic's partitions: a role observer of the ReplicaManager.
  void on_partition_role(Partition& partition);
  // Compaction (internal_topic.h): live states, and all of them written again.
  bool loaded(int32_t index) const;
  size_t live_states(int32_t index) const;
  std::optional<OffsetWrite> rewrite(int32_t index);

  // A deleted topic's states go (their keys name its id, which never returns).
  void on_topic_created(const controller::TopicInfo&) override {}
  void on_partitions_added(const controller::TopicInfo&, int32_t) override {}
  void on_topic_deleted(const controller::TopicInfo& topic) override;

 private:
  struct Shard {
    int32_t leader_epoch = -1;
    bool loaded = false;
    std::map<ShareStateKey, StoredShareState> states;
  };
  boost::asio::awaitable<void> load(int32_t index, int32_t leader_epoch);
  // Appends the key's state (or its removal) to its partition; Result's error when this broker cannot.
  std::optional<OffsetWrite> append(int32_t index, const ShareStateKey& key, const StoredShareState* state);
  boost::asio::awaitable<Result> replicate(std::optional<OffsetWrite> write);
  // Appends `updated`, then makes it the key's state, and waits for it to replicate.
  boost::asio::awaitable<Result> commit(int32_t index, const ShareStateKey& key, StoredShareState updated);
  int32_t partition_count() const;

  Broker& broker_;
  std::map<int32_t, Shard> shards_;  // the partitions this broker leads
};

}  // namespace sluice::broker
