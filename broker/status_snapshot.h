// What the admin server shows of a node (its JSON views, the state metrics,
// readiness): a copy of the broker's state that the network thread takes every
// admin.refresh.interval.ms and hands to the admin thread. The admin thread
// never reads the broker's own structures (they are not thread-safe), and the
// network thread never waits for it: a scrape costs the network thread nothing.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "broker/queue_retention.h"
#include "broker/replica_manager.h"
#include "controller/controller.h"

namespace sluice::broker {

struct Broker;

struct StatusSnapshot {
  int32_t node_id = -1;
  std::string cluster_id;
  std::string roles;  // process.roles
  bool has_broker_role = false;

  // This node's broker as the controller sees it (a standalone node is registered and unfenced).
  bool registered = false;
  bool fenced = true;
  // A broker-only node whose heartbeats the controller has not answered for
  // broker.session.timeout.ms: fenced there by now, whatever its image says.
  bool controller_unreachable = false;

  // The controller: this node's view.
  int32_t active_controller_id = -1;
  bool is_active_controller = false;
  int64_t metadata_offset = 0;  // the metadata log offset this node's image has applied
  uint64_t metadata_records_applied = 0;
  std::array<uint64_t, static_cast<size_t>(controller::Controller::Event::kCount)> controller_events{};

  struct Endpoint {
    std::string listener;
    std::string host;
    uint16_t port = 0;
  };
  struct BrokerRow {
    int32_t id = -1;
    std::optional<std::string> rack;
    bool fenced = true;
    bool in_controlled_shutdown = false;
    std::vector<Endpoint> endpoints;
  };
  std::vector<BrokerRow> brokers;

  struct TopicRow {
    std::string name;
    std::string id;  // as Kafka prints it
    int32_t partitions = 0;
    int16_t replication_factor = 0;
    std::map<std::string, std::string> configs;  // explicit ones
  };
  std::vector<TopicRow> topics;

  // A replica this node holds.
  struct Replica {
    bool leader = false;
    int64_t high_watermark = 0;
    int64_t log_start_offset = 0;
    int64_t log_end_offset = 0;
    uint64_t size_bytes = 0;
    size_t segments = 0;
    int64_t min_insync_replicas = 1;
    // Leader only: the follower furthest behind, in records and in time since it was caught up.
    int64_t max_follower_lag_records = 0;
    int64_t max_follower_lag_ms = 0;
  };
  struct PartitionRow {
    std::string topic;
    int32_t partition = 0;
    int32_t leader = -1;
    int32_t leader_epoch = 0;
    std::vector<int32_t> replicas;
    std::vector<int32_t> isr;
    std::optional<Replica> local;  // none when this node holds no replica
  };
  std::vector<PartitionRow> partitions;  // sorted by topic, then partition

  struct MemberRow {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
  };
  struct OffsetRow {
    std::string topic;
    int32_t partition = 0;
    int64_t committed_offset = -1;
    std::optional<int64_t> end_offset;  // the high watermark, when known
    bool end_offset_local = false;      // read from a replica on this node (else asked of the leader)
  };
  struct GroupRow {
    std::string group;
    std::string state;
    std::string protocol_type;
    std::vector<MemberRow> members;
    std::vector<OffsetRow> offsets;
  };
  std::vector<GroupRow> groups;  // the groups this node coordinates

  // Delete after consumption: one row per group listed in a topic's
  // delete.after.consumption.groups, for each partition of it led here whose
  // position the group's coordinator has answered (queue_retention.h).
  struct QueueRow {
    std::string topic;
    int32_t partition = 0;
    std::string group;
    std::optional<int64_t> consumed_offset;  // the group's committed offset; none: nothing consumed yet
    int64_t log_start_offset = 0;
    int64_t high_watermark = 0;
    // Records retained and not yet consumed by the group: high watermark - max(consumed, log start), at least 0.
    int64_t depth = 0;
  };
  std::vector<QueueRow> queues;  // sorted by topic, partition, group
  uint64_t group_rebalances = 0;

  ReplicationCounters replication;
  std::string log_dir;
};

// End offsets by partition.
using EndOffsetMap = std::map<std::pair<std::string, int32_t>, int64_t>;

// Taken on the network thread. `remote_end_offsets`: those of partitions this
// node holds no replica of, as their leaders last answered (remote_end_offsets.h).
// `queue_positions`: the queue groups' positions on the partitions led here.
StatusSnapshot take_status_snapshot(const Broker& broker, const EndOffsetMap& remote_end_offsets,
                                    const ConsumedPositions& queue_positions);

// The latest snapshot, handed from the network thread to the admin thread.
template <typename Snapshot>
class SnapshotBoard {
 public:
  void publish(std::shared_ptr<const Snapshot> snapshot) {
    std::lock_guard lock(mutex_);
    latest_ = std::move(snapshot);
  }
  // Null before the first one.
  std::shared_ptr<const Snapshot> latest() const {
    std::lock_guard lock(mutex_);
    return latest_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> latest_;
};
using StatusBoard = SnapshotBoard<StatusSnapshot>;

}  // namespace sluice::broker
