// OffsetDelete (key 47): a group's committed offsets for some partitions are
// dropped, except those of topics its live members subscribe to. The
// membership is the endpoint's own, so that check is made here (with the
// broker's code: GROUP_SUBSCRIBED_TO_TOPIC, NON_EMPTY_GROUP for a group of
// another protocol); the offsets are on the members holding the partitions
// (handlers/offset_commit.cc), so each partition's deletion goes to its
// member's coordinator of the group, in the member's numbering. Every member
// is asked (the others with no partitions), so a group is GROUP_ID_NOT_FOUND
// only when neither the endpoint nor any member knows it, as from a broker.
// A member holding some of the partitions that cannot be asked (unhealthy),
// or a topic whose offsets a move is copying at that moment, answers the
// whole request with a retriable error; the other members are asked only
// while healthy.
#include <list>
#include <map>
#include <optional>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "federation/handlers/routing.h"
#include "protocol/error_codes.h"
#include "protocol/messages/offset_delete_request.h"
#include "protocol/messages/offset_delete_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::OffsetDeleteRequest;
using protocol::OffsetDeleteResponse;
using Target = Forwarded<OffsetDeleteRequest, OffsetDeleteResponse>;
constexpr int16_t kForwardVersion = 0;

using Slot = PartitionSlot<Target>;

bool coordinator_moved(const OffsetDeleteResponse& reply) { return coordinator_error(reply.error_code); }

std::optional<int16_t> answer_for(const Target& target, const std::string& topic, int32_t partition) {
  for (const auto& t : target.reply->body.topics)
    if (t.name == topic)
      for (const auto& p : t.partitions)
        if (p.partition_index == partition) return p.error_code;
  return std::nullopt;
}

}  // namespace

boost::asio::awaitable<void> handle_offset_delete(FederationRequest& request) {
  const auto body = request.decode<OffsetDeleteRequest>();
  Federation& federation = request.federation;
  OffsetDeleteResponse reply;

  // The endpoint's own group: which topics its live members subscribe to.
  std::vector<broker::TopicPartition> asked;
  for (const auto& topic : body.topics)
    for (const auto& p : topic.partitions) asked.emplace_back(topic.name, p.partition_index);
  const auto local_answer = federation.groups().delete_offsets(body.group_id, asked, nullptr);
  const ErrorCode local_error = local_answer.first;
  const std::vector<ErrorCode>& local_errors = local_answer.second;
  if (local_error != ErrorCode::kNone && local_error != ErrorCode::kGroupIdNotFound) {
    reply.error_code = static_cast<int16_t>(local_error);
    request.respond(reply);
    co_return;
  }
  bool known = local_error == ErrorCode::kNone;

  std::list<Target> targets;
  std::map<MemberCluster*, Target*> by_member;
  for (const auto& m : federation.members()) {  // every healthy member: which of them know the group
    if (!m->healthy()) continue;
    Target& t = targets.emplace_back();
    t.member = m.get();
    t.request.group_id = body.group_id;
    by_member[m.get()] = &t;
  }
  std::vector<Slot> slots;
  bool frozen = false;
  bool unhealthy = false;  // a partition's member cannot be asked now
  size_t index = 0;
  for (const auto& topic : body.topics) {
    const TopicPlacement* placement = federation.store().find(topic.name);
    for (const auto& p : topic.partitions) {
      Slot& slot = slots.emplace_back(Slot{topic.name, p.partition_index});
      const ErrorCode local = known ? local_errors[index] : ErrorCode::kNone;
      ++index;
      const Route where = route(federation, placement, topic.name, p.partition_index, false);
      if (where.error != ErrorCode::kNone || local != ErrorCode::kNone) {
        slot.error = where.error != ErrorCode::kNone ? where.error : local;
        continue;
      }
      frozen |= federation.moving_frozen(topic.name, where.member->name());
      Target* target = by_member[where.member];
      if (target == nullptr) {
        unhealthy = true;
        continue;
      }
      auto& forwarded_topics = target->request.topics;
      if (forwarded_topics.empty() || forwarded_topics.back().name != topic.name)
        forwarded_topics.emplace_back().name = topic.name;
      forwarded_topics.back().partitions.push_back({where.member_partition});
      slot.target = target;
      slot.member_partition = where.member_partition;
    }
  }
  if (frozen || unhealthy) {
    // A move's switch is copying the group's offsets (asked again, the deletion is not undone), or
    // a member holding some of them does not answer now: retriable, the client asks again.
    reply.error_code = static_cast<int16_t>(frozen ? ErrorCode::kCoordinatorLoadInProgress
                                                   : ErrorCode::kCoordinatorNotAvailable);
    request.respond(reply);
    co_return;
  }
  // Counted until answered, as commits are: a move's switch copies the group's offsets only after.
  WritesInFlight in_flight(federation);
  for (const Slot& slot : slots)
    if (slot.target) in_flight.add(slot.topic, slot.target->member->name());
  co_await forward_to_coordinators(federation, request.links, targets, body.group_id, kForwardVersion,
                                   coordinator_moved);
  for (const Target& t : targets) {
    const int16_t error =
        t.reply ? t.reply->body.error_code : static_cast<int16_t>(ErrorCode::kCoordinatorNotAvailable);
    if (error == 0) {
      known = true;
    } else if (t.request.topics.empty()) {
      continue;  // asked only whether it knows the group: one that cannot say holds none of these offsets
    } else if (error != static_cast<int16_t>(ErrorCode::kGroupIdNotFound)) {
      // Unreachable, still moving, or the member's own group has members of another protocol.
      reply.error_code = coordinator_error(error) ? static_cast<int16_t>(ErrorCode::kCoordinatorNotAvailable) : error;
      request.respond(reply);
      co_return;
    }
  }
  if (!known) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kGroupIdNotFound);
    request.respond(reply);
    co_return;
  }
  for (const Slot& slot : slots) {
    if (reply.topics.empty() || reply.topics.back().name != slot.topic) reply.topics.emplace_back().name = slot.topic;
    auto& out = reply.topics.back().partitions.emplace_back();
    out.partition_index = slot.partition;
    if (slot.error != ErrorCode::kNone) {
      out.error_code = static_cast<int16_t>(slot.error);
      continue;
    }
    // A member without the group had nothing to delete: done, as a broker answers a partition
    // without an offset. Its own live members' subscriptions answer for themselves.
    const bool member_knows = slot.target->reply->body.error_code == 0;
    const auto answer = member_knows ? answer_for(*slot.target, slot.topic, slot.member_partition) : std::optional<int16_t>(0);
    out.error_code = answer ? *answer : static_cast<int16_t>(ErrorCode::kUnknownServerError);
  }
  request.respond(reply);
}

}  // namespace sluice::federation
