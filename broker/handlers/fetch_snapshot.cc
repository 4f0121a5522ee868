// FetchSnapshot (key 59) on the controller listener: a broker whose next
// metadata offset a snapshot has replaced loads the snapshot (every record
// that rebuilds the image there) and follows the log from its end offset.
// The whole snapshot comes in one answer, as one uncompressed batch: the
// image of a cluster is small next to Fetch's size limits.
#include <deque>

#include "broker/handlers/handlers.h"
#include "controller/metadata_log.h"
#include "protocol/messages/fetch_snapshot_request.h"
#include "protocol/messages/fetch_snapshot_response.h"
#include "protocol/record_batch.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::FetchSnapshotRequest;
using protocol::FetchSnapshotResponse;

boost::asio::awaitable<void> handle_fetch_snapshot(RequestContext& ctx) {
  auto request = ctx.decode<FetchSnapshotRequest>();
  const controller::MetadataLog& log = ctx.broker.controller->log();
  FetchSnapshotResponse reply;
  std::deque<std::string> batches;  // what reply's records point into, until it is encoded
  for (const auto& t : request.topics) {
    auto& topic = reply.topics.emplace_back();
    topic.name = t.name;
    for (const auto& p : t.partitions) {
      auto& out = topic.partitions.emplace_back();
      out.index = p.partition;
      out.snapshot_id = {p.snapshot_id.end_offset, p.snapshot_id.epoch};
      if (t.name != controller::kMetadataTopic || p.partition != 0) {
        out.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
        continue;
      }
      // Only the latest snapshot is kept: an older one asked for is gone.
      int64_t snapshot_offset = 0;
      const auto records = log.snapshot_records(&snapshot_offset);
      if (p.snapshot_id.end_offset != snapshot_offset || snapshot_offset == 0) {
        out.error_code = static_cast<int16_t>(ErrorCode::kSnapshotNotFound);
        continue;
      }
      out.position = 0;
      if (records.empty()) continue;  // an empty image: size 0
      const std::string& batch = batches.emplace_back(protocol::build_record_batch(0, 0, 0, records));
      out.size = static_cast<int64_t>(batch.size());
      out.unaligned_records = protocol::Records(batch);
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
