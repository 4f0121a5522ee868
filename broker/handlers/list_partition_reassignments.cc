// ListPartitionReassignments (key 46): the reassignments in progress, all of
// them or those of the partitions asked about (kafka-reassign-partitions.sh
// --verify, --list). Read from the controller's committed image; a broker-only node
// forwards it to the controller, as Kafka's brokers do.
#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/list_partition_reassignments_request.h"
#include "protocol/messages/list_partition_reassignments_response.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::ListPartitionReassignmentsRequest;
using protocol::ListPartitionReassignmentsResponse;
using Ongoing = ListPartitionReassignmentsResponse::OngoingTopicReassignment::OngoingPartitionReassignment;

namespace {

Ongoing describe(int32_t index, const controller::PartitionState& state) {
  return {index, state.replicas, state.adding_replicas, state.removing_replicas};
}

}  // namespace

boost::asio::awaitable<void> handle_list_partition_reassignments(RequestContext& ctx) {
  auto request = ctx.decode<ListPartitionReassignmentsRequest>();
  if (!ctx.broker.controller) {
    co_await forward_to_controller<ListPartitionReassignmentsResponse>(
        ctx, request, [&](ListPartitionReassignmentsResponse& reply, ErrorCode code) { reply.error_code = static_cast<int16_t>(code); });
    co_return;
  }
  // What is committed, as Kafka's controller answers it.
  const controller::MetadataImage& image = ctx.broker.controller->committed_image();
  ListPartitionReassignmentsResponse reply;
  auto add = [&](const std::string& name, std::vector<Ongoing> partitions) {
    if (!partitions.empty()) reply.topics.push_back({name, std::move(partitions)});
  };
  if (!request.topics) {
    for (const auto& [name, topic] : image.topics()) {
      std::vector<Ongoing> ongoing;
      for (int32_t p = 0; p < topic.partition_count(); ++p)
        if (topic.partitions[p].reassigning()) ongoing.push_back(describe(p, topic.partitions[p]));
      add(name, std::move(ongoing));
    }
  } else {
    // Partitions with no reassignment in progress, and unknown ones, are left out (as Kafka does).
    for (const auto& t : request.topics.value()) {
      const controller::TopicInfo* topic = image.find_topic(t.name);
      if (!topic) continue;
      std::vector<Ongoing> ongoing;
      for (int32_t p : t.partition_indexes)
        if (p >= 0 && p < topic->partition_count() && topic->partitions[p].reassigning())
          ongoing.push_back(describe(p, topic->partitions[p]));
      add(t.name, std::move(ongoing));
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
