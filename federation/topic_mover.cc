#include "federation/topic_mover.h"

#include <algorithm>
#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/log.h"
#include "federation/federation.h"
#include "federation/handlers/coordinator_moved.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
#include "federation/handlers/routing.h"
#include "federation/member_links.h"
#include "protocol/error_codes.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"
#include "protocol/messages/describe_configs_request.h"
#include "protocol/messages/delete_records_request.h"
#include "protocol/messages/delete_records_response.h"
#include "protocol/messages/describe_configs_response.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"
#include "protocol/messages/list_groups_request.h"
#include "protocol/messages/list_groups_response.h"
#include "protocol/messages/list_offsets_request.h"
#include "protocol/messages/list_offsets_response.h"
#include "protocol/messages/offset_commit_request.h"
#include "protocol/messages/offset_commit_response.h"
#include "protocol/messages/offset_fetch_request.h"
#include "protocol/messages/offset_fetch_response.h"
#include "protocol/messages/produce_request.h"
#include "protocol/messages/produce_response.h"
#include "protocol/record_batch.h"

namespace sluice::federation {
namespace {

namespace asio = boost::asio;
using protocol::ErrorCode;
using Creation = Forwarded<protocol::CreateTopicsRequest, protocol::CreateTopicsResponse>;
using ConfigQuery = Forwarded<protocol::DescribeConfigsRequest, protocol::DescribeConfigsResponse>;
using Copy = Forwarded<protocol::FetchRequest, protocol::FetchResponse>;
using Paste = Forwarded<protocol::ProduceRequest, protocol::ProduceResponse>;
using OffsetQuery = Forwarded<protocol::ListOffsetsRequest, protocol::ListOffsetsResponse>;
using GroupQuery = Forwarded<protocol::ListGroupsRequest, protocol::ListGroupsResponse>;
using CommittedQuery = Forwarded<protocol::OffsetFetchRequest, protocol::OffsetFetchResponse>;
using Commit = Forwarded<protocol::OffsetCommitRequest, protocol::OffsetCommitResponse>;
using Trim = Forwarded<protocol::DeleteRecordsRequest, protocol::DeleteRecordsResponse>;

constexpr int16_t kCreateVersion = 7;
constexpr int16_t kDescribeConfigsVersion = 4;
constexpr int16_t kFetchVersion = 12;
constexpr int16_t kProduceVersion = 9;
constexpr int16_t kListOffsetsVersion = 7;
constexpr int16_t kListGroupsVersion = 4;
constexpr int16_t kOffsetFetchVersion = 7;
constexpr int16_t kOffsetCommitVersion = 8;
constexpr int16_t kDeleteRecordsVersion = 2;
constexpr int8_t kTopicResource = 2;
constexpr int8_t kDynamicTopicConfig = 1;  // DescribeConfigs' config_source: set on the topic
constexpr int32_t kCopyBytes = 1 << 20;    // asked of the old member per partition and round

// Copying while clients write goes on until a round copies at most this many
// batches per partition; then the switch, which holds producers back while it
// copies the rest.
constexpr int64_t kCaughtUpBatches = 2;
constexpr auto kCatchUpLimit = std::chrono::minutes(10);
constexpr auto kSwitchLimit = std::chrono::seconds(30);
// Every endpoint holds its writes back within this, or the move ends.
constexpr auto kFreezeLimit = std::chrono::seconds(10);
// The old member's topic is deleted this long after the switch: Fetch
// requests routed there before it finish first.
constexpr auto kDeleteDelay = std::chrono::seconds(2);

std::string error_text(int16_t code) { return protocol::error_name(static_cast<ErrorCode>(code)); }

// One partition being moved: where it is now, and where its copy goes (the
// new member's partition i is leg i).
struct Leg {
  int32_t federated = -1;
  std::string from;            // its member now
  int32_t from_partition = -1;  // its partition there
};

class TopicMover {
 public:
  TopicMover(Federation& federation, std::string topic, std::vector<Leg> legs, std::string to)
      : federation_(federation),
        topic_(std::move(topic)),
        legs_(std::move(legs)),
        to_name_(std::move(to)),
        partitions_(static_cast<int32_t>(legs_.size())),
        links_(federation.executor()) {
    for (size_t i = 0; i < legs_.size(); ++i) {
      leg_of_[{legs_[i].from, legs_[i].from_partition}] = i;
      if (std::find(sources_.begin(), sources_.end(), legs_[i].from) == sources_.end()) sources_.push_back(legs_[i].from);
    }
  }

  asio::awaitable<void> run();

 private:
  Federation::TopicMove& state() { return federation_.moves()[topic_]; }
  MemberCluster* source(size_t i) const { return federation_.member(legs_[i].from); }
  MemberCluster* to() const { return federation_.member(to_name_); }
  // The leg of `member`'s partition `partition`, or -1.
  int64_t leg_of(const std::string& member, int32_t partition) const {
    auto it = leg_of_.find({member, partition});
    return it == leg_of_.end() ? -1 : static_cast<int64_t>(it->second);
  }
  asio::awaitable<void> pause(std::chrono::milliseconds how_long);

  // Each step: "" when it worked, else why the move ends.
  asio::awaitable<std::string> create_copy();
  // Every leg's offset on its member now (ListOffsets at `timestamp`: -2
  // earliest, -1 latest), into `out`.
  asio::awaitable<std::string> list_offsets(int64_t timestamp, std::vector<int64_t>& out);
  // One round: what the old members have past next_, every leg at once,
  // appended to the new member. `copied`: batches appended.
  asio::awaitable<std::string> copy_round(int32_t max_wait_ms, int64_t& copied);
  asio::awaitable<std::string> append(std::vector<std::vector<std::string>>& batches, int64_t& copied);
  // A shared map: every endpoint holds back its writes to the old members and says so.
  asio::awaitable<std::string> freeze_every_endpoint();
  asio::awaitable<std::string> copy_rest();
  // The copy's records below the old member's log start (a first batch
  // copied whole though its start was deleted) deleted on the new member.
  asio::awaitable<std::string> trim_copy();
  asio::awaitable<std::string> copy_committed_offsets();
  asio::awaitable<std::string> copy_group_offsets(const std::string& group);
  // The map as it is after the switch: each leg's partition on the new member.
  TopicPlacement switched(const TopicPlacement& current) const;
  // After a failure before the switch: the copy deleted, the topic left where it was.
  asio::awaitable<void> undo(std::string why);
  // After the switch: `left` (FederationStore's parts: the members in `whole`, whose topic goes,
  // and the moved partitions of the others) deleted, and the record of them ended.
  asio::awaitable<void> delete_old_parts(std::vector<std::string> whole, std::vector<std::string> left);

  Federation& federation_;
  std::string topic_;
  std::vector<Leg> legs_;
  std::string to_name_;
  int32_t partitions_;
  MemberLinks links_;
  std::vector<std::string> sources_;  // the old members, each once
  std::map<std::pair<std::string, int32_t>, size_t> leg_of_;
  std::vector<int64_t> log_starts_;  // per leg: its old member's log start when the copy began
  // Per leg: the old member's offset of the copy's first record: the log
  // start, or the start of the batch holding it (batches go whole).
  std::vector<int64_t> bases_;
  std::vector<int64_t> next_;  // per leg: the old member's next offset to copy
  // What became of the copy on the new member, for undo(): nothing to delete
  // unless it may have been made (and never someone else's namesake).
  enum class CopyState { kNotRecorded, kRecorded, kRefused, kMade } copy_ = CopyState::kNotRecorded;
  std::chrono::steady_clock::time_point switch_deadline_{};  // the switch holds clients back until then at most
};

asio::awaitable<void> TopicMover::pause(std::chrono::milliseconds how_long) {
  asio::steady_timer timer(federation_.executor());
  timer.expires_after(how_long);
  co_await timer.async_wait(asio::use_awaitable);
}

asio::awaitable<std::string> TopicMover::create_copy() {
  MemberCluster* old_member = source(0);
  MemberCluster* new_member = to();
  // The old member's own topic configs go with it (every part was created
  // with the same); a compacted topic cannot keep its offsets in a copy.
  ConfigQuery query;
  query.member = old_member;
  // Asked of a leader of the topic (which the copy needs anyway), not of any broker: one
  // that is down or hung would fail the move for nothing.
  query.node = old_member->leader_of(topic_, legs_[0].from_partition);
  if (query.node < 0) query.node = old_member->any_node();
  if (query.node < 0) co_return "member cluster " + legs_[0].from + " is unhealthy";
  query.request.resources.push_back({kTopicResource, topic_, std::nullopt});
  co_await forward_one(query, kDescribeConfigsVersion,
                       std::chrono::milliseconds(federation_.config().request_timeout_ms), links_);
  if (!query.reply || query.reply->body.results.empty())
    co_return "DescribeConfigs on " + legs_[0].from + ": " + query.failure;
  const auto& described = query.reply->body.results[0];
  if (described.error_code != 0) co_return "DescribeConfigs on " + legs_[0].from + ": " + error_text(described.error_code);
  Creation creation;
  creation.member = new_member;
  creation.node = new_member->any_node();
  if (creation.node < 0) co_return "member cluster " + to_name_ + " is unhealthy";
  auto& wanted = creation.request.topics.emplace_back();
  wanted.name = topic_;
  wanted.num_partitions = partitions_;
  wanted.replication_factor = -1;  // the new member's default
  for (const auto& c : described.configs) {
    if (c.name == "cleanup.policy" && c.value && c.value->find("compact") != std::string::npos)
      co_return std::string("a compacted topic cannot be moved (its copy could not keep its offsets)");
    if (c.config_source == kDynamicTopicConfig && !c.is_sensitive) wanted.configs.push_back({c.name, c.value});
  }
  creation.request.timeout_ms = 30000;
  // Recorded before the new member is asked: a stop from here to the switch
  // has the copy deleted at the next start.
  std::vector<std::string> copy_on(1, to_name_);  // named: no braced temporary in a co_await (GCC 12)
  const bool recorded = co_await federation_.store().begin_creation(topic_, copy_on);
  if (!recorded) co_return std::string("the federation's map could not be written");
  copy_ = CopyState::kRecorded;
  co_await forward_one(creation, kCreateVersion, std::chrono::milliseconds(30000 + federation_.config().request_timeout_ms),
                       links_);
  if (!creation.reply || creation.reply->body.topics.empty()) co_return "CreateTopics on " + to_name_ + ": " + creation.failure;
  const auto& created = creation.reply->body.topics[0];
  copy_ = created.error_code == 0 ? CopyState::kMade : CopyState::kRefused;  // refused: made by nobody, or someone else's
  if (created.error_code != 0)
    co_return "CreateTopics on " + to_name_ + ": " + error_text(created.error_code) + " " + created.error_message.value_or("");
  // Its leaders, before the first append.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    bool led = true;
    for (int32_t p = 0; p < partitions_; ++p) led = led && new_member->leader_of(topic_, p) >= 0;
    if (led) break;
    if (std::chrono::steady_clock::now() > deadline) co_return "the copy on " + to_name_ + " has no leaders";
    new_member->request_refresh();
    co_await pause(std::chrono::milliseconds(100));
  }
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::list_offsets(int64_t timestamp, std::vector<int64_t>& out) {
  // Asked of each leg's leader on its member, one request per member broker.
  std::list<OffsetQuery> queries;
  std::map<std::pair<std::string, int32_t>, OffsetQuery*> by_node;
  for (size_t i = 0; i < legs_.size(); ++i) {
    const int32_t node = source(i)->leader_of(topic_, legs_[i].from_partition);
    if (node < 0) co_return "partition " + std::to_string(legs_[i].from_partition) + " has no leader on " + legs_[i].from;
    OffsetQuery* q = target_for(queries, by_node, std::pair(legs_[i].from, node), [&](OffsetQuery& t) {
      t.member = source(i);
      t.node = node;
      t.request.replica_id = -1;
      t.request.topics.emplace_back().name = topic_;
    });
    auto& partition = q->request.topics[0].partitions.emplace_back();
    partition.partition_index = legs_[i].from_partition;
    partition.timestamp = timestamp;
  }
  co_await forward_all(federation_, queries, kListOffsetsVersion,
                    std::chrono::milliseconds(federation_.config().request_timeout_ms), links_);
  out.assign(legs_.size(), -1);
  for (const auto& q : queries) {
    if (!q.reply) co_return "ListOffsets on " + q.member->name() + ": " + q.failure;
    for (const auto& t : q.reply->body.topics)
      for (const auto& p : t.partitions) {
        if (p.error_code != 0) co_return "ListOffsets on " + q.member->name() + ": " + error_text(p.error_code);
        const int64_t i = leg_of(q.member->name(), p.partition_index);
        if (i >= 0) out[static_cast<size_t>(i)] = p.offset;
      }
  }
  for (int64_t o : out)
    if (o < 0) co_return std::string("ListOffsets left a partition out");
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::copy_round(int32_t max_wait_ms, int64_t& copied) {
  std::list<Copy> copies;
  std::map<std::pair<std::string, int32_t>, Copy*> by_node;
  for (size_t i = 0; i < legs_.size(); ++i) {
    const int32_t node = source(i)->leader_of(topic_, legs_[i].from_partition);
    if (node < 0) continue;  // an election there: next round
    Copy* c = target_for(copies, by_node, std::pair(legs_[i].from, node), [&](Copy& t) {
      t.member = source(i);
      t.node = node;
      t.request.max_wait_ms = max_wait_ms;
      t.request.min_bytes = 1;
      t.request.max_bytes = 16 * kCopyBytes;
      t.request.session_epoch = -1;  // sessionless
      t.request.topics.emplace_back().topic = topic_;
    });
    auto& partition = c->request.topics[0].partitions.emplace_back();
    partition.partition = legs_[i].from_partition;
    partition.fetch_offset = next_[i];
    partition.partition_max_bytes = kCopyBytes;
  }
  co_await forward_all(federation_, copies, kFetchVersion,
                    std::chrono::milliseconds(max_wait_ms + federation_.config().request_timeout_ms), links_);
  // Each leg's complete batches, in order, from exactly next_ on.
  std::vector<std::vector<std::string>> batches(legs_.size());
  for (const auto& c : copies) {
    if (!c.reply) continue;  // not answered: next round
    for (const auto& t : c.reply->body.responses)
      for (const auto& p : t.partitions) {
        const int64_t leg = leg_of(c.member->name(), p.partition_index);
        if (leg < 0) continue;
        const size_t index = static_cast<size_t>(leg);
        const std::string where = "partition " + std::to_string(p.partition_index) + " on " + c.member->name();
        if (p.error_code == static_cast<int16_t>(ErrorCode::kOffsetOutOfRange))
          co_return where + " lost records before they were copied (retention, or a DeleteRecords sent before the move)";
        if (p.error_code != 0 || !p.records || !p.records->in_memory()) continue;
        int64_t expected = next_[index];
        std::string_view rest = p.records->bytes();
        while (auto header = protocol::RecordBatchHeader::parse(rest)) {
          if (header->batch_length < 0 || header->total_size() > rest.size()) break;  // cut: next round
          const std::string_view bytes = rest.substr(0, header->total_size());
          rest.remove_prefix(header->total_size());
          if (header->last_offset() < expected) continue;  // before the offset asked for
          if (header->base_offset < expected && expected == log_starts_[index] && next_[index] == bases_[index] &&
              batches[index].empty()) {
            // The log start is inside the first batch: the copy begins at the batch (trim_copy cuts the rest).
            bases_[index] = next_[index] = expected = header->base_offset;
          }
          if (header->base_offset != expected || header->is_control() || header->is_transactional())
            co_return where + " has batches that are not contiguous at offset " + std::to_string(expected) +
                " (compaction or transactions): a copy could not keep its offsets";
          batches[index].emplace_back(bytes);
          expected = header->last_offset() + 1;
        }
      }
  }
  co_return co_await append(batches, copied);
}
asio::awaitable<std::string> TopicMover::append(std::vector<std::vector<std::string>>& batches, int64_t& copied) {
  // A Produce carries one batch per partition: the i-th batch of every
  // partition goes in the i-th wave.
  size_t waves = 0;
  for (const auto& b : batches) waves = std::max(waves, b.size());
  for (size_t wave = 0; wave < waves; ++wave) {
    std::list<Paste> pastes;
    std::map<int32_t, Paste*> by_node;
    for (int32_t p = 0; p < partitions_; ++p) {
      auto& mine = batches[static_cast<size_t>(p)];
      if (wave >= mine.size()) continue;
      const int32_t node = to()->leader_of(topic_, p);
      if (node < 0) co_return "partition " + std::to_string(p) + " of the copy has no leader on " + to_name_;
      Paste* paste = target_for(pastes, by_node, node, [&](Paste& t) {
        t.member = to();
        t.node = node;
        t.request.acks = -1;
        t.request.timeout_ms = 30000;
        t.request.topic_data.emplace_back().name = topic_;
      });
      std::string& batch = mine[wave];
      protocol::set_base_offset(batch.data(), 0);  // as a producer sends it
      paste->request.topic_data[0].partition_data.push_back({p, protocol::Records(std::string_view(batch))});
    }
    co_await forward_all(federation_, pastes, kProduceVersion,
                      std::chrono::milliseconds(30000 + federation_.config().request_timeout_ms), links_);
    // An append that failed or went unanswered may or may not be there: the
    // copy's offsets could no longer be trusted, so the move ends.
    for (const auto& paste : pastes) {
      if (!paste.reply) co_return "Produce on " + to_name_ + " went unanswered: " + paste.failure;
      for (const auto& t : paste.reply->body.responses)
        for (const auto& r : t.partition_responses) {
          if (r.index < 0 || r.index >= partitions_) continue;
          if (r.error_code != 0) co_return "Produce on " + to_name_ + ": " + error_text(r.error_code);
          const size_t p = static_cast<size_t>(r.index);
          const std::string& batch = batches[p][wave];
          const auto header = protocol::RecordBatchHeader::parse(batch);
          if (r.base_offset != next_[p] - bases_[p])
            co_return "the copy of partition " + std::to_string(r.index) + " is at offset " +
                std::to_string(r.base_offset) + " on " + to_name_ + ", expected " + std::to_string(next_[p] - bases_[p]);
          next_[p] += header->last_offset_delta + 1;
          ++copied;
          ++state().batches_copied;
        }
    }
  }
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::copy_rest() {
  // Produce and OffsetCommit are held back now; what was forwarded before is answered first.
  for (size_t k = 0; k < sources_.size(); ++k)
    while (federation_.writes_in_flight(topic_, sources_[k]) > 0) {
      if (std::chrono::steady_clock::now() > switch_deadline_)
        co_return "Produce and OffsetCommit requests to " + sources_[k] + " did not end";
      co_await pause(std::chrono::milliseconds(5));
    }
  // Then until the old members' latest offsets are copied and stay put (a
  // replicated member's high watermark may still rise to what it acknowledged).
  std::vector<int64_t> latest, again;
  for (;;) {
    if (std::chrono::steady_clock::now() > switch_deadline_) co_return std::string("the copy did not catch up");
    int64_t copied = 0;
    std::string failed = co_await copy_round(0, copied);
    if (!failed.empty()) co_return failed;
    if (copied > 0) continue;
    failed = co_await list_offsets(-1, latest);
    if (!failed.empty()) co_return failed;
    if (latest != next_) continue;
    // And what they acknowledged to acks=1 producers, which a high watermark may not show yet.
    bool acknowledged_copied = true;
    for (size_t i = 0; i < legs_.size(); ++i)
      acknowledged_copied = acknowledged_copied &&
                            next_[i] >= federation_.acknowledged_end(topic_, legs_[i].from, legs_[i].from_partition);
    if (!acknowledged_copied) {
      co_await pause(std::chrono::milliseconds(20));
      continue;
    }
    co_await pause(std::chrono::milliseconds(200));
    failed = co_await list_offsets(-1, again);
    if (!failed.empty()) co_return failed;
    if (again == next_) co_return std::string();
  }
}

asio::awaitable<std::string> TopicMover::freeze_every_endpoint() {
  const bool frozen = co_await federation_.store().freeze(topic_, sources_);
  if (!frozen) co_return std::string("the freeze could not be written to the federation's map");
  // Every endpoint of federation.endpoints, this one too, live or not: one
  // taken for gone may still be forwarding writes (a cut between endpoints).
  std::vector<int32_t> endpoints;
  for (const auto& e : federation_.config().endpoints) endpoints.push_back(e.id);
  if (endpoints.empty()) endpoints.push_back(federation_.config().node_id);
  const auto deadline = std::min(switch_deadline_, std::chrono::steady_clock::now() + kFreezeLimit);
  for (;;) {
    const auto acks = federation_.store().freeze_acknowledgements(topic_);
    std::vector<int32_t> missing;
    for (int32_t id : endpoints)
      if (!acks.count(id)) missing.push_back(id);
    if (missing.empty()) {
      // What each acknowledged to acks=1 producers is copied too (copy_rest).
      for (const auto& [endpoint, ends] : acks)
        for (const auto& a : ends) federation_.note_acknowledged(topic_, a.member, a.partition, a.end);
      co_return std::string();
    }
    if (std::chrono::steady_clock::now() > deadline)
      co_return "federation endpoint " + std::to_string(missing[0]) + " did not hold its writes back in time";
    co_await pause(std::chrono::milliseconds(5));
  }
}

asio::awaitable<std::string> TopicMover::trim_copy() {
  std::list<Trim> trims;
  std::map<int32_t, Trim*> by_node;
  for (int32_t p = 0; p < partitions_; ++p) {
    const size_t i = static_cast<size_t>(p);
    if (bases_[i] >= log_starts_[i]) continue;
    const int32_t node = to()->leader_of(topic_, p);
    if (node < 0) co_return "partition " + std::to_string(p) + " of the copy has no leader on " + to_name_;
    Trim* trim = target_for(trims, by_node, node, [&](Trim& t) {
      t.member = to();
      t.node = node;
      t.request.timeout_ms = 30000;
      t.request.topics.emplace_back().name = topic_;
    });
    trim->request.topics[0].partitions.push_back({p, log_starts_[i] - bases_[i]});
  }
  co_await forward_all(federation_, trims, kDeleteRecordsVersion,
                    std::chrono::milliseconds(30000 + federation_.config().request_timeout_ms), links_);
  for (const auto& trim : trims) {
    if (!trim.reply) co_return "DeleteRecords on " + to_name_ + ": " + trim.failure;
    for (const auto& t : trim.reply->body.topics)
      for (const auto& p : t.partitions)
        if (p.error_code != 0) co_return "DeleteRecords on " + to_name_ + ": " + error_text(p.error_code);
  }
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::copy_committed_offsets() {
  // Every group the old members know (each of their brokers lists those it coordinates).
  std::list<GroupQuery> queries;
  for (const std::string& name : sources_) {
    MemberCluster* member = federation_.member(name);
    for (int32_t node : member->broker_ids()) {
      GroupQuery& q = queries.emplace_back();
      q.member = member;
      q.node = node;
    }
  }
  co_await forward_all(federation_, queries, kListGroupsVersion,
                    std::chrono::milliseconds(federation_.config().request_timeout_ms), links_);
  std::set<std::string> groups;
  for (const auto& q : queries) {
    if (!q.reply || q.reply->body.error_code != 0)
      co_return "ListGroups on " + q.member->name() + ": " + (q.reply ? error_text(q.reply->body.error_code) : q.failure);
    for (const auto& g : q.reply->body.groups)
      if (g.protocol_type == "consumer" || g.protocol_type.empty()) groups.insert(g.group_id);
  }
  const std::vector<std::string> ordered(groups.begin(), groups.end());
  for (size_t i = 0; i < ordered.size(); ++i) {  // an index: co_await in the body (GCC 12)
    if (std::chrono::steady_clock::now() > switch_deadline_)
      co_return "copying " + std::to_string(ordered.size()) + " groups' offsets took too long";
    const std::string failed = co_await copy_group_offsets(ordered[i]);
    if (!failed.empty()) co_return failed;
  }
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::copy_group_offsets(const std::string& group) {
  // The group's offsets of the moved partitions, from each old member's coordinator.
  std::list<CommittedQuery> queries;
  for (const std::string& name : sources_) {
    CommittedQuery& query = queries.emplace_back();
    query.member = federation_.member(name);
    query.request.group_id = group;
    auto& wanted = query.request.topics.emplace();
    wanted.emplace_back().name = topic_;
    for (const Leg& leg : legs_)
      if (leg.from == name) wanted[0].partition_indexes.push_back(leg.from_partition);
  }
  co_await forward_to_coordinators(federation_, links_, queries, group, kOffsetFetchVersion,
                                   offset_fetch_coordinator_moved);
  std::list<Commit> commits;
  Commit& commit = commits.emplace_back();
  commit.member = to();
  commit.request.group_id = group;
  commit.request.generation_id_or_member_epoch = -1;  // from outside the member's group
  auto& topic = commit.request.topics.emplace_back();
  topic.name = topic_;
  for (const auto& query : queries) {
    if (!query.reply || query.reply->body.error_code != 0 || offset_fetch_coordinator_moved(query.reply->body))
      co_return "OffsetFetch of group " + group + " on " + query.member->name() + ": " +
          (query.reply ? error_text(query.reply->body.error_code) : query.failure);
    for (const auto& t : query.reply->body.topics)
      for (const auto& p : t.partitions) {
        if (t.name != topic_ || p.error_code != 0 || p.committed_offset < 0) continue;
        const int64_t leg = leg_of(query.member->name(), p.partition_index);
        if (leg < 0) continue;
        const size_t i = static_cast<size_t>(leg);
        auto& out = topic.partitions.emplace_back();
        out.partition_index = static_cast<int32_t>(i);
        // Below the copy's start (deleted before the move): its start.
        out.committed_offset = std::max(p.committed_offset, log_starts_[i]) - bases_[i];
        out.committed_metadata = p.metadata;
      }
  }
  if (topic.partitions.empty()) co_return std::string();  // nothing committed for these partitions
  co_await forward_to_coordinators(federation_, links_, commits, group, kOffsetCommitVersion,
                                   offset_commit_coordinator_moved);
  if (!commit.reply) co_return "OffsetCommit of group " + group + " on " + to_name_ + ": " + commit.failure;
  for (const auto& t : commit.reply->body.topics)
    for (const auto& p : t.partitions)
      if (p.error_code != 0) co_return "OffsetCommit of group " + group + " on " + to_name_ + ": " + error_text(p.error_code);
  co_return std::string();
}

TopicPlacement TopicMover::switched(const TopicPlacement& current) const {
  std::map<int32_t, size_t> leg_by_federated;
  for (size_t i = 0; i < legs_.size(); ++i) leg_by_federated[legs_[i].federated] = i;
  TopicPlacement out{current.topic_id, {}};
  int32_t federated = 0;
  for (const auto& segment : current.segments)
    for (int32_t j = 0; j < segment.partitions; ++j, ++federated) {
      std::string cluster = segment.cluster;
      int32_t member_partition = segment.first_member_partition + j;
      int64_t base = segment.offset_base(j);
      if (auto it = leg_by_federated.find(federated); it != leg_by_federated.end()) {
        // The new member's offset o is the old member's o + bases_, which is federated o + bases_ + its base.
        cluster = to_name_;
        member_partition = static_cast<int32_t>(it->second);
        base += bases_[it->second];
      }
      PlacementSegment* last = out.segments.empty() ? nullptr : &out.segments.back();
      if (last && last->cluster == cluster && last->first_member_partition + last->partitions == member_partition) {
        ++last->partitions;
        last->offset_bases.push_back(base);
      } else {
        out.segments.push_back({cluster, 1, member_partition, {base}});
      }
    }
  for (auto& segment : out.segments)
    if (std::all_of(segment.offset_bases.begin(), segment.offset_bases.end(), [](int64_t b) { return b == 0; }))
      segment.offset_bases.clear();
  return out;
}

asio::awaitable<void> TopicMover::undo(std::string why) {
  SLUICE_LOG(kWarn, "moving partitions of " << topic_ << " to member cluster " << to_name_ << " failed: " << why
                                            << "; they stay where they were");
  state().frozen = false;
  state().state = "failed: " + why;
  // Clients write to the old members again at once (on every endpoint).
  if (federation_.store().shared()) {
    const bool thawed = co_await federation_.store().thaw(topic_);
    if (!thawed) SLUICE_LOG(kWarn, "could not end the freeze of " << topic_ << " in the map: it ends with the topic's release");
  }
  if (copy_ == CopyState::kNotRecorded) {
    federation_.store().release(topic_);
    co_return;
  }
  bool undone = true;
  if (copy_ != CopyState::kRefused) {
    std::vector<MemberCluster*> copy_on(1, to());  // named: no braced temporary in a co_await (GCC 12)
    undone = co_await undo_creation(federation_, links_, topic_, copy_on);
  }
  bool forgotten = false;
  if (undone) forgotten = co_await federation_.store().end_creation(topic_);
  if (forgotten) {
    federation_.store().release(topic_);
  } else {
    // Held until finish_unfinished_creations has deleted the copy.
    federation_.store().leave_unfinished(topic_, std::vector<std::string>{to_name_});
  }
}

asio::awaitable<void> TopicMover::delete_old_parts(std::vector<std::string> whole, std::vector<std::string> left) {
  co_await pause(std::chrono::duration_cast<std::chrono::milliseconds>(kDeleteDelay));
  if (left.empty()) {  // nothing recorded to delete (switch_placement erased the record)
    federation_.store().release(topic_);
    co_return;
  }
  // Recorded with the switch (switch_placement), so a stop before they are
  // gone finishes the deletion at the next start.
  const bool gone = co_await delete_left_parts(federation_, links_, topic_, left);
  if (!whole.empty()) federation_.note_deleted(topic_);  // the old member may list it a moment longer
  bool forgotten = false;
  if (gone) forgotten = co_await federation_.store().end_creation(topic_);
  if (forgotten) {
    federation_.store().release(topic_);
  } else {
    federation_.store().leave_unfinished(topic_, left);  // the federation asks again every second
  }
}

asio::awaitable<void> TopicMover::run() {
  std::string from;
  for (const auto& name : sources_) from += (from.empty() ? "" : ",") + name;
  SLUICE_LOG(kInfo, "moving " << partitions_ << " partitions of " << topic_ << " from member cluster(s) " << from
                              << " to " << to_name_);
  if (federation_.store().shared()) {
    const bool held = co_await federation_.store().hold(topic_);
    if (!held) {
      state().state = "failed: the topic is being changed through another endpoint, or the map could not be written";
      co_return;
    }
  }
  std::string failed = co_await create_copy();
  if (failed.empty()) failed = co_await list_offsets(-2, log_starts_);
  bases_ = next_ = log_starts_;
  // Copy while clients go on writing to the old members, until nearly caught up.
  const auto catch_up_deadline = std::chrono::steady_clock::now() + kCatchUpLimit;
  while (failed.empty()) {
    int64_t copied = 0;
    failed = co_await copy_round(100, copied);
    if (failed.empty() && copied <= kCaughtUpBatches * partitions_) break;
    if (failed.empty() && std::chrono::steady_clock::now() > catch_up_deadline) failed = "the copy did not catch up";
  }
  if (failed.empty()) {
    state().state = "switching";
    state().frozen = true;
    switch_deadline_ = std::chrono::steady_clock::now() + kSwitchLimit;
    if (federation_.store().shared()) failed = co_await freeze_every_endpoint();
    if (failed.empty()) failed = co_await copy_rest();
  }
  if (failed.empty()) {
    // A DeleteRecords forwarded before the move began may have raised an old
    // member's log start behind the copy: the copy is trimmed to the latest.
    std::vector<int64_t> starts_now;
    failed = co_await list_offsets(-2, starts_now);
    for (size_t i = 0; failed.empty() && i < starts_now.size(); ++i)
      log_starts_[i] = std::max(log_starts_[i], starts_now[i]);
  }
  if (failed.empty()) failed = co_await trim_copy();
  if (failed.empty()) failed = co_await copy_committed_offsets();
  std::vector<std::string> whole;  // old members left without any of its partitions
  std::vector<std::string> left;   // what is to go from the old members (FederationStore's parts)
  if (failed.empty()) {
    const TopicPlacement* current = federation_.store().find(topic_);
    if (!current) {
      failed = "the topic left the map";
    } else {
      const TopicPlacement moved = switched(*current);
      for (const auto& name : sources_)
        if (!moved.on(name)) whole.push_back(name);
      left = whole;
      // Where the topic keeps other partitions, the moved ones are emptied (DeleteRecords to the
      // high watermark; the partitions stay, unused, as Kafka cannot delete a partition).
      for (const Leg& leg : legs_)
        if (std::find(whole.begin(), whole.end(), leg.from) == whole.end())
          left.push_back(left_part(leg.from, leg.from_partition));
      const bool written = co_await federation_.store().switch_placement(topic_, moved, left);
      if (!written) failed = "the federation's map could not be written";
    }
  }
  if (!failed.empty()) {
    co_await undo(failed);
    co_return;
  }
  state().frozen = false;
  state().state = "done";
  federation_.forget_acknowledged(topic_);
  to()->request_refresh();
  SLUICE_LOG(kInfo, "moved " << partitions_ << " partitions of " << topic_ << " from member cluster(s) " << from << " to "
                             << to_name_ << " (" << state().batches_copied << " batches copied)");
  co_await delete_old_parts(whole, left);
}

}  // namespace

asio::awaitable<bool> delete_left_parts(Federation& federation, MemberLinks& links, std::string topic,
                                        std::vector<std::string> parts) {
  std::list<Trim> trims;
  std::map<std::pair<std::string, int32_t>, Trim*> by_node;
  std::vector<MemberCluster*> whole;
  bool all_known = true;
  for (const std::string& part : parts) {
    const auto parsed = parse_left_part(part);
    if (!parsed) {
      SLUICE_LOG(kError, "the federation's map names a malformed part of " << topic << " to delete: " << part
                                                                          << "; left alone");
      continue;
    }
    const auto& [name, partition] = *parsed;
    MemberCluster* member = federation.member(name);
    if (member == nullptr) continue;  // no longer configured: nothing to delete there
    if (partition < 0) {
      whole.push_back(member);
      continue;
    }
    if (!member->healthy()) {  // it cannot say now: asked again later
      all_known = false;
      continue;
    }
    const MemberTopic* there = member->topic(topic);
    if (there == nullptr || partition >= static_cast<int32_t>(there->leaders.size()))
      continue;  // the topic or partition is gone from that member: nothing left to empty
    const int32_t node = there->leaders[static_cast<size_t>(partition)];
    if (node < 0) {  // offline for now: asked again later
      all_known = false;
      continue;
    }
    Trim* trim = target_for(trims, by_node, std::pair(name, node), [&](Trim& t) {
      t.member = member;
      t.node = node;
      t.request.timeout_ms = 30000;
      t.request.topics.emplace_back().name = topic;
    });
    trim->request.topics[0].partitions.push_back({partition, -1});
  }
  co_await forward_all(federation, trims, kDeleteRecordsVersion,
                    std::chrono::milliseconds(30000 + federation.config().request_timeout_ms), links);
  bool emptied = all_known;
  for (const auto& trim : trims) {
    if (!trim.reply) {
      SLUICE_LOG(kWarn, "emptying partitions of " << topic << " on " << trim.member->name() << ": " << trim.failure
                                                  << "; asked again later");
      emptied = false;
      continue;
    }
    // Each partition asked must be answered: without an error, or as gone from the member.
    size_t answered = 0;
    for (const auto& t : trim.reply->body.topics)
      for (const auto& p : t.partitions) {
        ++answered;
        if (p.error_code != 0 && p.error_code != static_cast<int16_t>(protocol::ErrorCode::kUnknownTopicOrPartition)) {
          SLUICE_LOG(kWarn, "emptying partition " << p.partition_index << " of " << topic << " on "
                                                  << trim.member->name() << ": " << error_text(p.error_code)
                                                  << "; asked again later");
          emptied = false;
        }
      }
    if (answered < trim.request.topics[0].partitions.size()) emptied = false;
  }
  bool deleted = true;
  if (!whole.empty()) deleted = co_await undo_creation(federation, links, topic, whole);  // no || around co_await (GCC 12)
  co_return emptied && deleted;
}

namespace {

asio::awaitable<void> run_move(std::shared_ptr<TopicMover> mover) { co_await mover->run(); }

// Starts moving `legs` of `topic` to member `to`, after the checks both kinds of move share.
std::string start(Federation& federation, const std::string& topic, std::vector<Leg> legs, const std::string& to) {
  MemberCluster* target = federation.member(to);
  if (!target) return "no member cluster " + to;
  if (!target->healthy()) return "member cluster " + to + " is unhealthy";
  if (federation.store().find(topic)->on(to) || target->topic(topic))
    return "member cluster " + to + " holds a topic " + topic + " already";
  if (legs.empty()) return "no partition to move";
  std::vector<std::string> sources;
  for (const Leg& leg : legs) {
    MemberCluster* source = federation.member(leg.from);
    if (!source || !source->healthy()) return "member cluster " + leg.from + " is unhealthy";
    if (std::find(sources.begin(), sources.end(), leg.from) == sources.end()) sources.push_back(leg.from);
  }
  std::string from;
  for (const auto& name : sources) from += (from.empty() ? "" : ",") + name;
  // No deletion, change or second move meanwhile (a shared map's hold is recorded by run()).
  if (!federation.store().shared()) federation.store().hold_unshared(topic);
  federation.moves()[topic] = Federation::TopicMove{from, to, sources, "copying", false, 0};
  auto mover = std::make_shared<TopicMover>(federation, topic, std::move(legs), to);
  boost::asio::co_spawn(federation.executor(), run_move(std::move(mover)), boost::asio::detached);
  return "";
}

// The placement's checks: "" if `topic` can be moved now.
std::string refused(Federation& federation, const std::string& topic) {
  if (!federation.store().find(topic)) return "topic " + topic + " is not in the federation's map";
  if (federation.moving(topic)) return "topic " + topic + " is being moved";
  if (!federation.accepting()) return std::string("the endpoint is still starting");
  if (federation.store().reserved(topic)) return "topic " + topic + " is being created, deleted, changed or moved";
  return "";
}

}  // namespace

std::string start_topic_move(Federation& federation, const std::string& topic, std::string from, const std::string& to) {
  if (auto why = refused(federation, topic); !why.empty()) return why;
  const TopicPlacement& placement = *federation.store().find(topic);
  if (from.empty()) {
    for (const auto& segment : placement.segments)
      if (segment.cluster != placement.segments[0].cluster) return "topic " + topic + " is split: say which member cluster (from=)";
    from = placement.segments[0].cluster;
  }
  if (!placement.on(from)) return "topic " + topic + " has no partitions on member cluster " + from;
  std::vector<Leg> legs;  // every partition on `from`, in the member's order
  int32_t federated = 0;
  for (const auto& segment : placement.segments)
    for (int32_t j = 0; j < segment.partitions; ++j, ++federated)
      if (segment.cluster == from) legs.push_back({federated, from, segment.first_member_partition + j});
  std::sort(legs.begin(), legs.end(), [](const Leg& a, const Leg& b) { return a.from_partition < b.from_partition; });
  return start(federation, topic, std::move(legs), to);
}

std::string start_topic_spread(Federation& federation, const std::string& topic, const std::string& to) {
  if (auto why = refused(federation, topic); !why.empty()) return why;
  const TopicPlacement& placement = *federation.store().find(topic);
  std::set<std::string> clusters;
  for (const auto& segment : placement.segments) clusters.insert(segment.cluster);
  // From each segment its last partitions, so that every member, the new one
  // too, ends with about the same number: n / (members + 1) of each segment.
  const int32_t members = static_cast<int32_t>(clusters.size()) + 1;
  std::vector<Leg> legs;
  int32_t federated = 0;
  for (const auto& segment : placement.segments) {
    const int32_t moved = segment.partitions / members;
    for (int32_t j = 0; j < segment.partitions; ++j, ++federated)
      if (j >= segment.partitions - moved) legs.push_back({federated, segment.cluster, segment.first_member_partition + j});
  }
  if (legs.empty())
    return "topic " + topic + " has too few partitions to spread over " + std::to_string(members) +
           " member clusters (CreatePartitions first)";
  return start(federation, topic, std::move(legs), to);
}

}  // namespace sluice::federation
