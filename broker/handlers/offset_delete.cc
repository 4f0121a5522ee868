// OffsetDelete (key 47): drop a group's committed offsets for some partitions,
// except those of topics its live members subscribe to.
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/offsets_topic.h"
#include "protocol/messages/offset_delete_request.h"
#include "protocol/messages/offset_delete_response.h"

namespace sluice::broker {

using protocol::ErrorCode;

boost::asio::awaitable<void> handle_offset_delete(RequestContext& ctx) {
  auto request = ctx.decode<protocol::OffsetDeleteRequest>();
  // Partitions of unknown topics are answered here; the rest go to the coordinator.
  std::vector<TopicPartition> known;
  for (const auto& t : request.topics) {
    const controller::TopicInfo* info = ctx.broker.metadata.find_topic(t.name);
    for (const auto& p : t.partitions)
      if (info && p.partition_index >= 0 && p.partition_index < info->partition_count()) known.emplace_back(t.name, p.partition_index);
  }
  OffsetWrite write;
  auto [group_error, errors] = ctx.broker.groups.delete_offsets(request.group_id, known, &write);
  // In a cluster the removal is acknowledged once the replicas have it.
  if (group_error == ErrorCode::kNone) group_error = co_await await_offset_write(ctx.broker, write);

  protocol::OffsetDeleteResponse reply;
  reply.error_code = static_cast<int16_t>(group_error);
  if (group_error == ErrorCode::kNone) {
    size_t next = 0;
    for (const auto& t : request.topics) {
      auto& topic = reply.topics.emplace_back();
      topic.name = t.name;
      const controller::TopicInfo* info = ctx.broker.metadata.find_topic(t.name);
      for (const auto& p : t.partitions) {
        bool is_known = info && p.partition_index >= 0 && p.partition_index < info->partition_count();
        ErrorCode e = is_known ? errors[next++] : ErrorCode::kUnknownTopicOrPartition;
        topic.partitions.push_back({p.partition_index, static_cast<int16_t>(e)});
      }
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
