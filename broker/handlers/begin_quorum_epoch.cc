// BeginQuorumEpoch (key 53) on the controller listener: a voter just elected
// leader of the controller quorum tells this one, which follows it from now
// on (broker/quorum_peer.h). An announcement of an older epoch is answered
// FENCED_LEADER_EPOCH with the epoch and leader this voter knows.
#include "broker/handlers/quorum_request.h"
#include "protocol/messages/begin_quorum_epoch_request.h"
#include "protocol/messages/begin_quorum_epoch_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_begin_quorum_epoch(RequestContext& ctx) {
  QuorumPeer* quorum = ctx.broker.quorum;
  co_await answer_quorum_request<protocol::BeginQuorumEpochRequest, protocol::BeginQuorumEpochResponse>(
      ctx, [quorum](const auto&, const auto& p, auto& out) -> boost::asio::awaitable<void> {
        const auto answer = co_await quorum->on_begin_epoch(p.leader_id, p.leader_epoch);
        out.error_code = static_cast<int16_t>(answer.error);
        out.leader_id = answer.leader;
        out.leader_epoch = answer.epoch;
      });
}

}  // namespace sluice::broker
