// DeleteShareGroupOffsets (key 92): a share group with no members forgets its
// state on every partition of the topics named (kafka-share-groups.sh
// --delete-offsets); answered once the removal is durable.
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_request.h"
#include "protocol/messages/delete_share_group_offsets_request.h"
#include "protocol/messages/delete_share_group_offsets_response.h"

namespace sluice::broker {

using protocol::DeleteShareGroupOffsetsRequest;
using protocol::DeleteShareGroupOffsetsResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_delete_share_group_offsets(RequestContext& ctx) {
  auto request = ctx.decode<DeleteShareGroupOffsetsRequest>();
  Broker& broker = ctx.broker;
  DeleteShareGroupOffsetsResponse reply;
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
    auto& out = reply.responses.emplace_back();
    out.topic_name = topic.topic_name;
    const controller::TopicInfo* info = broker.metadata.find_topic(topic.topic_name);
    if (!info) {
      out.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
      out.error_message = "The topic " + topic.topic_name + " does not exist.";
      continue;
    }
    out.topic_id = info->id;
    if (broker.share_persister) {  // a cluster: with the share coordinators
      std::vector<SharePartitionManager::PartitionRef> refs;
      for (int32_t index = 0; index < info->partition_count(); ++index) refs.push_back({topic.topic_name, index});
      out.error_code = static_cast<int16_t>(co_await manager.delete_state_remotely(request.group_id, refs));
      continue;
    }
    manager.delete_topic_state(request.group_id, topic.topic_name);
  }
  if (!broker.share_persister && !co_await manager.wait_durable(since))  // a cluster's answers are in already
    for (auto& out : reply.responses)
      if (out.error_code == 0) out.error_code = static_cast<int16_t>(ErrorCode::kKafkaStorageError);
  ctx.respond(reply);
}

}  // namespace sluice::broker
