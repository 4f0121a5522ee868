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

}  // namespace

std::map<std::string, std::map<TopicPartition, CommittedOffset>> StateStoreOffsetStore::load() {
  std::map<std::string, std::map<TopicPartition, CommittedOffset>> out;
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

void StateStoreOffsetStore::apply(std::string_view group, const std::map<TopicPartition, CommittedOffset>& upserts,
                                  const std::vector<TopicPartition>& removals) {
  std::vector<storage::StateStore::Change> changes;
  for (const auto& [tp, c] : upserts) changes.push_back({offset_key(group, tp), encode_offset(c)});
  for (const auto& tp : removals) changes.push_back({offset_key(group, tp), std::nullopt});
  if (!changes.empty()) store_.apply(changes);
}

GroupCoordinator::GroupCoordinator(OffsetStore& store, Options options, boost::asio::any_io_executor executor)
    : store_(store), options_(options), executor_(std::move(executor)) {
  for (auto& [name, offsets] : store_.load()) groups_[name].offsets = std::move(offsets);
}

ErrorCode GroupCoordinator::validate_commit(const CommitRequest& request) {
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

bool GroupCoordinator::persist(std::string_view group_id, const std::map<TopicPartition, CommittedOffset>& upserts,
                               const std::vector<TopicPartition>& removals) {
  try {
    store_.apply(group_id, upserts, removals);
    return true;
  } catch (const std::exception& e) {  // e.g. a full disk: the change is not made
    SLUICE_LOG(kError, "storing offsets of group " << group_id << " failed: " << e.what());
    return false;
  }
}

bool GroupCoordinator::commit(std::string_view group_id, const std::map<TopicPartition, CommittedOffset>& offsets) {
  if (offsets.empty()) {
    groups_.try_emplace(std::string(group_id));
    return true;
  }
  if (!persist(group_id, offsets, {})) return false;
  auto& group = groups_[std::string(group_id)];
  for (const auto& [tp, c] : offsets) group.offsets[tp] = c;
  return true;
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
    if (!expired.empty() && persist(g->first, {}, expired))  // else: retried at the next check
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
    std::string_view group_id, const std::vector<TopicPartition>& partitions) {
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
    if (!persist(group_id, {}, removed)) return {ErrorCode::kNotCoordinator, {}};
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
