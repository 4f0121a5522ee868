#include "broker/controller_link.h"

#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include "broker/log.h"
#include "broker/steady_clock.h"
#include "controller/metadata_delta.h"
#include "controller/metadata_records.h"
#include "protocol/messages/allocate_producer_ids_request.h"
#include "protocol/messages/allocate_producer_ids_response.h"
#include "protocol/messages/broker_heartbeat_request.h"
#include "protocol/messages/broker_heartbeat_response.h"
#include "protocol/messages/broker_registration_request.h"
#include "protocol/messages/broker_registration_response.h"
#include "protocol/messages/describe_cluster_request.h"
#include "protocol/messages/describe_cluster_response.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"
#include "protocol/messages/fetch_snapshot_request.h"
#include "protocol/messages/fetch_snapshot_response.h"
#include "protocol/record_batch.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using protocol::ErrorCode;

constexpr std::string_view kClusterIdKey = "cluster/id";
// Versions this broker speaks to its controller.
constexpr int16_t kRegistrationVersion = 3;
constexpr int16_t kHeartbeatVersion = 1;
constexpr int16_t kFetchVersion = 12;
constexpr int16_t kFetchSnapshotVersion = 0;
constexpr int16_t kDescribeClusterVersion = 1;
// Bytes of metadata records asked for per fetch.
constexpr int32_t kMetadataFetchBytes = 8 << 20;


// Logs a failure to reach the controller at most every 5 s.
void report(const char* what, const std::exception& e) {
  static int64_t last_ms = INT64_MIN / 2;
  if (steady_now_ms() - last_ms < 5000) return;
  last_ms = steady_now_ms();
  SLUICE_LOG(kWarn, what << ": " << e.what() << " (retrying)");
}

}  // namespace

ControllerLink::ControllerLink(asio::any_io_executor executor, const BrokerConfig& config, storage::StateStore& store)
    : executor_(executor),
      config_(config),
      store_(store),
      log_(store),
      voters_(config.controller_quorum_voters()),
      requests_(executor, voters_.front().host, voters_.front().port, "broker-" + std::to_string(config.node_id())),
      fetches_(executor, voters_.front().host, voters_.front().port,
               "broker-" + std::to_string(config.node_id()) + "-metadata"),
      request_timeout_(std::chrono::milliseconds(std::max<int64_t>(config.get_long("broker.session.timeout.ms"), 1000))),
      // With other voters to try, a controller that does not answer (paused,
      // cut off) is given up on well within the session: the broker must
      // reach the new leader before it is fenced for silence.
      liveness_timeout_(voters_.size() > 1
                            ? std::chrono::milliseconds(std::max<int64_t>(config.get_long("broker.session.timeout.ms") / 4, 500))
                            : request_timeout_),
      incarnation_id_(controller::random_uuid()) {
  if (auto id = store_.get(kClusterIdKey)) cluster_id_ = *id;
  log_.replay([&](std::string_view bytes) { image_.apply(controller::decode_record(bytes)); });
}

void ControllerLink::connect_to(size_t index) {
  current_ = index % voters_.size();
  requests_.retarget(voters_[current_].host, voters_[current_].port);
  fetches_.retarget(voters_[current_].host, voters_[current_].port);
}

void ControllerLink::next_controller(size_t target) {
  if (voters_.size() > 1 && target == current_) connect_to(current_ + 1);
}

void ControllerLink::follow_leader(int32_t id) {
  for (size_t i = 0; i < voters_.size(); ++i)
    if (voters_[i].id == id && i != current_) {
      SLUICE_LOG(kInfo, "following the controller quorum's leader, controller " << id);
      connect_to(i);
    }
}

asio::awaitable<void> ControllerLink::sleep(std::chrono::milliseconds how_long) {
  asio::steady_timer timer(executor_, how_long);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> ControllerLink::learn_cluster_id() {
  while (cluster_id_.empty() && !stopping_) {
    try {
      protocol::DescribeClusterRequest request;
      request.endpoint_type = 2;  // the controllers
      auto reply = co_await requests_.call<protocol::DescribeClusterResponse>(request, kDescribeClusterVersion,
                                                                              request_timeout_);
      if (reply.body.error_code == 0 && !reply.body.cluster_id.empty()) {
        cluster_id_ = reply.body.cluster_id;
        store_.put(kClusterIdKey, cluster_id_);
        SLUICE_LOG(kInfo, "joined cluster " << cluster_id_);
        co_return;
      }
    } catch (const std::exception& e) {
      report("cannot reach the controller", e);
      next_controller(current_);
    }
    co_await sleep(500ms);
  }
}

asio::awaitable<void> ControllerLink::register_broker() {
  protocol::BrokerRegistrationRequest request;
  request.broker_id = config_.node_id();
  request.cluster_id = cluster_id_;
  request.incarnation_id = incarnation_id_;
  for (const auto& l : config_.advertised_listeners()) request.listeners.push_back({l.name, l.host, l.port, 0});
  request.rack = config_.value("broker.rack");
  request.previous_broker_epoch = broker_epoch_;
  while (!stopping_) {
    const size_t target = current_;
    try {
      auto reply = co_await requests_.call<protocol::BrokerRegistrationResponse>(request, kRegistrationVersion,
                                                                                 request_timeout_);
      if (reply.body.error_code == 0) {
        broker_epoch_ = reply.body.broker_epoch;
        fenced_ = true;
        SLUICE_LOG(kInfo, "registered with the controller as broker " << config_.node_id() << ", epoch " << broker_epoch_);
        co_return;
      }
      const auto code = static_cast<ErrorCode>(reply.body.error_code);
      if (code == ErrorCode::kInconsistentClusterId)
        SLUICE_LOG(kError, "the controller belongs to another cluster than this broker's data (" << cluster_id_ << ")");
      else
        SLUICE_LOG(kWarn, "registration refused with error " << reply.body.error_code << " (retrying)");
    } catch (const std::exception& e) {
      report("cannot reach the controller to register", e);
      next_controller(target);
    }
    // Soon when there is another voter to try: it may lead.
    co_await sleep(voters_.size() > 1 ? std::chrono::milliseconds(100)
                                      : std::chrono::milliseconds(config_.get_long("broker.heartbeat.interval.ms")));
  }
}

asio::awaitable<void> ControllerLink::run() {
  co_await learn_cluster_id();
  co_await register_broker();
  if (stopping_) co_return;
  asio::co_spawn(executor_, fetch_loop(), asio::detached);
  co_await heartbeat_loop();
}

asio::awaitable<void> ControllerLink::heartbeat_loop() {
  const auto interval = std::chrono::milliseconds(config_.get_long("broker.heartbeat.interval.ms"));
  std::optional<size_t> failed_at;
  while (!stopping_) {
    protocol::BrokerHeartbeatRequest request;
    request.broker_id = config_.node_id();
    request.broker_epoch = broker_epoch_;
    request.current_metadata_offset = log_.end_offset();
    request.want_shut_down = shutting_down_;
    const size_t target = current_;
    try {
      auto reply = co_await requests_.call<protocol::BrokerHeartbeatResponse>(request, kHeartbeatVersion,
                                                                              liveness_timeout_);
      const auto code = static_cast<ErrorCode>(reply.body.error_code);
      if (code == ErrorCode::kStaleBrokerEpoch || code == ErrorCode::kBrokerIdNotRegistered) {
        // The controller has another registration for us (or none): start over.
        co_await register_broker();
        continue;
      }
      if (code == ErrorCode::kNone) {
        last_heartbeat_answered_ = std::chrono::steady_clock::now();
        if (fenced_ != reply.body.is_fenced)
          SLUICE_LOG(kInfo, "broker " << config_.node_id() << (reply.body.is_fenced ? " fenced" : " unfenced"));
        fenced_ = reply.body.is_fenced;
        if (!fenced_ && on_unfenced_) std::exchange(on_unfenced_, nullptr)();
        if (reply.body.should_shut_down) co_return;
      }
    } catch (const std::exception& e) {
      report("heartbeat to the controller failed", e);
      // Soon, at the next voter: the session must not lapse while the quorum elects.
      if (voters_.size() > 1) failed_at = target;
    }
    if (failed_at) {
      next_controller(*failed_at);
      failed_at.reset();
      co_await sleep(100ms);
      continue;
    }
    co_await sleep(shutting_down_ ? std::chrono::milliseconds(50) : interval);
  }
}

asio::awaitable<void> ControllerLink::fetch_loop() {
  const int32_t max_wait_ms = config_.get_int("replica.fetch.wait.max.ms");
  while (!stopping_) {
    protocol::FetchRequest request;
    request.cluster_id = cluster_id_;
    request.replica_id = config_.node_id();
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = kMetadataFetchBytes;
    auto& topic = request.topics.emplace_back();
    topic.topic = std::string(controller::kMetadataTopic);
    auto& partition = topic.partitions.emplace_back();
    partition.partition = 0;
    partition.fetch_offset = log_.end_offset();
    partition.partition_max_bytes = kMetadataFetchBytes;
    bool failed = false;
    const size_t target = current_;
    try {
      auto reply = co_await fetches_.call<protocol::FetchResponse>(
          request, kFetchVersion, liveness_timeout_ + std::chrono::milliseconds(max_wait_ms));
      if (reply.body.responses.empty() || reply.body.responses[0].partitions.empty())
        throw std::runtime_error("a metadata fetch answered without the metadata partition");
      const auto& data = reply.body.responses[0].partitions[0];
      if (data.snapshot_id.end_offset >= 0) {
        protocol::FetchSnapshotRequest snapshot_request;
        snapshot_request.replica_id = config_.node_id();
        auto& st = snapshot_request.topics.emplace_back();
        st.name = std::string(controller::kMetadataTopic);
        auto& sp = st.partitions.emplace_back();
        sp.partition = 0;
        sp.snapshot_id = {data.snapshot_id.end_offset, data.snapshot_id.epoch};
        auto snapshot = co_await fetches_.call<protocol::FetchSnapshotResponse>(snapshot_request, kFetchSnapshotVersion,
                                                                               request_timeout_);
        if (snapshot.body.topics.empty() || snapshot.body.topics[0].partitions.empty() ||
            snapshot.body.topics[0].partitions[0].error_code != 0)
          continue;  // replaced meanwhile: fetch again, which points at the new one
        const auto& sp_data = snapshot.body.topics[0].partitions[0];
        std::vector<std::string> records;
        if (sp_data.unaligned_records)
          protocol::visit_record_values(sp_data.unaligned_records->bytes(),
                                        [&](int64_t, std::optional<std::string_view> v) { records.emplace_back(v.value_or("")); });
        install_snapshot(data.snapshot_id.end_offset, data.snapshot_id.epoch, records);
        continue;
      }
      if (data.error_code == static_cast<int16_t>(ErrorCode::kNotLeaderOrFollower)) {
        // A voter that does not lead: it names the leader if it knows one.
        if (data.current_leader.leader_id >= 0)
          follow_leader(data.current_leader.leader_id);
        else
          next_controller(target);
        co_await sleep(100ms);
        continue;
      }
      if (data.error_code != 0) {
        SLUICE_LOG(kWarn, "metadata fetch failed with error " << data.error_code);
        co_await sleep(1s);
        continue;
      }
      if (data.records) {
        // Kept in the leader's epochs, as the controllers keep them.
        for (const auto& run : controller::split_fetched_records(data.records->bytes(), log_.end_offset()))
          apply_records(run.records, run.epoch);
      }
      if (on_caught_up_ && data.high_watermark >= 0 && log_.end_offset() >= data.high_watermark)
        std::exchange(on_caught_up_, nullptr)();
    } catch (const std::exception& e) {
      report("fetching the metadata log failed", e);
      next_controller(target);
      failed = true;
    }
    if (failed) co_await sleep(voters_.size() > 1 ? 100ms : 500ms);
  }
}

void ControllerLink::apply_records(const std::vector<std::string>& records, int32_t epoch) {
  // Applied to a copy: a record that does not decode or fit throws before anything is kept.
  controller::MetadataImage after = image_;
  controller::TouchedTopics touched;  // the topics the records touch, as they were
  for (const auto& r : records) {
    const controller::MetadataRecord record = controller::decode_record(r);
    touched.note(after, record);
    after.apply(record);
  }
  log_.append(records, {}, epoch);
  image_ = std::move(after);
  records_applied_ += records.size();
  if (log_.bytes_since_snapshot() >= static_cast<uint64_t>(config_.get_long("metadata.log.max.record.bytes.between.snapshots"))) {
    std::vector<std::string> snapshot;
    for (const auto& r : image_.to_records()) snapshot.push_back(controller::encode_record(r));
    log_.write_snapshot(log_.end_offset(), snapshot);
  }
  touched.publish(image_, listeners_);
  for (auto* l : listeners_) l->on_committed(log_.end_offset());
}

void ControllerLink::install_snapshot(int64_t offset, int32_t epoch, const std::vector<std::string>& records) {
  controller::MetadataImage fresh;
  for (const auto& r : records) fresh.apply(controller::decode_record(r));
  log_.install_snapshot(offset, records, epoch);
  const controller::MetadataImage before = std::move(image_);
  image_ = std::move(fresh);
  records_applied_ += records.size();
  SLUICE_LOG(kInfo, "loaded the controller's metadata snapshot at offset " << offset);
  controller::publish_delta(before, image_, listeners_);
  for (auto* l : listeners_) l->on_committed(log_.end_offset());
}

asio::awaitable<int64_t> ControllerLink::allocate_producer_ids(int32_t count) {
  protocol::AllocateProducerIdsRequest request;
  request.broker_id = config_.node_id();
  request.broker_epoch = broker_epoch_;
  auto reply = co_await requests_.call<protocol::AllocateProducerIdsResponse>(request, 0, request_timeout_);
  if (reply.body.error_code != 0 || reply.body.producer_id_len < count)
    throw std::runtime_error("the controller gave no producer ids (error " + std::to_string(reply.body.error_code) + ")");
  co_return reply.body.producer_id_start;
}

asio::awaitable<void> ControllerLink::shut_down(std::chrono::milliseconds timeout) {
  if (broker_epoch_ < 0) co_return;
  shutting_down_ = true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    protocol::BrokerHeartbeatRequest request;
    request.broker_id = config_.node_id();
    request.broker_epoch = broker_epoch_;
    request.current_metadata_offset = log_.end_offset();
    request.want_shut_down = true;
    try {
      auto reply = co_await requests_.call<protocol::BrokerHeartbeatResponse>(request, kHeartbeatVersion, 1s);
      if (reply.body.error_code != 0 || reply.body.should_shut_down) co_return;
    } catch (const std::exception&) {
      co_return;  // no controller to hand over to
    }
    co_await sleep(50ms);
  }
}

void ControllerLink::stop() {
  stopping_ = true;
  requests_.close();
  fetches_.close();
}

}  // namespace sluice::broker
