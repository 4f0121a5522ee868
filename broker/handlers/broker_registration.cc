// BrokerRegistration (key 62), on the controller listener: a broker starting
// up asks for a broker epoch.
#include <chrono>

#include "broker/handlers/handlers.h"
#include "broker/steady_clock.h"
#include "protocol/messages/broker_registration_request.h"
#include "protocol/messages/broker_registration_response.h"

namespace sluice::broker {

using protocol::BrokerRegistrationRequest;
using protocol::BrokerRegistrationResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_broker_registration(RequestContext& ctx) {
  auto request = ctx.decode<BrokerRegistrationRequest>();
  BrokerRegistrationResponse reply;
  controller::Controller& controller = *ctx.broker.controller;
  if (request.cluster_id != controller.cluster_id()) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInconsistentClusterId);
  } else {
    std::vector<controller::BrokerEndpoint> endpoints;
    for (const auto& l : request.listeners) endpoints.push_back({l.name, l.host, l.port, l.security_protocol});
    const int64_t now_ms = steady_now_ms();
    int64_t epoch = -1;
    auto result = controller.register_broker(request.broker_id, request.incarnation_id, endpoints, request.rack, &epoch,
                                             now_ms);
    reply.error_code = static_cast<int16_t>(result.error);
    if (result.ok()) reply.broker_epoch = epoch;
  }
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
