// AlterShareGroupOffsets (key 91): a share group with no members starts over
// on the partitions named, at the offsets given (kafka-share-groups.sh
// --reset-offsets, which resolves earliest/latest/... with ListOffsets first);
// answered once the new state is durable (share_partition_manager.h).
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_request.h"
#include "broker/replica_manager.h"
#include "broker/share_group_coordinator.h"
#include "protocol/messages/alter_share_group_offsets_request.h"
#include "protocol/messages/alter_share_group_offsets_response.h"

namespace sluice::broker {

using protocol::AlterShareGroupOffsetsRequest;
using protocol::AlterShareGroupOffsetsResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_alter_share_group_offsets(RequestContext& ctx) {
  auto request = ctx.decode<AlterShareGroupOffsetsRequest>();
  Broker& broker = ctx.broker;
  AlterShareGroupOffsetsResponse reply;
  const auto refused = co_await refuse_share_group_change(broker, request.group_id);
  if (refused) {
    reply.error_code = static_cast<int16_t>(refused->error);
    reply.error_message = refused->message;
    ctx.respond(reply);
    co_return;
  }
  SharePartitionManager& manager = *broker.share_partitions;
  const uint64_t since = manager.write_position();
  for (const auto& topic : request.topics) {
    auto& topic_out = reply.responses.emplace_back();
    topic_out.topic_name = topic.topic_name;
    const controller::TopicInfo* info = broker.metadata.find_topic(topic.topic_name);
    if (info) topic_out.topic_id = info->id;
    for (const auto& p : topic.partitions) {
      auto& out = topic_out.partitions.emplace_back();
      out.partition_index = p.partition_index;
      if (broker.share_persister) {  // a cluster: the share coordinator's state, wherever the partition is led
        info = broker.metadata.find_topic(topic.topic_name);  // again: the image may have changed while this waited
        if (!info || p.partition_index < 0 || p.partition_index >= info->partition_count())
          out.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
        else if (p.start_offset < 0)
          out.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
        else
          out.error_code = static_cast<int16_t>(co_await manager.reset_start_remotely(
              request.group_id, topic.topic_name, p.partition_index, p.start_offset));
        continue;
      }
      ErrorCode not_led = ErrorCode::kNone;
      Partition* partition = broker.replicas.find_led(topic.topic_name, p.partition_index, not_led);
      if (!partition || !partition->log) {
        out.error_code = static_cast<int16_t>(partition ? ErrorCode::kNotLeaderOrFollower : not_led);
        continue;
      }
      if (p.start_offset < 0) {
        out.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
        out.error_message = "The start offset must not be negative.";
        continue;
      }
      manager.reset_start(request.group_id, *partition, p.start_offset);
    }
  }
  if (!broker.share_persister && !co_await manager.wait_durable(since))  // a cluster's answers are in already
    for (auto& topic : reply.responses)
      for (auto& p : topic.partitions)
        if (p.error_code == 0) p.error_code = static_cast<int16_t>(ErrorCode::kKafkaStorageError);
  ctx.respond(reply);
}

}  // namespace sluice::broker
