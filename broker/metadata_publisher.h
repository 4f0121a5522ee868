// The controller's side of brokers following the metadata log: the long-poll
// fetches (controller listener) parked until new records are committed, and
// answers waiting for the changes they report to be durable.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <chrono>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/async_event.h"
#include "controller/controller.h"

namespace sluice::broker {

// A controller that lost the quorum's leadership while an answer waited for
// its changes: they may be dropped, so the request is not answered (the
// connection closes, and the broker that sent it asks the new leader).
struct NotActiveController : std::runtime_error {
  NotActiveController() : std::runtime_error("this controller lost the quorum's leadership") {}
};

class MetadataPublisher : public controller::MetadataListener {
 public:
  void on_topic_created(const controller::TopicInfo&) override {}
  void on_partitions_added(const controller::TopicInfo&, int32_t) override {}
  void on_topic_deleted(const controller::TopicInfo&) override {}
  void on_committed(int64_t) override {
    for (AsyncEvent* waiter : std::exchange(waiters_, {})) waiter->set();
  }

  // A fetch waits for the next commit; it must stop_waiting() when it leaves
  // before one (its deadline passed).
  void wait_for_commit(AsyncEvent* event) { waiters_.push_back(event); }
  void stop_waiting(AsyncEvent* event) { std::erase(waiters_, event); }

  // Returns once `controller` has committed everything below `offset`;
  // throws NotActiveController (broker.h) if it stops leading first.
  boost::asio::awaitable<void> wait_until_committed(const controller::Controller& controller, int64_t offset,
                                                    const boost::asio::any_io_executor& executor) {
    const int32_t epoch = controller.quorum_epoch();
    for (;;) {
      // Leadership first: a controller that lost it may have dropped the change
      // and committed another leader's records past `offset` since.
      if (!controller.active() || controller.quorum_epoch() != epoch) throw NotActiveController();
      if (controller.committed_offset() >= offset) co_return;
      AsyncEvent committed(executor);
      wait_for_commit(&committed);
      co_await committed.wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
      stop_waiting(&committed);
    }
  }
  // Wakes every waiter (new records durable: voters fetching wait for them).
  void wake_all() {
    for (AsyncEvent* waiter : std::exchange(waiters_, {})) waiter->set();
  }

 private:
  std::vector<AsyncEvent*> waiters_;
};

}  // namespace sluice::broker
