#include "broker/state_writer.h"

#include <stdlib.h>

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <vector>

namespace sluice::broker {
namespace {

class StateWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/sluice-state-writer-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    store_ = storage::StateStore::open(dir_);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Runs the io_context until `count` completions have run (at most 5 s).
  void run_until(const std::vector<bool>& results, size_t count) {
    io_.restart();
    auto work = boost::asio::make_work_guard(io_);  // completions are posted from the writer's thread
    for (int i = 0; i < 500 && results.size() < count; ++i) io_.run_for(std::chrono::milliseconds(10));
  }

  std::string dir_;
  std::unique_ptr<storage::StateStore> store_;
  boost::asio::io_context io_;
};

TEST_F(StateWriterTest, CommitsInOrderAndReportsOnTheExecutor) {
  StateWriter writer(io_.get_executor(), *store_);
  std::vector<bool> results;
  // Many writes to one key in a row: whatever the writer groups into one transaction, the last
  // one submitted must be what is stored.
  for (int i = 0; i < 100; ++i)
    writer.apply({{"key", std::to_string(i)}, {"key-" + std::to_string(i), "x"}}, [&](bool ok) { results.push_back(ok); });
  run_until(results, 100);
  ASSERT_EQ(results.size(), 100u);
  for (bool ok : results) EXPECT_TRUE(ok);
  EXPECT_EQ(store_->get("key"), "99");
  EXPECT_EQ(store_->get("key-42"), "x");
}

TEST_F(StateWriterTest, DrainWaitsForEverythingSubmitted) {
  StateWriter writer(io_.get_executor(), *store_);
  for (int i = 0; i < 50; ++i) writer.apply({{"drained-" + std::to_string(i), "v"}, {"erased", std::nullopt}});
  writer.drain();  // without running the executor: completions need not have run
  for (int i = 0; i < 50; ++i) EXPECT_EQ(store_->get("drained-" + std::to_string(i)), "v") << i;
}

TEST_F(StateWriterTest, AFailedWriteFailsOnlyItself) {
  StateWriter writer(io_.get_executor(), *store_);
  std::vector<bool> results;
  const std::string too_long_key(4096, 'k');  // LMDB refuses keys over its limit (511 bytes by default)
  writer.apply({{"before", "1"}}, [&](bool ok) { results.push_back(ok); });
  writer.apply({{too_long_key, "2"}}, [&](bool ok) { results.push_back(ok); });
  writer.apply({{"after", "3"}}, [&](bool ok) { results.push_back(ok); });
  run_until(results, 3);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0]);
  EXPECT_FALSE(results[1]);
  EXPECT_TRUE(results[2]);
  EXPECT_EQ(store_->get("before"), "1");
  EXPECT_EQ(store_->get("after"), "3");
}

// A chain (the metadata log) never gets a hole: after one of its writes
// fails, its later ones fail unwritten; writes outside it go on.
TEST_F(StateWriterTest, AFailedWriteFailsTheRestOfItsChain) {
  StateWriter writer(io_.get_executor(), *store_);
  auto chain = std::make_shared<StateWriter::Chain>();
  std::vector<bool> results;
  auto record = [&](bool ok) { results.push_back(ok); };
  const std::string too_long_key(4096, 'k');
  writer.apply({{"log/0", "a"}}, record, chain);
  writer.apply({{too_long_key, "b"}}, record, chain);
  writer.apply({{"log/2", "c"}}, record, chain);
  writer.apply({{"other", "d"}}, record);
  writer.apply({{"log/3", "e"}}, record, chain);
  run_until(results, 5);
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results, (std::vector<bool>{true, false, false, true, false}));
  EXPECT_EQ(store_->get("log/0"), "a");
  EXPECT_FALSE(store_->get("log/2"));
  EXPECT_FALSE(store_->get("log/3"));
  EXPECT_EQ(store_->get("other"), "d");
}

}  // namespace
}  // namespace sluice::broker
