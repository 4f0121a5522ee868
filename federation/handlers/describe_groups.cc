// DescribeGroups (key 15): state, protocol and members of groups this
// endpoint coordinates (every group of the federation), as a broker describes
// its own (broker/handlers/classic_group.h).
#include "broker/handlers/classic_group.h"
#include "federation/handlers/handlers.h"
#include "protocol/messages/describe_groups_request.h"
#include "protocol/messages/describe_groups_response.h"

namespace sluice::federation {

boost::asio::awaitable<void> handle_describe_groups(FederationRequest& request) {
  auto decoded = request.decode<protocol::DescribeGroupsRequest>();
  protocol::DescribeGroupsResponse reply;
  for (const auto& id : decoded.groups)
    broker::classic_group::describe_classic_group(request.federation.groups(), id,
                                                  decoded.include_authorized_operations, reply.groups.emplace_back());
  request.respond(reply);
  co_return;
}

}  // namespace sluice::federation
