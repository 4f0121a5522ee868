// DescribeQuorum (key 55): the metadata log's quorum as kafka-metadata-quorum.sh
// shows it (describe --status, --replication): its leader and epoch, the high
// watermark, each voter's and each observer's (broker's) progress. A single
// controller leads since it started; in a quorum of several only the leader
// answers (the others: NOT_LEADER_OR_FOLLOWER, as Kafka's). A broker-only
// node forwards it to the active controller, as Kafka's brokers do.
#include <chrono>

#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "broker/quorum_peer.h"
#include "controller/metadata_log.h"
#include "protocol/messages/describe_quorum_request.h"
#include "protocol/messages/describe_quorum_response.h"

namespace sluice::broker {

using protocol::DescribeQuorumRequest;
using protocol::DescribeQuorumResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_describe_quorum(RequestContext& ctx) {
  auto request = ctx.decode<DescribeQuorumRequest>();
  if (!ctx.broker.controller) {
    co_await forward_to_controller<DescribeQuorumResponse>(
        ctx, request, [](DescribeQuorumResponse& reply, ErrorCode code) { reply.error_code = static_cast<int16_t>(code); });
    co_return;
  }
  DescribeQuorumResponse reply;
  // Kafka's rule until it has more than one metadata partition: exactly
  // __cluster_metadata-0; otherwise each partition asked for is unknown.
  if (request.topics.size() != 1 || request.topics[0].topic_name != controller::kMetadataTopic ||
      request.topics[0].partitions.size() != 1 || request.topics[0].partitions[0].partition_index != 0) {
    for (const auto& t : request.topics) {
      auto& topic = reply.topics.emplace_back();
      topic.topic_name = t.topic_name;
      for (const auto& p : t.partitions) {
        auto& partition = topic.partitions.emplace_back();
        partition.partition_index = p.partition_index;
        partition.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
      }
    }
    ctx.respond(reply);
    co_return;
  }
  const controller::Controller& controller = *ctx.broker.controller;
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t end = controller.log().durable_end_offset();
  auto& topic = reply.topics.emplace_back();
  topic.topic_name = std::string(controller::kMetadataTopic);
  auto& partition = topic.partitions.emplace_back();
  partition.partition_index = 0;
  const QuorumPeer* quorum = ctx.broker.quorum;
  if (quorum && !controller.active()) {
    partition.error_code = static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower);
    partition.leader_id = quorum->leader_id();
    partition.leader_epoch = quorum->epoch();
    ctx.respond(reply);
    co_return;
  }
  partition.leader_id = controller.node_id();
  partition.leader_epoch = controller.quorum_epoch();
  partition.high_watermark = controller.committed_offset();
  // The leader has everything it has, now (as Kafka reports its leader).
  partition.current_voters.push_back({controller.node_id(), {}, end, now_ms, now_ms});
  if (quorum)
    for (const auto& voter : quorum->voters()) {
      if (voter.id == controller.node_id()) continue;
      auto it = quorum->voter_progress().find(voter.id);
      if (it == quorum->voter_progress().end())
        partition.current_voters.push_back({voter.id, {}, -1, -1, -1});
      else
        partition.current_voters.push_back(
            {voter.id, {}, it->second.log_end_offset, it->second.last_fetch_ms, it->second.last_caught_up_ms});
    }
  for (const auto& [id, o] : controller.observers())
    if (id != controller.node_id() && !(quorum && quorum->is_voter(id)))
      partition.observers.push_back({id, {}, o.log_end_offset, o.last_fetch_ms, o.last_caught_up_ms});
  for (const auto& voter : ctx.broker.config.controller_quorum_voters()) {
    auto& node = reply.nodes.emplace_back();
    node.node_id = voter.id;
    const auto names = ctx.broker.config.controller_listener_names();
    node.listeners.push_back({names.empty() ? std::string("CONTROLLER") : names.front(), voter.host, voter.port});
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
