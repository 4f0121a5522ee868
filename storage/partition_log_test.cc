#include "storage/partition_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <chrono>
#include <climits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

namespace sluice::storage {
namespace {

// Test entries: [base offset 8][length 4][last offset delta 4][checksum 4]
// [max timestamp 8][payload]. The checksum lets recovery tell a torn or
// corrupted entry from a valid one, as the broker's CRC-32C does for real
// record batches.
constexpr size_t kHeader = 28;

uint32_t checksum(std::string_view s) {
  uint32_t c = 2166136261u;
  for (unsigned char ch : s) c = (c ^ ch) * 16777619u;
  return c;
}

void put_be(std::string& s, size_t at, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    s[at + static_cast<size_t>(i)] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
}
uint64_t get_be(std::string_view s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}

std::string make_entry(int32_t records, const std::string& payload, int64_t timestamp = 1000) {
  std::string e(kHeader, '\0');
  e += payload;
  put_be(e, 8, e.size() - 12, 4);
  put_be(e, 12, static_cast<uint32_t>(records - 1), 4);
  put_be(e, 20, static_cast<uint64_t>(timestamp), 8);
  put_be(e, 16, checksum(std::string_view(e).substr(20)), 4);
  return e;
}

// The same, carrying its base offset already (as a leader's batch does).
std::string make_entry_at(int64_t base, int32_t records, const std::string& payload, int64_t timestamp = 1000) {
  std::string e = make_entry(records, payload, timestamp);
  put_be(e, 0, static_cast<uint64_t>(base), 8);
  return e;
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

BatchFormat test_format() {
  BatchFormat f;
  f.header_bytes = kHeader;
  f.summarize = [](std::string_view h) -> std::optional<BatchSummary> {
    if (h.size() < kHeader) return std::nullopt;
    return BatchSummary{static_cast<int32_t>(get_be(h, 12, 4)), static_cast<int64_t>(get_be(h, 20, 8))};
  };
  f.verify = [](std::string_view e) { return e.size() >= kHeader && get_be(e, 16, 4) == checksum(e.substr(20)); };
  return f;
}

// The entries carry 1970s timestamps, which segment.ms would find too old:
// the tests roll by age only when they ask for it.
LogOptions test_options() {
  LogOptions o;
  o.segment_ms = INT64_MAX / 4;
  return o;
}

LogOptions segment_bytes(uint64_t n) {
  LogOptions o = test_options();
  o.segment_bytes = n;
  return o;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What a log should hold: its batches, as written, and its offsets.
struct Model {
  struct Batch {
    int64_t base;
    int32_t records;
    int64_t timestamp;
    std::string bytes;
    int64_t last() const { return base + records - 1; }
  };
  std::vector<Batch> batches;
  int64_t log_start = 0;
  int64_t log_end = 0;

  void add(int64_t base, int32_t records, const std::string& payload, int64_t timestamp) {
    if (batches.empty() && base > log_end) log_start = base;  // an empty log starts at its first batch
    batches.push_back({base, records, timestamp, make_entry_at(base, records, payload, timestamp)});
    log_end = base + records;
  }
  // Kafka's truncateTo, as PartitionLog::truncate_to documents it.
  void truncate_to(int64_t offset) {
    if (offset >= log_end) return;
    const Batch* first_removed = at_or_after(offset);
    log_end = first_removed ? std::min(offset, first_removed->base) : offset;
    while (!batches.empty() && batches.back().last() >= offset) batches.pop_back();
    log_start = std::min(log_start, log_end);
  }
  // A restart finds the end after the last batch (skipped offsets after it are not on disk).
  void restart() {
    if (!batches.empty()) log_end = batches.back().last() + 1;
    log_start = std::clamp(log_start, batches.empty() ? log_end : batches.front().base, log_end);
  }
  // The batch holding `offset`, or the first after it.
  const Batch* at_or_after(int64_t offset) const {
    for (const Batch& b : batches)
      if (b.last() >= offset) return &b;
    return nullptr;
  }
};

class PartitionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-log-test-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<PartitionLog> open(LogOptions options = test_options(), LogCheckpoint checkpoint = {},
                                     RecoveryReport* report = nullptr) {
    return PartitionLog::open(dir_, options, test_format(), checkpoint, report);
  }
  int64_t append(PartitionLog& log, int32_t records, const std::string& payload, int64_t timestamp = 1000) {
    std::string e = make_entry(records, payload, timestamp);
    return log.append(e, BatchSummary{records - 1, timestamp});
  }
  int64_t append_at(PartitionLog& log, int64_t base, int32_t records, const std::string& payload,
                    int64_t timestamp = 1000) {
    std::string e = make_entry_at(base, records, payload, timestamp);
    return log.append_at(e, BatchSummary{records - 1, timestamp});
  }
  // Both the log and the model.
  void append_at(PartitionLog& log, Model& model, int64_t base, int32_t records, const std::string& payload,
                 int64_t timestamp = 1000) {
    EXPECT_EQ(append_at(log, base, records, payload, timestamp), base);
    model.add(base, records, payload, timestamp);
  }
  void append(PartitionLog& log, Model& model, int32_t records, const std::string& payload, int64_t timestamp = 1000) {
    model.add(append(log, records, payload, timestamp), records, payload, timestamp);
  }
  // Closes the log and opens it again with the checkpoint it leaves: after a flush (a clean
  // stop), or as a crash would find it. Neither may find anything wrong.
  void restart(std::unique_ptr<PartitionLog>& log, LogOptions options, bool clean, Model* model = nullptr) {
    if (clean) log->flush();
    const LogCheckpoint checkpoint{log->recovery_point(), log->log_start_offset()};
    log.reset();
    RecoveryReport report;
    log = open(options, checkpoint, &report);
    EXPECT_TRUE(report.problems.empty()) << report.problems.front();
    EXPECT_EQ(report.removed_segments, 0);
    EXPECT_EQ(report.truncated_bytes, 0u);
    if (clean) {
      EXPECT_EQ(report.batches_scanned, 0);  // everything trusted
    }
    if (model) model->restart();
    expect_index_files_match_logs();
  }
  // The log reads exactly what the model holds: every batch from every offset around it, the
  // time index lookups, the header walk.
  void expect_log_matches(const PartitionLog& log, const Model& model) {
    ASSERT_EQ(log.log_start_offset(), model.log_start);
    ASSERT_EQ(log.log_end_offset(), model.log_end);
    EXPECT_LE(log.recovery_point(), log.log_end_offset());
    std::string all;
    size_t visible = 0;
    for (const auto& b : model.batches)
      if (b.last() >= model.log_start) {
        all += b.bytes;
        ++visible;
      }
    EXPECT_EQ(log.read(model.log_start, 1 << 30, true), all);
    std::set<int64_t> probes{model.log_start, model.log_end - 1, model.log_end};
    for (const auto& b : model.batches)
      for (int64_t o : {b.base - 1, b.base, b.base + b.records / 2, b.last(), b.last() + 1}) probes.insert(o);
    for (int64_t o : probes) {
      if (o < 0) continue;
      const Model::Batch* want = o < model.log_start || o >= model.log_end ? nullptr : model.at_or_after(o);
      EXPECT_EQ(log.read(o, 1, true), want ? want->bytes : "") << "offset " << o;
    }
    for (const auto& target : model.batches) {
      std::optional<int64_t> want;
      for (const auto& b : model.batches)
        if (b.timestamp >= target.timestamp && b.last() >= model.log_start) {
          want = b.base;
          break;
        }
      EXPECT_EQ(log.offset_for_timestamp(target.timestamp), want) << "timestamp " << target.timestamp;
    }
    size_t visited = 0;
    log.visit_batch_headers(model.log_start, [&](std::string_view) { ++visited; });
    EXPECT_EQ(visited, visible);
  }
  // On disk, every segment is whole batches starting at its name's offset with offsets that
  // never go back; every .index entry points at a batch with its offset and every .timeindex
  // entry names a batch with its timestamp: nothing is left of removed batches.
  void expect_index_files_match_logs() {
    for (const auto& path : files(".log")) {
      const int64_t base = std::stoll(path.stem().string());
      const std::string log = slurp(path);
      std::map<uint64_t, int64_t> offset_at;  // position -> base offset
      std::map<int64_t, int64_t> timestamp_of;   // base offset -> max timestamp
      int64_t next = base;
      for (size_t pos = 0; pos < log.size();) {
        ASSERT_LE(pos + kHeader, log.size()) << path;
        const int64_t offset = static_cast<int64_t>(get_be(log, pos, 8));
        if (pos == 0) {
          EXPECT_EQ(offset, base) << path;
        }
        EXPECT_GE(offset, next) << path << " at " << pos;
        offset_at[pos] = offset;
        timestamp_of[offset] = static_cast<int64_t>(get_be(log, pos + 20, 8));
        next = offset + static_cast<int64_t>(get_be(log, pos + 12, 4)) + 1;
        pos += 12 + get_be(log, pos + 8, 4);
        ASSERT_LE(pos, log.size()) << path;
      }
      auto index_path = path;
      const std::string index = slurp(index_path.replace_extension(".index"));
      EXPECT_EQ(index.size() % 8, 0u);
      for (size_t at = 0; at + 8 <= index.size(); at += 8) {
        const uint64_t position = get_be(index, at + 4, 4);
        ASSERT_TRUE(offset_at.count(position)) << index_path << " entry " << at / 8 << " -> " << position;
        EXPECT_EQ(offset_at[position], base + static_cast<int64_t>(get_be(index, at, 4))) << index_path;
        if (at == 0) {
          EXPECT_EQ(position, 0u) << index_path;
        }
      }
      auto time_path = path;
      const std::string times = slurp(time_path.replace_extension(".timeindex"));
      EXPECT_EQ(times.size() % 12, 0u);
      int64_t last_timestamp = -1;
      for (size_t at = 0; at + 12 <= times.size(); at += 12) {
        const int64_t timestamp = static_cast<int64_t>(get_be(times, at, 8));
        const int64_t offset = base + static_cast<int64_t>(get_be(times, at + 8, 4));
        ASSERT_TRUE(timestamp_of.count(offset)) << time_path << " entry " << at / 12 << " -> offset " << offset;
        EXPECT_EQ(timestamp_of[offset], timestamp) << time_path;
        EXPECT_GT(timestamp, last_timestamp) << time_path;
        last_timestamp = timestamp;
      }
    }
  }
  size_t all_files() {
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir_), {}));
  }
  std::vector<std::filesystem::path> files(const std::string& ext) {
    std::vector<std::filesystem::path> out;
    for (auto& e : std::filesystem::directory_iterator(dir_))
      if (e.path().extension() == ext) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::filesystem::path dir_;
};

TEST_F(PartitionLogTest, AssignsContiguousOffsetsAndReadsWholeBatches) {
  auto log = open();
  EXPECT_EQ(log->log_end_offset(), 0);
  EXPECT_EQ(append(*log, 3, "abc"), 0);
  EXPECT_EQ(append(*log, 2, "de"), 3);
  EXPECT_EQ(log->log_end_offset(), 5);
  // An offset inside the first batch returns that whole batch, then the next.
  std::string data = log->read(1, 1 << 20, true);
  ASSERT_EQ(data.size(), make_entry(3, "abc").size() + make_entry(2, "de").size());
  EXPECT_EQ(get_be(data, 0, 8), 0u);
  EXPECT_EQ(get_be(data, make_entry(3, "abc").size(), 8), 3u);
  EXPECT_TRUE(log->read(5, 1 << 20, true).empty());
}

TEST_F(PartitionLogTest, ByteLimitStopsAtBatchBoundaryButReturnsAtLeastOne) {
  auto log = open();
  append(*log, 1, std::string(100, 'x'));
  append(*log, 1, std::string(100, 'y'));
  size_t one = make_entry(1, std::string(100, 'x')).size();
  EXPECT_EQ(log->read(0, 10, true).size(), one);
  EXPECT_EQ(log->read(0, 0, true).size(), one);
  EXPECT_TRUE(log->read(0, 10, false).empty());
  EXPECT_EQ(log->read(0, one + 10, false).size(), one);
  EXPECT_EQ(log->read(0, 2 * one, false).size(), 2 * one);
}

// Reads through the sparse index must find exactly the batches a full scan would.
TEST_F(PartitionLogTest, SparseIndexReadsMatchAFullScan) {
  LogOptions options = segment_bytes(20000);
  options.index_interval_bytes = 256;
  auto log = open(options);
  std::mt19937 rng(7);
  std::vector<std::pair<int64_t, size_t>> batches;  // base offset, size
  for (int i = 0; i < 400; ++i) {
    const int records = 1 + static_cast<int>(rng() % 5);
    const std::string payload(static_cast<size_t>(rng() % 700), 'p');
    batches.push_back({append(*log, records, payload), make_entry(records, payload).size()});
  }
  EXPECT_GT(log->segment_count(), 5u);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t offset = static_cast<int64_t>(rng() % static_cast<uint32_t>(log->log_end_offset()));
    const size_t max_bytes = rng() % 5000;
    // Expected: the batch holding offset, then whole batches while they fit (segments do not matter).
    size_t k = 0;
    while (k + 1 < batches.size() && batches[k + 1].first <= offset) ++k;
    size_t want = 0;
    for (size_t j = k; j < batches.size() && (want + batches[j].second <= max_bytes || j == k); ++j) {
      if (want + batches[j].second > max_bytes) {
        want = batches[j].second;  // only the first, whatever its size (at_least_one)
        break;
      }
      want += batches[j].second;
    }
    std::string got = log->read(offset, max_bytes, true);
    ASSERT_EQ(got.size(), want) << "offset " << offset << " max " << max_bytes;
    EXPECT_EQ(static_cast<int64_t>(get_be(got, 0, 8)), batches[k].first);
  }
}

TEST_F(PartitionLogTest, CleanReopenTrustsIndexesAndScansNothing) {
  LogOptions options = segment_bytes(2000);
  options.index_interval_bytes = 100;
  int64_t end = 0;
  {
    auto log = open(options);
    for (int i = 0; i < 50; ++i) append(*log, 2, std::string(90, 'c'), 1000 + i);
    log->flush();
    end = log->log_end_offset();
    EXPECT_EQ(log->recovery_point(), end);
  }
  EXPECT_FALSE(files(".index").empty());
  RecoveryReport report;
  auto log = open(options, LogCheckpoint{end, 0}, &report);
  EXPECT_EQ(report.batches_scanned, 0);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(log->log_end_offset(), end);
  EXPECT_EQ(log->offset_for_timestamp(1020), 40);
  EXPECT_EQ(log->max_timestamp_batch(), (std::pair<int64_t, int64_t>(1049, 98)));
  EXPECT_EQ(append(*log, 1, "more"), end);
}

TEST_F(PartitionLogTest, UncleanReopenScansOnlyPastTheRecoveryPoint) {
  LogOptions options = segment_bytes(1000);
  int64_t rolled_at = 0;
  {
    auto log = open(options);
    for (int i = 0; i < 20; ++i) append(*log, 1, std::string(90, 'u'));
    EXPECT_EQ(log->recovery_point(), 0);  // rolls do not sync; a flush does
    auto flush = log->begin_flush();
    for (int fd : flush.sync.fds) ASSERT_EQ(::fsync(fd), 0);
    log->end_flush(flush);
    rolled_at = log->recovery_point();
    EXPECT_EQ(rolled_at, 20);
    for (int i = 0; i < 10; ++i) append(*log, 1, std::string(90, 'u'));
  }
  RecoveryReport report;
  auto log = open(options, LogCheckpoint{rolled_at, 0}, &report);
  EXPECT_EQ(report.batches_scanned, 30 - rolled_at);
  EXPECT_EQ(log->log_end_offset(), 30);
  RecoveryReport full;
  log.reset();
  log = open(options, LogCheckpoint{0, 0}, &full);
  EXPECT_EQ(full.batches_scanned, 30);
}

TEST_F(PartitionLogTest, AFlushDoneElsewhereRaisesTheRecoveryPoint) {
  LogOptions options = test_options();
  options.index_interval_bytes = 200;
  int64_t flushed = 0;
  {
    auto log = open(options);
    for (int i = 0; i < 20; ++i) append(*log, 1, std::string(90, 'f'));
    auto pending = log->begin_flush();
    EXPECT_EQ(pending.offset, 20);
    EXPECT_EQ(pending.sync.fds.size(), 3u);  // log, .index, .timeindex
    EXPECT_EQ(pending.sync.dirs.size(), 1u);  // the first segment was created there
    for (int fd : pending.sync.fds) ASSERT_EQ(::fdatasync(fd), 0);
    for (int i = 0; i < 5; ++i) append(*log, 1, std::string(90, 'g'));  // written after the flush began
    log->end_flush(pending);
    flushed = log->recovery_point();
    EXPECT_EQ(flushed, 20);
  }
  RecoveryReport report;
  auto log = open(options, LogCheckpoint{flushed, 0}, &report);
  EXPECT_EQ(report.batches_scanned, 5) << (report.problems.empty() ? "" : report.problems[0]);  // only what came after the recovery point is verified
  EXPECT_EQ(log->log_end_offset(), 25);
}

TEST_F(PartitionLogTest, DamagedIndexIsReportedAndRebuilt) {
  LogOptions options = segment_bytes(1000);
  int64_t end = 0;
  {
    auto log = open(options);
    for (int i = 0; i < 30; ++i) append(*log, 1, std::string(90, 'd'));
    log->flush();
    end = log->log_end_offset();
  }
  auto indexes = files(".index");
  ASSERT_GE(indexes.size(), 2u);
  {
    std::ofstream f(indexes[0], std::ios::binary | std::ios::trunc);
    f << std::string(16, '\x7f');  // points nowhere sensible
  }
  RecoveryReport report;
  auto log = open(options, LogCheckpoint{end, 0}, &report);
  ASSERT_FALSE(report.problems.empty());
  EXPECT_NE(report.problems[0].find(indexes[0].stem().string()), std::string::npos) << report.problems[0];
  EXPECT_EQ(log->log_end_offset(), end);
  EXPECT_EQ(log->read(0, 1, true).size(), make_entry(1, std::string(90, 'd')).size());
}

TEST_F(PartitionLogTest, CutsATornTail) {
  std::filesystem::path segment;
  size_t first = 0;
  {
    auto log = open();
    append(*log, 2, "complete");
    first = log->size_bytes();
    append(*log, 2, "this one gets torn");
    segment = dir_ / segment_file_name(0);
  }
  std::filesystem::resize_file(segment, first + 15);
  RecoveryReport report;
  auto log = open(test_options(), {}, &report);
  EXPECT_EQ(report.batches_scanned, 1);
  EXPECT_EQ(report.truncated_bytes, 15u);
  EXPECT_EQ(log->log_end_offset(), 2);
  EXPECT_EQ(std::filesystem::file_size(segment), first);
  EXPECT_EQ(append(*log, 1, "next"), 2);  // offsets stay contiguous
}

// Appends reserve disk blocks past the active segment's end (fallocate, KEEP_SIZE): the file's
// size stays what was written, a log reopened as after a crash reads exactly that, and a roll
// gives the reserve back, also one an earlier run left behind.
TEST_F(PartitionLogTest, ReservesBlocksPastTheEndAndGivesThemBackOnRoll) {
  auto allocated = [](const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  };
  auto whole_blocks = [](uint64_t n) { return (n + 4095) / 4096 * 4096; };
  const std::filesystem::path first = dir_ / segment_file_name(0);
  uint64_t written = 0;
  {
    auto log = open(segment_bytes(1 << 20));
    for (int i = 0; i < 8; ++i) append(*log, 1, std::string(1000, static_cast<char>('a' + i)));
    written = log->size_bytes();
    EXPECT_EQ(std::filesystem::file_size(first), written);
    EXPECT_GE(allocated(first), whole_blocks(written) + (32 << 10));  // the reserve: 64 KiB at first
  }
  auto log = open(segment_bytes(1 << 20));
  EXPECT_EQ(log->log_end_offset(), 8);
  EXPECT_EQ(log->size_bytes(), written);
  EXPECT_EQ(log->read(0, 1 << 20, true).size(), written);
  while (files(".log").size() < 2) append(*log, 1, std::string(100000, 'z'));
  const uint64_t size = std::filesystem::file_size(first);
  EXPECT_GT(size, written);
  EXPECT_LT(allocated(first), whole_blocks(size) + (32 << 10));  // (an extent tree block may count)
  EXPECT_EQ(log->read(0, 1 << 30, true).size(), size + std::filesystem::file_size(files(".log")[1]));
}

TEST_F(PartitionLogTest, CutsACorruptEntryAndEverythingAfterIt) {
  {
    auto log = open(segment_bytes(100));
    for (int i = 0; i < 6; ++i) append(*log, 1, std::string(40, static_cast<char>('a' + i)));
  }
  // Several segments now; flip a payload byte in the second one.
  auto segments = files(".log");
  ASSERT_GE(segments.size(), 3u);
  {
    std::fstream f(segments[1], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('!');
  }
  RecoveryReport report;
  auto log = open(segment_bytes(100), {}, &report);
  EXPECT_GT(report.removed_segments, 0);
  EXPECT_GT(report.truncated_bytes, 0u);
  ASSERT_FALSE(report.problems.empty());
  EXPECT_NE(report.problems[0].find("checksum"), std::string::npos) << report.problems[0];
  int64_t end = log->log_end_offset();
  EXPECT_LT(end, 6);
  EXPECT_EQ(append(*log, 1, "after"), end);
}

TEST_F(PartitionLogTest, RollsSegmentsAndReadsAcrossThem) {
  auto log = open(segment_bytes(100));
  for (int i = 0; i < 10; ++i) append(*log, 2, std::string(30, 'z'), 1000 + i);
  EXPECT_EQ(log->log_end_offset(), 20);
  size_t entry = make_entry(2, std::string(30, 'z')).size();
  EXPECT_EQ(log->read(7, 1 << 20, true).size(), entry * 7);  // batches [6,7] .. [18,19]
  EXPECT_EQ(log->offset_for_timestamp(999), 0);
  EXPECT_EQ(log->offset_for_timestamp(1004), 8);
  EXPECT_FALSE(log->offset_for_timestamp(1010).has_value());
}

// The network thread never waits on a disk: a roll leaves the finished segment and the
// directory unsynced, and says so through to_sync() until a flush covers them.
TEST_F(PartitionLogTest, ARollLeavesItsSyncsToTheNextFlush) {
  auto log = open(segment_bytes(100));
  append(*log, 2, std::string(30, 'a'));
  {
    auto first = log->begin_flush();
    for (int fd : first.sync.fds) ASSERT_EQ(::fdatasync(fd), 0);
    log->end_flush(first);
  }
  EXPECT_EQ(log->to_sync().fds.size(), 1u);  // the active segment alone: nothing else pending
  EXPECT_TRUE(log->to_sync().dirs.empty());
  for (int i = 0; i < 3; ++i) append(*log, 2, std::string(30, 'b'));  // rolls at least once
  ASSERT_GT(log->segment_count(), 1u);
  EXPECT_EQ(log->recovery_point(), 2) << "a roll must not claim the finished segment synced";
  // The old segment's log file (the roll synced its index files), the directory, and the active segment.
  const SyncList pending = log->to_sync();
  EXPECT_GE(pending.fds.size(), 2u);
  EXPECT_EQ(pending.dirs.size(), 1u);
  auto flush = log->begin_flush();
  for (int fd : flush.sync.fds) ASSERT_EQ(::fsync(fd), 0);
  log->end_flush(flush);
  EXPECT_EQ(log->recovery_point(), 8);
  EXPECT_EQ(log->to_sync().fds.size(), 1u);
  EXPECT_TRUE(log->to_sync().dirs.empty());
  // A roll after a flush began is not covered by it.
  flush = log->begin_flush();
  append(*log, 2, std::string(30, 'c'));
  log->end_flush(flush);
  EXPECT_EQ(log->recovery_point(), 8);
  EXPECT_GT(log->to_sync().fds.size(), 1u);
  EXPECT_EQ(log->to_sync().dirs.size(), 1u);
}

// With set_off_thread(), a roll leaves the finished segment's last index entries and its block
// reserve to a job run elsewhere (the broker's flusher); a truncation or removal of the segment
// before the job runs cancels it, and a job that fails keeps the recovery point below the segment.
class RollOffThreadTest : public PartitionLogTest {
 protected:
  std::unique_ptr<PartitionLog> open_queued(LogOptions options) {
    auto log = open(options);
    log->set_off_thread([this](std::function<bool()> job, bool) { jobs_.push_back(std::move(job)); });
    return log;
  }
  // Runs the jobs queued so far; whether all succeeded.
  bool run_jobs() {
    bool ok = true;
    for (auto& job : std::exchange(jobs_, {})) ok = job() && ok;
    return ok;
  }
  static uint64_t allocated(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }
  static LogOptions options() {
    LogOptions o = segment_bytes(1000);
    o.index_interval_bytes = 100;
    return o;
  }
  std::vector<std::function<bool()>> jobs_;
};

TEST_F(RollOffThreadTest, TheJobWritesTheIndexesAndGivesTheReserveBack) {
  const std::filesystem::path first = dir_ / segment_file_name(0);
  int64_t end = 0;
  {
    auto log = open_queued(options());
    // 118-byte entries: the first segment holds 8 batches (offsets 0-15), each indexed.
    for (int i = 0; i < 4; ++i) append(*log, 2, std::string(90, 'c'), 1000 + i);
    // Its index files are open already (a flush wrote the first entries): the job writes on there.
    auto flush = log->begin_flush();
    for (int fd : flush.sync.fds) ASSERT_EQ(::fdatasync(fd), 0);
    log->end_flush(flush);
    EXPECT_EQ(std::filesystem::file_size(dir_ / "00000000000000000000.index"), 4u * 8);
    EXPECT_LT(allocated(first), 8u << 10) << "blocks reserved on the spot";
    EXPECT_TRUE(run_jobs());  // the reserve
    EXPECT_GE(allocated(first), 32u << 10);
    for (int i = 4; i < 12; ++i) append(*log, 2, std::string(90, 'c'), 1000 + i);
    ASSERT_EQ(log->segment_count(), 2u);
    EXPECT_EQ(std::filesystem::file_size(dir_ / "00000000000000000000.index"), 4u * 8)
        << "the roll wrote the index itself";
    EXPECT_GE(allocated(first), 32u << 10) << "the roll gave the reserve back itself";
    EXPECT_TRUE(run_jobs());
    EXPECT_EQ(std::filesystem::file_size(dir_ / "00000000000000000000.index"), 8u * 8);
    EXPECT_EQ(std::filesystem::file_size(dir_ / "00000000000000000000.timeindex"), 8u * 12);
    EXPECT_LT(allocated(first), 8u << 10);
    log->flush();
    end = log->log_end_offset();
    EXPECT_EQ(log->recovery_point(), end);
  }
  expect_index_files_match_logs();
  RecoveryReport report;
  auto log = open(options(), LogCheckpoint{end, 0}, &report);
  EXPECT_EQ(report.batches_scanned, 0);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(log->offset_for_timestamp(1007), 14);  // the first segment's last time entry, from the job
  EXPECT_EQ(log->offset_for_timestamp(1008), 16);
  EXPECT_EQ(log->max_timestamp_batch(), (std::pair<int64_t, int64_t>(1011, 22)));
}

// Reserving ahead of the writes, off the thread: a job asks for the next step once the writes
// come within half a step of the reserve's end, so appends find the blocks already there.
TEST_F(RollOffThreadTest, BlocksAreReservedAheadOffTheThread) {
  auto log = open_queued(segment_bytes(1 << 20));
  append(*log, 1, std::string(1000, 'r'));
  ASSERT_EQ(jobs_.size(), 1u);
  const std::filesystem::path first = dir_ / segment_file_name(0);
  EXPECT_LT(allocated(first), 8u << 10) << "reserved on the spot";
  EXPECT_TRUE(run_jobs());
  EXPECT_GE(allocated(first), 64u << 10);
  // Within the first 32 KiB nothing more is asked for; then the next step is.
  while (log->size_bytes() < (32u << 10)) append(*log, 1, std::string(1000, 'r'));
  EXPECT_TRUE(jobs_.empty());
  while (log->size_bytes() < (48u << 10)) append(*log, 1, std::string(1000, 'r'));
  EXPECT_EQ(jobs_.size(), 1u);
  EXPECT_TRUE(run_jobs());
  EXPECT_GE(allocated(first), 96u << 10);
  EXPECT_EQ(std::filesystem::file_size(first), log->size_bytes()) << "the reserve shows in the file's size";
}

// A reserve asked for before a cut of the segment does not land past its new end.
TEST_F(RollOffThreadTest, AReserveQueuedBeforeACutIsDropped) {
  auto log = open_queued(segment_bytes(1 << 20));
  for (int i = 0; i < 4; ++i) append(*log, 1, std::string(1000, 'c'));
  ASSERT_EQ(jobs_.size(), 1u);
  log->truncate_to(2);
  EXPECT_TRUE(run_jobs());
  EXPECT_LT(allocated(dir_ / segment_file_name(0)), 8u << 10);
  append(*log, 1, std::string(1000, 'c'));  // the segment reserves again
  EXPECT_TRUE(run_jobs());
  EXPECT_GE(allocated(dir_ / segment_file_name(0)), 64u << 10);
}

// A flush taken before a roll and completed before its job ran does not let the recovery point
// pass the rolled segment: a crash then would trust index files the job had not written.
TEST_F(RollOffThreadTest, AFlushDoesNotPassASegmentWhoseJobHasNotRun) {
  auto log = open_queued(options());
  for (int i = 0; i < 8; ++i) append(*log, 2, std::string(90, 'g'), 1000 + i);
  auto flush = log->begin_flush();  // offset 16: the whole first segment
  append(*log, 2, std::string(90, 'g'), 1008);  // rolls
  ASSERT_EQ(log->segment_count(), 2u);
  for (int fd : flush.sync.fds) ASSERT_EQ(::fdatasync(fd), 0);
  log->end_flush(flush);
  EXPECT_EQ(log->recovery_point(), 0);
  EXPECT_TRUE(run_jobs());
  flush = log->begin_flush();
  for (int fd : flush.sync.fds) ASSERT_EQ(::fdatasync(fd), 0);
  log->end_flush(flush);
  EXPECT_EQ(log->recovery_point(), 18);
}

TEST_F(RollOffThreadTest, ATruncationCancelsTheJob) {
  auto log = open_queued(options());
  Model model;
  for (int i = 0; i < 20; ++i) append(*log, model, 2, std::string(90, 'd'), 1000 + i);
  ASSERT_GT(log->segment_count(), 2u);
  // Into the first segment, whose job has not run: it must not write the entries cut off.
  log->truncate_to(4);
  model.truncate_to(4);
  EXPECT_TRUE(run_jobs());
  expect_index_files_match_logs();
  expect_log_matches(*log, model);
  restart(log, options(), /*clean=*/true, &model);
  expect_log_matches(*log, model);
}

// Truncated to the end of a rolled segment, that segment is the active one again: its job must
// not cut off what is appended to it next.
TEST_F(RollOffThreadTest, ATruncationToASegmentsEndCancelsItsJob) {
  auto log = open_queued(options());
  Model model;
  for (int i = 0; i < 9; ++i) append(*log, model, 2, std::string(90, 'h'), 1000 + i);
  ASSERT_EQ(log->segment_count(), 2u);
  log->truncate_to(16);
  model.truncate_to(16);
  ASSERT_EQ(log->segment_count(), 1u);
  append(*log, model, 1, "short", 1100);  // still fits the first segment
  ASSERT_EQ(log->segment_count(), 1u);
  EXPECT_TRUE(run_jobs());
  expect_log_matches(*log, model);
  restart(log, options(), /*clean=*/true, &model);
  expect_log_matches(*log, model);
}

TEST_F(RollOffThreadTest, RetentionCancelsTheJob) {
  auto log = open_queued(options());
  for (int i = 0; i < 12; ++i) append(*log, 2, std::string(90, 'e'), 1000 + i);
  const int64_t second = std::stoll(files(".log")[1].stem().string());
  for (const auto& path : log->advance_log_start(second)) std::filesystem::remove(path);
  EXPECT_TRUE(run_jobs());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "00000000000000000000.index")) << "a job made a removed segment's file";
  EXPECT_FALSE(std::filesystem::exists(dir_ / "00000000000000000000.timeindex"));
  expect_index_files_match_logs();
}

TEST_F(RollOffThreadTest, AFailedJobKeepsTheRecoveryPointBelowTheSegment) {
  const int64_t end = [&] {
    auto log = open_queued(options());
    // The second segment (offsets 16-31)'s index cannot be created: a directory holds its name.
    std::filesystem::create_directory(dir_ / "00000000000000000016.index");
    for (int i = 0; i < 20; ++i) append(*log, 2, std::string(90, 'f'), 1000 + i);
    EXPECT_EQ(log->segment_count(), 3u);
    EXPECT_FALSE(run_jobs());
    log->flush();
    EXPECT_EQ(log->recovery_point(), 16) << "a restart must rebuild the segment whose finishing failed";
    return log->log_end_offset();
  }();
  std::filesystem::remove(dir_ / "00000000000000000016.index");
  RecoveryReport report;
  auto log = open(options(), LogCheckpoint{16, 0}, &report);
  EXPECT_GT(report.batches_scanned, 0);
  EXPECT_EQ(log->log_end_offset(), end);
  EXPECT_EQ(log->offset_for_timestamp(1015), 30);
  expect_index_files_match_logs();
}

// The next segment's file is made ahead of need, off the thread, without a name (O_TMPFILE); the
// roll takes it and creates no file, and the file is named off the thread before any later flush.
TEST_F(RollOffThreadTest, ARollTakesTheSpareFileAndItIsNamedOffTheThread) {
  auto log = open_queued(options());
  Model model;
  // 118-byte entries in 1000-byte segments: a spare is asked for at the fifth.
  for (int i = 0; i < 4; ++i) append(*log, model, 2, std::string(90, 's'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  append(*log, model, 2, std::string(90, 's'), 1004);
  ASSERT_FALSE(jobs_.empty());
  EXPECT_TRUE(run_jobs());  // the spare is made
  const auto files_before = files(".log");
  for (int i = 5; i < 9; ++i) append(*log, model, 2, std::string(90, 's'), 1000 + i);
  ASSERT_EQ(log->segment_count(), 2u);
  EXPECT_EQ(files(".log"), files_before) << "the roll created a file on the log's thread";
  EXPECT_EQ(log->to_sync().errors.size(), 1u);
  expect_log_matches(*log, model);  // readable before it has a name
  EXPECT_TRUE(run_jobs());
  ASSERT_EQ(files(".log").size(), 2u);
  EXPECT_EQ(std::filesystem::file_size(dir_ / segment_file_name(16)), 118u);
  for (const auto& error : log->to_sync().errors) EXPECT_EQ(error->load(), 0);
  append(*log, model, 2, std::string(90, 's'), 1009);
  restart(log, options(), /*clean=*/true, &model);
  expect_log_matches(*log, model);
}

// A spare file that cannot be named (here: the name is taken by a directory) fails every flush
// that covers it: what is appended there would not be found after a restart. Appends are refused
// from then on (none lands in a later segment either) and the naming is tried again with each;
// once it works, the log goes on with nothing lost.
TEST_F(RollOffThreadTest, ASpareThatCannotBeNamedFailsItsFlushesAndRefusesAppendsUntilNamed) {
  auto log = open_queued(options());
  Model model;
  for (int i = 0; i < 5; ++i) append(*log, model, 2, std::string(90, 'n'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  const auto obstacle = dir_ / segment_file_name(16);
  std::filesystem::create_directory(obstacle);
  for (int i = 5; i < 9; ++i) append(*log, model, 2, std::string(90, 'n'), 1000 + i);
  ASSERT_EQ(log->segment_count(), 2u);
  EXPECT_FALSE(run_jobs());
  const auto sync = log->to_sync();
  ASSERT_EQ(sync.errors.size(), 1u);
  EXPECT_EQ(sync.errors[0]->load(), EEXIST);
  EXPECT_THROW(log->flush(), std::system_error);
  for (int round = 0; round < 2; ++round) {
    EXPECT_THROW(append(*log, 2, std::string(90, 'x'), 2000), std::system_error);
    EXPECT_EQ(jobs_.size(), 1u) << "the naming is tried again, once at a time";
    EXPECT_THROW(append(*log, 2, std::string(90, 'x'), 2000), std::system_error);
    EXPECT_EQ(jobs_.size(), 1u);
    EXPECT_FALSE(run_jobs());
  }
  EXPECT_EQ(log->log_end_offset(), 18);
  std::filesystem::remove(obstacle);
  EXPECT_THROW(append(*log, 2, std::string(90, 'x'), 2000), std::system_error);
  EXPECT_TRUE(run_jobs());
  EXPECT_EQ(log->to_sync().errors[0]->load(), 0);
  for (int i = 9; i < 20; ++i) append(*log, model, 2, std::string(90, 'n'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  restart(log, options(), /*clean=*/true, &model);
  expect_log_matches(*log, model);
}

// A segment whose naming failed and which a truncation then removes fails no flush any more.
TEST_F(RollOffThreadTest, ARemovedSegmentWhoseNamingFailedFailsNoFlush) {
  auto log = open_queued(options());
  Model model;
  for (int i = 0; i < 5; ++i) append(*log, model, 2, std::string(90, 'u'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  std::filesystem::create_directory(dir_ / segment_file_name(16));
  for (int i = 5; i < 9; ++i) append(*log, model, 2, std::string(90, 'u'), 1000 + i);
  EXPECT_FALSE(run_jobs());
  for (const auto& path : log->truncate_to(10).removed) std::filesystem::remove(path);
  model.truncate_to(10);
  EXPECT_TRUE(run_jobs());
  EXPECT_NO_THROW(log->flush());
  append(*log, model, 2, std::string(90, 'u'), 1100);
  std::filesystem::remove(dir_ / segment_file_name(16));
  restart(log, options(), /*clean=*/true, &model);
  expect_log_matches(*log, model);
}

// A log closed with a naming not run yet: the file is not named later (a new log at the same
// path must not find it); nothing in it was answered as durable.
TEST_F(RollOffThreadTest, AClosedLogsPendingNamingDoesNotRun) {
  auto log = open_queued(options());
  for (int i = 0; i < 5; ++i) append(*log, 2, std::string(90, 'c'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  for (int i = 5; i < 9; ++i) append(*log, 2, std::string(90, 'c'), 1000 + i);
  ASSERT_EQ(log->segment_count(), 2u);
  log.reset();
  EXPECT_TRUE(run_jobs());
  EXPECT_FALSE(std::filesystem::exists(dir_ / segment_file_name(16)));
}

// No segment follows one whose file is not named yet (were the naming to fail, a restart would
// find a hole): it grows past segment.bytes meanwhile, and rolls once named.
TEST_F(RollOffThreadTest, ASegmentWhoseFileIsNotNamedYetDoesNotRoll) {
  auto log = open_queued(options());
  Model model;
  for (int i = 0; i < 5; ++i) append(*log, model, 2, std::string(90, 'w'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  for (int i = 5; i < 20; ++i) append(*log, model, 2, std::string(90, 'w'), 1000 + i);
  ASSERT_EQ(log->segment_count(), 2u);
  EXPECT_TRUE(run_jobs());  // named
  EXPECT_EQ(std::filesystem::file_size(dir_ / segment_file_name(16)), 12u * 118);
  append(*log, model, 2, std::string(90, 'w'), 1020);
  EXPECT_EQ(log->segment_count(), 3u);
  EXPECT_TRUE(run_jobs());
  restart(log, options(), /*clean=*/true, &model);
  expect_log_matches(*log, model);
}

// A spare that comes after its roll (the roll creates the file itself) serves the next roll.
TEST_F(RollOffThreadTest, ARollThatFoundNoSpareIsFollowedByOneThatTakesIt) {
  auto log = open_queued(options());
  Model model;
  for (int i = 0; i < 9; ++i) append(*log, model, 2, std::string(90, 'l'), 1000 + i);  // asked at the fifth
  ASSERT_EQ(log->segment_count(), 2u);
  EXPECT_TRUE(std::filesystem::exists(dir_ / segment_file_name(16))) << "no spare yet: made on the spot";
  EXPECT_TRUE(run_jobs());  // the spare comes late
  for (int i = 9; i < 17; ++i) append(*log, model, 2, std::string(90, 'l'), 1000 + i);
  ASSERT_EQ(log->segment_count(), 3u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / segment_file_name(32))) << "the next roll took the spare";
  EXPECT_TRUE(run_jobs());
  EXPECT_TRUE(std::filesystem::exists(dir_ / segment_file_name(32)));
  restart(log, options(), /*clean=*/true, &model);
  expect_log_matches(*log, model);
}

// Where a roll cannot wait for the active segment's name (offsets past 2^31 of its base), the
// append is refused with a retriable error until the name is there.
TEST_F(RollOffThreadTest, AnAppendThatCannotWaitForTheNameIsRefused) {
  auto log = open_queued(options());
  Model model;
  for (int i = 0; i < 5; ++i) append(*log, model, 2, std::string(90, 'a'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  for (int i = 5; i < 9; ++i) append(*log, model, 2, std::string(90, 'a'), 1000 + i);
  ASSERT_EQ(log->segment_count(), 2u);
  const int64_t far = 16 + (int64_t{1} << 31) + 10;
  try {
    append_at(*log, far, 1, "far");
    ADD_FAILURE() << "appended past 2^31 offsets into a segment not named yet";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EAGAIN);
  }
  EXPECT_TRUE(run_jobs());
  append_at(*log, model, far, 1, "far");
  EXPECT_EQ(log->segment_count(), 3u);
  EXPECT_TRUE(run_jobs());
  restart(log, options(), /*clean=*/true, &model);
  expect_log_matches(*log, model);
}

// A failed naming is tried again by the next checkpoint too (a quiet partition gets no append).
TEST_F(RollOffThreadTest, ACheckpointTriesAFailedNamingAgain) {
  auto log = open_queued(options());
  for (int i = 0; i < 5; ++i) append(*log, 2, std::string(90, 'q'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  const auto obstacle = dir_ / segment_file_name(16);
  std::filesystem::create_directory(obstacle);
  for (int i = 5; i < 9; ++i) append(*log, 2, std::string(90, 'q'), 1000 + i);
  EXPECT_FALSE(run_jobs());
  std::filesystem::remove(obstacle);
  auto flush = log->begin_flush();
  EXPECT_EQ(jobs_.size(), 1u);
  (void)log->begin_flush();
  EXPECT_EQ(jobs_.size(), 1u) << "one attempt at a time";
  EXPECT_TRUE(run_jobs());
  EXPECT_TRUE(std::filesystem::is_regular_file(obstacle));
  for (const auto& error : flush.sync.errors) EXPECT_EQ(error->load(), 0);
}

// A segment removed before its file was named leaves no file behind under its name.
TEST_F(RollOffThreadTest, ASegmentRemovedBeforeItsFileIsNamedLeavesNoFile) {
  auto log = open_queued(options());
  for (int i = 0; i < 5; ++i) append(*log, 2, std::string(90, 'r'), 1000 + i);
  EXPECT_TRUE(run_jobs());
  for (int i = 5; i < 9; ++i) append(*log, 2, std::string(90, 'r'), 1000 + i);
  ASSERT_EQ(log->segment_count(), 2u);
  for (const auto& path : log->truncate_fully_and_start_at(100)) std::filesystem::remove(path);
  EXPECT_TRUE(run_jobs());
  EXPECT_FALSE(std::filesystem::exists(dir_ / segment_file_name(16))) << "a removed segment's file was named";
  EXPECT_EQ(files(".log"), std::vector<std::filesystem::path>{dir_ / segment_file_name(100)});
}

// An index file without its segment (a crash before a roll's file was named) goes at the next
// start: a later segment at that offset with no entries writes no index that would replace it.
TEST_F(PartitionLogTest, AnIndexWithoutItsSegmentIsRemovedAtStart) {
  {
    auto log = open(segment_bytes(1000));
    append(*log, 2, std::string(90, 'o'));
    log->flush();
  }
  const auto orphan = dir_ / "00000000000000000016.index";
  const auto orphan_time = dir_ / "00000000000000000016.timeindex";
  { std::ofstream(orphan) << std::string(16, 'x'); }
  { std::ofstream(orphan_time) << std::string(24, 'x'); }
  auto log = open(segment_bytes(1000), LogCheckpoint{2, 0});
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_FALSE(std::filesystem::exists(orphan_time));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "00000000000000000000.index"));
}

TEST_F(PartitionLogTest, RollsByAge) {
  LogOptions options = test_options();
  options.segment_ms = 0;  // every batch finds the active segment too old
  auto log = open(options);
  for (int i = 0; i < 4; ++i) append(*log, 1, "aged");
  EXPECT_EQ(log->segment_count(), 4u);
}

TEST_F(PartitionLogTest, RetentionBySizeDeletesWholeOldSegments) {
  auto log = open(segment_bytes(300));
  for (int i = 0; i < 20; ++i) append(*log, 1, std::string(100, 'r'));
  const size_t before = log->segment_count();
  const uint64_t size = log->size_bytes();
  auto removed = log->enforce_retention(now_ms(), -1, static_cast<int64_t>(size / 2));
  EXPECT_FALSE(removed.empty());
  EXPECT_LT(log->segment_count(), before);
  EXPECT_GE(log->size_bytes(), size / 2);
  EXPECT_GT(log->log_start_offset(), 0);
  EXPECT_EQ(log->log_end_offset(), 20);
  EXPECT_TRUE(log->read(0, 1 << 20, true).empty());  // below the log start
  EXPECT_EQ(get_be(log->read(log->log_start_offset(), 1, true), 0, 8), static_cast<uint64_t>(log->log_start_offset()));
  for (const auto& path : removed) EXPECT_EQ(path.extension(), ".deleted");
}

TEST_F(PartitionLogTest, RetentionByTimeCanEmptyTheLog) {
  auto log = open(segment_bytes(300));
  const int64_t old = now_ms() - 3'600'000;
  for (int i = 0; i < 6; ++i) append(*log, 1, std::string(100, 't'), old);
  EXPECT_TRUE(log->enforce_retention(now_ms(), 7'200'000, -1).empty());  // not old enough yet
  EXPECT_FALSE(log->enforce_retention(now_ms(), 60'000, -1).empty());
  EXPECT_EQ(log->log_start_offset(), 6);
  EXPECT_EQ(log->log_end_offset(), 6);
  EXPECT_EQ(append(*log, 1, "fresh"), 6);
  // Reopened, the deleted files stay gone and the offsets stay where they were.
  log.reset();
  log = open(segment_bytes(300), LogCheckpoint{0, 6});
  EXPECT_EQ(log->log_start_offset(), 6);
  EXPECT_EQ(log->log_end_offset(), 7);
}

TEST_F(PartitionLogTest, AdvancingTheLogStartDropsSegmentsBelowIt) {
  auto log = open(segment_bytes(300));
  for (int i = 0; i < 20; ++i) append(*log, 1, std::string(100, 'x'));
  const size_t before = log->segment_count();
  log->advance_log_start(11);
  EXPECT_EQ(log->log_start_offset(), 11);
  EXPECT_LT(log->segment_count(), before);
  EXPECT_TRUE(log->read(10, 1 << 20, true).empty());
  EXPECT_EQ(get_be(log->read(11, 1, true), 0, 8), 11u);
  log->advance_log_start(5);  // never backwards
  EXPECT_EQ(log->log_start_offset(), 11);
  log->advance_log_start(20);  // up to the end: the active segment stays
  EXPECT_EQ(log->log_start_offset(), 20);
  EXPECT_EQ(append(*log, 1, "y"), 20);
}

// ---- Follower primitives: append_at, truncate_to, truncate_fully_and_start_at ----

LogOptions follower_options() {
  LogOptions o = segment_bytes(500);
  o.index_interval_bytes = 100;  // several index entries per segment
  return o;
}

TEST_F(PartitionLogTest, AppendAtKeepsTheLeadersOffsets) {
  auto log = open(follower_options());
  Model model;
  for (int i = 0; i < 20; ++i) append_at(*log, model, model.log_end, 1 + i % 3, std::string(60, 'a' + i % 26), 1000 + i);
  EXPECT_GT(log->segment_count(), 3u);
  expect_log_matches(*log, model);
  // Each segment is named after its first batch, as with append().
  for (const auto& path : files(".log")) EXPECT_EQ(get_be(slurp(path), 0, 8), std::stoull(path.stem().string()));
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
  append(*log, model, 2, "led");  // append() carries on from there
  append_at(*log, model, model.log_end, 1, "followed");
  expect_log_matches(*log, model);
}

TEST_F(PartitionLogTest, AppendAtRefusesAnOffsetBelowTheLogEndAndWritesNothing) {
  auto log = open();
  Model model;
  append(*log, model, 3, "abc");
  append(*log, model, 2, "de");
  const uint64_t size = log->size_bytes();
  for (int64_t base : {0, 3, 4}) {
    std::string e = make_entry_at(base, 1, "stale");
    EXPECT_THROW(log->append_at(e, BatchSummary{0, 1000}), std::invalid_argument) << base;
  }
  std::string short_entry(8, '\0');
  EXPECT_THROW(log->append_at(short_entry, BatchSummary{0, 1000}), std::invalid_argument);
  EXPECT_EQ(log->size_bytes(), size);
  EXPECT_EQ(std::filesystem::file_size(dir_ / segment_file_name(0)), size);
  expect_log_matches(*log, model);
  append_at(*log, model, 5, 1, "next");
  restart(log, test_options(), false, &model);
  expect_log_matches(*log, model);
}

// A follower whose leader's log starts later (or was compacted) starts an empty log there.
TEST_F(PartitionLogTest, AppendAtAboveTheEndOfAnEmptyLogStartsTheLogThere) {
  auto log = open(follower_options());
  Model model;
  append_at(*log, model, 1000, 2, "first");
  EXPECT_EQ(log->log_start_offset(), 1000);
  EXPECT_EQ(log->recovery_point(), 1000);
  EXPECT_EQ(files(".log"), std::vector<std::filesystem::path>{dir_ / segment_file_name(1000)});  // the empty one went
  EXPECT_TRUE(log->read(0, 1 << 20, true).empty());
  for (int i = 0; i < 10; ++i) append_at(*log, model, model.log_end, 2, std::string(80, 'f'), 2000 + i);
  expect_log_matches(*log, model);
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
  // Without a checkpoint (a lost one), the log still starts where its first segment does.
  log.reset();
  RecoveryReport report;
  log = open(follower_options(), {}, &report);
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  expect_log_matches(*log, model);

  // Also once retention emptied a log: its empty segment is replaced.
  log->enforce_retention(now_ms(), 0, -1);
  EXPECT_EQ(log->log_start_offset(), model.log_end);
  Model emptied;
  emptied.log_start = emptied.log_end = model.log_end;
  append_at(*log, emptied, model.log_end + 500, 1, "later");
  EXPECT_EQ(log->segment_count(), 1u);
  expect_log_matches(*log, emptied);
  restart(log, follower_options(), false, &emptied);
  expect_log_matches(*log, emptied);
}

// Offsets may skip in a log that has batches (compaction on the leader): reads at a skipped
// offset return the next batch, and recovery takes the gap for what it is.
TEST_F(PartitionLogTest, AppendAtAboveTheEndOfALogLeavesAGapThatReadsAndRecoverySkip) {
  auto log = open(follower_options());
  Model model;
  for (int i = 0; i < 5; ++i) append(*log, model, 2, std::string(40, 'x'), 1000 + i);
  append_at(*log, model, 50, 3, std::string(40, 'y'), 2000);
  append_at(*log, model, 53, 1, std::string(40, 'z'), 1500);
  append_at(*log, model, 100, 2, std::string(300, 'w'), 3000);  // rolls: its segment starts at 100
  append_at(*log, model, 170, 2, std::string(40, 'v'), 3100);
  EXPECT_EQ(log->log_end_offset(), 172);
  EXPECT_EQ(files(".log").back(), dir_ / segment_file_name(100));
  EXPECT_EQ(get_be(log->read(10, 1, true), 0, 8), 50u);
  EXPECT_EQ(get_be(log->read(60, 1, true), 0, 8), 100u);
  EXPECT_EQ(get_be(log->read(120, 1, true), 0, 8), 170u);
  EXPECT_EQ(log->offset_for_timestamp(2500), 100);
  expect_log_matches(*log, model);
  restart(log, follower_options(), false, &model);  // every batch scanned and verified
  expect_log_matches(*log, model);
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
  RecoveryReport full;
  log.reset();
  log = open(follower_options(), LogCheckpoint{0, 0}, &full);
  EXPECT_TRUE(full.problems.empty()) << full.problems.front();
  EXPECT_EQ(full.batches_scanned, 9);
  expect_log_matches(*log, model);
}

TEST_F(PartitionLogTest, AppendAtRollsBySizeAndAgeAsAppendDoes) {
  LogOptions options = follower_options();
  auto log = open(options);
  Model model;
  const size_t entry = make_entry(1, std::string(100, 'r')).size();
  for (int i = 0; i < 8; ++i) append_at(*log, model, model.log_end + (i % 2) * 10, 1, std::string(100, 'r'));
  EXPECT_EQ(log->segment_count(), (8 + options.segment_bytes / entry - 1) / (options.segment_bytes / entry));
  options.segment_ms = 0;  // every batch finds the active segment too old
  log->set_options(options);
  const size_t before = log->segment_count();
  for (int i = 0; i < 3; ++i) append_at(*log, model, model.log_end + 5, 1, "aged");
  EXPECT_EQ(log->segment_count(), before + 3);
  expect_log_matches(*log, model);
  restart(log, options, false, &model);
  expect_log_matches(*log, model);
}

// The index files hold offsets relative to the segment's base in 32 bits: a batch past that
// range starts a segment of its own (Kafka rolls there too).
TEST_F(PartitionLogTest, AppendAtRollsWhenOffsetsWouldOutgrowTheSegment) {
  auto log = open(follower_options());
  Model model;
  append(*log, model, 2, "low");
  append_at(*log, model, int64_t{INT32_MAX} - 2, 2, "still fits");  // last offset INT32_MAX - 1
  EXPECT_EQ(log->segment_count(), 1u);
  append_at(*log, model, int64_t{INT32_MAX}, 3, "does not");
  EXPECT_EQ(log->segment_count(), 2u);
  append_at(*log, model, int64_t{5} << 32, 1, "far beyond");
  EXPECT_EQ(log->segment_count(), 3u);
  EXPECT_EQ(files(".log").back(), dir_ / segment_file_name(int64_t{5} << 32));
  expect_log_matches(*log, model);
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
}

// A log of 30 batches of 2 records over several segments, for the truncation tests.
Model fill(PartitionLog& log, int records = 2) {
  Model model;
  for (int i = 0; i < 30; ++i) {
    std::string payload(60, static_cast<char>('a' + i % 26));
    std::string e = make_entry(records, payload, 1000 + i);
    model.add(log.append(e, BatchSummary{records - 1, 1000 + i}), records, payload, 1000 + i);
  }
  return model;
}

TEST_F(PartitionLogTest, TruncateToABatchBoundaryCutsTheSegmentAndDropsLaterOnes) {
  auto log = open(follower_options());
  Model model = fill(*log);
  log->flush();
  const auto segments = files(".log");
  ASSERT_GE(segments.size(), 5u);
  // A batch boundary inside the second segment, not its first batch.
  const int64_t second = std::stoll(segments[1].stem().string());
  const int64_t cut = second + 4;
  const auto result = log->truncate_to(cut);
  model.truncate_to(cut);
  EXPECT_EQ(result.log_end_offset, cut);
  EXPECT_EQ(log->recovery_point(), cut);
  EXPECT_EQ(log->segment_count(), 2u);
  EXPECT_EQ(files(".log"), (std::vector<std::filesystem::path>{segments[0], segments[1]}));
  EXPECT_EQ(result.removed.size(), 3 * (segments.size() - 2));  // .log, .index, .timeindex each
  for (const auto& path : result.removed) {
    EXPECT_EQ(path.extension(), ".deleted");
    EXPECT_TRUE(std::filesystem::exists(path)) << path;
  }
  expect_log_matches(*log, model);
  expect_index_files_match_logs();
  EXPECT_EQ(log->max_timestamp_batch(), (std::pair<int64_t, int64_t>(model.batches.back().timestamp, cut - 2)));
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  // The follower appends the leader's batches from the cut on.
  for (int i = 0; i < 6; ++i) append_at(*log, model, model.log_end, 2, std::string(60, 'N'), 5000 + i);
  expect_log_matches(*log, model);
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
}

// Kafka removes every entry at or past the offset: a batch straddling it goes whole.
TEST_F(PartitionLogTest, TruncateToInsideABatchRemovesTheWholeBatch) {
  auto log = open(follower_options());
  Model model = fill(*log, 5);
  EXPECT_EQ(log->truncate_to(42).log_end_offset, 40);  // batch [40, 44] goes
  model.truncate_to(42);
  EXPECT_EQ(model.log_end, 40);
  expect_log_matches(*log, model);
  EXPECT_EQ(append(*log, 1, "after"), 40);
  model.add(40, 1, "after", 1000);
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  // Inside a segment's first batch: that segment goes whole.
  const int64_t last_base = std::stoll(files(".log").back().stem().string());
  const size_t count = log->segment_count();
  EXPECT_EQ(log->truncate_to(last_base + 3).log_end_offset, last_base);
  model.truncate_to(last_base + 3);
  EXPECT_EQ(log->segment_count(), count - 1);
  expect_log_matches(*log, model);
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
}

// At a segment's base, the segment goes and the one before it becomes the active one again:
// appends continue in it until it is full.
TEST_F(PartitionLogTest, TruncateToASegmentBaseMakesThePreviousSegmentActiveAgain) {
  auto log = open(follower_options());
  Model model = fill(*log);
  const auto segments = files(".log");
  const int64_t third = std::stoll(segments[2].stem().string());
  const uint64_t second_size = std::filesystem::file_size(segments[1]);
  EXPECT_EQ(log->truncate_to(third).log_end_offset, third);
  model.truncate_to(third);
  EXPECT_EQ(log->segment_count(), 2u);
  expect_log_matches(*log, model);
  append_at(*log, model, third, 1, "x");
  EXPECT_EQ(log->segment_count(), 2u);  // the second segment had room
  EXPECT_GT(std::filesystem::file_size(segments[1]), second_size);
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  while (log->segment_count() < 4) append_at(*log, model, model.log_end, 2, std::string(60, 'm'));
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
}

TEST_F(PartitionLogTest, TruncateToTheLogStartKeepsOneEmptySegment) {
  auto log = open(follower_options());
  Model model = fill(*log);
  const size_t before = all_files();
  const auto result = log->truncate_to(0);
  model.truncate_to(0);
  EXPECT_EQ(result.log_end_offset, 0);
  EXPECT_EQ(result.removed.size(), before);  // (the active segment's index files are not written yet)
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(log->size_bytes(), 0u);
  EXPECT_EQ(files(".log"), std::vector<std::filesystem::path>{dir_ / segment_file_name(0)});
  EXPECT_FALSE(log->max_timestamp_batch().has_value());
  expect_log_matches(*log, model);
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  append(*log, model, 2, "again");
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
}

// The log start may sit inside a batch (DeleteRecords); truncating there removes that batch,
// and the log start comes down to the new end with it.
TEST_F(PartitionLogTest, TruncateToTheLogStartInsideABatchLowersTheLogStart) {
  auto log = open(follower_options());
  fill(*log);
  const int64_t second = std::stoll(files(".log")[1].stem().string());
  log->advance_log_start(second + 5);  // inside batch [second + 4, second + 5]
  EXPECT_THROW(log->truncate_to(second + 4), std::invalid_argument);
  EXPECT_EQ(log->truncate_to(second + 5).log_end_offset, second + 4);
  EXPECT_EQ(log->log_start_offset(), second + 4);
  EXPECT_EQ(log->log_end_offset(), second + 4);
  EXPECT_TRUE(log->read(second + 4, 1 << 20, true).empty());
  EXPECT_EQ(append(*log, 1, "next"), second + 4);
  restart(log, follower_options(), false);
  EXPECT_EQ(log->log_start_offset(), second + 4);
  EXPECT_EQ(log->log_end_offset(), second + 5);
  EXPECT_EQ(get_be(log->read(second + 4, 1 << 20, true), 0, 8), static_cast<uint64_t>(second + 4));
}

TEST_F(PartitionLogTest, TruncateToRefusesOffsetsBelowTheLogStartAndIgnoresThoseAtTheEnd) {
  auto log = open(follower_options());
  Model model = fill(*log);
  log->advance_log_start(11);
  model.log_start = 11;
  EXPECT_THROW(log->truncate_to(10), std::invalid_argument);
  const size_t count = log->segment_count();
  for (int64_t at_or_past_end : {model.log_end, model.log_end + 1, int64_t{1} << 40}) {
    const auto result = log->truncate_to(at_or_past_end);
    EXPECT_EQ(result.log_end_offset, model.log_end);
    EXPECT_TRUE(result.removed.empty());
  }
  EXPECT_EQ(log->segment_count(), count);
  expect_log_matches(*log, model);
}

// The largest timestamp can go with the cut: the segment's is recomputed, and the time index
// (in memory and on disk) keeps only entries for batches that stay.
TEST_F(PartitionLogTest, TruncateToRecomputesTheLargestTimestamp) {
  LogOptions options = test_options();
  options.index_interval_bytes = 100;
  auto log = open(options);
  Model model;
  const int64_t timestamps[] = {5000, 1000, 7000, 2000, 3000, 9000, 4000, 8000, 6000, 9500};
  for (int64_t ts : timestamps) append(*log, model, 1, std::string(90, 't'), ts);
  log->flush();  // time index entries on disk up to the last batch
  EXPECT_EQ(log->max_timestamp_batch(), (std::pair<int64_t, int64_t>(9500, 9)));
  log->truncate_to(5);
  model.truncate_to(5);
  EXPECT_EQ(log->max_timestamp_batch(), (std::pair<int64_t, int64_t>(7000, 2)));
  EXPECT_FALSE(log->offset_for_timestamp(7001).has_value());
  EXPECT_EQ(log->offset_for_timestamp(6000), 2);
  expect_log_matches(*log, model);
  expect_index_files_match_logs();
  restart(log, options, true, &model);
  EXPECT_EQ(log->max_timestamp_batch(), (std::pair<int64_t, int64_t>(7000, 2)));
  expect_log_matches(*log, model);
  append(*log, model, 1, "newer", 6500);
  EXPECT_EQ(log->max_timestamp_batch(), (std::pair<int64_t, int64_t>(7000, 2)));
  restart(log, options, false, &model);
  expect_log_matches(*log, model);
}

// Cutting the active segment frees the blocks reserved past its end with the rest (so
// allocated_to drops to the cut), and the next appends reserve again.
TEST_F(PartitionLogTest, TruncateToGivesTheReserveBackAndAppendsReserveAgain) {
  auto allocated = [](const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  };
  auto whole_blocks = [](uint64_t n) { return (n + 4095) / 4096 * 4096; };
  const std::filesystem::path first = dir_ / segment_file_name(0);
  auto log = open(segment_bytes(1 << 20));
  Model model;
  for (int i = 0; i < 20; ++i) append(*log, model, 1, std::string(1000, 'p'));
  EXPECT_GE(allocated(first), whole_blocks(log->size_bytes()) + (32 << 10));
  log->truncate_to(10);
  model.truncate_to(10);
  EXPECT_EQ(std::filesystem::file_size(first), log->size_bytes());
  EXPECT_LT(allocated(first), whole_blocks(log->size_bytes()) + (32 << 10));
  for (int i = 0; i < 5; ++i) append(*log, model, 1, std::string(1000, 'q'));
  EXPECT_GE(allocated(first), whole_blocks(log->size_bytes()) + (32 << 10));
  EXPECT_EQ(std::filesystem::file_size(first), log->size_bytes());
  expect_log_matches(*log, model);
  restart(log, segment_bytes(1 << 20), false, &model);
  expect_log_matches(*log, model);
}

// A fetch may still be sending from slices of what truncation removes: its files stay open,
// and reading them returns what is left (the bytes of a renamed segment, or less), never a crash.
TEST_F(PartitionLogTest, TruncationLeavesOpenSlicesReadable) {
  auto log = open(follower_options());
  Model model = fill(*log);
  const auto slices = log->locate(0, 1 << 30, true);
  ASSERT_GE(slices.size(), 3u);
  const int64_t second = std::stoll(files(".log")[1].stem().string());
  log->truncate_to(second + 4);  // cuts slices[1], removes slices[2] ...
  auto read_slice = [](const PartitionLog::FileSlice& slice) {
    std::string buffer(slice.length, '\0');
    const ssize_t got = ::pread(slice.fd, buffer.data(), buffer.size(), static_cast<off_t>(slice.position));
    return got < 0 ? -1 : got;
  };
  EXPECT_EQ(read_slice(slices[0]), slices[0].length);
  EXPECT_LT(read_slice(slices[1]), slices[1].length);
  EXPECT_EQ(read_slice(slices[2]), slices[2].length);  // renamed, still open
  log->truncate_fully_and_start_at(1000);
  for (const auto& slice : slices) EXPECT_GE(read_slice(slice), 0);
}

// A consumer's read stops at the high watermark: locate() with an end offset returns the whole
// batches below it, across segments, and nothing from it on (also where it is a segment's start).
TEST_F(PartitionLogTest, LocateStopsAtTheEndOffset) {
  auto log = open(follower_options());
  Model model;
  for (int i = 0; i < 30; ++i) append(*log, model, 1 + i % 3, std::string(60, 'a' + i % 26));
  ASSERT_GT(log->segment_count(), 3u);
  auto read_until = [&](int64_t from, int64_t end) {
    std::string out;
    for (const auto& slice : log->locate(from, 1 << 30, true, end)) {
      std::string part(slice.length, '\0');
      EXPECT_EQ(::pread(slice.fd, part.data(), part.size(), static_cast<off_t>(slice.position)),
                static_cast<ssize_t>(part.size()));
      out += part;
    }
    return out;
  };
  for (const auto& end_batch : model.batches) {  // some of them start a segment
    const int64_t end = end_batch.base;  // a batch boundary, as a high watermark is
    std::string expected;
    for (const auto& b : model.batches)
      if (b.base < end && b.last() >= 2) expected += b.bytes;
    EXPECT_EQ(read_until(2, end), expected) << "end " << end;
  }
  EXPECT_TRUE(read_until(5, 5).empty());
  EXPECT_EQ(read_until(0, INT64_MAX), log->read(0, 1 << 30, true));
  EXPECT_EQ(read_until(0, model.log_end), log->read(0, 1 << 30, true));
}

// locate() says where the located batches end, in offsets: what a fetch answer spans (the
// records-out counters). Every budget from nothing to everything, from every batch start.
TEST_F(PartitionLogTest, LocateReportsTheOffsetPastTheLastBatch) {
  auto log = open(follower_options());
  Model model;
  for (int i = 0; i < 30; ++i) append(*log, model, 1 + i % 3, std::string(60, 'a' + i % 26));
  ASSERT_GT(log->segment_count(), 3u);
  for (const auto& from : model.batches) {
    // Budgets inside batches, and ending exactly where a batch ends (the case a walk must look
    // one byte past), over several segments.
    std::vector<size_t> budgets{0, 1, 100, 250, 700, size_t{1} << 30};
    size_t cumulative = 0;
    for (const auto& b : model.batches)
      if (b.base >= from.base) budgets.push_back(cumulative += b.bytes.size());
    for (size_t budget : budgets) {
      int64_t next = -1;
      size_t bytes = 0;
      for (const auto& slice : log->locate(from.base, budget, true, INT64_MAX, &next)) bytes += slice.length;
      // The model's batches from `from` whose bytes the slices cover, whole.
      int64_t expected = from.base;
      size_t covered = 0;
      for (const auto& b : model.batches) {
        if (b.base < from.base || covered >= bytes) continue;
        covered += b.bytes.size();
        expected = b.last() + 1;
      }
      EXPECT_EQ(covered, bytes) << "from " << from.base << " budget " << budget;
      EXPECT_EQ(next, expected) << "from " << from.base << " budget " << budget;
    }
  }
  int64_t next = -1;
  log->locate(3, 1 << 30, true, 7, &next);  // the end asked for (a batch boundary, as a high watermark is)
  EXPECT_EQ(next, 7);
  log->locate(model.log_end, 1 << 30, true, INT64_MAX, &next);  // nothing to read
  EXPECT_EQ(next, model.log_end);
}

TEST_F(PartitionLogTest, TruncateFullyAndStartAtDropsEverySegment) {
  auto log = open(follower_options());
  fill(*log);
  const size_t before = all_files();
  const auto removed = log->truncate_fully_and_start_at(500);
  EXPECT_EQ(removed.size(), before);
  for (const auto& path : removed) EXPECT_EQ(path.extension(), ".deleted");
  EXPECT_EQ(files(".log"), std::vector<std::filesystem::path>{dir_ / segment_file_name(500)});
  Model model;
  model.log_start = model.log_end = 500;
  EXPECT_EQ(log->recovery_point(), 500);
  expect_log_matches(*log, model);
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  append(*log, model, 3, "from 500");
  append_at(*log, model, 520, 1, "skips");
  expect_log_matches(*log, model);
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);

  // Again at the offset its only segment already has (the new file takes the old one's name),
  // and below the log start.
  log->truncate_fully_and_start_at(500);
  model = Model{};
  model.log_start = model.log_end = 500;
  expect_log_matches(*log, model);
  EXPECT_EQ(std::filesystem::file_size(dir_ / segment_file_name(500)), 0u);
  log->truncate_fully_and_start_at(7);
  model.log_start = model.log_end = 7;
  append(*log, model, 1, "low");
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
  EXPECT_THROW(log->truncate_fully_and_start_at(-1), std::invalid_argument);
}

// A log whose first segment starts above 0 (a follower started at the leader's log start)
// recovers as any other, with or without its checkpoint, and even with no segment left.
TEST_F(PartitionLogTest, RecoversALogThatStartsAboveZero) {
  auto log = open(follower_options());
  append(*log, 3, "old");
  log->truncate_fully_and_start_at(1000);
  Model model;
  model.log_start = model.log_end = 1000;
  for (int i = 0; i < 25; ++i) append_at(*log, model, model.log_end + (i == 12 ? 7 : 0), 2, std::string(60, 's'), 1000 + i);
  ASSERT_GT(log->segment_count(), 3u);
  EXPECT_EQ(files(".log").front(), dir_ / segment_file_name(1000));
  restart(log, follower_options(), false, &model);
  expect_log_matches(*log, model);
  restart(log, follower_options(), true, &model);
  expect_log_matches(*log, model);
  // A lost checkpoint: everything scanned, the log start taken from the first segment.
  log.reset();
  RecoveryReport report;
  log = open(follower_options(), {}, &report);
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  EXPECT_EQ(report.batches_scanned, 25);
  expect_log_matches(*log, model);
  // A crash between removing the segments and creating the new one: the checkpoint says where.
  log.reset();
  for (const auto& path : files(".log")) std::filesystem::remove(path);
  log = open(follower_options(), LogCheckpoint{1000, 1000});
  EXPECT_EQ(log->log_start_offset(), 1000);
  EXPECT_EQ(log->log_end_offset(), 1000);
  EXPECT_EQ(append(*log, 1, "x"), 1000);
}

// A follower's life at random against the model: leader appends, follower appends (some skipping
// offsets), truncations, fresh starts and restarts.
TEST_F(PartitionLogTest, RandomFollowerHistoriesMatchTheModel) {
  LogOptions options = segment_bytes(700);
  options.index_interval_bytes = 120;
  auto log = open(options);
  Model model;
  std::mt19937 rng(2027);
  auto pick = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng() % static_cast<uint32_t>(hi - lo + 1)); };
  for (int step = 0; step < 400; ++step) {
    const int op = static_cast<int>(rng() % 100);
    const int32_t records = static_cast<int32_t>(pick(1, 4));
    const std::string payload(static_cast<size_t>(pick(10, 160)), static_cast<char>('a' + step % 26));
    const int64_t ts = pick(1000, 9000);
    SCOPED_TRACE("step " + std::to_string(step) + " op " + std::to_string(op));
    if (op < 30) {
      append(*log, model, records, payload, ts);
    } else if (op < 62) {
      const int64_t gap = rng() % 3 == 0 ? pick(1, 40) : 0;
      append_at(*log, model, model.log_end + gap, records, payload, ts);
    } else if (op < 65) {
      if (model.log_end > 0) {
        std::string e = make_entry_at(pick(0, model.log_end - 1), 1, "stale");
        EXPECT_THROW(log->append_at(e, BatchSummary{0, ts}), std::invalid_argument);
      }
    } else if (op < 82) {
      // Mostly near the end, as a follower's divergence is, so the log grows over many segments.
      const int64_t from = rng() % 5 == 0 ? model.log_start : std::max(model.log_start, model.log_end - 15);
      const int64_t to = pick(from, model.log_end + 2);
      model.truncate_to(to);
      EXPECT_EQ(log->truncate_to(to).log_end_offset, model.log_end);
    } else if (op < 83) {
      const int64_t at = pick(0, model.log_end + 30);
      log->truncate_fully_and_start_at(at);
      model = Model{};
      model.log_start = model.log_end = at;
    } else if (op < 92) {
      restart(log, options, rng() % 2 == 0, &model);
    } else if (op < 96) {
      auto pending = log->begin_flush();
      for (int fd : pending.sync.fds) ASSERT_EQ(::fdatasync(fd), 0);
      log->end_flush(pending);
    } else {
      log->flush();
    }
    expect_log_matches(*log, model);
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace sluice::storage
