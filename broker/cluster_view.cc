#include "broker/cluster_view.h"

namespace sluice::broker {

std::vector<BrokerEndpoint> advertised_brokers(const Broker& broker) {
  // Single node: this broker, at its first advertised listener.
  const auto listeners = broker.config.advertised_listeners();
  const Listener& l = listeners.front();
  std::string host = l.host.empty() || l.host == "0.0.0.0" ? "127.0.0.1" : l.host;
  return {BrokerEndpoint{broker.controller.node_id(), host, l.port}};
}

}  // namespace sluice::broker
