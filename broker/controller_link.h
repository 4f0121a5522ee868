// A broker-only node's link to its controller (process.roles=broker): it
// registers (BrokerRegistration), heartbeats every broker.heartbeat.interval.ms
// (BrokerHeartbeat), follows the metadata log with long-poll fetches into its
// own durable copy, and tells its listeners (the replica manager, the group
// coordinator) what each batch of records changed. Metadata changes clients
// ask this broker for (CreateTopics, ...) are sent on to the controller.
//
// Two connections to the controller: the metadata fetch waits up to
// replica.fetch.wait.max.ms for new records, and heartbeats must not queue
// behind it. With a quorum of several controllers both go to the one that
// leads: a voter that does not lead answers the fetch with the leader it
// knows (or closes the connection), and a failure moves on to the next voter.
//
// Single-threaded: runs on the broker's network thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/config.h"
#include "broker/outbound_connection.h"
#include "controller/controller.h"
#include "controller/metadata_image.h"
#include "controller/metadata_log.h"
#include "storage/state_store.h"

namespace sluice::broker {

class ControllerLink {
 public:
  // Replays this broker's copy of the metadata log (in `store`).
  ControllerLink(boost::asio::any_io_executor executor, const BrokerConfig& config, storage::StateStore& store);
  const boost::asio::any_io_executor& executor() const { return executor_; }

  const controller::MetadataImage& image() const { return image_; }
  // Empty until learned from the controller on the first start.
  const std::string& cluster_id() const { return cluster_id_; }
  // The offset after the last metadata record applied here.
  int64_t applied_offset() const { return log_.end_offset(); }
  int64_t broker_epoch() const { return broker_epoch_; }
  bool fenced() const { return fenced_; }
  // When the controller last answered a heartbeat (epoch if never): a broker that
  // cannot reach it for broker.session.timeout.ms is fenced there, unbeknownst to it.
  std::chrono::steady_clock::time_point last_heartbeat_answered() const { return last_heartbeat_answered_; }
  // Metadata records (snapshots' included) applied to the image since the process started.
  uint64_t records_applied() const { return records_applied_; }

  void add_listener(controller::MetadataListener* listener) { listeners_.push_back(listener); }
  // This broker's copy of the log is written by `committer` (a thread of its
  // own) from now on. The broker acts on records as soon as it has them: its
  // copy only saves refetching them after a restart, which resumes from what
  // is durable.
  void write_in_background(controller::MetadataLog::Committer committer) {
    log_.write_in_background(std::move(committer), nullptr);
  }
  // Called once, when this broker's copy first reaches the controller's log end.
  void on_caught_up(std::function<void()> callback) { on_caught_up_ = std::move(callback); }
  // Called once, when the controller first unfences this broker (it is caught up then).
  void on_unfenced(std::function<void()> callback) { on_unfenced_ = std::move(callback); }

  // Registers, then heartbeats and follows the log until stop(). Failures to
  // reach the controller are retried (logged at most every few seconds).
  boost::asio::awaitable<void> run();
  // Controlled shutdown: asks the controller to move this broker's
  // leaderships away and waits (at most `timeout`) until it lets it go.
  boost::asio::awaitable<void> shut_down(std::chrono::milliseconds timeout);
  void stop();

  // A request for the controller (forwarded admin requests, producer-id
  // blocks), answered at the same version. Throws boost::system::system_error
  // when the controller cannot be reached in time.
  // With a quorum of several controllers a failed call is tried again at
  // the next voter until one leads (a voter that does not lead closes the
  // connection without acting on it), for up to 10 s or the request timeout.
  template <typename Response, typename Request>
  boost::asio::awaitable<Reply<Response>> call(const Request& request, int16_t version) {
    const auto deadline = std::chrono::steady_clock::now() + std::max<std::chrono::milliseconds>(request_timeout_, std::chrono::seconds(10));
    for (;;) {
      const size_t target = current_;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      bool retry = false;
      try {
        co_return co_await requests_.call<Response>(request, version, std::min(left, request_timeout_));
      } catch (const std::exception&) {
        next_controller(target);
        if (voters_.size() == 1 || std::chrono::steady_clock::now() + std::chrono::milliseconds(100) >= deadline) throw;
        retry = true;
      }
      if (retry) co_await sleep(std::chrono::milliseconds(100));
    }
  }
  // A block of producer ids (AllocateProducerIds): its first id.
  boost::asio::awaitable<int64_t> allocate_producer_ids(int32_t count);

 private:
  boost::asio::awaitable<void> learn_cluster_id();
  boost::asio::awaitable<void> register_broker();
  boost::asio::awaitable<void> heartbeat_loop();
  boost::asio::awaitable<void> fetch_loop();
  // Applies fetched records (or a snapshot) durably, then publishes the delta.
  void apply_records(const std::vector<std::string>& records, int32_t epoch);
  void install_snapshot(int64_t offset, int32_t epoch, const std::vector<std::string>& records);
  boost::asio::awaitable<void> sleep(std::chrono::milliseconds how_long);
  // The controller at `target` failed us: try the next voter (unless another
  // failure already moved on). With one voter, nothing changes.
  void next_controller(size_t target);
  // The leader a voter named: go there.
  void follow_leader(int32_t id);
  void connect_to(size_t index);

  boost::asio::any_io_executor executor_;
  const BrokerConfig& config_;
  storage::StateStore& store_;
  controller::MetadataLog log_;
  controller::MetadataImage image_;
  std::string cluster_id_;
  std::vector<controller::MetadataListener*> listeners_;
  std::vector<Voter> voters_;  // controller.quorum.voters
  size_t current_ = 0;         // the one both connections go to
  OutboundConnection requests_;  // registration, heartbeats, forwarded requests
  OutboundConnection fetches_;   // the metadata long poll
  std::chrono::milliseconds request_timeout_;
  std::chrono::milliseconds liveness_timeout_;  // heartbeats and metadata fetches
  protocol::Uuid incarnation_id_;
  int64_t broker_epoch_ = -1;
  bool fenced_ = true;
  uint64_t records_applied_ = 0;
  std::chrono::steady_clock::time_point last_heartbeat_answered_{};
  bool stopping_ = false;
  std::function<void()> on_caught_up_;
  std::function<void()> on_unfenced_;
  bool shutting_down_ = false;
};

}  // namespace sluice::broker
