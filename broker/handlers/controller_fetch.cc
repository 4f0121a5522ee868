// Fetch (key 1) on the controller listener: brokers follow the metadata log
// (topic __cluster_metadata, partition 0) from the offset after the last
// record they applied, as Kafka's brokers fetch it from the KRaft leader. The
// records come as one uncompressed batch of framed metadata records; a
// broker asking for records a snapshot has replaced is pointed at the
// snapshot (SnapshotId) and loads it with FetchSnapshot. An up-to-date broker
// waits up to MaxWaitMs for the next commit (long poll), so a change reaches
// every broker within milliseconds.
//
// In a quorum of several controllers the other voters fetch the same way,
// with their replica id, the epoch they know and the epoch of their last
// record: they get every durable record (brokers only committed ones), one
// batch per leader epoch, are told where their copy diverges
// (DivergingEpoch), and their fetch offsets move the high watermark
// (broker/quorum_peer.h). A voter that does not lead answers
// NOT_LEADER_OR_FOLLOWER with the leader it knows (CurrentLeader).
#include <chrono>
#include <deque>
#include <optional>
#include <utility>

#include "broker/handlers/handlers.h"
#include "broker/metadata_publisher.h"
#include "broker/quorum_peer.h"
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
  QuorumPeer* quorum = ctx.broker.quorum;

  const FetchRequest::FetchTopic::FetchPartition* wanted = nullptr;
  for (const auto& t : request.topics)
    if (t.topic == controller::kMetadataTopic)
      for (const auto& p : t.partitions)
        if (p.partition == 0) wanted = &p;

  const int32_t replica = request.replica_state.replica_id >= 0 ? request.replica_state.replica_id : request.replica_id;
  const bool from_voter = quorum && replica >= 0 && replica != quorum->node_id() && quorum->is_voter(replica);
  const int64_t wall_now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch()).count();

  // What the fetch is answered about the quorum, decided before waiting.
  ErrorCode refusal = ErrorCode::kNone;
  if (wanted && quorum) {
    if (!controller.active())
      refusal = ErrorCode::kNotLeaderOrFollower;  // current_leader says where to go
    else if (from_voter && wanted->current_leader_epoch >= 0 && wanted->current_leader_epoch < quorum->epoch())
      refusal = ErrorCode::kFencedLeaderEpoch;
    else if (from_voter && wanted->current_leader_epoch > quorum->epoch())
      refusal = ErrorCode::kUnknownLeaderEpoch;
  }
  // A voter's copy must match the leader's below its fetch offset: the epoch
  // of its last record has to end at or after it here (KIP-595's check).
  // At the snapshot's end, that check is against the snapshot's epoch: a copy
  // whose last record is of another epoch loads the snapshot instead.
  std::optional<std::pair<int32_t, int64_t>> diverging;
  bool needs_snapshot = wanted && wanted->fetch_offset < log.durable_snapshot_offset();
  if (wanted && from_voter && refusal == ErrorCode::kNone && !needs_snapshot && wanted->fetch_offset > 0) {
    const int64_t snapshot = log.durable_snapshot_offset();
    if (wanted->fetch_offset == snapshot) {
      needs_snapshot = wanted->last_fetched_epoch != log.epoch_of(snapshot - 1);
    } else {
      const auto [epoch, end] = log.end_offset_for_epoch(wanted->last_fetched_epoch);
      if (epoch < 0) {
        // No epoch this early here: the copy's records are all unknown to this
        // log past its snapshot (or all of them). Never {-1, -1}: that reads as
        // "no divergence".
        if (snapshot > 0)
          needs_snapshot = true;
        else
          diverging = std::make_pair(-1, int64_t{0});
      } else if (epoch != wanted->last_fetched_epoch || end < wanted->fetch_offset) {
        diverging = std::make_pair(epoch, end);
      }
    }
  }
  if (wanted && replica >= 0 && refusal == ErrorCode::kNone && !diverging && !needs_snapshot) {
    if (from_voter)
      quorum->on_voter_fetch(replica, wanted->fetch_offset, wall_now);
    else  // a broker: an observer of the quorum (DescribeQuorum shows its progress)
      controller.note_observer_fetch(replica, wanted->fetch_offset, wall_now);
  }

  // Voters get every durable record; brokers only what is committed (a crash,
  // or a new quorum leader, cannot take that back).
  auto readable_end = [&] { return from_voter ? log.durable_end_offset() : controller.committed_offset(); };
  // Nothing to give yet: wait for the next record (or, for a voter, a new
  // high watermark to pass on) until MaxWaitMs.
  if (wanted && refusal == ErrorCode::kNone && !diverging && !needs_snapshot && wanted->fetch_offset >= readable_end() &&
      request.max_wait_ms > 0) {
    const int64_t committed_then = controller.committed_offset();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(request.max_wait_ms);
    while (std::chrono::steady_clock::now() < deadline && wanted->fetch_offset >= readable_end() &&
           !(from_voter && controller.committed_offset() != committed_then) && controller.active()) {
      AsyncEvent committed(ctx.broker.executor);
      ctx.broker.metadata_publisher->wait_for_commit(&committed);
      co_await committed.wait_until(deadline);
      ctx.broker.metadata_publisher->stop_waiting(&committed);
    }
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
      if (quorum) {
        out.current_leader.leader_id = quorum->leader_id();
        out.current_leader.leader_epoch = quorum->epoch();
      }
      if (refusal != ErrorCode::kNone || (quorum && !controller.active())) {
        out.error_code = static_cast<int16_t>(refusal != ErrorCode::kNone ? refusal : ErrorCode::kNotLeaderOrFollower);
        continue;
      }
      const int64_t end = readable_end();
      out.high_watermark = controller.committed_offset();
      out.last_stable_offset = controller.committed_offset();
      out.log_start_offset = log.durable_snapshot_offset();
      if ((&p == wanted && needs_snapshot) || p.fetch_offset < log.durable_snapshot_offset()) {
        out.snapshot_id.end_offset = log.durable_snapshot_offset();
        out.snapshot_id.epoch = log.epoch_of(log.durable_snapshot_offset() - 1);
        continue;
      }
      if (&p == wanted && diverging) {
        out.diverging_epoch.epoch = diverging->first;
        out.diverging_epoch.end_offset = diverging->second;
        continue;
      }
      if (p.fetch_offset > end) {
        // Past what is committed but in the log (a broker that followed the
        // previous leader, before this one's first commit): nothing yet.
        if (p.fetch_offset > log.durable_end_offset())
          out.error_code = static_cast<int16_t>(ErrorCode::kOffsetOutOfRange);
        continue;
      }
      // Records up to the partition's byte limit (at least one), one batch
      // per leader epoch so that a voter appends each in its epoch.
      std::string& batch_bytes = batches.emplace_back();
      std::vector<std::string> values;
      int64_t batch_start = p.fetch_offset;
      int32_t batch_epoch = -1;
      int64_t epoch_end = -1;  // where batch_epoch's records end in the log
      size_t bytes = 0;
      auto flush = [&] {
        if (values.empty()) return;
        batch_bytes += protocol::build_record_batch(batch_start, batch_epoch, 0, values);
        values.clear();
      };
      log.read(p.fetch_offset, [&](int64_t offset, std::string_view record) {
        if (bytes > 0 && bytes + record.size() > static_cast<size_t>(std::max(p.partition_max_bytes, 1))) return false;
        if (offset >= epoch_end) {  // the epochs table is looked up once per epoch, not per record
          const int32_t epoch = log.epoch_of(offset);
          epoch_end = log.end_offset_for_epoch(epoch).second;
          if (epoch != batch_epoch) {
            flush();
            batch_start = offset;
            batch_epoch = epoch;
          }
        }
        bytes += record.size();
        values.emplace_back(record);
        return true;
      }, end);
      flush();
      if (!batch_bytes.empty()) out.records = protocol::Records(batch_bytes);
    }
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
