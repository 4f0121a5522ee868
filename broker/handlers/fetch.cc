// Fetch (key 1): whole record batches from the fetch offset on, within the
// request's byte limits. When fewer than min_bytes are there, the request
// parks until the data it can read grows or max_wait_ms runs out (the long
// poll). Sessions (KIP-227) are not kept: every response says session 0,
// which clients treat as "send full requests".
//
// Consumers read up to the high watermark. A follower replica (replica id
// >= 0) reads up to the log end; its fetch offset tells the leader what it
// has (which moves the high watermark), and its last fetched epoch is checked
// against this leader's epochs: where they diverge the answer is the
// DivergingEpoch to truncate to, and no records.
//
// KIP-392: consumers from v11 on may read from any replica, a follower
// serving up to its own high watermark. With replica.selector.class set, a
// leader answers a consumer in another rack (its client.rack) with the
// in-sync follower in the consumer's rack to read from instead
// (PreferredReadReplica, no records).
#include <algorithm>
#include <chrono>

#include "broker/async_event.h"
#include "broker/handlers/handlers.h"
#include "broker/steady_clock.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::FetchRequest;
using protocol::FetchResponse;
using PartitionData = FetchResponse::FetchableTopicResponse::PartitionData;
using Clock = boost::asio::steady_timer::clock_type;

constexpr int8_t kReadUncommitted = 0;
constexpr int8_t kReadCommitted = 1;
constexpr int32_t kConsumerReplicaId = -1;
constexpr int16_t kFirstVersionWithRack = 11;

struct ReadOutcome {
  FetchResponse reply;
  size_t bytes = 0;
  bool any_error = false;
  // A consumer's reads, for the topics' counters once the answer is final.
  struct Read {
    Partition* partition;
    size_t bytes;
    int64_t offsets;  // how many offsets the records span
  };
  std::vector<Read> reads;
};

int32_t replica_of(const FetchRequest& request) {
  return request.replica_state.replica_id >= 0 ? request.replica_state.replica_id : request.replica_id;
}

ReadOutcome read_partitions(Broker& broker, const FetchRequest& request, int16_t version) {
  ReadOutcome out;
  const int32_t replica = replica_of(request);
  const bool follower = replica != kConsumerReplicaId;
  const bool any_replica = !follower && version >= kFirstVersionWithRack;
  const bool select_replica =
      any_replica && !request.rack_id.empty() && !broker.config.get_string("replica.selector.class").empty();
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  size_t budget = static_cast<size_t>(std::max(request.max_bytes, 0));
  for (const auto& topic : request.topics) {
    auto& topic_reply = out.reply.responses.emplace_back();
    topic_reply.topic = topic.topic;
    topic_reply.topic_id = topic.topic_id;
    for (const auto& wanted : topic.partitions) {
      PartitionData data;
      data.partition_index = wanted.partition;
      data.records = std::string_view{};
      if (request.isolation_level == kReadCommitted) data.aborted_transactions.emplace();
      ErrorCode error = ErrorCode::kNone;
      Partition* partition = broker.replicas.find_led(topic.topic, wanted.partition, error);
      if (!partition && any_replica && error == ErrorCode::kNotLeaderOrFollower)
        if (Partition* held_here = broker.replicas.find(topic.topic, wanted.partition)) {
          partition = held_here;  // a follower serving a consumer
          error = ErrorCode::kNone;
        }
      if (!partition) {
        // `error` says why
      } else if (follower &&
                 std::find(partition->replicas.begin(), partition->replicas.end(), replica) == partition->replicas.end())
        error = ErrorCode::kNotLeaderOrFollower;  // not one of its replicas
      else if (wanted.current_leader_epoch >= 0 && wanted.current_leader_epoch < partition->leader_epoch)
        error = ErrorCode::kFencedLeaderEpoch;
      else if (wanted.current_leader_epoch > partition->leader_epoch)
        error = ErrorCode::kUnknownLeaderEpoch;
      // What the fetcher may read up to.
      int64_t readable_end = 0;
      if (partition && error == ErrorCode::kNone && follower) {
        readable_end = partition->log->log_end_offset();
        if (wanted.last_fetched_epoch >= 0) {
          const auto [epoch, end] = partition->epochs.end_offset_for(wanted.last_fetched_epoch, readable_end);
          if (end < wanted.fetch_offset || epoch < wanted.last_fetched_epoch) {
            data.diverging_epoch.epoch = epoch;
            data.diverging_epoch.end_offset = end;
            readable_end = wanted.fetch_offset;  // nothing to read until it truncates
          }
        }
        if (data.diverging_epoch.epoch < 0 && wanted.fetch_offset >= partition->log->log_start_offset() &&
            wanted.fetch_offset <= partition->log->log_end_offset())
          broker.replicas.record_follower_fetch(*partition, replica, wanted.fetch_offset, wanted.log_start_offset, now_ms);
        // A follower behind the leader's log start (DeleteRecords, retention) is answered at once
        // rather than parked: it drops what the leader dropped without waiting for new records.
        // (It takes the log start from the answer, so the next fetch parks again.)
        if (wanted.log_start_offset >= 0 && wanted.log_start_offset < partition->log->log_start_offset())
          out.any_error = true;
      } else if (partition) {
        readable_end = partition->high_watermark();
      }
      if (partition) {
        data.high_watermark = partition->high_watermark();
        data.last_stable_offset = partition->high_watermark();
        data.log_start_offset = partition->log->log_start_offset();
      } else {
        data.high_watermark = -1;
      }
      int32_t preferred = -1;
      if (partition && error == ErrorCode::kNone && select_replica && partition->is_leader)
        preferred = broker.replicas.preferred_read_replica(*partition, request.rack_id, wanted.fetch_offset, steady_now_ms());
      if (preferred >= 0) {
        data.preferred_read_replica = preferred;
        out.any_error = true;  // answered at once: the consumer goes there
      }
      // A consumer may ask for what another replica already commits (a new
      // leader's high watermark lags the old one's; a follower's lags its
      // leader's): past the high watermark, up to the log end, the answer is
      // empty rather than out of range (as from Kafka), or the consumer would
      // reset its offset.
      const int64_t valid_end = partition && !follower ? partition->log->log_end_offset() : readable_end;
      if (error == ErrorCode::kNone && data.diverging_epoch.epoch < 0 && preferred < 0 &&
          (wanted.fetch_offset < partition->log->log_start_offset() || wanted.fetch_offset > valid_end))
        error = ErrorCode::kOffsetOutOfRange;
      // KIP-73: a throttled partition goes to a follower out of the ISR
      // empty while the leader's replication quota is exceeded.
      const bool throttled = partition && follower && partition->leader_throttled;
      const bool held_back = throttled &&
                             std::find(partition->isr.begin(), partition->isr.end(), replica) == partition->isr.end() &&
                             broker.replicas.leader_quota().exceeded(steady_now_ms());
      if (error == ErrorCode::kNone && wanted.fetch_offset < readable_end && !held_back && preferred < 0) {
        size_t limit = std::min<size_t>(budget, static_cast<size_t>(std::max(wanted.partition_max_bytes, 0)));
        // KIP-74: the first batch of the response goes out whatever its size,
        // so a batch larger than the limits cannot stall a consumer.
        // Not read here: the connection sends these file regions with sendfile().
        std::vector<protocol::FileRegion> regions;
        int64_t next_offset = wanted.fetch_offset;
        // Consumers get whole batches below the high watermark only (followers: up to the log end).
        for (auto& slice :
             partition->log->locate(wanted.fetch_offset, limit, out.bytes == 0, readable_end, &next_offset))
          regions.push_back({std::move(slice.owner), slice.fd, slice.position, slice.length});
        protocol::Records records(std::move(regions));
        if (records.size() > 0) {
          budget -= std::min(budget, records.size());
          out.bytes += records.size();
          if (throttled) broker.replicas.leader_quota().record(static_cast<int64_t>(records.size()), steady_now_ms());
          if (!follower)
            out.reads.push_back({partition, records.size(), std::max<int64_t>(next_offset - wanted.fetch_offset, 0)});
          data.records = std::move(records);
        }
      }
      data.error_code = static_cast<int16_t>(error);
      out.any_error |= error != ErrorCode::kNone || data.diverging_epoch.epoch >= 0;  // answered at once
      topic_reply.partitions.push_back(std::move(data));
    }
  }
  return out;
}

void stop_waiting(Broker& broker, const FetchRequest& request, AsyncEvent* event) {
  for (const auto& topic : request.topics)
    for (const auto& wanted : topic.partitions)
      if (Partition* p = broker.replicas.find(topic.topic, wanted.partition)) {
        std::erase(p->waiters, event);
        std::erase(p->replica_waiters, event);
      }
}

}  // namespace

boost::asio::awaitable<void> handle_fetch(RequestContext& ctx) {
  auto request = ctx.decode<FetchRequest>();
  Broker& broker = ctx.broker;

  if (request.isolation_level != kReadUncommitted && request.isolation_level != kReadCommitted) {
    // Kafka fails such a request as a whole (its IsolationLevel has no other
    // values): UNKNOWN_SERVER_ERROR at the top and for every partition, with
    // no data, and the connection stays open.
    FetchResponse reply;
    reply.error_code = static_cast<int16_t>(ErrorCode::kUnknownServerError);
    reply.session_id = request.session_id;
    for (const auto& topic : request.topics) {
      auto& topic_reply = reply.responses.emplace_back();
      topic_reply.topic = topic.topic;
      topic_reply.topic_id = topic.topic_id;
      for (const auto& wanted : topic.partitions) {
        PartitionData& data = topic_reply.partitions.emplace_back();
        data.partition_index = wanted.partition;
        data.error_code = static_cast<int16_t>(ErrorCode::kUnknownServerError);
        data.high_watermark = -1;
      }
    }
    ctx.respond(reply);
    co_return;
  }

  if (request.session_id != 0) {
    // We never hand out sessions, so any session id is one we do not know.
    FetchResponse reply;
    reply.error_code = static_cast<int16_t>(ErrorCode::kFetchSessionIdNotFound);
    ctx.respond(reply);
    co_return;
  }

  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(request.max_wait_ms, 0));
  ReadOutcome outcome = read_partitions(broker, request, ctx.api_version);
  while (!outcome.any_error && outcome.bytes < static_cast<size_t>(std::max(request.min_bytes, 0)) &&
         Clock::now() < deadline) {
    AsyncEvent data_arrived(broker.executor);
    for (const auto& topic : request.topics)
      for (const auto& wanted : topic.partitions)
        if (Partition* p = broker.replicas.find(topic.topic, wanted.partition))
          (replica_of(request) != kConsumerReplicaId ? p->replica_waiters : p->waiters).push_back(&data_arrived);
    co_await data_arrived.wait_until(deadline);
    stop_waiting(broker, request, &data_arrived);
    outcome = read_partitions(broker, request, ctx.api_version);
  }
  outcome.reply.session_id = 0;
  for (const ReadOutcome::Read& read : outcome.reads) {
    Partition& p = *read.partition;
    if (!p.counters) p.counters = &broker.metrics.topic(p.topic);
    p.counters->bytes_out->Increment(static_cast<double>(read.bytes));
    p.counters->records_out->Increment(static_cast<double>(read.offsets));
  }
  ctx.respond(outcome.reply);
}

}  // namespace sluice::broker
