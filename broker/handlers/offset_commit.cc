// OffsetCommit (key 8): store a group's consumed positions, durably (in a
// cluster: on every in-sync replica of the group's __consumer_offsets partition).
#include <chrono>

#include "broker/offsets_topic.h"
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/offset_commit_request.h"
#include "protocol/messages/offset_commit_response.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::OffsetCommitRequest;
using protocol::OffsetCommitResponse;

boost::asio::awaitable<void> handle_offset_commit(RequestContext& ctx) {
  auto request = ctx.decode<OffsetCommitRequest>();
  Broker& broker = ctx.broker;
  GroupCoordinator& groups = broker.groups;
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  std::optional<std::string_view> instance_id;
  if (request.group_instance_id) instance_id = *request.group_instance_id;
  const ErrorCode group_error =
      groups.validate_commit({request.group_id, request.generation_id_or_member_epoch, request.member_id, instance_id});

  OffsetCommitResponse reply;
  std::map<TopicPartition, CommittedOffset> accepted;
  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.topics.emplace_back();
    topic_reply.name = topic.name;
    const controller::TopicInfo* info = broker.metadata.find_topic(topic.name);
    for (const auto& p : topic.partitions) {
      ErrorCode error = ErrorCode::kNone;
      if (!info || p.partition_index < 0 || p.partition_index >= info->partition_count())
        error = ErrorCode::kUnknownTopicOrPartition;
      else if (group_error != ErrorCode::kNone)
        error = group_error;
      else if (p.committed_metadata && p.committed_metadata->size() > static_cast<size_t>(groups.max_metadata_bytes()))
        error = ErrorCode::kOffsetMetadataTooLarge;
      if (error == ErrorCode::kNone) {
        // A null metadata string is stored as "", as Kafka does.
        accepted[{topic.name, p.partition_index}] =
            CommittedOffset{p.committed_offset, p.committed_leader_epoch, p.committed_metadata.value_or(""), now_ms};
      }
      topic_reply.partitions.push_back({p.partition_index, static_cast<int16_t>(error)});
    }
  }
  if (!accepted.empty()) {
    // Not stored (e.g. a full disk): Kafka answers a failed offsets write with
    // NOT_COORDINATOR. In a cluster the commit is acknowledged once every
    // in-sync replica of the group's __consumer_offsets partition has it.
    auto write = groups.commit(request.group_id, accepted);
    const ErrorCode stored = write ? co_await await_offset_write(broker, *write) : ErrorCode::kNotCoordinator;
    if (stored != ErrorCode::kNone)
      for (auto& topic : reply.topics)
        for (auto& p : topic.partitions)
          if (p.error_code == 0) p.error_code = static_cast<int16_t>(stored);
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
