// The federation's durable state, in LMDB (FORMATS.md, "The federation's
// state"): the topic map, every federated topic's placement (placement.h),
// and the end of the producer-id block handed out. Read whole at start-up;
// each change is committed by the state writer's thread (the network thread
// never waits on a disk) and takes effect only once it is durable, so what
// clients are told survives a kill -9.
//
// Shared (share(), `federation.map.cluster`): several endpoints serve one
// map, kept as a log on a member cluster (map_log.h). A change is then a
// record appended there, with conditions on the map as this endpoint read it;
// every endpoint applies the log in order and a record whose conditions no
// longer hold changes nothing, so log order settles every race (two
// creations of one name: the first wins). The LMDB store becomes the cache of
// what was applied, with the log offset it reached. A topic is changed only
// by the endpoint that holds it (a `held/` record: reserve(), hold()).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/async_event.h"
#include "broker/state_writer.h"
#include "federation/placement.h"
#include "storage/state_store.h"

namespace sluice::federation {

// One item of a creation record (FORMATS.md): a member cluster's part of a
// topic to delete, the whole topic there ("a"), or the records of one of its
// partitions ("a:3", a partition a move or spread took away from a member
// that keeps others; member names hold no ':').
std::string left_part(const std::string& cluster, int32_t partition = -1);
// The cluster and partition (-1: the whole topic) of an item; nullopt if it
// is malformed (never read as "the whole topic").
std::optional<std::pair<std::string, int32_t>> parse_left_part(std::string_view part);

class FederationStore {
 public:
  // Opens (or creates) the map in `dir` and reads it. Throws std::runtime_error.
  FederationStore(boost::asio::any_io_executor executor, const std::string& dir);

  const std::map<std::string, TopicPlacement, std::less<>>& topics() const { return topics_; }
  // Counts the placements written or erased since start: a reader that waited
  // on members can tell whether the map it read before is still the map.
  uint64_t placements_changed() const { return placements_changed_; }
  const TopicPlacement* find(std::string_view topic) const;
  // The topic with this federated id, or nullptr.
  const std::string* find_name(const protocol::Uuid& id) const;

  // A topic being placed (a creation in progress): not placed twice meanwhile.
  // False if it is placed or held already (shared: by any endpoint, or the
  // hold could not be recorded).
  boost::asio::awaitable<bool> reserve(std::string topic);
  // A placed topic being changed (a deletion in progress): held the same way.
  // Callers check reserved() first; shared, false if another endpoint got
  // there first (or the placement changed since) or it could not be recorded.
  boost::asio::awaitable<bool> hold(std::string topic);
  // hold() where the map is this endpoint's alone (not shared): at once.
  void hold_unshared(const std::string& topic) { reserved_.insert(topic); }
  // Ends a hold (or a reservation) and wakes the changes waiting for it.
  // Shared: recorded in the background, retried until it is.
  void release(const std::string& topic);
  bool reserved(std::string_view topic) const;
  // Waits until the topic is not held, or until `deadline`, or until
  // `hopeless()` says the hold will not end soon (a move); true if it is free
  // now. A second change of a topic waits for the first, as Kafka's
  // controller serialises them, instead of being refused. A creation left
  // unfinished (its undoing waits for a member) is not waited for.
  boost::asio::awaitable<bool> wait_released(std::string topic, std::chrono::steady_clock::time_point deadline,
                                             std::function<bool()> hopeless);

  // Records the placement durably, ending its creation if it was one; false
  // if it could not be written (nothing changed).
  boost::asio::awaitable<bool> put(std::string topic, TopicPlacement placement);
  // A move's switch: the placement, and in the same transaction a creation
  // record naming what it left on the old members, to be deleted
  // (end_creation once it is), so that a stop in between finishes the
  // deletion: `left` holds left_part()s.
  boost::asio::awaitable<bool> switch_placement(std::string topic, TopicPlacement placement,
                                                std::vector<std::string> left);

  // A creation in progress, recorded durably before any member is asked to
  // create its part: if the endpoint stops before put() or end_creation(),
  // the next start finds it in unfinished_creations() (held, not adopted) and
  // the parts are deleted from those members, so a creation is all or nothing
  // across a kill -9 too.
  boost::asio::awaitable<bool> begin_creation(std::string topic, std::vector<std::string> clusters);
  // The creation failed and its parts are deleted: forgotten. The caller releases the name.
  boost::asio::awaitable<bool> end_creation(std::string topic);
  // A failed creation whose parts could not all be deleted: left for the
  // federation to finish undoing (held until then).
  void leave_unfinished(const std::string& topic, std::vector<std::string> clusters);
  const std::map<std::string, std::vector<std::string>, std::less<>>& unfinished_creations() const {
    return unfinished_;
  }

  // Removes the topic from the map durably; false if it could not be written (nothing changed).
  boost::asio::awaitable<bool> erase(const std::string& topic);

  // A producer id never handed out before, or nullopt if the next block could
  // not be recorded. Ids come in blocks of kProducerIdBlock, the end of the
  // block recorded before any id of it is handed out, from kFirstProducerId
  // on: member clusters hand ids out to their own clients from 0 upward, and
  // the federation's producers write to the same partitions.
  boost::asio::awaitable<std::optional<int64_t>> new_producer_id();
  static constexpr int64_t kFirstProducerId = int64_t{1} << 48;
  static constexpr int64_t kProducerIdBlock = 1000;

  // --- The shared map (map_log.h) ---
  // What became of an append to the map log.
  struct Appended {
    enum State { kWritten, kNotWritten, kUnknown } state = kNotWritten;
    int64_t offset = -1;  // kWritten: where
  };
  struct Sharing {
    int32_t endpoint = 0;  // this endpoint's node.id: whose holds are whose
    // Appends one record to the map log (acks=all).
    std::function<boost::asio::awaitable<Appended>(std::string)> append;
  };
  // Makes the map shared, before anything is changed. Throws
  // std::runtime_error if the store holds a map kept by one endpoint alone.
  // (A shared map's cache is refused the other way: shared_cache().)
  void share(Sharing sharing);
  bool shared() const { return sharing_.has_value(); }
  // The directory holds a shared map's cache: not to be used as one endpoint's own map.
  bool shared_cache() const { return shared_cache_; }
  // The next map-log offset to apply: where reading resumes.
  int64_t applied_end() const { return applied_end_; }
  // Applies map-log records in order, (offset, value), up to `next` (the
  // offset after the last one read). Unreadable records change nothing.
  void apply_log(const std::vector<std::pair<int64_t, std::string>>& records, int64_t next);
  // Once the log has been read to its end after a start, before anything
  // else is written: this run's records are numbered past every earlier
  // run's (whatever the clock says), a barrier fences what the earlier run
  // still had in flight, and then its holds (a change a stop interrupted)
  // are ended, or, where a creation or a move's clean-up was under way,
  // left to be finished (unfinished_creations()).
  boost::asio::awaitable<void> start_writing();
  // Called when a topic's placement changes or it leaves the map (whichever
  // endpoint changed it); `placement` is nullptr when it left.
  std::function<void(const std::string&, const TopicPlacement*)> on_placement_changed;

  // A move's switch on a shared map: every endpoint holds back its writes
  // (Produce, OffsetCommit) to the topic's partitions on the moving members,
  // and says so, before the switch goes on (topic_mover.h).
  // The holder freezes the topic's writes to `sources` (member names).
  boost::asio::awaitable<bool> freeze(std::string topic, std::vector<std::string> sources);
  // The members whose writes of `topic` are frozen now (empty: none), and the freeze's value.
  std::vector<std::string> frozen_sources(std::string_view topic) const;
  std::optional<std::string> frozen_value(std::string_view topic) const;
  // Any endpoint ends a freeze whose move never switched (its endpoint
  // stopped): the switch, which requires the freeze, can no longer happen.
  // False if it could not be recorded or that freeze is over already.
  boost::asio::awaitable<bool> end_stale_freeze(std::string topic, std::string freeze);
  // An end an endpoint acknowledged to acks=1 producers on a frozen member:
  // the move copies at least that far.
  struct AcknowledgedEnd {
    std::string member;
    int32_t partition = -1;
    int64_t end = 0;
  };
  // This endpoint has no write to the frozen members in flight and starts
  // none: `freeze` is the freeze's value as on_frozen gave it,
  // `acknowledged` the ends it acknowledged to acks=1 producers there.
  // False if it could not be recorded or the freeze is over.
  boost::asio::awaitable<bool> acknowledge_freeze(std::string topic, std::string freeze,
                                                  std::vector<AcknowledgedEnd> acknowledged);
  // The endpoints that acknowledged the topic's freeze, with their ends
  // (an end the map holds in a form this build does not read is left out).
  std::map<int32_t, std::vector<AcknowledgedEnd>> freeze_acknowledgements(std::string_view topic) const;
  // The holder ends a freeze (a failed move; a switch ends it with the new placement).
  boost::asio::awaitable<bool> thaw(std::string topic);
  // Called on every endpoint when a freeze is applied: (topic, the freeze's value).
  std::function<void(const std::string&, const std::string&)> on_frozen;

 private:
  struct Condition {
    std::string key;
    std::optional<std::string> value;  // nullopt: the key is absent
  };
  using Changes = std::vector<storage::StateStore::Change>;
  // Shared: appends a record of `changes` under `conditions` (with the
  // sequence number next_sequence() gave, or a new one) and waits until its
  // fate is settled in the log, however long that takes: true if it took
  // effect, false if it did not and never will. (An append whose outcome is
  // unknown is settled by a barrier record after it: this writer's records
  // applied after a later one of its own are fenced, so the first either
  // came before the barrier or never takes effect.)
  boost::asio::awaitable<bool> commit(std::vector<Condition> conditions, Changes changes, int64_t sequence = 0);
  int64_t next_sequence() { return ++sequence_; }
  // The condition that `key` still has the value this endpoint applied.
  Condition unchanged(const std::string& key) const;
  // The topic's hold is the one this endpoint took (its value, with the
  // taking record's identity: a hold of an earlier run, or of another
  // process with the same node.id, is not this one's).
  Condition held_by_me(const std::string& topic) const;
  // reserve() and hold() on a shared map: the hold taken, if the conditions hold.
  boost::asio::awaitable<bool> take_hold(const std::string& topic);
  // A record of this writer's run that comes after a later one of the same
  // writer in the log (or of an earlier run after a later run's): no effect.
  bool fenced(int32_t endpoint, int64_t incarnation, int64_t sequence) const;
  void recover_own_holds();
  void apply_change(const std::string& key, const std::optional<std::string>& value);
  // Erases the topic's freeze and its acknowledgements, if any, with `changes`.
  void add_thaw(const std::string& topic, Changes& changes) const;
  boost::asio::awaitable<void> release_shared(std::string topic, std::string hold);

  boost::asio::awaitable<bool> put_with_creation(std::string topic, TopicPlacement placement,
                                                 std::optional<std::string> creating);
  boost::asio::any_io_executor executor_;
  std::multimap<std::string, broker::AsyncEvent*, std::less<>> release_waiters_;
  std::unique_ptr<storage::StateStore> store_;
  broker::StateWriter writer_;
  std::map<std::string, TopicPlacement, std::less<>> topics_;
  std::set<std::string, std::less<>> reserved_;
  std::map<std::string, std::vector<std::string>, std::less<>> unfinished_;  // creations to undo, moves' parts to delete: topic -> left_part() items
  std::map<std::array<uint8_t, 16>, std::string> names_by_id_;  // topics_ by federated id
  uint64_t placements_changed_ = 0;
  int64_t next_producer_id_ = kFirstProducerId;
  int64_t producer_block_end_ = kFirstProducerId;  // recorded: no id at or past it handed out
  bool shared_cache_ = false;
  // Shared only:
  std::optional<Sharing> sharing_;
  std::map<std::string, std::string, std::less<>> applied_;  // every key as the log made it
  int64_t applied_end_ = 0;
  // This start's records: (incarnation, sequence). The incarnation is the
  // start's time in microseconds, so a later run's records fence an earlier one's.
  int64_t incarnation_ = 0;
  int64_t sequence_ = 0;
  std::map<std::string, std::string, std::less<>> my_holds_;  // topic -> the hold's value, as taken
  std::map<std::string, std::string, std::less<>> my_freezes_;  // topic -> the freeze's value, as written
  int64_t my_block_end_ = 0;  // the end of the producer-id block this start claimed
  std::map<int64_t, std::optional<bool>> outcomes_;  // this start's records waited for -> took effect
  std::vector<broker::AsyncEvent*> apply_waiters_;
  std::shared_ptr<broker::StateWriter::Chain> cache_chain_ = std::make_shared<broker::StateWriter::Chain>();
};

}  // namespace sluice::federation
