// What the share coordinator's RPCs (InitializeShareGroupState,
// ReadShareGroupState, WriteShareGroupState, DeleteShareGroupState,
// ReadShareGroupStateSummary) check first, partition by partition, as Kafka
// does: a topic id, a partition index that is not negative, and a topic and
// partition that exist. Partition leaders send them (share_state_persister.h).
#pragma once

#include <optional>
#include <string>

#include "broker/broker.h"
#include "broker/share_state_coordinator.h"
#include "protocol/error_codes.h"

namespace sluice::broker {

inline std::optional<ShareStateCoordinator::Result> refuse_share_state_partition(const Broker& broker,
                                                                                const protocol::Uuid& topic_id,
                                                                                int32_t partition,
                                                                                bool must_exist = true) {
  if (topic_id.is_zero())
    return ShareStateCoordinator::Result{protocol::ErrorCode::kInvalidRequest, "The topic id cannot be null."};
  if (partition < 0)
    return ShareStateCoordinator::Result{protocol::ErrorCode::kInvalidRequest, "The partition must be non-negative."};
  const controller::TopicInfo* topic = broker.metadata.find_topic(topic_id);
  if (must_exist && (!topic || partition >= topic->partition_count()))
    return ShareStateCoordinator::Result{protocol::ErrorCode::kUnknownTopicOrPartition, ""};
  return std::nullopt;
}

// One partition's answer (Kafka's PartitionResult: Partition, ErrorCode, ErrorMessage).
template <typename PartitionResults>
void add_partition_result(PartitionResults& results, int32_t partition, const ShareStateCoordinator::Result& result) {
  auto& out = results.emplace_back();
  out.partition = partition;
  out.error_code = static_cast<int16_t>(result.error);
  if (!result.message.empty()) out.error_message = result.message;
}

}  // namespace sluice::broker
