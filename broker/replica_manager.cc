#include "broker/replica_manager.h"

#include <chrono>
#include <cstdio>
#include <set>

#include "broker/async_event.h"
#include "broker/log.h"
#include "broker/topic_settings.h"
#include "protocol/record_batch.h"

namespace sluice::broker {
namespace {

std::string producer_snapshot_key(std::string_view topic, int32_t index) {
  return "producers/" + std::string(topic) + "/" + std::to_string(index);
}

// A log's checkpoint: "<recovery point> <log start offset>".
std::string log_checkpoint_key(std::string_view topic, int32_t index) {
  return "log/" + std::string(topic) + "/" + std::to_string(index);
}

std::string encode_checkpoint(const storage::LogCheckpoint& c) {
  return std::to_string(c.recovery_point) + " " + std::to_string(c.log_start_offset);
}

storage::LogCheckpoint decode_checkpoint(const std::optional<std::string>& value) {
  storage::LogCheckpoint c;
  if (!value) return c;
  long long recovery = 0, start = 0;
  if (std::sscanf(value->c_str(), "%lld %lld", &recovery, &start) == 2) {
    c.recovery_point = recovery;
    c.log_start_offset = start;
  }
  return c;
}

}  // namespace

bool Partition::wake_waiters() {
  auto woken = std::move(waiters);
  waiters.clear();
  for (AsyncEvent* event : woken) event->set();
  return !woken.empty();
}

bool Partition::note_append(int32_t records) {
  unflushed_messages += records;
  return unflushed_messages >= flush_messages;
}

ReplicaManager::ReplicaManager(std::filesystem::path log_dir, const BrokerConfig& config, storage::StateStore& store,
                               Flusher& flusher)
    : log_dir_(std::move(log_dir)), config_(config), store_(store), flusher_(flusher) {
  std::filesystem::create_directories(log_dir_);
}

storage::BatchFormat ReplicaManager::batch_format() {
  storage::BatchFormat format;
  format.header_bytes = protocol::RecordBatchHeader::kSize;
  format.summarize = [](std::string_view header) -> std::optional<storage::BatchSummary> {
    auto h = protocol::RecordBatchHeader::parse(header);
    if (!h || h->magic != 2 || h->last_offset_delta < 0 ||
        h->total_size() < protocol::RecordBatchHeader::kSize)
      return std::nullopt;
    return storage::BatchSummary{h->last_offset_delta, h->max_timestamp};
  };
  format.verify = [](std::string_view entry) {
    auto h = protocol::RecordBatchHeader::parse(entry);
    return h && h->total_size() == entry.size() && protocol::record_batch_crc_ok(entry);
  };
  return format;
}

// Segment settings from the topic's configs (or the broker's).
storage::LogOptions ReplicaManager::log_options_for(const controller::TopicInfo& topic) const {
  auto value = [&](std::string_view name) { return std::stoll(topic_config_value(config_, topic, name)); };
  storage::LogOptions options;
  options.segment_bytes = static_cast<uint64_t>(value("segment.bytes"));
  options.segment_ms = value("segment.ms");
  options.index_interval_bytes = static_cast<uint32_t>(value("index.interval.bytes"));
  return options;
}

void ReplicaManager::apply_topic_settings(Partition& partition, const controller::TopicInfo& topic) {
  if (partition.log) partition.log->set_options(log_options_for(topic));
  partition.retention_ms = std::stoll(topic_config_value(config_, topic, "retention.ms"));
  partition.retention_bytes = std::stoll(topic_config_value(config_, topic, "retention.bytes"));
  partition.flush_messages = std::stoll(topic_config_value(config_, topic, "flush.messages"));
  partition.flush_ms = std::stoll(topic_config_value(config_, topic, "flush.ms"));
}

std::filesystem::path ReplicaManager::partition_dir(std::string_view topic, int32_t index) const {
  return log_dir_ / (std::string(topic) + "-" + std::to_string(index));
}

uint64_t ReplicaManager::open_partition(const controller::TopicInfo& topic, int32_t index) {
  auto partition = std::make_unique<Partition>();
  partition->topic = topic.name;
  partition->index = index;
  partition->leader_epoch = topic.partitions[index].leader_epoch;
  partition->is_leader = topic.partitions[index].leader == config_.node_id();
  apply_topic_settings(*partition, topic);
  partition->checkpointed = decode_checkpoint(store_.get(log_checkpoint_key(topic.name, index)));
  storage::RecoveryReport report;
  partition->log = storage::PartitionLog::open(partition_dir(topic.name, index), log_options_for(topic), batch_format(),
                                               partition->checkpointed, &report);
  for (const auto& problem : report.problems) SLUICE_LOG(kWarn, topic.name << "-" << index << ": " << problem);
  if (report.truncated_bytes > 0 || report.removed_segments > 0)
    SLUICE_LOG(kWarn, "recovered " << topic.name << "-" << index << ": cut " << report.truncated_bytes
                                   << " bytes of torn or corrupt tail, removed " << report.removed_segments
                                   << " segment(s); log end offset " << partition->log->log_end_offset());
  load_producer_state(*partition);
  partitions_[{topic.name, index}] = std::move(partition);
  return report.bytes_scanned;
}

// The last snapshot, then the batches appended after it, replayed from their
// headers. A snapshot past the log's end (the log lost its unflushed tail)
// cannot be trusted: the state is rebuilt from the whole log instead.
void ReplicaManager::load_producer_state(Partition& partition) {
  storage::PartitionLog& log = *partition.log;
  int64_t replay_from = log.log_start_offset();
  if (auto snapshot = store_.get(producer_snapshot_key(partition.topic, partition.index))) {
    auto parsed = ProducerStateTable::parse(*snapshot);
    if (!parsed) {
      SLUICE_LOG(kWarn, "ignoring unreadable producer-state snapshot of " << partition.topic << "-" << partition.index);
    } else if (parsed->second > log.log_end_offset()) {
      SLUICE_LOG(kWarn, "producer-state snapshot of " << partition.topic << "-" << partition.index << " is at offset "
                                                       << parsed->second << ", past the log end "
                                                       << log.log_end_offset() << ": rebuilding from the log");
    } else {
      partition.producers = std::move(parsed->first);
      replay_from = std::max(parsed->second, replay_from);
    }
  }
  if (replay_from >= log.log_end_offset()) return;
  log.visit_batch_headers(replay_from, [&](std::string_view header) {
    auto h = protocol::RecordBatchHeader::parse(header);
    if (!h || h->producer_id < 0 || h->base_sequence < 0 || h->is_control()) return;
    partition.producers.record(h->producer_id, h->producer_epoch, h->base_sequence, h->last_offset_delta + 1,
                               h->base_offset, h->last_offset(), h->max_timestamp);
  });
}

void ReplicaManager::checkpoint() {
  if (checkpoint_running_) return;  // the previous one is still syncing
  struct Flushed {
    std::string topic;
    int32_t index;
    int64_t offset;
  };
  auto flushed = std::make_shared<std::vector<Flushed>>();
  std::vector<int> fds;
  for (auto& [key, partition] : partitions_) {
    storage::PartitionLog& log = *partition->log;
    if (log.recovery_point() >= log.log_end_offset()) continue;
    try {
      auto pending = log.begin_flush();
      fds.insert(fds.end(), pending.fds.begin(), pending.fds.end());
      flushed->push_back({partition->topic, partition->index, pending.offset});
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "checkpoint of " << partition->topic << "-" << partition->index << " failed: " << e.what());
    }
  }
  if (fds.empty()) {
    write_checkpoint();
    return;
  }
  checkpoint_running_ = true;
  flusher_.flush(fds, [this, flushed](bool ok) {
    checkpoint_running_ = false;
    if (ok)
      for (const auto& f : *flushed)
        if (Partition* p = find(f.topic, f.index)) p->log->end_flush(f.offset);  // the partition may be gone
    try {
      write_checkpoint();
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "writing the log checkpoint failed (will retry): " << e.what());
    }
  });
}

void ReplicaManager::write_checkpoint() {
  std::vector<storage::StateStore::Change> changes;
  for (auto& [key, partition] : partitions_) {
    const storage::LogCheckpoint now{partition->log->recovery_point(), partition->log->log_start_offset()};
    if (now.recovery_point != partition->checkpointed.recovery_point ||
        now.log_start_offset != partition->checkpointed.log_start_offset)
      changes.push_back({log_checkpoint_key(partition->topic, partition->index), encode_checkpoint(now)});
    if (partition->producers.dirty())
      changes.push_back({producer_snapshot_key(partition->topic, partition->index),
                         partition->producers.serialize(partition->log->log_end_offset())});
  }
  if (changes.empty()) return;
  store_.apply(changes);
  for (auto& [key, partition] : partitions_)
    partition->checkpointed = {partition->log->recovery_point(), partition->log->log_start_offset()};
}

void ReplicaManager::flush_by_time(int64_t now_ms) {
  std::vector<int> fds;
  for (auto& [key, partition] : partitions_) {
    if (partition->unflushed_messages == 0 || now_ms - partition->last_flush_ms < partition->flush_ms) continue;
    fds.push_back(partition->log->active_fd());
    partition->unflushed_messages = 0;
    partition->last_flush_ms = now_ms;
  }
  if (!fds.empty()) flusher_.flush(fds, [](bool) {});
}

void ReplicaManager::enforce_retention(int64_t now_ms) {
  for (auto& [key, partition] : partitions_) {
    try {
      deleter_.remove(partition->log->enforce_retention(now_ms, partition->retention_ms, partition->retention_bytes));
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "retention of " << partition->topic << "-" << partition->index << " failed: " << e.what());
    }
  }
}

void ReplicaManager::delete_records_before(Partition& partition, int64_t offset) {
  deleter_.remove(partition.log->advance_log_start(offset));
  const storage::LogCheckpoint now{partition.log->recovery_point(), partition.log->log_start_offset()};
  store_.put(log_checkpoint_key(partition.topic, partition.index), encode_checkpoint(now));
  partition.checkpointed = now;
}

void ReplicaManager::expire_producers(int64_t now_ms, int64_t expiration_ms) {
  for (auto& [key, partition] : partitions_) partition->producers.expire(now_ms, expiration_ms);
}

bool ReplicaManager::hosts(const controller::TopicInfo& topic, int32_t index) const {
  const auto& replicas = topic.partitions[index].replicas;
  return std::find(replicas.begin(), replicas.end(), config_.node_id()) != replicas.end();
}

void ReplicaManager::load(const controller::MetadataImage& metadata) {
  metadata_ = &metadata;
  const auto started = std::chrono::steady_clock::now();
  std::set<std::string> expected;
  uint64_t verified_bytes = 0;
  for (const auto& [name, topic] : metadata.topics())
    for (int32_t p = 0; p < topic.partition_count(); ++p) {
      if (!hosts(topic, p)) continue;
      verified_bytes += open_partition(topic, p);
      expected.insert(partition_dir(name, p).filename().string());
    }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  SLUICE_LOG(kInfo, "opened " << partitions_.size() << " partition(s) in " << ms.count() << " ms; verified "
                              << verified_bytes << " bytes written after the last checkpoint");
  // Directories of deleted topics whose removal a crash interrupted.
  for (const auto& entry : std::filesystem::directory_iterator(log_dir_)) {
    if (!entry.is_directory() || expected.count(entry.path().filename().string())) continue;
    const std::string name = entry.path().filename().string();
    size_t dash = name.rfind('-');
    if (dash == std::string::npos || dash + 1 == name.size() ||
        name.find_first_not_of("0123456789", dash + 1) != std::string::npos)
      continue;  // not a partition directory (e.g. the state store)
    SLUICE_LOG(kInfo, "removing directory of deleted partition " << name);
    std::filesystem::remove_all(entry.path());
  }
}

Partition* ReplicaManager::find_led(std::string_view topic, int32_t index, protocol::ErrorCode& error) {
  Partition* partition = find(topic, index);
  if (partition && partition->is_leader) {
    error = protocol::ErrorCode::kNone;
    return partition;
  }
  const controller::TopicInfo* info = metadata_ ? metadata_->find_topic(topic) : nullptr;
  error = info && index >= 0 && index < info->partition_count() ? protocol::ErrorCode::kNotLeaderOrFollower
                                                                : protocol::ErrorCode::kUnknownTopicOrPartition;
  return nullptr;
}

void ReplicaManager::on_partition_changed(const controller::TopicInfo& topic, int32_t index) {
  Partition* partition = find(topic.name, index);
  if (!partition) return;
  const controller::PartitionState& state = topic.partitions[index];
  partition->leader_epoch = state.leader_epoch;
  const bool was_leader = partition->is_leader;
  partition->is_leader = state.leader == config_.node_id();
  // Fetches parked on a partition this broker no longer leads answer now
  // (NOT_LEADER_OR_FOLLOWER), so their consumers move to the new leader.
  if (was_leader && !partition->is_leader) partition->wake_waiters();
}

Partition* ReplicaManager::find(std::string_view topic, int32_t index) {
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, index));
  return it == partitions_.end() ? nullptr : it->second.get();
}

void ReplicaManager::on_topic_created(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partition_count(); ++p) {
    if (!hosts(topic, p)) continue;
    // A namesake's state, if a crash left some behind.
    store_.apply({{producer_snapshot_key(topic.name, p), std::nullopt}, {log_checkpoint_key(topic.name, p), std::nullopt}});
    open_partition(topic, p);
  }
}

void ReplicaManager::on_partitions_added(const controller::TopicInfo& topic, int32_t old_count) {
  for (int32_t p = old_count; p < topic.partition_count(); ++p)
    if (hosts(topic, p)) open_partition(topic, p);
}

void ReplicaManager::on_topic_deleted(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partition_count(); ++p) drop_partition(topic.name, p);
}

void ReplicaManager::on_partitions_removed(const controller::TopicInfo& topic) {
  // The partitions an on_partitions_added opened before it failed.
  for (auto it = partitions_.lower_bound(std::pair<std::string_view, int32_t>(topic.name, topic.partition_count()));
       it != partitions_.end() && it->first.first == topic.name;)
    drop_partition(topic.name, (it++)->first.second);
}

void ReplicaManager::drop_partition(const std::string& topic, int32_t index) {
  std::filesystem::path dir = partition_dir(topic, index);
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, index));
  if (it != partitions_.end()) {
    it->second->wake_waiters();
    dir = it->second->log->dir();
    partitions_.erase(it);
    store_.apply({{producer_snapshot_key(topic, index), std::nullopt}, {log_checkpoint_key(topic, index), std::nullopt}});
  }
  // Also when the partition never opened: its creation may have failed
  // half way, after making the directory.
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) SLUICE_LOG(kWarn, "could not delete " << dir.string() << ": " << ec.message());
}

void ReplicaManager::on_topic_configs_changed(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partition_count(); ++p)
    if (Partition* partition = find(topic.name, p)) apply_topic_settings(*partition, topic);
}

void ReplicaManager::flush_all() {
  for (auto& [key, partition] : partitions_) {
    try {
      partition->log->flush();
    } catch (const std::exception& e) {  // e.g. a full disk: the next start rescans this log
      SLUICE_LOG(kError, "flushing " << partition->topic << "-" << partition->index << " failed: " << e.what());
    }
  }
  write_checkpoint();
}

}  // namespace sluice::broker
