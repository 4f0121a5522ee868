// The connections one client connection's requests travel on to member
// brokers: its own, as a proxy keeps one upstream connection per downstream
// one. A Kafka broker answers a connection's requests one at a time, so on a
// shared connection one client's long-poll Fetch would hold up every other
// client's requests to that broker, and a timeout on it would fail them all.
// Made when the client connects; closed (failing what is still in flight)
// when it goes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>

#include "broker/outbound_connection.h"
#include "federation/member_cluster.h"

namespace sluice::federation {

class MemberLinks {
 public:
  explicit MemberLinks(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

  // The connection to `member`'s broker `node`, or nullptr if the member does
  // not list it. One whose broker moved is replaced. Call it right before the
  // call, with no co_await in between.
  // The member brokers a Fetch of this client is still waiting on (a long
  // poll an earlier answer did not wait for): shared with the fetch itself,
  // which may end after the client has gone.
  using BrokerKey = std::pair<std::string, int32_t>;  // member cluster, member broker
  std::shared_ptr<std::set<BrokerKey>> fetching() const { return fetching_; }

  broker::OutboundConnection* connection(const MemberCluster& member, int32_t node) {
    const HostPort* address = member.address_of(node);
    if (address == nullptr) return nullptr;
    Link& link = links_[{member.name(), node}];
    if (!link.connection || link.address.host != address->host || link.address.port != address->port) {
      link.address = *address;
      link.connection = std::make_unique<broker::OutboundConnection>(executor_, address->host, address->port,
                                                                     "sluice-federation", client_link_limits());
    }
    return link.connection.get();
  }

 private:
  // The member clusters are the operator's: an answer's claimed size is
  // allocated at once (a forwarded Fetch asks at most 64 MiB of one broker),
  // rather than doubled up to, which would copy each answer about once more.
  static broker::OutboundLimits client_link_limits() {
    broker::OutboundLimits limits;
    limits.frame_bytes_at_once = static_cast<size_t>(limits.max_response_bytes);
    return limits;
  }
  struct Link {
    HostPort address;
    std::unique_ptr<broker::OutboundConnection> connection;
  };
  boost::asio::any_io_executor executor_;
  std::map<std::pair<std::string, int32_t>, Link> links_;
  std::shared_ptr<std::set<BrokerKey>> fetching_ = std::make_shared<std::set<BrokerKey>>();
};

}  // namespace sluice::federation
