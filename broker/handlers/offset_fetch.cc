// OffsetFetch (key 9): a group's committed positions, for some partitions or
// (v2+, topics null) all of them; v8+ asks for several groups at once.
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/offset_fetch_request.h"
#include "protocol/messages/offset_fetch_response.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::OffsetFetchRequest;
using protocol::OffsetFetchResponse;
using GroupReply = OffsetFetchResponse::OffsetFetchResponseGroup;

constexpr int16_t kFirstMultiGroupVersion = 8;
constexpr int16_t kFirstGroupErrorVersion = 2;

struct WantedTopic {
  std::string name;
  std::vector<int32_t> partitions;
};

// The answer for one group in the v8+ shape; older versions copy it out.
// A group this broker does not coordinate gets the error for the group
// (v2+), or for each partition asked for (v0-1, which have no group error).
GroupReply fetch_group(const GroupCoordinator& groups, const std::string& group_id,
                       const std::optional<std::vector<WantedTopic>>& wanted, int16_t version) {
  GroupReply reply;
  reply.group_id = group_id;
  const ErrorCode owner = groups.ownership(group_id);
  auto add = [&](const std::string& topic, int32_t partition, const std::optional<CommittedOffset>& c) {
    if (reply.topics.empty() || reply.topics.back().name != topic) reply.topics.emplace_back().name = topic;
    auto& p = reply.topics.back().partitions.emplace_back();
    p.partition_index = partition;
    p.committed_offset = c ? c->offset : -1;
    p.committed_leader_epoch = c ? c->leader_epoch : -1;
    p.metadata = c ? c->metadata.value_or("") : "";
    p.error_code = static_cast<int16_t>(owner);
  };
  if (owner != ErrorCode::kNone) {
    reply.error_code = static_cast<int16_t>(owner);
    if (version < kFirstGroupErrorVersion && wanted)
      for (const auto& t : *wanted)
        for (int32_t p : t.partitions) add(t.name, p, std::nullopt);
    return reply;
  }
  if (wanted) {
    for (const auto& t : *wanted)
      for (int32_t p : t.partitions) add(t.name, p, groups.committed(group_id, {t.name, p}));
  } else {
    for (const auto& [tp, c] : groups.committed_offsets(group_id)) add(tp.first, tp.second, c);
  }
  return reply;
}

}  // namespace

boost::asio::awaitable<void> handle_offset_fetch(RequestContext& ctx) {
  auto request = ctx.decode<OffsetFetchRequest>();
  const GroupCoordinator& groups = ctx.broker.groups;
  OffsetFetchResponse reply;

  if (ctx.api_version >= kFirstMultiGroupVersion) {
    for (const auto& g : request.groups) {
      std::optional<std::vector<WantedTopic>> wanted;
      if (g.topics) {
        wanted.emplace();
        for (const auto& t : *g.topics) wanted->push_back({t.name, t.partition_indexes});
      }
      reply.groups.push_back(fetch_group(groups, g.group_id, wanted, ctx.api_version));
    }
  } else {
    std::optional<std::vector<WantedTopic>> wanted;
    if (request.topics) {
      wanted.emplace();
      for (const auto& t : *request.topics) wanted->push_back({t.name, t.partition_indexes});
    }
    GroupReply one = fetch_group(groups, request.group_id, wanted, ctx.api_version);
    for (auto& t : one.topics) {
      auto& topic = reply.topics.emplace_back();
      topic.name = t.name;
      for (auto& p : t.partitions)
        topic.partitions.push_back({p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata, p.error_code});
    }
    reply.error_code = one.error_code;
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
