// LeaveGroup (key 13): members leave at once instead of timing out; v3+
// removes a batch of members (by member id or static instance id).
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/leave_group_request.h"
#include "protocol/messages/leave_group_response.h"

namespace sluice::broker {

constexpr int16_t kFirstBatchVersion = 3;

boost::asio::awaitable<void> handle_leave_group(RequestContext& ctx) {
  auto request = ctx.decode<protocol::LeaveGroupRequest>();
  std::vector<std::pair<std::string, std::optional<std::string>>> leaving;
  if (ctx.api_version >= kFirstBatchVersion) {
    for (const auto& m : request.members) leaving.emplace_back(m.member_id, m.group_instance_id);
  } else {
    leaving.emplace_back(request.member_id, std::nullopt);
  }
  auto [error, results] = ctx.broker.groups.leave(request.group_id, leaving);

  protocol::LeaveGroupResponse reply;
  if (ctx.api_version >= kFirstBatchVersion) {
    reply.error_code = static_cast<int16_t>(error);
    for (const auto& r : results) reply.members.push_back({r.member_id, r.group_instance_id, static_cast<int16_t>(r.error)});
  } else {
    // One member: its result is the request's.
    reply.error_code = static_cast<int16_t>(error != protocol::ErrorCode::kNone ? error : results.front().error);
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
