// One client connection to the federation endpoint: its requests read,
// handled and answered in the order they came, as a Kafka broker answers a
// connection's.
//
// Produce requests overlap. Once a Produce's batches are on their way to the
// members (encoded and queued, in request order, on this client's own links
// to them), the next request is read, up to kMaxUnanswered requests read and
// not yet answered; a producer's pipelined requests then keep the member busy
// instead of each waiting out the last one's round trip. Every other request
// waits until everything before it has been answered, and is answered before
// the next is read. Order on the wire is kept: a member broker handles a
// connection's requests in order, so a producer's batches for one partition
// reach it in the order the producer sent them (idempotent sequences stay in
// order).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace sluice::federation {

class Federation;

// Requests one client connection may have read and not yet answered (Kafka's
// clients send at most max.in.flight.requests.per.connection, 5 by default,
// before waiting for an answer).
inline constexpr size_t kMaxUnanswered = 5;

// Serves the connection until the client closes it or a request closes it.
boost::asio::awaitable<void> serve_client(Federation& federation, boost::asio::ip::tcp::socket socket);

}  // namespace sluice::federation
