// OffsetCommit (key 8): the commit is checked against the group's membership
// here (generation, member id), as a coordinator checks it; then each
// partition's offset is committed on the member cluster holding it, to that
// member's coordinator of the same group, as a commit from outside the group
// (generation -1: the member's group has no members of its own). The offsets
// are as durable as the member makes them (its replicated __consumer_offsets)
// and outlive the endpoint. Answered per partition; a member that cannot be
// reached gives its partitions a retriable error.
#include <list>
#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "federation/handlers/coordinator_moved.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "federation/handlers/routing.h"
#include "protocol/error_codes.h"
#include "protocol/messages/offset_commit_request.h"
#include "protocol/messages/offset_commit_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::OffsetCommitRequest;
using protocol::OffsetCommitResponse;
using Target = Forwarded<OffsetCommitRequest, OffsetCommitResponse>;
constexpr int16_t kForwardVersion = 8;

using Slot = PartitionSlot<Target>;

}  // namespace

boost::asio::awaitable<void> handle_offset_commit(FederationRequest& request) {
  const auto body = request.decode<OffsetCommitRequest>();
  Federation& federation = request.federation;
  broker::GroupCoordinator::CommitRequest check;
  check.group_id = body.group_id;
  check.generation_id = body.generation_id_or_member_epoch;
  check.member_id = body.member_id;
  if (body.group_instance_id) check.group_instance_id = *body.group_instance_id;
  const ErrorCode refused = federation.groups().validate_commit(check);

  std::list<Target> targets;
  std::map<MemberCluster*, Target*> by_member;
  std::vector<Slot> slots;
  for (const auto& topic : body.topics) {
    const TopicPlacement* placement = federation.store().find(topic.name);
    for (const auto& p : topic.partitions) {
      Slot& slot = slots.emplace_back(Slot{topic.name, p.partition_index});
      const Route where = route(federation, placement, topic.name, p.partition_index, false);
      if (refused != ErrorCode::kNone || where.error != ErrorCode::kNone) {
        slot.error = refused != ErrorCode::kNone ? refused : where.error;
        continue;
      }
      if (federation.moving_frozen(topic.name, where.member->name())) {
        // Its offsets are being copied to the member it moves to: retriable, committed again.
        slot.error = ErrorCode::kCoordinatorLoadInProgress;
        continue;
      }
      Target* target = target_for(targets, by_member, where.member, [&](Target& t) {
        t.member = where.member;
        t.request.group_id = body.group_id;
        t.request.generation_id_or_member_epoch = -1;  // from outside the member's group
      });
      auto& forwarded_topics = target->request.topics;
      if (forwarded_topics.empty() || forwarded_topics.back().name != topic.name)
        forwarded_topics.emplace_back().name = topic.name;
      auto& forwarded = forwarded_topics.back().partitions.emplace_back();
      forwarded.partition_index = where.member_partition;
      forwarded.committed_offset = p.committed_offset < 0 ? p.committed_offset : p.committed_offset - where.offset_base;
      forwarded.committed_leader_epoch = p.committed_leader_epoch;  // the member's own epochs (its batches')
      forwarded.committed_metadata = p.committed_metadata;
      slot.target = target;
      slot.member_partition = where.member_partition;
    }
  }
  // Counted until answered: a move's switch copies the group's offsets only after.
  WritesInFlight in_flight(federation);
  for (const Slot& slot : slots)
    if (slot.target) in_flight.add(slot.topic, slot.target->member->name());
  // Each member's coordinator of the group, then every member's commit at once.
  co_await forward_to_coordinators(federation, request.links, targets, body.group_id, kForwardVersion,
                                   offset_commit_coordinator_moved);

  OffsetCommitResponse reply;
  for (const Slot& slot : slots) {
    if (reply.topics.empty() || reply.topics.back().name != slot.topic) reply.topics.emplace_back().name = slot.topic;
    auto& out = reply.topics.back().partitions.emplace_back();
    out.partition_index = slot.partition;
    if (slot.error != ErrorCode::kNone) {
      out.error_code = static_cast<int16_t>(slot.error);
      continue;
    }
    const OffsetCommitResponse::OffsetCommitResponseTopic::OffsetCommitResponsePartition* answer = nullptr;
    if (slot.target->reply)
      for (const auto& t : slot.target->reply->body.topics)
        if (t.name == slot.topic)
          for (const auto& p : t.partitions)
            if (p.partition_index == slot.member_partition) answer = &p;
    // Unanswered, or the member's coordinator still moving after the retries: retriable for the
    // client, which commits again.
    out.error_code = answer && !coordinator_error(answer->error_code)
                         ? answer->error_code
                         : static_cast<int16_t>(ErrorCode::kCoordinatorLoadInProgress);
  }
  request.respond(reply);
}

}  // namespace sluice::federation
