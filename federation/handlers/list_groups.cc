// ListGroups (key 16): the consumer groups this endpoint coordinates (every
// group of the federation with members), with the broker's filters (classic
// groups only), and the groups that only have committed offsets: those live
// on the members (handlers/offset_commit.cc), so every broker of every healthy
// member is asked for the groups it coordinates, and each group it holds
// offsets for without members of its own is listed as Empty, as a broker
// lists such a group. An unhealthy member's groups are left out until it
// returns (its brokers could not say).
#include <list>
#include <set>
#include <string>

#include "broker/handlers/classic_group.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/messages/list_groups_request.h"
#include "protocol/messages/list_groups_response.h"

namespace sluice::federation {
namespace {

using protocol::ListGroupsRequest;
using protocol::ListGroupsResponse;
using Query = Forwarded<ListGroupsRequest, ListGroupsResponse>;
constexpr int16_t kForwardVersion = 4;
constexpr char kEmpty[] = "Empty";

}  // namespace

boost::asio::awaitable<void> handle_list_groups(FederationRequest& request) {
  auto decoded = request.decode<ListGroupsRequest>();
  Federation& federation = request.federation;
  ListGroupsResponse reply;
  broker::classic_group::list_classic_groups(federation.groups(), decoded.states_filter, decoded.types_filter, reply);
  if (!broker::classic_group::filter_matches(decoded.types_filter, "classic") ||
      !broker::classic_group::filter_matches(decoded.states_filter, kEmpty)) {
    request.respond(reply);
    co_return;
  }
  std::list<Query> queries;
  for (const auto& m : federation.members()) {
    if (!m->healthy()) continue;
    for (int32_t node : m->broker_ids()) {
      Query& q = queries.emplace_back();
      q.member = m.get();
      q.node = node;
      q.request.states_filter.push_back(kEmpty);
    }
  }
  co_await forward_all(federation, queries, kForwardVersion,
                       std::chrono::milliseconds(federation.config().request_timeout_ms), request.links);
  std::set<std::string> listed;
  for (const auto& g : reply.groups) listed.insert(g.group_id);
  for (const auto& q : queries) {
    if (!q.reply || q.reply->body.error_code != 0) continue;
    for (const auto& g : q.reply->body.groups) {
      const bool offsets_only = g.group_state == kEmpty && (g.protocol_type.empty() || g.protocol_type == "consumer");
      // (Several endpoints: each lists those it would coordinate, so that a tool asking every one lists each once.)
      if (offsets_only && federation.coordinator_of(g.group_id).id == federation.config().node_id &&
          listed.insert(g.group_id).second)
        reply.groups.push_back({g.group_id, g.protocol_type, kEmpty, std::string("classic")});
    }
  }
  request.respond(reply);
}

}  // namespace sluice::federation
