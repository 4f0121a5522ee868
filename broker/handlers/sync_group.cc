// SyncGroup (key 14): handlers/classic_group.h answers it from this broker's groups.
#include "broker/handlers/classic_group.h"
#include "broker/handlers/handlers.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_sync_group(RequestContext& ctx) {
  co_await classic_group::serve_sync_group(ctx, ctx.broker.groups, ctx.broker.executor);
}

}  // namespace sluice::broker
