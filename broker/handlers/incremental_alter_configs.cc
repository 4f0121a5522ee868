// IncrementalAlterConfigs (key 44): changes some of a topic's configs (SET,
// DELETE back to the default, APPEND to / SUBTRACT from a list), validated as
// at topic creation, persisted, and applied to the topic's partitions at once;
// a broker's dynamic configs (the replication throttles) and a group's
// configs (share groups') the same way.
#include <algorithm>
#include <set>
#include <sstream>

#include "broker/handlers/config_resources.h"
#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "controller/topic_config.h"
#include "protocol/error_codes.h"
#include "protocol/messages/incremental_alter_configs_request.h"
#include "protocol/messages/incremental_alter_configs_response.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::IncrementalAlterConfigsRequest;
using protocol::IncrementalAlterConfigsResponse;

enum Operation : int8_t { kSet = 0, kDelete = 1, kAppend = 2, kSubtract = 3 };

std::vector<std::string> split_list(const std::string& value) {
  std::vector<std::string> items;
  std::istringstream in(value);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

controller::OperationResult alter(Broker& broker, const IncrementalAlterConfigsRequest::AlterConfigsResource& resource,
                                  bool validate_only) {
  // The configs as the controller has them: an earlier change may not be durable yet.
  const controller::MetadataImage& image = broker.controller->image();
  const bool for_broker = resource.resource_type == kBrokerConfigResource;
  const bool for_group = resource.resource_type == kGroupConfigResource;
  std::map<std::string, std::string> configs;
  if (for_broker) {
    if (const auto* current = image.broker_configs(resource.resource_name)) configs = *current;
  } else if (for_group) {
    if (const auto* current = image.group_configs(resource.resource_name)) configs = *current;
  } else {
    const controller::TopicInfo* topic = image.find_topic(resource.resource_name);
    if (!topic) return {ErrorCode::kUnknownTopicOrPartition, "The topic '" + resource.resource_name + "' does not exist."};
    configs = topic->configs;
  }
  std::set<std::string> seen;
  for (const auto& change : resource.configs) {
    if (!seen.insert(change.name).second)
      return {ErrorCode::kInvalidRequest, "Error due to duplicate config keys"};
    const controller::TopicConfigDefinition* def =
        for_broker  ? controller::find_dynamic_broker_config(change.name)
        : for_group ? controller::find_group_config(change.name)
                    : controller::find_topic_config(change.name);
    if (!def && for_broker) return {ErrorCode::kInvalidRequest, "Cannot update these configs dynamically: " + change.name};
    if (!def && for_group) return {ErrorCode::kInvalidConfig, "Unknown group config name: " + change.name};
    if (!def) return {ErrorCode::kInvalidConfig, "Unknown topic config name: " + change.name};
    switch (change.config_operation) {
      case kSet:
        if (!change.value) return {ErrorCode::kInvalidRequest, "Null value not supported for : " + change.name};
        configs[change.name] = *change.value;
        break;
      case kDelete:
        configs.erase(change.name);
        break;
      case kAppend:
      case kSubtract: {
        if (def->type != controller::ConfigType::kList)
          return {ErrorCode::kInvalidConfig, "Config value append is not allowed for config key: " + change.name};
        auto current = configs.count(change.name) ? configs[change.name] : std::string(def->default_value);
        std::vector<std::string> items = split_list(current);
        for (const auto& item : split_list(change.value.value_or(""))) {
          auto at = std::find(items.begin(), items.end(), item);
          if (change.config_operation == kAppend && at == items.end()) items.push_back(item);
          if (change.config_operation == kSubtract && at != items.end()) items.erase(at);
        }
        configs[change.name] = join_list(items);
        break;
      }
      default:
        return {ErrorCode::kInvalidRequest, "Unknown config operation " + std::to_string(change.config_operation)};
    }
  }
  if (for_broker) return broker.controller->alter_broker_configs(resource.resource_name, configs, validate_only);
  if (for_group) return broker.controller->alter_group_configs(resource.resource_name, configs, validate_only);
  return broker.controller->alter_topic_configs(resource.resource_name, configs, validate_only);
}

}  // namespace

boost::asio::awaitable<void> handle_incremental_alter_configs(RequestContext& ctx) {
  auto request = ctx.decode<IncrementalAlterConfigsRequest>();
  if (!ctx.broker.controller) {
    co_await forward_config_change<IncrementalAlterConfigsResponse>(ctx, std::move(request));
    co_return;
  }
  IncrementalAlterConfigsResponse reply;
  answer_config_resources(ctx, request.resources, reply.responses,
                          [&](const auto& resource) { return alter(ctx.broker, resource, request.validate_only); });
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
