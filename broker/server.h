// The broker process: opens the state store and the logs, starts the
// controller, listens on the configured listeners and serves connections on
// one network thread until SIGTERM or SIGINT, then shuts down cleanly.
#pragma once

#include "broker/config.h"

namespace sluice::broker {

// Returns the process exit code.
int run_server(const BrokerConfig& config);

}  // namespace sluice::broker
