// AllocateProducerIds (key 67), on the controller listener: a broker takes a
// block of producer ids for its idempotent producers, so ids stay unique
// across the brokers of a cluster. The block is in the metadata log before
// it is handed out.
#include "broker/handlers/handlers.h"
#include "broker/producer_ids.h"
#include "protocol/messages/allocate_producer_ids_request.h"
#include "protocol/messages/allocate_producer_ids_response.h"

namespace sluice::broker {

using protocol::AllocateProducerIdsRequest;
using protocol::AllocateProducerIdsResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_allocate_producer_ids(RequestContext& ctx) {
  auto request = ctx.decode<AllocateProducerIdsRequest>();
  controller::Controller& controller = *ctx.broker.controller;
  AllocateProducerIdsResponse reply;
  const controller::BrokerRegistration* broker = controller.image().find_broker(request.broker_id);
  if (!broker || broker->epoch != request.broker_epoch) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kStaleBrokerEpoch);
  } else {
    try {
      reply.producer_id_start = controller.allocate_producer_ids(ProducerIdManager::kBlockSize);
      reply.producer_id_len = ProducerIdManager::kBlockSize;
    } catch (const std::exception&) {  // the metadata log could not be written
      reply.error_code = static_cast<int16_t>(ErrorCode::kUnknownServerError);
    }
  }
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
