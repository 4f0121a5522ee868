#include "broker/topic_settings.h"

#include <stdexcept>

namespace sluice::broker {
namespace {

// retention.ms's broker default comes from the first of these that is set.
std::optional<std::pair<std::string, std::string>> broker_retention_ms(const BrokerConfig& config) {
  if (config.source("log.retention.ms") == ConfigSource::kStaticBroker)
    return std::pair{std::string("log.retention.ms"), config.get_string("log.retention.ms")};
  if (config.source("log.retention.minutes") == ConfigSource::kStaticBroker)
    return std::pair{std::string("log.retention.minutes"),
                     std::to_string(config.get_long("log.retention.minutes") * 60'000)};
  if (config.source("log.retention.hours") == ConfigSource::kStaticBroker)
    return std::pair{std::string("log.retention.hours"), std::to_string(config.get_long("log.retention.hours") * 3'600'000)};
  return std::nullopt;
}

// segment.ms's broker default: log.roll.ms, else log.roll.hours.
std::optional<std::pair<std::string, std::string>> broker_segment_ms(const BrokerConfig& config) {
  if (config.source("log.roll.ms") == ConfigSource::kStaticBroker)
    return std::pair{std::string("log.roll.ms"), config.get_string("log.roll.ms")};
  if (config.source("log.roll.hours") == ConfigSource::kStaticBroker)
    return std::pair{std::string("log.roll.hours"), std::to_string(config.get_long("log.roll.hours") * 3'600'000)};
  return std::nullopt;
}

}  // namespace

EffectiveConfig effective_topic_config(const BrokerConfig& config, const controller::TopicInfo& topic,
                                       const controller::TopicConfigDefinition& definition) {
  if (auto it = topic.configs.find(definition.name); it != topic.configs.end())
    return {it->second, ConfigSource::kDynamicTopic, ""};
  if (std::string_view(definition.name) == "retention.ms") {
    if (auto set = broker_retention_ms(config)) return {set->second, ConfigSource::kStaticBroker, set->first};
    return {definition.default_value, ConfigSource::kDefault, ""};
  }
  if (std::string_view(definition.name) == "segment.ms") {
    if (auto set = broker_segment_ms(config)) return {set->second, ConfigSource::kStaticBroker, set->first};
    return {definition.default_value, ConfigSource::kDefault, ""};
  }
  if (definition.broker_synonym && config.source(definition.broker_synonym) == ConfigSource::kStaticBroker)
    return {config.get_string(definition.broker_synonym), ConfigSource::kStaticBroker, definition.broker_synonym};
  return {definition.default_value, ConfigSource::kDefault, ""};
}

std::string topic_config_value(const BrokerConfig& config, const controller::TopicInfo& topic, std::string_view name) {
  const controller::TopicConfigDefinition* def = controller::find_topic_config(name);
  if (!def) throw std::out_of_range("unknown topic config " + std::string(name));
  return effective_topic_config(config, topic, *def).value;
}

}  // namespace sluice::broker
