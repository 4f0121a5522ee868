#include "controller/topic_config.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace sluice::controller {
namespace {

constexpr int64_t kLongMax = INT64_MAX;
constexpr int64_t kIntMax = INT32_MAX;

const std::vector<TopicConfigDefinition> kTopicConfigs = {
    {"cleanup.policy", ConfigType::kList, "delete", "log.cleanup.policy"},
    {"compression.type", ConfigType::kString, "producer", "compression.type"},
    {kDeleteAfterConsumptionGroups, ConfigType::kList, "", nullptr, INT64_MIN, INT64_MAX,
     "Sluice: a queue's consumers. The group ids (consumer groups or share groups), comma-separated, whose "
     "consumption releases this topic's records: each partition's leader moves the log start offset up to the "
     "lowest position every listed group has consumed (a consumer group's committed offset), never past the "
     "high watermark, and deletes what lies below on every replica, as retention does. A listed group that has "
     "not consumed a partition yet holds all of it. Empty (the default): records are kept by retention alone."},
    {"delete.retention.ms", ConfigType::kLong, "86400000", nullptr, 0},
    {"file.delete.delay.ms", ConfigType::kLong, "60000", nullptr, 0},
    {"flush.messages", ConfigType::kLong, "9223372036854775807", "log.flush.interval.messages", 1},
    {"flush.ms", ConfigType::kLong, "9223372036854775807", "log.flush.interval.ms", 0},
    {"follower.replication.throttled.replicas", ConfigType::kList, "", nullptr},
    {"index.interval.bytes", ConfigType::kInt, "4096", "log.index.interval.bytes", 0, kIntMax},
    {"leader.replication.throttled.replicas", ConfigType::kList, "", nullptr},
    {"local.retention.bytes", ConfigType::kLong, "-2", nullptr, -2},
    {"local.retention.ms", ConfigType::kLong, "-2", nullptr, -2},
    {"max.compaction.lag.ms", ConfigType::kLong, "9223372036854775807", nullptr, 1},
    {"max.message.bytes", ConfigType::kInt, "1048588", "message.max.bytes", 0, kIntMax},
    {"message.downconversion.enable", ConfigType::kBoolean, "true", nullptr},
    {"message.format.version", ConfigType::kString, "3.0-IV1", nullptr},
    {"message.timestamp.after.max.ms", ConfigType::kLong, "9223372036854775807", nullptr, 0},
    {"message.timestamp.before.max.ms", ConfigType::kLong, "9223372036854775807", nullptr, 0},
    {"message.timestamp.difference.max.ms", ConfigType::kLong, "9223372036854775807", nullptr, 0},
    {"message.timestamp.type", ConfigType::kString, "CreateTime", "log.message.timestamp.type"},
    {"min.cleanable.dirty.ratio", ConfigType::kDouble, "0.5", nullptr},
    {"min.compaction.lag.ms", ConfigType::kLong, "0", nullptr, 0},
    {"min.insync.replicas", ConfigType::kInt, "1", "min.insync.replicas", 1, kIntMax},
    {"preallocate", ConfigType::kBoolean, "false", nullptr},
    {"remote.storage.enable", ConfigType::kBoolean, "false", nullptr},
    {"retention.bytes", ConfigType::kLong, "-1", "log.retention.bytes"},
    {"retention.ms", ConfigType::kLong, "604800000", "log.retention.ms", -1},
    {"segment.bytes", ConfigType::kInt, "1073741824", "log.segment.bytes", 14, kIntMax},
    {"segment.index.bytes", ConfigType::kInt, "10485760", nullptr, 4, kIntMax},
    {"segment.jitter.ms", ConfigType::kLong, "0", nullptr, 0},
    {"segment.ms", ConfigType::kLong, "604800000", nullptr, 1},
    {"unclean.leader.election.enable", ConfigType::kBoolean, "false", "unclean.leader.election.enable"},
};

// Bytes per second; unlimited by default.
const std::vector<TopicConfigDefinition> kDynamicBrokerConfigs = {
    {"follower.replication.throttled.rate", ConfigType::kLong, "9223372036854775807", nullptr, 0},
    {"leader.replication.throttled.rate", ConfigType::kLong, "9223372036854775807", nullptr, 0},
    {"replica.alter.log.dirs.io.max.bytes.per.second", ConfigType::kLong, "9223372036854775807", nullptr, 0},
};

// Kafka's group-level bounds (group.share.min/max.* broker keys, at their defaults).
const std::vector<TopicConfigDefinition> kGroupConfigs = {
    {"share.auto.offset.reset", ConfigType::kString, "latest", nullptr},
    {"share.delivery.count.limit", ConfigType::kInt, "5", "group.share.delivery.count.limit", 2, 10},
    {"share.heartbeat.interval.ms", ConfigType::kInt, "5000", "group.share.heartbeat.interval.ms", 5000, 15000},
    {"share.isolation.level", ConfigType::kString, "read_uncommitted", nullptr},
    {"share.partition.max.record.locks", ConfigType::kInt, "2000", "group.share.partition.max.record.locks", 100, 10000},
    {"share.record.lock.duration.ms", ConfigType::kInt, "30000", "group.share.record.lock.duration.ms", 15000, 60000},
    {"share.session.timeout.ms", ConfigType::kInt, "45000", "group.share.session.timeout.ms", 45000, 60000},
};

bool parse_int64(std::string_view text, int64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

std::vector<std::string_view> split(std::string_view list, char by) {
  std::vector<std::string_view> items;
  while (!list.empty()) {
    const size_t at = list.find(by);
    items.push_back(list.substr(0, at));
    if (at == std::string_view::npos) break;
    list.remove_prefix(at + 1);
  }
  return items;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Kafka's ThrottledReplicaListValidator: "*", or "partition:broker" items.
bool valid_throttled_replicas(std::string_view value) {
  if (trimmed(value) == "*") return true;
  for (std::string_view item : split(value, ',')) {
    item = trimmed(item);
    if (item.empty()) continue;
    const auto parts = split(item, ':');
    int64_t n = 0;
    if (parts.size() != 2 || !parse_int64(parts[0], n) || n < 0 || !parse_int64(parts[1], n) || n < 0) return false;
  }
  return true;
}

std::optional<std::string> validate(const TopicConfigDefinition* def, std::string_view name, std::string_view value);

}  // namespace

const std::vector<TopicConfigDefinition>& topic_config_definitions() { return kTopicConfigs; }

const TopicConfigDefinition* find_topic_config(std::string_view name) {
  for (const auto& def : kTopicConfigs)
    if (def.name == name) return &def;
  return nullptr;
}

std::optional<std::string> validate_topic_config(std::string_view name, std::string_view value) {
  const TopicConfigDefinition* def = find_topic_config(name);
  if (!def) return "Unknown topic config name: " + std::string(name);
  return validate(def, name, value);
}

const std::vector<TopicConfigDefinition>& dynamic_broker_config_definitions() { return kDynamicBrokerConfigs; }

const TopicConfigDefinition* find_dynamic_broker_config(std::string_view name) {
  for (const auto& def : kDynamicBrokerConfigs)
    if (def.name == name) return &def;
  return nullptr;
}

std::optional<std::string> validate_dynamic_broker_config(std::string_view name, std::string_view value) {
  const TopicConfigDefinition* def = find_dynamic_broker_config(name);
  if (!def) return "Cannot update these configs dynamically: " + std::string(name);
  return validate(def, name, value);
}

const std::vector<TopicConfigDefinition>& group_config_definitions() { return kGroupConfigs; }

const TopicConfigDefinition* find_group_config(std::string_view name) {
  for (const auto& def : kGroupConfigs)
    if (def.name == name) return &def;
  return nullptr;
}

std::optional<std::string> validate_group_config(std::string_view name, std::string_view value) {
  const TopicConfigDefinition* def = find_group_config(name);
  if (!def) return "Unknown group config name: " + std::string(name);
  if (name == "share.auto.offset.reset" && value != "latest" && value != "earliest")
    return "Invalid value " + std::string(value) + " for configuration share.auto.offset.reset: String must be one "
           "of: latest, earliest";
  if (name == "share.isolation.level" && value != "read_uncommitted" && value != "read_committed")
    return "Invalid value " + std::string(value) + " for configuration share.isolation.level: String must be one "
           "of: read_committed, read_uncommitted";
  return validate(def, name, value);
}

bool throttled_replicas_include(std::string_view list, int32_t partition, int32_t broker) {
  if (trimmed(list) == "*") return true;
  const std::string wanted = std::to_string(partition) + ":" + std::to_string(broker);
  for (std::string_view item : split(list, ','))
    if (trimmed(item) == wanted) return true;
  return false;
}

std::vector<std::string> list_config_items(std::string_view list) {
  std::vector<std::string> items;
  for (std::string_view item : split(list, ','))
    if (item = trimmed(item); !item.empty()) items.emplace_back(item);
  return items;
}

namespace {

std::optional<std::string> validate(const TopicConfigDefinition* def, std::string_view name, std::string_view value) {
  auto invalid = [&](const std::string& why) {
    return "Invalid value " + std::string(value) + " for configuration " + std::string(name) + ": " + why;
  };
  switch (def->type) {
    case ConfigType::kBoolean:
      if (value != "true" && value != "false") return invalid("Expected value to be either true or false");
      break;
    case ConfigType::kInt:
    case ConfigType::kShort:
    case ConfigType::kLong: {
      int64_t n = 0;
      if (!parse_int64(value, n)) return invalid("Not a number of type " + std::string(def->type == ConfigType::kLong ? "LONG" : "INT"));
      int64_t hi = def->type == ConfigType::kLong ? def->max : std::min<int64_t>(def->max, kIntMax);
      if (n < def->min || n > hi) return invalid("Value must be at least " + std::to_string(def->min));
      break;
    }
    case ConfigType::kDouble: {
      std::istringstream in{std::string(value)};
      double d = 0;
      if (!(in >> d) || !in.eof() || d < 0 || d > 1) return invalid("Value must be a number between 0 and 1");
      break;
    }
    default:
      break;
  }
  if (name == "cleanup.policy") {
    std::istringstream in{std::string(value)};
    std::string policy;
    while (std::getline(in, policy, ','))
      if (policy != "delete" && policy != "compact") return invalid("String must be one of: compact, delete");
  }
  if (name == "message.timestamp.type" && value != "CreateTime" && value != "LogAppendTime")
    return invalid("String must be one of: CreateTime, LogAppendTime");
  if (name == "compression.type" && value != "producer" && value != "uncompressed" && value != "gzip" &&
      value != "snappy" && value != "lz4" && value != "zstd")
    return invalid("String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer");
  if ((name == "leader.replication.throttled.replicas" || name == "follower.replication.throttled.replicas") &&
      !valid_throttled_replicas(value))
    return invalid(std::string(name) + " must be the literal '*' or a list of replicas in the following format: "
                                       "[partitionId]:[brokerId],[partitionId]:[brokerId],...");
  return std::nullopt;
}

}  // namespace

}  // namespace sluice::controller
