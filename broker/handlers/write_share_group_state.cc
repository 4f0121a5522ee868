// WriteShareGroupState (key 85): a partition leader writes a share-partition's
// start offset and state batches, merged into the stored state and fenced by
// leader and state epochs (share_state_coordinator.h). v1 adds
// DeliveryCompleteCount, which Sluice computes from the batches instead.
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_state_request.h"
#include "protocol/messages/write_share_group_state_request.h"
#include "protocol/messages/write_share_group_state_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_write_share_group_state(RequestContext& ctx) {
  auto request = ctx.decode<protocol::WriteShareGroupStateRequest>();
  protocol::WriteShareGroupStateResponse reply;
  if (request.group_id.empty()) co_return ctx.respond(reply);
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.results.emplace_back();
    topic_reply.topic_id = topic.topic_id;
    for (const auto& p : topic.partitions) {
      auto result = refuse_share_state_partition(ctx.broker, topic.topic_id, p.partition);
      for (const auto& b : p.state_batches)
        if (!result && (b.first_offset < 0 || b.first_offset > b.last_offset || b.last_offset == INT64_MAX ||
                        (b.delivery_state != 0 && b.delivery_state != 2 && b.delivery_state != 4) ||
                        b.delivery_count < 0))
          result = ShareStateCoordinator::Result{protocol::ErrorCode::kInvalidRequest, "Invalid state batch."};
      if (!result) {
        std::vector<ShareStateBatch> batches;
        for (const auto& b : p.state_batches)
          batches.push_back({b.first_offset, b.last_offset, static_cast<ShareRecordState>(b.delivery_state),
                             b.delivery_count});
        const ShareStateKey key{request.group_id, topic.topic_id, p.partition};  // not a temporary in co_await (GCC 12)
        result = co_await ctx.broker.share_states->write(key, p.state_epoch, p.leader_epoch, p.start_offset, batches);
      }
      add_partition_result(topic_reply.partitions, p.partition, *result);
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
