// The broker as a Kafka client: a connection it opens to another node (a
// follower fetching from its leader, a broker registering and heartbeating with
// the controller, fetching the metadata log).
//
// Calls are pipelined: requests leave in the order they are awaited, at most
// `max_in_flight` unanswered at a time, and since Kafka answers in order on a
// connection, the n-th response belongs to the n-th request (its correlation
// id is checked). Like Kafka's NetworkClient, a request that gets no answer in
// time closes the connection, failing the others in flight with it; a call
// still waiting for its turn to be sent just gives up.
//
// Single-threaded, like the rest of the broker: call() and close() run on the
// executor's one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange without it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "protocol/messages/api_keys.h"
#include "protocol/messages/response_header.h"
#include "protocol/wire.h"

namespace sluice::broker {

// A reply and the frame it was decoded from (records fields are views into it:
// keep the frame while the body is used). The frame starts at the response
// header; it is on the heap so moving the Reply keeps the views valid.
template <typename Response>
struct Reply {
  std::unique_ptr<std::string> frame;
  Response body;
};

namespace detail {
struct OutboundLink;  // one TCP connection and the calls on it (outbound_connection.cc)
}

struct OutboundLimits {
  // Largest response frame accepted: 100 MiB of records (socket.request.max.bytes'
  // default) plus room for the response's own fields. Larger claims close the
  // connection before anything is allocated.
  int32_t max_response_bytes = (100 << 20) + (1 << 20);
  // Requests sent and not yet answered (Kafka's max.in.flight default).
  size_t max_in_flight = 5;
  // A response frame's buffer starts at most this large and then doubles as
  // bytes arrive, so a peer that only claims a large frame costs little. A
  // caller whose peers are trusted with their claims (the federation
  // endpoint's members) raises it: each doubling copies what has arrived.
  size_t frame_bytes_at_once = 1 << 20;
};

class OutboundConnection {
 public:
  OutboundConnection(boost::asio::any_io_executor executor, std::string host, uint16_t port, std::string client_id,
                     OutboundLimits limits = {});
  ~OutboundConnection();  // fails calls in flight, like close()
  OutboundConnection(const OutboundConnection&) = delete;
  OutboundConnection& operator=(const OutboundConnection&) = delete;

  // Sends `request` at `version` and waits for its response, decoded at the
  // same version: `co_await connection.call<MetadataResponse>(request, 12, 5s)`.
  // The request is encoded at once (it need not outlive this call); the rest
  // happens when the result is awaited, which must start before the
  // connection is destroyed (destroying it later fails the call). Connects
  // first if not connected. `timeout` bounds the whole call from then:
  // connecting, waiting for a turn to send, and the response.
  //
  // Every failure is a boost::system::system_error; code() says which:
  //   asio::error::timed_out          connecting, the turn to send or the response
  //                                   took too long
  //   errc::bad_message               a response that does not decode, carries
  //                                   another correlation id, or arrives unasked
  //   asio::error::message_size       a response frame larger than max_response_bytes
  //   asio::error::operation_aborted  close() was called
  //   anything else                   the connection failed (refused, reset, eof...)
  // All but a timeout before the request was sent close the connection; the
  // next call reconnects. A version outside the message's range (thrown by
  // call() itself) or records in file regions are programming errors:
  // std::invalid_argument, and the connection is untouched.
  template <typename Response, typename Request>
  boost::asio::awaitable<Reply<Response>> call(const Request& request, int16_t version,
                                               std::chrono::milliseconds timeout);

  // Closes the connection; calls in flight fail with operation_aborted. A
  // later call() connects again.
  void close();
  // From now on connects to host:port (closing the connection to the old
  // address, as close() does): a broker following its controller quorum's leader.
  void retarget(std::string host, uint16_t port);
  // Connected and usable (not while connecting, not after a failure).
  bool connected() const;

 private:
  using Link = detail::OutboundLink;

  struct RawReply {
    std::unique_ptr<std::string> frame;
    std::shared_ptr<Link> link;  // the connection it came on, closed if the frame does not decode
  };

  // A frame holding the size prefix (filled in by exchange) and the request header.
  protocol::Writer begin_request(int16_t api_key, int16_t version, int32_t correlation_id) const;
  static void check_version(int16_t api_key, int16_t version, int16_t min_version, int16_t max_version);
  // Sends a frame begun by begin_request and waits for the matching response frame.
  boost::asio::awaitable<RawReply> exchange(int16_t api_key, int16_t version, int32_t correlation_id,
                                            protocol::Writer request, std::chrono::milliseconds timeout);
  template <typename Response>
  static boost::asio::awaitable<Reply<Response>> decode_reply(boost::asio::awaitable<RawReply> exchange,
                                                              int16_t version);
  // Closes the link a bad reply came on and throws errc::bad_message.
  [[noreturn]] static void reject_reply(const std::shared_ptr<Link>& link, int16_t api_key, int16_t version,
                                        const std::string& why);

  boost::asio::any_io_executor executor_;
  std::string host_;
  uint16_t port_;
  std::string client_id_;
  OutboundLimits limits_;
  int32_t next_correlation_id_ = 0;
  std::shared_ptr<Link> link_;  // null, connecting, open, or failed (replaced by the next call)
};

template <typename Response, typename Request>
boost::asio::awaitable<Reply<Response>> OutboundConnection::call(const Request& request, int16_t version,
                                                                 std::chrono::milliseconds timeout) {
  // Not a coroutine itself: the request is encoded before this returns, so a
  // temporary request need not outlive the awaitable.
  static_assert(Request::kApiKey == Response::kApiKey, "the response must be the request's");
  check_version(Request::kApiKey, version, Request::kMinVersion, Request::kMaxVersion);
  check_version(Response::kApiKey, version, Response::kMinVersion, Response::kMaxVersion);
  const int32_t correlation_id = next_correlation_id_;
  next_correlation_id_ = static_cast<int32_t>(static_cast<uint32_t>(next_correlation_id_) + 1);  // wraps, as Kafka's
  protocol::Writer writer = begin_request(Request::kApiKey, version, correlation_id);
  request.encode(writer, version);
  return decode_reply<Response>(exchange(Request::kApiKey, version, correlation_id, std::move(writer), timeout),
                                version);
}

template <typename Response>
boost::asio::awaitable<Reply<Response>> OutboundConnection::decode_reply(boost::asio::awaitable<RawReply> exchange,
                                                                         int16_t version) {
  RawReply raw = co_await std::move(exchange);
  Reply<Response> reply{std::move(raw.frame), Response{}};
  try {
    protocol::Reader reader(*reply.frame);
    protocol::ResponseHeader header;
    header.decode(reader, protocol::response_header_version(Response::kApiKey, version));
    // Trailing bytes are ignored, as Kafka's clients ignore them.
    reply.body.decode(reader, version);
  } catch (const protocol::DecodeError& e) {
    reject_reply(raw.link, Response::kApiKey, version, e.what());
  }
  co_return reply;
}

}  // namespace sluice::broker
