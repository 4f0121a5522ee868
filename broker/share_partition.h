// One share group's state on one partition (KIP-932's share-partition), kept
// by the partition's leader: which records are handed out, to which member,
// until when, how many times, and which are done with.
//
// Offsets from the share-partition start offset (SPSO: everything below is
// done) to its end offset (SPEO: the first offset never handed out) are "in
// flight", each in one of Kafka's states:
//   AVAILABLE     may be handed out (again)
//   ACQUIRED      handed to one member, locked until a deadline
//   ACKNOWLEDGED  accepted by the member that had it: done
//   ARCHIVED      rejected, or handed out the delivery-count limit times: done
// Acquiring a record counts a delivery. A lock that expires or a release
// makes it AVAILABLE again, or ARCHIVED once its deliveries reached the
// limit; the close of the holder's share session makes it AVAILABLE with that
// delivery not counted (Kafka's rules). The SPSO moves over every done record at the front, and
// the in-flight window (SPEO - SPSO) grows past max_record_locks only to
// finish a log batch it let in (acquire's kFinishBatch).
//
// A plain value with no I/O: the owner (share_groups.h) persists what
// durable_state() gives after a change, and reads the log.
#pragma once

#include <climits>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error_codes.h"

namespace sluice::broker {

// Kafka's RecordState ids (as its share-group state records store them).
enum class ShareRecordState : int8_t { kAvailable = 0, kAcquired = 1, kAcknowledged = 2, kArchived = 4 };

// ShareFetch / ShareAcknowledge acknowledgement types.
enum class AcknowledgeType : int8_t { kGap = 0, kAccept = 1, kRelease = 2, kReject = 3, kRenew = 4 };

struct SharePartitionLimits {
  int64_t lock_duration_ms = 30000;  // group.share.record.lock.duration.ms
  int32_t delivery_count_limit = 5;  // group.share.delivery.count.limit
  int32_t max_record_locks = 2000;   // group.share.partition.max.record.locks: the in-flight window
};

// Consecutive offsets handed to a member in one acquisition, with the same delivery count.
struct AcquiredRange {
  int64_t first_offset = 0;
  int64_t last_offset = 0;
  int16_t delivery_count = 0;
  bool operator==(const AcquiredRange&) const = default;
};

// The durable part: the SPSO and, for the offsets in flight, their state
// (ACQUIRED is stored as AVAILABLE: locks do not survive) and delivery count,
// as runs of equal (state, count). Kafka's ShareSnapshot state batches.
struct ShareStateBatch {
  int64_t first_offset = 0;
  int64_t last_offset = 0;
  ShareRecordState state = ShareRecordState::kAvailable;
  int16_t delivery_count = 0;
  bool operator==(const ShareStateBatch&) const = default;
};
struct DurableShareState {
  int64_t start_offset = 0;
  std::vector<ShareStateBatch> batches;  // ascending, within [start_offset, end)
  bool operator==(const DurableShareState&) const = default;
};

class SharePartition {
 public:
  SharePartition(int64_t start_offset, SharePartitionLimits limits);
  // Back from durable state: what was ACQUIRED when it was written is AVAILABLE.
  static SharePartition restore(const DurableShareState& state, SharePartitionLimits limits);

  int64_t start_offset() const { return start_offset_; }
  int64_t end_offset() const { return start_offset_ + static_cast<int64_t>(records_.size()); }
  const SharePartitionLimits& limits() const { return limits_; }
  void set_limits(SharePartitionLimits limits) { limits_ = limits; }

  // Hands `member` up to `max_records` records below `high_watermark`: AVAILABLE
  // ones in flight first (lowest offsets first), then new ones from the SPSO's
  // window. Each counts a delivery and is locked until now + the lock duration.
  // `kFinishBatch`: new records even past the window's bound, to finish a log
  // batch whose first records the window let in (Kafka checks for room before
  // an acquisition, then hands out whole batches): a batch split by the bound
  // would be sent twice, and its records decoded twice by the clients.
  enum class Window { kBounded, kFinishBatch };
  std::vector<AcquiredRange> acquire(std::string_view member, int32_t max_records, int64_t high_watermark,
                                     int64_t now_ms, Window window = Window::kBounded);

  // Undoes the part of an acquisition at or past `from_offset` that could not
  // be sent (the answer was full): those records are as before, their
  // delivery not counted. `ranges` (what acquire() returned) is cut to match.
  void unacquire(std::vector<AcquiredRange>& ranges, int64_t from_offset);

  // One acknowledgement batch: `types` holds one type for the whole range, or one per offset.
  struct Acknowledgement {
    int64_t first_offset = 0;
    int64_t last_offset = 0;
    std::vector<int8_t> types;
  };
  // Applies a member's acknowledgements of this partition, all or none.
  // Offsets below the SPSO are skipped (done already); every other one must
  // be ACQUIRED by the member (INVALID_RECORD_STATE). A malformed batch (last
  // before first, batches out of order, a wrong number of types, an unknown
  // type, or Renew without `renew_allowed`) is INVALID_REQUEST, as is a range
  // reaching past the window (Kafka's answers, checked against Kafka 4.4). Accept acknowledges, Reject and Gap archive,
  // Release gives back, Renew pushes the lock out.
  protocol::ErrorCode acknowledge(std::string_view member, const std::vector<Acknowledgement>& batches,
                                  bool renew_allowed, int64_t now_ms);
  // One batch (tests, and callers with a single range).
  protocol::ErrorCode acknowledge(std::string_view member, int64_t first_offset, int64_t last_offset,
                                  const std::vector<int8_t>& types, int64_t now_ms) {
    return acknowledge(member, {{first_offset, last_offset, types}}, true, now_ms);
  }

  // Locks that passed their deadline: their records go back (or are archived).
  // True when something changed.
  bool expire_locks(int64_t now_ms);
  // Everything `member` holds goes back (it left, or its share session closed).
  bool release_member(std::string_view member);
  // No lock ends before this (INT64_MAX: none is held). A lower bound kept as
  // locks are taken, exact after expire_locks(): the periodic check of every
  // share-partition costs nothing while no lock is due.
  int64_t next_deadline() const { return next_deadline_; }

  // Moves the SPSO to `offset` (an offset reset, or the log start passing it):
  // what lies below is dropped, what lies above is kept.
  void reset_start(int64_t offset);

  DurableShareState durable_state() const;
  // Records in flight by state (for describing the group).
  int64_t count(ShareRecordState state) const;
  ShareRecordState state_of(int64_t offset) const;  // kAvailable outside the window too

 private:
  struct InFlight {
    ShareRecordState state = ShareRecordState::kAvailable;
    int16_t delivery_count = 0;
    int64_t deadline_ms = 0;
    std::shared_ptr<const std::string> holder;  // the member, while ACQUIRED
  };

  // A record that comes back: AVAILABLE, or ARCHIVED at the delivery limit.
  void give_back(InFlight& record) const;
  // Drops the done records at the front.
  void advance_start();

  int64_t start_offset_;
  SharePartitionLimits limits_;
  std::deque<InFlight> records_;  // offset start_offset_ + i
  int64_t next_deadline_ = INT64_MAX;
};

}  // namespace sluice::broker
