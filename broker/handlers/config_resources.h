// What AlterConfigs and IncrementalAlterConfigs share: each resource of the
// request gets its own answer; topics are changed through `alter_topic`, other
// resource types (brokers, loggers) cannot be changed at run time here yet.
#pragma once

#include <optional>
#include <string>

#include "controller/controller.h"
#include "protocol/error_codes.h"

namespace sluice::broker {

constexpr int8_t kTopicConfigResource = 2;

template <typename Resources, typename Responses, typename AlterTopic>
void answer_config_resources(const Resources& resources, Responses& responses, AlterTopic alter_topic) {
  for (const auto& resource : resources) {
    auto& out = responses.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    const controller::OperationResult result =
        resource.resource_type == kTopicConfigResource
            ? alter_topic(resource)
            : controller::OperationResult{protocol::ErrorCode::kInvalidRequest,
                                          "Only topic configs can be changed at run time on this broker"};
    out.error_code = static_cast<int16_t>(result.error);
    out.error_message = result.ok() ? std::nullopt : std::optional<std::string>(result.message);
  }
}

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

}  // namespace sluice::broker
