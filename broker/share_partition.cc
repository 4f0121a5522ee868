#include "broker/share_partition.h"

#include <algorithm>
#include <climits>

namespace sluice::broker {

using protocol::ErrorCode;

SharePartition::SharePartition(int64_t start_offset, SharePartitionLimits limits)
    : start_offset_(start_offset), limits_(limits) {}

SharePartition SharePartition::restore(const DurableShareState& state, SharePartitionLimits limits) {
  SharePartition p(state.start_offset, limits);
  for (const auto& batch : state.batches) {
    if (batch.last_offset < batch.first_offset || batch.first_offset < p.end_offset()) continue;  // not ours
    // Offsets the state skips (none in what this class writes) are AVAILABLE, never delivered.
    p.records_.resize(static_cast<size_t>(batch.first_offset - p.start_offset_));
    ShareRecordState state_now = batch.state == ShareRecordState::kAcquired ? ShareRecordState::kAvailable : batch.state;
    // A record that was held at its last delivery when the state was written is done.
    if (state_now == ShareRecordState::kAvailable && batch.delivery_count >= limits.delivery_count_limit)
      state_now = ShareRecordState::kArchived;
    for (int64_t o = batch.first_offset; o <= batch.last_offset; ++o)
      p.records_.push_back({state_now, batch.delivery_count, 0, nullptr});
  }
  p.advance_start();
  return p;
}

std::vector<AcquiredRange> SharePartition::acquire(std::string_view member, int32_t max_records,
                                                   int64_t high_watermark, int64_t now_ms, Window window) {
  std::vector<AcquiredRange> acquired;
  if (max_records <= 0) return acquired;
  auto holder = std::make_shared<const std::string>(member);
  const int64_t deadline = now_ms + limits_.lock_duration_ms;
  next_deadline_ = std::min(next_deadline_, deadline);
  int32_t left = max_records;
  auto take = [&](int64_t offset, InFlight& record) {
    record.state = ShareRecordState::kAcquired;
    record.delivery_count = static_cast<int16_t>(std::min<int>(record.delivery_count + 1, INT16_MAX));
    record.deadline_ms = deadline;
    record.holder = holder;
    if (!acquired.empty() && acquired.back().last_offset == offset - 1 &&
        acquired.back().delivery_count == record.delivery_count)
      acquired.back().last_offset = offset;
    else
      acquired.push_back({offset, offset, record.delivery_count});
    --left;
  };
  // Records back in the pool, lowest first; one already delivered the limit
  // times (the limit was lowered since) is archived instead.
  bool archived = false;
  for (size_t i = 0; i < records_.size() && left > 0; ++i) {
    const int64_t offset = start_offset_ + static_cast<int64_t>(i);
    if (offset >= high_watermark) break;
    if (records_[i].state != ShareRecordState::kAvailable) continue;
    if (records_[i].delivery_count >= limits_.delivery_count_limit) {
      records_[i].state = ShareRecordState::kArchived;
      archived = true;
      continue;
    }
    take(offset, records_[i]);
  }
  if (archived) advance_start();
  // New ones, while the window has room (or to finish a batch).
  while (left > 0 && end_offset() < high_watermark &&
         (window == Window::kFinishBatch || static_cast<int64_t>(records_.size()) < limits_.max_record_locks)) {
    const int64_t offset = end_offset();
    records_.emplace_back();
    take(offset, records_.back());
  }
  return acquired;
}

void SharePartition::unacquire(std::vector<AcquiredRange>& ranges, int64_t from_offset) {
  for (auto& range : ranges)
    for (int64_t o = std::max(range.first_offset, from_offset); o <= range.last_offset; ++o) {
      InFlight& record = records_[static_cast<size_t>(o - start_offset_)];
      record.state = ShareRecordState::kAvailable;
      record.delivery_count = static_cast<int16_t>(record.delivery_count - 1);
      record.holder.reset();
      record.deadline_ms = 0;
    }
  std::erase_if(ranges, [&](const AcquiredRange& r) { return r.first_offset >= from_offset; });
  if (!ranges.empty() && ranges.back().last_offset >= from_offset) ranges.back().last_offset = from_offset - 1;
  advance_start();
}

ErrorCode SharePartition::acknowledge(std::string_view member, const std::vector<Acknowledgement>& batches,
                                      bool renew_allowed, int64_t now_ms) {
  // Check everything first: a partition's acknowledgements apply all or none.
  int64_t previous_last = INT64_MIN;
  for (const auto& batch : batches) {
    if (batch.first_offset < 0 || batch.last_offset < batch.first_offset || batch.first_offset <= previous_last ||
        batch.types.empty())
      return ErrorCode::kInvalidRequest;
    previous_last = batch.last_offset;
    // Past what was ever handed out: INVALID_REQUEST, as Kafka answers (checked
    // before the length, which could overflow).
    if (batch.last_offset >= end_offset()) return ErrorCode::kInvalidRequest;
    const int64_t length = batch.last_offset - batch.first_offset + 1;
    if (batch.types.size() != 1 && static_cast<int64_t>(batch.types.size()) != length) return ErrorCode::kInvalidRequest;
    for (int8_t type : batch.types)
      if (type < static_cast<int8_t>(AcknowledgeType::kGap) || type > static_cast<int8_t>(AcknowledgeType::kRenew) ||
          (type == static_cast<int8_t>(AcknowledgeType::kRenew) && !renew_allowed))
        return ErrorCode::kInvalidRequest;
    for (int64_t o = std::max(batch.first_offset, start_offset_); o <= batch.last_offset; ++o) {
      const InFlight& record = records_[static_cast<size_t>(o - start_offset_)];
      if (record.state != ShareRecordState::kAcquired || !record.holder || *record.holder != member)
        return ErrorCode::kInvalidRecordState;
    }
  }
  for (const auto& batch : batches) {
    for (int64_t o = std::max(batch.first_offset, start_offset_); o <= batch.last_offset; ++o) {
      InFlight& record = records_[static_cast<size_t>(o - start_offset_)];
      const size_t k = static_cast<size_t>(o - batch.first_offset);
      const auto type = static_cast<AcknowledgeType>(batch.types.size() == 1 ? batch.types[0] : batch.types[k]);
      switch (type) {
        case AcknowledgeType::kAccept:
          record.state = ShareRecordState::kAcknowledged;
          record.holder.reset();
          break;
        case AcknowledgeType::kGap:  // no record at this offset (compacted away)
        case AcknowledgeType::kReject:
          record.state = ShareRecordState::kArchived;
          record.holder.reset();
          break;
        case AcknowledgeType::kRelease:
          give_back(record);
          break;
        case AcknowledgeType::kRenew:
          record.deadline_ms = now_ms + limits_.lock_duration_ms;
          break;
      }
    }
  }
  advance_start();
  return ErrorCode::kNone;
}

void SharePartition::give_back(InFlight& record) const {
  record.state = record.delivery_count >= limits_.delivery_count_limit ? ShareRecordState::kArchived
                                                                       : ShareRecordState::kAvailable;
  record.holder.reset();
  record.deadline_ms = 0;
}

bool SharePartition::expire_locks(int64_t now_ms) {
  if (next_deadline_ > now_ms) return false;
  bool changed = false;
  next_deadline_ = INT64_MAX;
  for (InFlight& record : records_) {
    if (record.state != ShareRecordState::kAcquired) continue;
    if (record.deadline_ms <= now_ms) {
      give_back(record);
      changed = true;
    } else {
      next_deadline_ = std::min(next_deadline_, record.deadline_ms);
    }
  }
  if (changed) advance_start();
  return changed;
}

bool SharePartition::release_member(std::string_view member) {
  bool changed = false;
  for (InFlight& record : records_)
    if (record.state == ShareRecordState::kAcquired && record.holder && *record.holder == member) {
      // Not counted: the member never got to work on it.
      record.state = ShareRecordState::kAvailable;
      record.delivery_count = static_cast<int16_t>(std::max(record.delivery_count - 1, 0));
      record.holder.reset();
      record.deadline_ms = 0;
      changed = true;
    }
  if (changed) advance_start();
  return changed;
}

void SharePartition::reset_start(int64_t offset) {
  if (records_.empty()) {
    start_offset_ = offset;
    return;
  }
  if (offset <= start_offset_) {
    if (offset < start_offset_) {
      // Backwards (an offset reset): what lies between is to be delivered again.
      records_.insert(records_.begin(), static_cast<size_t>(start_offset_ - offset), InFlight{});
      start_offset_ = offset;
    }
    return;
  }
  const int64_t drop = std::min<int64_t>(offset - start_offset_, static_cast<int64_t>(records_.size()));
  records_.erase(records_.begin(), records_.begin() + drop);
  start_offset_ = offset;
  advance_start();
}

void SharePartition::advance_start() {
  while (!records_.empty() && (records_.front().state == ShareRecordState::kAcknowledged ||
                               records_.front().state == ShareRecordState::kArchived)) {
    records_.pop_front();
    ++start_offset_;
  }
  // Trailing AVAILABLE records never delivered are not in flight at all.
  while (!records_.empty() && records_.back().state == ShareRecordState::kAvailable &&
         records_.back().delivery_count == 0)
    records_.pop_back();
}

DurableShareState SharePartition::durable_state() const {
  DurableShareState out{start_offset_, {}};
  for (size_t i = 0; i < records_.size(); ++i) {
    const int64_t offset = start_offset_ + static_cast<int64_t>(i);
    const InFlight& r = records_[i];
    const ShareRecordState state = r.state == ShareRecordState::kAcquired ? ShareRecordState::kAvailable : r.state;
    if (!out.batches.empty() && out.batches.back().last_offset == offset - 1 && out.batches.back().state == state &&
        out.batches.back().delivery_count == r.delivery_count)
      out.batches.back().last_offset = offset;
    else
      out.batches.push_back({offset, offset, state, r.delivery_count});
  }
  return out;
}

int64_t SharePartition::count(ShareRecordState state) const {
  return std::count_if(records_.begin(), records_.end(), [&](const InFlight& r) { return r.state == state; });
}

ShareRecordState SharePartition::state_of(int64_t offset) const {
  if (offset < start_offset_ || offset >= end_offset()) return ShareRecordState::kAvailable;
  return records_[static_cast<size_t>(offset - start_offset_)].state;
}

}  // namespace sluice::broker
