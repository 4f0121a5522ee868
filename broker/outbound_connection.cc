#include "broker/outbound_connection.h"

#include <algorithm>
#include <deque>
#include <functional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "protocol/messages/request_header.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;


// Calls `on_expiry` if `deadline` passes while the watchdog lives (Boost 1.74
// has no awaitable operators to race a timer against an operation).
class Watchdog {
 public:
  Watchdog(const asio::any_io_executor& executor, Clock::time_point deadline, std::function<void()> on_expiry)
      : timer_(executor, deadline), flags_(std::make_shared<Flags>()) {
    flags_->on_expiry = std::move(on_expiry);
    timer_.async_wait([flags = flags_](const error_code&) {
      if (!flags->armed) return;  // a completion queued before disarming
      flags->expired = true;
      flags->on_expiry();
    });
  }
  ~Watchdog() {
    flags_->armed = false;
    flags_->on_expiry = nullptr;  // it may refer to the caller's locals
  }
  bool expired() const { return flags_->expired; }

 private:
  struct Flags {
    bool armed = true;
    bool expired = false;
    std::function<void()> on_expiry;
  };
  asio::steady_timer timer_;  // destroying it cancels the wait
  std::shared_ptr<Flags> flags_;
};

// now + timeout, without overflowing for "forever" (milliseconds::max()).
Clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  const Clock::time_point now = Clock::now();
  if (timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now))
    return Clock::time_point::max();
  return now + timeout;
}

error_code bad_message() { return make_error_code(boost::system::errc::bad_message); }

std::string api_name(int16_t api_key) {
  const protocol::ApiInfo* api = protocol::find_api(api_key);
  return api ? api->name : "API " + std::to_string(api_key);
}

// One request's way through a link.
struct PendingCall {
  PendingCall(const asio::any_io_executor& executor, int32_t correlation_id, std::string request,
              Clock::time_point deadline)
      : correlation_id(correlation_id), request(std::move(request)), wake(executor, deadline) {}

  int32_t correlation_id;
  std::string request;  // the frame, size prefix included; released once written
  bool finished = false;
  std::unique_ptr<std::string> reply;  // when finished without error
  error_code error;
  std::string error_what;
  asio::steady_timer wake;  // the caller waits on it: expires at its deadline, cancelled when finished
};

}  // namespace

namespace detail {

struct OutboundLink {
  OutboundLink(const asio::any_io_executor& executor, std::string host, uint16_t port, OutboundLimits limits)
      : socket(executor), host(std::move(host)), port(port), peer(this->host + ":" + std::to_string(port)),
        limits(limits) {}

  tcp::socket socket;
  std::string host;
  uint16_t port;
  std::string peer;  // "host:port", for error messages
  OutboundLimits limits;
  bool open = false;    // connected and not failed
  bool failed = false;  // for good: a later call opens a new link
  bool writing = false;
  // Calls in request order. The first `written` have gone (or are going) out
  // and wait for their responses; the rest wait for their turn.
  std::deque<std::shared_ptr<PendingCall>> calls;
  size_t written = 0;
};

}  // namespace detail

namespace {

using Link = detail::OutboundLink;

void finish(PendingCall& call, error_code error, std::string what) {
  call.finished = true;
  call.error = error;
  call.error_what = std::move(what);
  call.wake.cancel();
}

// Closes the link and fails every call on it. Idempotent: the first failure is
// the one callers see.
void fail_link(Link& link, error_code error, const std::string& what) {
  if (link.failed) return;
  link.failed = true;
  link.open = false;
  error_code ignored;
  link.socket.close(ignored);  // completes the reader's and writer's operations
  for (auto& call : link.calls) finish(*call, error, link.peer + ": " + what);
  link.calls.clear();
  link.written = 0;
}

// Writes waiting requests in order while fewer than max_in_flight are unanswered.
asio::awaitable<void> write_loop(std::shared_ptr<Link> link) {
  while (link->open && link->written < std::min(link->calls.size(), link->limits.max_in_flight)) {
    std::shared_ptr<PendingCall> call = link->calls[link->written++];
    error_code ec;
    co_await asio::async_write(link->socket, asio::buffer(call->request),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (link->failed) break;
    if (ec) {
      fail_link(*link, ec, "sending " + std::to_string(call->request.size()) + " bytes");
      break;
    }
    std::string().swap(call->request);
  }
  link->writing = false;
}

void start_writing(const std::shared_ptr<Link>& link) {
  if (link->writing || !link->open) return;
  link->writing = true;
  asio::co_spawn(link->socket.get_executor(), write_loop(link), asio::detached);
}

// Reads response frames and hands each to the oldest request written, until
// the link fails. A response with nothing outstanding is a protocol error.
asio::awaitable<void> read_loop(std::shared_ptr<Link> link) {
  try {
    for (;;) {
      error_code ec;
      unsigned char size_bytes[4];
      co_await asio::async_read(link->socket, asio::buffer(size_bytes),
                                asio::redirect_error(asio::use_awaitable, ec));
      if (link->failed) co_return;
      if (ec) {
        fail_link(*link, ec, "reading a response");  // also the peer closing an idle connection
        co_return;
      }
      const int32_t size = protocol::Reader(std::string_view(reinterpret_cast<char*>(size_bytes), 4)).read_int32();
      // Negative sizes are claims of 2 GiB and more; 0..3 cannot hold a correlation id.
      if (size < 0 || size > link->limits.max_response_bytes) {
        fail_link(*link, asio::error::message_size,
                  "response size " + std::to_string(static_cast<uint32_t>(size)) + " is over the limit of " +
                      std::to_string(link->limits.max_response_bytes));
        co_return;
      }
      if (size < 4) {
        fail_link(*link, bad_message(), "response size " + std::to_string(size) + " is too small");
        co_return;
      }
      if (link->written == 0) {
        fail_link(*link, bad_message(), "a response to no request");
        co_return;
      }
      auto frame = std::make_unique<std::string>();
      const size_t frame_size = static_cast<size_t>(size);
      for (size_t have = 0; have < frame_size;) {
        const size_t want = std::min(frame_size, std::max(link->limits.frame_bytes_at_once, have * 2));
        frame->resize(want);
        co_await asio::async_read(link->socket, asio::buffer(frame->data() + have, want - have),
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (link->failed) co_return;
        if (ec) {
          fail_link(*link, ec, "reading a response (" + std::to_string(have) + " of " + std::to_string(frame_size) +
                                   " bytes)");
          co_return;
        }
        have = want;
      }
      protocol::Reader header(*frame);
      const int32_t correlation_id = header.read_int32();
      std::shared_ptr<PendingCall> call = link->calls.front();
      if (correlation_id != call->correlation_id) {
        fail_link(*link, bad_message(),
                  "response with correlation id " + std::to_string(correlation_id) + " where " +
                      std::to_string(call->correlation_id) + " was expected");
        co_return;
      }
      link->calls.pop_front();
      --link->written;
      call->reply = std::move(frame);
      finish(*call, {}, {});
      start_writing(link);  // a turn to send is free
    }
  } catch (const std::exception& e) {
    // Nothing above should throw (bad_alloc aside); never leave callers hanging.
    fail_link(*link, make_error_code(boost::system::errc::io_error), e.what());
  }
}

// Opens the link's socket. On failure the link fails, and its calls with it.
asio::awaitable<void> connect(std::shared_ptr<Link> link, Clock::time_point deadline) {
  const asio::any_io_executor executor = link->socket.get_executor();
  tcp::resolver resolver(executor);
  Watchdog watchdog(executor, deadline, [&resolver, &link] {
    resolver.cancel();
    error_code ignored;
    link->socket.close(ignored);  // cancel() would let async_connect go on to the next address
  });
  error_code ec;
  const tcp::resolver::results_type endpoints = co_await resolver.async_resolve(
      link->host, std::to_string(link->port), asio::redirect_error(asio::use_awaitable, ec));
  if (link->failed) co_return;  // closed meanwhile
  if (!ec && !watchdog.expired()) {
    co_await asio::async_connect(link->socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (link->failed) co_return;
  }
  if (watchdog.expired()) {
    fail_link(*link, asio::error::timed_out, "connecting: timed out");
    co_return;
  }
  if (!ec) link->socket.set_option(tcp::no_delay(true), ec);
  if (ec) {
    fail_link(*link, ec, "connecting");
    co_return;
  }
  link->open = true;
  asio::co_spawn(executor, read_loop(link), asio::detached);
  start_writing(link);
}

}  // namespace

OutboundConnection::OutboundConnection(asio::any_io_executor executor, std::string host, uint16_t port,
                                       std::string client_id, OutboundLimits limits)
    : executor_(std::move(executor)), host_(std::move(host)), port_(port), client_id_(std::move(client_id)),
      limits_(limits) {
  limits_.max_in_flight = std::max<size_t>(limits_.max_in_flight, 1);
}

OutboundConnection::~OutboundConnection() { close(); }

void OutboundConnection::close() {
  if (link_) fail_link(*link_, asio::error::operation_aborted, "connection closed");
  link_.reset();
}

void OutboundConnection::retarget(std::string host, uint16_t port) {
  if (host == host_ && port == port_) return;
  close();
  host_ = std::move(host);
  port_ = port;
}

bool OutboundConnection::connected() const { return link_ && link_->open; }

void OutboundConnection::check_version(int16_t api_key, int16_t version, int16_t min_version, int16_t max_version) {
  if (version < min_version || version > max_version)
    throw std::invalid_argument(api_name(api_key) + " has no version " + std::to_string(version));
}

protocol::Writer OutboundConnection::begin_request(int16_t api_key, int16_t version, int32_t correlation_id) const {
  protocol::Writer writer;
  writer.reserve_int32();  // the size, filled in by exchange()
  protocol::RequestHeader header;
  header.request_api_key = api_key;
  header.request_api_version = version;
  header.correlation_id = correlation_id;
  header.client_id = client_id_;
  header.encode(writer, protocol::request_header_version(api_key, version));
  return writer;
}

// `this` is used only before the first suspension: the caller may destroy the
// connection while waiting (its calls then fail).
asio::awaitable<OutboundConnection::RawReply> OutboundConnection::exchange(int16_t api_key, int16_t version,
                                                                          int32_t correlation_id,
                                                                          protocol::Writer request,
                                                                          std::chrono::milliseconds timeout) {
  if (!request.splices().empty()) throw std::invalid_argument("outbound requests carry their records in memory");
  request.patch_int32(0, static_cast<int32_t>(request.size() - 4));
  const Clock::time_point deadline = deadline_after(timeout);
  const std::string what =
      api_name(api_key) + " v" + std::to_string(version) + " (correlation id " + std::to_string(correlation_id) + ")";

  std::shared_ptr<Link> link = link_;
  const bool must_connect = !link || link->failed;
  if (must_connect) link = link_ = std::make_shared<Link>(executor_, host_, port_, limits_);
  auto call = std::make_shared<PendingCall>(executor_, correlation_id, std::move(request.buffer()), deadline);
  link->calls.push_back(call);
  if (must_connect) {
    co_await connect(link, deadline);
  } else {
    start_writing(link);  // nothing while another call is connecting: it starts the writer when done
  }

  while (!call->finished) {
    error_code ec;
    co_await call->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (call->finished || ec == asio::error::operation_aborted) continue;
    // The deadline passed.
    const auto at = std::find(link->calls.begin(), link->calls.end(), call);
    const auto position = static_cast<size_t>(at - link->calls.begin());
    if (position >= link->written) {
      // Not sent yet: give up alone, the connection is fine.
      link->calls.erase(at);
      throw boost::system::system_error(asio::error::timed_out,
                                        link->peer + ": " + what + ": not sent within " +
                                            std::to_string(timeout.count()) + " ms (" +
                                            std::to_string(link->written) + " requests in flight)");
    }
    // Its response would still come, but callers behind it have waited
    // long enough too: close, as Kafka's NetworkClient does.
    fail_link(*link, asio::error::timed_out, "closed after " + what + " timed out");
    throw boost::system::system_error(asio::error::timed_out, link->peer + ": " + what + ": no response within " +
                                                                  std::to_string(timeout.count()) + " ms");
  }
  if (call->error) throw boost::system::system_error(call->error, call->error_what);
  co_return RawReply{std::move(call->reply), std::move(link)};
}

void OutboundConnection::reject_reply(const std::shared_ptr<Link>& link, int16_t api_key, int16_t version,
                                      const std::string& why) {
  const std::string what = api_name(api_key) + " v" + std::to_string(version) + " response does not decode: " + why;
  fail_link(*link, bad_message(), "closed after a " + what);
  throw boost::system::system_error(bad_message(), link->peer + ": " + what);
}

}  // namespace sluice::broker
