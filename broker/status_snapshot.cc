#include "broker/status_snapshot.h"

#include <algorithm>
#include <chrono>

#include "broker/broker.h"
#include "broker/steady_clock.h"

namespace sluice::broker {
namespace {

StatusSnapshot::Replica replica_status(const Partition& p, int64_t now_ms) {
  StatusSnapshot::Replica r;
  r.leader = p.is_leader;
  r.high_watermark = p.high_watermark();
  r.log_start_offset = p.log->log_start_offset();
  r.log_end_offset = p.log->log_end_offset();
  r.size_bytes = p.log->size_bytes();
  r.segments = p.log->segment_count();
  r.min_insync_replicas = p.min_insync_replicas;
  if (p.is_leader)
    for (const auto& [id, follower] : p.followers) {
      // One not heard from since this broker took the lead counts from its first fetch
      // (else every election would show the whole log as lag).
      if (follower.log_end_offset < 0) continue;
      r.max_follower_lag_records = std::max(r.max_follower_lag_records, r.log_end_offset - follower.log_end_offset);
      if (follower.log_end_offset < r.log_end_offset)
        r.max_follower_lag_ms = std::max(r.max_follower_lag_ms, now_ms - follower.last_caught_up_ms);
    }
  return r;
}

}  // namespace

StatusSnapshot take_status_snapshot(const Broker& broker, const EndOffsetMap& remote_end_offsets,
                                    const ConsumedPositions& queue_positions) {
  StatusSnapshot s;
  const BrokerConfig& config = broker.config;
  const controller::MetadataImage& image = broker.metadata;
  s.node_id = config.node_id();
  s.cluster_id = broker.cluster_id;
  s.roles = config.get_string("process.roles");
  s.has_broker_role = config.has_role("broker");
  s.log_dir = broker.replicas.log_dir().string();
  s.replication = broker.replicas.counters();
  s.group_rebalances = broker.groups.rebalances();

  // The controller. One voter today (controller.quorum.voters); a standalone node is its own.
  const auto voters = config.controller_quorum_voters();
  s.active_controller_id = voters.empty() ? s.node_id : voters.front().id;
  if (broker.controller) {
    s.is_active_controller = true;
    s.metadata_offset = broker.controller->log().durable_end_offset();
    s.metadata_records_applied = broker.controller->records_applied();
    for (size_t i = 0; i < s.controller_events.size(); ++i)
      s.controller_events[i] = broker.controller->events(static_cast<controller::Controller::Event>(i));
  } else if (broker.controller_link) {
    s.metadata_offset = broker.controller_link->applied_offset();
    s.metadata_records_applied = broker.controller_link->records_applied();
  }

  for (const auto& [id, b] : image.brokers()) {
    StatusSnapshot::BrokerRow row{id, b.rack, b.fenced, b.in_controlled_shutdown, {}};
    for (const auto& e : b.endpoints) row.endpoints.push_back({e.listener, e.host, e.port});
    s.brokers.push_back(std::move(row));
  }
  if (const controller::BrokerRegistration* self = image.find_broker(s.node_id)) {
    s.registered = true;
    s.fenced = self->fenced;
  }
  // A broker-only node also goes by what its heartbeats last said, and by their silence.
  if (broker.controller_link) {
    if (broker.controller_link->fenced()) s.fenced = true;
    s.controller_unreachable = std::chrono::steady_clock::now() - broker.controller_link->last_heartbeat_answered() >
                               std::chrono::milliseconds(config.get_long("broker.session.timeout.ms"));
  }

  const int64_t now = steady_now_ms();
  // End offsets of the partitions this node leads, for the groups' lag (a
  // follower's high watermark may be stale: the others are asked of their leaders).
  std::map<std::pair<std::string, int32_t>, int64_t> local_end_offsets;
  for (const auto& [name, topic] : image.topics()) {
    s.topics.push_back({name, controller::base64url(topic.id), topic.partition_count(), topic.replication_factor(),
                        topic.configs});
    for (int32_t i = 0; i < topic.partition_count(); ++i) {
      const controller::PartitionState& state = topic.partitions[i];
      StatusSnapshot::PartitionRow row{name, i, state.leader, state.leader_epoch, state.replicas, state.isr, {}};
      if (Partition* p = broker.replicas.find(name, i); p && p->log) {
        row.local = replica_status(*p, now);
        if (p->is_leader) local_end_offsets[{name, i}] = p->high_watermark();
      }
      s.partitions.push_back(std::move(row));
    }
  }

  for (const GroupSummary& summary : broker.groups.list()) {
    StatusSnapshot::GroupRow row{summary.group_id, summary.state, summary.protocol_type, {}, {}};
    if (auto described = broker.groups.describe(summary.group_id, /*with_payloads=*/false))
      for (const auto& m : described->members)
        row.members.push_back({m.member_id, m.group_instance_id, m.client_id, m.client_host});
    for (const auto& [tp, committed] : broker.groups.committed_offsets(summary.group_id)) {
      StatusSnapshot::OffsetRow offset{tp.first, tp.second, committed.offset, std::nullopt, false};
      if (auto it = local_end_offsets.find(tp); it != local_end_offsets.end()) {
        offset.end_offset = it->second;
        offset.end_offset_local = true;
      } else if (auto remote = remote_end_offsets.find(tp); remote != remote_end_offsets.end())
        offset.end_offset = remote->second;
      row.offsets.push_back(std::move(offset));
    }
    s.groups.push_back(std::move(row));
  }

  for (const auto& [key, consumed] : queue_positions) {
    const auto& [topic, index, group] = key;
    const Partition* p = broker.replicas.find(topic, index);
    if (!p || !p->is_leader || !p->log) continue;
    StatusSnapshot::QueueRow row{topic, index, group, consumed, p->log->log_start_offset(), p->high_watermark(), 0};
    row.depth = std::max<int64_t>(0, row.high_watermark - std::max(consumed.value_or(0), row.log_start_offset));
    s.queues.push_back(std::move(row));
  }
  return s;
}

}  // namespace sluice::broker
