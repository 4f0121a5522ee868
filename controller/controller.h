// The cluster manager. Today it runs embedded in a single-node broker: it owns
// the topic metadata (names, ids, partition counts, topic configs), persists it
// in the state store, validates topic operations the way Kafka's controller
// does, and tells listeners (the broker's replica manager) what changed.
// Broker registration, heartbeats, fencing and leader election arrive with the
// multi-node issues.
//
// Not thread-safe: used from the broker's network thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error_codes.h"
#include "protocol/wire.h"

namespace sluice::storage {
class StateStore;
}

namespace sluice::controller {

struct TopicInfo {
  std::string name;
  protocol::Uuid id;
  int32_t partitions = 0;
  int16_t replication_factor = 1;
  std::map<std::string, std::string> configs;  // explicit topic configs only
};

// Kafka's controller turns one request into at most this many metadata
// records (a topic record, one per partition, one per config) and refuses
// what would take more. The same bound keeps one request (CreateTopics,
// CreatePartitions, a Metadata request that auto-creates) from having this
// broker create millions of partitions.
inline constexpr int64_t kMaxRecordsPerRequest = 10'000;

struct OperationResult {
  protocol::ErrorCode error = protocol::ErrorCode::kNone;
  std::string message;  // null in the response when empty
  bool ok() const { return error == protocol::ErrorCode::kNone; }
};

// Observes metadata changes; called after the change is durable.
class MetadataListener {
 public:
  virtual ~MetadataListener() = default;
  virtual void on_topic_created(const TopicInfo& topic) = 0;
  virtual void on_partitions_added(const TopicInfo& topic, int32_t old_count) = 0;
  virtual void on_topic_deleted(const TopicInfo& topic) = 0;
  // A topic's configs were altered (AlterConfigs / IncrementalAlterConfigs).
  virtual void on_topic_configs_changed(const TopicInfo& /*topic*/) {}
  // Undoes an on_partitions_added that a listener could not complete: the
  // partitions from `topic.partitions` on are gone again.
  virtual void on_partitions_removed(const TopicInfo& /*topic*/) {}
};
// A listener that cannot take a change (its logs could not be opened: no file
// descriptors or no space left) throws; the controller then undoes the change
// everywhere and answers KAFKA_STORAGE_ERROR, so that a topic or a partition
// count is never half made.

class Controller {
 public:
  struct Options {
    int32_t node_id = 1;
    int32_t default_partitions = 1;
    int16_t default_replication_factor = 1;
  };

  // Loads the persisted metadata (and creates the cluster id on first start).
  Controller(storage::StateStore& store, Options options);

  const std::string& cluster_id() const { return cluster_id_; }
  int32_t node_id() const { return options_.node_id; }
  // Brokers that can host replicas: this node until multi-node arrives.
  std::vector<int32_t> live_brokers() const { return {options_.node_id}; }

  const std::map<std::string, TopicInfo, std::less<>>& topics() const { return topics_; }
  const TopicInfo* find_topic(std::string_view name) const;
  const TopicInfo* find_topic(const protocol::Uuid& id) const;

  // Listeners are told in the order they were added.
  void add_listener(MetadataListener* listener) { listeners_.push_back(listener); }

  // partitions / replication_factor of -1 take the broker defaults; an empty
  // `assignments` lets the controller place replicas. `validate_only` checks
  // everything and changes nothing.
  OperationResult create_topic(std::string_view name, int32_t partitions, int16_t replication_factor,
                               const std::vector<std::vector<int32_t>>& assignments,
                               const std::map<std::string, std::string>& configs, bool validate_only,
                               const TopicInfo** created = nullptr);
  OperationResult delete_topic(std::string_view name);
  OperationResult create_partitions(std::string_view name, int32_t new_total, bool validate_only);
  // Replaces a topic's explicit configs with `configs` (each validated as at
  // creation), durably, and tells the listeners.
  OperationResult alter_topic_configs(std::string_view name, const std::map<std::string, std::string>& configs,
                                      bool validate_only);

  // Reserves `count` producer ids for an idempotent-producer id manager and
  // returns the first. The reservation is durable before it is returned, so an
  // id is never handed out twice, across restarts included (ids reserved and
  // not used before a crash are skipped, as Kafka does with its id blocks).
  int64_t allocate_producer_ids(int32_t count);

 private:
  void persist(const TopicInfo& topic);

  storage::StateStore& store_;
  Options options_;
  std::string cluster_id_;
  int64_t next_producer_id_ = 0;
  std::map<std::string, TopicInfo, std::less<>> topics_;
  std::vector<MetadataListener*> listeners_;
};

// Kafka's rules for topic names: 1-249 characters of [a-zA-Z0-9._-], not "."
// or "..". Returns the reason a name is invalid, or nullopt.
std::optional<std::string> invalid_topic_name_reason(std::string_view name);

}  // namespace sluice::controller
