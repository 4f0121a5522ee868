// AlterConfigs (key 33), the older form of IncrementalAlterConfigs: a topic's
// explicit configs (or a broker's dynamic ones) become exactly the ones sent
// (those not mentioned go back to their defaults), validated as at topic
// creation, persisted, and applied.
#include <set>

#include "broker/handlers/config_resources.h"
#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/alter_configs_request.h"
#include "protocol/messages/alter_configs_response.h"

namespace sluice::broker {
namespace {

using protocol::AlterConfigsRequest;
using protocol::AlterConfigsResponse;
using protocol::ErrorCode;


controller::OperationResult replace(Broker& broker, const AlterConfigsRequest::AlterConfigsResource& resource,
                                    bool validate_only) {
  std::map<std::string, std::string> configs;
  for (const auto& config : resource.configs) {
    if (configs.count(config.name)) return {ErrorCode::kInvalidRequest, "Error due to duplicate config keys"};
    if (!config.value) return {ErrorCode::kInvalidRequest, "Null value not supported for : " + config.name};
    configs[config.name] = *config.value;
  }
  if (resource.resource_type == kBrokerConfigResource)
    return broker.controller->alter_broker_configs(resource.resource_name, configs, validate_only);
  if (resource.resource_type == kGroupConfigResource)
    return broker.controller->alter_group_configs(resource.resource_name, configs, validate_only);
  return broker.controller->alter_topic_configs(resource.resource_name, configs, validate_only);
}

}  // namespace

boost::asio::awaitable<void> handle_alter_configs(RequestContext& ctx) {
  auto request = ctx.decode<AlterConfigsRequest>();
  if (!ctx.broker.controller) {
    co_await forward_config_change<AlterConfigsResponse>(ctx, std::move(request));
    co_return;
  }
  AlterConfigsResponse reply;
  answer_config_resources(ctx, request.resources, reply.responses,
                          [&](const auto& resource) { return replace(ctx.broker, resource, request.validate_only); });
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
