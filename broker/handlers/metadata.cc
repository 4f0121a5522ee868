// Metadata (key 3): brokers, controller, and the topics and partitions a client
// asked about, creating unknown topics when the client and the broker allow it.
#include <algorithm>
#include <set>
#include <string_view>

#include "broker/cluster_view.h"
#include "broker/handlers/handlers.h"
#include "controller/controller.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/metadata_response.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::MetadataRequest;
using protocol::MetadataResponse;
using Topic = MetadataResponse::MetadataResponseTopic;
using PartitionInfo = Topic::MetadataResponsePartition;

Topic describe(const Broker& broker, const controller::TopicInfo& info, bool include_operations) {
  Topic topic;
  topic.name = info.name;
  topic.topic_id = info.id;
  topic.is_internal = controller::is_internal_topic(info.name);
  topic.topic_authorized_operations = include_operations ? kTopicAuthorizedOperations : kAuthorizedOperationsOmitted;
  const std::vector<int32_t> live = broker.metadata.unfenced_brokers();
  for (int32_t p = 0; p < info.partition_count(); ++p) {
    const controller::PartitionState& state = info.partitions[p];
    PartitionInfo partition;
    partition.partition_index = p;
    partition.leader_id = state.leader;
    partition.leader_epoch = state.leader_epoch;
    partition.replica_nodes = state.replicas;
    partition.isr_nodes = state.isr;
    for (int32_t id : state.replicas)
      if (std::find(live.begin(), live.end(), id) == live.end()) partition.offline_replicas.push_back(id);
    // As Kafka: a partition without a leader is listed with LEADER_NOT_AVAILABLE.
    if (state.leader < 0) partition.error_code = static_cast<int16_t>(protocol::ErrorCode::kLeaderNotAvailable);
    topic.partitions.push_back(std::move(partition));
  }
  return topic;
}

Topic topic_error(ErrorCode error, std::optional<std::string> name, protocol::Uuid id = {}) {
  Topic topic;
  topic.error_code = static_cast<int16_t>(error);
  topic.name = std::move(name);
  topic.topic_id = id;
  return topic;
}

// Whether the topics this request would auto-create take more metadata
// records than one request may. Kafka then creates none of them and answers
// UNKNOWN_TOPIC_OR_PARTITION for each.
bool auto_create_too_large(Broker& broker, const std::vector<MetadataRequest::MetadataRequestTopic>& wanted) {
  std::set<std::string_view> missing;
  for (const auto& topic : wanted)
    if (topic.name && !broker.metadata.find_topic(*topic.name) && !controller::invalid_topic_name_reason(*topic.name))
      missing.insert(*topic.name);
  const int64_t per_topic = 1 + std::max<int64_t>(broker.config.get_int("num.partitions"), 0);
  return static_cast<int64_t>(missing.size()) * per_topic > controller::kMaxRecordsPerRequest;
}

// Auto-creation on a broker-only node: CreateTopics to the controller with
// the defaults.
boost::asio::awaitable<ErrorCode> create_on_controller(Broker& broker, const std::string& name) {
  protocol::CreateTopicsRequest request;
  auto& topic = request.topics.emplace_back();
  topic.name = name;
  topic.num_partitions = -1;
  topic.replication_factor = -1;
  request.timeout_ms = 30'000;
  try {
    auto reply = co_await broker.controller_link->call<protocol::CreateTopicsResponse>(request, 7);
    co_return reply.body.topics.empty() ? ErrorCode::kUnknownServerError
                                        : static_cast<ErrorCode>(reply.body.topics[0].error_code);
  } catch (const std::exception&) {
    co_return ErrorCode::kLeaderNotAvailable;  // the controller unreachable: the client retries
  }
}

}  // namespace

boost::asio::awaitable<void> handle_metadata(RequestContext& ctx) {
  auto request = ctx.decode<MetadataRequest>();
  Broker& broker = ctx.broker;
  const bool include_topic_ops = request.include_topic_authorized_operations;

  MetadataResponse reply;
  for (const auto& b : advertised_brokers(broker)) reply.brokers.push_back({b.node_id, b.host, b.port, std::nullopt});
  reply.cluster_id = broker.cluster_id;
  reply.controller_id = active_controller_id(broker);
  reply.cluster_authorized_operations =
      request.include_cluster_authorized_operations ? kClusterAuthorizedOperations : kAuthorizedOperationsOmitted;

  // v0: an empty list means every topic; v1+: null means every topic.
  const bool all_topics = !request.topics || (ctx.api_version == 0 && request.topics->empty());
  if (all_topics) {
    for (const auto& [name, info] : broker.metadata.topics()) reply.topics.push_back(describe(broker, info, include_topic_ops));
  } else {
    // Before v4 the request has no flag: auto-creation follows the broker setting.
    bool may_create = (ctx.api_version < 4 || request.allow_auto_topic_creation) &&
                      broker.config.get_bool("auto.create.topics.enable");
    if (may_create && auto_create_too_large(broker, *request.topics)) may_create = false;
    for (const auto& wanted : *request.topics) {
      if (!wanted.name) {
        // v10+: a topic asked for by id only.
        const controller::TopicInfo* info = broker.metadata.find_topic(wanted.topic_id);
        reply.topics.push_back(info ? describe(broker, *info, include_topic_ops)
                                    : topic_error(ErrorCode::kUnknownTopicId, std::nullopt, wanted.topic_id));
        continue;
      }
      const std::string& name = *wanted.name;
      const controller::TopicInfo* info = broker.metadata.find_topic(name);
      if (!info && controller::invalid_topic_name_reason(name)) {
        reply.topics.push_back(topic_error(ErrorCode::kInvalidTopicException, name));
        continue;
      }
      if (!info && may_create && broker.controller) {
        // Already there: created by a request whose change is not durable yet.
        auto result = broker.controller->create_topic(name, -1, -1, {}, {}, false);
        if (!result.ok() && result.error != ErrorCode::kTopicAlreadyExists) {
          reply.topics.push_back(topic_error(result.error, name));
          continue;
        }
        co_await metadata_changes_durable(broker);
        info = broker.metadata.find_topic(name);
        if (!info) {  // deleted again meanwhile
          reply.topics.push_back(topic_error(ErrorCode::kLeaderNotAvailable, name));
          continue;
        }
      } else if (!info && may_create) {
        // A broker-only node asks its controller, and answers
        // LEADER_NOT_AVAILABLE (retriable) until the topic reaches it through
        // the metadata log, as Kafka's brokers do.
        const ErrorCode created = co_await create_on_controller(broker, name);
        reply.topics.push_back(topic_error(
            created == ErrorCode::kNone || created == ErrorCode::kTopicAlreadyExists ? ErrorCode::kLeaderNotAvailable
                                                                                      : created,
            name));
        continue;
      }
      reply.topics.push_back(info ? describe(broker, *info, include_topic_ops)
                                  : topic_error(ErrorCode::kUnknownTopicOrPartition, name));
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
