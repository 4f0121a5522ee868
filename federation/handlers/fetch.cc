// Fetch (key 1), from consumers: each partition is fetched from the leader of
// its member partition, one Fetch per member broker, all at once, each
// waiting up to the client's MaxWaitMs; the answers are merged in the
// client's numbering, their record batches passed on as the members sent them
// (offsets are the members', raised by a moved partition's offset base). The answer waits for every member broker asked
// (each answers within MaxWaitMs, sooner once it has MinBytes), but at most
// MaxWaitMs plus a moment: a partition whose broker has not answered by then
// (a broker that has stopped) is left out of it, and this client's next
// fetches skip that broker until that request ends. Not answering as soon as
// the first broker has data is deliberate: a faster member would then win
// every round and starve the partitions of a slower one. MaxBytes is shared out between the member brokers (each answer
// holds at least one batch, as Kafka's). Fetch sessions are not kept: every answer says
// session 0, so clients send full fetches (KIP-227 allows a broker that).
// Leader epochs are not exposed, so none is sent on: the members' epochs mean
// nothing across members.
#include <algorithm>
#include <list>
#include <memory>
#include <map>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "federation/handlers/routing.h"
#include "protocol/error_codes.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"
#include "protocol/record_batch.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::FetchRequest;
using protocol::FetchResponse;
using Target = Forwarded<FetchRequest, FetchResponse>;
constexpr int16_t kForwardVersion = 12;

// Longest long poll passed on (Kafka's clients wait 500 ms by default), and
// the largest answer asked of one member broker (an outbound answer may be
// 101 MiB at most).
constexpr int32_t kMaxWaitMs = 30'000;
constexpr int32_t kMaxForwardedBytes = 64 << 20;
// How long past MaxWaitMs the answer waits for the member brokers' own.
constexpr std::chrono::milliseconds kGrace{200};

struct FetchTarget : Target {
  bool done = false;
  // The member's answer, once the client's answer refers to its records: kept
  // alive until they are sent (Records::owned), not copied.
  std::shared_ptr<std::string> answer_bytes;
};

// One client Fetch's forwarded requests. Shared with them: those the answer
// did not wait for end later, on their own.
struct Round {
  explicit Round(const boost::asio::any_io_executor& executor) : ready(executor) {}
  std::list<FetchTarget> targets;
  broker::AsyncEvent ready;  // every target answered
  int pending = 0;
};

struct FetchSlot : PartitionSlot<FetchTarget> {
  bool skipped = false;  // its broker still has this client's earlier long poll: left out of the answer
};

boost::asio::awaitable<void> fetch_from(std::shared_ptr<Round> round,
                                        FetchTarget* target, std::chrono::milliseconds timeout, MemberLinks& links,
                                        std::shared_ptr<std::set<MemberLinks::BrokerKey>> fetching) {
  co_await forward_one(*target, kForwardVersion, timeout, links);
  fetching->erase({target->member->name(), target->node});
  target->done = true;
  if (--round->pending == 0) round->ready.set();
}

const FetchResponse::FetchableTopicResponse::PartitionData* find_answer(const FetchResponse& reply,
                                                                       const std::string& topic, int32_t partition) {
  for (const auto& t : reply.responses)
    if (t.topic == topic)
      for (const auto& p : t.partitions)
        if (p.partition_index == partition) return &p;
  return nullptr;
}

// A moved segment's records (placement.h): each complete batch's base offset
// raised by `offset_base`, in place in the member's answer (the base offset
// is outside the batch's CRC). A cut last batch is left as it is: clients
// skip it.
void rebase_batches(std::string& frame, std::string_view records, int64_t offset_base) {
  char* at = frame.data() + (records.data() - frame.data());
  size_t left = records.size();
  while (auto header = protocol::RecordBatchHeader::parse(std::string_view(at, left))) {
    if (header->batch_length < 0 || header->total_size() > left) break;
    protocol::set_base_offset(at, header->base_offset + offset_base);
    at += header->total_size();
    left -= header->total_size();
  }
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
  auto round = std::make_shared<Round>(federation.executor());
  std::map<std::pair<MemberCluster*, int32_t>, FetchTarget*> by_node;
  std::vector<FetchSlot> slots;
  const auto fetching = request.links.fetching();
  // Each partition once (as Kafka: a map), so that a small request cannot make a huge answer.
  std::set<std::pair<std::string, int32_t>> seen;
  for (const auto& topic : body.topics) {
    const TopicPlacement* placement = federation.store().find(topic.topic);
    for (const auto& p : topic.partitions) {
      if (!seen.insert({topic.topic, p.partition}).second) continue;
      FetchSlot& slot = slots.emplace_back();
      slot.topic = topic.topic;
      slot.partition = p.partition;
      const Route where = route(federation, placement, topic.topic, p.partition);
      if (where.error != ErrorCode::kNone) {
        slot.error = where.error;
        continue;
      }
      if (fetching->count({where.member->name(), where.node})) {
        slot.skipped = true;  // this client's earlier long poll there is still out
        continue;
      }
      FetchTarget* target = target_for(round->targets, by_node, std::pair(where.member, where.node), [&](FetchTarget& t) {
        t.member = where.member;
        t.node = where.node;
        t.request.max_wait_ms = std::clamp(body.max_wait_ms, 0, kMaxWaitMs);
        t.request.min_bytes = body.min_bytes;
        t.request.isolation_level = body.isolation_level;
        t.request.session_epoch = -1;  // sessionless
      });
      auto& forwarded_topics = target->request.topics;
      if (forwarded_topics.empty() || forwarded_topics.back().topic != topic.topic)
        forwarded_topics.emplace_back().topic = topic.topic;
      auto& forwarded = forwarded_topics.back().partitions.emplace_back();
      forwarded.partition = where.member_partition;
      // Below a moved segment's base nothing was copied: the member answers OFFSET_OUT_OF_RANGE.
      forwarded.fetch_offset = p.fetch_offset - where.offset_base;
      forwarded.partition_max_bytes = std::clamp(p.partition_max_bytes, 0, kMaxForwardedBytes);
      slot.target = target;
      slot.member_partition = where.member_partition;
      slot.offset_base = where.offset_base;
    }
  }
  // MaxBytes shared out, each share under what one member answer may be.
  const int32_t share = round->targets.empty()
                            ? 0
                            : std::clamp(body.max_bytes / static_cast<int32_t>(round->targets.size()), 1, kMaxForwardedBytes);
  const auto max_wait = std::chrono::milliseconds(std::clamp(body.max_wait_ms, 0, kMaxWaitMs));
  const std::chrono::milliseconds timeout = max_wait + std::chrono::milliseconds(federation.config().request_timeout_ms);
  for (FetchTarget& target : round->targets) {
    target.request.max_bytes = share;
    fetching->insert({target.member->name(), target.node});
    ++round->pending;
    boost::asio::co_spawn(federation.executor(), fetch_from(round, &target, timeout, request.links, fetching),
                          boost::asio::detached);
  }
  if (round->pending > 0)
    co_await round->ready.wait_until(boost::asio::steady_timer::clock_type::now() + max_wait + kGrace);
  for (const FetchSlot& slot : slots) {
    if (slot.skipped || (slot.target && !slot.target->done)) continue;  // nothing to say of it yet: left out
    if (reply.responses.empty() || reply.responses.back().topic != slot.topic) {
      auto& topic = reply.responses.emplace_back();
      topic.topic = slot.topic;
      if (const TopicPlacement* placement = federation.store().find(slot.topic)) topic.topic_id = placement->topic_id;
    }
    auto& out = reply.responses.back().partitions.emplace_back();
    out.partition_index = slot.partition;
    out.high_watermark = -1;
    out.records = std::string_view{};  // empty, never null, as Kafka answers: librdkafka fails a whole answer on null
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
    out.high_watermark = federated_offset(answer->high_watermark, slot.offset_base);
    out.last_stable_offset = federated_offset(answer->last_stable_offset, slot.offset_base);
    out.log_start_offset = federated_offset(answer->log_start_offset, slot.offset_base);
    out.aborted_transactions = answer->aborted_transactions;
    if (slot.offset_base != 0 && out.aborted_transactions)
      for (auto& aborted : *out.aborted_transactions) aborted.first_offset += slot.offset_base;
    if (!slot.target->answer_bytes) slot.target->answer_bytes = std::move(slot.target->reply->frame);
    if (answer->records) {  // decoded: bytes in the member's answer
      if (slot.offset_base != 0) rebase_batches(*slot.target->answer_bytes, answer->records->bytes(), slot.offset_base);
      out.records = protocol::Records::owned(answer->records->bytes(), slot.target->answer_bytes);
    }
    if (answer->error_code == static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower)) slot.target->member->request_refresh();
  }
  request.respond(reply);
}

}  // namespace sluice::federation
