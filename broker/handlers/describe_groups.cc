// DescribeGroups (key 15): state, protocol and members of groups. A group
// that does not exist is described as Dead, as Kafka does up to v5.
#include "broker/cluster_view.h"
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/describe_groups_request.h"
#include "protocol/messages/describe_groups_response.h"

namespace sluice::broker {

using protocol::DescribeGroupsResponse;

constexpr int32_t kOperationsOmitted = INT32_MIN;

boost::asio::awaitable<void> handle_describe_groups(RequestContext& ctx) {
  auto request = ctx.decode<protocol::DescribeGroupsRequest>();
  DescribeGroupsResponse reply;
  for (const auto& id : request.groups) {
    auto& out = reply.groups.emplace_back();
    out.group_id = id;
    out.authorized_operations = request.include_authorized_operations ? kGroupAuthorizedOperations : kOperationsOmitted;
    if (auto owner = ctx.broker.groups.ownership(id); owner != protocol::ErrorCode::kNone) {
      out.error_code = static_cast<int16_t>(owner);  // a cluster: another broker's group, or still loading
      continue;
    }
    auto summary = ctx.broker.groups.describe(id);
    if (!summary) {
      out.group_state = "Dead";
      continue;
    }
    out.group_state = summary->state;
    out.protocol_type = summary->protocol_type;
    out.protocol_data = summary->protocol_name;
    for (const auto& m : summary->members)
      out.members.push_back({m.member_id, m.group_instance_id, m.client_id, m.client_host, m.metadata, m.assignment});
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
