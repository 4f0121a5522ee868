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

bool parse_int64(std::string_view text, int64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty();
}

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
  return std::nullopt;
}

}  // namespace sluice::controller
