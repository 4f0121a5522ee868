// CreatePartitions (key 37): a federated topic's new partitions go to the
// member holding its last segment, so the federated numbering stays as it was
// and the new partitions follow it (a split topic {a: 3, b: 3} raised to 8 is
// {a: 3, b: 5}). The member creates them, then the placement is rewritten in
// the map; only then does the client hear of success. A member that already
// has them (the map write failed after it created them) is not asked again:
// the map is caught up instead. Manual assignments name brokers of the one
// broker clients see, so they are refused. A second change of the topic
// waits for the one under way.
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>

#include "broker/log.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/create_partitions_request.h"
#include "protocol/messages/create_partitions_response.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/metadata_response.h"

namespace sluice::federation {
namespace {

using protocol::CreatePartitionsRequest;
using protocol::CreatePartitionsResponse;
using protocol::ErrorCode;
using Creation = Forwarded<CreatePartitionsRequest, CreatePartitionsResponse>;
using Result = CreatePartitionsResponse::CreatePartitionsTopicResult;
constexpr int16_t kForwardVersion = 3;
constexpr int16_t kMetadataVersion = 12;

// The topic's partition count on member broker `node`, asked now (a health
// round's view may be a round old), or -1 if it cannot be told.
boost::asio::awaitable<int32_t> partitions_on(Federation& federation, MemberLinks& links, MemberCluster* member,
                                              int32_t node, std::string topic) {
  Forwarded<protocol::MetadataRequest, protocol::MetadataResponse> asked;
  asked.member = member;
  asked.node = node;
  protocol::MetadataRequest::MetadataRequestTopic wanted;
  wanted.name = topic;
  asked.request.topics.emplace();
  asked.request.topics->push_back(wanted);
  asked.request.allow_auto_topic_creation = false;
  co_await forward_one(asked, kMetadataVersion, std::chrono::milliseconds(federation.config().request_timeout_ms), links);
  if (!asked.reply) co_return -1;
  for (const auto& t : asked.reply->body.topics)
    if (t.name == topic && t.error_code == 0) co_return static_cast<int32_t>(t.partitions.size());
  co_return -1;
}

boost::asio::awaitable<Result> raise(Federation& federation, MemberLinks& links, CreatePartitionsRequest::CreatePartitionsTopic topic,
                                     int32_t timeout_ms, bool validate_only) {
  Result result;
  result.name = topic.name;
  const auto fail = [&](ErrorCode code, std::string message) {
    result.error_code = static_cast<int16_t>(code);
    result.error_message = std::move(message);
    return result;
  };
  // Waits its turn within the request's timeout.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  if (!validate_only) co_await federation.wait_turn(topic.name, deadline);
  const TopicPlacement* found = federation.store().find(topic.name);
  if (!found) co_return fail(ErrorCode::kUnknownTopicOrPartition, "This server does not host this topic-partition.");
  if (federation.store().reserved(topic.name)) {
    if (federation.moving(topic.name))
      co_return fail(ErrorCode::kReassignmentInProgress, "The topic is being moved between member clusters.");
    if (validate_only) co_return fail(ErrorCode::kInvalidRequest, "The topic is being created, deleted or changed.");
    co_return fail(ErrorCode::kRequestTimedOut, "Another change of the topic is still under way.");
  }
  // What is left of the request's timeout, for the member (a wait above took its share).
  timeout_ms = static_cast<int32_t>(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count()));
  const int32_t old = found->partition_count();
  if (topic.count < old)
    co_return fail(ErrorCode::kInvalidPartitions, "The topic " + topic.name + " currently has " + std::to_string(old) +
                                                       " partition(s); " + std::to_string(topic.count) +
                                                       " would not be an increase.");
  if (topic.count == old)
    co_return fail(ErrorCode::kInvalidPartitions, "Topic already has " + std::to_string(old) + " partition(s).");
  if (topic.assignments)
    co_return fail(ErrorCode::kInvalidReplicaAssignment,
                   "Manual assignments are not taken through the federation endpoint: the new partitions go to the "
                   "member cluster holding the topic's last partitions.");
  TopicPlacement placement = *found;
  PlacementSegment& last = placement.segments.back();
  // The member's own count: a spread topic's last segment may begin further in (placement.h).
  const int32_t member_count = last.first_member_partition + last.partitions + (topic.count - old);
  MemberCluster* member = federation.member(last.cluster);
  const MemberTopic* on_member = member ? member->topic(topic.name) : nullptr;
  const bool member_has_them = on_member && static_cast<int32_t>(on_member->leaders.size()) >= member_count;

  // No deletion or second change meanwhile (shared map: the placement read above is still the map's once held).
  const bool held = co_await federation.store().hold(topic.name);
  if (!held)
    co_return fail(ErrorCode::kRequestTimedOut,
                   "Another change of the topic is under way, or the federation's map could not be written.");
  if (!member_has_them) {
    Creation c;
    c.member = member;
    c.node = member ? member->any_node() : -1;
    if (c.node < 0) {
      federation.store().release(topic.name);
      co_return fail(ErrorCode::kRequestTimedOut, "Member cluster " + last.cluster + " is unhealthy.");
    }
    c.request.topics.push_back({topic.name, member_count, std::nullopt});
    c.request.timeout_ms = timeout_ms;
    c.request.validate_only = validate_only;
    const std::chrono::milliseconds timeout(std::max(timeout_ms, 0) + federation.config().request_timeout_ms);
    co_await forward_one(c, kForwardVersion, timeout, links);
    const auto* r = c.reply && !c.reply->body.results.empty() ? &c.reply->body.results[0] : nullptr;
    bool created = r && r->error_code == 0;
    if (r && r->error_code == static_cast<int16_t>(ErrorCode::kInvalidPartitions) && !validate_only) {
      // Perhaps it has them already: an earlier attempt created them and then
      // could not write the map, or timed out after the member had done it.
      const int32_t there = co_await partitions_on(federation, links, member, c.node, topic.name);
      created = there >= member_count;
    }
    if (!created) {
      member->request_refresh();
      federation.store().release(topic.name);
      if (!r) co_return fail(ErrorCode::kRequestTimedOut, c.failure);
      result.error_code = r->error_code;
      result.error_message = r->error_message;
      co_return result;
    }
  }
  if (!validate_only) {
    last.partitions = member_count - last.first_member_partition;
    if (!last.offset_bases.empty()) last.offset_bases.resize(static_cast<size_t>(last.partitions), 0);  // new: from 0
    const bool written = co_await federation.store().put(topic.name, placement);
    if (!written) {
      member->request_refresh();  // so that asking again finds them there
      federation.store().release(topic.name);
      co_return fail(ErrorCode::kKafkaStorageError,
                     "The federation's topic map could not be written; asking again completes the change.");
    }
    member->request_refresh();  // the new partitions' leaders
    SLUICE_LOG(kInfo, "topic " << topic.name << " now has " << topic.count << " partitions (" << member_count
                               << " on member cluster " << last.cluster << ")");
  }
  federation.store().release(topic.name);
  co_return result;
}

}  // namespace

boost::asio::awaitable<void> handle_create_partitions(FederationRequest& request) {
  const auto body = request.decode<CreatePartitionsRequest>();
  std::map<std::string, int> mentions;
  for (const auto& t : body.topics) ++mentions[t.name];
  CreatePartitionsResponse reply;
  for (size_t i = 0; i < body.topics.size(); ++i) {  // an index: co_await in the body (GCC 12)
    if (mentions[body.topics[i].name] > 1) {
      Result duplicate;
      duplicate.name = body.topics[i].name;
      duplicate.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
      duplicate.error_message = "Duplicate topic in request.";
      reply.results.push_back(std::move(duplicate));
      continue;
    }
    Result result = co_await raise(request.federation, request.links, body.topics[i], body.timeout_ms, body.validate_only);
    reply.results.push_back(std::move(result));
  }
  request.respond(reply);
}

}  // namespace sluice::federation
