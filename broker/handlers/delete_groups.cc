// DeleteGroups (key 42): remove groups nobody is in, with their offsets.
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/delete_groups_request.h"
#include "protocol/messages/delete_groups_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_delete_groups(RequestContext& ctx) {
  auto request = ctx.decode<protocol::DeleteGroupsRequest>();
  protocol::DeleteGroupsResponse reply;
  for (const auto& id : request.groups_names)
    reply.results.push_back({id, static_cast<int16_t>(ctx.broker.groups.delete_group(id))});
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
