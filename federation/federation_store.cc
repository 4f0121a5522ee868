#include "federation/federation_store.h"

#include <charconv>
#include <filesystem>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/async_event.h"
#include "broker/log.h"
#include "protocol/wire.h"

namespace sluice::federation {
namespace {

constexpr std::string_view kTopicPrefix = "federation/topic/";
constexpr std::string_view kProducerBlockKey = "federation/producer-id-block-end";
constexpr std::string_view kCreatingPrefix = "federation/creating/";
// Shared map only: which endpoint holds a topic ("<node.id> <incarnation>.
// <sequence>", the record that took the hold), and the map-log offset the
// cache reached.
constexpr std::string_view kHeldPrefix = "federation/held/";
constexpr std::string_view kAppliedEndKey = "federation/map-applied-end";
// A move's switch: `frozen/<topic>` = "<freeze id> <member>,<member>...",
// `frozen-ack/<topic>/<endpoint>` = the acks=1 ends (FORMATS.md).
constexpr std::string_view kFrozenPrefix = "federation/frozen/";
constexpr std::string_view kFrozenAckPrefix = "federation/frozen-ack/";
constexpr std::string_view kMapPrefix = "federation/";
// The last record applied of each writer: "<incarnation> <sequence>".
constexpr std::string_view kWriterPrefix = "federation/writer/";
constexpr int8_t kRecordVersion = 1;

// One map-log record (FORMATS.md, "The federation's map log").
struct MapRecord {
  int32_t endpoint = 0;
  int64_t incarnation = 0;
  int64_t sequence = 0;
  std::vector<std::pair<std::string, std::optional<std::string>>> conditions;
  std::vector<storage::StateStore::Change> changes;
};

std::string encode_record(const MapRecord& r) {
  protocol::Writer w;
  w.write_int8(kRecordVersion);
  w.write_int32(r.endpoint);
  w.write_int64(r.incarnation);
  w.write_int64(r.sequence);
  w.write_int32(static_cast<int32_t>(r.conditions.size()));
  for (const auto& [key, value] : r.conditions) {
    w.write_string(key);
    w.write_nullable_string(value);
  }
  w.write_int32(static_cast<int32_t>(r.changes.size()));
  for (const auto& change : r.changes) {
    w.write_string(change.key);
    w.write_nullable_string(change.value);
  }
  return std::move(w.buffer());
}

// nullopt for bytes that are not a record of a version this build reads.
std::optional<MapRecord> decode_record(std::string_view bytes) {
  try {
    protocol::Reader r(bytes);
    if (r.read_int8() != kRecordVersion) return std::nullopt;
    MapRecord record;
    record.endpoint = r.read_int32();
    record.incarnation = r.read_int64();
    record.sequence = r.read_int64();
    const int32_t conditions = r.read_array_length(4);
    for (int32_t i = 0; i < conditions; ++i) {
      std::string key = r.read_string();
      record.conditions.emplace_back(std::move(key), r.read_nullable_string());
    }
    const int32_t changes = r.read_array_length(4);
    for (int32_t i = 0; i < changes; ++i) {
      std::string key = r.read_string();
      record.changes.push_back({std::move(key), r.read_nullable_string()});
    }
    return record;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<int64_t> parse_int64(std::string_view text) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

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
  shared_cache_ = store_->get(kAppliedEndKey).has_value();
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

bool FederationStore::reserved(std::string_view topic) const {
  if (reserved_.find(topic) != reserved_.end()) return true;
  return sharing_ && applied_.count(std::string(kHeldPrefix) + std::string(topic));
}

boost::asio::awaitable<bool> FederationStore::reserve(std::string topic) {
  if (topics_.count(topic) || reserved(topic)) co_return false;
  if (!sharing_) {
    reserved_.insert(topic);
    co_return true;
  }
  co_return co_await take_hold(topic);
}

boost::asio::awaitable<bool> FederationStore::take_hold(const std::string& topic) {
  // The placement the caller read (or its absence) is still the map's when the hold takes effect.
  std::vector<Condition> conditions{unchanged(std::string(kTopicPrefix) + topic),
                                    unchanged(std::string(kHeldPrefix) + topic)};
  const int64_t sequence = next_sequence();
  const std::string value =
      std::to_string(sharing_->endpoint) + " " + std::to_string(incarnation_) + "." + std::to_string(sequence);
  Changes changes;
  changes.push_back({std::string(kHeldPrefix) + topic, value});
  const bool taken = co_await commit(std::move(conditions), std::move(changes), sequence);
  if (taken) my_holds_[topic] = value;
  co_return taken;
}

boost::asio::awaitable<bool> FederationStore::hold(std::string topic) {
  if (!sharing_) {
    reserved_.insert(topic);
    co_return true;
  }
  if (reserved(topic)) co_return false;
  co_return co_await take_hold(topic);
}

boost::asio::awaitable<bool> FederationStore::begin_creation(std::string topic, std::vector<std::string> clusters) {
  std::string value;
  for (const auto& c : clusters) value += (value.empty() ? "" : ",") + c;
  if (sharing_) {
    Changes changes;
    changes.push_back({std::string(kCreatingPrefix) + topic, value});
    std::vector<Condition> conditions{held_by_me(topic)};
    co_return co_await commit(std::move(conditions), std::move(changes));
  }
  co_return co_await write(writer_, std::string(kCreatingPrefix) + topic, value);
}

boost::asio::awaitable<bool> FederationStore::end_creation(std::string topic) {
  bool ok = false;
  if (sharing_) {
    Changes changes;
    changes.push_back({std::string(kCreatingPrefix) + topic, std::nullopt});
    std::vector<Condition> conditions{held_by_me(topic)};
    ok = co_await commit(std::move(conditions), std::move(changes));
  } else {
    ok = co_await write(writer_, std::string(kCreatingPrefix) + topic, std::nullopt);
  }
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
  if (sharing_) {
    // A move's switch requires its freeze to be in force still (another endpoint may have ended
    // a freeze that lasted too long, and written again to the old member), and ends it.
    auto freeze = my_freezes_.find(topic);
    std::vector<Condition> conditions{
        held_by_me(topic), Condition{std::string(kFrozenPrefix) + topic,
                                     freeze == my_freezes_.end() ? std::nullopt : std::optional<std::string>(freeze->second)}};
    add_thaw(topic, changes);
    my_freezes_.erase(topic);  // over either way: switched, or ended by another endpoint
    co_return co_await commit(std::move(conditions), std::move(changes));  // applied by apply_change
  }
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
  if (sharing_) {
    Changes changes;
    changes.push_back({std::string(kTopicPrefix) + topic, std::nullopt});
    std::vector<Condition> conditions{held_by_me(topic)};
    co_return co_await commit(std::move(conditions), std::move(changes));
  }
  const bool ok = co_await write(writer_, std::string(kTopicPrefix) + topic, std::nullopt);
  if (auto it = topics_.find(topic); ok && it != topics_.end()) {
    names_by_id_.erase(it->second.topic_id.bytes);
    topics_.erase(it);
    ++placements_changed_;
  }
  co_return ok;
}

boost::asio::awaitable<std::optional<int64_t>> FederationStore::new_producer_id() {
  if (sharing_) {
    // A block claimed in the log: the record that moves the end from the end
    // this endpoint applied wins it (another endpoint's claim in between
    // makes it change nothing, and the next try claims the block after).
    for (int attempt = 0; next_producer_id_ >= my_block_end_; ++attempt) {
      if (attempt == 5) co_return std::nullopt;
      const int64_t start = producer_block_end_;
      Changes changes;
      changes.push_back({std::string(kProducerBlockKey), std::to_string(start + kProducerIdBlock)});
      std::vector<Condition> conditions{unchanged(std::string(kProducerBlockKey))};
      const bool won = co_await commit(std::move(conditions), std::move(changes));
      if (won && next_producer_id_ >= my_block_end_) {  // (a concurrent caller may have claimed one meanwhile)
        next_producer_id_ = start;
        my_block_end_ = start + kProducerIdBlock;
      }
    }
    co_return next_producer_id_++;
  }
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
  if (sharing_) {  // the waiters are woken when the release is applied
    auto mine = my_holds_.find(topic);
    if (mine == my_holds_.end()) return;  // none taken (a validation; a hold refused)
    boost::asio::co_spawn(executor_, release_shared(topic, mine->second), boost::asio::detached);
    my_holds_.erase(mine);
    return;
  }
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

// --- The shared map ---

void FederationStore::share(Sharing sharing) {
  const auto applied_end = store_->get(kAppliedEndKey);
  if (!applied_end && (!topics_.empty() || !unfinished_.empty() || store_->get(kProducerBlockKey)))
    throw std::runtime_error(
        "the federation's state in this directory was kept by one endpoint alone (no federation.map.cluster): "
        "it cannot become a shared map; start this endpoint with an empty log.dirs, or without federation.map.cluster");
  sharing_ = std::move(sharing);
  incarnation_ = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  // The typed views are rebuilt from the cache's keys, as the log made them.
  topics_.clear();
  names_by_id_.clear();
  unfinished_.clear();
  reserved_.clear();
  producer_block_end_ = next_producer_id_ = kFirstProducerId;
  if (applied_end) {
    const auto end = parse_int64(*applied_end);
    if (!end || *end < 0) throw std::runtime_error("the federation's map cache holds an unreadable log offset: " + *applied_end);
    applied_end_ = *end;
  }
  std::vector<std::pair<std::string, std::string>> cached;
  store_->scan(kMapPrefix, [&](std::string_view key, std::string_view value) {
    if (key != kAppliedEndKey) cached.emplace_back(key, value);
  });
  for (auto& [key, value] : cached) apply_change(key, value);
}

FederationStore::Condition FederationStore::unchanged(const std::string& key) const {
  auto it = applied_.find(key);
  return Condition{key, it == applied_.end() ? std::nullopt : std::optional<std::string>(it->second)};
}

FederationStore::Condition FederationStore::held_by_me(const std::string& topic) const {
  auto mine = my_holds_.find(topic);
  // Not held here: a value no hold has (holds begin with a node.id).
  return Condition{std::string(kHeldPrefix) + topic, mine == my_holds_.end() ? std::string("-") : mine->second};
}

bool FederationStore::fenced(int32_t endpoint, int64_t incarnation, int64_t sequence) const {
  auto last = applied_.find(std::string(kWriterPrefix) + std::to_string(endpoint));
  if (last == applied_.end()) return false;
  const size_t space = last->second.find(' ');
  const auto last_incarnation = parse_int64(std::string_view(last->second).substr(0, space));
  const auto last_sequence =
      space == std::string::npos ? std::nullopt : parse_int64(std::string_view(last->second).substr(space + 1));
  if (!last_incarnation || !last_sequence) return false;
  return incarnation < *last_incarnation || (incarnation == *last_incarnation && sequence <= *last_sequence);
}

void FederationStore::apply_change(const std::string& key, const std::optional<std::string>& value) {
  if (value)
    applied_[key] = *value;
  else
    applied_.erase(key);
  const std::string_view k(key);
  if (k.starts_with(kTopicPrefix)) {
    const std::string topic(k.substr(kTopicPrefix.size()));
    auto old = topics_.find(topic);
    if (old != topics_.end()) names_by_id_.erase(old->second.topic_id.bytes);
    std::optional<TopicPlacement> placement = value ? decode_placement(*value) : std::nullopt;
    if (value && !placement) SLUICE_LOG(kError, "the federation's map log holds an unreadable placement for topic " << topic << ": ignored");
    if (placement) {
      names_by_id_[placement->topic_id.bytes] = topic;
      TopicPlacement& now = topics_[topic] = std::move(*placement);
      if (on_placement_changed) on_placement_changed(topic, &now);
    } else if (old != topics_.end()) {
      topics_.erase(old);
      if (on_placement_changed) on_placement_changed(topic, nullptr);
    }
    ++placements_changed_;
  } else if (k.starts_with(kCreatingPrefix)) {
    // A creation this endpoint is to finish follows its record (a move's switch rewrites it).
    const std::string topic(k.substr(kCreatingPrefix.size()));
    if (auto unfinished = unfinished_.find(topic); unfinished != unfinished_.end()) {
      if (value)
        unfinished->second = split_names(*value);
      else
        unfinished_.erase(unfinished);
    }
  } else if (k.starts_with(kHeldPrefix)) {
    if (!value) {
      auto [first, last] = release_waiters_.equal_range(k.substr(kHeldPrefix.size()));
      for (auto it = first; it != last; ++it) it->second->set();
    }
  } else if (k.starts_with(kFrozenPrefix)) {
    if (value && on_frozen) on_frozen(std::string(k.substr(kFrozenPrefix.size())), *value);
  } else if (k == kProducerBlockKey) {
    const auto end = value ? parse_int64(*value) : std::nullopt;
    if (end && *end > producer_block_end_) producer_block_end_ = *end;
  }
}

void FederationStore::apply_log(const std::vector<std::pair<int64_t, std::string>>& records, int64_t next) {
  Changes cached;
  for (const auto& [offset, bytes] : records) {
    if (offset < applied_end_) continue;  // read again
    const auto record = decode_record(bytes);
    if (!record) SLUICE_LOG(kError, "the federation's map log holds an unreadable record at offset " << offset << ": ignored");
    bool holds = record && !fenced(record->endpoint, record->incarnation, record->sequence);
    if (holds) {
      // Seen: this writer's earlier records that come after it are fenced.
      const std::string writer = std::string(kWriterPrefix) + std::to_string(record->endpoint);
      const std::string last = std::to_string(record->incarnation) + " " + std::to_string(record->sequence);
      apply_change(writer, last);
      cached.push_back({writer, last});
    }
    if (holds)
      for (const auto& [key, expected] : record->conditions) {
        auto it = applied_.find(key);
        const bool present = it != applied_.end();
        holds = holds && present == expected.has_value() && (!present || it->second == *expected);
      }
    if (holds)
      for (const auto& change : record->changes) {
        apply_change(change.key, change.value);
        cached.push_back(change);
      }
    if (record && sharing_ && record->endpoint == sharing_->endpoint && record->incarnation == incarnation_)
      if (auto waiting = outcomes_.find(record->sequence); waiting != outcomes_.end()) waiting->second = holds;
  }
  if (next <= applied_end_) return;
  applied_end_ = next;
  // The cache follows in order (a failed commit stops the later ones: no
  // hole); the log, not the cache, is what the change's durability rests on.
  cached.push_back({std::string(kAppliedEndKey), std::to_string(next)});
  writer_.apply(std::move(cached), {}, cache_chain_);
  for (auto* waiter : apply_waiters_) waiter->set();
}

boost::asio::awaitable<bool> FederationStore::commit(std::vector<Condition> conditions, Changes changes,
                                                     int64_t sequence) {
  MapRecord record;
  record.endpoint = sharing_->endpoint;
  record.incarnation = incarnation_;
  record.sequence = sequence > 0 ? sequence : next_sequence();
  for (auto& c : conditions) record.conditions.emplace_back(std::move(c.key), std::move(c.value));
  record.changes = std::move(changes);
  const int64_t mine = record.sequence;
  outcomes_[mine] = std::nullopt;
  boost::asio::steady_timer pause(executor_);
  Appended appended = co_await sharing_->append(encode_record(record));
  if (appended.state == Appended::kNotWritten) {
    outcomes_.erase(mine);
    co_return false;
  }
  // Not known whether it was written: a barrier after it settles it. Until one
  // is written the outcome stays open, so this waits (the member is down).
  for (auto delay = std::chrono::milliseconds(100); appended.state != Appended::kWritten;
       delay = std::min(delay * 2, std::chrono::milliseconds(2000))) {
    pause.expires_after(delay);
    co_await pause.async_wait(boost::asio::use_awaitable);
    MapRecord barrier;
    barrier.endpoint = sharing_->endpoint;
    barrier.incarnation = incarnation_;
    barrier.sequence = next_sequence();
    appended = co_await sharing_->append(encode_record(barrier));
  }
  // In the log at a known offset: its fate is decided there, once it is read.
  auto waited = std::chrono::steady_clock::now();
  while (applied_end_ <= appended.offset) {
    broker::AsyncEvent applied(executor_);
    apply_waiters_.push_back(&applied);
    co_await applied.wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(10));
    std::erase(apply_waiters_, &applied);
    if (applied_end_ <= appended.offset && std::chrono::steady_clock::now() - waited > std::chrono::seconds(30)) {
      SLUICE_LOG(kWarn, "a change of the federation's map, at offset " << appended.offset
                                                                       << " of its log, is still not read back");
      waited = std::chrono::steady_clock::now();
    }
  }
  const std::optional<bool> outcome = outcomes_[mine];
  outcomes_.erase(mine);
  co_return outcome.value_or(false);  // never seen before the barrier: fenced for good
}

boost::asio::awaitable<void> FederationStore::release_shared(std::string topic, std::string hold) {
  boost::asio::steady_timer pause(executor_);
  const std::string key = std::string(kHeldPrefix) + topic;
  for (;;) {
    auto it = applied_.find(key);
    if (it == applied_.end() || it->second != hold) co_return;  // not that hold (any more)
    Changes changes;
    changes.push_back({key, std::nullopt});
    add_thaw(topic, changes);  // a freeze never outlives its holder's hold
    std::vector<Condition> conditions{Condition{key, hold}};
    if (co_await commit(std::move(conditions), std::move(changes))) co_return;
    pause.expires_after(std::chrono::seconds(1));
    co_await pause.async_wait(boost::asio::use_awaitable);
  }
}

void FederationStore::add_thaw(const std::string& topic, Changes& changes) const {
  const std::string frozen = std::string(kFrozenPrefix) + topic;
  if (applied_.count(frozen)) changes.push_back({frozen, std::nullopt});
  const std::string acks = std::string(kFrozenAckPrefix) + topic + "/";
  for (auto it = applied_.lower_bound(acks); it != applied_.end() && it->first.starts_with(acks); ++it)
    changes.push_back({it->first, std::nullopt});
}

boost::asio::awaitable<bool> FederationStore::freeze(std::string topic, std::vector<std::string> sources) {
  const int64_t sequence = next_sequence();
  std::string value = std::to_string(incarnation_) + "." + std::to_string(sequence) + " ";
  for (size_t i = 0; i < sources.size(); ++i) value += (i ? "," : "") + sources[i];
  Changes changes;
  add_thaw(topic, changes);  // a freeze left by an earlier attempt, with its acknowledgements
  changes.push_back({std::string(kFrozenPrefix) + topic, value});
  std::vector<Condition> conditions{held_by_me(topic)};
  const bool frozen = co_await commit(std::move(conditions), std::move(changes), sequence);
  if (frozen) my_freezes_[topic] = value;
  co_return frozen;
}

std::vector<std::string> FederationStore::frozen_sources(std::string_view topic) const {
  if (!sharing_) return {};
  auto it = applied_.find(std::string(kFrozenPrefix) + std::string(topic));
  if (it == applied_.end()) return {};
  const size_t space = it->second.find(' ');
  return space == std::string::npos ? std::vector<std::string>() : split_names(std::string_view(it->second).substr(space + 1));
}

std::optional<std::string> FederationStore::frozen_value(std::string_view topic) const {
  auto it = applied_.find(std::string(kFrozenPrefix) + std::string(topic));
  return it == applied_.end() ? std::nullopt : std::optional<std::string>(it->second);
}

boost::asio::awaitable<bool> FederationStore::end_stale_freeze(std::string topic, std::string freeze) {
  Changes changes;
  add_thaw(topic, changes);
  std::vector<Condition> conditions{Condition{std::string(kFrozenPrefix) + topic, std::move(freeze)}};
  co_return co_await commit(std::move(conditions), std::move(changes));
}

boost::asio::awaitable<bool> FederationStore::acknowledge_freeze(std::string topic, std::string freeze,
                                                                 std::vector<AcknowledgedEnd> acknowledged) {
  // "<member>:<partition>:<end>,..." (FORMATS.md); a member name has no ':' or ','.
  std::string ends;
  for (const auto& a : acknowledged)
    ends += (ends.empty() ? "" : ",") + a.member + ":" + std::to_string(a.partition) + ":" + std::to_string(a.end);
  Changes changes;
  changes.push_back({std::string(kFrozenAckPrefix) + topic + "/" + std::to_string(sharing_->endpoint), std::move(ends)});
  std::vector<Condition> conditions{Condition{std::string(kFrozenPrefix) + topic, std::move(freeze)}};
  co_return co_await commit(std::move(conditions), std::move(changes));
}

std::map<int32_t, std::vector<FederationStore::AcknowledgedEnd>> FederationStore::freeze_acknowledgements(
    std::string_view topic) const {
  std::map<int32_t, std::vector<AcknowledgedEnd>> out;
  const std::string acks = std::string(kFrozenAckPrefix) + std::string(topic) + "/";
  for (auto it = applied_.lower_bound(acks); it != applied_.end() && it->first.starts_with(acks); ++it) {
    const auto endpoint = parse_int64(std::string_view(it->first).substr(acks.size()));
    if (!endpoint) continue;
    auto& ends = out[static_cast<int32_t>(*endpoint)];
    for (const auto& item : split_names(it->second)) {
      const size_t first = item.find(':'), last = item.rfind(':');
      if (first == std::string::npos || first == last) continue;
      const auto partition = parse_int64(std::string_view(item).substr(first + 1, last - first - 1));
      const auto end = parse_int64(std::string_view(item).substr(last + 1));
      if (partition && end) ends.push_back({item.substr(0, first), static_cast<int32_t>(*partition), *end});
    }
  }
  return out;
}

boost::asio::awaitable<bool> FederationStore::thaw(std::string topic) {
  my_freezes_.erase(topic);
  Changes changes;
  add_thaw(topic, changes);
  if (changes.empty()) co_return true;
  std::vector<Condition> conditions{held_by_me(topic)};
  co_return co_await commit(std::move(conditions), std::move(changes));
}

boost::asio::awaitable<void> FederationStore::start_writing() {
  // Past the earlier runs' incarnations even if the clock went back since.
  int64_t after = incarnation_;
  if (auto last = applied_.find(std::string(kWriterPrefix) + std::to_string(sharing_->endpoint)); last != applied_.end())
    if (auto earlier = parse_int64(std::string_view(last->second).substr(0, last->second.find(' '))))
      after = std::max(after, *earlier + 1);
  if (after != incarnation_) sequence_ = 0;
  incarnation_ = after;
  // A barrier: the earlier run's appends still in flight are fenced once it is applied.
  std::vector<Condition> none;  // named: no braced temporary in a co_await (GCC 12)
  Changes nothing;
  co_await commit(std::move(none), std::move(nothing));
  recover_own_holds();
}

void FederationStore::recover_own_holds() {
  const std::string mine = std::to_string(sharing_->endpoint) + " ";
  std::vector<std::string> ended;
  for (auto it = applied_.lower_bound(kHeldPrefix); it != applied_.end() && std::string_view(it->first).starts_with(kHeldPrefix); ++it) {
    if (!it->second.starts_with(mine)) continue;  // another endpoint's
    const std::string topic = it->first.substr(kHeldPrefix.size());
    const size_t dot = it->second.find('.');
    const auto incarnation = parse_int64(std::string_view(it->second).substr(mine.size(), dot == std::string::npos ? 0 : dot - mine.size()));
    if (my_holds_.count(topic) || incarnation == incarnation_) continue;  // taken by this run
    my_holds_[topic] = it->second;  // an earlier run's: this run finishes it
    // A move's switch this endpoint was in: its copy is deleted, and clients write again at once.
    if (applied_.count(std::string(kFrozenPrefix) + topic))
      boost::asio::co_spawn(executor_, [this, topic]() -> boost::asio::awaitable<void> { co_await thaw(topic); },
                            boost::asio::detached);
    auto creating = applied_.find(std::string(kCreatingPrefix) + topic);
    if (creating != applied_.end())
      unfinished_[topic] = split_names(creating->second);  // finished by the federation, then released
    else
      ended.push_back(topic);
  }
  for (const auto& topic : ended) {
    SLUICE_LOG(kInfo, "topic " << topic << " was held by this endpoint when it stopped: released");
    release(topic);
  }
}

}  // namespace sluice::federation
