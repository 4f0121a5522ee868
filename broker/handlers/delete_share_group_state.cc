// DeleteShareGroupState (key 86): a share-partition's state goes
// (share_state_coordinator.h); one that has none answers success.
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_state_request.h"
#include "protocol/messages/delete_share_group_state_request.h"
#include "protocol/messages/delete_share_group_state_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_delete_share_group_state(RequestContext& ctx) {
  auto request = ctx.decode<protocol::DeleteShareGroupStateRequest>();
  protocol::DeleteShareGroupStateResponse reply;
  if (request.group_id.empty()) co_return ctx.respond(reply);
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.results.emplace_back();
    topic_reply.topic_id = topic.topic_id;
    for (const auto& p : topic.partitions) {
      // A deleted topic's states may still be asked to go.
      auto result = refuse_share_state_partition(ctx.broker, topic.topic_id, p.partition, /*must_exist=*/false);
      const ShareStateKey key{request.group_id, topic.topic_id, p.partition};  // not a temporary in co_await (GCC 12)
      if (!result) result = co_await ctx.broker.share_states->remove(key);
      add_partition_result(topic_reply.partitions, p.partition, *result);
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
