// Metadata (key 3): the federated cluster as clients see it. One broker, this
// endpoint, leads every partition of every federated topic; a partition whose
// member cluster is unhealthy, or has no leader there, has no leader here
// (LEADER_NOT_AVAILABLE, retriable: clients wait and ask again). Leader epochs
// are not exposed (-1): they are the members' and mean nothing across them.
// Members' internal topics are theirs, not the federation's. An invalid name
// is INVALID_TOPIC_EXCEPTION. A topic asked for by name that the map lacks is
// created (auto.create.topics.enable, true
// by default as on a Kafka broker, with num.partitions partitions) where
// CreateTopics would place it, when the client allows it: Kafka's clients
// count on that (kafkajs's producer asks again for the topics it wrote to,
// and one deleted meanwhile comes back, as from a Kafka broker).
#include <array>
#include <list>
#include <set>

#include "controller/controller.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/metadata_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::MetadataResponse;
constexpr int16_t kMemberMetadataVersion = 9;

MetadataResponse::MetadataResponseTopic describe(Federation& federation, const std::string& name,
                                                 const TopicPlacement& placement) {
  const int32_t self = federation.config().node_id;
  MetadataResponse::MetadataResponseTopic topic;
  topic.name = name;
  topic.topic_id = placement.topic_id;
  for (int32_t p = 0; p < placement.partition_count(); ++p) {
    auto& out = topic.partitions.emplace_back();
    out.partition_index = p;
    out.replica_nodes = {self};
    const auto where = placement.locate(p);
    const MemberCluster* member = federation.member(*where->cluster);
    if (member && member->leader_of(name, where->partition) >= 0) {
      out.leader_id = self;
      out.isr_nodes = {self};
    } else {
      out.error_code = static_cast<int16_t>(ErrorCode::kLeaderNotAvailable);
      out.leader_id = -1;
      out.offline_replicas = {self};
    }
  }
  return topic;
}

// The names of `topics` a healthy member has (made there directly, and not
// adopted yet: the endpoint's view of the members is up to a health round
// old), or may have (it did not answer): one question per member, asked
// before those topics are auto-created, so that such a topic is adopted where
// it is rather than made again elsewhere.
boost::asio::awaitable<std::set<std::string>> maybe_on_a_member(Federation& federation, MemberLinks& links,
                                                                const std::vector<std::string>& topics) {
  std::list<Forwarded<protocol::MetadataRequest, MetadataResponse>> asked;
  for (const auto& m : federation.members()) {
    if (!m->healthy()) continue;
    const int32_t node = m->any_node();
    if (node < 0) continue;
    auto& q = asked.emplace_back();
    q.member = m.get();
    q.node = node;
    q.request.topics.emplace();
    for (const std::string& topic : topics) q.request.topics->emplace_back().name = topic;
    q.request.allow_auto_topic_creation = false;
  }
  co_await forward_all(federation, asked, kMemberMetadataVersion,
                       std::chrono::milliseconds(federation.config().request_timeout_ms), links);
  std::set<std::string> found;
  for (const auto& q : asked) {
    if (!q.reply) {
      found.insert(topics.begin(), topics.end());
      break;
    }
    for (const auto& t : q.reply->body.topics) {
      if (!t.name || t.error_code == static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition)) continue;
      found.insert(*t.name);
      q.member->request_refresh();  // adopted at its next round
    }
  }
  co_return found;
}

}  // namespace

boost::asio::awaitable<void> handle_metadata(FederationRequest& request) {
  const auto body = request.decode<protocol::MetadataRequest>();
  Federation& federation = request.federation;
  MetadataResponse reply;
  // Every endpoint serving the map that answers (this one alone unless federation.endpoints names more):
  // clients need them for their groups' coordinators; each endpoint says it leads every partition.
  for (const auto& e : federation.live_endpoints())
    reply.brokers.push_back({e.id, e.address.host, e.address.port, std::nullopt});
  reply.cluster_id = std::string(kFederationClusterId);
  reply.controller_id = federation.config().node_id;
  // v0 asks for every topic with an empty list; later versions with null.
  const bool all = !body.topics || (request.api_version == 0 && body.topics->empty());
  if (all) {
    for (const auto& [name, placement] : federation.store().topics())
      reply.topics.push_back(describe(federation, name, placement));
  } else {
    // Each topic once, however often it is asked for (as Kafka: a set), so that a small request
    // cannot make a huge answer.
    std::set<std::string> named;
    std::set<std::array<uint8_t, 16>> by_id;
    std::vector<size_t> to_create;  // indexes into reply.topics
    std::vector<std::string> to_create_names;
    for (const auto& wanted : *body.topics) {
      const bool by_name = wanted.name && !wanted.name->empty();
      if (by_name ? !named.insert(*wanted.name).second : !by_id.insert(wanted.topic_id.bytes).second) continue;
      const std::string* name = by_name ? &*wanted.name : federation.store().find_name(wanted.topic_id);
      const TopicPlacement* placement = name ? federation.store().find(*name) : nullptr;
      if (placement) {
        reply.topics.push_back(describe(federation, *name, *placement));
        continue;
      }
      auto& unknown = reply.topics.emplace_back();
      unknown.name = wanted.name;
      unknown.topic_id = wanted.topic_id;
      unknown.error_code =
          static_cast<int16_t>(by_name ? ErrorCode::kUnknownTopicOrPartition : ErrorCode::kUnknownTopicId);
      if (by_name && controller::invalid_topic_name_reason(*wanted.name)) {
        unknown.error_code = static_cast<int16_t>(ErrorCode::kInvalidTopicException);  // as a broker answers
      } else if (by_name && body.allow_auto_topic_creation && federation.config().auto_create_topics &&
                 !wanted.name->starts_with("__")) {
        to_create.push_back(reply.topics.size() - 1);
        to_create_names.push_back(*wanted.name);
      }
    }
    // As a broker: more than one request's worth of metadata records (a topic and each of its
    // partitions) creates none of them, and they stay unknown.
    const int64_t per_topic = 1 + int64_t{federation.config().auto_create_partitions};
    if (static_cast<int64_t>(to_create.size()) * per_topic > controller::kMaxRecordsPerRequest) to_create.clear();
    std::set<std::string> elsewhere;
    if (!to_create.empty()) elsewhere = co_await maybe_on_a_member(federation, request.links, to_create_names);
    for (size_t i = 0; i < to_create.size(); ++i) {  // an index: co_await in the body (GCC 12)
      protocol::CreateTopicsRequest::CreatableTopic topic;
      topic.name = *reply.topics[to_create[i]].name;
      topic.num_partitions = federation.config().auto_create_partitions;
      topic.replication_factor = -1;  // each member's default
      if (!elsewhere.count(topic.name))  // its outcome is read from the map below
        co_await create_federated_topic(federation, request.links, topic, false,
                                        static_cast<int32_t>(federation.config().request_timeout_ms));
      auto& out = reply.topics[to_create[i]];
      const TopicPlacement* placement = federation.store().find(topic.name);
      if (placement) {
        out = describe(federation, topic.name, *placement);
      } else {
        // Not made (no healthy member, a creation of the name under way, a member's refusal):
        // retriable, as while Kafka creates it.
        out.error_code = static_cast<int16_t>(ErrorCode::kLeaderNotAvailable);
      }
    }
  }
  request.respond(reply);
}

}  // namespace sluice::federation
