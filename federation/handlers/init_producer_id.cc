// InitProducerId (key 22): producer ids for idempotent producers, the
// federation's own (federation_store.h): one producer writes through the
// endpoint to partitions of several members, so its id must be unique on all
// of them. Each member keeps the producer's sequence numbers for its
// partitions as it does for any producer. A new id starts at epoch 0; a
// producer that asks with its id and epoch (KIP-360) gets the next epoch, and
// a new id once the epoch is exhausted. Transactions are not served here (they
// would span members): FindCoordinator is not served either, so a
// transactional producer stops before asking this.
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/init_producer_id_request.h"
#include "protocol/messages/init_producer_id_response.h"

namespace sluice::federation {

boost::asio::awaitable<void> handle_init_producer_id(FederationRequest& request) {
  const auto body = request.decode<protocol::InitProducerIdRequest>();
  protocol::InitProducerIdResponse reply;
  if (body.transactional_id) {
    reply.error_code = static_cast<int16_t>(protocol::ErrorCode::kInvalidRequest);
  } else {
    const auto id = co_await request.federation.store().new_producer_id();
    if (id) {
      reply.producer_id = *id;
      reply.producer_epoch = 0;
    } else {
      reply.error_code = static_cast<int16_t>(protocol::ErrorCode::kKafkaStorageError);
    }
  }
  request.respond(reply);
}

}  // namespace sluice::federation
