#include "protocol/record_batch.h"

#include <algorithm>
#include <cstring>

#include "protocol/crc32c.h"

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

// decode_record_varint for the one- and two-byte varints that nearly every
// record's length and offset delta use, without the loop.
inline const char* decode_short_record_varint(const char* p, const char* end, int64_t& out) {
  if (end - p >= 2) {
    const uint64_t b0 = static_cast<uint8_t>(p[0]);
    const uint64_t b1 = static_cast<uint8_t>(p[1]);
    if (b0 < 0x80) {
      out = zigzag_decode(b0);
      return p + 1;
    }
    if (b1 < 0x80) {
      out = zigzag_decode((b0 & 0x7F) | (b1 << 7));
      return p + 2;
    }
  }
  return decode_record_varint(p, end, out);
}

// The position after the varint at `p` without decoding it (the same limits
// as decode_record_varint: at most ten bytes, all before `end`), or nullptr.
inline const char* skip_record_varint(const char* p, const char* end) {
  const char* const last = p + std::min<std::ptrdiff_t>(end - p, 10);
  for (; p < last; ++p)
    if (!(static_cast<uint8_t>(*p) & 0x80)) return p + 1;
  return nullptr;
}

// Walks the records of an uncompressed batch: each one must parse, offset
// deltas must run 0..n-1, and the records must use up the batch exactly.
// Produce validation runs this over every record a client sends: plain
// pointers, one pass, and only what the check needs is decoded (the timestamp
// delta is skipped). It walks in steps (walk_to), so that it can follow the
// CRC through a batch while the CRC's last chunk is still in the L1 cache.
class RecordWalk {
 public:
  RecordWalk(std::string_view body, int32_t expected_count)
      : p_(body.data()), end_(body.data() + body.size()), expected_count_(expected_count) {}

  // Walks the records that start before `limit`; false once one fails.
  bool walk_to(const char* limit) {
    while (p_ && next_ < expected_count_ && p_ < limit) {
      int64_t length = 0, offset_delta = 0;
      const char* p = decode_short_record_varint(p_, end_, length);
      if (!p || length < 1 || length > end_ - p) return fail();
      const char* const record_end = p + length;
      const char* q = skip_record_varint(p + 1, record_end);  // the timestamp delta, after the attributes byte
      if (!q || !decode_short_record_varint(q, record_end, offset_delta) || offset_delta != next_) return fail();
      p_ = record_end;
      ++next_;
    }
    return p_ != nullptr;
  }

  // Walks the rest; true if every record was consistent and they fill the body.
  bool finish() { return walk_to(end_) && next_ == expected_count_ && p_ == end_; }

 private:
  bool fail() {
    p_ = nullptr;
    return false;
  }

  const char* p_;  // the next record; nullptr once one failed
  const char* const end_;
  const int32_t expected_count_;
  int32_t next_ = 0;
};

// The CRC of a produced batch and, for an uncompressed one, the record walk,
// in one pass: chunk by chunk, so the walk reads what the CRC just pulled into
// the L1 cache instead of reading a ~1 MB batch from memory a second time.
struct BatchBodyCheck {
  bool crc_ok = false;
  bool records_ok = true;  // not walked when compressed
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

ProducedBatch check_produced_records(std::optional<std::string_view> records, int16_t produce_version,
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
  if (!body.records_ok)
    return fail(ErrorCode::kInvalidRecord, "Records do not match the batch's record count and size");
  return result;
}

}  // namespace sluice::protocol
