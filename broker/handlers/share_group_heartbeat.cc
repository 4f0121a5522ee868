// ShareGroupHeartbeat (key 76): a share group's member joins (epoch 0),
// stays (its current epoch) or leaves (-1), and learns its assignment
// (share_group_coordinator.h). The group's coordinator answers; another
// broker says NOT_COORDINATOR, as for consumer groups.
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/share_group_coordinator.h"
#include "broker/steady_clock.h"
#include "protocol/messages/share_group_heartbeat_request.h"
#include "protocol/messages/share_group_heartbeat_response.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::ShareGroupHeartbeatRequest;
using protocol::ShareGroupHeartbeatResponse;

boost::asio::awaitable<void> handle_share_group_heartbeat(RequestContext& ctx) {
  auto request = ctx.decode<ShareGroupHeartbeatRequest>();
  ShareGroupHeartbeatResponse reply;
  auto respond_error = [&](ErrorCode code, std::optional<std::string> message) {
    reply.error_code = static_cast<int16_t>(code);
    reply.error_message = std::move(message);
    ctx.respond(reply);
  };
  if (const ErrorCode owner = ctx.broker.groups.ownership(request.group_id);
      owner != ErrorCode::kNone && !request.group_id.empty()) {
    respond_error(owner, std::nullopt);
    co_return;
  }
  // One id, one kind of group.
  if (ctx.broker.groups.describe(request.group_id, false)) {
    respond_error(ErrorCode::kGroupIdNotFound, "Group " + request.group_id + " is not a share group.");
    co_return;
  }
  ShareGroupCoordinator::Heartbeat heartbeat{request.group_id,
                                             request.member_id,
                                             request.member_epoch,
                                             request.rack_id,
                                             request.subscribed_topic_names,
                                             ctx.client_id.value_or(""),
                                             ctx.client_host};
  auto answer = ctx.broker.share_groups->heartbeat(heartbeat, steady_now_ms());
  if (answer.error == ErrorCode::kGroupIdNotFound && ctx.broker.groups.sharded()) {
    // In a cluster the group may just have moved here from another
    // coordinator (membership is soft state): the member joins again,
    // where Kafka, whose membership is in __consumer_offsets, would know it.
    answer.error = ErrorCode::kUnknownMemberId;
    answer.message = "The group's coordinator moved: join again.";
  }
  reply.error_code = static_cast<int16_t>(answer.error);
  reply.error_message = answer.message;
  if (answer.error == ErrorCode::kNone) {
    reply.member_id = request.member_id;
    reply.member_epoch = answer.member_epoch;
    reply.heartbeat_interval_ms = ctx.broker.share_groups->heartbeat_interval_ms(request.group_id);
    if (answer.assignment) {
      auto& assignment = reply.assignment.emplace();
      for (const auto& topic : *answer.assignment)
        assignment.topic_partitions.push_back({topic.topic_id, topic.partitions});
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
