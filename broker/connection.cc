#include "broker/connection.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/use_awaitable.hpp>

#include "broker/frame_reader.h"
#include "broker/handlers/handlers.h"
#include "broker/log.h"
#include "protocol/messages/api_keys.h"
#include "protocol/messages/request_header.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using asio::use_awaitable;

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

}  // namespace

asio::awaitable<void> serve_connection(Broker& broker, asio::ip::tcp::socket socket,
                                       std::shared_ptr<ConnectionRegistry::Connection> entry, ListenerRole role) {
  ConnectionRegistry::Connection& activity = *entry;
  activity.socket = &socket;  // the registry closes this one (the caller's was moved from)
  const std::string peer = peer_name(socket);
  const std::string client_host = "/" + peer_address(socket);  // Kafka's form: "/127.0.0.1"
  const int64_t max_request_bytes = broker.config.get_long("socket.request.max.bytes");
  socket.set_option(asio::ip::tcp::no_delay(true));
  socket.native_non_blocking(true);  // send_bytes / send_file_region wait for room themselves
  FrameReader input(max_request_bytes);
  protocol::Writer response;
  std::string small_response;  // send_response's scratch space, at most kCopyResponseBytes
  try {
    for (;;) {
      std::span<char> next_frame;
      FrameReader::Status status;
      while ((status = input.next(next_frame)) == FrameReader::Status::kNeedMore) {
        const std::span<char> room = input.space();
        input.produced(co_await socket.async_read_some(asio::buffer(room.data(), room.size()), use_awaitable));
        activity.touch();
      }
      if (status == FrameReader::Status::kBadSize) {
        SLUICE_LOG(kWarn, "closing " << peer << ": request size " << input.claimed_size() << " is outside 0.."
                                     << max_request_bytes << " (socket.request.max.bytes)");
        co_return;
      }
      char* const frame_data = next_frame.data();
      const std::string_view frame(frame_data, next_frame.size());
      // Whatever happens below, this request's bytes are done with by the next turn.
      struct ConsumeOnExit {
        FrameReader& input;
        ~ConsumeOnExit() { input.consume(); }
      } consume_on_exit{input};
      // From here until its response is sent the connection is not idle,
      // however long the request waits (a fetch long poll, a rebalance).
      struct InHandling {
        ConnectionRegistry::Connection& activity;
        explicit InHandling(ConnectionRegistry::Connection& a) : activity(a) { ++activity.requests_in_handling; }
        ~InHandling() {
          --activity.requests_in_handling;
          activity.touch();
        }
      } in_handling{activity};

      protocol::Reader reader(frame);
      const int16_t api_key = reader.read_int16();  // DecodeError on short frames closes below
      const int16_t api_version = reader.read_int16();
      const int32_t correlation_id = reader.read_int32();

      response.clear();
      const size_t size_at = response.reserve_int32();
      response.write_int32(correlation_id);

      const ApiHandler* handler = find_api_handler(role, api_key);
      if (!handler || !api_enabled(broker, api_key)) {
        SLUICE_LOG(kWarn, "closing " << peer << ": unknown API key " << api_key);
        co_return;
      }
      bool version_ok = api_version >= handler->min_version && api_version <= handler->max_version;
      if (!version_ok && api_key == kApiVersionsKey) {
        // KIP-511: parse nothing more and answer in v0 so the client can retry.
        write_api_versions_fallback(response);
      } else if (!version_ok) {
        SLUICE_LOG(kWarn, "closing " << peer << ": unsupported version " << api_version << " of API " << api_key);
        co_return;
      } else {
        protocol::RequestHeader header;
        reader = protocol::Reader(frame);
        header.decode(reader, protocol::request_header_version(api_key, api_version));
        if (protocol::response_header_version(api_key, api_version) >= 1) response.write_uvarint(0);  // no tags

        std::string_view body = std::string_view(frame).substr(reader.position());
        RequestContext ctx{broker,       api_key, api_version, correlation_id, std::move(header.client_id),
                           client_host,  body,    frame_data + reader.position(), response};
        ctx.listener = role;
        co_await handler->handle(ctx);
        if (ctx.close_connection) {
          SLUICE_LOG(kWarn, "closing " << peer << " after a failed request of API " << api_key);
          co_return;
        }
        if (!ctx.send_response) continue;
      }
      response.patch_int32(size_at, static_cast<int32_t>(response.size() - 4));
      co_await send_response(socket, response, small_response);
      response.clear();  // also lets go of the files spliced in
      if (response.buffer().capacity() > kRetainedBufferBytes) std::string().swap(response.buffer());
    }
  } catch (const protocol::DecodeError& e) {
    SLUICE_LOG(kWarn, "closing " << peer << ": malformed request: " << e.what());
  } catch (const boost::system::system_error& e) {
    // The peer went away (or we are shutting down): nothing to answer.
  } catch (const std::exception& e) {
    SLUICE_LOG(kError, "closing " << peer << ": " << e.what());
  }
}

}  // namespace sluice::broker
