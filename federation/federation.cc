#include "federation/federation.h"

#include <future>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <prometheus/text_serializer.h>

#include "broker/admin_views.h"
#include "controller/controller.h"
#include "federation/client_connection.h"
#include "federation/handlers/handlers.h"
#include "federation/topic_mover.h"
#include "broker/log.h"
#include "protocol/error_codes.h"
#include "protocol/messages/api_versions_request.h"
#include "protocol/messages/api_versions_response.h"

namespace sluice::federation {
namespace asio = boost::asio;
using asio::ip::tcp;

Federation::Federation(asio::io_context& io, FederationConfig config)
    : io_(io),
      config_(std::move(config)),
      store_(io.get_executor(), config_.data_dir),
      groups_(no_offsets_, config_.groups, io.get_executor()) {
  for (const auto& m : config_.members)
    members_.push_back(std::make_unique<MemberCluster>(io_.get_executor(), m, config_));
  std::sort(config_.endpoints.begin(), config_.endpoints.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  endpoint_answers_.assign(config_.endpoints.size(), std::chrono::steady_clock::now());
  for (size_t i = 0; i < config_.endpoints.size(); ++i)
    if (config_.endpoints[i].id == config_.node_id) self_index_ = i;
  if (!config_.map_cluster && store_.shared_cache())
    throw std::runtime_error("the federation's state in " + config_.data_dir +
                             " is the cache of a shared map (federation.map.cluster): it is not this endpoint's own "
                             "map; start it with federation.map.cluster, or with an empty log.dirs");
  if (config_.map_cluster) {
    map_log_ = std::make_unique<MapLog>(*this, *member(*config_.map_cluster));
    FederationStore::Sharing sharing;
    sharing.endpoint = config_.node_id;
    sharing.append = [log = map_log_.get()](std::string value) { return log->append(std::move(value)); };
    store_.share(std::move(sharing));
    store_.on_placement_changed = [this](const std::string& topic, const TopicPlacement* placement) {
      if (!placement) {
        note_deleted(topic);  // the members may list it a moment longer: not adopted back
        forget_acknowledged(topic);
        return;
      }
      // What was acknowledged on a member that no longer holds the topic (a move went through
      // another endpoint) is forgotten: a topic made there again later starts from 0.
      std::erase_if(acknowledged_ends_, [&](const auto& entry) {
        return std::get<0>(entry.first) == topic && !placement->on(std::get<1>(entry.first));
      });
    };
    store_.on_frozen = [this](const std::string& topic, const std::string& freeze) {
      asio::co_spawn(io_, acknowledge_freeze(topic, freeze), asio::detached);
    };
  }
  if (config_.endpoints.size() > 1) {
    groups_.shard_by(static_cast<int32_t>(config_.endpoints.size()));
    deal_groups();
  }
}

MemberCluster* Federation::member(std::string_view name) const {
  for (const auto& m : members_)
    if (m->name() == name) return m.get();
  return nullptr;
}

void Federation::start() {
  tcp::acceptor acceptor(io_);
  const tcp::endpoint endpoint(asio::ip::make_address(config_.listener.host), config_.listener.port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen();
  port_ = acceptor.local_endpoint().port();
  if (config_.advertised.port == 0) config_.advertised.port = port_;  // listeners=...:0, advertised from it
  asio::co_spawn(io_, accept(std::move(acceptor)), asio::detached);
  for (auto& m : members_)
    asio::co_spawn(io_, m->watch([this](MemberCluster& member) { adopt_topics(member); }), asio::detached);
  asio::co_spawn(io_, expire_group_members(), asio::detached);
  asio::co_spawn(io_, finish_unfinished_creations(), asio::detached);
  if (map_log_) asio::co_spawn(io_, map_log_->follow(), asio::detached);
  for (size_t i = 0; i < config_.endpoints.size(); ++i)
    if (i != self_index_) asio::co_spawn(io_, watch_endpoint(i), asio::detached);
  start_admin_server();
  SLUICE_LOG(kInfo, "federation endpoint on " << config_.listener.host << ":" << port_ << " over "
                                              << members_.size() << " member cluster(s); "
                                              << store_.topics().size() << " topic(s) in the map");
}

asio::awaitable<void> Federation::accept(tcp::acceptor acceptor) {
  // Clients are let in once every member has had its first health round (or
  // federation.member.timeout.ms has passed): before that, "no member is
  // healthy" would be a wrong answer. Connections wait in the backlog meanwhile.
  asio::steady_timer pause(io_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.member_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline &&
         std::any_of(members_.begin(), members_.end(), [](const auto& m) { return m->rounds() == 0; })) {
    pause.expires_after(std::chrono::milliseconds(10));
    co_await pause.async_wait(asio::use_awaitable);
  }
  // A shared map is read to its end first: what clients are told is the map
  // every endpoint serves, and this endpoint's holds from before are settled.
  if (map_log_ && !map_log_->caught_up()) {
    SLUICE_LOG(kInfo, "reading the federation's map log on member cluster " << *config_.map_cluster
                                                                            << " before letting clients in");
    while (!map_log_->caught_up()) {
      pause.expires_after(std::chrono::milliseconds(10));
      co_await pause.async_wait(asio::use_awaitable);
    }
  }
  if (map_log_) co_await store_.start_writing();
  accepting_ = true;
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of file descriptors (or another transient failure): the connection waits in the
      // backlog, and retrying at once would spin the only thread.
      SLUICE_LOG(kWarn, "accepting a connection failed: " << ec.message() << "; retrying in 100 ms");
      asio::steady_timer pause(io_);
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::use_awaitable);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(io_, serve_client(*this, std::move(socket)), asio::detached);
  }
}

void Federation::start_admin_server() {
  if (!config_.admin) return;
  status_board_.publish(std::make_shared<const FederationStatus>(take_status()));
  asio::co_spawn(io_, publish_status(), asio::detached);
  broker::AdminServer::Handlers handlers;
  handlers.metrics = [this, log_dir = config_.data_dir] {
    std::vector<prometheus::MetricFamily> families = broker::process_and_disk_metrics(log_dir);
    if (auto status = status_board_.latest())
      for (auto& f : federation_metrics(*status)) families.push_back(std::move(f));
    return prometheus::TextSerializer().Serialize(families);
  };
  // Ready once clients are let in and some member answers: with none, every
  // partition would answer a retriable error.
  handlers.readiness = [this] {
    auto status = status_board_.latest();
    if (!status || !status->accepting)
      return broker::AdminServer::Readiness{false, "waiting for the first health check of every member cluster"};
    for (const auto& m : status->members)
      if (m.healthy) return broker::AdminServer::Readiness{true, ""};
    return broker::AdminServer::Readiness{false, "no member cluster is healthy"};
  };
  handlers.is_view = [](std::string_view path) { return is_federation_view(path); };
  handlers.view = [this](std::string_view path) -> std::optional<std::string> {
    auto status = status_board_.latest();
    if (!status) return std::nullopt;
    return render_federation_view(*status, path);
  };
  // POST /v1/topics/<topic>/move?to=<cluster>[&from=<cluster>] and
  // /v1/topics/<topic>/spread?to=<cluster>: start a move (topic_mover.h) on
  // the network thread, answered once it has started or been refused; its
  // progress is in /v1/topics.
  handlers.action = [this](std::string_view target) -> std::optional<broker::AdminServer::Handlers::ActionResult> {
    using Result = broker::AdminServer::Handlers::ActionResult;
    const std::string_view path = target.substr(0, target.find('?'));
    constexpr std::string_view kPrefix = "/v1/topics/", kMove = "/move", kSpread = "/spread";
    const bool spread = path.ends_with(kSpread);
    const std::string_view suffix = spread ? kSpread : kMove;
    if (!path.starts_with(kPrefix) || !path.ends_with(suffix) || path.size() <= kPrefix.size() + suffix.size())
      return std::nullopt;
    const std::string topic(path.substr(kPrefix.size(), path.size() - kPrefix.size() - suffix.size()));
    std::string from, to;
    if (const size_t q = target.find('?'); q != std::string_view::npos) {
      std::string_view query = target.substr(q + 1);
      while (!query.empty()) {
        const std::string_view pair = query.substr(0, query.find('&'));
        query.remove_prefix(std::min(query.size(), pair.size() + 1));
        const size_t eq = pair.find('=');
        if (eq == std::string_view::npos) continue;
        if (pair.substr(0, eq) == "to") to = pair.substr(eq + 1);
        if (pair.substr(0, eq) == "from") from = pair.substr(eq + 1);
      }
    }
    if (to.empty()) return Result{400, R"({"error":"say where to: ?to=<member cluster>"})"};
    if (spread && !from.empty()) return Result{400, R"({"error":"a spread takes from every member: no from="})"};
    auto started = std::make_shared<std::promise<std::string>>();
    auto outcome = started->get_future();
    boost::asio::post(io_, [this, started, topic, from, to, spread] {
      started->set_value(spread ? start_topic_spread(*this, topic, to) : start_topic_move(*this, topic, from, to));
    });
    if (outcome.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
      return Result{503, R"({"error":"the endpoint did not answer"})"};
    const std::string refused = outcome.get();
    std::string body = "{";
    if (refused.empty()) {
      broker::json_string(body += "\"moving\":", topic);
      return Result{202, body + "}"};
    }
    broker::json_string(body += "\"error\":", refused);
    return Result{409, body + "}"};
  };
  // A port it cannot have stops start-up, as the Kafka listener's does.
  admin_ = std::make_unique<broker::AdminServer>(config_.admin->host, config_.admin->port, std::move(handlers));
  SLUICE_LOG(kInfo, "admin HTTP server (health, members, metrics) on " << config_.admin->host << ":" << admin_->port());
}

FederationStatus Federation::take_status() const {
  FederationStatus status;
  status.node_id = config_.node_id;
  status.accepting = accepting_;
  for (const auto& m : members_) {
    FederationStatus::Member out;
    out.name = m->name();
    out.bootstrap = m->bootstrap_servers();
    out.healthy = m->healthy();
    out.brokers = m->broker_count();
    out.partitions = m->partition_count();
    out.health_checks = m->rounds();
    out.failed_health_checks = m->failed_rounds();
    out.seconds_since_answer = m->seconds_since_answer();
    out.last_error = m->last_error();
    status.members.push_back(std::move(out));
  }
  for (const auto& [name, placement] : store_.topics()) {
    FederationStatus::Topic topic;
    topic.name = name;
    topic.id = controller::base64url(placement.topic_id);
    topic.partitions = placement.partition_count();
    for (const auto& segment : placement.segments) {
      topic.placement.push_back(segment);
      for (auto& m : status.members)
        if (m.name == segment.cluster) m.federated_partitions += segment.partitions;
    }
    if (auto move = moves_.find(name); move != moves_.end()) {
      topic.move_from = move->second.from;
      topic.move_to = move->second.to;
      topic.move_state = move->second.state;
      topic.move_batches_copied = move->second.batches_copied;
    }
    status.topics.push_back(std::move(topic));
  }
  return status;
}

bool Federation::moving_frozen(std::string_view topic, std::string_view cluster) const {
  if (store_.shared()) {
    const auto sources = store_.frozen_sources(topic);
    if (std::find(sources.begin(), sources.end(), cluster) != sources.end()) return true;
  }
  auto it = moves_.find(topic);
  if (it == moves_.end() || !it->second.frozen) return false;
  const auto& sources = it->second.sources;
  return std::find(sources.begin(), sources.end(), cluster) != sources.end();
}

bool Federation::moving(std::string_view topic) const {
  auto it = moves_.find(topic);
  return it != moves_.end() && (it->second.state == "copying" || it->second.state == "switching");
}

boost::asio::awaitable<void> Federation::wait_turn(std::string topic, std::chrono::steady_clock::time_point deadline) {
  if (!store_.reserved(topic)) co_return;
  // A named function, not a temporary in the co_await's arguments (GCC 12 destroys those twice).
  std::function<bool()> hopeless = [this, topic] { return moving(topic); };
  co_await store_.wait_released(topic, deadline, hopeless);
}

void Federation::write_finished(const std::string& topic, const std::string& member) {
  auto it = writes_in_flight_.find({topic, member});
  if (it != writes_in_flight_.end() && --it->second <= 0) writes_in_flight_.erase(it);
}

int Federation::writes_in_flight(const std::string& topic, const std::string& member) const {
  auto it = writes_in_flight_.find({topic, member});
  return it == writes_in_flight_.end() ? 0 : it->second;
}

void Federation::note_acknowledged(const std::string& topic, const std::string& member, int32_t partition,
                                   int64_t end) {
  int64_t& known = acknowledged_ends_[{topic, member, partition}];
  known = std::max(known, end);
}

int64_t Federation::acknowledged_end(const std::string& topic, const std::string& member, int32_t partition) const {
  auto it = acknowledged_ends_.find({topic, member, partition});
  return it == acknowledged_ends_.end() ? 0 : it->second;
}

void Federation::forget_acknowledged(const std::string& topic) {
  std::erase_if(acknowledged_ends_, [&](const auto& entry) { return std::get<0>(entry.first) == topic; });
}

asio::awaitable<void> Federation::publish_status() {
  asio::steady_timer timer(io_);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(500));
    co_await timer.async_wait(asio::use_awaitable);
    status_board_.publish(std::make_shared<const FederationStatus>(take_status()));
  }
}

asio::awaitable<void> Federation::expire_group_members() {
  asio::steady_timer timer(io_);
  for (int64_t ticks = 1;; ++ticks) {
    timer.expires_after(std::chrono::milliseconds(100));
    co_await timer.async_wait(asio::use_awaitable);
    groups_.tick();
    // Groups with no members left are forgotten here every 10 s (their
    // offsets are on the members): memory stays bounded by the live groups.
    if (ticks % 100 == 0)
      groups_.expire_offsets(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
  }
}

asio::awaitable<void> Federation::finish_unfinished_creations() {
  asio::steady_timer timer(io_);
  MemberLinks links(io_.get_executor());
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    co_await timer.async_wait(asio::use_awaitable);
    if (!accepting_) continue;  // the members' first health rounds first
    std::vector<std::pair<std::string, std::vector<std::string>>> unfinished(store_.unfinished_creations().begin(),
                                                                              store_.unfinished_creations().end());
    for (size_t i = 0; i < unfinished.size(); ++i) {  // an index: co_await in the body (GCC 12)
      // A creation's parts, or what a move left on its old members (whole topics, emptied partitions).
      const std::string& topic = unfinished[i].first;
      bool known = true;
      for (const std::string& part : unfinished[i].second) {
        const auto parsed = parse_left_part(part);
        known &= !parsed || member(parsed->first) != nullptr;  // no longer configured: nothing to delete there
      }
      const bool undone = co_await delete_left_parts(*this, links, topic, unfinished[i].second);
      if (!undone) continue;
      note_deleted(topic);  // the members may list it a while yet: not adopted back (a placed topic is not)
      const bool forgotten = co_await store_.end_creation(topic);
      if (!forgotten) continue;
      store_.release(topic);
      SLUICE_LOG(kInfo, "deleted the unfinished creation's or move's parts of topic "
                            << topic << (known ? "" : " (some of its members are no longer configured)"));
    }
  }
}

asio::awaitable<void> Federation::acknowledge_freeze(std::string topic, std::string freeze) {
  asio::steady_timer pause(io_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  const std::vector<std::string> sources = store_.frozen_sources(topic);
  auto current = [&] { return store_.frozen_value(topic) == std::optional<std::string>(freeze); };
  for (;;) {
    bool idle = true;
    for (const auto& source : sources) idle = idle && writes_in_flight(topic, source) == 0;
    if (idle) break;
    if (!current() || std::chrono::steady_clock::now() > deadline) co_return;  // over, or the mover gives up
    pause.expires_after(std::chrono::milliseconds(5));
    co_await pause.async_wait(asio::use_awaitable);
  }
  // What it acknowledged to acks=1 producers there.
  std::vector<FederationStore::AcknowledgedEnd> acknowledged;
  for (const auto& [key, end] : acknowledged_ends_) {
    const auto& [t, member, partition] = key;
    if (t != topic || std::find(sources.begin(), sources.end(), member) == sources.end()) continue;
    acknowledged.push_back({member, partition, end});
  }
  const bool recorded = co_await store_.acknowledge_freeze(topic, freeze, acknowledged);
  if (!recorded) co_return;  // the freeze is over (a replay of an old one), or it could not be written
  // A move's switch takes well under a second, and its endpoint gives up
  // after 30 s. A freeze still there long after is a mover that stopped:
  // ended here, so that clients write again (its switch can no longer happen).
  const auto stale = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (current() && std::chrono::steady_clock::now() < stale) {
    pause.expires_after(std::chrono::milliseconds(500));
    co_await pause.async_wait(asio::use_awaitable);
  }
  if (!current()) co_return;
  const bool ended = co_await store_.end_stale_freeze(topic, freeze);
  if (ended)
    SLUICE_LOG(kWarn, "ended the freeze of topic " << topic << " for a move that did not switch in 60 s (its endpoint "
                                                   << "stopped?): writes to it go on where it was");
}

void Federation::note_deleted(const std::string& topic) {
  // Long enough for every member's brokers to have dropped it from their metadata.
  deleted_[topic] = std::chrono::steady_clock::now() + std::chrono::seconds(30);
}

void Federation::adopt_topics(MemberCluster& member) {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(deleted_, [&](const auto& entry) { return entry.second <= now; });
  // (A shared map's own log is not a topic of the federation; nor is anything adopted before the map
  // is read and this run has started writing: FederationStore::start_writing.)
  if (map_log_ && !accepting_) return;
  for (const auto& [name, topic] : member.topics()) {
    if (topic.internal || topic.leaders.empty() || store_.find(name) || store_.reserved(name) || deleted_.count(name) ||
        adopting_.count(name) || name == MapLog::kTopic)
      continue;
    adopting_.insert(name);
    asio::co_spawn(io_, adopt(name, member.name(), static_cast<int32_t>(topic.leaders.size())), asio::detached);
  }
}

// A topic found on a member and not in the map (created there directly, or
// the map lost it): it is federated where it is, under a new federated id.
// (Shared map: every endpoint may find it; the first reservation in the log wins.)
asio::awaitable<void> Federation::adopt(std::string topic, std::string cluster, int32_t partitions) {
  const bool reserved = co_await store_.reserve(topic);
  if (!reserved) {
    adopting_.erase(topic);
    co_return;
  }
  TopicPlacement placement{new_topic_id(), {{cluster, partitions}}};
  const bool ok = co_await store_.put(topic, placement);
  adopting_.erase(topic);
  store_.release(topic);
  if (ok)
    SLUICE_LOG(kInfo, "federated topic " << topic << ", found on member cluster " << cluster << " (" << partitions
                                         << " partition(s))");
  else
    SLUICE_LOG(kError, "could not record topic " << topic << " of member cluster " << cluster << " in the map");
}

bool Federation::endpoint_live(size_t index) const {
  return index == self_index_ || std::chrono::steady_clock::now() - endpoint_answers_[index] <
                                     std::chrono::milliseconds(config_.member_timeout_ms);
}

std::vector<EndpointAddress> Federation::live_endpoints() const {
  if (config_.endpoints.empty())
    return {EndpointAddress{config_.node_id, HostPort{config_.advertised.host, config_.advertised.port}}};
  std::vector<EndpointAddress> live;
  for (size_t i = 0; i < config_.endpoints.size(); ++i)
    if (endpoint_live(i)) live.push_back(config_.endpoints[i]);
  // This endpoint as clients reach it (listeners=...:0 learns its port at start).
  for (auto& e : live)
    if (e.id == config_.node_id) e.address = {config_.advertised.host, config_.advertised.port};
  return live;
}

size_t Federation::shard_owner(size_t shard) const {
  for (size_t step = 0; step < config_.endpoints.size(); ++step) {
    const size_t index = (shard + step) % config_.endpoints.size();
    if (endpoint_live(index)) return index;
  }
  return self_index_;
}

EndpointAddress Federation::coordinator_of(std::string_view group) const {
  if (config_.endpoints.size() <= 1)
    return EndpointAddress{config_.node_id, HostPort{config_.advertised.host, config_.advertised.port}};
  const size_t owner = shard_owner(static_cast<size_t>(groups_.shard_of(group)));
  if (owner == self_index_)
    return EndpointAddress{config_.node_id, HostPort{config_.advertised.host, config_.advertised.port}};
  return config_.endpoints[owner];
}

void Federation::deal_groups() {
  if (config_.endpoints.size() <= 1) return;
  for (size_t shard = 0; shard < config_.endpoints.size(); ++shard) {
    const int32_t s = static_cast<int32_t>(shard);
    const bool mine = shard_owner(shard) == self_index_;
    if (mine && groups_.begin_loading(s, ++shard_epoch_)) {
      groups_.finish_loading(s, {});  // the offsets are on the members: nothing to load
      SLUICE_LOG(kInfo, "coordinating the consumer groups of endpoint " << config_.endpoints[shard].id << "'s share");
    } else if (!mine && groups_.shard_loaded(s)) {
      groups_.unload(s);  // its members are told NOT_COORDINATOR and look again
      SLUICE_LOG(kInfo, "no longer coordinating the consumer groups of endpoint " << config_.endpoints[shard].id
                                                                                 << "'s share");
    }
  }
}

asio::awaitable<void> Federation::watch_endpoint(size_t index) {
  const EndpointAddress& endpoint = config_.endpoints[index];
  broker::OutboundConnection link(io_.get_executor(), endpoint.address.host, endpoint.address.port,
                                  "sluice-federation-peer");
  asio::steady_timer pause(io_);
  bool was_live = true;
  for (;;) {
    try {
      protocol::ApiVersionsRequest ask;
      co_await link.call<protocol::ApiVersionsResponse>(ask, 0, std::chrono::milliseconds(config_.member_timeout_ms));
      endpoint_answers_[index] = std::chrono::steady_clock::now();
    } catch (const std::exception&) {
      // unanswered: it stays live until federation.member.timeout.ms after its last answer
    }
    const bool live = endpoint_live(index);
    if (live != was_live)
      SLUICE_LOG(kInfo, "federation endpoint " << endpoint.id << " at " << endpoint.address.host << ":"
                                               << endpoint.address.port << (live ? " answers again" : " does not answer"));
    was_live = live;
    deal_groups();
    pause.expires_after(std::chrono::milliseconds(config_.health_check_interval_ms));
    co_await pause.async_wait(asio::use_awaitable);
  }
}

}  // namespace sluice::federation
