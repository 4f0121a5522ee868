// Helpers shared by the handlers that describe the cluster (Metadata,
// DescribeCluster): the brokers clients should connect to, and the operation
// bitfields Kafka reports when no authorizer is configured (everything).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "broker/broker.h"

namespace sluice::broker {

struct BrokerEndpoint {
  int32_t node_id;
  std::string host;
  int32_t port;
};

// The endpoints clients are told to use, one per live broker.
std::vector<BrokerEndpoint> advertised_brokers(const Broker& broker);
// The "controller" Metadata and DescribeCluster name.
int32_t active_controller_id(const Broker& broker);
// Where this node reaches broker `id` (a replica fetcher its leader): its
// endpoint on the inter-broker listener (inter.broker.listener.name, else the
// listener this node advertises first: brokers of one cluster share names).
// False when the broker has no registered endpoint.
bool inter_broker_endpoint(const BrokerConfig& config, const controller::MetadataImage& metadata, int32_t id,
                           std::string& host, uint16_t& port);

// AclOperation bit positions (Kafka's AclOperation codes) allowed on a topic
// and on the cluster when authorization is off.
constexpr int32_t kTopicAuthorizedOperations =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
constexpr int32_t kClusterAuthorizedOperations =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14);
// ... and on a group: READ, DESCRIBE, DELETE.
constexpr int32_t kGroupAuthorizedOperations = (1 << 3) | (1 << 6) | (1 << 8);
// What Kafka sends when the client did not ask for authorized operations.
constexpr int32_t kAuthorizedOperationsOmitted = INT32_MIN;

}  // namespace sluice::broker
