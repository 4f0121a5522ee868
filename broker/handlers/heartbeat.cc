// Heartbeat (key 12): handlers/classic_group.h answers it from this broker's groups.
#include "broker/handlers/classic_group.h"
#include "broker/handlers/handlers.h"

namespace sluice::broker {

boost::asio::awaitable<void> handle_heartbeat(RequestContext& ctx) {
  co_await classic_group::serve_heartbeat(ctx, ctx.broker.groups);
}

}  // namespace sluice::broker
