// DeleteTopics (key 20), by name or by federated topic id: the topic is
// deleted on every member that holds part of it, all at once, and then
// removed from the map. A member that no longer has it counts as done, so a
// deletion that failed on one member completes when asked again; until then
// the topic stays in the map (the parts still there keep being served).
#include <list>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "broker/log.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/delete_topics_request.h"
#include "protocol/messages/delete_topics_response.h"

namespace sluice::federation {
namespace {

using protocol::DeleteTopicsRequest;
using protocol::DeleteTopicsResponse;
using protocol::ErrorCode;
using Deletion = Forwarded<DeleteTopicsRequest, DeleteTopicsResponse>;
using Result = DeleteTopicsResponse::DeletableTopicResult;
constexpr int16_t kForwardVersion = 6;

boost::asio::awaitable<Result> remove(Federation& federation, MemberLinks& links, std::string name, int32_t timeout_ms) {
  Result result;
  result.name = name;
  const TopicPlacement* placement = federation.store().find(name);
  if (!placement || federation.store().reserved(name)) {
    result.error_code = static_cast<int16_t>(placement ? ErrorCode::kInvalidRequest : ErrorCode::kUnknownTopicOrPartition);
    if (placement) result.error_message = "The topic is being created or deleted.";
    co_return result;
  }
  result.topic_id = placement->topic_id;
  // No creation or second deletion of the name meanwhile (shared map: another endpoint may have taken it).
  const bool held = co_await federation.store().hold(name);
  placement = federation.store().find(name);  // read again: the map may have changed while the hold was recorded
  if (!held || !placement) {
    if (held) federation.store().release(name);
    result.error_code = static_cast<int16_t>(placement ? ErrorCode::kInvalidRequest : ErrorCode::kUnknownTopicOrPartition);
    if (placement) result.error_message = "The topic is being created or deleted, or the federation's map could not be written.";
    co_return result;
  }
  std::list<Deletion> deletions;
  WaitGroup group(federation.executor());
  std::set<std::string> asked;  // a member holding several segments (a spread topic) is asked once
  for (const auto& segment : placement->segments) {
    if (!asked.insert(segment.cluster).second) continue;
    MemberCluster* member = federation.member(segment.cluster);
    Deletion& d = deletions.emplace_back();
    d.member = member;
    d.node = member ? member->any_node() : -1;
    if (d.node < 0) {
      d.failure = "member cluster " + segment.cluster + " is unhealthy";
      continue;
    }
    d.request.topic_names.push_back(name);
    d.request.topics.emplace_back().name = name;
    d.request.timeout_ms = timeout_ms;
    group.add();
    boost::asio::co_spawn(federation.executor(),
                          forward(d, kForwardVersion,
                                  std::chrono::milliseconds(std::max(timeout_ms, 0) + federation.config().request_timeout_ms),
                                  group, links),
                          boost::asio::detached);
  }
  co_await group.wait();
  for (const Deletion& d : deletions) {
    const auto* r = d.reply && !d.reply->body.responses.empty() ? &d.reply->body.responses[0] : nullptr;
    if (r && (r->error_code == 0 || r->error_code == static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition))) continue;
    result.error_code = r ? r->error_code : static_cast<int16_t>(ErrorCode::kRequestTimedOut);
    result.error_message = r ? r->error_message : std::optional<std::string>(d.failure);
    break;
  }
  if (result.error_code == 0) {
    const bool erased = co_await federation.store().erase(name);
    if (erased) federation.forget_acknowledged(name);
    if (!erased) {
      result.error_code = static_cast<int16_t>(ErrorCode::kKafkaStorageError);
      result.error_message = "The federation's topic map could not be written.";
    }
  }
  federation.store().release(name);
  if (result.error_code == 0) {
    federation.note_deleted(name);
    SLUICE_LOG(kInfo, "deleted topic " << name);
  }
  co_return result;
}

}  // namespace

boost::asio::awaitable<void> handle_delete_topics(FederationRequest& request) {
  const auto body = request.decode<DeleteTopicsRequest>();
  Federation& federation = request.federation;
  std::vector<std::pair<std::string, protocol::Uuid>> wanted;  // a name, or an id to find
  if (request.api_version >= 6) {
    for (const auto& t : body.topics) wanted.emplace_back(t.name.value_or(""), t.topic_id);
  } else {
    for (const auto& name : body.topic_names) wanted.emplace_back(name, protocol::Uuid{});
  }
  DeleteTopicsResponse reply;
  for (size_t i = 0; i < wanted.size(); ++i) {  // an index: co_await in the body (GCC 12)
    const auto& [given_name, id] = wanted[i];
    std::string name = given_name;
    if (name.empty()) {
      const std::string* found = federation.store().find_name(id);
      if (found == nullptr) {
        auto& unknown = reply.responses.emplace_back();
        unknown.name = std::nullopt;
        unknown.topic_id = id;
        unknown.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicId);
        continue;
      }
      name = *found;
    }
    Result result = co_await remove(federation, request.links, name, body.timeout_ms);
    reply.responses.push_back(std::move(result));
  }
  request.respond(reply);
}

}  // namespace sluice::federation
