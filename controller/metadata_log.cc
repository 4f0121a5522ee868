#include "controller/metadata_log.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <stdexcept>

#include "protocol/record_batch.h"
#include "protocol/wire.h"

namespace sluice::controller {
namespace {

constexpr std::string_view kRecordPrefix = "metadata/log/";
constexpr std::string_view kSnapshotKey = "metadata/snapshot";
constexpr std::string_view kEpochsKey = "metadata/epochs";

// Sixteen hex digits keep LMDB's byte order the offset order.
std::string record_key(int64_t offset) {
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016llx", static_cast<unsigned long long>(offset));
  return std::string(kRecordPrefix) + digits;
}

int64_t offset_of(std::string_view key) {
  return static_cast<int64_t>(std::stoull(std::string(key.substr(kRecordPrefix.size())), nullptr, 16));
}

// Snapshot value: int64 offset, int32 count, then each record as int32 length + bytes.
std::string encode_snapshot(int64_t offset, const std::vector<std::string>& records) {
  protocol::Writer w;
  w.write_int64(offset);
  w.write_int32(static_cast<int32_t>(records.size()));
  for (const auto& r : records) {
    w.write_int32(static_cast<int32_t>(r.size()));
    w.write_raw(r);
  }
  return std::move(w.buffer());
}

}  // namespace

MetadataLog::MetadataLog(storage::StateStore& store) : store_(store) {
  if (auto table = store_.get(kEpochsKey)) {
    protocol::Reader r(*table);
    const int32_t count = r.read_array_length(12);
    for (int32_t i = 0; i < count; ++i) {
      const int32_t epoch = r.read_int32();
      epochs_[epoch] = r.read_int64();
    }
  }
  if (auto snapshot = store_.get(kSnapshotKey)) {
    protocol::Reader r(*snapshot);
    snapshot_offset_ = r.read_int64();
  }
  int64_t expected = snapshot_offset_;
  store_.scan(kRecordPrefix, [&](std::string_view key, std::string_view value) {
    const int64_t offset = offset_of(key);
    if (offset != expected)
      throw std::runtime_error("the metadata log has a gap: offset " + std::to_string(offset) + " follows " +
                               std::to_string(expected - 1));
    ++expected;
    bytes_since_snapshot_ += value.size();
  });
  end_offset_ = durable_end_offset_ = expected;
  durable_snapshot_offset_ = snapshot_offset_;
}

void MetadataLog::write_in_background(Committer committer, std::function<void(int64_t)> on_durable) {
  committer_ = std::move(committer);
  on_durable_ = std::move(on_durable);
}

void MetadataLog::write(std::vector<storage::StateStore::Change> changes) {
  if (!committer_) {
    store_.apply(changes);
    durable_end_offset_ = end_offset_;
    durable_snapshot_offset_ = snapshot_offset_;
    return;
  }
  // Completions come in submission order, so each one's end is the durable
  // end, except that a truncation submitted after it cuts it short (the
  // records past the truncation are not the ones now in the log).
  committer_(std::move(changes), [this, end = end_offset_, snapshot = snapshot_offset_, generation = generation_](bool ok) {
    if (!ok) throw MetadataLogWriteFailed("could not write the metadata log at offset " + std::to_string(end));
    int64_t durable = end;
    for (const auto& [g, offset] : truncations_)
      if (g > generation) durable = std::min(durable, offset);
    while (!truncations_.empty() && truncations_.front().first <= generation) truncations_.pop_front();
    durable_end_offset_ = durable;
    durable_snapshot_offset_ = snapshot;
    if (on_durable_) on_durable_(durable);
  });
}

storage::StateStore::Change MetadataLog::epochs_change() const {
  protocol::Writer w;
  w.write_int32(static_cast<int32_t>(epochs_.size()));
  for (const auto& [epoch, start] : epochs_) {
    w.write_int32(epoch);
    w.write_int64(start);
  }
  return {std::string(kEpochsKey), std::move(w.buffer())};
}

void MetadataLog::note_truncation(int64_t offset) {
  ++generation_;
  if (committer_) truncations_.emplace_back(generation_, offset);
}

int32_t MetadataLog::last_epoch() const { return epochs_.empty() ? 0 : epochs_.rbegin()->first; }

int32_t MetadataLog::epoch_of(int64_t offset) const {
  int32_t found = 0;
  for (const auto& [epoch, start] : epochs_) {
    if (start > offset) break;
    found = epoch;
  }
  return found;
}

std::pair<int32_t, int64_t> MetadataLog::end_offset_for_epoch(int32_t epoch) const {
  auto after = epochs_.upper_bound(epoch);
  if (after == epochs_.begin()) {
    // Records before the first epoch known were written before epochs were
    // kept: epoch 0 (as epoch_of says).
    const int64_t first = epochs_.empty() ? end_offset_ : epochs_.begin()->second;
    if (epoch >= 0 && first > 0) return {0, first};
    return {-1, -1};
  }
  const int32_t found = std::prev(after)->first;
  return {found, after == epochs_.end() ? end_offset_ : after->second};
}

void MetadataLog::truncate_to(int64_t offset) {
  if (offset < snapshot_offset_ || offset > end_offset_)
    throw std::invalid_argument("metadata log truncation to " + std::to_string(offset) + " outside [" +
                                std::to_string(snapshot_offset_) + ", " + std::to_string(end_offset_) + "]");
  if (offset == end_offset_) return;
  std::vector<storage::StateStore::Change> changes;
  for (int64_t o = offset; o < end_offset_; ++o) changes.push_back({record_key(o), std::nullopt});
  const auto old_epochs = epochs_;
  const int64_t old_end = end_offset_;
  // An epoch that starts at or after the new end has no record left; the
  // snapshot's epoch (start <= its offset) always stays.
  std::erase_if(epochs_, [&](const auto& e) { return e.second >= offset; });
  changes.push_back(epochs_change());
  end_offset_ = offset;
  durable_end_offset_ = std::min(durable_end_offset_, offset);
  note_truncation(offset);
  try {
    write(std::move(changes));
  } catch (...) {
    epochs_ = old_epochs;
    end_offset_ = old_end;
    throw;
  }
}

int64_t MetadataLog::append(const std::vector<std::string>& records, const std::vector<storage::StateStore::Change>& also,
                            int32_t epoch) {
  std::vector<storage::StateStore::Change> changes = also;
  if (epoch >= 0 && epoch < last_epoch())
    throw std::invalid_argument("metadata records of epoch " + std::to_string(epoch) + " after epoch " +
                                std::to_string(last_epoch()));
  const bool new_epoch = epoch >= 0 && (epochs_.empty() || epoch > last_epoch()) && !records.empty();
  if (new_epoch) {
    epochs_[epoch] = end_offset_;
    changes.push_back(epochs_change());
  }
  uint64_t bytes = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    changes.push_back({record_key(end_offset_ + static_cast<int64_t>(i)), records[i]});
    bytes += records[i].size();
  }
  const int64_t first = end_offset_;
  end_offset_ += static_cast<int64_t>(records.size());
  try {
    write(std::move(changes));
  } catch (...) {
    end_offset_ = first;
    if (new_epoch) epochs_.erase(epoch);
    throw;
  }
  bytes_since_snapshot_ += bytes;
  return first;
}

std::vector<std::string> MetadataLog::snapshot_records(int64_t* offset) const {
  std::vector<std::string> records;
  if (offset) *offset = 0;
  if (auto snapshot = store_.get(kSnapshotKey)) {
    protocol::Reader r(*snapshot);
    const int64_t end = r.read_int64();
    if (offset) *offset = end;
    const int32_t count = r.read_array_length(4);
    for (int32_t i = 0; i < count; ++i) {
      const int32_t size = r.read_int32();
      if (size < 0) throw protocol::DecodeError("negative record size in the metadata snapshot");
      records.emplace_back(r.read_raw(static_cast<size_t>(size)));
    }
  }
  return records;
}

void MetadataLog::replay(const std::function<void(std::string_view record)>& visit) const {
  for (const auto& record : snapshot_records()) visit(record);
  read(snapshot_offset_, [&](int64_t, std::string_view record) {
    visit(record);
    return true;
  });
}

void MetadataLog::erase_records(std::vector<storage::StateStore::Change>& changes) const {
  for (int64_t offset = snapshot_offset_; offset < end_offset_; ++offset)
    changes.push_back({record_key(offset), std::nullopt});
}

void MetadataLog::install_snapshot(int64_t offset, const std::vector<std::string>& image_records, int32_t epoch) {
  std::vector<storage::StateStore::Change> changes;
  changes.push_back({std::string(kSnapshotKey), encode_snapshot(offset, image_records)});
  erase_records(changes);
  const int64_t old_snapshot = snapshot_offset_, old_end = end_offset_;
  const auto old_epochs = epochs_;
  // What came before the snapshot is all of its epoch, as far as this copy knows.
  epochs_.clear();
  if (offset > 0) epochs_[epoch] = 0;
  changes.push_back(epochs_change());
  snapshot_offset_ = end_offset_ = offset;
  durable_end_offset_ = std::min(durable_end_offset_, offset);
  note_truncation(offset);
  try {
    write(std::move(changes));
  } catch (...) {
    snapshot_offset_ = old_snapshot;
    end_offset_ = old_end;
    epochs_ = old_epochs;
    throw;
  }
  bytes_since_snapshot_ = 0;
}

void MetadataLog::read(int64_t from, const std::function<bool(int64_t offset, std::string_view record)>& visit,
                       int64_t up_to) const {
  if (from < durable_snapshot_offset_) throw std::invalid_argument("metadata log read below its snapshot");
  int64_t next = from;
  store_.scan(kRecordPrefix, record_key(from), [&](std::string_view key, std::string_view value) {
    // Only what is durable, and only without a hole (a snapshot being
    // written may have erased records a reader has not been told about yet).
    const int64_t offset = offset_of(key);
    if (offset != next || offset >= durable_end_offset_ || offset >= up_to) return false;
    ++next;
    return visit(offset, value);
  });
}

void MetadataLog::write_snapshot(int64_t offset, const std::vector<std::string>& image_records) {
  if (offset < snapshot_offset_ || offset > end_offset_) throw std::invalid_argument("metadata snapshot outside the log");
  std::vector<storage::StateStore::Change> changes;
  changes.push_back({std::string(kSnapshotKey), encode_snapshot(offset, image_records)});
  for (int64_t o = snapshot_offset_; o < offset; ++o) changes.push_back({record_key(o), std::nullopt});
  const int64_t old_snapshot = snapshot_offset_;
  snapshot_offset_ = offset;
  try {
    write(std::move(changes));
  } catch (...) {
    snapshot_offset_ = old_snapshot;
    throw;
  }
  bytes_since_snapshot_ = 0;
}

std::vector<EpochRecords> split_fetched_records(std::string_view batches, int64_t first_offset) {
  std::vector<EpochRecords> runs;
  int64_t expected = first_offset;
  while (!batches.empty()) {
    auto header = protocol::RecordBatchHeader::parse(batches);
    if (!header || header->total_size() > batches.size()) throw std::runtime_error("a cut metadata record batch");
    const std::string_view batch = batches.substr(0, header->total_size());
    if (runs.empty() || runs.back().epoch != header->partition_leader_epoch)
      runs.push_back({header->partition_leader_epoch, {}});
    protocol::visit_record_values(batch, [&](int64_t offset, std::optional<std::string_view> v) {
      if (offset != expected++) throw std::runtime_error("metadata records out of order");
      runs.back().records.emplace_back(v.value_or(""));
    });
    batches.remove_prefix(batch.size());
  }
  std::erase_if(runs, [](const EpochRecords& run) { return run.records.empty(); });
  return runs;
}

}  // namespace sluice::controller
