// What ShareFetch and ShareAcknowledge share: the member checks Kafka makes
// first, the acknowledgements of a request by partition, and where a
// partition's leader is when this broker is not it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "broker/cluster_view.h"
#include "broker/group_coordinator.h"
#include "broker/share_group_coordinator.h"
#include "broker/share_partition_manager.h"
#include "controller/metadata_image.h"
#include "protocol/error_codes.h"

namespace sluice::broker {

struct ShareRequestRefusal {
  protocol::ErrorCode error;
  std::string message;
};

// The checks that come first, in Kafka's order: a group id, a member id of 1
// to 36 characters (Kafka's isMemberIdValid: a UUID). Then Sluice's own: not
// a consumer group's id here (members or committed offsets), whose
// share-partitions would count as its position for delete after consumption.
inline std::optional<ShareRequestRefusal> refuse_share_request(const Broker& broker,
                                                               const std::optional<std::string>& group_id,
                                                               const std::optional<std::string>& member_id) {
  if (!group_id) return ShareRequestRefusal{protocol::ErrorCode::kInvalidRequest, "Group id must be set."};
  if (!member_id || member_id->empty() || member_id->size() > 36)
    return ShareRequestRefusal{protocol::ErrorCode::kInvalidRequest, "Invalid member id."};
  if (broker.groups.describe(*group_id, false).has_value() || !broker.groups.committed_offsets(*group_id).empty())
    return ShareRequestRefusal{protocol::ErrorCode::kInvalidRequest, "Group " + *group_id + " is not a share group."};
  return std::nullopt;
}

// What AlterShareGroupOffsets and DeleteShareGroupOffsets check first: this
// broker coordinates the group, it is a share group (known here, or with
// state kept), and it has no members (NON_EMPTY_GROUP).
inline boost::asio::awaitable<std::optional<ShareRequestRefusal>> refuse_share_group_change(Broker& broker,
                                                                                          const std::string& group) {
  if (const protocol::ErrorCode owner = broker.groups.ownership(group); owner != protocol::ErrorCode::kNone)
    co_return ShareRequestRefusal{owner, ""};
  const auto summary = broker.share_groups->describe(group);
  if (!summary) {
    const bool has_state = co_await broker.share_partitions->has_state(group);
    if (!has_state) co_return ShareRequestRefusal{protocol::ErrorCode::kGroupIdNotFound, "Group " + group + " not found."};
  }
  if (summary && !summary->members.empty())
    co_return ShareRequestRefusal{protocol::ErrorCode::kNonEmptyGroup,
                                  "The group " + group + " is not empty: its members must leave first."};
  co_return std::nullopt;
}

// The answer to a session epoch continue_session() refused.
inline std::string session_error_message(protocol::ErrorCode error) {
  return error == protocol::ErrorCode::kShareSessionNotFound ? "The share session was not found."
                                                              : "The share session epoch is invalid.";
}

// The acknowledgement batches of a request's topics (ShareFetch's and
// ShareAcknowledge's have the same shape), by partition; topics whose id is
// unknown go to `unknown` instead.
template <typename Topics>
std::map<SharePartitionManager::PartitionRef, std::vector<SharePartition::Acknowledgement>> acknowledgements_of(
    const controller::MetadataImage& metadata, const Topics& topics, std::vector<protocol::Uuid>* unknown) {
  std::map<SharePartitionManager::PartitionRef, std::vector<SharePartition::Acknowledgement>> out;
  for (const auto& topic : topics) {
    const controller::TopicInfo* info = metadata.find_topic(topic.topic_id);
    if (!info) {
      if (unknown) unknown->push_back(topic.topic_id);
      continue;
    }
    for (const auto& partition : topic.partitions) {
      if (partition.acknowledgement_batches.empty()) continue;
      auto& batches = out[{info->name, partition.partition_index}];
      for (const auto& b : partition.acknowledgement_batches)
        batches.push_back({b.first_offset, b.last_offset, b.acknowledge_types});
    }
  }
  return out;
}

// In a cluster, reads the share-partitions of `refs` that this broker leads
// from their share coordinators, where not loaded yet, all at once
// (SharePartitionManager::load_all); those that could not be, with the error
// to answer: NOT_LEADER_OR_FOLLOWER (the client looks for the leader), or
// COORDINATOR_NOT_AVAILABLE (nothing is handed out of it this time).
inline boost::asio::awaitable<std::map<SharePartitionManager::PartitionRef, protocol::ErrorCode>>
load_share_partitions(Broker& broker, const std::string& group,
                      const std::set<SharePartitionManager::PartitionRef>& refs) {
  return broker.share_partitions->load_all(group, refs);
}

// Fills a partition answer's CurrentLeader from this broker's metadata, and
// adds the leader's endpoint to `endpoints` (NodeEndpoints) when a client must go there.
template <typename PartitionData, typename Endpoints>
void point_to_leader(const Broker& broker, const std::string& topic, int32_t index, PartitionData& out,
                     Endpoints& endpoints) {
  const controller::TopicInfo* info = broker.metadata.find_topic(topic);
  if (!info || index < 0 || index >= info->partition_count()) return;
  const controller::PartitionState& state = info->partitions[index];
  out.current_leader.leader_id = state.leader;
  out.current_leader.leader_epoch = state.leader_epoch;
  if (state.leader < 0) return;
  for (const auto& e : endpoints)
    if (e.node_id == state.leader) return;
  for (const BrokerEndpoint& b : advertised_brokers(broker))
    if (b.node_id == state.leader) endpoints.push_back({b.node_id, b.host, b.port, std::nullopt});
}

}  // namespace sluice::broker
