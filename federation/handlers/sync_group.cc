// SyncGroup (key 14): the federation endpoint coordinates every group's membership itself
// (Federation::groups), with the broker's code (broker/handlers/classic_group.h).
#include "broker/handlers/classic_group.h"
#include "federation/handlers/handlers.h"

namespace sluice::federation {

boost::asio::awaitable<void> handle_sync_group(FederationRequest& request) {
  co_await broker::classic_group::serve_sync_group(request, request.federation.groups(), request.federation.executor());
}

}  // namespace sluice::federation
