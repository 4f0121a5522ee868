// Record batch v2 (magic 2): the unit Kafka producers send, brokers store and
// consumers fetch. The broker keeps batches as the producer sent them; it only
// reads the 61-byte header, checks it, and stamps base offset and leader epoch
// (both outside the CRC, so no recompute is needed).
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error_codes.h"

namespace sluice::protocol {

enum class Compression : int8_t { kNone = 0, kGzip = 1, kSnappy = 2, kLz4 = 3, kZstd = 4 };

struct RecordBatchHeader {
  // Byte offsets of the fields inside a batch.
  static constexpr size_t kBaseOffsetAt = 0;
  static constexpr size_t kBatchLengthAt = 8;
  static constexpr size_t kLeaderEpochAt = 12;
  static constexpr size_t kMagicAt = 16;
  static constexpr size_t kCrcAt = 17;
  static constexpr size_t kAttributesAt = 21;  // the CRC covers from here to the end
  static constexpr size_t kSize = 61;
  // Base offset and batch length: the framing shared by every log entry.
  static constexpr size_t kLogOverhead = 12;

  int64_t base_offset = 0;
  int32_t batch_length = 0;  // bytes after the length field
  int32_t partition_leader_epoch = -1;
  int8_t magic = 0;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t records_count = 0;

  Compression compression() const { return static_cast<Compression>(attributes & 0x07); }
  bool log_append_time() const { return attributes & 0x08; }
  bool is_transactional() const { return attributes & 0x10; }
  bool is_control() const { return attributes & 0x20; }
  int64_t last_offset() const { return base_offset + last_offset_delta; }
  size_t total_size() const { return kLogOverhead + static_cast<size_t>(batch_length); }

  // Reads the header of the batch at the start of `bytes`; nullopt when fewer
  // than kSize bytes are there. Checks nothing else.
  static std::optional<RecordBatchHeader> parse(std::string_view bytes);
};

// An uncompressed batch of `values` (no keys, no headers) at offsets
// base_offset.., every record stamped `timestamp_ms`: how a node writes its
// own records (the metadata log as brokers fetch it).
std::string build_record_batch(int64_t base_offset, int32_t leader_epoch, int64_t timestamp_ms,
                               const std::vector<std::string>& values);
// The same with a key per record; a null value is a tombstone (the
// coordinators' records in __consumer_offsets).
struct KeyedRecord {
  std::string key;
  std::optional<std::string> value;
};
std::string build_keyed_record_batch(int64_t base_offset, int32_t leader_epoch, int64_t timestamp_ms,
                                     const std::vector<KeyedRecord>& records);
// Calls `visit` with the offset, key and value of every record of the
// uncompressed batches in `bytes` (complete batches, one after the other).
// Throws DecodeError on a batch that is cut, compressed, or fails its CRC.
using RecordVisitor = std::function<void(int64_t offset, std::optional<std::string_view> key,
                                         std::optional<std::string_view> value)>;
void visit_records(std::string_view bytes, const RecordVisitor& visit);
// The same, values only.
void visit_record_values(std::string_view bytes,
                         const std::function<void(int64_t offset, std::optional<std::string_view> value)>& visit);

// True when the stored CRC matches the bytes (the batch must be complete).
bool record_batch_crc_ok(std::string_view batch);

void set_base_offset(char* batch, int64_t base_offset);
// For topics with message.timestamp.type=LogAppendTime: marks the batch's
// timestamps as append time, sets MaxTimestamp to `now_ms` (consumers read it
// as every record's timestamp) and recomputes the CRC, as Kafka does.
void stamp_log_append_time(char* batch, size_t size, int64_t now_ms);
void set_partition_leader_epoch(char* batch, int32_t epoch);

// The first record of a complete batch whose timestamp is >= `timestamp`, as
// (offset, timestamp). For LogAppendTime batches every record has the batch's
// MaxTimestamp. Compressed batches are not opened: the answer is the batch's
// base offset and MaxTimestamp (at most one batch early). nullopt if none.
// Records below `min_offset` (the log start offset) are skipped.
std::optional<std::pair<int64_t, int64_t>> find_record_by_timestamp(std::string_view batch, int64_t timestamp,
                                                                    int64_t min_offset = INT64_MIN);

// The outcome of checking the records a producer sent for one partition.
struct ProducedBatch {
  ErrorCode error = ErrorCode::kNone;
  std::string error_message;  // Kafka's wording where it has one; empty when ok
  RecordBatchHeader header;
  // Set by check_produced_batch on a compressed batch that passed: its records
  // are still to be checked, with check_compressed_records.
  bool records_unchecked = false;
};

// The most a compressed batch may expand to unless the caller says otherwise:
// socket.request.max.bytes' default, what an uncompressed request may carry.
// (It is also librdkafka's default receive.message.max.bytes.)
inline constexpr size_t kDefaultMaxUncompressedBatchBytes = 104857600;

// Applies the checks Kafka makes on a client's Produce (v3+) records for one
// partition: exactly one complete magic-2 batch, base offset 0, size within
// `max_message_bytes`, a valid CRC, a consistent offset range and record count,
// no control batch, a sequence when a producer id is set, zstd only from
// Produce v7, and every record well formed (key, value and header lengths
// within the record, a header count that is not negative, nothing left over,
// offset deltas 0..n-1) with the records exactly filling the batch; a
// compressed batch is decompressed (at most `max_uncompressed_bytes`, which
// is refused with MESSAGE_TOO_LARGE) and its records checked the same way.
// Kafka's answers (measured, compat-tests/test_hostile_batches.py): a record
// that does not parse is INVALID_RECORD, a record length of over five bytes
// and a stream that does not decompress are UNKNOWN_SERVER_ERROR, none with a
// message. Sluice is stricter than Kafka where Kafka stores what consumers
// cannot read: a key, value or header value length below -1 (Kafka reads it
// as null; librdkafka stops on it for good), an LZ4 frame whose content size
// is false (librdkafka cannot decompress it), and a batch that expands past
// the bound (Kafka stores a 4 GiB zstd batch that librdkafka refuses to open).
ProducedBatch check_produced_records(std::optional<std::string_view> records, int16_t produce_version,
                                     int32_t max_message_bytes,
                                     size_t max_uncompressed_bytes = kDefaultMaxUncompressedBatchBytes);

// check_produced_records in two steps, so that the costly one (opening a
// compressed batch) can run off the network thread: everything but a
// compressed batch's records, then those records.
ProducedBatch check_produced_batch(std::optional<std::string_view> records, int16_t produce_version,
                                   int32_t max_message_bytes);
ProducedBatch check_compressed_records(std::string_view batch, const RecordBatchHeader& header,
                                       size_t max_uncompressed_bytes);

}  // namespace sluice::protocol
