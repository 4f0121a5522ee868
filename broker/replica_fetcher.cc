#include "broker/replica_fetcher.h"

#include "broker/cluster_view.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/log.h"
#include "broker/steady_clock.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"
#include "protocol/record_batch.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using protocol::ErrorCode;
using PartitionData = protocol::FetchResponse::FetchableTopicResponse::PartitionData;

constexpr int16_t kFetchVersion = 12;  // topic names, diverging epochs
constexpr auto kBackoff = 200ms;       // after an error, before asking that leader again
constexpr auto kTruncationPoll = 5ms;  // while every partition waits for its truncation to be synced

// Logs a fetcher's failure at most every 5 s per leader.
void report(int32_t leader, const std::string& what) {
  static std::map<int32_t, int64_t> last_ms;
  const int64_t now = steady_now_ms();
  auto& last = last_ms[leader];
  if (last != 0 && now - last < 5000) return;
  last = now;
  SLUICE_LOG(kWarn, "replica fetch from broker " << leader << ": " << what << " (retrying)");
}

// One partition's answer. False when this partition should pause (an error
// the metadata will resolve).
bool take(ReplicaManager& replicas, Partition& partition, const PartitionData& data) {
  const auto code = static_cast<ErrorCode>(data.error_code);
  storage::PartitionLog& log = *partition.log;
  if (code == ErrorCode::kOffsetOutOfRange) {
    // Behind the leader's log start: start again there. Past its end (this
    // replica kept a tail the leader never had): back to the high watermark.
    if (data.log_start_offset > log.log_end_offset())
      replicas.truncate_fully_and_start_at(partition, data.log_start_offset);
    else if (data.high_watermark >= 0 && data.high_watermark < log.log_end_offset())
      replicas.truncate_to(partition, data.high_watermark);
    return true;
  }
  if (code != ErrorCode::kNone) return false;  // not the leader (yet), fenced epochs: wait for the metadata
  if (data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0) {
    // Kafka's rule: the end of the leader's epoch, or of this replica's own
    // copy of that epoch if that comes first.
    const auto [epoch, end] = partition.epochs.end_offset_for(data.diverging_epoch.epoch, log.log_end_offset());
    int64_t target = data.diverging_epoch.end_offset;
    if (epoch == data.diverging_epoch.epoch) target = std::min(target, end);
    replicas.truncate_to(partition, std::max<int64_t>(target, 0));
    return true;
  }
  if (data.records && data.records->size() > 0) {
    // The frame is this fetcher's own: the batches are appended from it in place.
    std::string_view bytes = data.records->bytes();
    char* base = const_cast<char*>(bytes.data());
    size_t at = 0;
    while (at + protocol::RecordBatchHeader::kSize <= bytes.size()) {
      auto header = protocol::RecordBatchHeader::parse(bytes.substr(at));
      if (!header || header->batch_length < 0 || at + header->total_size() > bytes.size()) break;  // a cut last batch
      const std::string_view batch = bytes.substr(at, header->total_size());
      if (!protocol::record_batch_crc_ok(batch)) throw std::runtime_error("a batch from the leader fails its CRC");
      if (header->base_offset >= log.log_end_offset())
        replicas.append_as_follower(partition, std::span<char>(base + at, batch.size()));
      at += batch.size();
    }
  }
  if (data.log_start_offset > log.log_start_offset() && data.log_start_offset <= log.log_end_offset())
    replicas.delete_records_before(partition, data.log_start_offset);  // DeleteRecords and retention, followed
  replicas.follower_high_watermark(partition, data.high_watermark);
  return true;
}

}  // namespace

ReplicaFetchers::ReplicaFetchers(asio::any_io_executor executor, const BrokerConfig& config, ReplicaManager& replicas,
                                 const controller::MetadataImage& metadata)
    : executor_(executor), config_(config), replicas_(replicas), metadata_(metadata) {}

ReplicaFetchers::~ReplicaFetchers() { stop(); }

void ReplicaFetchers::stop() {
  stopped_ = true;
  for (auto& [id, fetcher] : fetchers_)
    if (fetcher->connection) fetcher->connection->close();
}

void ReplicaFetchers::follow(const Partition& partition, int32_t leader) {
  const Key key{partition.topic, partition.index};
  auto current = leader_of_.find(key);
  if (current != leader_of_.end()) {
    if (current->second == leader) return;
    if (auto it = fetchers_.find({current->second, slot_of(key)}); it != fetchers_.end()) it->second->partitions.erase(key);
    leader_of_.erase(current);
  }
  if (leader < 0 || stopped_) return;
  leader_of_[key] = leader;
  const FetcherId id{leader, slot_of(key)};
  auto& fetcher = fetchers_[id];
  if (!fetcher) fetcher = std::make_shared<Fetcher>(Fetcher{leader, {}, nullptr, {}, 0, false});
  fetcher->partitions.insert(key);
  if (!fetcher->running) {
    fetcher->running = true;
    asio::co_spawn(executor_, run(id), asio::detached);
  }
}

int32_t ReplicaFetchers::slot_of(const Key& key) const {
  const auto fetchers = static_cast<size_t>(std::max(config_.get_int("num.replica.fetchers"), 1));
  return static_cast<int32_t>((std::hash<std::string>{}(key.first) * 31 + static_cast<size_t>(key.second)) % fetchers);
}

asio::awaitable<void> ReplicaFetchers::run(FetcherId id) {
  const int32_t leader = id.first;
  std::shared_ptr<Fetcher> fetcher = fetchers_.at(id);  // kept alive while this runs
  const int32_t max_wait_ms = config_.get_int("replica.fetch.wait.max.ms");
  const int32_t partition_bytes = config_.get_int("replica.fetch.max.bytes");
  const auto timeout = std::chrono::milliseconds(max_wait_ms) +
                       std::chrono::milliseconds(std::max<int64_t>(config_.get_long("broker.session.timeout.ms"), 1000));
  asio::steady_timer pause(executor_);
  while (!stopped_ && !fetcher->partitions.empty()) {
    bool back_off = false;
    std::chrono::milliseconds pause_for = kBackoff;
    std::string host;
    uint16_t port = 0;
    if (!inter_broker_endpoint(config_, metadata_, leader, host, port)) {
      back_off = true;
    } else {
      if (!fetcher->connection || host != fetcher->host || port != fetcher->port) {
        fetcher->connection = std::make_unique<OutboundConnection>(
            executor_, host, port, "replica-fetcher-" + std::to_string(config_.node_id()));
        fetcher->host = host;
        fetcher->port = port;
      }
      protocol::FetchRequest request;
      request.replica_id = config_.node_id();
      request.max_wait_ms = max_wait_ms;
      request.min_bytes = 1;
      request.max_bytes = INT32_MAX;
      std::map<std::string, std::vector<int32_t>> asked;
      // KIP-73: throttled partitions this broker is not in sync for wait while its quota is exceeded.
      const bool over_quota = replicas_.follower_quota().exceeded(steady_now_ms());
      bool truncating = false, retrying = false;
      for (const auto& [topic, index] : fetcher->partitions) {
        Partition* p = replicas_.find(topic, index);
        if (!p || p->is_leader) continue;
        if (p->truncation_in_flight) {  // nothing is appended until its cut is durable (replica_manager.h)
          truncating = true;
          retrying |= p->truncation_retry;  // its syncs failed: retried at the next checkpoint, not in 5 ms
          continue;
        }
        if (over_quota && p->follower_throttled &&
            std::find(p->isr.begin(), p->isr.end(), config_.node_id()) == p->isr.end())
          continue;
        auto* t = request.topics.empty() || request.topics.back().topic != topic ? &request.topics.emplace_back()
                                                                                 : &request.topics.back();
        t->topic = topic;
        auto& part = t->partitions.emplace_back();
        part.partition = index;
        part.current_leader_epoch = p->leader_epoch;
        part.fetch_offset = p->log->log_end_offset();
        part.last_fetched_epoch = p->epochs.latest_epoch().value_or(-1);
        part.log_start_offset = p->log->log_start_offset();
        part.partition_max_bytes = partition_bytes;
      }
      if (request.topics.empty()) {
        back_off = true;
        if (truncating && !retrying) pause_for = kTruncationPoll;
      } else {
        try {
          auto reply = co_await fetcher->connection->call<protocol::FetchResponse>(request, kFetchVersion, timeout);
          if (reply.body.error_code != 0) {
            report(leader, "error " + std::to_string(reply.body.error_code));
            back_off = true;
          }
          for (const auto& topic : reply.body.responses)
            for (const auto& data : topic.partitions) {
              // Still following this leader? (The metadata may have moved on while the fetch waited.)
              auto followed = leader_of_.find({topic.topic, data.partition_index});
              Partition* p = replicas_.find(topic.topic, data.partition_index);
              if (!p || p->is_leader || p->truncation_in_flight || followed == leader_of_.end() ||
                  followed->second != leader)
                continue;
              if (p->follower_throttled && data.records)
                replicas_.follower_quota().record(static_cast<int64_t>(data.records->size()), steady_now_ms());
              try {
                if (!take(replicas_, *p, data)) {
                  back_off = true;
                  report(leader, topic.topic + "-" + std::to_string(data.partition_index) + ": " +
                                     protocol::error_name(static_cast<ErrorCode>(data.error_code)) +
                                     " (waiting for the metadata)");
                }
              } catch (const std::exception& e) {
                report(leader, topic.topic + "-" + std::to_string(data.partition_index) + ": " + e.what());
                back_off = true;
              }
            }
        } catch (const std::exception& e) {
          report(leader, e.what());
          back_off = true;
        }
      }
    }
    if (back_off && !stopped_) {
      pause.expires_after(pause_for);
      boost::system::error_code ignored;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
  fetcher->running = false;
  if (fetcher->connection) fetcher->connection->close();
  // A fetcher with nothing left to follow goes; follow() starts a new one.
  if (!stopped_ && fetcher->partitions.empty() && fetchers_.count(id) && fetchers_[id] == fetcher) fetchers_.erase(id);
}

}  // namespace sluice::broker
