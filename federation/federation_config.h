// The configuration of a federation endpoint (`sluice federation`): where
// clients connect, where the topic map lives, and the member clusters it
// spreads topics over. A Java properties file and `--override key=value`, as
// the broker's (broker/config.h), with keys of its own:
//
//   node.id                                  the one broker id clients see (0)
//   listeners / advertised.listeners         PLAINTEXT://host:port
//   log.dirs                                 the topic map's LMDB directory
//   admin.listeners                          health, views and metrics over HTTP
//                                            (http://127.0.0.1:9645; empty: none)
//   federation.clusters                      member names, comma-separated
//   federation.cluster.<name>.bootstrap.servers  host:port,... of that member
//   federation.health.check.interval.ms      how often each member is asked (1000)
//   federation.member.timeout.ms             unanswered this long: unhealthy (5000)
//   federation.request.timeout.ms            one forwarded request (30000)
//   federation.map.cluster                   the member that keeps the map's log, shared
//                                            by several endpoints (map_log.h; unset: the
//                                            map is this endpoint's alone, in log.dirs)
//   federation.endpoints                     id@host:port,... every endpoint serving the
//                                            map, this one (node.id) too, the same list on
//                                            each: Metadata lists those that answer, groups
//                                            are dealt out over them; required with a shared map
//   auto.create.topics.enable                Metadata creates the topics it is asked
//                                            for and the map lacks (true, as Kafka)
//   num.partitions                           their partitions (1, as Kafka)
//   group.initial.rebalance.delay.ms, group.min.session.timeout.ms,
//   group.max.session.timeout.ms             consumer groups, as on a broker
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broker/config.h"
#include "broker/group_coordinator.h"

namespace sluice::federation {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

struct MemberClusterConfig {
  std::string name;
  std::vector<HostPort> bootstrap;
};

struct EndpointAddress {
  int32_t id = 0;
  HostPort address;
};

struct FederationConfig {
  int32_t node_id = 0;
  broker::Listener listener{"PLAINTEXT", "127.0.0.1", 9192};
  broker::Listener advertised{"PLAINTEXT", "127.0.0.1", 9192};
  std::string data_dir = "./federation-data";
  std::optional<broker::Listener> admin = broker::Listener{"http", "127.0.0.1", 9645};
  std::vector<MemberClusterConfig> members;
  std::optional<std::string> map_cluster;
  std::vector<EndpointAddress> endpoints;  // empty: this one alone
  int64_t health_check_interval_ms = 1000;
  int64_t member_timeout_ms = 5000;
  int64_t request_timeout_ms = 30000;
  bool auto_create_topics = true;
  int32_t auto_create_partitions = 1;
  broker::GroupCoordinator::Options groups;

  // Throws broker::ConfigError naming the key at fault (an unknown key, a
  // member without bootstrap servers, no member at all, a map cluster that is
  // not a member or without federation.endpoints, an endpoints list without
  // this node.id or with an id twice or an item not id@host:port, several
  // endpoints without a map cluster).
  static FederationConfig load(const std::optional<std::string>& file, const std::vector<std::string>& overrides);
};

}  // namespace sluice::federation
