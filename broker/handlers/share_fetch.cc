// ShareFetch (key 78): a share group member's fetch from the partitions this
// broker leads (share_partition_manager.h). In order, as Kafka does:
//   1. the member's acknowledgements of earlier records (not with epoch 0),
//      each partition's all or none, durable before the answer;
//   2. the share session: epoch 0 opens it, later epochs continue it (adding
//      the partitions named, dropping the forgotten ones), -1 closes it and
//      fetches nothing (what the member still holds goes back);
//   3. records: each session partition hands the member what it may have
//      (share_partition.h) up to MaxRecords in all (a soft limit, to the end
//      of a log batch; v2's record-limit mode: a hard one, one range), and the
//      answer carries the whole log batches that hold them with the acquired
//      offset ranges;
//      with nothing to hand out it waits up to MaxWaitMs for new records or
//      records given back.
#include <algorithm>

#include "broker/async_event.h"
#include "broker/handlers/handlers.h"
#include "broker/handlers/share_request.h"
#include "broker/replica_manager.h"
#include "broker/steady_clock.h"
#include "protocol/messages/share_fetch_request.h"
#include "protocol/messages/share_fetch_response.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::ShareFetchRequest;
using protocol::ShareFetchResponse;
using PartitionData = ShareFetchResponse::ShareFetchableTopicResponse::PartitionData;
using PartitionRef = SharePartitionManager::PartitionRef;
using Clock = std::chrono::steady_clock;

constexpr int32_t kFinalEpoch = -1;
// ShareAcquireMode (v2): whole batches with MaxRecords as a soft limit, or at
// most MaxRecords as one range.
constexpr int8_t kBatchOptimized = 0;
constexpr int8_t kRecordLimit = 1;

struct Answer {
  std::map<PartitionRef, PartitionData> partitions;
  size_t bytes = 0;
  int32_t records = 0;
};

PartitionData& entry(Answer& answer, const PartitionRef& ref) {
  auto [it, inserted] = answer.partitions.try_emplace(ref);
  if (inserted) {
    it->second.partition_index = ref.second;
    it->second.current_leader.leader_id = -1;
    it->second.current_leader.leader_epoch = -1;
  }
  return it->second;
}

// Hands the member what each session partition has for it, within the request's budgets.
void acquire_records(Broker& broker, const std::string& group, const std::string& member,
                     const ShareFetchRequest& request, int16_t version, Answer& answer,
                     std::vector<ShareFetchResponse::NodeEndpoint>& endpoints) {
  SharePartitionManager& manager = *broker.share_partitions;
  const int32_t max_records = version >= 1 && request.max_records > 0 ? request.max_records : INT32_MAX;
  const size_t max_bytes = static_cast<size_t>(std::max(request.max_bytes, 0));
  const int64_t now = steady_now_ms();
  for (const PartitionRef& ref : manager.session_partitions(group, member)) {
    if (answer.records >= max_records || (answer.bytes >= max_bytes && answer.bytes > 0)) break;
    ErrorCode not_led = ErrorCode::kNone;
    Partition* partition = broker.replicas.find_led(ref.first, ref.second, not_led);
    if (!partition || !partition->log) {
      PartitionData& out = entry(answer, ref);
      out.error_code = static_cast<int16_t>(partition ? ErrorCode::kNotLeaderOrFollower : not_led);
      point_to_leader(broker, ref.first, ref.second, out, endpoints);
      continue;
    }
    if (!manager.loaded(group, *partition) && broker.share_persister) continue;  // its load failed (answered)
    SharePartition& share = manager.share_partition(group, *partition);
    const int64_t high_watermark = partition->high_watermark();
    std::vector<AcquiredRange> acquired = share.acquire(member, max_records - answer.records, high_watermark, now);
    if (acquired.empty()) continue;
    // Where the log batch holding the last acquired offset ends: the answer
    // carries whole batches. MaxRecords is a soft limit, as in Kafka: new
    // records are acquired to the end of that batch, so that no batch is
    // left half handed out.
    auto batch_end = [&](int64_t offset) {
      int64_t end = offset + 1;
      partition->log->locate(offset, 1, true, high_watermark, &end);
      return std::max(end, offset + 1);
    };
    const bool record_limit = version >= 2 && request.share_acquire_mode == kRecordLimit;
    if (record_limit && acquired.size() > 1) share.unacquire(acquired, acquired.front().last_offset + 1);
    int64_t end = batch_end(acquired.back().last_offset);
    if (!record_limit && share.end_offset() == acquired.back().last_offset + 1 && end > share.end_offset())
      for (const AcquiredRange& more : share.acquire(member, static_cast<int32_t>(end - share.end_offset()), end, now,
                                                     SharePartition::Window::kFinishBatch)) {
        if (acquired.back().last_offset + 1 == more.first_offset &&
            acquired.back().delivery_count == more.delivery_count)
          acquired.back().last_offset = more.last_offset;
        else
          acquired.push_back(more);
      }
    end = batch_end(acquired.back().last_offset);
    // The whole batches from the first acquired offset to the last; the
    // client keeps only the acquired offsets. KIP-74: the first batch of the
    // answer goes whatever its size.
    std::vector<protocol::FileRegion> regions;
    int64_t next_offset = acquired.front().first_offset;
    for (auto& slice : partition->log->locate(acquired.front().first_offset, max_bytes - std::min(max_bytes, answer.bytes),
                                              answer.bytes == 0, end, &next_offset))
      regions.push_back({std::move(slice.owner), slice.fd, slice.position, slice.length});
    if (next_offset <= acquired.back().last_offset) share.unacquire(acquired, next_offset);
    if (acquired.empty()) continue;
    protocol::Records records(std::move(regions));
    answer.bytes += records.size();
    PartitionData& out = entry(answer, ref);
    for (const AcquiredRange& range : acquired) {
      out.acquired_records.push_back({range.first_offset, range.last_offset, range.delivery_count});
      answer.records += static_cast<int32_t>(range.last_offset - range.first_offset + 1);
    }
    out.records = std::move(records);
    if (!partition->counters) partition->counters = &broker.metrics.topic(partition->topic);
    partition->counters->bytes_out->Increment(static_cast<double>(out.records->size()));
  }
}

}  // namespace

boost::asio::awaitable<void> handle_share_fetch(RequestContext& ctx) {
  auto request = ctx.decode<ShareFetchRequest>();
  Broker& broker = ctx.broker;
  ShareFetchResponse reply;
  auto fail = [&](ErrorCode code, std::string message) {
    reply.error_code = static_cast<int16_t>(code);
    reply.error_message = std::move(message);
    ctx.respond(reply);
  };
  if (auto refused = refuse_share_request(broker, request.group_id, request.member_id))
    co_return fail(refused->error, refused->message);
  const bool renew_only = ctx.api_version >= 2 && request.is_renew_ack;
  if (renew_only && (request.max_bytes != 0 || request.min_bytes != 0 || request.max_records != 0 ||
                     request.max_wait_ms != 0))
    co_return fail(ErrorCode::kInvalidRequest, "A renewal acknowledges only: MaxBytes, MinBytes, MaxRecords and "
                                               "MaxWaitMs must be 0.");
  if (ctx.api_version >= 2 && request.share_acquire_mode != kBatchOptimized &&
      request.share_acquire_mode != kRecordLimit)
    co_return fail(ErrorCode::kInvalidRequest, "Unknown ShareAcquireMode " + std::to_string(request.share_acquire_mode) + ".");
  const std::string& group = *request.group_id;
  const std::string& member = *request.member_id;
  SharePartitionManager& manager = *broker.share_partitions;

  // The session's changes, and the acknowledgements.
  std::vector<protocol::Uuid> unknown_topics;
  const auto acknowledgements = acknowledgements_of(broker.metadata, request.topics, &unknown_topics);
  if (request.share_session_epoch == 0 && !acknowledgements.empty())
    co_return fail(ErrorCode::kInvalidRequest, "Acknowledge data present on initial fetch request.");
  std::vector<PartitionRef> added, forgotten, missing;
  for (const auto& topic : request.topics)
    if (const controller::TopicInfo* info = broker.metadata.find_topic(topic.topic_id))
      for (const auto& p : topic.partitions)
        (p.partition_index >= 0 && p.partition_index < info->partition_count() ? added : missing)
            .push_back({info->name, p.partition_index});
  for (const auto& topic : request.forgotten_topics_data)
    if (const controller::TopicInfo* info = broker.metadata.find_topic(topic.topic_id))
      for (int32_t p : topic.partitions) forgotten.push_back({info->name, p});
  if (request.share_session_epoch == kFinalEpoch) added.clear();  // a final fetch fetches nothing
  if (const ErrorCode session = manager.continue_session(group, member, request.share_session_epoch, added, forgotten);
      session != ErrorCode::kNone)
    co_return fail(session, session_error_message(session));

  Answer answer;
  std::vector<ShareFetchResponse::NodeEndpoint> endpoints;
  for (const PartitionRef& ref : missing)
    entry(answer, ref).error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition);
  // In a cluster: the share-partitions this request uses, read from their coordinators first.
  std::set<PartitionRef> used;
  for (const auto& ref : manager.session_partitions(group, member)) used.insert(ref);
  for (const auto& [ref, batches] : acknowledgements) used.insert(ref);
  const auto failed_loads = co_await load_share_partitions(broker, group, used);
  for (const auto& [ref, error] : failed_loads) {
    if (error != ErrorCode::kNotLeaderOrFollower) continue;  // not reachable now: nothing from it this time
    PartitionData& out = entry(answer, ref);
    out.error_code = static_cast<int16_t>(error);
    point_to_leader(broker, ref.first, ref.second, out, endpoints);
  }
  bool acknowledged = false;
  const uint64_t since = manager.write_position();
  if (!acknowledgements.empty()) {
    for (const auto& [ref, error] : manager.acknowledge(group, member, acknowledgements, renew_only, steady_now_ms())) {
      PartitionData& out = entry(answer, ref);
      out.acknowledge_error_code = static_cast<int16_t>(error);
      if (error == ErrorCode::kNotLeaderOrFollower) point_to_leader(broker, ref.first, ref.second, out, endpoints);
    }
    acknowledged = true;
  }
  if (request.share_session_epoch == kFinalEpoch) manager.close_session(group, member);
  // This request's own writes end here: other writes made while it waits for records are not its.
  const uint64_t upto = manager.write_position();

  if (request.share_session_epoch != kFinalEpoch && !renew_only) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(request.max_wait_ms, 0));
    acquire_records(broker, group, member, request, ctx.api_version, answer, endpoints);
    // Nothing to hand out and no error to tell: wait for records, or for
    // records to come back, then try once more. A request that carried
    // acknowledgements waits too, as Kafka's does: answering it at once, empty,
    // only costs the client another round trip (bench/SHARE.md: with 3 and 10
    // consumers, a third more fetches and client CPU than against Kafka).
    auto nothing_to_tell = [&] {
      return std::all_of(answer.partitions.begin(), answer.partitions.end(),
                         [](const auto& entry) { return entry.second.error_code == 0; });
    };
    // A session with no partition served here (emptied by the request itself, as a client's last
    // acknowledgements of partitions it gave up do; or whose loads failed) is answered at once, as
    // Kafka does: no record could wake the wait.
    auto something_to_wait_for = [&] {
      for (const auto& [topic, index] : manager.session_partitions(group, member)) {
        ErrorCode not_led = ErrorCode::kNone;
        Partition* p = broker.replicas.find_led(topic, index, not_led);
        if (p && p->log && (!broker.share_persister || manager.loaded(group, *p))) return true;
      }
      return false;
    };
    while (answer.records == 0 && nothing_to_tell() && Clock::now() < deadline && something_to_wait_for()) {
      AsyncEvent changed(broker.executor);
      const auto partitions = manager.session_partitions(group, member);
      for (const auto& [topic, index] : partitions)
        if (Partition* p = broker.replicas.find(topic, index)) p->waiters.push_back(&changed);
      // Locks expire on the manager's clock (every 100 ms), which wakes these partitions too.
      co_await changed.wait_until(deadline);
      for (const auto& [topic, index] : partitions)
        if (Partition* p = broker.replicas.find(topic, index)) std::erase(p->waiters, &changed);
      acquire_records(broker, group, member, request, ctx.api_version, answer, endpoints);
    }
  }
  if (acknowledged && !co_await manager.wait_durable(since, upto))
    for (auto& [ref, out] : answer.partitions)
      if (out.acknowledge_error_code == 0) out.acknowledge_error_code = static_cast<int16_t>(ErrorCode::kKafkaStorageError);

  // Topics whose id this broker does not know.
  for (const auto& id : unknown_topics) {
    auto& topic = reply.responses.emplace_back();
    topic.topic_id = id;
    for (const auto& t : request.topics)
      if (t.topic_id == id)
        for (const auto& p : t.partitions) {
          auto& out = topic.partitions.emplace_back();
          out.partition_index = p.partition_index;
          out.error_code = static_cast<int16_t>(ErrorCode::kUnknownTopicId);
          out.current_leader = {-1, -1};
        }
  }
  for (auto& [ref, out] : answer.partitions) {
    const controller::TopicInfo* info = broker.metadata.find_topic(ref.first);
    if (!info) continue;
    if (reply.responses.empty() || !(reply.responses.back().topic_id == info->id))
      reply.responses.emplace_back().topic_id = info->id;
    reply.responses.back().partitions.push_back(std::move(out));
  }
  reply.node_endpoints = std::move(endpoints);
  reply.acquisition_lock_timeout_ms = static_cast<int32_t>(manager.lock_duration_ms(group));
  ctx.respond(reply);
}

}  // namespace sluice::broker
