// The APIs a federation endpoint serves, at the versions it serves them. Each
// is forwarded to members at one version every member speaks (Sluice, and
// Apache Kafka 3.9 and 4.x): the version ranges here are those a client may
// use against the endpoint.
#include "federation/handlers/handlers.h"

namespace sluice::federation {

const std::vector<FederationApi>& federation_apis() {
  static const std::vector<FederationApi> apis = {
      {0, 3, 9, handle_produce},         // forwarded at v9 (Kafka 4 takes Produce from v3)
      {1, 4, 12, handle_fetch},          // forwarded at v12 (topic names)
      {2, 1, 7, handle_list_offsets},    // forwarded at v7
      {3, 0, 12, handle_metadata},       // answered from the map and the members' metadata
      {8, 2, 8, handle_offset_commit},   // checked here, forwarded at v8 to each member's coordinator
      {9, 1, 8, handle_offset_fetch},    // forwarded at v7 to each member's coordinator
      {10, 0, 4, handle_find_coordinator},  // consumer groups: this endpoint
      {11, 0, 9, handle_join_group},     // group membership: coordinated here
      {12, 0, 4, handle_heartbeat},
      {13, 0, 5, handle_leave_group},
      {14, 0, 5, handle_sync_group},
      {15, 0, 5, handle_describe_groups},  // groups: coordinated here
      {16, 0, 5, handle_list_groups},
      {18, 0, 3, handle_api_versions},
      {19, 2, 7, handle_create_topics},  // forwarded at v7
      {20, 1, 6, handle_delete_topics},  // forwarded at v6
      {21, 0, 2, handle_delete_records},  // forwarded at v2, offsets in the member's numbering
      {22, 0, 4, handle_init_producer_id},  // the federation's own ids
      {32, 1, 4, handle_describe_configs},  // a topic's first member's, plus federation.split.clusters
      {33, 0, 2, handle_alter_configs},  // topics: validated on every member holding one, then applied (v1)
      {37, 0, 3, handle_create_partitions},  // forwarded at v3 to the member holding the last partitions
      {42, 0, 2, handle_delete_groups},  // here and, forwarded at v2, on each member's coordinator (the offsets)
      {44, 0, 1, handle_incremental_alter_configs},  // as AlterConfigs (forwarded at v0)
      {47, 0, 0, handle_offset_delete},  // subscriptions checked here; forwarded to each member's coordinator
      {60, 0, 1, handle_describe_cluster},  // this endpoint as the cluster's one broker
  };
  return apis;
}

}  // namespace sluice::federation
