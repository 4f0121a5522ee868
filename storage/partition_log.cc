#include "storage/partition_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>

namespace sluice::storage {
namespace {

[[noreturn]] void throw_errno(const std::string& what) { throw std::system_error(errno, std::generic_category(), what); }

int64_t load_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return static_cast<int64_t>(v);
}

int32_t load_be32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return static_cast<int32_t>(v);
}

void store_be64(char* p, int64_t value) {
  uint64_t v = static_cast<uint64_t>(value);
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
}

void pread_fully(int fd, char* buf, size_t n, uint64_t at, const std::string& what) {
  while (n > 0) {
    ssize_t got = ::pread(fd, buf, n, static_cast<off_t>(at));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + what);
    }
    if (got == 0) throw std::system_error(EIO, std::generic_category(), "short read " + what);
    buf += got;
    n -= static_cast<size_t>(got);
    at += static_cast<uint64_t>(got);
  }
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

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string segment_file_name(int64_t base_offset) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020lld.log", static_cast<long long>(base_offset));
  return name;
}

PartitionLog::PartitionLog(std::filesystem::path dir, LogOptions options) : dir_(std::move(dir)), options_(options) {}

PartitionLog::~PartitionLog() = default;

PartitionLog::OpenFile::~OpenFile() { ::close(fd_); }

std::unique_ptr<PartitionLog> PartitionLog::open(const std::filesystem::path& dir, LogOptions options,
                                                 const BatchInspector& inspect, RecoveryReport* report_out) {
  std::filesystem::create_directories(dir);
  std::unique_ptr<PartitionLog> log(new PartitionLog(dir, options));
  RecoveryReport report;

  std::vector<std::pair<int64_t, std::filesystem::path>> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".log") continue;
    const std::string stem = entry.path().stem().string();
    if (stem.size() != 20 || !std::all_of(stem.begin(), stem.end(), ::isdigit)) continue;
    files.emplace_back(std::stoll(stem), entry.path());
  }
  std::sort(files.begin(), files.end());

  bool corrupt = false;
  for (auto& [base, path] : files) {
    if (corrupt) {
      // Everything after a corrupt point is unreachable: offsets must stay contiguous.
      std::filesystem::remove(path);
      ++report.removed_segments;
      continue;
    }
    Segment segment;
    segment.base_offset = base;
    segment.path = path;
    const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0) throw_errno("open " + path.string());
    segment.file = std::make_shared<OpenFile>(fd);
    struct stat st {};
    if (::fstat(segment.fd(), &st) != 0) throw_errno("stat " + path.string());
    segment.size = static_cast<uint64_t>(st.st_size);
    if (log->segments_.empty()) log->next_offset_ = base;
    if (base != log->next_offset_) {
      // A gap between segments: treat as the corrupt point.
      segment.file.reset();
      std::filesystem::remove(path);
      ++report.removed_segments;
      corrupt = true;
      continue;
    }
    log->recover_segment(segment, inspect, corrupt, report);
    log->segments_.push_back(std::move(segment));
  }
  // An empty segment that is not the only one carries nothing; keep the list simple.
  if (log->segments_.empty()) log->roll(0);
  log->log_start_offset_ = log->segments_.front().base_offset;
  if (report_out) *report_out = report;
  return log;
}

void PartitionLog::recover_segment(Segment& segment, const BatchInspector& inspect, bool& corrupt,
                                   RecoveryReport& report) {
  // Scan the file in large chunks; entries are parsed out of the chunk buffer.
  constexpr size_t kChunk = 1 << 20;
  std::string buffer;
  uint64_t buffer_at = 0;  // file position of buffer[0]
  uint64_t pos = 0;
  auto ensure = [&](uint64_t at, size_t n) -> std::string_view {
    if (at + n > segment.size) return {};
    if (at < buffer_at || at + n > buffer_at + buffer.size()) {
      size_t want = std::max<size_t>(n, kChunk);
      want = static_cast<size_t>(std::min<uint64_t>(want, segment.size - at));
      buffer.resize(want);
      pread_fully(segment.fd(), buffer.data(), want, at, segment.path.string());
      buffer_at = at;
    }
    return std::string_view(buffer).substr(static_cast<size_t>(at - buffer_at), n);
  };

  while (pos < segment.size) {
    std::string_view head = ensure(pos, kLogOverhead);
    if (head.empty()) break;
    int64_t base = load_be64(head.data());
    int32_t length = load_be32(head.data() + 8);
    if (length <= 0 || base != next_offset_) break;
    std::string_view entry = ensure(pos, kLogOverhead + static_cast<size_t>(length));
    if (entry.empty()) break;
    std::optional<BatchSummary> summary = inspect(entry);
    if (!summary || summary->last_offset_delta < 0) break;
    segment.batches.push_back(BatchPosition{base, base + summary->last_offset_delta, summary->max_timestamp,
                                            static_cast<uint32_t>(pos), static_cast<uint32_t>(entry.size())});
    next_offset_ = base + summary->last_offset_delta + 1;
    pos += entry.size();
    ++report.batches;
  }
  if (pos < segment.size) {
    report.truncated_bytes += segment.size - pos;
    if (::ftruncate(segment.fd(), static_cast<off_t>(pos)) != 0) throw_errno("truncate " + segment.path.string());
    ::fdatasync(segment.fd());
    segment.size = pos;
    corrupt = true;
  }
}

PartitionLog::Segment& PartitionLog::roll(int64_t base_offset) {
  if (!segments_.empty()) ::fdatasync(segments_.back().fd());
  Segment segment;
  segment.base_offset = base_offset;
  segment.path = dir_ / segment_file_name(base_offset);
  const int fd = ::open(segment.path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("create " + segment.path.string());
  segment.file = std::make_shared<OpenFile>(fd);
  fsync_dir(dir_);
  segments_.push_back(std::move(segment));
  return segments_.back();
}

uint64_t PartitionLog::size_bytes() const {
  uint64_t total = 0;
  for (const auto& segment : segments_) total += segment.size;
  return total;
}

int64_t PartitionLog::append(std::span<char> entry, const BatchSummary& summary) {
  Segment* active = &segments_.back();
  if (active->size > 0 && active->size + entry.size() > options_.segment_bytes) active = &roll(next_offset_);
  const int64_t base = next_offset_;
  store_be64(entry.data(), base);
  const uint64_t position = active->size;
  try {
    write_fully(active->fd(), entry.data(), entry.size(), active->path.string());
  } catch (...) {
    // Never leave half an entry behind: later appends would land after garbage.
    if (::ftruncate(active->fd(), static_cast<off_t>(position)) != 0) { /* recovery will cut it */ }
    throw;
  }
  active->size += entry.size();
  active->batches.push_back(BatchPosition{base, base + summary.last_offset_delta, summary.max_timestamp,
                                          static_cast<uint32_t>(position), static_cast<uint32_t>(entry.size())});
  next_offset_ = base + summary.last_offset_delta + 1;
  return base;
}

const PartitionLog::BatchPosition* PartitionLog::find_batch(int64_t offset, const Segment** segment_out) const {
  if (offset < log_start_offset_ || offset >= next_offset_) return nullptr;
  // The last segment whose base offset is <= offset.
  auto seg = std::upper_bound(segments_.begin(), segments_.end(), offset,
                              [](int64_t o, const Segment& s) { return o < s.base_offset; });
  if (seg == segments_.begin()) return nullptr;
  --seg;
  // The first batch whose last offset is >= offset.
  auto batch = std::lower_bound(seg->batches.begin(), seg->batches.end(), offset,
                                [](const BatchPosition& b, int64_t o) { return b.last_offset < o; });
  if (batch == seg->batches.end()) return nullptr;
  *segment_out = &*seg;
  return &*batch;
}

std::vector<PartitionLog::FileSlice> PartitionLog::locate(int64_t offset, size_t max_bytes,
                                                          bool at_least_one) const {
  std::vector<FileSlice> slices;
  const Segment* segment = nullptr;
  const BatchPosition* first = find_batch(offset, &segment);
  if (!first) return slices;
  auto seg_it = segments_.begin() + (segment - segments_.data());
  size_t batch_index = static_cast<size_t>(first - segment->batches.data());
  size_t total = 0;
  // A contiguous run of batches per segment: one slice each.
  while (seg_it != segments_.end()) {
    const auto& batches = seg_it->batches;
    size_t run_start = batch_index;
    size_t run_end = batch_index;
    while (run_end < batches.size()) {
      size_t size = batches[run_end].size;
      bool first_overall = total == 0 && run_end == run_start;
      size_t pending = batches[run_end].position + size - batches[run_start].position;
      if (total + pending > max_bytes && !(first_overall && at_least_one)) break;
      ++run_end;
    }
    if (run_end > run_start) {
      uint64_t from = batches[run_start].position;
      size_t length = batches[run_end - 1].position + batches[run_end - 1].size - from;
      slices.push_back({seg_it->file, seg_it->fd(), from, static_cast<uint32_t>(length)});
      total += length;
    }
    if (run_end < batches.size()) break;  // hit the byte limit
    ++seg_it;
    batch_index = 0;
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

void PartitionLog::visit_batch_prefixes(int64_t offset, size_t prefix_bytes,
                                        const std::function<void(std::string_view prefix)>& visit) const {
  const Segment* segment = nullptr;
  const BatchPosition* first = find_batch(offset, &segment);
  if (!first) return;
  std::string buffer(prefix_bytes, '\0');
  size_t index = static_cast<size_t>(first - segment->batches.data());
  for (auto it = segments_.begin() + (segment - segments_.data()); it != segments_.end(); ++it, index = 0) {
    for (; index < it->batches.size(); ++index) {
      const BatchPosition& batch = it->batches[index];
      const size_t n = std::min<size_t>(prefix_bytes, batch.size);
      pread_fully(it->fd(), buffer.data(), n, batch.position, it->path.string());
      visit(std::string_view(buffer.data(), n));
    }
  }
}

std::optional<int64_t> PartitionLog::offset_for_timestamp(int64_t timestamp) const {
  for (const auto& segment : segments_)
    for (const auto& batch : segment.batches)
      if (batch.max_timestamp >= timestamp) return batch.base_offset;
  return std::nullopt;
}

std::optional<std::pair<int64_t, int64_t>> PartitionLog::max_timestamp_and_offset() const {
  std::optional<std::pair<int64_t, int64_t>> best;
  for (const auto& segment : segments_)
    for (const auto& batch : segment.batches)
      if (!best || batch.max_timestamp > best->first) best = {batch.max_timestamp, batch.last_offset};
  return best;
}

void PartitionLog::flush() {
  if (!segments_.empty() && ::fdatasync(segments_.back().fd()) != 0) throw_errno("fdatasync " + segments_.back().path.string());
}

}  // namespace sluice::storage
