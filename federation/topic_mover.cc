#include "federation/topic_mover.h"

#include <algorithm>
#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broker/log.h"
#include "federation/federation.h"
#include "federation/handlers/forward.h"
#include "federation/handlers/handlers.h"
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
// The old member's topic is deleted this long after the switch: Fetch
// requests routed there before it finish first.
constexpr auto kDeleteDelay = std::chrono::seconds(2);

bool coordinator_moved_fetch(const protocol::OffsetFetchResponse& reply) {
  if (coordinator_error(reply.error_code)) return true;
  for (const auto& t : reply.topics)
    for (const auto& p : t.partitions)
      if (coordinator_error(p.error_code)) return true;
  return false;
}

bool coordinator_moved_commit(const protocol::OffsetCommitResponse& reply) {
  for (const auto& t : reply.topics)
    for (const auto& p : t.partitions)
      if (coordinator_error(p.error_code)) return true;
  return false;
}

std::string error_text(int16_t code) { return protocol::error_name(static_cast<ErrorCode>(code)); }

class TopicMover {
 public:
  TopicMover(Federation& federation, std::string topic, std::string from, std::string to, int32_t partitions)
      : federation_(federation),
        topic_(std::move(topic)),
        from_name_(std::move(from)),
        to_name_(std::move(to)),
        partitions_(partitions),
        links_(federation.executor()) {}

  asio::awaitable<void> run();

 private:
  Federation::TopicMove& state() { return federation_.moves()[topic_]; }
  MemberCluster* from() const { return federation_.member(from_name_); }
  MemberCluster* to() const { return federation_.member(to_name_); }
  asio::awaitable<void> pause(std::chrono::milliseconds how_long);

  // Each step: "" when it worked, else why the move ends.
  asio::awaitable<std::string> create_copy();
  asio::awaitable<std::string> read_bases();
  // One round: what the old member has past next_, every partition at once,
  // appended to the new member. `copied`: batches appended.
  asio::awaitable<std::string> copy_round(int32_t max_wait_ms, int64_t& copied);
  asio::awaitable<std::string> append(std::vector<std::vector<std::string>>& batches, int64_t& copied);
  // The old member's latest offsets (ListOffsets), into `out`.
  asio::awaitable<std::string> latest_offsets(std::vector<int64_t>& out);
  asio::awaitable<std::string> copy_rest();
  // The copy's records below the old member's log start (a first batch
  // copied whole though its start was deleted) deleted on the new member.
  asio::awaitable<std::string> trim_copy();
  asio::awaitable<std::string> copy_committed_offsets();
  asio::awaitable<std::string> copy_group_offsets(const std::string& group);
  // After a failure before the switch: the copy deleted, the topic left where it was.
  asio::awaitable<void> undo(std::string why);
  asio::awaitable<void> delete_old_part();

  Federation& federation_;
  std::string topic_, from_name_, to_name_;
  int32_t partitions_;
  MemberLinks links_;
  std::vector<int64_t> log_starts_;  // per partition: the old member's log start when the copy began
  // Per partition: the old member's offset of the copy's first record: the
  // log start, or the start of the batch holding it (batches go whole).
  std::vector<int64_t> bases_;
  std::vector<int64_t> next_;   // per partition: the old member's next offset to copy
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
  MemberCluster* old_member = from();
  MemberCluster* new_member = to();
  // The old member's own topic configs go with it; a compacted topic cannot
  // keep its offsets in a copy (its batches have gaps).
  ConfigQuery query;
  query.member = old_member;
  query.node = old_member->any_node();
  if (query.node < 0) co_return "member cluster " + from_name_ + " is unhealthy";
  query.request.resources.push_back({kTopicResource, topic_, std::nullopt});
  co_await forward_one(query, kDescribeConfigsVersion,
                       std::chrono::milliseconds(federation_.config().request_timeout_ms), links_);
  if (!query.reply || query.reply->body.results.empty()) co_return "DescribeConfigs on " + from_name_ + ": " + query.failure;
  const auto& described = query.reply->body.results[0];
  if (described.error_code != 0) co_return "DescribeConfigs on " + from_name_ + ": " + error_text(described.error_code);
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

asio::awaitable<std::string> TopicMover::read_bases() {
  // Earliest offsets, asked of each partition's leader on the old member.
  std::list<OffsetQuery> queries;
  std::map<int32_t, OffsetQuery*> by_node;
  for (int32_t p = 0; p < partitions_; ++p) {
    const int32_t node = from()->leader_of(topic_, p);
    if (node < 0) co_return "partition " + std::to_string(p) + " has no leader on " + from_name_;
    OffsetQuery*& q = by_node[node];
    if (!q) {
      q = &queries.emplace_back();
      q->member = from();
      q->node = node;
      q->request.replica_id = -1;
      q->request.topics.emplace_back().name = topic_;
    }
    auto& partition = q->request.topics[0].partitions.emplace_back();
    partition.partition_index = p;
    partition.timestamp = -2;  // earliest
  }
  WaitGroup group(federation_.executor());
  for (auto& q : queries) {
    group.add();
    asio::co_spawn(federation_.executor(),
                   forward(q, kListOffsetsVersion, std::chrono::milliseconds(federation_.config().request_timeout_ms),
                           group, links_),
                   asio::detached);
  }
  co_await group.wait();
  bases_.assign(static_cast<size_t>(partitions_), -1);
  for (const auto& q : queries) {
    if (!q.reply) co_return "ListOffsets on " + from_name_ + ": " + q.failure;
    for (const auto& t : q.reply->body.topics)
      for (const auto& p : t.partitions) {
        if (p.error_code != 0) co_return "ListOffsets on " + from_name_ + ": " + error_text(p.error_code);
        if (p.partition_index >= 0 && p.partition_index < partitions_) bases_[static_cast<size_t>(p.partition_index)] = p.offset;
      }
  }
  for (int64_t b : bases_)
    if (b < 0) co_return "ListOffsets on " + from_name_ + " left a partition out";
  log_starts_ = bases_;
  next_ = bases_;
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::copy_round(int32_t max_wait_ms, int64_t& copied) {
  std::list<Copy> copies;
  std::map<int32_t, Copy*> by_node;
  for (int32_t p = 0; p < partitions_; ++p) {
    const int32_t node = from()->leader_of(topic_, p);
    if (node < 0) continue;  // an election there: next round
    Copy*& c = by_node[node];
    if (!c) {
      c = &copies.emplace_back();
      c->member = from();
      c->node = node;
      c->request.max_wait_ms = max_wait_ms;
      c->request.min_bytes = 1;
      c->request.max_bytes = 16 * kCopyBytes;
      c->request.session_epoch = -1;  // sessionless
      c->request.topics.emplace_back().topic = topic_;
    }
    auto& partition = c->request.topics[0].partitions.emplace_back();
    partition.partition = p;
    partition.fetch_offset = next_[static_cast<size_t>(p)];
    partition.partition_max_bytes = kCopyBytes;
  }
  WaitGroup group(federation_.executor());
  for (auto& c : copies) {
    group.add();
    asio::co_spawn(federation_.executor(),
                   forward(c, kFetchVersion,
                           std::chrono::milliseconds(max_wait_ms + federation_.config().request_timeout_ms), group,
                           links_),
                   asio::detached);
  }
  co_await group.wait();
  // Each partition's complete batches, in order, from exactly next_ on.
  std::vector<std::vector<std::string>> batches(static_cast<size_t>(partitions_));
  for (const auto& c : copies) {
    if (!c.reply) continue;  // not answered: next round
    for (const auto& t : c.reply->body.responses)
      for (const auto& p : t.partitions) {
        if (p.partition_index < 0 || p.partition_index >= partitions_) continue;
        if (p.error_code == static_cast<int16_t>(ErrorCode::kOffsetOutOfRange))
          co_return "partition " + std::to_string(p.partition_index) + " on " + from_name_ +
              " lost records before they were copied (retention)";
        if (p.error_code != 0 || !p.records || !p.records->in_memory()) continue;
        int64_t expected = next_[static_cast<size_t>(p.partition_index)];
        std::string_view rest = p.records->bytes();
        while (auto header = protocol::RecordBatchHeader::parse(rest)) {
          if (header->batch_length < 0 || header->total_size() > rest.size()) break;  // cut: next round
          const std::string_view bytes = rest.substr(0, header->total_size());
          rest.remove_prefix(header->total_size());
          if (header->last_offset() < expected) continue;  // before the offset asked for
          const size_t index = static_cast<size_t>(p.partition_index);
          if (header->base_offset < expected && expected == log_starts_[index] && next_[index] == bases_[index] &&
              batches[index].empty()) {
            // The log start is inside the first batch: the copy begins at the batch (trim_copy cuts the rest).
            bases_[index] = next_[index] = expected = header->base_offset;
          }
          if (header->base_offset != expected || header->is_control() || header->is_transactional())
            co_return "partition " + std::to_string(p.partition_index) + " on " + from_name_ +
                " has batches that are not contiguous at offset " + std::to_string(expected) +
                " (compaction or transactions): a copy could not keep its offsets";
          batches[static_cast<size_t>(p.partition_index)].emplace_back(bytes);
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
      Paste*& paste = by_node[node];
      if (!paste) {
        paste = &pastes.emplace_back();
        paste->member = to();
        paste->node = node;
        paste->request.acks = -1;
        paste->request.timeout_ms = 30000;
        paste->request.topic_data.emplace_back().name = topic_;
      }
      std::string& batch = mine[wave];
      protocol::set_base_offset(batch.data(), 0);  // as a producer sends it
      paste->request.topic_data[0].partition_data.push_back({p, protocol::Records(std::string_view(batch))});
    }
    WaitGroup group(federation_.executor());
    for (auto& paste : pastes) {
      group.add();
      asio::co_spawn(federation_.executor(),
                     forward(paste, kProduceVersion,
                             std::chrono::milliseconds(30000 + federation_.config().request_timeout_ms), group, links_),
                     asio::detached);
    }
    co_await group.wait();
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

asio::awaitable<std::string> TopicMover::latest_offsets(std::vector<int64_t>& out) {
  std::list<OffsetQuery> queries;
  std::map<int32_t, OffsetQuery*> by_node;
  for (int32_t p = 0; p < partitions_; ++p) {
    const int32_t node = from()->leader_of(topic_, p);
    if (node < 0) co_return "partition " + std::to_string(p) + " has no leader on " + from_name_;
    OffsetQuery*& q = by_node[node];
    if (!q) {
      q = &queries.emplace_back();
      q->member = from();
      q->node = node;
      q->request.replica_id = -1;
      q->request.topics.emplace_back().name = topic_;
    }
    auto& partition = q->request.topics[0].partitions.emplace_back();
    partition.partition_index = p;
    partition.timestamp = -1;  // latest
  }
  WaitGroup group(federation_.executor());
  for (auto& q : queries) {
    group.add();
    asio::co_spawn(federation_.executor(),
                   forward(q, kListOffsetsVersion, std::chrono::milliseconds(federation_.config().request_timeout_ms),
                           group, links_),
                   asio::detached);
  }
  co_await group.wait();
  out.assign(static_cast<size_t>(partitions_), -1);
  for (const auto& q : queries) {
    if (!q.reply) co_return "ListOffsets on " + from_name_ + ": " + q.failure;
    for (const auto& t : q.reply->body.topics)
      for (const auto& p : t.partitions) {
        if (p.error_code != 0) co_return "ListOffsets on " + from_name_ + ": " + error_text(p.error_code);
        if (p.partition_index >= 0 && p.partition_index < partitions_) out[static_cast<size_t>(p.partition_index)] = p.offset;
      }
  }
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::copy_rest() {
  // Produce and OffsetCommit are held back now; what was forwarded before is answered first.
  while (federation_.writes_in_flight(topic_, from_name_) > 0) {
    if (std::chrono::steady_clock::now() > switch_deadline_)
      co_return "Produce and OffsetCommit requests to " + from_name_ + " did not end";
    co_await pause(std::chrono::milliseconds(5));
  }
  // Then until the old member's latest offsets are copied and stay put (a
  // replicated member's high watermark may still rise to what it acknowledged).
  std::vector<int64_t> latest, again;
  for (;;) {
    if (std::chrono::steady_clock::now() > switch_deadline_) co_return std::string("the copy did not catch up");
    int64_t copied = 0;
    std::string failed = co_await copy_round(0, copied);
    if (!failed.empty()) co_return failed;
    if (copied > 0) continue;
    failed = co_await latest_offsets(latest);
    if (!failed.empty()) co_return failed;
    if (latest != next_) continue;
    // And what it acknowledged to acks=1 producers, which its high watermark may not show yet.
    bool acknowledged_copied = true;
    for (int32_t p = 0; p < partitions_; ++p)
      acknowledged_copied = acknowledged_copied &&
                            next_[static_cast<size_t>(p)] >= federation_.acknowledged_end(topic_, from_name_, p);
    if (!acknowledged_copied) {
      co_await pause(std::chrono::milliseconds(20));
      continue;
    }
    co_await pause(std::chrono::milliseconds(200));
    failed = co_await latest_offsets(again);
    if (!failed.empty()) co_return failed;
    if (again == next_) co_return std::string();
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
    Trim*& trim = by_node[node];
    if (!trim) {
      trim = &trims.emplace_back();
      trim->member = to();
      trim->node = node;
      trim->request.timeout_ms = 30000;
      trim->request.topics.emplace_back().name = topic_;
    }
    trim->request.topics[0].partitions.push_back({p, log_starts_[i] - bases_[i]});
  }
  WaitGroup group(federation_.executor());
  for (auto& trim : trims) {
    group.add();
    asio::co_spawn(federation_.executor(),
                   forward(trim, kDeleteRecordsVersion,
                           std::chrono::milliseconds(30000 + federation_.config().request_timeout_ms), group, links_),
                   asio::detached);
  }
  co_await group.wait();
  for (const auto& trim : trims) {
    if (!trim.reply) co_return "DeleteRecords on " + to_name_ + ": " + trim.failure;
    for (const auto& t : trim.reply->body.topics)
      for (const auto& p : t.partitions)
        if (p.error_code != 0) co_return "DeleteRecords on " + to_name_ + ": " + error_text(p.error_code);
  }
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::copy_committed_offsets() {
  // Every group the old member knows (each of its brokers lists those it coordinates).
  std::list<GroupQuery> queries;
  for (int32_t node : from()->broker_ids()) {
    GroupQuery& q = queries.emplace_back();
    q.member = from();
    q.node = node;
  }
  WaitGroup group(federation_.executor());
  for (auto& q : queries) {
    group.add();
    asio::co_spawn(federation_.executor(),
                   forward(q, kListGroupsVersion, std::chrono::milliseconds(federation_.config().request_timeout_ms),
                           group, links_),
                   asio::detached);
  }
  co_await group.wait();
  std::vector<std::string> groups;
  for (const auto& q : queries) {
    if (!q.reply || q.reply->body.error_code != 0)
      co_return "ListGroups on " + from_name_ + ": " + (q.reply ? error_text(q.reply->body.error_code) : q.failure);
    for (const auto& g : q.reply->body.groups)
      if (g.protocol_type == "consumer" || g.protocol_type.empty()) groups.push_back(g.group_id);
  }
  for (size_t i = 0; i < groups.size(); ++i) {  // an index: co_await in the body (GCC 12)
    if (std::chrono::steady_clock::now() > switch_deadline_)
      co_return "copying " + std::to_string(groups.size()) + " groups' offsets took too long";
    const std::string failed = co_await copy_group_offsets(groups[i]);
    if (!failed.empty()) co_return failed;
  }
  co_return std::string();
}

asio::awaitable<std::string> TopicMover::copy_group_offsets(const std::string& group) {
  std::list<CommittedQuery> queries;
  CommittedQuery& query = queries.emplace_back();
  query.member = from();
  query.request.group_id = group;
  auto& wanted = query.request.topics.emplace();
  wanted.emplace_back().name = topic_;
  for (int32_t p = 0; p < partitions_; ++p) wanted[0].partition_indexes.push_back(p);
  co_await forward_to_coordinators(federation_, links_, queries, group, kOffsetFetchVersion, coordinator_moved_fetch);
  if (!query.reply || query.reply->body.error_code != 0 || coordinator_moved_fetch(query.reply->body))
    co_return "OffsetFetch of group " + group + " on " + from_name_ + ": " +
        (query.reply ? error_text(query.reply->body.error_code) : query.failure);
  std::list<Commit> commits;
  Commit& commit = commits.emplace_back();
  commit.member = to();
  commit.request.group_id = group;
  commit.request.generation_id_or_member_epoch = -1;  // from outside the member's group
  auto& topic = commit.request.topics.emplace_back();
  topic.name = topic_;
  for (const auto& t : query.reply->body.topics)
    for (const auto& p : t.partitions) {
      if (t.name != topic_ || p.error_code != 0 || p.committed_offset < 0) continue;
      if (p.partition_index < 0 || p.partition_index >= partitions_) continue;
      auto& out = topic.partitions.emplace_back();
      out.partition_index = p.partition_index;
      // Below the copy's start (deleted before the move): its start.
      const size_t i = static_cast<size_t>(p.partition_index);
      out.committed_offset = std::max(p.committed_offset, log_starts_[i]) - bases_[i];
      out.committed_metadata = p.metadata;
    }
  if (topic.partitions.empty()) co_return std::string();  // nothing committed for this topic
  co_await forward_to_coordinators(federation_, links_, commits, group, kOffsetCommitVersion, coordinator_moved_commit);
  if (!commit.reply) co_return "OffsetCommit of group " + group + " on " + to_name_ + ": " + commit.failure;
  for (const auto& t : commit.reply->body.topics)
    for (const auto& p : t.partitions)
      if (p.error_code != 0) co_return "OffsetCommit of group " + group + " on " + to_name_ + ": " + error_text(p.error_code);
  co_return std::string();
}

asio::awaitable<void> TopicMover::undo(std::string why) {
  SLUICE_LOG(kWarn, "moving " << topic_ << " from member cluster " << from_name_ << " to " << to_name_
                              << " failed: " << why << "; it stays on " << from_name_);
  state().frozen = false;
  state().state = "failed: " + why;
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

asio::awaitable<void> TopicMover::delete_old_part() {
  // Recorded with the switch (switch_placement), so a stop before the deletion finishes it at the next start.
  co_await pause(std::chrono::duration_cast<std::chrono::milliseconds>(kDeleteDelay));
  std::vector<MemberCluster*> old_member(1, from());
  const bool deleted = co_await undo_creation(federation_, links_, topic_, old_member);
  federation_.note_deleted(topic_);  // the old member may list it a moment longer
  bool forgotten = false;
  if (deleted) forgotten = co_await federation_.store().end_creation(topic_);
  if (forgotten) {
    federation_.store().release(topic_);
  } else {
    federation_.store().leave_unfinished(topic_, std::vector<std::string>{from_name_});
  }
}

asio::awaitable<void> TopicMover::run() {
  SLUICE_LOG(kInfo, "moving " << topic_ << " (" << partitions_ << " partitions) from member cluster " << from_name_
                              << " to " << to_name_);
  std::string failed = co_await create_copy();
  if (failed.empty()) failed = co_await read_bases();
  // Copy while clients go on writing to the old member, until nearly caught up.
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
    failed = co_await copy_rest();
  }
  if (failed.empty()) failed = co_await trim_copy();
  if (failed.empty()) failed = co_await copy_committed_offsets();
  if (failed.empty()) {
    const TopicPlacement* current = federation_.store().find(topic_);
    if (!current) {
      failed = "the topic left the map";
    } else {
      TopicPlacement moved = *current;
      for (auto& segment : moved.segments)
        if (segment.cluster == from_name_) {
          // The new member's offset o is the old member's o + bases_, which is federated o + bases_ + its base.
          std::vector<int64_t> bases(bases_.size());
          for (size_t p = 0; p < bases.size(); ++p) bases[p] = segment.offset_base(static_cast<int32_t>(p)) + bases_[p];
          segment.cluster = to_name_;
          segment.offset_bases = std::move(bases);
        }
      std::vector<std::string> old_part(1, from_name_);  // named: no braced temporary in a co_await (GCC 12)
      const bool written = co_await federation_.store().switch_placement(topic_, moved, old_part);
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
  SLUICE_LOG(kInfo, "moved " << topic_ << " from member cluster " << from_name_ << " to " << to_name_ << " ("
                             << state().batches_copied << " batches copied); deleting it on " << from_name_);
  co_await delete_old_part();
}

asio::awaitable<void> run_move(std::shared_ptr<TopicMover> mover) { co_await mover->run(); }

}  // namespace

std::string start_topic_move(Federation& federation, const std::string& topic, std::string from, const std::string& to) {
  const TopicPlacement* placement = federation.store().find(topic);
  if (!placement) return "topic " + topic + " is not in the federation's map";
  if (federation.store().reserved(topic)) return "topic " + topic + " is being created, deleted, changed or moved";
  if (from.empty()) {
    if (placement->segments.size() != 1) return "topic " + topic + " is split: say which member cluster (from=)";
    from = placement->segments[0].cluster;
  }
  const PlacementSegment* segment = placement->segment_on(from);
  if (!segment) return "topic " + topic + " has no partitions on member cluster " + from;
  MemberCluster* source = federation.member(from);
  MemberCluster* target = federation.member(to);
  if (!target) return "no member cluster " + to;
  if (!source || !source->healthy()) return "member cluster " + from + " is unhealthy";
  if (!target->healthy()) return "member cluster " + to + " is unhealthy";
  if (placement->on(to) || target->topic(topic)) return "member cluster " + to + " holds a topic " + topic + " already";
  federation.store().hold(topic);  // no deletion, change or second move meanwhile
  federation.moves()[topic] = Federation::TopicMove{from, to, "copying", false, 0};
  auto mover = std::make_shared<TopicMover>(federation, topic, from, to, segment->partitions);
  boost::asio::co_spawn(federation.executor(), run_move(std::move(mover)), boost::asio::detached);
  return "";
}

}  // namespace sluice::federation
