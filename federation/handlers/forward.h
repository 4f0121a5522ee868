// Forwarding a client's request to member brokers: one request per member
// broker, all in flight at once, the handler waiting for every answer.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/async_event.h"
#include "broker/outbound_connection.h"
#include "federation/federation.h"
#include "federation/member_cluster.h"
#include "federation/member_links.h"
#include "protocol/error_codes.h"

namespace sluice::federation {

// Counts forwarded calls in flight; wait() returns once each has called
// done(), wait_sent() once each has called sent() (its request is encoded and
// queued on its link: the client's request bytes are no longer needed). A
// call may end before the next is added (whether co_spawn starts a coroutine
// at once depends on the Asio version): only a waiter is woken.
class WaitGroup {
 public:
  explicit WaitGroup(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}
  void add() {
    ++pending_;
    ++unsent_;
  }
  void sent() {
    if (--unsent_ == 0 && sent_waiter_) sent_waiter_->set();
  }
  void done() {
    if (--pending_ == 0 && done_waiter_) done_waiter_->set();
  }
  boost::asio::awaitable<void> wait_sent() { co_await wait_for(unsent_, sent_waiter_); }
  boost::asio::awaitable<void> wait() { co_await wait_for(pending_, done_waiter_); }

 private:
  boost::asio::awaitable<void> wait_for(const int& count, broker::AsyncEvent*& waiter) {
    if (count == 0) co_return;
    broker::AsyncEvent event(executor_);
    waiter = &event;
    co_await event.wait_until(boost::asio::steady_timer::time_point::max());
    waiter = nullptr;
  }
  boost::asio::any_io_executor executor_;
  broker::AsyncEvent* sent_waiter_ = nullptr;
  broker::AsyncEvent* done_waiter_ = nullptr;
  int unsent_ = 0;
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

// Sends `f.request` at `version` to member broker `f.node`, on the client's
// own link to it, and records the outcome in `f`; group.sent() once the
// request is encoded and queued (calls queued one after another leave in that
// order), group.done() at the end. Spawn it (co_spawn, detached) after group.add().
template <typename Request, typename Response>
boost::asio::awaitable<void> forward(Forwarded<Request, Response>& f, int16_t version,
                                     std::chrono::milliseconds timeout, WaitGroup& group, MemberLinks& links) {
  bool sent = false;
  try {
    broker::OutboundConnection* connection = links.connection(*f.member, f.node);
    if (connection == nullptr) {
      f.failure = "member broker " + std::to_string(f.node) + " of " + f.member->name() + " is not known";
    } else {
      // call() encodes at once; the exchange takes its place in the link's queue as soon as it is awaited.
      auto pending = connection->template call<Response>(f.request, version, timeout);
      sent = true;
      group.sent();
      f.reply = co_await std::move(pending);
    }
  } catch (const std::exception& e) {
    f.failure = e.what();
  }
  if (!sent) group.sent();
  if (!f.reply) f.member->request_refresh();
  group.done();
}

// One request, sent and awaited here (forward() reports to a group: a group of one).
template <typename Request, typename Response>
boost::asio::awaitable<void> forward_one(Forwarded<Request, Response>& f, int16_t version,
                                         std::chrono::milliseconds timeout, MemberLinks& links) {
  const auto executor = co_await boost::asio::this_coro::executor;
  WaitGroup one(executor);
  one.add();
  co_await forward(f, version, timeout, one, links);
}

// Every request of `requests` sent at once (each on the client's own link to
// its member broker), waited for until all are answered or have failed.
// `on_sent`, if given, is called once every request is encoded and queued.
template <typename Request, typename Response>
boost::asio::awaitable<void> forward_all(Federation& federation, std::list<Forwarded<Request, Response>>& requests,
                                         int16_t version, std::chrono::milliseconds timeout, MemberLinks& links,
                                         std::function<void()> on_sent = {}) {
  WaitGroup group(federation.executor());
  for (auto& r : requests) {
    group.add();
    boost::asio::co_spawn(federation.executor(), forward(r, version, timeout, group, links), boost::asio::detached);
  }
  if (on_sent) {
    co_await group.wait_sent();
    on_sent();
  }
  co_await group.wait();
}

// A member's answer that its coordinator of the group moved or is not ready
// (asked again by forward_to_coordinators; never passed on to the client).
inline bool coordinator_error(int16_t error) {
  return error == static_cast<int16_t>(protocol::ErrorCode::kNotCoordinator) ||
         error == static_cast<int16_t>(protocol::ErrorCode::kCoordinatorNotAvailable) ||
         error == static_cast<int16_t>(protocol::ErrorCode::kCoordinatorLoadInProgress);
}

// Group requests: each target's member is asked for its coordinator of
// `group` (target.node), then every target's request goes at once. A member
// whose coordinator moved or is still loading (`coordinator_moved` says so of
// an answer), or that did not answer, is asked again every 100 ms for up to
// federation.request.timeout.ms: to clients the endpoint is the coordinator,
// and the members' coordinator changes are not theirs to chase.
template <typename Request, typename Response, typename CoordinatorMoved>
boost::asio::awaitable<void> forward_to_coordinators(Federation& federation, MemberLinks& links,
                                                     std::list<Forwarded<Request, Response>>& targets,
                                                     const std::string& group, int16_t version,
                                                     CoordinatorMoved coordinator_moved) {
  const auto timeout = std::chrono::milliseconds(federation.config().request_timeout_ms);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<Forwarded<Request, Response>*> pending;
  for (auto& target : targets) pending.push_back(&target);
  boost::asio::steady_timer pause(federation.executor());
  for (;;) {
    for (size_t i = 0; i < pending.size(); ++i) {  // an index, not a range-for: co_await in the body (GCC 12)
      pending[i]->reply.reset();
      pending[i]->failure.clear();
      const int32_t node = co_await pending[i]->member->coordinator_of(group);
      pending[i]->node = node;
      if (node < 0)
        pending[i]->failure = "no coordinator of the group found on member cluster " + pending[i]->member->name();
    }
    WaitGroup all(federation.executor());
    for (auto* target : pending) {
      if (target->node < 0) continue;
      all.add();
      boost::asio::co_spawn(federation.executor(), forward(*target, version, timeout, all, links),
                            boost::asio::detached);
    }
    co_await all.wait();
    std::vector<Forwarded<Request, Response>*> again;
    for (auto* target : pending) {
      if (target->reply && !coordinator_moved(target->reply->body)) continue;
      target->member->forget_coordinator(group);
      again.push_back(target);
    }
    if (again.empty() || std::chrono::steady_clock::now() + std::chrono::milliseconds(100) >= deadline) co_return;
    pending = std::move(again);
    pause.expires_after(std::chrono::milliseconds(100));
    co_await pause.async_wait(boost::asio::use_awaitable);
  }
}

}  // namespace sluice::federation
