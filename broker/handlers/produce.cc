// Produce (key 0): check each partition's record batch as Kafka does, append
// it, and answer once the data is as durable as the producer asked: acks=1
// after the write, acks=all after the group commit has synced it, acks=0 never.
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <map>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

#include "broker/async_event.h"
#include "broker/handlers/handlers.h"
#include "broker/log.h"
#include "broker/replication_wait.h"
#include "broker/topic_settings.h"
#include "protocol/messages/produce_request.h"
#include "protocol/messages/produce_response.h"
#include "protocol/record_batch.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;
using protocol::ProduceRequest;
using protocol::ProduceResponse;
using PartitionReply = ProduceResponse::TopicProduceResponse::PartitionProduceResponse;

constexpr int16_t kFirstRecordBatchVersion = 3;  // v0-2 carry the old message formats
// Compressed batches up to this size are opened on the network thread, with
// their output bounded by kInlineUncompressedBytes; larger ones, and any that
// expands past that bound, are opened on the CPU worker. A small batch costs
// less to check than a trip to another thread; a large one would stall every
// other client for milliseconds (gzip inflates ~1 MB in a few).
constexpr size_t kInlineCompressedBytes = 16 << 10;
constexpr size_t kInlineUncompressedBytes = 256 << 10;

PartitionReply partition_error(int32_t index, ErrorCode error, std::string message = {}) {
  PartitionReply reply;
  reply.index = index;
  reply.error_code = static_cast<int16_t>(error);
  reply.base_offset = -1;
  if (!message.empty()) reply.error_message = std::move(message);
  return reply;
}

// An acks=all answer waiting for the high watermark to pass `next_offset`.
struct AwaitingReplicas {
  std::string topic;
  int32_t index;
  int64_t next_offset;
  size_t topic_at, partition_at;  // where its answer is in the response
};

// Waits until the high watermark of each partition passes its batch, and
// fills in what Kafka answers otherwise: NOT_LEADER_OR_FOLLOWER if this
// broker lost the leadership meanwhile, NOT_ENOUGH_REPLICAS_AFTER_APPEND if
// the ISR fell below min.insync.replicas, REQUEST_TIMED_OUT past the timeout.
boost::asio::awaitable<void> wait_for_replicas(Broker& broker, const std::vector<AwaitingReplicas>& waiting,
                                               ProduceResponse& response, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& w : waiting) {
    PartitionReply* reply = &response.responses[w.topic_at].partition_responses[w.partition_at];
    if (reply->error_code != 0) continue;
    const ErrorCode error = co_await wait_for_high_watermark(broker, w.topic, w.index, w.next_offset, deadline);
    if (error != ErrorCode::kNone) *reply = partition_error(w.index, error);
  }
}

// Kafka reads a Produce as a map from partition to records: a partition named
// twice (in one topic entry, or under a topic listed twice) gets one answer,
// for its last batch, and the earlier ones are dropped unread. The answer
// stands where the partition first appeared.
void keep_last_batch_per_partition(ProduceRequest& request) {
  if (request.topic_data.size() == 1 && request.topic_data[0].partition_data.size() <= 1) return;  // the usual request
  std::unordered_map<std::string_view, size_t> topic_at;
  bool repeated = false;
  for (const auto& topic : request.topic_data) {
    repeated |= !topic_at.emplace(topic.name, topic_at.size()).second;
    std::unordered_set<int32_t> partitions;
    for (const auto& data : topic.partition_data) repeated |= !partitions.insert(data.index).second;
  }
  if (!repeated) return;
  std::vector<ProduceRequest::TopicProduceData> merged;
  std::unordered_map<std::string, size_t> merged_topic_at;
  std::map<std::pair<size_t, int32_t>, size_t> merged_partition_at;
  for (auto& topic : request.topic_data) {
    auto [at, fresh] = merged_topic_at.emplace(topic.name, merged.size());
    if (fresh) merged.emplace_back().name = topic.name;
    auto& into = merged[at->second].partition_data;
    for (auto& data : topic.partition_data) {
      auto [slot, first] = merged_partition_at.emplace(std::pair{at->second, data.index}, into.size());
      if (first)
        into.push_back(std::move(data));
      else
        into[slot->second] = std::move(data);
    }
  }
  request.topic_data = std::move(merged);
}

// True if the first batch of `records` is a transactional one, as Kafka reads
// a request's flags (before any validation of the batch).
bool first_batch_is_transactional(const std::optional<protocol::Records>& records) {
  if (!records) return false;
  auto header = protocol::RecordBatchHeader::parse(records->bytes());
  return header && header->magic == 2 && header->total_size() <= records->bytes().size() && header->is_transactional();
}

// Checks every partition's batch before anything is appended: the header and
// CRC here, the records of compressed batches (the costly part) on the CPU
// worker when they are large. One verdict per partition, in request order.
boost::asio::awaitable<std::vector<protocol::ProducedBatch>> check_batches(RequestContext& ctx,
                                                                           const ProduceRequest& request) {
  Broker& broker = ctx.broker;
  const size_t max_uncompressed = static_cast<size_t>(broker.config.get_long("socket.request.max.bytes"));
  std::vector<protocol::ProducedBatch> verdicts;
  struct Deferred {
    size_t verdict;
    std::string_view batch;
  };
  std::vector<Deferred> deferred;
  for (const auto& topic : request.topic_data) {
    const controller::TopicInfo* info = broker.metadata.find_topic(topic.name);
    const int32_t max_message_bytes =
        info ? std::stoi(topic_config_value(broker.config, *info, "max.message.bytes")) : 0;
    for (const auto& data : topic.partition_data) {
      ErrorCode not_here = ErrorCode::kNone;
      if (!broker.replicas.find_led(topic.name, data.index, not_here)) {
        // Unchecked: refused even if the partition appears while others are checked.
        verdicts.emplace_back().error = not_here;
        continue;
      }
      std::optional<std::string_view> records;
      if (data.records) records = data.records->bytes();
      protocol::ProducedBatch& verdict =
          verdicts.emplace_back(protocol::check_produced_batch(records, ctx.api_version, max_message_bytes));
      if (verdict.error != ErrorCode::kNone || !verdict.records_unchecked) continue;
      if (records->size() <= kInlineCompressedBytes) {
        protocol::ProducedBatch inline_verdict =
            protocol::check_compressed_records(*records, verdict.header, std::min(max_uncompressed, kInlineUncompressedBytes));
        if (inline_verdict.error != ErrorCode::kMessageTooLarge || max_uncompressed <= kInlineUncompressedBytes) {
          verdict = std::move(inline_verdict);
          continue;
        }
      }
      deferred.push_back({verdicts.size() - 1, *records});
    }
  }
  if (!deferred.empty()) {
    co_await broker.cpu_worker.run([&verdicts, &deferred, max_uncompressed] {
      for (const Deferred& d : deferred)
        verdicts[d.verdict] = protocol::check_compressed_records(d.batch, verdicts[d.verdict].header, max_uncompressed);
    });
  }
  co_return verdicts;
}

}  // namespace

boost::asio::awaitable<void> handle_produce(RequestContext& ctx) {
  auto request = ctx.decode<ProduceRequest>();
  Broker& broker = ctx.broker;
  const int16_t acks = request.acks;

  ErrorCode request_error = ErrorCode::kNone;
  if (ctx.api_version < kFirstRecordBatchVersion) request_error = ErrorCode::kUnsupportedVersion;
  else if (acks != 0 && acks != 1 && acks != -1) request_error = ErrorCode::kInvalidRequiredAcks;

  // Transactional batches need a transactional id (and Sluice has no
  // transaction coordinator yet): the whole request is refused, as Kafka does
  // before it looks at any batch.
  if (request_error == ErrorCode::kNone && !request.transactional_id) {
    for (const auto& topic : request.topic_data)
      for (const auto& data : topic.partition_data)
        if (first_batch_is_transactional(data.records)) request_error = ErrorCode::kTransactionalIdAuthorizationFailed;
  }

  std::vector<protocol::ProducedBatch> verdicts;
  if (request_error == ErrorCode::kNone) {
    keep_last_batch_per_partition(request);
    verdicts = co_await check_batches(ctx, request);
  }
  size_t next_verdict = 0;

  ProduceResponse reply;
  storage::SyncList to_sync;
  std::vector<AwaitingReplicas> to_replicate;
  bool any_error = false;
  bool woke_fetches = false;
  for (auto& topic : request.topic_data) {
    auto& topic_reply = reply.responses.emplace_back();
    topic_reply.name = topic.name;
    const controller::TopicInfo* info = broker.metadata.find_topic(topic.name);
    // The topic's settings, looked up once for all its partitions.
    int32_t min_insync_replicas = 1;
    bool log_append_time = false;
    if (info) {
      min_insync_replicas = std::stoi(topic_config_value(broker.config, *info, "min.insync.replicas"));
      log_append_time = topic_config_value(broker.config, *info, "message.timestamp.type") == "LogAppendTime";
    }
    for (auto& data : topic.partition_data) {
      protocol::ProducedBatch batch = request_error == ErrorCode::kNone ? std::move(verdicts[next_verdict++])
                                                                        : protocol::ProducedBatch{};
      ErrorCode not_here = ErrorCode::kUnknownTopicOrPartition;
      Partition* partition = info ? broker.replicas.find_led(topic.name, data.index, not_here) : nullptr;
      ErrorCode error = request_error;
      // Only the group coordinators write to __consumer_offsets (Kafka checks this first).
      if (error == ErrorCode::kNone && controller::is_internal_topic(topic.name)) error = ErrorCode::kInvalidTopicException;
      if (error == ErrorCode::kNone && !partition) error = not_here;
      // acks=all needs min.insync.replicas in sync before anything is appended.
      if (error == ErrorCode::kNone && acks == -1 &&
          static_cast<int64_t>(partition->isr.size()) < min_insync_replicas)
        error = ErrorCode::kNotEnoughReplicas;
      if (error != ErrorCode::kNone) {
        topic_reply.partition_responses.push_back(partition_error(data.index, error));
        any_error = true;
        continue;
      }
      std::optional<std::string_view> records;
      if (data.records) records = data.records->bytes();
      if (batch.error != ErrorCode::kNone) {
        topic_reply.partition_responses.push_back(partition_error(data.index, batch.error, batch.error_message));
        any_error = true;
        continue;
      }
      if (records->size() > partition->log->options().segment_bytes) {
        // No segment can hold it (Kafka's answer too).
        topic_reply.partition_responses.push_back(partition_error(
            data.index, ErrorCode::kRecordListTooLarge,
            "Message batch size is " + std::to_string(records->size()) + " bytes in append to partition " + topic.name +
                "-" + std::to_string(data.index) + " which exceeds the maximum configured segment size of " +
                std::to_string(partition->log->options().segment_bytes) + "."));
        any_error = true;
        continue;
      }
      // An idempotent producer's batch: a retry gets its first answer again; a
      // gap or a stale epoch is refused before anything is written.
      const protocol::RecordBatchHeader& header = batch.header;
      const bool idempotent = header.producer_id >= 0 && broker.idempotence_enabled;
      const int32_t record_count = header.last_offset_delta + 1;
      if (idempotent) {
        auto verdict =
            partition->producers.check(header.producer_id, header.producer_epoch, header.base_sequence, record_count);
        if (verdict.kind == ProducerStateTable::Verdict::Kind::kReject) {
          topic_reply.partition_responses.push_back(partition_error(data.index, verdict.error, verdict.message));
          any_error = true;
          continue;
        }
        if (verdict.kind == ProducerStateTable::Verdict::Kind::kDuplicate) {
          PartitionReply dup;
          dup.index = data.index;
          dup.base_offset = verdict.duplicate.first_offset;
          dup.log_append_time_ms = verdict.duplicate.max_timestamp;  // what Kafka answers for a duplicate
          dup.log_start_offset = partition->log->log_start_offset();
          topic_reply.partition_responses.push_back(std::move(dup));
          // The first copy may not be synced or replicated yet: this answer waits for it too.
          if (acks == -1) {
            to_sync.append(partition->log->to_sync());
            to_replicate.push_back({topic.name, data.index, verdict.duplicate.last_offset + 1,
                                    reply.responses.size() - 1, topic_reply.partition_responses.size() - 1});
          }
          continue;
        }
      }
      char* bytes = ctx.mutable_at(*records);
      protocol::set_partition_leader_epoch(bytes, partition->leader_epoch);
      PartitionReply ok;
      ok.index = data.index;
      if (log_append_time) {
        const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
        protocol::stamp_log_append_time(bytes, records->size(), now_ms);
        batch.header.max_timestamp = now_ms;
        ok.log_append_time_ms = now_ms;
      }
      try {
        ok.base_offset = broker.replicas.append_as_leader(*partition, std::span<char>(bytes, records->size()),
                                                          {batch.header.last_offset_delta, batch.header.max_timestamp});
      } catch (const std::system_error& e) {
        SLUICE_LOG(kError, "append to " << topic.name << "-" << data.index << " failed: " << e.what());
        topic_reply.partition_responses.push_back(partition_error(data.index, ErrorCode::kKafkaStorageError));
        any_error = true;
        continue;
      }
      if (idempotent)
        partition->producers.record(header.producer_id, header.producer_epoch, header.base_sequence, record_count,
                                    ok.base_offset, ok.base_offset + header.last_offset_delta, batch.header.max_timestamp);
      ok.log_start_offset = partition->log->log_start_offset();
      if (!partition->counters) partition->counters = &broker.metrics.topic(partition->topic);
      partition->counters->bytes_in->Increment(static_cast<double>(records->size()));
      partition->counters->records_in->Increment(record_count);
      const int64_t appended_at = ok.base_offset;
      topic_reply.partition_responses.push_back(std::move(ok));
      if (acks == -1)
        to_replicate.push_back({topic.name, data.index, appended_at + batch.header.last_offset_delta + 1,
                                reply.responses.size() - 1, topic_reply.partition_responses.size() - 1});
      // acks=all, or the topic's flush.messages reached: answered after the group commit.
      if (partition->note_append(record_count) || acks == -1) {
        to_sync.append(partition->log->to_sync());
        partition->unflushed_messages = 0;
      }
      const bool consumers_waiting = !partition->waiters.empty();
      broker.replicas.after_leader_append(*partition, appended_at);
      woke_fetches |= consumers_waiting && partition->waiters.empty();
    }
  }
  // Everything is appended: the connection may read the producer's next request while this one
  // waits for the sync and the replicas (its appends follow these, in order).
  ctx.release();
  // The consumers waiting for this data are answered before the producer: the
  // end-to-end latency runs through them, while the producer already has its
  // next batch under way. (The woken fetches were queued first; this lets them run.)
  if (woke_fetches) co_await boost::asio::post(broker.executor, boost::asio::use_awaitable);

  if (acks == 0) {
    // No response is expected; Kafka signals a failure by closing the connection.
    if (!to_sync.empty()) broker.flusher.flush(to_sync, [](bool) {});  // flush.messages, nobody waiting
    ctx.send_response = false;
    ctx.close_connection = any_error;
    co_return;
  }
  if (!to_sync.empty() && !co_await wait_for_sync(broker, to_sync)) {
    for (auto& topic : reply.responses)
      for (auto& p : topic.partition_responses)
        if (p.error_code == 0) p = partition_error(p.index, ErrorCode::kKafkaStorageError);
  }
  // acks=all: then every in-sync replica must have it (the high watermark past it).
  if (!to_replicate.empty())
    co_await wait_for_replicas(broker, to_replicate, reply, std::chrono::milliseconds(std::max(request.timeout_ms, 0)));
  ctx.respond(reply);
}

}  // namespace sluice::broker
