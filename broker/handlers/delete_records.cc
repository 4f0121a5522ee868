// DeleteRecords (key 21): raises partitions' log start offsets (the low
// watermark). Records below it are no longer served; segments wholly below it
// are deleted. -1 means "up to the high watermark".
#include "broker/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/delete_records_request.h"
#include "protocol/messages/delete_records_response.h"

namespace sluice::broker {

using protocol::DeleteRecordsRequest;
using protocol::DeleteRecordsResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_delete_records(RequestContext& ctx) {
  constexpr int64_t kHighWatermark = -1;
  auto request = ctx.decode<DeleteRecordsRequest>();
  DeleteRecordsResponse reply;
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.topics.emplace_back();
    topic_reply.name = topic.name;
    for (const auto& wanted : topic.partitions) {
      auto& out = topic_reply.partitions.emplace_back();
      out.partition_index = wanted.partition_index;
      out.low_watermark = -1;
      ErrorCode not_here = ErrorCode::kNone;
      Partition* partition = ctx.broker.replicas.find_led(topic.name, wanted.partition_index, not_here);
      if (!partition) {
        out.error_code = static_cast<int16_t>(not_here);
        continue;
      }
      const int64_t offset = wanted.offset == kHighWatermark ? partition->high_watermark() : wanted.offset;
      if (offset < 0 || offset > partition->high_watermark()) {
        out.error_code = static_cast<int16_t>(ErrorCode::kOffsetOutOfRange);
        continue;
      }
      try {
        ctx.broker.replicas.delete_records_before(*partition, offset);
      } catch (const std::exception&) {
        out.error_code = static_cast<int16_t>(ErrorCode::kKafkaStorageError);
        continue;
      }
      out.low_watermark = partition->log->log_start_offset();
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
