// A broker-only node sends the metadata changes clients ask it for on to its
// controller, at the version the client used, and relays the answer, as
// Kafka's brokers forward them. When the controller cannot be reached in
// time, `fail` fills the answer with an error for every item
// (REQUEST_TIMED_OUT, what Kafka's forwarding gives).
#pragma once

#include <optional>
#include <utility>

#include "broker/controller_link.h"
#include "broker/request_context.h"
#include "protocol/error_codes.h"

namespace sluice::broker {

template <typename Response, typename Request, typename Fail>
boost::asio::awaitable<void> forward_to_controller(RequestContext& ctx, const Request& request, Fail fail) {
  std::optional<Response> answer;
  try {
    // Admin responses own their strings: the body outlives the frame.
    Reply<Response> reply = co_await ctx.broker.controller_link->template call<Response>(request, ctx.api_version);
    answer = std::move(reply.body);
  } catch (const std::exception&) {
    answer.emplace();
    fail(*answer, protocol::ErrorCode::kRequestTimedOut);
  }
  ctx.respond(*answer);
}

}  // namespace sluice::broker
