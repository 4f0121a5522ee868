// DescribeCluster (key 60): cluster id, controller and brokers, as admin
// clients' describeCluster() shows them.
#include "broker/cluster_view.h"
#include "broker/handlers/handlers.h"
#include "broker/quorum_peer.h"
#include "protocol/messages/describe_cluster_request.h"
#include "protocol/messages/describe_cluster_response.h"

namespace sluice::broker {

using protocol::DescribeClusterRequest;
using protocol::DescribeClusterResponse;
using protocol::ErrorCode;

constexpr int8_t kBrokersEndpoint = 1;
constexpr int8_t kControllersEndpoint = 2;

boost::asio::awaitable<void> handle_describe_cluster(RequestContext& ctx) {
  auto request = ctx.decode<DescribeClusterRequest>();
  const Broker& broker = ctx.broker;
  DescribeClusterResponse reply;
  reply.endpoint_type = request.endpoint_type;
  const int8_t served = ctx.listener == ListenerRole::kController ? kControllersEndpoint : kBrokersEndpoint;
  if (request.endpoint_type != served) {
    // Controller endpoints are only served by controller listeners.
    reply.error_code = static_cast<int16_t>(ErrorCode::kMismatchedEndpointType);
    auto type_name = [](int8_t type) {
      return std::string(type == kBrokersEndpoint ? "BROKER" : type == kControllersEndpoint ? "CONTROLLER" : "UNKNOWN");
    };
    reply.error_message = "The request was sent to an endpoint of type " + type_name(served) +
                          ", but we wanted an endpoint of type " + type_name(request.endpoint_type);
  } else if (served == kControllersEndpoint) {
    // A controller listener describes the controllers (KIP-919), as
    // kafka-cluster.sh --bootstrap-controller shows them.
    reply.cluster_id = broker.cluster_id;
    // In a quorum, the voter that leads (-1 while none does).
    reply.controller_id = broker.quorum ? broker.quorum->leader_id() : broker.config.node_id();
    for (const auto& v : broker.config.controller_quorum_voters())
      reply.brokers.push_back({v.id, v.host, v.port, std::nullopt});
    reply.cluster_authorized_operations =
        request.include_cluster_authorized_operations ? kClusterAuthorizedOperations : kAuthorizedOperationsOmitted;
  } else {
    reply.cluster_id = broker.cluster_id;
    reply.controller_id = active_controller_id(broker);
    for (const auto& b : advertised_brokers(broker)) reply.brokers.push_back({b.node_id, b.host, b.port, std::nullopt});
    reply.cluster_authorized_operations =
        request.include_cluster_authorized_operations ? kClusterAuthorizedOperations : kAuthorizedOperationsOmitted;
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
