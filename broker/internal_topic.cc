#include "broker/internal_topic.h"

#include <span>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.h"
#include "broker/log.h"
#include "broker/replication_wait.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"

namespace sluice::broker {
namespace {

using protocol::ErrorCode;

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The end of the last complete batch in `bytes` (which starts with a batch).
int64_t end_of_batches(std::string_view bytes) {
  int64_t end = -1;
  while (auto header = protocol::RecordBatchHeader::parse(bytes)) {
    if (header->batch_length < 0 || bytes.size() < header->total_size()) break;
    end = header->base_offset + header->last_offset_delta + 1;
    bytes.remove_prefix(header->total_size());
  }
  return end;
}

}  // namespace

boost::asio::awaitable<bool> replay_internal_partition(
    Broker& broker, std::string_view topic, int32_t index, size_t chunk_bytes, const std::function<bool()>& still_wanted,
    const std::function<bool(std::optional<std::string_view> key, std::optional<std::string_view> value)>& apply,
    ReplayCount& count) {
  int64_t next = -1;
  for (;;) {
    if (!still_wanted()) co_return false;
    Partition* partition = broker.replicas.find(topic, index);
    if (!partition || !partition->log) co_return false;
    next = std::max(next, partition->log->log_start_offset());
    if (next >= partition->log->log_end_offset()) co_return true;
    std::string bytes;
    try {
      bytes = partition->log->read(next, chunk_bytes, /*at_least_one=*/true);
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "reading " << topic << "-" << index << " at " << next << " failed: " << e.what()
                                    << "; what it holds stays unavailable here");
      co_return false;
    }
    const int64_t end = end_of_batches(bytes);
    if (end <= next) co_return true;
    try {
      protocol::visit_records(bytes, [&](int64_t, std::optional<std::string_view> key,
                                         std::optional<std::string_view> value) {
        ++count.records;
        if (!apply(key, value)) ++count.unreadable;
      });
    } catch (const protocol::DecodeError& e) {
      SLUICE_LOG(kError, topic << "-" << index << " has a batch that does not read at " << next << ": " << e.what());
    }
    next = end;
    co_await boost::asio::post(broker.executor, boost::asio::use_awaitable);
  }
}

OffsetWrite append_internal_records(ReplicaManager& replicas, Partition& partition,
                                    const std::vector<protocol::KeyedRecord>& records) {
  if (records.empty()) return OffsetWrite{};
  const int64_t now_ms = wall_clock_ms();
  std::string batch = protocol::build_keyed_record_batch(0, partition.leader_epoch, now_ms, records);
  const auto count = static_cast<int32_t>(records.size());
  const int64_t base = replicas.append_as_leader(partition, std::span<char>(batch.data(), batch.size()), {count - 1, now_ms});
  partition.note_append(count);
  replicas.after_leader_append(partition, base);
  return OffsetWrite{partition.index, base + count, partition.log->to_sync()};
}

boost::asio::awaitable<ErrorCode> await_internal_write(Broker& broker, std::string_view topic,
                                                       const OffsetWrite& write, std::chrono::milliseconds timeout) {
  if (write.state_write) {  // a single node: the state store's commit, on the writer thread
    while (!write.state_write->committed.is_set())
      co_await write.state_write->committed.wait_until(boost::asio::steady_timer::time_point::max());
    co_return write.state_write->ok ? ErrorCode::kNone : ErrorCode::kNotCoordinator;
  }
  if (write.partition < 0) co_return ErrorCode::kNone;
  if (!write.sync.empty() && !co_await wait_for_sync(broker, write.sync)) co_return ErrorCode::kNotCoordinator;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const ErrorCode replicated =
      co_await wait_for_high_watermark(broker, topic, write.partition, write.next_offset, deadline);
  switch (replicated) {
    case ErrorCode::kNone:
      co_return ErrorCode::kNone;
    case ErrorCode::kNotLeaderOrFollower:
      co_return ErrorCode::kNotCoordinator;
    default:  // too few replicas, or not in time: the client retries
      co_return ErrorCode::kCoordinatorNotAvailable;
  }
}

namespace {

boost::asio::awaitable<void> compact_partition(Broker& broker, std::string_view topic, int32_t index,
                                               const CompactionHooks& hooks) {
  Partition* partition = broker.replicas.find(topic, index);
  if (!partition || !partition->is_leader || !hooks.loaded(index)) co_return;
  storage::PartitionLog& log = *partition->log;
  const int64_t records = log.log_end_offset() - log.log_start_offset();
  const auto live = static_cast<int64_t>(hooks.live(index));
  if (log.size_bytes() <= log.options().segment_bytes || records <= 2 * live) co_return;
  const int32_t epoch = partition->leader_epoch;
  const int64_t rewrite_start = log.log_end_offset();
  auto write = hooks.rewrite(index);
  if (!write) co_return;
  if (co_await await_internal_write(broker, topic, *write, hooks.timeout) != ErrorCode::kNone) co_return;  // next time
  partition = broker.replicas.find(topic, index);
  if (!partition || !partition->is_leader || partition->leader_epoch != epoch) co_return;
  broker.replicas.delete_records_before(*partition, rewrite_start);
  SLUICE_LOG(kInfo, "compacted " << topic << "-" << index << ": " << live << " live entries of " << records
                                 << " records; log start now " << rewrite_start);
}

}  // namespace

boost::asio::awaitable<void> compact_internal_topic_periodically(Broker& broker, std::string_view topic,
                                                                 CompactionHooks hooks) {
  boost::asio::steady_timer timer(broker.executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(broker.config.get_long("log.cleaner.backoff.ms")));
    co_await timer.async_wait(boost::asio::use_awaitable);
    const controller::TopicInfo* info = broker.metadata.find_topic(topic);
    if (!info) continue;
    const int32_t partitions = info->partition_count();  // the image may change while this waits
    for (int32_t index = 0; index < partitions; ++index) {
      try {
        co_await compact_partition(broker, topic, index, hooks);
      } catch (const std::exception& e) {
        SLUICE_LOG(kError, "compacting " << topic << "-" << index << " failed: " << e.what());
      }
    }
  }
}

boost::asio::awaitable<void> create_internal_topic(Broker& broker, std::string_view name, int32_t partitions,
                                                   int16_t replication_factor,
                                                   const std::map<std::string, std::string>& configs) {
  ErrorCode error = ErrorCode::kNone;
  std::string message;
  if (broker.controller) {
    auto result = broker.controller->create_topic(std::string(name), partitions, replication_factor, {}, configs, false);
    error = result.error;
    message = result.message;
  } else {
    protocol::CreateTopicsRequest request;
    auto& topic = request.topics.emplace_back();
    topic.name = std::string(name);
    topic.num_partitions = partitions;
    topic.replication_factor = replication_factor;
    for (const auto& [key, value] : configs) topic.configs.push_back({key, value});
    request.timeout_ms = 30'000;
    try {
      auto reply = co_await broker.controller_link->call<protocol::CreateTopicsResponse>(request, 7);
      if (!reply.body.topics.empty()) {
        error = static_cast<ErrorCode>(reply.body.topics[0].error_code);
        message = reply.body.topics[0].error_message.value_or("");
      }
    } catch (const std::exception& e) {
      error = ErrorCode::kRequestTimedOut;
      message = e.what();
    }
  }
  if (error != ErrorCode::kNone && error != ErrorCode::kTopicAlreadyExists)
    SLUICE_LOG(kWarn, "creating " << name << " failed (" << protocol::error_name(error) << "): " << message
                                  << "; its coordinators stay unavailable until it exists");
}

}  // namespace sluice::broker
