// The log of one partition: append-only segment files holding record batches
// exactly as producers sent them (after the broker stamped offsets), or as a
// leader's log held them (a follower's append_at), so a fetch is a read of
// file bytes. A follower's offsets may skip (the leader's log was compacted);
// they never go back. Truncation (truncate_to, truncate_fully_and_start_at) is
// how a follower drops what diverged from its leader; storage knows nothing of
// roles.
//
// Each segment `<base offset>.log` has two sparse indexes, kept in memory and
// written beside it (`.index`: batch offset -> file position; `.timeindex`:
// largest timestamp so far -> batch offset), one entry per
// `index_interval_bytes` of log. A read finds its batches through the index
// and at most two small header reads, never by reading the data itself.
//
// Start-up does not read whole segments: the caller passes the recovery point
// (every offset below it was flushed and indexed before the last checkpoint).
// Segments wholly below it are trusted with their index files; the rest is
// scanned, checksums verified, and cut at the first torn or corrupt entry.
//
// Storage frames entries only by Kafka's 12-byte log overhead (int64 base
// offset, int32 length); the caller's BatchFormat reads offsets and timestamps
// from a batch header and verifies checksums, which keeps this folder free of
// the wire format.
//
// Not thread-safe: one partition log is used from one thread, except for the
// work it hands to another (set_off_thread(): a rolled segment's finishing,
// block reserves, the next segment's file made and named), which works on its
// own copies and the segment's shared files.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
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

struct BatchFormat {
  // Bytes from the start of an entry that summarize() needs.
  size_t header_bytes = 12;
  // The summary of an entry, from its first header_bytes bytes; nullopt when
  // they make no sense (recovery cuts the log there).
  std::function<std::optional<BatchSummary>(std::string_view header)> summarize;
  // Whether a complete entry is intact (checksum).
  std::function<bool(std::string_view entry)> verify;
};

struct LogOptions {
  uint64_t segment_bytes = 1ull << 30;          // segment.bytes
  int64_t segment_ms = 7 * 24 * 3600 * 1000LL;  // segment.ms
  uint32_t index_interval_bytes = 4096;         // index.interval.bytes
};

// Where the last checkpoint left the log (the caller persists these).
struct LogCheckpoint {
  int64_t recovery_point = 0;    // below it everything was flushed and indexed
  int64_t log_start_offset = 0;  // raised by DeleteRecords / retention
};

// What opening found and did, for the start-up log line and for tests.
struct RecoveryReport {
  int64_t batches_scanned = 0;     // entries read and verified (not the trusted ones)
  uint64_t bytes_scanned = 0;
  uint64_t truncated_bytes = 0;    // torn or corrupt tail removed
  int removed_segments = 0;        // segments after a corrupt point
  std::vector<std::string> problems;  // what was wrong where (paths included)
};

// Files and directories to sync for a write to be durable, handed to a thread
// that syncs (broker/flusher). File descriptors must be dup()ed before they
// leave the log's thread (Flusher::flush does); `owners` keep them open until
// then, even if the log is closed meanwhile (a partition deleted or moved off
// this broker while a produce waits), so that a descriptor number is never
// reused under it. Directories go by path and are opened where they are
// synced, so that a log holds no descriptor for them.
//
// `errors` are read once the syncs are done: a nonzero one fails the flush.
// A segment file created without a name and named off the thread (roll())
// has one, set if the naming failed: its data, synced or not, would not be
// found by the next start.
struct SyncList {
  std::vector<int> fds;
  std::vector<std::shared_ptr<const void>> owners;
  std::vector<std::filesystem::path> dirs;
  std::vector<std::shared_ptr<const std::atomic<int>>> errors;
  void append(const SyncList& other) {
    fds.insert(fds.end(), other.fds.begin(), other.fds.end());
    owners.insert(owners.end(), other.owners.begin(), other.owners.end());
    dirs.insert(dirs.end(), other.dirs.begin(), other.dirs.end());
    errors.insert(errors.end(), other.errors.begin(), other.errors.end());
  }
  bool empty() const { return fds.empty() && dirs.empty(); }
};

class PartitionLog {
 public:
  static constexpr size_t kLogOverhead = 12;

  // Opens (creating if needed) the log in `dir`. Throws std::system_error on
  // I/O failure.
  static std::unique_ptr<PartitionLog> open(const std::filesystem::path& dir, LogOptions options, BatchFormat format,
                                            LogCheckpoint checkpoint = {}, RecoveryReport* report = nullptr);
  ~PartitionLog();
  PartitionLog(const PartitionLog&) = delete;
  PartitionLog& operator=(const PartitionLog&) = delete;

  int64_t log_start_offset() const { return log_start_offset_; }
  // The offset the next appended record gets (Kafka's log end offset).
  int64_t log_end_offset() const { return next_offset_; }
  int64_t recovery_point() const { return recovery_point_; }
  uint64_t size_bytes() const;
  size_t segment_count() const { return segments_.size(); }
  const std::filesystem::path& dir() const { return dir_; }
  void set_options(LogOptions options) { options_ = options; }
  // Time spent rolling segments on the caller's thread (the new file created
  // or a spare taken, the old segment's finishing done or handed off: set_off_thread()) since
  // the log was opened, for the owner's metrics: the difference across an
  // append is what that append's roll cost.
  uint64_t roll_nanos() const { return roll_nanos_; }
  // Where a roll's slow part runs (the finished segment's last index entries
  // written and synced, its block reserve given back, the new segment's file
  // named) and the work done ahead of need (blocks reserved ahead of the
  // writes, the next segment's file created). `run(job, before_later_flushes)`
  // runs `job` on another thread: a roll's work (true) before the syncs of any
  // flush requested later, the rest (false) whenever, each kind in order (the
  // broker passes its flusher). Unset (tools, tests): done on the spot.
  using OffThread = std::function<void(std::function<bool()> job, bool before_later_flushes)>;
  void set_off_thread(OffThread run) { off_thread_ = std::move(run); }
  const LogOptions& options() const { return options_; }

  // Appends one complete batch, writing its base offset into the first 8 bytes
  // of `entry`; rolls to a new segment first when the active one is full or
  // older than segment.ms (not while the active segment's file, a spare, waits
  // for its name: see set_off_thread()). Returns the base offset. Throws
  // std::system_error on I/O failure (nothing of the entry is left behind
  // then), when the active segment's naming failed (tried again meanwhile), and
  // with EAGAIN when a roll is needed past 2 GiB or 2^31 offsets while it waits.
  int64_t append(std::span<char> entry, const BatchSummary& summary);

  // Appends a batch that already carries its base offset in its first 8 bytes
  // (a follower copies the leader's batches verbatim). The offset may be above
  // the log end (the leader's log starts later, or compaction left a gap): an
  // empty log then starts there (log start, end and recovery point move to it),
  // otherwise the offsets skip. Rolls as append() does, and also when the
  // batch's offsets would not fit the segment's 32-bit relative offsets.
  // Returns the base offset. Throws std::invalid_argument, with nothing
  // written, for an offset below the log end; std::system_error as append().
  int64_t append_at(std::span<char> entry, const BatchSummary& summary);

  // Truncation, as a follower does when its log diverged from the leader's
  // (Kafka's truncateTo): removes every batch holding an offset >= `offset`,
  // a batch straddling it too, so the log end becomes min(`offset`, the first
  // removed batch's base offset). Nothing happens at or past the log end.
  // Segments past the cut go as with retention (files renamed to `*.deleted`,
  // for the caller to unlink); the segment holding the cut is cut in place and
  // its index files rewritten. Nothing is synced: the caller syncs what
  // begin_flush() then lists (the cut segment, its indexes, the directory)
  // before appending again, off its own thread. If nothing stays, the log
  // starts afresh at the new end, as truncate_fully_and_start_at(). The
  // recovery point and log start offset drop to the new end if above it.
  // Where offsets skip just before the cut, a restart finds the log end at the
  // end of the last batch kept instead (as Kafka's would). Throws
  // std::invalid_argument for an offset below the log start offset (use
  // truncate_fully_and_start_at()).
  //
  // The caller must sync those files and persist the lowered recovery point
  // (checkpoint) before appending past the new end: a stale, higher one would
  // make the next start trust the new batches unverified, and an unsynced cut
  // could leave old and new bytes mixed under it. Its leader-epoch cache follows with
  // truncate_from_end(log_end_offset). Fetches still sending from a slice of
  // the removed region read whatever the file holds then (less, or the
  // removed bytes of a renamed segment).
  struct Truncation {
    int64_t log_end_offset;
    std::vector<std::filesystem::path> removed;  // already renamed to `*.deleted`
  };
  Truncation truncate_to(int64_t offset);

  // Drops every segment and starts the log afresh at `offset` (a follower
  // whose log is wholly outside the leader's): log start = log end = recovery
  // point = `offset`, one empty segment. Returns the files to delete (renamed
  // to `*.deleted`). The same checkpoint rule as truncate_to() applies.
  std::vector<std::filesystem::path> truncate_fully_and_start_at(int64_t offset);

  // Where a read's batches are: regions of segment files, for a caller that
  // sends them without reading them (sendfile). Whole batches starting with the
  // one that holds `offset` (or the next, where offsets skip it), until adding
  // the next would pass `max_bytes`; the first batch is included whatever its
  // size when `at_least_one` (KIP-74).
  // Empty at or past the log end, or below the log start. Each slice keeps its
  // file open. Batches from `end_offset` on are left out (consumers read only
  // below the high watermark, which is at a batch boundary).
  struct FileSlice {
    std::shared_ptr<const void> owner;
    int fd;
    uint64_t position;
    uint32_t length;
  };
  // `next_offset`, when given, gets the offset just past the last batch
  // located (where the reader goes on): how many offsets an answer spans.
  std::vector<FileSlice> locate(int64_t offset, size_t max_bytes, bool at_least_one,
                                int64_t end_offset = INT64_MAX, int64_t* next_offset = nullptr) const;
  // The same batches, read into memory.
  std::string read(int64_t offset, size_t max_bytes, bool at_least_one) const;

  // Calls `visit` with the header (BatchFormat::header_bytes) of every batch
  // from the one holding `offset` to the end: how state kept beside the log
  // (idempotent producers) catches up after a restart.
  void visit_batch_headers(int64_t offset, const std::function<void(std::string_view header)>& visit) const;

  // The base offset of the first batch at or after the log start whose max
  // timestamp is >= `timestamp`, found through the time index.
  std::optional<int64_t> offset_for_timestamp(int64_t timestamp) const;

  // The largest timestamp in the log and the base offset of its batch.
  std::optional<std::pair<int64_t, int64_t>> max_timestamp_batch() const;

  // Forces written data and indexes to disk; the recovery point becomes the
  // log end offset (below a rolled segment whose finishing has not run).
  // Throws std::system_error if a segment file's naming failed.
  void flush();

  // The same, with the syncing done elsewhere (the group-commit thread):
  // begin_flush() writes the pending index entries and says which files to
  // sync; once they are synced, end_flush() raises the recovery point.
  struct PendingFlush {
    int64_t offset = 0;  // everything below it is in the files
    SyncList sync;   // what to sync
    uint64_t unsynced_through = 0;  // the rolls and directory changes it covers
  };
  PendingFlush begin_flush();
  void end_flush(const PendingFlush& flushed);

  // Retention: removes the oldest segments whose newest timestamp is older
  // than `retention_ms` (-1: no limit), then the oldest while the log stays
  // above `retention_bytes` (-1: no limit), whole segments only; the log start
  // offset moves to the first offset kept. If every segment goes, an empty one
  // is rolled first (a log always has one). Returns the files to delete: they
  // are already renamed to `*.deleted` and out of the log, so the caller can
  // unlink them off the request path.
  std::vector<std::filesystem::path> enforce_retention(int64_t now_ms, int64_t retention_ms, int64_t retention_bytes);

  // DeleteRecords: the log start offset becomes max(current, `offset`)
  // (`offset` must be <= the log end offset); segments wholly below it go, as
  // with retention.
  std::vector<std::filesystem::path> advance_log_start(int64_t offset);

  // What to sync, off this thread, for everything appended so far to be
  // durable: the active segment, segments rolled since the last completed
  // begin_flush() (a roll does not sync them), and the directory while a
  // segment file created or removed there is not synced.
  SyncList to_sync() const;

  // The partition directory's identity (device, inode), taken at open: a
  // file written into it later off this thread (the leader-epoch checkpoint)
  // checks that the path still names this log's directory, not a namesake
  // created there after a deletion. No descriptor is held for it: a broker's
  // descriptors go to segments and connections.
  struct DirectoryIdentity {
    dev_t device = 0;
    ino_t inode = 0;
  };
  DirectoryIdentity directory_identity() const { return directory_identity_; }

 private:
  // An open segment file, closed when its last owner (the log, or a fetch still
  // sending part of it) lets go.
  class OpenFile {
   public:
    explicit OpenFile(int fd) : fd_(fd) {}
    ~OpenFile();
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    int fd() const { return fd_; }
    // A file created without a name (the spare of roll()): set if naming it failed (an errno).
    std::shared_ptr<std::atomic<int>> naming_error;

   private:
    int fd_;
  };
  struct IndexEntry {
    int64_t offset;     // a batch's base offset
    uint32_t position;  // where the batch starts in the segment file
  };
  struct TimeEntry {
    int64_t timestamp;  // the largest timestamp in the segment up to ...
    int64_t offset;     // ... the batch with this base offset
  };
  struct Sealing {
    std::mutex mutex;  // held while the finishing writes, and to cancel it
    bool cancelled = false;
    // Set once the finishing is durable, or cancelled (the segment was cut, becoming the
    // active one again, or removed): the recovery point may pass the segment.
    std::atomic<bool> done = false;
  };
  // The naming of a segment file created without one (roll() with a spare):
  // a removal of the segment, or the log's closing, cancels it if it has not
  // run. A failed naming (the file's naming_error) refuses appends to the
  // segment and is tried again at the next append, so that no later segment
  // follows one a restart would not find.
  struct Naming {
    std::mutex mutex;  // held while the naming runs, and to cancel it
    bool cancelled = false;
    bool named = false;
    std::atomic<bool> queued = true;  // a naming job is queued or running
  };
  // The next segment's file, made ahead of need off the thread (O_TMPFILE: no
  // name yet), so that a roll creates no file on the log's thread.
  struct Spare {
    std::mutex mutex;
    std::shared_ptr<const OpenFile> file;  // null until made, and once taken
    std::atomic<bool> making = false;      // a job to make one is queued or running
  };
  struct Segment {
    int64_t base_offset = 0;
    std::shared_ptr<const OpenFile> file;
    uint64_t size = 0;
    std::filesystem::path path;
    std::vector<IndexEntry> index;
    std::vector<TimeEntry> time_index;
    std::shared_ptr<const OpenFile> index_file;       // open once written to
    std::shared_ptr<const OpenFile> time_index_file;
    size_t index_on_disk = 0;       // entries already written to the .index file
    size_t time_index_on_disk = 0;  // ... and to the .timeindex file
    int64_t next_offset = 0;        // one past the last offset in the segment
    int64_t max_timestamp = -1;
    int64_t max_timestamp_offset = -1;  // base offset of the batch holding it
    int64_t rolling_timestamp = -1;     // first batch's max timestamp, or creation time (segment.ms)
    // Disk blocks reserved past the end (fallocate KEEP_SIZE) up to here, so appends skip the
    // file system's per-page block reservation; released when the segment is rolled.
    uint64_t allocated_to = 0;
    bool preallocate = true;  // false once fallocate failed (full disk, unsupported file system)
    // Cleared when the segment is rolled, or cut (then replaced): a reserve job still queued
    // does nothing, so that no reserve outlives the end it was asked for.
    std::shared_ptr<std::atomic<bool>> reserving = std::make_shared<std::atomic<bool>>(true);
    // Set from its roll until its finishing has run off the thread (set_off_thread()); a
    // truncation or removal of the segment cancels what has not run yet.
    std::shared_ptr<Sealing> sealing;
    // Set when its file was a spare, named off the thread.
    std::shared_ptr<Naming> naming;

    int fd() const { return file->fd(); }
    bool empty() const { return size == 0; }
  };
  // A batch found by walking headers: where it is and what it holds.
  struct BatchAt {
    uint64_t position;
    uint32_t size;
    int64_t base_offset;
  };

  uint64_t roll_nanos_ = 0;
  OffThread off_thread_;
  // Rolled segments whose finishing was handed off and is not done yet (in
  // roll order): the recovery point stays below the first of them, so that a
  // crash before it is done (or after it failed) rebuilds its indexes.
  struct PendingSeal {
    int64_t base_offset;
    std::shared_ptr<Sealing> sealing;
  };
  std::vector<PendingSeal> pending_seals_;
  // The errno of a reserve that failed off the thread (0: none since last looked at): the
  // active segment goes on without; a file system without fallocate stops the log's reserving.
  std::shared_ptr<std::atomic<int>> reserve_error_ = std::make_shared<std::atomic<int>>(0);
  bool reserve_unsupported_ = false;
  // The next segment's file (set_off_thread() only): asked for once the active segment is half
  // full, or at once after a roll that found none (the other thread was late); taken by the
  // roll, which otherwise creates the file on the spot (a roll by segment.ms, or before the spare
  // was made). A file system without O_TMPFILE stops the asking.
  std::shared_ptr<Spare> spare_ = std::make_shared<Spare>();
  bool spare_asked_ = false;  // for the active segment
  bool spare_early_ = false;  // the last roll found none

  std::shared_ptr<std::atomic<bool>> spare_unsupported_ = std::make_shared<std::atomic<bool>>(false);
  void ask_for_spare();
  // A new segment at `base` on the spare's file, named off the thread before any later flush.
  Segment adopt_spare(int64_t base, const std::filesystem::path& path, std::shared_ptr<const OpenFile> file);
  static bool can_link_unnamed_files(int dir_fd);
  // Opens the log's directory for work off its thread (files are made there only, never in a
  // namesake made at the path after a deletion): kGone if it was removed or a namesake stands
  // there; kFailed with errno set otherwise.
  enum class OwnDirectory { kOpen, kGone, kFailed };
  static OwnDirectory open_own_directory(const std::filesystem::path& dir, DirectoryIdentity identity,
                                         std::optional<OpenFile>& opened);
  static bool name_file(const std::shared_ptr<Naming>& naming, const std::shared_ptr<const OpenFile>& file,
                        const std::filesystem::path& dir, DirectoryIdentity identity, const std::string& name);
  // Keeps a pending naming of `segment`'s file from running (the segment goes: a failed naming
  // no longer fails flushes).
  static void cancel_naming(const Segment& segment);
  // The active segment's naming failed: queues it again (unless `queued`) and throws.
  [[noreturn]] void refuse_unnamed(const Segment& segment, bool queued);
  void queue_naming(const Segment& segment);
  void retry_failed_naming();
  // The segment's reserve ends at `end` now (a cut, a failed write gave the rest back).
  static void reserve_cut_to(Segment& segment, uint64_t end);
  // The highest recovery point the finishing allows: below the first segment not finished.
  int64_t sealed_below();

  PartitionLog(std::filesystem::path dir, LogOptions options, BatchFormat format);
  Segment open_segment(int64_t base, const std::filesystem::path& path);
  void load_indexes(Segment& segment, int64_t trusted_below, bool trusted, RecoveryReport& report) const;
  bool recover_segment(Segment& segment, int64_t trusted_below, RecoveryReport& report);
  void note_batch(Segment& segment, uint64_t position, uint32_t size, int64_t base, const BatchSummary& summary);
  // Writes an entry whose first 8 bytes hold its base offset (append and append_at).
  int64_t write_entry(std::span<char> entry, const BatchSummary& summary);
  Segment& roll(int64_t base_offset);
  // Reserves disk blocks past the segment's end before `end` is written
  // ("Disk space reserved ahead of the writes", README.md): off the thread
  // and ahead of need when the owner allows (set_off_thread()).
  void preallocate_for(Segment& segment, uint64_t end);
  // `resize`: also cuts the files to the entries kept (after a truncation) when nothing is new.
  void write_indexes(Segment& segment, bool sync, bool resize = false);
  // A rolled segment's finishing: what its index files lack (encoded on the caller's thread,
  // written where seal() runs) and its size, to give back the reserve past it.
  struct SealWork {
    std::shared_ptr<Sealing> sealing;
    std::filesystem::path dir;
    DirectoryIdentity identity;
    std::shared_ptr<const OpenFile> file, index_file, time_index_file;
    std::string index_name, time_index_name;
    uint64_t size = 0;
    size_t index_bytes_on_disk = 0, time_index_bytes_on_disk = 0;  // where the new bytes go
    std::string index_bytes, time_index_bytes;
  };
  SealWork seal_work(Segment& segment);
  // Runs `work` (on any thread); false if a file could not be written.
  static bool seal(const SealWork& work);
  // Keeps a pending seal() of `segment` from running (waits for one writing now).
  static void cancel_sealing(const Segment& segment);
  // The index entries [from, to) of `segment`, as their files hold them.
  static std::string encode_index(const Segment& segment, size_t from, size_t to);
  static std::string encode_time_index(const Segment& segment, size_t from, size_t to);
  // A segment being finished gets a final time entry for its largest timestamp.
  static void finish_time_index(Segment& segment);
  void sync_directory_now();
  void note_directory_change();
  std::vector<std::filesystem::path> remove_front_segments(size_t count);
  // Renames the files of segments [first, last) to `*.deleted`; returns the new names.
  std::vector<std::filesystem::path> retire_files(size_t first, size_t last) const;
  void cut_segment(Segment& segment, const BatchAt& first_removed);

  // The last segment starting at or before `offset` (in the log): it holds
  // `offset`, or the offsets skip past it and the next batch is there or later.
  const Segment* segment_for(int64_t offset) const;
  // Batches from `from` (a batch boundary) while they start before `until`;
  // `visit` returns false to stop. Reads headers only.
  void walk(const Segment& segment, uint64_t from, uint64_t until,
            const std::function<bool(const BatchAt&, std::string_view header)>& visit) const;
  // The batch holding `offset`, or the first after it where offsets skip;
  // nullopt when `segment` has neither.
  std::optional<BatchAt> find_batch(const Segment& segment, int64_t offset) const;
  uint64_t index_position_at_or_before(const Segment& segment, int64_t offset) const;

  std::filesystem::path dir_;
  DirectoryIdentity directory_identity_;
  LogOptions options_;
  BatchFormat format_;
  std::vector<Segment> segments_;
  int64_t log_start_offset_ = 0;
  int64_t next_offset_ = 0;
  int64_t recovery_point_ = 0;
  // Left unsynced by roll() (the network thread never waits on a disk) until a flush covers
  // them: each change (a roll, a file created or removed) takes the next sequence number;
  // rolled-off files wait with theirs, and the directory is synced through `dir_synced_through_`.
  uint64_t changes_ = 0;
  uint64_t dir_synced_through_ = 0;
  std::vector<std::pair<uint64_t, std::shared_ptr<const OpenFile>>> unsynced_files_;
};

// Kafka's segment file name: the base offset as 20 zero-padded digits.
std::string segment_file_name(int64_t base_offset);

}  // namespace sluice::storage
