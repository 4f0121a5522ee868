// AlterConfigs (key 33) and IncrementalAlterConfigs (key 44): a topic's
// configs are changed on every member holding part of it, so that each part
// keeps the same ones (DescribeConfigs reads them from the first). All or
// nothing as far as the members allow: every member is first asked to
// validate the change (validate_only), and only if all accept it is it
// applied, on all at once. A member that fails between the two (it goes
// away) leaves the parts differing; the client gets its error, and the same
// request again brings them together. One change of a topic at a time (a
// second waits for the first), and none while it moves. `federation.split.clusters` is set at creation only.
// The endpoint's broker has no configs to change; other resource types are
// not served here.
#include <chrono>
#include <functional>
#include <list>
#include <set>
#include <string>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/alter_configs_request.h"
#include "protocol/messages/alter_configs_response.h"
#include "protocol/messages/incremental_alter_configs_request.h"
#include "protocol/messages/incremental_alter_configs_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;

constexpr int8_t kTopic = 2;
constexpr int8_t kSet = 0;  // IncrementalAlterConfigs' operations: SET 0, DELETE 1, APPEND 2, SUBTRACT 3
constexpr char kSplitConfig[] = "federation.split.clusters";
// How long a change waits for another of the same topic (AlterConfigs carries no timeout of its own).
constexpr std::chrono::seconds kQueuedChangeWait{10};

// One resource's outcome, before it is put in the response's own type.
struct Outcome {
  int16_t error_code = 0;
  std::optional<std::string> error_message;
};

// Sends `resource` alone, at `version`, to one broker of each member in
// `clusters`, all at once (validate_only as given); the first error, if any.
template <typename Request, typename Response>
boost::asio::awaitable<Outcome> on_every_member(FederationRequest& request, const std::set<std::string>& clusters,
                                                const typename Request::AlterConfigsResource& resource,
                                                bool validate_only, int16_t version) {
  Federation& federation = request.federation;
  std::list<Forwarded<Request, Response>> targets;
  for (const std::string& name : clusters) {
    MemberCluster* member = federation.member(name);
    const int32_t node = member && member->healthy() ? member->any_node() : -1;
    if (node < 0) co_return Outcome{static_cast<int16_t>(ErrorCode::kRequestTimedOut),
                                    "Member cluster " + name + " is unhealthy; nothing was changed."};
    auto& t = targets.emplace_back();
    t.member = member;
    t.node = node;
    t.request.resources.push_back(resource);
    t.request.validate_only = validate_only;
  }
  co_await forward_all(federation, targets, version, std::chrono::milliseconds(federation.config().request_timeout_ms),
                       request.links);
  for (const auto& t : targets) {
    if (!t.reply) co_return Outcome{static_cast<int16_t>(ErrorCode::kRequestTimedOut),
                                    "Member cluster " + t.member->name() + ": " + t.failure};
    if (t.reply->body.responses.size() != 1)
      co_return Outcome{static_cast<int16_t>(ErrorCode::kUnknownServerError),
                        "Member cluster " + t.member->name() + " answered for another resource."};
    const auto& answer = t.reply->body.responses.front();
    if (answer.error_code != 0) co_return Outcome{answer.error_code, answer.error_message};
  }
  co_return Outcome{};
}

// The operation of an IncrementalAlterConfigs entry (AlterConfigs has none: a SET).
template <typename Config>
int8_t operation_of(const Config& config) {
  if constexpr (requires { config.config_operation; }) return config.config_operation;
  return kSet;
}

template <typename Request, typename Response>
boost::asio::awaitable<Outcome> alter_topic(FederationRequest& request,
                                            const typename Request::AlterConfigsResource& asked, bool validate_only,
                                            int16_t version) {
  Federation& federation = request.federation;
  // One change of a topic at a time (Federation::wait_turn), for at most kQueuedChangeWait.
  const auto until = std::chrono::steady_clock::now() + kQueuedChangeWait;
  if (!validate_only) co_await federation.wait_turn(asked.resource_name, until);
  const TopicPlacement* placement = federation.store().find(asked.resource_name);
  if (!placement)
    co_return Outcome{static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition),
                      "The topic '" + asked.resource_name + "' does not exist."};
  std::set<std::string> clusters;  // a spread topic may have several segments on one member
  for (const auto& segment : placement->segments) clusters.insert(segment.cluster);
  // federation.split.clusters is the endpoint's, set at creation: its current value is taken (a
  // client that describes the configs and sends them back), any change refused; members never see it.
  typename Request::AlterConfigsResource resource = asked;
  std::erase_if(resource.configs, [](const auto& config) { return config.name == kSplitConfig; });
  for (const auto& config : asked.configs)
    if (config.name == kSplitConfig &&
        (operation_of(config) != kSet || config.value != std::optional<std::string>(std::to_string(clusters.size()))))
      co_return Outcome{static_cast<int16_t>(ErrorCode::kInvalidConfig),
                        std::string(kSplitConfig) + " is set at creation only (a member is added with the admin "
                                                    "API's spread)."};
  // One change of the topic at a time, and none while it moves: a move copies the configs when it
  // begins, and two changes sent to the members in different orders could leave them differing.
  // A validation alone changes nothing and waits for nothing.
  if (validate_only) co_return co_await on_every_member<Request, Response>(request, clusters, resource, true, version);
  if (federation.store().reserved(asked.resource_name)) {
    const bool moving = federation.moving(asked.resource_name);
    co_return Outcome{static_cast<int16_t>(moving ? ErrorCode::kReassignmentInProgress : ErrorCode::kRequestTimedOut),
                      moving ? std::string("The topic is being moved between member clusters.")
                             : std::string("Another change of the topic is still under way.")};
  }
  // (Shared map: another endpoint may have taken the topic since.)
  const bool held = co_await federation.store().hold(asked.resource_name);
  if (!held)
    co_return Outcome{static_cast<int16_t>(ErrorCode::kRequestTimedOut),
                      std::string("Another change of the topic is under way, or the federation's map could not be written.")};
  Outcome outcome = co_await on_every_member<Request, Response>(request, clusters, resource, true, version);
  if (outcome.error_code == 0)
    outcome = co_await on_every_member<Request, Response>(request, clusters, resource, false, version);
  federation.store().release(asked.resource_name);
  co_return outcome;
}

template <typename Request, typename Response>
boost::asio::awaitable<void> alter(FederationRequest& request, int16_t forward_version) {
  const auto body = request.decode<Request>();
  Response reply;
  for (size_t i = 0; i < body.resources.size(); ++i) {  // an index: co_await in the body (GCC 12)
    const auto& resource = body.resources[i];
    Outcome outcome;
    if (resource.resource_type == kTopic) {
      outcome = co_await alter_topic<Request, Response>(request, resource, body.validate_only, forward_version);
    } else {
      outcome.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
      outcome.error_message = "The federation endpoint changes topics' configs only.";
    }
    auto& out = reply.responses.emplace_back();
    out.resource_type = resource.resource_type;
    out.resource_name = resource.resource_name;
    out.error_code = outcome.error_code;
    out.error_message = outcome.error_code == 0 ? std::nullopt : outcome.error_message;
  }
  request.respond(reply);
}

}  // namespace

boost::asio::awaitable<void> handle_alter_configs(FederationRequest& request) {
  co_await alter<protocol::AlterConfigsRequest, protocol::AlterConfigsResponse>(request, 1);
}

boost::asio::awaitable<void> handle_incremental_alter_configs(FederationRequest& request) {
  co_await alter<protocol::IncrementalAlterConfigsRequest, protocol::IncrementalAlterConfigsResponse>(request, 0);
}

}  // namespace sluice::federation
