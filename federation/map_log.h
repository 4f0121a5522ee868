// The shared map's log (`federation.map.cluster`): one topic,
// `__sluice_federation_map`, of one partition on a member cluster, that every
// endpoint serving the map appends its changes to (acks=all) and reads from
// its last applied offset on (long-poll Fetch), applying each record in order
// into its FederationStore (federation_store.h says how a record takes effect
// or not). The topic is made by the first endpoint that finds it missing:
// replicated on up to three of the member's brokers, never trimmed by
// retention (cleanup.policy=delete, retention.ms=-1, retention.bytes=-1).
// Records are in FORMATS.md ("The federation's map log"). Only the Kafka
// protocol is spoken, so the member can be Sluice or Apache Kafka.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "federation/federation_store.h"
#include "federation/member_links.h"

namespace sluice::federation {

class Federation;
class MemberCluster;

class MapLog {
 public:
  static constexpr std::string_view kTopic = "__sluice_federation_map";

  MapLog(Federation& federation, MemberCluster& home);

  // Appends one record: where, or that it was not written, or that it is
  // not known whether it was (FederationStore::commit settles that).
  boost::asio::awaitable<FederationStore::Appended> append(std::string value);
  // Runs for the endpoint's life: makes sure the topic exists, then reads it
  // and applies what it reads.
  boost::asio::awaitable<void> follow();
  // The log has been read to its end once since the start: the map is
  // current, and clients may be let in.
  bool caught_up() const { return caught_up_; }
  const std::string& last_error() const { return last_error_; }

 private:
  boost::asio::awaitable<bool> ensure_topic();
  boost::asio::awaitable<void> pause(std::chrono::milliseconds how_long);
  void failed(const std::string& why);

  Federation& federation_;
  MemberCluster& home_;
  // Appends and the long poll on connections of their own: a broker answers
  // a connection's requests one at a time.
  MemberLinks append_links_, fetch_links_;
  bool caught_up_ = false;
  std::string last_error_;
};

}  // namespace sluice::federation
