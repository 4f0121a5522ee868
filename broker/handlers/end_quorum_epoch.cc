// EndQuorumEpoch (key 54) on the controller listener: the controller quorum's
// leader is shutting down, so this voter stands for election at once rather
// than after controller.quorum.fetch.timeout.ms (broker/quorum_peer.h).
#include "broker/handlers/quorum_request.h"
#include "protocol/messages/end_quorum_epoch_request.h"
#include "protocol/messages/end_quorum_epoch_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_end_quorum_epoch(RequestContext& ctx) {
  QuorumPeer* quorum = ctx.broker.quorum;
  co_await answer_quorum_request<protocol::EndQuorumEpochRequest, protocol::EndQuorumEpochResponse>(
      ctx, [quorum](const auto&, const auto& p, auto& out) -> boost::asio::awaitable<void> {
        const auto answer = co_await quorum->on_end_epoch(p.leader_id, p.leader_epoch);
        out.error_code = static_cast<int16_t>(answer.error);
        out.leader_id = answer.leader;
        out.leader_epoch = answer.epoch;
      });
}

}  // namespace sluice::broker
