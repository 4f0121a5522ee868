// SyncGroup (key 14): the leader hands in the assignment it computed; every
// member waits for its own share, which completes the generation.
#include <memory>

#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/sync_group_request.h"
#include "protocol/messages/sync_group_response.h"

namespace sluice::broker {

using protocol::SyncGroupRequest;
using protocol::SyncGroupResponse;

boost::asio::awaitable<void> handle_sync_group(RequestContext& ctx) {
  auto request = ctx.decode<SyncGroupRequest>();
  GroupCoordinator::SyncRequest sync;
  sync.group_id = request.group_id;
  sync.generation_id = request.generation_id;
  sync.member_id = request.member_id;
  sync.group_instance_id = request.group_instance_id;
  sync.protocol_type = request.protocol_type;
  sync.protocol_name = request.protocol_name;
  for (const auto& a : request.assignments) sync.assignments.emplace_back(a.member_id, a.assignment);

  auto pending = std::make_shared<PendingReply<SyncOutcome>>(ctx.broker.executor);
  ctx.broker.groups.sync(sync, pending);
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

}  // namespace sluice::broker
