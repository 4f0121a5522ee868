// OffsetForLeaderEpoch (key 23): where a leader epoch ended in this leader's
// log, from its leader-epoch cache (Kafka's LeaderEpochFileCache.endOffsetFor:
// the start of the next higher epoch, or the log end for the current one). A
// consumer that sees a partition's leader epoch change asks it to find out
// whether the log it read was truncated under it (KIP-320); the current leader
// epoch it sends is checked as Fetch checks it.
#include "broker/handlers/handlers.h"
#include "protocol/messages/offset_for_leader_epoch_request.h"
#include "protocol/messages/offset_for_leader_epoch_response.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::OffsetForLeaderEpochRequest;
using protocol::OffsetForLeaderEpochResponse;

boost::asio::awaitable<void> handle_offset_for_leader_epoch(RequestContext& ctx) {
  auto request = ctx.decode<OffsetForLeaderEpochRequest>();
  OffsetForLeaderEpochResponse reply;
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.topics.emplace_back();
    topic_reply.topic = topic.topic;
    for (const auto& wanted : topic.partitions) {
      auto& out = topic_reply.partitions.emplace_back();
      out.partition = wanted.partition;
      ErrorCode error = ErrorCode::kNone;
      // Consumers and followers are answered by the leader only, as in Kafka
      // (only the debugging replica id -2 may ask a follower; Sluice answers
      // it from the leader too).
      Partition* partition = ctx.broker.replicas.find_led(topic.topic, wanted.partition, error);
      if (partition && wanted.current_leader_epoch >= 0) {
        if (wanted.current_leader_epoch < partition->leader_epoch) error = ErrorCode::kFencedLeaderEpoch;
        else if (wanted.current_leader_epoch > partition->leader_epoch) error = ErrorCode::kUnknownLeaderEpoch;
      }
      if (error != ErrorCode::kNone) {
        out.error_code = static_cast<int16_t>(error);
        continue;
      }
      const auto [epoch, end_offset] = partition->epochs.end_offset_for(wanted.leader_epoch, partition->log->log_end_offset());
      out.leader_epoch = epoch;
      out.end_offset = end_offset;
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
