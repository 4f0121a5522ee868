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

}  // namespace

QueueRetention::QueueRetention(Broker& broker) : broker_(broker) {}

int32_t QueueRetention::coordinator_of(const std::string& group) const {
  const controller::TopicInfo* offsets = broker_.metadata.find_topic(controller::kOffsetsTopic);
  if (!offsets) return -1;  // no group has committed anything in this cluster yet
  const int32_t shard = broker_.groups.shard_of(group);
  if (shard < 0 || shard >= offsets->partition_count()) return -1;
  return offsets->partitions[shard].leader;
}

bool QueueRetention::answer_locally(const std::string& group, const std::set<std::pair<std::string, int32_t>>& partitions,
                                    Answers& answered) const {
  // A share group's position is its share-partition start offset, which
  // this broker keeps as the partition's leader. (An id names one kind of
  // group: with no share state here, the group is asked as a consumer group.)
  bool share_group = broker_.share_groups && broker_.share_groups->exists(group);
  if (broker_.share_partitions)
    for (const auto& tp : partitions)
      if (auto start = broker_.share_partitions->start_offset(group, tp.first, tp.second)) {
        answered[{group, tp}] = *start;
        share_group = true;
      }
  if (share_group) {
    for (const auto& tp : partitions) answered.try_emplace({group, tp}, -1);  // not consumed yet
    return true;
  }
  if (broker_.groups.ownership(group) != ErrorCode::kNone) return false;
  for (const auto& tp : partitions) {
    const auto committed = broker_.groups.committed(group, {tp.first, tp.second});
    answered[{group, tp}] = committed ? committed->offset : -1;
  }
  return true;
}

boost::asio::awaitable<void> QueueRetention::release_consumed(std::chrono::milliseconds timeout) {
  // The led partitions of queue topics (with their topic's id), by group.
  std::map<std::string, std::set<PartitionKey>> wanted;
  std::map<PartitionKey, protocol::Uuid> queue_partitions;
  broker_.replicas.for_each_partition([&](Partition& p) {
    const controller::TopicInfo* topic = broker_.metadata.find_topic(p.topic);
    if (!p.is_leader || p.release_groups.empty() || !topic) return;
    queue_partitions[{p.topic, p.index}] = topic->id;
    for (const auto& group : p.release_groups) wanted[group].insert({p.topic, p.index});
  });

  // Groups coordinated elsewhere are asked first; what this broker knows
  // itself is read after those answers, so that it is no older than they are.
  Answers answered;
  std::map<int32_t, OffsetFetchRequest> remote;  // by coordinator
  const int32_t self = broker_.config.node_id();
  for (const auto& [group, partitions] : wanted) {
    Answers ignored;
    if (answer_locally(group, partitions, ignored)) continue;
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

  // In a cluster, a share group's state may be with its share coordinators
  // only (no member uses the partition here now): asked for the partitions
  // this broker does not hold it of. A group id names one kind of group, so
  // where a coordinator has state, the group is a share group.
  Answers share_answers;
  if (broker_.share_persister)
    for (const auto& [group, partitions] : wanted) {
      std::vector<SharePartitionManager::PartitionRef> unknown;
      for (const auto& tp : partitions)
        if (!broker_.share_partitions->start_offset(group, tp.first, tp.second)) unknown.push_back(tp);
      if (unknown.empty()) continue;
      const auto progress = co_await broker_.share_partitions->progress_from_coordinators(group, unknown);
      for (const auto& [tp, p] : progress) share_answers[{group, tp}] = p.start_offset;
    }

  for (const auto& [group, partitions] : wanted) answer_locally(group, partitions, answered);
  for (const auto& [key, start] : share_answers) answered[key] = start;

  // Release, from what holds now: the partition may have changed hands, its
  // topic been deleted and created again, or its list of groups changed,
  // while the answers came.
  ConsumedPositions positions;
  for (const auto& [tp, topic_id] : queue_partitions) {
    const controller::TopicInfo* topic = broker_.metadata.find_topic(tp.first);
    if (!topic || !(topic->id == topic_id)) continue;
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
