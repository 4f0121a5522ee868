// What the federation endpoint's admin server shows (admin.listeners): the
// member clusters' health and the topic map, as JSON views (GET /v1/members,
// /v1/topics) and Prometheus metrics (GET /metrics). A snapshot is taken on
// the network thread twice a second and handed to the admin thread, which
// renders it; nothing the admin thread does reaches the network thread.
// METRICS.md lists the views and the metrics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

#include "federation/placement.h"

namespace sluice::federation {

struct FederationStatus {
  struct Member {
    std::string name;
    std::string bootstrap;  // as configured
    bool healthy = false;
    size_t brokers = 0;                 // as it last answered
    int64_t partitions = 0;             // outside its internal topics
    int64_t federated_partitions = 0;   // of the map's topics, placed on it
    uint64_t health_checks = 0;         // rounds completed
    uint64_t failed_health_checks = 0;  // rounds no broker answered
    double seconds_since_answer = -1;   // -1: never answered
    std::string last_error;             // of the last round no broker answered
  };
  struct Topic {
    std::string name;
    std::string id;
    int32_t partitions = 0;
    std::vector<PlacementSegment> placement;  // in order (placement.h)
    // Its last move between members (Federation::TopicMove), if any.
    std::string move_from, move_to, move_state;
    int64_t move_batches_copied = 0;
  };
  int32_t node_id = 0;
  bool accepting = false;  // clients are let in (every member had its first health round)
  std::vector<Member> members;
  std::vector<Topic> topics;
};

bool is_federation_view(std::string_view path);
// The JSON of view `path`; nullopt for a path that is no view.
std::optional<std::string> render_federation_view(const FederationStatus& status, std::string_view path);
std::vector<prometheus::MetricFamily> federation_metrics(const FederationStatus& status);

}  // namespace sluice::federation
