// Hands out idempotent producers' ids from blocks the controller reserves
// durably in the metadata log, so ids are unique across the brokers of a
// cluster and across restarts without a write per id.
#pragma once

#include <cstdint>

#include <boost/asio/awaitable.hpp>

#include "broker/controller_link.h"
#include "controller/controller.h"

namespace sluice::broker {

class ProducerIdManager {
 public:
  // Kafka's controller also reserves producer ids in blocks of 1000.
  static constexpr int32_t kBlockSize = 1000;

  // Blocks come from the controller in this process, or (broker-only nodes)
  // over `link` with AllocateProducerIds.
  ProducerIdManager(controller::Controller* controller, ControllerLink* link) : controller_(controller), link_(link) {}

  // Throws when no block can be had (the controller unreachable, its log unwritable).
  boost::asio::awaitable<int64_t> next() {
    if (next_ == end_) {
      const int64_t first =
          controller_ ? controller_->allocate_producer_ids(kBlockSize) : co_await link_->allocate_producer_ids(kBlockSize);
      next_ = first;
      end_ = first + kBlockSize;
    }
    co_return next_++;
  }

 private:
  controller::Controller* controller_;
  ControllerLink* link_;
  int64_t next_ = 0;
  int64_t end_ = 0;
};

}  // namespace sluice::broker
