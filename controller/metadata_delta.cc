#include "controller/metadata_delta.h"

namespace sluice::controller {
namespace {

// A topic is the same topic only with the same id: a namesake recreated in
// between is a deletion and a creation.
bool same_topic(const TopicInfo* was, const TopicInfo* now) { return was && now && was->id == now->id; }

void publish_if_deleted(const TopicInfo& was, const TopicInfo* now, const std::vector<MetadataListener*>& listeners) {
  if (!same_topic(&was, now))
    for (auto* l : listeners) l->on_topic_deleted(was);
}

void publish_changes(const TopicInfo* was, const TopicInfo& topic, const std::vector<MetadataListener*>& listeners) {
  if (!same_topic(was, &topic)) {
    for (auto* l : listeners) l->on_topic_created(topic);
    return;
  }
  if (topic.partition_count() > was->partition_count())
    for (auto* l : listeners) l->on_partitions_added(topic, was->partition_count());
  if (topic.configs != was->configs)
    for (auto* l : listeners) l->on_topic_configs_changed(topic);
  for (int32_t p = 0; p < was->partition_count() && p < topic.partition_count(); ++p) {
    const PartitionState &a = was->partitions[p], &b = topic.partitions[p];
    if (a.partition_epoch != b.partition_epoch || a.leader_epoch != b.leader_epoch)
      for (auto* l : listeners) l->on_partition_changed(topic, p);
  }
}

}  // namespace

void publish_delta(const MetadataImage& before, const MetadataImage& after,
                   const std::vector<MetadataListener*>& listeners) {
  for (const auto& [name, old_topic] : before.topics()) publish_if_deleted(old_topic, after.find_topic(name), listeners);
  for (const auto& [name, topic] : after.topics()) publish_changes(before.find_topic(name), topic, listeners);
}

void TouchedTopics::note(const MetadataImage& image, const MetadataRecord& record) {
  std::string name;
  if (const auto* r = std::get_if<protocol::TopicRecord>(&record)) {
    name = r->name;
  } else if (const auto* r = std::get_if<protocol::ConfigRecord>(&record)) {
    if (r->resource_type != kTopicResource) return;
    name = r->resource_name;
  } else {
    const protocol::Uuid* id = nullptr;
    if (const auto* p = std::get_if<protocol::PartitionRecord>(&record)) id = &p->topic_id;
    if (const auto* c = std::get_if<protocol::PartitionChangeRecord>(&record)) id = &c->topic_id;
    if (const auto* d = std::get_if<protocol::RemoveTopicRecord>(&record)) id = &d->topic_id;
    const TopicInfo* topic = id ? image.find_topic(*id) : nullptr;
    if (!topic) return;  // not a topic's record, or one the image refuses (apply throws)
    name = topic->name;
  }
  if (before_.find(name) != before_.end()) return;  // the first state seen is the one before
  const TopicInfo* topic = image.find_topic(name);
  before_.emplace(name, topic ? std::optional<TopicInfo>(*topic) : std::nullopt);
}

void TouchedTopics::publish(const MetadataImage& after, const std::vector<MetadataListener*>& listeners) const {
  for (const auto& [name, was] : before_)
    if (was) publish_if_deleted(*was, after.find_topic(name), listeners);
  for (const auto& [name, was] : before_)
    if (const TopicInfo* now = after.find_topic(name)) publish_changes(was ? &*was : nullptr, *now, listeners);
}

}  // namespace sluice::controller
