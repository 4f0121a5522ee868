#include "controller/metadata_log.h"

#include <cstdio>
#include <stdexcept>

#include "protocol/wire.h"

namespace sluice::controller {
namespace {

constexpr std::string_view kRecordPrefix = "metadata/log/";
constexpr std::string_view kSnapshotKey = "metadata/snapshot";

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
  // Completions come in submission order, so each one's end is the durable end.
  committer_(std::move(changes), [this, end = end_offset_, snapshot = snapshot_offset_](bool ok) {
    if (!ok) throw MetadataLogWriteFailed("could not write the metadata log at offset " + std::to_string(end));
    durable_end_offset_ = end;
    durable_snapshot_offset_ = snapshot;
    if (on_durable_) on_durable_(end);
  });
}

int64_t MetadataLog::append(const std::vector<std::string>& records, const std::vector<storage::StateStore::Change>& also) {
  std::vector<storage::StateStore::Change> changes = also;
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

void MetadataLog::install_snapshot(int64_t offset, const std::vector<std::string>& image_records) {
  std::vector<storage::StateStore::Change> changes;
  changes.push_back({std::string(kSnapshotKey), encode_snapshot(offset, image_records)});
  erase_records(changes);
  const int64_t old_snapshot = snapshot_offset_, old_end = end_offset_;
  snapshot_offset_ = end_offset_ = offset;
  try {
    write(std::move(changes));
  } catch (...) {
    snapshot_offset_ = old_snapshot;
    end_offset_ = old_end;
    throw;
  }
  bytes_since_snapshot_ = 0;
}

void MetadataLog::read(int64_t from, const std::function<bool(int64_t offset, std::string_view record)>& visit) const {
  if (from < durable_snapshot_offset_) throw std::invalid_argument("metadata log read below its snapshot");
  int64_t next = from;
  store_.scan(kRecordPrefix, record_key(from), [&](std::string_view key, std::string_view value) {
    // Only what is durable, and only without a hole (a snapshot being
    // written may have erased records a reader has not been told about yet).
    const int64_t offset = offset_of(key);
    if (offset != next || offset >= durable_end_offset_) return false;
    ++next;
    return visit(offset, value);
  });
}

void MetadataLog::write_snapshot(const std::vector<std::string>& image_records) {
  std::vector<storage::StateStore::Change> changes;
  changes.push_back({std::string(kSnapshotKey), encode_snapshot(end_offset_, image_records)});
  erase_records(changes);
  const int64_t old_snapshot = snapshot_offset_;
  snapshot_offset_ = end_offset_;
  try {
    write(std::move(changes));
  } catch (...) {
    snapshot_offset_ = old_snapshot;
    throw;
  }
  bytes_since_snapshot_ = 0;
}

}  // namespace sluice::controller
