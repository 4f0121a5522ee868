// OutboundConnection against a small Kafka server inside the test (the
// broker's own would need a whole Broker): it decodes request headers and
// answers ApiVersions and Metadata, or misbehaves as a test asks.
#include "broker/outbound_connection.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <list>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "protocol/messages/api_versions_request.h"
#include "protocol/messages/api_versions_response.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/metadata_response.h"
#include "protocol/messages/request_header.h"

extern std::atomic<size_t> g_max_alloc;  // protocol/alloc_tracker.cc

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::use_awaitable;
using boost::system::error_code;
using namespace std::chrono_literals;
using protocol::ApiVersionsRequest;
using protocol::ApiVersionsResponse;
using protocol::MetadataRequest;
using protocol::MetadataResponse;

// ASSERT_* returns, which a coroutine cannot.
#define CO_ASSERT(condition)                        \
  do {                                              \
    if (!(condition)) {                             \
      ADD_FAILURE() << "failed: " #condition;       \
      co_return;                                    \
    }                                               \
  } while (0)

// A request as the server read it.
struct Received {
  protocol::RequestHeader header;
  std::string body;
};

asio::awaitable<Received> read_request(tcp::socket& socket) {
  unsigned char size_bytes[4];
  co_await asio::async_read(socket, asio::buffer(size_bytes), use_awaitable);
  const size_t size = (size_t{size_bytes[0]} << 24) | (size_t{size_bytes[1]} << 16) | (size_t{size_bytes[2]} << 8) |
                      size_t{size_bytes[3]};
  std::string frame(size, '\0');
  co_await asio::async_read(socket, asio::buffer(frame), use_awaitable);
  protocol::Reader peek(frame);
  const int16_t api_key = peek.read_int16();
  const int16_t version = peek.read_int16();
  protocol::Reader reader(frame);
  Received request;
  request.header.decode(reader, protocol::request_header_version(api_key, version));
  request.body = frame.substr(reader.position());
  co_return request;
}

// A response frame, size prefix included.
template <typename Response>
std::string response_frame(const Received& request, const Response& body, int32_t correlation_id) {
  const int16_t key = request.header.request_api_key;
  const int16_t version = request.header.request_api_version;
  protocol::Writer writer;
  writer.reserve_int32();
  protocol::ResponseHeader header;
  header.correlation_id = correlation_id;
  header.encode(writer, protocol::response_header_version(key, version));
  body.encode(writer, version);
  writer.patch_int32(0, static_cast<int32_t>(writer.size() - 4));
  return std::move(writer.buffer());
}

// The answer a good server gives: its APIs, or the topics asked for (named in
// the response, so each caller can tell its own answer).
std::string normal_answer(const Received& request, std::optional<int32_t> correlation_id = std::nullopt) {
  const int32_t id = correlation_id.value_or(request.header.correlation_id);
  const int16_t version = request.header.request_api_version;
  protocol::Reader body(request.body);
  if (request.header.request_api_key == ApiVersionsRequest::kApiKey) {
    ApiVersionsResponse response;
    response.api_keys = {{ApiVersionsRequest::kApiKey, 0, 4}, {MetadataRequest::kApiKey, 0, 12}};
    return response_frame(request, response, id);
  }
  EXPECT_EQ(request.header.request_api_key, MetadataRequest::kApiKey);
  MetadataRequest asked;
  asked.decode(body, version);
  MetadataResponse response;
  response.brokers = {{1, "localhost", 9092, std::nullopt}};
  response.cluster_id = "test-cluster";
  response.controller_id = 1;
  for (const auto& topic : asked.topics.value_or(std::vector<MetadataRequest::MetadataRequestTopic>{})) {
    MetadataResponse::MetadataResponseTopic answer;
    answer.name = topic.name;
    response.topics.push_back(answer);
  }
  return response_frame(request, response, id);
}

asio::awaitable<void> send(tcp::socket& socket, const std::string& bytes) {
  co_await asio::async_write(socket, asio::buffer(bytes), use_awaitable);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  co_await timer.async_wait(use_awaitable);
}

// Serves every connection with `session` (given the socket and the
// connection's number, from 1), on 127.0.0.1 at a free port.
class TestServer {
 public:
  using Session = std::function<asio::awaitable<void>(tcp::socket&, int connection)>;

  static asio::awaitable<void> answer_normally(tcp::socket& socket, int) {
    for (;;) co_await send(socket, normal_answer(co_await read_request(socket)));
  }

  TestServer(asio::io_context& io, Session session = answer_normally)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), session_(std::move(session)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  ~TestServer() { stop(); }

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  std::vector<Received> seen;  // every request read through `record`

  void stop() {
    error_code ignored;
    acceptor_.close(ignored);
    for (auto& socket : sockets_) socket.close(ignored);
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      sockets_.push_back(std::move(socket));
      asio::co_spawn(acceptor_.get_executor(), run_session(sockets_.back(), ++accepted_), asio::detached);
    }
  }
  asio::awaitable<void> run_session(tcp::socket& socket, int connection) {
    try {
      co_await session_(socket, connection);
    } catch (const boost::system::system_error&) {
      // the client went away
    }
  }

  tcp::acceptor acceptor_;
  const uint16_t port_ = acceptor_.local_endpoint().port();
  Session session_;
  std::list<tcp::socket> sockets_;  // stable addresses for the sessions
  int accepted_ = 0;
};

// Runs `test` on `io` until it finishes, then stops whatever else runs.
void run(asio::io_context& io, std::function<asio::awaitable<void>()> test) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, test(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
    io.stop();
  });
  io.run_for(20s);
  ASSERT_TRUE(done) << "the test did not finish";
  if (failure) std::rethrow_exception(failure);
}

// The error a call ends with (none when it succeeds), and its message in `what`.
template <typename Response>
asio::awaitable<error_code> error_of(asio::awaitable<Reply<Response>> call, std::string* what = nullptr) {
  try {
    co_await std::move(call);
  } catch (const boost::system::system_error& e) {
    if (what) *what = e.what();
    co_return e.code();
  }
  co_return error_code{};
}

MetadataRequest metadata_for(const std::string& topic) {
  MetadataRequest request;
  request.topics = std::vector<MetadataRequest::MetadataRequestTopic>{{{}, topic}};
  return request;
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

class OutboundConnectionTest : public ::testing::Test {
 protected:
  asio::io_context io;
};

TEST_F(OutboundConnectionTest, ApiVersionsRoundTripsFlexibleAndNot) {
  TestServer server(io);
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    EXPECT_FALSE(connection.connected());
    for (int16_t version : {3, 0}) {
      ApiVersionsRequest request;
      request.client_software_name = "sluice";
      request.client_software_version = "1";
      Reply<ApiVersionsResponse> reply = co_await connection.call<ApiVersionsResponse>(request, version, 2s);
      EXPECT_EQ(reply.body.error_code, 0);
      CO_ASSERT(reply.body.api_keys.size() == 2);
      EXPECT_EQ(reply.body.api_keys[1].api_key, MetadataRequest::kApiKey);
      EXPECT_EQ(reply.body.api_keys[1].max_version, 12);
      EXPECT_TRUE(connection.connected());
    }
  });
  EXPECT_EQ(server.accepted(), 1);
}

TEST_F(OutboundConnectionTest, MetadataRoundTripsFlexibleAndNot) {
  std::vector<protocol::RequestHeader> headers;
  TestServer server(io, [&](tcp::socket& socket, int) -> asio::awaitable<void> {
    for (;;) {
      Received request = co_await read_request(socket);
      headers.push_back(request.header);
      co_await send(socket, normal_answer(request));
    }
  });
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    // v12: request header v2, response header v1 (tagged fields); v1: headers v1 and v0.
    for (int16_t version : {12, 9, 1}) {
      Reply<MetadataResponse> reply = co_await connection.call<MetadataResponse>(metadata_for("orders"), version, 2s);
      CO_ASSERT(reply.body.topics.size() == 1);
      EXPECT_EQ(reply.body.topics[0].name, "orders");
      CO_ASSERT(reply.body.brokers.size() == 1);
      EXPECT_EQ(reply.body.brokers[0].host, "localhost");
      EXPECT_EQ(reply.body.controller_id, 1);
      if (version >= 2) {
        EXPECT_EQ(reply.body.cluster_id, "test-cluster");
      }
    }
  });
  ASSERT_EQ(headers.size(), 3u);
  for (size_t i = 0; i < headers.size(); ++i) {
    EXPECT_EQ(headers[i].request_api_key, MetadataRequest::kApiKey);
    EXPECT_EQ(headers[i].correlation_id, static_cast<int32_t>(i));
    EXPECT_EQ(headers[i].client_id, "test-client");
  }
  EXPECT_EQ(headers[2].request_api_version, 1);
}

TEST_F(OutboundConnectionTest, ConcurrentCallsArePipelinedAndEachGetsItsOwnAnswer) {
  constexpr size_t kInFlight = 3;
  constexpr int kCallers = 9;
  size_t most_outstanding = 0;
  // Answers only when kInFlight requests are outstanding (a client that did
  // not pipeline would wait forever), after checking no more were sent.
  TestServer server(io, [&](tcp::socket& socket, int) -> asio::awaitable<void> {
    for (;;) {
      std::vector<Received> batch;
      while (batch.size() < kInFlight) batch.push_back(co_await read_request(socket));
      co_await sleep_for(30ms);
      most_outstanding = std::max(most_outstanding, batch.size() + (socket.available() > 0 ? 1 : 0));
      for (const Received& request : batch) co_await send(socket, normal_answer(request));
    }
  });
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client",
                                OutboundLimits{.max_in_flight = kInFlight});
  run(io, [&]() -> asio::awaitable<void> {
    int finished = 0;
    asio::steady_timer all_done(io, std::chrono::steady_clock::time_point::max());
    for (int i = 0; i < kCallers; ++i) {
      asio::co_spawn(
          io,
          [&, i]() -> asio::awaitable<void> {
            const std::string topic = "topic-" + std::to_string(i);
            Reply<MetadataResponse> reply = co_await connection.call<MetadataResponse>(metadata_for(topic), 12, 5s);
            EXPECT_EQ(reply.body.topics.size(), 1u);
            if (!reply.body.topics.empty()) {
              EXPECT_EQ(reply.body.topics[0].name, topic);
            }
          },
          [&](std::exception_ptr e) {
            EXPECT_FALSE(e) << "a call failed";
            if (++finished == kCallers) all_done.cancel();
          });
    }
    error_code ignored;
    co_await all_done.async_wait(asio::redirect_error(use_awaitable, ignored));
    EXPECT_EQ(finished, kCallers);
  });
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(most_outstanding, kInFlight);
}

TEST_F(OutboundConnectionTest, PeerClosingMidResponseFailsTheCallAndTheNextReconnects) {
  TestServer server(io, [](tcp::socket& socket, int connection) -> asio::awaitable<void> {
    if (connection > 1) {
      co_await TestServer::answer_normally(socket, connection);
      co_return;
    }
    const std::string answer = normal_answer(co_await read_request(socket));
    co_await send(socket, answer.substr(0, answer.size() / 2));
    socket.close();
  });
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 2s));
    EXPECT_EQ(error, asio::error::eof) << error.message();
    EXPECT_FALSE(connection.connected());
    Reply<MetadataResponse> reply = co_await connection.call<MetadataResponse>(metadata_for("b"), 12, 2s);
    CO_ASSERT(reply.body.topics.size() == 1);
    EXPECT_EQ(reply.body.topics[0].name, "b");
    EXPECT_TRUE(connection.connected());
  });
  EXPECT_EQ(server.accepted(), 2);
}

TEST_F(OutboundConnectionTest, PeerClosingAnIdleConnectionIsNoticedAndTheNextCallReconnects) {
  TestServer server(io, [](tcp::socket& socket, int connection) -> asio::awaitable<void> {
    if (connection > 1) {
      co_await TestServer::answer_normally(socket, connection);
      co_return;
    }
    co_await send(socket, normal_answer(co_await read_request(socket)));
    socket.close();
  });
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    co_await connection.call<MetadataResponse>(metadata_for("a"), 12, 2s);
    co_await sleep_for(100ms);
    EXPECT_FALSE(connection.connected());
    Reply<MetadataResponse> reply = co_await connection.call<MetadataResponse>(metadata_for("b"), 12, 2s);
    CO_ASSERT(reply.body.topics.size() == 1);
    EXPECT_EQ(reply.body.topics[0].name, "b");
  });
  EXPECT_EQ(server.accepted(), 2);
}

// Reads requests and never answers.
asio::awaitable<void> never_answer(tcp::socket& socket, int) {
  for (;;) co_await read_request(socket);
}

TEST_F(OutboundConnectionTest, UnansweredCallTimesOutAndClosesTheConnection) {
  TestServer server(io, never_answer);
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    std::string what;
    const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 200ms), &what);
    const auto took = since(start);
    EXPECT_EQ(error, asio::error::timed_out) << error.message();
    EXPECT_EQ(what, "127.0.0.1:" + std::to_string(server.port()) +
                        ": Metadata v12 (correlation id 0): no response within 200 ms: Connection timed out");
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 1s);
    EXPECT_FALSE(connection.connected());
  });
}

TEST_F(OutboundConnectionTest, CallWaitingForItsTurnTimesOutAloneAndCloseFailsTheOneInFlight) {
  TestServer server(io, never_answer);
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client",
                                OutboundLimits{.max_in_flight = 1});
  run(io, [&]() -> asio::awaitable<void> {
    std::optional<error_code> first_error;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          first_error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 5s));
        },
        asio::detached);
    co_await sleep_for(50ms);
    const auto start = std::chrono::steady_clock::now();
    const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("b"), 12, 100ms));
    EXPECT_EQ(error, asio::error::timed_out) << error.message();
    EXPECT_LT(since(start), 1s);
    EXPECT_TRUE(connection.connected());  // the request in flight is not given up for it
    EXPECT_FALSE(first_error.has_value());

    connection.close();
    co_await sleep_for(20ms);
    CO_ASSERT(first_error.has_value());
    EXPECT_EQ(*first_error, asio::error::operation_aborted) << first_error->message();
    EXPECT_FALSE(connection.connected());
  });
  EXPECT_EQ(server.accepted(), 1);
}

TEST_F(OutboundConnectionTest, DestroyingTheConnectionFailsItsCalls) {
  TestServer server(io, never_answer);
  auto connection = std::make_unique<OutboundConnection>(io.get_executor(), "127.0.0.1", server.port(), "c");
  run(io, [&]() -> asio::awaitable<void> {
    std::optional<error_code> error;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          error = co_await error_of(connection->call<MetadataResponse>(metadata_for("a"), 12, 5s));
        },
        asio::detached);
    co_await sleep_for(50ms);
    connection.reset();
    co_await sleep_for(20ms);
    CO_ASSERT(error.has_value());
    EXPECT_EQ(*error, asio::error::operation_aborted) << error->message();
  });
}

TEST_F(OutboundConnectionTest, OversizedResponseClaimsFailWithoutAllocation) {
  // The first connections claim 2 GiB (negative as an int32) and 2 GiB - 1;
  // the third claims 50 MiB, within the limit, and sends 10 bytes of it.
  TestServer server(io, [](tcp::socket& socket, int connection) -> asio::awaitable<void> {
    const Received request = co_await read_request(socket);
    if (connection == 1) co_await send(socket, std::string("\x80\x00\x00\x00", 4));
    if (connection == 2) co_await send(socket, std::string("\x7f\xff\xff\xff", 4));
    if (connection == 3) co_await send(socket, std::string("\x03\x20\x00\x00", 4) + std::string(10, 'x'));
    co_await read_request(socket);  // hold the connection open
    (void)request;
  });
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    g_max_alloc = 0;
    for (int i = 0; i < 2; ++i) {
      const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 2s));
      EXPECT_EQ(error, asio::error::message_size) << error.message();
      EXPECT_FALSE(connection.connected());
    }
    const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 300ms));
    EXPECT_EQ(error, asio::error::timed_out) << error.message();
    // The buffer for a frame starts at (at most) 1 MiB and grows only as bytes arrive.
    EXPECT_LT(g_max_alloc.load(), size_t{2} << 20);
  });
  EXPECT_EQ(server.accepted(), 3);
}

TEST_F(OutboundConnectionTest, SmallerLimitRefusesLargerFrames) {
  TestServer server(io);
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client",
                                OutboundLimits{.max_response_bytes = 64});
  run(io, [&]() -> asio::awaitable<void> {
    // An answer naming a 100-byte topic is over 64 bytes.
    const error_code error =
        co_await error_of(connection.call<MetadataResponse>(metadata_for(std::string(100, 't')), 12, 2s));
    EXPECT_EQ(error, asio::error::message_size) << error.message();
    const MetadataRequest no_topics;  // named: GCC 12 destroys braced temporaries in co_await expressions twice
    Reply<MetadataResponse> reply = co_await connection.call<MetadataResponse>(no_topics, 12, 2s);
    EXPECT_TRUE(reply.body.topics.empty());
  });
}

TEST_F(OutboundConnectionTest, WrongCorrelationIdFailsAndTheNextCallReconnects) {
  TestServer server(io, [](tcp::socket& socket, int connection) -> asio::awaitable<void> {
    if (connection > 1) {
      co_await TestServer::answer_normally(socket, connection);
      co_return;
    }
    const Received request = co_await read_request(socket);
    co_await send(socket, normal_answer(request, request.header.correlation_id + 1));
    co_await read_request(socket);
  });
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 2s));
    EXPECT_EQ(error, boost::system::errc::bad_message) << error.message();
    EXPECT_FALSE(connection.connected());
    Reply<MetadataResponse> reply = co_await connection.call<MetadataResponse>(metadata_for("b"), 12, 2s);
    EXPECT_EQ(reply.body.topics.size(), 1u);
  });
  EXPECT_EQ(server.accepted(), 2);
}

TEST_F(OutboundConnectionTest, UndecodableResponseFailsAndClosesTheConnection) {
  TestServer server(io, [](tcp::socket& socket, int) -> asio::awaitable<void> {
    const Received request = co_await read_request(socket);
    // A v12 header (correlation id, no tags) and half a body.
    std::string answer = normal_answer(request);
    answer.resize(answer.size() - 10);
    protocol::Writer size;
    size.write_int32(static_cast<int32_t>(answer.size() - 4));
    answer.replace(0, 4, size.buffer());
    co_await send(socket, answer);
    co_await read_request(socket);
  });
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 2s));
    EXPECT_EQ(error, boost::system::errc::bad_message) << error.message();
    EXPECT_FALSE(connection.connected());
  });
}

TEST_F(OutboundConnectionTest, ResponseWithNoRequestOutstandingFails) {
  TestServer server(io, [](tcp::socket& socket, int) -> asio::awaitable<void> {
    const Received request = co_await read_request(socket);
    co_await send(socket, normal_answer(request) + normal_answer(request));
    co_await read_request(socket);
  });
  OutboundConnection connection(io.get_executor(), "127.0.0.1", server.port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    co_await connection.call<MetadataResponse>(metadata_for("a"), 12, 2s);
    co_await sleep_for(50ms);
    EXPECT_FALSE(connection.connected());
  });
}

TEST_F(OutboundConnectionTest, ConnectingToAClosedPortFails) {
  uint16_t port;
  {
    tcp::acceptor taken(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = taken.local_endpoint().port();
  }  // closed again: nothing listens there
  OutboundConnection connection(io.get_executor(), "127.0.0.1", port, "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    std::string what;
    const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 2s), &what);
    EXPECT_EQ(error, asio::error::connection_refused) << error.message();
    EXPECT_EQ(what, "127.0.0.1:" + std::to_string(port) + ": connecting: Connection refused");
    EXPECT_LT(since(start), 1s);
    EXPECT_FALSE(connection.connected());
  });
}

TEST_F(OutboundConnectionTest, ConnectTimesOut) {
  // A listener that never accepts, with a backlog of 0: once one connection
  // waits in its queue, Linux drops further SYNs and connecting hangs.
  tcp::acceptor listener(io);
  listener.open(tcp::v4());
  listener.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  listener.listen(0);
  tcp::socket queued(io);
  queued.connect(listener.local_endpoint());
  OutboundConnection connection(io.get_executor(), "127.0.0.1", listener.local_endpoint().port(), "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    const error_code error = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 300ms));
    const auto took = since(start);
    EXPECT_EQ(error, asio::error::timed_out) << error.message();
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 1300ms);
    EXPECT_FALSE(connection.connected());
  });
}

TEST_F(OutboundConnectionTest, CallsWaitingForTheConnectShareItsFailure) {
  uint16_t port;
  {
    tcp::acceptor taken(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = taken.local_endpoint().port();
  }
  OutboundConnection connection(io.get_executor(), "127.0.0.1", port, "test-client");
  run(io, [&]() -> asio::awaitable<void> {
    std::optional<error_code> second;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const ApiVersionsRequest request;  // named: see SmallerLimitRefusesLargerFrames
          second = co_await error_of(connection.call<ApiVersionsResponse>(request, 3, 2s));
        },
        asio::detached);
    const error_code first = co_await error_of(connection.call<MetadataResponse>(metadata_for("a"), 12, 2s));
    EXPECT_EQ(first, asio::error::connection_refused) << first.message();
    co_await sleep_for(10ms);
    CO_ASSERT(second.has_value());
    EXPECT_EQ(*second, asio::error::connection_refused) << second->message();
  });
}

TEST_F(OutboundConnectionTest, VersionOutOfRangeIsRefusedBeforeAnythingIsSent) {
  OutboundConnection connection(io.get_executor(), "127.0.0.1", 9, "test-client");
  EXPECT_THROW((void)connection.call<MetadataResponse>(MetadataRequest{}, 13, 1s), std::invalid_argument);
  EXPECT_FALSE(connection.connected());
}

}  // namespace
}  // namespace sluice::broker
