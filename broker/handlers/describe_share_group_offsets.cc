// DescribeShareGroupOffsets (key 90): a share group's start offset on each
// partition (all it has state for, or those asked about) and, v1, its lag:
// the records below the high watermark it has not finished with
// (share_partition_manager.h). kafka-share-groups.sh --describe shows these.
// In a cluster the state comes from the share coordinators, and the high
// watermark of a partition led elsewhere from its leader (ListOffsets).
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/remote_end_offsets.h"
#include "broker/replica_manager.h"
#include "broker/status_snapshot.h"
#include "broker/share_group_coordinator.h"
#include "broker/share_partition_manager.h"
#include "protocol/messages/describe_share_group_offsets_request.h"
#include "protocol/messages/describe_share_group_offsets_response.h"

namespace sluice::broker {

using protocol::DescribeShareGroupOffsetsRequest;
using protocol::DescribeShareGroupOffsetsResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_describe_share_group_offsets(RequestContext& ctx) {
  auto request = ctx.decode<DescribeShareGroupOffsetsRequest>();
  Broker& broker = ctx.broker;
  DescribeShareGroupOffsetsResponse reply;
  for (const auto& group : request.groups) {
    auto& out = reply.groups.emplace_back();
    out.group_id = group.group_id;
    if (const ErrorCode owner = broker.groups.ownership(group.group_id); owner != ErrorCode::kNone) {
      out.error_code = static_cast<int16_t>(owner);
      continue;
    }
    // On a single node from the state store; in a cluster from the share coordinators.
    std::vector<SharePartitionManager::PartitionRef> asked;
    if (group.topics)
      for (const auto& t : *group.topics)
        for (int32_t index : t.partitions) asked.push_back({t.topic_name, index});
    std::map<SharePartitionManager::PartitionRef, SharePartitionManager::Progress> progress;
    if (broker.share_persister)  // not a co_await inside ?: (GCC 12 miscompiles it)
      progress = co_await broker.share_partitions->progress_from_coordinators(group.group_id, asked);
    else
      progress = broker.share_partitions->progress_of(group.group_id);
    if (progress.empty() && !broker.share_groups->exists(group.group_id)) {
      out.error_code = static_cast<int16_t>(ErrorCode::kGroupIdNotFound);
      out.error_message = "Group " + group.group_id + " not found.";
      continue;
    }
    // The partitions asked about, or every one the group has state for.
    std::map<std::string, std::vector<int32_t>> wanted;
    if (group.topics) {
      for (const auto& t : *group.topics) wanted[t.topic_name] = t.partitions;
    } else {
      for (const auto& [ref, p] : progress) wanted[ref.first].push_back(ref.second);
    }
    // The high watermarks of partitions led elsewhere (a cluster), asked of their leaders for the lag.
    std::set<std::pair<std::string, int32_t>> remote;
    for (const auto& [ref, p] : progress)
      if (Partition* local = broker.replicas.find(ref.first, ref.second); !local || !local->is_leader)
        remote.insert(ref);
    EndOffsetMap remote_ends;
    if (!remote.empty() && broker.share_persister) {
      RemoteEndOffsets leaders(broker.executor, broker.config, broker.metadata);
      co_await leaders.refresh(remote, std::chrono::milliseconds(2000));
      remote_ends = leaders.known();
    }
    for (const auto& [topic, partitions] : wanted) {
      const controller::TopicInfo* info = broker.metadata.find_topic(topic);
      auto& topic_out = out.topics.emplace_back();
      topic_out.topic_name = topic;
      if (info) topic_out.topic_id = info->id;
      for (int32_t index : partitions) {
        auto& p = topic_out.partitions.emplace_back();
        p.partition_index = index;
        p.start_offset = -1;
        p.leader_epoch = -1;
        if (!info || index < 0 || index >= info->partition_count()) {
          p.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
          continue;
        }
        p.leader_epoch = info->partitions[index].leader_epoch;
        auto it = progress.find({topic, index});
        if (it == progress.end()) continue;  // not initialized: start offset and lag -1
        p.start_offset = it->second.start_offset;
        int64_t high_watermark = -1;
        if (Partition* local = broker.replicas.find(topic, index); local && local->is_leader)
          high_watermark = local->high_watermark();
        else if (auto end = remote_ends.find({topic, index}); end != remote_ends.end())
          high_watermark = end->second;
        if (high_watermark >= 0)
          p.lag = std::max<int64_t>(0, high_watermark - it->second.start_offset - it->second.done_in_flight);
      }
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
