// JoinGroup (key 11): join a consumer group, or rejoin for a rebalance. The
// reply waits until the rebalance completes (every member has rejoined, or
// the rebalance timeout passed); v4+ new members first get MEMBER_ID_REQUIRED
// with their id and join again with it.
#include <memory>

#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/join_group_request.h"
#include "protocol/messages/join_group_response.h"

namespace sluice::broker {

using protocol::JoinGroupRequest;
using protocol::JoinGroupResponse;

constexpr int16_t kFirstVersionWithRebalanceTimeout = 1;
constexpr int16_t kFirstVersionRequiringMemberId = 4;
constexpr int16_t kFirstVersionWithNullableProtocolName = 7;
constexpr int16_t kFirstVersionWithSkipAssignment = 9;

boost::asio::awaitable<void> handle_join_group(RequestContext& ctx) {
  auto request = ctx.decode<JoinGroupRequest>();
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

  auto pending = std::make_shared<PendingReply<JoinOutcome>>(ctx.broker.executor);
  ctx.broker.groups.join(join, pending);
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

}  // namespace sluice::broker
