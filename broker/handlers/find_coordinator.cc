// FindCoordinator (key 10): which broker coordinates a consumer group (see
// cluster_view.h: one live broker chosen by the group id's hash; on a single
// node, this broker). Transactions have no coordinator yet, so transactional
// keys get COORDINATOR_NOT_AVAILABLE, which clients retry.
#include "broker/cluster_view.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/find_coordinator_request.h"
#include "protocol/messages/find_coordinator_response.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::FindCoordinatorRequest;
using protocol::FindCoordinatorResponse;

constexpr int8_t kGroupKey = 0;
constexpr int8_t kTransactionKey = 1;
constexpr int16_t kFirstBatchedVersion = 4;  // v4+: coordinator_keys instead of key

FindCoordinatorResponse::Coordinator locate(const Broker& broker, const std::string& key, int8_t key_type) {
  FindCoordinatorResponse::Coordinator c;
  c.key = key;
  c.error_message = std::nullopt;
  if (key_type == kGroupKey) {
    if (auto coordinator = group_coordinator_for(broker, key)) {
      c.node_id = coordinator->node_id;
      c.host = coordinator->host;
      c.port = coordinator->port;
    } else {  // no live broker known yet: clients retry
      c.node_id = -1;
      c.port = -1;
      c.error_code = static_cast<int16_t>(ErrorCode::kCoordinatorNotAvailable);
    }
  } else {
    c.node_id = -1;
    c.port = -1;
    c.error_code = static_cast<int16_t>(key_type == kTransactionKey ? ErrorCode::kCoordinatorNotAvailable
                                                                     : ErrorCode::kInvalidRequest);
    c.error_message = key_type == kTransactionKey ? "Transactions are not supported yet."
                                                  : "Unsupported key type " + std::to_string(key_type);
  }
  return c;
}

}  // namespace

boost::asio::awaitable<void> handle_find_coordinator(RequestContext& ctx) {
  auto request = ctx.decode<FindCoordinatorRequest>();
  FindCoordinatorResponse reply;
  if (ctx.api_version >= kFirstBatchedVersion) {
    for (const auto& key : request.coordinator_keys) reply.coordinators.push_back(locate(ctx.broker, key, request.key_type));
  } else {
    auto c = locate(ctx.broker, request.key, request.key_type);
    reply.error_code = c.error_code;
    reply.error_message = c.error_message;
    reply.node_id = c.node_id;
    reply.host = c.host;
    reply.port = c.port;
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
