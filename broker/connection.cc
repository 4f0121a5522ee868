#include "broker/connection.h"

#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "broker/handlers/handlers.h"
#include "broker/log.h"
#include "protocol/messages/api_keys.h"
#include "protocol/messages/request_header.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using asio::use_awaitable;

constexpr int16_t kApiVersionsKey = 18;
// Frames up to this size are allocated at once; larger ones grow as their
// bytes arrive, so a peer that only claims a huge size costs nothing.
constexpr size_t kEagerFrameBytes = 1 << 20;
// Buffers grown past this for one large request or response are released
// afterwards, so idle connections stay small.
constexpr size_t kRetainedBufferBytes = 1 << 20;

int32_t load_be32(const char* p) {
  return static_cast<int32_t>((uint32_t(uint8_t(p[0])) << 24) | (uint32_t(uint8_t(p[1])) << 16) |
                              (uint32_t(uint8_t(p[2])) << 8) | uint32_t(uint8_t(p[3])));
}

asio::awaitable<bool> read_frame(asio::ip::tcp::socket& socket, size_t size, std::string& frame) {
  frame.clear();
  while (frame.size() < size) {
    size_t old = frame.size();
    size_t step = size <= kEagerFrameBytes ? size : std::min(size - old, std::max(old, kEagerFrameBytes));
    frame.resize(old + step);
    co_await asio::async_read(socket, asio::buffer(frame.data() + old, step), use_awaitable);
  }
  co_return true;
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

asio::awaitable<void> serve_connection(Broker& broker, asio::ip::tcp::socket socket) {
  const std::string peer = peer_name(socket);
  const std::string client_host = "/" + peer_address(socket);  // Kafka's form: "/127.0.0.1"
  const int64_t max_request_bytes = broker.config.get_long("socket.request.max.bytes");
  socket.set_option(asio::ip::tcp::no_delay(true));
  std::string frame;
  protocol::Writer response;
  try {
    for (;;) {
      if (frame.capacity() > kRetainedBufferBytes) std::string().swap(frame);
      char size_bytes[4];
      co_await asio::async_read(socket, asio::buffer(size_bytes), use_awaitable);
      const int32_t size = load_be32(size_bytes);
      if (size < 0 || size > max_request_bytes) {
        SLUICE_LOG(kWarn, "closing " << peer << ": request size " << size << " is outside 0.."
                                     << max_request_bytes << " (socket.request.max.bytes)");
        co_return;
      }
      co_await read_frame(socket, static_cast<size_t>(size), frame);

      protocol::Reader reader(frame);
      const int16_t api_key = reader.read_int16();  // DecodeError on short frames closes below
      const int16_t api_version = reader.read_int16();
      const int32_t correlation_id = reader.read_int32();

      response.buffer().clear();
      const size_t size_at = response.reserve_int32();
      response.write_int32(correlation_id);

      const ApiHandler* handler = find_api_handler(api_key);
      if (!handler) {
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
                           client_host,  body,    frame.data() + reader.position(), response};
        co_await handler->handle(ctx);
        if (ctx.close_connection) {
          SLUICE_LOG(kWarn, "closing " << peer << " after a failed request of API " << api_key);
          co_return;
        }
        if (!ctx.send_response) continue;
      }
      response.patch_int32(size_at, static_cast<int32_t>(response.size() - 4));
      co_await asio::async_write(socket, asio::buffer(response.buffer()), use_awaitable);
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
