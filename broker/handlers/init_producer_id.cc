// InitProducerId (key 22): a producer id and epoch for an idempotent producer.
// Without a transactional id every call gets a new id at epoch 0, including
// the "bump my epoch" form of v3+ (KIP-360) that carries the current id and
// epoch: that is what Kafka does for non-transactional producers, and a new id
// serves the producer as well as a bumped epoch. Transactions are not served
// yet; their coordinator is reported unavailable, as FindCoordinator does.
#include "broker/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/init_producer_id_request.h"
#include "protocol/messages/init_producer_id_response.h"

namespace sluice::broker {

using protocol::ErrorCode;
using protocol::InitProducerIdRequest;
using protocol::InitProducerIdResponse;

boost::asio::awaitable<void> handle_init_producer_id(RequestContext& ctx) {
  auto request = ctx.decode<InitProducerIdRequest>();
  InitProducerIdResponse reply;
  reply.producer_id = -1;
  reply.producer_epoch = -1;
  const bool has_id = request.producer_id != -1, has_epoch = request.producer_epoch != -1;
  if (has_id != has_epoch) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);  // both or neither
  } else if (request.transactional_id && request.transactional_id->empty()) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kInvalidRequest);
  } else if (request.transactional_id) {
    reply.error_code = static_cast<int16_t>(ErrorCode::kCoordinatorNotAvailable);
  } else {
    try {
      reply.producer_id = co_await ctx.broker.producer_ids.next();
      reply.producer_epoch = 0;
    } catch (const std::exception&) {  // no block of ids to be had: the client retries
      reply.error_code = static_cast<int16_t>(ErrorCode::kCoordinatorNotAvailable);
    }
  }
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
