// The creation record's items (FORMATS.md, "The federation's state"): what a
// creation or a move leaves on a member to delete; and the shared map's rules.
#include "federation/federation_store.h"

#include <filesystem>
#include <random>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace sluice::federation {
namespace {

TEST(LeftPart, WholeTopicsAndPartitionsRoundTrip) {
  EXPECT_EQ(left_part("a"), "a");
  EXPECT_EQ(left_part("dc-2.east", 7), "dc-2.east:7");
  EXPECT_EQ(parse_left_part("a"), std::pair(std::string("a"), int32_t{-1}));
  EXPECT_EQ(parse_left_part(left_part("dc-2.east", 7)), std::pair(std::string("dc-2.east"), int32_t{7}));
  EXPECT_EQ(parse_left_part("b:0"), std::pair(std::string("b"), int32_t{0}));
}

TEST(LeftPart, MalformedItemsAreNeverTheWholeTopic) {
  // Read as "delete the topic on a", any of these would lose a member's data.
  for (const char* bad : {"a:", "a:x", "a:-1", "a:3x", ":3", "a:99999999999"})
    EXPECT_FALSE(parse_left_part(bad).has_value()) << bad;
}

}  // namespace
}  // namespace sluice::federation

// --- The shared map (federation_store.h): several stores over one log ---
// The log here is a vector in memory, read by a pump as map_log.h's reader
// reads the member's topic: the stores' own rules are what is tested.

namespace sluice::federation {
namespace {

namespace asio = boost::asio;

std::string temp_dir() {
  static std::mt19937_64 random(std::random_device{}());
  auto dir = std::filesystem::temp_directory_path() / ("sluice-fedstore-" + std::to_string(random()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

struct SharedLog {
  asio::io_context io;
  std::vector<std::string> records;
  std::vector<FederationStore*> readers;
  bool writable = true;
  int lose_answers = 0;     // the next appends are written, their answers lost
  int drop_unanswered = 0;  // the next appends are lost, unanswered
  // Each store applies what it has not yet, a millisecond after it is written.
  void pump() {
    for (auto* store : readers) {
      std::vector<std::pair<int64_t, std::string>> batch;
      for (auto i = static_cast<size_t>(store->applied_end()); i < records.size(); ++i)
        batch.emplace_back(static_cast<int64_t>(i), records[i]);
      if (!batch.empty()) store->apply_log(batch, static_cast<int64_t>(records.size()));
    }
  }
  std::unique_ptr<FederationStore> store(int32_t endpoint, std::string dir = temp_dir()) {
    auto s = std::make_unique<FederationStore>(io.get_executor(), dir);
    FederationStore::Sharing sharing;
    sharing.endpoint = endpoint;
    sharing.append = [this](std::string value) -> asio::awaitable<FederationStore::Appended> {
      using Appended = FederationStore::Appended;
      if (!writable) co_return Appended{Appended::kNotWritten};
      if (lose_answers > 0) {  // written, but the writer is not told
        --lose_answers;
        records.push_back(std::move(value));
        co_return Appended{Appended::kUnknown};
      }
      if (drop_unanswered > 0) {  // not written, and the writer is not told
        --drop_unanswered;
        co_return Appended{Appended::kUnknown};
      }
      records.push_back(std::move(value));
      asio::steady_timer later(io);
      later.expires_after(std::chrono::milliseconds(1));
      later.async_wait([this](boost::system::error_code) { pump(); });
      co_return Appended{Appended::kWritten, static_cast<int64_t>(records.size() - 1)};
    };
    s->share(std::move(sharing));
    readers.push_back(s.get());
    return s;
  }
  // Runs what is ready for 5 ms (again after the io_context ran out of work).
  void spin() {
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  // FederationStore::start_writing, run to its end.
  void start_writing(FederationStore& store) {
    auto start = [&]() -> asio::awaitable<bool> {
      co_await store.start_writing();
      co_return true;
    };
    run(start());
  }
  template <typename T>
  T run(asio::awaitable<T> work) {
    std::optional<T> out;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await std::move(work); }, asio::detached);
    for (int i = 0; i < 500 && !out; ++i) spin();
    return out.value();
  }
};

TEST(SharedMap, TheFirstReservationOfANameInTheLogWins) {
  SharedLog log;
  auto a = log.store(1), b = log.store(2);
  std::optional<bool> a_won, b_won;
  // Both append before either has read the other's record.
  asio::co_spawn(log.io, [&]() -> asio::awaitable<void> { a_won = co_await a->reserve("t"); }, asio::detached);
  asio::co_spawn(log.io, [&]() -> asio::awaitable<void> { b_won = co_await b->reserve("t"); }, asio::detached);
  for (int i = 0; i < 500 && !(a_won && b_won); ++i) log.spin();
  ASSERT_EQ(log.records.size(), 2u);
  EXPECT_NE(*a_won, *b_won);
  EXPECT_TRUE(a->reserved("t") && b->reserved("t"));
  // Only the holder changes the topic; the other's change takes no effect anywhere.
  FederationStore& holder = *a_won ? *a : *b;
  FederationStore& other = *a_won ? *b : *a;
  TopicPlacement placement{new_topic_id(), {{"m", 2}}};
  EXPECT_FALSE(log.run(other.put("t", placement)));
  EXPECT_EQ(a->find("t"), nullptr);
  EXPECT_TRUE(log.run(holder.put("t", placement)));
  ASSERT_NE(b->find("t"), nullptr);
  EXPECT_EQ(b->find("t")->topic_id, placement.topic_id);
  holder.release("t");
  for (int i = 0; i < 100 && (a->reserved("t") || b->reserved("t")); ++i) log.spin();
  EXPECT_FALSE(a->reserved("t") || b->reserved("t"));
  // A name in the map is not reserved again.
  EXPECT_FALSE(log.run(other.reserve("t")));
}

TEST(SharedMap, AHoldFailsWhenThePlacementChangedSinceItWasRead) {
  SharedLog log;
  auto a = log.store(1), b = log.store(2);
  ASSERT_TRUE(log.run(a->reserve("t")));
  ASSERT_TRUE(log.run(a->put("t", TopicPlacement{new_topic_id(), {{"m", 1}}})));
  a->release("t");
  for (int i = 0; i < 100 && b->reserved("t"); ++i) log.spin();
  // b holds; a's hold, appended after, conflicts.
  ASSERT_TRUE(log.run(b->hold("t")));
  EXPECT_FALSE(log.run(a->hold("t")));
  ASSERT_TRUE(log.run(b->erase("t")));
  EXPECT_EQ(a->find("t"), nullptr);
}

TEST(SharedMap, ProducerIdBlocksNeverOverlap) {
  SharedLog log;
  auto a = log.store(1), b = log.store(2);
  std::set<int64_t> ids;
  for (int round = 0; round < 3; ++round)
    for (auto* s : {a.get(), b.get()})
      for (int i = 0; i < 1200; ++i) {
        const auto id = log.run(s->new_producer_id());
        ASSERT_TRUE(id.has_value());
        EXPECT_GE(*id, FederationStore::kFirstProducerId);
        EXPECT_TRUE(ids.insert(*id).second) << *id;
      }
}

TEST(SharedMap, AnAppendRefusedTakesNoEffect) {
  SharedLog log;
  auto a = log.store(1);
  log.writable = false;
  EXPECT_FALSE(log.run(a->reserve("t")));
  EXPECT_FALSE(a->reserved("t"));
  log.writable = true;
  EXPECT_TRUE(log.run(a->reserve("t")));
}

TEST(SharedMap, AnAppendWhoseAnswerIsLostIsSettledByABarrier) {
  SharedLog log;
  auto a = log.store(1), b = log.store(2);
  // Written, unanswered: the barrier after it finds it applied.
  log.lose_answers = 1;
  EXPECT_TRUE(log.run(a->reserve("written")));
  EXPECT_TRUE(b->reserved("written"));
  // Not written, unanswered (twice: the first barrier is lost too): never takes effect.
  log.drop_unanswered = 2;
  EXPECT_FALSE(log.run(a->reserve("lost")));
  EXPECT_FALSE(b->reserved("lost"));
}

TEST(SharedMap, AWritersRecordAppliedAfterItsLaterOneIsFenced) {
  SharedLog log;
  auto a = log.store(1), b = log.store(2);
  // a's record, delayed in the log behind a later record of a's (a barrier): no effect anywhere.
  log.lose_answers = 1;
  std::optional<bool> taken;
  asio::co_spawn(log.io, [&]() -> asio::awaitable<void> { taken = co_await a->reserve("late"); }, asio::detached);
  log.spin();  // a's reservation is in the log, unanswered; a writes its barrier 100 ms later
  const std::string late = log.records.back();
  log.records.pop_back();  // ... and the reservation reaches the log only after it
  for (int i = 0; i < 100 && log.records.empty(); ++i) log.spin();
  ASSERT_EQ(log.records.size(), 1u);
  log.records.push_back(late);
  for (int i = 0; i < 100 && !taken; ++i) log.spin();
  log.pump();
  EXPECT_FALSE(taken.value());
  EXPECT_FALSE(a->reserved("late"));
  EXPECT_FALSE(b->reserved("late"));
  EXPECT_EQ(a->applied_end(), 2);
}

TEST(SharedMap, AnUnreadableRecordChangesNothing) {
  SharedLog log;
  auto a = log.store(1);
  log.records.push_back("\x07garbage");
  log.pump();
  EXPECT_EQ(a->applied_end(), 1);
  EXPECT_TRUE(a->topics().empty());
  EXPECT_TRUE(log.run(a->reserve("t")));
}

TEST(SharedMap, ARestartedEndpointFinishesItsOwnInterruptedChanges) {
  SharedLog log;
  auto a = log.store(1), b = log.store(2);
  ASSERT_TRUE(log.run(a->reserve("creating")));
  std::vector<std::string> parts{"m", "n"};
  ASSERT_TRUE(log.run(a->begin_creation("creating", parts)));
  ASSERT_TRUE(log.run(a->reserve("plain")));
  ASSERT_TRUE(log.run(b->reserve("other")));
  // Endpoint 1 again, from an empty cache: it reads the whole log.
  log.readers.erase(log.readers.begin());
  a.reset();
  auto again = log.store(1);
  log.pump();
  log.start_writing(*again);
  EXPECT_EQ(again->unfinished_creations().count("creating"), 1u);  // its parts are deleted, then released
  EXPECT_EQ(again->unfinished_creations().at("creating"), parts);
  for (int i = 0; i < 100 && b->reserved("plain"); ++i) log.spin();
  EXPECT_FALSE(b->reserved("plain"));  // an interrupted change holding nothing half done: released
  EXPECT_TRUE(again->reserved("creating"));
  EXPECT_TRUE(again->reserved("other"));  // endpoint 2's own, untouched
  EXPECT_EQ(again->unfinished_creations().count("other"), 0u);
}

TEST(SharedMap, ARunStartedWithTheClockBehindAnEarlierOneStillWrites) {
  SharedLog log;
  {  // an earlier run of endpoint 1, its clock a day ahead
    auto a = log.store(1);
    log.run(a->reserve("first"));
    std::string& record = log.records.back();
    // (incarnation: the int64 after the version byte and the endpoint)
    const auto ahead = a->applied_end() > 0 ? int64_t{86400} * 1000000 : 0;
    uint64_t incarnation = 0;
    for (int i = 0; i < 8; ++i) incarnation = incarnation << 8 | static_cast<uint8_t>(record[5 + i]);
    incarnation += static_cast<uint64_t>(ahead);
    for (int i = 7; i >= 0; --i, incarnation >>= 8) record[5 + i] = static_cast<char>(incarnation & 0xff);
  }
  log.readers.clear();
  auto again = log.store(1);
  log.pump();
  log.start_writing(*again);
  EXPECT_TRUE(log.run(again->reserve("second")));  // not fenced by the earlier run's later-looking records
  EXPECT_FALSE(again->reserved("first"));          // and that run's hold was ended
}

TEST(SharedMap, AStaleFreezeEndedByAnotherEndpointStopsTheSwitch) {
  SharedLog log;
  auto a = log.store(1), b = log.store(2);
  ASSERT_TRUE(log.run(a->reserve("t")));
  const TopicPlacement old_place{new_topic_id(), {{"m", 1}}};
  ASSERT_TRUE(log.run(a->put("t", old_place)));
  ASSERT_TRUE(log.run(a->freeze("t", std::vector<std::string>{"m"})));
  EXPECT_EQ(b->frozen_sources("t"), std::vector<std::string>{"m"});
  ASSERT_TRUE(log.run(b->end_stale_freeze("t", *b->frozen_value("t"))));
  EXPECT_TRUE(a->frozen_sources("t").empty());
  TopicPlacement moved = old_place;
  moved.segments[0].cluster = "n";
  EXPECT_FALSE(log.run(a->switch_placement("t", moved, std::vector<std::string>{"m"})));
  EXPECT_TRUE(b->find("t")->on("m"));
  // A freeze in force: the switch ends it with the new placement.
  ASSERT_TRUE(log.run(a->freeze("t", std::vector<std::string>{"m"})));
  ASSERT_TRUE(log.run(a->switch_placement("t", moved, std::vector<std::string>{"m"})));
  EXPECT_TRUE(b->find("t")->on("n"));
  EXPECT_TRUE(b->frozen_sources("t").empty());
}

TEST(SharedMap, FreezeAcknowledgementsCarryEachEndpointsAcknowledgedEnds) {
  SharedLog log;
  auto a = log.store(1), b = log.store(2);
  ASSERT_TRUE(log.run(a->reserve("t")));
  ASSERT_TRUE(log.run(a->put("t", TopicPlacement{new_topic_id(), {{"m", 2}}})));
  ASSERT_TRUE(log.run(a->freeze("t", std::vector<std::string>{"m"})));
  const std::string freeze = *b->frozen_value("t");
  using Ends = std::vector<FederationStore::AcknowledgedEnd>;
  ASSERT_TRUE(log.run(b->acknowledge_freeze("t", freeze, Ends{{"m", 0, 41}, {"m", 1, 7}})));
  ASSERT_TRUE(log.run(a->acknowledge_freeze("t", freeze, Ends{})));
  const auto acks = a->freeze_acknowledgements("t");
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_TRUE(acks.at(1).empty());
  const Ends& ends = acks.at(2);
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].member, "m");
  EXPECT_EQ(ends[0].partition, 0);
  EXPECT_EQ(ends[0].end, 41);
  EXPECT_EQ(ends[1].partition, 1);
  EXPECT_EQ(ends[1].end, 7);
  // Only while that freeze is in force.
  ASSERT_TRUE(log.run(a->thaw("t")));
  EXPECT_FALSE(log.run(b->acknowledge_freeze("t", freeze, Ends{{"m", 0, 50}})));
}

TEST(SharedMap, AMapKeptByOneEndpointIsNotSharedSilently) {
  asio::io_context io;
  const std::string dir = temp_dir();
  {
    FederationStore alone(io.get_executor(), dir);
    std::optional<bool> done;
    const TopicPlacement placement{new_topic_id(), {{"m", 1}}};
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { done = co_await alone.put("t", placement); }, asio::detached);
    for (int i = 0; i < 500 && !done; ++i) {
      io.restart();
      io.run_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(done.value());
  }
  FederationStore store(io.get_executor(), dir);
  FederationStore::Sharing sharing;
  EXPECT_THROW(store.share(sharing), std::runtime_error);
}

}  // namespace
}  // namespace sluice::federation
