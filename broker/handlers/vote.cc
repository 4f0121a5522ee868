// Vote (key 52) on the controller listener: a voter of the controller quorum
// standing for election asks for this one's vote (broker/quorum_peer.h has
// the rules; quorum_request.h the checks every quorum request gets).
#include "broker/handlers/quorum_request.h"
#include "protocol/messages/vote_request.h"
#include "protocol/messages/vote_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_vote(RequestContext& ctx) {
  QuorumPeer* quorum = ctx.broker.quorum;
  co_await answer_quorum_request<protocol::VoteRequest, protocol::VoteResponse>(
      ctx, [quorum](const protocol::VoteRequest& request, const auto& p, auto& out) -> boost::asio::awaitable<void> {
        if (request.voter_id >= 0 && request.voter_id != quorum->node_id()) {  // meant for another voter
          out.error_code = static_cast<int16_t>(protocol::ErrorCode::kInconsistentVoterSet);
          co_return;
        }
        const auto answer = co_await quorum->on_vote(p.replica_id, p.replica_epoch, p.last_offset_epoch, p.last_offset);
        out.error_code = static_cast<int16_t>(answer.error);
        out.leader_id = answer.leader;
        out.leader_epoch = answer.epoch;
        out.vote_granted = answer.granted;
      });
}

}  // namespace sluice::broker
