// The end offsets (high watermarks) of partitions this node holds no replica
// of, asked of their leaders with ListOffsets: the consumer lag of the groups
// this node coordinates is computed here, with no separate lag exporter.
//
// Network thread only. One connection per leader, kept between rounds.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/config.h"
#include "broker/outbound_connection.h"
#include "broker/status_snapshot.h"
#include "controller/metadata_image.h"

namespace sluice::broker {

class RemoteEndOffsets {
 public:
  RemoteEndOffsets(boost::asio::any_io_executor executor, const BrokerConfig& config,
                   const controller::MetadataImage& metadata);

  // Asks each partition's leader (one request per leader, each bounded by
  // `timeout`) for the end offsets of `wanted`; what is known becomes what
  // they answered. A partition whose leader is unknown or does not answer is
  // left out: its lag is unknown, not stale.
  boost::asio::awaitable<void> refresh(const std::set<std::pair<std::string, int32_t>>& wanted,
                                       std::chrono::milliseconds timeout);
  const EndOffsetMap& known() const { return known_; }

 private:
  boost::asio::any_io_executor executor_;
  const BrokerConfig& config_;
  const controller::MetadataImage& metadata_;
  struct Link {
    std::string host;
    uint16_t port = 0;
    std::unique_ptr<OutboundConnection> connection;
  };
  std::map<int32_t, Link> links_;  // by leader id
  EndOffsetMap known_;
};

}  // namespace sluice::broker
