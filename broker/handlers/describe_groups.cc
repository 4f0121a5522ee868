// DescribeGroups (key 15): state, protocol and members of groups. A group
// that does not exist is described as Dead, as Kafka does up to v5.
#include "broker/cluster_view.h"
#include "broker/group_coordinator.h"
#include "broker/handlers/classic_group.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/describe_groups_request.h"
#include "protocol/messages/describe_groups_response.h"

namespace sluice::broker {

using protocol::DescribeGroupsResponse;

boost::asio::awaitable<void> handle_describe_groups(RequestContext& ctx) {
  auto request = ctx.decode<protocol::DescribeGroupsRequest>();
  DescribeGroupsResponse reply;
  for (const auto& id : request.groups) {
    auto& out = reply.groups.emplace_back();
    if (auto owner = ctx.broker.groups.ownership(id); owner != protocol::ErrorCode::kNone) {
      out.group_id = id;
      out.authorized_operations =
          request.include_authorized_operations ? kGroupAuthorizedOperations : kAuthorizedOperationsOmitted;
      out.error_code = static_cast<int16_t>(owner);  // a cluster: another broker's group, or still loading
      continue;
    }
    classic_group::describe_classic_group(ctx.broker.groups, id, request.include_authorized_operations, out);
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
