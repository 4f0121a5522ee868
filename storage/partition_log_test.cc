#include "storage/partition_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <chrono>
#include <random>

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
    for (int i = 0; i < 30; ++i) append(*log, 1, std::string(90, 'u'));
    rolled_at = log->recovery_point();  // rolled segments are synced and indexed
    EXPECT_GT(rolled_at, 0);
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
    EXPECT_EQ(pending.fds.size(), 3u);  // log, .index, .timeindex
    for (int fd : pending.fds) ASSERT_EQ(::fdatasync(fd), 0);
    for (int i = 0; i < 5; ++i) append(*log, 1, std::string(90, 'g'));  // written after the flush began
    log->end_flush(pending.offset);
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

}  // namespace
}  // namespace sluice::storage
