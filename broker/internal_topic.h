// What the coordinators riding on internal topics share (DESIGN.md "Coordinators
// ride on replicated partitions"): the group coordinator on __consumer_offsets
// (offsets_topic.h) and the share-state coordinator on __share_group_state
// (share_state_coordinator.h). Each keeps its state in memory for the
// partitions this broker leads, replays a partition when it starts leading
// it, appends each change as keyed records in Kafka's record format, and
// answers once the partition's high watermark has passed the change.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // Asio's awaitable.hpp needs std::exchange
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "broker/group_coordinator.h"
#include "protocol/error_codes.h"
#include "protocol/record_batch.h"

namespace sluice::broker {

struct Broker;
class ReplicaManager;
struct Partition;

// Replays partition `index` of `topic` from its log start, a chunk of
// `chunk_bytes` at a time, letting requests run between chunks: `apply` sees
// every record's key and value. Stops early, returning false, when
// `still_wanted()` says the load is no longer wanted (the leadership moved),
// the partition went, or a read failed; counts records and unreadable ones
// (`apply` returns false for a record it cannot read).
struct ReplayCount {
  int64_t records = 0;
  int64_t unreadable = 0;
};
boost::asio::awaitable<bool> replay_internal_partition(
    Broker& broker, std::string_view topic, int32_t index, size_t chunk_bytes, const std::function<bool()>& still_wanted,
    const std::function<bool(std::optional<std::string_view> key, std::optional<std::string_view> value)>& apply,
    ReplayCount& count);

// Appends `records` to `partition`, which this broker leads, as one batch;
// what the change must reach before it is acknowledged (await_internal_write).
OffsetWrite append_internal_records(ReplicaManager& replicas, Partition& partition,
                                    const std::vector<protocol::KeyedRecord>& records);

// Waits until `write` (to `topic`) is synced and on every in-sync replica, at
// most `timeout`, and answers as Kafka's coordinators do when it is not:
// NOT_COORDINATOR if the leadership moved or the disk failed,
// COORDINATOR_NOT_AVAILABLE if the replicas did not follow in time.
boost::asio::awaitable<protocol::ErrorCode> await_internal_write(Broker& broker, std::string_view topic,
                                                                 const OffsetWrite& write,
                                                                 std::chrono::milliseconds timeout);

// Sluice has no log cleaner yet; instead each partition of an internal topic
// that this broker leads and has loaded is compacted by rewriting: checked
// every log.cleaner.backoff.ms, a partition whose log exceeds its
// segment.bytes and holds more than twice as many records as live entries
// gets every live entry appended again (`rewrite`); once that is on every
// in-sync replica, the log start moves to where the rewrite began, and the
// segments below it are deleted on every replica. Replaying from the new log
// start gives the same state.
struct CompactionHooks {
  std::function<bool(int32_t index)> loaded;                      // this broker serves the partition's state
  std::function<size_t(int32_t index)> live;                      // its live entries
  std::function<std::optional<OffsetWrite>(int32_t index)> rewrite;  // appends them all again
  std::chrono::milliseconds timeout{5000};                        // for the rewrite to replicate
};
boost::asio::awaitable<void> compact_internal_topic_periodically(Broker& broker, std::string_view topic,
                                                                 CompactionHooks hooks);

// Asks the controller for an internal topic (a coordinator's first client
// brings it into being); its leaders reach the brokers through the metadata
// log. A failure is logged: callers answer COORDINATOR_NOT_AVAILABLE meanwhile.
boost::asio::awaitable<void> create_internal_topic(Broker& broker, std::string_view name, int32_t partitions,
                                                   int16_t replication_factor,
                                                   const std::map<std::string, std::string>& configs);

}  // namespace sluice::broker
