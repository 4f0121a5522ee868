// ListOffsets (key 2): each partition's question goes to the leader of its
// member partition, one request per member broker, all at once. Offsets are
// the members'; leader epochs are not exposed (-1).
#include <list>
#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
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

struct Slot {
  std::string topic;
  int32_t partition = 0;
  ErrorCode error = ErrorCode::kNone;
  Target* target = nullptr;
  int32_t member_partition = -1;
};

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
      const auto where = placement ? placement->locate(p.partition_index) : std::nullopt;
      if (!where) {
        slot.error = ErrorCode::kUnknownTopicOrPartition;
        continue;
      }
      MemberCluster* member = federation.member(*where->cluster);
      const int32_t node = member ? member->leader_of(topic.name, where->partition) : -1;
      if (node < 0) {
        slot.error = ErrorCode::kNotLeaderOrFollower;
        continue;
      }
      Target*& target = by_node[{member, node}];
      if (target == nullptr) {
        target = &targets.emplace_back();
        target->member = member;
        target->node = node;
        target->request.replica_id = -1;
        target->request.isolation_level = body.isolation_level;
        target->request.timeout_ms = body.timeout_ms;
      }
      auto& forwarded_topics = target->request.topics;
      if (forwarded_topics.empty() || forwarded_topics.back().name != topic.name)
        forwarded_topics.emplace_back().name = topic.name;
      auto& forwarded = forwarded_topics.back().partitions.emplace_back();
      forwarded.partition_index = where->partition;
      forwarded.timestamp = p.timestamp;
      slot.target = target;
      slot.member_partition = where->partition;
    }
  }
  WaitGroup group(federation.executor());
  const std::chrono::milliseconds timeout(federation.config().request_timeout_ms);
  for (Target& target : targets) {
    group.add();
    boost::asio::co_spawn(federation.executor(), forward(target, kForwardVersion, timeout, group, request.links),
                          boost::asio::detached);
  }
  co_await group.wait();
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
    out.offset = answer->offset;
    if (answer->error_code == static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower)) slot.target->member->request_refresh();
  }
  request.respond(reply);
}

}  // namespace sluice::federation
