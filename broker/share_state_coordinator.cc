#include "broker/share_state_coordinator.h"

#include <algorithm>
#include <chrono>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/broker.h"
#include "broker/internal_topic.h"
#include "broker/log.h"
#include "protocol/messages/share_snapshot_key.h"
#include "protocol/messages/share_snapshot_value.h"

namespace sluice::broker {

using protocol::ErrorCode;

namespace {

// The first int16 of a key is its record type; of a value, its schema's version.
constexpr int16_t kShareSnapshotKey = 0;
constexpr int16_t kShareSnapshotValueVersion = 0;

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::chrono::milliseconds write_timeout(const Broker& broker) {
  return std::chrono::milliseconds(broker.config.get_int("share.coordinator.write.timeout.ms"));
}

const char* const kUninitializedRead = "Read operation on uninitialized share partition not allowed.";
const char* const kUninitializedWrite = "Write operation on uninitialized share partition not allowed.";

}  // namespace

std::string share_coordinator_key(const ShareStateKey& key) {
  return key.group + ":" + controller::base64url(key.topic_id) + ":" + std::to_string(key.partition);
}

std::vector<ShareStateBatch> merge_share_batches(const std::vector<ShareStateBatch>& stored,
                                                 const std::vector<ShareStateBatch>& written, int64_t start_offset) {
  // A sweep over the batches' edges: at each offset the covering batch with
  // the highest (delivery count, state) holds.
  struct Edge {
    int64_t offset;
    bool opens;
    size_t batch;
  };
  std::vector<ShareStateBatch> all;
  all.reserve(stored.size() + written.size());
  for (const auto* list : {&stored, &written})
    for (const auto& b : *list)
      if (b.last_offset >= b.first_offset && b.last_offset >= start_offset) all.push_back(b);
  std::vector<Edge> edges;
  for (size_t i = 0; i < all.size(); ++i) {
    edges.push_back({std::max(all[i].first_offset, start_offset), true, i});
    edges.push_back({all[i].last_offset + 1, false, i});
  }
  std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) { return a.offset < b.offset; });
  auto rank = [&](size_t i) { return std::make_tuple(all[i].delivery_count, static_cast<int8_t>(all[i].state), i); };
  std::set<std::tuple<int16_t, int8_t, size_t>> open;
  std::vector<ShareStateBatch> out;
  for (size_t e = 0; e < edges.size();) {
    const int64_t at = edges[e].offset;
    for (; e < edges.size() && edges[e].offset == at; ++e) {
      if (edges[e].opens)
        open.insert(rank(edges[e].batch));
      else
        open.erase(rank(edges[e].batch));
    }
    if (open.empty() || e == edges.size()) continue;
    const ShareStateBatch& best = all[std::get<2>(*open.rbegin())];
    const int64_t until = edges[e].offset - 1;  // the next edge changes the picture
    if (!out.empty() && out.back().last_offset + 1 == at && out.back().state == best.state &&
        out.back().delivery_count == best.delivery_count)
      out.back().last_offset = until;
    else
      out.push_back({at, until, best.state, best.delivery_count});
  }
  return out;
}

int32_t delivery_complete_count(const DurableShareState& state) {
  if (state.start_offset < 0) return -1;
  int64_t done = 0;
  for (const auto& b : state.batches)
    if ((b.state == ShareRecordState::kAcknowledged || b.state == ShareRecordState::kArchived) &&
        b.last_offset >= state.start_offset)
      done += b.last_offset - std::max(b.first_offset, state.start_offset) + 1;
  return static_cast<int32_t>(std::min<int64_t>(done, INT32_MAX));
}

protocol::KeyedRecord share_state_record(const ShareStateKey& key, const StoredShareState* state) {
  protocol::KeyedRecord record;
  protocol::Writer k;
  k.write_int16(kShareSnapshotKey);
  protocol::ShareSnapshotKey snapshot_key;
  snapshot_key.group_id = key.group;
  snapshot_key.topic_id = key.topic_id;
  snapshot_key.partition = key.partition;
  snapshot_key.encode(k, 0);
  record.key = std::move(k.buffer());
  if (state) {
    protocol::Writer v;
    v.write_int16(kShareSnapshotValueVersion);
    protocol::ShareSnapshotValue value;
    value.snapshot_epoch = state->snapshot_epoch;
    value.state_epoch = state->state_epoch;
    value.leader_epoch = state->leader_epoch;
    value.start_offset = state->state.start_offset;
    value.create_timestamp = state->create_timestamp_ms;
    value.write_timestamp = wall_clock_ms();
    for (const auto& b : state->state.batches)
      value.state_batches.push_back({b.first_offset, b.last_offset, static_cast<int8_t>(b.state), b.delivery_count});
    value.encode(v, kShareSnapshotValueVersion);
    record.value = std::move(v.buffer());
  }
  return record;
}

bool replay_share_state_record(std::optional<std::string_view> key, std::optional<std::string_view> value,
                               std::map<ShareStateKey, StoredShareState>& states) {
  if (!key) return false;
  try {
    protocol::Reader k(*key);
    if (k.read_int16() != kShareSnapshotKey) return false;  // ShareUpdate: Sluice writes snapshots only
    protocol::ShareSnapshotKey snapshot_key;
    snapshot_key.decode(k, 0);
    const ShareStateKey state_key{snapshot_key.group_id, snapshot_key.topic_id, snapshot_key.partition};
    if (!value) {
      states.erase(state_key);
      return true;
    }
    protocol::Reader v(*value);
    if (v.read_int16() != kShareSnapshotValueVersion) return false;
    protocol::ShareSnapshotValue snapshot;
    snapshot.decode(v, kShareSnapshotValueVersion);
    StoredShareState& state = states[state_key];
    state.snapshot_epoch = snapshot.snapshot_epoch;
    state.state_epoch = snapshot.state_epoch;
    state.leader_epoch = snapshot.leader_epoch;
    state.create_timestamp_ms = snapshot.create_timestamp;
    state.state.start_offset = snapshot.start_offset;
    state.state.batches.clear();
    for (const auto& b : snapshot.state_batches)
      state.state.batches.push_back({b.first_offset, b.last_offset, static_cast<ShareRecordState>(b.delivery_state),
                                     b.delivery_count});
    return true;
  } catch (const protocol::DecodeError&) {
    return false;
  }
}

int32_t ShareStateCoordinator::partition_count() const {
  const controller::TopicInfo* topic = broker_.metadata.find_topic(controller::kShareStateTopic);
  return topic ? topic->partition_count() : 0;
}

int32_t ShareStateCoordinator::partition_of(const ShareStateKey& key) const {
  return coordinator_partition_of(share_coordinator_key(key), partition_count());
}

ErrorCode ShareStateCoordinator::ownership(const ShareStateKey& key) const {
  if (partition_count() == 0) return ErrorCode::kNotCoordinator;
  auto it = shards_.find(partition_of(key));
  if (it == shards_.end()) return ErrorCode::kNotCoordinator;
  return it->second.loaded ? ErrorCode::kNone : ErrorCode::kCoordinatorLoadInProgress;
}

std::optional<OffsetWrite> ShareStateCoordinator::append(int32_t index, const ShareStateKey& key,
                                                         const StoredShareState* state) {
  Partition* partition = broker_.replicas.find(controller::kShareStateTopic, index);
  if (!partition || !partition->is_leader || !partition->log) return std::nullopt;
  try {
    return append_internal_records(broker_.replicas, *partition, {share_state_record(key, state)});
  } catch (const std::exception& e) {
    SLUICE_LOG(kError, "appending to " << controller::kShareStateTopic << "-" << index << " failed: " << e.what());
    return std::nullopt;
  }
}

boost::asio::awaitable<ShareStateCoordinator::Result> ShareStateCoordinator::replicate(std::optional<OffsetWrite> write) {
  if (!write) co_return Result{ErrorCode::kNotCoordinator, ""};
  const ErrorCode error = co_await await_internal_write(broker_, controller::kShareStateTopic, *write,
                                                        write_timeout(broker_));
  co_return Result{error, ""};
}

boost::asio::awaitable<ShareStateCoordinator::ReadResult> ShareStateCoordinator::read(const ShareStateKey& key,
                                                                                       int32_t leader_epoch) {
  ReadResult out;
  if (const ErrorCode owner = ownership(key); owner != ErrorCode::kNone) {
    out.error = owner;
    co_return out;
  }
  const int32_t index = partition_of(key);
  auto& states = shards_[index].states;
  auto it = states.find(key);
  if (it == states.end()) {
    out.error = ErrorCode::kInvalidRequest;
    out.message = kUninitializedRead;
    co_return out;
  }
  if (it->second.leader_epoch > leader_epoch) {
    out.error = ErrorCode::kFencedLeaderEpoch;
    co_return out;
  }
  out.state = it->second;
  std::optional<OffsetWrite> pending = it->second.last_write;
  if (leader_epoch != -1 && it->second.leader_epoch != leader_epoch) {
    // The new leader's epoch, durably: from now on the old one's writes are fenced.
    StoredShareState updated = it->second;
    updated.leader_epoch = leader_epoch;
    out.state.leader_epoch = leader_epoch;
    pending = append(index, key, &updated);
    if (!pending) {
      out.error = ErrorCode::kNotCoordinator;
    } else {
      updated.last_write = pending;
      it->second = std::move(updated);
    }
  }
  // What is answered (a new epoch, or an earlier write still replicating) must not be undone by a crash.
  if (pending && out.error == ErrorCode::kNone) {
    const Result replicated = co_await replicate(pending);
    out.error = replicated.error;
  }
  co_return out;
}

std::optional<StoredShareState> ShareStateCoordinator::peek(const ShareStateKey& key) const {
  auto shard = shards_.find(partition_of(key));
  if (shard == shards_.end()) return std::nullopt;
  auto it = shard->second.states.find(key);
  if (it == shard->second.states.end()) return std::nullopt;
  return it->second;
}

ShareStateCoordinator::Summary ShareStateCoordinator::summary(const ShareStateKey& key) const {
  Summary out;
  out.error = ownership(key);
  if (out.error != ErrorCode::kNone) return out;
  if (auto state = peek(key)) {
    out.state_epoch = state->state_epoch;
    out.leader_epoch = state->leader_epoch;
    out.start_offset = state->state.start_offset;
    out.delivery_complete_count = delivery_complete_count(state->state);
  }
  return out;
}

boost::asio::awaitable<ShareStateCoordinator::Result> ShareStateCoordinator::write(
    const ShareStateKey& key, int32_t state_epoch, int32_t leader_epoch, int64_t start_offset,
    const std::vector<ShareStateBatch>& batches) {
  if (const ErrorCode owner = ownership(key); owner != ErrorCode::kNone) co_return Result{owner, ""};
  const int32_t index = partition_of(key);
  auto& states = shards_[index].states;
  auto it = states.find(key);
  if (it == states.end()) co_return Result{ErrorCode::kInvalidRequest, kUninitializedWrite};
  const StoredShareState& stored = it->second;
  if (leader_epoch != -1 && stored.leader_epoch > leader_epoch) co_return Result{ErrorCode::kFencedLeaderEpoch, ""};
  if (state_epoch != -1 && stored.state_epoch > state_epoch) co_return Result{ErrorCode::kFencedStateEpoch, ""};
  // The start never moves back within a state epoch (a late retry of an older write cannot undo a newer one).
  int64_t start = start_offset == -1 ? stored.state.start_offset : start_offset;
  if (state_epoch == stored.state_epoch) start = std::max(start, stored.state.start_offset);
  StoredShareState updated = stored;
  updated.state.batches = merge_share_batches(stored.state.batches, batches, start);
  updated.state.start_offset = start;
  if (leader_epoch != -1) updated.leader_epoch = leader_epoch;
  ++updated.snapshot_epoch;
  co_return co_await commit(index, key, std::move(updated));
}

boost::asio::awaitable<ShareStateCoordinator::Result> ShareStateCoordinator::commit(int32_t index,
                                                                                    const ShareStateKey& key,
                                                                                    StoredShareState updated) {
  // Memory changes only once the record is appended (a failed append leaves the state as it was).
  auto written = append(index, key, &updated);
  if (!written) co_return Result{ErrorCode::kNotCoordinator, ""};
  updated.last_write = written;
  shards_[index].states[key] = std::move(updated);
  co_return co_await replicate(written);
}

boost::asio::awaitable<ShareStateCoordinator::Result> ShareStateCoordinator::initialize(const ShareStateKey& key,
                                                                                        int32_t state_epoch,
                                                                                        int64_t start_offset) {
  if (const ErrorCode owner = ownership(key); owner != ErrorCode::kNone) co_return Result{owner, ""};
  const int32_t index = partition_of(key);
  auto& states = shards_[index].states;
  auto it = states.find(key);
  if (it != states.end() && state_epoch != -1 && it->second.state_epoch > state_epoch)
    co_return Result{ErrorCode::kFencedStateEpoch, ""};
  // A fresh start: nothing of the old state is kept.
  StoredShareState fresh;
  fresh.state_epoch = state_epoch;
  fresh.leader_epoch = it == states.end() ? -1 : it->second.leader_epoch;
  fresh.snapshot_epoch = it == states.end() ? 0 : it->second.snapshot_epoch + 1;
  fresh.create_timestamp_ms = wall_clock_ms();
  fresh.state.start_offset = start_offset;
  co_return co_await commit(index, key, std::move(fresh));
}

boost::asio::awaitable<ShareStateCoordinator::Result> ShareStateCoordinator::remove(const ShareStateKey& key) {
  if (const ErrorCode owner = ownership(key); owner != ErrorCode::kNone) co_return Result{owner, ""};
  const int32_t index = partition_of(key);
  if (shards_[index].states.erase(key) == 0) co_return Result{};
  co_return co_await replicate(append(index, key, nullptr));
}

void ShareStateCoordinator::on_partition_role(Partition& partition) {
  if (partition.topic != controller::kShareStateTopic) return;
  if (!partition.is_leader) {
    shards_.erase(partition.index);
    return;
  }
  auto it = shards_.find(partition.index);
  if (it != shards_.end() && it->second.leader_epoch == partition.leader_epoch) return;
  shards_[partition.index] = Shard{partition.leader_epoch, false, {}};
  boost::asio::co_spawn(broker_.executor, load(partition.index, partition.leader_epoch), boost::asio::detached);
}

boost::asio::awaitable<void> ShareStateCoordinator::load(int32_t index, int32_t leader_epoch) {
  const auto started = std::chrono::steady_clock::now();
  auto still_wanted = [&] {
    auto it = shards_.find(index);
    return it != shards_.end() && it->second.leader_epoch == leader_epoch && !it->second.loaded;
  };
  std::map<ShareStateKey, StoredShareState> states;
  ReplayCount count;
  for (;;) {
    states.clear();
    count = ReplayCount{};
    const bool complete = co_await replay_internal_partition(
        broker_, controller::kShareStateTopic, index,
        static_cast<size_t>(broker_.config.get_int("share.coordinator.load.buffer.size")), still_wanted,
        [&](std::optional<std::string_view> key, std::optional<std::string_view> value) {
          return replay_share_state_record(key, value, states);
        },
        count);
    if (!still_wanted()) co_return;
    if (complete) break;
    // A read failed (logged): try again in a second rather than stay loading for good.
    boost::asio::steady_timer timer(broker_.executor);
    timer.expires_after(std::chrono::seconds(1));
    boost::system::error_code ignored;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
  }
  // States of topics deleted meanwhile are not served.
  std::erase_if(states, [&](const auto& entry) { return !broker_.metadata.find_topic(entry.first.topic_id); });
  Shard& shard = shards_[index];
  shard.states = std::move(states);
  shard.loaded = true;
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  SLUICE_LOG(kInfo, "coordinating the share state of " << controller::kShareStateTopic << "-" << index << " (epoch "
                                                       << leader_epoch << "): " << shard.states.size()
                                                       << " share-partitions from " << count.records << " records in "
                                                       << took.count() << " ms"
                                                       << (count.unreadable ? ", some records unreadable" : ""));
}

bool ShareStateCoordinator::loaded(int32_t index) const {
  auto it = shards_.find(index);
  return it != shards_.end() && it->second.loaded;
}

size_t ShareStateCoordinator::live_states(int32_t index) const {
  auto it = shards_.find(index);
  return it == shards_.end() ? 0 : it->second.states.size();
}

std::optional<OffsetWrite> ShareStateCoordinator::rewrite(int32_t index) {
  auto it = shards_.find(index);
  if (it == shards_.end() || !it->second.loaded) return std::nullopt;
  Partition* partition = broker_.replicas.find(controller::kShareStateTopic, index);
  if (!partition || !partition->is_leader || !partition->log) return std::nullopt;
  std::vector<protocol::KeyedRecord> records;
  for (const auto& [key, state] : it->second.states) records.push_back(share_state_record(key, &state));
  if (records.empty()) return std::nullopt;
  return append_internal_records(broker_.replicas, *partition, records);
}

void ShareStateCoordinator::on_topic_deleted(const controller::TopicInfo& topic) {
  for (auto& [index, shard] : shards_) {
    std::vector<ShareStateKey> gone;
    for (const auto& [key, state] : shard.states)
      if (key.topic_id == topic.id) gone.push_back(key);
    for (const auto& key : gone) {
      shard.states.erase(key);
      if (shard.loaded) append(index, key, nullptr);  // the tombstone replicates as any record
    }
  }
}

}  // namespace sluice::broker
