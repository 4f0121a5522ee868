// DeleteGroups (key 42): remove groups nobody is in, with their offsets.
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/offsets_topic.h"
#include "protocol/messages/delete_groups_request.h"
#include "protocol/messages/delete_groups_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_delete_groups(RequestContext& ctx) {
  auto request = ctx.decode<protocol::DeleteGroupsRequest>();
  protocol::DeleteGroupsResponse reply;
  for (const auto& id : request.groups_names) {
    OffsetWrite write;
    protocol::ErrorCode error = ctx.broker.groups.delete_group(id, &write);
    // In a cluster the removal is acknowledged once the replicas have it.
    if (error == protocol::ErrorCode::kNone) error = co_await await_offset_write(ctx.broker, write);
    reply.results.push_back({id, static_cast<int16_t>(error)});
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
