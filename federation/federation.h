// A federation endpoint (`sluice federation`): one Kafka endpoint over several
// independent member clusters. Clients bootstrap from it alone and see one
// cluster of one broker (this process, `node.id`) that leads every partition
// of every federated topic; each request is split by the member cluster and
// member broker that holds its partitions, forwarded in the Kafka protocol,
// and the answers are merged. The topic map (federation_store.h) says where
// each topic lives; the members (member_cluster.h) say who leads what there.
//
// Single-threaded: everything runs on the io_context's one thread; the map's
// LMDB commits run on the state writer's.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <tuple>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "broker/admin_server.h"
#include "broker/async_event.h"
#include "broker/group_coordinator.h"
#include "broker/status_snapshot.h"
#include "federation/federation_config.h"
#include "federation/member_cluster.h"
#include "federation/member_links.h"
#include "federation/federation_store.h"
#include "federation/map_log.h"
#include "federation/status.h"
#include "protocol/wire.h"

namespace sluice::federation {

class Federation {
 public:
  Federation(boost::asio::io_context& io, FederationConfig config);

  // Binds the listener and starts watching the members. Throws if it cannot bind.
  void start();
  uint16_t port() const { return port_; }

  const FederationConfig& config() const { return config_; }
  FederationStore& store() { return store_; }
  const std::vector<std::unique_ptr<MemberCluster>>& members() const { return members_; }
  MemberCluster* member(std::string_view name) const;
  // Consumer-group membership (the classic protocol), coordinated here for
  // every group (with several endpoints, for the groups dealt to this one:
  // others get NOT_COORDINATOR): soft state, as Kafka's coordinator keeps it in memory. The
  // groups' committed offsets are not kept here: each partition's go to the
  // member cluster holding it (handlers/offset_commit.cc).
  broker::GroupCoordinator& groups() { return groups_; }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }
  // A topic deleted through the endpoint: the members may list it a moment
  // longer, and it must not be adopted back from them meanwhile.
  void note_deleted(const std::string& topic);

  // Clients are let in (every member had its first health round; a shared map was read to its end).
  bool accepting() const { return accepting_; }

  // Several endpoints over one map (federation.endpoints, the map shared
  // through federation.map.cluster): each asks the others for ApiVersions
  // every health interval; one unanswered for federation.member.timeout.ms is
  // taken for gone. Metadata lists the endpoints taken for live, and the
  // consumer groups are dealt out over the endpoints (GroupCoordinator's
  // shards, one per endpoint: a group's shard is coordinated by its endpoint,
  // or by the next live one after it), so a group's members, whichever
  // endpoint they bootstrapped from, meet at one coordinator.
  std::vector<EndpointAddress> live_endpoints() const;
  // The endpoint coordinating `group`.
  EndpointAddress coordinator_of(std::string_view group) const;
  // The map's log, when the map is shared (else nullptr).
  const MapLog* map_log() const { return map_log_.get(); }

  // Moves of a topic's segment from one member to another (topic_mover.h), by
  // topic; an ended one is kept to be shown (/v1/topics) until the next.
  struct TopicMove {
    std::string from, to;  // from: the old members, comma-separated
    std::vector<std::string> sources;  // the old members
    std::string state;  // "copying", "switching", "done", or "failed: <why>"
    bool frozen = false;  // switching: Produce and OffsetCommit to `from` refused, retriable
    int64_t batches_copied = 0;
  };
  std::map<std::string, TopicMove, std::less<>>& moves() { return moves_; }
  // Produce and OffsetCommit of the topic to that member are held back: a
  // move's switch here, or, on a shared map, anywhere.
  bool moving_frozen(std::string_view topic, std::string_view cluster) const;
  // A move of the topic is copying or switching (not done, not failed).
  bool moving(std::string_view topic) const;
  // One change of a topic at a time: a second change (AlterConfigs,
  // CreatePartitions) waits until the first releases the topic, or until
  // `deadline`, as Kafka's controller serialises them. A move is not waited
  // for (it takes as long as its copy), nor a creation left unfinished.
  boost::asio::awaitable<void> wait_turn(std::string topic, std::chrono::steady_clock::time_point deadline);
  // Produce and OffsetCommit requests forwarded to a member and not answered
  // yet, by topic and member: a move's switch waits until none is left on
  // the old member.
  void write_started(const std::string& topic, const std::string& member) { ++writes_in_flight_[{topic, member}]; }
  void write_finished(const std::string& topic, const std::string& member);
  int writes_in_flight(const std::string& topic, const std::string& member) const;
  // The end of what a member acknowledged to acks=1 (and acks=0) producers,
  // by topic, member and member partition: its high watermark may be behind
  // it for a while, and a move copies at least that far.
  void note_acknowledged(const std::string& topic, const std::string& member, int32_t partition, int64_t end);
  int64_t acknowledged_end(const std::string& topic, const std::string& member, int32_t partition) const;
  void forget_acknowledged(const std::string& topic);

 private:
  boost::asio::awaitable<void> accept(boost::asio::ip::tcp::acceptor acceptor);
  // Topics a member holds that the map does not: adopted, on that member.
  void adopt_topics(MemberCluster& member);
  boost::asio::awaitable<void> adopt(std::string topic, std::string cluster, int32_t partitions);
  // Member sessions and rebalance deadlines, ten times a second (as a
  // broker's); groups left empty are forgotten every 10 s.
  boost::asio::awaitable<void> expire_group_members();
  // Creations a stop or a failure left half done (FederationStore::
  // begin_creation): their parts are deleted from the members, every second
  // once clients are let in, until every member has answered.
  boost::asio::awaitable<void> finish_unfinished_creations();
  // A shared map's freeze of `topic` (a move's switch, maybe another
  // endpoint's): once this endpoint's writes to the frozen members are
  // answered, it says so in the map, with what it acknowledged there to
  // acks=1 producers.
  boost::asio::awaitable<void> acknowledge_freeze(std::string topic, std::string freeze);
  // The admin server's snapshot (status.h), taken twice a second.
  FederationStatus take_status() const;
  boost::asio::awaitable<void> publish_status();
  void start_admin_server();
  // Asks endpoint `index` of federation.endpoints for ApiVersions every health interval, forever.
  boost::asio::awaitable<void> watch_endpoint(size_t index);
  bool endpoint_live(size_t index) const;
  // The endpoint (index in federation.endpoints) coordinating shard `shard`.
  size_t shard_owner(size_t shard) const;
  // Takes up the shards this endpoint now owns and lets go of the others.
  void deal_groups();

  boost::asio::io_context& io_;
  FederationConfig config_;
  FederationStore store_;
  // The coordinator's offsets stay empty: commits go to the members.
  struct NoOffsets : broker::OffsetStore {
    broker::GroupOffsets load() override { return {}; }
    broker::OffsetWrite apply(std::string_view, const std::map<broker::TopicPartition, broker::CommittedOffset>&,
                              const std::vector<broker::TopicPartition>&) override {
      return {};
    }
  } no_offsets_;
  broker::GroupCoordinator groups_;
  std::vector<std::unique_ptr<MemberCluster>> members_;
  uint16_t port_ = 0;
  std::unique_ptr<MapLog> map_log_;
  std::vector<std::chrono::steady_clock::time_point> endpoint_answers_;  // by index in federation.endpoints
  size_t self_index_ = 0;
  int32_t shard_epoch_ = 0;
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> deleted_;  // until when not adopted
  std::set<std::string, std::less<>> adopting_;  // adoptions under way
  bool accepting_ = false;  // every member had its first health round: clients are let in
  std::map<std::string, TopicMove, std::less<>> moves_;
  std::map<std::pair<std::string, std::string>, int> writes_in_flight_;
  std::map<std::tuple<std::string, std::string, int32_t>, int64_t> acknowledged_ends_;
  // Declared before the server that reads it on its own thread, so destroyed after it.
  broker::SnapshotBoard<FederationStatus> status_board_;
  std::unique_ptr<broker::AdminServer> admin_;
};

// One client request as a handler sees it.
struct FederationRequest {
  Federation& federation;
  int16_t api_key = 0;
  int16_t api_version = 0;
  std::string_view body;
  protocol::Writer& response;
  std::optional<std::string> client_id;
  std::string client_host;
  MemberLinks& links;  // this client's own connections to member brokers
  bool send_response = true;  // cleared for Produce with acks=0
  bool close_connection = false;  // set where Kafka would close the connection
  // Set by release_input(): the connection may read its next request (client_connection.h).
  broker::AsyncEvent* input_released = nullptr;

  // The handler no longer reads `body` (its bytes may be reused): Produce, once forwarded.
  void release_input() {
    if (input_released) input_released->set();
  }

  template <typename Request>
  Request decode() const {
    protocol::Reader reader(body);
    Request request;
    request.decode(reader, api_version);
    return request;
  }
  template <typename Response>
  void respond(const Response& message) {
    message.encode(response, api_version);
  }
};

struct FederationApi {
  int16_t api_key;
  int16_t min_version;
  int16_t max_version;
  boost::asio::awaitable<void> (*handle)(FederationRequest&);
};
// The APIs the endpoint serves (ApiVersions lists exactly these).
const std::vector<FederationApi>& federation_apis();

}  // namespace sluice::federation
