// The services request handlers use: configuration, the controller, the
// partitions, the flusher. One Broker per process, owned by the Server.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/config.h"
#include "broker/controller_link.h"
#include "broker/cpu_worker.h"
#include "broker/flusher.h"
#include "broker/group_coordinator.h"
#include "broker/metrics.h"
#include "broker/metadata_publisher.h"
#include "broker/producer_ids.h"
#include "broker/replica_manager.h"
#include "controller/controller.h"

namespace sluice::broker {

class QuorumPeer;
class ShareGroupCoordinator;
class SharePartitionManager;
class ShareStateCoordinator;
class ShareStatePersister;

struct Broker {
  const BrokerConfig& config;
  // What this node knows of the cluster: the image its copy of the metadata
  // log replays to (on a node with the controller role, the controller's
  // committed image).
  const controller::MetadataImage& metadata;
  const std::string& cluster_id;
  // The controller in this process (standalone and controller nodes); null on
  // a broker-only node, whose metadata changes go to its controller over the
  // network.
  controller::Controller* controller;
  // A broker-only node's link to its controller (null on a controller node).
  ControllerLink* controller_link;
  // Metadata fetches parked until the next commit (null without a controller).
  MetadataPublisher* metadata_publisher;
  ReplicaManager& replicas;
  GroupCoordinator& groups;
  Flusher& flusher;
  ProducerIdManager& producer_ids;
  bool idempotence_enabled;  // sluice.idempotence.enable
  boost::asio::any_io_executor executor;
  CpuWorker& cpu_worker;  // CPU-heavy request work (opening compressed batches)
  Metrics& metrics;       // served by the admin server (GET /metrics)
  // This controller's part in a quorum of several voters (null otherwise).
  QuorumPeer* quorum = nullptr;
  // Share groups (KIP-932), when group.share.enable is set (null otherwise):
  // their membership, and the share-partitions of the partitions led here.
  ShareGroupCoordinator* share_groups = nullptr;
  SharePartitionManager* share_partitions = nullptr;
  // A cluster's share coordinator here, and the partition leaders' client of
  // the share coordinators (null on a single node, or without share groups).
  ShareStateCoordinator* share_states = nullptr;
  ShareStatePersister* share_persister = nullptr;
};

// Returns once every change the controller in this process has made so far
// is committed (durable in the metadata log, and on a majority of a quorum's
// voters): an answer must not report a change that a crash could still undo.
// At once on a broker-only node. Throws NotActiveController.
inline boost::asio::awaitable<void> metadata_changes_durable(const Broker& broker) {
  if (!broker.controller) co_return;
  co_await broker.metadata_publisher->wait_until_committed(*broker.controller, broker.controller->log().end_offset(),
                                                           broker.executor);
}

}  // namespace sluice::broker
