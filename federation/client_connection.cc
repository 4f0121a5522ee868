#include "federation/client_connection.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "broker/async_event.h"
#include "broker/frame_reader.h"
#include "broker/log.h"
#include "federation/federation.h"
#include "federation/member_links.h"
#include "protocol/error_codes.h"
#include "protocol/messages/api_versions_response.h"
#include "protocol/messages/request_header.h"

namespace sluice::federation {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr int16_t kProduceKey = 0;
constexpr int16_t kApiVersionsKey = 18;
constexpr int64_t kMaxRequestBytes = 100 << 20;  // socket.request.max.bytes' default

std::string peer_name(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  return ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

// One request, from the moment it is read until its answer is written. Its
// events have one waiter at most: the connection's reader.
struct Unanswered {
  explicit Unanswered(const asio::any_io_executor& executor)
      : input_released(executor), finished(executor), written(executor) {}
  protocol::Writer response;
  size_t size_at = 0;  // where the answer's size goes
  bool send = true;    // false: Produce with acks=0
  bool close = false;  // the connection closes here instead of answering
  std::string close_reason;
  broker::AsyncEvent input_released;  // the handler no longer reads the request's bytes
  broker::AsyncEvent finished;        // the answer is complete
  broker::AsyncEvent written;         // the answer is out (or the connection closed)
};

// What the reader, the handlers still running and the answer writer share.
// Owned by all of them: a Produce's handler may outlive the reader (the
// client went away) and ends within its timeout.
struct Connection {
  Connection(tcp::socket s, const asio::any_io_executor& executor)
      : socket(std::move(s)), peer(peer_name(socket)), links(executor) {
    boost::system::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    client_host = ec ? std::string("?") : remote.address().to_string();
  }
  void close() {
    if (closed) return;
    closed = true;
    boost::system::error_code ignored;
    socket.close(ignored);
    for (auto& u : unanswered) u->written.set();  // nobody waits on a closed connection
  }

  tcp::socket socket;
  std::string peer;
  std::string client_host;
  MemberLinks links;  // this client's own connections to member brokers
  std::deque<std::shared_ptr<Unanswered>> unanswered;  // in request order
  bool writing = false;
  bool closed = false;
  std::vector<asio::const_buffer> pieces;  // an answer's gathered write, reused
};

// Writes every finished answer at the head of the queue, in order. One
// writer at a time: whoever finds the queue's head finished calls it, and a
// call while another is writing returns (that one goes on to the rest).
asio::awaitable<void> write_answers(std::shared_ptr<Connection> c) {
  if (c->writing) co_return;
  c->writing = true;
  try {
    while (!c->closed && !c->unanswered.empty() && c->unanswered.front()->finished.is_set()) {
      std::shared_ptr<Unanswered> head = c->unanswered.front();
      if (head->close) {
        SLUICE_LOG(kInfo, "closing " << c->peer << head->close_reason);
        c->close();
        break;
      }
      if (head->send) {
        protocol::Writer& response = head->response;
        response.patch_int32(head->size_at, static_cast<int32_t>(response.size() - head->size_at - 4));
        // Fetch records are the members' answers, sent from where they are (writev), not copied.
        c->pieces.clear();
        size_t position = 0;
        for (const auto& splice : response.splices()) {
          if (!splice.in_memory()) throw std::logic_error("the federation endpoint holds no log files to send");
          c->pieces.push_back(asio::buffer(response.buffer().data() + position, splice.at - position));
          c->pieces.push_back(asio::buffer(splice.memory));
          position = splice.at;
        }
        c->pieces.push_back(asio::buffer(response.buffer().data() + position, response.buffer().size() - position));
        co_await asio::async_write(c->socket, c->pieces, asio::use_awaitable);
      }
      c->unanswered.pop_front();
      head->written.set();
    }
  } catch (const boost::system::system_error&) {
    c->close();  // the client went away
  } catch (const std::exception& e) {
    SLUICE_LOG(kWarn, "closing " << c->peer << ": writing an answer failed: " << e.what());
    c->close();
  }
  c->writing = false;
}

asio::awaitable<void> run_handler(std::shared_ptr<Connection> c, std::shared_ptr<Unanswered> u,
                                  const FederationApi* api, std::unique_ptr<FederationRequest> request) {
  try {
    co_await api->handle(*request);
    u->send = request->send_response;
    if (request->close_connection) {
      u->close = true;
      u->close_reason = " after its request, as Kafka would";
    }
  } catch (const protocol::DecodeError& e) {
    u->close = true;
    u->close_reason = std::string(": malformed request: ") + e.what();
  } catch (const std::exception& e) {
    u->close = true;
    u->close_reason = std::string(": handling its request failed: ") + e.what();
  }
  u->input_released.set();
  u->finished.set();
  co_await write_answers(c);
}

// Waits until every request read so far has been answered.
asio::awaitable<void> wait_answered(const std::shared_ptr<Connection>& c) {
  while (!c->closed && !c->unanswered.empty()) {
    std::shared_ptr<Unanswered> last = c->unanswered.back();
    co_await last->written.wait_until(asio::steady_timer::time_point::max());
  }
}

}  // namespace

asio::awaitable<void> serve_client(Federation& federation, tcp::socket socket) {
  const auto executor = federation.executor();
  auto c = std::make_shared<Connection>(std::move(socket), executor);
  broker::FrameReader input(kMaxRequestBytes);
  // Whatever ends the reading (the client's close, a bad frame, a refused
  // request), the answers already owed are written first, as a broker's are.
  try {
    while (!c->closed) {
      std::span<char> frame;
      broker::FrameReader::Status status;
      while ((status = input.next(frame)) == broker::FrameReader::Status::kNeedMore) {
        auto room = input.space();
        input.produced(co_await c->socket.async_read_some(asio::buffer(room.data(), room.size()), asio::use_awaitable));
      }
      if (status == broker::FrameReader::Status::kBadSize) {
        SLUICE_LOG(kWarn, "closing " << c->peer << ": request size " << input.claimed_size() << " is out of bounds");
        break;
      }
      const std::string_view bytes(frame.data(), frame.size());
      protocol::Reader reader(bytes);
      const int16_t api_key = reader.read_int16();
      const int16_t api_version = reader.read_int16();
      const int32_t correlation_id = reader.read_int32();
      const auto& apis = federation_apis();
      auto api = std::find_if(apis.begin(), apis.end(), [&](const FederationApi& a) { return a.api_key == api_key; });
      const bool served = api != apis.end() && api_version >= api->min_version && api_version <= api->max_version;
      const bool overlaps = served && api_key == kProduceKey;
      if (overlaps) {
        while (!c->closed && c->unanswered.size() >= kMaxUnanswered) {
          std::shared_ptr<Unanswered> oldest = c->unanswered.front();
          co_await oldest->written.wait_until(asio::steady_timer::time_point::max());
        }
      } else {
        co_await wait_answered(c);  // as Kafka, a refusal below closes after what came before is answered
      }
      if (c->closed) break;
      if (api == apis.end()) {
        SLUICE_LOG(kWarn, "closing " << c->peer << ": API key " << api_key << " is not served by the federation");
        break;
      }
      auto u = std::make_shared<Unanswered>(executor);
      u->size_at = u->response.reserve_int32();
      u->response.write_int32(correlation_id);
      c->unanswered.push_back(u);
      if (!served) {
        if (api_key != kApiVersionsKey) {
          SLUICE_LOG(kWarn, "closing " << c->peer << ": unsupported version " << api_version << " of API " << api_key);
          break;
        }
        // KIP-511: answer in v0 with the versions of ApiVersions, so the client can retry.
        protocol::ApiVersionsResponse fallback;
        fallback.error_code = static_cast<int16_t>(protocol::ErrorCode::kUnsupportedVersion);
        fallback.api_keys.push_back({api->api_key, api->min_version, api->max_version});
        fallback.encode(u->response, 0);
        u->input_released.set();
        u->finished.set();
        co_await write_answers(c);
      } else {
        protocol::RequestHeader header;
        reader = protocol::Reader(bytes);
        header.decode(reader, protocol::request_header_version(api_key, api_version));
        if (protocol::response_header_version(api_key, api_version) >= 1) u->response.write_uvarint(0);  // no tags
        auto request = std::make_unique<FederationRequest>(FederationRequest{
            federation, api_key, api_version, bytes.substr(reader.position()), u->response,
            std::move(header.client_id), c->client_host, c->links});
        request->input_released = &u->input_released;
        asio::co_spawn(executor, run_handler(c, u, &*api, std::move(request)), asio::detached);
        // A Produce lets go of its bytes once they are on their way; anything else is answered first.
        if (overlaps)
          co_await u->input_released.wait_until(asio::steady_timer::time_point::max());
        else
          co_await u->finished.wait_until(asio::steady_timer::time_point::max());
        if (u->close) break;  // nothing after a request that closes the connection is read
      }
      input.consume();
    }
  } catch (const protocol::DecodeError& e) {
    SLUICE_LOG(kWarn, "closing " << c->peer << ": malformed request: " << e.what());
  } catch (const boost::system::system_error&) {
    // The client closed the connection (or its reading side).
  }
  co_await wait_answered(c);
  c->close();
}

}  // namespace sluice::federation
