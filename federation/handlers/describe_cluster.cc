// DescribeCluster (key 60): the cluster clients see, as Metadata shows it:
// the federation's cluster id and this endpoint as its one broker and its
// controller. Controller endpoints (KIP-919) are not served here.
#include "broker/cluster_view.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/describe_cluster_request.h"
#include "protocol/messages/describe_cluster_response.h"

namespace sluice::federation {

boost::asio::awaitable<void> handle_describe_cluster(FederationRequest& request) {
  constexpr int8_t kBrokersEndpoint = 1;
  auto decoded = request.decode<protocol::DescribeClusterRequest>();
  const FederationConfig& config = request.federation.config();
  protocol::DescribeClusterResponse reply;
  reply.endpoint_type = decoded.endpoint_type;
  if (decoded.endpoint_type != kBrokersEndpoint) {
    reply.error_code = static_cast<int16_t>(protocol::ErrorCode::kMismatchedEndpointType);
    reply.error_message = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type " +
                          std::string(decoded.endpoint_type == 2 ? "CONTROLLER" : "UNKNOWN");
  } else {
    reply.cluster_id = std::string(kFederationClusterId);
    reply.controller_id = config.node_id;
    for (const auto& e : request.federation.live_endpoints())
      reply.brokers.push_back({e.id, e.address.host, e.address.port, std::nullopt});
    reply.cluster_authorized_operations = decoded.include_cluster_authorized_operations
                                              ? broker::kClusterAuthorizedOperations
                                              : broker::kAuthorizedOperationsOmitted;
  }
  request.respond(reply);
  co_return;
}

}  // namespace sluice::federation
