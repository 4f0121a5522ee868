#include "federation/member_cluster.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/log.h"
#include "protocol/error_codes.h"
#include "protocol/messages/find_coordinator_request.h"
#include "protocol/messages/find_coordinator_response.h"
#include "protocol/messages/metadata_request.h"
#include "protocol/messages/metadata_response.h"

namespace sluice::federation {
namespace {

namespace asio = boost::asio;
constexpr int16_t kMetadataVersion = 12;
constexpr int16_t kFindCoordinatorVersion = 3;  // one key; every member speaks it
const std::string kClientId = "sluice-federation";

}  // namespace

MemberCluster::MemberCluster(asio::any_io_executor executor, MemberClusterConfig config,
                             const FederationConfig& timing)
    : executor_(std::move(executor)),
      config_(std::move(config)),
      interval_(timing.health_check_interval_ms),
      timeout_(timing.member_timeout_ms) {
  for (const HostPort& server : config_.bootstrap)
    bootstrap_.push_back(std::make_unique<broker::OutboundConnection>(executor_, server.host, server.port, kClientId));
}

const MemberTopic* MemberCluster::topic(std::string_view name) const {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second;
}

int64_t MemberCluster::partition_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : topics_)
    if (!t.internal) n += static_cast<int64_t>(t.leaders.size());
  return n;
}

void MemberCluster::set_healthy(bool healthy, const std::string& why) {
  if (healthy == healthy_) return;
  healthy_ = healthy;
  if (healthy)
    SLUICE_LOG(kInfo, "member cluster " << name() << " is healthy: " << why);
  else
    SLUICE_LOG(kWarn, "member cluster " << name() << " is unhealthy: " << why);
}

asio::awaitable<bool> MemberCluster::refresh() {
  // Known brokers first (the bootstrap list may name only some), then the
  // bootstrap servers: each round asks the next one, so a dead broker is passed by.
  std::vector<broker::OutboundConnection*> probes;
  for (const auto& [id, address] : brokers_) probes.push_back(connection(id));
  for (auto& c : bootstrap_) probes.push_back(c.get());
  std::string last_error = "no broker to ask";
  for (size_t attempt = 0; attempt < probes.size(); ++attempt) {
    // Several unreachable brokers must not add up: unhealthy as soon as the timeout has passed.
    if (answered_once_ && std::chrono::steady_clock::now() - last_answer_ >= timeout_)
      set_healthy(false, "no broker answered for " + std::to_string(timeout_.count()) + " ms (" + last_error + ")");
    broker::OutboundConnection* probe = probes[next_probe_++ % probes.size()];
    protocol::MetadataRequest request;  // topics null: all of them
    request.allow_auto_topic_creation = false;
    try {
      auto reply = co_await probe->call<protocol::MetadataResponse>(request, kMetadataVersion, timeout_);
      std::map<int32_t, HostPort> brokers;
      for (const auto& b : reply.body.brokers) brokers[b.node_id] = {b.host, static_cast<uint16_t>(b.port)};
      for (auto it = connections_.begin(); it != connections_.end();) {  // gone or moved: reconnect when needed
        auto b = brokers.find(it->first), old = brokers_.find(it->first);
        const bool same = b != brokers.end() && old != brokers_.end() && b->second.host == old->second.host &&
                          b->second.port == old->second.port;
        it = same ? std::next(it) : connections_.erase(it);
      }
      brokers_ = std::move(brokers);
      std::map<std::string, MemberTopic, std::less<>> topics;
      for (const auto& t : reply.body.topics) {
        if (t.error_code != 0 || !t.name) continue;
        MemberTopic& topic = topics[*t.name];
        topic.id = t.topic_id;
        topic.internal = t.is_internal || t.name->starts_with("__");
        int32_t count = 0;
        for (const auto& p : t.partitions) count = std::max(count, p.partition_index + 1);
        topic.leaders.assign(static_cast<size_t>(count), -1);
        for (const auto& p : t.partitions)
          if (p.partition_index >= 0) topic.leaders[static_cast<size_t>(p.partition_index)] = p.leader_id;
      }
      topics_ = std::move(topics);
      last_answer_ = std::chrono::steady_clock::now();
      answered_once_ = true;
      set_healthy(true, "it answers");
      last_error_.clear();
      co_return true;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
  }
  last_error_ = last_error;
  if (!answered_once_ || std::chrono::steady_clock::now() - last_answer_ >= timeout_)
    set_healthy(false, "no broker answered for " + std::to_string(timeout_.count()) + " ms (" + last_error + ")");
  co_return false;
}

asio::awaitable<void> MemberCluster::watch(std::function<void(MemberCluster&)> on_answer) {
  asio::steady_timer timer(executor_);
  for (;;) {
    refresh_pending_ = false;
    const bool answered = co_await refresh();
    rounds_++;
    if (!answered) failed_rounds_++;
    if (answered) on_answer(*this);
    timer.expires_after(refresh_pending_ ? std::min<std::chrono::milliseconds>(interval_, std::chrono::milliseconds(100))
                                         : interval_);
    wake_ = &timer;
    boost::system::error_code woken;  // operation_aborted: request_refresh()
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, woken));
    wake_ = nullptr;
  }
}

void MemberCluster::request_refresh() {
  // At most one early round per 100 ms, however many requests met a stale
  // leader; one asked for while a round runs follows it (that round may have
  // been answered before the change).
  refresh_pending_ = true;
  if (wake_ && std::chrono::steady_clock::now() - last_answer_ >= std::chrono::milliseconds(100)) wake_->cancel();
}

broker::OutboundConnection* MemberCluster::connection(int32_t node) {
  auto existing = connections_.find(node);
  if (existing != connections_.end()) return existing->second.get();
  auto address = brokers_.find(node);
  if (address == brokers_.end()) return nullptr;
  auto& made = connections_[node];
  made = std::make_unique<broker::OutboundConnection>(executor_, address->second.host, address->second.port, kClientId);
  return made.get();
}

int32_t MemberCluster::leader_of(std::string_view topic_name, int32_t partition) const {
  if (!healthy_) return -1;
  const MemberTopic* t = topic(topic_name);
  if (!t || partition < 0 || partition >= static_cast<int32_t>(t->leaders.size())) return -1;
  return t->leaders[static_cast<size_t>(partition)];
}

asio::awaitable<int32_t> MemberCluster::coordinator_of(std::string group) {
  if (auto it = coordinators_.find(group); it != coordinators_.end() && brokers_.count(it->second)) co_return it->second;
  // A member may need a moment to have one (Kafka creates __consumer_offsets on the first
  // question): asked again every 100 ms, for as long as one member answer may take.
  asio::steady_timer pause(executor_);
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    const int32_t asked = any_node();
    broker::OutboundConnection* connection = asked < 0 ? nullptr : this->connection(asked);
    if (connection == nullptr) co_return -1;
    protocol::FindCoordinatorRequest request;
    request.key = group;
    request.key_type = 0;  // a group
    int16_t error = 0;
    int32_t found = -1;
    try {
      auto reply = co_await connection->call<protocol::FindCoordinatorResponse>(request, kFindCoordinatorVersion, timeout_);
      error = reply.body.error_code;
      if (error == 0) found = reply.body.node_id;
    } catch (const std::exception&) {
      request_refresh();
      co_return -1;
    }
    if (found >= 0) {
      coordinators_[group] = found;
      co_return found;
    }
    const bool retriable = error == static_cast<int16_t>(protocol::ErrorCode::kCoordinatorNotAvailable) ||
                           error == static_cast<int16_t>(protocol::ErrorCode::kCoordinatorLoadInProgress);
    if (!retriable || std::chrono::steady_clock::now() + std::chrono::milliseconds(100) >= deadline) co_return -1;
    pause.expires_after(std::chrono::milliseconds(100));
    co_await pause.async_wait(asio::use_awaitable);
  }
}

int32_t MemberCluster::any_node() {
  if (!healthy_ || brokers_.empty()) return -1;
  for (const auto& [id, address] : brokers_)
    if (auto it = connections_.find(id); it != connections_.end() && it->second->connected()) return id;
  return brokers_.begin()->first;
}

std::string MemberCluster::bootstrap_servers() const {
  std::string out;
  for (const auto& b : config_.bootstrap) out += (out.empty() ? "" : ",") + b.host + ":" + std::to_string(b.port);
  return out;
}

double MemberCluster::seconds_since_answer() const {
  if (!answered_once_) return -1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - last_answer_).count();
}

}  // namespace sluice::federation
