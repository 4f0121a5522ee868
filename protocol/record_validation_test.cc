// Produce validation of the records inside a batch, uncompressed and with each
// of Kafka's four codecs: every hostile record is refused the same way whether
// or not it is compressed, and a compressed batch that does not decompress, or
// expands past the bound, is refused without costing more than the bound.
#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <gtest/gtest.h>

#include "protocol/compression.h"
#include "protocol/crc32c.h"
#include "protocol/record_batch.h"

namespace sluice::protocol {
namespace {

// A zig-zag varint, padded with continued zero groups to `width` bytes if
// that is more than it needs (a legal but over-long encoding).
std::string zigzag(int64_t v, int width = 0) {
  uint64_t raw = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  std::string out;
  while (raw >= 0x80 || static_cast<int>(out.size()) + 1 < width) {
    out.push_back(static_cast<char>((raw & 0x7F) | 0x80));
    raw >>= 7;
  }
  out.push_back(static_cast<char>(raw));
  return out;
}

// A record's fields, each as the bytes that go on the wire, so that a test
// can put any (hostile) encoding in any place.
struct RecordFields {
  std::string timestamp_delta = zigzag(0);
  std::string key_length;  // empty: the key's real length
  std::string key = "key";
  std::string value_length;  // empty: the value's real length
  std::string value = "value";
  std::string headers = zigzag(0);  // the count and the headers
  std::string trailing;             // bytes after the headers, inside the record
  std::string length;               // empty: the body's real length
  int length_width = 0;             // the real length written over this many bytes (0: as few as it takes)
  std::string offset_delta;         // empty: the record's index
};

std::string record(int32_t offset_delta, const RecordFields& f = {}) {
  std::string body = std::string(1, '\0') + f.timestamp_delta + (f.offset_delta.empty() ? zigzag(offset_delta) : f.offset_delta);
  body += (f.key_length.empty() ? zigzag(static_cast<int64_t>(f.key.size())) : f.key_length) + f.key;
  body += (f.value_length.empty() ? zigzag(static_cast<int64_t>(f.value.size())) : f.value_length) + f.value;
  body += f.headers + f.trailing;
  return (f.length.empty() ? zigzag(static_cast<int64_t>(body.size()), f.length_width) : f.length) + body;
}

std::string gzip(std::string_view in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// snappy-java's framing, as Kafka's producers write it: 32 KiB blocks.
std::string snappy_framed(std::string_view in) {
  std::string out = std::string("\x82SNAPPY\0", 8) + be32(1) + be32(1);
  for (size_t at = 0; at < in.size() || at == 0; at += 32 << 10) {
    std::string block;
    snappy::Compress(in.data() + at, std::min<size_t>(32 << 10, in.size() - at), &block);
    out += be32(static_cast<uint32_t>(block.size())) + block;
    if (in.empty()) break;
  }
  return out;
}

std::string snappy_raw(std::string_view in) {
  std::string out;
  snappy::Compress(in.data(), in.size(), &out);
  return out;
}

// An LZ4 frame of independent blocks; `content_size` (0: none) is written
// into the frame header as given, true or not.
std::string lz4(std::string_view in, unsigned long long content_size = 0) {
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentSize = content_size;
  LZ4F_cctx* ctx = nullptr;
  EXPECT_FALSE(LZ4F_isError(LZ4F_createCompressionContext(&ctx, LZ4F_VERSION)));
  std::string out(LZ4F_compressBound(in.size(), &prefs) + LZ4F_HEADER_SIZE_MAX + 16, '\0');
  size_t n = LZ4F_compressBegin(ctx, out.data(), out.size(), &prefs);
  n += LZ4F_compressUpdate(ctx, out.data() + n, out.size() - n, in.data(), in.size(), nullptr);
  n += LZ4F_compressEnd(ctx, out.data() + n, out.size() - n, nullptr);
  LZ4F_freeCompressionContext(ctx);
  out.resize(n);
  return out;
}

std::string zstd(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A batch with `count` records claimed, whose records section is `payload`
// (already compressed with `codec`), with a correct CRC.
std::string batch_of(Compression codec, int32_t count, std::string_view payload) {
  std::string b(RecordBatchHeader::kSize, '\0');
  auto put = [&](size_t at, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) b[at + i] = static_cast<char>(v >> (8 * (bytes - 1 - i)));
  };
  put(8, RecordBatchHeader::kSize - 12 + payload.size(), 4);
  put(12, static_cast<uint32_t>(-1), 4);
  b[16] = 2;
  put(21, static_cast<uint16_t>(codec), 2);
  put(23, static_cast<uint32_t>(count - 1), 4);
  put(27, 1000, 8);
  put(35, 1000, 8);
  put(43, static_cast<uint64_t>(-1), 8);
  put(51, static_cast<uint16_t>(-1), 2);
  put(53, static_cast<uint32_t>(-1), 4);
  put(57, static_cast<uint32_t>(count), 4);
  b += payload;
  put(17, crc32c(std::string_view(b).substr(21)), 4);
  return b;
}

struct Codec {
  const char* name;
  Compression id;
  std::string (*compress)(std::string_view);
};

const Codec kCodecs[] = {
    {"none", Compression::kNone, [](std::string_view in) { return std::string(in); }},
    {"gzip", Compression::kGzip, &gzip},
    {"snappy-framed", Compression::kSnappy, &snappy_framed},
    {"snappy-raw", Compression::kSnappy, &snappy_raw},
    {"lz4", Compression::kLz4, [](std::string_view in) { return lz4(in); }},
    {"zstd", Compression::kZstd, &zstd},
};

ErrorCode check(const std::string& batch, size_t max_uncompressed = kDefaultMaxUncompressedBatchBytes) {
  return check_produced_records(std::string_view(batch), 9, 1 << 21, max_uncompressed).error;
}

// Three records with the middle one built from `bad`.
std::string records_around(const RecordFields& bad) { return record(0) + record(1, bad) + record(2); }

std::string varint_bytes(std::initializer_list<uint8_t> bytes) { return std::string(bytes.begin(), bytes.end()); }

TEST(RecordValidationTest, WellFormedRecordsPassWithEveryCodec) {
  RecordFields nulls;
  nulls.key_length = zigzag(-1);
  nulls.key = "";
  nulls.value_length = zigzag(-1);
  nulls.value = "";
  RecordFields with_headers;
  with_headers.headers = zigzag(2) + zigzag(1) + "a" + zigzag(2) + "vv" + zigzag(1) + "b" + zigzag(-1);
  RecordFields five_byte_key_length;  // legal: Java reads varints of up to five bytes
  five_byte_key_length.key_length = varint_bytes({0x86, 0x80, 0x80, 0x80, 0x00});
  RecordFields ten_byte_timestamp;  // legal: a varlong of ten bytes
  ten_byte_timestamp.timestamp_delta = std::string(9, '\x80') + std::string(1, '\0');
  for (const Codec& codec : kCodecs) {
    for (const RecordFields& fields : {RecordFields{}, nulls, with_headers, five_byte_key_length, ten_byte_timestamp})
      EXPECT_EQ(check(batch_of(codec.id, 3, codec.compress(records_around(fields)))), ErrorCode::kNone) << codec.name;
  }
}

// Each case of the hostile-input issue, refused with INVALID_RECORD whether
// or not the batch is compressed.
TEST(RecordValidationTest, MalformedRecordsAreRefusedWithEveryCodec) {
  std::vector<std::pair<std::string, RecordFields>> cases;
  auto add = [&](std::string name, auto edit) {
    RecordFields f;
    edit(f);
    cases.emplace_back(std::move(name), f);
  };
  add("key length past the record", [](RecordFields& f) { f.key_length = zigzag(1000); });
  add("key length -7", [](RecordFields& f) {
    f.key_length = zigzag(-7);
    f.key = "";
  });
  add("value length 2^30", [](RecordFields& f) { f.value_length = zigzag(int64_t{1} << 30); });
  add("value length -2", [](RecordFields& f) {
    f.value_length = zigzag(-2);
    f.value = "";
  });
  add("header count INT32_MAX", [](RecordFields& f) { f.headers = zigzag(INT32_MAX); });
  add("header count -3", [](RecordFields& f) { f.headers = zigzag(-3); });
  add("header key length as a 10-byte varint", [](RecordFields& f) {
    f.headers = zigzag(1) + varint_bytes({0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}) + "h" + zigzag(0);
  });
  add("header key length -2", [](RecordFields& f) { f.headers = zigzag(1) + zigzag(-2) + zigzag(0); });
  add("header value length -5", [](RecordFields& f) { f.headers = zigzag(1) + zigzag(1) + "h" + zigzag(-5); });
  add("header value past the record", [](RecordFields& f) { f.headers = zigzag(1) + zigzag(1) + "h" + zigzag(50); });
  add("5 trailing bytes", [](RecordFields& f) { f.trailing = "xxxxx"; });
  add("record length 0", [](RecordFields& f) { f.length = zigzag(0); });
  add("record length -1", [](RecordFields& f) { f.length = zigzag(-1); });
  add("offset delta out of order", [](RecordFields& f) { f.offset_delta = zigzag(5); });
  add("timestamp delta of 11 bytes", [](RecordFields& f) {
    f.timestamp_delta = std::string(10, '\x80') + std::string(1, '\0');
  });
  for (const Codec& codec : kCodecs)
    for (const auto& [name, fields] : cases)
      EXPECT_EQ(check(batch_of(codec.id, 3, codec.compress(records_around(fields)))), ErrorCode::kInvalidRecord)
          << codec.name << ": " << name;
}

// Kafka reads a record's length before its record checks: one of more than
// five bytes is UNKNOWN_SERVER_ERROR in an uncompressed batch.
TEST(RecordValidationTest, ARecordLengthOfSixBytesIsAnUnknownServerError) {
  RecordFields six;
  six.length = varint_bytes({0xA4, 0x80, 0x80, 0x80, 0x80, 0x00});
  EXPECT_EQ(check(batch_of(Compression::kNone, 3, records_around(six))), ErrorCode::kUnknownServerError);
  for (const Codec& codec : kCodecs) {
    if (codec.id == Compression::kNone) continue;
    EXPECT_EQ(check(batch_of(codec.id, 3, codec.compress(records_around(six)))), ErrorCode::kInvalidRecord)
        << codec.name;
  }
  RecordFields five;  // five bytes, the last without continuation: legal
  five.length_width = 5;
  EXPECT_EQ(check(batch_of(Compression::kNone, 3, records_around(five))), ErrorCode::kNone);
}

TEST(RecordValidationTest, TheRecordCountMustMatchInsideACompressedBatch) {
  const std::string three = record(0) + record(1) + record(2);
  for (const Codec& codec : kCodecs) {
    EXPECT_EQ(check(batch_of(codec.id, 7, codec.compress(three))), ErrorCode::kInvalidRecord) << codec.name;
    EXPECT_EQ(check(batch_of(codec.id, 2, codec.compress(three))), ErrorCode::kInvalidRecord) << codec.name;
    // Bytes after the last record, inside the compressed stream.
    EXPECT_EQ(check(batch_of(codec.id, 3, codec.compress(three + "x"))), ErrorCode::kInvalidRecord) << codec.name;
  }
}

// Kafka answers a stream it cannot decompress UNKNOWN_SERVER_ERROR.
TEST(RecordValidationTest, GarbageAndCutStreamsAreUnknownServerErrors) {
  const std::string three = record(0) + record(1) + record(2);
  std::string garbage(200, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 37 + 11);
  for (const Codec& codec : kCodecs) {
    if (codec.id == Compression::kNone) continue;
    EXPECT_EQ(check(batch_of(codec.id, 3, garbage)), ErrorCode::kUnknownServerError) << codec.name;
    const std::string whole = codec.compress(three);
    EXPECT_EQ(check(batch_of(codec.id, 3, whole.substr(0, whole.size() - 3))), ErrorCode::kUnknownServerError)
        << codec.name;
    EXPECT_EQ(check(batch_of(codec.id, 3, "")), ErrorCode::kUnknownServerError) << codec.name;
  }
  // Something other than another gzip member after the first one.
  EXPECT_EQ(check(batch_of(Compression::kGzip, 3, gzip(three) + "junk")), ErrorCode::kUnknownServerError);
  // Two gzip members are one stream, as Java reads them.
  EXPECT_EQ(check(batch_of(Compression::kGzip, 3, gzip(record(0)) + gzip(record(1) + record(2)))), ErrorCode::kNone);
}

TEST(RecordValidationTest, SizeLiarsAreRefusedWithoutAllocatingTheirClaim) {
  const std::string three = record(0) + record(1) + record(2);
  // An LZ4 frame whose content size says 2^40 over valid blocks.
  EXPECT_EQ(check(batch_of(Compression::kLz4, 3, lz4(three, 1ull << 40))), ErrorCode::kUnknownServerError);
  // A zstd frame header claiming 2^40 bytes, then a cut body.
  std::string zstd_liar = varint_bytes({0x28, 0xB5, 0x2F, 0xFD, 0xE0});  // magic, 8-byte content size, single segment
  for (int i = 0; i < 8; ++i) zstd_liar.push_back(i == 5 ? '\x01' : '\0');
  zstd_liar += "\x01\x00\x00";
  EXPECT_EQ(check(batch_of(Compression::kZstd, 3, zstd_liar)), ErrorCode::kUnknownServerError);
  // A snappy-java block claiming 2^32-1 bytes, and a raw snappy stream claiming 1 GiB.
  std::string framed_liar = std::string("\x82SNAPPY\0", 8) + be32(1) + be32(1) + be32(6) +
                            varint_bytes({0xFF, 0xFF, 0xFF, 0xFF, 0x0F}) + "x";
  EXPECT_EQ(check(batch_of(Compression::kSnappy, 3, framed_liar)), ErrorCode::kUnknownServerError);
  std::string raw_liar = varint_bytes({0x80, 0x80, 0x80, 0x80, 0x04}) + "\x00x";
  EXPECT_EQ(check(batch_of(Compression::kSnappy, 3, raw_liar)), ErrorCode::kUnknownServerError);
  // Within the bound, a snappy block that claims more than it holds is corrupt.
  std::string small_raw_liar = varint_bytes({0xF4, 0x03}) + snappy_raw(three).substr(1);  // claims 500
  EXPECT_EQ(check(batch_of(Compression::kSnappy, 3, small_raw_liar)), ErrorCode::kUnknownServerError);
}

// A bomb: one record whose value is megabytes of zeros, compressed to little.
// Refused with MESSAGE_TOO_LARGE once the output passes the bound, whatever
// the record claims.
TEST(RecordValidationTest, BombsStopAtTheBound) {
  RecordFields big;
  big.value = std::string(8 << 20, '\0');
  const std::string records = record(0, big);
  for (const Codec& codec : kCodecs) {
    if (codec.id == Compression::kNone) continue;
    const std::string payload = codec.compress(records);
    ASSERT_LT(payload.size(), 1u << 20) << codec.name;
    EXPECT_EQ(check(batch_of(codec.id, 1, payload), 1 << 20), ErrorCode::kMessageTooLarge) << codec.name;
    EXPECT_EQ(check(batch_of(codec.id, 1, payload), 16 << 20), ErrorCode::kNone) << codec.name;
  }
}

// Records larger than a decompressed piece (128 KiB) and records split across
// pieces are read like any other.
TEST(RecordValidationTest, RecordsSpanningPiecesAreChecked) {
  RecordFields large;
  large.value = std::string(300 << 10, 'v');
  std::string records;
  for (int32_t i = 0; i < 40; ++i) records += record(i, i % 7 == 3 ? large : RecordFields{});
  RecordFields bad = large;
  bad.trailing = "t";
  std::string bad_records = records + record(40, bad);
  for (const Codec& codec : kCodecs) {
    if (codec.id == Compression::kNone) continue;
    EXPECT_EQ(check(batch_of(codec.id, 40, codec.compress(records))), ErrorCode::kNone) << codec.name;
    EXPECT_EQ(check(batch_of(codec.id, 41, codec.compress(bad_records))), ErrorCode::kInvalidRecord) << codec.name;
  }
}

TEST(DecompressorTest, GivesBackExactlyWhatWasCompressed) {
  std::string data(1 << 20, '\0');
  uint32_t x = 7;
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(((x = x * 1103515245u + 12345u) >> 28) + 'a');
  for (const Codec& codec : kCodecs) {
    if (codec.id == Compression::kNone) continue;
    const std::string compressed = codec.compress(data);
    auto d = Decompressor::open(codec.id, compressed, data.size());
    std::string out;
    std::string_view piece;
    Decompressor::Status status;
    while ((status = d->next(piece)) == Decompressor::Status::kData) out += piece;
    EXPECT_EQ(status, Decompressor::Status::kEnd) << codec.name;
    EXPECT_TRUE(out == data) << codec.name;
    // One byte less allowed than the data: refused.
    auto tight = Decompressor::open(codec.id, compressed, data.size() - 1);
    while ((status = tight->next(piece)) == Decompressor::Status::kData) {
    }
    EXPECT_EQ(status, Decompressor::Status::kTooLarge) << codec.name;
  }
}

// A zstd frame whose window is larger than a small output bound allows is
// too large for it (the network thread's inline check then hands it to the
// CPU worker), and accepted under the default bound.
TEST(RecordValidationTest, AZstdWindowPastTheBoundIsTooLargeForIt) {
  const std::string three = record(0) + record(1) + record(2);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 24);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  std::string frame(ZSTD_compressBound(three.size()) + 64, '\0');
  ZSTD_outBuffer out{frame.data(), frame.size(), 0};
  ZSTD_inBuffer in{three.data(), three.size(), 0};
  // Streamed in two calls, as zstd-jni's output stream does: the header is
  // written before the size is known, so the window is not shrunk to the content.
  ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue);
  ZSTD_inBuffer none{nullptr, 0, 0};
  ASSERT_EQ(ZSTD_compressStream2(cctx, &out, &none, ZSTD_e_end), 0u);
  ZSTD_freeCCtx(cctx);
  frame.resize(out.pos);
  const std::string batch = batch_of(Compression::kZstd, 3, frame);
  EXPECT_EQ(check(batch, 256 << 10), ErrorCode::kMessageTooLarge);
  EXPECT_EQ(check(batch), ErrorCode::kNone);
}

// A failed stream must not leave the thread's codec context unusable for the
// next client (liblz4 stayed in error after a false content size, even reset:
// found by fuzz/, fuzz/regressions/record_batch/lz4-content-size-liar-poisons-next-frame).
TEST(RecordValidationTest, AFailedStreamLeavesTheNextOneUnharmed) {
  const std::string three = record(0) + record(1) + record(2);
  for (const Codec& codec : kCodecs) {
    if (codec.id == Compression::kNone) continue;
    const std::string valid = batch_of(codec.id, 3, codec.compress(three));
    std::string garbage(100, '\x5A');
    for (const std::string& bad : {batch_of(codec.id, 3, garbage), batch_of(codec.id, 3, codec.compress(three).substr(0, 9)),
                                   batch_of(Compression::kLz4, 3, lz4(three, 1ull << 40))}) {
      check(bad);
      EXPECT_EQ(check(valid), ErrorCode::kNone) << codec.name;
    }
  }
}

}  // namespace
}  // namespace sluice::protocol
