// Hands out idempotent producers' ids from blocks the controller reserves
// durably in the metadata log, so ids are unique across the brokers of a
// cluster and across restarts without a write per id.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "broker/controller_link.h"
#include "broker/metadata_publisher.h"
#include "controller/controller.h"

namespace sluice::broker {

class ProducerIdManager {
 public:
  // Kafka's controller also reserves producer ids in blocks of 1000.
  static constexpr int32_t kBlockSize = 1000;

  // Blocks come from the controller in this process (handed out once durable:
  // `publisher` tells), or (broker-only nodes) over `link` with AllocateProducerIds.
  ProducerIdManager(controller::Controller* controller, MetadataPublisher* publisher, ControllerLink* link)
      : controller_(controller), publisher_(publisher), link_(link) {}

  // Throws when no block can be had (the controller unreachable, its log unwritable).
  boost::asio::awaitable<int64_t> next() {
    if (next_ == end_) {
      int64_t first = 0;
      if (prefetched_)
        first = *std::exchange(prefetched_, std::nullopt);
      else
        first = co_await allocate();
      next_ = first;
      end_ = first + kBlockSize;
    }
    // As Kafka's brokers do, the next block is asked for when 90% of this one
    // is used, so that new producers need no round trip to the controller
    // (and get ids while it is away).
    if (link_ && end_ - next_ <= kBlockSize / 10) prefetch();
    co_return next_++;
  }

  // Asks for a block ahead of need, in the background (broker-only nodes:
  // at start, so that the first producers do not wait for the controller).
  void prefetch() {
    if (!link_ || prefetched_ || prefetching_) return;
    prefetching_ = true;
    boost::asio::co_spawn(
        link_->executor(),
        [this]() -> boost::asio::awaitable<void> {
          try {
            prefetched_ = co_await allocate();
          } catch (const std::exception&) {
            // The controller unreachable: next() asks again when it needs a block.
          }
          prefetching_ = false;
        },
        boost::asio::detached);
  }

 private:
  boost::asio::awaitable<int64_t> allocate() {
    if (controller_) {
      const int64_t first = controller_->allocate_producer_ids(kBlockSize);
      const auto executor = co_await boost::asio::this_coro::executor;
      co_await publisher_->wait_until_committed(*controller_, controller_->log().end_offset(), executor);
      co_return first;
    }
    co_return co_await link_->allocate_producer_ids(kBlockSize);
  }

  controller::Controller* controller_;
  MetadataPublisher* publisher_;
  ControllerLink* link_;
  int64_t next_ = 0;
  int64_t end_ = 0;
  std::optional<int64_t> prefetched_;
  bool prefetching_ = false;
};

}  // namespace sluice::broker
