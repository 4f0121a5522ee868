#include "controller/metadata_delta.h"

namespace sluice::controller {

void publish_delta(const MetadataImage& before, const MetadataImage& after,
                   const std::vector<MetadataListener*>& listeners) {
  // A topic is the same topic only with the same id: a namesake recreated in
  // between is a deletion and a creation.
  for (const auto& [name, old_topic] : before.topics()) {
    const TopicInfo* now = after.find_topic(name);
    if (!now || now->id != old_topic.id)
      for (auto* l : listeners) l->on_topic_deleted(old_topic);
  }
  for (const auto& [name, topic] : after.topics()) {
    const TopicInfo* was = before.find_topic(name);
    if (!was || was->id != topic.id) {
      for (auto* l : listeners) l->on_topic_created(topic);
      continue;
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
}

}  // namespace sluice::controller
