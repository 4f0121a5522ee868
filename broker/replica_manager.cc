#include "broker/replica_manager.h"

#include <set>

#include "broker/async_event.h"
#include "broker/log.h"
#include "protocol/record_batch.h"

namespace sluice::broker {
namespace {

std::string producer_snapshot_key(std::string_view topic, int32_t index) {
  return "producers/" + std::string(topic) + "/" + std::to_string(index);
}

}  // namespace

void Partition::wake_waiters() {
  auto woken = std::move(waiters);
  waiters.clear();
  for (AsyncEvent* event : woken) event->set();
}

ReplicaManager::ReplicaManager(std::filesystem::path log_dir, storage::LogOptions options, storage::StateStore& store)
    : log_dir_(std::move(log_dir)), options_(options), store_(store) {
  std::filesystem::create_directories(log_dir_);
}

std::optional<storage::BatchSummary> ReplicaManager::inspect_batch(std::string_view entry) {
  auto header = protocol::RecordBatchHeader::parse(entry);
  if (!header || header->magic != 2 || header->total_size() != entry.size() || header->last_offset_delta < 0 ||
      !protocol::record_batch_crc_ok(entry))
    return std::nullopt;
  return storage::BatchSummary{header->last_offset_delta, header->max_timestamp};
}

std::filesystem::path ReplicaManager::partition_dir(std::string_view topic, int32_t index) const {
  return log_dir_ / (std::string(topic) + "-" + std::to_string(index));
}

void ReplicaManager::open_partition(const std::string& topic, int32_t index) {
  auto partition = std::make_unique<Partition>();
  partition->topic = topic;
  partition->index = index;
  storage::RecoveryReport report;
  partition->log = storage::PartitionLog::open(partition_dir(topic, index), options_, inspect_batch, &report);
  if (report.truncated_bytes > 0 || report.removed_segments > 0)
    SLUICE_LOG(kWarn, "recovered " << topic << "-" << index << ": cut " << report.truncated_bytes
                                   << " bytes of torn or corrupt tail, removed " << report.removed_segments
                                   << " segment(s); log end offset " << partition->log->log_end_offset());
  load_producer_state(*partition);
  partitions_[{topic, index}] = std::move(partition);
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
  log.visit_batch_prefixes(replay_from, protocol::RecordBatchHeader::kSize, [&](std::string_view prefix) {
    auto h = protocol::RecordBatchHeader::parse(prefix);
    if (!h || h->producer_id < 0 || h->base_sequence < 0 || h->is_control()) return;
    partition.producers.record(h->producer_id, h->producer_epoch, h->base_sequence, h->last_offset_delta + 1,
                               h->base_offset, h->last_offset(), h->max_timestamp);
  });
}

void ReplicaManager::snapshot_producer_states() {
  std::vector<storage::StateStore::Change> changes;
  for (auto& [key, partition] : partitions_)
    if (partition->producers.dirty())
      changes.push_back({producer_snapshot_key(partition->topic, partition->index),
                         partition->producers.serialize(partition->log->log_end_offset())});
  if (!changes.empty()) store_.apply(changes);
}

void ReplicaManager::expire_producers(int64_t now_ms, int64_t expiration_ms) {
  for (auto& [key, partition] : partitions_) partition->producers.expire(now_ms, expiration_ms);
}

void ReplicaManager::load(const controller::Controller& controller) {
  std::set<std::string> expected;
  for (const auto& [name, topic] : controller.topics())
    for (int32_t p = 0; p < topic.partitions; ++p) {
      open_partition(name, p);
      expected.insert(partition_dir(name, p).filename().string());
    }
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

Partition* ReplicaManager::find(std::string_view topic, int32_t index) {
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, index));
  return it == partitions_.end() ? nullptr : it->second.get();
}

void ReplicaManager::on_topic_created(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partitions; ++p) {
    store_.erase(producer_snapshot_key(topic.name, p));  // a namesake's, if a crash left one behind
    open_partition(topic.name, p);
  }
}

void ReplicaManager::on_partitions_added(const controller::TopicInfo& topic, int32_t old_count) {
  for (int32_t p = old_count; p < topic.partitions; ++p) open_partition(topic.name, p);
}

void ReplicaManager::on_topic_deleted(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partitions; ++p) {
    auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic.name, p));
    if (it == partitions_.end()) continue;
    it->second->wake_waiters();
    std::filesystem::path dir = it->second->log->dir();
    partitions_.erase(it);
    store_.erase(producer_snapshot_key(topic.name, p));
    std::filesystem::remove_all(dir);
  }
}

void ReplicaManager::flush_all() {
  for (auto& [key, partition] : partitions_) partition->log->flush();
  snapshot_producer_states();
}

}  // namespace sluice::broker
