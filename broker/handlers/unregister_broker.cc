// UnregisterBroker (key 64): removes a broker from the cluster for good
// (kafka-cluster.sh unregister), once it holds no replica. A broker-only node
// forwards it to the controller, as Kafka's brokers do.
#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/unregister_broker_request.h"
#include "protocol/messages/unregister_broker_response.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::UnregisterBrokerRequest;
using protocol::UnregisterBrokerResponse;

boost::asio::awaitable<void> handle_unregister_broker(RequestContext& ctx) {
  auto request = ctx.decode<UnregisterBrokerRequest>();
  if (!ctx.broker.controller) {
    co_await forward_to_controller<UnregisterBrokerResponse>(
        ctx, request, [](UnregisterBrokerResponse& reply, ErrorCode code) { reply.error_code = static_cast<int16_t>(code); });
    co_return;
  }
  const controller::OperationResult result = ctx.broker.controller->unregister_broker(request.broker_id);
  UnregisterBrokerResponse reply;
  reply.error_code = static_cast<int16_t>(result.error);
  if (!result.ok()) reply.error_message = result.message;
  co_await metadata_changes_durable(ctx.broker);
  ctx.respond(reply);
}

}  // namespace sluice::broker
