// The classic group protocol's membership requests (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup) answered from a GroupCoordinator, for whoever serves
// them: a broker (handlers/join_group.cc and the others) and the federation
// endpoint (federation/handlers/). `Call` is the request as its server sees
// it: api_version, client_id (optional), client_host, decode<T>() and
// respond(const T&).
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "broker/cluster_view.h"
#include "broker/group_coordinator.h"
#include "protocol/messages/describe_groups_response.h"
#include "protocol/messages/heartbeat_request.h"
#include "protocol/messages/heartbeat_response.h"
#include "protocol/messages/join_group_request.h"
#include "protocol/messages/join_group_response.h"
#include "protocol/messages/leave_group_request.h"
#include "protocol/messages/leave_group_response.h"
#include "protocol/messages/sync_group_request.h"
#include "protocol/messages/sync_group_response.h"

namespace sluice::broker::classic_group {

using protocol::JoinGroupRequest;
using protocol::JoinGroupResponse;
using protocol::SyncGroupRequest;
using protocol::SyncGroupResponse;

constexpr int16_t kFirstVersionWithRebalanceTimeout = 1;
constexpr int16_t kFirstVersionRequiringMemberId = 4;
constexpr int16_t kFirstVersionWithNullableProtocolName = 7;
constexpr int16_t kFirstVersionWithSkipAssignment = 9;
constexpr int16_t kFirstBatchLeaveVersion = 3;

// JoinGroup (key 11): join a consumer group, or rejoin for a rebalance. The
// reply waits until the rebalance completes (every member has rejoined, or
// the rebalance timeout passed); v4+ new members first get MEMBER_ID_REQUIRED
// with their id and join again with it.
template <typename Call>
boost::asio::awaitable<void> serve_join_group(Call& ctx, GroupCoordinator& groups,
                                              const boost::asio::any_io_executor& executor) {
  auto request = ctx.template decode<JoinGroupRequest>();
  GroupCoordinator::JoinRequest join;
  join.group_id = request.group_id;
  join.member_id = request.member_id;
  join.group_instance_id = request.group_instance_id;
  join.client_id = ctx.client_id.value_or("");
  join.client_host = ctx.client_host;
  join.session_timeout_ms = request.session_timeout_ms;
  join.rebalance_timeout_ms = ctx.api_version >= kFirstVersionWithRebalanceTimeout ? request.rebalance_timeout_ms
                                                                                    : request.session_timeout_ms;
  join.protocol_type = request.protocol_type;
  for (const auto& p : request.protocols) join.protocols.emplace_back(p.name, p.metadata);
  join.require_known_member_id = ctx.api_version >= kFirstVersionRequiringMemberId;

  auto pending = std::make_shared<PendingReply<JoinOutcome>>(executor);
  groups.join(join, pending);
  while (!pending->ready.is_set()) co_await pending->ready.wait_until(boost::asio::steady_timer::time_point::max());

  const JoinOutcome& out = pending->outcome;
  JoinGroupResponse reply;
  reply.error_code = static_cast<int16_t>(out.error);
  reply.generation_id = out.generation_id;
  reply.member_id = out.member_id;
  reply.leader = out.leader;
  reply.skip_assignment = out.skip_assignment;
  if (out.error == protocol::ErrorCode::kNone) {
    reply.protocol_type = out.protocol_type;
    reply.protocol_name = out.protocol_name;
  } else {
    reply.protocol_name = ctx.api_version >= kFirstVersionWithNullableProtocolName ? std::nullopt
                                                                                   : std::optional<std::string>("");
  }
  if (out.skip_assignment && ctx.api_version < kFirstVersionWithSkipAssignment) {
    // A client that cannot be told to skip the assignment must not think it
    // leads: it gets the old leader id and no members, syncs, and keeps its share.
    reply.leader = out.previous_leader;
  } else {
    for (const auto& m : out.members) reply.members.push_back({m.member_id, m.group_instance_id, m.metadata});
  }
  ctx.respond(reply);
}

// SyncGroup (key 14): the leader hands in the assignment it computed; every
// member waits for its own share, which completes the generation.
template <typename Call>
boost::asio::awaitable<void> serve_sync_group(Call& ctx, GroupCoordinator& groups,
                                              const boost::asio::any_io_executor& executor) {
  auto request = ctx.template decode<SyncGroupRequest>();
  GroupCoordinator::SyncRequest sync;
  sync.group_id = request.group_id;
  sync.generation_id = request.generation_id;
  sync.member_id = request.member_id;
  sync.group_instance_id = request.group_instance_id;
  sync.protocol_type = request.protocol_type;
  sync.protocol_name = request.protocol_name;
  for (const auto& a : request.assignments) sync.assignments.emplace_back(a.member_id, a.assignment);

  auto pending = std::make_shared<PendingReply<SyncOutcome>>(executor);
  groups.sync(sync, pending);
  while (!pending->ready.is_set()) co_await pending->ready.wait_until(boost::asio::steady_timer::time_point::max());

  const SyncOutcome& out = pending->outcome;
  SyncGroupResponse reply;
  reply.error_code = static_cast<int16_t>(out.error);
  if (out.error == protocol::ErrorCode::kNone) {
    reply.protocol_type = out.protocol_type;
    reply.protocol_name = out.protocol_name;
    reply.assignment = out.assignment;
  }
  ctx.respond(reply);
}

// Heartbeat (key 12): a member says it is alive; the answer tells it when a
// rebalance has started (REBALANCE_IN_PROGRESS) so it rejoins.
template <typename Call>
boost::asio::awaitable<void> serve_heartbeat(Call& ctx, GroupCoordinator& groups) {
  auto request = ctx.template decode<protocol::HeartbeatRequest>();
  protocol::HeartbeatResponse reply;
  reply.error_code = static_cast<int16_t>(groups.heartbeat(request.group_id, request.generation_id,
                                                                      request.member_id, request.group_instance_id));
  ctx.respond(reply);
  co_return;
}

// LeaveGroup (key 13): members leave at once instead of timing out; v3+
// removes a batch of members (by member id or static instance id).
template <typename Call>
boost::asio::awaitable<void> serve_leave_group(Call& ctx, GroupCoordinator& groups) {
  auto request = ctx.template decode<protocol::LeaveGroupRequest>();
  std::vector<std::pair<std::string, std::optional<std::string>>> leaving;
  if (ctx.api_version >= kFirstBatchLeaveVersion) {
    for (const auto& m : request.members) leaving.emplace_back(m.member_id, m.group_instance_id);
  } else {
    leaving.emplace_back(request.member_id, std::nullopt);
  }
  auto [error, results] = groups.leave(request.group_id, leaving);

  protocol::LeaveGroupResponse reply;
  if (ctx.api_version >= kFirstBatchLeaveVersion) {
    reply.error_code = static_cast<int16_t>(error);
    for (const auto& r : results) reply.members.push_back({r.member_id, r.group_instance_id, static_cast<int16_t>(r.error)});
  } else {
    // One member: its result is the request's.
    reply.error_code = static_cast<int16_t>(error != protocol::ErrorCode::kNone ? error : results.front().error);
  }
  ctx.respond(reply);
  co_return;
}

// ListGroups' filters (v4+ states, v5+ types): an empty one matches
// everything; names compare ignoring case, as Kafka compares them.
inline bool filter_matches(const std::vector<std::string>& filter, std::string_view value) {
  const auto equal_ignoring_case = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  return filter.empty() || std::any_of(filter.begin(), filter.end(),
                                       [&](const std::string& f) { return equal_ignoring_case(f, value); });
}

// The classic groups `groups` coordinates that a ListGroups with these filters lists.
template <typename Reply>
void list_classic_groups(const GroupCoordinator& groups, const std::vector<std::string>& states_filter,
                         const std::vector<std::string>& types_filter, Reply& reply) {
  constexpr std::string_view kClassic = "classic";
  if (!filter_matches(types_filter, kClassic)) return;
  for (const auto& g : groups.list())
    if (filter_matches(states_filter, g.state)) reply.groups.push_back({g.group_id, g.protocol_type, g.state, std::string(kClassic)});
}

// DescribeGroups' answer for one group `groups` coordinates: a group it does
// not know is Dead, as Kafka describes it up to v5.
inline void describe_classic_group(const GroupCoordinator& groups, const std::string& id, bool include_operations,
                                   protocol::DescribeGroupsResponse::DescribedGroup& out) {
  out.group_id = id;
  out.authorized_operations = include_operations ? kGroupAuthorizedOperations : kAuthorizedOperationsOmitted;
  auto summary = groups.describe(id);
  if (!summary) {
    out.group_state = "Dead";
    return;
  }
  out.group_state = summary->state;
  out.protocol_type = summary->protocol_type;
  out.protocol_data = summary->protocol_name;
  for (const auto& m : summary->members)
    out.members.push_back({m.member_id, m.group_instance_id, m.client_id, m.client_host, m.metadata, m.assignment});
}

}  // namespace sluice::broker::classic_group
