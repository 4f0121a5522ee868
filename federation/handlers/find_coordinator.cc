// FindCoordinator (key 10): the endpoints coordinate the consumer groups
// themselves: this one names itself, or, where several endpoints serve the
// map, the one the group is dealt to (Federation::coordinator_of). Transaction and share-group coordinators are
// not served by the federation (transactions and share groups would span
// members): COORDINATOR_NOT_AVAILABLE.
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/find_coordinator_request.h"
#include "protocol/messages/find_coordinator_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::FindCoordinatorResponse;

constexpr int16_t kFirstBatchVersion = 4;
constexpr int8_t kGroupKey = 0;

FindCoordinatorResponse::Coordinator answer(const Federation& federation, const std::string& key, int8_t key_type) {
  FindCoordinatorResponse::Coordinator c;
  c.key = key;
  if (key_type != kGroupKey) {
    c.error_code = static_cast<int16_t>(ErrorCode::kCoordinatorNotAvailable);
    c.error_message = "The federation endpoint coordinates consumer groups only.";
    c.node_id = -1;
    c.port = -1;
    return c;
  }
  const EndpointAddress coordinator = federation.coordinator_of(key);
  c.node_id = coordinator.id;
  c.host = coordinator.address.host;
  c.port = coordinator.address.port;
  c.error_message = std::nullopt;
  return c;
}

}  // namespace

boost::asio::awaitable<void> handle_find_coordinator(FederationRequest& request) {
  const auto body = request.decode<protocol::FindCoordinatorRequest>();
  FindCoordinatorResponse reply;
  if (request.api_version >= kFirstBatchVersion) {
    for (const auto& key : body.coordinator_keys) reply.coordinators.push_back(answer(request.federation, key, body.key_type));
  } else {
    const auto c = answer(request.federation, body.key, body.key_type);
    reply.error_code = c.error_code;
    reply.error_message = c.error_message;
    reply.node_id = c.node_id;
    reply.host = c.host;
    reply.port = c.port;
  }
  request.respond(reply);
  co_return;
}

}  // namespace sluice::federation
