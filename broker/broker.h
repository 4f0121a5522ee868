// The services request handlers use: configuration, the controller, the
// partitions, the flusher. One Broker per process, owned by the Server.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include "broker/config.h"
#include "broker/cpu_worker.h"
#include "broker/flusher.h"
#include "broker/group_coordinator.h"
#include "broker/producer_ids.h"
#include "broker/replica_manager.h"
#include "controller/controller.h"

namespace sluice::broker {

struct Broker {
  const BrokerConfig& config;
  controller::Controller& controller;
  ReplicaManager& replicas;
  GroupCoordinator& groups;
  Flusher& flusher;
  ProducerIdManager& producer_ids;
  bool idempotence_enabled;  // sluice.idempotence.enable
  boost::asio::any_io_executor executor;
  CpuWorker& cpu_worker;  // CPU-heavy request work (opening compressed batches)
};

}  // namespace sluice::broker
