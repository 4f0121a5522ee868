// The partition leader's side of share groups: the share-partitions of the
// partitions this broker leads (share_partition.h), the members' share
// sessions (ShareFetch and ShareAcknowledge), lock expiry, and the durable
// state of each share-partition.
//
// A share session belongs to one (group, member) on this broker: ShareFetch
// with epoch 0 opens it with the partitions it names, later requests carry the
// next epoch (1, 2, ... wrapping to 1) and add partitions or forget them, and
// epoch -1 closes it, giving back every record the member still holds.
//
// A share-partition starts, the first time a group fetches it, where the
// group's share.auto.offset.reset says: the high watermark ("latest", the
// default) or the log start ("earliest"). Its state is written after every
// change that must survive (acknowledgements, releases, expired locks, a
// reset), and an acknowledgement is answered only once that write is
// durable: to the state store on a single node; in a cluster to the
// share-partition's share coordinator (share_state_coordinator.h), from
// which a leader also loads it before first use, so that the partition's
// next leader goes on from it. Acquisitions are not written: after a restart
// or a change of leader the records a member held are available again, as in
// Kafka.
//
// Network thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/share_partition.h"
#include "broker/share_state_coordinator.h"
#include "controller/controller.h"
#include "controller/metadata_image.h"
#include "storage/state_store.h"
#include "protocol/error_codes.h"


namespace sluice::broker {

class AsyncEvent;
class ReplicaManager;
class StateWriter;
class ShareStatePersister;
struct Partition;

// (group, topic, partition)
using SharePartitionKey = std::tuple<std::string, std::string, int32_t>;

class SharePartitionManager : public controller::MetadataListener {
 public:
  // `limits_for(group)`: the group's lock duration, delivery limit and
  // in-flight bound; `earliest_for(group)`: whether its share.auto.offset.reset is "earliest".
  struct SessionLimits {
    size_t max_sessions = 2000;          // group.share.max.share.sessions: more get SHARE_SESSION_LIMIT_REACHED
    int64_t idle_timeout_ms = 45000;     // a session not used for this long goes (group.share.session.timeout.ms)
  };
  // `persister`: a cluster's share coordinators, where the state is kept
  // instead of the state store (null on a single node).
  SharePartitionManager(boost::asio::any_io_executor executor, ReplicaManager& replicas, storage::StateStore& store,
                        StateWriter& writer, std::function<SharePartitionLimits(const std::string&)> limits_for,
                        std::function<bool(const std::string&)> earliest_for, SessionLimits session_limits,
                        const controller::MetadataImage& metadata, ShareStatePersister* persister);

  // ---- share sessions ----
  using PartitionRef = std::pair<std::string, int32_t>;  // (topic, partition)
  // Checks `epoch` against the member's session and applies the change:
  // epoch 0 opens it with `added` (replacing an older one, whose records stay
  // locked until their locks expire, as in Kafka; SHARE_SESSION_LIMIT_REACHED
  // when there are max_sessions already); a later epoch must be the
  // session's next one (INVALID_SHARE_SESSION_EPOCH; SHARE_SESSION_NOT_FOUND
  // without a session), adds `added`, drops `forgotten`. Epoch -1 is checked
  // the same way and closes the session with close_session() once the caller is done.
  protocol::ErrorCode continue_session(const std::string& group, const std::string& member, int32_t epoch,
                                       const std::vector<PartitionRef>& added,
                                       const std::vector<PartitionRef>& forgotten);
  // The partitions of the member's session (empty without one).
  std::vector<PartitionRef> session_partitions(const std::string& group, const std::string& member) const;
  // Closes the session; what the member holds in its partitions goes back.
  void close_session(const std::string& group, const std::string& member);
  // Sessions idle past the idle timeout are closed (a member that went away
  // without closing: it reopens with epoch 0 if it was only slow). Returns how many.
  size_t expire_sessions(int64_t now_ms);

  // The group's acquisition lock duration (AcquisitionLockTimeoutMs).
  int64_t lock_duration_ms(const std::string& group) const { return limits_for_(group).lock_duration_ms; }

  // ---- records ----
  // Applies a member's acknowledgements, partition by partition (each all or
  // none, share_partition.h), and writes what changed; the error of each
  // partition. Answer only once wait_durable() says the writes are durable.
  std::map<PartitionRef, protocol::ErrorCode> acknowledge(
      const std::string& group, const std::string& member,
      const std::map<PartitionRef, std::vector<SharePartition::Acknowledgement>>& acknowledgements,
      bool renew_allowed, int64_t now_ms);
  // In a cluster, a share-partition is loaded from its share coordinator
  // before it is used: the state read there (which fences the partition's
  // earlier leaders, share_state_coordinator.h), or, the first time, a fresh
  // state where share.auto.offset.reset says. kNone once loaded (at once on
  // a single node, whose state store is read by share_partition()); else the
  // error to answer for the partition: NOT_LEADER_OR_FOLLOWER if the
  // leadership moved (or this leader was fenced), COORDINATOR_NOT_AVAILABLE
  // if the coordinator could not be reached in time.
  boost::asio::awaitable<protocol::ErrorCode> ensure_loaded(const std::string& group, Partition& partition);
  // ensure_loaded() for each of `refs` this broker leads and has not loaded,
  // concurrently; the errors of those that failed.
  boost::asio::awaitable<std::map<PartitionRef, protocol::ErrorCode>> load_all(const std::string& group,
                                                                              const std::set<PartitionRef>& refs);
  // Whether the share-partition is in memory (loaded, in a cluster).
  bool loaded(const std::string& group, const Partition& partition) const;
  // The share-partition of `group` on `partition` (which this broker leads),
  // created on first use (in a cluster: after ensure_loaded()).
  SharePartition& share_partition(const std::string& group, Partition& partition);
  // A partition this broker stops leading (or leads again under a new epoch)
  // forgets its share-partitions: the next leader reads them from the share
  // coordinator. A ReplicaManager role observer.
  void on_partition_role(const Partition& partition);
  // Writes the share-partition's state; done(ok) once durable (ok false: the write failed).
  void persist(const std::string& group, const Partition& partition, std::function<void(bool)> done = {});
  // How many writes were submitted so far: note it before making changes,
  // then wait_durable(since) for them.
  uint64_t write_position() const { return writes_submitted_; }
  // Waits until every write submitted so far is durable; false if one
  // submitted after `since` failed. (A failed write leaves the change in
  // memory: the client is told KAFKA_STORAGE_ERROR, and a restart forgets it.)
  // `until` (a later write_position()) ends the caller's writes where it went
  // on to wait for something else meanwhile (a ShareFetch waiting for records).
  boost::asio::awaitable<bool> wait_durable(uint64_t since, std::optional<uint64_t> until = std::nullopt);

  // Expired locks: their records go back, the changes are written, and
  // fetches parked on those partitions wake. Called periodically.
  void expire_locks(int64_t now_ms);
  // A deleted topic's share-partitions go, with their durable state (a topic
  // created again under the name starts afresh).
  void on_topic_created(const controller::TopicInfo&) override {}
  void on_partitions_added(const controller::TopicInfo&, int32_t) override {}
  void on_topic_deleted(const controller::TopicInfo& topic) override;

  // AlterShareGroupOffsets: the group starts over on `partition` at `offset`
  // (what was in flight is forgotten), written durably (wait_durable()).
  void reset_start(const std::string& group, Partition& partition, int64_t offset);
  // DeleteShareGroupOffsets: the group's state on every partition of `topic` goes.
  void delete_topic_state(const std::string& group, const std::string& topic);

  // DeleteGroups of a share group: its share-partitions and their durable
  // state go (wait_durable() says when the removal is durable).
  void delete_group_state(const std::string& group);
  // The group's share-partition start offset on a partition led here (delete
  // after consumption) as last written durably (a crash cannot take it back);
  // nullopt when the group has no state there.
  std::optional<int64_t> start_offset(const std::string& group, const std::string& topic, int32_t partition) const;

  // What DescribeShareGroupOffsets reports of a share-partition: its start
  // offset and how many records from there on are done (acknowledged or archived).
  struct Progress {
    int64_t start_offset = -1;
    int64_t done_in_flight = 0;
  };
  // The group's share-partitions here (in memory, else as stored), by partition.
  std::map<PartitionRef, Progress> progress_of(const std::string& group) const;

  // ---- administration in a cluster, through the share coordinators ----
  // The group's state on `candidates` (every partition of every topic when
  // empty): those with a start offset. Nothing when __share_group_state does not exist yet.
  boost::asio::awaitable<std::map<PartitionRef, Progress>> progress_from_coordinators(
      const std::string& group, std::vector<PartitionRef> candidates);
  // Whether the group has share-partition state anywhere: here (a single
  // node's state store) or with the share coordinators (a cluster).
  boost::asio::awaitable<bool> has_state(const std::string& group);
  // Every partition of every topic (what a cluster's admin requests ask the coordinators about).
  std::vector<PartitionRef> all_partitions() const;
  // AlterShareGroupOffsets: the state starts afresh at `offset` under the
  // next state epoch, so that a leader still holding the old one is fenced
  // on its next write and reads it again.
  boost::asio::awaitable<protocol::ErrorCode> reset_start_remotely(const std::string& group, const std::string& topic,
                                                                   int32_t partition, int64_t offset);
  // DeleteShareGroupOffsets / DeleteGroups: the state of `refs` goes.
  boost::asio::awaitable<protocol::ErrorCode> delete_state_remotely(const std::string& group,
                                                                    const std::vector<PartitionRef>& refs);

  // For describing: every share-partition of `group` here.
  std::vector<std::pair<PartitionRef, const SharePartition*>> partitions_of(const std::string& group) const;

 private:
  struct Session {
    int32_t next_epoch = 1;
    std::set<PartitionRef> partitions;
    int64_t last_used_ms = 0;
  };
  static std::string state_key(const std::string& group, const std::string& topic, int32_t partition);
  // Submits a state-store transaction, counted for wait_durable().
  void write(std::vector<storage::StateStore::Change> changes, std::function<void(bool)> done);
  // Counts a write for wait_durable(): the callback to call when it completes.
  std::function<void(bool)> numbered(std::function<void(bool)> done);

  // ---- in a cluster ----
  // What a share-partition was loaded under: its state epoch and the partition's leader epoch.
  struct Loaded {
    int32_t state_epoch = 0;
    int32_t leader_epoch = -1;
  };
  // One write at a time per share-partition, of its latest state: changes
  // made while one is in flight go together in the next.
  struct RemoteWrites {
    bool in_flight = false;
    std::vector<std::function<void(bool)>> covered;  // done when the write in flight is
    std::vector<std::function<void(bool)>> next;     // done when the next one is
  };
  boost::asio::awaitable<protocol::ErrorCode> load(SharePartitionKey key, int32_t leader_epoch);
  struct LoadRound;  // the loads of one load_all()
  boost::asio::awaitable<void> load_one(std::string group, PartitionRef ref, std::shared_ptr<LoadRound> round);
  void persist_remotely(const SharePartitionKey& key, std::function<void(bool)> done);
  void start_remote_write(const SharePartitionKey& key);
  boost::asio::awaitable<void> write_remotely(SharePartitionKey key, ShareStateKey state_key, Loaded epochs,
                                              std::optional<DurableShareState> state);
  std::optional<ShareStateKey> coordinator_key(const SharePartitionKey& key) const;
  // Forgets a share-partition that no session uses and no member holds
  // records of (a cluster's leader reads it again when it is next used: it
  // may have been reset or deleted by the group's coordinator meanwhile).
  void unload_if_unused(const SharePartitionKey& key);

  boost::asio::any_io_executor executor_;
  ReplicaManager& replicas_;
  storage::StateStore& store_;
  StateWriter& writer_;
  std::function<SharePartitionLimits(const std::string&)> limits_for_;
  std::function<bool(const std::string&)> earliest_for_;
  SessionLimits session_limits_;
  std::map<SharePartitionKey, SharePartition> partitions_;
  std::map<std::pair<std::string, std::string>, Session> sessions_;  // by (group, member)
  // Writes are numbered as submitted; they may complete out of order (a
  // cluster's go to different share coordinators).
  uint64_t writes_submitted_ = 0;
  std::set<uint64_t> writes_pending_;
  std::set<uint64_t> writes_failed_;  // failed writes, kept while a waiter may ask (bounded below)
  // Each share-partition's start offset in its last durable write.
  std::map<SharePartitionKey, int64_t> durable_starts_;
  std::vector<AsyncEvent*> durable_waiters_;
  const controller::MetadataImage& metadata_;
  ShareStatePersister* persister_;  // null on a single node
  std::map<SharePartitionKey, Loaded> loaded_;
  std::map<SharePartitionKey, std::vector<AsyncEvent*>> loading_;  // loads in flight, and who waits for them
  std::map<SharePartitionKey, RemoteWrites> remote_writes_;
};

// A group's limits: its share.* group configs where set, else `broker_defaults`
// (the broker's group.share.* keys).
SharePartitionLimits share_limits(const controller::MetadataImage& metadata, const std::string& group,
                                  const SharePartitionLimits& broker_defaults);
// Whether the group's share.auto.offset.reset is "earliest" (default "latest").
bool share_reset_is_earliest(const controller::MetadataImage& metadata, const std::string& group);

// The state-store value of a share-partition (FORMATS.md): encode and decode.
std::string encode_share_state(const DurableShareState& state);
std::optional<DurableShareState> decode_share_state(std::string_view value);

}  // namespace sluice::broker
