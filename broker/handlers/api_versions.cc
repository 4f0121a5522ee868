// ApiVersions (key 18): which versions of which APIs this broker serves.
#include "broker/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/api_versions_request.h"
#include "protocol/messages/api_versions_response.h"

namespace sluice::broker {
namespace {

using protocol::ApiVersionsRequest;
using protocol::ApiVersionsResponse;
using protocol::ErrorCode;

// Kafka's rule for ClientSoftwareName/Version (KIP-511):
// [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?
bool valid_software_field(std::string_view s) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (s.empty() || !alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-' && c != '.') return false;
  return true;
}

}  // namespace

void write_api_versions_fallback(protocol::Writer& response) {
  ApiVersionsResponse reply;
  reply.error_code = static_cast<int16_t>(ErrorCode::kUnsupportedVersion);
  const ApiHandler* self = find_api_handler(ListenerRole::kBroker, ApiVersionsRequest::kApiKey);
  reply.api_keys.push_back({ApiVersionsRequest::kApiKey, self->min_version, self->max_version});
  reply.encode(response, 0);
}

boost::asio::awaitable<void> handle_api_versions(RequestContext& ctx) {
  auto request = ctx.decode<ApiVersionsRequest>();
  ApiVersionsResponse reply;
  if (ctx.api_version >= 3 &&
      (!valid_software_field(request.client_software_name) || !valid_software_field(request.client_software_version))) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
  } else {
    for (const ApiHandler& h : api_handlers(ctx.listener))
      if (api_enabled(ctx.broker, h.api_key)) reply.api_keys.push_back({h.api_key, h.min_version, h.max_version});
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
