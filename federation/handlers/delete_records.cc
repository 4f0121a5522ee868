// DeleteRecords (key 21): each partition's new log start goes to the leader
// of its member partition, one request per member broker, all at once, in
// the member's numbering (less the partition's offset base; -1, "up to the
// high watermark", as it is). A topic being moved between members answers
// REASSIGNMENT_IN_PROGRESS: the copy under way could not follow a log start
// raised behind it.
#include <algorithm>
#include <list>
#include <map>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "federation/handlers/routing.h"
#include "protocol/error_codes.h"
#include "protocol/messages/delete_records_request.h"
#include "protocol/messages/delete_records_response.h"

namespace sluice::federation {
namespace {

using protocol::DeleteRecordsRequest;
using protocol::DeleteRecordsResponse;
using protocol::ErrorCode;
using Target = Forwarded<DeleteRecordsRequest, DeleteRecordsResponse>;
constexpr int16_t kForwardVersion = 2;

using Slot = PartitionSlot<Target>;

const DeleteRecordsResponse::DeleteRecordsTopicResult::DeleteRecordsPartitionResult* find_answer(
    const DeleteRecordsResponse& reply, const std::string& topic, int32_t partition) {
  for (const auto& t : reply.topics)
    if (t.name == topic)
      for (const auto& p : t.partitions)
        if (p.partition_index == partition) return &p;
  return nullptr;
}

}  // namespace

boost::asio::awaitable<void> handle_delete_records(FederationRequest& request) {
  const auto body = request.decode<DeleteRecordsRequest>();
  Federation& federation = request.federation;
  std::list<Target> targets;
  std::map<std::pair<MemberCluster*, int32_t>, Target*> by_node;
  std::vector<Slot> slots;
  for (const auto& topic : body.topics) {
    const TopicPlacement* placement = federation.store().find(topic.name);
    const bool being_moved = federation.moving(topic.name);
    for (const auto& p : topic.partitions) {
      Slot& slot = slots.emplace_back(Slot{topic.name, p.partition_index});
      const Route where = route(federation, placement, topic.name, p.partition_index);
      if (where.error != ErrorCode::kNone) {
        slot.error = where.error;
        continue;
      }
      if (being_moved) {
        slot.error = ErrorCode::kReassignmentInProgress;
        continue;
      }
      Target* target = target_for(targets, by_node, std::pair(where.member, where.node), [&](Target& t) {
        t.member = where.member;
        t.node = where.node;
        t.request.timeout_ms = body.timeout_ms;
      });
      auto& forwarded_topics = target->request.topics;
      if (forwarded_topics.empty() || forwarded_topics.back().name != topic.name)
        forwarded_topics.emplace_back().name = topic.name;
      // Below the offset base lies what a move did not copy: nothing of it is on the member.
      const int64_t offset = p.offset < 0 ? p.offset : std::max<int64_t>(p.offset - where.offset_base, 0);
      forwarded_topics.back().partitions.push_back({where.member_partition, offset});
      slot.target = target;
      slot.member_partition = where.member_partition;
      slot.offset_base = where.offset_base;
    }
  }
  // Counted until answered, as writes are: a move's switch waits for them.
  WritesInFlight in_flight(federation);
  for (const Slot& slot : slots)
    if (slot.target) in_flight.add(slot.topic, slot.target->member->name());
  co_await forward_all(federation, targets, kForwardVersion,
                       std::chrono::milliseconds(std::max(body.timeout_ms, 0) + federation.config().request_timeout_ms),
                       request.links);
  DeleteRecordsResponse reply;
  for (const Slot& slot : slots) {
    if (reply.topics.empty() || reply.topics.back().name != slot.topic) reply.topics.emplace_back().name = slot.topic;
    auto& out = reply.topics.back().partitions.emplace_back();
    out.partition_index = slot.partition;
    out.low_watermark = -1;
    if (slot.error != ErrorCode::kNone) {
      out.error_code = static_cast<int16_t>(slot.error);
      continue;
    }
    const auto* answer = slot.target->reply ? find_answer(slot.target->reply->body, slot.topic, slot.member_partition)
                                            : nullptr;
    if (answer == nullptr) {
      // Not answered: it may or may not have been applied (retriable, as a timeout is).
      out.error_code = static_cast<int16_t>(ErrorCode::kRequestTimedOut);
      continue;
    }
    out.error_code = answer->error_code;
    out.low_watermark = federated_offset(answer->low_watermark, slot.offset_base);
    if (answer->error_code == static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower)) slot.target->member->request_refresh();
  }
  request.respond(reply);
}

}  // namespace sluice::federation
