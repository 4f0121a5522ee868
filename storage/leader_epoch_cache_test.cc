#include "storage/leader_epoch_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace sluice::storage {
namespace {

using Entries = std::vector<EpochEntry>;

LeaderEpochCache cache_of(const Entries& entries) {
  LeaderEpochCache cache;
  for (const EpochEntry& e : entries) EXPECT_TRUE(cache.assign(e.epoch, e.start_offset));
  EXPECT_EQ(cache.entries(), entries);
  return cache;
}

TEST(LeaderEpochCacheTest, AssignsNewEpochsAndIgnoresTheLatestOneAgain) {
  LeaderEpochCache cache;
  EXPECT_FALSE(cache.latest_epoch().has_value());
  EXPECT_TRUE(cache.assign(2, 0));
  EXPECT_TRUE(cache.assign(3, 10));
  EXPECT_FALSE(cache.assign(3, 10));  // every batch of the epoch assigns it again
  EXPECT_FALSE(cache.assign(3, 25));  // an epoch's start never moves forward
  EXPECT_EQ(cache.entries(), (Entries{{2, 0}, {3, 10}}));
  EXPECT_EQ(cache.latest_epoch(), 3);
  EXPECT_EQ(cache.start_offset_of(2), 0);
  EXPECT_EQ(cache.start_offset_of(3), 10);
  EXPECT_FALSE(cache.start_offset_of(1).has_value());
  EXPECT_THROW(cache.assign(-1, 30), std::invalid_argument);
  EXPECT_THROW(cache.assign(4, -1), std::invalid_argument);
}

// Kafka's assign(): entries the new one cannot follow are removed from the end first.
TEST(LeaderEpochCacheTest, AssignRemovesTheEntriesANewOneCannotFollow) {
  // A later epoch starting below the latest start: the entries at or past its start go.
  LeaderEpochCache cache = cache_of({{1, 0}, {2, 10}, {3, 20}});
  EXPECT_TRUE(cache.assign(4, 15));
  EXPECT_EQ(cache.entries(), (Entries{{1, 0}, {2, 10}, {4, 15}}));
  // The latest epoch again at a lower start: it moves back.
  EXPECT_TRUE(cache.assign(4, 12));
  EXPECT_EQ(cache.entries(), (Entries{{1, 0}, {2, 10}, {4, 12}}));
  // An earlier epoch: the later ones go (the log is being written in that epoch again).
  EXPECT_TRUE(cache.assign(3, 30));
  EXPECT_EQ(cache.entries(), (Entries{{1, 0}, {2, 10}, {3, 30}}));
  // ... and everything it does not follow in either field.
  EXPECT_TRUE(cache.assign(2, 5));
  EXPECT_EQ(cache.entries(), (Entries{{1, 0}, {2, 5}}));
}

TEST(LeaderEpochCacheTest, EndOffsetForFollowsKafka) {
  const LeaderEpochCache empty;
  EXPECT_EQ(empty.end_offset_for(0, 100), std::make_pair(kUndefinedEpoch, kUndefinedEpochOffset));
  EXPECT_EQ(empty.end_offset_for(kUndefinedEpoch, 100), std::make_pair(kUndefinedEpoch, kUndefinedEpochOffset));

  const LeaderEpochCache cache = cache_of({{2, 10}, {4, 30}, {7, 50}});
  // The undefined epoch: undefined, whatever the cache holds.
  EXPECT_EQ(cache.end_offset_for(kUndefinedEpoch, 100), std::make_pair(kUndefinedEpoch, kUndefinedEpochOffset));
  // The latest epoch: it runs to the log end.
  EXPECT_EQ(cache.end_offset_for(7, 100), std::make_pair(7, int64_t{100}));
  // A known earlier epoch: it ends where the next one starts.
  EXPECT_EQ(cache.end_offset_for(2, 100), std::make_pair(2, int64_t{30}));
  EXPECT_EQ(cache.end_offset_for(4, 100), std::make_pair(4, int64_t{50}));
  // An unknown epoch between two: the largest below it, ending where the next one starts.
  EXPECT_EQ(cache.end_offset_for(3, 100), std::make_pair(2, int64_t{30}));
  EXPECT_EQ(cache.end_offset_for(6, 100), std::make_pair(4, int64_t{50}));
  // Below the first epoch: the requested epoch, ending where the first known one starts.
  EXPECT_EQ(cache.end_offset_for(1, 100), std::make_pair(1, int64_t{10}));
  EXPECT_EQ(cache.end_offset_for(0, 100), std::make_pair(0, int64_t{10}));
  // Above the latest: undefined.
  EXPECT_EQ(cache.end_offset_for(8, 100), std::make_pair(kUndefinedEpoch, kUndefinedEpochOffset));
}

TEST(LeaderEpochCacheTest, TruncateFromEndRemovesEpochsStartingAtOrAfterTheEnd) {
  LeaderEpochCache cache = cache_of({{2, 10}, {4, 30}, {7, 50}});
  EXPECT_FALSE(cache.truncate_from_end(51));
  EXPECT_TRUE(cache.truncate_from_end(50));
  EXPECT_EQ(cache.entries(), (Entries{{2, 10}, {4, 30}}));
  EXPECT_EQ(cache.end_offset_for(4, 45), std::make_pair(4, int64_t{45}));  // now the latest
  EXPECT_TRUE(cache.truncate_from_end(11));
  EXPECT_EQ(cache.entries(), (Entries{{2, 10}}));
  EXPECT_TRUE(cache.truncate_from_end(0));
  EXPECT_TRUE(cache.empty());
}

TEST(LeaderEpochCacheTest, TruncateFromStartKeepsTheEpochHoldingTheNewStart) {
  LeaderEpochCache cache = cache_of({{2, 10}, {4, 30}, {7, 50}});
  EXPECT_FALSE(cache.truncate_from_start(5));  // before every epoch
  EXPECT_FALSE(cache.truncate_from_start(10));  // exactly the first start: nothing moves
  EXPECT_TRUE(cache.truncate_from_start(35));
  EXPECT_EQ(cache.entries(), (Entries{{4, 35}, {7, 50}}));
  EXPECT_TRUE(cache.truncate_from_start(50));
  EXPECT_EQ(cache.entries(), (Entries{{7, 50}}));
  EXPECT_TRUE(cache.truncate_from_start(80));  // past the latest start: it holds the new start
  EXPECT_EQ(cache.entries(), (Entries{{7, 80}}));
}

TEST(LeaderEpochCacheTest, SerializesAsKafkasCheckpointFile) {
  const LeaderEpochCache cache = cache_of({{0, 0}, {3, 120}, {12, 4000000000}});
  EXPECT_EQ(cache.serialize(), "0\n3\n0 0\n3 120\n12 4000000000\n");
  EXPECT_EQ(LeaderEpochCache::parse(cache.serialize(), "x"), cache);
  EXPECT_EQ(LeaderEpochCache().serialize(), "0\n0\n");
  EXPECT_TRUE(LeaderEpochCache::parse("0\n0\n", "x").empty());
  EXPECT_TRUE(LeaderEpochCache::parse("", "x").empty());  // Kafka reads an empty file as no entries
  EXPECT_EQ(LeaderEpochCache::parse("0\n1\n5  17", "x").entries(), (Entries{{5, 17}}));  // any spacing, no final newline
}

TEST(LeaderEpochCacheTest, ACorruptCheckpointThrowsNamingItsPath) {
  for (const char* text : {"1\n0\n", "x\n", "0\n2\n0 0\n", "0\n1\n0 0\n1 5\n", "0\n1\n0\n", "0\n1\n0 zero\n",
                           "0\n2\n3 10\n2 20\n", "0\n2\n2 10\n3 10\n", "0\n1\n-1 0\n", "0\n-1\n", "0\n1\n0 0 0\n"}) {
    try {
      LeaderEpochCache::parse(text, "/some/dir/leader-epoch-checkpoint");
      ADD_FAILURE() << "parsed: " << text;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("/some/dir/leader-epoch-checkpoint"), std::string::npos) << e.what();
    }
  }
}

class LeaderEpochCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-epoch-test-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(LeaderEpochCheckpointTest, AMissingFileIsAnEmptyCache) {
  EXPECT_TRUE(LeaderEpochCache::load(dir_ / kLeaderEpochCheckpointFile).empty());
  EXPECT_TRUE(LeaderEpochCache(dir_ / kLeaderEpochCheckpointFile).empty());
}

TEST_F(LeaderEpochCheckpointTest, WritesAtomicallyAndLoadsBack) {
  const auto path = dir_ / kLeaderEpochCheckpointFile;
  LeaderEpochCache cache = cache_of({{1, 0}, {2, 40}});
  write_atomically(path, cache.serialize());
  EXPECT_EQ(LeaderEpochCache::load(path), cache);
  cache.assign(5, 90);
  write_atomically(path, cache.serialize());  // replaces the file
  EXPECT_EQ(LeaderEpochCache(path).entries(), (Entries{{1, 0}, {2, 40}, {5, 90}}));
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{kLeaderEpochCheckpointFile});  // no temporary file left
}

TEST_F(LeaderEpochCheckpointTest, LoadingACorruptFileThrowsNamingItsPath) {
  const auto path = dir_ / kLeaderEpochCheckpointFile;
  std::ofstream(path) << "0\n2\n0 0\n";
  try {
    LeaderEpochCache::load(path);
    ADD_FAILURE() << "loaded a corrupt file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice::storage
