#include "federation/federation_store.h"

#include <charconv>
#include <filesystem>
#include <stdexcept>

#include "broker/async_event.h"
#include "broker/log.h"

namespace sluice::federation {
namespace {

constexpr std::string_view kTopicPrefix = "federation/topic/";
constexpr std::string_view kProducerBlockKey = "federation/producer-id-block-end";

// Commits one key (nullopt: erases it) durably on the writer's thread; false if it failed.
boost::asio::awaitable<bool> write(broker::StateWriter& writer, std::string key, std::optional<std::string> value) {
  broker::AsyncEvent written(writer.executor());
  bool ok = false;
  writer.apply({{std::move(key), std::move(value)}}, [&](bool result) {
    ok = result;
    written.set();
  });
  co_await written.wait_until(boost::asio::steady_timer::time_point::max());
  co_return ok;
}

}  // namespace

FederationStore::FederationStore(boost::asio::any_io_executor executor, const std::string& dir)
    : store_([&] {
        std::filesystem::create_directories(dir);
        return storage::StateStore::open(dir);
      }()),
      writer_(executor, *store_) {
  store_->scan(kTopicPrefix, [&](std::string_view key, std::string_view value) {
    const std::string topic(key.substr(kTopicPrefix.size()));
    if (auto placement = decode_placement(value)) {
      names_by_id_[placement->topic_id.bytes] = topic;
      topics_[topic] = std::move(*placement);
    }
    else
      SLUICE_LOG(kError, "the federation's map holds an unreadable placement for topic " << topic << ": ignored");
  });
  // Ids of the last block may have been handed out: the next block starts past it.
  if (auto end = store_->get(kProducerBlockKey)) {
    int64_t recorded = 0;
    auto [ptr, ec] = std::from_chars(end->data(), end->data() + end->size(), recorded);
    if (ec != std::errc() || ptr != end->data() + end->size() || recorded < kFirstProducerId)
      throw std::runtime_error("the federation's state holds an unreadable producer-id block end: " + *end);
    next_producer_id_ = producer_block_end_ = recorded;
  }
}

const TopicPlacement* FederationStore::find(std::string_view topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : &it->second;
}

const std::string* FederationStore::find_name(const protocol::Uuid& id) const {
  auto it = names_by_id_.find(id.bytes);
  return it == names_by_id_.end() ? nullptr : &it->second;
}

bool FederationStore::reserve(const std::string& topic) {
  if (topics_.count(topic) || reserved_.count(topic)) return false;
  reserved_.insert(topic);
  return true;
}

boost::asio::awaitable<bool> FederationStore::put(std::string topic, TopicPlacement placement) {
  const bool ok = co_await write(writer_, std::string(kTopicPrefix) + topic, encode_placement(placement));
  if (ok) {
    if (auto old = topics_.find(topic); old != topics_.end()) names_by_id_.erase(old->second.topic_id.bytes);
    names_by_id_[placement.topic_id.bytes] = topic;
    topics_[topic] = std::move(placement);
  }
  co_return ok;
}

boost::asio::awaitable<bool> FederationStore::erase(const std::string& topic) {
  const bool ok = co_await write(writer_, std::string(kTopicPrefix) + topic, std::nullopt);
  if (auto it = topics_.find(topic); ok && it != topics_.end()) {
    names_by_id_.erase(it->second.topic_id.bytes);
    topics_.erase(it);
  }
  co_return ok;
}

boost::asio::awaitable<std::optional<int64_t>> FederationStore::new_producer_id() {
  while (next_producer_id_ >= producer_block_end_) {
    // Callers meeting the same full block write the same new end: harmless.
    const int64_t end = producer_block_end_ + kProducerIdBlock;
    const bool ok = co_await write(writer_, std::string(kProducerBlockKey), std::to_string(end));
    if (!ok) co_return std::nullopt;
    producer_block_end_ = std::max(producer_block_end_, end);
  }
  co_return next_producer_id_++;
}

}  // namespace sluice::federation
