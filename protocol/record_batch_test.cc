#include "protocol/record_batch.h"

#include <gtest/gtest.h>

#include <tuple>

#include "protocol/crc32c.h"
#include "protocol/wire.h"

namespace sluice::protocol {
namespace {

// How make_batch builds its records; the defaults give a small valid batch.
struct RecordsShape {
  std::string value = "val";
  int32_t bad_offset_delta_at = -1;  // this record's offset delta is one too high
  int32_t long_timestamp_at = -1;    // this record's timestamp delta is an over-long (11-byte) varint
  int32_t ten_byte_timestamp_at = -1;  // this record's timestamp delta is a legal 10-byte varint (zero)
};

std::string make_records(int32_t count, const RecordsShape& shape) {
  Writer records;
  for (int32_t i = 0; i < count; ++i) {
    Writer r;
    r.write_int8(0);                // attributes
    if (i == shape.long_timestamp_at)
      r.write_raw(std::string(10, '\x80') + '\x00');
    else if (i == shape.ten_byte_timestamp_at)
      r.write_raw(std::string(9, '\x80') + '\x00');
    else
      r.write_varlong(i);           // timestamp delta
    r.write_varint(i == shape.bad_offset_delta_at ? i + 1 : i);  // offset delta
    r.write_varint(1);              // key length
    r.write_raw("k");
    r.write_varint(static_cast<int32_t>(shape.value.size()));
    r.write_raw(shape.value);
    r.write_varint(0);              // headers
    records.write_varint(static_cast<int32_t>(r.size()));
    records.write_raw(r.buffer());
  }
  return records.buffer();
}

// Builds an uncompressed magic-2 batch of `count` records the way a producer does.
std::string make_batch(int32_t count, int16_t attributes = 0, int64_t producer_id = -1, int32_t base_sequence = -1,
                       const RecordsShape& shape = {}) {
  Writer records;
  records.write_raw(make_records(count, shape));
  Writer b;
  b.write_int64(0);  // base offset
  size_t length_at = b.reserve_int32();
  b.write_int32(-1);  // partition leader epoch
  b.write_int8(2);    // magic
  size_t crc_at = b.size();
  b.write_uint32(0);
  b.write_int16(attributes);
  b.write_int32(count - 1);
  b.write_int64(1000);
  b.write_int64(1000 + count - 1);
  b.write_int64(producer_id);
  b.write_int16(producer_id >= 0 ? 0 : -1);
  b.write_int32(base_sequence);
  b.write_int32(count);
  b.write_raw(records.buffer());
  b.patch_int32(length_at, static_cast<int32_t>(b.size() - 12));
  std::string bytes = b.buffer();
  uint32_t crc = crc32c(std::string_view(bytes).substr(21));
  for (int i = 0; i < 4; ++i) bytes[crc_at + i] = static_cast<char>(crc >> (24 - 8 * i));
  return bytes;
}

ErrorCode check(const std::string& records, int16_t version = 9, int32_t max_bytes = 1 << 20) {
  return check_produced_records(std::string_view(records), version, max_bytes).error;
}

TEST(RecordBatchTest, AcceptsAWellFormedBatch) {
  std::string batch = make_batch(3);
  ProducedBatch result = check_produced_records(std::string_view(batch), 9, 1 << 20);
  ASSERT_EQ(result.error, ErrorCode::kNone) << result.error_message;
  EXPECT_EQ(result.header.records_count, 3);
  EXPECT_EQ(result.header.max_timestamp, 1002);
  EXPECT_EQ(result.header.total_size(), batch.size());
}

TEST(RecordBatchTest, RejectsWhatKafkaRejects) {
  std::string good = make_batch(2);
  EXPECT_EQ(check_produced_records(std::nullopt, 9, 1 << 20).error, ErrorCode::kInvalidRecord);
  EXPECT_EQ(check(good + good), ErrorCode::kInvalidRecord);                    // two batches
  EXPECT_EQ(check(good.substr(0, good.size() - 1)), ErrorCode::kInvalidRecord);  // incomplete
  EXPECT_EQ(check(good, 9, static_cast<int32_t>(good.size()) - 1), ErrorCode::kMessageTooLarge);

  std::string corrupt = good;
  corrupt.back() ^= 1;
  EXPECT_EQ(check(corrupt), ErrorCode::kCorruptMessage);

  std::string offset = good;
  offset[7] = 5;  // base offset 5 (outside the CRC)
  EXPECT_EQ(check(offset), ErrorCode::kInvalidRecord);

  std::string magic = good;
  magic[16] = 1;
  EXPECT_EQ(check(magic), ErrorCode::kInvalidRecord);

  EXPECT_EQ(check(make_batch(2, /*control*/ 0x20)), ErrorCode::kInvalidRecord);
  EXPECT_EQ(check(make_batch(2, 0, /*producer*/ 7, /*sequence*/ -1)), ErrorCode::kInvalidRecord);
  EXPECT_EQ(check(make_batch(2, 0, 7, 0)), ErrorCode::kNone);
}

TEST(RecordBatchTest, ZstdNeedsProduceV7) {
  // The records are not zstd at all: the version check comes first, and the
  // first step of the check (header and CRC) leaves them to the second.
  std::string zstd = make_batch(1, /*codec*/ 4);
  EXPECT_EQ(check(zstd, 6), ErrorCode::kUnsupportedCompressionType);
  ProducedBatch first_step = check_produced_batch(std::string_view(zstd), 7, 1 << 20);
  EXPECT_EQ(first_step.error, ErrorCode::kNone);
  EXPECT_TRUE(first_step.records_unchecked);
  EXPECT_EQ(check(zstd, 7), ErrorCode::kUnknownServerError);  // it does not decompress
}

TEST(RecordBatchTest, RecordsMustMatchTheDeclaredCount) {
  std::string batch = make_batch(3);
  // Claim 4 records (and 3 as last offset delta) while only 3 are there; fix the CRC.
  auto patch32 = [&](size_t at, int32_t v) {
    for (int i = 0; i < 4; ++i) batch[at + i] = static_cast<char>(v >> (24 - 8 * i));
  };
  patch32(57, 4);
  patch32(23, 3);
  uint32_t crc = crc32c(std::string_view(batch).substr(21));
  patch32(17, static_cast<int32_t>(crc));
  EXPECT_EQ(check(batch), ErrorCode::kInvalidRecord);
}

// The CRC and the record walk run together over 24 KiB chunks of the CRC's
// input (from the attributes on): a bad record is found wherever it sits,
// including the one split by a chunk boundary, and last.
TEST(RecordBatchTest, BadRecordsAreFoundAnywhereInALargeBatch) {
  RecordsShape shape;
  shape.value = std::string(100, 'v');
  const int32_t count = 2000;  // ~220 KiB: ten chunks
  ASSERT_EQ(check(make_batch(count, 0, -1, -1, shape), 9, 1 << 21), ErrorCode::kNone);
  // The record that starts before the first chunk boundary and ends after it.
  const size_t boundary = RecordBatchHeader::kAttributesAt + 24 * 1024;
  int32_t split = 0;
  while (RecordBatchHeader::kSize + make_records(split + 1, shape).size() <= boundary) ++split;
  ASSERT_LT(RecordBatchHeader::kSize + make_records(split, shape).size(), boundary);
  ASSERT_GT(RecordBatchHeader::kSize + make_records(split + 1, shape).size(), boundary);
  for (int32_t at : {0, split - 1, split, split + 1, count / 2, count - 1}) {
    RecordsShape bad = shape;
    bad.bad_offset_delta_at = at;
    EXPECT_EQ(check(make_batch(count, 0, -1, -1, bad), 9, 1 << 21), ErrorCode::kInvalidRecord) << at;
    bad = shape;
    bad.long_timestamp_at = at;
    EXPECT_EQ(check(make_batch(count, 0, -1, -1, bad), 9, 1 << 21), ErrorCode::kInvalidRecord) << at;
    RecordsShape legal = shape;
    legal.ten_byte_timestamp_at = at;  // the longest varint there is: still valid
    EXPECT_EQ(check(make_batch(count, 0, -1, -1, legal), 9, 1 << 21), ErrorCode::kNone) << at;
  }
  // A flipped bit anywhere is a CRC mismatch, which Kafka reports before anything about the records.
  std::string flipped = make_batch(count, 0, -1, -1, shape);
  flipped[flipped.size() / 2] ^= 1;
  EXPECT_EQ(check(flipped, 9, 1 << 21), ErrorCode::kCorruptMessage);
  RecordsShape bad = shape;
  bad.bad_offset_delta_at = split;
  std::string bad_records_and_crc = make_batch(count, 0, -1, -1, bad);
  bad_records_and_crc[RecordBatchHeader::kCrcAt] ^= 1;
  EXPECT_EQ(check(bad_records_and_crc, 9, 1 << 21), ErrorCode::kCorruptMessage);
}

TEST(RecordBatchTest, LogAppendTimeStampKeepsTheBatchValid) {
  std::string batch = make_batch(2);
  stamp_log_append_time(batch.data(), batch.size(), 123456789);
  auto header = RecordBatchHeader::parse(batch);
  ASSERT_TRUE(header);
  EXPECT_TRUE(header->log_append_time());
  EXPECT_EQ(header->max_timestamp, 123456789);
  EXPECT_TRUE(record_batch_crc_ok(batch));
  set_base_offset(batch.data(), 42);
  set_partition_leader_epoch(batch.data(), 3);
  EXPECT_TRUE(record_batch_crc_ok(batch));  // both fields sit outside the CRC
  EXPECT_EQ(RecordBatchHeader::parse(batch)->base_offset, 42);
}

TEST(RecordBatchTest, FindsTheFirstRecordAtOrAfterATimestamp) {
  std::string batch = make_batch(5);  // timestamps 1000..1004 at offsets 0..4
  set_base_offset(batch.data(), 100);
  EXPECT_EQ(find_record_by_timestamp(batch, 0), (std::pair<int64_t, int64_t>{100, 1000}));
  EXPECT_EQ(find_record_by_timestamp(batch, 1003), (std::pair<int64_t, int64_t>{103, 1003}));
  EXPECT_FALSE(find_record_by_timestamp(batch, 1005).has_value());
}

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the standard check value
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c_extend(crc32c("1234"), "56789"), crc32c("123456789"));
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);  // RFC 3720 B.4
}

// Long inputs take the three-lane path: it must agree with a plain bitwise CRC
// at every length around its 12 KiB stripes, and when extended piecewise.
TEST(Crc32cTest, LongInputsMatchABitwiseReference) {
  auto bitwise = [](std::string_view data) {
    uint32_t c = ~0u;
    for (unsigned char ch : data) {
      c ^= ch;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
  };
  std::string data(40000, '\0');
  uint32_t x = 12345;
  for (char& ch : data) ch = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  for (size_t n : {12287u, 12288u, 12289u, 24576u, 24583u, 36864u, 40000u}) {
    std::string_view v(data.data(), n);
    EXPECT_EQ(crc32c(v), bitwise(v)) << n;
    EXPECT_EQ(crc32c_extend(crc32c(v.substr(0, 5000)), v.substr(5000)), bitwise(v)) << n;
  }
}

}  // namespace
}  // namespace sluice::protocol

namespace sluice::protocol {
namespace {

// The batches a node writes itself pass every check a Produce gets, and read back.
TEST(RecordBatchTest, BuiltBatchesAreWellFormedAndReadBack) {
  const std::vector<std::string> values{"first", "", std::string(300, 'x')};
  std::string batch = build_record_batch(0, 3, 1700000000000, values);
  EXPECT_EQ(check_produced_records(std::string_view(batch), 9, 1 << 20).error, ErrorCode::kNone);
  set_base_offset(batch.data(), 40);
  const std::string two = batch + build_record_batch(43, 3, 1, {"next"});
  std::vector<std::pair<int64_t, std::string>> seen;
  visit_record_values(two, [&](int64_t offset, std::optional<std::string_view> value) {
    seen.emplace_back(offset, std::string(value.value_or("<null>")));
  });
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, std::string>>{
                      {40, "first"}, {41, ""}, {42, std::string(300, 'x')}, {43, "next"}}));
  auto nothing = [](int64_t, std::optional<std::string_view>) {};
  EXPECT_THROW(visit_record_values(std::string_view(two).substr(0, two.size() - 1), nothing), DecodeError);
  std::string corrupt = two;
  corrupt[80] ^= 1;
  EXPECT_THROW(visit_record_values(corrupt, nothing), DecodeError);
}

// Keyed batches (coordinator records): keys, values and tombstones come back as written.
TEST(RecordBatchTest, KeyedBatchesCarryKeysAndTombstones) {
  const std::string batch =
      build_keyed_record_batch(7, 2, 1700000000000, {{"k1", std::string("v1")}, {"k2", std::nullopt}, {"", std::string()}});
  std::string at_zero = batch;
  set_base_offset(at_zero.data(), 0);
  EXPECT_EQ(check_produced_records(std::string_view(at_zero), 9, 1 << 20).error, ErrorCode::kNone);
  std::vector<std::tuple<int64_t, std::string, std::string>> seen;
  visit_records(batch, [&](int64_t offset, std::optional<std::string_view> key, std::optional<std::string_view> value) {
    seen.emplace_back(offset, std::string(key.value_or("<null>")), std::string(value.value_or("<null>")));
  });
  EXPECT_EQ(seen, (std::vector<std::tuple<int64_t, std::string, std::string>>{
                      {7, "k1", "v1"}, {8, "k2", "<null>"}, {9, "", ""}}));
}

}  // namespace
}  // namespace sluice::protocol
