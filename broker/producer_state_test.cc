#include "broker/producer_state.h"

#include <gtest/gtest.h>

#include <limits>

namespace sluice::broker {
namespace {

using Kind = ProducerStateTable::Verdict::Kind;
using protocol::ErrorCode;

constexpr int64_t kPid = 1000;

// Appends a batch the table accepts, at the next offsets; returns its first offset.
int64_t append(ProducerStateTable& t, int64_t& next_offset, int16_t epoch, int32_t seq, int32_t count,
               int64_t timestamp = 100) {
  auto v = t.check(kPid, epoch, seq, count);
  EXPECT_EQ(v.kind, Kind::kAppend) << v.message;
  const int64_t first = next_offset;
  t.record(kPid, epoch, seq, count, first, first + count - 1, timestamp);
  next_offset += count;
  return first;
}

TEST(ProducerStateTable, InOrderBatchesAreAppended) {
  ProducerStateTable t;
  int64_t next = 0;
  EXPECT_EQ(append(t, next, 0, 0, 3), 0);
  EXPECT_EQ(append(t, next, 0, 3, 2), 3);
  EXPECT_EQ(t.find(kPid)->batches.back().last_sequence, 4);
}

TEST(ProducerStateTable, ARetryOfAnyOfTheLastFiveGetsItsOriginalOffsets) {
  ProducerStateTable t;
  int64_t next = 10;
  for (int i = 0; i < 5; ++i) append(t, next, 0, i * 2, 2);
  for (int i = 0; i < 5; ++i) {
    auto v = t.check(kPid, 0, i * 2, 2);
    ASSERT_EQ(v.kind, Kind::kDuplicate);
    EXPECT_EQ(v.duplicate.first_offset, 10 + i * 2);
    EXPECT_EQ(v.duplicate.last_offset, 11 + i * 2);
  }
  // A sixth batch pushes the first out: its retry is now out of order.
  append(t, next, 0, 10, 2);
  auto v = t.check(kPid, 0, 0, 2);
  EXPECT_EQ(v.kind, Kind::kReject);
  EXPECT_EQ(v.error, ErrorCode::kOutOfOrderSequenceNumber);
}

TEST(ProducerStateTable, SameFirstSequenceButDifferentLengthIsNotADuplicate) {
  ProducerStateTable t;
  int64_t next = 0;
  append(t, next, 0, 0, 3);
  auto v = t.check(kPid, 0, 0, 4);
  EXPECT_EQ(v.kind, Kind::kReject);
  EXPECT_EQ(v.error, ErrorCode::kOutOfOrderSequenceNumber);
}

TEST(ProducerStateTable, AGapIsOutOfOrder) {
  ProducerStateTable t;
  int64_t next = 0;
  append(t, next, 0, 0, 1);
  auto v = t.check(kPid, 0, 2, 1);
  EXPECT_EQ(v.kind, Kind::kReject);
  EXPECT_EQ(v.error, ErrorCode::kOutOfOrderSequenceNumber);
}

TEST(ProducerStateTable, StaleEpochIsRefusedAndNewEpochStartsAtZero) {
  ProducerStateTable t;
  int64_t next = 0;
  append(t, next, 1, 0, 1);
  auto stale = t.check(kPid, 0, 1, 1);
  EXPECT_EQ(stale.kind, Kind::kReject);
  EXPECT_EQ(stale.error, ErrorCode::kInvalidProducerEpoch);

  auto bad_start = t.check(kPid, 2, 5, 1);
  EXPECT_EQ(bad_start.kind, Kind::kReject);
  EXPECT_EQ(bad_start.error, ErrorCode::kOutOfOrderSequenceNumber);

  append(t, next, 2, 0, 1);
  EXPECT_EQ(t.find(kPid)->epoch, 2);
  EXPECT_EQ(t.find(kPid)->batches.size(), 1u);  // the old epoch's batches are gone
}

TEST(ProducerStateTable, AnUnknownProducerMayStartAnywhere) {
  ProducerStateTable t;
  EXPECT_EQ(t.check(kPid, 0, 42, 1).kind, Kind::kAppend);
}

TEST(ProducerStateTable, SequencesWrapAfterInt32Max) {
  ProducerStateTable t;
  int64_t next = 0;
  const int32_t max = std::numeric_limits<int32_t>::max();
  append(t, next, 0, max - 1, 2);  // max-1, max
  EXPECT_EQ(t.find(kPid)->batches.back().last_sequence, max);
  append(t, next, 0, 0, 3);
  EXPECT_EQ(ProducerStateTable::last_sequence(max, 2), 0);
  append(t, next, 0, 3, 1);
}

TEST(ProducerStateTable, IdleProducersExpire) {
  ProducerStateTable t;
  int64_t next = 0;
  append(t, next, 0, 0, 1, /*timestamp=*/1000);
  EXPECT_EQ(t.expire(1500, 1000), 0u);
  EXPECT_EQ(t.expire(2000, 1000), 1u);
  EXPECT_TRUE(t.empty());
}

TEST(ProducerStateTable, SnapshotRoundTrip) {
  ProducerStateTable t;
  int64_t next = 0;
  for (int i = 0; i < 7; ++i) append(t, next, 3, i, 1, 500 + i);
  t.record(77, 0, 9, 2, next, next + 1, 900);
  EXPECT_TRUE(t.dirty());
  const std::string snapshot = t.serialize(next + 2);
  EXPECT_FALSE(t.dirty());

  auto parsed = ProducerStateTable::parse(snapshot);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->second, next + 2);
  const ProducerStateTable& back = parsed->first;
  ASSERT_EQ(back.size(), 2u);
  const auto* p = back.find(kPid);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->epoch, 3);
  EXPECT_EQ(p->batches.size(), ProducerStateTable::kRememberedBatches);
  EXPECT_EQ(p->batches.back().first_sequence, 6);
  EXPECT_EQ(p->last_timestamp, 506);
  EXPECT_EQ(back.check(kPid, 3, 6, 1).kind, Kind::kDuplicate);
  EXPECT_EQ(back.check(kPid, 3, 7, 1).kind, Kind::kAppend);
}

TEST(ProducerStateTable, CorruptSnapshotsDoNotParse) {
  ProducerStateTable t;
  int64_t next = 0;
  append(t, next, 0, 0, 1);
  const std::string snapshot = t.serialize(next);
  for (size_t n = 0; n < snapshot.size(); ++n) EXPECT_FALSE(ProducerStateTable::parse(snapshot.substr(0, n))) << n;
  EXPECT_FALSE(ProducerStateTable::parse(snapshot + "x"));
  std::string bad_version = snapshot;
  bad_version[0] = 9;
  EXPECT_FALSE(ProducerStateTable::parse(bad_version));
}

}  // namespace
}  // namespace sluice::broker
