// ApiVersions (key 18): the APIs the federation endpoint serves.
#include "federation/handlers/handlers.h"
#include "protocol/messages/api_versions_request.h"
#include "protocol/messages/api_versions_response.h"

namespace sluice::federation {

boost::asio::awaitable<void> handle_api_versions(FederationRequest& request) {
  (void)request.decode<protocol::ApiVersionsRequest>();  // only its framing matters
  protocol::ApiVersionsResponse reply;
  for (const FederationApi& api : federation_apis())
    reply.api_keys.push_back({api.api_key, api.min_version, api.max_version});
  request.respond(reply);
  co_return;
}

}  // namespace sluice::federation
