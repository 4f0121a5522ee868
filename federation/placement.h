// Where a federated topic lives: the member clusters holding its partitions,
// in order. A topic on one cluster has one segment; a topic split over N
// clusters has N, and its federated partitions are numbered through them:
// 12 partitions as {a: 6, b: 6} are a's partitions 0-5 as 0-5 and b's 0-5 as
// 6-11. The member topic has the federated topic's name on every member.
// Offsets are the member's own, plus the segment's offset base of the
// partition: zero for a topic created or adopted in place; for one moved from
// another member (topic_mover.h), where the copy began, so that an offset
// names the same record before and after the move.
//
// The topic id is the federation's, minted when it first placed or adopted
// the topic: clients see one id whatever the members' ids are.
//
// Stored in the federation's LMDB map (placement_store.h) as text, one value
// per topic (FORMATS.md, "The federation's topic map").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/wire.h"

namespace sluice::federation {

struct PlacementSegment {
  std::string cluster;
  int32_t partitions = 0;
  // The member partition of the segment's first partition: 0, but for the
  // later segments of a member a topic was spread to (topic_mover.h), which
  // holds its partitions from several segments in one member topic.
  int32_t first_member_partition = 0;
  // Federated offset = member offset + offset_bases[i] for the segment's i-th partition; empty: all zero.
  std::vector<int64_t> offset_bases = {};

  int64_t offset_base(int32_t i) const { return offset_bases.empty() ? 0 : offset_bases[static_cast<size_t>(i)]; }
};

struct TopicPlacement {
  protocol::Uuid topic_id;
  std::vector<PlacementSegment> segments;

  int32_t partition_count() const;
  // The member cluster and member partition of federated partition `p`.
  struct Location {
    const std::string* cluster = nullptr;
    int32_t partition = -1;
    int64_t offset_base = 0;
  };
  std::optional<Location> locate(int32_t p) const;
  // The federated partition of `cluster`'s partition `member_partition`, or -1.
  int32_t federated_partition(std::string_view cluster, int32_t member_partition) const;
  bool on(std::string_view cluster) const;
  // The (first) segment on `cluster`, or nullptr.
  const PlacementSegment* segment_on(std::string_view cluster) const;
};

std::string encode_placement(const TopicPlacement& placement);
// nullopt for text that is not a placement (a corrupt or newer value).
std::optional<TopicPlacement> decode_placement(std::string_view text);

// A random topic id, never the zero id (Kafka's Uuid.randomUuid).
protocol::Uuid new_topic_id();

// Member cluster names are written into the map's values: letters, digits,
// '-', '_' and '.' only.
bool valid_cluster_name(std::string_view name);

}  // namespace sluice::federation
