// InitializeShareGroupState (key 83): a share-partition's state starts afresh
// at a state epoch and start offset (share_state_coordinator.h). Sent by
// partition leaders and group coordinators to the share coordinator.
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_state_request.h"
#include "protocol/messages/initialize_share_group_state_request.h"
#include "protocol/messages/initialize_share_group_state_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_initialize_share_group_state(RequestContext& ctx) {
  auto request = ctx.decode<protocol::InitializeShareGroupStateRequest>();
  protocol::InitializeShareGroupStateResponse reply;
  if (request.group_id.empty()) co_return ctx.respond(reply);  // as Kafka: an empty answer
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.results.emplace_back();
    topic_reply.topic_id = topic.topic_id;
    for (const auto& p : topic.partitions) {
      auto result = refuse_share_state_partition(ctx.broker, topic.topic_id, p.partition);
      const ShareStateKey key{request.group_id, topic.topic_id, p.partition};  // not a temporary in co_await (GCC 12)
      if (!result) result = co_await ctx.broker.share_states->initialize(key, p.state_epoch, p.start_offset);
      add_partition_result(topic_reply.partitions, p.partition, *result);
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
