// DescribeConfigs (key 32): every config of a topic or of this broker, with its
// value, where that value comes from, its synonyms and (v3+) its type.
#include <algorithm>

#include "broker/handlers/handlers.h"
#include "broker/topic_settings.h"
#include "controller/topic_config.h"
#include "protocol/messages/describe_configs_request.h"
#include "protocol/messages/describe_configs_response.h"

namespace sluice::broker {
namespace {

using protocol::DescribeConfigsRequest;
using protocol::DescribeConfigsResponse;
using protocol::ErrorCode;
using Result = DescribeConfigsResponse::DescribeConfigsResult;
using Entry = Result::DescribeConfigsResourceResult;

constexpr int8_t kTopicResource = 2;
constexpr int8_t kBrokerResource = 4;
constexpr int8_t kBrokerLoggerResource = 8;
constexpr int8_t kGroupResource = 32;

bool wanted(const DescribeConfigsRequest::DescribeConfigsResource& resource, std::string_view name) {
  if (!resource.configuration_keys) return true;
  const auto& keys = *resource.configuration_keys;
  return std::find(keys.begin(), keys.end(), name) != keys.end();
}

Entry make_entry(std::string name, std::optional<std::string> value, ConfigSource source, ConfigType type,
                 bool read_only) {
  Entry e;
  e.name = std::move(name);
  e.value = std::move(value);
  e.config_source = static_cast<int8_t>(source);
  e.is_default = source == ConfigSource::kDefault;
  e.read_only = read_only;
  e.is_sensitive = type == ConfigType::kPassword;
  if (e.is_sensitive) e.value = std::nullopt;
  e.config_type = static_cast<int8_t>(type);
  e.documentation = std::nullopt;
  return e;
}

// `documentation`: v3+ asked for it; only Sluice's own keys carry any.
void describe_topic(const Broker& broker, const controller::TopicInfo& topic,
                    const DescribeConfigsRequest::DescribeConfigsResource& resource, bool synonyms, bool documentation,
                    Result& result) {
  for (const auto& def : controller::topic_config_definitions()) {
    if (!wanted(resource, def.name)) continue;
    EffectiveConfig effective = effective_topic_config(broker.config, topic, def);
    Entry e = make_entry(def.name, effective.value, effective.source, def.type, false);
    if (documentation && def.documentation) e.documentation = def.documentation;
    if (synonyms) {
      // Most specific first: the topic's own value, the broker's, the default.
      if (auto it = topic.configs.find(def.name); it != topic.configs.end())
        e.synonyms.push_back({def.name, it->second, static_cast<int8_t>(ConfigSource::kDynamicTopic)});
      if (!effective.synonym.empty())
        e.synonyms.push_back({effective.synonym, broker.config.get_string(effective.synonym),
                              static_cast<int8_t>(ConfigSource::kStaticBroker)});
      const char* default_name = def.broker_synonym ? def.broker_synonym : def.name;
      e.synonyms.push_back({default_name, std::string(def.default_value), static_cast<int8_t>(ConfigSource::kDefault)});
    }
    result.configs.push_back(std::move(e));
  }
}

void describe_broker(const Broker& broker, const DescribeConfigsRequest::DescribeConfigsResource& resource,
                     bool synonyms, Result& result) {
  for (const auto& def : BrokerConfig::definitions()) {
    if (!wanted(resource, def.name)) continue;
    ConfigSource source = broker.config.source(def.name);
    // Dynamic broker configs are not supported yet: everything is read-only.
    Entry e = make_entry(def.name, broker.config.value(def.name), source, def.type, true);
    if (synonyms) {
      if (source == ConfigSource::kStaticBroker)
        e.synonyms.push_back({def.name, broker.config.value(def.name), static_cast<int8_t>(ConfigSource::kStaticBroker)});
      if (def.default_value)
        e.synonyms.push_back({def.name, std::string(def.default_value), static_cast<int8_t>(ConfigSource::kDefault)});
    }
    result.configs.push_back(std::move(e));
  }
  // The dynamic ones that are set (Kafka lists no others): this broker's
  // value, else every broker's.
  const std::string self = std::to_string(broker.config.node_id());
  const auto* own = broker.metadata.broker_configs(self);
  const auto* all = broker.metadata.broker_configs("");
  for (const auto& def : controller::dynamic_broker_config_definitions()) {
    if (!wanted(resource, def.name)) continue;
    std::vector<std::pair<std::string, ConfigSource>> layers;  // most specific first
    if (own && own->count(def.name)) layers.emplace_back(own->at(def.name), ConfigSource::kDynamicBroker);
    if (all && all->count(def.name)) layers.emplace_back(all->at(def.name), ConfigSource::kDynamicDefaultBroker);
    if (layers.empty()) continue;
    layers.emplace_back(def.default_value, ConfigSource::kDefault);
    Entry e = make_entry(def.name, layers.front().first, layers.front().second, def.type, false);
    if (synonyms)
      for (const auto& [value, source] : layers) e.synonyms.push_back({def.name, value, static_cast<int8_t>(source)});
    result.configs.push_back(std::move(e));
  }
}

// A group's configs: its own, else the broker's group.share.* key, else Kafka's default.
void describe_group(const Broker& broker, const DescribeConfigsRequest::DescribeConfigsResource& resource,
                    bool synonyms, bool documentation, Result& result) {
  const auto* own = broker.metadata.group_configs(resource.resource_name);
  for (const auto& def : controller::group_config_definitions()) {
    if (!wanted(resource, def.name)) continue;
    std::vector<std::pair<std::string, ConfigSource>> layers;  // most specific first
    if (own && own->count(def.name)) layers.emplace_back(own->at(def.name), ConfigSource::kDynamicGroup);
    if (def.broker_synonym && broker.config.source(def.broker_synonym) == ConfigSource::kStaticBroker)
      layers.emplace_back(broker.config.get_string(def.broker_synonym), ConfigSource::kStaticBroker);
    layers.emplace_back(def.default_value, ConfigSource::kDefault);
    Entry e = make_entry(def.name, layers.front().first, layers.front().second, def.type, false);
    if (documentation && def.documentation) e.documentation = def.documentation;
    if (synonyms)
      for (const auto& [value, source] : layers) e.synonyms.push_back({def.name, value, static_cast<int8_t>(source)});
    result.configs.push_back(std::move(e));
  }
}

}  // namespace

boost::asio::awaitable<void> handle_describe_configs(RequestContext& ctx) {
  auto request = ctx.decode<DescribeConfigsRequest>();
  const Broker& broker = ctx.broker;
  const bool synonyms = ctx.api_version >= 1 && request.include_synonyms;
  const bool documentation = ctx.api_version >= 3 && request.include_documentation;

  DescribeConfigsResponse reply;
  for (const auto& resource : request.resources) {
    Result result;
    result.resource_type = resource.resource_type;
    result.resource_name = resource.resource_name;
    result.error_message = std::nullopt;
    auto fail = [&](ErrorCode code, std::string message) {
      result.error_code = static_cast<int16_t>(code);
      result.error_message = std::move(message);
    };
    if (resource.resource_type == kTopicResource) {
      const controller::TopicInfo* topic = broker.metadata.find_topic(resource.resource_name);
      if (!topic && controller::invalid_topic_name_reason(resource.resource_name))
        fail(ErrorCode::kInvalidTopicException, *controller::invalid_topic_name_reason(resource.resource_name));
      else if (!topic)
        fail(ErrorCode::kUnknownTopicOrPartition, "The topic '" + resource.resource_name + "' does not exist.");
      else
        describe_topic(broker, *topic, resource, synonyms, documentation, result);
    } else if (resource.resource_type == kBrokerResource || resource.resource_type == kBrokerLoggerResource) {
      const std::string self = std::to_string(broker.config.node_id());
      if (!resource.resource_name.empty() && resource.resource_name != self)
        fail(ErrorCode::kInvalidRequest, "Unexpected broker id, expected " + self + " or empty string, but received " +
                                             resource.resource_name);
      else if (resource.resource_type == kBrokerResource)
        describe_broker(broker, resource, synonyms, result);
      // Broker loggers: none are configurable yet, so the list is empty.
    } else if (resource.resource_type == kGroupResource) {
      describe_group(broker, resource, synonyms, documentation, result);
    } else {
      fail(ErrorCode::kInvalidRequest, "Unsupported resource type " + std::to_string(resource.resource_type));
    }
    reply.results.push_back(std::move(result));
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
