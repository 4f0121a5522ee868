#include "broker/replica_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>

#include "broker/async_event.h"
#include "broker/log.h"
#include "broker/steady_clock.h"
#include "broker/topic_settings.h"
#include "controller/topic_config.h"
#include "protocol/record_batch.h"

namespace sluice::broker {
namespace {

std::string producer_snapshot_key(std::string_view topic, int32_t index) {
  return "producers/" + std::string(topic) + "/" + std::to_string(index);
}

// A log's checkpoint: "<recovery point> <log start offset> <high watermark>"
// (checkpoints from before replication have no high watermark).
std::string log_checkpoint_key(std::string_view topic, int32_t index) {
  return "log/" + std::string(topic) + "/" + std::to_string(index);
}

std::string encode_checkpoint(const storage::LogCheckpoint& c, int64_t high_watermark) {
  return std::to_string(c.recovery_point) + " " + std::to_string(c.log_start_offset) + " " +
         std::to_string(high_watermark);
}

storage::LogCheckpoint decode_checkpoint(const std::optional<std::string>& value, int64_t* high_watermark = nullptr) {
  storage::LogCheckpoint c;
  if (high_watermark) *high_watermark = -1;
  if (!value) return c;
  long long recovery = 0, start = 0, hw = -1;
  if (std::sscanf(value->c_str(), "%lld %lld %lld", &recovery, &start, &hw) >= 2) {
    c.recovery_point = recovery;
    c.log_start_offset = start;
    if (high_watermark) *high_watermark = hw;
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

void Partition::wake_all() {
  wake_waiters();
  for (AsyncEvent* event : std::exchange(replica_waiters, {})) event->set();
  for (auto& [offset, event] : std::exchange(high_watermark_waiters, {})) event->set();
}

bool Partition::note_append(int32_t records) {
  unflushed_messages += records;
  return unflushed_messages >= flush_messages;
}

ReplicaManager::ReplicaManager(std::filesystem::path log_dir, const BrokerConfig& config, storage::StateStore& store,
                               Flusher& flusher, StateWriter& writer)
    : log_dir_(std::move(log_dir)), config_(config), store_(store), flusher_(flusher), writer_(writer) {
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
  // As in Kafka, retention deletes only under cleanup.policy "delete": a
  // compacted-only topic (__consumer_offsets) keeps its records.
  std::string policy = "," + topic_config_value(config_, topic, "cleanup.policy") + ",";
  std::erase(policy, ' ');
  if (policy.find(",delete,") == std::string::npos) partition.retention_ms = partition.retention_bytes = -1;
  partition.release_groups =
      controller::list_config_items(topic_config_value(config_, topic, controller::kDeleteAfterConsumptionGroups));
  partition.flush_messages = std::stoll(topic_config_value(config_, topic, "flush.messages"));
  partition.flush_ms = std::stoll(topic_config_value(config_, topic, "flush.ms"));
  partition.min_insync_replicas = std::stoll(topic_config_value(config_, topic, "min.insync.replicas"));
  auto throttled = [&](const char* key) {
    auto it = topic.configs.find(key);
    return it != topic.configs.end() &&
           controller::throttled_replicas_include(it->second, partition.index, config_.node_id());
  };
  partition.leader_throttled = throttled("leader.replication.throttled.replicas");
  partition.follower_throttled = throttled("follower.replication.throttled.replicas");
}

void ReplicaManager::on_committed(int64_t /*end_offset*/) {
  if (!metadata_) return;
  // This broker's value, else every broker's, else none.
  auto rate = [&](const std::string& key) -> int64_t {
    for (const std::string& name : {std::to_string(config_.node_id()), std::string()})
      if (const auto* configs = metadata_->broker_configs(name))
        if (auto it = configs->find(key); it != configs->end()) {
          try {
            return std::stoll(it->second);
          } catch (const std::exception&) {  // validated by the controller; never here
          }
        }
    return ReplicationQuota::kUnlimited;
  };
  leader_quota_.set_limit(rate("leader.replication.throttled.rate"));
  follower_quota_.set_limit(rate("follower.replication.throttled.rate"));
}

std::filesystem::path ReplicaManager::partition_dir(std::string_view topic, int32_t index) const {
  return log_dir_ / (std::string(topic) + "-" + std::to_string(index));
}

uint64_t ReplicaManager::open_partition(const controller::TopicInfo& topic, int32_t index) {
  auto partition = std::make_unique<Partition>();
  partition->topic = topic.name;
  partition->index = index;
  partition->incarnation = ++incarnations_;
  apply_topic_settings(*partition, topic);
  int64_t high_watermark = -1;
  partition->checkpointed = decode_checkpoint(store_.get(log_checkpoint_key(topic.name, index)), &high_watermark);
  storage::RecoveryReport report;
  int64_t rebuild_from = partition->checkpointed.recovery_point;
  partition->log = storage::PartitionLog::open(partition_dir(topic.name, index), log_options_for(topic), batch_format(),
                                               partition->checkpointed, &report);
  // A roll's index writes, reserve release and new file's naming run on the flusher's thread,
  // before any later flush; the work ahead of need (blocks reserved ahead of the writes, the next
  // segment's file made) after the syncs (nothing waits for it).
  partition->log->set_off_thread([&flusher = flusher_, name = topic.name + "-" + std::to_string(index)](
                                     std::function<bool()> job, bool before_later_flushes) {
    if (!before_later_flushes) {
      flusher.run_after_syncs(std::move(job));
      return;
    }
    flusher.run(std::move(job), [name](bool ok) {
      if (!ok)
        SLUICE_LOG(kError, "a segment roll's file work for " << name << " failed (an I/O error): a rolled segment "
                   "not finished keeps the recovery point below it, so the next start rebuilds it; a new segment "
                   "not named fails every flush of it (acks=all answers an error)");
    });
  });
  for (const auto& problem : report.problems) SLUICE_LOG(kWarn, topic.name << "-" << index << ": " << problem);
  if (report.truncated_bytes > 0 || report.removed_segments > 0)
    SLUICE_LOG(kWarn, "recovered " << topic.name << "-" << index << ": cut " << report.truncated_bytes
                                   << " bytes of torn or corrupt tail, removed " << report.removed_segments
                                   << " segment(s); log end offset " << partition->log->log_end_offset());
  if (partition->checkpointed.recovery_point > partition->log->recovery_point() ||
      partition->checkpointed.log_start_offset > partition->log->log_start_offset()) {
    // The stored checkpoint is above what the log holds (a truncation whose
    // lowered checkpoint was not committed before the process stopped): the
    // lower one is committed before anything is appended past it, or a crash
    // after those appends would trust them unverified. At start-up, or for a
    // namesake's leftovers, so rare.
    const storage::LogCheckpoint clamped{partition->log->recovery_point(), partition->log->log_start_offset()};
    write_state_now({{log_checkpoint_key(topic.name, index),
                      encode_checkpoint(clamped, std::min(high_watermark, partition->log->log_end_offset()))}});
    rebuild_from = std::min(partition->checkpointed.recovery_point, clamped.recovery_point);
    partition->checkpointed = clamped;
  }
  load_producer_state(*partition);
  partition->epochs = storage::LeaderEpochCache::load(partition->log->dir() / storage::kLeaderEpochCheckpointFile);
  partition->epochs.truncate_from_end(partition->log->log_end_offset());  // a tail recovery cut, an unsynced truncation
  partition->epochs.truncate_from_start(partition->log->log_start_offset());  // a full truncation, likewise
  rebuild_epochs(*partition, rebuild_from);
  // No high watermark checkpointed (a log from before replication): its one
  // replica had everything.
  partition->high_watermark_ = high_watermark < 0 ? partition->log->log_end_offset()
                                                   : std::min(high_watermark, partition->log->log_end_offset());
  Partition& placed = *(partitions_[{topic.name, index}] = std::move(partition));
  apply_partition_state(placed, topic.partitions[index]);
  return report.bytes_scanned;
}

// The last snapshot, then the batches appended after it, replayed from their
// headers. A snapshot past the log's end (the log lost its unflushed tail)
// cannot be trusted: the state is rebuilt from the whole log instead.
void ReplicaManager::rebuild_epochs(Partition& partition, int64_t recovery_point) {
  storage::PartitionLog& log = *partition.log;
  const int64_t from = std::max(recovery_point, log.log_start_offset());
  if (from >= log.log_end_offset()) return;
  bool changed = false;
  log.visit_batch_headers(from, [&](std::string_view header) {
    auto h = protocol::RecordBatchHeader::parse(header);
    if (h && h->partition_leader_epoch >= 0) changed |= partition.epochs.assign(h->partition_leader_epoch, h->base_offset);
  });
  if (changed) write_epochs(partition);
}

void ReplicaManager::load_producer_state(Partition& partition, bool use_snapshot) {
  storage::PartitionLog& log = *partition.log;
  int64_t replay_from = log.log_start_offset();
  if (auto snapshot = use_snapshot ? store_.get(producer_snapshot_key(partition.topic, partition.index))
                                   : std::nullopt) {
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
    uint64_t incarnation;  // a partition re-created meanwhile has another
    storage::PartitionLog::PendingFlush pending;
  };
  auto flushed = std::make_shared<std::vector<Flushed>>();
  storage::SyncList to_sync;
  for (auto& [key, partition] : partitions_) {
    if (partition->truncation_retry) sync_truncation(*partition);
    if (partition->epochs_unsaved()) {
      // Again; its recovery point waits. Not while a truncation is in flight:
      // the cut cache must not land before the cut (its commit writes it).
      if (!partition->truncation_in_flight) write_epochs(*partition);
      continue;
    }
    storage::PartitionLog& log = *partition->log;
    if (log.recovery_point() >= log.log_end_offset()) continue;
    try {
      auto pending = log.begin_flush();
      // A segment file whose naming failed (it is tried again) would fail every partition's
      // checkpoint with its own: this one waits.
      if (std::any_of(pending.sync.errors.begin(), pending.sync.errors.end(), [](const auto& e) { return e->load() != 0; })) {
        SLUICE_LOG(kError, "checkpoint of " << partition->topic << "-" << partition->index
                                            << " waits: a segment file of it has no name yet (naming failed)");
        continue;
      }
      to_sync.append(pending.sync);
      flushed->push_back({partition->topic, partition->index, partition->incarnation, pending});
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "checkpoint of " << partition->topic << "-" << partition->index << " failed: " << e.what());
    }
  }
  if (to_sync.empty()) {
    write_checkpoint(false);
    return;
  }
  checkpoint_running_ = true;
  flusher_.flush(to_sync, [this, flushed](bool ok) {
    checkpoint_running_ = false;
    if (ok)
      for (const auto& f : *flushed)
        // The partition may be gone, and its epoch file must hold what the recovery point passes.
        if (Partition* p = find(f.topic, f.index, f.incarnation); p && !p->epochs_unsaved())
          p->log->end_flush(f.pending);
    write_checkpoint(false);
  });
}

void ReplicaManager::write_state_now(const std::vector<storage::StateStore::Change>& changes) {
  writer_.drain();  // what was queued before commits first: a later write must not be overtaken
  store_.apply(changes);
}

void ReplicaManager::write_checkpoint(bool now) {
  std::vector<storage::StateStore::Change> changes;
  for (auto& [key, partition] : partitions_) {
    const storage::LogCheckpoint now{partition->log->recovery_point(), partition->log->log_start_offset()};
    if (now.recovery_point != partition->checkpointed.recovery_point ||
        now.log_start_offset != partition->checkpointed.log_start_offset ||
        partition->high_watermark_ != partition->checkpointed_high_watermark) {
      changes.push_back({log_checkpoint_key(partition->topic, partition->index),
                         encode_checkpoint(now, partition->high_watermark_)});
      partition->checkpointed_high_watermark = partition->high_watermark_;
    }
    if (partition->producers.dirty())
      changes.push_back({producer_snapshot_key(partition->topic, partition->index),
                         partition->producers.serialize(partition->log->log_end_offset())});
  }
  if (changes.empty()) return;
  for (auto& [key, partition] : partitions_)
    partition->checkpointed = {partition->log->recovery_point(), partition->log->log_start_offset()};
  if (now) {
    write_state_now(changes);
    return;
  }
  writer_.apply(std::move(changes), [this](bool ok) {
    if (ok) return;
    // Not written (logged by the writer): the next checkpoint writes everything again.
    for (auto& [key, partition] : partitions_) {
      partition->checkpointed = {-1, -1};
      partition->checkpointed_high_watermark = -2;
      partition->producers.mark_dirty();
    }
  });
}

void ReplicaManager::flush_by_time(int64_t now_ms) {
  storage::SyncList to_sync;
  for (auto& [key, partition] : partitions_) {
    if (partition->unflushed_messages == 0 || now_ms - partition->last_flush_ms < partition->flush_ms) continue;
    to_sync.append(partition->log->to_sync());
    partition->unflushed_messages = 0;
    partition->last_flush_ms = now_ms;
  }
  if (!to_sync.empty()) flusher_.flush(to_sync, [](bool) {});
}

void ReplicaManager::enforce_retention(int64_t now_ms) {
  for (auto& [key, partition] : partitions_) {
    try {
      auto files = partition->log->enforce_retention(now_ms, partition->retention_ms, partition->retention_bytes);
      for (const auto& file : files)
        if (file.filename().string().find(".log") != std::string::npos) ++counters_.retention_deleted_segments;
      if (!files.empty()) wake_replica_fetches(*partition);
      deleter_.remove(std::move(files));
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "retention of " << partition->topic << "-" << partition->index << " failed: " << e.what());
    }
  }
}

void ReplicaManager::wake_replica_fetches(Partition& partition) {
  for (AsyncEvent* event : std::exchange(partition.replica_waiters, {})) event->set();
}

void ReplicaManager::delete_records_before(Partition& partition, int64_t offset) {
  const int64_t before = partition.log->log_start_offset();
  deleter_.remove(partition.log->advance_log_start(offset));
  // The followers learn a new log start from the fetch answer: a parked one is answered now.
  if (partition.log->log_start_offset() > before) wake_replica_fetches(partition);
  const storage::LogCheckpoint now{partition.log->recovery_point(), partition.log->log_start_offset()};
  // Kafka too checkpoints the log start offset in the background.
  writer_.apply({{log_checkpoint_key(partition.topic, partition.index), encode_checkpoint(now, partition.high_watermark_)}});
  partition.checkpointed = now;
  partition.checkpointed_high_watermark = partition.high_watermark_;
}

void ReplicaManager::release_consumed(Partition& partition, int64_t offset) {
  delete_records_before(partition, offset);
  ++counters_.consumption_releases;
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
  on_committed(0);  // the throttle rates
  SLUICE_LOG(kInfo, "opened " << partitions_.size() << " partition(s) in " << ms.count() << " ms; verified "
                              << verified_bytes << " bytes written after the last checkpoint");
  // Directories of deleted topics whose removal a crash interrupted.
  for (const auto& entry : std::filesystem::directory_iterator(log_dir_)) {
    if (!entry.is_directory() || expected.count(entry.path().filename().string())) continue;
    const std::string name = entry.path().filename().string();
    if (name.ends_with(kDeletedDirSuffix)) {  // dropped, and the process stopped before it was gone
      std::filesystem::remove_all(entry.path());
      continue;
    }
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
  const bool hosted = hosts(topic, index);
  if (partition && hosted) {
    apply_partition_state(*partition, topic.partitions[index]);
  } else if (hosted) {
    // A reassignment added this broker: an empty replica that copies from the leader.
    SLUICE_LOG(kInfo, topic.name << "-" << index << ": a new replica on this broker");
    try {
      open_new_partition(topic, index);
    } catch (const std::exception& e) {
      // No descriptors, no space: reconcile() tries again; the other changes go on.
      SLUICE_LOG(kError, topic.name << "-" << index << ": could not open the new replica (will retry): " << e.what());
    }
  } else if (partition) {
    // A reassignment moved the partition off this broker.
    SLUICE_LOG(kInfo, topic.name << "-" << index << ": no longer a replica on this broker; deleting it");
    drop_partition(topic.name, index);
  }
}

void ReplicaManager::apply_partition_state(Partition& partition, const controller::PartitionState& state) {
  if (partition.truncation_in_flight) {
    partition.state_deferred = true;  // applied from the metadata once the cut is durable
    return;
  }
  const int32_t self = config_.node_id();
  const bool was_leader = partition.is_leader;
  const int32_t old_epoch = partition.leader_epoch;
  const int32_t old_partition_epoch = partition.partition_epoch;
  std::vector<int32_t> old_isr = partition.isr;
  partition.replicas = state.replicas;
  partition.isr = state.isr;
  partition.leader_epoch = state.leader_epoch;
  partition.partition_epoch = state.partition_epoch;
  partition.leader_id = state.leader;
  partition.is_leader = state.leader == self && !roles_held_;
  if (roles_held_) return;
  partition.isr_change_in_flight = false;
  partition.pending_isr.clear();  // the metadata settles what was asked
  if (old_epoch != state.leader_epoch || was_leader != partition.is_leader)
    SLUICE_LOG(kInfo, partition.topic << "-" << partition.index << ": leader " << state.leader << " in epoch "
                                      << state.leader_epoch << (partition.is_leader ? " (this broker)" : "")
                                      << ", log end " << partition.log->log_end_offset());
  // An ISR change of a partition it went on leading, unless the controller's
  // answer to its AlterPartition brought it first (isr_maintenance.cc counts it then).
  if (was_leader && partition.is_leader && old_epoch == state.leader_epoch &&
      state.partition_epoch > old_partition_epoch)
    count_isr_change(old_isr, state.isr);
  if (partition.is_leader && (!was_leader || old_epoch != state.leader_epoch)) {
    ++counters_.leader_elections;
    // Leading from here: the new epoch starts at this log's end, and every
    // follower gets a full replica.lag.time.max.ms before it counts as behind.
    if (partition.epochs.assign(state.leader_epoch, partition.log->log_end_offset())) write_epochs(partition);
    partition.followers.clear();
    const int64_t now = steady_now_ms();
    for (int32_t r : state.replicas)
      if (r != self) partition.followers[r] = FollowerState{-1, now, 0, 0};
  }
  if (partition.is_leader) {
    // Replicas a reassignment added or removed while this broker went on leading.
    const int64_t now = steady_now_ms();
    for (int32_t r : state.replicas)
      if (r != self && !partition.followers.count(r)) partition.followers[r] = FollowerState{-1, now, 0, 0};
    std::erase_if(partition.followers, [&](const auto& f) {
      return std::find(state.replicas.begin(), state.replicas.end(), f.first) == state.replicas.end();
    });
  }
  if (!partition.is_leader) {
    // Fetches and produces parked here answer now (NOT_LEADER_OR_FOLLOWER),
    // so their clients move to the new leader.
    partition.followers.clear();
    partition.wake_all();
  }
  if (partition.is_leader) advance_high_watermark(partition);
  for (auto& observe : role_observers_) observe(partition, partition.is_leader ? -1 : state.leader);
}

void ReplicaManager::count_isr_change(const std::vector<int32_t>& before, const std::vector<int32_t>& after) {
  const auto missing_from = [](const std::vector<int32_t>& from, const std::vector<int32_t>& in) {
    for (int32_t r : from)
      if (std::find(in.begin(), in.end(), r) == in.end()) return true;
    return false;
  };
  if (missing_from(before, after)) ++counters_.isr_shrinks;
  if (missing_from(after, before)) ++counters_.isr_expands;
}

void ReplicaManager::release_roles() {
  if (!roles_held_) return;
  roles_held_ = false;
  SLUICE_LOG(kInfo, "caught up with the controller's metadata: taking this broker's partition roles");
  for (auto& [key, partition] : partitions_) {
    const controller::TopicInfo* topic = metadata_ ? metadata_->find_topic(partition->topic) : nullptr;
    if (topic && partition->index < topic->partition_count())
      apply_partition_state(*partition, topic->partitions[partition->index]);
  }
}

void ReplicaManager::write_epochs(Partition& partition) {
  // The outcome is recorded by the job, on the flusher's thread, before the
  // syncs of any flush requested later: a checkpoint's completion sees it
  // before it would move the recovery point (checkpoint()). The directory is
  // opened there and checked to be this log's: a partition deleted meanwhile,
  // and a namesake created at the same path, must not get this file.
  auto job = [dir = partition.log->dir(), identity = partition.log->directory_identity(),
              contents = partition.epochs.serialize(), name = partition.topic + "-" + std::to_string(partition.index),
              failed = partition.epoch_write_failed] {
    const auto fail = [&](const std::string& what) {
      SLUICE_LOG(kError, "writing the leader-epoch checkpoint of " << name << " failed (will retry): " << what);
      failed->store(true);
      return false;
    };
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return errno == ENOENT ? true : fail("open " + dir.string() + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(dir_fd, &st) == 0 && (st.st_dev != identity.device || st.st_ino != identity.inode)) {
      ::close(dir_fd);
      return true;  // deleted, and a namesake made at the path: nothing of this log to keep
    }
    try {
      storage::write_atomically_at(dir_fd, storage::kLeaderEpochCheckpointFile, contents);
    } catch (const std::exception& e) {
      ::close(dir_fd);
      return fail(e.what());
    }
    ::close(dir_fd);
    failed->store(false);
    return true;
  };
  flusher_.run(std::move(job), nullptr);
}

void ReplicaManager::after_leader_append(Partition& partition, int64_t base_offset) {
  if (partition.epochs.assign(partition.leader_epoch, base_offset)) write_epochs(partition);
  wake_replica_fetches(partition);
  advance_high_watermark(partition);
}

void ReplicaManager::record_follower_fetch(Partition& partition, int32_t replica, int64_t fetch_offset,
                                           int64_t log_start_offset, int64_t now_ms) {
  auto it = partition.followers.find(replica);
  if (it == partition.followers.end()) return;  // not a replica
  FollowerState& f = it->second;
  const int64_t leader_end = partition.log->log_end_offset();
  // Kafka's rule: caught up now if it has everything, or as of its previous
  // fetch if it has what the leader had then.
  if (fetch_offset >= leader_end)
    f.last_caught_up_ms = now_ms;
  else if (f.last_fetch_ms > 0 && fetch_offset >= f.leader_end_at_last_fetch)
    f.last_caught_up_ms = std::max(f.last_caught_up_ms, f.last_fetch_ms);
  f.log_end_offset = fetch_offset;
  f.log_start_offset = log_start_offset;
  f.last_fetch_ms = now_ms;
  f.leader_end_at_last_fetch = leader_end;
  const controller::BrokerRegistration* registration = metadata_ ? metadata_->find_broker(replica) : nullptr;
  f.broker_epoch = registration ? registration->epoch : -1;
  advance_high_watermark(partition);
}

void ReplicaManager::advance_high_watermark(Partition& partition) {
  if (!partition.is_leader) return;
  // KIP-966, as in Kafka 4: nothing is committed while the ISR is smaller
  // than min.insync.replicas.
  if (static_cast<int64_t>(partition.isr.size()) < partition.min_insync_replicas) return;
  int64_t high_watermark = partition.log->log_end_offset();
  auto bound = [&](int32_t r) {
    if (r == config_.node_id()) return true;
    auto it = partition.followers.find(r);
    if (it == partition.followers.end() || it->second.log_end_offset < 0) return false;  // not heard from yet
    high_watermark = std::min(high_watermark, it->second.log_end_offset);
    return true;
  };
  for (int32_t r : partition.isr)
    if (!bound(r)) return;
  for (int32_t r : partition.pending_isr)  // the maximal ISR: the committed one and those joining
    if (std::find(partition.isr.begin(), partition.isr.end(), r) == partition.isr.end() && !bound(r)) return;
  if (high_watermark <= partition.high_watermark_) return;
  partition.high_watermark_ = high_watermark;
  partition.wake_waiters();
  auto& waiting = partition.high_watermark_waiters;
  for (auto it = waiting.begin(); it != waiting.end();) {
    if (it->first <= high_watermark) {
      it->second->set();
      it = waiting.erase(it);
    } else {
      ++it;
    }
  }
}

int64_t ReplicaManager::append_as_leader(Partition& partition, std::span<char> batch,
                                         const storage::BatchSummary& summary) {
  const uint64_t rolling = partition.log->roll_nanos();
  const int64_t base = partition.log->append(batch, summary);
  report_roll(partition, rolling);
  return base;
}

void ReplicaManager::report_roll(const Partition& partition, uint64_t roll_nanos_before) const {
  if (partition.log->roll_nanos() != roll_nanos_before && roll_observer_)
    roll_observer_(static_cast<double>(partition.log->roll_nanos() - roll_nanos_before) * 1e-9);
}

void ReplicaManager::append_as_follower(Partition& partition, std::span<char> batch) {
  auto header = protocol::RecordBatchHeader::parse(std::string_view(batch.data(), batch.size()));
  if (!header) throw std::invalid_argument("a batch too short for its header");
  const uint64_t rolling = partition.log->roll_nanos();
  partition.log->append_at(batch, {header->last_offset_delta, header->max_timestamp});
  report_roll(partition, rolling);
  if (partition.epochs.assign(header->partition_leader_epoch, header->base_offset)) write_epochs(partition);
  // A new leader must still refuse an idempotent producer's duplicates.
  if (header->producer_id >= 0 && header->base_sequence >= 0 && !header->is_control())
    partition.producers.record(header->producer_id, header->producer_epoch, header->base_sequence,
                               header->last_offset_delta + 1, header->base_offset, header->last_offset(),
                               header->max_timestamp);
}

void ReplicaManager::truncate_to(Partition& partition, int64_t offset) {
  if (offset >= partition.log->log_end_offset()) {
    // Nothing to cut from the log, but the epoch cache may end with an epoch
    // this replica started as leader without writing a batch in it, which the
    // new leader's log does not have: it would be sent as the last fetched
    // epoch forever, and the leader would answer DivergingEpoch forever (as
    // Kafka does, the cache is truncated even when the log is not).
    if (partition.epochs.truncate_from_end(offset)) write_epochs(partition);
    return;
  }
  if (offset < partition.log->log_start_offset()) {
    truncate_fully_and_start_at(partition, offset);
    return;
  }
  auto cut = partition.log->truncate_to(offset);
  deleter_.remove(std::move(cut.removed));
  SLUICE_LOG(kInfo, "truncated " << partition.topic << "-" << partition.index << " to offset " << cut.log_end_offset
                                 << " where it diverged from the leader");
  partition.epochs.truncate_from_end(cut.log_end_offset);  // written once the cut is durable
  partition.high_watermark_ = std::min(partition.high_watermark_, cut.log_end_offset);
  // Producer state is rebuilt from what is left (its snapshot goes); the
  // lowered recovery point is checkpointed before anything is appended again
  // (storage/README.md).
  partition.producers = ProducerStateTable();
  load_producer_state(partition, /*use_snapshot=*/false);
  make_truncation_durable(partition, {{producer_snapshot_key(partition.topic, partition.index), std::nullopt}});
}

void ReplicaManager::truncate_fully_and_start_at(Partition& partition, int64_t offset) {
  deleter_.remove(partition.log->truncate_fully_and_start_at(offset));
  SLUICE_LOG(kInfo, "emptied " << partition.topic << "-" << partition.index << " to start again at offset " << offset);
  partition.epochs = storage::LeaderEpochCache();
  partition.high_watermark_ = offset;
  partition.producers = ProducerStateTable();
  make_truncation_durable(partition, {{producer_snapshot_key(partition.topic, partition.index), std::nullopt}});
}

void ReplicaManager::make_truncation_durable(Partition& partition, std::vector<storage::StateStore::Change> changes) {
  // The checkpoint as it stands now, lowered. `checkpointed` keeps the value
  // LMDB holds until the commit, so a checkpoint or shutdown meanwhile writes
  // the lowered one too.
  const storage::LogCheckpoint lowered{partition.log->recovery_point(), partition.log->log_start_offset()};
  changes.push_back({log_checkpoint_key(partition.topic, partition.index), encode_checkpoint(lowered, partition.high_watermark_)});
  partition.truncation_changes = std::move(changes);
  partition.truncation_in_flight = true;
  sync_truncation(partition);
}

void ReplicaManager::sync_truncation(Partition& partition) {
  partition.truncation_retry = false;
  storage::PartitionLog::PendingFlush pending;
  try {
    // The cut segment, its indexes and the directory's renames, synced on the flusher.
    pending = partition.log->begin_flush();
  } catch (const std::exception& e) {
    SLUICE_LOG(kError, partition.topic << "-" << partition.index << ": syncing a truncation failed (will retry): " << e.what());
    partition.truncation_retry = true;
    return;
  }
  const auto still_here = [this, topic = partition.topic, index = partition.index,
                           incarnation = partition.incarnation]() { return find(topic, index, incarnation); };
  flusher_.flush(pending.sync, [this, still_here, pending](bool synced) {
    Partition* p = still_here();
    if (!p) return;
    if (!synced) {
      // Tried again at the next checkpoint; nothing is appended meanwhile
      // (Kafka would take the log directory offline).
      SLUICE_LOG(kError, p->topic << "-" << p->index << ": syncing a truncation failed (will retry)");
      p->truncation_retry = true;
      return;
    }
    // The recovery point goes no higher than it was while the epoch file may
    // lack an epoch (the syncs still count for the files and directory).
    storage::PartitionLog::PendingFlush flushed = pending;
    if (p->epochs_unsaved()) flushed.offset = std::min(flushed.offset, p->log->recovery_point());
    p->log->end_flush(flushed);
    writer_.apply(p->truncation_changes, [this, still_here](bool committed) {
      Partition* p = still_here();
      if (!p) return;
      if (!committed) {
        SLUICE_LOG(kError, p->topic << "-" << p->index << ": the truncated log's checkpoint was not written (will retry)");
        p->truncation_retry = true;
        return;
      }
      p->truncation_changes.clear();
      // A stale epoch file now has only entries past the log end, which the
      // next start drops; one written before the cut was durable could have
      // lost entries the log still held.
      write_epochs(*p);
      p->truncation_in_flight = false;
      if (std::exchange(p->state_deferred, false) && metadata_)
        if (const controller::TopicInfo* topic = metadata_->find_topic(p->topic);
            topic && p->index < topic->partition_count())
          apply_partition_state(*p, topic->partitions[p->index]);
    });
  });
}

int32_t ReplicaManager::preferred_read_replica(const Partition& partition, std::string_view client_rack,
                                              int64_t fetch_offset, int64_t now_ms) const {
  if (!metadata_ || client_rack.empty() || config_.get_string("broker.rack") == client_rack) return -1;
  int32_t chosen = -1;
  int64_t best_end = -1, best_lag_ms = 0;
  for (int32_t r : partition.isr) {
    auto f = partition.followers.find(r);
    const controller::BrokerRegistration* b = metadata_->find_broker(r);
    if (f == partition.followers.end() || !b || b->fenced || b->rack != client_rack ||
        f->second.log_end_offset < fetch_offset || f->second.log_start_offset > fetch_offset)
      continue;
    // The most data, then the most recently caught up (Kafka's order).
    const int64_t end = f->second.log_end_offset, lag_ms = now_ms - f->second.last_caught_up_ms;
    if (end > best_end || (end == best_end && lag_ms < best_lag_ms)) {
      chosen = r;
      best_end = end;
      best_lag_ms = lag_ms;
    }
  }
  return chosen;
}

void ReplicaManager::follower_high_watermark(Partition& partition, int64_t leader_high_watermark) {
  partition.leader_high_watermark = leader_high_watermark;
  const int64_t before = partition.high_watermark_;
  partition.high_watermark_ = std::min(leader_high_watermark, partition.log->log_end_offset());
  // Consumers reading from this follower (KIP-392) wait for it.
  if (partition.high_watermark_ > before) partition.wake_waiters();
}

std::optional<std::vector<int32_t>> ReplicaManager::wanted_isr(const Partition& partition, int64_t now_ms) const {
  if (!partition.is_leader || partition.isr_change_in_flight) return std::nullopt;
  const int64_t lag_ms = config_.get_long("replica.lag.time.max.ms");
  const int32_t self = config_.node_id();
  std::vector<int32_t> isr;
  for (int32_t r : partition.isr) {
    if (r == self) {
      isr.push_back(r);
      continue;
    }
    auto it = partition.followers.find(r);
    if (it != partition.followers.end() && now_ms - it->second.last_caught_up_ms <= lag_ms) isr.push_back(r);
  }
  // A follower rejoins once it has everything committed, and at least what
  // this leader's epoch began with (so it truncated whatever diverged).
  const int64_t epoch_start = partition.epochs.start_offset_of(partition.leader_epoch).value_or(0);
  for (int32_t r : partition.replicas) {
    if (std::find(isr.begin(), isr.end(), r) != isr.end() || r == self) continue;
    auto it = partition.followers.find(r);
    if (it == partition.followers.end()) continue;
    const FollowerState& f = it->second;
    // Its progress must be that of its current incarnation (KIP-903), whose
    // epoch the AlterPartition carries for the controller to check again.
    const controller::BrokerRegistration* registration = metadata_ ? metadata_->find_broker(r) : nullptr;
    if (f.log_end_offset >= partition.high_watermark_ && f.log_end_offset >= epoch_start && registration &&
        !registration->fenced && f.broker_epoch == registration->epoch && now_ms - f.last_caught_up_ms <= lag_ms)
      isr.push_back(r);
  }
  if (isr == partition.isr) return std::nullopt;
  return isr;
}

Partition* ReplicaManager::find(std::string_view topic, int32_t index) {
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, index));
  return it == partitions_.end() ? nullptr : it->second.get();
}

Partition* ReplicaManager::find(std::string_view topic, int32_t index, uint64_t incarnation) {
  Partition* partition = find(topic, index);
  return partition && partition->incarnation == incarnation ? partition : nullptr;
}

void ReplicaManager::prepare_topic(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partition_count(); ++p) {
    if (!hosts(topic, p)) continue;
    // A namesake still open (CreateTopics waits for a deletion to be
    // published before it creates the name again, so only by mistake).
    if (find(topic.name, p)) drop_partition(topic.name, p);
    open_new_partition(topic, p);
  }
}

void ReplicaManager::open_new_partition(const controller::TopicInfo& topic, int32_t index) {
  // A namesake's state, if a crash left some behind or its deletion is still
  // queued on the writer: committed before the new log can be flushed past it.
  // Usually there is none, and this thread does not wait on the disk.
  const std::string snapshot_key = producer_snapshot_key(topic.name, index);
  const std::string checkpoint_key = log_checkpoint_key(topic.name, index);
  if (store_.get(snapshot_key) || store_.get(checkpoint_key))
    write_state_now({{snapshot_key, std::nullopt}, {checkpoint_key, std::nullopt}});
  open_partition(topic, index);
}

void ReplicaManager::prepare_partitions(const controller::TopicInfo& topic, int32_t old_count) {
  for (int32_t p = old_count; p < topic.partition_count(); ++p)
    if (hosts(topic, p) && !find(topic.name, p)) open_partition(topic, p);
}

void ReplicaManager::abandon_topic(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partition_count(); ++p) drop_partition(topic.name, p);
}

void ReplicaManager::abandon_partitions(const controller::TopicInfo& topic) {
  // The partitions a prepare_partitions opened before it failed.
  for (auto it = partitions_.lower_bound(std::pair<std::string_view, int32_t>(topic.name, topic.partition_count()));
       it != partitions_.end() && it->first.first == topic.name;)
    drop_partition(topic.name, (it++)->first.second);
}

void ReplicaManager::on_topic_created(const controller::TopicInfo& topic) {
  // Prepared already by the controller in this process; a broker following
  // the log over the network opens them now.
  for (int32_t p = 0; p < topic.partition_count(); ++p)
    if (hosts(topic, p) && !find(topic.name, p)) open_new_partition(topic, p);
}

void ReplicaManager::on_partitions_added(const controller::TopicInfo& topic, int32_t old_count) {
  prepare_partitions(topic, old_count);
}

void ReplicaManager::on_topic_deleted(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partition_count(); ++p) drop_partition(topic.name, p);
}

void ReplicaManager::drop_partition(const std::string& topic, int32_t index) {
  std::filesystem::path dir = partition_dir(topic, index);
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, index));
  if (it != partitions_.end()) {
    it->second->wake_all();
    it->second->is_leader = false;
    for (auto& observe : role_observers_) observe(*it->second, -1);  // its fetcher and coordinator let go of it
    dir = it->second->log->dir();
    partitions_.erase(it);
    // On the writer thread: a namesake opened before this commits sees the
    // keys and clears them itself (open_new_partition).
    writer_.apply({{producer_snapshot_key(topic, index), std::nullopt}, {log_checkpoint_key(topic, index), std::nullopt}});
  }
  // Also when the partition never opened: its creation may have failed half
  // way, after making the directory. Renamed out of the way at once (a
  // namesake may be opened next), deleted on the deleter's thread: a
  // partition's files can take long to unlink, and the network thread must
  // not wait (reassignments move partitions off brokers routinely).
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return;
  std::filesystem::path doomed = dir;
  doomed += "." + std::to_string(++dropped_dirs_) + kDeletedDirSuffix;
  std::filesystem::rename(dir, doomed, ec);
  if (ec) {
    SLUICE_LOG(kWarn, "could not move " << dir.string() << " away to delete it: " << ec.message());
    std::filesystem::remove_all(dir, ec);
    return;
  }
  deleter_.remove({doomed});
}

void ReplicaManager::reconcile() {
  if (!metadata_ || roles_held_) return;
  for (const auto& [name, topic] : metadata_->topics())
    for (int32_t p = 0; p < topic.partition_count(); ++p) {
      if (!hosts(topic, p) || find(name, p)) continue;
      try {
        open_new_partition(topic, p);
        SLUICE_LOG(kInfo, name << "-" << p << ": opened the replica on a retry");
      } catch (const std::exception& e) {
        SLUICE_LOG(kError, name << "-" << p << ": still cannot open the replica: " << e.what());
      }
    }
}

void ReplicaManager::on_topic_configs_changed(const controller::TopicInfo& topic) {
  for (int32_t p = 0; p < topic.partition_count(); ++p)
    if (Partition* partition = find(topic.name, p)) apply_topic_settings(*partition, topic);
}

void ReplicaManager::flush_all() {
  flusher_.wait_idle();  // the epoch checkpoints queued there land before the recovery points pass them
  for (auto& [key, partition] : partitions_) {
    try {
      if (partition->epochs_unsaved())  // its last write failed: once more, here, or its recovery point stays
        storage::write_atomically(partition->log->dir() / storage::kLeaderEpochCheckpointFile,
                                  partition->epochs.serialize());
      partition->log->flush();
      // A truncation still in flight: its cut is synced now; its producer-state
      // snapshot deletion must land too (write_checkpoint below stores the
      // recovery point).
      if (partition->truncation_in_flight) write_state_now(partition->truncation_changes);
    } catch (const std::exception& e) {  // e.g. a full disk: the next start rescans this log
      SLUICE_LOG(kError, "flushing " << partition->topic << "-" << partition->index << " failed: " << e.what());
    }
  }
  write_checkpoint(true);
}

}  // namespace sluice::broker
