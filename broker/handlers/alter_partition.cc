// AlterPartition (key 56), on the controller listener: a partition leader
// shrinking or expanding its ISR. v2 names the ISR's members; v3 adds the
// broker epoch each was seen under (KIP-903), which the controller checks.
#include "broker/handlers/handlers.h"
#include "protocol/messages/alter_partition_request.h"
#include "protocol/messages/alter_partition_response.h"

namespace sluice::broker {

using protocol::AlterPartitionRequest;
using protocol::AlterPartitionResponse;
using Controller = controller::Controller;

boost::asio::awaitable<void> handle_alter_partition(RequestContext& ctx) {
  auto request = ctx.decode<AlterPartitionRequest>();
  std::vector<Controller::PartitionAlteration> alterations;
  for (const auto& topic : request.topics)
    for (const auto& p : topic.partitions) {
      Controller::PartitionAlteration& a = alterations.emplace_back();
      a.topic_id = topic.topic_id;
      a.partition = p.partition_index;
      a.leader_epoch = p.leader_epoch;
      a.partition_epoch = p.partition_epoch;
      a.leader_recovery_state = p.leader_recovery_state;
      if (ctx.api_version >= 3) {
        for (const auto& m : p.new_isr_with_epochs) a.new_isr.push_back({m.broker_id, m.broker_epoch});
      } else {
        for (int32_t id : p.new_isr) a.new_isr.push_back({id, -1});  // no epochs: not checked
      }
    }
  auto outcome = ctx.broker.controller->alter_partition(request.broker_id, request.broker_epoch, alterations);

  AlterPartitionResponse reply;
  reply.error_code = static_cast<int16_t>(outcome.result.error);
  if (outcome.result.ok()) {
    // One answer per partition asked about, grouped as the request grouped them.
    size_t next = 0;
    for (const auto& topic : request.topics) {
      auto& t = reply.topics.emplace_back();
      t.topic_id = topic.topic_id;
      for (const auto& p : topic.partitions) {
        const Controller::AlteredPartition& result = outcome.partitions.at(next++);
        auto& out = t.partitions.emplace_back();
        out.partition_index = p.partition_index;
        out.error_code = static_cast<int16_t>(result.error);
        if (result.error != protocol::ErrorCode::kNone) continue;
        out.leader_id = result.leader;
        out.leader_epoch = result.leader_epoch;
        out.isr = result.isr;
        out.leader_recovery_state = result.leader_recovery_state;
        out.partition_epoch = result.partition_epoch;
      }
    }
  }
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
