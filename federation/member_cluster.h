// One member cluster as the federation sees it: its brokers and the leaders
// of its partitions, learnt by asking it for its metadata (Metadata v12) every
// `federation.health.check.interval.ms`, and the connections to its brokers
// that forwarded requests travel on. A member that has not answered for
// `federation.member.timeout.ms` is unhealthy: its partitions answer clients
// with retriable errors, new topics avoid it, and it becomes healthy again by
// itself once it answers. Only the Kafka protocol is spoken, so a member can
// be a Sluice cluster or an Apache Kafka cluster.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/outbound_connection.h"
#include "federation/federation_config.h"
#include "protocol/wire.h"

namespace sluice::federation {

struct MemberTopic {
  protocol::Uuid id;
  bool internal = false;
  std::vector<int32_t> leaders;  // per partition; -1 when it has none
};

class MemberCluster {
 public:
  MemberCluster(boost::asio::any_io_executor executor, MemberClusterConfig config, const FederationConfig& timing);

  const std::string& name() const { return config_.name; }
  bool healthy() const { return healthy_; }
  // Health rounds completed (answered or not): 0 until the first one ends.
  uint64_t rounds() const { return rounds_; }
  // For the admin server (status.h): rounds no broker answered, why the last
  // round failed (empty once one answers), the brokers it last listed, the
  // configured bootstrap servers, and the time since its last answer (-1: never).
  uint64_t failed_rounds() const { return failed_rounds_; }
  const std::string& last_error() const { return last_error_; }
  size_t broker_count() const { return brokers_.size(); }
  std::vector<int32_t> broker_ids() const {
    std::vector<int32_t> ids;
    for (const auto& [id, address] : brokers_) ids.push_back(id);
    return ids;
  }
  std::string bootstrap_servers() const;
  double seconds_since_answer() const;
  // What the member said at its last answer (kept while it does not answer).
  const std::map<std::string, MemberTopic, std::less<>>& topics() const { return topics_; }
  const MemberTopic* topic(std::string_view name) const;
  // Its partitions, internal topics aside: how loaded it is.
  int64_t partition_count() const;

  // Asks for the metadata now and then every interval, forever; calls
  // `on_answer` after each answer.
  boost::asio::awaitable<void> watch(std::function<void(MemberCluster&)> on_answer);
  // Asks again soon (a forwarded request met a stale leader), not waiting for the interval.
  void request_refresh();

  // The member broker leading `topic`'s member partition, or -1 (unknown
  // topic or partition, no leader, an unhealthy member).
  int32_t leader_of(std::string_view topic, int32_t partition) const;
  // Where member broker `node` listens, or nullptr if the member does not list it.
  const HostPort* address_of(int32_t node) const {
    auto it = brokers_.find(node);
    return it == brokers_.end() ? nullptr : &it->second;
  }
  // The endpoint's own connection to member broker `node` (health rounds,
  // FindCoordinator), or nullptr if the member does not
  // list it. Call it right before the call, with no co_await in between: a
  // metadata answer that moves or drops the broker replaces the connection.
  broker::OutboundConnection* connection(int32_t node);
  // The member broker coordinating `group` on this member (FindCoordinator,
  // remembered until forget_coordinator), or -1 if it cannot be found now.
  boost::asio::awaitable<int32_t> coordinator_of(std::string group);
  // A coordinator that answered NOT_COORDINATOR (or did not answer): asked again next time.
  void forget_coordinator(const std::string& group) { coordinators_.erase(group); }

  // Some broker of the member, for admin requests (connected ones first), or
  // -1 when the member is unhealthy.
  int32_t any_node();

 private:
  // One round: false if no broker answered. Only watch() runs it, one at a time.
  boost::asio::awaitable<bool> refresh();
  void set_healthy(bool healthy, const std::string& why);

  boost::asio::any_io_executor executor_;
  MemberClusterConfig config_;
  std::chrono::milliseconds interval_, timeout_;
  std::map<int32_t, HostPort> brokers_;
  std::map<int32_t, std::unique_ptr<broker::OutboundConnection>> connections_;
  std::vector<std::unique_ptr<broker::OutboundConnection>> bootstrap_;  // one per bootstrap server
  size_t next_probe_ = 0;  // which broker (known ones first, then bootstrap) the next round asks
  std::map<std::string, MemberTopic, std::less<>> topics_;
  std::map<std::string, int32_t, std::less<>> coordinators_;  // group -> member broker
  std::chrono::steady_clock::time_point last_answer_{};
  bool healthy_ = false;
  bool answered_once_ = false;
  uint64_t rounds_ = 0;
  uint64_t failed_rounds_ = 0;
  std::string last_error_;
  boost::asio::steady_timer* wake_ = nullptr;  // watch()'s timer while it waits
  bool refresh_pending_ = false;  // asked for since the current round began
};

}  // namespace sluice::federation
