// ListOffsets (key 2): each partition's question goes to the leader of its
// member partition, one request per member broker, all at once. Offsets are
// the members'; leader epochs are not exposed (-1).
#include <list>
#include <map>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "federation/handlers/routing.h"
#include "protocol/error_codes.h"
#include "protocol/messages/list_offsets_request.h"
#include "protocol/messages/list_offsets_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::ListOffsetsRequest;
using protocol::ListOffsetsResponse;
using Target = Forwarded<ListOffsetsRequest, ListOffsetsResponse>;
constexpr int16_t kForwardVersion = 7;

using Slot = PartitionSlot<Target>;

const ListOffsetsResponse::ListOffsetsTopicResponse::ListOffsetsPartitionResponse* find_answer(
    const ListOffsetsResponse& reply, const std::string& topic, int32_t partition) {
  for (const auto& t : reply.topics)
    if (t.name == topic)
      for (const auto& p : t.partitions)
        if (p.partition_index == partition) return &p;
  return nullptr;
}

}  // namespace

boost::asio::awaitable<void> handle_list_offsets(FederationRequest& request) {
  const auto body = request.decode<ListOffsetsRequest>();
  Federation& federation = request.federation;
  std::list<Target> targets;
  std::map<std::pair<MemberCluster*, int32_t>, Target*> by_node;
  std::vector<Slot> slots;
  for (const auto& topic : body.topics) {
    const TopicPlacement* placement = federation.store().find(topic.name);
    for (const auto& p : topic.partitions) {
      Slot& slot = slots.emplace_back(Slot{topic.name, p.partition_index});
      const Route where = route(federation, placement, topic.name, p.partition_index);
      if (where.error != ErrorCode::kNone) {
        slot.error = where.error;
        continue;
      }
      Target* target = target_for(targets, by_node, std::pair(where.member, where.node), [&](Target& t) {
        t.member = where.member;
        t.node = where.node;
        t.request.replica_id = -1;
        t.request.isolation_level = body.isolation_level;
        t.request.timeout_ms = body.timeout_ms;
      });
      auto& forwarded_topics = target->request.topics;
      if (forwarded_topics.empty() || forwarded_topics.back().name != topic.name)
        forwarded_topics.emplace_back().name = topic.name;
      auto& forwarded = forwarded_topics.back().partitions.emplace_back();
      forwarded.partition_index = where.member_partition;
      forwarded.timestamp = p.timestamp;
      slot.target = target;
      slot.member_partition = where.member_partition;
      slot.offset_base = where.offset_base;
    }
  }
  co_await forward_all(federation, targets, kForwardVersion,
                       std::chrono::milliseconds(federation.config().request_timeout_ms), request.links);
  ListOffsetsResponse reply;
  for (const Slot& slot : slots) {
    if (reply.topics.empty() || reply.topics.back().name != slot.topic) reply.topics.emplace_back().name = slot.topic;
    auto& out = reply.topics.back().partitions.emplace_back();
    out.partition_index = slot.partition;
    if (slot.error != ErrorCode::kNone) {
      out.error_code = static_cast<int16_t>(slot.error);
      continue;
    }
    const auto* answer = slot.target->reply ? find_answer(slot.target->reply->body, slot.topic, slot.member_partition)
                                            : nullptr;
    if (answer == nullptr) {
      out.error_code = static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower);
      continue;
    }
    out.error_code = answer->error_code;
    out.timestamp = answer->timestamp;
    out.offset = federated_offset(answer->offset, slot.offset_base);
    if (answer->error_code == static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower)) slot.target->member->request_refresh();
  }
  request.respond(reply);
}

}  // namespace sluice::federation
