#include "broker/producer_state.h"

#include <limits>

#include "protocol/wire.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
constexpr int16_t kNoEpoch = -1;
constexpr uint8_t kSnapshotVersion = 1;

// The sequence that follows `last` (after INT32_MAX comes 0).
bool in_sequence(int32_t last, int32_t next) {
  return static_cast<int64_t>(next) == static_cast<int64_t>(last) + 1 ||
         (next == 0 && last == std::numeric_limits<int32_t>::max());
}

ProducerStateTable::Verdict reject(ErrorCode error, std::string message) {
  ProducerStateTable::Verdict v;
  v.kind = ProducerStateTable::Verdict::Kind::kReject;
  v.error = error;
  v.message = std::move(message);
  return v;
}

}  // namespace

int32_t ProducerStateTable::last_sequence(int32_t first_sequence, int32_t record_count) {
  int64_t last = static_cast<int64_t>(first_sequence) + record_count - 1;
  if (last > std::numeric_limits<int32_t>::max()) last -= static_cast<int64_t>(std::numeric_limits<int32_t>::max()) + 1;
  return static_cast<int32_t>(last);
}

ProducerStateTable::Verdict ProducerStateTable::check(int64_t producer_id, int16_t epoch, int32_t first_sequence,
                                                      int32_t record_count) const {
  auto it = producers_.find(producer_id);
  if (it == producers_.end()) return {};  // unknown here: any sequence starts it
  const Producer& p = it->second;

  if (epoch < p.epoch)
    return reject(ErrorCode::kInvalidProducerEpoch, "Epoch of producer " + std::to_string(producer_id) + " is " +
                                                        std::to_string(epoch) + ", which is smaller than the last seen epoch " +
                                                        std::to_string(p.epoch));

  if (epoch == p.epoch) {
    // A retry of one of the remembered batches: answer what it got then.
    const int32_t last = last_sequence(first_sequence, record_count);
    for (const Batch& b : p.batches)
      if (b.first_sequence == first_sequence && b.last_sequence == last) {
        Verdict v;
        v.kind = Verdict::Kind::kDuplicate;
        v.duplicate = b;
        return v;
      }
    if (p.batches.empty() || in_sequence(p.batches.back().last_sequence, first_sequence)) return {};
    return reject(ErrorCode::kOutOfOrderSequenceNumber,
                  "Out of order sequence number for producer " + std::to_string(producer_id) + ": " +
                      std::to_string(first_sequence) + " (incoming seq. number), " +
                      std::to_string(p.batches.back().last_sequence) + " (current end sequence number)");
  }

  // A newer epoch starts over at sequence 0.
  if (first_sequence != 0 && p.epoch != kNoEpoch)
    return reject(ErrorCode::kOutOfOrderSequenceNumber,
                  "Invalid sequence number for new epoch of producer " + std::to_string(producer_id) + ": " +
                      std::to_string(epoch) + " (request epoch), " + std::to_string(first_sequence) +
                      " (seq. number), " + std::to_string(p.epoch) + " (current producer epoch)");
  return {};
}

void ProducerStateTable::record(int64_t producer_id, int16_t epoch, int32_t first_sequence, int32_t record_count,
                                int64_t first_offset, int64_t last_offset, int64_t max_timestamp) {
  Producer& p = producers_[producer_id];
  if (epoch != p.epoch) {
    p.epoch = epoch;
    p.batches.clear();  // the old epoch's sequences mean nothing any more
  }
  p.batches.push_back({first_sequence, last_sequence(first_sequence, record_count), first_offset, last_offset, max_timestamp});
  while (p.batches.size() > kRememberedBatches) p.batches.pop_front();
  p.last_timestamp = max_timestamp;
  dirty_ = true;
}

size_t ProducerStateTable::expire(int64_t now_ms, int64_t expiration_ms) {
  size_t removed = std::erase_if(producers_, [&](const auto& entry) {
    return now_ms - entry.second.last_timestamp >= expiration_ms;
  });
  if (removed > 0) dirty_ = true;
  return removed;
}

const ProducerStateTable::Producer* ProducerStateTable::find(int64_t producer_id) const {
  auto it = producers_.find(producer_id);
  return it == producers_.end() ? nullptr : &it->second;
}

// Snapshot layout (big-endian): version u8, next offset i64, producer count
// i32, then per producer: id i64, epoch i16, last timestamp i64, batch count
// i8, and per batch: first/last sequence i32, first/last offset i64, max
// timestamp i64.
std::string ProducerStateTable::serialize(int64_t next_offset) {
  protocol::Writer w;
  w.write_int8(static_cast<int8_t>(kSnapshotVersion));
  w.write_int64(next_offset);
  w.write_int32(static_cast<int32_t>(producers_.size()));
  for (const auto& [id, p] : producers_) {
    w.write_int64(id);
    w.write_int16(p.epoch);
    w.write_int64(p.last_timestamp);
    w.write_int8(static_cast<int8_t>(p.batches.size()));
    for (const Batch& b : p.batches) {
      w.write_int32(b.first_sequence);
      w.write_int32(b.last_sequence);
      w.write_int64(b.first_offset);
      w.write_int64(b.last_offset);
      w.write_int64(b.max_timestamp);
    }
  }
  dirty_ = false;
  return std::move(w.buffer());
}

std::optional<std::pair<ProducerStateTable, int64_t>> ProducerStateTable::parse(std::string_view snapshot) {
  try {
    protocol::Reader r(snapshot);
    if (static_cast<uint8_t>(r.read_int8()) != kSnapshotVersion) return std::nullopt;
    const int64_t next_offset = r.read_int64();
    const int32_t count = r.read_int32();
    if (count < 0 || static_cast<size_t>(count) > r.remaining() / 19) return std::nullopt;
    ProducerStateTable table;
    for (int32_t i = 0; i < count; ++i) {
      const int64_t id = r.read_int64();
      Producer& p = table.producers_[id];
      p.epoch = r.read_int16();
      p.last_timestamp = r.read_int64();
      const int8_t batches = r.read_int8();
      if (batches < 0 || static_cast<size_t>(batches) > kRememberedBatches) return std::nullopt;
      for (int8_t k = 0; k < batches; ++k) {
        Batch b;
        b.first_sequence = r.read_int32();
        b.last_sequence = r.read_int32();
        b.first_offset = r.read_int64();
        b.last_offset = r.read_int64();
        b.max_timestamp = r.read_int64();
        p.batches.push_back(b);
      }
    }
    if (r.remaining() != 0) return std::nullopt;
    return std::make_pair(std::move(table), next_offset);
  } catch (const protocol::DecodeError&) {
    return std::nullopt;
  }
}

}  // namespace sluice::broker
