// Forwarding a client's request to member brokers: one request per member
// broker, all in flight at once, the handler waiting for every answer.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/async_event.h"
#include "broker/outbound_connection.h"
#include "federation/member_cluster.h"

namespace sluice::federation {

// Counts forwarded calls in flight; wait() returns once each has called done().
class WaitGroup {
 public:
  explicit WaitGroup(const boost::asio::any_io_executor& executor) : all_done_(executor) {}
  void add() { ++pending_; }
  void done() {
    if (--pending_ == 0) all_done_.set();
  }
  boost::asio::awaitable<void> wait() {
    if (pending_ > 0) co_await all_done_.wait_until(boost::asio::steady_timer::time_point::max());
  }

 private:
  broker::AsyncEvent all_done_;
  int pending_ = 0;
};

// One member broker's share of a request and what came back: `reply` when it
// answered, else `failure` (it could not be reached, or did not answer in time).
template <typename Request, typename Response>
struct Forwarded {
  MemberCluster* member = nullptr;
  int32_t node = -1;
  Request request;
  std::optional<broker::Reply<Response>> reply;
  std::string failure;
};

// Sends `f.request` at `version` to member broker `f.node` and records the
// outcome in `f`; then group.done(). Spawn it (co_spawn, detached) after group.add().
template <typename Request, typename Response>
boost::asio::awaitable<void> forward(Forwarded<Request, Response>& f, int16_t version,
                                     std::chrono::milliseconds timeout, WaitGroup& group) {
  try {
    broker::OutboundConnection* connection = f.member->connection(f.node);
    if (connection == nullptr) {
      f.failure = "member broker " + std::to_string(f.node) + " of " + f.member->name() + " is not known";
    } else {
      f.reply = co_await connection->template call<Response>(f.request, version, timeout);
    }
  } catch (const std::exception& e) {
    f.failure = e.what();
  }
  if (!f.reply) f.member->request_refresh();
  group.done();
}

}  // namespace sluice::federation
