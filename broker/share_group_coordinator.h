// Membership of share groups (KIP-932): members join, heartbeat and leave
// with ShareGroupHeartbeat, and the coordinator assigns them partitions of the
// topics they subscribe to. Several members may share a partition; which
// member gets which record is the partition leader's business (share_partition.h),
// so an assignment change needs no revocation: a member's new epoch and
// assignment take effect at once.
//
// Assignment (Kafka's "simple" assignor, for one subscription): the members
// that subscribe to a topic, sorted by id, and its partitions; with at least
// as many partitions as members, partition p goes to member p mod M; with more
// members than partitions, member m gets partition m mod P, so every member
// has one and the partitions are shared evenly.
//
// The group epoch moves whenever the members, their subscriptions or the
// subscribed topics' partitions change; a member's epoch becomes the group's
// when it is next given its assignment. Membership is soft state, as for
// classic groups: after the coordinator moves, members join again.
//
// The coordinator of a share group is the coordinator of a consumer group of
// the same id (group_coordinator.h: a shard of __consumer_offsets in a
// cluster). Not thread-safe: used from the network thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/metadata_image.h"
#include "protocol/error_codes.h"
#include "protocol/wire.h"

namespace sluice::broker {

struct ShareAssignedTopic {
  protocol::Uuid topic_id;
  std::string topic;
  std::vector<int32_t> partitions;
  bool operator==(const ShareAssignedTopic&) const = default;
};
using ShareAssignment = std::vector<ShareAssignedTopic>;  // by topic name

struct ShareMemberInfo {
  std::string member_id;
  int32_t member_epoch = 0;
  std::optional<std::string> rack_id;
  std::string client_id;
  std::string client_host;
  std::vector<std::string> subscribed_topics;  // sorted
  ShareAssignment assignment;
  int64_t last_heard_ms = 0;
};

struct ShareGroupSummary {
  std::string group_id;
  std::string state;  // Kafka's names: Empty, Stable
  int32_t group_epoch = 0;
  int32_t assignment_epoch = 0;
  std::vector<ShareMemberInfo> members;
};

class ShareGroupCoordinator {
 public:
  struct Options {
    int32_t session_timeout_ms = 45000;     // group.share.session.timeout.ms
    int32_t heartbeat_interval_ms = 5000;   // group.share.heartbeat.interval.ms
    int32_t max_size = 200;                 // group.share.max.size
  };
  ShareGroupCoordinator(Options options, const controller::MetadataImage& metadata);

  struct Heartbeat {
    std::string group_id;
    std::string member_id;
    int32_t member_epoch = 0;  // 0 joins, -1 leaves
    std::optional<std::string> rack_id;
    std::optional<std::vector<std::string>> subscribed_topics;  // null: unchanged
    std::string client_id;
    std::string client_host;
  };
  struct HeartbeatAnswer {
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    std::optional<std::string> message;
    int32_t member_epoch = 0;
    std::optional<ShareAssignment> assignment;  // set when the member is to (re)read it
  };
  HeartbeatAnswer heartbeat(const Heartbeat& request, int64_t now_ms);
  // The group's share.heartbeat.interval.ms / share.session.timeout.ms, else the broker's.
  int32_t heartbeat_interval_ms(std::string_view group_id) const;
  int32_t session_timeout_ms(std::string_view group_id) const;

  // Members not heard from for the session timeout leave. Returns the
  // (group, member) pairs that did.
  std::vector<std::pair<std::string, std::string>> expire_sessions(int64_t now_ms);

  bool exists(std::string_view group_id) const { return groups_.count(std::string(group_id)) > 0; }
  std::optional<ShareGroupSummary> describe(std::string_view group_id) const;
  std::vector<ShareGroupSummary> list() const;  // without members
  // DeleteGroups: only an empty group goes (NON_EMPTY_GROUP otherwise).
  protocol::ErrorCode delete_group(std::string_view group_id);
  // A coordinator that stops coordinating some groups (its shard moved) forgets them.
  template <typename Pred>
  void forget_if(Pred&& owned_elsewhere) {
    std::erase_if(groups_, [&](const auto& entry) { return owned_elsewhere(entry.first); });
  }

 private:
  struct Group {
    std::string id;
    int32_t group_epoch = 0;
    int32_t assignment_epoch = 0;
    std::map<std::string, ShareMemberInfo> members;
    std::map<std::string, int32_t> partition_counts;  // of the subscribed topics, at the last assignment
  };
  // The subscribed topics' partition counts as the metadata has them now.
  std::map<std::string, int32_t> subscribed_partitions(const Group& group) const;
  // Computes every member's assignment for the group's epoch.
  void assign(Group& group);

  Options options_;
  const controller::MetadataImage& metadata_;
  std::map<std::string, Group> groups_;
};

}  // namespace sluice::broker
