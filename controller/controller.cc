#include "controller/controller.h"

#include <random>

#include "controller/topic_config.h"
#include "storage/state_store.h"

namespace sluice::controller {
namespace {

using protocol::ErrorCode;

constexpr std::string_view kTopicPrefix = "topic/";
constexpr std::string_view kClusterIdKey = "cluster/id";
constexpr std::string_view kNextProducerIdKey = "cluster/next-producer-id";
constexpr size_t kMaxTopicNameLength = 249;

protocol::Uuid random_uuid() {
  std::random_device rd;
  protocol::Uuid id;
  for (auto& b : id.bytes) b = static_cast<uint8_t>(rd());
  id.bytes[6] = (id.bytes[6] & 0x0F) | 0x40;  // version 4
  id.bytes[8] = (id.bytes[8] & 0x3F) | 0x80;  // IETF variant
  return id;
}

// Kafka prints cluster ids as unpadded URL-safe base64 of a UUID (22 chars).
std::string base64url(const protocol::Uuid& id) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : id.bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3F];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 0x3F];
  return out;
}

std::string encode_topic(const TopicInfo& t) {
  protocol::Writer w;
  w.write_int8(1);  // record format version
  w.write_uuid(t.id);
  w.write_int32(t.partitions);
  w.write_int16(t.replication_factor);
  w.write_int32(static_cast<int32_t>(t.configs.size()));
  for (const auto& [k, v] : t.configs) {
    w.write_string(k);
    w.write_string(v);
  }
  return std::move(w.buffer());
}

TopicInfo decode_topic(std::string_view name, std::string_view bytes) {
  protocol::Reader r(bytes);
  TopicInfo t;
  t.name = std::string(name);
  if (r.read_int8() != 1) throw protocol::DecodeError("unknown topic record version");
  t.id = r.read_uuid();
  t.partitions = r.read_int32();
  t.replication_factor = r.read_int16();
  int32_t n = r.read_array_length(4);
  for (int32_t i = 0; i < n; ++i) {
    std::string k = r.read_string();
    t.configs[k] = r.read_string();
  }
  return t;
}

// Kafka treats '.' and '_' as the same in metric names, so two topics that
// differ only there would collide.
std::string collision_key(std::string_view name) {
  std::string key(name);
  for (char& c : key)
    if (c == '.') c = '_';
  return key;
}

}  // namespace

std::optional<std::string> invalid_topic_name_reason(std::string_view name) {
  if (name.empty()) return "Topic name is illegal, it can't be empty";
  if (name == "." || name == "..") return "Topic name cannot be \".\" or \"..\"";
  if (name.size() > kMaxTopicNameLength)
    return "Topic name is illegal, it can't be longer than 249 characters, topic name: " + std::string(name);
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      return "Topic name \"" + std::string(name) +
             "\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'";
  }
  return std::nullopt;
}

Controller::Controller(storage::StateStore& store, Options options) : store_(store), options_(options) {
  if (auto next = store_.get(kNextProducerIdKey)) next_producer_id_ = std::stoll(*next);
  if (auto id = store_.get(kClusterIdKey)) {
    cluster_id_ = *id;
  } else {
    cluster_id_ = base64url(random_uuid());
    store_.put(kClusterIdKey, cluster_id_);
  }
  store_.scan(kTopicPrefix, [&](std::string_view key, std::string_view value) {
    std::string_view name = key.substr(kTopicPrefix.size());
    topics_.emplace(std::string(name), decode_topic(name, value));
  });
}

const TopicInfo* Controller::find_topic(std::string_view name) const {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second;
}

const TopicInfo* Controller::find_topic(const protocol::Uuid& id) const {
  for (const auto& [name, topic] : topics_)
    if (topic.id == id) return &topic;
  return nullptr;
}

int64_t Controller::allocate_producer_ids(int32_t count) {
  const int64_t first = next_producer_id_;
  store_.put(kNextProducerIdKey, std::to_string(first + count));
  next_producer_id_ = first + count;
  return first;
}

void Controller::persist(const TopicInfo& topic) { store_.put(std::string(kTopicPrefix) + topic.name, encode_topic(topic)); }

OperationResult Controller::create_topic(std::string_view name, int32_t partitions, int16_t replication_factor,
                                         const std::vector<std::vector<int32_t>>& assignments,
                                         const std::map<std::string, std::string>& configs, bool validate_only,
                                         const TopicInfo** created) {
  if (auto reason = invalid_topic_name_reason(name)) return {ErrorCode::kInvalidTopicException, *reason};
  if (find_topic(name)) return {ErrorCode::kTopicAlreadyExists, "Topic '" + std::string(name) + "' already exists."};
  for (const auto& [existing, _] : topics_)
    if (collision_key(existing) == collision_key(name))
      return {ErrorCode::kInvalidTopicException,
              "Topic '" + std::string(name) + "' collides with existing topic: " + existing};

  const std::vector<int32_t> brokers = live_brokers();
  if (!assignments.empty()) {
    if (partitions != -1 || replication_factor != -1)
      return {ErrorCode::kInvalidRequest,
              "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."};
    for (size_t p = 0; p < assignments.size(); ++p) {
      if (assignments[p].empty()) return {ErrorCode::kInvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."};
      if (assignments[p].size() != assignments[0].size())
        return {ErrorCode::kInvalidReplicaAssignment, "All partitions in the manual partition assignment must have the same number of replicas."};
      for (int32_t b : assignments[p])
        if (std::find(brokers.begin(), brokers.end(), b) == brokers.end())
          return {ErrorCode::kInvalidReplicaAssignment,
                  "The manual partition assignment includes broker " + std::to_string(b) + ", but no such broker is registered."};
    }
    partitions = static_cast<int32_t>(assignments.size());
    replication_factor = static_cast<int16_t>(assignments[0].size());
  }
  if (partitions == -1) partitions = options_.default_partitions;
  if (replication_factor == -1) replication_factor = options_.default_replication_factor;
  if (partitions <= 0) return {ErrorCode::kInvalidPartitions, "Number of partitions was set to an invalid non-positive value."};
  if (replication_factor <= 0)
    return {ErrorCode::kInvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value."};
  if (static_cast<size_t>(replication_factor) > brokers.size())
    return {ErrorCode::kInvalidReplicationFactor,
            "Unable to replicate the partition " + std::to_string(replication_factor) +
                " time(s): The target replication factor of " + std::to_string(replication_factor) +
                " cannot be reached because only " + std::to_string(brokers.size()) + " broker(s) are registered."};
  for (const auto& [key, value] : configs)
    if (auto problem = validate_topic_config(key, value)) return {ErrorCode::kInvalidConfig, *problem};
  if (validate_only) return {};

  TopicInfo topic;
  topic.name = std::string(name);
  do topic.id = random_uuid();
  while (find_topic(topic.id));
  topic.partitions = partitions;
  topic.replication_factor = replication_factor;
  topic.configs = configs;
  persist(topic);
  auto [it, _] = topics_.emplace(topic.name, std::move(topic));
  try {
    for (auto* l : listeners_) l->on_topic_created(it->second);
  } catch (const std::exception& e) {
    TopicInfo undone = std::move(it->second);
    topics_.erase(it);
    store_.erase(std::string(kTopicPrefix) + undone.name);
    for (auto* l : listeners_) {
      try {
        l->on_topic_deleted(undone);
      } catch (const std::exception&) {  // nothing more to undo with
      }
    }
    return {ErrorCode::kKafkaStorageError, "Could not create the logs of topic '" + undone.name + "': " + e.what()};
  }
  if (created) *created = &it->second;
  return {};
}

OperationResult Controller::delete_topic(std::string_view name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return {ErrorCode::kUnknownTopicOrPartition, "This server does not host this topic-partition."};
  store_.erase(std::string(kTopicPrefix) + it->second.name);
  TopicInfo removed = std::move(it->second);
  topics_.erase(it);
  for (auto* l : listeners_) l->on_topic_deleted(removed);
  return {};
}

OperationResult Controller::alter_topic_configs(std::string_view name, const std::map<std::string, std::string>& configs,
                                                bool validate_only) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return {ErrorCode::kUnknownTopicOrPartition, "The topic '" + std::string(name) + "' does not exist."};
  for (const auto& [key, value] : configs)
    if (auto problem = validate_topic_config(key, value)) return {ErrorCode::kInvalidConfig, *problem};
  if (validate_only) return {};
  it->second.configs = configs;
  persist(it->second);
  for (auto* l : listeners_) l->on_topic_configs_changed(it->second);
  return {};
}

OperationResult Controller::create_partitions(std::string_view name, int32_t new_total, bool validate_only) {
  auto it = topics_.find(name);
  if (it == topics_.end()) return {ErrorCode::kUnknownTopicOrPartition, "This server does not host this topic-partition."};
  TopicInfo& topic = it->second;
  if (new_total < topic.partitions)
    return {ErrorCode::kInvalidPartitions, "The topic " + topic.name + " currently has " + std::to_string(topic.partitions) +
                                               " partition(s); " + std::to_string(new_total) +
                                               " would not be an increase."};
  if (new_total == topic.partitions)
    return {ErrorCode::kInvalidPartitions, "Topic already has " + std::to_string(topic.partitions) + " partition(s)."};
  if (validate_only) return {};
  int32_t old = topic.partitions;
  topic.partitions = new_total;
  persist(topic);
  try {
    for (auto* l : listeners_) l->on_partitions_added(topic, old);
  } catch (const std::exception& e) {
    topic.partitions = old;
    persist(topic);
    for (auto* l : listeners_) {
      try {
        l->on_partitions_removed(topic);
      } catch (const std::exception&) {  // nothing more to undo with
      }
    }
    return {ErrorCode::kKafkaStorageError, "Could not create the logs of the new partitions of topic '" + topic.name +
                                               "': " + e.what()};
  }
  return {};
}

}  // namespace sluice::controller
