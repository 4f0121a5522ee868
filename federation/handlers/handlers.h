// The federation endpoint's request handlers, one file per API.
#pragma once

#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "federation/federation.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"

namespace sluice::federation {

// The cluster id clients see (Metadata, DescribeCluster): the federation's, not a member's.
inline constexpr std::string_view kFederationClusterId = "sluice-federation";

boost::asio::awaitable<void> handle_produce(FederationRequest& request);
boost::asio::awaitable<void> handle_fetch(FederationRequest& request);
boost::asio::awaitable<void> handle_list_offsets(FederationRequest& request);
boost::asio::awaitable<void> handle_metadata(FederationRequest& request);
boost::asio::awaitable<void> handle_api_versions(FederationRequest& request);
boost::asio::awaitable<void> handle_create_topics(FederationRequest& request);
boost::asio::awaitable<void> handle_init_producer_id(FederationRequest& request);
boost::asio::awaitable<void> handle_delete_topics(FederationRequest& request);
boost::asio::awaitable<void> handle_delete_records(FederationRequest& request);
boost::asio::awaitable<void> handle_create_partitions(FederationRequest& request);
boost::asio::awaitable<void> handle_find_coordinator(FederationRequest& request);
boost::asio::awaitable<void> handle_join_group(FederationRequest& request);
boost::asio::awaitable<void> handle_sync_group(FederationRequest& request);
boost::asio::awaitable<void> handle_heartbeat(FederationRequest& request);
boost::asio::awaitable<void> handle_leave_group(FederationRequest& request);
boost::asio::awaitable<void> handle_offset_commit(FederationRequest& request);
boost::asio::awaitable<void> handle_offset_fetch(FederationRequest& request);
boost::asio::awaitable<void> handle_offset_delete(FederationRequest& request);
boost::asio::awaitable<void> handle_describe_configs(FederationRequest& request);
boost::asio::awaitable<void> handle_alter_configs(FederationRequest& request);
boost::asio::awaitable<void> handle_incremental_alter_configs(FederationRequest& request);
boost::asio::awaitable<void> handle_list_groups(FederationRequest& request);
boost::asio::awaitable<void> handle_describe_groups(FederationRequest& request);
boost::asio::awaitable<void> handle_delete_groups(FederationRequest& request);

// Deletes a creation's parts from `members` again (it could not complete).
// True once every one is gone (or never made); an unhealthy member, or one
// that refuses, makes it false (asked again later).
boost::asio::awaitable<bool> undo_creation(Federation& federation, MemberLinks& links, std::string topic,
                                           std::vector<MemberCluster*> members);
boost::asio::awaitable<void> handle_describe_cluster(FederationRequest& request);

// Places and creates one topic as CreateTopics does (create_topics.cc):
// Metadata's auto-creation makes its topics with it too.
boost::asio::awaitable<protocol::CreateTopicsResponse::CreatableTopicResult> create_federated_topic(
    Federation& federation, MemberLinks& links, const protocol::CreateTopicsRequest::CreatableTopic& topic,
    bool validate_only, int32_t timeout_ms);

}  // namespace sluice::federation
