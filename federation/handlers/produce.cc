// Produce (key 0): each partition's batches go to the leader of its member
// partition, one Produce per member broker, all at once; the answers are put
// back in the client's numbering. The client's next request is read as soon
// as these are on their way (client_connection.h). acks=0 is forwarded as
// acks=1 (a member does not answer acks=0, and the endpoint must know the
// request is done) and the client gets no answer, as it expects.
#include <list>
#include <map>

#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "federation/handlers/routing.h"
#include "protocol/error_codes.h"
#include "protocol/record_batch.h"
#include "protocol/messages/produce_request.h"
#include "protocol/messages/produce_response.h"

namespace sluice::federation {
namespace {

using protocol::ErrorCode;
using protocol::ProduceRequest;
using protocol::ProduceResponse;
using Target = Forwarded<ProduceRequest, ProduceResponse>;
constexpr int16_t kForwardVersion = 9;

using Slot = PartitionSlot<Target>;

const ProduceResponse::TopicProduceResponse::PartitionProduceResponse* find_answer(const ProduceResponse& reply,
                                                                                   const std::string& topic,
                                                                                   int32_t partition) {
  for (const auto& t : reply.responses)
    if (t.name == topic)
      for (const auto& p : t.partition_responses)
        if (p.index == partition) return &p;
  return nullptr;
}

}  // namespace

boost::asio::awaitable<void> handle_produce(FederationRequest& request) {
  const auto body = request.decode<ProduceRequest>();
  Federation& federation = request.federation;
  std::list<Target> targets;  // a list: forward() holds a reference to its element
  std::map<std::pair<MemberCluster*, int32_t>, Target*> by_node;
  std::vector<Slot> slots;
  std::vector<int64_t> spans;  // per slot: the offsets its batch takes (for acks=1 ends)
  for (const auto& topic : body.topic_data) {
    const TopicPlacement* placement = federation.store().find(topic.name);
    for (const auto& p : topic.partition_data) {
      Slot& slot = slots.emplace_back(Slot{topic.name, p.index});
      // acks=all needs no span (nothing above the high watermark to remember): no parse then.
      const auto header = body.acks != -1 && p.records && p.records->in_memory()
                              ? protocol::RecordBatchHeader::parse(p.records->bytes())
                              : std::nullopt;
      spans.push_back(header ? int64_t{header->last_offset_delta} + 1 : 1);
      const Route where = route(federation, placement, topic.name, p.index);
      if (where.error != ErrorCode::kNone) {
        slot.error = where.error;
        continue;
      }
      if (federation.moving_frozen(topic.name, where.member->name())) {
        slot.error = ErrorCode::kNotLeaderOrFollower;  // switching members: retriable, the client asks again
        continue;
      }
      Target* target = target_for(targets, by_node, std::pair(where.member, where.node), [&](Target& t) {
        t.member = where.member;
        t.node = where.node;
        t.request.transactional_id = body.transactional_id;
        t.request.acks = body.acks == 0 ? int16_t{1} : body.acks;
        t.request.timeout_ms = body.timeout_ms;
      });
      auto& forwarded_topic = target->request.topic_data;
      if (forwarded_topic.empty() || forwarded_topic.back().name != topic.name) forwarded_topic.emplace_back().name = topic.name;
      forwarded_topic.back().partition_data.push_back({where.member_partition, p.records});
      slot.target = target;
      slot.member_partition = where.member_partition;
      slot.offset_base = where.offset_base;
    }
  }
  // Counted until answered: a move's switch waits for what was sent to the old member.
  WritesInFlight in_flight(federation);
  for (const Slot& slot : slots)
    if (slot.target) in_flight.add(slot.topic, slot.target->member->name());
  const std::chrono::milliseconds timeout(std::max(body.timeout_ms, 0) + federation.config().request_timeout_ms);
  // The client's next request is read once these are queued for the members (client_connection.h).
  co_await forward_all(federation, targets, kForwardVersion, timeout, request.links, [&request] { request.release_input(); });
  if (body.acks == 0) {
    // No answer; as Kafka, the connection is closed when a partition failed, so that the
    // client notices (it asks for metadata again and reconnects).
    request.send_response = false;
    for (const Slot& slot : slots) {
      const bool answered_ok = slot.error == ErrorCode::kNone && slot.target->reply;
      if (!answered_ok) request.close_connection = true;
      if (answered_ok)
        for (const auto& t : slot.target->reply->body.responses)
          for (const auto& p : t.partition_responses)
            if (t.name == slot.topic && p.index == slot.member_partition && p.error_code != 0) request.close_connection = true;
    }
    co_return;
  }
  ProduceResponse reply;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& slot = slots[i];
    if (reply.responses.empty() || reply.responses.back().name != slot.topic) reply.responses.emplace_back().name = slot.topic;
    auto& out = reply.responses.back().partition_responses.emplace_back();
    out.index = slot.partition;
    if (slot.error != ErrorCode::kNone) {
      out.error_code = static_cast<int16_t>(slot.error);
      continue;
    }
    const auto* answer = slot.target->reply ? find_answer(slot.target->reply->body, slot.topic, slot.member_partition)
                                            : nullptr;
    if (answer == nullptr) {
      // Not answered: the batches may or may not have been appended (retriable, as a timeout is).
      out.error_code = static_cast<int16_t>(ErrorCode::kRequestTimedOut);
      out.error_message = slot.target->failure;
      continue;
    }
    out.error_code = answer->error_code;
    if (answer->error_code == 0 && body.acks != -1 && answer->base_offset >= 0)
      federation.note_acknowledged(slot.topic, slot.target->member->name(), slot.member_partition,
                                   answer->base_offset + spans[i]);
    out.base_offset = federated_offset(answer->base_offset, slot.offset_base);
    out.log_append_time_ms = answer->log_append_time_ms;
    out.log_start_offset = federated_offset(answer->log_start_offset, slot.offset_base);
    out.record_errors = answer->record_errors;
    out.error_message = answer->error_message;
    if (answer->error_code == static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower)) slot.target->member->request_refresh();
  }
  request.respond(reply);
}

}  // namespace sluice::federation
