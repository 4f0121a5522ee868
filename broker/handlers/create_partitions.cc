// CreatePartitions (key 37): raise a topic's partition count.
#include <cstdint>
#include <map>
#include <optional>

#include "broker/handlers/forward.h"
#include "broker/handlers/handlers.h"
#include "protocol/messages/create_partitions_request.h"
#include "protocol/messages/create_partitions_response.h"

namespace sluice::broker {

using protocol::CreatePartitionsRequest;
using protocol::CreatePartitionsResponse;
using protocol::ErrorCode;

boost::asio::awaitable<void> handle_create_partitions(RequestContext& ctx) {
  auto request = ctx.decode<CreatePartitionsRequest>();
  if (!ctx.broker.controller) {
    co_await forward_to_controller<CreatePartitionsResponse>(
        ctx, request, [&](CreatePartitionsResponse& reply, ErrorCode code) {
          for (const auto& t : request.topics) reply.results.push_back({t.name, static_cast<int16_t>(code)});
        });
    co_return;
  }
  Broker& broker = ctx.broker;
  std::map<std::string, int> mentions;
  for (const auto& t : request.topics) ++mentions[t.name];

  // One metadata record per new partition, at most kMaxRecordsPerRequest. A
  // topic that would go past that gets UNKNOWN_SERVER_ERROR with no message,
  // as from Kafka, and the partitions it did not get still count against the
  // topics after it (taken here in request order; Kafka takes them in an
  // order of its own).
  int64_t new_partitions = 0;

  CreatePartitionsResponse reply;
  for (const auto& t : request.topics) {
    auto& result = reply.results.emplace_back();
    result.name = t.name;
    auto fail = [&](ErrorCode code, std::string message) {
      result.error_code = static_cast<int16_t>(code);
      result.error_message = std::move(message);
    };
    // The controller's image: an earlier CreatePartitions may not be durable yet.
    const controller::TopicInfo* topic = broker.controller->image().find_topic(t.name);
    if (mentions[t.name] > 1) {
      fail(ErrorCode::kInvalidRequest, "Duplicate topic in request.");
      continue;
    }
    if (topic && t.assignments) {
      const auto live = broker.controller->image().unfenced_brokers();
      if (static_cast<int32_t>(t.assignments->size()) != t.count - topic->partition_count()) {
        fail(ErrorCode::kInvalidReplicaAssignment, "Increasing the number of partitions by " +
                                                       std::to_string(t.count - topic->partition_count()) + " but " +
                                                       std::to_string(t.assignments->size()) +
                                                       " assignments provided.");
        continue;
      }
      bool bad = false;
      for (const auto& a : *t.assignments)
        for (int32_t id : a.broker_ids)
          bad |= std::find(live.begin(), live.end(), id) == live.end();
      if (bad) {
        fail(ErrorCode::kInvalidReplicaAssignment, "The manual partition assignment includes a broker that is not registered.");
        continue;
      }
    }
    if (topic && t.count > topic->partition_count()) {
      const int64_t adding = static_cast<int64_t>(t.count) - topic->partition_count();
      if (new_partitions + adding > controller::kMaxRecordsPerRequest) {
        new_partitions = controller::kMaxRecordsPerRequest;
        result.error_code = static_cast<int16_t>(ErrorCode::kUnknownServerError);
        result.error_message = std::nullopt;
        continue;
      }
      new_partitions += adding;
    }
    auto outcome = broker.controller->create_partitions(t.name, t.count, request.validate_only);
    if (!outcome.ok()) fail(outcome.error, outcome.message);
  }
  co_await metadata_changes_durable(ctx.broker);  // the answer reports it
  ctx.respond(reply);
  co_return;
}

}  // namespace sluice::broker
