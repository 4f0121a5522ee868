// The log of one partition: append-only segment files holding record batches
// exactly as producers sent them (after the broker stamped offsets), so a fetch
// is a read of file bytes.
//
// Storage frames entries only by Kafka's 12-byte log overhead (int64 base
// offset, int32 length); everything else about a batch (checksum, record count,
// timestamps) is judged by a BatchInspector the caller supplies, which keeps
// this folder free of the wire format.
//
// Not thread-safe: one partition log is used from one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::storage {

// What the log needs to know about one batch.
struct BatchSummary {
  int32_t last_offset_delta = 0;  // the batch covers base .. base + last_offset_delta
  int64_t max_timestamp = -1;
};

// Returns the summary of a complete entry, or nullopt when the entry is not a
// valid batch (bad checksum, torn write): recovery cuts the log there.
using BatchInspector = std::function<std::optional<BatchSummary>(std::string_view entry)>;

struct LogOptions {
  uint64_t segment_bytes = 1ull << 30;
};

// What recovery found and did, for the start-up log line and for tests.
struct RecoveryReport {
  int64_t batches = 0;
  uint64_t truncated_bytes = 0;  // torn or corrupt tail removed
  int removed_segments = 0;      // segments after a corrupt point
};

class PartitionLog {
 public:
  static constexpr size_t kLogOverhead = 12;

  // Opens (creating if needed) the log in `dir`, scanning every segment with
  // `inspect` and cutting it at the first entry that is incomplete, invalid or
  // out of offset sequence. Throws std::system_error on I/O failure.
  static std::unique_ptr<PartitionLog> open(const std::filesystem::path& dir, LogOptions options,
                                            const BatchInspector& inspect, RecoveryReport* report = nullptr);
  ~PartitionLog();
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  int64_t log_start_offset() const { return log_start_offset_; }
  // The offset the next appended record gets (Kafka's log end offset).
  int64_t log_end_offset() const { return next_offset_; }
  uint64_t size_bytes() const;
  const std::filesystem::path& dir() const { return dir_; }

  // Appends one complete batch, writing its base offset into the first 8 bytes
  // of `entry`. Returns the base offset. Throws std::system_error on I/O failure.
  int64_t append(std::span<char> entry, const BatchSummary& summary);

  // Whole batches starting with the one that holds `offset`, until adding the
  // next batch would pass `max_bytes`; the first batch is returned whatever its
  // size when `at_least_one` (KIP-74). Empty at or past the log end.
  std::string read(int64_t offset, size_t max_bytes, bool at_least_one) const;

  // The same batches as read(), as regions of segment files, for a caller that
  // sends them without reading them (sendfile). Each slice keeps its file open.
  struct FileSlice {
    std::shared_ptr<const void> owner;
    int fd;
    uint64_t position;
    uint32_t length;
  };
  std::vector<FileSlice> locate(int64_t offset, size_t max_bytes, bool at_least_one) const;

  // Calls `visit` with the first `prefix_bytes` bytes (or all, if shorter) of
  // every batch from the one holding `offset` to the end: how state kept
  // beside the log (idempotent producers) catches up after a restart.
  void visit_batch_prefixes(int64_t offset, size_t prefix_bytes,
                            const std::function<void(std::string_view prefix)>& visit) const;

  // The base offset of the first batch whose max timestamp is >= `timestamp`.
  std::optional<int64_t> offset_for_timestamp(int64_t timestamp) const;

  // The largest max timestamp in the log with the offset of its batch's last record.
  std::optional<std::pair<int64_t, int64_t>> max_timestamp_and_offset() const;

  // Forces written data to disk (fdatasync of the active segment; rolled
  // segments are synced when they roll).
  void flush();

  // The file the next append goes to, for callers that sync off-thread
  // (they must dup() it before leaving this thread).
  int active_fd() const { return segments_.back().fd(); }

 private:
  struct BatchPosition {
    int64_t base_offset;
    int64_t last_offset;
    int64_t max_timestamp;
    uint32_t position;
    uint32_t size;
  };
  // An open segment file, closed when its last owner (the log, or a fetch still
  // sending part of it) lets go.
  class OpenFile {
   public:
    explicit OpenFile(int fd) : fd_(fd) {}
    ~OpenFile();
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    int fd() const { return fd_; }

   private:
    int fd_;
  };
  struct Segment {
    int64_t base_offset = 0;
    std::shared_ptr<const OpenFile> file;
    int fd() const { return file->fd(); }
    uint64_t size = 0;
    std::filesystem::path path;
    // One entry per batch: a simple dense index; a sparse on-disk index can
    // replace it without changing the interface.
    std::vector<BatchPosition> batches;
  };

  PartitionLog(std::filesystem::path dir, LogOptions options);
  void recover_segment(Segment& segment, const BatchInspector& inspect, bool& corrupt, RecoveryReport& report);
  Segment& roll(int64_t base_offset);
  const BatchPosition* find_batch(int64_t offset, const Segment** segment) const;

  std::filesystem::path dir_;
  LogOptions options_;
  std::vector<Segment> segments_;
  int64_t log_start_offset_ = 0;
  int64_t next_offset_ = 0;
};

// Kafka's segment file name: the base offset as 20 zero-padded digits.
std::string segment_file_name(int64_t base_offset);

}  // namespace sluice::storage
