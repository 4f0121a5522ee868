#include "broker/cluster_view.h"

#include <algorithm>

namespace sluice::broker {

std::vector<BrokerEndpoint> advertised_brokers(const Broker& broker) {
  // Every unfenced broker at its endpoint of the listener this node
  // advertises first (brokers of one cluster share listener names).
  const auto listeners = broker.config.advertised_listeners();
  const std::string wanted = listeners.empty() ? std::string() : listeners.front().name;
  std::vector<BrokerEndpoint> out;
  for (const auto& [id, registration] : broker.metadata.brokers()) {
    if (registration.fenced || registration.endpoints.empty()) continue;
    const controller::BrokerEndpoint* chosen = &registration.endpoints.front();
    for (const auto& e : registration.endpoints)
      if (e.listener == wanted) chosen = &e;
    std::string host = chosen->host.empty() || chosen->host == "0.0.0.0" ? "127.0.0.1" : chosen->host;
    out.push_back(BrokerEndpoint{id, std::move(host), chosen->port});
  }
  return out;
}

int32_t active_controller_id(const Broker& broker) {
  // Clients cannot reach a KRaft controller: Kafka names a live broker, which
  // forwards what is meant for the controller. This one, if it is live.
  const auto live = broker.metadata.unfenced_brokers();
  if (std::find(live.begin(), live.end(), broker.config.node_id()) != live.end()) return broker.config.node_id();
  return live.empty() ? -1 : live.front();
}

bool inter_broker_endpoint(const BrokerConfig& config, const controller::MetadataImage& metadata, int32_t id,
                           std::string& host, uint16_t& port) {
  const controller::BrokerRegistration* b = metadata.find_broker(id);
  if (!b || b->endpoints.empty()) return false;
  std::string wanted = config.get_string("inter.broker.listener.name");
  if (wanted.empty()) {
    const auto mine = config.advertised_listeners();
    if (!mine.empty()) wanted = mine.front().name;
  }
  const controller::BrokerEndpoint* chosen = &b->endpoints.front();
  for (const auto& e : b->endpoints)
    if (e.listener == wanted) chosen = &e;
  host = chosen->host.empty() || chosen->host == "0.0.0.0" ? "127.0.0.1" : chosen->host;
  port = chosen->port;
  return true;
}

}  // namespace sluice::broker
