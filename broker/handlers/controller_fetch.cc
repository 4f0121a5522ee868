// Fetch (key 1) on the controller listener: brokers follow the metadata log
// (topic __cluster_metadata, partition 0) from the offset after the last
// record they applied, as Kafka's brokers fetch it from the KRaft leader. The
// records come as one uncompressed batch of framed metadata records; a
// broker asking for records a snapshot has replaced is pointed at the
// snapshot (SnapshotId) and loads it with FetchSnapshot. An up-to-date broker
// waits up to MaxWaitMs for the next commit (long poll), so a change reaches
// every broker within milliseconds.
#include <chrono>
#include <deque>

#include "broker/handlers/handlers.h"
#include "broker/metadata_publisher.h"
#include "controller/metadata_log.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"
#include "protocol/record_batch.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::FetchRequest;
using protocol::FetchResponse;

boost::asio::awaitable<void> handle_controller_fetch(RequestContext& ctx) {
  auto request = ctx.decode<FetchRequest>();
  controller::Controller& controller = *ctx.broker.controller;
  const controller::MetadataLog& log = controller.log();

  const FetchRequest::FetchTopic::FetchPartition* wanted = nullptr;
  for (const auto& t : request.topics)
    if (t.topic == controller::kMetadataTopic)
      for (const auto& p : t.partitions)
        if (p.partition == 0) wanted = &p;

  // The broker is an observer of the quorum (DescribeQuorum shows its progress).
  const int32_t replica = request.replica_state.replica_id >= 0 ? request.replica_state.replica_id : request.replica_id;
  if (wanted && replica >= 0)
    controller.note_observer_fetch(replica, wanted->fetch_offset,
                                   std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch()).count());

  // An up-to-date follower waits for the next commit. Brokers are given only
  // what is durable: a controller that crashed would not have the rest.
  if (wanted && wanted->fetch_offset == log.durable_end_offset() && request.max_wait_ms > 0) {
    AsyncEvent committed(ctx.broker.executor);
    ctx.broker.metadata_publisher->wait_for_commit(&committed);
    co_await committed.wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(request.max_wait_ms));
    ctx.broker.metadata_publisher->stop_waiting(&committed);
  }

  FetchResponse reply;
  std::deque<std::string> batches;  // what reply's records point into, until it is encoded
  for (const auto& t : request.topics) {
    auto& topic = reply.responses.emplace_back();
    topic.topic = t.topic;
    for (const auto& p : t.partitions) {
      auto& out = topic.partitions.emplace_back();
      out.partition_index = p.partition;
      if (t.topic != controller::kMetadataTopic || p.partition != 0) {
        out.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
        continue;
      }
      out.high_watermark = log.durable_end_offset();
      out.last_stable_offset = log.durable_end_offset();
      out.log_start_offset = log.durable_snapshot_offset();
      if (p.fetch_offset < log.durable_snapshot_offset()) {
        out.snapshot_id.end_offset = log.durable_snapshot_offset();
        out.snapshot_id.epoch = 0;
        continue;
      }
      if (p.fetch_offset > log.durable_end_offset()) {
        out.error_code = static_cast<int16_t>(ErrorCode::kOffsetOutOfRange);
        continue;
      }
      // Records up to the partition's byte limit (at least one).
      std::vector<std::string> values;
      size_t bytes = 0;
      log.read(p.fetch_offset, [&](int64_t, std::string_view record) {
        if (!values.empty() && bytes + record.size() > static_cast<size_t>(std::max(p.partition_max_bytes, 1)))
          return false;
        bytes += record.size();
        values.emplace_back(record);
        return true;
      });
      if (!values.empty()) out.records = protocol::Records(batches.emplace_back(protocol::build_record_batch(p.fetch_offset, 0, 0, values)));
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
