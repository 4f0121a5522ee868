// Routing a client request's partitions to the member brokers that serve
// them: the part every forwarding handler shares.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "federation/federation.h"
#include "protocol/error_codes.h"

namespace sluice::federation {

// Where federated partition `partition` of `topic` is served now.
struct Route {
  // UNKNOWN_TOPIC_OR_PARTITION; NOT_LEADER_OR_FOLLOWER when it has no leader
  // now (an unhealthy member, an election there): retriable, the client asks
  // for metadata and waits.
  protocol::ErrorCode error = protocol::ErrorCode::kNone;
  MemberCluster* member = nullptr;
  int32_t node = -1;  // the member broker leading it (with need_leader)
  int32_t member_partition = -1;
  int64_t offset_base = 0;  // federated offset = member offset + offset_base (placement.h)
};

inline Route route(const Federation& federation, const TopicPlacement* placement, const std::string& topic,
                   int32_t partition, bool need_leader = true) {
  Route r;
  const auto where = placement ? placement->locate(partition) : std::nullopt;
  r.member = where ? federation.member(*where->cluster) : nullptr;
  if (r.member == nullptr) {
    r.error = protocol::ErrorCode::kUnknownTopicOrPartition;
    return r;
  }
  r.member_partition = where->partition;
  r.offset_base = where->offset_base;
  if (!need_leader) return r;
  r.node = r.member->leader_of(topic, where->partition);
  if (r.node < 0) r.error = protocol::ErrorCode::kNotLeaderOrFollower;
  return r;
}

// The (topic, member) pairs a Produce or OffsetCommit forwards to, counted in
// flight (Federation::write_started) from before the first is sent until the
// answers are in: a move's switch waits for them.
class WritesInFlight {
 public:
  explicit WritesInFlight(Federation& federation) : federation_(federation) {}
  void add(const std::string& topic, const std::string& member) {
    for (const auto& w : writes_)
      if (w.first == topic && w.second == member) return;
    writes_.emplace_back(topic, member);
    federation_.write_started(topic, member);
  }
  ~WritesInFlight() {
    for (const auto& [topic, member] : writes_) federation_.write_finished(topic, member);
  }
  WritesInFlight(const WritesInFlight&) = delete;
  WritesInFlight& operator=(const WritesInFlight&) = delete;

 private:
  Federation& federation_;
  std::vector<std::pair<std::string, std::string>> writes_;
};

// One partition of a client's request, and the forwarded request it went in.
template <typename Target>
struct PartitionSlot {
  std::string topic;
  int32_t partition = 0;
  protocol::ErrorCode error = protocol::ErrorCode::kNone;
  Target* target = nullptr;
  int32_t member_partition = -1;
  int64_t offset_base = 0;
};

// A member's offset in the federated numbering (-1, "none", stays -1).
inline int64_t federated_offset(int64_t member_offset, int64_t offset_base) {
  return member_offset < 0 ? member_offset : member_offset + offset_base;
}

// The forwarded request for `key` (a member broker; a member for group
// requests), made and set up by `make` the first time. `targets` is a list:
// forward() holds references into it.
template <typename Target, typename Key, typename Make>
Target* target_for(std::list<Target>& targets, std::map<Key, Target*>& by_key, const Key& key, Make&& make) {
  Target*& target = by_key[key];
  if (target == nullptr) {
    target = &targets.emplace_back();
    make(*target);
  }
  return target;
}

}  // namespace sluice::federation
