// Heartbeat (key 12): a member says it is alive; the answer tells it when a
// rebalance has started (REBALANCE_IN_PROGRESS) so it rejoins.
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/heartbeat_request.h"
#include "protocol/messages/heartbeat_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_heartbeat(RequestContext& ctx) {
  auto request = ctx.decode<protocol::HeartbeatRequest>();
  protocol::HeartbeatResponse reply;
  reply.error_code = static_cast<int16_t>(ctx.broker.groups.heartbeat(request.group_id, request.generation_id,
                                                                      request.member_id, request.group_instance_id));
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
