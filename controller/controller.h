// The cluster manager. Its state is the metadata log (metadata_log.h): every
// operation validates a request the way Kafka's controller does, turns it into
// Kafka's metadata records, appends them to the metadata log in one
// transaction and applies them to its image (metadata_image.h). Replaying the
// log rebuilds the image after a restart. It runs inside a node's process and
// tells in-process listeners (the broker's replica manager) what was
// committed; brokers in other processes follow the log instead.
//
// Not thread-safe: used from the node's network thread, which never waits for
// the log's disk writes once write_in_background() is called.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/metadata_image.h"
#include "controller/metadata_log.h"
#include "protocol/error_codes.h"
#include "protocol/wire.h"

namespace sluice::storage {
class StateStore;
}

namespace sluice::controller {

// Kafka's controller turns one request into at most this many metadata
// records (a topic record, one per partition, one per config) and refuses
// what would take more. The same bound keeps one request (CreateTopics,
// CreatePartitions, a Metadata request that auto-creates) from having this
// broker create millions of partitions.
inline constexpr int64_t kMaxRecordsPerRequest = 10'000;

struct OperationResult {
  protocol::ErrorCode error = protocol::ErrorCode::kNone;
  std::string message;  // null in the response when empty
  bool ok() const { return error == protocol::ErrorCode::kNone; }
};

// Observes metadata changes once they are committed (durable in the log), as
// a broker following the log sees them (publish_delta, metadata_delta.h).
// Listeners that must open files for a new topic or partitions (the broker's
// replica manager) also prepare them before the change is committed, so that
// a change they cannot take is never committed.
class MetadataListener {
 public:
  virtual ~MetadataListener() = default;
  // Before a topic or partitions are committed: open what they need, or throw.
  virtual void prepare_topic(const TopicInfo& /*topic*/) {}
  virtual void prepare_partitions(const TopicInfo& /*topic*/, int32_t /*old_count*/) {}
  // Undo a prepare that will not be committed (this or a later listener's
  // prepare failed, or the commit did).
  virtual void abandon_topic(const TopicInfo& /*topic*/) {}
  // The partitions from `topic.partition_count()` on are not to be.
  virtual void abandon_partitions(const TopicInfo& /*topic*/) {}

  virtual void on_topic_created(const TopicInfo& topic) = 0;
  virtual void on_partitions_added(const TopicInfo& topic, int32_t old_count) = 0;
  virtual void on_topic_deleted(const TopicInfo& topic) = 0;
  // A topic's configs were altered (AlterConfigs / IncrementalAlterConfigs).
  virtual void on_topic_configs_changed(const TopicInfo& /*topic*/) {}
  // A partition's replicas, ISR, leader or epochs changed (`topic` as it is now).
  virtual void on_partition_changed(const TopicInfo& /*topic*/, int32_t /*index*/) {}
  // Records were committed to the metadata log, which is durable up to `end_offset`.
  virtual void on_committed(int64_t /*end_offset*/) {}
};
// A listener that cannot prepare a change (its logs could not be opened: no
// file descriptors or no space left) throws; the controller then abandons it
// in the listeners prepared before, commits nothing and answers
// KAFKA_STORAGE_ERROR, so that a topic or a partition count is never half made.

class Controller {
 public:
  struct Options {
    int32_t node_id = 1;
    int32_t default_partitions = 1;
    int16_t default_replication_factor = 1;
    // Kafka's metadata.log.max.record.bytes.between.snapshots.
    uint64_t snapshot_after_bytes = 20 * 1024 * 1024;
    // broker.session.timeout.ms: a broker not heard from for this long is fenced.
    int64_t session_timeout_ms = 9000;
    // unclean.leader.election.enable, the broker default a topic's config overrides.
    bool unclean_leader_election = false;
    // One of several voters (controller.quorum.voters): it starts as a
    // follower and acts only once the quorum makes it leader (become_leader).
    bool quorum = false;
    // The cluster id to take when the store has none (empty: a random one).
    std::string new_cluster_id = {};
  };

  // What a broker's heartbeat gets back (Kafka's BrokerHeartbeatResponse).
  struct HeartbeatReply {
    OperationResult result;
    bool is_caught_up = false;
    bool is_fenced = true;
    bool should_shut_down = false;
  };

  // Replays the metadata log (creating the cluster id on first start). A data
  // directory from before the metadata log (topics under "topic/" keys) is
  // migrated into it once, in one transaction. Throws std::runtime_error when
  // the log does not replay.
  Controller(storage::StateStore& store, Options options);

  const std::string& cluster_id() const { return cluster_id_; }
  int32_t node_id() const { return options_.node_id; }
  // The controller's image: every record appended, durable or not. Operations
  // validate against it, as Kafka's controller does against its in-memory state.
  const MetadataImage& image() const { return image_; }
  // What is durable in the log and told to the listeners: what the brokers of
  // this process serve.
  const MetadataImage& committed_image() const { return committed_; }
  const MetadataLog& log() const { return log_; }

  // The quorum (DescribeQuorum). A single voter leads in an epoch that grows
  // with every start (kept under "quorum/epoch"); a voter of several leads
  // when the quorum elects it (broker/quorum_peer.h), in the epoch it won.
  int32_t quorum_epoch() const { return quorum_epoch_; }
  // Whether this controller takes operations: always when it is the only
  // voter; a quorum's leader between become_leader() and resign(). Others
  // refuse every operation with NOT_CONTROLLER.
  bool active() const { return active_; }
  // The offset up to which records are committed and applied to
  // committed_image() and told to the listeners.
  int64_t committed_offset() const { return applied_; }
  int64_t high_watermark() const { return high_watermark_; }

  // The quorum's side (broker/quorum_peer.h). A voter elected leader in
  // `epoch`, its log durable to its end: the records past the high watermark
  // stand, and a NoOpRecord of the new epoch commits them with itself.
  void become_leader(int32_t epoch);
  // A follower learning the quorum's epoch (DescribeQuorum, NOT_CONTROLLER hints).
  void set_quorum_epoch(int32_t epoch) {
    if (!active_) quorum_epoch_ = epoch;
  }
  // Leadership lost: what was appended past the high watermark may be
  // dropped by the next leader, so the image falls back to the committed one.
  void resign();
  // The quorum's high watermark: records below it are committed once durable here.
  void set_high_watermark(int64_t high_watermark);
  // A follower's copy of the leader's log: records appended in `epoch`,
  // truncation where it diverged (never below what is committed), and the
  // leader's snapshot when its log no longer holds what the follower needs.
  void append_replicated(const std::vector<std::string>& records, int32_t epoch);
  void truncate_replicated(int64_t offset);
  void install_replicated_snapshot(int64_t offset, int32_t epoch, const std::vector<std::string>& records);
  // Called as the log's writes become durable (the quorum leader wakes the
  // voters waiting for records, the quorum's high watermark may move).
  void on_durable(std::function<void(int64_t durable_end)> callback) { on_durable_ = std::move(callback); }
  // A broker following the metadata log (an observer, in KRaft's words): what
  // it last fetched from, and when it last had everything (wall-clock ms).
  struct ObserverState {
    int64_t log_end_offset = -1;
    int64_t last_fetch_ms = -1;
    int64_t last_caught_up_ms = -1;
  };
  void note_observer_fetch(int32_t id, int64_t fetch_offset, int64_t wall_now_ms);
  const std::map<int32_t, ObserverState>& observers() const { return observers_; }

  // What this controller has done since it started, by kind (metrics).
  enum class Event {
    kRegisterBroker,
    kHeartbeat,
    kFenceBroker,
    kUnfenceBroker,
    kCreateTopic,
    kDeleteTopic,
    kCreatePartitions,
    kAlterConfigs,
    kAlterPartition,
    kElectLeader,  // a partition got a new leader (failover, unfencing, a replica back)
    kAllocateProducerIds,
    kCount
  };
  static const char* event_name(Event event);
  uint64_t events(Event event) const { return events_[static_cast<size_t>(event)]; }
  // Metadata records applied to the image since the process started.
  uint64_t records_applied() const { return records_applied_; }
  // Registered brokers that are not fenced: where replicas can go.
  std::vector<int32_t> live_brokers() const { return image_.unfenced_brokers(); }

  const std::map<std::string, TopicInfo, std::less<>>& topics() const { return image_.topics(); }
  const TopicInfo* find_topic(std::string_view name) const { return image_.find_topic(name); }
  const TopicInfo* find_topic(const protocol::Uuid& id) const { return image_.find_topic(id); }

  // A broker (re)starting: a new registration whose epoch is the offset of its
  // record, so a restarted broker is never mistaken for its old self. Fenced
  // until unfence_broker() or a heartbeat that shows it caught up. The same
  // incarnation registering again (a retry) gets its epoch back; another
  // incarnation of a broker whose session is alive gets
  // DUPLICATE_BROKER_REGISTRATION. `epoch` receives the broker epoch.
  OperationResult register_broker(int32_t id, const protocol::Uuid& incarnation_id,
                                  const std::vector<BrokerEndpoint>& endpoints, const std::optional<std::string>& rack,
                                  int64_t* epoch, int64_t now_ms = 0);
  OperationResult unfence_broker(int32_t id, int64_t epoch);
  // A broker's heartbeat (Kafka's BrokerHeartbeat): renews its session;
  // unfences it once it has applied the metadata log past its own
  // registration; fences it when it asks to be fenced; moves its leaderships
  // away and lets it go when it asks to shut down (controlled shutdown).
  HeartbeatReply heartbeat(int32_t id, int64_t epoch, int64_t metadata_offset, bool want_fence, bool want_shut_down,
                           int64_t now_ms);
  // UnregisterBroker (kafka-cluster.sh unregister): removes a broker for good.
  // Refused while it still holds a replica (move them away first with a
  // reassignment), so that no partition is left with a replica no one runs.
  OperationResult unregister_broker(int32_t id);
  // Fences every unfenced broker not heard from for session_timeout_ms; returns their ids.
  std::vector<int32_t> fence_expired_brokers(int64_t now_ms);
  // Gives every registered broker a full session from `now_ms` (a controller
  // that just started has heard from nobody yet).
  void renew_all_sessions(int64_t now_ms);

  // One partition of an AlterPartition request (Kafka's AlterPartitionRequest
  // PartitionData): the ISR its leader wants, under the epochs it knows.
  struct IsrMember {
    int32_t broker_id = -1;
    int64_t broker_epoch = -1;  // the registration the leader saw it under; -1: not checked (v2 requests)
  };
  struct PartitionAlteration {
    protocol::Uuid topic_id;
    int32_t partition = -1;
    int32_t leader_epoch = -1;
    int32_t partition_epoch = -1;
    std::vector<IsrMember> new_isr;
    int8_t leader_recovery_state = 0;  // 0 RECOVERED, 1 RECOVERING
  };
  // What the partition is after the request (when `error` is NONE), as the
  // AlterPartition response carries it.
  struct AlteredPartition {
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    std::string message;  // why it was refused, for the log
    int32_t leader = -1;
    int32_t leader_epoch = -1;
    int32_t partition_epoch = -1;
    std::vector<int32_t> isr;
    int8_t leader_recovery_state = 0;
  };
  struct AlterPartitionReply {
    OperationResult result;                   // the whole request's error: STALE_BROKER_EPOCH
    std::vector<AlteredPartition> partitions;  // one per alteration, in order (empty when `result` failed)
  };
  // AlterPartition (Kafka's ReplicationControlManager.alterPartition): a
  // partition leader (`broker_id` under `broker_epoch`) changing ISRs. Each
  // partition is validated on its own, in Kafka's order; those that pass and
  // change something are committed together, one PartitionChangeRecord each
  // (new ISR and leader recovery state, never a leader: the partition epoch
  // moves, the leader epoch does not). A partition named twice is validated
  // the second time against the state the first left.
  AlterPartitionReply alter_partition(int32_t broker_id, int64_t broker_epoch,
                                      const std::vector<PartitionAlteration>& alterations);

  // ElectLeaders (Kafka's ReplicationControlManager.electLeaders).
  // PREFERRED moves leadership to the first replica when it is live and in
  // the ISR (or elects any live ISR member for a partition with no leader);
  // UNCLEAN elects a leader for a partition that has none, from the ISR if
  // it can and otherwise from any live replica, which then leads alone and
  // recovering (it may lose what it lacks: the caller asked for that).
  enum class ElectionType : int8_t { kPreferred = 0, kUnclean = 1 };
  struct PartitionElectionResult {
    int32_t partition = -1;
    OperationResult result;  // ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ...
  };
  struct TopicElectionResults {
    std::string topic;
    std::vector<PartitionElectionResult> partitions;
  };
  using ElectionTargets = std::vector<std::pair<std::string, std::vector<int32_t>>>;
  // `targets` nullopt: every partition of every topic, and (as Kafka) only
  // the partitions whose election was needed are reported. The new leaders
  // are committed together.
  std::vector<TopicElectionResults> elect_leaders(ElectionType type, const std::optional<ElectionTargets>& targets);
  // auto.leader.rebalance.enable: a broker is imbalanced when more than
  // `imbalance_percent` of the partitions it is the preferred leader of are
  // led by another broker; for each such broker, the partitions whose
  // preferred leader can take them back get it (a preferred election).
  // Returns how many partitions moved.
  int rebalance_leaders(double imbalance_percent);

  // AlterPartitionReassignments (Kafka's KIP-455): moves a partition to
  // other replicas. The new ones are added (replicas = target + removing) and
  // copy from the leader; once the ISR holds every target replica the
  // reassignment completes in the same commit as that ISR change: the
  // replicas become the target, the removed ones leave the ISR, and a leader
  // that is not in the target hands over to the first target replica in sync.
  // A target the ISR already holds completes at once. `replicas` nullopt
  // cancels the one in progress (back to the replicas before it).
  struct Reassignment {
    std::string topic;
    int32_t partition = -1;
    std::optional<std::vector<int32_t>> replicas;
  };
  std::vector<OperationResult> alter_partition_reassignments(const std::vector<Reassignment>& reassignments,
                                                             bool allow_replication_factor_change);

  // Listeners are told in the order they were added.
  void add_listener(MetadataListener* listener) { listeners_.push_back(listener); }

  // From now on the log is written by `committer` (a thread of its own) and
  // the caller does not wait for the disk: operations return once their
  // records are appended and applied to image(); the listeners and
  // committed_image() get them when they are durable (log().durable_end_offset()
  // has passed them). Whoever answers a request must wait for that too. A
  // listener that throws then (it could not open or delete files) is
  // reported to `report` and the others are still told, as a Kafka broker
  // logs a failed metadata publisher and goes on.
  void write_in_background(MetadataLog::Committer committer, std::function<void(const std::string&)> report);

  // partitions / replication_factor of -1 take the broker defaults; an empty
  // `assignments` lets the controller place replicas. `validate_only` checks
  // everything and changes nothing.
  OperationResult create_topic(std::string_view name, int32_t partitions, int16_t replication_factor,
                               const std::vector<std::vector<int32_t>>& assignments,
                               const std::map<std::string, std::string>& configs, bool validate_only,
                               const TopicInfo** created = nullptr);
  OperationResult delete_topic(std::string_view name);
  OperationResult create_partitions(std::string_view name, int32_t new_total, bool validate_only);
  // Replaces a topic's explicit configs with `configs` (each validated as at
  // creation), durably, and tells the listeners.
  OperationResult alter_topic_configs(std::string_view name, const std::map<std::string, std::string>& configs,
                                      bool validate_only);

  // Replaces the dynamic configs of broker `name` (its id, "" for every
  // broker) with `configs` (topic_config.h: dynamic_broker_config_definitions),
  // each validated. The broker must be registered (or be this controller).
  OperationResult alter_broker_configs(std::string_view name, const std::map<std::string, std::string>& configs,
                                       bool validate_only);
  // Replaces the configs of group `name` (topic_config.h: group_config_definitions), each validated.
  OperationResult alter_group_configs(std::string_view name, const std::map<std::string, std::string>& configs,
                                      bool validate_only);
  // Reserves `count` producer ids for an idempotent-producer id manager and
  // returns the first. The reservation is durable before it is returned, so an
  // id is never handed out twice, across restarts included (ids reserved and
  // not used before a crash are skipped, as Kafka does with its id blocks).
  int64_t allocate_producer_ids(int32_t count);

 private:
  // Appends the records in one transaction and applies them; snapshots when
  // enough has been written since the last one. Published once durable.
  OperationResult commit(const std::vector<MetadataRecord>& records);
  // Applies what is committed (durable, and below the high watermark) to committed_ and tells the listeners.
  void publish(int64_t durable_end);
  void migrate_legacy_state();
  // Whether a partition of `topic` left with no live in-sync replica may
  // elect one that is not in sync (and lose what it lacks).
  bool unclean_election_allowed(const TopicInfo& topic) const;
  // Fences a broker: it leaves every ISR (unless it is the last member) and
  // every leadership, with new leaders from the ISR where there are any (from
  // the live replicas if unclean election is allowed).
  OperationResult fence_broker(int32_t id, int64_t epoch, bool controlled_shutdown);
  // The record that finishes `state`'s reassignment when its ISR `isr` holds
  // every target replica (into `change`, whose ISR it sets); false otherwise.
  bool complete_reassignment(const PartitionState& state, const std::vector<int32_t>& isr,
                             protocol::PartitionChangeRecord& change) const;
  // Kafka's election among `replicas`: `current` if it may go on leading,
  // else the first in order that is in `isr` and live; -1 if none is.
  int32_t elect_among(const std::vector<int32_t>& replicas, const std::vector<int32_t>& isr, int32_t current) const;
  // One partition's election into `records` (validated against image_).
  OperationResult elect_leader(const TopicInfo& topic, int32_t partition, ElectionType type,
                               std::vector<MetadataRecord>& records) const;
  // Replicas for `count` new partitions, leaders and followers spread evenly
  // over the live brokers and their racks, starting at partition `first`.
  std::vector<std::vector<int32_t>> place_replicas(int32_t first, int32_t count, int16_t replication_factor) const;
  // The PartitionRecord of a new partition with these replicas.
  protocol::PartitionRecord new_partition(const protocol::Uuid& topic, int32_t index, const std::vector<int32_t>& replicas) const;

  storage::StateStore& store_;
  Options options_;
  std::string cluster_id_;
  MetadataLog log_;
  MetadataImage image_;
  MetadataImage committed_;
  // Records appended and not yet committed, with their offsets.
  std::deque<std::pair<int64_t, MetadataRecord>> unpublished_;
  bool active_ = true;
  int64_t applied_ = 0;         // committed_ is the image here
  int64_t high_watermark_ = 0;  // a quorum's; a single voter's is its durable end
  std::function<void(int64_t)> on_durable_;
  std::function<void(const std::string&)> report_;  // listener failures, once writing in the background
  std::vector<MetadataListener*> listeners_;
  // Soft state, not in the log: when each broker was last heard from.
  std::map<int32_t, int64_t> last_heard_ms_;
  std::map<int32_t, ObserverState> observers_;
  int32_t quorum_epoch_ = 1;
  void note(Event event) { ++events_[static_cast<size_t>(event)]; }
  std::array<uint64_t, static_cast<size_t>(Event::kCount)> events_{};
  uint64_t records_applied_ = 0;
};

// A random (version 4) UUID: topic ids, broker incarnation ids.
protocol::Uuid random_uuid();
// How Kafka prints ids (cluster, topic): unpadded URL-safe base64, 22 characters.
std::string base64url(const protocol::Uuid& id);

// Kafka's rules for topic names: 1-249 characters of [a-zA-Z0-9._-], not "."
// or "..". Returns the reason a name is invalid, or nullopt.
std::optional<std::string> invalid_topic_name_reason(std::string_view name);

// The topic in which a cluster's group coordinators keep committed offsets.
inline constexpr std::string_view kOffsetsTopic = "__consumer_offsets";
// The topic in which a cluster's share coordinators keep share-partition state.
inline constexpr std::string_view kShareStateTopic = "__share_group_state";
// Kafka's internal topics: listed as internal in Metadata, not writable by clients.
inline bool is_internal_topic(std::string_view name) { return name == kOffsetsTopic || name == kShareStateTopic; }

}  // namespace sluice::controller
