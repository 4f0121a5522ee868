// AlterPartitionReassignments (key 45): move partitions to other replicas, or
// cancel a move (kafka-reassign-partitions.sh --execute / --cancel). The
// answer says the reassignment started (or finished, when the target was in
// sync already); ListPartitionReassignments follows its progress. A
// broker-only node forwards it to the controller, as Kafka's brokers do.
#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/alter_partition_reassignments_request.h"
#include "protocol/messages/alter_partition_reassignments_response.h"

namespace sluice::broker {

using protocol::AlterPartitionReassignmentsRequest;
using protocol::AlterPartitionReassignmentsResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_alter_partition_reassignments(RequestContext& ctx) {
  auto request = ctx.decode<AlterPartitionReassignmentsRequest>();
  if (!ctx.broker.controller) {
    co_await forward_to_controller<AlterPartitionReassignmentsResponse>(
        ctx, request, [&](AlterPartitionReassignmentsResponse& reply, ErrorCode code) {
          reply.error_code = static_cast<int16_t>(code);
          for (const auto& t : request.topics) {
            auto& topic = reply.responses.emplace_back();
            topic.name = t.name;
            for (const auto& p : t.partitions) topic.partitions.push_back({p.partition_index, static_cast<int16_t>(code), std::nullopt});
          }
        });
    co_return;
  }
  std::vector<controller::Controller::Reassignment> wanted;
  for (const auto& t : request.topics)
    for (const auto& p : t.partitions) wanted.push_back({t.name, p.partition_index, p.replicas});
  const auto results =
      ctx.broker.controller->alter_partition_reassignments(wanted, request.allow_replication_factor_change);
  AlterPartitionReassignmentsResponse reply;
  reply.allow_replication_factor_change = request.allow_replication_factor_change;
  size_t i = 0;
  for (const auto& t : request.topics) {
    auto& topic = reply.responses.emplace_back();
    topic.name = t.name;
    for (const auto& p : t.partitions) {
      const controller::OperationResult& r = results[i++];
      topic.partitions.push_back({p.partition_index, static_cast<int16_t>(r.error),
                                  r.message.empty() ? std::nullopt : std::optional<std::string>(r.message)});
    }
  }
  co_await metadata_changes_durable(ctx.broker);  // the answer reports the change
  ctx.respond(reply);
}

}  // namespace sluice::broker
