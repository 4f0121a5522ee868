#include "controller/metadata_image.h"

#include <algorithm>
#include <stdexcept>

namespace sluice::controller {
namespace {

// Kafka's PartitionChangeRecord "no change" markers.
constexpr int32_t kNoLeaderChange = -2;
constexpr int8_t kNoRecoveryStateChange = -1;
// BrokerRegistrationChangeRecord.Fenced: Kafka's BrokerRegistrationFencingChange.
constexpr int8_t kFence = 1;
constexpr int8_t kUnfence = -1;

std::string uuid_text(const protocol::Uuid& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : id.bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace

std::vector<int32_t> PartitionState::target_replicas() const {
  std::vector<int32_t> target;
  for (int32_t r : replicas)
    if (std::find(removing_replicas.begin(), removing_replicas.end(), r) == removing_replicas.end()) target.push_back(r);
  return target;
}

const TopicInfo* MetadataImage::find_topic(std::string_view name) const {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second;
}

const TopicInfo* MetadataImage::find_topic(const protocol::Uuid& id) const {
  for (const auto& [name, topic] : topics_)
    if (topic.id == id) return &topic;
  return nullptr;
}

TopicInfo& MetadataImage::topic_by_id(const protocol::Uuid& id, std::string_view record) {
  if (const TopicInfo* topic = find_topic(id)) return const_cast<TopicInfo&>(*topic);
  throw std::runtime_error(std::string(record) + " for unknown topic id " + uuid_text(id));
}

const BrokerRegistration* MetadataImage::find_broker(int32_t id) const {
  auto it = brokers_.find(id);
  return it == brokers_.end() ? nullptr : &it->second;
}

std::vector<int32_t> MetadataImage::unfenced_brokers() const {
  std::vector<int32_t> ids;
  for (const auto& [id, broker] : brokers_)
    if (!broker.fenced) ids.push_back(id);
  return ids;
}

void MetadataImage::apply_config(const protocol::ConfigRecord& record) {
  std::map<std::string, std::string>* configs = nullptr;
  if (record.resource_type == kTopicResource) {
    auto it = topics_.find(record.resource_name);
    if (it == topics_.end()) throw std::runtime_error("ConfigRecord for unknown topic " + record.resource_name);
    configs = &it->second.configs;
  } else if (record.resource_type == kBrokerResource) {
    configs = &broker_configs_[record.resource_name];
  } else if (record.resource_type == kGroupResource) {
    configs = &group_configs_[record.resource_name];
  } else {
    return;  // resources this build does not use (client metrics)
  }
  if (record.value)
    (*configs)[record.name] = *record.value;
  else
    configs->erase(record.name);
  if (record.resource_type == kGroupResource && configs->empty()) group_configs_.erase(record.resource_name);
}

void MetadataImage::apply(const MetadataRecord& any) {
  using namespace protocol;
  if (const auto* r = std::get_if<TopicRecord>(&any)) {
    if (topics_.count(r->name) || find_topic(r->topic_id))
      throw std::runtime_error("TopicRecord for a topic that exists: " + r->name);
    TopicInfo topic;
    topic.name = r->name;
    topic.id = r->topic_id;
    topics_.emplace(r->name, std::move(topic));
  } else if (const auto* r = std::get_if<PartitionRecord>(&any)) {
    TopicInfo& topic = topic_by_id(r->topic_id, "PartitionRecord");
    if (r->partition_id < 0 || r->partition_id > topic.partition_count())
      throw std::runtime_error("PartitionRecord " + std::to_string(r->partition_id) + " of " + topic.name +
                               " leaves a gap after " + std::to_string(topic.partition_count()) + " partitions");
    PartitionState state{r->replicas, r->isr, r->leader, r->leader_epoch, r->partition_epoch,
                         r->leader_recovery_state, r->removing_replicas, r->adding_replicas};
    if (r->partition_id == topic.partition_count())
      topic.partitions.push_back(std::move(state));
    else
      topic.partitions[r->partition_id] = std::move(state);
  } else if (const auto* r = std::get_if<PartitionChangeRecord>(&any)) {
    TopicInfo& topic = topic_by_id(r->topic_id, "PartitionChangeRecord");
    if (r->partition_id < 0 || r->partition_id >= topic.partition_count())
      throw std::runtime_error("PartitionChangeRecord for unknown partition " + topic.name + "-" +
                               std::to_string(r->partition_id));
    PartitionState& p = topic.partitions[r->partition_id];
    if (r->isr) p.isr = *r->isr;
    if (r->replicas) p.replicas = *r->replicas;
    if (r->removing_replicas) p.removing_replicas = *r->removing_replicas;
    if (r->adding_replicas) p.adding_replicas = *r->adding_replicas;
    // As Kafka's PartitionRegistration.merge: naming a leader, even the same
    // one, starts a new leader epoch.
    if (r->leader != kNoLeaderChange) {
      p.leader = r->leader;
      ++p.leader_epoch;
    }
    if (r->leader_recovery_state != kNoRecoveryStateChange) p.leader_recovery_state = r->leader_recovery_state;
    ++p.partition_epoch;
  } else if (const auto* r = std::get_if<ConfigRecord>(&any)) {
    apply_config(*r);
  } else if (const auto* r = std::get_if<RemoveTopicRecord>(&any)) {
    const TopicInfo& topic = topic_by_id(r->topic_id, "RemoveTopicRecord");
    topics_.erase(topic.name);
  } else if (const auto* r = std::get_if<RegisterBrokerRecord>(&any)) {
    BrokerRegistration b;
    b.id = r->broker_id;
    b.incarnation_id = r->incarnation_id;
    b.epoch = r->broker_epoch;
    for (const auto& e : r->end_points) b.endpoints.push_back({e.name, e.host, e.port, e.security_protocol});
    b.rack = r->rack;
    b.fenced = r->fenced;
    b.in_controlled_shutdown = r->in_controlled_shutdown;
    brokers_[b.id] = std::move(b);
  } else if (const auto* r = std::get_if<UnregisterBrokerRecord>(&any)) {
    auto it = brokers_.find(r->broker_id);
    if (it != brokers_.end() && it->second.epoch == r->broker_epoch) brokers_.erase(it);
  } else if (const auto* r = std::get_if<FenceBrokerRecord>(&any)) {
    auto it = brokers_.find(r->id);
    if (it != brokers_.end() && it->second.epoch == r->epoch) it->second.fenced = true;
  } else if (const auto* r = std::get_if<UnfenceBrokerRecord>(&any)) {
    auto it = brokers_.find(r->id);
    if (it != brokers_.end() && it->second.epoch == r->epoch) it->second.fenced = false;
  } else if (const auto* r = std::get_if<BrokerRegistrationChangeRecord>(&any)) {
    auto it = brokers_.find(r->broker_id);
    if (it == brokers_.end() || it->second.epoch != r->broker_epoch) return;  // a registration since replaced
    if (r->fenced == kFence) it->second.fenced = true;
    if (r->fenced == kUnfence) it->second.fenced = false;
    if (r->in_controlled_shutdown == 1) it->second.in_controlled_shutdown = true;
  } else if (const auto* r = std::get_if<ProducerIdsRecord>(&any)) {
    next_producer_id_ = std::max(next_producer_id_, r->next_producer_id);
  }
  // NoOpRecord, FeatureLevelRecord: nothing in the image yet.
}

protocol::RegisterBrokerRecord registration_record(const BrokerRegistration& b) {
  protocol::RegisterBrokerRecord r;
  r.broker_id = b.id;
  r.incarnation_id = b.incarnation_id;
  r.broker_epoch = b.epoch;
  for (const auto& e : b.endpoints) {
    auto& ep = r.end_points.emplace_back();
    ep.name = e.listener;
    ep.host = e.host;
    ep.port = e.port;
    ep.security_protocol = e.security_protocol;
  }
  r.rack = b.rack;
  r.fenced = b.fenced;
  r.in_controlled_shutdown = b.in_controlled_shutdown;
  return r;
}

std::vector<MetadataRecord> MetadataImage::to_records() const {
  using namespace protocol;
  std::vector<MetadataRecord> out;
  for (const auto& [id, b] : brokers_) out.push_back(registration_record(b));
  for (const auto& [name, configs] : broker_configs_)
    for (const auto& [key, value] : configs) out.push_back(ConfigRecord{kBrokerResource, name, key, value});
  for (const auto& [name, configs] : group_configs_)
    for (const auto& [key, value] : configs) out.push_back(ConfigRecord{kGroupResource, name, key, value});
  for (const auto& [name, topic] : topics_) {
    out.push_back(TopicRecord{name, topic.id});
    for (int32_t p = 0; p < topic.partition_count(); ++p) {
      const PartitionState& s = topic.partitions[p];
      PartitionRecord r;
      r.partition_id = p;
      r.topic_id = topic.id;
      r.replicas = s.replicas;
      r.isr = s.isr;
      r.leader = s.leader;
      r.leader_recovery_state = s.leader_recovery_state;
      r.removing_replicas = s.removing_replicas;
      r.adding_replicas = s.adding_replicas;
      r.leader_epoch = s.leader_epoch;
      r.partition_epoch = s.partition_epoch;
      out.push_back(std::move(r));
    }
    for (const auto& [key, value] : topic.configs) out.push_back(ConfigRecord{kTopicResource, name, key, value});
  }
  if (next_producer_id_ > 0) {
    ProducerIdsRecord r;
    r.next_producer_id = next_producer_id_;
    out.push_back(r);
  }
  return out;
}

}  // namespace sluice::controller
