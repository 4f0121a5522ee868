// The metadata log: the ordered, durable sequence of metadata records that is
// the cluster's source of truth (DESIGN.md, "The cluster"). Offsets count
// records from 0. A snapshot replaces every record below its offset with the
// records that rebuild the image there, so the log stays small however long
// the cluster lives.
//
// Kept in the state store (LMDB): an append of several records is one
// transaction, so a controller operation is in the log whole or not at all,
// and it is durable when append() returns. One voter for now: the quorum issue
// replicates this same sequence, and nothing above this class may assume
// there is one controller. The keys are described in FORMATS.md.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/state_store.h"

namespace sluice::controller {

// The name brokers fetch the log by (Kafka's).
inline constexpr std::string_view kMetadataTopic = "__cluster_metadata";

class MetadataLog {
 public:
  explicit MetadataLog(storage::StateStore& store);

  // The offset the next record gets.
  int64_t end_offset() const { return end_offset_; }
  // Records below it are only in the snapshot (0: no snapshot yet).
  int64_t snapshot_offset() const { return snapshot_offset_; }
  // Bytes of records appended since the last snapshot.
  uint64_t bytes_since_snapshot() const { return bytes_since_snapshot_; }
  bool empty() const { return end_offset_ == 0; }

  // Appends `records` (framed metadata records) in one durable transaction,
  // together with `also` (other state that must change with them). Returns
  // the first record's offset. Throws std::runtime_error when the store
  // fails; nothing is appended then.
  int64_t append(const std::vector<std::string>& records, const std::vector<storage::StateStore::Change>& also = {});

  // The snapshot's records (empty when there is none), then every record from
  // the snapshot offset on, in order: what rebuilds the image.
  void replay(const std::function<void(std::string_view record)>& visit) const;
  // Records at offsets >= `from` (which must be >= snapshot_offset()).
  void read(int64_t from, const std::function<void(int64_t offset, std::string_view record)>& visit) const;

  // Makes `image_records` the snapshot at end_offset() and drops the records
  // below it, in one transaction.
  void write_snapshot(const std::vector<std::string>& image_records);
  // The snapshot's records (empty when there is none).
  std::vector<std::string> snapshot_records() const;
  // A follower's copy taking the leader's snapshot: everything it held is
  // replaced by `image_records` as the snapshot at `offset`, which becomes
  // the end of the log, in one transaction.
  void install_snapshot(int64_t offset, const std::vector<std::string>& image_records);

 private:
  storage::StateStore& store_;
  int64_t end_offset_ = 0;
  int64_t snapshot_offset_ = 0;
  uint64_t bytes_since_snapshot_ = 0;
};

}  // namespace sluice::controller
