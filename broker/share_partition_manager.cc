#include "broker/share_partition_manager.h"

#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "broker/async_event.h"
#include "broker/log.h"
#include "broker/replica_manager.h"
#include "broker/share_state_persister.h"
#include "broker/state_writer.h"
#include "protocol/wire.h"
#include "storage/state_store.h"

namespace sluice::broker {

using protocol::ErrorCode;

namespace {

constexpr std::string_view kSharePrefix = "share/";
constexpr int8_t kShareStateVersion = 1;
constexpr int32_t kFinalEpoch = -1;

// Share session epochs go 0 (open), 1, 2, ... INT32_MAX, then 1 again.
int32_t next_epoch(int32_t epoch) { return epoch == INT32_MAX ? 1 : epoch + 1; }

}  // namespace

std::string encode_share_state(const DurableShareState& state) {
  protocol::Writer w;
  w.write_int8(kShareStateVersion);
  w.write_int64(state.start_offset);
  w.write_int32(static_cast<int32_t>(state.batches.size()));
  for (const auto& b : state.batches) {
    w.write_int64(b.first_offset);
    w.write_int64(b.last_offset);
    w.write_int8(static_cast<int8_t>(b.state));
    w.write_int16(b.delivery_count);
  }
  return std::string(w.buffer());
}

std::optional<DurableShareState> decode_share_state(std::string_view value) {
  try {
    protocol::Reader r(value);
    if (r.read_int8() != kShareStateVersion) return std::nullopt;
    DurableShareState state;
    state.start_offset = r.read_int64();
    const int32_t count = r.read_int32();
    if (count < 0 || static_cast<size_t>(count) > r.remaining() / 19) return std::nullopt;
    for (int32_t i = 0; i < count; ++i) {
      ShareStateBatch b;
      b.first_offset = r.read_int64();
      b.last_offset = r.read_int64();
      b.state = static_cast<ShareRecordState>(r.read_int8());
      b.delivery_count = r.read_int16();
      state.batches.push_back(b);
    }
    if (r.remaining() != 0) return std::nullopt;
    return state;
  } catch (const protocol::DecodeError&) {
    return std::nullopt;
  }
}

SharePartitionLimits share_limits(const controller::MetadataImage& metadata, const std::string& group,
                                  const SharePartitionLimits& broker_defaults) {
  SharePartitionLimits limits = broker_defaults;
  const auto* configs = metadata.group_configs(group);
  if (!configs) return limits;
  auto number = [&](const char* key, auto& field) {
    if (auto it = configs->find(key); it != configs->end()) field = static_cast<std::decay_t<decltype(field)>>(std::stoll(it->second));
  };
  number("share.record.lock.duration.ms", limits.lock_duration_ms);
  number("share.delivery.count.limit", limits.delivery_count_limit);
  number("share.partition.max.record.locks", limits.max_record_locks);
  return limits;
}

bool share_reset_is_earliest(const controller::MetadataImage& metadata, const std::string& group) {
  const auto* configs = metadata.group_configs(group);
  if (!configs) return false;
  auto it = configs->find("share.auto.offset.reset");
  return it != configs->end() && it->second == "earliest";
}

SharePartitionManager::SharePartitionManager(boost::asio::any_io_executor executor, ReplicaManager& replicas,
                                             storage::StateStore& store, StateWriter& writer,
                                             std::function<SharePartitionLimits(const std::string&)> limits_for,
                                             std::function<bool(const std::string&)> earliest_for,
                                             SessionLimits session_limits, const controller::MetadataImage& metadata,
                                             ShareStatePersister* persister)
    : executor_(std::move(executor)),
      replicas_(replicas),
      store_(store),
      writer_(writer),
      limits_for_(std::move(limits_for)),
      earliest_for_(std::move(earliest_for)),
      session_limits_(session_limits),
      metadata_(metadata),
      persister_(persister) {}

std::string SharePartitionManager::state_key(const std::string& group, const std::string& topic, int32_t partition) {
  // As offset/ keys: the group's length first, so any group name is safe.
  protocol::Writer w;
  w.write_int32(static_cast<int32_t>(group.size()));
  std::string key(kSharePrefix);
  key += w.buffer();
  key += group;
  key += topic;
  key += '\0';
  protocol::Writer p;
  p.write_int32(partition);
  key += p.buffer();
  return key;
}

ErrorCode SharePartitionManager::continue_session(const std::string& group, const std::string& member, int32_t epoch,
                                                  const std::vector<PartitionRef>& added,
                                                  const std::vector<PartitionRef>& forgotten) {
  const auto key = std::make_pair(group, member);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  if (epoch == 0) {
    if (!sessions_.count(key) && sessions_.size() >= session_limits_.max_sessions)
      return ErrorCode::kShareSessionLimitReached;
    Session& session = sessions_[key] = Session{};
    session.partitions.insert(added.begin(), added.end());
    session.last_used_ms = now;
    return ErrorCode::kNone;
  }
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return ErrorCode::kShareSessionNotFound;
  Session& session = it->second;
  session.last_used_ms = now;
  if (epoch != kFinalEpoch) {
    if (epoch != session.next_epoch) return ErrorCode::kInvalidShareSessionEpoch;
    session.next_epoch = next_epoch(epoch);
  }
  session.partitions.insert(added.begin(), added.end());
  for (const auto& p : forgotten) session.partitions.erase(p);
  return ErrorCode::kNone;
}

std::vector<SharePartitionManager::PartitionRef> SharePartitionManager::session_partitions(
    const std::string& group, const std::string& member) const {
  auto it = sessions_.find({group, member});
  if (it == sessions_.end()) return {};
  return {it->second.partitions.begin(), it->second.partitions.end()};
}

void SharePartitionManager::close_session(const std::string& group, const std::string& member) {
  auto it = sessions_.find({group, member});
  if (it == sessions_.end()) return;
  const auto partitions = it->second.partitions;
  for (const auto& [topic, index] : partitions) {
    auto sp = partitions_.find({group, topic, index});
    if (sp == partitions_.end() || !sp->second.release_member(member)) continue;
    if (Partition* p = replicas_.find(topic, index)) {
      persist(group, *p);
      p->wake_waiters();
    }
  }
  sessions_.erase(it);
  for (const auto& [topic, index] : partitions) unload_if_unused({group, topic, index});
}

std::map<SharePartitionManager::PartitionRef, ErrorCode> SharePartitionManager::acknowledge(
    const std::string& group, const std::string& member,
    const std::map<PartitionRef, std::vector<SharePartition::Acknowledgement>>& acknowledgements, bool renew_allowed,
    int64_t now_ms) {
  std::map<PartitionRef, ErrorCode> errors;
  for (const auto& [ref, batches] : acknowledgements) {
    ErrorCode not_led = ErrorCode::kNone;
    Partition* partition = replicas_.find_led(ref.first, ref.second, not_led);
    if (!partition || !partition->log) {
      errors[ref] = partition ? ErrorCode::kNotLeaderOrFollower : not_led;
      continue;
    }
    if (persister_ && !loaded(group, *partition)) {  // not served here since the member's records were handed out
      errors[ref] = ErrorCode::kUnknownTopicOrPartition;
      continue;
    }
    SharePartition& share = share_partition(group, *partition);
    const ErrorCode error = share.acknowledge(member, batches, renew_allowed, now_ms);
    errors[ref] = error;
    if (error != ErrorCode::kNone) continue;
    persist(group, *partition);
    partition->wake_waiters();  // released records may be handed to others
  }
  return errors;
}

size_t SharePartitionManager::expire_sessions(int64_t now_ms) {
  std::vector<std::pair<std::string, std::string>> idle;
  for (const auto& [key, session] : sessions_)
    if (now_ms - session.last_used_ms >= session_limits_.idle_timeout_ms) idle.push_back(key);
  for (const auto& [group, member] : idle) close_session(group, member);
  return idle.size();
}

SharePartition& SharePartitionManager::share_partition(const std::string& group, Partition& partition) {
  const SharePartitionKey key{group, partition.topic, partition.index};
  auto it = partitions_.find(key);
  if (it != partitions_.end()) {
    it->second.set_limits(limits_for_(group));  // group configs may have changed
    // Retention (or delete after consumption) may have passed the start.
    if (it->second.start_offset() < partition.log->log_start_offset())
      it->second.reset_start(partition.log->log_start_offset());
    return it->second;
  }
  const SharePartitionLimits limits = limits_for_(group);
  std::optional<DurableShareState> stored;
  if (auto value = store_.get(state_key(group, partition.topic, partition.index))) stored = decode_share_state(*value);
  // State past the log's end belongs to an earlier topic of the name (its removal still queued).
  if (stored && stored->start_offset > partition.log->log_end_offset()) stored.reset();
  if (stored) {
    SharePartition restored = SharePartition::restore(*stored, limits);
    if (restored.start_offset() < partition.log->log_start_offset())
      restored.reset_start(partition.log->log_start_offset());
    return partitions_.emplace(key, std::move(restored)).first->second;
  }
  // New to this group: share.auto.offset.reset, written at once so that a
  // restart does not start it again somewhere else.
  const int64_t start = earliest_for_(group) ? partition.log->log_start_offset() : partition.high_watermark();
  SharePartition& created = partitions_.emplace(key, SharePartition(start, limits)).first->second;
  persist(group, partition);
  return created;
}

void SharePartitionManager::persist(const std::string& group, const Partition& partition,
                                    std::function<void(bool)> done) {
  auto it = partitions_.find({group, partition.topic, partition.index});
  if (it == partitions_.end()) {
    if (done) done(true);
    return;
  }
  if (persister_) return persist_remotely(it->first, std::move(done));
  const int64_t start = it->second.start_offset();
  write({{state_key(group, partition.topic, partition.index), encode_share_state(it->second.durable_state())}},
        [this, key = it->first, start, done = std::move(done)](bool ok) {
          if (ok && partitions_.count(key)) durable_starts_[key] = start;
          if (done) done(ok);
        });
}

void SharePartitionManager::write(std::vector<storage::StateStore::Change> changes, std::function<void(bool)> done) {
  writer_.apply(std::move(changes), numbered(std::move(done)));
}

std::function<void(bool)> SharePartitionManager::numbered(std::function<void(bool)> done) {
  const uint64_t number = ++writes_submitted_;
  writes_pending_.insert(number);
  return [this, number, done = std::move(done)](bool ok) {
    writes_pending_.erase(number);
    if (!ok) {
      writes_failed_.insert(number);
      while (writes_failed_.size() > 10000) writes_failed_.erase(writes_failed_.begin());
    }
    if (done) done(ok);
    std::vector<AsyncEvent*> waiting;
    waiting.swap(durable_waiters_);
    for (AsyncEvent* e : waiting) e->set();
  };
}

boost::asio::awaitable<bool> SharePartitionManager::wait_durable(uint64_t since, std::optional<uint64_t> until) {
  const uint64_t target = until.value_or(writes_submitted_);
  // Only the writes of (since, target] are this caller's: earlier ones (other
  // requests', perhaps to a slow coordinator) are not waited for.
  auto done = [&] {
    auto first = writes_pending_.upper_bound(since);
    return first == writes_pending_.end() || *first > target;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    AsyncEvent written(executor_);
    durable_waiters_.push_back(&written);
    co_await written.wait_until(deadline);
    std::erase(durable_waiters_, &written);
  }
  auto failed = writes_failed_.upper_bound(since);
  co_return done() && (failed == writes_failed_.end() || *failed > target);
}

void SharePartitionManager::expire_locks(int64_t now_ms) {
  for (auto& [key, share] : partitions_) {
    if (share.next_deadline() > now_ms || !share.expire_locks(now_ms)) continue;
    const auto& [group, topic, index] = key;
    if (Partition* p = replicas_.find(topic, index)) {
      persist(group, *p);
      p->wake_waiters();
    }
  }
}

void SharePartitionManager::on_topic_deleted(const controller::TopicInfo& topic) {
  // Keys of states still being written too: the removal is queued after them.
  std::vector<storage::StateStore::Change> removals;
  for (const auto& [key, share] : partitions_)
    if (std::get<1>(key) == topic.name)
      removals.push_back({state_key(std::get<0>(key), std::get<1>(key), std::get<2>(key)), std::nullopt});
  std::erase_if(partitions_, [&](const auto& entry) { return std::get<1>(entry.first) == topic.name; });
  std::erase_if(durable_starts_, [&](const auto& entry) { return std::get<1>(entry.first) == topic.name; });
  for (auto& [key, session] : sessions_)
    std::erase_if(session.partitions, [&](const PartitionRef& p) { return p.first == topic.name; });
  // Keys are share/<int32 group length><group><topic>\0<int32 partition>.
  store_.scan(kSharePrefix, [&](std::string_view key, std::string_view) {
    protocol::Reader r(key.substr(kSharePrefix.size()));
    const int32_t group_length = r.read_int32();
    const std::string_view rest = key.substr(kSharePrefix.size() + 4 + static_cast<size_t>(std::max(group_length, 0)));
    if (rest.size() == topic.name.size() + 5 && rest.substr(0, topic.name.size()) == topic.name)
      removals.push_back({std::string(key), std::nullopt});
  });
  if (!removals.empty()) write(std::move(removals), {});
}

void SharePartitionManager::reset_start(const std::string& group, Partition& partition, int64_t offset) {
  if (persister_) return;  // a cluster resets with the share coordinator (reset_start_remotely)
  const SharePartitionKey key{group, partition.topic, partition.index};
  partitions_.erase(key);
  partitions_.emplace(key, SharePartition(offset, limits_for_(group)));
  persist(group, partition);
}

void SharePartitionManager::delete_topic_state(const std::string& group, const std::string& topic) {
  std::vector<storage::StateStore::Change> removals;
  auto mine = [&](const SharePartitionKey& key) { return std::get<0>(key) == group && std::get<1>(key) == topic; };
  for (const auto& [key, share] : partitions_)
    if (mine(key)) removals.push_back({state_key(group, topic, std::get<2>(key)), std::nullopt});
  std::erase_if(partitions_, [&](const auto& entry) { return mine(entry.first); });
  std::erase_if(durable_starts_, [&](const auto& entry) { return mine(entry.first); });
  for (const auto& [ref, progress] : progress_of(group))
    if (ref.first == topic) removals.push_back({state_key(group, topic, ref.second), std::nullopt});
  if (!removals.empty()) write(std::move(removals), {});
}

void SharePartitionManager::delete_group_state(const std::string& group) {
  std::vector<storage::StateStore::Change> removals;
  for (const auto& [key, share] : partitions_)
    if (std::get<0>(key) == group)
      removals.push_back({state_key(std::get<0>(key), std::get<1>(key), std::get<2>(key)), std::nullopt});
  std::erase_if(partitions_, [&](const auto& entry) { return std::get<0>(entry.first) == group; });
  std::erase_if(durable_starts_, [&](const auto& entry) { return std::get<0>(entry.first) == group; });
  const std::string prefix = state_key(group, "", 0).substr(0, kSharePrefix.size() + 4 + group.size());
  store_.scan(prefix, [&](std::string_view key, std::string_view) { removals.push_back({std::string(key), std::nullopt}); });
  if (!removals.empty()) write(std::move(removals), {});
}

std::optional<int64_t> SharePartitionManager::start_offset(const std::string& group, const std::string& topic,
                                                           int32_t partition) const {
  if (auto it = durable_starts_.find({group, topic, partition}); it != durable_starts_.end()) return it->second;
  if (auto value = store_.get(state_key(group, topic, partition)))
    if (auto state = decode_share_state(*value)) return state->start_offset;
  return std::nullopt;
}

std::map<SharePartitionManager::PartitionRef, SharePartitionManager::Progress> SharePartitionManager::progress_of(
    const std::string& group) const {
  std::map<PartitionRef, Progress> out;
  const std::string prefix = state_key(group, "", 0).substr(0, kSharePrefix.size() + 4 + group.size());
  store_.scan(prefix, [&](std::string_view key, std::string_view value) {
    const std::string_view rest = key.substr(prefix.size());  // <topic>\0<int32 partition>
    if (rest.size() < 5 || rest[rest.size() - 5] != '\0') return;
    protocol::Reader r(rest.substr(rest.size() - 4));
    const PartitionRef ref{std::string(rest.substr(0, rest.size() - 5)), r.read_int32()};
    if (auto state = decode_share_state(value)) {
      Progress& p = out[ref];
      p.start_offset = state->start_offset;
      for (const auto& b : state->batches)
        if (b.state == ShareRecordState::kAcknowledged || b.state == ShareRecordState::kArchived)
          p.done_in_flight += b.last_offset - b.first_offset + 1;
    }
  });
  for (const auto& [key, share] : partitions_)
    if (std::get<0>(key) == group)
      out[{std::get<1>(key), std::get<2>(key)}] = {
          share.start_offset(),
          share.count(ShareRecordState::kAcknowledged) + share.count(ShareRecordState::kArchived)};
  return out;
}

std::vector<std::pair<SharePartitionManager::PartitionRef, const SharePartition*>> SharePartitionManager::partitions_of(
    const std::string& group) const {
  std::vector<std::pair<PartitionRef, const SharePartition*>> out;
  for (const auto& [key, share] : partitions_)
    if (std::get<0>(key) == group) out.push_back({{std::get<1>(key), std::get<2>(key)}, &share});
  return out;
}

// ---- in a cluster ----

bool SharePartitionManager::loaded(const std::string& group, const Partition& partition) const {
  return partitions_.count({group, partition.topic, partition.index}) > 0;
}

std::optional<ShareStateKey> SharePartitionManager::coordinator_key(const SharePartitionKey& key) const {
  const controller::TopicInfo* topic = metadata_.find_topic(std::get<1>(key));
  if (!topic) return std::nullopt;
  return ShareStateKey{std::get<0>(key), topic->id, std::get<2>(key)};
}

boost::asio::awaitable<ErrorCode> SharePartitionManager::ensure_loaded(const std::string& group, Partition& partition) {
  if (!persister_) co_return ErrorCode::kNone;
  const SharePartitionKey key{group, partition.topic, partition.index};
  if (partitions_.count(key)) co_return ErrorCode::kNone;
  const int32_t leader_epoch = partition.leader_epoch;
  if (auto it = loading_.find(key); it != loading_.end()) {
    // Another request loads it: wait for that load (bounded, like the load itself).
    AsyncEvent done(executor_);
    it->second.push_back(&done);
    co_await done.wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    if (auto again = loading_.find(key); again != loading_.end()) std::erase(again->second, &done);
    co_return partitions_.count(key) ? ErrorCode::kNone : ErrorCode::kCoordinatorNotAvailable;
  }
  loading_[key];
  ErrorCode error = ErrorCode::kNone;
  try {
    error = co_await load(key, leader_epoch);
  } catch (const std::exception& e) {
    SLUICE_LOG(kError, "loading share-partition " << std::get<1>(key) << "-" << std::get<2>(key) << " of group "
                                                  << group << " failed: " << e.what());
    error = ErrorCode::kCoordinatorNotAvailable;
  }
  auto waiting = std::move(loading_[key]);
  loading_.erase(key);
  for (AsyncEvent* e : waiting) e->set();
  co_return error;
}

struct SharePartitionManager::LoadRound {
  explicit LoadRound(const boost::asio::any_io_executor& executor) : done(executor) {}
  size_t pending = 0;
  std::map<PartitionRef, ErrorCode> failed;
  AsyncEvent done;
};

boost::asio::awaitable<std::map<SharePartitionManager::PartitionRef, ErrorCode>> SharePartitionManager::load_all(
    const std::string& group, const std::set<PartitionRef>& refs) {
  std::vector<PartitionRef> wanted;
  if (persister_)
    for (const auto& ref : refs) {
      ErrorCode not_led = ErrorCode::kNone;
      Partition* partition = replicas_.find_led(ref.first, ref.second, not_led);
      if (partition && partition->log && !loaded(group, *partition)) wanted.push_back(ref);
    }
  if (wanted.empty()) co_return std::map<PartitionRef, ErrorCode>{};
  auto round = std::make_shared<LoadRound>(executor_);
  round->pending = wanted.size();
  for (const auto& ref : wanted) boost::asio::co_spawn(executor_, load_one(group, ref, round), boost::asio::detached);
  while (!round->done.is_set()) co_await round->done.wait_until(boost::asio::steady_timer::time_point::max());
  co_return round->failed;
}

boost::asio::awaitable<void> SharePartitionManager::load_one(std::string group, PartitionRef ref,
                                                             std::shared_ptr<LoadRound> round) {
  ErrorCode error = ErrorCode::kNone;
  ErrorCode not_led = ErrorCode::kNone;
  if (Partition* partition = replicas_.find_led(ref.first, ref.second, not_led); partition && partition->log) {
    try {
      error = co_await ensure_loaded(group, *partition);
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "loading share-partition " << ref.first << "-" << ref.second << ": " << e.what());
      error = ErrorCode::kCoordinatorNotAvailable;
    }
  }
  if (error != ErrorCode::kNone) round->failed[ref] = error;
  if (--round->pending == 0) round->done.set();
}

boost::asio::awaitable<ErrorCode> SharePartitionManager::load(SharePartitionKey key, int32_t leader_epoch) {
  const auto& [group, topic, index] = key;
  auto still_leading = [&]() -> Partition* {
    ErrorCode ignored = ErrorCode::kNone;
    Partition* p = replicas_.find_led(topic, index, ignored);
    return p && p->log && p->leader_epoch == leader_epoch ? p : nullptr;
  };
  // A write of this share-partition still on its way (it was unloaded since) goes first.
  while (remote_writes_.count(key) && remote_writes_[key].in_flight) {
    AsyncEvent written(executor_);
    durable_waiters_.push_back(&written);
    co_await written.wait_until(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    std::erase(durable_waiters_, &written);
  }
  const auto state_key = coordinator_key(key);
  if (!state_key) co_return ErrorCode::kUnknownTopicOrPartition;
  auto read = co_await persister_->read(*state_key, leader_epoch);
  Loaded loaded{read.state.state_epoch, leader_epoch};
  DurableShareState state = read.state.state;
  const bool uninitialized =
      read.error == ErrorCode::kInvalidRequest || (read.error == ErrorCode::kNone && state.start_offset < 0);
  if (uninitialized) {
    // New to this group: share.auto.offset.reset, written before it is used.
    Partition* p = still_leading();
    if (!p) co_return ErrorCode::kNotLeaderOrFollower;
    state = DurableShareState{earliest_for_(group) ? p->log->log_start_offset() : p->high_watermark(), {}};
    loaded.state_epoch = std::max(read.state.state_epoch, 0);
    const auto initialized = co_await persister_->initialize(*state_key, loaded.state_epoch, state.start_offset);
    if (initialized.error != ErrorCode::kNone) {
      if (initialized.error == ErrorCode::kFencedStateEpoch) co_return ErrorCode::kNotLeaderOrFollower;
      SLUICE_LOG(kWarn, "share-partition " << topic << "-" << index << " of group " << group << ": initializing "
                                           << "its state, the share coordinator answered "
                                           << protocol::error_name(initialized.error));
      co_return ErrorCode::kCoordinatorNotAvailable;
    }
    // Initialize does not record the leader epoch: a read does.
    read = co_await persister_->read(*state_key, leader_epoch);
    if (read.error == ErrorCode::kNone) {
      state = read.state.state;
      loaded.state_epoch = read.state.state_epoch;
    }
  }
  switch (read.error) {
    case ErrorCode::kNone:
      break;
    case ErrorCode::kFencedLeaderEpoch:
    case ErrorCode::kFencedStateEpoch:
      co_return ErrorCode::kNotLeaderOrFollower;
    default:
      SLUICE_LOG(kWarn, "share-partition " << topic << "-" << index << " of group " << group << ": the share "
                                           << "coordinator answered " << protocol::error_name(read.error) << " "
                                           << read.message);
      co_return ErrorCode::kCoordinatorNotAvailable;
  }
  Partition* partition = still_leading();
  if (!partition) co_return ErrorCode::kNotLeaderOrFollower;
  SharePartition restored = SharePartition::restore(state, limits_for_(group));
  if (restored.start_offset() < partition->log->log_start_offset())
    restored.reset_start(partition->log->log_start_offset());
  partitions_.emplace(key, std::move(restored));
  loaded_[key] = loaded;
  durable_starts_[key] = state.start_offset;
  co_return ErrorCode::kNone;
}

void SharePartitionManager::persist_remotely(const SharePartitionKey& key, std::function<void(bool)> done) {
  RemoteWrites& writes = remote_writes_[key];
  auto finish = numbered(std::move(done));
  if (writes.in_flight) {
    writes.next.push_back(std::move(finish));
    return;
  }
  writes.covered.push_back(std::move(finish));
  start_remote_write(key);
}

void SharePartitionManager::start_remote_write(const SharePartitionKey& key) {
  // The state as it is now (a later change waits for the next write).
  auto share = partitions_.find(key);
  auto loaded = loaded_.find(key);
  const auto state_key = coordinator_key(key);
  std::optional<DurableShareState> state;
  Loaded epochs;
  if (share != partitions_.end() && loaded != loaded_.end() && state_key) {
    state = share->second.durable_state();
    epochs = loaded->second;
  }
  remote_writes_[key].in_flight = true;
  boost::asio::co_spawn(executor_, write_remotely(key, state_key.value_or(ShareStateKey{}), epochs, std::move(state)),
                        boost::asio::detached);
}

boost::asio::awaitable<void> SharePartitionManager::write_remotely(SharePartitionKey key, ShareStateKey state_key,
                                                                   Loaded epochs,
                                                                   std::optional<DurableShareState> state) {
  bool ok = false;
  if (state) {
    try {
      const auto result = co_await persister_->write(state_key, epochs.state_epoch, epochs.leader_epoch, *state);
      ok = result.error == ErrorCode::kNone;
      if (ok && partitions_.count(key)) durable_starts_[key] = state->start_offset;
      if (result.error == ErrorCode::kFencedLeaderEpoch || result.error == ErrorCode::kFencedStateEpoch ||
          result.error == ErrorCode::kInvalidRequest) {
        // Another leader, a reset or a deletion took over the state: read it again when next used.
        SLUICE_LOG(kInfo, "share-partition " << std::get<1>(key) << "-" << std::get<2>(key) << " of group "
                                             << std::get<0>(key) << ": write refused ("
                                             << protocol::error_name(result.error) << "); it is read again");
        partitions_.erase(key);
        loaded_.erase(key);
        durable_starts_.erase(key);
      } else if (!ok) {
        SLUICE_LOG(kWarn, "share-partition " << std::get<1>(key) << "-" << std::get<2>(key) << " of group "
                                             << std::get<0>(key) << ": writing its state failed ("
                                             << protocol::error_name(result.error) << ") " << result.message);
      }
    } catch (const std::exception& e) {
      SLUICE_LOG(kError, "writing share state failed: " << e.what());
    }
  }
  RemoteWrites& writes = remote_writes_[key];
  auto covered = std::move(writes.covered);
  writes.covered = std::move(writes.next);
  writes.next.clear();
  writes.in_flight = false;
  if (!writes.covered.empty())
    start_remote_write(key);
  else
    remote_writes_.erase(key);
  for (auto& done : covered) done(ok);
}

void SharePartitionManager::on_partition_role(const Partition& partition) {
  if (!persister_) return;
  const bool leading_as_loaded = partition.is_leader;
  std::vector<SharePartitionKey> gone;
  for (const auto& [key, epochs] : loaded_)
    if (std::get<1>(key) == partition.topic && std::get<2>(key) == partition.index &&
        (!leading_as_loaded || epochs.leader_epoch != partition.leader_epoch))
      gone.push_back(key);
  for (const auto& key : gone) {
    partitions_.erase(key);
    loaded_.erase(key);
    durable_starts_.erase(key);
  }
}

void SharePartitionManager::unload_if_unused(const SharePartitionKey& key) {
  if (!persister_) return;
  auto it = partitions_.find(key);
  if (it == partitions_.end() || it->second.count(ShareRecordState::kAcquired) > 0) return;
  // Changes waiting for the write in flight would be lost: it stays until they are written.
  if (auto w = remote_writes_.find(key); w != remote_writes_.end() && !w->second.next.empty()) return;
  const PartitionRef ref{std::get<1>(key), std::get<2>(key)};
  for (const auto& [owner, session] : sessions_)
    if (owner.first == std::get<0>(key) && session.partitions.count(ref)) return;
  partitions_.erase(it);
  loaded_.erase(key);
  // Not kept: the group coordinator may reset it meanwhile (delete after
  // consumption asks the share coordinator instead).
  durable_starts_.erase(key);
}

boost::asio::awaitable<std::map<SharePartitionManager::PartitionRef, SharePartitionManager::Progress>>
SharePartitionManager::progress_from_coordinators(const std::string& group, std::vector<PartitionRef> candidates) {
  std::map<PartitionRef, Progress> out;
  if (!persister_ || !metadata_.find_topic(controller::kShareStateTopic)) co_return out;
  if (candidates.empty()) candidates = all_partitions();
  for (const auto& ref : candidates) {
    const auto key = coordinator_key({group, ref.first, ref.second});
    if (!key) continue;
    const auto summary = co_await persister_->summary(*key);
    if (summary.error != ErrorCode::kNone || summary.start_offset < 0) continue;
    out[ref] = Progress{summary.start_offset, std::max(summary.delivery_complete_count, 0)};
  }
  co_return out;
}

std::vector<SharePartitionManager::PartitionRef> SharePartitionManager::all_partitions() const {
  std::vector<PartitionRef> out;
  for (const auto& [name, topic] : metadata_.topics())
    if (!controller::is_internal_topic(name))
      for (int32_t index = 0; index < topic.partition_count(); ++index) out.push_back({name, index});
  return out;
}

boost::asio::awaitable<bool> SharePartitionManager::has_state(const std::string& group) {
  if (!persister_) co_return !progress_of(group).empty();
  const auto progress = co_await progress_from_coordinators(group, all_partitions());
  co_return !progress.empty();
}

boost::asio::awaitable<ErrorCode> SharePartitionManager::reset_start_remotely(const std::string& group,
                                                                              const std::string& topic,
                                                                              int32_t partition, int64_t offset) {
  const auto key = coordinator_key({group, topic, partition});
  if (!persister_ || !key) co_return ErrorCode::kUnknownTopicOrPartition;
  const auto summary = co_await persister_->summary(*key);
  if (summary.error != ErrorCode::kNone) co_return summary.error;
  const auto result = co_await persister_->initialize(*key, summary.state_epoch + 1, offset);
  co_return result.error;
}

boost::asio::awaitable<ErrorCode> SharePartitionManager::delete_state_remotely(const std::string& group,
                                                                               const std::vector<PartitionRef>& refs) {
  if (!persister_ || !metadata_.find_topic(controller::kShareStateTopic)) co_return ErrorCode::kNone;
  for (const auto& ref : refs) {
    const auto key = coordinator_key({group, ref.first, ref.second});
    if (!key) continue;
    const auto result = co_await persister_->remove(*key);
    if (result.error != ErrorCode::kNone) co_return result.error;
  }
  co_return ErrorCode::kNone;
}

}  // namespace sluice::broker
