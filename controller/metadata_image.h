// The cluster's metadata as replaying the metadata log gives it: brokers and
// their registrations, topics with each partition's replicas, ISR, leader and
// epochs, topic configs, the producer-id high mark. The controller keeps the
// authoritative image; every broker will keep its own, built from the records
// it fetched. Nothing here is stored separately: a restart replays the log.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/metadata_records.h"
#include "protocol/wire.h"

namespace sluice::controller {

// One partition's replication state (Kafka's PartitionRegistration).
struct PartitionState {
  std::vector<int32_t> replicas;  // preferred order: the first is the preferred leader
  std::vector<int32_t> isr;
  int32_t leader = -1;           // -1: no leader (offline)
  int32_t leader_epoch = 0;      // bumped on every leader change
  int32_t partition_epoch = 0;   // bumped on every change of this partition
  int8_t leader_recovery_state = 0;  // 1 after an unclean election, until the leader recovered
  // A reassignment in progress (Kafka's KIP-455): `replicas` is the target
  // followed by `removing`; `adding` are the target's new replicas, copying.
  std::vector<int32_t> removing_replicas;
  std::vector<int32_t> adding_replicas;

  bool reassigning() const { return !removing_replicas.empty() || !adding_replicas.empty(); }
  // The replicas a reassignment in progress moves to (all of them when none is).
  std::vector<int32_t> target_replicas() const;
};

struct TopicInfo {
  std::string name;
  protocol::Uuid id;
  std::vector<PartitionState> partitions;       // indexed by partition id
  std::map<std::string, std::string> configs;   // explicit topic configs only

  int32_t partition_count() const { return static_cast<int32_t>(partitions.size()); }
  // Kafka stores no replication factor: it is the replica count of the partitions.
  int16_t replication_factor() const {
    return partitions.empty() ? 0 : static_cast<int16_t>(partitions.front().replicas.size());
  }
};

struct BrokerEndpoint {
  std::string listener;  // the listener's name, e.g. PLAINTEXT
  std::string host;
  uint16_t port = 0;
  int16_t security_protocol = 0;  // Kafka's SecurityProtocol id: 0 PLAINTEXT
};

// A broker as the controller registered it (Kafka's BrokerRegistration).
struct BrokerRegistration {
  int32_t id = -1;
  protocol::Uuid incarnation_id;  // new on every start: tells a restarted broker from its old self
  int64_t epoch = -1;             // the metadata offset of its registration
  std::vector<BrokerEndpoint> endpoints;
  std::optional<std::string> rack;
  bool fenced = true;
  bool in_controlled_shutdown = false;
};

// The record that registers `broker` as it is (a snapshot's, or a new registration's).
protocol::RegisterBrokerRecord registration_record(const BrokerRegistration& broker);

class MetadataImage {
 public:
  // Applies one record. Throws std::runtime_error on a record that does not
  // fit the image (a partition of an unknown topic, a gap in partition ids):
  // a log that replays to that is corrupt.
  void apply(const MetadataRecord& record);

  // Records that rebuild this image from nothing: a snapshot's content.
  std::vector<MetadataRecord> to_records() const;

  const std::map<std::string, TopicInfo, std::less<>>& topics() const { return topics_; }
  const TopicInfo* find_topic(std::string_view name) const;
  const TopicInfo* find_topic(const protocol::Uuid& id) const;
  const std::map<int32_t, BrokerRegistration>& brokers() const { return brokers_; }
  const BrokerRegistration* find_broker(int32_t id) const;
  // Dynamic configs of broker `name` (its id; "" for every broker), or null.
  const std::map<std::string, std::string>* broker_configs(std::string_view name) const {
    auto it = broker_configs_.find(std::string(name));
    return it == broker_configs_.end() ? nullptr : &it->second;
  }
  // A group's configs (IncrementalAlterConfigs on a GROUP resource: topic_config.h's group configs).
  const std::map<std::string, std::string>* group_configs(std::string_view name) const {
    auto it = group_configs_.find(std::string(name));
    return it == group_configs_.end() ? nullptr : &it->second;
  }
  // Ids of registered brokers that are not fenced, ascending.
  std::vector<int32_t> unfenced_brokers() const;
  // The first producer id not yet handed out in a block.
  int64_t next_producer_id() const { return next_producer_id_; }

 private:
  TopicInfo& topic_by_id(const protocol::Uuid& id, std::string_view record);
  void apply_config(const protocol::ConfigRecord& record);

  std::map<std::string, TopicInfo, std::less<>> topics_;
  std::map<int32_t, BrokerRegistration> brokers_;
  // Dynamic broker configs by resource name ("" for the cluster default, else a broker id).
  std::map<std::string, std::map<std::string, std::string>> broker_configs_;
  std::map<std::string, std::map<std::string, std::string>> group_configs_;
  int64_t next_producer_id_ = 0;
};

}  // namespace sluice::controller
