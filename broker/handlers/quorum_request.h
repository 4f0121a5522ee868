// What Vote, BeginQuorumEpoch and EndQuorumEpoch share on the controller
// listener: the sender's cluster id checked (INCONSISTENT_CLUSTER_ID), a
// node with no quorum answering INCONSISTENT_VOTER_SET, and topics of
// partitions of which only __cluster_metadata-0 exists
// (UNKNOWN_TOPIC_OR_PARTITION for the rest). `answer(request, in, out)`, a
// coroutine, fills the answer for that one partition (broker/quorum_peer.h
// decides).
#pragma once

#include <boost/asio/awaitable.hpp>

#include "broker/handlers/handlers.h"
#include "broker/quorum_peer.h"
#include "controller/metadata_log.h"
#include "protocol/error_codes.h"

namespace sluice::broker {

template <typename Request, typename Response, typename Answer>
boost::asio::awaitable<void> answer_quorum_request(RequestContext& ctx, Answer answer) {
  using protocol::ErrorCode;
  auto request = ctx.decode<Request>();
  Response reply;
  if (!ctx.broker.quorum) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInconsistentVoterSet);  // a single controller: no quorum
  } else if (request.cluster_id && *request.cluster_id != ctx.broker.cluster_id) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInconsistentClusterId);
  } else {
    for (const auto& t : request.topics) {
      auto& topic = reply.topics.emplace_back();
      topic.topic_name = t.topic_name;
      for (const auto& p : t.partitions) {
        auto& out = topic.partitions.emplace_back();
        out.partition_index = p.partition_index;
        if (t.topic_name != controller::kMetadataTopic || p.partition_index != 0)
          out.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
        else
          co_await answer(request, p, out);
      }
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
