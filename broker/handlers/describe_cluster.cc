// DescribeCluster (key 60): cluster id, controller and brokers, as admin
// clients' describeCluster() shows them.
#include "broker/cluster_view.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/describe_cluster_request.h"
#include "protocol/messages/describe_cluster_response.h"

namespace sluice::broker {

using protocol::DescribeClusterRequest;
using protocol::DescribeClusterResponse;
using protocol::ErrorCode;

constexpr int8_t kBrokersEndpoint = 1;

boost::asio::awaitable<void> handle_describe_cluster(RequestContext& ctx) {
  auto request = ctx.decode<DescribeClusterRequest>();
  const Broker& broker = ctx.broker;
  DescribeClusterResponse reply;
  reply.endpoint_type = request.endpoint_type;
  if (request.endpoint_type != kBrokersEndpoint) {
    // Controller endpoints are only served by controller listeners.
    reply.error_code = static_cast<int16_t>(ErrorCode::kMismatchedEndpointType);
    reply.error_message = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type " +
                          std::string(request.endpoint_type == 2 ? "CONTROLLER" : "UNKNOWN");
  } else {
    reply.cluster_id = broker.controller.cluster_id();
    reply.controller_id = broker.controller.node_id();
    for (const auto& b : advertised_brokers(broker)) reply.brokers.push_back({b.node_id, b.host, b.port, std::nullopt});
    reply.cluster_authorized_operations =
        request.include_cluster_authorized_operations ? kClusterAuthorizedOperations : kAuthorizedOperationsOmitted;
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
