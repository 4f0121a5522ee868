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
      {18, 0, 3, handle_api_versions},
      {19, 2, 7, handle_create_topics},  // forwarded at v7
      {20, 1, 6, handle_delete_topics},  // forwarded at v6
      {22, 0, 4, handle_init_producer_id},  // the federation's own ids
  };
  return apis;
}

}  // namespace sluice::federation
