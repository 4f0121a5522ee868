#include <algorithm>

#include "broker/handlers/handlers.h"

namespace sluice::broker {
namespace {

// What we advertise. Produce advertises 0 because librdkafka < 2.11 only
// compresses when the range covers v0 (CLIENTS.md); v0-2 are answered with
// UNSUPPORTED_VERSION, as Kafka 4 does.
constexpr ApiHandler kHandlers[] = {
    {0, 0, 9, handle_produce},
    {1, 4, 12, handle_fetch},
    {2, 1, 7, handle_list_offsets},
    {3, 0, 12, handle_metadata},
    {8, 2, 9, handle_offset_commit},
    {9, 1, 9, handle_offset_fetch},
    {10, 0, 4, handle_find_coordinator},
    {11, 0, 9, handle_join_group},
    {12, 0, 4, handle_heartbeat},
    {13, 0, 5, handle_leave_group},
    {14, 0, 5, handle_sync_group},
    {15, 0, 5, handle_describe_groups},
    {16, 0, 5, handle_list_groups},
    {18, 0, 3, handle_api_versions},
    {19, 2, 7, handle_create_topics},
    {20, 1, 6, handle_delete_topics},
    {21, 0, 2, handle_delete_records},
    {22, 0, 4, handle_init_producer_id},
    {23, 2, 4, handle_offset_for_leader_epoch},
    {32, 1, 4, handle_describe_configs},
    {33, 0, 2, handle_alter_configs},
    {35, 1, 4, handle_describe_log_dirs},
    {37, 0, 3, handle_create_partitions},
    {42, 0, 2, handle_delete_groups},
    {43, 0, 2, handle_elect_leaders},
    {44, 0, 1, handle_incremental_alter_configs},
    {45, 0, 1, handle_alter_partition_reassignments},
    {46, 0, 0, handle_list_partition_reassignments},
    {47, 0, 0, handle_offset_delete},
    {55, 0, 2, handle_describe_quorum},
    {60, 0, 1, handle_describe_cluster},
    {64, 0, 0, handle_unregister_broker},
    {76, 1, 1, handle_share_group_heartbeat},
    {77, 1, 1, handle_share_group_describe},
    {78, 1, 2, handle_share_fetch},
    {79, 1, 2, handle_share_acknowledge},
    {83, 0, 0, handle_initialize_share_group_state},
    {84, 0, 0, handle_read_share_group_state},
    {85, 0, 1, handle_write_share_group_state},
    {86, 0, 0, handle_delete_share_group_state},
    {87, 0, 1, handle_read_share_group_state_summary},
    {90, 0, 1, handle_describe_share_group_offsets},
    {91, 0, 0, handle_alter_share_group_offsets},
    {92, 0, 0, handle_delete_share_group_offsets},
};

// A controller listener's: the controller's own APIs (Kafka's controllers
// also take ApiVersions).
constexpr ApiHandler kControllerHandlers[] = {
    {1, 12, 12, handle_controller_fetch},
    {18, 0, 3, handle_api_versions},
    {19, 2, 7, handle_create_topics},
    {20, 1, 6, handle_delete_topics},
    {33, 0, 2, handle_alter_configs},
    {37, 0, 3, handle_create_partitions},
    {43, 0, 2, handle_elect_leaders},
    {44, 0, 1, handle_incremental_alter_configs},
    {45, 0, 1, handle_alter_partition_reassignments},
    {46, 0, 0, handle_list_partition_reassignments},
    {52, 0, 1, handle_vote},
    {53, 0, 1, handle_begin_quorum_epoch},
    {54, 0, 1, handle_end_quorum_epoch},
    {55, 0, 2, handle_describe_quorum},
    {56, 2, 3, handle_alter_partition},
    {59, 0, 1, handle_fetch_snapshot},
    {60, 1, 1, handle_describe_cluster},
    {62, 0, 4, handle_broker_registration},
    {63, 0, 2, handle_broker_heartbeat},
    {64, 0, 0, handle_unregister_broker},
    {67, 0, 0, handle_allocate_producer_ids},
};

constexpr int16_t kInitProducerIdKey = 22;
// ShareGroupHeartbeat .. ShareAcknowledge.
constexpr int16_t kFirstShareGroupKey = 76;
constexpr int16_t kLastShareGroupKey = 79;
// The share coordinator's: InitializeShareGroupState .. ReadShareGroupStateSummary.
constexpr int16_t kFirstShareStateKey = 83;
constexpr int16_t kLastShareStateKey = 87;
// DescribeShareGroupOffsets .. DeleteShareGroupOffsets.
constexpr int16_t kFirstShareGroupOffsetsKey = 90;
constexpr int16_t kLastShareGroupOffsetsKey = 92;

}  // namespace

bool served_by_inactive_controller(int16_t api_key) {
  switch (api_key) {
    case 1:   // Fetch: voters and brokers are told who leads
    case 18:  // ApiVersions
    case 52:  // Vote
    case 53:  // BeginQuorumEpoch
    case 54:  // EndQuorumEpoch
    case 55:  // DescribeQuorum: NOT_LEADER_OR_FOLLOWER
    case 59:  // FetchSnapshot
    case 60:  // DescribeCluster: the cluster id, which every voter knows
      return true;
    default:
      return false;
  }
}

bool api_enabled(const Broker& broker, int16_t api_key) {
  if ((api_key >= kFirstShareGroupKey && api_key <= kLastShareGroupKey) ||
      (api_key >= kFirstShareGroupOffsetsKey && api_key <= kLastShareGroupOffsetsKey))
    return broker.share_groups != nullptr;
  // A cluster's share coordinators; a single node keeps share state itself.
  if (api_key >= kFirstShareStateKey && api_key <= kLastShareStateKey) return broker.share_states != nullptr;
  return api_key != kInitProducerIdKey || broker.idempotence_enabled;
}

std::span<const ApiHandler> api_handlers(ListenerRole role) {
  if (role == ListenerRole::kController) return kControllerHandlers;
  return kHandlers;
}

const ApiHandler* find_api_handler(ListenerRole role, int16_t api_key) {
  const auto handlers = api_handlers(role);
  auto it = std::lower_bound(handlers.begin(), handlers.end(), api_key,
                             [](const ApiHandler& h, int16_t key) { return h.api_key < key; });
  return it != handlers.end() && it->api_key == api_key ? &*it : nullptr;
}

}  // namespace sluice::broker
