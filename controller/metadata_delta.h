// What changed between two images, told to listeners as the controller tells
// its in-process ones: how a broker that follows the metadata log over the
// network acts on the records it applied (open the logs of new partitions,
// delete those of deleted topics, take a new leader epoch...).
#pragma once

#include <vector>

#include "controller/controller.h"
#include "controller/metadata_image.h"

namespace sluice::controller {

// Tells each listener, in order: topics deleted (as they were), topics created,
// partitions added, configs changed, partitions whose replicas, ISR, leader or
// epochs changed.
void publish_delta(const MetadataImage& before, const MetadataImage& after,
                   const std::vector<MetadataListener*>& listeners);

}  // namespace sluice::controller
