#include "broker/remote_end_offsets.h"

#include "broker/cluster_view.h"
#include "broker/log.h"
#include "protocol/messages/list_offsets_request.h"
#include "protocol/messages/list_offsets_response.h"

namespace sluice::broker {
namespace {

constexpr int16_t kListOffsetsVersion = 7;
constexpr int64_t kLatestTimestamp = -1;  // ListOffsets: the end offset (high watermark for a consumer)

}  // namespace

RemoteEndOffsets::RemoteEndOffsets(boost::asio::any_io_executor executor, const BrokerConfig& config,
                                   const controller::MetadataImage& metadata)
    : executor_(std::move(executor)), config_(config), metadata_(metadata) {}

boost::asio::awaitable<void> RemoteEndOffsets::refresh(const std::set<std::pair<std::string, int32_t>>& wanted,
                                                      std::chrono::milliseconds timeout) {
  // One request per leader, as the metadata says now.
  std::map<int32_t, protocol::ListOffsetsRequest> requests;
  for (const auto& [topic, index] : wanted) {
    const controller::TopicInfo* info = metadata_.find_topic(topic);
    if (!info || index >= info->partition_count() || info->partitions[index].leader < 0) continue;
    protocol::ListOffsetsRequest& request = requests[info->partitions[index].leader];
    request.replica_id = -1;  // as a consumer: the high watermark
    if (request.topics.empty() || request.topics.back().name != topic) request.topics.emplace_back().name = topic;
    auto& partition = request.topics.back().partitions.emplace_back();
    partition.partition_index = index;
    partition.timestamp = kLatestTimestamp;
  }
  EndOffsetMap answered;
  for (auto& [leader, request] : requests) {
    std::string host;
    uint16_t port = 0;
    if (!inter_broker_endpoint(config_, metadata_, leader, host, port)) continue;
    Link& link = links_[leader];
    if (!link.connection || link.host != host || link.port != port) {
      link = Link{host, port,
                  std::make_unique<OutboundConnection>(executor_, host, port,
                                                       "sluice-lag-" + std::to_string(config_.node_id()))};
    }
    try {
      auto reply = co_await link.connection->call<protocol::ListOffsetsResponse>(request, kListOffsetsVersion, timeout);
      for (const auto& topic : reply.body.topics)
        for (const auto& p : topic.partitions)
          if (p.error_code == 0 && p.offset >= 0) answered[{topic.name, p.partition_index}] = p.offset;
    } catch (const std::exception& e) {
      SLUICE_LOG(kDebug, "end offsets from broker " << leader << " for consumer lag: " << e.what());
    }
  }
  // Leaders gone from the metadata: their connections go too.
  for (auto it = links_.begin(); it != links_.end();)
    it = metadata_.find_broker(it->first) ? std::next(it) : links_.erase(it);
  known_ = std::move(answered);
}

}  // namespace sluice::broker
