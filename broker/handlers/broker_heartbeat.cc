// BrokerHeartbeat (key 63), on the controller listener: a broker's liveness,
// and its way in (unfencing) and out (controlled shutdown).
#include <chrono>

#include "broker/handlers/handlers.h"
#include "broker/steady_clock.h"
#include "protocol/messages/broker_heartbeat_request.h"
#include "protocol/messages/broker_heartbeat_response.h"

namespace sluice::broker {

using protocol::BrokerHeartbeatRequest;
using protocol::BrokerHeartbeatResponse;

boost::asio::awaitable<void> handle_broker_heartbeat(RequestContext& ctx) {
  auto request = ctx.decode<BrokerHeartbeatRequest>();
  const int64_t now_ms = steady_now_ms();
  auto outcome = ctx.broker.controller->heartbeat(request.broker_id, request.broker_epoch,
                                                  request.current_metadata_offset, request.want_fence,
                                                  request.want_shut_down, now_ms);
  BrokerHeartbeatResponse reply;
  reply.error_code = static_cast<int16_t>(outcome.result.error);
  reply.is_caught_up = outcome.is_caught_up;
  reply.is_fenced = outcome.is_fenced;
  reply.should_shut_down = outcome.should_shut_down;
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
