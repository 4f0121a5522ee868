// ShareAcknowledge (key 79): a share group member acknowledges records it
// holds without fetching (an explicit-mode commit, or closing): each
// partition's acknowledgements apply all or none and are durable before the
// answer (share_partition_manager.h). The session must exist and the epoch be
// its next one; -1 closes it afterwards, giving back what the member still holds.
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_request.h"
#include "broker/steady_clock.h"
#include "protocol/messages/share_acknowledge_request.h"
#include "protocol/messages/share_acknowledge_response.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::ShareAcknowledgeRequest;
using protocol::ShareAcknowledgeResponse;

boost::asio::awaitable<void> handle_share_acknowledge(RequestContext& ctx) {
  auto request = ctx.decode<ShareAcknowledgeRequest>();
  Broker& broker = ctx.broker;
  ShareAcknowledgeResponse reply;
  auto fail = [&](ErrorCode code, std::string message) {
    reply.error_code = static_cast<int16_t>(code);
    reply.error_message = std::move(message);
    ctx.respond(reply);
  };
  if (auto refused = refuse_share_request(broker, request.group_id, request.member_id))
    co_return fail(refused->error, refused->message);
  const std::string& group = *request.group_id;
  const std::string& member = *request.member_id;
  SharePartitionManager& manager = *broker.share_partitions;
  if (request.share_session_epoch == 0)
    co_return fail(ErrorCode::kInvalidShareSessionEpoch, "A share session cannot start with an acknowledgement.");
  if (const ErrorCode session = manager.continue_session(group, member, request.share_session_epoch, {}, {});
      session != ErrorCode::kNone)
    co_return fail(session, session_error_message(session));

  std::vector<protocol::Uuid> unknown_topics;
  const auto acknowledgements = acknowledgements_of(broker.metadata, request.topics, &unknown_topics);
  const bool renew_allowed = ctx.api_version >= 2 && request.is_renew_ack;
  std::set<SharePartitionManager::PartitionRef> used;
  for (const auto& [ref, batches] : acknowledgements) used.insert(ref);
  co_await load_share_partitions(broker, group, used);  // those it could not load answer UNKNOWN_TOPIC_OR_PARTITION
  const uint64_t since = manager.write_position();
  const auto errors = manager.acknowledge(group, member, acknowledgements, renew_allowed, steady_now_ms());
  if (request.share_session_epoch == -1) manager.close_session(group, member);
  const bool durable = co_await manager.wait_durable(since);

  for (const auto& topic : request.topics) {
    auto& topic_reply = reply.responses.emplace_back();
    topic_reply.topic_id = topic.topic_id;
    const controller::TopicInfo* info = broker.metadata.find_topic(topic.topic_id);
    for (const auto& p : topic.partitions) {
      auto& out = topic_reply.partitions.emplace_back();
      out.partition_index = p.partition_index;
      out.current_leader = {-1, -1};
      if (!info) {
        out.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicId);
        continue;
      }
      auto it = errors.find({info->name, p.partition_index});
      ErrorCode error = it == errors.end() ? ErrorCode::kNone : it->second;
      if (error == ErrorCode::kNone && !durable) error = ErrorCode::kKafkaStorageError;
      out.error_code = static_cast<int16_t>(error);
      if (error == ErrorCode::kNotLeaderOrFollower)
        point_to_leader(broker, info->name, p.partition_index, out, reply.node_endpoints);
    }
  }
  reply.acquisition_lock_timeout_ms = static_cast<int32_t>(manager.lock_duration_ms(group));
  ctx.respond(reply);
}

}  // namespace sluice::broker
