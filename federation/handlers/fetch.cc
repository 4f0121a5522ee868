// Fetch (key 1), from consumers: each partition is fetched from the leader of
// its member partition, one Fetch per member broker, all at once, each
// waiting up to the client's MaxWaitMs; the answers are merged in the
// client's numbering, their record batches passed on as the members sent them
// (offsets are the members'). Fetch sessions are not kept: every answer says
// session 0, so clients send full fetches (KIP-227 allows a broker that).
// Leader epochs are not exposed, so none is sent on: the members' epochs mean
// nothing across members.
#include <list>
#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::FetchRequest;
using protocol::FetchResponse;
using Target = Forwarded<FetchRequest, FetchResponse>;
constexpr int16_t kForwardVersion = 12;

struct Slot {
  std::string topic;
  int32_t partition = 0;
  ErrorCode error = ErrorCode::kNone;
  Target* target = nullptr;
  int32_t member_partition = -1;
};

const FetchResponse::FetchableTopicResponse::PartitionData* find_answer(const FetchResponse& reply,
                                                                       const std::string& topic, int32_t partition) {
  for (const auto& t : reply.responses)
    if (t.topic == topic)
      for (const auto& p : t.partitions)
        if (p.partition_index == partition) return &p;
  return nullptr;
}

}  // namespace

boost::asio::awaitable<void> handle_fetch(FederationRequest& request) {
  const auto body = request.decode<FetchRequest>();
  Federation& federation = request.federation;
  FetchResponse reply;
  if (body.replica_id >= 0 || body.replica_state.replica_id >= 0) {
    // Replication is the members' business: the endpoint has no replicas.
    reply.error_code = static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower);
    request.respond(reply);
    co_return;
  }
  if (body.session_id != 0 || body.session_epoch > 0) {
    reply.error_code = static_cast<int16_t>(body.session_id != 0 ? ErrorCode::kFetchSessionIdNotFound
                                                                  : ErrorCode::kInvalidFetchSessionEpoch);
    request.respond(reply);
    co_return;
  }
  std::list<Target> targets;
  std::map<std::pair<MemberCluster*, int32_t>, Target*> by_node;
  std::vector<Slot> slots;
  for (const auto& topic : body.topics) {
    const TopicPlacement* placement = federation.store().find(topic.topic);
    for (const auto& p : topic.partitions) {
      Slot& slot = slots.emplace_back(Slot{topic.topic, p.partition});
      const auto where = placement ? placement->locate(p.partition) : std::nullopt;
      if (!where) {
        slot.error = ErrorCode::kUnknownTopicOrPartition;
        continue;
      }
      MemberCluster* member = federation.member(*where->cluster);
      const int32_t node = member ? member->leader_of(topic.topic, where->partition) : -1;
      if (node < 0) {
        slot.error = ErrorCode::kNotLeaderOrFollower;
        continue;
      }
      Target*& target = by_node[{member, node}];
      if (target == nullptr) {
        target = &targets.emplace_back();
        target->member = member;
        target->node = node;
        target->request.max_wait_ms = body.max_wait_ms;
        target->request.min_bytes = body.min_bytes;
        target->request.max_bytes = body.max_bytes;
        target->request.isolation_level = body.isolation_level;
        target->request.session_epoch = -1;  // sessionless
      }
      auto& forwarded_topics = target->request.topics;
      if (forwarded_topics.empty() || forwarded_topics.back().topic != topic.topic)
        forwarded_topics.emplace_back().topic = topic.topic;
      auto& forwarded = forwarded_topics.back().partitions.emplace_back();
      forwarded.partition = where->partition;
      forwarded.fetch_offset = p.fetch_offset;
      forwarded.partition_max_bytes = p.partition_max_bytes;
      slot.target = target;
      slot.member_partition = where->partition;
    }
  }
  WaitGroup group(federation.executor());
  const std::chrono::milliseconds timeout(std::max(body.max_wait_ms, 0) + federation.config().request_timeout_ms);
  for (Target& target : targets) {
    group.add();
    boost::asio::co_spawn(federation.executor(), forward(target, kForwardVersion, timeout, group),
                          boost::asio::detached);
  }
  co_await group.wait();
  for (const Slot& slot : slots) {
    if (reply.responses.empty() || reply.responses.back().topic != slot.topic) {
      auto& topic = reply.responses.emplace_back();
      topic.topic = slot.topic;
      if (const TopicPlacement* placement = federation.store().find(slot.topic)) topic.topic_id = placement->topic_id;
    }
    auto& out = reply.responses.back().partitions.emplace_back();
    out.partition_index = slot.partition;
    out.high_watermark = -1;
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
    out.high_watermark = answer->high_watermark;
    out.last_stable_offset = answer->last_stable_offset;
    out.log_start_offset = answer->log_start_offset;
    out.aborted_transactions = answer->aborted_transactions;
    out.records = answer->records;  // a view into the member's answer, alive until this is encoded
    if (answer->error_code == static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower)) slot.target->member->request_refresh();
  }
  request.respond(reply);
}

}  // namespace sluice::federation
