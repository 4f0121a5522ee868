// One client connection: reads size-prefixed requests, answers them in the
// order they arrived (clients pipeline; Kafka keeps one request in flight per
// connection, and so do we), and closes the connection where Kafka would:
// a bad frame size, an unknown API, an unparseable request.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "broker/broker.h"

namespace sluice::broker {

boost::asio::awaitable<void> serve_connection(Broker& broker, boost::asio::ip::tcp::socket socket);

}  // namespace sluice::broker
