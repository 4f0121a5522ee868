// What AlterConfigs and IncrementalAlterConfigs share: each resource of the
// request gets its own answer; topics, brokers (their dynamic configs:
// topic_config.h) and groups are changed through `alter`, other resource types
// (broker loggers, client metrics) cannot be changed at run time here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "broker/handlers/forward.h"
#include "controller/controller.h"
#include "protocol/error_codes.h"

namespace sluice::broker {

constexpr int8_t kTopicConfigResource = 2;
constexpr int8_t kBrokerConfigResource = 4;
constexpr int8_t kGroupConfigResource = 32;

// Every resource of the request answered with `code` (a forward to the
// controller that failed).
template <typename Resources, typename Responses>
void fail_config_resources(const Resources& resources, Responses& responses, protocol::ErrorCode code) {
  for (const auto& resource : resources) {
    auto& out = responses.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    out.error_code = static_cast<int16_t>(code);
  }
}

// Kafka's broker takes a BROKER resource only under its own id (or "", every
// broker); clients send each broker's to that broker. Checked where clients
// connect, not on the controller listener (a forwarded request was checked).
template <typename Resource>
std::optional<controller::OperationResult> misdirected(const RequestContext& ctx, const Resource& resource) {
  const std::string self = std::to_string(ctx.broker.config.node_id());
  if (ctx.listener != ListenerRole::kBroker || resource.resource_type != kBrokerConfigResource ||
      resource.resource_name.empty() || resource.resource_name == self)
    return std::nullopt;
  return controller::OperationResult{protocol::ErrorCode::kInvalidRequest,
                                     "Unexpected broker id, expected " + self + ", but received " + resource.resource_name};
}

template <typename Resources, typename Responses, typename Alter>
void answer_config_resources(const RequestContext& ctx, const Resources& resources, Responses& responses, Alter alter) {
  for (const auto& resource : resources) {
    auto& out = responses.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    const auto refused = misdirected(ctx, resource);
    const controller::OperationResult result =
        refused ? *refused
        : resource.resource_type == kTopicConfigResource || resource.resource_type == kBrokerConfigResource ||
                  resource.resource_type == kGroupConfigResource
            ? alter(resource)
            : controller::OperationResult{protocol::ErrorCode::kInvalidRequest,
                                          "Only topic, broker and group configs can be changed at run time on this broker"};
    out.error_code = static_cast<int16_t>(result.error);
    out.error_message = result.ok() ? std::nullopt : std::optional<std::string>(result.message);
  }
}

// A broker-only node: the resources it may take forwarded to the controller
// together, the others answered here, in the request's order.
template <typename Response, typename Request>
boost::asio::awaitable<void> forward_config_change(RequestContext& ctx, Request request) {
  std::vector<std::optional<controller::OperationResult>> refused;
  Request forwarded = request;
  forwarded.resources.clear();
  for (const auto& resource : request.resources) {
    refused.push_back(misdirected(ctx, resource));
    if (!refused.back()) forwarded.resources.push_back(resource);
  }
  Response answer;
  if (!forwarded.resources.empty()) {
    try {
      Reply<Response> reply = co_await ctx.broker.controller_link->template call<Response>(forwarded, ctx.api_version);
      answer = std::move(reply.body);
    } catch (const std::exception&) {
      answer = Response();
      fail_config_resources(forwarded.resources, answer.responses, protocol::ErrorCode::kRequestTimedOut);
    }
  }
  Response reply = answer;
  reply.responses.clear();
  size_t next = 0;
  for (size_t i = 0; i < request.resources.size(); ++i) {
    if (!refused[i]) {
      if (next < answer.responses.size()) reply.responses.push_back(answer.responses[next++]);
      continue;
    }
    auto& out = reply.responses.emplace_back();
    out.resource_type = request.resources[i].resource_type;
    out.resource_name = request.resources[i].resource_name;
    out.error_code = static_cast<int16_t>(refused[i]->error);
    out.error_message = refused[i]->message;
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
