// ListGroups (key 16): every group this coordinator knows, optionally only
// those in given states (v4+) or of given types (v5+: "classic" groups, and
// "share" groups when they are served).
#include <algorithm>
#include <cctype>

#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/share_group_coordinator.h"
#include "protocol/messages/list_groups_request.h"
#include "protocol/messages/list_groups_response.h"

namespace sluice::broker {
namespace {

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool matches(const std::vector<std::string>& filter, std::string_view value) {
  return filter.empty() ||
         std::any_of(filter.begin(), filter.end(), [&](const std::string& f) { return equal_ignoring_case(f, value); });
}

}  // namespace

boost::asio::awaitable<void> handle_list_groups(RequestContext& ctx) {
  auto request = ctx.decode<protocol::ListGroupsRequest>();
  protocol::ListGroupsResponse reply;
  constexpr std::string_view kClassic = "classic";
  for (const auto& g : ctx.broker.groups.list()) {
    if (!matches(request.states_filter, g.state) || !matches(request.types_filter, kClassic)) continue;
    reply.groups.push_back({g.group_id, g.protocol_type, g.state, std::string(kClassic)});
  }
  constexpr std::string_view kShare = "share";
  if (ctx.broker.share_groups)
    for (const auto& g : ctx.broker.share_groups->list()) {
      if (ctx.broker.groups.ownership(g.group_id) != protocol::ErrorCode::kNone) continue;
      if (!matches(request.states_filter, g.state) || !matches(request.types_filter, kShare)) continue;
      reply.groups.push_back({g.group_id, std::string(kShare), g.state, std::string(kShare)});
    }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
