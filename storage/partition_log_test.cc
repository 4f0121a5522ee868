#include "storage/partition_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::storage {
namespace {

// Test entries: [base offset 8][length 4][last offset delta 4][checksum 4][payload].
// The checksum lets recovery tell a torn or corrupted entry from a valid one,
// as the broker's CRC-32C inspector does for real record batches.
uint32_t checksum(std::string_view s) {
  uint32_t c = 2166136261u;
  for (unsigned char ch : s) c = (c ^ ch) * 16777619u;
  return c;
}

void put32(std::string& s, size_t at, uint32_t v) {
  for (int i = 3; i >= 0; --i) s[at + 3 - i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
uint32_t get32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

std::string make_entry(int32_t records, const std::string& payload) {
  std::string e(20, '\0');
  e += payload;
  put32(e, 8, static_cast<uint32_t>(e.size() - 12));
  put32(e, 12, static_cast<uint32_t>(records - 1));
  put32(e, 16, checksum(payload));
  return e;
}

std::optional<BatchSummary> inspect(std::string_view entry) {
  if (entry.size() < 20) return std::nullopt;
  if (get32(entry, 16) != checksum(entry.substr(20))) return std::nullopt;
  return BatchSummary{static_cast<int32_t>(get32(entry, 12)), 1000};
}

class PartitionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-log-test-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  int64_t append(PartitionLog& log, int32_t records, const std::string& payload) {
    std::string e = make_entry(records, payload);
    return log.append(e, BatchSummary{records - 1, 1000});
  }
  std::filesystem::path dir_;
};

TEST_F(PartitionLogTest, AssignsContiguousOffsetsAndReadsWholeBatches) {
  auto log = PartitionLog::open(dir_, {}, inspect);
  EXPECT_EQ(log->log_end_offset(), 0);
  EXPECT_EQ(append(*log, 3, "abc"), 0);
  EXPECT_EQ(append(*log, 2, "de"), 3);
  EXPECT_EQ(log->log_end_offset(), 5);
  // An offset inside the first batch returns that whole batch, then the next.
  std::string data = log->read(1, 1 << 20, true);
  ASSERT_EQ(data.size(), make_entry(3, "abc").size() + make_entry(2, "de").size());
  EXPECT_EQ(get32(data, 4), 0u);  // low half of base offset 0
  EXPECT_TRUE(log->read(5, 1 << 20, true).empty());
}

TEST_F(PartitionLogTest, ByteLimitStopsAtBatchBoundaryButReturnsAtLeastOne) {
  auto log = PartitionLog::open(dir_, {}, inspect);
  append(*log, 1, std::string(100, 'x'));
  append(*log, 1, std::string(100, 'y'));
  size_t one = make_entry(1, std::string(100, 'x')).size();
  EXPECT_EQ(log->read(0, 10, true).size(), one);
  EXPECT_TRUE(log->read(0, 10, false).empty());
  EXPECT_EQ(log->read(0, one + 10, false).size(), one);
}

TEST_F(PartitionLogTest, SurvivesReopen) {
  {
    auto log = PartitionLog::open(dir_, {}, inspect);
    append(*log, 4, "hello");
    append(*log, 1, "world");
  }
  RecoveryReport report;
  auto log = PartitionLog::open(dir_, {}, inspect, &report);
  EXPECT_EQ(report.batches, 2);
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_EQ(log->log_end_offset(), 5);
  EXPECT_EQ(append(*log, 1, "again"), 5);
}

TEST_F(PartitionLogTest, CutsATornTail) {
  std::filesystem::path segment;
  size_t first = 0;
  {
    auto log = PartitionLog::open(dir_, {}, inspect);
    append(*log, 2, "complete");
    first = log->size_bytes();
    append(*log, 2, "this one gets torn");
    segment = dir_ / segment_file_name(0);
  }
  std::filesystem::resize_file(segment, first + 15);
  RecoveryReport report;
  auto log = PartitionLog::open(dir_, {}, inspect, &report);
  EXPECT_EQ(report.batches, 1);
  EXPECT_EQ(report.truncated_bytes, 15u);
  EXPECT_EQ(log->log_end_offset(), 2);
  EXPECT_EQ(std::filesystem::file_size(segment), first);
  EXPECT_EQ(append(*log, 1, "next"), 2);  // offsets stay contiguous
}

TEST_F(PartitionLogTest, CutsACorruptEntryAndEverythingAfterIt) {
  {
    auto log = PartitionLog::open(dir_, LogOptions{100}, inspect);
    for (int i = 0; i < 6; ++i) append(*log, 1, std::string(40, static_cast<char>('a' + i)));
  }
  // Several segments now; flip a payload byte in the second one.
  std::vector<std::filesystem::path> segments;
  for (auto& e : std::filesystem::directory_iterator(dir_)) segments.push_back(e.path());
  std::sort(segments.begin(), segments.end());
  ASSERT_GE(segments.size(), 3u);
  {
    std::fstream f(segments[1], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(30);
    f.put('!');
  }
  RecoveryReport report;
  auto log = PartitionLog::open(dir_, LogOptions{100}, inspect, &report);
  EXPECT_GT(report.removed_segments, 0);
  EXPECT_GT(report.truncated_bytes, 0u);
  int64_t end = log->log_end_offset();
  EXPECT_LT(end, 6);
  EXPECT_EQ(append(*log, 1, "after"), end);
}

TEST_F(PartitionLogTest, RollsSegmentsAndReadsAcrossThem) {
  auto log = PartitionLog::open(dir_, LogOptions{100}, inspect);
  for (int i = 0; i < 10; ++i) append(*log, 2, std::string(30, 'z'));
  EXPECT_EQ(log->log_end_offset(), 20);
  size_t entry = make_entry(2, std::string(30, 'z')).size();
  EXPECT_EQ(log->read(7, 1 << 20, true).size(), entry * 7);  // batches [6,7] .. [18,19]
  EXPECT_EQ(log->offset_for_timestamp(999), 0);
  EXPECT_FALSE(log->offset_for_timestamp(1001).has_value());
}

}  // namespace
}  // namespace sluice::storage
