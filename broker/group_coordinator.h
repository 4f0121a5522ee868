// The group coordinator: Kafka's classic consumer-group protocol (members join,
// the leader assigns, everyone syncs; generations, session and rebalance
// timeouts, the two-step join of JoinGroup v4+, static membership), and the
// groups' committed offsets, durable in the state store.
//
// Membership is soft state: after a restart, or when another broker takes
// over a group, members rejoin (Kafka keeps it in __consumer_offsets too).
// Committed offsets go through OffsetStore: the state store on a single node,
// the __consumer_offsets topic in a cluster (offsets_topic.h), where this
// broker coordinates the groups of the partitions of that topic it leads.
// Not thread-safe: used from the network thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "broker/async_event.h"
#include "broker/state_writer.h"
#include "controller/controller.h"
#include "protocol/error_codes.h"
#include "storage/partition_log.h"

namespace sluice::storage {
class StateStore;
}

namespace sluice::broker {

struct CommittedOffset {
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::optional<std::string> metadata;
  int64_t commit_timestamp_ms = 0;
  bool operator==(const CommittedOffset&) const = default;
};

using TopicPartition = std::pair<std::string, int32_t>;
using GroupOffsets = std::map<std::string, std::map<TopicPartition, CommittedOffset>>;

// A state-store commit in flight on the StateWriter's thread.
struct PendingStateWrite {
  explicit PendingStateWrite(const boost::asio::any_io_executor& executor) : committed(executor) {}
  AsyncEvent committed;
  bool ok = true;
};

// Kafka's partition of a coordinator key (a group id; a share-state key):
// Utils.abs(key.hashCode()) % partitions, with Java's String.hashCode over
// UTF-16 code units, so that Sluice and Kafka agree.
int32_t coordinator_partition_of(std::string_view key, int32_t partitions);

// A change the offset store has made (or a coordinator's internal-topic
// write), and what it must still reach before it is acknowledged.
struct OffsetWrite {
  // The __consumer_offsets partition written; -1 when the change is durable
  // already (the state store).
  int32_t partition = -1;
  int64_t next_offset = 0;  // that partition's high watermark must pass it
  storage::SyncList sync;   // what to sync first (PartitionLog::to_sync)
  // A state-store commit on the writer thread (a single node), to wait for.
  std::shared_ptr<PendingStateWrite> state_write = nullptr;
};

// Durable home of committed offsets: the LMDB state store on a single node,
// the __consumer_offsets topic in a cluster.
class OffsetStore {
 public:
  virtual ~OffsetStore() = default;
  // Every committed offset of every group (start-up).
  virtual GroupOffsets load() = 0;
  // Writes and removals of one call are applied atomically. Throws when
  // nothing could be written (a full disk; no longer the partition's leader).
  virtual OffsetWrite apply(std::string_view group, const std::map<TopicPartition, CommittedOffset>& upserts,
                            const std::vector<TopicPartition>& removals) = 0;
};

class StateStoreOffsetStore : public OffsetStore {
 public:
  // With a `writer`, commits run on its thread and OffsetWrite::state_write
  // says when they are durable; without one (unit tests), they run here.
  explicit StateStoreOffsetStore(storage::StateStore& store, StateWriter* writer = nullptr)
      : store_(store), writer_(writer) {}
  GroupOffsets load() override;
  OffsetWrite apply(std::string_view group, const std::map<TopicPartition, CommittedOffset>& upserts,
                    const std::vector<TopicPartition>& removals) override;

 private:
  storage::StateStore& store_;
  StateWriter* writer_;
};

// What a JoinGroup or SyncGroup that had to wait gets when the group moves on.
struct JoinOutcome {
  protocol::ErrorCode error = protocol::ErrorCode::kNone;
  int32_t generation_id = -1;
  std::string protocol_type;
  std::optional<std::string> protocol_name;
  std::string leader;
  std::string member_id;
  bool skip_assignment = false;
  // With skip_assignment: the leader's id before it restarted, which clients
  // older than JoinGroup v9 are given instead, so they do not act as leader.
  std::string previous_leader;
  struct Member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string metadata;
  };
  std::vector<Member> members;  // only the leader gets them
};

struct SyncOutcome {
  protocol::ErrorCode error = protocol::ErrorCode::kNone;
  std::string protocol_type;
  std::optional<std::string> protocol_name;
  std::string assignment;
};

// A reply that is ready at once or later; the handler waits on `ready`.
template <typename Outcome>
struct PendingReply {
  explicit PendingReply(const boost::asio::any_io_executor& executor) : ready(executor) {}
  AsyncEvent ready;
  Outcome outcome;
  void complete(Outcome o) {
    outcome = std::move(o);
    ready.set();
  }
};

struct GroupSummary {
  std::string group_id;
  std::string state;  // Kafka's names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead
  std::string protocol_type;
  std::string protocol_name;
  struct Member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    std::string metadata;
    std::string assignment;
  };
  std::vector<Member> members;
};

class GroupCoordinator : public controller::MetadataListener {
 public:
  struct Options {
    int32_t max_metadata_bytes = 4096;           // offset.metadata.max.bytes
    int64_t retention_ms = 7 * 24 * 3600'000LL;  // offsets.retention.minutes
    int32_t min_session_timeout_ms = 6000;       // group.min.session.timeout.ms
    int32_t max_session_timeout_ms = 1800000;    // group.max.session.timeout.ms
    int32_t initial_rebalance_delay_ms = 3000;   // group.initial.rebalance.delay.ms
  };

  GroupCoordinator(OffsetStore& store, Options options, boost::asio::any_io_executor executor);

  // ---- membership (the classic rebalance protocol) ----
  struct JoinRequest {
    std::string group_id;
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::string protocol_type;
    std::vector<std::pair<std::string, std::string>> protocols;  // (name, metadata), preferred first
    bool require_known_member_id = false;  // JoinGroup v4+: new dynamic members join in two steps
  };
  // Completes `reply` now or when the rebalance it joins completes.
  void join(const JoinRequest& request, std::shared_ptr<PendingReply<JoinOutcome>> reply);

  struct SyncRequest {
    std::string group_id;
    int32_t generation_id = 0;
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::optional<std::string> protocol_type;
    std::optional<std::string> protocol_name;
    std::vector<std::pair<std::string, std::string>> assignments;  // (member id, assignment), leader only
  };
  void sync(const SyncRequest& request, std::shared_ptr<PendingReply<SyncOutcome>> reply);

  protocol::ErrorCode heartbeat(std::string_view group_id, int32_t generation_id, std::string_view member_id,
                                const std::optional<std::string>& group_instance_id);

  // One result per member asked to leave (v3+ batches; older versions send one).
  struct LeaveResult {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    protocol::ErrorCode error;
  };
  std::pair<protocol::ErrorCode, std::vector<LeaveResult>> leave(
      std::string_view group_id, const std::vector<std::pair<std::string, std::optional<std::string>>>& members);

  // ---- administration ----
  // nullopt: no such group. Without payloads: members' subscriptions and
  // assignments left empty (the admin server's snapshot needs only who they are).
  std::optional<GroupSummary> describe(std::string_view group_id, bool with_payloads = true) const;
  std::vector<GroupSummary> list() const;                                 // without members
  // `write`: what the removal of its offsets must reach before it is acknowledged.
  protocol::ErrorCode delete_group(std::string_view group_id, OffsetWrite* write = nullptr);
  // Group-level error, then one error per partition.
  std::pair<protocol::ErrorCode, std::vector<protocol::ErrorCode>> delete_offsets(
      std::string_view group_id, const std::vector<TopicPartition>& partitions, OffsetWrite* write = nullptr);

  // ---- which groups this broker coordinates ----
  // A single node coordinates every group. A cluster spreads them over the
  // `partition_count` partitions of __consumer_offsets (shards), and this
  // broker coordinates the groups of the shards it leads and has loaded.
  void shard_by(int32_t partition_count) { shard_count_ = partition_count; }
  bool sharded() const { return shard_count_ > 0; }
  int32_t shard_of(std::string_view group_id) const;
  // kNone when this broker coordinates the group; NOT_COORDINATOR, or
  // COORDINATOR_LOAD_IN_PROGRESS while its shard loads, otherwise.
  protocol::ErrorCode ownership(std::string_view group_id) const;
  // This broker leads the shard from `leader_epoch` on: its groups answer
  // COORDINATOR_LOAD_IN_PROGRESS until finish_loading. False when it already
  // coordinates (or loads) the shard: nothing to load.
  bool begin_loading(int32_t shard, int32_t leader_epoch);
  bool loading(int32_t shard, int32_t leader_epoch) const;
  bool shard_loaded(int32_t shard) const {
    auto it = shards_.find(shard);
    return it != shards_.end() && it->second.loaded;
  }
  // The shard's offsets, replayed from its partition: its groups are served from now on.
  void finish_loading(int32_t shard, GroupOffsets offsets);
  // This broker no longer leads the shard: its groups are forgotten, and
  // members waiting in a join or sync get NOT_COORDINATOR.
  void unload(int32_t shard);
  // How many offsets the loaded shard holds.
  size_t live_offsets(int32_t shard) const;
  // Writes every offset of the loaded shard again (compaction: what lies
  // before these writes is then no longer needed). nullopt if a write failed;
  // otherwise the last write, which covers the earlier ones.
  std::optional<OffsetWrite> rewrite_shard(int32_t shard);

  // ---- offsets ----
  struct CommitRequest {
    std::string_view group_id;
    int32_t generation_id = -1;
    std::string_view member_id;
    std::optional<std::string_view> group_instance_id;
  };
  // Error for the whole commit (every partition gets it), or kNone when the
  // committer may commit. Mirrors Kafka's classic coordinator checks.
  protocol::ErrorCode validate_commit(const CommitRequest& request);

  // Commits offsets already validated (per partition) by the caller. nullopt
  // when they could not be stored (nothing changed then); otherwise what the
  // write must reach before the commit is acknowledged (replication_wait.h).
  // The offsets are served from now on, as the leader's log holds them.
  std::optional<OffsetWrite> commit(std::string_view group_id,
                                    const std::map<TopicPartition, CommittedOffset>& offsets);

  // nullopt when the group has no offset for the partition.
  std::optional<CommittedOffset> committed(std::string_view group_id, const TopicPartition& tp) const;
  // Every committed offset of a group (empty if none).
  const std::map<TopicPartition, CommittedOffset>& committed_offsets(std::string_view group_id) const;

  // Drops offsets older than the retention (groups with no members only).
  void expire_offsets(int64_t now_ms);

  // Expires sessions and rebalance deadlines; the server calls it on a short timer.
  void tick();

  int32_t max_metadata_bytes() const { return options_.max_metadata_bytes; }
  // Rebalances started since the process started, over all groups (metrics).
  uint64_t rebalances() const { return rebalances_; }

  // Offsets of deleted topics go with them.
  void on_topic_created(const controller::TopicInfo&) override {}
  void on_partitions_added(const controller::TopicInfo&, int32_t) override {}
  void on_topic_deleted(const controller::TopicInfo& topic) override;

 private:
  // Writes to the offset store; nullopt (logged) when it failed, e.g. on a full disk.
  std::optional<OffsetWrite> persist(std::string_view group_id,
                                     const std::map<TopicPartition, CommittedOffset>& upserts,
                                     const std::vector<TopicPartition>& removals);

  using Clock = std::chrono::steady_clock;
  enum class State { kEmpty, kPreparingRebalance, kCompletingRebalance, kStable };

  struct Member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::string protocol_type;
    std::vector<std::pair<std::string, std::string>> protocols;
    std::string assignment;
    Clock::time_point session_deadline;
    std::shared_ptr<PendingReply<JoinOutcome>> pending_join;
    std::shared_ptr<PendingReply<SyncOutcome>> pending_sync;
    uint64_t join_order = 0;  // to pick a leader deterministically
  };

  struct Group {
    State state = State::kEmpty;
    int32_t generation_id = 0;
    std::string protocol_type;
    std::optional<std::string> protocol_name;
    std::string leader;
    std::map<std::string, Member> members;
    std::map<std::string, std::string> static_members;         // instance id -> member id
    std::map<std::string, Clock::time_point> pending_members;  // two-step join: id handed out, not yet used
    Clock::time_point rebalance_deadline;
    Clock::time_point initial_delay_until;
    std::map<TopicPartition, CommittedOffset> offsets;
  };

  Group& group_for(std::string_view group_id);
  void prepare_rebalance(Group& group, const std::string& group_id);
  void maybe_complete_join(Group& group, const std::string& group_id, bool deadline_passed = false);
  void complete_join(Group& group, const std::string& group_id);
  std::string select_protocol(const Group& group) const;
  void remove_member(Group& group, const std::string& group_id, const std::string& member_id);
  void add_member(Group& group, const JoinRequest& request, const std::string& member_id,
                  std::shared_ptr<PendingReply<JoinOutcome>> reply);
  void refresh_session(Member& member);
  JoinOutcome join_outcome_for(const Group& group, const Member& member) const;
  bool supports_protocols(const Group& group, const JoinRequest& request) const;
  static const char* state_name(State state);
  std::string new_member_id(std::string_view prefix);

  OffsetStore& store_;
  Options options_;
  boost::asio::any_io_executor executor_;
  std::map<std::string, Group, std::less<>> groups_;
  uint64_t next_join_order_ = 0;
  uint64_t rebalances_ = 0;
  // Sharded (a cluster): the shards this broker leads, by leader epoch, and
  // whether each is loaded.
  int32_t shard_count_ = 0;
  struct Shard {
    int32_t leader_epoch = -1;
    bool loaded = false;
  };
  std::map<int32_t, Shard> shards_;
};

}  // namespace sluice::broker
