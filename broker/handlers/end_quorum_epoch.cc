// EndQuorumEpoch (key 54) on the controller listener: the controller quorum's
// leader is shutting down, so this voter stands for election at once rather
// than after controller.quorum.fetch.timeout.ms (broker/quorum_peer.h).
#include "broker/handlers/handlers.h"
#include "broker/quorum_peer.h"
#include "controller/metadata_log.h"
#include "protocol/messages/end_quorum_epoch_request.h"
#include "protocol/messages/end_quorum_epoch_response.h"

namespace sluice::broker {

using protocol::ErrorCode;

boost::asio::awaitable<void> handle_end_quorum_epoch(RequestContext& ctx) {
  auto request = ctx.decode<protocol::EndQuorumEpochRequest>();
  protocol::EndQuorumEpochResponse reply;
  QuorumPeer* quorum = ctx.broker.quorum;
  if (!quorum) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInconsistentVoterSet);
  } else if (request.cluster_id && *request.cluster_id != ctx.broker.cluster_id) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInconsistentClusterId);
  } else {
    for (const auto& t : request.topics) {
      auto& topic = reply.topics.emplace_back();
      topic.topic_name = t.topic_name;
      for (const auto& p : t.partitions) {
        auto& out = topic.partitions.emplace_back();
        out.partition_index = p.partition_index;
        if (t.topic_name != controller::kMetadataTopic || p.partition_index != 0) {
          out.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
          continue;
        }
        const auto answer = co_await quorum->on_end_epoch(p.leader_id, p.leader_epoch);
        out.error_code = static_cast<int16_t>(answer.error);
        out.leader_id = answer.leader;
        out.leader_epoch = answer.epoch;
      }
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
