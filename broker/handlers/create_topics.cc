// CreateTopics (key 19): topic creation through the controller, with Kafka's
// validation and, from v5, the created topic's partition count, replication
// factor and configs in the reply.
#include <map>
#include <set>

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

}  // namespace

boost::asio::awaitable<void> handle_create_topics(RequestContext& ctx) {
  auto request = ctx.decode<CreateTopicsRequest>();
  Broker& broker = ctx.broker;

  std::map<std::string, int> mentions;
  for (const auto& topic : request.topics) ++mentions[topic.name];

  CreateTopicsResponse reply;
  for (const auto& topic : request.topics) {
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
    if (mentions[topic.name] > 1) {
      fail(ErrorCode::kInvalidRequest, "Create topics request contains multiple entries for the topic " + topic.name);
    } else if (null_config) {
      fail(ErrorCode::kInvalidRequest, "Null value not supported for topic configs");
    } else {
      std::vector<std::vector<int32_t>> assignments;
      for (const auto& a : topic.assignments) {
        if (a.partition_index != static_cast<int32_t>(assignments.size())) {
          assignments.clear();
          fail(ErrorCode::kInvalidReplicaAssignment, "Partitions should be a consecutive 0-based integer sequence");
          break;
        }
        assignments.push_back(a.broker_ids);
      }
      if (result.error_code == 0) {
        const controller::TopicInfo* created = nullptr;
        auto outcome = broker.controller.create_topic(topic.name, topic.num_partitions, topic.replication_factor,
                                                      assignments, configs, request.validate_only, &created);
        if (!outcome.ok()) {
          fail(outcome.error, outcome.message);
        } else {
          // validate_only creates nothing: describe what would have been created.
          controller::TopicInfo would_be;
          if (!created) {
            would_be.name = topic.name;
            would_be.partitions = assignments.empty() ? (topic.num_partitions == -1 ? broker.config.get_int("num.partitions")
                                                                                     : topic.num_partitions)
                                                      : static_cast<int32_t>(assignments.size());
            would_be.replication_factor =
                assignments.empty() ? (topic.replication_factor == -1
                                           ? static_cast<int16_t>(broker.config.get_int("default.replication.factor"))
                                           : topic.replication_factor)
                                    : static_cast<int16_t>(assignments[0].size());
            would_be.configs = configs;
            created = &would_be;
          }
          result.topic_id = created->id;
          result.num_partitions = created->partitions;
          result.replication_factor = created->replication_factor;
          if (ctx.api_version >= 5) describe_configs(broker.config, *created, result);
        }
      }
    }
    reply.topics.push_back(std::move(result));
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
