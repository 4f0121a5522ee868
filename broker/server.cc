#include "broker/server.h"

#include <atomic>
#include <csignal>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <algorithm>

#include "broker/admin_server.h"
#include "broker/admin_views.h"
#include "broker/queue_retention.h"
#include "broker/share_group_coordinator.h"
#include "broker/share_partition_manager.h"
#include "broker/share_state_coordinator.h"
#include "broker/share_state_persister.h"
#include "broker/internal_topic.h"
#include "broker/remote_end_offsets.h"
#include "broker/status_snapshot.h"
#include "broker/broker.h"
#include "broker/connection.h"
#include "broker/connection_registry.h"
#include "broker/controller_link.h"
#include "broker/quorum_peer.h"
#include "protocol/crc32c.h"
#include "broker/isr_maintenance.h"
#include "broker/replica_fetcher.h"
#include "broker/log.h"
#include "broker/offsets_topic.h"
#include "broker/steady_clock.h"
#include "storage/state_store.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// Accept errors that mean "no resources right now" (out of file descriptors or
// memory): retrying at once would spin a core, so the loop backs off.
bool is_resource_shortage(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory;
}

asio::awaitable<void> accept_loop(Broker& broker, tcp::acceptor& acceptor, ConnectionRegistry& connections,
                                  ListenerRole role) {
  using namespace std::chrono_literals;
  asio::steady_timer backoff(acceptor.get_executor());
  auto backoff_delay = 10ms;
  // Refusals and failures are logged at most once a second, with a count.
  auto last_report = std::chrono::steady_clock::time_point{};
  int64_t unreported = 0;
  auto report = [&](const std::string& what) {
    ++unreported;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report < 1s) return;
    SLUICE_LOG(kWarn, what << (unreported > 1 ? " (" + std::to_string(unreported) + " times in the last second)" : ""));
    last_report = now;
    unreported = 0;
  };
  for (;;) {
    // At max.connections Kafka stops accepting until one closes; new clients
    // wait in the listen backlog.
    if (connections.full()) {
      report("reached " + std::to_string(connections.max_connections()) +
             " connections (max.connections or the open-file limit): new ones wait until one closes");
      co_await connections.wait_for_room();
    }
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      report("accept failed: " + ec.message());
      if (is_resource_shortage(ec)) {
        backoff.expires_after(backoff_delay);
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        backoff_delay = std::min<std::chrono::milliseconds>(backoff_delay * 2, 1s);
      }
      continue;
    }
    backoff_delay = 10ms;
    boost::system::error_code peer_ec;
    const std::string address = socket.remote_endpoint(peer_ec).address().to_string();
    if (!peer_ec && connections.address_full(address)) {
      report("refused a connection from " + address + ": max.connections.per.ip reached");
      continue;  // the socket closes as it goes out of scope, as Kafka closes it
    }
    // Counted before the next accept, so that max.connections holds exactly.
    auto entry = connections.add(address);
    asio::co_spawn(
        acceptor.get_executor(),
        [&broker, &connections, s = std::move(socket), entry, role]() mutable -> asio::awaitable<void> {
          co_await serve_connection(broker, std::move(s), *entry, role);
          connections.remove(entry);
        },
        asio::detached);
  }
}

// Kafka's connections.max.idle.ms: connections with nothing read, sent or in
// handling for that long are closed, checked ten times per period (at least
// every 10 s).
asio::awaitable<void> close_idle_connections(ConnectionRegistry& connections) {
  const int64_t step_ms = std::clamp<int64_t>(connections.max_idle_ms() / 10, 10, 10'000);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(step_ms));
    co_await timer.async_wait(asio::use_awaitable);
    connections.close_idle(ConnectionRegistry::Clock::now());
  }
}

// Kafka's offsets.retention.check.interval.ms: committed offsets of groups
// without members expire after offsets.retention.minutes.
asio::awaitable<void> expire_offsets_periodically(GroupCoordinator& groups, int64_t interval_ms) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(interval_ms));
    co_await timer.async_wait(asio::use_awaitable);
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    groups.expire_offsets(now_ms);
  }
}

// Member sessions and rebalance deadlines are checked ten times a second:
// coarse enough to cost nothing, fine enough next to Kafka's second-scale timeouts.
asio::awaitable<void> expire_group_sessions(GroupCoordinator& groups) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(100));
    co_await timer.async_wait(asio::use_awaitable);
    groups.tick();
  }
}

// Background upkeep of the logs, on the network thread between requests (each
// step is short; file deletions go to a background thread):
//  - checkpoint every log.flush.offset.checkpoint.interval.ms (10 s) what
//    changed (recovery points, log start offsets, producer-state snapshots),
//    so a restart after a crash rescans little;
//  - retention every log.retention.check.interval.ms;
//  - idle producer ids every producer.id.expiration.check.interval.ms;
//  - topics' flush.ms every log.flush.scheduler.interval.ms (Kafka's default:
//    never; acks=all and flush.messages flush as they are appended).
asio::awaitable<void> maintain_logs(ReplicaManager& replicas, const BrokerConfig& config) {
  const int64_t checkpoint_interval_ms = config.get_long("log.flush.offset.checkpoint.interval.ms");
  const int64_t retention_interval_ms = config.get_long("log.retention.check.interval.ms");
  const int64_t producer_interval_ms = config.get_long("producer.id.expiration.check.interval.ms");
  const int64_t producer_expiration_ms = config.get_long("producer.id.expiration.ms");
  const int64_t flush_interval_ms = config.get_long("log.flush.scheduler.interval.ms");
  const int64_t step_ms = std::min({checkpoint_interval_ms, retention_interval_ms, producer_interval_ms, flush_interval_ms});
  asio::steady_timer timer(co_await asio::this_coro::executor);
  int64_t since_checkpoint = 0, since_retention = 0, since_producers = 0, since_flush = 0;
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(step_ms));
    co_await timer.async_wait(asio::use_awaitable);
    since_checkpoint += step_ms;
    since_retention += step_ms;
    since_producers += step_ms;
    since_flush += step_ms;
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    try {
      if (since_retention >= retention_interval_ms) {
        since_retention = 0;
        replicas.enforce_retention(now_ms);
      }
      if (since_producers >= producer_interval_ms) {
        since_producers = 0;
        replicas.expire_producers(now_ms, producer_expiration_ms);
      }
      if (since_flush >= flush_interval_ms) {
        since_flush = 0;
        replicas.flush_by_time(now_ms);
      }
      if (since_checkpoint >= checkpoint_interval_ms) {
        since_checkpoint = 0;
        replicas.checkpoint();
        replicas.reconcile();  // replicas whose opening failed, tried again
      }
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "log maintenance failed (will retry): " << e.what());
    }
  }
}


// The controller's side of broker liveness: brokers not heard from for
// broker.session.timeout.ms are fenced. Checked four times per heartbeat
// interval. A broker in this process heartbeats in-process.
asio::awaitable<void> watch_broker_sessions(controller::Controller& controller, const BrokerConfig& config,
                                            std::optional<int64_t> local_broker_epoch) {
  const int64_t step_ms = std::max<int64_t>(config.get_long("broker.heartbeat.interval.ms") / 4, 10);
  controller.renew_all_sessions(steady_now_ms());
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(step_ms));
    co_await timer.async_wait(asio::use_awaitable);
    const int64_t now = steady_now_ms();
    if (!controller.active()) continue;  // a quorum voter that does not lead: the leader watches
    if (local_broker_epoch)
      controller.heartbeat(config.node_id(), *local_broker_epoch, controller.log().durable_end_offset(), false, false, now);
    for (int32_t id : controller.fence_expired_brokers(now))
      SLUICE_LOG(kWarn, "fenced broker " << id << ": no heartbeat for broker.session.timeout.ms");
  }
}

// A quorum's cluster id, the same on every voter without asking another:
// derived from controller.quorum.voters (a random one would differ from voter
// to voter on a first start). Kafka has its operators pass one to
// kafka-storage.sh format on every node instead.
std::string quorum_cluster_id(const BrokerConfig& config) {
  const std::string voters = config.get_string("controller.quorum.voters");
  protocol::Uuid id;
  for (uint32_t word = 0; word < 4; ++word) {
    const uint32_t crc = protocol::crc32c(std::to_string(word) + "/" + voters);
    for (int b = 0; b < 4; ++b) id.bytes[word * 4 + b] = static_cast<uint8_t>(crc >> (8 * b));
  }
  id.bytes[6] = (id.bytes[6] & 0x0f) | 0x40;  // shaped as a version-4 UUID, as Kafka's are
  id.bytes[8] = (id.bytes[8] & 0x3f) | 0x80;
  return controller::base64url(id);
}

// auto.leader.rebalance.enable: every leader.imbalance.check.interval.seconds
// the controller gives partitions back to their preferred leaders where a
// broker's imbalance passes leader.imbalance.per.broker.percentage.
asio::awaitable<void> rebalance_leaders_periodically(controller::Controller& controller, const BrokerConfig& config) {
  const auto interval = std::chrono::seconds(config.get_long("leader.imbalance.check.interval.seconds"));
  const double percent = config.get_int("leader.imbalance.per.broker.percentage");
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(interval);
    co_await timer.async_wait(asio::use_awaitable);
    if (!controller.active()) continue;
    if (int moved = controller.rebalance_leaders(percent); moved > 0)
      SLUICE_LOG(kInfo, "leader rebalance: " << moved << " partition(s) back to their preferred leader");
  }
}

// Copies the broker's state for the admin server, now and then every interval.
asio::awaitable<void> refresh_status_periodically(Broker& broker, StatusBoard& board, const RemoteEndOffsets& remote,
                                                  const QueueRetention& queues, std::chrono::milliseconds interval) {
  asio::steady_timer timer(broker.executor);
  for (;;) {
    timer.expires_after(interval);
    try {
      board.publish(std::make_shared<const StatusSnapshot>(take_status_snapshot(broker, remote.known(), queues.positions())));
    } catch (const std::exception& e) {  // bad_alloc, say: the admin server shows the last one
      SLUICE_LOG(kError, "taking the status snapshot failed: " << e.what());
    }
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

// Asks the leaders of partitions this node holds no replica of (or follows:
// a follower's high watermark may be stale) for the end offsets its groups'
// lag needs, once per interval, on its own loop: a slow leader delays the
// lag, never the snapshot or readiness.
asio::awaitable<void> refresh_remote_end_offsets(const StatusBoard& board, RemoteEndOffsets& remote,
                                                 asio::any_io_executor executor, std::chrono::milliseconds interval) {
  // At least a second: a loaded leader must not time out (and lose its connection) every round.
  const auto timeout = std::max<std::chrono::milliseconds>(interval, std::chrono::seconds(1));
  asio::steady_timer timer(executor);
  for (;;) {
    timer.expires_after(interval);
    try {
      std::set<std::pair<std::string, int32_t>> wanted;
      if (auto snapshot = board.latest())
        for (const auto& group : snapshot->groups)
          for (const auto& offset : group.offsets)
            if (!offset.end_offset_local) wanted.insert({offset.topic, offset.partition});
      if (!wanted.empty()) co_await remote.refresh(wanted, timeout);
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "asking leaders for end offsets failed: " << e.what());
    }
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

// Share groups' clocks, ten times a second: members whose session timed out
// leave, and records whose acquisition lock expired go back.
asio::awaitable<void> tick_share_groups(ShareGroupCoordinator& groups, SharePartitionManager& partitions) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(100));
    co_await timer.async_wait(asio::use_awaitable);
    const int64_t now = steady_now_ms();
    for (const auto& [group, member] : groups.expire_sessions(now))
      SLUICE_LOG(kInfo, "share group " << group << ": member " << member << " left (session timed out)");
    partitions.expire_locks(now);
    partitions.expire_sessions(now);
  }
}

// Delete after consumption (queue_retention.h), every interval; a round
// waits for its answers before the next one starts.
asio::awaitable<void> release_consumed_periodically(QueueRetention& queues, asio::any_io_executor executor,
                                                    std::chrono::milliseconds interval) {
  // At least a second per request: a loaded coordinator must not time out (and lose its connection) every round.
  const auto timeout = std::max<std::chrono::milliseconds>(interval, std::chrono::seconds(1));
  asio::steady_timer timer(executor);
  for (;;) {
    timer.expires_after(interval);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    try {
      co_await queues.release_consumed(timeout);
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "releasing consumed records failed (will retry): " << e.what());
    }
  }
}

// A deleted topic's traffic counters go with it (after the replica manager
// dropped its partitions, which point at them: it listens first).
class TopicMetricsCleaner : public controller::MetadataListener {
 public:
  explicit TopicMetricsCleaner(Metrics& metrics) : metrics_(metrics) {}
  void on_topic_created(const controller::TopicInfo&) override {}
  void on_partitions_added(const controller::TopicInfo&, int32_t) override {}
  void on_topic_deleted(const controller::TopicInfo& topic) override { metrics_.forget_topic(topic.name); }

 private:
  Metrics& metrics_;
};

}  // namespace

int run_server(const BrokerConfig& config) {
  const std::filesystem::path log_dir = std::filesystem::absolute(config.log_dir());
  std::filesystem::create_directories(log_dir);
  auto store = storage::StateStore::open((log_dir / "__sluice_state").string());

  const bool is_broker = config.has_role("broker");
  // Before io: coroutines the io_context destroys at the end still count in it.
  Metrics metrics;
  asio::io_context io(1);
  // LMDB commits off the network thread: the metadata log's, checkpoints, offsets.
  StateWriter state_writer(io.get_executor(), *store);
  // The metadata log's writes, in order or not at all: a failed one stops the process.
  const auto write_in_background = [&state_writer, chain = std::make_shared<StateWriter::Chain>()](
                                       std::vector<storage::StateStore::Change> changes, std::function<void(bool)> done) {
    state_writer.apply(std::move(changes), std::move(done), chain);
  };
  // The metadata this node serves from: the controller's own image on a node
  // with the controller role, its copy of the controller's log on a
  // broker-only node.
  std::unique_ptr<controller::Controller> controller;
  std::unique_ptr<QuorumPeer> quorum;  // with several voters
  std::unique_ptr<ControllerLink> link;
  MetadataPublisher metadata_publisher;
  std::optional<int64_t> local_broker_epoch;
  if (config.has_role("controller")) {
    controller::Controller::Options controller_options{
        config.node_id(), config.get_int("num.partitions"),
        static_cast<int16_t>(config.get_int("default.replication.factor")),
        static_cast<uint64_t>(config.get_long("metadata.log.max.record.bytes.between.snapshots")),
        config.get_long("broker.session.timeout.ms"), config.get_bool("unclean.leader.election.enable")};
    if (config.controller_quorum_voters().size() > 1) {
      controller_options.quorum = true;
      controller_options.new_cluster_id = quorum_cluster_id(config);
    }
    controller = std::make_unique<controller::Controller>(*store, controller_options);
    controller->add_listener(&metadata_publisher);
    // This node's broker registers with its controller under a new
    // incarnation on every start, and is unfenced at once: in one process it
    // is caught up by construction.
    if (is_broker) {
      std::vector<controller::BrokerEndpoint> endpoints;
      for (const auto& l : config.advertised_listeners()) endpoints.push_back({l.name, l.host, l.port, 0});
      int64_t epoch = -1;
      auto registered = controller->register_broker(config.node_id(), controller::random_uuid(), endpoints,
                                                    config.value("broker.rack"), &epoch, steady_now_ms());
      if (registered.ok()) registered = controller->unfence_broker(config.node_id(), epoch);
      if (!registered.ok()) {
        SLUICE_LOG(kError, "could not register broker " << config.node_id() << ": " << registered.message);
        return 1;
      }
      local_broker_epoch = epoch;
    }
    // Set up: from now on the network thread does not wait for the metadata log's disk.
    controller->write_in_background(write_in_background,
                                    [](const std::string& what) { SLUICE_LOG(kError, what); });
    if (controller_options.quorum) {
      quorum = std::make_unique<QuorumPeer>(io.get_executor(), config, *controller, *store, state_writer);
      // Voters waiting for records are woken as they become durable; the high watermark may move.
      controller->on_durable([&metadata_publisher, peer = quorum.get()](int64_t) {
        metadata_publisher.wake_all();
        peer->on_log_durable();
      });
    }
  } else {
    link = std::make_unique<ControllerLink>(io.get_executor(), config, *store);
    link->write_in_background(write_in_background);
  }
  const controller::MetadataImage& metadata = controller ? controller->committed_image() : link->image();
  auto add_listener = [&](controller::MetadataListener* l) {
    if (controller)
      controller->add_listener(l);
    else
      link->add_listener(l);
  };

  Flusher flusher(io.get_executor(), FlushObserver{[&metrics](double seconds) { metrics.observe_fsync(seconds); },
                                                          [&metrics](uint64_t bytes) { metrics.flushed(bytes); }});
  ReplicaManager replicas(log_dir, config, *store, flusher, state_writer);
  replicas.set_roll_observer([&metrics](double seconds) { metrics.observe_segment_roll(seconds); });
  ReplicaFetchers fetchers(io.get_executor(), config, replicas, metadata);
  replicas.add_role_observer([&](Partition& p, int32_t leader) { fetchers.follow(p, leader); });
  if (link) replicas.hold_roles();
  replicas.load(metadata);
  add_listener(&replicas);
  TopicMetricsCleaner topic_metrics_cleaner(metrics);
  add_listener(&topic_metrics_cleaner);

  // Committed offsets: in the state store on a single node; in a cluster, in
  // __consumer_offsets, each group coordinated by its partition's leader.
  const bool offsets_in_topic = !config.standalone();
  StateStoreOffsetStore state_store_offsets(*store, &state_writer);
  LogOffsetStore topic_offsets(replicas);
  OffsetStore& offset_store = offsets_in_topic ? static_cast<OffsetStore&>(topic_offsets) : state_store_offsets;
  GroupCoordinator groups(offset_store,
                          GroupCoordinator::Options{config.get_int("offset.metadata.max.bytes"),
                                                    config.get_long("offsets.retention.minutes") * 60'000,
                                                    config.get_int("group.min.session.timeout.ms"),
                                                    config.get_int("group.max.session.timeout.ms"),
                                                    config.get_int("group.initial.rebalance.delay.ms")},
                          io.get_executor());
  add_listener(&groups);
  if (offsets_in_topic) {
    groups.shard_by(config.get_int("offsets.topic.num.partitions"));
    topic_offsets.set_partitioner(&groups);
  }
  ProducerIdManager producer_ids(controller.get(), &metadata_publisher, link.get());
  if (link)
    link->on_caught_up([&replicas, &producer_ids] {
      replicas.release_roles();
      producer_ids.prefetch();  // the first idempotent producers need not wait for the controller
    });
  CpuWorker cpu_worker(io.get_executor());  // after io: joined while the requests it works for still exist
  Broker broker{config,
                metadata,
                controller ? controller->cluster_id() : link->cluster_id(),
                controller.get(),
                link.get(),
                &metadata_publisher,
                replicas,
                groups,
                flusher,
                producer_ids,
                config.get_bool("sluice.idempotence.enable"),
                io.get_executor(),
                cpu_worker,
                metrics};
  // Share groups: on a single node unless switched off (their state in the
  // state store); in a cluster when switched on (their state with the share
  // coordinators, in __share_group_state).
  std::unique_ptr<ShareGroupCoordinator> share_groups;
  std::unique_ptr<SharePartitionManager> share_partitions;
  std::unique_ptr<ShareStateCoordinator> share_states;
  std::unique_ptr<ShareStatePersister> share_persister;
  if (is_broker && config.share_groups_enabled()) {
    if (!config.standalone()) {
      share_states = std::make_unique<ShareStateCoordinator>(broker);
      share_persister = std::make_unique<ShareStatePersister>(broker, *share_states);
      broker.share_states = share_states.get();
      broker.share_persister = share_persister.get();
      add_listener(share_states.get());
      replicas.add_role_observer([states = share_states.get()](Partition& p, int32_t) { states->on_partition_role(p); });
      replicas.for_each_partition([states = share_states.get()](Partition& p) { states->on_partition_role(p); });
      CompactionHooks hooks;
      hooks.loaded = [states = share_states.get()](int32_t index) { return states->loaded(index); };
      hooks.live = [states = share_states.get()](int32_t index) { return states->live_states(index); };
      hooks.rewrite = [states = share_states.get()](int32_t index) { return states->rewrite(index); };
      hooks.timeout = std::chrono::milliseconds(config.get_int("share.coordinator.write.timeout.ms"));
      asio::co_spawn(io, compact_internal_topic_periodically(broker, controller::kShareStateTopic, hooks),
                     asio::detached);
    }
    share_groups = std::make_unique<ShareGroupCoordinator>(
        ShareGroupCoordinator::Options{config.get_int("group.share.session.timeout.ms"),
                                       config.get_int("group.share.heartbeat.interval.ms"),
                                       config.get_int("group.share.max.size")},
        metadata);
    const SharePartitionLimits limits{config.get_int("group.share.record.lock.duration.ms"),
                                      config.get_int("group.share.delivery.count.limit"),
                                      config.get_int("group.share.partition.max.record.locks")};
    share_partitions = std::make_unique<SharePartitionManager>(
        io.get_executor(), replicas, *store, state_writer,
        [&metadata, limits](const std::string& group) { return share_limits(metadata, group, limits); },
        [&metadata](const std::string& group) { return share_reset_is_earliest(metadata, group); },
        SharePartitionManager::SessionLimits{static_cast<size_t>(config.get_int("group.share.max.share.sessions")),
                                             config.get_int("group.share.session.timeout.ms")},
        metadata, share_persister.get());
    if (share_persister)
      replicas.add_role_observer(
          [manager = share_partitions.get()](Partition& p, int32_t) { manager->on_partition_role(p); });
    broker.share_groups = share_groups.get();
    broker.share_partitions = share_partitions.get();
    add_listener(share_partitions.get());
    asio::co_spawn(io, tick_share_groups(*share_groups, *share_partitions), asio::detached);
  }
  if (offsets_in_topic) {
    // The partitions of __consumer_offsets this broker leads already, then every change.
    replicas.add_role_observer([&broker](Partition& p, int32_t) { on_offsets_partition_role(broker, p); });
    replicas.for_each_partition([&broker](Partition& p) { on_offsets_partition_role(broker, p); });
    asio::co_spawn(io, compact_offsets_periodically(broker), asio::detached);
  }

  // Clients' listeners on a broker; controller listeners when there is a quorum to serve.
  std::vector<std::pair<Listener, ListenerRole>> to_open;
  if (is_broker)
    for (const auto& l : config.broker_listeners()) to_open.emplace_back(l, ListenerRole::kBroker);
  if (!config.standalone())
    for (const auto& l : config.controller_listeners()) to_open.emplace_back(l, ListenerRole::kController);
  std::vector<std::pair<std::unique_ptr<tcp::acceptor>, ListenerRole>> acceptors;
  for (const auto& [listener, role] : to_open) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(listener.host.empty() ? "0.0.0.0" : listener.host, ec);
    if (ec) {
      // A host name: resolve it once at start-up.
      tcp::resolver resolver(io);
      auto results = resolver.resolve(listener.host, std::to_string(listener.port), ec);
      if (ec || results.empty()) {
        SLUICE_LOG(kError, "cannot resolve listener host " << listener.host << ": " << ec.message());
        return 1;
      }
      address = results.begin()->endpoint().address();
    }
    auto acceptor = std::make_unique<tcp::acceptor>(io);
    tcp::endpoint endpoint(address, listener.port);
    acceptor->open(endpoint.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    acceptor->bind(endpoint, ec);
    if (ec) {
      SLUICE_LOG(kError, "cannot listen on " << listener.host << ":" << listener.port << ": " << ec.message());
      return 1;
    }
    acceptors.emplace_back(std::move(acceptor), role);
  }

  // The admin HTTP server, on its own thread: a port it cannot have stops
  // start-up as a Kafka listener's does. Ready once every listener is open,
  // and not while the controller has this broker fenced. It reads the
  // broker's state only from the snapshots the network thread publishes.
  std::atomic<size_t> listeners_open{0};
  StatusBoard status_board;
  std::unique_ptr<AdminServer> admin;
  if (const auto address = config.admin_listener()) {
    AdminServer::Handlers handlers;
    handlers.metrics = [&metrics, &status_board, partition_level = config.get_bool("metrics.partition.level"),
                        log_dir = log_dir.string()] {
      std::vector<prometheus::MetricFamily> extra;
      if (auto snapshot = status_board.latest()) extra = state_metrics(*snapshot, partition_level);
      for (auto& f : process_and_disk_metrics(log_dir)) extra.push_back(std::move(f));
      return metrics.serialize(extra);
    };
    handlers.readiness = [&listeners_open, &status_board, total = acceptors.size(), follows_controller = link != nullptr] {
      if (listeners_open.load() < total)
        return AdminServer::Readiness{false, follows_controller ? "waiting for the controller to unfence this broker"
                                                               : "starting"};
      auto snapshot = status_board.latest();
      if (follows_controller && snapshot && snapshot->fenced)
        return AdminServer::Readiness{false, "fenced by the controller"};
      if (follows_controller && snapshot && snapshot->controller_unreachable)
        return AdminServer::Readiness{false, "no heartbeat answered by the controller for broker.session.timeout.ms"};
      return AdminServer::Readiness{true, ""};
    };
    handlers.is_view = [](std::string_view path) { return is_admin_view(path); };
    handlers.view = [&status_board](std::string_view path) -> std::optional<std::string> {
      auto snapshot = status_board.latest();
      if (!snapshot) return std::nullopt;
      return render_admin_view(*snapshot, path);
    };
    try {
      admin = std::make_unique<AdminServer>(address->host, address->port, std::move(handlers));
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, e.what());
      return 1;
    }
    SLUICE_LOG(kInfo, "admin HTTP server (health, metrics) on " << address->host << ":" << admin->port());
  }

  const int64_t max_connections =
      std::min<int64_t>(config.get_long("max.connections"), connections_allowed_by_file_limit());
  ConnectionRegistry connections(io.get_executor(), max_connections, config.get_long("max.connections.per.ip"),
                                 config.get_long("connections.max.idle.ms"));
  auto start_accepting = [&](tcp::acceptor& acceptor, ListenerRole role) {
    boost::system::error_code ec;
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      SLUICE_LOG(kError, "cannot listen on port " << acceptor.local_endpoint().port() << ": " << ec.message());
      return;
    }
    SLUICE_LOG(kInfo, "listening for " << (role == ListenerRole::kBroker ? "clients" : "controller requests")
                                       << " on port " << acceptor.local_endpoint().port());
    asio::co_spawn(io, accept_loop(broker, acceptor, connections, role), asio::detached);
    ++listeners_open;
  };
  // The ports are bound above (a conflict stops start-up), but a broker of a cluster answers
  // clients only once the controller has unfenced it, as Kafka's brokers do: before, its
  // metadata may be stale (a restarted broker's image says it leads what it no longer leads,
  // or lists no live broker at all, which leaves librdkafka with no broker to ask again).
  // Until then connections are refused and clients go to the other brokers.
  for (auto& [acceptor, role] : acceptors)
    if (role != ListenerRole::kBroker || !link) start_accepting(*acceptor, role);
  if (link)
    link->on_unfenced([&] {
      for (auto& [acceptor, role] : acceptors)
        if (role == ListenerRole::kBroker) start_accepting(*acceptor, role);
    });
  broker.quorum = quorum.get();
  if (quorum) asio::co_spawn(io, quorum->run(), asio::detached);
  if (controller && !config.standalone())
    asio::co_spawn(io, watch_broker_sessions(*controller, config, local_broker_epoch), asio::detached);
  if (controller && !config.standalone() && config.get_bool("auto.leader.rebalance.enable"))
    asio::co_spawn(io, rebalance_leaders_periodically(*controller, config), asio::detached);
  if (link) asio::co_spawn(io, link->run(), asio::detached);
  if (is_broker && !config.standalone())
    asio::co_spawn(io, maintain_isr(broker), asio::detached);
  if (config.get_long("connections.max.idle.ms") >= 0)
    asio::co_spawn(io, close_idle_connections(connections), asio::detached);
  RemoteEndOffsets remote_end_offsets(io.get_executor(), config, metadata);
  QueueRetention queue_retention(broker);
  if (is_broker)
    asio::co_spawn(io,
                   release_consumed_periodically(
                       queue_retention, io.get_executor(),
                       std::chrono::milliseconds(config.get_long("delete.after.consumption.check.interval.ms"))),
                   asio::detached);
  if (admin) {
    const std::chrono::milliseconds refresh_interval(config.get_int("admin.refresh.interval.ms"));
    asio::co_spawn(io,
                   refresh_status_periodically(broker, status_board, remote_end_offsets, queue_retention,
                                               refresh_interval),
                   asio::detached);
    asio::co_spawn(io, refresh_remote_end_offsets(status_board, remote_end_offsets, io.get_executor(), refresh_interval),
                   asio::detached);
  }

  asio::co_spawn(io, expire_offsets_periodically(groups, config.get_long("offsets.retention.check.interval.ms")),
                 asio::detached);
  asio::co_spawn(io, expire_group_sessions(groups), asio::detached);
  asio::co_spawn(io, maintain_logs(replicas, config), asio::detached);

  // A peer that closes while we sendfile() to it must cost an EPIPE, not the
  // process (send() has MSG_NOSIGNAL; sendfile() has no such flag).
  std::signal(SIGPIPE, SIG_IGN);
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    SLUICE_LOG(kInfo, "signal " << signal << ": shutting down");
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          // A broker of a cluster first hands its leaderships over (controlled shutdown).
          if (link) {
            co_await link->shut_down(std::chrono::seconds(5));
            link->stop();
          }
          // A quorum leader hands over at once (EndQuorumEpoch).
          if (quorum) {
            co_await quorum->resign_for_shutdown();
            quorum->stop();
          }
          fetchers.stop();
          for (auto& [acceptor, role] : acceptors) acceptor->close();
          connections.close_all();
          io.stop();
        },
        asio::detached);
  });

  SLUICE_LOG(kInfo, "accepting at most " << max_connections << " connections (max.connections and the open-file limit)");
  SLUICE_LOG(kInfo, "sluice node " << config.node_id() << " (" << config.get_string("process.roles") << ") started: cluster "
                                   << (broker.cluster_id.empty() ? "(not known yet)" : broker.cluster_id) << ", "
                                   << metadata.topics().size() << " topic(s), data in " << log_dir.string());
  io.run();
  replicas.flush_all();
  SLUICE_LOG(kInfo, "shut down cleanly");
  return 0;
}

}  // namespace sluice::broker
