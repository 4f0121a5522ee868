// One request as a handler sees it: the parsed header, the body still to be
// decoded, and the response buffer that already holds the response header.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "broker/broker.h"
#include "broker/listener_role.h"
#include "protocol/wire.h"

namespace sluice::broker {

struct RequestContext {
  Broker& broker;
  int16_t api_key = 0;
  int16_t api_version = 0;
  int32_t correlation_id = 0;
  std::optional<std::string> client_id;
  std::string client_host;  // the peer's address, as group descriptions show it
  // The request body. It points into the connection's frame buffer, which a
  // handler may modify in place (Produce stamps offsets into batches there).
  std::string_view body;
  char* mutable_body = nullptr;
  protocol::Writer& response;
  // Cleared by handlers that must not answer (Produce with acks=0).
  bool send_response = true;
  // Set when Kafka would drop the connection after this request.
  bool close_connection = false;
  // The listener the request came in on.
  ListenerRole listener = ListenerRole::kBroker;
  // Set by the connection for requests it may overlap (Produce): release()
  // lets it read and start the next request while this one waits (for the
  // group commit, for the replicas). After it the handler must not read
  // `body` again: the frame's buffer is reused. Answers still leave in order.
  std::function<void()> on_release = nullptr;
  void release() {
    if (on_release) std::exchange(on_release, nullptr)();
  }

  template <typename Request>
  Request decode() {
    protocol::Reader reader(body);
    Request request;
    request.decode(reader, api_version);
    return request;
  }

  // Encodes the answer, and counts its error codes (sluice_request_errors_total),
  // a run of the same code at once (a thousand partitions' NOT_LEADER_OR_FOLLOWER: one lookup).
  template <typename Response>
  void respond(const Response& message) {
    message.encode(response, api_version);
    int16_t code = 0;
    uint32_t run = 0;
    message.for_each_error_code([&](int16_t next) {
      if (next != code && run > 0) broker.metrics.request_error(api_key, code, run);
      run = next == code ? run + 1 : 1;
      code = next;
    });
    if (run > 0) broker.metrics.request_error(api_key, code, run);
  }

  // Where a view into `body` sits in the mutable frame.
  char* mutable_at(std::string_view inside_body) { return mutable_body + (inside_body.data() - body.data()); }
};

}  // namespace sluice::broker
