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
constexpr std::string_view kCreatingPrefix = "federation/creating/";

// Commits the changes (nullopt values erase) durably, in one transaction, on
// the writer's thread; false if they failed.
boost::asio::awaitable<bool> write(broker::StateWriter& writer, std::vector<storage::StateStore::Change> changes) {
  broker::AsyncEvent written(writer.executor());
  bool ok = false;
  writer.apply(std::move(changes), [&](bool result) {
    ok = result;
    written.set();
  });
  co_await written.wait_until(boost::asio::steady_timer::time_point::max());
  co_return ok;
}

boost::asio::awaitable<bool> write(broker::StateWriter& writer, std::string key, std::optional<std::string> value) {
  std::vector<storage::StateStore::Change> changes;
  changes.push_back({std::move(key), std::move(value)});
  co_return co_await write(writer, std::move(changes));
}

// A creation's member clusters, comma-separated.
std::vector<std::string> split_names(std::string_view value) {
  std::vector<std::string> names;
  while (!value.empty()) {
    const size_t comma = value.find(',');
    names.emplace_back(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
  }
  return names;
}

}  // namespace

std::string left_part(const std::string& cluster, int32_t partition) {
  return partition < 0 ? cluster : cluster + ":" + std::to_string(partition);
}

std::optional<std::pair<std::string, int32_t>> parse_left_part(std::string_view part) {
  const size_t colon = part.find(':');
  if (colon == std::string_view::npos) return std::pair(std::string(part), int32_t{-1});
  int32_t partition = -1;
  const std::string_view digits = part.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), partition);
  if (colon == 0 || ec != std::errc() || ptr != digits.data() + digits.size() || partition < 0) return std::nullopt;
  return std::pair(std::string(part.substr(0, colon)), partition);
}

FederationStore::FederationStore(boost::asio::any_io_executor executor, const std::string& dir)
    : executor_(executor),
      store_([&] {
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
  // Creations a stop interrupted: undone by the federation (unfinished_creations), held until then.
  store_->scan(kCreatingPrefix, [&](std::string_view key, std::string_view value) {
    const std::string topic(key.substr(kCreatingPrefix.size()));
    unfinished_[topic] = split_names(value);
    reserved_.insert(topic);
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

boost::asio::awaitable<bool> FederationStore::begin_creation(std::string topic, std::vector<std::string> clusters) {
  std::string value;
  for (const auto& c : clusters) value += (value.empty() ? "" : ",") + c;
  co_return co_await write(writer_, std::string(kCreatingPrefix) + topic, value);
}

boost::asio::awaitable<bool> FederationStore::end_creation(std::string topic) {
  const bool ok = co_await write(writer_, std::string(kCreatingPrefix) + topic, std::nullopt);
  if (ok) unfinished_.erase(topic);
  co_return ok;
}

void FederationStore::leave_unfinished(const std::string& topic, std::vector<std::string> clusters) {
  unfinished_[topic] = std::move(clusters);
  reserved_.insert(topic);
}

boost::asio::awaitable<bool> FederationStore::put(std::string topic, TopicPlacement placement) {
  co_return co_await put_with_creation(std::move(topic), std::move(placement), std::nullopt);
}

boost::asio::awaitable<bool> FederationStore::switch_placement(std::string topic, TopicPlacement placement,
                                                               std::vector<std::string> left) {
  std::optional<std::string> creating;  // none left to delete: the record erased, as put() does
  for (const auto& c : left) creating = (creating ? *creating + "," : std::string()) + c;
  co_return co_await put_with_creation(std::move(topic), std::move(placement), std::move(creating));
}

boost::asio::awaitable<bool> FederationStore::put_with_creation(std::string topic, TopicPlacement placement,
                                                                std::optional<std::string> creating) {
  // The placement, and the creation record (ended, or rewritten), at once.
  std::vector<storage::StateStore::Change> changes;
  changes.push_back({std::string(kTopicPrefix) + topic, encode_placement(placement)});
  changes.push_back({std::string(kCreatingPrefix) + topic, std::move(creating)});
  const bool ok = co_await write(writer_, std::move(changes));
  if (ok) {
    if (auto old = topics_.find(topic); old != topics_.end()) names_by_id_.erase(old->second.topic_id.bytes);
    names_by_id_[placement.topic_id.bytes] = topic;
    topics_[topic] = std::move(placement);
    ++placements_changed_;
  }
  co_return ok;
}

boost::asio::awaitable<bool> FederationStore::erase(const std::string& topic) {
  const bool ok = co_await write(writer_, std::string(kTopicPrefix) + topic, std::nullopt);
  if (auto it = topics_.find(topic); ok && it != topics_.end()) {
    names_by_id_.erase(it->second.topic_id.bytes);
    topics_.erase(it);
    ++placements_changed_;
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

void FederationStore::release(const std::string& topic) {
  reserved_.erase(topic);
  auto [first, last] = release_waiters_.equal_range(topic);
  for (auto it = first; it != last; ++it) it->second->set();
}

boost::asio::awaitable<bool> FederationStore::wait_released(std::string topic,
                                                            std::chrono::steady_clock::time_point deadline,
                                                            std::function<bool()> hopeless) {
  while (reserved(topic)) {
    if (std::chrono::steady_clock::now() >= deadline || unfinished_.count(topic) || (hopeless && hopeless()))
      co_return false;
    broker::AsyncEvent released(executor_);
    // (A wait ends only by its timer: the frames go only when the io_context
    // does, after this store.)
    const auto waiting = release_waiters_.emplace(topic, &released);
    co_await released.wait_until(deadline);
    release_waiters_.erase(waiting);
  }
  co_return true;
}

}  // namespace sluice::federation
