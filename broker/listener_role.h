// Which listener a connection came in on: the clients' (and other brokers')
// listeners, or a controller listener (controller.listener.names), which
// serves the controller's APIs only, as in Kafka.
#pragma once

namespace sluice::broker {

enum class ListenerRole { kBroker, kController };

}  // namespace sluice::broker
