// ListOffsets (key 2): the offset for a timestamp, or for the special
// timestamps -2 (earliest), -1 (latest) and -3 (the record with the largest
// timestamp, v7+).
#include <algorithm>

#include "broker/handlers/handlers.h"
#include "protocol/messages/list_offsets_request.h"
#include "protocol/messages/list_offsets_response.h"
#include "protocol/record_batch.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::ListOffsetsRequest;
using protocol::ListOffsetsResponse;

constexpr int64_t kLatest = -1;
constexpr int64_t kEarliest = -2;
constexpr int64_t kMaxTimestamp = -3;
constexpr int16_t kFirstMaxTimestampVersion = 7;

}  // namespace

boost::asio::awaitable<void> handle_list_offsets(RequestContext& ctx) {
  auto request = ctx.decode<ListOffsetsRequest>();
  ListOffsetsResponse reply;
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.topics.emplace_back();
    topic_reply.name = topic.name;
    for (const auto& wanted : topic.partitions) {
      auto& out = topic_reply.partitions.emplace_back();
      out.partition_index = wanted.partition_index;
      ErrorCode not_here = ErrorCode::kNone;
      Partition* partition = ctx.broker.replicas.find_led(topic.name, wanted.partition_index, not_here);
      if (!partition) {
        out.error_code = static_cast<int16_t>(not_here);
        continue;
      }
      if (wanted.current_leader_epoch >= 0 && wanted.current_leader_epoch < partition->leader_epoch) {
        out.error_code = static_cast<int16_t>(ErrorCode::kFencedLeaderEpoch);
        continue;
      }
      if (wanted.current_leader_epoch > partition->leader_epoch) {
        out.error_code = static_cast<int16_t>(ErrorCode::kUnknownLeaderEpoch);
        continue;
      }
      const auto& log = *partition->log;
      out.leader_epoch = partition->leader_epoch;
      if (wanted.timestamp == kLatest) {
        out.offset = partition->high_watermark();
      } else if (wanted.timestamp == kEarliest) {
        out.offset = log.log_start_offset();
      } else if (wanted.timestamp == kMaxTimestamp && ctx.api_version < kFirstMaxTimestampVersion) {
        out.error_code = static_cast<int16_t>(ErrorCode::kUnsupportedVersion);
      } else if (wanted.timestamp == kMaxTimestamp) {
        // The first record carrying the largest timestamp, as Kafka 3.9 answers.
        if (auto max = log.max_timestamp_batch()) {
          std::string batch = log.read(max->second, 1, true);
          auto found = protocol::find_record_by_timestamp(batch, max->first);
          out.timestamp = max->first;
          out.offset = found ? found->first : max->second;
        }
      } else if (wanted.timestamp < 0) {
        // Other negative values (e.g. -4, -5 of later versions) are not defined for v1-7.
        out.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
      } else if (auto base = log.offset_for_timestamp(wanted.timestamp)) {
        // The first batch that reaches the time; then the first record in it that does.
        const int64_t start = log.log_start_offset();
        std::string batch = log.read(std::max(*base, start), 1, true);
        if (auto found = protocol::find_record_by_timestamp(batch, wanted.timestamp, start)) {
          out.offset = found->first;
          out.timestamp = found->second;
        }
      }
      // No record at or after the timestamp: offset and timestamp stay -1, as in Kafka.
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
