// ShareGroupDescribe (key 77): share groups' state, epochs and members with
// their subscriptions and assignments (share_group_coordinator.h).
#include "broker/cluster_view.h"
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/share_group_coordinator.h"
#include "protocol/messages/share_group_describe_request.h"
#include "protocol/messages/share_group_describe_response.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::ShareGroupDescribeRequest;
using protocol::ShareGroupDescribeResponse;

boost::asio::awaitable<void> handle_share_group_describe(RequestContext& ctx) {
  auto request = ctx.decode<ShareGroupDescribeRequest>();
  ShareGroupDescribeResponse reply;
  for (const auto& group_id : request.group_ids) {
    auto& out = reply.groups.emplace_back();
    out.group_id = group_id;
    if (const ErrorCode owner = ctx.broker.groups.ownership(group_id); owner != ErrorCode::kNone) {
      out.error_code = static_cast<int16_t>(owner);
      continue;
    }
    const auto summary = ctx.broker.share_groups->describe(group_id);
    if (!summary) {
      out.error_code = static_cast<int16_t>(ErrorCode::kGroupIdNotFound);
      out.error_message = ctx.broker.groups.describe(group_id, false)
                              ? "Group " + group_id + " is not a share group."
                              : "Group " + group_id + " not found.";
      continue;
    }
    out.group_state = summary->state;
    out.group_epoch = summary->group_epoch;
    out.assignment_epoch = summary->assignment_epoch;
    out.assignor_name = "simple";
    if (request.include_authorized_operations) out.authorized_operations = kGroupAuthorizedOperations;
    for (const auto& m : summary->members) {
      auto& member = out.members.emplace_back();
      member.member_id = m.member_id;
      member.rack_id = m.rack_id;
      member.member_epoch = m.member_epoch;
      member.client_id = m.client_id;
      member.client_host = m.client_host;
      member.subscribed_topic_names = m.subscribed_topics;
      for (const auto& topic : m.assignment)
        member.assignment.topic_partitions.push_back({topic.topic_id, topic.topic, topic.partitions});
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
