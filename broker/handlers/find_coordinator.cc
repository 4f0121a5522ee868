// FindCoordinator (key 10): which broker coordinates a consumer group: on a
// single node this one; in a cluster the leader of the group's partition of
// __consumer_offsets (offsets_topic.h), which the first request creates.
// Transactions have no coordinator yet, so transactional keys get
// COORDINATOR_NOT_AVAILABLE, which clients retry.
#include "broker/cluster_view.h"
#include "broker/handlers/handlers.h"
#include "broker/offsets_topic.h"
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

boost::asio::awaitable<FindCoordinatorResponse::Coordinator> locate(Broker& broker, const std::string& key,
                                                                    int8_t key_type) {
  FindCoordinatorResponse::Coordinator c;
  c.key = key;
  c.error_message = std::nullopt;
  if (key_type == kGroupKey) {
    CoordinatorAddress coordinator;
    if (broker.groups.sharded()) {
      coordinator = co_await find_group_coordinator(broker, key);
    } else {
      const auto self = advertised_brokers(broker);
      coordinator.error = ErrorCode::kCoordinatorNotAvailable;
      for (const auto& b : self)
        if (b.node_id == broker.config.node_id()) coordinator = {ErrorCode::kNone, b.node_id, b.host, b.port};
    }
    c.error_code = static_cast<int16_t>(coordinator.error);
    c.node_id = coordinator.node_id;  // -1 and port -1 with an error: clients retry
    c.host = coordinator.host;
    c.port = coordinator.port;
  } else {
    c.node_id = -1;
    c.port = -1;
    c.error_code = static_cast<int16_t>(key_type == kTransactionKey ? ErrorCode::kCoordinatorNotAvailable
                                                                     : ErrorCode::kInvalidRequest);
    c.error_message = key_type == kTransactionKey ? "Transactions are not supported yet."
                                                  : "Unsupported key type " + std::to_string(key_type);
  }
  co_return c;
}

}  // namespace

boost::asio::awaitable<void> handle_find_coordinator(RequestContext& ctx) {
  auto request = ctx.decode<FindCoordinatorRequest>();
  FindCoordinatorResponse reply;
  if (ctx.api_version >= kFirstBatchedVersion) {
    for (const auto& key : request.coordinator_keys)
      reply.coordinators.push_back(co_await locate(ctx.broker, key, request.key_type));
  } else {
    auto c = co_await locate(ctx.broker, request.key, request.key_type);
    reply.error_code = c.error_code;
    reply.error_message = c.error_message;
    reply.node_id = c.node_id;
    reply.host = c.host;
    reply.port = c.port;
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
