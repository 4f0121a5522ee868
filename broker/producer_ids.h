// Hands out idempotent producers' ids from blocks the controller reserves
// durably, so ids are unique across restarts without a write per id.
#pragma once

#include <cstdint>

#include "controller/controller.h"

namespace sluice::broker {

class ProducerIdManager {
 public:
  // Kafka's controller also reserves producer ids in blocks of 1000.
  static constexpr int32_t kBlockSize = 1000;

  explicit ProducerIdManager(controller::Controller& controller) : controller_(controller) {}

  int64_t next() {
    if (next_ == end_) {
      next_ = controller_.allocate_producer_ids(kBlockSize);
      end_ = next_ + kBlockSize;
    }
    return next_++;
  }

 private:
  controller::Controller& controller_;
  int64_t next_ = 0;
  int64_t end_ = 0;
};

}  // namespace sluice::broker
