// CreateTopics (key 19): the federation places each new topic.
//   - By default on the least-loaded healthy member cluster (fewest
//     partitions, internal topics aside; ties go to the first in
//     federation.clusters).
//   - With the topic config `federation.split.clusters=N`, split over the N
//     least-loaded healthy members: num.partitions (required) is dealt out as
//     evenly as it goes, the first members taking one more.
// The topic is created on each member with the rest of its configs, then the
// placement is written to the map; only then is it answered. All or nothing:
// if any member refuses, or the map cannot be written, the parts already
// created are deleted again and the client gets the first member's error. The
// creation is recorded in the map before any member is asked, so a kill -9 in
// between is undone at the next start (FederationStore::begin_creation).
#include <algorithm>
#include <charconv>
#include <list>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "broker/log.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "protocol/error_codes.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"
#include "protocol/messages/delete_topics_request.h"
#include "protocol/messages/delete_topics_response.h"

namespace sluice::federation {
namespace {

using protocol::CreateTopicsRequest;
using protocol::CreateTopicsResponse;
using protocol::DeleteTopicsRequest;
using protocol::DeleteTopicsResponse;
using protocol::ErrorCode;
using Creation = Forwarded<CreateTopicsRequest, CreateTopicsResponse>;
using Deletion = Forwarded<DeleteTopicsRequest, DeleteTopicsResponse>;
using Result = CreateTopicsResponse::CreatableTopicResult;
constexpr int16_t kCreateVersion = 7;
constexpr int16_t kDeleteVersion = 6;
constexpr std::string_view kSplitConfig = "federation.split.clusters";

Result refused(const std::string& name, ErrorCode error, std::string message) {
  Result r;
  r.name = name;
  r.error_code = static_cast<int16_t>(error);
  r.error_message = std::move(message);
  return r;
}

// The N least-loaded healthy members, in that order. A member's load is the
// partitions the map places on it (which includes the topics adopted from it)
// or, if more, those it reported: the map counts a creation at once, before
// the member's next metadata answer does.
std::vector<MemberCluster*> least_loaded(Federation& federation, size_t n) {
  std::vector<std::pair<int64_t, MemberCluster*>> healthy;
  for (const auto& m : federation.members()) {
    if (!m->healthy()) continue;
    int64_t placed = 0;
    for (const auto& [name, placement] : federation.store().topics())
      for (const auto& segment : placement.segments)
        if (segment.cluster == m->name()) placed += segment.partitions;
    healthy.emplace_back(std::max(placed, m->partition_count()), m.get());
  }
  std::stable_sort(healthy.begin(), healthy.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<MemberCluster*> chosen;
  for (size_t i = 0; i < healthy.size() && i < n; ++i) chosen.push_back(healthy[i].second);
  return chosen;
}

}  // namespace

boost::asio::awaitable<bool> undo_creation(Federation& federation, MemberLinks& links, std::string topic,
                                           std::vector<MemberCluster*> members) {
  std::list<Deletion> deletions;
  WaitGroup group(federation.executor());
  bool all = true;
  for (MemberCluster* member : members) {
    const int32_t node = member->any_node();
    if (node < 0) {
      all = false;  // unhealthy: tried again later
      continue;
    }
    Deletion& d = deletions.emplace_back();
    d.member = member;
    d.node = node;
    d.request.topic_names.push_back(topic);
    d.request.topics.emplace_back().name = topic;
    d.request.timeout_ms = 30000;
    group.add();
    boost::asio::co_spawn(federation.executor(),
                          forward(d, kDeleteVersion, std::chrono::milliseconds(federation.config().request_timeout_ms), group, links),
                          boost::asio::detached);
  }
  co_await group.wait();
  for (const Deletion& d : deletions) {
    const int16_t error = d.reply && !d.reply->body.responses.empty() ? d.reply->body.responses[0].error_code : -1;
    if (error == 0 || error == static_cast<int16_t>(ErrorCode::kUnknownTopicOrPartition)) continue;  // gone, or never made
    all = false;
    SLUICE_LOG(kWarn, "could not delete the part of " << topic << " created on member cluster " << d.member->name()
                                                      << " (tried again later): "
                                                      << (error > 0 ? protocol::error_name(static_cast<ErrorCode>(error))
                                                                    : d.failure));
  }
  co_return all;
}

boost::asio::awaitable<Result> create_federated_topic(Federation& federation, MemberLinks& links,
                                                      const CreateTopicsRequest::CreatableTopic& topic,
                                                      bool validate_only, int32_t timeout_ms) {
  if (!topic.assignments.empty())
    co_return refused(topic.name, ErrorCode::kInvalidRequest,
                      "Replica assignments name member brokers: the federation places topics itself.");
  int32_t split = 1;
  std::vector<CreateTopicsRequest::CreatableTopic::CreatableTopicConfig> configs;
  for (const auto& c : topic.configs) {
    if (c.name != kSplitConfig) {
      configs.push_back(c);
      continue;
    }
    const std::string value = c.value.value_or("");
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), split);
    if (ec != std::errc() || ptr != value.data() + value.size() || split < 1)
      co_return refused(topic.name, ErrorCode::kInvalidConfig,
                        "Invalid value " + value + " for configuration " + std::string(kSplitConfig) +
                            ": a number of member clusters, at least 1");
  }
  if (split > 1 && topic.num_partitions < split)
    co_return refused(topic.name, ErrorCode::kInvalidPartitions,
                      "A topic split over " + std::to_string(split) + " member clusters needs at least " +
                          std::to_string(split) + " partitions, given explicitly.");
  const auto members = least_loaded(federation, static_cast<size_t>(split));
  if (members.size() < static_cast<size_t>(split))
    co_return refused(topic.name, ErrorCode::kInvalidReplicationFactor,
                      "Only " + std::to_string(members.size()) + " member cluster(s) are healthy; the topic needs " +
                          std::to_string(split) + ".");
  // Already federated, being placed, or on a member and not adopted yet (created there directly).
  bool on_a_member = false;
  for (const auto& m : federation.members()) on_a_member |= m->topic(topic.name) != nullptr;
  bool reserved = false;  // no co_await inside || (GCC 12)
  if (validate_only && federation.store().shared())  // a validation takes no hold in the shared log
    reserved = !on_a_member && !federation.store().find(topic.name) && !federation.store().reserved(topic.name);
  else if (!on_a_member)
    reserved = co_await federation.store().reserve(topic.name);
  if (!reserved && !on_a_member && !federation.store().find(topic.name) && !federation.store().reserved(topic.name))
    co_return refused(topic.name, ErrorCode::kKafkaStorageError, "The federation's topic map could not be written.");
  if (!reserved)
    co_return refused(topic.name, ErrorCode::kTopicAlreadyExists, "Topic '" + topic.name + "' already exists.");
  std::vector<std::string> member_names;
  for (MemberCluster* m : members) member_names.push_back(m->name());
  if (!validate_only) {
    // Recorded before any member creates its part: a stop before the map has
    // the placement leaves the record, and the next start undoes the parts.
    const bool recorded = co_await federation.store().begin_creation(topic.name, member_names);
    if (!recorded) {
      federation.store().release(topic.name);
      co_return refused(topic.name, ErrorCode::kKafkaStorageError, "The federation's topic map could not be written.");
    }
  }

  std::list<Creation> creations;
  WaitGroup group(federation.executor());
  for (size_t i = 0; i < members.size(); ++i) {
    Creation& c = creations.emplace_back();
    c.member = members[i];
    c.node = members[i]->any_node();
    auto& forwarded = c.request.topics.emplace_back();
    forwarded.name = topic.name;
    forwarded.num_partitions =
        split == 1 ? topic.num_partitions
                   : topic.num_partitions / split + (static_cast<int32_t>(i) < topic.num_partitions % split ? 1 : 0);
    forwarded.replication_factor = topic.replication_factor;
    forwarded.configs = configs;
    c.request.timeout_ms = timeout_ms;
    c.request.validate_only = validate_only;
    group.add();
    boost::asio::co_spawn(federation.executor(),
                          forward(c, kCreateVersion,
                                  std::chrono::milliseconds(std::max(timeout_ms, 0) + federation.config().request_timeout_ms),
                                  group, links),
                          boost::asio::detached);
  }
  co_await group.wait();

  // To undo on failure: every member that did not refuse (one that did not answer may have created it).
  std::vector<MemberCluster*> created;
  std::optional<Result> failure;
  TopicPlacement placement{new_topic_id(), {}};
  Result answer;
  for (const Creation& c : creations) {
    const Result* r = c.reply && !c.reply->body.topics.empty() ? &c.reply->body.topics[0] : nullptr;
    if (!r || r->error_code == 0) created.push_back(c.member);
    if (r && r->error_code == 0) {
      // A member may not say how many (-1: KIP-525, no right to describe configs): what was asked for, then.
      const int32_t partitions = r->num_partitions > 0 ? r->num_partitions : c.request.topics[0].num_partitions;
      if (partitions <= 0 && !failure)
        failure = refused(topic.name, ErrorCode::kInvalidPartitions,
                          "Member cluster " + c.member->name() + " did not say how many partitions it created.");
      placement.segments.push_back({c.member->name(), partitions});
      if (placement.segments.size() == 1) answer = *r;
    } else if (!failure) {
      failure = r ? *r : refused(topic.name, ErrorCode::kRequestTimedOut,
                                 "Member cluster " + c.member->name() + " did not answer: " + c.failure);
    }
  }
  if (!failure && !validate_only) {
    const bool written = co_await federation.store().put(topic.name, placement);
    if (!written)
      failure = refused(topic.name, ErrorCode::kKafkaStorageError, "The federation's topic map could not be written.");
  }
  bool held = false;  // the name stays reserved: a failed creation not wholly undone yet
  if (failure && !validate_only) {
    // Only the parts that may exist are undone, after a stop too: a member that
    // refused (the name taken there meanwhile) keeps what it has.
    std::vector<std::string> maybe_made;
    for (MemberCluster* m : created) maybe_made.push_back(m->name());
    if (maybe_made.size() < member_names.size()) co_await federation.store().begin_creation(topic.name, maybe_made);
    bool undone = true;  // no co_await inside || or && (GCC 12)
    if (!created.empty()) {
      undone = co_await undo_creation(federation, links, topic.name, created);
      federation.note_deleted(topic.name);  // members may list the undone parts a while yet
    }
    bool forgotten = false;
    if (undone) forgotten = co_await federation.store().end_creation(topic.name);
    if (!forgotten) {
      federation.store().leave_unfinished(topic.name, maybe_made);  // Federation::finish_unfinished_creations
      held = true;
    }
  }
  if (!held) federation.store().release(topic.name);
  if (failure) {
    failure->name = topic.name;
    co_return *failure;
  }
  for (MemberCluster* member : created) member->request_refresh();  // its leaders, for the client's next Metadata
  answer.name = topic.name;
  answer.topic_id = validate_only ? protocol::Uuid{} : placement.topic_id;
  answer.num_partitions = placement.partition_count();
  SLUICE_LOG(kInfo, (validate_only ? "validated topic " : "created topic ")
                        << topic.name << " on " << placement.segments.size() << " member cluster(s)");
  co_return answer;
}

boost::asio::awaitable<void> handle_create_topics(FederationRequest& request) {
  const auto body = request.decode<CreateTopicsRequest>();
  CreateTopicsResponse reply;
  for (size_t i = 0; i < body.topics.size(); ++i) {
    const auto& topic = body.topics[i];
    const auto same_name = [&](const auto& other) { return other.name == topic.name; };
    if (std::count_if(body.topics.begin(), body.topics.end(), same_name) > 1) {
      reply.topics.push_back(refused(topic.name, ErrorCode::kInvalidRequest, "Duplicate topic name."));
      continue;
    }
    Result result =
        co_await create_federated_topic(request.federation, request.links, topic, body.validate_only, body.timeout_ms);
    reply.topics.push_back(std::move(result));
  }
  request.respond(reply);
}

}  // namespace sluice::federation
