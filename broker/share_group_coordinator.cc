#include "broker/share_group_coordinator.h"

#include <algorithm>
#include <set>

namespace sluice::broker {

using protocol::ErrorCode;

ShareGroupCoordinator::ShareGroupCoordinator(Options options, const controller::MetadataImage& metadata)
    : options_(options), metadata_(metadata) {}

namespace {

int32_t group_setting(const controller::MetadataImage& metadata, std::string_view group_id, const char* key,
                      int32_t fallback) {
  const auto* configs = metadata.group_configs(group_id);
  if (!configs) return fallback;
  auto it = configs->find(key);
  return it == configs->end() ? fallback : static_cast<int32_t>(std::stol(it->second));
}

}  // namespace

int32_t ShareGroupCoordinator::heartbeat_interval_ms(std::string_view group_id) const {
  return group_setting(metadata_, group_id, "share.heartbeat.interval.ms", options_.heartbeat_interval_ms);
}

int32_t ShareGroupCoordinator::session_timeout_ms(std::string_view group_id) const {
  return group_setting(metadata_, group_id, "share.session.timeout.ms", options_.session_timeout_ms);
}

std::map<std::string, int32_t> ShareGroupCoordinator::subscribed_partitions(const Group& group) const {
  std::map<std::string, int32_t> counts;
  for (const auto& [id, member] : group.members)
    for (const auto& topic : member.subscribed_topics)
      if (const controller::TopicInfo* info = metadata_.find_topic(topic)) counts[topic] = info->partition_count();
  return counts;
}

void ShareGroupCoordinator::assign(Group& group) {
  group.partition_counts = subscribed_partitions(group);
  for (auto& [id, member] : group.members) member.assignment.clear();
  for (const auto& [topic, partitions] : group.partition_counts) {
    const controller::TopicInfo* info = metadata_.find_topic(topic);
    std::vector<ShareMemberInfo*> subscribers;  // in member id order (the map's)
    for (auto& [id, member] : group.members)
      if (std::binary_search(member.subscribed_topics.begin(), member.subscribed_topics.end(), topic))
        subscribers.push_back(&member);
    if (subscribers.empty() || partitions == 0) continue;
    const int32_t m = static_cast<int32_t>(subscribers.size());
    std::vector<std::set<int32_t>> given(subscribers.size());
    if (partitions >= m) {
      for (int32_t p = 0; p < partitions; ++p) given[static_cast<size_t>(p % m)].insert(p);
    } else {
      for (int32_t k = 0; k < m; ++k) given[static_cast<size_t>(k)].insert(k % partitions);
    }
    for (size_t k = 0; k < subscribers.size(); ++k)
      subscribers[k]->assignment.push_back({info->id, topic, std::vector<int32_t>(given[k].begin(), given[k].end())});
  }
  group.assignment_epoch = group.group_epoch;
}

ShareGroupCoordinator::HeartbeatAnswer ShareGroupCoordinator::heartbeat(const Heartbeat& request, int64_t now_ms) {
  HeartbeatAnswer answer;
  auto fail = [&](ErrorCode code, std::string message) {
    answer.error = code;
    answer.message = std::move(message);
    return answer;
  };
  // Kafka's request checks, in its order.
  if (request.group_id.empty()) return fail(ErrorCode::kInvalidRequest, "GroupId can't be empty.");
  if (request.member_id.empty()) return fail(ErrorCode::kInvalidRequest, "MemberId can't be empty.");
  if (request.member_epoch < -1) return fail(ErrorCode::kInvalidRequest, "MemberEpoch is invalid.");
  if (request.member_epoch == 0 && (!request.subscribed_topics || request.subscribed_topics->empty()))
    return fail(ErrorCode::kInvalidRequest, "SubscribedTopicNames must be set in first request.");

  auto group_it = groups_.find(request.group_id);
  if (request.member_epoch != 0 && group_it == groups_.end())
    return fail(ErrorCode::kGroupIdNotFound, "Group " + request.group_id + " not found.");
  if (request.member_epoch == -1) {  // leaving
    if (group_it != groups_.end() && group_it->second.members.erase(request.member_id) > 0) {
      Group& group = group_it->second;
      ++group.group_epoch;
      assign(group);
    }
    answer.member_epoch = -1;
    return answer;
  }

  if (request.member_epoch > 0) {
    if (group_it == groups_.end() || !group_it->second.members.count(request.member_id))
      return fail(ErrorCode::kUnknownMemberId, "Member " + request.member_id + " is not a member of group " +
                                                   request.group_id + ".");
    const ShareMemberInfo& known = group_it->second.members.at(request.member_id);
    if (request.member_epoch != known.member_epoch)
      return fail(ErrorCode::kFencedMemberEpoch, "The share group member has a member epoch (" +
                                                     std::to_string(request.member_epoch) +
                                                     ") which is not equal to the epoch of the member (" +
                                                     std::to_string(known.member_epoch) + ").");
  }
  if (group_it == groups_.end()) group_it = groups_.emplace(request.group_id, Group{request.group_id, 0, 0, {}, {}}).first;
  Group& group = group_it->second;

  bool changed = false;
  auto member_it = group.members.find(request.member_id);
  if (member_it == group.members.end()) {
    if (static_cast<int32_t>(group.members.size()) >= options_.max_size)
      return fail(ErrorCode::kGroupMaxSizeReached, "The group has reached its maximum size.");
    member_it = group.members.emplace(request.member_id, ShareMemberInfo{}).first;
    member_it->second.member_id = request.member_id;
    changed = true;
  }
  ShareMemberInfo& member = member_it->second;
  if (request.member_epoch == 0) member.member_epoch = 0;  // a rejoin starts over
  member.last_heard_ms = now_ms;
  member.client_id = request.client_id;
  member.client_host = request.client_host;
  if (request.rack_id) member.rack_id = request.rack_id;
  if (request.subscribed_topics) {
    std::vector<std::string> topics = *request.subscribed_topics;
    std::sort(topics.begin(), topics.end());
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    if (topics != member.subscribed_topics) {
      member.subscribed_topics = std::move(topics);
      changed = true;
    }
  }
  // Topics created, deleted or grown since the last assignment count as a change too.
  if (changed || subscribed_partitions(group) != group.partition_counts) {
    ++group.group_epoch;
    assign(group);
  }
  if (member.member_epoch != group.assignment_epoch) {
    member.member_epoch = group.assignment_epoch;
    answer.assignment = member.assignment;
  }
  answer.member_epoch = member.member_epoch;
  return answer;
}

std::vector<std::pair<std::string, std::string>> ShareGroupCoordinator::expire_sessions(int64_t now_ms) {
  std::vector<std::pair<std::string, std::string>> gone;
  for (auto& [id, group] : groups_) {
    const size_t before = group.members.size();
    const int32_t timeout_ms = session_timeout_ms(id);
    std::erase_if(group.members, [&](const auto& entry) {
      if (now_ms - entry.second.last_heard_ms < timeout_ms) return false;
      gone.emplace_back(id, entry.first);
      return true;
    });
    if (group.members.size() != before) {
      ++group.group_epoch;
      assign(group);
    }
  }
  return gone;
}

std::optional<ShareGroupSummary> ShareGroupCoordinator::describe(std::string_view group_id) const {
  auto it = groups_.find(std::string(group_id));
  if (it == groups_.end()) return std::nullopt;
  const Group& group = it->second;
  ShareGroupSummary summary{group.id, group.members.empty() ? "Empty" : "Stable", group.group_epoch,
                            group.assignment_epoch, {}};
  for (const auto& [id, member] : group.members) summary.members.push_back(member);
  return summary;
}

std::vector<ShareGroupSummary> ShareGroupCoordinator::list() const {
  std::vector<ShareGroupSummary> out;
  for (const auto& [id, group] : groups_)
    out.push_back({group.id, group.members.empty() ? "Empty" : "Stable", group.group_epoch, group.assignment_epoch, {}});
  return out;
}

ErrorCode ShareGroupCoordinator::delete_group(std::string_view group_id) {
  auto it = groups_.find(std::string(group_id));
  if (it == groups_.end()) return ErrorCode::kGroupIdNotFound;
  if (!it->second.members.empty()) return ErrorCode::kNonEmptyGroup;
  groups_.erase(it);
  return ErrorCode::kNone;
}

}  // namespace sluice::broker
