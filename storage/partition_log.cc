#include "storage/partition_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace sluice::storage {
namespace {

constexpr size_t kIndexEntryBytes = 8;       // u32 relative offset, u32 position
constexpr size_t kTimeIndexEntryBytes = 12;  // i64 timestamp, u32 relative offset
constexpr size_t kScanChunk = 1 << 20;
// Preallocation steps grow with the segment (as much again as it holds), within these bounds:
// a partition that writes little reserves little.
constexpr uint64_t kMinPreallocation = 64 << 10;
constexpr uint64_t kMaxPreallocation = 16 << 20;
// Index files hold offsets relative to the segment's base in 32 bits; Kafka keeps them below
// INT32_MAX and rolls before a batch would pass that.
constexpr int64_t kMaxRelativeOffset = std::numeric_limits<int32_t>::max();

[[noreturn]] void throw_errno(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t load_be(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void store_be(char* p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
}

// Reads up to n bytes at `at`; fewer only at the end of the file.
size_t pread_some(int fd, char* buf, size_t n, uint64_t at, const std::string& what) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::pread(fd, buf + done, n - done, static_cast<off_t>(at + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + what);
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

void pread_fully(int fd, char* buf, size_t n, uint64_t at, const std::string& what) {
  if (pread_some(fd, buf, n, at, what) != n) throw std::system_error(EIO, std::generic_category(), "short read " + what);
}

void write_fully(int fd, const char* buf, size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t put = ::write(fd, buf, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw_errno("write " + what);
    }
    buf += put;
    n -= static_cast<size_t>(put);
  }
}

// Whether the directory's entries are on disk.
bool fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  return synced;
}

std::filesystem::path with_extension(const std::filesystem::path& log_path, const char* ext) {
  std::filesystem::path p = log_path;
  p.replace_extension(ext);
  return p;
}

std::string read_file(const std::filesystem::path& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    out.resize(static_cast<size_t>(st.st_size));
    out.resize(pread_some(fd, out.data(), out.size(), 0, path.string()));
  }
  ::close(fd);
  return out;
}

}  // namespace

std::string segment_file_name(int64_t base_offset) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020lld.log", static_cast<long long>(base_offset));
  return name;
}

PartitionLog::OpenFile::~OpenFile() { ::close(fd_); }

PartitionLog::PartitionLog(std::filesystem::path dir, LogOptions options, BatchFormat format)
    : dir_(std::move(dir)), options_(options), format_(std::move(format)) {}

PartitionLog::~PartitionLog() {
  // A naming not run yet: nothing in its file was answered as durable (every flush covering it
  // is queued after it), and a later log at this path must not get the file.
  for (const Segment& segment : segments_) {
    cancel_sealing(segment);
    cancel_naming(segment);
  }
}


PartitionLog::Segment PartitionLog::open_segment(int64_t base, const std::filesystem::path& path) {
  Segment segment;
  segment.base_offset = base;
  segment.next_offset = base;
  segment.path = path;
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("open " + path.string());
  segment.file = std::make_shared<OpenFile>(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat " + path.string());
  segment.size = static_cast<uint64_t>(st.st_size);
  return segment;
}

std::unique_ptr<PartitionLog> PartitionLog::open(const std::filesystem::path& dir, LogOptions options,
                                                 BatchFormat format, LogCheckpoint checkpoint,
                                                 RecoveryReport* report_out) {
  std::filesystem::create_directories(dir);
  std::unique_ptr<PartitionLog> log(new PartitionLog(dir, options, std::move(format)));
  struct stat dir_stat {};
  if (::stat(dir.c_str(), &dir_stat) != 0) throw_errno("stat " + dir.string());
  log->directory_identity_ = {dir_stat.st_dev, dir_stat.st_ino};
  RecoveryReport report;

  std::vector<std::pair<int64_t, std::filesystem::path>> files;
  std::vector<std::filesystem::path> indexes;
  std::set<std::filesystem::path> logs;  // every .log name, for the indexes' check below
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const auto& path = entry.path();
    if (path.extension() == ".deleted") {  // retention had started removing it
      std::filesystem::remove(path);
      continue;
    }
    if (path.extension() == ".index" || path.extension() == ".timeindex") indexes.push_back(path);
    if (path.extension() != ".log") continue;
    logs.insert(path);
    const std::string stem = path.stem().string();
    if (stem.size() != 20 || !std::all_of(stem.begin(), stem.end(), ::isdigit)) continue;
    files.emplace_back(std::stoll(stem), path);
  }
  std::sort(files.begin(), files.end());
  // An index whose segment file is not there (a crash before a roll's file got its name, or
  // between the renames of a removal) would be taken for the index of a later segment at the
  // same offset, whose finishing writes no index file when it has no entries.
  for (const auto& index : indexes) {
    std::error_code ec;
    if (!logs.count(with_extension(index, ".log"))) std::filesystem::remove(index, ec);
  }

  bool cut = false;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& [base, path] = files[i];
    auto drop = [&] {
      std::filesystem::remove(path);
      std::filesystem::remove(with_extension(path, ".index"));
      std::filesystem::remove(with_extension(path, ".timeindex"));
      ++report.removed_segments;
    };
    if (cut) {  // everything after a cut is unreachable: offsets must stay contiguous
      drop();
      continue;
    }
    // A later start is fine (a follower's offsets may skip, see append_at); an overlap is not.
    if (!log->segments_.empty() && base < log->next_offset_) {
      report.problems.push_back(path.string() + ": starts at offset " + std::to_string(base) +
                                ", below the end of the segment before it (" + std::to_string(log->next_offset_) + ")");
      drop();
      cut = true;
      continue;
    }
    Segment segment = log->open_segment(base, path);
    const bool last = i + 1 == files.size();
    // Wholly below the recovery point: flushed and indexed, trusted as is.
    const bool trusted = !last && files[i + 1].first <= checkpoint.recovery_point;
    if (trusted) {
      segment.next_offset = files[i + 1].first;
      log->load_indexes(segment, segment.next_offset, true, report);
      if (segment.index.empty() && segment.size > 0) {
        report.problems.push_back(path.string() + ": index missing or damaged; rebuilt by scanning");
        cut = !log->recover_segment(segment, segment.base_offset, report);
      }
    } else {
      log->load_indexes(segment, checkpoint.recovery_point, false, report);
      cut = !log->recover_segment(segment, checkpoint.recovery_point, report);
    }
    // A rolled segment not trusted may keep a block reserve (a crash came before its roll's
    // finishing): given back now.
    if (!last && !trusted && !cut && ::ftruncate(segment.fd(), static_cast<off_t>(segment.size)) != 0)
      report.problems.push_back(path.string() + ": its block reserve could not be given back");
    // A rolled segment whose index recovery had to rebuild gets its files back
    // now, so the next start trusts it again.
    if (!last && !cut &&
        (segment.index_on_disk < segment.index.size() || segment.time_index_on_disk < segment.time_index.size()))
      log->write_indexes(segment, true);
    log->next_offset_ = segment.next_offset;
    log->segments_.push_back(std::move(segment));
  }
  // Nothing on disk: a new log, or one a crash caught between truncate_fully_and_start_at()
  // removing its segments and creating the new one (the checkpoint has its start then).
  if (log->segments_.empty()) log->roll(std::max<int64_t>(0, checkpoint.log_start_offset));
  log->log_start_offset_ =
      std::clamp(checkpoint.log_start_offset, log->segments_.front().base_offset, log->next_offset_);
  log->recovery_point_ = std::min(checkpoint.recovery_point, log->next_offset_);
  if (report_out) *report_out = std::move(report);
  return log;
}

// Loads the segment's index files, keeping the entries for batches below
// `trusted_below` that point inside the file in increasing order.
void PartitionLog::load_indexes(Segment& segment, int64_t trusted_below, bool trusted, RecoveryReport& report) const {
  const std::string index = read_file(with_extension(segment.path, ".index"));
  for (size_t at = 0; at + kIndexEntryBytes <= index.size(); at += kIndexEntryBytes) {
    IndexEntry e{segment.base_offset + static_cast<int64_t>(load_be(index.data() + at, 4)),
                 static_cast<uint32_t>(load_be(index.data() + at + 4, 4))};
    const bool ordered = segment.index.empty() ? (e.position == 0 && e.offset == segment.base_offset)
                                               : (e.offset > segment.index.back().offset &&
                                                  e.position > segment.index.back().position);
    if (!ordered || e.position + kLogOverhead > segment.size || e.offset >= trusted_below) break;
    segment.index.push_back(e);
  }
  if (!segment.index.empty()) {
    // The last entry must frame a batch with its offset, or the index is not to be trusted.
    char head[kLogOverhead];
    const auto& last = segment.index.back();
    if (pread_some(segment.fd(), head, kLogOverhead, last.position, segment.path.string()) != kLogOverhead ||
        static_cast<int64_t>(load_be(head, 8)) != last.offset) {
      report.problems.push_back(segment.path.string() + ": index does not match the log; rebuilt by scanning");
      segment.index.clear();
    }
  }
  segment.index_on_disk = segment.index.size();

  const std::string times = read_file(with_extension(segment.path, ".timeindex"));
  for (size_t at = 0; at + kTimeIndexEntryBytes <= times.size(); at += kTimeIndexEntryBytes) {
    TimeEntry e{static_cast<int64_t>(load_be(times.data() + at, 8)),
                segment.base_offset + static_cast<int64_t>(load_be(times.data() + at + 8, 4))};
    if ((!segment.time_index.empty() && e.timestamp <= segment.time_index.back().timestamp) ||
        e.offset < segment.base_offset || e.offset >= trusted_below)
      break;
    segment.time_index.push_back(e);
  }
  if (!trusted) {
    // Recovery rescans from the last index entry: time entries from there on
    // (a flush's final entry) are rebuilt by the scan.
    const int64_t rescan_from = segment.index.empty() ? segment.base_offset : segment.index.back().offset;
    while (!segment.time_index.empty() && segment.time_index.back().offset >= rescan_from) segment.time_index.pop_back();
  }
  segment.time_index_on_disk = segment.time_index.size();
  if (!segment.time_index.empty()) {
    segment.max_timestamp = segment.time_index.back().timestamp;
    segment.max_timestamp_offset = segment.time_index.back().offset;
  }
}

// Scans the segment from its last trusted index entry to the end: batches
// below `trusted_below` are only framed, later ones are verified. Cuts the file
// at the first entry that is torn, corrupt or out of sequence. Returns false
// when it had to cut (later segments must go).
bool PartitionLog::recover_segment(Segment& segment, int64_t trusted_below, RecoveryReport& report) {
  uint64_t pos = 0;
  int64_t expected = segment.base_offset;
  if (!segment.index.empty()) {
    pos = segment.index.back().position;
    expected = segment.index.back().offset;
    segment.index.pop_back();  // note_batch() puts it back
    segment.index_on_disk = std::min(segment.index_on_disk, segment.index.size());
  }
  // The rolling timestamp comes from the first batch; read it if we start past it.
  std::string buffer;
  uint64_t buffer_at = 0;
  auto view = [&](uint64_t at, size_t n) -> std::string_view {
    if (at + n > segment.size) return {};
    if (at < buffer_at || at + n > buffer_at + buffer.size()) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(n, kScanChunk), segment.size - at));
      buffer.resize(want);
      pread_fully(segment.fd(), buffer.data(), want, at, segment.path.string());
      buffer_at = at;
    }
    return std::string_view(buffer).substr(static_cast<size_t>(at - buffer_at), n);
  };
  if (pos > 0 && segment.size >= format_.header_bytes) {
    if (auto first = format_.summarize(view(0, format_.header_bytes))) segment.rolling_timestamp = first->max_timestamp;
  }

  segment.next_offset = expected;
  bool intact = true;
  while (pos < segment.size) {
    std::string_view head = view(pos, std::max(kLogOverhead, format_.header_bytes));
    if (head.empty()) {
      report.problems.push_back(segment.path.string() + ": torn entry at position " + std::to_string(pos));
      intact = false;
      break;
    }
    const int64_t base = static_cast<int64_t>(load_be(head.data(), 8));
    const int64_t length = static_cast<int32_t>(load_be(head.data() + 8, 4));
    std::optional<BatchSummary> summary = format_.summarize(head.substr(0, format_.header_bytes));
    // A segment starts with its first batch; later offsets may skip (append_at) but never go back.
    const bool in_sequence = pos == 0 ? base == segment.base_offset : base >= expected;
    if (length <= 0 || !in_sequence || !summary || summary->last_offset_delta < 0 ||
        base + summary->last_offset_delta - segment.base_offset > kMaxRelativeOffset ||
        pos + kLogOverhead + static_cast<uint64_t>(length) > segment.size) {
      report.problems.push_back(segment.path.string() + ": no valid batch at position " + std::to_string(pos) +
                                " (expected offset " + (pos == 0 ? "" : ">= ") + std::to_string(expected) + ")");
      intact = false;
      break;
    }
    const size_t entry_size = kLogOverhead + static_cast<size_t>(length);
    if (base >= trusted_below) {
      std::string_view entry = view(pos, entry_size);
      if (!format_.verify(entry)) {
        report.problems.push_back(segment.path.string() + ": checksum mismatch at position " + std::to_string(pos) +
                                  " (offset " + std::to_string(base) + ")");
        intact = false;
        break;
      }
      ++report.batches_scanned;
      report.bytes_scanned += entry_size;
    }
    note_batch(segment, pos, static_cast<uint32_t>(entry_size), base, *summary);
    expected = segment.next_offset;
    pos += entry_size;
  }
  if (!intact) {
    report.truncated_bytes += segment.size - pos;
    if (::ftruncate(segment.fd(), static_cast<off_t>(pos)) != 0) throw_errno("truncate " + segment.path.string());
    ::fdatasync(segment.fd());
    segment.size = pos;
    // Index entries past the cut (possible when the file had them) go too.
    while (!segment.index.empty() && segment.index.back().position >= pos) segment.index.pop_back();
    while (!segment.time_index.empty() && segment.time_index.back().offset >= segment.next_offset)
      segment.time_index.pop_back();
    segment.index_on_disk = std::min(segment.index_on_disk, segment.index.size());
    segment.time_index_on_disk = std::min(segment.time_index_on_disk, segment.time_index.size());
    ::truncate(with_extension(segment.path, ".index").c_str(), static_cast<off_t>(segment.index_on_disk * kIndexEntryBytes));
    ::truncate(with_extension(segment.path, ".timeindex").c_str(),
               static_cast<off_t>(segment.time_index_on_disk * kTimeIndexEntryBytes));
  }
  return intact;
}

// Bookkeeping for a batch now in `segment` at `position`: offsets, timestamps
// and the sparse indexes.
void PartitionLog::note_batch(Segment& segment, uint64_t position, uint32_t size, int64_t base,
                              const BatchSummary& summary) {
  if (segment.index.empty() || position - segment.index.back().position >= options_.index_interval_bytes) {
    segment.index.push_back({base, static_cast<uint32_t>(position)});
    // The time index follows the offset index's rhythm, when the largest timestamp grew.
    if (segment.max_timestamp >= 0 &&
        (segment.time_index.empty() || segment.max_timestamp > segment.time_index.back().timestamp))
      segment.time_index.push_back({segment.max_timestamp, segment.max_timestamp_offset});
  }
  if (position == 0) segment.rolling_timestamp = summary.max_timestamp;
  if (summary.max_timestamp > segment.max_timestamp) {
    segment.max_timestamp = summary.max_timestamp;
    segment.max_timestamp_offset = base;
  }
  segment.next_offset = base + summary.last_offset_delta + 1;
  segment.size = std::max<uint64_t>(segment.size, position + size);
}

// Reserves blocks past the end of the active segment before an append that would go beyond the
// reserve. ext4 (delayed allocation) otherwise reserves, accounts and maps every 4 KiB page as it
// is written: with the reserve in place, W1 of bench/ took ~20% less broker CPU and W2 ran
// faster (bench/README.md). The file's size is unchanged (KEEP_SIZE), so readers and recovery
// see only what was written; if the call fails, appends go on without it.
void PartitionLog::preallocate_for(Segment& segment, uint64_t end) {
  if (!segment.preallocate) return;
  const uint64_t step = std::clamp(segment.size, kMinPreallocation, kMaxPreallocation);
  if (off_thread_) {
    // Ahead of need, off this thread: once the writes come within half a step of the reserve's
    // end, the next step is asked for. An append past what the job has reserved so far only
    // goes without the speed-up, and a job queued before the segment was rolled or cut does
    // nothing. A failure stops the segment's reserving (a full disk), a file system without
    // fallocate the log's.
    if (const int error = reserve_error_->exchange(0); error != 0 || reserve_unsupported_) {
      reserve_unsupported_ = reserve_unsupported_ || error == EOPNOTSUPP || error == ENOSYS;
      segment.preallocate = false;  // (a full disk: the next segment tries again)
      return;
    }
    if (end + step / 2 <= segment.allocated_to) return;
    const uint64_t from = std::max(segment.allocated_to, end);
    const uint64_t to = from + step;
    segment.allocated_to = to;
    auto reserve = [file = segment.file, from, to, open = segment.reserving, error = reserve_error_] {
      if (!open->load()) return true;  // rolled or cut since: nothing to reserve past its end
      if (::fallocate(file->fd(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from), static_cast<off_t>(to - from)) != 0)
        error->store(errno);
      return true;  // not a flush's failure: the segment goes on without a reserve
    };
    off_thread_(std::move(reserve), false);
    return;
  }
  if (end <= segment.allocated_to) return;
  const uint64_t from = std::max(segment.allocated_to, segment.size);
  const uint64_t to = std::max(end, from + step);
  if (::fallocate(segment.fd(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from), static_cast<off_t>(to - from)) != 0) {
    segment.preallocate = false;
    return;
  }
  segment.allocated_to = to;
}

// Starts a new active segment at `base_offset` (at or past the log end). An empty active segment
// is replaced rather than kept: a segment starts with its first batch (its index says so), and
// an empty one has nothing to keep.
PartitionLog::Segment& PartitionLog::roll(int64_t base_offset) {
  const bool replace = !segments_.empty() && segments_.back().empty();
  if (replace && segments_.back().base_offset == base_offset) return segments_.back();
  const auto started = std::chrono::steady_clock::now();
  struct Timed {  // however roll() ends
    std::chrono::steady_clock::time_point started;
    uint64_t& total;
    ~Timed() {
      total += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now() - started).count());
    }
  } timed{started, roll_nanos_};
  note_directory_change();  // a file is created (and an empty one's removed)
  if (!replace && !segments_.empty()) {
    Segment& old = segments_.back();
    finish_time_index(old);
    // Its last index entries are written and synced, and any reserve past its end given back
    // (also one left by an earlier run: truncating a file to its own size frees it on ext4), off
    // this thread when the owner allows: both are file-system work of a few milliseconds.
    SealWork work = seal_work(old);
    if (off_thread_) {
      pending_seals_.push_back({old.base_offset, work.sealing});
      old.reserving->store(false);
      off_thread_([work = std::move(work)] { return seal(work); }, true);
    } else if (!seal(work)) {
      throw_errno("finishing segment " + old.path.string());
    }
    old.allocated_to = old.size;
    // Not synced here: the next flush (an acks=all produce's, the checkpoint's) syncs it, and the
    // recovery point passes it only then. (Its index files: seal() syncs them.)
    unsynced_files_.emplace_back(changes_, old.file);
  }
  // The spare made ahead of need, if there is one: no file is created on this thread then.
  std::shared_ptr<const OpenFile> spare;
  if (off_thread_) {
    std::lock_guard<std::mutex> lock(spare_->mutex);
    spare = std::exchange(spare_->file, nullptr);
  }
  spare_early_ = spare_asked_ && !spare;  // asked, and the other thread was late
  spare_asked_ = false;
  const auto path = dir_ / segment_file_name(base_offset);
  Segment segment = spare ? adopt_spare(base_offset, path, std::move(spare)) : open_segment(base_offset, path);
  segment.rolling_timestamp = now_ms();
  if (replace) {
    cancel_naming(segments_.back());  // (its file, if still unnamed, goes when closed)
    for (const char* ext : {".log", ".index", ".timeindex"}) {
      std::error_code ec;  // an index file of an empty segment need not exist
      std::filesystem::remove(with_extension(segments_.back().path, ext), ec);
    }
    segments_.pop_back();
  }
  segments_.push_back(std::move(segment));
  if (segments_.size() == 1) {
    // The log holds nothing (new, emptied, or its only segment was empty): it starts here.
    log_start_offset_ = next_offset_ = recovery_point_ = base_offset;
  }
  return segments_.back();
}

PartitionLog::Segment PartitionLog::adopt_spare(int64_t base, const std::filesystem::path& path,
                                               std::shared_ptr<const OpenFile> file) {
  Segment segment;
  segment.base_offset = base;
  segment.next_offset = base;
  segment.path = path;
  segment.file = file;
  segment.naming = std::make_shared<Naming>();
  queue_naming(segment);
  return segment;
}

// Named before the syncs of any later flush (which syncs the directory too: roll() noted the
// change), so that nothing appended here is reported durable before its file has a name.
// Only this thread queues a naming, and only while none is queued: one runs at a time.
void PartitionLog::queue_naming(const Segment& segment) {
  segment.naming->queued = true;
  off_thread_([naming = segment.naming, file = segment.file, dir = dir_, identity = directory_identity_,
               name = segment.path.filename().string()] {
    struct Finished {  // however the job ends: after its outcome is stored
      Naming& naming;
      ~Finished() { naming.queued = false; }
    } finished{*naming};
    return name_file(naming, file, dir, identity, name);
  }, true);
}

void PartitionLog::refuse_unnamed(const Segment& segment, bool queued) {
  const int error = segment.file->naming_error->load();
  if (!queued) queue_naming(segment);
  throw std::system_error(error != 0 ? error : EIO, std::generic_category(),
                          "naming " + segment.path.string() + " failed (tried again, one attempt at a time)");
}

void PartitionLog::retry_failed_naming() {
  const Segment& active = segments_.back();
  if (active.naming && !active.naming->queued.load() && active.file->naming_error->load() != 0) queue_naming(active);
}

void PartitionLog::ask_for_spare() {
  spare_asked_ = true;
  if (spare_->making.exchange(true)) return;  // one on its way already (late for the last roll)
  auto make = [spare = spare_, dir = dir_, identity = directory_identity_, unsupported = spare_unsupported_] {
    struct Made {  // however the job ends
      Spare& spare;
      ~Made() { spare.making = false; }
    } made{*spare};
    std::optional<OpenFile> dir_file;
    if (open_own_directory(dir, identity, dir_file) != OwnDirectory::kOpen) return true;  // nothing to make
    const int dir_fd = dir_file->fd();
    const int fd = ::openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      // EISDIR: a kernel without O_TMPFILE; EOPNOTSUPP: a file system without it.
      if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) unsupported->store(true);
      return true;  // not a flush's failure: the roll creates the file itself
    }
    if (!can_link_unnamed_files(dir_fd)) {
      ::close(fd);
      unsupported->store(true);
      return true;
    }
    auto file = std::make_shared<OpenFile>(fd);
    file->naming_error = std::make_shared<std::atomic<int>>(0);
    std::lock_guard<std::mutex> lock(spare->mutex);
    spare->file = std::move(file);
    return true;
  };
  off_thread_(std::move(make), false);
}

namespace {

// Links an O_TMPFILE file to `name` in `dir_fd`: by descriptor (which takes CAP_DAC_READ_SEARCH),
// else through /proc (open(2)). The errno of the attempt that counts, or 0.
int link_unnamed(int fd, int dir_fd, const char* name) {
  if (::linkat(fd, "", dir_fd, name, AT_EMPTY_PATH) == 0) return 0;
  if (errno != ENOENT) return errno;
  const std::string by_proc = "/proc/self/fd/" + std::to_string(fd);
  return ::linkat(AT_FDCWD, by_proc.c_str(), dir_fd, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
}

}  // namespace

// Whether a file made without a name can be given one here (neither way is open to every
// process: no /proc, no capability): tried once per process with a file of its own.
bool PartitionLog::can_link_unnamed_files(int dir_fd) {
  static std::atomic<int> known{0};  // 0: not tried yet, 1: yes, 2: no
  if (const int k = known.load(); k != 0) return k == 1;
  const int fd = ::openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return false;  // (not decided: tried again with the next spare)
  const OpenFile probe(fd);
  const std::string name = ".link-probe-" + std::to_string(::getpid());
  const int error = link_unnamed(fd, dir_fd, name.c_str());
  if (error == 0) ::unlinkat(dir_fd, name.c_str(), 0);
  if (error == 0 || error == ENOENT || error == EPERM || error == EACCES || error == EOPNOTSUPP)
    known = error == 0 ? 1 : 2;
  return error == 0;
}

bool PartitionLog::name_file(const std::shared_ptr<Naming>& naming, const std::shared_ptr<const OpenFile>& file,
                             const std::filesystem::path& dir, DirectoryIdentity identity, const std::string& name) {
  std::lock_guard<std::mutex> lock(naming->mutex);
  if (naming->cancelled || naming->named) return true;  // the segment went first: its file goes unnamed
  const auto failed = [&](int error) {
    file->naming_error->store(error != 0 ? error : EIO);
    return false;
  };
  std::optional<OpenFile> dir_file;
  switch (open_own_directory(dir, identity, dir_file)) {
    case OwnDirectory::kGone: return true;  // the log was deleted, and its data with it
    case OwnDirectory::kFailed: return failed(errno);
    case OwnDirectory::kOpen: break;
  }
  const int dir_fd = dir_file->fd();
  const int link_error = link_unnamed(file->fd(), dir_fd, name.c_str());
  bool named = link_error == 0;
  if (!named && link_error == EEXIST) {
    // The name may be this very file's (an attempt whose outcome was lost): then it is named.
    struct stat by_name {}, by_fd {};
    named = ::fstatat(dir_fd, name.c_str(), &by_name, AT_SYMLINK_NOFOLLOW) == 0 && ::fstat(file->fd(), &by_fd) == 0 &&
            by_name.st_dev == by_fd.st_dev && by_name.st_ino == by_fd.st_ino;
  }
  if (!named) return failed(link_error);
  naming->named = true;
  file->naming_error->store(0);  // (a retry after a failure)
  return true;
}

void PartitionLog::cancel_naming(const Segment& segment) {
  if (!segment.naming) return;
  std::lock_guard<std::mutex> lock(segment.naming->mutex);
  segment.naming->cancelled = true;
  segment.file->naming_error->store(0);  // what it held is removed on purpose: no flush fails for it
}

PartitionLog::OwnDirectory PartitionLog::open_own_directory(const std::filesystem::path& dir,
                                                            DirectoryIdentity identity,
                                                            std::optional<OpenFile>& opened) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? OwnDirectory::kGone : OwnDirectory::kFailed;
  opened.emplace(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return OwnDirectory::kFailed;
  return st.st_dev == identity.device && st.st_ino == identity.inode ? OwnDirectory::kOpen : OwnDirectory::kGone;
}

void PartitionLog::finish_time_index(Segment& segment) {
  if (segment.max_timestamp >= 0 &&
      (segment.time_index.empty() || segment.max_timestamp > segment.time_index.back().timestamp))
    segment.time_index.push_back({segment.max_timestamp, segment.max_timestamp_offset});
}

void PartitionLog::note_directory_change() { ++changes_; }

void PartitionLog::sync_directory_now() {
  // Not synced (no descriptor left, an I/O error): the next flush syncs it
  // again, and the flusher reports a failure to whoever waits for it.
  if (fsync_dir(dir_)) dir_synced_through_ = changes_;
}

SyncList PartitionLog::to_sync() const {
  SyncList sync;
  const auto add = [&sync](const std::shared_ptr<const OpenFile>& file) {
    sync.fds.push_back(file->fd());
    sync.owners.push_back(file);
    if (file->naming_error) sync.errors.push_back(file->naming_error);
  };
  add(segments_.back().file);
  for (const auto& [change, file] : unsynced_files_) add(file);
  if (dir_synced_through_ < changes_) sync.dirs.push_back(dir_);
  return sync;
}

std::string PartitionLog::encode_index(const Segment& segment, size_t from, size_t to) {
  std::string bytes((to - from) * kIndexEntryBytes, '\0');
  for (size_t i = from; i < to; ++i) {
    char* p = bytes.data() + (i - from) * kIndexEntryBytes;
    store_be(p, static_cast<uint64_t>(segment.index[i].offset - segment.base_offset), 4);
    store_be(p + 4, segment.index[i].position, 4);
  }
  return bytes;
}

std::string PartitionLog::encode_time_index(const Segment& segment, size_t from, size_t to) {
  std::string bytes((to - from) * kTimeIndexEntryBytes, '\0');
  for (size_t i = from; i < to; ++i) {
    char* p = bytes.data() + (i - from) * kTimeIndexEntryBytes;
    store_be(p, static_cast<uint64_t>(segment.time_index[i].timestamp), 8);
    store_be(p + 8, static_cast<uint64_t>(segment.time_index[i].offset - segment.base_offset), 4);
  }
  return bytes;
}

namespace {

// Writes `bytes` at `at` in an index file, cuts the file after them, and syncs it if asked.
// False on an I/O error (errno says which).
bool write_index_file(int fd, const std::string& bytes, size_t at, bool sync) {
  const ssize_t put = bytes.empty() ? 0 : ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at));
  return put == static_cast<ssize_t>(bytes.size()) && ::ftruncate(fd, static_cast<off_t>(at + bytes.size())) == 0 &&
         (!sync || ::fdatasync(fd) == 0);
}

}  // namespace

// Appends the index entries not yet on disk; with `sync`, also makes them
// durable, and (as when a segment is finished) adds a final time entry for the
// largest timestamp, so a trusted segment's time index knows it.
void PartitionLog::write_indexes(Segment& segment, bool sync, bool resize) {
  if (sync) finish_time_index(segment);
  auto append_file = [&](const char* ext, std::shared_ptr<const OpenFile>& file, size_t& on_disk, size_t total,
                         size_t entry_bytes, const std::string& bytes) {
    const auto path = with_extension(segment.path, ext);
    if (!file) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) throw_errno("open " + path.string());
      file = std::make_shared<OpenFile>(fd);
    }
    if (!write_index_file(file->fd(), bytes, on_disk * entry_bytes, sync)) throw_errno("write " + path.string());
    on_disk = total;
  };
  const size_t index_total = segment.index.size();
  if (segment.index_on_disk != index_total || sync || resize)
    append_file(".index", segment.index_file, segment.index_on_disk, index_total, kIndexEntryBytes,
                encode_index(segment, segment.index_on_disk, index_total));
  const size_t time_total = segment.time_index.size();
  if (segment.time_index_on_disk != time_total || sync || resize)
    append_file(".timeindex", segment.time_index_file, segment.time_index_on_disk, time_total, kTimeIndexEntryBytes,
                encode_time_index(segment, segment.time_index_on_disk, time_total));
}

PartitionLog::SealWork PartitionLog::seal_work(Segment& segment) {
  SealWork work;
  cancel_sealing(segment);  // (one from an earlier roll of it is cancelled already: truncate_to())
  work.sealing = segment.sealing = std::make_shared<Sealing>();
  work.dir = dir_;
  work.identity = directory_identity_;
  work.file = segment.file;
  work.index_file = segment.index_file;
  work.time_index_file = segment.time_index_file;
  work.index_name = with_extension(segment.path, ".index").filename();
  work.time_index_name = with_extension(segment.path, ".timeindex").filename();
  work.size = segment.size;
  work.index_bytes_on_disk = segment.index_on_disk * kIndexEntryBytes;
  work.time_index_bytes_on_disk = segment.time_index_on_disk * kTimeIndexEntryBytes;
  work.index_bytes = encode_index(segment, segment.index_on_disk, segment.index.size());
  work.time_index_bytes = encode_time_index(segment, segment.time_index_on_disk, segment.time_index.size());
  // The counts on disk stay as they were: a truncation into the segment later rewrites from
  // there, whether or not seal() ran (it writes the same entries).
  return work;
}

bool PartitionLog::seal(const SealWork& work) {
  // Written under the lock, which a truncation or removal of the segment takes to cancel; synced
  // after it (syncing a file cut or renamed meanwhile does no harm), so that a cancel does not
  // wait for the disk's flush.
  std::vector<std::shared_ptr<const OpenFile>> to_sync;
  {
    std::lock_guard<std::mutex> lock(work.sealing->mutex);
    if (work.sealing->cancelled) return true;  // truncated or removed meanwhile: its owner saw to the files
    // Files are created in this log's directory only, not in a namesake made at the path after a
    // deletion (the log's destructor cancels, but a new log may come first).
    std::optional<OpenFile> dir;
    const OwnDirectory opened = open_own_directory(work.dir, work.identity, dir);
    if (opened != OwnDirectory::kOpen) return opened == OwnDirectory::kGone;
    const int dir_fd = dir->fd();
    auto write = [&](std::shared_ptr<const OpenFile> file, const std::string& name, const std::string& bytes,
                     size_t at) {
      if (!file && bytes.empty() && at == 0) return true;  // no entries, no file
      if (!file) {
        const int fd = ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return false;
        file = std::make_shared<OpenFile>(fd);
      }
      to_sync.push_back(file);
      return write_index_file(file->fd(), bytes, at, false);
    };
    // The reserve past the end goes back (first: also when an index cannot be written, a full
    // disk most likely); the data below stays as it is, so readers are unaffected.
    const bool trimmed = ::ftruncate(work.file->fd(), static_cast<off_t>(work.size)) == 0;
    if (!write(work.index_file, work.index_name, work.index_bytes, work.index_bytes_on_disk) ||
        !write(work.time_index_file, work.time_index_name, work.time_index_bytes, work.time_index_bytes_on_disk) ||
        !trimmed)
      return false;
  }
  for (const auto& file : to_sync)
    if (::fdatasync(file->fd()) != 0) return false;
  work.sealing->done = true;
  return true;
}

int64_t PartitionLog::sealed_below() {
  std::erase_if(pending_seals_, [](const PendingSeal& p) { return p.sealing->done.load(); });
  int64_t below = std::numeric_limits<int64_t>::max();
  for (const auto& p : pending_seals_) below = std::min(below, p.base_offset);
  return below;
}

void PartitionLog::reserve_cut_to(Segment& segment, uint64_t end) {
  segment.allocated_to = end;
  segment.reserving->store(false);
  segment.reserving = std::make_shared<std::atomic<bool>>(true);
}

void PartitionLog::cancel_sealing(const Segment& segment) {
  if (!segment.sealing) return;
  std::lock_guard<std::mutex> lock(segment.sealing->mutex);
  segment.sealing->cancelled = true;
  segment.sealing->done = true;
}

uint64_t PartitionLog::size_bytes() const {
  uint64_t total = 0;
  for (const auto& segment : segments_) total += segment.size;
  return total;
}

int64_t PartitionLog::append(std::span<char> entry, const BatchSummary& summary) {
  store_be(entry.data(), static_cast<uint64_t>(next_offset_), 8);
  return write_entry(entry, summary);
}

int64_t PartitionLog::append_at(std::span<char> entry, const BatchSummary& summary) {
  if (entry.size() <= kLogOverhead || summary.last_offset_delta < 0)
    throw std::invalid_argument(dir_.string() + ": append_at: not a batch");
  const int64_t base = static_cast<int64_t>(load_be(entry.data(), 8));
  if (base < next_offset_)
    throw std::invalid_argument(dir_.string() + ": append_at: batch at offset " + std::to_string(base) +
                                " is below the log end offset " + std::to_string(next_offset_));
  return write_entry(entry, summary);
}

int64_t PartitionLog::write_entry(std::span<char> entry, const BatchSummary& summary) {
  const int64_t base = static_cast<int64_t>(load_be(entry.data(), 8));
  Segment* active = &segments_.back();
  // An empty segment must start at its first batch: an offset above the log end re-bases it
  // (replacing it, and cancelling its naming).
  const bool misplaced = active->empty() && active->base_offset != base;
  // No segment follows one whose file has no name yet: were that naming to fail, a restart would
  // find the later segment and not this one, a hole. The segment grows past segment.bytes
  // meanwhile, by what comes before the thread that names it gets to it. Nothing more goes to a
  // file whose naming failed. (`queued` is read first: a naming stores its error before it
  // clears `queued`, so a naming seen finished is seen with its outcome.)
  bool naming_pending = false;
  if (active->naming && !misplaced) {
    naming_pending = active->naming->queued.load();
    if (active->file->naming_error->load() != 0) refuse_unnamed(*active, naming_pending);
  }
  const bool full = !active->empty() && !naming_pending &&
                    (active->size + entry.size() > options_.segment_bytes ||
                     now_ms() - active->rolling_timestamp >= options_.segment_ms);
  const bool offsets_overflow = base + summary.last_offset_delta - active->base_offset > kMaxRelativeOffset;
  // (Past 2 GiB, or 2^31 offsets, waiting is no longer possible: refused, a retriable error.)
  if (naming_pending && (offsets_overflow || active->size + entry.size() > kMaxRelativeOffset))
    throw std::system_error(EAGAIN, std::generic_category(),
                            "append to " + dir_.string() + ": a new segment is needed and the last one has no name yet");
  if (full || offsets_overflow || misplaced) active = &roll(base);
  const uint64_t position = active->size;
  preallocate_for(*active, position + entry.size());
  try {
    write_fully(active->fd(), entry.data(), entry.size(), active->path.string());
  } catch (...) {
    // Never leave part of an entry behind: later appends would land after garbage.
    if (::ftruncate(active->fd(), static_cast<off_t>(position)) != 0) { /* recovery will cut it */ }
    reserve_cut_to(*active, position);  // the truncation released the reserve too
    throw;
  }
  note_batch(*active, position, static_cast<uint32_t>(entry.size()), base, summary);
  next_offset_ = active->next_offset;
  if (off_thread_ && !spare_asked_ && (spare_early_ || active->size * 2 >= options_.segment_bytes) &&
      !spare_unsupported_->load())
    ask_for_spare();
  return base;
}

const PartitionLog::Segment* PartitionLog::segment_for(int64_t offset) const {
  if (offset < log_start_offset_ || offset >= next_offset_) return nullptr;
  auto seg = std::upper_bound(segments_.begin(), segments_.end(), offset,
                              [](int64_t o, const Segment& s) { return o < s.base_offset; });
  if (seg == segments_.begin()) return nullptr;
  return &*std::prev(seg);
}

uint64_t PartitionLog::index_position_at_or_before(const Segment& segment, int64_t offset) const {
  auto it = std::upper_bound(segment.index.begin(), segment.index.end(), offset,
                             [](int64_t o, const IndexEntry& e) { return o < e.offset; });
  return it == segment.index.begin() ? 0 : std::prev(it)->position;
}

void PartitionLog::walk(const Segment& segment, uint64_t from, uint64_t until,
                        const std::function<bool(const BatchAt&, std::string_view header)>& visit) const {
  const size_t header = std::max(kLogOverhead, format_.header_bytes);
  // One read usually covers every header between two index entries.
  const size_t chunk = std::max<size_t>(options_.index_interval_bytes, 4096) + header;
  std::string buffer;
  uint64_t buffer_at = 0;
  for (uint64_t pos = from; pos < until && pos + kLogOverhead <= segment.size;) {
    if (pos < buffer_at || pos + header > buffer_at + buffer.size()) {
      buffer.resize(static_cast<size_t>(std::min<uint64_t>(chunk, segment.size - pos)));
      pread_fully(segment.fd(), buffer.data(), buffer.size(), pos, segment.path.string());
      buffer_at = pos;
    }
    std::string_view head = std::string_view(buffer).substr(static_cast<size_t>(pos - buffer_at));
    head = head.substr(0, std::min(head.size(), header));
    BatchAt batch{pos, static_cast<uint32_t>(kLogOverhead + load_be(head.data() + 8, 4)),
                  static_cast<int64_t>(load_be(head.data(), 8))};
    if (batch.size <= kLogOverhead || pos + batch.size > segment.size) return;  // not written whole (cannot happen)
    if (!visit(batch, head)) return;
    pos += batch.size;
  }
}

std::optional<PartitionLog::BatchAt> PartitionLog::find_batch(const Segment& segment, int64_t offset) const {
  std::optional<BatchAt> before;  // the last batch starting at or before `offset`
  std::string before_header;
  std::optional<BatchAt> after;   // the first starting past it
  walk(segment, index_position_at_or_before(segment, offset), segment.size, [&](const BatchAt& b, std::string_view header) {
    if (b.base_offset > offset) {
      after = b;
      return false;
    }
    before = b;
    before_header.assign(header);
    return true;
  });
  // `before` holds `offset` unless the offsets skip past it (append_at); one summary tells.
  if (before) {
    const std::optional<BatchSummary> summary = format_.summarize(before_header);
    if (!summary || before->base_offset + summary->last_offset_delta >= offset) return before;
  }
  return after;
}

std::vector<PartitionLog::FileSlice> PartitionLog::locate(int64_t offset, size_t max_bytes, bool at_least_one,
                                                          int64_t end_offset, int64_t* next_offset) const {
  std::vector<FileSlice> slices;
  // Where the slices end, in offsets: the end asked for, unless the budget stops them sooner.
  int64_t reached = std::max(offset, std::min(end_offset, next_offset_));
  struct Report {
    int64_t* out;
    const int64_t& reached;
    ~Report() {
      if (out) *out = reached;
    }
  } report{next_offset, reached};
  if (end_offset <= offset) return slices;
  const Segment* segment = segment_for(offset);
  if (!segment) return slices;
  std::optional<BatchAt> first = find_batch(*segment, offset);
  uint64_t pos = first ? first->position : segment->size;  // none there: the next segment's first batch
  // Where `end_offset` cuts the log: the segment and position of the batch that starts there.
  const Segment* stop_segment = nullptr;
  uint64_t stop_position = 0;
  if (end_offset < next_offset_) {
    stop_segment = segment_for(end_offset);
    if (stop_segment) {
      std::optional<BatchAt> stop = find_batch(*stop_segment, end_offset);
      stop_position = stop ? stop->position : stop_segment->size;
    }
  }
  size_t total = 0;
  for (auto it = segments_.begin() + (segment - segments_.data()); it != segments_.end(); ++it, pos = 0) {
    if (total > 0 && total >= max_bytes) {
      reached = std::max(offset, it->base_offset);
      break;
    }
    const uint64_t readable = &*it == stop_segment ? stop_position : it->size;
    if (pos >= readable) {
      if (&*it == stop_segment) break;
      continue;
    }
    const size_t budget = max_bytes - total;
    uint64_t end = readable;
    if (end - pos > budget) {
      // The last batch boundary within the budget: from the nearest index
      // entry below the limit, walk the few headers up to it.
      const uint64_t limit = pos + budget;
      auto entry = std::upper_bound(it->index.begin(), it->index.end(), limit,
                                    [](uint64_t p, const IndexEntry& e) { return p < e.position; });
      uint64_t from = entry == it->index.begin() ? 0 : std::prev(entry)->position;
      from = std::max(from, pos);
      end = from;
      // One past the limit: a batch starting right at it is visited, so its offset is known.
      walk(*it, from, std::max(limit, from + 1) + 1, [&](const BatchAt& b, std::string_view header) {
        if (b.position + b.size > limit) {
          reached = std::max(offset, b.base_offset);
          if (end == pos && total == 0 && at_least_one) {  // KIP-74
            end = b.position + b.size;
            if (auto summary = format_.summarize(header)) reached = b.base_offset + summary->last_offset_delta + 1;
          }
          return false;
        }
        end = b.position + b.size;
        return true;
      });
    }
    if (end > pos) {
      slices.push_back({it->file, it->fd(), pos, static_cast<uint32_t>(end - pos)});
      total += end - pos;
    }
    if (end < it->size || &*it == stop_segment) break;  // the budget, or `end_offset`, ends here
  }
  return slices;
}

std::string PartitionLog::read(int64_t offset, size_t max_bytes, bool at_least_one) const {
  std::string out;
  for (const auto& slice : locate(offset, max_bytes, at_least_one)) {
    size_t old = out.size();
    out.resize(old + slice.length);
    pread_fully(slice.fd, out.data() + old, slice.length, slice.position, dir_.string());
  }
  return out;
}

void PartitionLog::visit_batch_headers(int64_t offset, const std::function<void(std::string_view)>& visit) const {
  const Segment* segment = segment_for(std::max(offset, log_start_offset_));
  if (!segment) return;
  std::optional<BatchAt> first = find_batch(*segment, std::max(offset, log_start_offset_));
  uint64_t pos = first ? first->position : segment->size;
  for (auto it = segments_.begin() + (segment - segments_.data()); it != segments_.end(); ++it, pos = 0)
    walk(*it, pos, it->size, [&](const BatchAt&, std::string_view header) {
      visit(header);
      return true;
    });
}

std::optional<int64_t> PartitionLog::offset_for_timestamp(int64_t timestamp) const {
  for (const Segment& segment : segments_) {
    if (segment.max_timestamp < timestamp || segment.next_offset <= log_start_offset_) continue;
    // The last time entry below the target: no batch up to it reaches the target.
    auto t = std::lower_bound(segment.time_index.begin(), segment.time_index.end(), timestamp,
                              [](const TimeEntry& e, int64_t ts) { return e.timestamp < ts; });
    int64_t from_offset = t == segment.time_index.begin() ? segment.base_offset : std::prev(t)->offset;
    from_offset = std::max(from_offset, log_start_offset_);
    std::optional<BatchAt> start = find_batch(segment, from_offset);
    std::optional<int64_t> found;
    walk(segment, start ? start->position : segment.size, segment.size, [&](const BatchAt& b, std::string_view header) {
      auto summary = format_.summarize(header);
      if (summary && summary->max_timestamp >= timestamp && b.base_offset + summary->last_offset_delta >= log_start_offset_) {
        found = b.base_offset;
        return false;
      }
      return true;
    });
    if (found) return found;
  }
  return std::nullopt;
}

std::optional<std::pair<int64_t, int64_t>> PartitionLog::max_timestamp_batch() const {
  std::optional<std::pair<int64_t, int64_t>> best;
  for (const Segment& segment : segments_)
    if (segment.max_timestamp >= 0 && segment.next_offset > log_start_offset_ &&
        (!best || segment.max_timestamp > best->first))
      best = {segment.max_timestamp, std::max(segment.max_timestamp_offset, log_start_offset_)};
  return best;
}

PartitionLog::PendingFlush PartitionLog::begin_flush() {
  retry_failed_naming();  // a quiet partition, or one truncating, gets no append to try it again
  Segment& active = segments_.back();
  write_indexes(active, false);
  PendingFlush pending{next_offset_, to_sync(), changes_};
  if (active.index_file) pending.sync.fds.push_back(active.index_file->fd());
  if (active.time_index_file) pending.sync.fds.push_back(active.time_index_file->fd());
  return pending;
}

void PartitionLog::end_flush(const PendingFlush& flushed) {
  recovery_point_ = std::max(recovery_point_, std::min({flushed.offset, next_offset_, sealed_below()}));
  std::erase_if(unsynced_files_, [&](const auto& entry) { return entry.first <= flushed.unsynced_through; });
  dir_synced_through_ = std::max(dir_synced_through_, flushed.unsynced_through);
}

void PartitionLog::flush() {
  for (const auto& error : to_sync().errors)
    if (const int e = error->load(); e != 0)
      throw std::system_error(e, std::generic_category(), "a segment file of " + dir_.string() + " has no name");
  for (const auto& [change, file] : unsynced_files_)
    if (::fdatasync(file->fd()) != 0) throw_errno("fdatasync " + dir_.string());
  unsynced_files_.clear();
  Segment& active = segments_.back();
  if (::fdatasync(active.fd()) != 0) throw_errno("fdatasync " + active.path.string());
  write_indexes(active, true);
  sync_directory_now();
  recovery_point_ = std::max(recovery_point_, std::min(next_offset_, sealed_below()));
}

std::vector<std::filesystem::path> PartitionLog::retire_files(size_t first, size_t last) const {
  std::vector<std::filesystem::path> removed;
  for (size_t i = first; i < last; ++i) {
    cancel_sealing(segments_[i]);  // its files are renamed now: a finishing would make new ones
    cancel_naming(segments_[i]);   // ... and a naming would name the file again
    for (const char* ext : {".log", ".index", ".timeindex"}) {
      const auto from = with_extension(segments_[i].path, ext);
      auto to = from;
      to += ".deleted";
      std::error_code ec;
      std::filesystem::rename(from, to, ec);
      if (!ec) removed.push_back(to);
    }
  }
  return removed;
}

std::vector<std::filesystem::path> PartitionLog::remove_front_segments(size_t count) {
  if (count == 0) return {};
  if (count >= segments_.size()) roll(next_offset_);  // a log always keeps a segment to append to
  std::vector<std::filesystem::path> removed = retire_files(0, count);
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(count));
  log_start_offset_ = std::max(log_start_offset_, segments_.front().base_offset);
  recovery_point_ = std::max(recovery_point_, log_start_offset_);
  return removed;
}

std::vector<std::filesystem::path> PartitionLog::enforce_retention(int64_t now, int64_t retention_ms,
                                                                   int64_t retention_bytes) {
  size_t count = 0;
  // By time: a segment goes when its newest record is older than retention.ms.
  if (retention_ms >= 0)
    while (count < segments_.size() && !segments_[count].empty() && segments_[count].max_timestamp >= 0 &&
           now - segments_[count].max_timestamp > retention_ms)
      ++count;
  // By size: the oldest go while what stays is still at least retention.bytes.
  if (retention_bytes >= 0) {
    int64_t excess = static_cast<int64_t>(size_bytes()) - retention_bytes;
    for (size_t i = 0; i < count; ++i) excess -= static_cast<int64_t>(segments_[i].size);
    while (count < segments_.size() && !segments_[count].empty() &&
           excess - static_cast<int64_t>(segments_[count].size) >= 0) {
      excess -= static_cast<int64_t>(segments_[count].size);
      ++count;
    }
  }
  return remove_front_segments(count);
}

std::vector<std::filesystem::path> PartitionLog::advance_log_start(int64_t offset) {
  log_start_offset_ = std::max(log_start_offset_, std::min(offset, next_offset_));
  size_t count = 0;
  while (count + 1 < segments_.size() && segments_[count + 1].base_offset <= log_start_offset_) ++count;
  return remove_front_segments(count);
}

PartitionLog::Truncation PartitionLog::truncate_to(int64_t offset) {
  if (offset < log_start_offset_)
    throw std::invalid_argument(dir_.string() + ": cannot truncate to offset " + std::to_string(offset) +
                                ", below the log start offset " + std::to_string(log_start_offset_));
  Truncation result{next_offset_, {}};
  if (offset >= next_offset_) return result;
  // The first batch to go: the one holding `offset`, or the first after it (offsets may skip).
  size_t at = static_cast<size_t>(segment_for(offset) - segments_.data());
  std::optional<BatchAt> first_removed;
  for (; at < segments_.size(); ++at)
    if ((first_removed = find_batch(segments_[at], offset))) break;
  const int64_t new_end = first_removed ? std::min(offset, first_removed->base_offset) : offset;
  if (first_removed && first_removed->position == 0 && at == 0) {
    // Nothing stays: the log starts afresh at the new end (a log always has a segment).
    result.removed = truncate_fully_and_start_at(new_end);
    result.log_end_offset = new_end;
    return result;
  }
  // Whole segments go before the cut: a crash in between must not leave a shorter segment
  // followed by later ones, which the next start would take for skipped offsets.
  const size_t keep = !first_removed ? segments_.size() : first_removed->position == 0 ? at : at + 1;
  if (keep < segments_.size()) {
    result.removed = retire_files(keep, segments_.size());
    segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(keep), segments_.end());
    // The last one kept is the active segment again: a finishing of it still to run would cut
    // off what is appended next (cut_segment() below cancels it too, when it cuts).
    cancel_sealing(segments_.back());
    // Not synced here: the caller syncs the directory (begin_flush() lists it) before it
    // appends again, so a crash cannot bring the removed segments back under new batches.
    note_directory_change();
  }
  if (first_removed && first_removed->position > 0) cut_segment(segments_.back(), *first_removed);
  segments_.back().next_offset = new_end;
  next_offset_ = new_end;
  log_start_offset_ = std::min(log_start_offset_, new_end);
  recovery_point_ = std::min(recovery_point_, new_end);
  result.log_end_offset = new_end;
  return result;
}

// Cuts `segment` where `first_removed` starts, and makes its indexes (in memory and on disk) and
// largest timestamp agree.
void PartitionLog::cut_segment(Segment& segment, const BatchAt& first_removed) {
  const uint64_t position = first_removed.position;
  // A finishing of the segment still to run would write entries past the cut: it is cancelled,
  // and write_indexes() below writes what the files lack either way.
  cancel_sealing(segment);
  // Not synced here (the caller's begin_flush() lists the file): the network thread does not wait
  // on the disk, and the caller appends nothing until the cut is durable.
  if (::ftruncate(segment.fd(), static_cast<off_t>(position)) != 0) throw_errno("truncate " + segment.path.string());
  segment.size = position;
  // The truncation freed any reserve past the old end too (as at a roll); the next append
  // reserves again from here.
  reserve_cut_to(segment, position);
  while (!segment.index.empty() && segment.index.back().position >= position) segment.index.pop_back();
  while (!segment.time_index.empty() && segment.time_index.back().offset >= first_removed.base_offset)
    segment.time_index.pop_back();
  segment.index_on_disk = std::min(segment.index_on_disk, segment.index.size());
  segment.time_index_on_disk = std::min(segment.time_index_on_disk, segment.time_index.size());
  // The largest timestamp may have gone with the cut. Reading every header is O(segment), but
  // truncation is rare (a follower after a leader change).
  int64_t max_timestamp = -1;
  int64_t max_timestamp_offset = -1;
  walk(segment, 0, position, [&](const BatchAt& b, std::string_view header) {
    const std::optional<BatchSummary> summary = format_.summarize(header);
    if (summary && summary->max_timestamp > max_timestamp) {
      max_timestamp = summary->max_timestamp;
      max_timestamp_offset = b.base_offset;
    }
    return true;
  });
  segment.max_timestamp = max_timestamp;
  segment.max_timestamp_offset = max_timestamp_offset;
  finish_time_index(segment);
  write_indexes(segment, false, /*resize=*/true);  // cuts the index files to the entries kept
}

std::vector<std::filesystem::path> PartitionLog::truncate_fully_and_start_at(int64_t offset) {
  if (offset < 0) throw std::invalid_argument(dir_.string() + ": cannot start the log at offset " + std::to_string(offset));
  // Renamed first: the new segment may take the name of an old one.
  std::vector<std::filesystem::path> removed = retire_files(0, segments_.size());
  std::vector<Segment> old = std::move(segments_);
  segments_.clear();
  try {
    roll(offset);  // alone in the log, it sets the log start, end and recovery point
  } catch (...) {
    segments_ = std::move(old);  // keep a usable log (on the renamed files) for the error path
    throw;
  }
  // The renames and the new segment are synced by the caller (begin_flush() lists the directory)
  // before it appends: a crash must not bring the old segments back under new batches.
  return removed;
}

}  // namespace sluice::storage
