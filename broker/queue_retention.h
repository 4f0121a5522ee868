// Delete after consumption: a topic used as a queue keeps its records only
// until the groups that consume it have consumed them (the topic config
// delete.after.consumption.groups).
//
// Every delete.after.consumption.check.interval.ms this broker asks, for each
// partition it leads of such a topic, where each listed group is on it: the
// group's coordinator answers (this broker from memory, another one with
// OffsetFetch). The log start offset then moves up to the lowest of those
// positions, never past the high watermark; segments wholly below it go as
// with retention, and followers follow the new log start from their fetch
// answers, as they follow DeleteRecords. A group that has committed nothing
// on a partition holds all of it (a typo in the list loses nothing), and so
// does one whose coordinator does not answer in a round: only positions
// answered in the same round move the log start, so a group that rewinds its
// offsets is never overtaken by an older answer. A share group's position is
// its share-partition start offset, which the leader itself keeps
// (share_partition_manager.h) while a member uses the partition, and which
// in a cluster it otherwise asks of the share coordinators
// (ReadShareGroupStateSummary, share_state_persister.h).
//
// It also keeps each (partition, group)'s last answered position, for the
// queue depth the admin server shows (/v1/queues, sluice_queue_depth).
//
// Network thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include <boost/asio/awaitable.hpp>

#include "broker/outbound_connection.h"

namespace sluice::broker {

struct Broker;

// (topic, partition, group) -> the group's committed offset there (nullopt:
// the group has committed nothing there), as its coordinator last answered.
using ConsumedPositions = std::map<std::tuple<std::string, int32_t, std::string>, std::optional<int64_t>>;

class QueueRetention {
 public:
  explicit QueueRetention(Broker& broker);

  // One round: asks the coordinators (each request bounded by `timeout`) and
  // releases what every listed group has consumed.
  boost::asio::awaitable<void> release_consumed(std::chrono::milliseconds timeout);

  const ConsumedPositions& positions() const { return positions_; }

 private:
  // (group, (topic, partition)) -> committed offset, -1 for none: what a round learnt.
  using Answers = std::map<std::pair<std::string, std::pair<std::string, int32_t>>, int64_t>;
  // What this broker knows itself of `group` on `partitions` (a share group's
  // start offsets; a consumer group it coordinates): into `answered`; false
  // when the group is coordinated elsewhere.
  bool answer_locally(const std::string& group, const std::set<std::pair<std::string, int32_t>>& partitions,
                      Answers& answered) const;
  // The broker coordinating `group` (a cluster: the leader of its
  // __consumer_offsets partition); -1 when unknown.
  int32_t coordinator_of(const std::string& group) const;

  Broker& broker_;
  struct Link {
    std::string host;
    uint16_t port = 0;
    std::unique_ptr<OutboundConnection> connection;
  };
  std::map<int32_t, Link> links_;  // by coordinator id, kept between rounds
  ConsumedPositions positions_;
};

}  // namespace sluice::broker
