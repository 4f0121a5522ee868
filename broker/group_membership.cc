// The membership half of the group coordinator: Kafka's classic rebalance
// protocol. A rebalance starts when a member joins, leaves or fails; it
// completes when every known member has rejoined (or the rebalance timeout
// passes); the leader then gets the members' subscriptions, computes the
// assignment and hands it over in SyncGroup, which completes the generation.
#include <algorithm>
#include <random>

#include "broker/group_coordinator.h"

namespace sluice::broker {

using protocol::ErrorCode;

namespace {

// Kafka's member ids: the client id, a dash and a UUID.
std::string random_suffix() {
  static std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    out += kHex[rng() & 0xF];
  }
  return out;
}

JoinOutcome join_error(ErrorCode error) {
  JoinOutcome out;
  out.error = error;
  return out;
}

SyncOutcome sync_error(ErrorCode error) {
  SyncOutcome out;
  out.error = error;
  return out;
}

}  // namespace

const char* GroupCoordinator::state_name(State state) {
  switch (state) {
    case State::kEmpty: return "Empty";
    case State::kPreparingRebalance: return "PreparingRebalance";
    case State::kCompletingRebalance: return "CompletingRebalance";
    case State::kStable: return "Stable";
  }
  return "Dead";
}

std::string GroupCoordinator::new_member_id(std::string_view prefix) { return std::string(prefix) + "-" + random_suffix(); }

GroupCoordinator::Group& GroupCoordinator::group_for(std::string_view group_id) {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) it = groups_.emplace(std::string(group_id), Group{}).first;
  return it->second;
}

void GroupCoordinator::refresh_session(Member& member) {
  member.session_deadline = Clock::now() + std::chrono::milliseconds(member.session_timeout_ms);
}

bool GroupCoordinator::supports_protocols(const Group& group, const JoinRequest& request) const {
  if (request.protocol_type.empty() || request.protocols.empty()) return false;
  if (group.members.empty()) return true;
  if (request.protocol_type != group.protocol_type) return false;
  // At least one protocol every member (and this one) supports.
  for (const auto& [name, _] : request.protocols) {
    bool everyone = std::all_of(group.members.begin(), group.members.end(), [&](const auto& m) {
      return m.second.member_id == request.member_id ||
             std::any_of(m.second.protocols.begin(), m.second.protocols.end(), [&](const auto& p) { return p.first == name; });
    });
    if (everyone) return true;
  }
  return false;
}

JoinOutcome GroupCoordinator::join_outcome_for(const Group& group, const Member& member) const {
  JoinOutcome out;
  out.generation_id = group.generation_id;
  out.protocol_type = group.protocol_type;
  out.protocol_name = group.protocol_name;
  out.leader = group.leader;
  out.member_id = member.member_id;
  if (member.member_id == group.leader) {
    for (const auto& [id, m] : group.members) {
      std::string metadata;
      for (const auto& [name, bytes] : m.protocols)
        if (group.protocol_name && name == *group.protocol_name) metadata = bytes;
      out.members.push_back({id, m.group_instance_id, metadata});
    }
  }
  return out;
}

void GroupCoordinator::add_member(Group& group, const JoinRequest& request, const std::string& member_id,
                                  std::shared_ptr<PendingReply<JoinOutcome>> reply) {
  Member m;
  m.member_id = member_id;
  m.group_instance_id = request.group_instance_id;
  m.client_id = request.client_id;
  m.client_host = request.client_host;
  m.session_timeout_ms = request.session_timeout_ms;
  m.rebalance_timeout_ms = request.rebalance_timeout_ms;
  m.protocol_type = request.protocol_type;
  m.protocols = request.protocols;
  m.pending_join = std::move(reply);
  m.join_order = next_join_order_++;
  refresh_session(m);
  if (group.members.empty()) group.protocol_type = request.protocol_type;
  if (m.group_instance_id) group.static_members[*m.group_instance_id] = member_id;
  group.members[member_id] = std::move(m);
}

void GroupCoordinator::prepare_rebalance(Group& group, const std::string& group_id) {
  // Members waiting in SyncGroup learn that their generation is over.
  for (auto& [id, m] : group.members)
    if (m.pending_sync) {
      m.pending_sync->complete(sync_error(ErrorCode::kRebalanceInProgress));
      m.pending_sync.reset();
    }
  int32_t rebalance_ms = 0;
  for (const auto& [id, m] : group.members) rebalance_ms = std::max(rebalance_ms, m.rebalance_timeout_ms);
  const auto now = Clock::now();
  group.rebalance_deadline = now + std::chrono::milliseconds(rebalance_ms);
  // A new group waits a little for more members before the first assignment.
  if (group.state == State::kEmpty && options_.initial_rebalance_delay_ms > 0)
    group.initial_delay_until = now + std::chrono::milliseconds(std::min(options_.initial_rebalance_delay_ms, rebalance_ms));
  else
    group.initial_delay_until = now;
  group.state = State::kPreparingRebalance;
  ++rebalances_;
  maybe_complete_join(group, group_id);
}

void GroupCoordinator::maybe_complete_join(Group& group, const std::string& group_id, bool deadline_passed) {
  if (group.state != State::kPreparingRebalance) return;
  if (Clock::now() < group.initial_delay_until && !deadline_passed) return;
  bool all_joined = std::all_of(group.members.begin(), group.members.end(),
                                [](const auto& m) { return m.second.pending_join != nullptr; });
  if (!all_joined && !deadline_passed) return;
  if (deadline_passed) {
    // Members that did not rejoin within the rebalance timeout are out.
    std::vector<std::string> late;
    for (const auto& [id, m] : group.members)
      if (!m.pending_join) late.push_back(id);
    for (const auto& id : late) remove_member(group, group_id, id);
  }
  complete_join(group, group_id);
}

std::string GroupCoordinator::select_protocol(const Group& group) const {
  // The protocol every member supports that most members prefer.
  std::map<std::string, int> votes;
  for (const auto& [id, m] : group.members) {
    for (const auto& [name, _] : m.protocols) {
      bool everyone = std::all_of(group.members.begin(), group.members.end(), [&](const auto& other) {
        return std::any_of(other.second.protocols.begin(), other.second.protocols.end(),
                           [&](const auto& p) { return p.first == name; });
      });
      if (everyone) {
        ++votes[name];
        break;
      }
    }
  }
  std::string chosen;
  int best = -1;
  for (const auto& [name, count] : votes)
    if (count > best) chosen = name, best = count;
  return chosen;
}

void GroupCoordinator::complete_join(Group& group, const std::string& group_id) {
  ++group.generation_id;
  if (group.members.empty()) {
    group.state = State::kEmpty;
    group.protocol_name.reset();
    group.leader.clear();
    return;
  }
  group.protocol_name = select_protocol(group);
  if (!group.members.count(group.leader)) {
    const Member* first = nullptr;
    for (const auto& [id, m] : group.members)
      if (!first || m.join_order < first->join_order) first = &m;
    group.leader = first->member_id;
  }
  group.state = State::kCompletingRebalance;
  for (auto& [id, m] : group.members) {
    m.assignment.clear();
    refresh_session(m);
    if (m.pending_join) {
      m.pending_join->complete(join_outcome_for(group, m));
      m.pending_join.reset();
    }
  }
  (void)group_id;
}

void GroupCoordinator::remove_member(Group& group, const std::string& group_id, const std::string& member_id) {
  auto it = group.members.find(member_id);
  if (it == group.members.end()) return;
  Member& m = it->second;
  if (m.pending_join) m.pending_join->complete(join_error(ErrorCode::kUnknownMemberId));
  if (m.pending_sync) m.pending_sync->complete(sync_error(ErrorCode::kUnknownMemberId));
  if (m.group_instance_id) group.static_members.erase(*m.group_instance_id);
  group.members.erase(it);
  if (group.leader == member_id) group.leader.clear();
  (void)group_id;
}

void GroupCoordinator::join(const JoinRequest& request, std::shared_ptr<PendingReply<JoinOutcome>> reply) {
  auto fail = [&](ErrorCode error, std::string member_id = {}) {
    JoinOutcome out;
    out.error = error;
    out.member_id = std::move(member_id);
    reply->complete(std::move(out));
  };
  if (request.group_id.empty()) return fail(ErrorCode::kInvalidGroupId);
  if (ErrorCode owner = ownership(request.group_id); owner != ErrorCode::kNone) return fail(owner);
  if (request.session_timeout_ms < options_.min_session_timeout_ms ||
      request.session_timeout_ms > options_.max_session_timeout_ms)
    return fail(ErrorCode::kInvalidSessionTimeout);
  Group& group = group_for(request.group_id);
  const std::string group_id = request.group_id;
  if (!supports_protocols(group, request)) return fail(ErrorCode::kInconsistentGroupProtocol, request.member_id);

  if (request.member_id.empty()) {
    if (request.group_instance_id) {
      auto s = group.static_members.find(*request.group_instance_id);
      if (s != group.static_members.end()) {
        // A static member restarted: it takes over its old identity under a new
        // member id, fencing the old one, and keeps its assignment.
        Member old = std::move(group.members.at(s->second));
        group.members.erase(s->second);
        if (old.pending_join) old.pending_join->complete(join_error(ErrorCode::kFencedInstanceId));
        if (old.pending_sync) old.pending_sync->complete(sync_error(ErrorCode::kFencedInstanceId));
        const std::string new_id = new_member_id(request.group_instance_id->empty() ? request.client_id : *request.group_instance_id);
        const bool was_leader = group.leader == old.member_id;
        add_member(group, request, new_id, nullptr);
        Member& m = group.members.at(new_id);
        m.assignment = old.assignment;
        m.join_order = old.join_order;
        if (was_leader) group.leader = new_id;
        if (group.state == State::kStable && group.protocol_name == select_protocol(group)) {
          // The group would choose the same protocol: no rebalance, same
          // generation, as Kafka does. A returning leader gets the members
          // but is told to skip the assignment (KIP-814).
          JoinOutcome out = join_outcome_for(group, m);
          out.skip_assignment = was_leader;
          if (was_leader) out.previous_leader = old.member_id;
          reply->complete(std::move(out));
          return;
        }
        m.pending_join = std::move(reply);
        if (group.state == State::kPreparingRebalance) maybe_complete_join(group, group_id);
        else prepare_rebalance(group, group_id);
        return;
      }
      add_member(group, request, new_member_id(*request.group_instance_id), std::move(reply));
    } else {
      const std::string id = new_member_id(request.client_id);
      if (request.require_known_member_id) {
        // KIP-394: hand out the id first; the member joins with it next.
        group.pending_members[id] = Clock::now() + std::chrono::milliseconds(request.session_timeout_ms);
        return fail(ErrorCode::kMemberIdRequired, id);
      }
      add_member(group, request, id, std::move(reply));
    }
    if (group.state == State::kPreparingRebalance) maybe_complete_join(group, group_id);
    else prepare_rebalance(group, group_id);
    return;
  }

  // A member we know, or one that got its id in the first step of the join.
  if (request.group_instance_id) {
    auto s = group.static_members.find(*request.group_instance_id);
    if (s != group.static_members.end() && s->second != request.member_id)
      return fail(ErrorCode::kFencedInstanceId, request.member_id);
  }
  auto known = group.members.find(request.member_id);
  if (known == group.members.end()) {
    auto pending = group.pending_members.find(request.member_id);
    if (pending == group.pending_members.end()) return fail(ErrorCode::kUnknownMemberId, request.member_id);
    group.pending_members.erase(pending);
    add_member(group, request, request.member_id, std::move(reply));
    if (group.state == State::kPreparingRebalance) maybe_complete_join(group, group_id);
    else prepare_rebalance(group, group_id);
    return;
  }
  Member& m = known->second;
  const bool protocols_changed = m.protocols != request.protocols;
  m.protocols = request.protocols;
  m.session_timeout_ms = request.session_timeout_ms;
  m.rebalance_timeout_ms = request.rebalance_timeout_ms;
  m.client_id = request.client_id;
  refresh_session(m);
  switch (group.state) {
    case State::kPreparingRebalance:
      if (m.pending_join) m.pending_join->complete(join_error(ErrorCode::kUnknownMemberId));  // superseded by this join
      m.pending_join = std::move(reply);
      maybe_complete_join(group, group_id);
      return;
    case State::kCompletingRebalance:
    case State::kStable:
      if (!protocols_changed && m.member_id != group.leader && group.state == State::kStable) {
        // A follower rejoining with nothing new gets the current generation back.
        reply->complete(join_outcome_for(group, m));
        return;
      }
      if (!protocols_changed && group.state == State::kCompletingRebalance) {
        // The join response was lost: send it again.
        reply->complete(join_outcome_for(group, m));
        return;
      }
      m.pending_join = std::move(reply);
      prepare_rebalance(group, group_id);
      return;
    case State::kEmpty:
      m.pending_join = std::move(reply);
      prepare_rebalance(group, group_id);
      return;
  }
}

void GroupCoordinator::sync(const SyncRequest& request, std::shared_ptr<PendingReply<SyncOutcome>> reply) {
  auto fail = [&](ErrorCode error) { reply->complete(sync_error(error)); };
  if (ErrorCode owner = ownership(request.group_id); owner != ErrorCode::kNone) return fail(owner);
  auto it = groups_.find(request.group_id);
  if (it == groups_.end()) return fail(ErrorCode::kUnknownMemberId);
  Group& group = it->second;
  if (request.group_instance_id) {
    auto s = group.static_members.find(*request.group_instance_id);
    if (s != group.static_members.end() && s->second != request.member_id) return fail(ErrorCode::kFencedInstanceId);
  }
  auto known = group.members.find(request.member_id);
  if (known == group.members.end()) return fail(ErrorCode::kUnknownMemberId);
  if (request.generation_id != group.generation_id) return fail(ErrorCode::kIllegalGeneration);
  if ((request.protocol_type && *request.protocol_type != group.protocol_type) ||
      (request.protocol_name && group.protocol_name && *request.protocol_name != *group.protocol_name))
    return fail(ErrorCode::kInconsistentGroupProtocol);
  Member& m = known->second;
  refresh_session(m);
  switch (group.state) {
    case State::kEmpty: return fail(ErrorCode::kUnknownMemberId);
    case State::kPreparingRebalance: return fail(ErrorCode::kRebalanceInProgress);
    case State::kStable:
      reply->complete({ErrorCode::kNone, group.protocol_type, group.protocol_name, m.assignment});
      return;
    case State::kCompletingRebalance:
      m.pending_sync = std::move(reply);
      if (request.member_id == group.leader) {
        for (auto& [id, member] : group.members) member.assignment.clear();
        for (const auto& [id, assignment] : request.assignments) {
          auto target = group.members.find(id);
          if (target != group.members.end()) target->second.assignment = assignment;
        }
        group.state = State::kStable;
        for (auto& [id, member] : group.members)
          if (member.pending_sync) {
            member.pending_sync->complete({ErrorCode::kNone, group.protocol_type, group.protocol_name, member.assignment});
            member.pending_sync.reset();
          }
      }
      return;
  }
}

ErrorCode GroupCoordinator::heartbeat(std::string_view group_id, int32_t generation_id, std::string_view member_id,
                                      const std::optional<std::string>& group_instance_id) {
  if (ErrorCode owner = ownership(group_id); owner != ErrorCode::kNone) return owner;
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return ErrorCode::kUnknownMemberId;
  Group& group = it->second;
  if (group_instance_id) {
    auto s = group.static_members.find(*group_instance_id);
    if (s != group.static_members.end() && s->second != member_id) return ErrorCode::kFencedInstanceId;
  }
  auto known = group.members.find(std::string(member_id));
  if (known == group.members.end()) return ErrorCode::kUnknownMemberId;
  if (generation_id != group.generation_id) return ErrorCode::kIllegalGeneration;
  refresh_session(known->second);
  return group.state == State::kPreparingRebalance ? ErrorCode::kRebalanceInProgress : ErrorCode::kNone;
}

std::pair<ErrorCode, std::vector<GroupCoordinator::LeaveResult>> GroupCoordinator::leave(
    std::string_view group_id, const std::vector<std::pair<std::string, std::optional<std::string>>>& members) {
  std::vector<LeaveResult> results;
  if (ErrorCode owner = ownership(group_id); owner != ErrorCode::kNone) return {owner, results};
  auto it = groups_.find(group_id);
  if (it == groups_.end()) {
    for (const auto& [id, instance] : members) results.push_back({id, instance, ErrorCode::kUnknownMemberId});
    return {ErrorCode::kNone, results};
  }
  Group& group = it->second;
  const std::string name(group_id);
  bool removed = false;
  for (const auto& [id, instance] : members) {
    std::string target = id;
    ErrorCode error = ErrorCode::kNone;
    if (instance) {
      auto s = group.static_members.find(*instance);
      if (s == group.static_members.end()) error = ErrorCode::kUnknownMemberId;
      else if (!id.empty() && s->second != id) error = ErrorCode::kFencedInstanceId;
      else target = s->second;
    } else if (!group.members.count(id)) {
      error = ErrorCode::kUnknownMemberId;
    }
    if (error == ErrorCode::kNone) {
      remove_member(group, name, target);
      removed = true;
    }
    results.push_back({id, instance, error});
  }
  if (removed) {
    if (group.state == State::kPreparingRebalance) maybe_complete_join(group, name);
    else if (group.state != State::kEmpty) prepare_rebalance(group, name);
  }
  return {ErrorCode::kNone, results};
}

void GroupCoordinator::tick() {
  const auto now = Clock::now();
  for (auto& [name, group] : groups_) {
    for (auto p = group.pending_members.begin(); p != group.pending_members.end();)
      p = p->second < now ? group.pending_members.erase(p) : std::next(p);
    // Members waiting in JoinGroup are alive by definition; others must heartbeat.
    std::vector<std::string> expired;
    for (const auto& [id, m] : group.members)
      if (!m.pending_join && m.session_deadline < now) expired.push_back(id);
    for (const auto& id : expired) remove_member(group, name, id);
    if (!expired.empty()) {
      if (group.state == State::kPreparingRebalance) maybe_complete_join(group, name);
      else if (group.state != State::kEmpty) prepare_rebalance(group, name);
    }
    if (group.state == State::kPreparingRebalance)
      maybe_complete_join(group, name, /*deadline_passed=*/now >= group.rebalance_deadline);
  }
}

std::optional<GroupSummary> GroupCoordinator::describe(std::string_view group_id, bool with_payloads) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return std::nullopt;
  const Group& group = it->second;
  GroupSummary out;
  out.group_id = std::string(group_id);
  out.state = state_name(group.state);
  out.protocol_type = group.protocol_type;
  out.protocol_name = group.protocol_name.value_or("");
  for (const auto& [id, m] : group.members) {
    GroupSummary::Member sm{id, m.group_instance_id, m.client_id, m.client_host, {}, {}};
    // Kafka shows subscriptions and assignments only for a settled group.
    if (with_payloads && group.state == State::kStable) {
      for (const auto& [name, bytes] : m.protocols)
        if (group.protocol_name && name == *group.protocol_name) sm.metadata = bytes;
      sm.assignment = m.assignment;
    }
    out.members.push_back(std::move(sm));
  }
  return out;
}

std::vector<GroupSummary> GroupCoordinator::list() const {
  std::vector<GroupSummary> out;
  for (const auto& [name, group] : groups_) {
    GroupSummary s;
    s.group_id = name;
    s.state = state_name(group.state);
    s.protocol_type = group.protocol_type;
    out.push_back(std::move(s));
  }
  return out;
}

ErrorCode GroupCoordinator::delete_group(std::string_view group_id, OffsetWrite* write) {
  if (ErrorCode owner = ownership(group_id); owner != ErrorCode::kNone) return owner;
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return ErrorCode::kGroupIdNotFound;
  if (!it->second.members.empty()) return ErrorCode::kNonEmptyGroup;
  std::vector<TopicPartition> all;
  for (const auto& [tp, c] : it->second.offsets) all.push_back(tp);
  if (!all.empty()) {
    auto written = persist(group_id, {}, all);
    if (!written) return ErrorCode::kNotCoordinator;  // nothing removed: the group stays
    if (write) *write = *written;
  }
  groups_.erase(it);
  return ErrorCode::kNone;
}

}  // namespace sluice::broker
