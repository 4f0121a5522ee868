#include "broker/offsets_topic.h"

#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.h"
#include "broker/cluster_view.h"
#include "broker/log.h"
#include "broker/replication_wait.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"
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

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The end of the last complete batch in `bytes` (which starts with a batch).
int64_t end_of_batches(std::string_view bytes) {
  int64_t end = -1;
  while (auto header = protocol::RecordBatchHeader::parse(bytes)) {
    if (header->batch_length < 0 || bytes.size() < header->total_size()) break;
    end = header->base_offset + header->last_offset_delta + 1;
    bytes.remove_prefix(header->total_size());
  }
  return end;
}

// Replays one partition of the topic from its start, a chunk at a time,
// letting requests run between chunks, then hands its groups to the
// coordinator, unless the leadership moved on meanwhile.
boost::asio::awaitable<void> load_shard(Broker& broker, int32_t index, int32_t leader_epoch) {
  const auto started = std::chrono::steady_clock::now();
  const auto chunk_bytes = static_cast<size_t>(broker.config.get_int("offsets.load.buffer.size"));
  GroupOffsets offsets;
  int64_t next = -1;
  int64_t records = 0, unreadable = 0;
  for (;;) {
    if (!broker.groups.loading(index, leader_epoch)) co_return;
    Partition* partition = broker.replicas.find(controller::kOffsetsTopic, index);
    if (!partition) co_return;
    next = std::max(next, partition->log->log_start_offset());
    if (next >= partition->log->log_end_offset()) break;
    std::string bytes;
    try {
      bytes = partition->log->read(next, chunk_bytes, /*at_least_one=*/true);
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "reading " << controller::kOffsetsTopic << "-" << index << " at " << next
                                    << " failed: " << e.what() << "; its groups stay unavailable here");
      co_return;
    }
    const int64_t end = end_of_batches(bytes);
    if (end <= next) break;
    try {
      protocol::visit_records(bytes, [&](int64_t, std::optional<std::string_view> key,
                                         std::optional<std::string_view> value) {
        ++records;
        if (!replay_offsets_record(key, value, offsets)) ++unreadable;
      });
    } catch (const protocol::DecodeError& e) {
      SLUICE_LOG(kError, controller::kOffsetsTopic << "-" << index << " has a batch that does not read at " << next
                                                   << ": " << e.what());
    }
    next = end;
    co_await boost::asio::post(broker.executor, boost::asio::use_awaitable);
  }
  if (!broker.groups.loading(index, leader_epoch)) co_return;
  // Offsets of topics deleted since they were committed are not served.
  for (auto& [group, group_offsets] : offsets)
    std::erase_if(group_offsets, [&](const auto& entry) { return !broker.metadata.find_topic(entry.first.first); });
  const size_t groups = offsets.size();
  broker.groups.finish_loading(index, std::move(offsets));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  SLUICE_LOG(kInfo, "coordinating the groups of " << controller::kOffsetsTopic << "-" << index << " (epoch "
                                                  << leader_epoch << "): " << groups << " groups from " << records
                                                  << " records in " << took.count() << " ms"
                                                  << (unreadable ? ", some records unreadable" : ""));
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
  if (records.empty()) return OffsetWrite{};
  const int64_t now_ms = wall_clock_ms();
  std::string batch = protocol::build_keyed_record_batch(0, partition->leader_epoch, now_ms, records);
  const auto count = static_cast<int32_t>(records.size());
  const int64_t base = partition->log->append(std::span<char>(batch.data(), batch.size()), {count - 1, now_ms});
  partition->note_append(count);
  replicas_.after_leader_append(*partition, base);
  return OffsetWrite{index, base + count, partition->log->to_sync()};
}

void on_offsets_partition_role(Broker& broker, Partition& partition) {
  if (partition.topic != controller::kOffsetsTopic) return;
  if (!partition.is_leader) {
    broker.groups.unload(partition.index);
    return;
  }
  if (const controller::TopicInfo* topic = broker.metadata.find_topic(controller::kOffsetsTopic))
    broker.groups.shard_by(topic->partition_count());
  if (broker.groups.begin_loading(partition.index, partition.leader_epoch))
    boost::asio::co_spawn(broker.executor, load_shard(broker, partition.index, partition.leader_epoch),
                          boost::asio::detached);
}

boost::asio::awaitable<ErrorCode> await_offset_write(Broker& broker, const OffsetWrite& write) {
  if (write.state_write) {  // a single node: the state store's commit, on the writer thread
    while (!write.state_write->committed.is_set())
      co_await write.state_write->committed.wait_until(boost::asio::steady_timer::time_point::max());
    co_return write.state_write->ok ? ErrorCode::kNone : ErrorCode::kNotCoordinator;
  }
  if (write.partition < 0) co_return ErrorCode::kNone;
  if (!write.sync.empty() && !co_await wait_for_sync(broker, write.sync)) co_return ErrorCode::kNotCoordinator;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(broker.config.get_int("offsets.commit.timeout.ms"));
  const ErrorCode replicated =
      co_await wait_for_high_watermark(broker, controller::kOffsetsTopic, write.partition, write.next_offset, deadline);
  switch (replicated) {
    case ErrorCode::kNone:
      co_return ErrorCode::kNone;
    case ErrorCode::kNotLeaderOrFollower:
      co_return ErrorCode::kNotCoordinator;
    default:  // too few replicas, or not in time: the client retries
      co_return ErrorCode::kCoordinatorNotAvailable;
  }
}

namespace {

boost::asio::awaitable<void> compact_shard(Broker& broker, int32_t index) {
  Partition* partition = broker.replicas.find(controller::kOffsetsTopic, index);
  if (!partition || !partition->is_leader || !broker.groups.shard_loaded(index)) co_return;
  storage::PartitionLog& log = *partition->log;
  const int64_t records = log.log_end_offset() - log.log_start_offset();
  const auto live = static_cast<int64_t>(broker.groups.live_offsets(index));
  if (log.size_bytes() <= log.options().segment_bytes || records <= 2 * live) co_return;
  const int32_t epoch = partition->leader_epoch;
  const int64_t rewrite_start = log.log_end_offset();
  auto write = broker.groups.rewrite_shard(index);
  if (!write) co_return;
  if (co_await await_offset_write(broker, *write) != ErrorCode::kNone) co_return;  // tried again next time
  partition = broker.replicas.find(controller::kOffsetsTopic, index);
  if (!partition || !partition->is_leader || partition->leader_epoch != epoch) co_return;
  broker.replicas.delete_records_before(*partition, rewrite_start);
  SLUICE_LOG(kInfo, "compacted " << controller::kOffsetsTopic << "-" << index << ": " << live << " live offsets of "
                                 << records << " records; log start now " << rewrite_start);
}

}  // namespace

boost::asio::awaitable<void> compact_offsets_periodically(Broker& broker) {
  boost::asio::steady_timer timer(broker.executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(broker.config.get_long("log.cleaner.backoff.ms")));
    co_await timer.async_wait(boost::asio::use_awaitable);
    const controller::TopicInfo* topic = broker.metadata.find_topic(controller::kOffsetsTopic);
    if (!topic) continue;
    const int32_t partitions = topic->partition_count();  // the image may change while this waits
    for (int32_t index = 0; index < partitions; ++index) {
      try {
        co_await compact_shard(broker, index);
      } catch (const std::exception& e) {
        SLUICE_LOG(kError, "compacting " << controller::kOffsetsTopic << "-" << index << " failed: " << e.what());
      }
    }
  }
}

namespace {

// Asks the controller for the topic; its leaders reach this broker through the metadata log.
boost::asio::awaitable<void> create_offsets_topic(Broker& broker) {
  const int32_t partitions = broker.config.get_int("offsets.topic.num.partitions");
  const auto replication_factor = static_cast<int16_t>(broker.config.get_int("offsets.topic.replication.factor"));
  const std::map<std::string, std::string> configs{
      {"cleanup.policy", "compact"}, {"segment.bytes", std::to_string(broker.config.get_int("offsets.topic.segment.bytes"))}};
  ErrorCode error = ErrorCode::kNone;
  std::string message;
  if (broker.controller) {
    auto result = broker.controller->create_topic(controller::kOffsetsTopic, partitions, replication_factor, {},
                                                  configs, false);
    error = result.error;
    message = result.message;
  } else {
    protocol::CreateTopicsRequest request;
    auto& topic = request.topics.emplace_back();
    topic.name = std::string(controller::kOffsetsTopic);
    topic.num_partitions = partitions;
    topic.replication_factor = replication_factor;
    for (const auto& [name, value] : configs) topic.configs.push_back({name, value});
    request.timeout_ms = 30'000;
    try {
      auto reply = co_await broker.controller_link->call<protocol::CreateTopicsResponse>(request, 7);
      if (!reply.body.topics.empty()) {
        error = static_cast<ErrorCode>(reply.body.topics[0].error_code);
        message = reply.body.topics[0].error_message.value_or("");
      }
    } catch (const std::exception& e) {
      error = ErrorCode::kRequestTimedOut;
      message = e.what();
    }
  }
  if (error != ErrorCode::kNone && error != ErrorCode::kTopicAlreadyExists)
    SLUICE_LOG(kWarn, "creating " << controller::kOffsetsTopic << " failed (" << protocol::error_name(error)
                                  << "): " << message << "; group coordinators stay unavailable until it exists");
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
