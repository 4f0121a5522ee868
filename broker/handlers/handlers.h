// One handler per Kafka API, each in its own file in this folder, and the table
// that says which versions of each this broker serves (what ApiVersions
// advertises). A handler decodes ctx.body, does the work and writes the
// response body with ctx.respond().
#pragma once

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <span>

#include "broker/request_context.h"

namespace sluice::broker {

using HandlerFn = boost::asio::awaitable<void> (*)(RequestContext& ctx);

struct ApiHandler {
  int16_t api_key;
  int16_t min_version;
  int16_t max_version;
  HandlerFn handle;
};

// Sorted by api key: everything this build serves on a listener of `role`.
std::span<const ApiHandler> api_handlers(ListenerRole role);
const ApiHandler* find_api_handler(ListenerRole role, int16_t api_key);
// Whether a voter of a controller quorum that is not its leader answers this
// API itself; for the others it closes the connection, and the broker that
// sent it tries the next voter (its link follows the leader).
bool served_by_inactive_controller(int16_t api_key);
// Whether this broker's configuration switches the API on (InitProducerId
// is off with sluice.idempotence.enable=false): ApiVersions advertises, and
// connections accept, only enabled APIs.
bool api_enabled(const Broker& broker, int16_t api_key);

boost::asio::awaitable<void> handle_produce(RequestContext& ctx);
boost::asio::awaitable<void> handle_fetch(RequestContext& ctx);
boost::asio::awaitable<void> handle_list_offsets(RequestContext& ctx);
boost::asio::awaitable<void> handle_metadata(RequestContext& ctx);
boost::asio::awaitable<void> handle_offset_commit(RequestContext& ctx);
boost::asio::awaitable<void> handle_offset_fetch(RequestContext& ctx);
boost::asio::awaitable<void> handle_find_coordinator(RequestContext& ctx);
boost::asio::awaitable<void> handle_join_group(RequestContext& ctx);
boost::asio::awaitable<void> handle_heartbeat(RequestContext& ctx);
boost::asio::awaitable<void> handle_leave_group(RequestContext& ctx);
boost::asio::awaitable<void> handle_sync_group(RequestContext& ctx);
boost::asio::awaitable<void> handle_describe_groups(RequestContext& ctx);
boost::asio::awaitable<void> handle_list_groups(RequestContext& ctx);
boost::asio::awaitable<void> handle_delete_groups(RequestContext& ctx);
boost::asio::awaitable<void> handle_offset_delete(RequestContext& ctx);
boost::asio::awaitable<void> handle_api_versions(RequestContext& ctx);
boost::asio::awaitable<void> handle_create_topics(RequestContext& ctx);
boost::asio::awaitable<void> handle_delete_topics(RequestContext& ctx);
boost::asio::awaitable<void> handle_describe_configs(RequestContext& ctx);
boost::asio::awaitable<void> handle_create_partitions(RequestContext& ctx);
boost::asio::awaitable<void> handle_elect_leaders(RequestContext& ctx);
boost::asio::awaitable<void> handle_alter_partition_reassignments(RequestContext& ctx);
boost::asio::awaitable<void> handle_list_partition_reassignments(RequestContext& ctx);
boost::asio::awaitable<void> handle_unregister_broker(RequestContext& ctx);
boost::asio::awaitable<void> handle_describe_log_dirs(RequestContext& ctx);
boost::asio::awaitable<void> handle_describe_quorum(RequestContext& ctx);
boost::asio::awaitable<void> handle_vote(RequestContext& ctx);
boost::asio::awaitable<void> handle_begin_quorum_epoch(RequestContext& ctx);
boost::asio::awaitable<void> handle_end_quorum_epoch(RequestContext& ctx);
boost::asio::awaitable<void> handle_describe_cluster(RequestContext& ctx);
// The controller listener's.
boost::asio::awaitable<void> handle_broker_registration(RequestContext& ctx);
boost::asio::awaitable<void> handle_broker_heartbeat(RequestContext& ctx);
boost::asio::awaitable<void> handle_alter_partition(RequestContext& ctx);
boost::asio::awaitable<void> handle_controller_fetch(RequestContext& ctx);
boost::asio::awaitable<void> handle_fetch_snapshot(RequestContext& ctx);
boost::asio::awaitable<void> handle_allocate_producer_ids(RequestContext& ctx);
boost::asio::awaitable<void> handle_init_producer_id(RequestContext& ctx);
boost::asio::awaitable<void> handle_offset_for_leader_epoch(RequestContext& ctx);
boost::asio::awaitable<void> handle_delete_records(RequestContext& ctx);
boost::asio::awaitable<void> handle_alter_configs(RequestContext& ctx);
boost::asio::awaitable<void> handle_incremental_alter_configs(RequestContext& ctx);
// Share groups (KIP-932), served when group.share.enable is set.
boost::asio::awaitable<void> handle_share_group_heartbeat(RequestContext& ctx);
boost::asio::awaitable<void> handle_share_group_describe(RequestContext& ctx);
boost::asio::awaitable<void> handle_share_fetch(RequestContext& ctx);
boost::asio::awaitable<void> handle_share_acknowledge(RequestContext& ctx);
boost::asio::awaitable<void> handle_describe_share_group_offsets(RequestContext& ctx);
boost::asio::awaitable<void> handle_alter_share_group_offsets(RequestContext& ctx);
boost::asio::awaitable<void> handle_delete_share_group_offsets(RequestContext& ctx);
// The share coordinator's RPCs, between brokers of a cluster (share_state_coordinator.h).
boost::asio::awaitable<void> handle_initialize_share_group_state(RequestContext& ctx);
boost::asio::awaitable<void> handle_read_share_group_state(RequestContext& ctx);
boost::asio::awaitable<void> handle_write_share_group_state(RequestContext& ctx);
boost::asio::awaitable<void> handle_delete_share_group_state(RequestContext& ctx);
boost::asio::awaitable<void> handle_read_share_group_state_summary(RequestContext& ctx);

// Writes the ApiVersions v0 reply Kafka sends when it cannot parse the
// requested ApiVersions version (KIP-511): UNSUPPORTED_VERSION plus its range.
void write_api_versions_fallback(protocol::Writer& response);

}  // namespace sluice::broker
