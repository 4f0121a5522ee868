// DeleteTopics (key 20): by name (v1-5) or by name or topic id (v6).
#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/delete_topics_request.h"
#include "protocol/messages/delete_topics_response.h"

namespace sluice::broker {
namespace {

using protocol::DeleteTopicsRequest;
using protocol::DeleteTopicsResponse;
using protocol::ErrorCode;
using Result = DeleteTopicsResponse::DeletableTopicResult;

constexpr int16_t kFirstVersionWithIds = 6;

}  // namespace

boost::asio::awaitable<void> handle_delete_topics(RequestContext& ctx) {
  auto request = ctx.decode<DeleteTopicsRequest>();
  if (!ctx.broker.controller) {
    co_await forward_to_controller<DeleteTopicsResponse>(ctx, request, [&](DeleteTopicsResponse& reply, ErrorCode code) {
      for (const auto& name : request.topic_names) reply.responses.push_back({name, {}, static_cast<int16_t>(code)});
      for (const auto& t : request.topics) reply.responses.push_back({t.name, t.topic_id, static_cast<int16_t>(code)});
    });
    co_return;
  }
  Broker& broker = ctx.broker;
  const bool deletion_enabled = broker.config.get_bool("delete.topic.enable");

  // Both request shapes become (name, id) pairs.
  std::vector<DeleteTopicsRequest::DeleteTopicState> wanted = request.topics;
  if (ctx.api_version < kFirstVersionWithIds)
    for (const auto& name : request.topic_names) wanted.push_back({name, {}});

  // The controller's own image: it runs ahead of what this node serves
  // (committed), and a topic deleted and created again meanwhile is another topic.
  const controller::MetadataImage& image = broker.controller->image();
  DeleteTopicsResponse reply;
  for (const auto& w : wanted) {
    Result result;
    result.name = w.name;
    result.topic_id = w.topic_id;
    auto fail = [&](ErrorCode code, std::string message) {
      result.error_code = static_cast<int16_t>(code);
      result.error_message = std::move(message);
    };
    const controller::TopicInfo* topic = nullptr;
    if (w.name && !w.topic_id.is_zero()) {
      fail(ErrorCode::kInvalidRequest, "Only one of topic name and topic id may be given");
    } else if (w.name) {
      topic = image.find_topic(*w.name);
      if (!topic) fail(ErrorCode::kUnknownTopicOrPartition, "This server does not host this topic-partition.");
    } else {
      topic = image.find_topic(w.topic_id);
      if (!topic) fail(ErrorCode::kUnknownTopicId, "This server does not host this topic ID.");
    }
    if (topic && !deletion_enabled) {
      fail(ErrorCode::kTopicDeletionDisabled, "Topic deletion is disabled.");
      topic = nullptr;
    }
    if (topic) {
      result.name = topic->name;
      result.topic_id = topic->id;
      std::string name = topic->name;  // the controller frees `topic`
      auto outcome = broker.controller->delete_topic(name);
      if (!outcome.ok()) fail(outcome.error, outcome.message);
    }
    reply.responses.push_back(std::move(result));
  }
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
