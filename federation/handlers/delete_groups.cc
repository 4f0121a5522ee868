// DeleteGroups (key 42): a group with no members goes, with the offsets it
// committed. Its membership is the endpoint's own; its offsets are on every
// member holding partitions it consumed, with each member's coordinator of
// the group (handlers/offset_commit.cc), so each member is asked to delete it
// too. A member that cannot be asked (or is unhealthy) leaves the group in
// place (a retriable COORDINATOR_NOT_AVAILABLE: asking again finishes it); a
// group no one knew is GROUP_ID_NOT_FOUND, as from a broker.
#include <list>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/delete_groups_request.h"
#include "protocol/messages/delete_groups_response.h"

namespace sluice::federation {
namespace {

using protocol::DeleteGroupsRequest;
using protocol::DeleteGroupsResponse;
using protocol::ErrorCode;
using Target = Forwarded<DeleteGroupsRequest, DeleteGroupsResponse>;
constexpr int16_t kForwardVersion = 2;

int16_t answer_of(const Target& target) {
  const auto* body = target.reply ? &target.reply->body : nullptr;
  if (!body || body->results.empty()) return static_cast<int16_t>(ErrorCode::kCoordinatorNotAvailable);
  return body->results[0].error_code;
}

boost::asio::awaitable<ErrorCode> delete_group(Federation& federation, MemberLinks& links, std::string group) {
  // Several endpoints: only the group's coordinator knows whether it has members.
  if (const ErrorCode owner = federation.groups().ownership(group); owner != ErrorCode::kNone) co_return owner;
  auto summary = federation.groups().describe(group, /*with_payloads=*/false);
  if (summary && !summary->members.empty()) co_return ErrorCode::kNonEmptyGroup;
  // An unhealthy member may hold some of its offsets and cannot be asked: at once, rather than
  // after every retry of its coordinator.
  for (const auto& m : federation.members())
    if (!m->healthy()) co_return ErrorCode::kCoordinatorNotAvailable;
  std::list<Target> targets;
  for (const auto& m : federation.members()) {
    Target& target = targets.emplace_back();
    target.member = m.get();
    target.request.groups_names.push_back(group);
  }
  const auto coordinator_moved = [](const DeleteGroupsResponse& r) {
    return !r.results.empty() && coordinator_error(r.results[0].error_code);
  };
  co_await forward_to_coordinators(federation, links, targets, group, kForwardVersion, coordinator_moved);
  bool found = summary.has_value();
  for (const Target& target : targets) {
    const int16_t error = answer_of(target);
    if (error == 0) {
      found = true;
    } else if (error != static_cast<int16_t>(ErrorCode::kGroupIdNotFound)) {
      // Not there yet (no answer, the coordinator still moving), or the
      // member's own group has members (clients consuming there directly).
      co_return coordinator_error(error) ? ErrorCode::kCoordinatorNotAvailable : static_cast<ErrorCode>(error);
    }
  }
  if (summary) {
    const ErrorCode local = federation.groups().delete_group(group);
    if (local != ErrorCode::kNone && local != ErrorCode::kGroupIdNotFound) co_return local;  // joined meanwhile
  }
  co_return found ? ErrorCode::kNone : ErrorCode::kGroupIdNotFound;
}

}  // namespace

boost::asio::awaitable<void> handle_delete_groups(FederationRequest& request) {
  const auto body = request.decode<DeleteGroupsRequest>();
  DeleteGroupsResponse reply;
  for (size_t i = 0; i < body.groups_names.size(); ++i) {  // an index: co_await in the body (GCC 12)
    const ErrorCode error = co_await delete_group(request.federation, request.links, body.groups_names[i]);
    reply.results.push_back({body.groups_names[i], static_cast<int16_t>(error)});
  }
  request.respond(reply);
}

}  // namespace sluice::federation
