// The controller's side of brokers following the metadata log: the long-poll
// fetches (controller listener) parked until new records are committed, and
// answers waiting for the changes they report to be durable.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/async_event.h"
#include "controller/controller.h"

namespace sluice::broker {

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

  // Returns once `log` is durable up to `offset`.
  boost::asio::awaitable<void> wait_until_durable(const controller::MetadataLog& log, int64_t offset,
                                                  const boost::asio::any_io_executor& executor) {
    while (log.durable_end_offset() < offset) {
      AsyncEvent committed(executor);
      wait_for_commit(&committed);
      co_await committed.wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(1));
      stop_waiting(&committed);
    }
  }

 private:
  std::vector<AsyncEvent*> waiters_;
};

}  // namespace sluice::broker
