// CreateTopics (key 19): topic creation through the controller, with Kafka's
// validation and, from v5, the created topic's partition count, replication
// factor and configs in the reply.
#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "broker/topic_settings.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"

namespace sluice::broker {
namespace {

using protocol::CreateTopicsRequest;
using protocol::CreateTopicsResponse;
using protocol::ErrorCode;
using Result = CreateTopicsResponse::CreatableTopicResult;
using CreatableTopic = CreateTopicsRequest::CreatableTopic;

void describe_configs(const BrokerConfig& config, const controller::TopicInfo& topic, Result& result) {
  auto& configs = result.configs.emplace();
  for (const auto& def : controller::topic_config_definitions()) {
    EffectiveConfig effective = effective_topic_config(config, topic, def);
    Result::CreatableTopicConfigs entry;
    entry.name = def.name;
    entry.value = effective.value;
    entry.config_source = static_cast<int8_t>(effective.source);
    configs.push_back(std::move(entry));
  }
}

// Creates one topic of the request, or with `validate_only` says whether it
// would be created.
Result create_one(RequestContext& ctx, const CreatableTopic& topic, bool duplicate, bool validate_only) {
  Broker& broker = ctx.broker;
  Result result;
  result.name = topic.name;
  result.error_message = std::nullopt;
  auto fail = [&](ErrorCode code, std::string message) {
    result.error_code = static_cast<int16_t>(code);
    result.error_message = std::move(message);
  };
  std::map<std::string, std::string> configs;
  bool null_config = false;
  for (const auto& c : topic.configs) {
    if (!c.value) null_config = true;
    else configs[c.name] = *c.value;
  }
  if (duplicate) {
    fail(ErrorCode::kInvalidRequest, "Create topics request contains multiple entries for the topic " + topic.name);
    return result;
  }
  if (null_config) {
    fail(ErrorCode::kInvalidRequest, "Null value not supported for topic configs");
    return result;
  }
  std::vector<std::vector<int32_t>> assignments;
  for (const auto& a : topic.assignments) {
    if (a.partition_index != static_cast<int32_t>(assignments.size())) {
      fail(ErrorCode::kInvalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence");
      return result;
    }
    assignments.push_back(a.broker_ids);
  }
  const controller::TopicInfo* created = nullptr;
  auto outcome = broker.controller->create_topic(topic.name, topic.num_partitions, topic.replication_factor, assignments,
                                                configs, validate_only, &created);
  if (!outcome.ok()) {
    fail(outcome.error, outcome.message);
    return result;
  }
  // validate_only creates nothing: describe what would have been created.
  controller::TopicInfo would_be;
  if (!created) {
    would_be.name = topic.name;
    const int32_t count = assignments.empty()
                              ? (topic.num_partitions == -1 ? broker.config.get_int("num.partitions") : topic.num_partitions)
                              : static_cast<int32_t>(assignments.size());
    const int16_t replication_factor =
        assignments.empty()
            ? (topic.replication_factor == -1 ? static_cast<int16_t>(broker.config.get_int("default.replication.factor"))
                                              : topic.replication_factor)
            : static_cast<int16_t>(assignments[0].size());
    // Validation bounded both by the live brokers and the records a request may make.
    controller::PartitionState unplaced;
    unplaced.replicas.assign(replication_factor, -1);
    would_be.partitions.assign(count, unplaced);
    would_be.configs = configs;
    created = &would_be;
  }
  result.topic_id = created->id;
  result.num_partitions = created->partition_count();
  result.replication_factor = created->replication_factor();
  if (ctx.api_version >= 5) describe_configs(broker.config, *created, result);
  return result;
}

// Why the request is refused whole (POLICY_VIOLATION for every topic in it,
// as from Kafka), if it is: first the partitions every topic asks for,
// existing or not; then the records of the topics that would be created.
std::optional<std::string> request_too_large(RequestContext& ctx, const CreateTopicsRequest& request,
                                             const std::map<std::string, int>& mentions) {
  int64_t asked = 0, records_if_all_created = 0;
  for (const auto& topic : request.topics) {
    int64_t partitions = 0;
    if (!topic.assignments.empty()) partitions = static_cast<int64_t>(topic.assignments.size());
    else if (topic.num_partitions == -1) partitions = ctx.broker.config.get_int("num.partitions");
    else partitions = std::max(topic.num_partitions, 0);
    asked += partitions;
    records_if_all_created += 1 + partitions + static_cast<int64_t>(topic.configs.size());
  }
  if (asked > controller::kMaxRecordsPerRequest) return "Excessively large number of partitions per request.";
  // Only a request that could pass the bound needs the dry run of each topic.
  if (records_if_all_created <= controller::kMaxRecordsPerRequest) return std::nullopt;
  int64_t records = 0;
  for (const auto& topic : request.topics) {
    Result would_be = create_one(ctx, topic, mentions.at(topic.name) > 1, /*validate_only=*/true);
    if (would_be.error_code == 0) records += 1 + would_be.num_partitions + static_cast<int64_t>(topic.configs.size());
  }
  if (records > controller::kMaxRecordsPerRequest) return "Unable to perform excessively large batch operation.";
  return std::nullopt;
}

}  // namespace

boost::asio::awaitable<void> handle_create_topics(RequestContext& ctx) {
  auto request = ctx.decode<CreateTopicsRequest>();
  if (!ctx.broker.controller) {
    co_await forward_to_controller<CreateTopicsResponse>(ctx, request, [&](CreateTopicsResponse& reply, ErrorCode code) {
      for (const auto& t : request.topics) {
        auto& result = reply.topics.emplace_back();
        result.name = t.name;
        result.error_code = static_cast<int16_t>(code);
      }
    });
    co_return;
  }
  std::map<std::string, int> mentions;
  for (const auto& topic : request.topics) ++mentions[topic.name];
  // A name whose deletion is not durable yet is created again only once it
  // is: the new topic's logs must not meet the old one's.
  const controller::Controller& controller = *ctx.broker.controller;
  for (const auto& topic : request.topics)
    if (ctx.broker.metadata.find_topic(topic.name) && !controller.find_topic(topic.name)) {
      co_await metadata_changes_durable(ctx.broker);
      break;
    }

  CreateTopicsResponse reply;
  if (auto refusal = request_too_large(ctx, request, mentions)) {
    for (const auto& topic : request.topics) {
      Result& result = reply.topics.emplace_back();
      result.name = topic.name;
      result.error_code = static_cast<int16_t>(ErrorCode::kPolicyViolation);
      result.error_message = *refusal;
    }
  } else {
    for (const auto& topic : request.topics)
      reply.topics.push_back(create_one(ctx, topic, mentions[topic.name] > 1, request.validate_only));
  }
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
