// Vote (key 52) on the controller listener: a voter of the controller quorum
// standing for election asks for this one's vote (broker/quorum_peer.h has
// the rules). Only __cluster_metadata-0 has a quorum; a request for anything
// else is answered UNKNOWN_TOPIC_OR_PARTITION, one from another cluster
// INCONSISTENT_CLUSTER_ID.
#include "broker/handlers/handlers.h"
#include "broker/quorum_peer.h"
#include "controller/metadata_log.h"
#include "protocol/messages/vote_request.h"
#include "protocol/messages/vote_response.h"

namespace sluice::broker {

using protocol::ErrorCode;

boost::asio::awaitable<void> handle_vote(RequestContext& ctx) {
  auto request = ctx.decode<protocol::VoteRequest>();
  protocol::VoteResponse reply;
  QuorumPeer* quorum = ctx.broker.quorum;
  if (!quorum) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInconsistentVoterSet);  // a single controller: no quorum to vote in
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
        if (request.voter_id >= 0 && request.voter_id != quorum->node_id()) {
          out.error_code = static_cast<int16_t>(ErrorCode::kInconsistentVoterSet);
          continue;
        }
        const auto answer = co_await quorum->on_vote(p.replica_id, p.replica_epoch, p.last_offset_epoch, p.last_offset);
        out.error_code = static_cast<int16_t>(answer.error);
        out.leader_id = answer.leader;
        out.leader_epoch = answer.epoch;
        out.vote_granted = answer.granted;
      }
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
