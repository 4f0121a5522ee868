#include "broker/share_state_persister.h"

#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.h"
#include "broker/cluster_view.h"
#include "broker/internal_topic.h"
#include "broker/log.h"
#include "broker/outbound_connection.h"
#include "protocol/messages/delete_share_group_state_request.h"
#include "protocol/messages/delete_share_group_state_response.h"
#include "protocol/messages/initialize_share_group_state_request.h"
#include "protocol/messages/initialize_share_group_state_response.h"
#include "protocol/messages/read_share_group_state_request.h"
#include "protocol/messages/read_share_group_state_response.h"
#include "protocol/messages/read_share_group_state_summary_request.h"
#include "protocol/messages/read_share_group_state_summary_response.h"
#include "protocol/messages/write_share_group_state_request.h"
#include "protocol/messages/write_share_group_state_response.h"

namespace sluice::broker {

using protocol::ErrorCode;

namespace {

bool retriable(ErrorCode error) {
  return error == ErrorCode::kNotCoordinator || error == ErrorCode::kCoordinatorNotAvailable ||
         error == ErrorCode::kCoordinatorLoadInProgress;
}

std::chrono::milliseconds call_timeout(const Broker& broker) {
  // The coordinator waits up to the write timeout for its replicas; a little more for the trip.
  return std::chrono::milliseconds(broker.config.get_int("share.coordinator.write.timeout.ms") + 1000);
}

// The one partition result of a response with Kafka's Results[TopicId, Partitions[...]] shape.
template <typename Response>
const auto* only_result(const Response& response) {
  using PartitionResult = std::remove_cvref_t<decltype(response.results[0].partitions[0])>;
  if (response.results.size() != 1 || response.results[0].partitions.size() != 1)
    return static_cast<const PartitionResult*>(nullptr);
  return &response.results[0].partitions[0];
}

}  // namespace

ShareStatePersister::~ShareStatePersister() = default;

boost::asio::awaitable<ShareStatePersister::Target> ShareStatePersister::coordinator_of(const ShareStateKey& key) {
  Target target;
  const controller::TopicInfo* topic = broker_.metadata.find_topic(controller::kShareStateTopic);
  if (!topic) {
    target.error = ErrorCode::kCoordinatorNotAvailable;
    if (!creating_topic_) {
      creating_topic_ = true;
      const std::map<std::string, std::string> configs{
          {"cleanup.policy", "compact"},
          {"min.insync.replicas", std::to_string(broker_.config.get_int("share.coordinator.state.topic.min.isr"))},
          {"segment.bytes", std::to_string(broker_.config.get_int("share.coordinator.state.topic.segment.bytes"))}};
      co_await create_internal_topic(
          broker_, controller::kShareStateTopic, broker_.config.get_int("share.coordinator.state.topic.num.partitions"),
          static_cast<int16_t>(broker_.config.get_int("share.coordinator.state.topic.replication.factor")), configs);
      creating_topic_ = false;
    }
    co_return target;
  }
  const int32_t index = coordinator_partition_of(share_coordinator_key(key), topic->partition_count());
  const int32_t leader = topic->partitions[index].leader;
  if (leader < 0) {
    target.error = ErrorCode::kCoordinatorNotAvailable;
    co_return target;
  }
  if (leader == broker_.config.node_id()) {
    target.local = true;
    co_return target;
  }
  std::string host;
  uint16_t port = 0;
  if (!inter_broker_endpoint(broker_.config, broker_.metadata, leader, host, port)) {
    target.error = ErrorCode::kCoordinatorNotAvailable;
    co_return target;
  }
  Link& link = links_[leader];
  if (!link.connection || link.host != host || link.port != port)
    link = Link{host, port,
                std::make_unique<OutboundConnection>(broker_.executor, host, port,
                                                     "sluice-share-persister-" + std::to_string(broker_.config.node_id()))};
  target.connection = link.connection.get();
  co_return target;
}

template <typename R>
boost::asio::awaitable<R> ShareStatePersister::with_retries(
    const ShareStateKey& key, std::function<boost::asio::awaitable<R>(const Target&)> attempt,
    std::chrono::milliseconds window) {
  if (window.count() == 0)
    window = std::chrono::milliseconds(3 * broker_.config.get_int("share.coordinator.write.timeout.ms"));
  const auto deadline = std::chrono::steady_clock::now() + window;
  auto backoff = std::chrono::milliseconds(50);
  for (;;) {
    R result;
    const Target target = co_await coordinator_of(key);
    if (target.error != ErrorCode::kNone) {
      result.error = target.error;
    } else {
      try {
        result = co_await attempt(target);
      } catch (const std::exception& e) {  // the connection failed or timed out: another try
        SLUICE_LOG(kDebug, "share coordinator of " << share_coordinator_key(key) << ": " << e.what());
        result = R{};
        result.error = ErrorCode::kCoordinatorNotAvailable;
      }
    }
    if (!retriable(result.error) || std::chrono::steady_clock::now() + backoff >= deadline) co_return result;
    boost::asio::steady_timer timer(broker_.executor);
    timer.expires_after(backoff);
    boost::system::error_code ignored;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
}

boost::asio::awaitable<ShareStatePersister::ReadResult> ShareStatePersister::read(const ShareStateKey& key,
                                                                                  int32_t leader_epoch) {
  co_return co_await with_retries<ReadResult>(
      key, [this, &key, leader_epoch](const Target& target) -> boost::asio::awaitable<ReadResult> {
        if (target.local) co_return co_await local_.read(key, leader_epoch);
        protocol::ReadShareGroupStateRequest request;
        request.group_id = key.group;
        auto& topic = request.topics.emplace_back();
        topic.topic_id = key.topic_id;
        topic.partitions.push_back({key.partition, leader_epoch});
        auto reply = co_await target.connection->call<protocol::ReadShareGroupStateResponse>(request, 0,
                                                                                             call_timeout(broker_));
        ReadResult out;
        const auto* p = only_result(reply.body);
        if (!p) {
          out.error = ErrorCode::kUnknownServerError;
          co_return out;
        }
        out.error = static_cast<ErrorCode>(p->error_code);
        out.message = p->error_message.value_or("");
        out.state.state_epoch = p->state_epoch;
        out.state.leader_epoch = leader_epoch;
        out.state.state.start_offset = p->start_offset;
        for (const auto& b : p->state_batches)
          out.state.state.batches.push_back(
              {b.first_offset, b.last_offset, static_cast<ShareRecordState>(b.delivery_state), b.delivery_count});
        co_return out;
      });
}

boost::asio::awaitable<ShareStatePersister::Result> ShareStatePersister::initialize(const ShareStateKey& key,
                                                                                   int32_t state_epoch,
                                                                                   int64_t start_offset) {
  co_return co_await with_retries<Result>(
      key, [this, &key, state_epoch, start_offset](const Target& target) -> boost::asio::awaitable<Result> {
        if (target.local) co_return co_await local_.initialize(key, state_epoch, start_offset);
        protocol::InitializeShareGroupStateRequest request;
        request.group_id = key.group;
        auto& topic = request.topics.emplace_back();
        topic.topic_id = key.topic_id;
        topic.partitions.push_back({key.partition, state_epoch, start_offset});
        auto reply = co_await target.connection->call<protocol::InitializeShareGroupStateResponse>(
            request, 0, call_timeout(broker_));
        const auto* p = only_result(reply.body);
        if (!p) co_return Result{ErrorCode::kUnknownServerError, ""};
        co_return Result{static_cast<ErrorCode>(p->error_code), p->error_message.value_or("")};
      });
}

boost::asio::awaitable<ShareStatePersister::Result> ShareStatePersister::write(const ShareStateKey& key,
                                                                              int32_t state_epoch,
                                                                              int32_t leader_epoch,
                                                                              const DurableShareState& state) {
  co_return co_await with_retries<Result>(
      key, [this, &key, state_epoch, leader_epoch, &state](const Target& target) -> boost::asio::awaitable<Result> {
        if (target.local)
          co_return co_await local_.write(key, state_epoch, leader_epoch, state.start_offset, state.batches);
        protocol::WriteShareGroupStateRequest request;
        request.group_id = key.group;
        auto& topic = request.topics.emplace_back();
        topic.topic_id = key.topic_id;
        auto& p = topic.partitions.emplace_back();
        p.partition = key.partition;
        p.state_epoch = state_epoch;
        p.leader_epoch = leader_epoch;
        p.start_offset = state.start_offset;
        for (const auto& b : state.batches)
          p.state_batches.push_back({b.first_offset, b.last_offset, static_cast<int8_t>(b.state), b.delivery_count});
        auto reply = co_await target.connection->call<protocol::WriteShareGroupStateResponse>(request, 0,
                                                                                              call_timeout(broker_));
        const auto* result = only_result(reply.body);
        if (!result) co_return Result{ErrorCode::kUnknownServerError, ""};
        co_return Result{static_cast<ErrorCode>(result->error_code), result->error_message.value_or("")};
      });
}

boost::asio::awaitable<ShareStatePersister::Result> ShareStatePersister::remove(const ShareStateKey& key) {
  co_return co_await with_retries<Result>(key, [this, &key](const Target& target) -> boost::asio::awaitable<Result> {
    if (target.local) co_return co_await local_.remove(key);
    protocol::DeleteShareGroupStateRequest request;
    request.group_id = key.group;
    auto& topic = request.topics.emplace_back();
    topic.topic_id = key.topic_id;
    topic.partitions.push_back({key.partition});
    auto reply = co_await target.connection->call<protocol::DeleteShareGroupStateResponse>(request, 0,
                                                                                           call_timeout(broker_));
    const auto* p = only_result(reply.body);
    if (!p) co_return Result{ErrorCode::kUnknownServerError, ""};
    co_return Result{static_cast<ErrorCode>(p->error_code), p->error_message.value_or("")};
  });
}

boost::asio::awaitable<ShareStatePersister::Summary> ShareStatePersister::summary(const ShareStateKey& key) {
  co_return co_await with_retries<Summary>(key, [this, &key](const Target& target) -> boost::asio::awaitable<Summary> {
    if (target.local) co_return local_.summary(key);
    Summary out;
    protocol::ReadShareGroupStateSummaryRequest request;
    request.group_id = key.group;
    auto& topic = request.topics.emplace_back();
    topic.topic_id = key.topic_id;
    topic.partitions.push_back({key.partition, -1});
    auto reply = co_await target.connection->call<protocol::ReadShareGroupStateSummaryResponse>(request, 1,
                                                                                               call_timeout(broker_));
    const auto* p = only_result(reply.body);
    if (!p) {
      out.error = ErrorCode::kUnknownServerError;
      co_return out;
    }
    out.error = static_cast<ErrorCode>(p->error_code);
    out.state_epoch = p->state_epoch;
    out.leader_epoch = p->leader_epoch;
    out.start_offset = p->start_offset;
    out.delivery_complete_count = p->delivery_complete_count;
    co_return out;
  }, std::chrono::milliseconds(2000));
}

}  // namespace sluice::broker
