// Waiting for a write to be as durable as its writer asked: synced by the
// group commit (flusher.h), and on every in-sync replica (the partition's
// high watermark past it). Produce with acks=all and the group coordinator's
// offset commits both wait this way.
#pragma once

#include <chrono>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "protocol/error_codes.h"
#include "storage/partition_log.h"

namespace sluice::broker {

struct Broker;

// Waits until the group commit has synced `fds`; false if a sync failed.
boost::asio::awaitable<bool> wait_for_sync(Broker& broker, const storage::SyncList& sync);

// Waits until the high watermark of a partition this broker leads passes
// `next_offset` (everything below it is on every in-sync replica). Kafka's
// answers otherwise: NOT_LEADER_OR_FOLLOWER if the leadership moved (or the
// partition went) meanwhile, NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR fell
// below min.insync.replicas, REQUEST_TIMED_OUT at the deadline.
boost::asio::awaitable<protocol::ErrorCode> wait_for_high_watermark(
    Broker& broker, std::string_view topic, int32_t index, int64_t next_offset,
    std::chrono::steady_clock::time_point deadline);

}  // namespace sluice::broker
