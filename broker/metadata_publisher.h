// The controller's side of brokers following the metadata log: the long-poll
// fetches (controller listener) parked until new records are committed.
#pragma once

#include <algorithm>
#include <vector>

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

 private:
  std::vector<AsyncEvent*> waiters_;
};

}  // namespace sluice::broker
