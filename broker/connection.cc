#include "broker/connection.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include "broker/frame_reader.h"
#include "broker/handlers/handlers.h"
#include "broker/log.h"
#include "protocol/messages/api_keys.h"
#include "protocol/messages/request_header.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using asio::use_awaitable;

constexpr int16_t kProduceKey = 0;
constexpr int16_t kApiVersionsKey = 18;
// A response buffer grown past this for one large response is released
// afterwards, so idle connections stay small.
constexpr size_t kRetainedBufferBytes = 1 << 20;

// Sends bytes on the (non-blocking) socket, waiting for room when it is full.
// `more` tells the kernel more of the response follows (MSG_MORE), so a small
// header and the file data after it leave in the same packets.
asio::awaitable<void> send_bytes(asio::ip::tcp::socket& socket, const char* data, size_t size, bool more) {
  const int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
  while (size > 0) {
    ssize_t sent = ::send(socket.native_handle(), data, size, flags);
    if (sent >= 0) {
      data += sent;
      size -= static_cast<size_t>(sent);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await socket.async_wait(asio::ip::tcp::socket::wait_write, use_awaitable);
    } else if (errno != EINTR) {
      throw boost::system::system_error(errno, boost::system::system_category(), "send");
    }
  }
}

// Sends a region of a log file straight from the page cache (no copy through
// our memory). A file that turns out shorter than the region closes the
// connection: the response's size is already on the wire.
asio::awaitable<void> send_file_region(asio::ip::tcp::socket& socket, const protocol::FileRegion& region) {
  off_t offset = static_cast<off_t>(region.offset);
  size_t left = region.length;
  while (left > 0) {
    ssize_t sent = ::sendfile(socket.native_handle(), region.fd, &offset, left);
    if (sent > 0) {
      left -= static_cast<size_t>(sent);
    } else if (sent == 0) {
      throw std::runtime_error("log segment ended " + std::to_string(left) + " bytes early while sending a fetch");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      co_await socket.async_wait(asio::ip::tcp::socket::wait_write, use_awaitable);
    } else if (errno != EINTR) {
      throw boost::system::system_error(errno, boost::system::system_category(), "sendfile");
    }
  }
}

// Responses up to this size are assembled in memory and leave in one send():
// for a few KiB, pread + send costs less than send + sendfile + send (a tailing
// consumer's fetch is usually this small, and it is latency that counts there).
constexpr size_t kCopyResponseBytes = 64 << 10;

// Reads a file region into `out` (appending). A short file closes the connection,
// as in send_file_region.
void append_file_region(std::string& out, const protocol::FileRegion& region) {
  const size_t at = out.size();
  out.resize(at + region.length);
  size_t done = 0;
  while (done < region.length) {
    ssize_t n = ::pread(region.fd, out.data() + at + done, region.length - done,
                        static_cast<off_t>(region.offset + done));
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0) {
      throw std::runtime_error("log segment ended " + std::to_string(region.length - done) +
                               " bytes early while reading a fetch");
    } else if (errno != EINTR) {
      throw boost::system::system_error(errno, boost::system::system_category(), "pread");
    }
  }
}

// Sends an encoded response: its buffer with the spliced file regions in place.
// `scratch` is the connection's buffer for assembling small responses.
asio::awaitable<void> send_response(asio::ip::tcp::socket& socket, const protocol::Writer& response,
                                    std::string& scratch) {
  const std::string& buffer = response.buffer();
  if (!response.splices().empty() && response.size() <= kCopyResponseBytes) {
    scratch.clear();
    size_t position = 0;
    for (const auto& splice : response.splices()) {
      scratch.append(buffer, position, splice.at - position);
      if (splice.in_memory())
        scratch.append(splice.memory);
      else
        append_file_region(scratch, splice.region);
      position = splice.at;
    }
    scratch.append(buffer, position, buffer.size() - position);
    co_await send_bytes(socket, scratch.data(), scratch.size(), false);
    co_return;
  }
  size_t position = 0;
  for (const auto& splice : response.splices()) {
    co_await send_bytes(socket, buffer.data() + position, splice.at - position, true);
    if (splice.in_memory())
      co_await send_bytes(socket, splice.memory.data(), splice.memory.size(), true);
    else
      co_await send_file_region(socket, splice.region);
    position = splice.at;
  }
  co_await send_bytes(socket, buffer.data() + position, buffer.size() - position, false);
}

std::string peer_address(const asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string();
}

std::string peer_name(const asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

// What a connection's reader and its requests share: the socket, and the
// requests whose answers are still to be sent, in arrival order. A request
// that released the connection (Produce, once appended) runs on beside the
// reader and may outlive serve_connection at shutdown, so this is shared.
struct ConnectionState {
  struct Pending {
    Pending(std::shared_ptr<ConnectionRegistry::Connection> entry, Metrics& m)
        : activity(std::move(entry)), metrics(m) {
      ++activity->requests_in_handling;
      metrics.request_queued();
    }
    ~Pending() {
      finish();
      mark_started();  // one that never reached a handler leaves the queue too
      metrics.request_finished();
    }
    void mark_started() {
      if (!started) metrics.request_started();
      started = true;
    }
    void finish() {  // a parked fetch or join is not idleness; an answered one is
      if (counted) {
        counted = false;
        --activity->requests_in_handling;
        activity->touch();
      }
    }
    std::shared_ptr<ConnectionRegistry::Connection> activity;
    Metrics& metrics;  // sluice_requests_queued / _in_flight
    bool started = false;
    bool counted = true;
    protocol::Writer response;
    size_t size_at = 0;
    std::optional<RequestContext> ctx;
    int16_t api_key = 0;
    // When its last byte was read, its handler started and its answer was ready (sluice_request_seconds).
    std::chrono::steady_clock::time_point read_at = std::chrono::steady_clock::now(), started_at, done_at;
    bool released = false;  // the reader may go on to the next request
    bool done = false;
    std::string failure;  // the handler threw: the connection closes here
  };

  ConnectionState(asio::ip::tcp::socket s, std::shared_ptr<ConnectionRegistry::Connection> entry, std::string peer,
                  Metrics& metrics)
      : socket(std::move(s)),
        entry(std::move(entry)),
        peer(std::move(peer)),
        metrics(metrics),
        changed(socket.get_executor()) {}

  void notify() { changed.cancel(); }
  // Returns after the next notify() (callers check their condition first: one coroutine runs at a time).
  asio::awaitable<void> wait() {
    changed.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ignored;
    co_await changed.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  void close() {
    closed = true;
    boost::system::error_code ignored;
    socket.close(ignored);
    pending.clear();
    notify();
  }
  std::shared_ptr<Pending> new_request() {
    auto p = std::make_shared<Pending>(entry, metrics);
    if (!spare_buffers.empty()) {
      p->response.buffer().swap(spare_buffers.back());
      spare_buffers.pop_back();
    }
    pending.push_back(p);
    return p;
  }
  void recycle(Pending& p) {
    p.response.clear();  // also lets go of the files spliced in
    if (p.response.buffer().capacity() <= kRetainedBufferBytes && spare_buffers.size() < 4) {
      spare_buffers.emplace_back();
      spare_buffers.back().swap(p.response.buffer());
    }
  }

  asio::ip::tcp::socket socket;
  std::shared_ptr<ConnectionRegistry::Connection> entry;
  std::string peer;
  Metrics& metrics;
  std::deque<std::shared_ptr<Pending>> pending;
  std::vector<std::string> spare_buffers;
  std::string small_response;  // send_response's scratch space, at most kCopyResponseBytes
  asio::steady_timer changed;   // cancelled when a request is released or done, or an answer sent
  bool sending = false;
  bool closed = false;
};

// At most this many requests of one connection in flight (released and still
// waiting); librdkafka and the Java client keep up to 5 per connection.
constexpr size_t kMaxInFlight = 16;

// Sends the answers that are ready, in arrival order; the first coroutine to
// get here sends for every other meanwhile.
asio::awaitable<void> send_ready(std::shared_ptr<ConnectionState> c) {
  if (c->sending) co_return;
  c->sending = true;
  try {
    while (!c->closed && !c->pending.empty() && c->pending.front()->done) {
      std::shared_ptr<ConnectionState::Pending> p = c->pending.front();
      if (!p->failure.empty()) {
        SLUICE_LOG(kWarn, "closing " << c->peer << ": " << p->failure);
        c->close();
        break;
      }
      if (p->ctx && p->ctx->close_connection) {
        SLUICE_LOG(kWarn, "closing " << c->peer << " after a failed request of API " << p->api_key);
        c->close();
        break;
      }
      if (!p->ctx || p->ctx->send_response) {
        p->response.patch_int32(p->size_at, static_cast<int32_t>(p->response.size() - 4));
        co_await send_response(c->socket, p->response, c->small_response);
        c->metrics.bytes_sent(p->response.size());
        c->entry->touch();
      }
      if (p->ctx) {
        using Seconds = std::chrono::duration<double>;
        p->ctx->broker.metrics.request_done(p->api_key, Seconds(p->started_at - p->read_at).count(),
                                            Seconds(p->done_at - p->started_at).count(),
                                            Seconds(std::chrono::steady_clock::now() - p->done_at).count());
      }
      if (!c->pending.empty() && c->pending.front() == p) c->pending.pop_front();
      c->recycle(*p);
      c->notify();
    }
  } catch (const std::exception&) {
    c->close();  // the peer went away (or we are shutting down): nothing more to answer
  }
  c->sending = false;
}

// Runs one request's handler, then sends what is ready.
asio::awaitable<void> run_request(std::shared_ptr<ConnectionState> c, std::shared_ptr<ConnectionState::Pending> p,
                                  const ApiHandler* handler) {
  p->started_at = std::chrono::steady_clock::now();
  p->mark_started();
  try {
    co_await handler->handle(*p->ctx);
  } catch (const protocol::DecodeError& e) {
    p->failure = std::string("malformed request: ") + e.what();
  } catch (const std::exception& e) {
    p->failure = e.what();
  }
  p->done_at = std::chrono::steady_clock::now();
  p->ctx->on_release = nullptr;
  p->released = p->done = true;
  p->finish();
  c->notify();
  co_await send_ready(c);
}

}  // namespace

asio::awaitable<void> serve_connection(Broker& broker, asio::ip::tcp::socket socket_in,
                                       std::shared_ptr<ConnectionRegistry::Connection> entry, ListenerRole role) {
  auto c = std::make_shared<ConnectionState>(std::move(socket_in), entry, "", broker.metrics);
  struct Counted {  // sluice_connections_open, however the coroutine ends
    Metrics& metrics;
    explicit Counted(Metrics& m) : metrics(m) { metrics.connection_opened(); }
    ~Counted() { metrics.connection_closed(); }
  } counted(broker.metrics);
  asio::ip::tcp::socket& socket = c->socket;
  ConnectionRegistry::Connection& activity = *entry;
  activity.socket = &socket;  // the registry closes this one (the caller's was moved from)
  c->peer = peer_name(socket);
  const std::string& peer = c->peer;
  const std::string client_host = "/" + peer_address(socket);  // Kafka's form: "/127.0.0.1"
  const int64_t max_request_bytes = broker.config.get_long("socket.request.max.bytes");
  socket.set_option(asio::ip::tcp::no_delay(true));
  socket.native_non_blocking(true);  // send_bytes / send_file_region wait for room themselves
  FrameReader input(max_request_bytes);
  // Our own decision to close (a bad frame, an unknown API or version): the answers to the
  // requests before it go out first, as they would have one request at a time.
  auto close_after_earlier_answers = [&]() -> asio::awaitable<void> {
    while (!c->closed && !c->pending.empty()) co_await c->wait();
    c->close();
  };
  try {
    for (;;) {
      while (!c->closed && c->pending.size() >= kMaxInFlight) co_await c->wait();
      if (c->closed) co_return;
      std::span<char> next_frame;
      FrameReader::Status status;
      while ((status = input.next(next_frame)) == FrameReader::Status::kNeedMore) {
        const std::span<char> room = input.space();
        const size_t got = co_await socket.async_read_some(asio::buffer(room.data(), room.size()), use_awaitable);
        input.produced(got);
        broker.metrics.bytes_received(got);
        activity.touch();
      }
      if (status == FrameReader::Status::kBadSize) {
        SLUICE_LOG(kWarn, "closing " << peer << ": request size " << input.claimed_size() << " is outside 0.."
                                     << max_request_bytes << " (socket.request.max.bytes)");
        co_await close_after_earlier_answers();
        co_return;
      }
      char* const frame_data = next_frame.data();
      const std::string_view frame(frame_data, next_frame.size());
      // Whatever happens below, this request's bytes are done with by the next turn.
      struct ConsumeOnExit {
        FrameReader& input;
        ~ConsumeOnExit() { input.consume(); }
      } consume_on_exit{input};

      protocol::Reader reader(frame);
      const int16_t api_key = reader.read_int16();  // DecodeError on short frames closes below
      const int16_t api_version = reader.read_int16();
      broker.metrics.request_received(api_key, api_version);
      const int32_t correlation_id = reader.read_int32();

      const ApiHandler* handler = find_api_handler(role, api_key);
      if (!handler || !api_enabled(broker, api_key)) {
        SLUICE_LOG(kWarn, "closing " << peer << ": unknown API key " << api_key);
        co_await close_after_earlier_answers();
        co_return;
      }
      if (role == ListenerRole::kController && broker.controller && !broker.controller->active() &&
          !served_by_inactive_controller(api_key)) {
        // A quorum voter that does not lead: the sender finds the leader (Kafka answers
        // NOT_CONTROLLER; only Sluice brokers send these here, and they move on either way).
        co_await close_after_earlier_answers();
        co_return;
      }
      const bool version_ok = api_version >= handler->min_version && api_version <= handler->max_version;
      if (!version_ok && api_key != kApiVersionsKey) {
        SLUICE_LOG(kWarn, "closing " << peer << ": unsupported version " << api_version << " of API " << api_key);
        co_await close_after_earlier_answers();
        co_return;
      }
      // From here until its answer is sent the connection is not idle, however long the
      // request waits (a fetch long poll, a rebalance).
      std::shared_ptr<ConnectionState::Pending> p = c->new_request();
      p->api_key = api_key;
      p->size_at = p->response.reserve_int32();
      p->response.write_int32(correlation_id);
      if (!version_ok) {
        // KIP-511: parse nothing more and answer in v0 so the client can retry.
        write_api_versions_fallback(p->response);
        p->released = p->done = true;
        p->finish();
        co_await send_ready(c);
        continue;
      }
      protocol::RequestHeader header;
      reader = protocol::Reader(frame);
      header.decode(reader, protocol::request_header_version(api_key, api_version));
      if (protocol::response_header_version(api_key, api_version) >= 1) p->response.write_uvarint(0);  // no tags

      std::string_view body = std::string_view(frame).substr(reader.position());
      p->ctx.emplace(RequestContext{broker, api_key, api_version, correlation_id, std::move(header.client_id),
                                    client_host, body, frame_data + reader.position(), p->response});
      p->ctx->listener = role;
      if (api_key == kProduceKey) {
        // Produce may release the connection once appended (RequestContext::release): it then
        // runs on beside the reader, and the next request is read meanwhile.
        p->ctx->on_release = [weak = std::weak_ptr<ConnectionState>(c), raw = p.get()] {
          raw->released = true;
          if (auto state = weak.lock()) state->notify();
        };
        asio::co_spawn(socket.get_executor(), run_request(c, p, handler), asio::detached);
        // Until released it may still read its frame from `input`: wait for that even if the
        // connection closed meanwhile (its handler releases at the latest when it ends).
        while (!p->released) co_await c->wait();
      } else {
        co_await run_request(c, p, handler);
      }
      // A failed request closes the connection once the answers before it are out.
      if (c->closed || !p->failure.empty() || p->ctx->close_connection) {
        co_await close_after_earlier_answers();
        co_return;
      }
    }
  } catch (const protocol::DecodeError& e) {
    SLUICE_LOG(kWarn, "closing " << peer << ": malformed request: " << e.what());
  } catch (const boost::system::system_error& e) {
    // The peer went away (or we are shutting down): nothing to answer.
  } catch (const std::exception& e) {
    SLUICE_LOG(kError, "closing " << peer << ": " << e.what());
  }
  c->close();
}

}  // namespace sluice::broker
