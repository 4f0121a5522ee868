#include "federation/map_log.h"

#include <chrono>
#include <list>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/log.h"
#include "federation/federation.h"
#include "federation/handlers/forward.h"
#include "protocol/error_codes.h"
#include "protocol/messages/create_topics_request.h"
#include "protocol/messages/create_topics_response.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"
#include "protocol/messages/produce_request.h"
#include "protocol/messages/produce_response.h"
#include "protocol/record_batch.h"

namespace sluice::federation {
namespace {

namespace asio = boost::asio;
using protocol::ErrorCode;
using Creation = Forwarded<protocol::CreateTopicsRequest, protocol::CreateTopicsResponse>;
using Read = Forwarded<protocol::FetchRequest, protocol::FetchResponse>;
using Append = Forwarded<protocol::ProduceRequest, protocol::ProduceResponse>;

constexpr int16_t kCreateVersion = 7;
constexpr int16_t kFetchVersion = 12;
constexpr int16_t kProduceVersion = 9;
constexpr int32_t kPollMs = 500;
constexpr int32_t kReadBytes = 4 << 20;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

MapLog::MapLog(Federation& federation, MemberCluster& home)
    : federation_(federation),
      home_(home),
      append_links_(federation.executor()),
      fetch_links_(federation.executor()) {}

asio::awaitable<void> MapLog::pause(std::chrono::milliseconds how_long) {
  asio::steady_timer timer(federation_.executor());
  timer.expires_after(how_long);
  co_await timer.async_wait(asio::use_awaitable);
}

void MapLog::failed(const std::string& why) {
  if (why != last_error_) SLUICE_LOG(kWarn, "the federation's map log on member cluster " << home_.name() << ": " << why);
  last_error_ = why;
}

asio::awaitable<FederationStore::Appended> MapLog::append(std::string value) {
  using Appended = FederationStore::Appended;
  Append a;
  a.member = &home_;
  a.node = home_.leader_of(kTopic, 0);
  if (a.node < 0) {
    home_.request_refresh();
    co_return Appended{Appended::kNotWritten};
  }
  std::vector<protocol::KeyedRecord> records(1);
  records[0].value = std::move(value);
  const std::string batch = protocol::build_keyed_record_batch(0, -1, now_ms(), records);
  a.request.acks = -1;
  a.request.timeout_ms = static_cast<int32_t>(federation_.config().request_timeout_ms);
  auto& topic = a.request.topic_data.emplace_back();
  topic.name = std::string(kTopic);
  topic.partition_data.push_back({0, protocol::Records(std::string_view(batch))});
  co_await forward_one(a, kProduceVersion, std::chrono::milliseconds(2 * federation_.config().request_timeout_ms),
                       append_links_);
  if (!a.reply) {
    failed("an append went unanswered: " + a.failure);
    co_return Appended{Appended::kUnknown};
  }
  for (const auto& t : a.reply->body.responses)
    for (const auto& r : t.partition_responses) {
      if (r.error_code == 0) co_return Appended{Appended::kWritten, r.base_offset};
      failed("an append was refused: " + std::string(protocol::error_name(static_cast<ErrorCode>(r.error_code))));
      home_.request_refresh();
      // Even a refusal may come after the leader wrote it (NOT_LEADER_OR_FOLLOWER for an acks=all
      // append waiting when leadership moved, and a follower that has it may be the new leader):
      // the barrier settles it.
      co_return Appended{Appended::kUnknown};
    }
  co_return Appended{Appended::kUnknown};
}

asio::awaitable<bool> MapLog::ensure_topic() {
  if (home_.topic(kTopic)) co_return true;
  Creation c;
  c.member = &home_;
  c.node = home_.any_node();
  if (c.node < 0) {
    failed("member cluster " + home_.name() + " is unhealthy");
    co_return false;
  }
  auto& wanted = c.request.topics.emplace_back();
  wanted.name = std::string(kTopic);
  wanted.num_partitions = 1;
  wanted.replication_factor = static_cast<int16_t>(std::min<size_t>(3, std::max<size_t>(1, home_.broker_count())));
  wanted.configs.push_back({"cleanup.policy", "delete"});
  wanted.configs.push_back({"compression.type", "uncompressed"});  // records are read uncompressed, as written
  wanted.configs.push_back({"retention.ms", "-1"});
  wanted.configs.push_back({"retention.bytes", "-1"});
  c.request.timeout_ms = 30000;
  co_await forward_one(c, kCreateVersion, std::chrono::milliseconds(30000 + federation_.config().request_timeout_ms),
                       append_links_);
  if (!c.reply || c.reply->body.topics.empty()) {
    failed("creating the topic went unanswered: " + c.failure);
    co_return false;
  }
  const int16_t error = c.reply->body.topics[0].error_code;
  if (error != 0 && error != static_cast<int16_t>(ErrorCode::kTopicAlreadyExists)) {
    failed("creating the topic was refused: " + std::string(protocol::error_name(static_cast<ErrorCode>(error))));
    co_return false;
  }
  if (error == 0) SLUICE_LOG(kInfo, "created the federation's map log " << kTopic << " on member cluster " << home_.name());
  home_.request_refresh();
  co_return true;
}

asio::awaitable<void> MapLog::follow() {
  FederationStore& store = federation_.store();
  while (!co_await ensure_topic()) co_await pause(std::chrono::seconds(1));
  for (;;) {
    Read r;
    r.member = &home_;
    r.node = home_.leader_of(kTopic, 0);
    if (r.node < 0) {
      home_.request_refresh();
      co_await pause(std::chrono::milliseconds(100));
      continue;
    }
    const int64_t from = store.applied_end();
    r.request.max_wait_ms = caught_up_ ? kPollMs : 0;
    r.request.min_bytes = 1;
    r.request.max_bytes = kReadBytes;
    r.request.session_epoch = -1;  // sessionless
    auto& topic = r.request.topics.emplace_back();
    topic.topic = std::string(kTopic);
    auto& partition = topic.partitions.emplace_back();
    partition.partition = 0;
    partition.fetch_offset = from;
    partition.partition_max_bytes = kReadBytes;
    co_await forward_one(r, kFetchVersion,
                         std::chrono::milliseconds(kPollMs + federation_.config().request_timeout_ms), fetch_links_);
    if (!r.reply || r.reply->body.responses.empty() || r.reply->body.responses[0].partitions.empty()) {
      failed("a read went unanswered: " + r.failure);
      co_await pause(std::chrono::milliseconds(200));
      continue;
    }
    const auto& p = r.reply->body.responses[0].partitions[0];
    if (p.error_code == static_cast<int16_t>(ErrorCode::kOffsetOutOfRange)) {
      // The log lost what this endpoint applied (the topic was deleted and
      // made again, or trimmed): the map cannot be trusted, and nothing more
      // is read, ever (a log made again that grew past this offset would be
      // another map); an operator restarts the endpoint with an empty log.dirs.
      for (;;) {
        SLUICE_LOG(kError, "the federation's map log on member cluster "
                               << home_.name() << " does not hold offset " << from
                               << ", where this endpoint reads from: it was deleted or trimmed; the map is no longer "
                                  "read (restart this endpoint with an empty log.dirs to read it whole again)");
        co_await pause(std::chrono::minutes(1));
      }
    }
    if (p.error_code != 0) {
      failed("a read was refused: " + std::string(protocol::error_name(static_cast<ErrorCode>(p.error_code))));
      home_.request_refresh();
      co_await pause(std::chrono::seconds(1));
      continue;
    }
    last_error_.clear();
    std::vector<std::pair<int64_t, std::string>> records;
    int64_t next = from;
    bool stuck = false;
    std::string_view rest = p.records && p.records->in_memory() ? p.records->bytes() : std::string_view();
    // Complete batches only (a read may end inside one).
    while (auto header = protocol::RecordBatchHeader::parse(rest)) {
      if (header->batch_length < 0 || header->total_size() > rest.size()) break;
      const std::string_view bytes = rest.substr(0, header->total_size());
      rest.remove_prefix(header->total_size());
      if (header->last_offset() < from) continue;
      if (!header->is_control()) {
        // One that cannot be read stops the reading there (skipped, this
        // endpoint's map would differ from the others'): read again later.
        bool readable = true;
        try {
          protocol::visit_records(bytes, [&](int64_t offset, std::optional<std::string_view>,
                                             std::optional<std::string_view> value) {
            if (offset >= from && value) records.emplace_back(offset, std::string(*value));
          });
        } catch (const std::exception& e) {
          failed("the batch at offset " + std::to_string(header->base_offset) + " cannot be read (" + e.what() +
                 "): nothing past it is applied");
          readable = false;
        }
        if (!readable) {
          std::erase_if(records, [&](const auto& r) { return r.first >= header->base_offset; });
          stuck = true;
          break;
        }
      }
      next = header->last_offset() + 1;
    }
    if (next > from) store.apply_log(records, next);
    if (stuck) co_await pause(std::chrono::seconds(1));
    if (!caught_up_ && store.applied_end() >= p.high_watermark) {
      caught_up_ = true;
      SLUICE_LOG(kInfo, "read the federation's map log on member cluster " << home_.name() << " to its end (offset "
                                                                            << store.applied_end() << ")");
    }
  }
}

}  // namespace sluice::federation
