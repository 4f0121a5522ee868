// What changed between two images, told to listeners as the controller tells
// its in-process ones: how a broker that follows the metadata log over the
// network acts on the records it applied (open the logs of new partitions,
// delete those of deleted topics, take a new leader epoch...).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/controller.h"
#include "controller/metadata_image.h"

namespace sluice::controller {

// Tells each listener, in order: topics deleted (as they were), topics created,
// partitions added, configs changed, partitions whose replicas, ISR, leader or
// epochs changed.
void publish_delta(const MetadataImage& before, const MetadataImage& after,
                   const std::vector<MetadataListener*>& listeners);

// The same for a batch of records applied to an image, without a copy of the
// whole image before them: only the topics the records touch are kept, as
// they were. note() each record before it is applied, then publish() once
// all are: the listeners hear what publish_delta(before, after) would say.
class TouchedTopics {
 public:
  void note(const MetadataImage& image, const MetadataRecord& record);
  void publish(const MetadataImage& after, const std::vector<MetadataListener*>& listeners) const;

 private:
  std::map<std::string, std::optional<TopicInfo>, std::less<>> before_;  // nullopt: it did not exist
};

}  // namespace sluice::controller
