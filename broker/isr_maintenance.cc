#include "broker/isr_maintenance.h"

#include <algorithm>
#include <chrono>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/log.h"
#include "broker/steady_clock.h"
#include "protocol/messages/alter_partition_request.h"
#include "protocol/messages/alter_partition_response.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using Alteration = controller::Controller::PartitionAlteration;
using Altered = controller::Controller::AlteredPartition;

struct Pending {
  std::string topic;
  int32_t index;
  Alteration alteration;
};

// Sends the alterations to the controller; one result per alteration (an
// error for each when the controller cannot be reached).
asio::awaitable<std::vector<Altered>> send(int32_t self, int64_t epoch, const std::vector<Pending>& pending,
                                           const Broker& broker) {
  controller::Controller* controller = broker.controller;
  ControllerLink* link = broker.controller_link;
  std::vector<Alteration> alterations;
  for (const auto& p : pending) alterations.push_back(p.alteration);
  std::vector<Altered> results(pending.size());
  if (controller) {
    auto reply = controller->alter_partition(self, epoch, alterations);
    co_await metadata_changes_durable(broker);  // acted on only once it is
    if (!reply.result.ok())
      for (auto& r : results) r.error = reply.result.error;
    else
      results = std::move(reply.partitions);
    co_return results;
  }
  protocol::AlterPartitionRequest request;
  request.broker_id = self;
  request.broker_epoch = epoch;
  for (const auto& a : alterations) {
    auto* topic = request.topics.empty() || !(request.topics.back().topic_id == a.topic_id)
                      ? &request.topics.emplace_back()
                      : &request.topics.back();
    topic->topic_id = a.topic_id;
    auto& partition = topic->partitions.emplace_back();
    partition.partition_index = a.partition;
    partition.leader_epoch = a.leader_epoch;
    partition.partition_epoch = a.partition_epoch;
    partition.leader_recovery_state = a.leader_recovery_state;
    for (const auto& m : a.new_isr) partition.new_isr_with_epochs.push_back({m.broker_id, m.broker_epoch});
  }
  try {
    auto reply = co_await link->call<protocol::AlterPartitionResponse>(request, 3);
    size_t i = 0;
    for (const auto& topic : reply.body.topics)
      for (const auto& p : topic.partitions) {
        if (i >= results.size()) break;
        Altered& r = results[i++];
        r.error = static_cast<protocol::ErrorCode>(reply.body.error_code != 0 ? reply.body.error_code : p.error_code);
        r.leader = p.leader_id;
        r.leader_epoch = p.leader_epoch;
        r.partition_epoch = p.partition_epoch;
        r.isr = p.isr;
        r.leader_recovery_state = p.leader_recovery_state;
      }
    for (; i < results.size(); ++i) results[i].error = protocol::ErrorCode::kUnknownServerError;
  } catch (const std::exception&) {
    for (auto& r : results) r.error = protocol::ErrorCode::kRequestTimedOut;
  }
  co_return results;
}

}  // namespace

asio::awaitable<void> maintain_isr(const Broker& broker) {
  const BrokerConfig& config = broker.config;
  ReplicaManager& replicas = broker.replicas;
  const controller::MetadataImage& metadata = broker.metadata;
  // Kafka checks every replica.lag.time.max.ms / 2; a finer step lets a
  // caught-up follower rejoin sooner (at most every 100 ms).
  const int64_t step_ms = std::clamp<int64_t>(config.get_long("replica.lag.time.max.ms") / 2, 10, 100);
  const int32_t self = config.node_id();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(step_ms));
    co_await timer.async_wait(asio::use_awaitable);
    const controller::BrokerRegistration* me = metadata.find_broker(self);
    if (!me || me->fenced) continue;
    const int64_t now = steady_now_ms();
    std::vector<Pending> pending;
    replicas.for_each_partition([&](Partition& p) {
      auto wanted = replicas.wanted_isr(p, now);
      if (!wanted) return;
      const controller::TopicInfo* topic = metadata.find_topic(p.topic);
      if (!topic) return;
      Alteration a;
      a.topic_id = topic->id;
      a.partition = p.index;
      a.leader_epoch = p.leader_epoch;
      a.partition_epoch = p.partition_epoch;
      for (int32_t id : *wanted) {
        const controller::BrokerRegistration* b = metadata.find_broker(id);
        a.new_isr.push_back({id, b ? b->epoch : -1});
      }
      p.isr_change_in_flight = true;
      for (int32_t id : *wanted)  // joining: counted in the high watermark from now on
        if (std::find(p.pending_isr.begin(), p.pending_isr.end(), id) == p.pending_isr.end()) p.pending_isr.push_back(id);
      pending.push_back({p.topic, p.index, std::move(a)});
    });
    if (pending.empty()) continue;
    const auto results = co_await send(self, me->epoch, pending, broker);
    for (size_t i = 0; i < pending.size(); ++i) {
      Partition* p = replicas.find(pending[i].topic, pending[i].index);
      if (!p) continue;
      const Altered& r = results[i];
      if (r.error == protocol::ErrorCode::kNone && r.leader_epoch != p->leader_epoch) {
        // Committed, and the partition has another leader or epoch (a
        // reassignment that removed this broker, an election): the new
        // leader may lack nothing acknowledged here, so the joiners stay in
        // the high watermark and nothing more is asked until the metadata
        // brings the change (apply_partition_state).
        continue;
      }
      p->isr_change_in_flight = false;
      if (r.error != protocol::ErrorCode::kNone) {
        SLUICE_LOG(kWarn, "ISR change of " << p->topic << "-" << p->index << " refused (error "
                                           << static_cast<int>(r.error) << "): " << r.message);
        // Refused on its merits: nothing was committed. Any other error (a
        // timeout, a controller change, an epoch the controller has moved
        // past) leaves it unknown: the joiners stay counted until the
        // metadata or an accepted change settles it.
        if (r.error == protocol::ErrorCode::kIneligibleReplica || r.error == protocol::ErrorCode::kInvalidRequest ||
            r.error == protocol::ErrorCode::kOperationNotAttempted)
          p->pending_isr.clear();
        continue;
      }
      // Kafka's leader takes the committed ISR from the answer; the metadata
      // log brings the same state (again) when it arrives.
      if (r.partition_epoch > p->partition_epoch && r.leader_epoch == p->leader_epoch) {
        if (p->isr != r.isr)
          SLUICE_LOG(kInfo, "ISR of " << p->topic << "-" << p->index << " is now " << r.isr.size() << " replica(s)");
        replicas.count_isr_change(p->isr, r.isr);
        p->isr = r.isr;
        p->partition_epoch = r.partition_epoch;
        p->pending_isr.clear();
        replicas.advance_high_watermark(*p);
      }
    }
  }
}

}  // namespace sluice::broker
