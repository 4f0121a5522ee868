// ElectLeaders (key 43): preferred (v0+) and unclean (v1+) leader elections,
// as `kafka-leader-election.sh` asks for them. A broker-only node forwards it
// to the controller, as Kafka's brokers do.
#include <optional>

#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/elect_leaders_request.h"
#include "protocol/messages/elect_leaders_response.h"

namespace sluice::broker {

using protocol::ElectLeadersRequest;
using protocol::ElectLeadersResponse;
using protocol::ErrorCode;
using ElectionType = controller::Controller::ElectionType;

boost::asio::awaitable<void> handle_elect_leaders(RequestContext& ctx) {
  auto request = ctx.decode<ElectLeadersRequest>();
  if (!ctx.broker.controller) {
    co_await forward_to_controller<ElectLeadersResponse>(ctx, request, [&](ElectLeadersResponse& reply, ErrorCode code) {
      reply.error_code = static_cast<int16_t>(code);
      if (!request.topic_partitions) return;
      for (const auto& t : request.topic_partitions.value()) {
        auto& result = reply.replica_election_results.emplace_back();
        result.topic = t.topic;
        for (int32_t p : t.partitions) result.partition_result.push_back({p, static_cast<int16_t>(code), std::nullopt});
      }
    });
    co_return;
  }
  ElectLeadersResponse reply;
  if (request.election_type != static_cast<int8_t>(ElectionType::kPreferred) &&
      request.election_type != static_cast<int8_t>(ElectionType::kUnclean)) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
    ctx.respond(reply);
    co_return;
  }
  std::optional<controller::Controller::ElectionTargets> targets;
  if (request.topic_partitions) {
    targets.emplace();
    for (const auto& t : request.topic_partitions.value()) targets->emplace_back(t.topic, t.partitions);
  }
  const auto results =
      ctx.broker.controller->elect_leaders(static_cast<ElectionType>(request.election_type), targets);
  for (const auto& topic : results) {
    auto& out = reply.replica_election_results.emplace_back();
    out.topic = topic.topic;
    for (const auto& p : topic.partitions) {
      auto& r = out.partition_result.emplace_back();
      r.partition_id = p.partition;
      r.error_code = static_cast<int16_t>(p.result.error);
      if (p.result.ok()) r.error_message = std::nullopt;  // Kafka's: null when elected
      else r.error_message = p.result.message;
    }
  }
  co_await metadata_changes_durable(ctx.broker);  // the answer reports the new leaders
  ctx.respond(reply);
}

}  // namespace sluice::broker
