// The partition leaders' side of the ISR (Kafka's Partition.maybeShrinkIsr /
// maybeExpandIsr): every so often each partition this broker leads is checked,
// followers past replica.lag.time.max.ms are dropped from its ISR and
// followers that caught up are taken back, through AlterPartition to the
// controller (in-process, or over the network on a broker-only node). The new
// ISR takes effect when the controller commits it.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "broker/config.h"
#include "broker/controller_link.h"
#include "broker/replica_manager.h"
#include "controller/controller.h"

namespace sluice::broker {

boost::asio::awaitable<void> maintain_isr(const BrokerConfig& config, ReplicaManager& replicas,
                                          const controller::MetadataImage& metadata, controller::Controller* controller,
                                          ControllerLink* link);

}  // namespace sluice::broker
