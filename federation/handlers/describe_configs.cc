// DescribeConfigs (key 32): a topic's configs are its first member's (every
// member's part was created with the same ones), plus the endpoint's own
// `federation.split.clusters`: how many members hold the topic (read-only,
// set at creation). The endpoint's broker has no configs to show; other
// resource types are not served here.
#include <algorithm>
#include <set>
#include <stdexcept>
#include <string_view>

#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/describe_configs_request.h"
#include "protocol/messages/describe_configs_response.h"

namespace sluice::federation {
namespace {

using protocol::DescribeConfigsRequest;
using protocol::DescribeConfigsResponse;
using protocol::ErrorCode;
using Result = DescribeConfigsResponse::DescribeConfigsResult;

constexpr int16_t kForwardVersion = 4;
constexpr int8_t kTopic = 2;
constexpr int8_t kBroker = 4;
// DescribeConfigs' ConfigSource and ConfigType values (KIP-226, KIP-569).
constexpr int8_t kDynamicTopicConfig = 1;
constexpr int8_t kDefaultConfig = 5;
constexpr int8_t kIntType = 3;
constexpr char kSplitConfig[] = "federation.split.clusters";
constexpr char kSplitDocumentation[] =
    "The number of member clusters the federation endpoint split this topic over when it created it (its "
    "partitions are dealt out evenly, in order). Set at creation only.";

boost::asio::awaitable<Result> describe_topic(FederationRequest& request,
                                              const DescribeConfigsRequest::DescribeConfigsResource& resource,
                                              bool synonyms, bool documentation) {
  Federation& federation = request.federation;
  Result result;
  result.resource_type = resource.resource_type;
  result.resource_name = resource.resource_name;
  result.error_message = std::nullopt;
  const TopicPlacement* placement = federation.store().find(resource.resource_name);
  if (!placement) {
    result.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
    result.error_message = "The topic '" + resource.resource_name + "' does not exist.";
    co_return result;
  }
  std::set<std::string_view> clusters;  // a spread topic may have several segments on one member
  for (const auto& segment : placement->segments) clusters.insert(segment.cluster);
  const int32_t split = static_cast<int32_t>(clusters.size());
  // Copied: the map may change while the member answers (another endpoint's deletion).
  const std::string first_cluster = placement->segments.front().cluster;
  MemberCluster* member = federation.member(first_cluster);
  const int32_t node = member ? member->any_node() : -1;
  broker::OutboundConnection* connection = node < 0 ? nullptr : request.links.connection(*member, node);
  if (connection == nullptr) {
    result.error_code = static_cast<int16_t>(ErrorCode::kRequestTimedOut);
    result.error_message = "Member cluster " + first_cluster + " is unhealthy.";
    co_return result;
  }
  DescribeConfigsRequest forwarded;
  forwarded.resources.push_back(resource);
  forwarded.include_synonyms = synonyms;
  forwarded.include_documentation = documentation;
  try {
    auto reply = co_await connection->call<DescribeConfigsResponse>(
        forwarded, kForwardVersion, std::chrono::milliseconds(federation.config().request_timeout_ms));
    if (reply.body.results.empty()) throw std::runtime_error("an answer without the topic");
    result = reply.body.results.front();
  } catch (const std::exception& e) {
    result.error_code = static_cast<int16_t>(ErrorCode::kRequestTimedOut);
    result.error_message = "Member cluster " + first_cluster + ": " + e.what();
    co_return result;
  }
  const bool wanted = !resource.configuration_keys ||
                      std::find(resource.configuration_keys->begin(), resource.configuration_keys->end(),
                                kSplitConfig) != resource.configuration_keys->end();
  if (result.error_code == 0 && wanted) {
    auto& entry = result.configs.emplace_back();
    entry.name = kSplitConfig;
    entry.value = std::to_string(split);
    entry.read_only = true;
    entry.is_default = split == 1;
    entry.config_source = split == 1 ? kDefaultConfig : kDynamicTopicConfig;
    entry.config_type = kIntType;
    entry.documentation = documentation ? std::optional<std::string>(kSplitDocumentation) : std::nullopt;
    if (synonyms) entry.synonyms.push_back({kSplitConfig, entry.value, entry.config_source});
  }
  co_return result;
}

}  // namespace

boost::asio::awaitable<void> handle_describe_configs(FederationRequest& request) {
  const auto body = request.decode<DescribeConfigsRequest>();
  DescribeConfigsResponse reply;
  for (size_t i = 0; i < body.resources.size(); ++i) {  // an index: co_await in the body (GCC 12)
    const auto& resource = body.resources[i];
    if (resource.resource_type == kTopic) {
      Result result = co_await describe_topic(request, resource, body.include_synonyms, body.include_documentation);
      reply.results.push_back(std::move(result));
      continue;
    }
    Result& result = reply.results.emplace_back();
    result.resource_type = resource.resource_type;
    result.resource_name = resource.resource_name;
    result.error_message = std::nullopt;
    if (resource.resource_type == kBroker && resource.resource_name == std::to_string(request.federation.config().node_id))
      continue;  // the endpoint's broker: nothing of its own to show
    result.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
    result.error_message = "The federation endpoint describes topics' configs only.";
  }
  request.respond(reply);
}

}  // namespace sluice::federation
