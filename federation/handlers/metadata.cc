// Metadata (key 3): the federated cluster as clients see it. One broker, this
// endpoint, leads every partition of every federated topic; a partition whose
// member cluster is unhealthy, or has no leader there, has no leader here
// (LEADER_NOT_AVAILABLE, retriable: clients wait and ask again). Leader epochs
// are not exposed (-1): they are the members' and mean nothing across them.
// Members' internal topics are theirs, not the federation's.
#include <array>
#include <set>

#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/metadata_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::MetadataResponse;

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

}  // namespace

boost::asio::awaitable<void> handle_metadata(FederationRequest& request) {
  const auto body = request.decode<protocol::MetadataRequest>();
  Federation& federation = request.federation;
  MetadataResponse reply;
  reply.brokers.push_back({federation.config().node_id, federation.config().advertised.host,
                           federation.config().advertised.port, std::nullopt});
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
    }
  }
  request.respond(reply);
  co_return;
}

}  // namespace sluice::federation
