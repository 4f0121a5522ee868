// Idempotent producers' state for one partition: for each producer id, its
// current epoch and the sequence ranges (with their offsets) of its last five
// batches. A retried batch is recognised as a duplicate and answered with the
// offsets it got the first time; a gap or a stale epoch is refused. Kafka's
// rules, from its producer state manager:
//  - a batch of an older epoch: INVALID_PRODUCER_EPOCH;
//  - a batch of a newer epoch must start at sequence 0 (unless the producer was
//    unknown here): OUT_OF_ORDER_SEQUENCE_NUMBER otherwise;
//  - within an epoch each batch starts right after the last one (sequences wrap
//    from INT32_MAX to 0): OUT_OF_ORDER_SEQUENCE_NUMBER otherwise;
//  - a producer this partition has no state for may start at any sequence.
//
// The table is plain data: the replica manager persists it as snapshots (see
// serialize/parse) and rebuilds what came after the last snapshot by replaying
// batch headers from the log, so a replica can later rebuild it the same way.
//
// Not thread-safe: used from the network thread.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "protocol/error_codes.h"

namespace sluice::broker {

class ProducerStateTable {
 public:
  // Kafka keeps the last five batches per producer: a producer has at most
  // five requests in flight, so a retry is always one of them.
  static constexpr size_t kRememberedBatches = 5;

  struct Batch {
    int32_t first_sequence = 0;
    int32_t last_sequence = 0;
    int64_t first_offset = 0;
    int64_t last_offset = 0;
    int64_t max_timestamp = 0;
  };

  struct Producer {
    int16_t epoch = -1;
    std::deque<Batch> batches;   // oldest first, at most kRememberedBatches
    int64_t last_timestamp = 0;  // the newest batch's max timestamp, for expiry
  };

  struct Verdict {
    enum class Kind { kAppend, kDuplicate, kReject };
    Kind kind = Kind::kAppend;
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    std::string message;  // for kReject
    Batch duplicate;      // for kDuplicate: what the batch got the first time
  };

  // What to do with a batch of `record_count` records from `producer_id`.
  Verdict check(int64_t producer_id, int16_t epoch, int32_t first_sequence, int32_t record_count) const;

  // Records an appended batch (after check() said kAppend, or when replaying
  // the log during recovery, where the log is the truth and nothing is checked).
  void record(int64_t producer_id, int16_t epoch, int32_t first_sequence, int32_t record_count, int64_t first_offset,
              int64_t last_offset, int64_t max_timestamp);

  // Forgets producers whose newest batch is older than `expiration_ms` at
  // `now_ms` (producer.id.expiration.ms). Returns how many were forgotten.
  size_t expire(int64_t now_ms, int64_t expiration_ms);

  const Producer* find(int64_t producer_id) const;
  size_t size() const { return producers_.size(); }
  bool empty() const { return producers_.empty(); }

  // Changed since the last serialize()?
  bool dirty() const { return dirty_; }
  void mark_dirty() { dirty_ = true; }  // a snapshot was not stored after all

  // A snapshot of the table as of log offset `next_offset` (the batches below
  // it are in the table). Clears the dirty flag.
  std::string serialize(int64_t next_offset);
  // The table and offset of a snapshot; nullopt when it does not parse.
  static std::optional<std::pair<ProducerStateTable, int64_t>> parse(std::string_view snapshot);

  // The last sequence of a batch of `record_count` records (sequences wrap).
  static int32_t last_sequence(int32_t first_sequence, int32_t record_count);

 private:
  std::unordered_map<int64_t, Producer> producers_;
  bool dirty_ = false;
};

}  // namespace sluice::broker
