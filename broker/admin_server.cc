#include "broker/admin_server.h"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "broker/log.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kMaxConnections = 16;
constexpr uint32_t kMaxHeaderBytes = 8 << 10;
constexpr std::chrono::seconds kRequestTimeout{10};

http::response<http::string_body> json(http::status status, const std::string& body) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = body + "\n";
  return res;
}

}  // namespace

struct AdminServer::Impl {
  Handlers handlers;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::atomic<size_t> connections{0};
  std::thread thread;

  http::response<http::string_body> answer(const http::request<http::string_body>& req) {
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (req.method() == http::verb::post && handlers.action)
      if (auto done = handlers.action(target)) return json(static_cast<http::status>(done->status), done->body);
    const bool is_view = handlers.is_view && handlers.is_view(path);
    const bool known = is_view || path == "/metrics" || path == "/v1/health/live" || path == "/v1/health/ready";
    if (!known) return json(http::status::not_found, R"({"error":"not found"})");
    if (req.method() != http::verb::get) {
      auto res = json(http::status::method_not_allowed, R"({"error":"method not allowed: use GET"})");
      res.set(http::field::allow, "GET");
      return res;
    }
    if (path == "/v1/health/live") return json(http::status::ok, R"({"status":"live"})");
    if (is_view) {
      std::optional<std::string> body = handlers.view(path);
      if (!body) return json(http::status::service_unavailable, R"({"error":"no status yet: starting"})");
      return json(http::status::ok, *body);
    }
    if (path == "/v1/health/ready") {
      const Readiness r = handlers.readiness();
      if (r.ready) return json(http::status::ok, R"({"status":"ready"})");
      // The reasons are the broker's own fixed strings: no escaping needed beyond quotes.
      std::string reason;
      for (char c : r.reason) reason += (c == '"' || c == '\\') ? ' ' : c;
      return json(http::status::service_unavailable, R"({"status":"not ready","reason":")" + reason + R"("})");
    }
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = handlers.metrics();
    return res;
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    try {
      co_await exchange(std::move(socket));
    } catch (const std::exception& e) {  // bad_alloc, say: this connection goes, the server stays
      SLUICE_LOG(kWarn, "admin HTTP connection failed: " << e.what());
    }
    --connections;
  }

  // Requests and answers on one connection until it closes, times out or errs.
  asio::awaitable<void> exchange(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(kMaxHeaderBytes);
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(kMaxHeaderBytes);
      parser.body_limit(0);  // no API here takes a body
      stream.expires_after(kRequestTimeout);
      boost::system::error_code ec;
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        auto res = json(http::status::payload_too_large, R"({"error":"request too large"})");
        res.keep_alive(false);
        res.prepare_payload();
        co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        break;
      }
      if (ec) break;  // closed, timed out or not HTTP
      const auto& req = parser.get();
      auto res = answer(req);
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  asio::awaitable<void> accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {  // out of descriptors, say: try again shortly
        asio::steady_timer pause(io, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      if (connections >= kMaxConnections) continue;  // closed at once (the socket goes out of scope)
      ++connections;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }
};

AdminServer::AdminServer(const std::string& host, uint16_t port, Handlers handlers) : impl_(std::make_unique<Impl>()) {
  impl_->handlers = std::move(handlers);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  tcp::endpoint endpoint;
  if (!ec) {
    endpoint = tcp::endpoint(address, port);
  } else {
    tcp::resolver resolver(impl_->io);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) throw std::runtime_error("admin.listeners: cannot resolve " + host);
    endpoint = *results.begin();
  }
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("admin.listeners: cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             ec.message());
  asio::co_spawn(impl_->io, impl_->accept(), asio::detached);
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

AdminServer::~AdminServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t AdminServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace sluice::broker
