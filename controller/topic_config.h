// Topic-level configuration: Kafka's topic config keys, their defaults, the
// broker key each one falls back to, and validation of values a client sends.
// Also the broker configs that change at run time (Kafka's dynamic broker
// configs), kept in the metadata log like topic configs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::controller {

// Kafka's config types, numbered as DescribeConfigs (v3+) reports them.
enum class ConfigType : int8_t {
  kBoolean = 1, kString = 2, kInt = 3, kShort = 4, kLong = 5, kDouble = 6, kList = 7, kClass = 8, kPassword = 9
};

// Where a value came from, numbered as DescribeConfigs reports it.
enum class ConfigSource : int8_t {
  kDynamicTopic = 1, kDynamicBroker = 2, kDynamicDefaultBroker = 3, kStaticBroker = 4, kDefault = 5, kDynamicGroup = 8
};

struct TopicConfigDefinition {
  const char* name;
  ConfigType type;
  const char* default_value;   // Kafka's default when the broker key is unset
  const char* broker_synonym;  // broker key that supplies the default, or nullptr
  int64_t min = INT64_MIN;     // numeric bounds, inclusive
  int64_t max = INT64_MAX;
  // DescribeConfigs' documentation (v3+, when asked); set for Sluice's own keys.
  const char* documentation = nullptr;
};

// Sluice's own topic config: the groups whose consumption releases a
// partition's records (broker/queue_retention.h).
inline constexpr const char* kDeleteAfterConsumptionGroups = "delete.after.consumption.groups";

// Every topic config Kafka 3.9 describes, and Sluice's own, in name order.
const std::vector<TopicConfigDefinition>& topic_config_definitions();
const TopicConfigDefinition* find_topic_config(std::string_view name);

// nullopt when `value` is acceptable for config `name`, else Kafka-style
// wording of why not (the caller answers INVALID_CONFIG).
std::optional<std::string> validate_topic_config(std::string_view name, std::string_view value);

// The broker configs that can be set at run time, for one broker (resource
// name: its id) or for every broker (resource name ""), with
// IncrementalAlterConfigs or AlterConfigs: the replication throttles
// (kafka-reassign-partitions.sh --throttle). In name order.
const std::vector<TopicConfigDefinition>& dynamic_broker_config_definitions();
const TopicConfigDefinition* find_dynamic_broker_config(std::string_view name);
std::optional<std::string> validate_dynamic_broker_config(std::string_view name, std::string_view value);

// Group configs (Kafka's GroupConfig: a GROUP resource of IncrementalAlterConfigs),
// the share group ones: their defaults are the broker's group.share.* keys
// (broker_synonym). In name order.
const std::vector<TopicConfigDefinition>& group_config_definitions();
const TopicConfigDefinition* find_group_config(std::string_view name);
std::optional<std::string> validate_group_config(std::string_view name, std::string_view value);

// Whether a throttled-replicas list (leader.replication.throttled.replicas,
// follower.replication.throttled.replicas: "*" or "partition:broker,...")
// names `partition` on `broker`.
bool throttled_replicas_include(std::string_view list, int32_t partition, int32_t broker);

// The items of a list config ("a, b,,c" -> a, b, c): split at commas, spaces
// around items dropped, empty items skipped.
std::vector<std::string> list_config_items(std::string_view list);

}  // namespace sluice::controller
