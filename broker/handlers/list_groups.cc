// ListGroups (key 16): every group this coordinator knows, optionally only
// those in given states (v4+) or of given types (v5+: "classic" groups, and
// "share" groups when they are served).
#include "broker/group_coordinator.h"
#include "broker/handlers/classic_group.h"
#include "broker/handlers/handlers.h"
#include "broker/share_group_coordinator.h"
#include "protocol/messages/list_groups_request.h"
#include "protocol/messages/list_groups_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_list_groups(RequestContext& ctx) {
  auto request = ctx.decode<protocol::ListGroupsRequest>();
  protocol::ListGroupsResponse reply;
  classic_group::list_classic_groups(ctx.broker.groups, request.states_filter, request.types_filter, reply);
  constexpr std::string_view kShare = "share";
  if (ctx.broker.share_groups)
    for (const auto& g : ctx.broker.share_groups->list()) {
      if (ctx.broker.groups.ownership(g.group_id) != protocol::ErrorCode::kNone) continue;
      if (!classic_group::filter_matches(request.states_filter, g.state) ||
          !classic_group::filter_matches(request.types_filter, kShare))
        continue;
      reply.groups.push_back({g.group_id, std::string(kShare), g.state, std::string(kShare)});
    }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
