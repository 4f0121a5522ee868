// The partition leaders' side of the ISR (Kafka's Partition.maybeShrinkIsr /
// maybeExpandIsr): every so often each partition this broker leads is checked,
// followers past replica.lag.time.max.ms are dropped from its ISR and
// followers that caught up are taken back, through AlterPartition to the
// controller (in-process, or over the network on a broker-only node). The new
// ISR takes effect when the controller commits it (durably).
#pragma once

#include <boost/asio/awaitable.hpp>

#include "broker/broker.h"

namespace sluice::broker {

boost::asio::awaitable<void> maintain_isr(const Broker& broker);

}  // namespace sluice::broker
