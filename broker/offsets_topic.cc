#include "broker/offsets_topic.h"

#include <algorithm>
#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.h"
#include "broker/cluster_view.h"
#include "broker/internal_topic.h"
#include "broker/log.h"
#include "broker/replication_wait.h"
#include "broker/share_group_coordinator.h"
#include "protocol/messages/offset_commit_key.h"
#include "protocol/messages/offset_commit_value.h"
#include "protocol/wire.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;

// The first int16 of a key is its record type (Kafka's coordinator record
// api keys); of a value, the version of its schema.
constexpr int16_t kLegacyOffsetCommitKey = 0;
constexpr int16_t kOffsetCommitKey = 1;
constexpr int16_t kGroupMetadataKey = 2;
// What Kafka's coordinator writes when the commit carries no expiry.
constexpr int16_t kOffsetCommitValueVersion = 3;

// Replays one partition of the topic from its start, then hands its groups
// to the coordinator, unless the leadership moved on meanwhile.
boost::asio::awaitable<void> load_shard(Broker& broker, int32_t index, int32_t leader_epoch) {
  const auto started = std::chrono::steady_clock::now();
  const auto chunk_bytes = static_cast<size_t>(broker.config.get_int("offsets.load.buffer.size"));
  GroupOffsets offsets;
  ReplayCount count;
  auto retry_in = std::chrono::seconds(1);
  for (;;) {
    offsets.clear();
    count = ReplayCount{};
    const bool complete = co_await replay_internal_partition(
        broker, controller::kOffsetsTopic, index, chunk_bytes,
        [&] { return broker.groups.loading(index, leader_epoch); },
        [&](std::optional<std::string_view> key, std::optional<std::string_view> value) {
          return replay_offsets_record(key, value, offsets);
        },
        count);
    if (!broker.groups.loading(index, leader_epoch)) co_return;
    if (complete) break;
    // A read failed (logged): try again rather than answer COORDINATOR_LOAD_IN_PROGRESS for good;
    // every second at first, then less often (a damaged segment would replay the shard and log each time).
    boost::asio::steady_timer timer(broker.executor);
    timer.expires_after(retry_in);
    retry_in = std::min(retry_in * 2, std::chrono::seconds(30));
    boost::system::error_code ignored;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  }
  // Offsets of topics deleted since they were committed are not served.
  for (auto& [group, group_offsets] : offsets)
    std::erase_if(group_offsets, [&](const auto& entry) { return !broker.metadata.find_topic(entry.first.first); });
  const size_t groups = offsets.size();
  broker.groups.finish_loading(index, std::move(offsets));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  SLUICE_LOG(kInfo, "coordinating the groups of " << controller::kOffsetsTopic << "-" << index << " (epoch "
                                                  << leader_epoch << "): " << groups << " groups from " << count.records
                                                  << " records in " << took.count() << " ms"
                                                  << (count.unreadable ? ", some records unreadable" : ""));
}

}  // namespace

protocol::KeyedRecord offset_commit_record(std::string_view group, const TopicPartition& tp,
                                           const CommittedOffset* offset) {
  protocol::KeyedRecord record;
  protocol::Writer key;
  key.write_int16(kOffsetCommitKey);
  protocol::OffsetCommitKey k;
  k.group = std::string(group);
  k.topic = tp.first;
  k.partition = tp.second;
  k.encode(key, 0);
  record.key = std::move(key.buffer());
  if (offset) {
    protocol::Writer value;
    value.write_int16(kOffsetCommitValueVersion);
    protocol::OffsetCommitValue v;
    v.offset = offset->offset;
    v.leader_epoch = offset->leader_epoch;
    v.metadata = offset->metadata.value_or("");
    v.commit_timestamp = offset->commit_timestamp_ms;
    v.encode(value, kOffsetCommitValueVersion);
    record.value = std::move(value.buffer());
  }
  return record;
}

bool replay_offsets_record(std::optional<std::string_view> key, std::optional<std::string_view> value,
                           GroupOffsets& offsets) {
  if (!key) return false;
  try {
    protocol::Reader k(*key);
    const int16_t type = k.read_int16();
    if (type == kGroupMetadataKey) return true;  // membership: not kept
    if (type != kOffsetCommitKey && type != kLegacyOffsetCommitKey) return false;
    protocol::OffsetCommitKey commit_key;
    commit_key.decode(k, 0);
    const TopicPartition tp{commit_key.topic, commit_key.partition};
    if (!value) {
      auto group = offsets.find(commit_key.group);
      if (group != offsets.end()) group->second.erase(tp);
      return true;
    }
    protocol::Reader v(*value);
    const int16_t version = v.read_int16();
    if (version < protocol::OffsetCommitValue::kMinVersion || version > protocol::OffsetCommitValue::kMaxVersion)
      return false;
    protocol::OffsetCommitValue commit;
    commit.decode(v, version);
    offsets[commit_key.group][tp] = CommittedOffset{commit.offset, commit.leader_epoch, commit.metadata,
                                                    commit.commit_timestamp};
    return true;
  } catch (const protocol::DecodeError&) {
    return false;
  }
}

OffsetWrite LogOffsetStore::apply(std::string_view group, const std::map<TopicPartition, CommittedOffset>& upserts,
                                  const std::vector<TopicPartition>& removals) {
  const int32_t index = groups_ ? groups_->shard_of(group) : 0;
  Partition* partition = replicas_.find(controller::kOffsetsTopic, index);
  if (!partition || !partition->is_leader)
    throw std::runtime_error("this broker does not lead " + std::string(controller::kOffsetsTopic) + "-" +
                             std::to_string(index));
  std::vector<protocol::KeyedRecord> records;
  for (const auto& [tp, offset] : upserts) records.push_back(offset_commit_record(group, tp, &offset));
  for (const auto& tp : removals) records.push_back(offset_commit_record(group, tp, nullptr));
  return append_internal_records(replicas_, *partition, records);
}

void on_offsets_partition_role(Broker& broker, Partition& partition) {
  if (partition.topic != controller::kOffsetsTopic) return;
  if (!partition.is_leader) {
    broker.groups.unload(partition.index);
    // Share groups' members too: were the shard to come back, they would otherwise meet a stale epoch.
    if (broker.share_groups && broker.groups.sharded())
      broker.share_groups->forget_if(
          [&](const std::string& group) { return broker.groups.shard_of(group) == partition.index; });
    return;
  }
  if (const controller::TopicInfo* topic = broker.metadata.find_topic(controller::kOffsetsTopic))
    broker.groups.shard_by(topic->partition_count());
  if (broker.groups.begin_loading(partition.index, partition.leader_epoch))
    boost::asio::co_spawn(broker.executor, load_shard(broker, partition.index, partition.leader_epoch),
                          boost::asio::detached);
}

boost::asio::awaitable<ErrorCode> await_offset_write(Broker& broker, const OffsetWrite& write) {
  return await_internal_write(broker, controller::kOffsetsTopic, write,
                              std::chrono::milliseconds(broker.config.get_int("offsets.commit.timeout.ms")));
}

boost::asio::awaitable<void> compact_offsets_periodically(Broker& broker) {
  CompactionHooks hooks;
  hooks.loaded = [&broker](int32_t index) { return broker.groups.shard_loaded(index); };
  hooks.live = [&broker](int32_t index) { return broker.groups.live_offsets(index); };
  hooks.rewrite = [&broker](int32_t index) { return broker.groups.rewrite_shard(index); };
  hooks.timeout = std::chrono::milliseconds(broker.config.get_int("offsets.commit.timeout.ms"));
  co_await compact_internal_topic_periodically(broker, controller::kOffsetsTopic, hooks);
}

namespace {

boost::asio::awaitable<void> create_offsets_topic(Broker& broker) {
  const std::map<std::string, std::string> configs{
      {"cleanup.policy", "compact"}, {"segment.bytes", std::to_string(broker.config.get_int("offsets.topic.segment.bytes"))}};
  co_await create_internal_topic(broker, controller::kOffsetsTopic, broker.config.get_int("offsets.topic.num.partitions"),
                                 static_cast<int16_t>(broker.config.get_int("offsets.topic.replication.factor")), configs);
}

}  // namespace

boost::asio::awaitable<CoordinatorAddress> find_group_coordinator(Broker& broker, std::string_view group_id) {
  CoordinatorAddress out;
  out.error = ErrorCode::kCoordinatorNotAvailable;
  const controller::TopicInfo* topic = broker.metadata.find_topic(controller::kOffsetsTopic);
  if (!topic) {
    co_await create_offsets_topic(broker);
    co_return out;
  }
  broker.groups.shard_by(topic->partition_count());
  const int32_t leader = topic->partitions[broker.groups.shard_of(group_id)].leader;
  for (const auto& b : advertised_brokers(broker)) {
    if (b.node_id != leader) continue;
    out.error = ErrorCode::kNone;
    out.node_id = b.node_id;
    out.host = b.host;
    out.port = b.port;
  }
  co_return out;
}

}  // namespace sluice::broker
