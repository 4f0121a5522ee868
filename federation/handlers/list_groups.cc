// ListGroups (key 16): the consumer groups this endpoint coordinates (every
// group of the federation), with the broker's filters (classic groups only).
#include "broker/handlers/classic_group.h"
#include "federation/handlers/handlers.h"
#include "protocol/messages/list_groups_request.h"
#include "protocol/messages/list_groups_response.h"

namespace sluice::federation {

boost::asio::awaitable<void> handle_list_groups(FederationRequest& request) {
  auto decoded = request.decode<protocol::ListGroupsRequest>();
  protocol::ListGroupsResponse reply;
  broker::classic_group::list_classic_groups(request.federation.groups(), decoded.states_filter,
                                             decoded.types_filter, reply);
  request.respond(reply);
  co_return;
}

}  // namespace sluice::federation
