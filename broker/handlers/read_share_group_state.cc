// ReadShareGroupState (key 84): a partition leader that starts serving a
// share-partition reads its state; the read records the leader's epoch, so
// that an older leader's writes are fenced from then on
// (share_state_coordinator.h).
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_state_request.h"
#include "protocol/messages/read_share_group_state_request.h"
#include "protocol/messages/read_share_group_state_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_read_share_group_state(RequestContext& ctx) {
  auto request = ctx.decode<protocol::ReadShareGroupStateRequest>();
  protocol::ReadShareGroupStateResponse reply;
  if (request.group_id.empty()) co_return ctx.respond(reply);
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.results.emplace_back();
    topic_reply.topic_id = topic.topic_id;
    for (const auto& p : topic.partitions) {
      auto& out = topic_reply.partitions.emplace_back();
      out.partition = p.partition;
      out.start_offset = -1;
      if (auto refused = refuse_share_state_partition(ctx.broker, topic.topic_id, p.partition)) {
        out.error_code = static_cast<int16_t>(refused->error);
        out.error_message = refused->message;
        continue;
      }
      const ShareStateKey key{request.group_id, topic.topic_id, p.partition};  // not a temporary in co_await (GCC 12)
      const auto result = co_await ctx.broker.share_states->read(key, p.leader_epoch);
      out.error_code = static_cast<int16_t>(result.error);
      if (!result.message.empty()) out.error_message = result.message;
      if (result.error != protocol::ErrorCode::kNone) continue;
      out.state_epoch = result.state.state_epoch;
      out.start_offset = result.state.state.start_offset;
      for (const auto& b : result.state.state.batches)
        out.state_batches.push_back({b.first_offset, b.last_offset, static_cast<int8_t>(b.state), b.delivery_count});
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
