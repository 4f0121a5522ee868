#include "broker/replication_wait.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/async_event.h"
#include "broker/broker.h"

namespace sluice::broker {

using protocol::ErrorCode;

boost::asio::awaitable<bool> wait_for_sync(Broker& broker, const storage::SyncList& sync) {
  AsyncEvent synced(broker.executor);
  bool ok = true;
  broker.flusher.flush(sync, [&synced, &ok](bool flushed) {
    ok = flushed;
    synced.set();
  });
  while (!synced.is_set()) co_await synced.wait_until(boost::asio::steady_timer::time_point::max());
  co_return ok;
}

boost::asio::awaitable<ErrorCode> wait_for_high_watermark(Broker& broker, std::string_view topic, int32_t index,
                                                          int64_t next_offset,
                                                          std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    Partition* partition = broker.replicas.find(topic, index);  // it may have gone meanwhile
    if (!partition || !partition->is_leader) co_return ErrorCode::kNotLeaderOrFollower;
    if (partition->high_watermark() >= next_offset)
      co_return static_cast<int64_t>(partition->isr.size()) < partition->min_insync_replicas
          ? ErrorCode::kNotEnoughReplicasAfterAppend
          : ErrorCode::kNone;
    if (std::chrono::steady_clock::now() >= deadline) co_return ErrorCode::kRequestTimedOut;
    AsyncEvent replicated(broker.executor);
    partition->high_watermark_waiters.emplace_back(next_offset, &replicated);
    co_await replicated.wait_until(deadline);
    if (Partition* p = broker.replicas.find(topic, index))
      std::erase_if(p->high_watermark_waiters, [&](const auto& e) { return e.second == &replicated; });
  }
}

}  // namespace sluice::broker
