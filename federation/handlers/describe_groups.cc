// DescribeGroups (key 15): state, protocol and members of groups this
// endpoint coordinates (every group of the federation with members; with
// several endpoints, those dealt to it, others NOT_COORDINATOR), as a
// broker describes its own (broker/handlers/classic_group.h). A group it
// does not know may still have committed offsets on the members
// (handlers/offset_commit.cc): each member's coordinator of it is asked, and
// a group one of them holds without members of its own is Empty, as a broker
// describes such a group; a group none knows is Dead.
#include <list>

#include "broker/handlers/classic_group.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/describe_groups_request.h"
#include "protocol/messages/describe_groups_response.h"

namespace sluice::federation {
namespace {

using protocol::DescribeGroupsRequest;
using protocol::DescribeGroupsResponse;
using Query = Forwarded<DescribeGroupsRequest, DescribeGroupsResponse>;
constexpr int16_t kForwardVersion = 5;
constexpr char kEmpty[] = "Empty";

bool coordinator_moved(const DescribeGroupsResponse& reply) {
  return !reply.groups.empty() && coordinator_error(reply.groups[0].error_code);
}

// Whether some member holds offsets of `group` without members of its own (its protocol type then).
boost::asio::awaitable<std::optional<std::string>> offsets_only_group(Federation& federation, MemberLinks& links,
                                                                      const std::string& group) {
  std::list<Query> queries;
  for (const auto& m : federation.members()) {
    if (!m->healthy()) continue;
    Query& q = queries.emplace_back();
    q.member = m.get();
    q.request.groups.push_back(group);
  }
  co_await forward_to_coordinators(federation, links, queries, group, kForwardVersion, coordinator_moved);
  for (const auto& q : queries) {
    if (!q.reply || q.reply->body.groups.size() != 1) continue;
    const auto& described = q.reply->body.groups[0];
    if (described.error_code == 0 && described.group_state == kEmpty && described.members.empty())
      co_return described.protocol_type;
  }
  co_return std::nullopt;
}

}  // namespace

boost::asio::awaitable<void> handle_describe_groups(FederationRequest& request) {
  auto decoded = request.decode<DescribeGroupsRequest>();
  DescribeGroupsResponse reply;
  for (size_t i = 0; i < decoded.groups.size(); ++i) {  // an index: co_await in the body (GCC 12)
    const std::string& id = decoded.groups[i];
    auto& out = reply.groups.emplace_back();
    if (const auto owner = request.federation.groups().ownership(id); owner != protocol::ErrorCode::kNone) {
      out.group_id = id;  // another endpoint coordinates it (several endpoints over one map)
      out.error_code = static_cast<int16_t>(owner);
      continue;
    }
    broker::classic_group::describe_classic_group(request.federation.groups(), id,
                                                  decoded.include_authorized_operations, out);
    if (out.group_state != "Dead") continue;
    const std::optional<std::string> protocol_type = co_await offsets_only_group(request.federation, request.links, id);
    if (!protocol_type) continue;
    out.group_state = kEmpty;
    out.protocol_type = *protocol_type;
  }
  request.respond(reply);
}

}  // namespace sluice::federation
