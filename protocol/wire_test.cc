// Tests for protocol/wire.h: primitives, varints, and that every bound check
// throws DecodeError without allocating from an unchecked length.
#include "protocol/wire.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/produce_request.h"

// Largest single operator-new allocation since last reset (alloc_tracker.cc).
extern std::atomic<size_t> g_max_alloc;

namespace sluice::protocol {
namespace {

using namespace std::string_literals;

// Runs f, expects DecodeError, and checks no allocation above `limit` bytes happened.
template <typename F>
void ExpectRejectedCheaply(F f, size_t limit = 4096) {
  g_max_alloc = 0;
  EXPECT_THROW(f(), DecodeError);
  EXPECT_LE(g_max_alloc.load(), limit);
}

TEST(Wire, FixedIntsBigEndian) {
  Writer w;
  w.write_int8(-2);
  w.write_int16(0x0102);
  w.write_int32(0x01020304);
  w.write_int64(0x0102030405060708LL);
  w.write_uint16(0xfffe);
  w.write_uint32(0xfffffffeu);
  w.write_bool(true);
  w.write_float64(1.5);
  EXPECT_EQ(w.buffer(),
            "\xfe\x01\x02\x01\x02\x03\x04\x01\x02\x03\x04\x05\x06\x07\x08\xff\xfe\xff\xff\xff\xfe\x01"
            "\x3f\xf8\x00\x00\x00\x00\x00\x00"s);
  Reader r(w.buffer());
  EXPECT_EQ(r.read_int8(), -2);
  EXPECT_EQ(r.read_int16(), 0x0102);
  EXPECT_EQ(r.read_int32(), 0x01020304);
  EXPECT_EQ(r.read_int64(), 0x0102030405060708LL);
  EXPECT_EQ(r.read_uint16(), 0xfffe);
  EXPECT_EQ(r.read_uint32(), 0xfffffffeu);
  EXPECT_TRUE(r.read_bool());
  EXPECT_EQ(r.read_float64(), 1.5);
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_EQ(r.position(), w.size());
  EXPECT_THROW(r.read_int8(), DecodeError);
}

TEST(Wire, NegativeFixedInts) {
  Writer w;
  w.write_int16(-1);
  w.write_int32(-2);
  w.write_int64(INT64_MIN);
  Reader r(w.buffer());
  EXPECT_EQ(r.read_int16(), -1);
  EXPECT_EQ(r.read_int32(), -2);
  EXPECT_EQ(r.read_int64(), INT64_MIN);
}

TEST(Wire, TruncatedFixedInts) {
  std::string three("\x01\x02\x03", 3);
  EXPECT_THROW(Reader(three).read_int32(), DecodeError);
  EXPECT_THROW(Reader(three).read_int64(), DecodeError);
  EXPECT_THROW(Reader(three).read_uuid(), DecodeError);
  EXPECT_THROW(Reader(three).read_float64(), DecodeError);
  EXPECT_THROW(Reader("").read_int16(), DecodeError);
  EXPECT_THROW(Reader("\x01").read_uint16(), DecodeError);
  Reader r(three);
  EXPECT_THROW(r.read_raw(4), DecodeError);
  EXPECT_THROW(r.skip(4), DecodeError);
  EXPECT_EQ(r.read_raw(3), three);
}

TEST(Wire, Uuid) {
  Uuid u;
  EXPECT_TRUE(u.is_zero());
  for (int i = 0; i < 16; ++i) u.bytes[i] = static_cast<uint8_t>(i * 17);
  EXPECT_FALSE(u.is_zero());
  Writer w;
  w.write_uuid(u);
  EXPECT_EQ(w.size(), 16u);
  Reader r(w.buffer());
  EXPECT_EQ(r.read_uuid(), u);
}

TEST(Wire, UvarintKnownEncodings) {
  struct Case {
    uint32_t v;
    std::string bytes;
  } cases[] = {{0, "\x00"s},
               {1, "\x01"s},
               {127, "\x7f"s},
               {128, "\x80\x01"s},
               {300, "\xac\x02"s},
               {16383, "\xff\x7f"s},
               {16384, "\x80\x80\x01"s},
               {0xffffffffu, "\xff\xff\xff\xff\x0f"s}};
  for (const auto& c : cases) {
    Writer w;
    w.write_uvarint(c.v);
    EXPECT_EQ(w.buffer(), c.bytes) << c.v;
    Reader r(c.bytes);
    EXPECT_EQ(r.read_uvarint(), c.v);
    EXPECT_EQ(r.remaining(), 0u);
  }
}

TEST(Wire, ZigZagVarint) {
  struct Case {
    int32_t v;
    std::string bytes;
  } cases[] = {{0, "\x00"s},       {-1, "\x01"s},          {1, "\x02"s},
               {-2, "\x03"s},      {63, "\x7e"s},          {-64, "\x7f"s},
               {64, "\x80\x01"s},  {INT32_MAX, "\xfe\xff\xff\xff\x0f"s},
               {INT32_MIN, "\xff\xff\xff\xff\x0f"s}};
  for (const auto& c : cases) {
    Writer w;
    w.write_varint(c.v);
    EXPECT_EQ(w.buffer(), c.bytes) << c.v;
    Reader r(c.bytes);
    EXPECT_EQ(r.read_varint(), c.v);
  }
}

TEST(Wire, ZigZagVarlong) {
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, int64_t{1} << 40, -(int64_t{1} << 40), INT64_MAX,
                    INT64_MIN}) {
    Writer w;
    w.write_varlong(v);
    Reader r(w.buffer());
    EXPECT_EQ(r.read_varlong(), v);
    EXPECT_EQ(r.remaining(), 0u);
  }
  Writer w;
  w.write_varlong(INT64_MIN);
  EXPECT_EQ(w.buffer(), "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s);
  Writer w2;
  w2.write_uvarlong(UINT64_MAX);
  EXPECT_EQ(w2.size(), 10u);
  EXPECT_EQ(Reader(w2.buffer()).read_uvarlong(), UINT64_MAX);
}

TEST(Wire, OverlongVarintsRejected) {
  // 6 bytes for a 32-bit varint.
  EXPECT_THROW(Reader("\x80\x80\x80\x80\x80\x00"s).read_uvarint(), DecodeError);
  EXPECT_THROW(Reader("\x80\x80\x80\x80\x80\x00"s).read_varint(), DecodeError);
  // 5th byte carries bits beyond 32.
  EXPECT_THROW(Reader("\xff\xff\xff\xff\x1f"s).read_uvarint(), DecodeError);
  // 11 bytes for a 64-bit varint.
  EXPECT_THROW(Reader("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"s).read_uvarlong(), DecodeError);
  EXPECT_THROW(Reader("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"s).read_varlong(), DecodeError);
  // 10th byte carries bits beyond 64.
  EXPECT_THROW(Reader("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"s).read_uvarlong(), DecodeError);
  // Unterminated.
  EXPECT_THROW(Reader("\x80"s).read_uvarint(), DecodeError);
  EXPECT_THROW(Reader(""s).read_varlong(), DecodeError);
  // Non-minimal but within 5 bytes is accepted (as Kafka does).
  EXPECT_EQ(Reader("\x80\x00"s).read_uvarint(), 0u);
}

TEST(Wire, Strings) {
  Writer w;
  w.write_string("abc");
  w.write_nullable_string(std::nullopt);
  w.write_nullable_string("x"s);
  w.write_compact_string("hello");
  w.write_compact_nullable_string(std::nullopt);
  w.write_compact_nullable_string(""s);
  EXPECT_EQ(w.buffer(), "\x00\x03" "abc" "\xff\xff" "\x00\x01x" "\x06hello" "\x00" "\x01"s);
  Reader r(w.buffer());
  EXPECT_EQ(r.read_string(), "abc");
  EXPECT_EQ(r.read_nullable_string(), std::nullopt);
  EXPECT_EQ(r.read_nullable_string(), "x");
  EXPECT_EQ(r.read_compact_string(), "hello");
  EXPECT_EQ(r.read_compact_nullable_string(), std::nullopt);
  EXPECT_EQ(r.read_compact_nullable_string(), "");
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(Wire, StringBoundsAndNulls) {
  ExpectRejectedCheaply([] { Reader("\x7f\xff" "abc"s).read_string(); });
  ExpectRejectedCheaply([] { Reader("\x7f\xff" "abc"s).read_nullable_string(); });
  ExpectRejectedCheaply([] { Reader("\xff\xff"s).read_string(); });               // null, non-nullable
  ExpectRejectedCheaply([] { Reader("\xff\xfe"s).read_nullable_string(); });      // -2
  ExpectRejectedCheaply([] { Reader("\x80\x80"s).read_string(); });               // very negative
  ExpectRejectedCheaply([] { Reader("\x00"s).read_compact_string(); });           // null, non-nullable
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xff\x0f"s).read_compact_string(); });
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xff\x0f"s).read_compact_nullable_string(); });
  ExpectRejectedCheaply([] { Reader("\x05" "ab"s).read_compact_nullable_string(); });
}

TEST(Wire, Bytes) {
  Writer w;
  w.write_nullable_bytes(std::nullopt);
  w.write_nullable_bytes(std::string_view("\x00\x01", 2));
  w.write_compact_nullable_bytes(std::nullopt);
  w.write_compact_nullable_bytes(std::string_view("z"));
  EXPECT_EQ(w.buffer(), "\xff\xff\xff\xff" "\x00\x00\x00\x02\x00\x01" "\x00" "\x02z"s);
  Reader r(w.buffer());
  EXPECT_EQ(r.read_nullable_bytes(), std::nullopt);
  auto b = r.read_nullable_bytes();
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, std::string_view("\x00\x01", 2));
  // The view points into the input buffer (no copy).
  EXPECT_EQ(b->data(), w.buffer().data() + 8);
  EXPECT_EQ(r.read_compact_nullable_bytes(), std::nullopt);
  EXPECT_EQ(r.read_compact_nullable_bytes(), std::string_view("z"));
}

TEST(Wire, BytesBounds) {
  ExpectRejectedCheaply([] { Reader("\x7f\xff\xff\xff" "abc"s).read_nullable_bytes(); });
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xfe"s).read_nullable_bytes(); });
  ExpectRejectedCheaply([] { Reader("\x80\x00\x00\x00"s).read_nullable_bytes(); });
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xff\x0f"s).read_compact_nullable_bytes(); });
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xff"s).read_bytes(); });
  ExpectRejectedCheaply([] { Reader("\x00"s).read_compact_bytes(); });
}

TEST(Wire, ArrayLengths) {
  EXPECT_EQ(Reader("\xff\xff\xff\xff"s).read_array_length(4), -1);
  EXPECT_EQ(Reader("\x00\x00\x00\x00"s).read_array_length(4), 0);
  EXPECT_EQ(Reader("\x00\x00\x00\x02" "12345678"s).read_array_length(4), 2);
  EXPECT_EQ(Reader("\x00"s).read_compact_array_length(1), -1);
  EXPECT_EQ(Reader("\x01"s).read_compact_array_length(1), 0);
  EXPECT_EQ(Reader("\x03" "ab"s).read_compact_array_length(1), 2);

  // count < -1
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xfe"s).read_array_length(1); });
  ExpectRejectedCheaply([] { Reader("\x80\x00\x00\x00"s).read_array_length(1); });
  // count beyond remaining
  ExpectRejectedCheaply([] { Reader("\x7f\xff\xff\xff"s).read_array_length(1); });
  ExpectRejectedCheaply([] { Reader("\x00\x00\x00\x03" "12345678"s).read_array_length(4); });
  // min element size 0 is treated as 1
  ExpectRejectedCheaply([] { Reader("\x00\x00\x00\x05" "1234"s).read_array_length(0); });
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xff\x07"s).read_compact_array_length(1); });
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xff\x0f"s).read_compact_array_length(1); });
  ExpectRejectedCheaply([] { Reader("\x04" "ab"s).read_compact_array_length(1); });
}

TEST(Wire, SkipTaggedFields) {
  const std::string in = "\x02\x00\x01x\x05\x02yz!"s;
  Reader ok(in);
  ok.skip_tagged_fields();
  EXPECT_EQ(ok.remaining(), 1u);
  // not ascending / duplicate
  ExpectRejectedCheaply([] { Reader("\x02\x05\x00\x01\x00"s).skip_tagged_fields(); });
  ExpectRejectedCheaply([] { Reader("\x02\x01\x00\x01\x00"s).skip_tagged_fields(); });
  // count too large for remaining bytes
  ExpectRejectedCheaply([] { Reader("\xff\xff\xff\xff\x0f\x00\x00"s).skip_tagged_fields(); });
  // size beyond remaining
  ExpectRejectedCheaply([] { Reader("\x01\x00\xff\xff\xff\xff\x0f"s).skip_tagged_fields(); });
}

TEST(Wire, PatchInt32) {
  Writer w;
  w.write_int8(7);
  size_t at = w.reserve_int32();
  w.write_raw("payload");
  w.patch_int32(at, static_cast<int32_t>(w.size() - at - 4));
  EXPECT_EQ(w.buffer(), "\x07\x00\x00\x00\x07payload"s);
}

// ---- message-level abuse: huge counts, negative lengths, bad tagged fields.

TEST(WireMessages, HugeArrayCountInMetadataRequest) {
  // Metadata v1 request: topics count INT32_MAX, then nothing.
  ExpectRejectedCheaply([] {
    MetadataRequest m;
    const std::string in = "\x7f\xff\xff\xff"s;
    Reader r(in);
    m.decode(r, 1);
  });
  // Metadata v9 (flexible): compact count 2^32-1.
  ExpectRejectedCheaply([] {
    MetadataRequest m;
    const std::string in = "\xff\xff\xff\xff\x0f\x01\x00\x00\x00"s;
    Reader r(in);
    m.decode(r, 9);
  });
  // Negative count -2.
  ExpectRejectedCheaply([] {
    MetadataRequest m;
    const std::string in = "\xff\xff\xff\xfe"s;
    Reader r(in);
    m.decode(r, 1);
  });
  // Null topics in v0 (non-nullable there).
  ExpectRejectedCheaply([] {
    MetadataRequest m;
    const std::string in = "\xff\xff\xff\xff"s;
    Reader r(in);
    m.decode(r, 0);
  });
}

TEST(WireMessages, ArrayCountBoundedByElementSize) {
  // Fetch v4 topics: each topic needs >= 6 bytes; 2 topics in 8 bytes is impossible.
  ExpectRejectedCheaply([] {
    FetchResponse m;
    // throttle(4) error? v4 has: ThrottleTimeMs, Responses...
    const std::string in = "\x00\x00\x00\x00" "\x00\x00\x00\x02" "\x00\x01x\x00\x00\x00"s;
    Reader r(in);
    m.decode(r, 4);
  });
}

TEST(WireMessages, NegativeRecordsLength) {
  // Produce v3: transactional_id null, acks, timeout, 1 topic "t", 1 partition, records length -5.
  ExpectRejectedCheaply([] {
    ProduceRequest m;
    const std::string in = "\xff\xff" "\x00\x01" "\x00\x00\x03\xe8" "\x00\x00\x00\x01" "\x00\x01t" "\x00\x00\x00\x01"
             "\x00\x00\x00\x00" "\xff\xff\xff\xfb"s;
    Reader r(in);
    m.decode(r, 3);
  });
}

std::string MetadataV9Prefix() {
  // topics: null, allow_auto: 1, include_cluster_ops: 0, include_topic_ops: 0
  return "\x00\x01\x00\x00"s;
}

TEST(WireMessages, TaggedFieldAbuse) {
  // Valid: empty tag section.
  {
    MetadataRequest m;
    std::string in = MetadataV9Prefix() + "\x00"s;
    Reader r(in);
    m.decode(r, 9);
    EXPECT_FALSE(m.topics.has_value());
    EXPECT_EQ(r.remaining(), 0u);
  }
  // Unknown tags are skipped.
  {
    MetadataRequest m;
    std::string in = MetadataV9Prefix() + "\x02\x03\x01x\x07\x00"s;
    Reader r(in);
    m.decode(r, 9);
    EXPECT_EQ(r.remaining(), 0u);
  }
  // Descending tags.
  ExpectRejectedCheaply([] {
    MetadataRequest m;
    std::string in = MetadataV9Prefix() + "\x02\x07\x00\x03\x00"s;
    Reader r(in);
    m.decode(r, 9);
  });
  // Duplicate tags.
  ExpectRejectedCheaply([] {
    MetadataRequest m;
    std::string in = MetadataV9Prefix() + "\x02\x03\x00\x03\x00"s;
    Reader r(in);
    m.decode(r, 9);
  });
  // Huge count.
  ExpectRejectedCheaply([] {
    MetadataRequest m;
    std::string in = MetadataV9Prefix() + "\xff\xff\xff\xff\x0f"s;
    Reader r(in);
    m.decode(r, 9);
  });
  // Huge size.
  ExpectRejectedCheaply([] {
    MetadataRequest m;
    std::string in = MetadataV9Prefix() + "\x01\x03\xff\xff\xff\xff\x0f"s;
    Reader r(in);
    m.decode(r, 9);
  });
}

TEST(WireMessages, KnownTaggedFieldWithTrailingBytesRejected) {
  // Fetch v12 request, ClusterId tag 0 whose payload is a compact string "a" plus one extra byte.
  FetchRequest m;
  Writer w;
  w.write_int32(-1);  // replica_id
  w.write_int32(0);   // max_wait
  w.write_int32(0);   // min_bytes
  w.write_int32(0);   // max_bytes
  w.write_int8(0);    // isolation
  w.write_int32(0);   // session id
  w.write_int32(0);   // session epoch
  w.write_uvarint(1); // topics: empty
  w.write_uvarint(1); // forgotten: empty
  w.write_uvarint(1); // rack: ""
  std::string good = w.buffer() + "\x01\x00\x02\x02" "a"s;
  {
    Reader r(good);
    m.decode(r, 12);
    EXPECT_EQ(m.cluster_id, "a");
  }
  std::string bad = w.buffer() + "\x01\x00\x03\x02" "a!"s;
  ExpectRejectedCheaply([&] {
    Reader r(bad);
    m.decode(r, 12);
  });
}

// Records with an owner are encoded by reference: the bytes stay where they
// are (a splice), the encoding around them is what copying them would give.
TEST(Wire, OwnedRecordsAreSplicedNotCopied) {
  auto frame = std::make_shared<std::string>("headerRECORDBYTEStrailer");
  const std::string_view records = std::string_view(*frame).substr(6, 11);
  Writer copied;
  copied.write_int16(7);
  copied.write_compact_records(Records(records));
  copied.write_int16(8);
  Writer spliced;
  spliced.write_int16(7);
  spliced.write_compact_records(Records::owned(records, frame));
  spliced.write_int16(8);
  EXPECT_TRUE(copied.splices().empty());
  ASSERT_EQ(spliced.splices().size(), 1u);
  const auto& splice = spliced.splices()[0];
  EXPECT_TRUE(splice.in_memory());
  EXPECT_EQ(splice.memory.data(), records.data());  // not a copy
  EXPECT_EQ(spliced.size(), copied.size());
  std::string assembled = spliced.buffer();
  assembled.insert(splice.at, splice.memory);
  EXPECT_EQ(assembled, copied.buffer());
  // The writer keeps the bytes alive until it is cleared.
  const std::weak_ptr<std::string> watch = frame;
  frame.reset();
  EXPECT_FALSE(watch.expired());
  spliced.clear();
  EXPECT_TRUE(watch.expired());
  // Empty owned records have nothing to splice.
  Writer empty;
  empty.write_records(Records::owned({}, std::make_shared<int>(0)));
  EXPECT_TRUE(empty.splices().empty());
}

}  // namespace
}  // namespace sluice::protocol

namespace sluice::protocol {
namespace {
TEST(Wire, AllocationTrackerSeesLargeAllocations) {
  g_max_alloc = 0;
  std::string big(1 << 20, 'x');
  EXPECT_GE(g_max_alloc.load(), size_t{1} << 20);
}
}  // namespace
}  // namespace sluice::protocol

namespace sluice::protocol {
namespace {
TEST(Wire, OverlongStringsTruncatedOnWrite) {
  const std::string big(40000, 'a');
  Writer w;
  w.write_string(big);
  w.write_compact_string(big);
  Reader r(w.buffer());
  EXPECT_EQ(r.read_string().size(), 0x7fffu);
  EXPECT_EQ(r.read_compact_string().size(), 0x7fffu);
  EXPECT_EQ(r.remaining(), 0u);
}
}  // namespace
}  // namespace sluice::protocol

namespace sluice::protocol {
namespace {

// What the JDK's UTF-8 decoder gives for each input, re-encoded: Kafka reads
// request strings that way, and echoes them.
TEST(DecodeUtf8AsJavaTest, ReplacesMalformedSequencesAsTheJdkDoes) {
  const std::string r = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"topic", "topic"},
      {"", ""},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},  // valid: unchanged
      {"t\xFF\xFEopic", "t" + r + r + "opic"},
      {"\xE2\x82", r},                 // a three-byte sequence cut at the end: one replacement
      {"\xE2\x82x", r + "x"},          // cut before the third byte: lead and continuation together
      {"\xE2x", r + "x"},              // cut before the second
      {"\xC0\xAF", r + r},             // overlong two-byte form: C0 is never valid
      {"\xE0\x80\xAF", r + r + r},     // overlong three-byte form
      {"\xED\xA0\x80", r},             // a surrogate: one replacement for the three bytes
      {"\xF4\x90\x80\x80", r + r + r + r},  // above U+10FFFF
      {"\xF0\x9F\x98", r},             // four-byte sequence cut at the end
      {"\xF0\x9Fx", r + "x"},
      {"\x80", r},                     // a stray continuation byte
      {"\xC3", r},                     // a two-byte lead at the end
      {"\xC3(", r + "("},
      {"\xF8\x88\x80\x80\x80", r + r + r + r + r},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(decode_utf8_as_java(in), want) << testing::PrintToString(in);
}

TEST(DecodeUtf8AsJavaTest, StringsReadFromRequestsAreDecoded) {
  Writer w;
  w.write_string("g\xFFid");
  w.write_compact_string("g\xFFid");
  Reader r(w.buffer());
  EXPECT_EQ(r.read_string(), "g\xEF\xBF\xBDid");
  EXPECT_EQ(r.read_compact_string(), "g\xEF\xBF\xBDid");
}

}  // namespace
}  // namespace sluice::protocol

