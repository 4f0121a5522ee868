// The followers' side of replication (DESIGN.md, "Replication is Fetch"):
// `num.replica.fetchers` fetchers per leader broker (1 by default, as in
// Kafka), one connection each, the partitions followed there spread over
// them by a hash of topic and partition. A fetcher asks from each partition's
// log end with its last fetched epoch, truncates where the leader says the
// logs diverged, appends the leader's batches at the leader's offsets, and
// takes the leader's high watermark (capped by what it has) and log start.
//
// Followers do not sync what they append (Kafka's followers do not either):
// acks=all is answered once the leader has synced the batch and every
// in-sync follower has it in memory (storage/README.md says which copies are
// where).
//
// Single-threaded: runs on the broker's network thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/config.h"
#include "broker/outbound_connection.h"
#include "broker/replica_manager.h"
#include "controller/metadata_image.h"

namespace sluice::broker {

class ReplicaFetchers {
 public:
  ReplicaFetchers(boost::asio::any_io_executor executor, const BrokerConfig& config, ReplicaManager& replicas,
                  const controller::MetadataImage& metadata);
  ~ReplicaFetchers();

  // The partition's leader is now `leader`: this broker follows it there (-1:
  // it follows no one: it leads, or the partition has no leader).
  void follow(const Partition& partition, int32_t leader);
  void stop();

 private:
  using Key = std::pair<std::string, int32_t>;
  struct Fetcher {
    int32_t leader;
    std::set<Key> partitions;
    std::unique_ptr<OutboundConnection> connection;
    std::string host;  // where the connection goes
    uint16_t port = 0;
    bool running = false;
  };

  using FetcherId = std::pair<int32_t, int32_t>;  // leader, which of its num.replica.fetchers
  boost::asio::awaitable<void> run(FetcherId id);
  // Which of a leader's fetchers follows the partition.
  int32_t slot_of(const Key& key) const;

  boost::asio::any_io_executor executor_;
  const BrokerConfig& config_;
  ReplicaManager& replicas_;
  const controller::MetadataImage& metadata_;
  std::map<FetcherId, std::shared_ptr<Fetcher>> fetchers_;
  std::map<Key, int32_t> leader_of_;
  bool stopped_ = false;
};

}  // namespace sluice::broker
