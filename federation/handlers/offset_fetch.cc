// OffsetFetch (key 9): a group's committed offsets, read from the member
// clusters that hold its partitions (where OffsetCommit put them), each from
// that member's coordinator of the group, and put back in the federated
// numbering. For all partitions (topics null) each member is asked for all
// of the group's offsets there, and those of topics the map places on that
// member are kept (asked again if the map changed while the members answered). Leader epochs are not exposed (-1). A member that cannot
// be reached makes the group's answer COORDINATOR_LOAD_IN_PROGRESS (v2+;
// per partition before), which clients retry.
#include <list>
#include <map>
#include <tuple>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "federation/handlers/coordinator_moved.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "federation/handlers/routing.h"
#include "protocol/error_codes.h"
#include "protocol/messages/offset_fetch_request.h"
#include "protocol/messages/offset_fetch_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::OffsetFetchRequest;
using protocol::OffsetFetchResponse;
using GroupReply = OffsetFetchResponse::OffsetFetchResponseGroup;
using Target = Forwarded<OffsetFetchRequest, OffsetFetchResponse>;
constexpr int16_t kForwardVersion = 7;  // one group, topic names
constexpr int16_t kFirstMultiGroupVersion = 8;
constexpr int16_t kFirstGroupErrorVersion = 2;

struct WantedTopic {
  std::string name;
  std::vector<int32_t> partitions;
};

struct Committed {
  int64_t offset = -1;
  std::optional<std::string> metadata = std::string();
};

// One group's answer in the v8+ shape.
boost::asio::awaitable<GroupReply> fetch_group(Federation& federation, MemberLinks& links, std::string group_id,
                                               std::optional<std::vector<WantedTopic>> wanted, bool require_stable,
                                               int16_t version, int attempts = 3) {
  const uint64_t map_read = federation.store().placements_changed();
  std::list<Target> targets;
  std::map<MemberCluster*, Target*> by_member;
  auto target_of = [&](MemberCluster* member) {
    Target*& target = by_member[member];
    if (target == nullptr) {
      target = &targets.emplace_back();
      target->member = member;
      target->request.group_id = group_id;
      target->request.require_stable = require_stable;
    }
    return target;
  };
  // Where each asked-for partition was sent, and its offset base then: the
  // answer is read in that numbering even if the topic moved meanwhile.
  struct Routed {
    int32_t federated = -1;
    int64_t offset_base = 0;
  };
  std::map<std::tuple<MemberCluster*, std::string, int32_t>, Routed> routed;
  if (wanted) {
    for (const auto& t : *wanted) {
      const TopicPlacement* placement = federation.store().find(t.name);
      for (int32_t p : t.partitions) {
        const auto where = placement ? placement->locate(p) : std::nullopt;
        if (!where) continue;  // unknown: offset -1, as Kafka answers
        MemberCluster* member = federation.member(*where->cluster);
        routed[{member, t.name, where->partition}] = {p, where->offset_base};
        auto& topics = target_of(member)->request.topics;
        if (!topics) topics.emplace();
        if (topics->empty() || topics->back().name != t.name) topics->emplace_back().name = t.name;
        topics->back().partition_indexes.push_back(where->partition);
      }
    }
  } else {
    for (const auto& m : federation.members()) target_of(m.get());  // topics null: everything there
  }
  co_await forward_to_coordinators(federation, links, targets, group_id, kForwardVersion,
                                   offset_fetch_coordinator_moved);
  // Everything the members have is read in the map's numbering; a move that
  // switched meanwhile would leave its partitions out (the old member's
  // answer no longer maps, the new member's may predate the copy): asked again.
  if (!wanted && attempts > 1 && federation.store().placements_changed() != map_read)
    co_return co_await fetch_group(federation, links, std::move(group_id), std::move(wanted), require_stable, version,
                                   attempts - 1);

  // What the members said, in the federated numbering.
  ErrorCode error = ErrorCode::kNone;
  std::map<std::pair<std::string, int32_t>, Committed> committed;
  for (const Target& target : targets) {
    const auto* body = target.reply ? &target.reply->body : nullptr;
    if (!body || body->error_code != 0 || offset_fetch_coordinator_moved(*body)) {
      if (error == ErrorCode::kNone)
        error = body && body->error_code != 0 && !coordinator_error(body->error_code)
                    ? static_cast<ErrorCode>(body->error_code)
                    : ErrorCode::kCoordinatorLoadInProgress;
      continue;
    }
    for (const auto& t : body->topics) {
      const TopicPlacement* placement = federation.store().find(t.name);
      for (const auto& p : t.partitions) {
        if (p.error_code != 0) continue;
        Routed at;
        if (wanted) {
          auto it = routed.find({target.member, t.name, p.partition_index});
          if (it == routed.end()) continue;
          at = it->second;
        } else if (placement) {  // everything the member has: in the map's numbering now
          at.federated = placement->federated_partition(target.member->name(), p.partition_index);
          if (const auto where = at.federated >= 0 ? placement->locate(at.federated) : std::nullopt)
            at.offset_base = where->offset_base;
        }
        if (at.federated < 0) continue;
        committed[{t.name, at.federated}] = {federated_offset(p.committed_offset, at.offset_base), p.metadata};
      }
    }
  }
  GroupReply reply;
  reply.group_id = group_id;
  auto add = [&](const std::string& topic, int32_t partition) {
    if (reply.topics.empty() || reply.topics.back().name != topic) reply.topics.emplace_back().name = topic;
    auto& out = reply.topics.back().partitions.emplace_back();
    out.partition_index = partition;
    auto it = committed.find({topic, partition});
    out.committed_offset = it == committed.end() ? -1 : it->second.offset;
    out.metadata = it == committed.end() ? std::optional<std::string>("") : it->second.metadata;
    out.error_code = static_cast<int16_t>(error);
  };
  if (error != ErrorCode::kNone) {
    reply.error_code = static_cast<int16_t>(error);
    if (version < kFirstGroupErrorVersion && wanted)
      for (const auto& t : *wanted)
        for (int32_t p : t.partitions) add(t.name, p);
    co_return reply;
  }
  if (wanted) {
    for (const auto& t : *wanted)
      for (int32_t p : t.partitions) add(t.name, p);
  } else {
    for (const auto& [tp, c] : committed) add(tp.first, tp.second);
  }
  co_return reply;
}

}  // namespace

boost::asio::awaitable<void> handle_offset_fetch(FederationRequest& request) {
  const auto body = request.decode<OffsetFetchRequest>();
  OffsetFetchResponse reply;
  if (request.api_version >= kFirstMultiGroupVersion) {
    for (size_t i = 0; i < body.groups.size(); ++i) {  // an index: co_await in the body (GCC 12)
      const auto& g = body.groups[i];
      std::optional<std::vector<WantedTopic>> wanted;
      if (g.topics) {
        wanted.emplace();
        for (const auto& t : *g.topics) wanted->push_back({t.name, t.partition_indexes});
      }
      GroupReply one = co_await fetch_group(request.federation, request.links, g.group_id, std::move(wanted), body.require_stable,
                                            request.api_version);
      reply.groups.push_back(std::move(one));
    }
  } else {
    std::optional<std::vector<WantedTopic>> wanted;
    if (body.topics) {
      wanted.emplace();
      for (const auto& t : *body.topics) wanted->push_back({t.name, t.partition_indexes});
    }
    GroupReply one = co_await fetch_group(request.federation, request.links, body.group_id, std::move(wanted), body.require_stable,
                                          request.api_version);
    for (auto& t : one.topics) {
      auto& topic = reply.topics.emplace_back();
      topic.name = t.name;
      for (auto& p : t.partitions)
        topic.partitions.push_back({p.partition_index, p.committed_offset, -1, p.metadata, p.error_code});
    }
    reply.error_code = one.error_code;
  }
  request.respond(reply);
}

}  // namespace sluice::federation
