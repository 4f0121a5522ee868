// The value a topic config has in effect: the topic's own setting, else the
// broker key it falls back to (e.g. retention.ms <- log.retention.ms), else
// Kafka's default. Used by produce checks and DescribeConfigs.
#pragma once

#include <string>
#include <string_view>

#include "broker/config.h"
#include "controller/controller.h"
#include "controller/topic_config.h"

namespace sluice::broker {

struct EffectiveConfig {
  std::string value;
  ConfigSource source = ConfigSource::kDefault;
  std::string synonym;  // the broker key the value came from, when it did
};

EffectiveConfig effective_topic_config(const BrokerConfig& config, const controller::TopicInfo& topic,
                                       const controller::TopicConfigDefinition& definition);
// Shortcut by name; throws std::out_of_range for an unknown name.
std::string topic_config_value(const BrokerConfig& config, const controller::TopicInfo& topic, std::string_view name);

}  // namespace sluice::broker
