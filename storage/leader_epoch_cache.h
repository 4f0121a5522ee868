// The leader epochs of one partition's log and where each began: Kafka's
// leader-epoch cache and its `leader-epoch-checkpoint` file. A follower asks
// the leader where its epoch ended (OffsetForLeaderEpoch) and truncates its
// log there; the leader answers from this cache.
//
// A plain value with no I/O of its own beyond load(): the owner updates it on
// its thread and writes serialize() with write_atomically() wherever it does
// slow I/O. The broker writes it on the group-commit thread, ordered before
// any later flush of the log, so a batch is below the recovery point only
// once its epoch is in the file; batches above it are re-read at start-up
// (broker/replica_manager.cc, rebuild_epochs).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::storage {

// The checkpoint's file name in a partition's directory, as Kafka's.
inline constexpr char kLeaderEpochCheckpointFile[] = "leader-epoch-checkpoint";
// What OffsetForLeaderEpoch answers for an epoch it cannot place (Kafka's
// UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET).
inline constexpr int32_t kUndefinedEpoch = -1;
inline constexpr int64_t kUndefinedEpochOffset = -1;

struct EpochEntry {
  int32_t epoch;
  int64_t start_offset;  // the first offset written in the epoch
  bool operator==(const EpochEntry&) const = default;
};

class LeaderEpochCache {
 public:
  LeaderEpochCache() = default;
  // The same as load(path).
  explicit LeaderEpochCache(const std::filesystem::path& path);

  // A missing file is an empty cache; one that does not parse throws
  // std::runtime_error naming the path (as parse()).
  static LeaderEpochCache load(const std::filesystem::path& path);
  // Kafka's text format: "0\n<count>\n" then "<epoch> <start offset>\n" per
  // entry. Throws std::runtime_error naming `where` unless it is that, with
  // epochs and start offsets >= 0 and strictly increasing.
  static LeaderEpochCache parse(std::string_view text, const std::string& where);
  std::string serialize() const;

  // Records that `epoch` begins at `start_offset` (a batch of a new epoch is
  // being appended there). As Kafka's assign(): the same epoch again at the
  // same or a later offset changes nothing; otherwise the entries that the new
  // one would not follow (epoch >= `epoch` or start >= `start_offset`) are
  // removed from the end first, so the cache describes the log as written.
  // Returns whether it changed. Throws std::invalid_argument for negatives.
  bool assign(int32_t epoch, int64_t start_offset);

  std::optional<int32_t> latest_epoch() const;
  std::optional<int64_t> start_offset_of(int32_t epoch) const;

  // OffsetForLeaderEpoch, as Kafka's endOffsetFor(): the largest epoch <=
  // `requested_epoch` and where it ended (the start of the next higher epoch).
  //   - requested == kUndefinedEpoch, an empty cache, or requested above the
  //     latest epoch: (kUndefinedEpoch, kUndefinedEpochOffset);
  //   - requested == the latest epoch: (it, `log_end_offset`);
  //   - requested below the first epoch: (requested, first epoch's start);
  //   - otherwise: (largest epoch <= requested, start of the next epoch).
  std::pair<int32_t, int64_t> end_offset_for(int32_t requested_epoch, int64_t log_end_offset) const;

  // After the log was truncated to `end_offset`: removes the entries starting
  // at or after it. Returns whether it changed.
  bool truncate_from_end(int64_t end_offset);
  // After the log start moved to `start_offset`: removes the entries starting
  // at or before it, and keeps the last of them as starting at `start_offset`
  // (its epoch still holds the new first batch). Returns whether it changed.
  bool truncate_from_start(int64_t start_offset);

  const std::vector<EpochEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  bool operator==(const LeaderEpochCache&) const = default;

 private:
  std::vector<EpochEntry> entries_;  // strictly increasing in both fields
};

// Replaces `path` with `contents` so that a crash leaves the old or the new
// file whole: writes `<path>.tmp`, syncs it, renames it over `path` and syncs
// the directory. Throws std::system_error.
void write_atomically(const std::filesystem::path& path, std::string_view contents);
// The same for the file `name` in the open directory `dir_fd` (which may have
// been renamed since it was opened).
void write_atomically_at(int dir_fd, const std::string& name, std::string_view contents);

}  // namespace sluice::storage
