// The metadata log: the ordered, durable sequence of metadata records that is
// the cluster's source of truth (DESIGN.md, "The cluster"). Offsets count
// records from 0. A snapshot replaces every record below its offset with the
// records that rebuild the image there, so the log stays small however long
// the cluster lives.
//
// Kept in the state store (LMDB): an append of several records is one
// transaction, so a controller operation is in the log whole or not at all.
// Writes are made in place (durable when append() returns) until
// write_in_background() hands them to a writer thread: then the log's end
// runs ahead of what is durable, and readers (brokers fetching the log) see
// only the durable part. Every record belongs to a leader epoch (the quorum's
// epoch of the controller that appended it): a table of where each epoch
// starts lets a controller quorum find where a follower's copy diverges from
// its leader's and truncate it (KRaft's rule, controller/README.md). The keys
// are described in FORMATS.md.
//
// Not thread-safe: the writer's completions come back on the owner's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/state_store.h"

namespace sluice::controller {

// The name brokers fetch the log by (Kafka's).
inline constexpr std::string_view kMetadataTopic = "__cluster_metadata";

class MetadataLog {
 public:
  // Commits `changes` as one transaction after everything handed to it
  // before, then calls done(ok) on the log owner's thread.
  using Committer =
      std::function<void(std::vector<storage::StateStore::Change> changes, std::function<void(bool ok)> done)>;

  explicit MetadataLog(storage::StateStore& store);

  // From now on every write goes to `committer`, in order, and the caller
  // does not wait for the disk. `on_durable(end)` is called as each write
  // becomes durable, with the new durable end. A write that fails throws
  // MetadataLogWriteFailed out of its completion: the log cannot go on with
  // a hole in it (Kafka's controller stops on a metadata log failure too).
  void write_in_background(Committer committer, std::function<void(int64_t durable_end)> on_durable);

  // The offset the next record gets.
  int64_t end_offset() const { return end_offset_; }
  // The end of what is on disk: what a reader may be given (== end_offset()
  // while writes are made in place).
  int64_t durable_end_offset() const { return durable_end_offset_; }
  // Records below it are only in the snapshot (0: no snapshot yet).
  int64_t snapshot_offset() const { return snapshot_offset_; }
  // The snapshot on disk (what snapshot_records() returns) ends here.
  int64_t durable_snapshot_offset() const { return durable_snapshot_offset_; }
  // The epoch of the last record (of the snapshot's last one when no record
  // follows it); 0 for an empty log.
  int32_t last_epoch() const;
  // The epoch of the record at `offset` (0 when no epoch is known for it).
  int32_t epoch_of(int64_t offset) const;
  // Kafka's OffsetForLeaderEpoch on this log: the largest epoch <= `epoch`
  // that has records, and the offset after its last record (the next epoch's
  // start, or the log end). {-1, -1} when no epoch <= `epoch` is known.
  std::pair<int32_t, int64_t> end_offset_for_epoch(int32_t epoch) const;
  // Bytes of records appended since the last snapshot.
  uint64_t bytes_since_snapshot() const { return bytes_since_snapshot_; }
  bool empty() const { return end_offset_ == 0; }

  // Appends `records` (framed metadata records) in one durable transaction,
  // together with `also` (other state that must change with them), in leader
  // epoch `epoch` (-1: the last record's; never below it). Returns the first
  // record's offset. Throws std::runtime_error when the store fails; nothing
  // is appended then.
  int64_t append(const std::vector<std::string>& records, const std::vector<storage::StateStore::Change>& also = {},
                 int32_t epoch = -1);
  // A follower's copy diverged from its leader's: drops the records from
  // `offset` (>= snapshot_offset()) on, and the epochs that start there.
  void truncate_to(int64_t offset);

  // The snapshot's records (empty when there is none), then every record from
  // the snapshot offset on, in order: what rebuilds the image.
  void replay(const std::function<void(std::string_view record)>& visit) const;
  // Durable records at offsets >= `from` (which must be >= snapshot_offset()),
  // in order, until visit returns false.
  // `up_to` bounds them further (a reader that may see only what a quorum holds).
  void read(int64_t from, const std::function<bool(int64_t offset, std::string_view record)>& visit,
            int64_t up_to = INT64_MAX) const;

  // Makes `image_records` the snapshot at `offset` (<= end_offset(): the
  // image there) and drops the records below it, in one transaction.
  void write_snapshot(int64_t offset, const std::vector<std::string>& image_records);
  // The snapshot's records (empty when there is none); `offset` receives the
  // offset it ends at (0: none). Read from disk, so it may be a snapshot
  // written and not yet reported durable.
  std::vector<std::string> snapshot_records(int64_t* offset = nullptr) const;
  // A follower's copy taking the leader's snapshot: everything it held is
  // replaced by `image_records` as the snapshot at `offset`, whose last
  // record was of `epoch`; it becomes the end of the log, in one transaction.
  void install_snapshot(int64_t offset, const std::vector<std::string>& image_records, int32_t epoch = 0);

 private:
  // Makes `changes` durable (in place, or through the committer), after which
  // the durable end and snapshot are the log's end and snapshot as they are now.
  void write(std::vector<storage::StateStore::Change> changes);
  // Erases the records from the snapshot offset to the end (they are
  // contiguous: the constructor checks it).
  void erase_records(std::vector<storage::StateStore::Change>& changes) const;
  // The epochs table as a change to the store.
  storage::StateStore::Change epochs_change() const;

  storage::StateStore& store_;
  int64_t end_offset_ = 0;
  int64_t snapshot_offset_ = 0;
  int64_t durable_end_offset_ = 0;
  int64_t durable_snapshot_offset_ = 0;
  uint64_t bytes_since_snapshot_ = 0;
  // Leader epoch -> the offset of its first record, ascending.
  std::map<int32_t, int64_t> epochs_;
  // Truncations (and snapshot installs) since the writes still in flight
  // were submitted, by generation: they cap those writes' durable ends.
  void note_truncation(int64_t offset);
  uint64_t generation_ = 0;
  std::deque<std::pair<uint64_t, int64_t>> truncations_;
  Committer committer_;
  std::function<void(int64_t)> on_durable_;
};

// Records fetched from a leader's log (Fetch's record batches, one per leader
// epoch), each run with the epoch of its batch. Throws std::runtime_error
// when the batches are cut or their offsets do not run on from `first_offset`.
struct EpochRecords {
  int32_t epoch = 0;
  std::vector<std::string> records;
};
std::vector<EpochRecords> split_fetched_records(std::string_view batches, int64_t first_offset);

// A background write of the metadata log failed: the process must stop.
struct MetadataLogWriteFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace sluice::controller
