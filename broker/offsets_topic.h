// Committed offsets in a cluster: the __consumer_offsets topic, as Kafka
// keeps them. A group belongs to partition abs(hashCode(group id)) %
// (the topic's partition count), and the leader of that partition is the
// group's coordinator: it appends each commit to the partition in Kafka's
// record format (OffsetCommitKey / OffsetCommitValue; a null value removes),
// acknowledges it once the partition's high watermark has passed it (every
// in-sync replica has it), and serves the groups from memory. A broker that
// becomes the leader replays the partition first (COORDINATOR_LOAD_IN_PROGRESS
// meanwhile); one that stops leading forgets the groups (NOT_COORDINATOR).
// The topic is created when a client first looks for a coordinator, with
// offsets.topic.num.partitions and offsets.topic.replication.factor.
//
// A single node keeps offsets in the state store instead (group_coordinator.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // Asio's awaitable.hpp needs std::exchange

#include <boost/asio/awaitable.hpp>

#include "broker/group_coordinator.h"
#include "protocol/error_codes.h"
#include "protocol/record_batch.h"

namespace sluice::broker {

struct Broker;
class ReplicaManager;
struct Partition;

// One commit (or, with a null `offset`, its removal) as a record of the topic.
protocol::KeyedRecord offset_commit_record(std::string_view group, const TopicPartition& tp,
                                           const CommittedOffset* offset);
// Applies one record of the topic to `offsets`. Group metadata records are
// skipped (membership is not kept); false for a record it cannot read.
bool replay_offsets_record(std::optional<std::string_view> key, std::optional<std::string_view> value,
                           GroupOffsets& offsets);

// The offset store of a cluster's broker: appends to the partition of the
// group, which this broker must lead.
class LogOffsetStore : public OffsetStore {
 public:
  explicit LogOffsetStore(ReplicaManager& replicas) : replicas_(replicas) {}
  // Nothing at start-up: each partition is replayed when this broker leads it.
  GroupOffsets load() override { return {}; }
  OffsetWrite apply(std::string_view group, const std::map<TopicPartition, CommittedOffset>& upserts,
                    const std::vector<TopicPartition>& removals) override;
  // Set by the coordinator: where a group's records go.
  void set_partitioner(const GroupCoordinator* groups) { groups_ = groups; }

 private:
  ReplicaManager& replicas_;
  const GroupCoordinator* groups_ = nullptr;
};

// The coordinator's side of a role change of a __consumer_offsets partition
// (a ReplicaManager role observer): loads the partition's groups when this
// broker starts leading it, forgets them when it stops.
void on_offsets_partition_role(Broker& broker, Partition& partition);

// Waits until `write` is synced and on every in-sync replica (at most
// offsets.commit.timeout.ms), and answers as Kafka's coordinators do when it
// is not: NOT_COORDINATOR if the leadership moved or the disk failed,
// COORDINATOR_NOT_AVAILABLE if the replicas did not follow in time.
boost::asio::awaitable<protocol::ErrorCode> await_offset_write(Broker& broker, const OffsetWrite& write);

// Compacts the partitions this broker leads and has loaded by rewriting their
// live offsets (internal_topic.h), with offsets.topic.segment.bytes as the
// threshold.
boost::asio::awaitable<void> compact_offsets_periodically(Broker& broker);

// FindCoordinator for a group in a cluster: the leader of the group's
// partition. Creates the topic on the first call (COORDINATOR_NOT_AVAILABLE,
// which clients retry, until it has leaders).
struct CoordinatorAddress {
  protocol::ErrorCode error = protocol::ErrorCode::kNone;
  int32_t node_id = -1;
  std::string host;
  int32_t port = -1;
};
boost::asio::awaitable<CoordinatorAddress> find_group_coordinator(Broker& broker, std::string_view group_id);

}  // namespace sluice::broker
