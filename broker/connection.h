// One client connection: reads size-prefixed requests, answers them in the
// order they arrived, and closes the connection where Kafka would: a bad
// frame size, an unknown API, an unparseable request.
//
// Clients pipeline (librdkafka and Java keep up to 5 requests in flight).
// Kafka handles a connection's requests one at a time; so do we, except that
// a Produce releases the connection once its batches are appended
// (RequestContext::release): the next request is read and handled while it
// waits for the group commit and the replicas, so those waits overlap instead
// of adding up. Appends stay in arrival order; answers leave in arrival order.
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "broker/broker.h"
#include "broker/connection_registry.h"
#include "broker/listener_role.h"

namespace sluice::broker {

// `entry` is the connection's entry in the registry: it is touched on every
// read and write, and counts the request in handling. The connection holds a
// share of it, since at shutdown it may outlive the registry.
boost::asio::awaitable<void> serve_connection(Broker& broker, boost::asio::ip::tcp::socket socket,
                                              std::shared_ptr<ConnectionRegistry::Connection> entry, ListenerRole role);

}  // namespace sluice::broker
