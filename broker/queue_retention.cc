#include "broker/queue_retention.h"

#include <set>
#include <vector>

#include "broker/broker.h"
#include "broker/cluster_view.h"
#include "broker/group_coordinator.h"
#include "broker/log.h"
#include "broker/replica_manager.h"
#include "broker/share_group_coordinator.h"
#include "broker/share_partition_manager.h"
#include "protocol/error_codes.h"
#include "protocol/messages/offset_fetch_request.h"
#include "protocol/messages/offset_fetch_response.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::OffsetFetchRequest;
using protocol::OffsetFetchResponse;

// v8: several groups in one request, each with the partitions wanted.
constexpr int16_t kOffsetFetchVersion = 8;

using PartitionKey = std::pair<std::string, int32_t>;
// (group, partition) -> committed offset, -1 for none: what this round learnt.
using Answers = std::map<std::pair<std::string, PartitionKey>, int64_t>;

}  // namespace

QueueRetention::QueueRetention(Broker& broker) : broker_(broker) {}

int32_t QueueRetention::coordinator_of(const std::string& group) const {
  const controller::TopicInfo* offsets = broker_.metadata.find_topic(controller::kOffsetsTopic);
  if (!offsets) return -1;  // no group has committed anything in this cluster yet
  const int32_t shard = broker_.groups.shard_of(group);
  if (shard < 0 || shard >= offsets->partition_count()) return -1;
  return offsets->partitions[shard].leader;
}

boost::asio::awaitable<void> QueueRetention::release_consumed(std::chrono::milliseconds timeout) {
  // The led partitions of queue topics, by group.
  std::map<std::string, std::set<PartitionKey>> wanted;
  std::set<PartitionKey> queue_partitions;
  broker_.replicas.for_each_partition([&](Partition& p) {
    if (!p.is_leader || p.release_groups.empty()) return;
    queue_partitions.insert({p.topic, p.index});
    for (const auto& group : p.release_groups) wanted[group].insert({p.topic, p.index});
  });

  Answers answered;
  std::map<int32_t, OffsetFetchRequest> remote;  // by coordinator
  const int32_t self = broker_.config.node_id();
  for (const auto& [group, partitions] : wanted) {
    // A share group's position is its share-partition start offset, which
    // this broker keeps as the partition's leader. (An id names one kind of
    // group: with no share state here, the group is asked as a consumer group.)
    bool share_group = false;
    if (broker_.share_partitions)
      for (const auto& tp : partitions)
        if (auto start = broker_.share_partitions->start_offset(group, tp.first, tp.second)) {
          answered[{group, tp}] = *start;
          share_group = true;
        }
    if (share_group || (broker_.share_groups && broker_.share_groups->exists(group))) {
      for (const auto& tp : partitions) answered.try_emplace({group, tp}, -1);  // not consumed yet
      continue;
    }
    const ErrorCode owner = broker_.groups.ownership(group);
    if (owner == ErrorCode::kNone) {
      for (const auto& tp : partitions) {
        const auto committed = broker_.groups.committed(group, {tp.first, tp.second});
        answered[{group, tp}] = committed ? committed->offset : -1;
      }
      continue;
    }
    const int32_t coordinator = coordinator_of(group);
    if (!broker_.groups.sharded() || coordinator < 0 || coordinator == self) continue;  // loading here, or unknown
    auto& request_group = remote[coordinator].groups.emplace_back();
    request_group.group_id = group;
    request_group.topics.emplace();
    for (const auto& [topic, index] : partitions) {
      if (request_group.topics->empty() || request_group.topics->back().name != topic)
        request_group.topics->emplace_back().name = topic;
      request_group.topics->back().partition_indexes.push_back(index);
    }
  }

  for (auto& [coordinator, request] : remote) {
    std::string host;
    uint16_t port = 0;
    if (!inter_broker_endpoint(broker_.config, broker_.metadata, coordinator, host, port)) continue;
    Link& link = links_[coordinator];
    if (!link.connection || link.host != host || link.port != port)
      link = Link{host, port,
                  std::make_unique<OutboundConnection>(broker_.executor, host, port,
                                                       "sluice-queue-retention-" + std::to_string(self))};
    try {
      auto reply = co_await link.connection->call<OffsetFetchResponse>(request, kOffsetFetchVersion, timeout);
      for (const auto& group : reply.body.groups) {
        if (group.error_code != 0) continue;  // NOT_COORDINATOR, loading...: unknown this round
        for (const auto& topic : group.topics)
          for (const auto& p : topic.partitions)
            if (p.error_code == 0) answered[{group.group_id, {topic.name, p.partition_index}}] = p.committed_offset;
      }
    } catch (const std::exception& e) {
      SLUICE_LOG(kDebug, "consumed positions from broker " << coordinator << ": " << e.what());
    }
  }
  for (auto it = links_.begin(); it != links_.end();)
    it = broker_.metadata.find_broker(it->first) ? std::next(it) : links_.erase(it);

  // Release, from what holds now: the partition may have changed hands, or
  // its list of groups, while the answers came.
  ConsumedPositions positions;
  for (const auto& tp : queue_partitions) {
    ErrorCode not_led = ErrorCode::kNone;
    Partition* partition = broker_.replicas.find_led(tp.first, tp.second, not_led);
    if (!partition || partition->release_groups.empty()) continue;
    int64_t release_to = partition->high_watermark();
    bool all_known = true;
    for (const auto& group : partition->release_groups) {
      const auto it = answered.find({group, tp});
      const auto key = std::make_tuple(tp.first, tp.second, group);
      if (it == answered.end()) {
        all_known = false;
        if (auto before = positions_.find(key); before != positions_.end()) positions.insert(*before);
        continue;
      }
      positions[key] = it->second >= 0 ? std::optional<int64_t>(it->second) : std::nullopt;
      release_to = std::min(release_to, it->second);
    }
    if (!all_known || release_to <= partition->log->log_start_offset()) continue;
    try {
      broker_.replicas.release_consumed(*partition, release_to);
      SLUICE_LOG(kDebug, tp.first << "-" << tp.second << ": consumed up to " << release_to << ", log start moved");
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "releasing consumed records of " << tp.first << "-" << tp.second << " failed: " << e.what());
    }
  }
  positions_ = std::move(positions);
}

}  // namespace sluice::broker
