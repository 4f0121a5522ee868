// DeleteGroups (key 42): remove groups nobody is in, with their offsets.
#include "broker/group_coordinator.h"
#include "broker/handlers/handlers.h"
#include "broker/share_group_coordinator.h"
#include "broker/share_partition_manager.h"
#include "broker/offsets_topic.h"
#include "protocol/messages/delete_groups_request.h"
#include "protocol/messages/delete_groups_response.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_delete_groups(RequestContext& ctx) {
  auto request = ctx.decode<protocol::DeleteGroupsRequest>();
  protocol::DeleteGroupsResponse reply;
  for (const auto& id : request.groups_names) {
    // A share group (members known here, or state kept since before a restart):
    // gone with its share-partitions' state, once that removal is durable.
    bool share_group = false;
    if (ctx.broker.share_groups && ctx.broker.groups.ownership(id) == protocol::ErrorCode::kNone) {
      share_group = ctx.broker.share_groups->exists(id);
      if (!share_group) share_group = co_await ctx.broker.share_partitions->has_state(id);  // not inside || (GCC 12)
    }
    if (share_group) {
      protocol::ErrorCode error = ctx.broker.share_groups->delete_group(id);
      if (error == protocol::ErrorCode::kGroupIdNotFound) error = protocol::ErrorCode::kNone;  // state only
      if (error == protocol::ErrorCode::kNone && ctx.broker.share_persister) {
        // A cluster: its state on every partition goes, with the share coordinators (none there is success).
        const auto everywhere = ctx.broker.share_partitions->all_partitions();
        error = co_await ctx.broker.share_partitions->delete_state_remotely(id, everywhere);
      } else if (error == protocol::ErrorCode::kNone) {
        const uint64_t since = ctx.broker.share_partitions->write_position();
        ctx.broker.share_partitions->delete_group_state(id);
        if (!co_await ctx.broker.share_partitions->wait_durable(since))
          error = protocol::ErrorCode::kKafkaStorageError;
      }
      reply.results.push_back({id, static_cast<int16_t>(error)});
      continue;
    }
    OffsetWrite write;
    protocol::ErrorCode error = ctx.broker.groups.delete_group(id, &write);
    // In a cluster the removal is acknowledged once the replicas have it.
    if (error == protocol::ErrorCode::kNone) error = co_await await_offset_write(ctx.broker, write);
    reply.results.push_back({id, static_cast<int16_t>(error)});
  }
  ctx.respond(reply);
}

}  // namespace sluice::broker
