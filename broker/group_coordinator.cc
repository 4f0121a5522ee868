#include "broker/group_coordinator.h"

#include "broker/log.h"

#include <algorithm>
#include <set>

#include "protocol/messages/consumer_protocol_subscription.h"
#include "protocol/wire.h"
#include "storage/state_store.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;

// Keys: "offset/" + int32 group length + group + topic + '\0' + int32 partition,
// so one group's offsets are one key range and any group name is safe.
constexpr std::string_view kOffsetPrefix = "offset/";

std::string group_prefix(std::string_view group) {
  protocol::Writer w;
  w.write_raw(kOffsetPrefix);
  w.write_int32(static_cast<int32_t>(group.size()));
  w.write_raw(group);
  return std::move(w.buffer());
}

std::string offset_key(std::string_view group, const TopicPartition& tp) {
  protocol::Writer w;
  w.write_raw(group_prefix(group));
  w.write_raw(tp.first);
  w.write_int8(0);
  w.write_int32(tp.second);
  return std::move(w.buffer());
}

std::string encode_offset(const CommittedOffset& c) {
  protocol::Writer w;
  w.write_int8(1);  // record format version
  w.write_int64(c.offset);
  w.write_int32(c.leader_epoch);
  w.write_int64(c.commit_timestamp_ms);
  w.write_nullable_string(c.metadata);
  return std::move(w.buffer());
}

CommittedOffset decode_offset(std::string_view bytes) {
  protocol::Reader r(bytes);
  if (r.read_int8() != 1) throw protocol::DecodeError("unknown offset record version");
  CommittedOffset c;
  c.offset = r.read_int64();
  c.leader_epoch = r.read_int32();
  c.commit_timestamp_ms = r.read_int64();
  c.metadata = r.read_nullable_string();
  return c;
}

// Java's String.hashCode, over the UTF-16 code units of the UTF-8 `text`
// (a malformed byte counts as U+FFFD, as Java decodes it): how Kafka maps a
// group to its __consumer_offsets partition, so both agree.
int32_t java_string_hash(std::string_view text) {
  uint32_t hash = 0;
  auto add = [&hash](uint32_t unit) { hash = 31u * hash + unit; };
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xE ? 3 : (byte >> 3) == 0x1E ? 4 : 0;
    uint32_t code = length == 1 ? byte : length == 2 ? (byte & 0x1F) : length == 3 ? (byte & 0x0F) : (byte & 0x07);
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) valid = false;
      code = (code << 6) | (next & 0x3F);
    }
    if (!valid) {
      add(0xFFFD);
      ++i;
      continue;
    }
    if (code >= 0x10000) {
      add(0xD800 + ((code - 0x10000) >> 10));
      add(0xDC00 + ((code - 0x10000) & 0x3FF));
    } else {
      add(code);
    }
    i += length;
  }
  return static_cast<int32_t>(hash);
}

}  // namespace

int32_t coordinator_partition_of(std::string_view key, int32_t partitions) {
  if (partitions <= 0) return 0;
  const int32_t hash = java_string_hash(key);
  // Kafka's Utils.abs: Integer.MIN_VALUE counts as 0.
  const int64_t positive = hash == INT32_MIN ? 0 : (hash < 0 ? -static_cast<int64_t>(hash) : hash);
  return static_cast<int32_t>(positive % partitions);
}

int32_t GroupCoordinator::shard_of(std::string_view group_id) const {
  return coordinator_partition_of(group_id, shard_count_);
}

ErrorCode GroupCoordinator::ownership(std::string_view group_id) const {
  if (!sharded()) return ErrorCode::kNone;
  auto it = shards_.find(shard_of(group_id));
  if (it == shards_.end()) return ErrorCode::kNotCoordinator;
  return it->second.loaded ? ErrorCode::kNone : ErrorCode::kCoordinatorLoadInProgress;
}

bool GroupCoordinator::begin_loading(int32_t shard, int32_t leader_epoch) {
  auto [it, inserted] = shards_.try_emplace(shard, Shard{leader_epoch, false});
  if (!inserted) {
    // Still the leader under a new epoch: what is in memory is what this log holds.
    if (it->second.loaded) it->second.leader_epoch = leader_epoch;
    return false;
  }
  return true;
}

bool GroupCoordinator::loading(int32_t shard, int32_t leader_epoch) const {
  auto it = shards_.find(shard);
  return it != shards_.end() && !it->second.loaded && it->second.leader_epoch == leader_epoch;
}

void GroupCoordinator::finish_loading(int32_t shard, GroupOffsets offsets) {
  auto it = shards_.find(shard);
  if (it == shards_.end()) return;
  it->second.loaded = true;
  for (auto& [name, group_offsets] : offsets)
    if (shard_of(name) == shard && !group_offsets.empty()) groups_[name].offsets = std::move(group_offsets);
}

void GroupCoordinator::unload(int32_t shard) {
  if (shards_.erase(shard) == 0) return;
  for (auto g = groups_.begin(); g != groups_.end();) {
    if (shard_of(g->first) != shard) {
      ++g;
      continue;
    }
    for (auto& [id, m] : g->second.members) {
      if (m.pending_join) {
        JoinOutcome out;
        out.error = ErrorCode::kNotCoordinator;
        m.pending_join->complete(std::move(out));
      }
      if (m.pending_sync) {
        SyncOutcome out;
        out.error = ErrorCode::kNotCoordinator;
        m.pending_sync->complete(std::move(out));
      }
    }
    g = groups_.erase(g);
  }
}

size_t GroupCoordinator::live_offsets(int32_t shard) const {
  size_t count = 0;
  for (const auto& [name, group] : groups_)
    if (shard_of(name) == shard) count += group.offsets.size();
  return count;
}

std::optional<OffsetWrite> GroupCoordinator::rewrite_shard(int32_t shard) {
  OffsetWrite last;
  for (const auto& [name, group] : groups_) {
    if (shard_of(name) != shard || group.offsets.empty()) continue;
    auto write = persist(name, group.offsets, {});
    if (!write) return std::nullopt;
    last = *write;
  }
  return last;
}

GroupOffsets StateStoreOffsetStore::load() {
  GroupOffsets out;
  store_.scan(kOffsetPrefix, [&](std::string_view key, std::string_view value) {
    protocol::Reader r(key.substr(kOffsetPrefix.size()));
    int32_t group_length = r.read_int32();
    if (group_length < 0) throw protocol::DecodeError("bad offset key");
    std::string group(r.read_raw(static_cast<size_t>(group_length)));
    std::string_view rest = r.read_raw(r.remaining());
    size_t nul = rest.find('\0');
    if (nul == std::string_view::npos || rest.size() != nul + 5) throw protocol::DecodeError("bad offset key");
    protocol::Reader partition(rest.substr(nul + 1));
    out[group][{std::string(rest.substr(0, nul)), partition.read_int32()}] = decode_offset(value);
  });
  return out;
}

OffsetWrite StateStoreOffsetStore::apply(std::string_view group,
                                         const std::map<TopicPartition, CommittedOffset>& upserts,
                                         const std::vector<TopicPartition>& removals) {
  std::vector<storage::StateStore::Change> changes;
  for (const auto& [tp, c] : upserts) changes.push_back({offset_key(group, tp), encode_offset(c)});
  for (const auto& tp : removals) changes.push_back({offset_key(group, tp), std::nullopt});
  if (changes.empty()) return OffsetWrite{};
  if (!writer_) {
    store_.apply(changes);
    return OffsetWrite{};  // an LMDB commit: durable already
  }
  OffsetWrite write;
  write.state_write = std::make_shared<PendingStateWrite>(writer_->executor());
  writer_->apply(std::move(changes), [pending = write.state_write](bool ok) {
    pending->ok = ok;
    pending->committed.set();
  });
  return write;
}

GroupCoordinator::GroupCoordinator(OffsetStore& store, Options options, boost::asio::any_io_executor executor)
    : store_(store), options_(options), executor_(std::move(executor)) {
  for (auto& [name, offsets] : store_.load()) groups_[name].offsets = std::move(offsets);
}

ErrorCode GroupCoordinator::validate_commit(const CommitRequest& request) {
  if (ErrorCode owner = ownership(request.group_id); owner != ErrorCode::kNone) return owner;
  auto it = groups_.find(request.group_id);
  const bool as_member = request.generation_id >= 0 || !request.member_id.empty() || request.group_instance_id;
  if (it == groups_.end()) {
    // A generation of a group we do not know: stale, or from before a restart.
    return request.generation_id >= 0 ? ErrorCode::kIllegalGeneration
                                      : (as_member ? ErrorCode::kUnknownMemberId : ErrorCode::kNone);
  }
  Group& group = it->second;
  if (!as_member) {
    // Without membership only a group nobody is in can be committed to.
    return group.members.empty() ? ErrorCode::kNone : ErrorCode::kRebalanceInProgress;
  }
  if (request.group_instance_id) {
    auto s = group.static_members.find(std::string(*request.group_instance_id));
    if (s == group.static_members.end()) return ErrorCode::kUnknownMemberId;
    if (s->second != request.member_id) return ErrorCode::kFencedInstanceId;
  }
  auto m = group.members.find(std::string(request.member_id));
  if (m == group.members.end()) return ErrorCode::kUnknownMemberId;
  if (request.generation_id != group.generation_id) return ErrorCode::kIllegalGeneration;
  if (group.state == State::kCompletingRebalance) return ErrorCode::kRebalanceInProgress;
  refresh_session(m->second);
  return ErrorCode::kNone;
}

std::optional<OffsetWrite> GroupCoordinator::persist(std::string_view group_id,
                                                     const std::map<TopicPartition, CommittedOffset>& upserts,
                                                     const std::vector<TopicPartition>& removals) {
  try {
    return store_.apply(group_id, upserts, removals);
  } catch (const std::exception& e) {  // e.g. a full disk: the change is not made
    SLUICE_LOG(kError, "storing offsets of group " << group_id << " failed: " << e.what());
    return std::nullopt;
  }
}

std::optional<OffsetWrite> GroupCoordinator::commit(std::string_view group_id,
                                                    const std::map<TopicPartition, CommittedOffset>& offsets) {
  if (offsets.empty()) {
    groups_.try_emplace(std::string(group_id));
    return OffsetWrite{};
  }
  auto write = persist(group_id, offsets, {});
  if (!write) return std::nullopt;
  auto& group = groups_[std::string(group_id)];
  for (const auto& [tp, c] : offsets) group.offsets[tp] = c;
  return write;
}

std::optional<CommittedOffset> GroupCoordinator::committed(std::string_view group_id, const TopicPartition& tp) const {
  auto g = groups_.find(group_id);
  if (g == groups_.end()) return std::nullopt;
  auto it = g->second.offsets.find(tp);
  if (it == g->second.offsets.end()) return std::nullopt;
  return it->second;
}

const std::map<TopicPartition, CommittedOffset>& GroupCoordinator::committed_offsets(std::string_view group_id) const {
  static const std::map<TopicPartition, CommittedOffset> kNone;
  auto g = groups_.find(group_id);
  return g == groups_.end() ? kNone : g->second.offsets;
}

void GroupCoordinator::expire_offsets(int64_t now_ms) {
  for (auto g = groups_.begin(); g != groups_.end();) {
    // As in Kafka, offsets of a group with members stay while it is alive.
    if (!g->second.members.empty()) {
      ++g;
      continue;
    }
    std::vector<TopicPartition> expired;
    for (const auto& [tp, c] : g->second.offsets)
      if (now_ms - c.commit_timestamp_ms > options_.retention_ms) expired.push_back(tp);
    if (!expired.empty() && persist(g->first, {}, expired).has_value())  // else: retried at the next check
      for (const auto& tp : expired) g->second.offsets.erase(tp);
    g = g->second.offsets.empty() && g->second.members.empty() && g->second.pending_members.empty() ? groups_.erase(g)
                                                                                                    : std::next(g);
  }
}

// The topics a "consumer" protocol member subscribes to, from its metadata.
static std::vector<std::string> subscribed_topics(std::string_view metadata) {
  try {
    protocol::Reader r(metadata);
    int16_t version = r.read_int16();
    protocol::ConsumerProtocolSubscription subscription;
    // Newer clients may send later versions; their prefix is the same.
    subscription.decode(r, std::min<int16_t>(version, protocol::ConsumerProtocolSubscription::kMaxVersion));
    return subscription.topics;
  } catch (const protocol::DecodeError&) {
    return {};
  }
}

std::pair<ErrorCode, std::vector<ErrorCode>> GroupCoordinator::delete_offsets(
    std::string_view group_id, const std::vector<TopicPartition>& partitions, OffsetWrite* write) {
  if (ErrorCode owner = ownership(group_id); owner != ErrorCode::kNone) return {owner, {}};
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return {ErrorCode::kGroupIdNotFound, {}};
  Group& group = it->second;
  std::set<std::string> subscribed;
  if (!group.members.empty()) {
    if (group.protocol_type != "consumer") return {ErrorCode::kNonEmptyGroup, {}};
    for (const auto& [id, m] : group.members)
      for (const auto& [name, bytes] : m.protocols)
        if (group.protocol_name && name == *group.protocol_name)
          for (auto& topic : subscribed_topics(bytes)) subscribed.insert(topic);
  }
  std::vector<ErrorCode> errors;
  std::vector<TopicPartition> removed;
  for (const auto& tp : partitions) {
    if (subscribed.count(tp.first)) {
      errors.push_back(ErrorCode::kGroupSubscribedToTopic);
      continue;
    }
    errors.push_back(ErrorCode::kNone);
    if (group.offsets.count(tp)) removed.push_back(tp);
  }
  if (!removed.empty()) {
    auto written = persist(group_id, {}, removed);
    if (!written) return {ErrorCode::kNotCoordinator, {}};
    if (write) *write = *written;
    for (const auto& tp : removed) group.offsets.erase(tp);
  }
  return {ErrorCode::kNone, errors};
}

void GroupCoordinator::on_topic_deleted(const controller::TopicInfo& topic) {
  for (auto& [name, group] : groups_) {
    std::vector<TopicPartition> gone;
    for (const auto& [tp, c] : group.offsets)
      if (tp.first == topic.name) gone.push_back(tp);
    if (gone.empty()) continue;
    persist(name, {}, gone);  // if this fails (logged), the stored rows outlive the topic
    for (const auto& tp : gone) group.offsets.erase(tp);
  }
}

}  // namespace sluice::broker
