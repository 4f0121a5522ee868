#include "protocol/record_batch.h"

#include <algorithm>
#include <cstring>

#include "protocol/compression.h"
#include "protocol/crc32c.h"
#include "protocol/wire.h"

namespace sluice::protocol {
namespace {

template <typename T>
T load_be(const char* p) {
  using U = std::make_unsigned_t<T>;
  U v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<U>((v << 8) | static_cast<uint8_t>(p[i]));
  return static_cast<T>(v);
}

template <typename T>
void store_be(char* p, T value) {
  using U = std::make_unsigned_t<T>;
  U v = static_cast<U>(value);
  for (size_t i = sizeof(T); i-- > 0;) {
    p[i] = static_cast<char>(v & 0xFF);
    v = static_cast<U>(v >> 8);
  }
}

int64_t zigzag_decode(uint64_t raw) { return static_cast<int64_t>((raw >> 1) ^ (~(raw & 1) + 1)); }

// Decodes a zig-zag varint as records use it at `p` (before `end`); the
// position after it, or nullptr on truncation or over-long input.
const char* decode_record_varint(const char* p, const char* end, int64_t& out) {
  uint64_t raw = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const uint8_t b = static_cast<uint8_t>(*p++);
    raw |= static_cast<uint64_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) {
      out = zigzag_decode(raw);
      return p;
    }
  }
  return nullptr;
}

bool read_record_varint(std::string_view& in, int64_t& out) {
  const char* next = decode_record_varint(in.data(), in.data() + in.size(), out);
  if (!next) return false;
  in.remove_prefix(static_cast<size_t>(next - in.data()));
  return true;
}

// The position after the varint at `p` without decoding it (the same limits
// as decode_record_varint: at most ten bytes, all before `end`), or nullptr.
inline const char* skip_record_varint(const char* p, const char* end) {
  const char* const last = p + std::min<std::ptrdiff_t>(end - p, 10);
  for (; p < last; ++p)
    if (!(static_cast<uint8_t>(*p) & 0x80)) return p + 1;
  return nullptr;
}

// Java's ByteUtils.readVarint, which Kafka's record reader uses for every
// int32 field: at most five bytes, and the value is their low 32 bits.
inline const char* decode_varint32(const char* p, const char* end, int32_t& out) {
  uint32_t raw = 0;
  for (int shift = 0; shift < 35 && p < end; shift += 7) {
    const uint32_t b = static_cast<uint8_t>(*p++);
    raw |= (b & 0x7F) << shift;
    if (!(b & 0x80)) {
      out = static_cast<int32_t>((raw >> 1) ^ (~(raw & 1) + 1));
      return p;
    }
  }
  return nullptr;
}

// decode_varint32 without the loop for the one- and two-byte varints that
// nearly every length and offset delta in a record uses.
inline const char* decode_short_varint32(const char* p, const char* end, int32_t& out) {
  if (p < end) {
    const uint32_t b0 = static_cast<uint8_t>(p[0]);
    if (b0 < 0x80) {  // also the last byte of a record: a header count of 0
      out = static_cast<int32_t>((b0 >> 1) ^ (~(b0 & 1) + 1));
      return p + 1;
    }
    if (end - p >= 2 && static_cast<uint8_t>(p[1]) < 0x80) {
      const uint32_t raw = (b0 & 0x7F) | (static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 7);
      out = static_cast<int32_t>((raw >> 1) ^ (~(raw & 1) + 1));
      return p + 2;
    }
  }
  return decode_varint32(p, end, out);
}

// Reads a length-prefixed field of a record body (a key, a value, a header's
// key or value) and skips its bytes. `min` is -1 where the field is nullable
// (Kafka reads any negative length as null there, but consumers such as
// librdkafka stop for good on one below -1, so only -1 is taken) and 0 where
// it is not (header keys).
inline const char* skip_sized_field(const char* p, const char* end, int32_t min) {
  int32_t size = 0;
  p = decode_short_varint32(p, end, size);
  if (!p || size < min || size > end - p) return nullptr;
  return size > 0 ? p + size : p;
}

// Checks one record's body (what follows its length) as Kafka's record reader
// does: attributes, a timestamp delta of at most ten bytes, the offset delta
// (which must be the record's index), key, value, a header count that is not
// negative and each header, using up exactly the record's length.
inline bool check_record_body(const char* p, const char* end, int32_t expected_offset_delta) {
  // The usual record, read with few branches: timestamp and offset deltas of
  // one or two bytes, a null key or one under 64 bytes, a value length of one
  // or two bytes and no headers. A record this path does not take to the end
  // goes the general way below, which alone decides that a record is bad.
  const ptrdiff_t size = end - p;
  if (size >= 8) {
    const auto* u = reinterpret_cast<const uint8_t*>(p);
    ptrdiff_t at = 1;  // after the attributes
    // A varint of one or two bytes at `at` (the caller made sure two are there).
    auto short_varint = [&](uint32_t& raw) {
      if (u[at] < 0x80) {
        raw = u[at];
        at += 1;
      } else if (u[at + 1] < 0x80) {
        raw = (u[at] & 0x7Fu) | (uint32_t{u[at + 1]} << 7);
        at += 2;
      } else {
        return false;
      }
      return true;
    };
    uint32_t timestamp_delta, offset_delta, value;  // zig-zag encoded
    if (!short_varint(timestamp_delta) || !short_varint(offset_delta)) goto general;
    if (offset_delta != static_cast<uint32_t>(expected_offset_delta) << 1) goto general;  // twice the index
    const uint32_t key = u[at];  // 1 is a null key, 2k a key of k bytes
    if (key >= 0x80 || (key & 1 && key != 1)) goto general;
    at += 1 + (key >> 1);
    if (at + 2 > size || !short_varint(value)) goto general;
    if (value & 1) goto general;  // a null value, or a bad length
    if (at + static_cast<ptrdiff_t>(value >> 1) + 1 == size && u[size - 1] == 0) return true;  // no headers
  }
general:
  if (p == end) return false;
  p = skip_record_varint(p + 1, end);  // the attributes byte, then the timestamp delta
  int32_t offset_delta = 0, headers = 0;
  if (!p || !(p = decode_short_varint32(p, end, offset_delta)) || offset_delta != expected_offset_delta) return false;
  if (!(p = skip_sized_field(p, end, -1)) || !(p = skip_sized_field(p, end, -1))) return false;  // key, value
  if (!(p = decode_short_varint32(p, end, headers)) || headers < 0 || headers > end - p) return false;
  for (int32_t i = 0; i < headers; ++i)  // each header takes two bytes at least, so this loop is bounded by the record
    if (!(p = skip_sized_field(p, end, 0)) || !(p = skip_sized_field(p, end, -1))) return false;
  return p == end;
}

// Walks the records of an uncompressed batch: each one must be well formed
// (check_record_body), offset deltas must run 0..n-1, and the records must use
// up the batch exactly. Produce validation runs this over every record a
// client sends: plain pointers, one pass. It walks in steps (walk_to), so that
// it can follow the CRC through a batch while the CRC's last chunk is still in
// the L1 cache.
class RecordWalk {
 public:
  RecordWalk(std::string_view body, int32_t expected_count)
      : p_(body.data()), end_(body.data() + body.size()), expected_count_(expected_count) {}

  // Walks the records that start before `limit`; false once one fails.
  bool walk_to(const char* limit) {
    while (p_ && next_ < expected_count_ && p_ < limit) {
      int32_t length = 0;
      const char* p = decode_short_varint32(p_, end_, length);
      if (!p) {
        // Five bytes, all continued: Kafka reads a record's length outside its
        // record checks, and answers this one UNKNOWN_SERVER_ERROR.
        length_varint_too_long_ = end_ - p_ >= 5 && std::all_of(p_, p_ + 5, [](char c) { return c & 0x80; });
        return fail();
      }
      if (length < 1 || length > end_ - p || !check_record_body(p, p + length, next_)) return fail();
      p_ = p + length;
      ++next_;
    }
    return p_ != nullptr;
  }

  // Walks the rest; true if every record was consistent and they fill the body.
  bool finish() { return walk_to(end_) && next_ == expected_count_ && p_ == end_; }
  // Why the walk failed, when a record's length was more than five bytes.
  bool length_varint_too_long() const { return length_varint_too_long_; }

 private:
  bool fail() {
    p_ = nullptr;
    return false;
  }

  const char* p_;  // the next record; nullptr once one failed
  const char* const end_;
  const int32_t expected_count_;
  int32_t next_ = 0;
  bool length_varint_too_long_ = false;
};

// Reads a decompressed stream byte by byte or by skips, a piece at a time.
class PieceReader {
 public:
  explicit PieceReader(Decompressor& source) : source_(source) {}

  bool byte(uint8_t& b) {
    if (p_ == end_ && !refill()) return false;
    b = static_cast<uint8_t>(*p_++);
    ++consumed_;
    return true;
  }
  bool skip(uint64_t n) {
    while (n > 0) {
      if (p_ == end_ && !refill()) return false;
      const size_t step = static_cast<size_t>(std::min<uint64_t>(n, static_cast<uint64_t>(end_ - p_)));
      p_ += step;
      n -= step;
      consumed_ += step;
    }
    return true;
  }
  // True when the stream ended cleanly here.
  bool at_end() { return p_ == end_ && !refill() && status_ == Decompressor::Status::kEnd; }
  Decompressor::Status status() const { return status_; }
  uint64_t consumed() const { return consumed_; }

 private:
  bool refill() {
    while (status_ == Decompressor::Status::kData) {
      std::string_view piece;
      status_ = source_.next(piece);
      if (status_ == Decompressor::Status::kData && !piece.empty()) {
        p_ = piece.data();
        end_ = piece.data() + piece.size();
        return true;
      }
    }
    return false;
  }

  Decompressor& source_;
  Decompressor::Status status_ = Decompressor::Status::kData;
  const char* p_ = nullptr;
  const char* end_ = nullptr;
  uint64_t consumed_ = 0;
};

// The stream counterparts of decode_varint32 and skip_record_varint.
bool read_varint32(PieceReader& in, int32_t& out) {
  uint32_t raw = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    uint8_t b = 0;
    if (!in.byte(b)) return false;
    raw |= static_cast<uint32_t>(b & 0x7F) << shift;
    if (!(b & 0x80)) {
      out = static_cast<int32_t>((raw >> 1) ^ (~(raw & 1) + 1));
      return true;
    }
  }
  return false;
}

bool skip_varlong(PieceReader& in) {
  for (int i = 0; i < 10; ++i) {
    uint8_t b = 0;
    if (!in.byte(b)) return false;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// check_record_body over a stream: the same rules, with the record's length
// as a budget instead of an end pointer.
bool check_streamed_record(PieceReader& in, int32_t expected_offset_delta) {
  int32_t length = 0;
  if (!read_varint32(in, length) || length < 1) return false;
  const uint64_t end = in.consumed() + static_cast<uint64_t>(length);
  auto left = [&] { return static_cast<int64_t>(end) - static_cast<int64_t>(in.consumed()); };
  auto sized_field = [&](int32_t min) {
    int32_t size = 0;
    return read_varint32(in, size) && size >= min && size <= left() && (size <= 0 || in.skip(static_cast<uint64_t>(size)));
  };
  int32_t offset_delta = 0, headers = 0;
  if (!in.skip(1) || !skip_varlong(in) || !read_varint32(in, offset_delta) || offset_delta != expected_offset_delta)
    return false;
  if (!sized_field(-1) || !sized_field(-1)) return false;
  if (!read_varint32(in, headers) || headers < 0 || headers > left()) return false;
  for (int32_t i = 0; i < headers; ++i)
    if (!sized_field(0) || !sized_field(-1)) return false;
  return left() == 0;
}

// The CRC of a produced batch and, for an uncompressed one, the record walk,
// in one pass: chunk by chunk, so the walk reads what the CRC just pulled into
// the L1 cache instead of reading a ~1 MB batch from memory a second time.
struct BatchBodyCheck {
  bool crc_ok = false;
  bool records_ok = true;  // not walked when compressed
  bool length_varint_too_long = false;
};

BatchBodyCheck check_batch_body(std::string_view batch, const RecordBatchHeader& h) {
  // Two of crc32c's three-lane 12 KiB blocks: fits a 32 KiB L1 data cache.
  constexpr size_t kChunk = 24 * 1024;
  const std::string_view crc_input = batch.substr(RecordBatchHeader::kAttributesAt);
  const bool walk = h.compression() == Compression::kNone;
  RecordWalk records(batch.substr(RecordBatchHeader::kSize), h.records_count);
  BatchBodyCheck result;
  uint32_t crc = 0;
  for (size_t at = 0; at < crc_input.size(); at += kChunk) {
    const std::string_view chunk = crc_input.substr(at, kChunk);
    crc = crc32c_extend(crc, chunk);
    if (walk) records.walk_to(chunk.data() + chunk.size());  // a failed walk stays failed
  }
  result.crc_ok = crc == load_be<uint32_t>(batch.data() + RecordBatchHeader::kCrcAt);
  result.records_ok = !walk || records.finish();
  result.length_varint_too_long = records.length_varint_too_long();
  return result;
}

// Calls visit(offset_delta, timestamp_delta) for each record of an uncompressed
// batch body until it returns true; false if the records do not parse.
template <typename Visit>
bool visit_uncompressed_records(std::string_view body, int32_t count, Visit visit) {
  for (int32_t i = 0; i < count; ++i) {
    int64_t length = 0;
    if (!read_record_varint(body, length) || length < 1 || static_cast<uint64_t>(length) > body.size()) return false;
    std::string_view record = body.substr(1, static_cast<size_t>(length) - 1);  // skip attributes
    body.remove_prefix(static_cast<size_t>(length));
    int64_t timestamp_delta = 0, offset_delta = 0;
    if (!read_record_varint(record, timestamp_delta) || !read_record_varint(record, offset_delta)) return false;
    if (visit(offset_delta, timestamp_delta)) return true;
  }
  return true;
}

ProducedBatch fail(ErrorCode code, std::string message) {
  ProducedBatch result;
  result.error = code;
  result.error_message = std::move(message);
  return result;
}

}  // namespace

std::optional<std::pair<int64_t, int64_t>> find_record_by_timestamp(std::string_view batch, int64_t timestamp,
                                                                    int64_t min_offset) {
  auto h = RecordBatchHeader::parse(batch);
  if (!h || h->max_timestamp < timestamp || h->last_offset() < min_offset) return std::nullopt;
  const std::pair<int64_t, int64_t> whole_batch{std::max(h->base_offset, min_offset), h->max_timestamp};
  if (h->log_append_time() || h->compression() != Compression::kNone) return whole_batch;
  std::optional<std::pair<int64_t, int64_t>> found;
  visit_uncompressed_records(batch.substr(RecordBatchHeader::kSize), h->records_count, [&](int64_t od, int64_t td) {
    if (h->base_offset + od < min_offset || h->base_timestamp + td < timestamp) return false;
    found = std::pair{h->base_offset + od, h->base_timestamp + td};
    return true;
  });
  return found ? found : whole_batch;
}

std::optional<RecordBatchHeader> RecordBatchHeader::parse(std::string_view bytes) {
  if (bytes.size() < kSize) return std::nullopt;
  const char* p = bytes.data();
  RecordBatchHeader h;
  h.base_offset = load_be<int64_t>(p + 0);
  h.batch_length = load_be<int32_t>(p + 8);
  h.partition_leader_epoch = load_be<int32_t>(p + 12);
  h.magic = static_cast<int8_t>(p[16]);
  h.crc = load_be<uint32_t>(p + 17);
  h.attributes = load_be<int16_t>(p + 21);
  h.last_offset_delta = load_be<int32_t>(p + 23);
  h.base_timestamp = load_be<int64_t>(p + 27);
  h.max_timestamp = load_be<int64_t>(p + 35);
  h.producer_id = load_be<int64_t>(p + 43);
  h.producer_epoch = load_be<int16_t>(p + 51);
  h.base_sequence = load_be<int32_t>(p + 53);
  h.records_count = load_be<int32_t>(p + 57);
  return h;
}

bool record_batch_crc_ok(std::string_view batch) {
  if (batch.size() < RecordBatchHeader::kSize) return false;
  uint32_t stored = load_be<uint32_t>(batch.data() + RecordBatchHeader::kCrcAt);
  return crc32c(batch.substr(RecordBatchHeader::kAttributesAt)) == stored;
}

void set_base_offset(char* batch, int64_t base_offset) { store_be(batch + RecordBatchHeader::kBaseOffsetAt, base_offset); }

void stamp_log_append_time(char* batch, size_t size, int64_t now_ms) {
  int16_t attributes = load_be<int16_t>(batch + RecordBatchHeader::kAttributesAt);
  store_be<int16_t>(batch + RecordBatchHeader::kAttributesAt, static_cast<int16_t>(attributes | 0x08));
  store_be<int64_t>(batch + 35, now_ms);  // MaxTimestamp
  uint32_t crc = crc32c(std::string_view(batch + RecordBatchHeader::kAttributesAt, size - RecordBatchHeader::kAttributesAt));
  store_be<uint32_t>(batch + RecordBatchHeader::kCrcAt, crc);
}

void set_partition_leader_epoch(char* batch, int32_t epoch) { store_be(batch + RecordBatchHeader::kLeaderEpochAt, epoch); }

ProducedBatch check_produced_batch(std::optional<std::string_view> records, int16_t produce_version,
                                   int32_t max_message_bytes) {
  constexpr const char* kOneBatch =
      "Produce requests with version 3 are only allowed to contain exactly one record batch per partition";
  std::string_view bytes = records.value_or(std::string_view{});
  // Like Kafka's batch iterator, an incomplete trailing entry counts as absent.
  if (bytes.size() < RecordBatchHeader::kLogOverhead) return fail(ErrorCode::kInvalidRecord, kOneBatch);
  int32_t batch_length = load_be<int32_t>(bytes.data() + RecordBatchHeader::kBatchLengthAt);
  // Kafka rejects an entry too short to hold the header up to the magic byte as corrupt.
  if (batch_length < static_cast<int32_t>(RecordBatchHeader::kMagicAt + 1 - RecordBatchHeader::kLogOverhead))
    return fail(ErrorCode::kCorruptMessage, "Record size is less than the minimum record overhead");
  size_t total = RecordBatchHeader::kLogOverhead + static_cast<size_t>(batch_length);
  if (total > bytes.size()) return fail(ErrorCode::kInvalidRecord, kOneBatch);
  int8_t magic = static_cast<int8_t>(bytes[RecordBatchHeader::kMagicAt]);
  if (magic != 2)
    return fail(ErrorCode::kInvalidRecord,
                "Produce requests with version 3 are only allowed to contain record batches with magic version 2");
  if (total < RecordBatchHeader::kSize) return fail(ErrorCode::kCorruptMessage, "Record batch is shorter than its header");
  if (total != bytes.size()) return fail(ErrorCode::kInvalidRecord, kOneBatch);

  ProducedBatch result;
  result.header = *RecordBatchHeader::parse(bytes);
  const RecordBatchHeader& h = result.header;
  if (h.compression() == Compression::kZstd && produce_version < 7)
    return fail(ErrorCode::kUnsupportedCompressionType,
                "Produce requests with version < 7 are not allowed to use ZStandard compression");
  if (static_cast<int>(h.compression()) > static_cast<int>(Compression::kZstd))
    return fail(ErrorCode::kCorruptMessage, "Unknown compression codec id");
  if (h.base_offset != 0)
    return fail(ErrorCode::kInvalidRecord, "The baseOffset of the record batch in the append to a partition should be 0");
  if (total > static_cast<size_t>(max_message_bytes))
    return fail(ErrorCode::kMessageTooLarge, "The record batch is larger than the maximum allowed size");
  // One pass for both; the verdicts keep Kafka's order (CRC, header, records).
  const BatchBodyCheck body = check_batch_body(bytes, h);
  if (!body.crc_ok) return fail(ErrorCode::kCorruptMessage, "Record batch is corrupt (CRC mismatch)");
  if (h.last_offset_delta < 0 || static_cast<int64_t>(h.last_offset_delta) + 1 != h.records_count)
    return fail(ErrorCode::kInvalidRecord, "Inconsistent batch offset range and record count");
  if (h.is_control()) return fail(ErrorCode::kInvalidRecord, "Clients are not allowed to write control records");
  if (h.producer_id >= 0 && h.base_sequence < 0)
    return fail(ErrorCode::kInvalidRecord, "Invalid sequence number for a batch with a producer id");
  // Kafka's record reader gives no message for these (Produce v8+ error_message null).
  if (body.length_varint_too_long) return fail(ErrorCode::kUnknownServerError, "");
  if (!body.records_ok) return fail(ErrorCode::kInvalidRecord, "");
  result.records_unchecked = h.compression() != Compression::kNone;
  return result;
}

ProducedBatch check_compressed_records(std::string_view batch, const RecordBatchHeader& header,
                                       size_t max_uncompressed_bytes) {
  const std::string_view compressed = batch.substr(RecordBatchHeader::kSize);
  auto source = Decompressor::open(header.compression(), compressed, max_uncompressed_bytes);
  PieceReader in(*source);
  bool records_ok = true;
  for (int32_t i = 0; i < header.records_count && records_ok; ++i) records_ok = check_streamed_record(in, i);
  if (records_ok) records_ok = in.at_end();
  // A failure of the stream itself outranks what it did to the record being
  // read. Kafka answers a stream it cannot decompress UNKNOWN_SERVER_ERROR,
  // with no message, and malformed records in one it can INVALID_RECORD.
  switch (in.status()) {
    case Decompressor::Status::kCorrupt:
      return fail(ErrorCode::kUnknownServerError, "");
    case Decompressor::Status::kTooLarge:
      return fail(ErrorCode::kMessageTooLarge, "The record batch expands to more than " +
                                                   std::to_string(max_uncompressed_bytes) +
                                                   " bytes (socket.request.max.bytes) when decompressed");
    case Decompressor::Status::kData:
    case Decompressor::Status::kEnd:
      break;
  }
  if (!records_ok) return fail(ErrorCode::kInvalidRecord, "");
  ProducedBatch result;
  result.header = header;
  return result;
}

ProducedBatch check_produced_records(std::optional<std::string_view> records, int16_t produce_version,
                                     int32_t max_message_bytes, size_t max_uncompressed_bytes) {
  ProducedBatch result = check_produced_batch(records, produce_version, max_message_bytes);
  if (result.error != ErrorCode::kNone || !result.records_unchecked) return result;
  return check_compressed_records(*records, result.header, max_uncompressed_bytes);
}

namespace {

// One uncompressed batch of (key, value) records; null means absent.
std::string build_batch(int64_t base_offset, int32_t leader_epoch, int64_t timestamp_ms, size_t count,
                        const std::function<std::pair<std::optional<std::string_view>, std::optional<std::string_view>>(
                            size_t)>& record_at) {
  Writer w;
  w.write_int64(base_offset);
  const size_t length_at = w.reserve_int32();
  w.write_int32(leader_epoch);
  w.write_int8(2);  // magic
  const size_t crc_at = w.reserve_int32();
  w.write_int16(0);  // attributes: no compression, create time
  w.write_int32(static_cast<int32_t>(count) - 1);
  w.write_int64(timestamp_ms);
  w.write_int64(timestamp_ms);
  w.write_int64(-1);  // producer id
  w.write_int16(-1);  // producer epoch
  w.write_int32(-1);  // base sequence
  w.write_int32(static_cast<int32_t>(count));
  Writer record;
  auto write_bytes = [&record](std::optional<std::string_view> bytes) {
    if (!bytes) {
      record.write_varint(-1);
      return;
    }
    record.write_varint(static_cast<int32_t>(bytes->size()));
    record.write_raw(*bytes);
  };
  for (size_t i = 0; i < count; ++i) {
    const auto [key, value] = record_at(i);
    record.clear();
    record.write_int8(0);     // attributes
    record.write_varlong(0);  // timestamp delta
    record.write_varint(static_cast<int32_t>(i));
    write_bytes(key);
    write_bytes(value);
    record.write_varint(0);  // no headers
    w.write_varint(static_cast<int32_t>(record.buffer().size()));
    w.write_raw(record.buffer());
  }
  w.patch_int32(length_at, static_cast<int32_t>(w.buffer().size() - RecordBatchHeader::kLogOverhead));
  w.patch_int32(crc_at, static_cast<int32_t>(crc32c(std::string_view(w.buffer()).substr(RecordBatchHeader::kAttributesAt))));
  return std::move(w.buffer());
}

}  // namespace

std::string build_record_batch(int64_t base_offset, int32_t leader_epoch, int64_t timestamp_ms,
                               const std::vector<std::string>& values) {
  return build_batch(base_offset, leader_epoch, timestamp_ms, values.size(), [&values](size_t i) {
    return std::pair<std::optional<std::string_view>, std::optional<std::string_view>>(std::nullopt, values[i]);
  });
}

std::string build_keyed_record_batch(int64_t base_offset, int32_t leader_epoch, int64_t timestamp_ms,
                                     const std::vector<KeyedRecord>& records) {
  return build_batch(base_offset, leader_epoch, timestamp_ms, records.size(), [&records](size_t i) {
    std::optional<std::string_view> value;
    if (records[i].value) value = *records[i].value;
    return std::pair<std::optional<std::string_view>, std::optional<std::string_view>>(records[i].key, value);
  });
}

void visit_records(std::string_view bytes, const RecordVisitor& visit) {
  while (!bytes.empty()) {
    auto header = RecordBatchHeader::parse(bytes);
    if (!header || header->batch_length < 0 || bytes.size() < header->total_size())
      throw DecodeError("a record batch is cut short");
    const std::string_view batch = bytes.substr(0, header->total_size());
    bytes.remove_prefix(batch.size());
    if (header->magic != 2 || !record_batch_crc_ok(batch)) throw DecodeError("a record batch fails its checks");
    if (header->compression() != Compression::kNone) throw DecodeError("a compressed record batch where none was expected");
    if (header->is_control()) continue;
    Reader r(batch.substr(RecordBatchHeader::kSize));
    for (int32_t i = 0; i < header->records_count; ++i) {
      const int32_t length = r.read_varint();
      if (length < 0) throw DecodeError("negative record length");
      Reader rec(r.read_raw(static_cast<size_t>(length)));
      rec.read_int8();
      rec.read_varlong();
      const int32_t offset_delta = rec.read_varint();
      const int32_t key_length = rec.read_varint();
      std::optional<std::string_view> key;
      if (key_length >= 0) key = rec.read_raw(static_cast<size_t>(key_length));
      const int32_t value_length = rec.read_varint();
      std::optional<std::string_view> value;
      if (value_length >= 0) value = rec.read_raw(static_cast<size_t>(value_length));
      visit(header->base_offset + offset_delta, key, value);
    }
  }
}

void visit_record_values(std::string_view bytes,
                         const std::function<void(int64_t offset, std::optional<std::string_view> value)>& visit) {
  visit_records(bytes, [&visit](int64_t offset, std::optional<std::string_view>, std::optional<std::string_view> value) {
    visit(offset, value);
  });
}

}  // namespace sluice::protocol
