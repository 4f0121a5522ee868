// ReadShareGroupStateSummary (key 87): a share-partition's state epoch, leader
// epoch and start offset, and (v1) how many records from there on are done,
// without the batches; nothing is written. Uninitialized: start offset -1.
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_state_request.h"
#include "protocol/messages/read_share_group_state_summary_request.h"
#include "protocol/messages/read_share_group_state_summary_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_read_share_group_state_summary(RequestContext& ctx) {
  auto request = ctx.decode<protocol::ReadShareGroupStateSummaryRequest>();
  protocol::ReadShareGroupStateSummaryResponse reply;
  if (request.group_id.empty()) co_return ctx.respond(reply);
  ShareStateCoordinator& states = *ctx.broker.share_states;
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.results.emplace_back();
    topic_reply.topic_id = topic.topic_id;
    for (const auto& p : topic.partitions) {
      auto& out = topic_reply.partitions.emplace_back();
      out.partition = p.partition;
      out.start_offset = -1;
      out.delivery_complete_count = -1;
      if (auto refused = refuse_share_state_partition(ctx.broker, topic.topic_id, p.partition)) {
        out.error_code = static_cast<int16_t>(refused->error);
        if (!refused->message.empty()) out.error_message = refused->message;
        continue;
      }
      const auto summary = states.summary({request.group_id, topic.topic_id, p.partition});
      out.error_code = static_cast<int16_t>(summary.error);
      out.state_epoch = summary.state_epoch;
      out.leader_epoch = summary.leader_epoch;
      out.start_offset = summary.start_offset;
      out.delivery_complete_count = summary.delivery_complete_count;
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
