// A partition leader's side of a cluster's share-partition state: it asks
// the share coordinator of each share-partition (share_state_coordinator.h)
// to read, initialize, write or remove it, with Kafka's RPCs on the
// inter-broker listener, or directly when this broker is that coordinator.
// Like Kafka's persister, it finds the coordinator from the metadata (the
// leader of the key's __share_group_state partition, creating the topic if
// it does not exist yet) and retries what a coordinator's move explains
// (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS,
// a lost connection) until share.coordinator.write.timeout.ms has passed
// three times over: long enough for the controller to fence a dead
// coordinator and its successor to replay the partition.
//
// Network thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>  // Asio's awaitable.hpp needs std::exchange
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "broker/outbound_connection.h"
#include "broker/share_state_coordinator.h"
#include "protocol/error_codes.h"

namespace sluice::broker {

struct Broker;

class ShareStatePersister {
 public:
  ShareStatePersister(Broker& broker, ShareStateCoordinator& local) : broker_(broker), local_(local) {}
  ~ShareStatePersister();

  using Result = ShareStateCoordinator::Result;
  using ReadResult = ShareStateCoordinator::ReadResult;
  // INVALID_REQUEST: not initialized.
  boost::asio::awaitable<ReadResult> read(const ShareStateKey& key, int32_t leader_epoch);
  boost::asio::awaitable<Result> initialize(const ShareStateKey& key, int32_t state_epoch, int64_t start_offset);
  boost::asio::awaitable<Result> write(const ShareStateKey& key, int32_t state_epoch, int32_t leader_epoch,
                                       const DurableShareState& state);
  boost::asio::awaitable<Result> remove(const ShareStateKey& key);
  // ReadShareGroupStateSummary (for administration: retried for 2 s only,
  // within the admin tools' 5 s default).
  using Summary = ShareStateCoordinator::Summary;
  boost::asio::awaitable<Summary> summary(const ShareStateKey& key);

 private:
  // The coordinator of `key`: this broker (local), another (connection), or an error to retry.
  struct Target {
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    bool local = false;
    OutboundConnection* connection = nullptr;
  };
  boost::asio::awaitable<Target> coordinator_of(const ShareStateKey& key);
  // Runs `attempt` against the key's coordinator until it answers something
  // other than a retriable error, or the retry window closes.
  // `window`: 0 for three times share.coordinator.write.timeout.ms.
  template <typename R>
  boost::asio::awaitable<R> with_retries(const ShareStateKey& key,
                                         std::function<boost::asio::awaitable<R>(const Target&)> attempt,
                                         std::chrono::milliseconds window = std::chrono::milliseconds(0));

  Broker& broker_;
  ShareStateCoordinator& local_;
  struct Link {
    std::string host;
    uint16_t port = 0;
    std::unique_ptr<OutboundConnection> connection;
  };
  std::map<int32_t, Link> links_;  // by coordinator node
  bool creating_topic_ = false;
};

}  // namespace sluice::broker
