// The partitions this broker hosts: their logs, their high watermarks and the
// fetches waiting for new data. Today every partition is led by this node;
// follower fetch, ISR and acks=all across replicas arrive with replication.
//
// Not thread-safe: used from the network thread.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/config.h"
#include "broker/flusher.h"
#include "broker/state_writer.h"
#include "broker/producer_state.h"
#include "broker/replication_quota.h"
#include "controller/controller.h"
#include "storage/file_deleter.h"
#include "storage/leader_epoch_cache.h"
#include "storage/partition_log.h"
#include "storage/state_store.h"

namespace sluice::broker {

class AsyncEvent;
struct TopicCounters;

// What a leader knows of one follower, from its fetches.
struct FollowerState {
  int64_t log_end_offset = -1;     // its fetch offset: it has everything below (-1: not heard from)
  int64_t last_caught_up_ms = 0;   // the last time it had everything the leader had (replica.lag.time.max.ms)
  int64_t last_fetch_ms = 0;
  int64_t leader_end_at_last_fetch = 0;  // the leader's log end when it last fetched
  // Its registration (broker epoch) in this broker's metadata when it last
  // fetched (KIP-903): progress made by an earlier incarnation of the broker,
  // which may have lost its disk since, never brings the new one into the ISR.
  int64_t broker_epoch = -1;
  int64_t log_start_offset = -1;  // as its last fetch said (KIP-392: a consumer may read only from there on)
};

struct Partition {
  std::string topic;
  int32_t index = 0;
  int32_t leader_epoch = 0;
  int32_t partition_epoch = 0;
  int32_t leader_id = -1;
  // This broker leads the partition (takes its writes and its consumers' reads).
  bool is_leader = false;
  std::vector<int32_t> replicas;  // as the controller assigned them
  std::vector<int32_t> isr;
  // Leader only: each follower's progress.
  std::map<int32_t, FollowerState> followers;
  // Which leader epoch began at which offset (Kafka's leader-epoch-checkpoint):
  // how a follower finds where its log diverged from the leader's.
  storage::LeaderEpochCache epochs;
  // Everything below it is on every in-sync replica: what consumers may read
  // and acks=all waits for. Checkpointed with the log.
  int64_t high_watermark_ = 0;
  int64_t checkpointed_high_watermark = -1;
  // As a follower: the leader's high watermark in its last fetch answer (-1: none yet).
  int64_t leader_high_watermark = -1;
  // An ISR change sent to the controller and not answered yet.
  bool isr_change_in_flight = false;
  // A truncation done in memory whose files and lowered recovery point are
  // not durable yet (ReplicaManager::make_truncation_durable): nothing is
  // appended meanwhile, so the fetcher skips it, and a metadata change waits
  // in `state_deferred` (this replica leads only once its cut is on disk).
  bool truncation_in_flight = false;
  bool state_deferred = false;
  // Its syncs or its commit failed (or could not start): checkpoint() tries
  // again with `truncation_changes`, what the commit must write.
  bool truncation_retry = false;
  std::vector<storage::StateStore::Change> truncation_changes;
  // The epoch file's last write failed: the recovery point must not pass
  // batches whose epochs may be missing from it, so checkpoints leave this log
  // alone and write the file again until a write succeeds. Set by the write
  // itself on the flusher's thread, so it is current once the flusher is idle
  // (a shutdown's last flush), and before any later flush completes.
  std::shared_ptr<std::atomic<bool>> epoch_write_failed = std::make_shared<std::atomic<bool>>(false);
  bool epochs_unsaved() const { return epoch_write_failed->load(); }
  // Which opening of the partition this is: a callback that finds the same
  // topic and index under another incarnation (deleted and re-created
  // meanwhile) leaves it alone.
  uint64_t incarnation = 0;
  // Replicas asked into the ISR whose joining is not known to have failed:
  // until the controller's answer (or the metadata) settles it, the high
  // watermark waits for them too (Kafka's "maximal ISR"). The controller may
  // have committed them, and may elect one of them, before this leader hears
  // of it; it must then hold every write acknowledged here.
  std::vector<int32_t> pending_isr;
  // The topic's min.insync.replicas.
  int64_t min_insync_replicas = 1;
  // The topic's leader/follower.replication.throttled.replicas name this
  // partition on this broker (replication_quota.h).
  bool leader_throttled = false;
  bool follower_throttled = false;
  std::unique_ptr<storage::PartitionLog> log;
  // Idempotent producers writing here (sequence numbers, last batches).
  ProducerStateTable producers;
  // The topic's traffic counters (metrics.h), looked up on first use.
  TopicCounters* counters = nullptr;
  // Consumers' fetches parked until the high watermark moves; each is woken
  // once and removes itself.
  std::vector<AsyncEvent*> waiters;
  // Followers' fetches parked until the log grows.
  std::vector<AsyncEvent*> replica_waiters;
  // acks=all produces waiting for the high watermark to pass an offset.
  std::vector<std::pair<int64_t, AsyncEvent*>> high_watermark_waiters;
  // The topic's retention.ms / retention.bytes (-1: no limit).
  int64_t retention_ms = -1;
  int64_t retention_bytes = -1;
  // The topic's delete.after.consumption.groups: the groups whose consumption
  // releases the records (queue_retention.h); empty: retention alone.
  std::vector<std::string> release_groups;
  // What the last checkpoint stored (recovery point, log start offset).
  storage::LogCheckpoint checkpointed;
  // The topic's flush.messages / flush.ms, and what was appended since the
  // last flush this broker asked for.
  int64_t flush_messages = INT64_MAX;
  int64_t flush_ms = INT64_MAX;
  int64_t unflushed_messages = 0;
  int64_t last_flush_ms = 0;

  // Counts an append; true when flush.messages says it must be flushed now.
  bool note_append(int32_t records);

  int64_t high_watermark() const { return high_watermark_; }
  // Wakes the consumers' fetches parked on this partition; true if there were any.
  bool wake_waiters();
  // Wakes everything parked here (the partition changed hands or is going away).
  void wake_all();
};

// What the replica manager has done since the process started (metrics).
struct ReplicationCounters {
  uint64_t isr_shrinks = 0;   // ISR changes of led partitions that removed a replica
  uint64_t isr_expands = 0;   // ... that added one
  uint64_t leader_elections = 0;  // times this broker became a partition's leader
  uint64_t retention_deleted_segments = 0;
  // Times a led partition's log start moved because its groups consumed (queue_retention.h).
  uint64_t consumption_releases = 0;
};

class ReplicaManager : public controller::MetadataListener {
 public:
  // Topic settings fall back to `config`; checkpoints and producer-state
  // snapshots go to `store`.
  ReplicaManager(std::filesystem::path log_dir, const BrokerConfig& config, storage::StateStore& store,
                 Flusher& flusher, StateWriter& writer);

  // Opens the logs of every partition the controller knows, recovering each,
  // and removes directories of partitions that no longer exist.
  void load(const controller::MetadataImage& metadata);
  // Whether this broker holds a replica of the partition.
  bool hosts(const controller::TopicInfo& topic, int32_t index) const;

  // Leader side of replication. After this broker appended to a partition it
  // leads: the leader epoch cache learns a new epoch, the high watermark
  // moves if the ISR is this broker alone, followers' fetches wake.
  void after_leader_append(Partition& partition, int64_t base_offset);
  // A follower fetched from `fetch_offset`: it has everything below. Moves
  // the high watermark, and may ask the controller to take the follower back
  // into the ISR.
  void record_follower_fetch(Partition& partition, int32_t replica, int64_t fetch_offset, int64_t log_start_offset,
                             int64_t now_ms);
  // The minimum log end over the ISR (never backwards); wakes what waits for it.
  void advance_high_watermark(Partition& partition);
  // Follower side: the leader's high watermark, capped by what this replica has.
  void follower_high_watermark(Partition& partition, int64_t leader_high_watermark);
  // Writes the partition's leader-epoch checkpoint (after the cache changed),
  // on the flusher's thread, before any flush of the log requested later.
  void write_epochs(Partition& partition);
  // Follower side: appends a batch the leader sent, at its own offsets
  // (`batch` is a complete, checked batch). Throws std::system_error on I/O failure.
  void append_as_follower(Partition& partition, std::span<char> batch);
  // Follower side: cuts the log where it diverged from the leader's (or all
  // of it, starting again at `offset`, when the leader's log starts past
  // this one's end), with the epochs, producer state and the checkpoint.
  void truncate_to(Partition& partition, int64_t offset);
  void truncate_fully_and_start_at(Partition& partition, int64_t offset);
  // ISR changes the leader wants (followers past replica.lag.time.max.ms out,
  // caught-up ones in), for the controller; empty when none.
  std::optional<std::vector<int32_t>> wanted_isr(const Partition& partition, int64_t now_ms) const;
  // Every partition, for the replication loops.
  template <typename F>
  void for_each_partition(F&& f) {
    for (auto& [key, partition] : partitions_) f(*partition);
  }
  // A broker-only node starts from its own copy of the metadata, which may be
  // stale: until it has caught up with the controller it neither leads nor
  // follows anything (as Kafka's brokers wait for the metadata before their
  // replica manager starts). release_roles() takes the roles the image gives.
  void hold_roles() { roles_held_ = true; }
  void release_roles();
  // Told how long each segment roll of an append took (the roll's file
  // creation and index writes are on the calling thread: metrics; the first
  // reserve of the new segment, made by the append's write, is not counted).
  void set_roll_observer(std::function<void(double seconds)> observer) { roll_observer_ = std::move(observer); }
  // Appends as a leader does (PartitionLog::append), timing a roll for the observer.
  int64_t append_as_leader(Partition& partition, std::span<char> batch, const storage::BatchSummary& summary);
  // Who to tell when a partition's roles may have changed (this broker leads
  // it, follows `leader`, or, with -1 and not leading, lets it go): the
  // replica fetchers and the group coordinator.
  void add_role_observer(std::function<void(Partition&, int32_t leader)> observer) {
    role_observers_.push_back(std::move(observer));
  }

  Partition* find(std::string_view topic, int32_t index);
  // The partition if this broker leads it; otherwise null, with `error` set
  // as Kafka answers: NOT_LEADER_OR_FOLLOWER for a partition that exists
  // (led elsewhere, or by no one), UNKNOWN_TOPIC_OR_PARTITION otherwise.
  Partition* find_led(std::string_view topic, int32_t index, protocol::ErrorCode& error);

  const ReplicationCounters& counters() const { return counters_; }
  // KIP-392, Kafka's RackAwareReplicaSelector: the in-sync follower in
  // `client_rack` that holds `fetch_offset` and most besides, for a consumer
  // to read `partition` (led here) from; -1 for the leader itself (it is in
  // that rack, or no such follower is).
  int32_t preferred_read_replica(const Partition& partition, std::string_view client_rack, int64_t fetch_offset,
                                 int64_t now_ms) const;
  // The replication throttles (leader.replication.throttled.rate and
  // follower.replication.throttled.rate, this broker's or every broker's).
  ReplicationQuota& leader_quota() { return leader_quota_; }
  ReplicationQuota& follower_quota() { return follower_quota_; }
  // A led partition's ISR went from `before` to `after` (metrics: shrinks, expands).
  void count_isr_change(const std::vector<int32_t>& before, const std::vector<int32_t>& after);
  const std::filesystem::path& log_dir() const { return log_dir_; }

  // How storage reads Kafka record batches (offsets, timestamps, CRC).
  static storage::BatchFormat batch_format();

  // A new topic's or partitions' logs are opened before the controller in
  // this process commits them (the broker of a broker-only node opens them
  // when it applies the records).
  void prepare_topic(const controller::TopicInfo& topic) override;
  void prepare_partitions(const controller::TopicInfo& topic, int32_t old_count) override;
  void abandon_topic(const controller::TopicInfo& topic) override;
  void abandon_partitions(const controller::TopicInfo& topic) override;
  void on_topic_created(const controller::TopicInfo& topic) override;
  void on_partitions_added(const controller::TopicInfo& topic, int32_t old_count) override;
  void on_topic_deleted(const controller::TopicInfo& topic) override;
  void on_topic_configs_changed(const controller::TopicInfo& topic) override;
  void on_partition_changed(const controller::TopicInfo& topic, int32_t index) override;
  // Dynamic broker configs may have changed: the throttle rates are read again.
  void on_committed(int64_t end_offset) override;

  // Syncs every log and checkpoints (clean shutdown): the next start trusts
  // every segment and reads nothing but index files.
  void flush_all();

  // Makes every log's recent writes durable on the group-commit thread, then
  // persists (one transaction) what changed: recovery points, log start
  // offsets, producer-state snapshots. After a crash only what came after the
  // recovery point is rescanned, and producer state replayed from the log.
  void checkpoint();
  // Flushes the logs whose topic's flush.ms has passed (off this thread).
  void flush_by_time(int64_t now_ms);
  // Deletes old segments by each topic's retention.ms / retention.bytes
  // (files are unlinked on a background thread).
  void enforce_retention(int64_t now_ms);
  // Answers the parked fetches of the partition's followers (new records, a new log start).
  void wake_replica_fetches(Partition& partition);
  // DeleteRecords: raises the partition's log start offset, durably.
  void delete_records_before(Partition& partition, int64_t offset);
  // delete_records_before, because the groups of the partition's
  // delete.after.consumption.groups consumed everything below `offset`.
  void release_consumed(Partition& partition, int64_t offset);
  // Opens the replicas the metadata gives this broker that are not open (an
  // open that failed: no descriptors, no space), periodically.
  void reconcile();
  // Forgets producers idle for `expiration_ms` (producer.id.expiration.ms).
  void expire_producers(int64_t now_ms, int64_t expiration_ms);

 private:
  // Closes a partition's log and deletes its files and state (deletion, or
  // undoing a failed creation): the directory is renamed away at once (a
  // namesake may be opened next) and deleted in the background, the state
  // forgotten on the writer.
  void drop_partition(const std::string& topic, int32_t index);
  std::filesystem::path partition_dir(std::string_view topic, int32_t index) const;
  // Returns the bytes recovery had to verify (written after the last checkpoint).
  uint64_t open_partition(const controller::TopicInfo& topic, int32_t index);
  // A partition of a topic just created: opened with no state a namesake left.
  void open_new_partition(const controller::TopicInfo& topic, int32_t index);
  storage::LogOptions log_options_for(const controller::TopicInfo& topic) const;
  void apply_topic_settings(Partition& partition, const controller::TopicInfo& topic);
  // `use_snapshot` false: replays the whole log (after a truncation, whose
  // deletion of the snapshot is not committed yet).
  void load_producer_state(Partition& partition, bool use_snapshot = true);
  // After a truncation (in memory, files cut but not synced): syncs what it
  // changed on the flusher, then commits `changes` (the lowered recovery
  // point) on the state writer, then writes the epoch checkpoint and lets
  // the partition take appends and metadata again. Nothing waits on this thread.
  void make_truncation_durable(Partition& partition, std::vector<storage::StateStore::Change> changes);
  void sync_truncation(Partition& partition);
  // The partition, if it is still the incarnation a callback started with.
  Partition* find(std::string_view topic, int32_t index, uint64_t incarnation);
  // The epochs of batches above the recovery point the checkpoint stored,
  // which the epoch file may lack (it is written off this thread): read from
  // the batch headers at start-up, as Kafka's log recovery does.
  void rebuild_epochs(Partition& partition, int64_t recovery_point);
  // now: committed before returning (clean shutdown); else on the writer thread.
  void write_checkpoint(bool now);
  // For writes that must be durable before the caller goes on (after a truncation, before
  // anything is appended again; a partition's state removed before a namesake opens): rare,
  // so they wait for the disk here, after whatever the writer has queued.
  void write_state_now(const std::vector<storage::StateStore::Change>& changes);

  // Orders (topic, index) keys and lets lookups use a string_view topic.
  struct KeyLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, int32_t>(a.first, a.second) < std::pair<std::string_view, int32_t>(b.first, b.second);
    }
  };

  std::filesystem::path log_dir_;
  const BrokerConfig& config_;
  const controller::MetadataImage* metadata_ = nullptr;  // set by load()
  std::vector<std::function<void(Partition&, int32_t leader)>> role_observers_;
  std::function<void(double seconds)> roll_observer_;
  // Tells the roll observer what an append's roll cost (roll_nanos() since `roll_nanos_before`).
  void report_roll(const Partition& partition, uint64_t roll_nanos_before) const;
  bool roles_held_ = false;
  // Takes the partition's replication state from the image: replicas, ISR,
  // leader and epochs; becomes its leader or a follower as the image says.
  void apply_partition_state(Partition& partition, const controller::PartitionState& state);
  storage::StateStore& store_;
  Flusher& flusher_;
  StateWriter& writer_;  // checkpoints and DeleteRecords' log start, off this thread
  storage::FileDeleter deleter_;
  bool checkpoint_running_ = false;
  uint64_t incarnations_ = 0;  // numbers each opening of a partition
  std::map<std::pair<std::string, int32_t>, std::unique_ptr<Partition>, KeyLess> partitions_;
  ReplicationCounters counters_;
  ReplicationQuota leader_quota_;
  ReplicationQuota follower_quota_;
  uint64_t dropped_dirs_ = 0;  // numbers the directories of dropped partitions awaiting deletion
};

// A dropped partition's directory is renamed "<topic>-<index>.<n>.deleted" and deleted off the network thread.
inline constexpr const char* kDeletedDirSuffix = ".deleted";

}  // namespace sluice::broker
