// The group coordinator. Today it keeps committed offsets for consumer groups
// whose members assign partitions themselves ("simple" groups: generation -1,
// no member id), durable in the state store, and answers for them as Kafka's
// classic coordinator does. Group membership (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup) and rebalancing arrive with the rest of the consumer-groups work;
// the commit checks below are written against member state so that they stay
// right when members exist.
//
// Persistence goes through OffsetStore, the seam the replication work will
// replicate. Not thread-safe: used from the network thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/controller.h"
#include "protocol/error_codes.h"

namespace sluice::storage {
class StateStore;
}

namespace sluice::broker {

struct CommittedOffset {
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  int64_t commit_timestamp_ms = 0;
  bool operator==(const CommittedOffset&) const = default;
};

using TopicPartition = std::pair<std::string, int32_t>;

// Durable home of committed offsets. One implementation today: the LMDB state store.
class OffsetStore {
 public:
  virtual ~OffsetStore() = default;
  // Every committed offset of every group (start-up).
  virtual std::map<std::string, std::map<TopicPartition, CommittedOffset>> load() = 0;
  // Writes and removals of one call are applied atomically and durably.
  virtual void apply(std::string_view group, const std::map<TopicPartition, CommittedOffset>& upserts,
                     const std::vector<TopicPartition>& removals) = 0;
};

class StateStoreOffsetStore : public OffsetStore {
 public:
  explicit StateStoreOffsetStore(storage::StateStore& store) : store_(store) {}
  std::map<std::string, std::map<TopicPartition, CommittedOffset>> load() override;
  void apply(std::string_view group, const std::map<TopicPartition, CommittedOffset>& upserts,
             const std::vector<TopicPartition>& removals) override;

 private:
  storage::StateStore& store_;
};

class GroupCoordinator : public controller::MetadataListener {
 public:
  struct Options {
    int32_t max_metadata_bytes = 4096;      // offset.metadata.max.bytes
    int64_t retention_ms = 7 * 24 * 3600'000LL;  // offsets.retention.minutes
  };

  GroupCoordinator(OffsetStore& store, Options options);

  struct CommitRequest {
    std::string_view group_id;
    int32_t generation_id = -1;
    std::string_view member_id;
    std::optional<std::string_view> group_instance_id;
  };
  // Error for the whole commit (every partition gets it), or kNone when the
  // committer may commit. Mirrors Kafka's classic coordinator checks.
  protocol::ErrorCode validate_commit(const CommitRequest& request) const;

  // Commits offsets already validated (per partition) by the caller.
  void commit(std::string_view group_id, const std::map<TopicPartition, CommittedOffset>& offsets);

  // nullopt when the group has no offset for the partition.
  std::optional<CommittedOffset> committed(std::string_view group_id, const TopicPartition& tp) const;
  // Every committed offset of a group (empty if none).
  const std::map<TopicPartition, CommittedOffset>& committed_offsets(std::string_view group_id) const;

  // Drops offsets older than the retention (groups with no members only).
  void expire_offsets(int64_t now_ms);

  int32_t max_metadata_bytes() const { return options_.max_metadata_bytes; }

  // Offsets of deleted topics go with them.
  void on_topic_created(const controller::TopicInfo&) override {}
  void on_partitions_added(const controller::TopicInfo&, int32_t) override {}
  void on_topic_deleted(const controller::TopicInfo& topic) override;

 private:
  struct Group {
    std::map<TopicPartition, CommittedOffset> offsets;
  };

  OffsetStore& store_;
  Options options_;
  std::map<std::string, Group, std::less<>> groups_;
};

}  // namespace sluice::broker
