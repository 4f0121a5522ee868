#include "controller/controller.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <random>
#include <set>

#include "controller/metadata_delta.h"
#include "controller/topic_config.h"
#include "controller/metadata_records.h"
#include "storage/state_store.h"

namespace sluice::controller {
namespace {

using protocol::ErrorCode;

constexpr std::string_view kTopicPrefix = "topic/";
constexpr std::string_view kClusterIdKey = "cluster/id";
constexpr std::string_view kQuorumEpochKey = "quorum/epoch";
constexpr std::string_view kNextProducerIdKey = "cluster/next-producer-id";
constexpr size_t kMaxTopicNameLength = 249;


// A topic as data directories from before the metadata log kept it, under
// "topic/<name>": format version 1, id, partition count, replication factor,
// configs.
struct LegacyTopic {
  protocol::Uuid id;
  int32_t partitions = 0;
  std::map<std::string, std::string> configs;
};

LegacyTopic decode_legacy_topic(std::string_view bytes) {
  protocol::Reader r(bytes);
  LegacyTopic t;
  if (r.read_int8() != 1) throw protocol::DecodeError("unknown topic record version");
  t.id = r.read_uuid();
  t.partitions = r.read_int32();
  r.read_int16();  // replication factor: always 1 on a single node
  int32_t n = r.read_array_length(4);
  for (int32_t i = 0; i < n; ++i) {
    std::string k = r.read_string();
    t.configs[k] = r.read_string();
  }
  return t;
}

// Kafka treats '.' and '_' as the same in metric names, so two topics that
// differ only there would collide.
std::string collision_key(std::string_view name) {
  std::string key(name);
  for (char& c : key)
    if (c == '.') c = '_';
  return key;
}

}  // namespace

protocol::Uuid random_uuid() {
  std::random_device rd;
  protocol::Uuid id;
  for (auto& b : id.bytes) b = static_cast<uint8_t>(rd());
  id.bytes[6] = (id.bytes[6] & 0x0F) | 0x40;  // version 4
  id.bytes[8] = (id.bytes[8] & 0x3F) | 0x80;  // IETF variant
  return id;
}

std::optional<std::string> invalid_topic_name_reason(std::string_view name) {
  if (name.empty()) return "Topic name is illegal, it can't be empty";
  if (name == "." || name == "..") return "Topic name cannot be \".\" or \"..\"";
  if (name.size() > kMaxTopicNameLength)
    return "Topic name is illegal, it can't be longer than 249 characters, topic name: " + std::string(name);
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      return "Topic name \"" + std::string(name) +
             "\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'";
  }
  return std::nullopt;
}

Controller::Controller(storage::StateStore& store, Options options)
    : store_(store), options_(options), log_(store) {
  if (auto id = store_.get(kClusterIdKey)) {
    cluster_id_ = *id;
  } else {
    cluster_id_ = options_.new_cluster_id.empty() ? base64url(random_uuid()) : options_.new_cluster_id;
    store_.put(kClusterIdKey, cluster_id_);
  }
  if (options_.quorum) {
    // A voter of a quorum starts as a follower that knows only its snapshot
    // to be committed: the leader's high watermark tells it the rest.
    active_ = false;
    int64_t snapshot_offset = 0;
    for (const auto& r : log_.snapshot_records(&snapshot_offset)) committed_.apply(decode_record(r));
    applied_ = snapshot_offset;
    image_ = committed_;
    return;
  }
  // One voter elects itself at every start, in the next epoch (KRaft's rule):
  // the epoch tells this leadership from the ones before it.
  int64_t epoch = 0;
  if (auto stored = store_.get(kQuorumEpochKey)) epoch = std::strtoll(stored->c_str(), nullptr, 10);
  quorum_epoch_ = static_cast<int32_t>(std::clamp<int64_t>(std::max<int64_t>(epoch, log_.last_epoch()) + 1, 1, INT32_MAX));
  store_.put(kQuorumEpochKey, std::to_string(quorum_epoch_));
  if (log_.empty()) migrate_legacy_state();
  log_.replay([&](std::string_view bytes) { image_.apply(decode_record(bytes)); });
  committed_ = image_;
  applied_ = high_watermark_ = log_.end_offset();
}

void Controller::become_leader(int32_t epoch) {
  if (log_.durable_end_offset() != log_.end_offset())
    throw std::logic_error("a controller becomes leader with its whole log durable");
  active_ = true;
  quorum_epoch_ = epoch;
  // The records past the high watermark, from earlier epochs, stand (Raft's
  // leader completeness): validated against, and published once committed,
  // which the first record of this epoch makes them.
  image_ = committed_;
  unpublished_.clear();
  log_.read(applied_, [&](int64_t offset, std::string_view bytes) {
    MetadataRecord record = decode_record(bytes);
    image_.apply(record);
    unpublished_.push_back({offset, std::move(record)});
    return true;
  });
  commit({protocol::NoOpRecord{}});
}

void Controller::resign() {
  // What was appended and not committed may be lost: forget it.
  active_ = false;
  image_ = committed_;
  unpublished_.clear();
}

void Controller::set_high_watermark(int64_t high_watermark) {
  if (high_watermark <= high_watermark_) return;
  high_watermark_ = high_watermark;
  publish(log_.durable_end_offset());
}

void Controller::append_replicated(const std::vector<std::string>& records, int32_t epoch) {
  if (active_) throw std::logic_error("the active controller appends only its own records");
  log_.append(records, {}, epoch);
}

void Controller::truncate_replicated(int64_t offset) {
  if (offset < applied_)
    throw std::runtime_error("the metadata log would lose committed records: truncation to " + std::to_string(offset) +
                             " below " + std::to_string(applied_));
  log_.truncate_to(offset);
}

void Controller::install_replicated_snapshot(int64_t offset, int32_t epoch, const std::vector<std::string>& records) {
  MetadataImage fresh;
  for (const auto& r : records) fresh.apply(decode_record(r));
  log_.install_snapshot(offset, records, epoch);
  const MetadataImage before = std::move(committed_);
  committed_ = std::move(fresh);
  image_ = committed_;
  applied_ = offset;
  high_watermark_ = std::max(high_watermark_, offset);
  records_applied_ += records.size();
  publish_delta(before, committed_, listeners_);
  for (auto* l : listeners_) l->on_committed(applied_);
}

void Controller::note_observer_fetch(int32_t id, int64_t fetch_offset, int64_t wall_now_ms) {
  ObserverState& o = observers_[id];
  o.log_end_offset = fetch_offset;
  o.last_fetch_ms = wall_now_ms;
  if (fetch_offset >= applied_) o.last_caught_up_ms = wall_now_ms;
}

void Controller::migrate_legacy_state() {
  std::vector<std::string> records;
  std::vector<storage::StateStore::Change> erase;
  store_.scan(kTopicPrefix, [&](std::string_view key, std::string_view value) {
    const std::string name(key.substr(kTopicPrefix.size()));
    const LegacyTopic legacy = decode_legacy_topic(value);
    records.push_back(encode_record(protocol::TopicRecord{name, legacy.id}));
    // Led by this node in epoch 0, as the single node's batches were written.
    for (int32_t p = 0; p < legacy.partitions; ++p) {
      protocol::PartitionRecord partition = new_partition(legacy.id, p, {options_.node_id});
      partition.leader = options_.node_id;
      records.push_back(encode_record(partition));
    }
    for (const auto& [k, v] : legacy.configs)
      records.push_back(encode_record(protocol::ConfigRecord{kTopicResource, name, k, v}));
    erase.push_back({std::string(key), std::nullopt});
  });
  if (auto next = store_.get(kNextProducerIdKey)) {
    protocol::ProducerIdsRecord ids;
    ids.broker_id = options_.node_id;
    ids.next_producer_id = std::stoll(*next);
    records.push_back(encode_record(ids));
    erase.push_back({std::string(kNextProducerIdKey), std::nullopt});
  }
  if (records.empty()) return;
  log_.append(records, erase);
}

// Kafka prints cluster ids as unpadded URL-safe base64 of a UUID (22 chars).
std::string base64url(const protocol::Uuid& id) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : id.bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3F];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 0x3F];
  return out;
}

const char* Controller::event_name(Event event) {
  switch (event) {
    case Event::kRegisterBroker: return "register_broker";
    case Event::kHeartbeat: return "heartbeat";
    case Event::kFenceBroker: return "fence_broker";
    case Event::kUnfenceBroker: return "unfence_broker";
    case Event::kCreateTopic: return "create_topic";
    case Event::kDeleteTopic: return "delete_topic";
    case Event::kCreatePartitions: return "create_partitions";
    case Event::kAlterConfigs: return "alter_configs";
    case Event::kAlterPartition: return "alter_partition";
    case Event::kElectLeader: return "elect_leader";
    case Event::kAllocateProducerIds: return "allocate_producer_ids";
    case Event::kCount: break;
  }
  return "unknown";
}

OperationResult Controller::commit(const std::vector<MetadataRecord>& records) {
  if (!active_) return {ErrorCode::kNotController, "This node is not the active controller"};
  std::vector<std::string> encoded;
  encoded.reserve(records.size());
  for (const auto& r : records) encoded.push_back(encode_record(r));
  int64_t offset = 0;
  try {
    offset = log_.append(encoded, {}, quorum_epoch_);
  } catch (const std::exception& e) {
    return {ErrorCode::kKafkaStorageError, std::string("Could not write the metadata log: ") + e.what()};
  }
  for (const auto& r : records) {
    image_.apply(r);
    if (const auto* change = std::get_if<protocol::PartitionChangeRecord>(&r); change && change->leader >= 0)
      note(Event::kElectLeader);
    unpublished_.push_back({offset++, r});
  }
  // Written in place: durable now. Otherwise when the writer says so.
  if (log_.durable_end_offset() == log_.end_offset()) publish(log_.end_offset());
  return {};
}

void Controller::write_in_background(MetadataLog::Committer committer,
                                     std::function<void(const std::string&)> report) {
  report_ = std::move(report);
  log_.write_in_background(std::move(committer), [this](int64_t durable_end) {
    if (on_durable_) on_durable_(durable_end);
    publish(durable_end);
  });
}

void Controller::publish(int64_t durable_end) {
  // A single controller commits what is durable; a quorum's leader what a
  // majority of voters has (the high watermark).
  if (!options_.quorum) high_watermark_ = std::max(high_watermark_, durable_end);
  int64_t up_to = std::min(durable_end, high_watermark_);
  if (up_to <= applied_) return;
  // Only the topics the records touch are kept as they were (not the whole image).
  TouchedTopics touched;
  auto apply = [&](const MetadataRecord& r) {
    touched.note(committed_, r);
    committed_.apply(r);
    ++records_applied_;
  };
  if (active_) {
    while (!unpublished_.empty() && unpublished_.front().first < up_to) {
      apply(unpublished_.front().second);
      unpublished_.pop_front();
    }
  } else {
    int64_t next = applied_;
    log_.read(applied_, [&](int64_t offset, std::string_view bytes) {
      apply(decode_record(bytes));
      next = offset + 1;
      return true;
    }, up_to);
    // Only as far as the records read (a log read stops at a hole).
    if (next < up_to) up_to = next;
    if (up_to <= applied_) return;
  }
  applied_ = up_to;
  if (!report_) {  // in place: the operation's caller sees what a listener throws
    touched.publish(committed_, listeners_);
  } else {
    for (auto* l : listeners_) {
      try {
        touched.publish(committed_, {l});
      } catch (const std::exception& e) {
        report_(std::string("a metadata listener failed: ") + e.what());
      }
    }
  }
  for (auto* l : listeners_) l->on_committed(applied_);
  // The snapshot is of what is committed, so that it never holds a record a
  // new quorum leader could still drop.
  if (log_.bytes_since_snapshot() >= options_.snapshot_after_bytes) {
    std::vector<std::string> image;
    for (const auto& r : committed_.to_records()) image.push_back(encode_record(r));
    try {
      log_.write_snapshot(applied_, image);
    } catch (const std::exception&) {
      // The log still holds everything; the next commit tries again.
    }
  }
}

OperationResult Controller::register_broker(int32_t id, const protocol::Uuid& incarnation_id,
                                            const std::vector<BrokerEndpoint>& endpoints,
                                            const std::optional<std::string>& rack, int64_t* epoch, int64_t now_ms) {
  note(Event::kRegisterBroker);
  if (const BrokerRegistration* existing = image_.find_broker(id)) {
    if (existing->incarnation_id == incarnation_id) {  // a retry of a registration that went through
      last_heard_ms_[id] = now_ms;
      if (epoch) *epoch = existing->epoch;
      return {};
    }
    auto heard = last_heard_ms_.find(id);
    if (!existing->fenced && heard != last_heard_ms_.end() && now_ms - heard->second < options_.session_timeout_ms)
      return {ErrorCode::kDuplicateBrokerRegistration,
              "Another broker is registered with that broker id and its session has not expired."};
  }
  BrokerRegistration registration;
  registration.id = id;
  registration.incarnation_id = incarnation_id;
  registration.epoch = log_.end_offset();
  registration.endpoints = endpoints;
  registration.rack = rack;
  registration.fenced = true;
  protocol::RegisterBrokerRecord r = registration_record(registration);
  // The old incarnation's leaderships and ISR places go with it: its log may
  // have lost what it had not synced.
  std::vector<MetadataRecord> records;
  if (const BrokerRegistration* existing = image_.find_broker(id); existing && !existing->fenced) {
    if (OperationResult fenced = fence_broker(id, existing->epoch, false); !fenced.ok()) return fenced;
    r.broker_epoch = log_.end_offset();
  }
  OperationResult result = commit({r});
  if (result.ok()) {
    last_heard_ms_[id] = now_ms;
    if (epoch) *epoch = r.broker_epoch;
  }
  return result;
}

Controller::HeartbeatReply Controller::heartbeat(int32_t id, int64_t epoch, int64_t metadata_offset, bool want_fence,
                                                 bool want_shut_down, int64_t now_ms) {
  note(Event::kHeartbeat);
  HeartbeatReply reply;
  const BrokerRegistration* b = image_.find_broker(id);
  if (!b) {
    reply.result = {ErrorCode::kBrokerIdNotRegistered, "Broker " + std::to_string(id) + " is not registered."};
    return reply;
  }
  if (b->epoch != epoch) {
    reply.result = {ErrorCode::kStaleBrokerEpoch,
                    "Expected broker epoch " + std::to_string(b->epoch) + ", but got broker epoch " + std::to_string(epoch)};
    return reply;
  }
  last_heard_ms_[id] = now_ms;
  reply.is_caught_up = metadata_offset >= epoch;
  if (want_shut_down || want_fence) {
    if (!b->fenced || (want_shut_down && !b->in_controlled_shutdown)) {
      if (OperationResult r = fence_broker(id, epoch, want_shut_down); !r.ok()) {
        reply.result = r;
        return reply;
      }
    }
    reply.should_shut_down = want_shut_down;
  } else if (b->fenced && reply.is_caught_up) {
    if (OperationResult r = unfence_broker(id, epoch); !r.ok()) {
      reply.result = r;
      return reply;
    }
  }
  reply.is_fenced = image_.find_broker(id)->fenced;
  return reply;
}

OperationResult Controller::unregister_broker(int32_t id) {
  const BrokerRegistration* b = image_.find_broker(id);
  if (!b) return {ErrorCode::kBrokerIdNotRegistered, "Broker ID " + std::to_string(id) + " is not currently registered"};
  int held = 0;
  std::string example;
  for (const auto& [name, topic] : topics())
    for (int32_t p = 0; p < topic.partition_count(); ++p)
      if (std::find(topic.partitions[p].replicas.begin(), topic.partitions[p].replicas.end(), id) !=
          topic.partitions[p].replicas.end()) {
        if (held++ == 0) example = name + "-" + std::to_string(p);
      }
  if (held > 0)
    return {ErrorCode::kInvalidRequest, "Broker " + std::to_string(id) + " still holds replicas of " +
                                            std::to_string(held) + " partition(s), " + example +
                                            " among them: move them to other brokers first (kafka-reassign-partitions.sh)."};
  OperationResult result = commit({protocol::UnregisterBrokerRecord{id, b->epoch}});
  if (result.ok()) last_heard_ms_.erase(id);
  return result;
}

std::vector<int32_t> Controller::fence_expired_brokers(int64_t now_ms) {
  std::vector<int32_t> fenced;
  for (const auto& [id, broker] : image_.brokers()) {
    if (broker.fenced) continue;
    auto heard = last_heard_ms_.find(id);
    if (heard != last_heard_ms_.end() && now_ms - heard->second < options_.session_timeout_ms) continue;
    fenced.push_back(id);
  }
  for (int32_t id : fenced) fence_broker(id, image_.find_broker(id)->epoch, false);
  return fenced;
}

void Controller::renew_all_sessions(int64_t now_ms) {
  for (const auto& [id, broker] : image_.brokers()) last_heard_ms_[id] = now_ms;
}

OperationResult Controller::fence_broker(int32_t id, int64_t epoch, bool controlled_shutdown) {
  note(Event::kFenceBroker);
  protocol::BrokerRegistrationChangeRecord change;
  change.broker_id = id;
  change.broker_epoch = epoch;
  change.fenced = 1;  // Kafka's BrokerRegistrationFencingChange.FENCE
  change.in_controlled_shutdown = controlled_shutdown ? 1 : 0;
  std::vector<MetadataRecord> records{change};
  const std::vector<int32_t> live = live_brokers();
  auto is_live = [&](int32_t b) { return b != id && std::find(live.begin(), live.end(), b) != live.end(); };
  for (const auto& [name, topic] : topics())
    for (int32_t p = 0; p < topic.partition_count(); ++p) {
      const PartitionState& state = topic.partitions[p];
      const bool in_isr = std::find(state.isr.begin(), state.isr.end(), id) != state.isr.end();
      if (!in_isr && state.leader != id) continue;
      protocol::PartitionChangeRecord pc;
      pc.topic_id = topic.id;
      pc.partition_id = p;
      std::vector<int32_t> isr;
      for (int32_t r : state.isr)
        if (r != id) isr.push_back(r);
      // The last member of an ISR stays in it (Kafka's rule): it holds
      // everything committed, and only it may lead again without loss.
      if (isr.empty()) isr = state.isr;
      if (isr != state.isr) pc.isr = isr;
      if (state.leader == id) {
        pc.leader = -1;
        for (int32_t r : state.replicas)
          if (is_live(r) && std::find(isr.begin(), isr.end(), r) != isr.end()) {
            pc.leader = r;
            break;
          }
        if (pc.leader == -1 && unclean_election_allowed(topic)) {
          // Unclean: a live replica out of sync leads alone, marked as
          // recovering (Kafka's LeaderRecoveryState) until it says it is done.
          for (int32_t r : state.replicas)
            if (is_live(r)) {
              pc.leader = r;
              pc.isr = std::vector<int32_t>{r};
              pc.leader_recovery_state = 1;
              break;
            }
        }
      }
      if (pc.isr || pc.leader != -2) records.push_back(pc);
    }
  return commit(records);
}

bool Controller::unclean_election_allowed(const TopicInfo& topic) const {
  auto it = topic.configs.find("unclean.leader.election.enable");
  if (it == topic.configs.end()) return options_.unclean_leader_election;
  return it->second == "true";
}

OperationResult Controller::unfence_broker(int32_t id, int64_t epoch) {
  note(Event::kUnfenceBroker);
  const BrokerRegistration* b = image_.find_broker(id);
  if (!b || b->epoch != epoch) return {ErrorCode::kStaleBrokerEpoch, "Expected broker epoch " + std::to_string(epoch)};
  if (!b->fenced) return {};
  // Partitions left without a leader that this broker has in sync get it as
  // leader (a new leader epoch), in the same commit.
  std::vector<MetadataRecord> records{protocol::UnfenceBrokerRecord{id, epoch}};
  for (const auto& [name, topic] : topics())
    for (int32_t p = 0; p < topic.partition_count(); ++p) {
      const PartitionState& state = topic.partitions[p];
      if (state.leader >= 0) continue;
      const bool in_sync = std::find(state.isr.begin(), state.isr.end(), id) != state.isr.end();
      const bool replica = std::find(state.replicas.begin(), state.replicas.end(), id) != state.replicas.end();
      if (!in_sync && !(replica && unclean_election_allowed(topic))) continue;
      protocol::PartitionChangeRecord change;
      change.topic_id = topic.id;
      change.partition_id = p;
      change.leader = id;
      if (!in_sync) {  // unclean, as in fence_broker
        change.isr = std::vector<int32_t>{id};
        change.leader_recovery_state = 1;
      }
      records.push_back(change);
    }
  return commit(records);
}

namespace {

// Kafka's LeaderRecoveryState.
constexpr int8_t kRecovered = 0;
constexpr int8_t kRecovering = 1;

std::string partition_name(const TopicInfo& topic, int32_t partition) {
  return topic.name + "-" + std::to_string(partition);
}

std::string isr_text(const std::vector<Controller::IsrMember>& isr) {
  std::string out = "[";
  for (const auto& m : isr) {
    if (out.size() > 1) out += ", ";
    out += std::to_string(m.broker_id);
    if (m.broker_epoch != -1) out += "@" + std::to_string(m.broker_epoch);
  }
  return out + "]";
}

// Kafka's Replicas.validateIsr: no duplicates, every member a replica (so no
// negative ids either).
bool valid_isr(const std::vector<int32_t>& replicas, const std::vector<Controller::IsrMember>& isr) {
  std::set<int32_t> seen;
  for (const auto& m : isr) {
    if (!seen.insert(m.broker_id).second) return false;
    if (std::find(replicas.begin(), replicas.end(), m.broker_id) == replicas.end()) return false;
  }
  return true;
}

}  // namespace

Controller::AlterPartitionReply Controller::alter_partition(int32_t broker_id, int64_t broker_epoch,
                                                           const std::vector<PartitionAlteration>& alterations) {
  note(Event::kAlterPartition);
  AlterPartitionReply reply;
  // The sender's registration first, for the whole request (Kafka's ClusterControlManager.checkBrokerEpoch).
  const BrokerRegistration* sender = image_.find_broker(broker_id);
  if (!sender) {
    reply.result = {ErrorCode::kStaleBrokerEpoch, "No broker registration found for broker id " + std::to_string(broker_id)};
    return reply;
  }
  if (sender->epoch != broker_epoch) {
    reply.result = {ErrorCode::kStaleBrokerEpoch, "Expected broker epoch " + std::to_string(sender->epoch) +
                                                     ", but got broker epoch " + std::to_string(broker_epoch)};
    return reply;
  }

  // The state each partition will have once the records gathered so far are
  // applied, so that a partition named twice sees what the first change did.
  struct Pending {
    const TopicInfo* topic;
    int32_t partition;
    PartitionState state;
  };
  std::vector<Pending> pending;
  auto find_pending = [&](const TopicInfo& topic, int32_t partition) -> Pending* {
    for (auto& p : pending)
      if (p.topic == &topic && p.partition == partition) return &p;
    return nullptr;
  };
  std::vector<MetadataRecord> records;
  // The alterations whose answer holds only once the records are committed:
  // those that changed something, and those validated against such a change.
  std::vector<bool> needs_commit(alterations.size(), false);

  for (const PartitionAlteration& a : alterations) {
    AlteredPartition& out = reply.partitions.emplace_back();
    auto refuse = [&](ErrorCode error, std::string message) {
      out.error = error;
      out.message = std::move(message);
    };
    const TopicInfo* topic = a.topic_id.is_zero() ? nullptr : find_topic(a.topic_id);
    if (!topic) {
      refuse(ErrorCode::kUnknownTopicId, "Unknown topic id.");
      continue;
    }
    if (a.partition < 0 || a.partition >= topic->partition_count()) {
      refuse(ErrorCode::kUnknownTopicOrPartition, "Unknown partition " + partition_name(*topic, a.partition) + ".");
      continue;
    }
    const std::string name = partition_name(*topic, a.partition);
    Pending* earlier = find_pending(*topic, a.partition);
    needs_commit[reply.partitions.size() - 1] = earlier != nullptr;
    const PartitionState& state = earlier ? earlier->state : topic->partitions[a.partition];
    // A leader ahead of this controller: it has heard of a newer controller.
    if (a.leader_epoch > state.leader_epoch) {
      refuse(ErrorCode::kNotController, "The leader epoch of " + name + " is " + std::to_string(state.leader_epoch) +
                                            ", lower than the request's " + std::to_string(a.leader_epoch) + ".");
      continue;
    }
    if (a.partition_epoch > state.partition_epoch) {
      refuse(ErrorCode::kNotController, "The partition epoch of " + name + " is " +
                                            std::to_string(state.partition_epoch) + ", lower than the request's " +
                                            std::to_string(a.partition_epoch) + ".");
      continue;
    }
    if (a.leader_epoch < state.leader_epoch) {
      refuse(ErrorCode::kFencedLeaderEpoch, "The leader epoch of " + name + " is " +
                                                std::to_string(state.leader_epoch) + ", not " +
                                                std::to_string(a.leader_epoch) + ".");
      continue;
    }
    if (broker_id != state.leader) {
      refuse(ErrorCode::kInvalidRequest,
             "Broker " + std::to_string(broker_id) + " is not the leader of " + name + ": " + std::to_string(state.leader) + " is.");
      continue;
    }
    if (a.partition_epoch < state.partition_epoch) {
      refuse(ErrorCode::kInvalidUpdateVersion, "The partition epoch of " + name + " is " +
                                                   std::to_string(state.partition_epoch) + ", not " +
                                                   std::to_string(a.partition_epoch) + ".");
      continue;
    }
    if (!valid_isr(state.replicas, a.new_isr)) {
      refuse(ErrorCode::kInvalidRequest, "Invalid ISR " + isr_text(a.new_isr) + " for " + name + ".");
      continue;
    }
    if (std::none_of(a.new_isr.begin(), a.new_isr.end(), [&](const IsrMember& m) { return m.broker_id == state.leader; })) {
      refuse(ErrorCode::kInvalidRequest, "The ISR " + isr_text(a.new_isr) + " for " + name + " does not include its leader.");
      continue;
    }
    if (a.leader_recovery_state != kRecovered && a.leader_recovery_state != kRecovering) {
      refuse(ErrorCode::kInvalidRequest, "Value " + std::to_string(a.leader_recovery_state) +
                                             " is not a valid leader recovery state.");
      continue;
    }
    if (a.leader_recovery_state == kRecovering && a.new_isr.size() > 1) {
      refuse(ErrorCode::kInvalidRequest, "The ISR " + isr_text(a.new_isr) + " for " + name +
                                             " has more than one replica while its leader is recovering from an unclean election.");
      continue;
    }
    if (state.leader_recovery_state == kRecovered && a.leader_recovery_state == kRecovering) {
      refuse(ErrorCode::kInvalidRequest, "The leader recovery state of " + name + " cannot change from RECOVERED to RECOVERING.");
      continue;
    }
    // KIP-903: only live members, under the registration the leader saw them with.
    std::string ineligible;
    for (const IsrMember& m : a.new_isr) {
      const BrokerRegistration* b = image_.find_broker(m.broker_id);
      std::string why;
      if (!b)
        why = "not registered";
      else if (b->in_controlled_shutdown)
        why = "shutting down";
      else if (b->fenced)
        why = "fenced";
      else if (m.broker_epoch != -1 && m.broker_epoch != b->epoch)
        why = "broker epoch mismatch: requested=" + std::to_string(m.broker_epoch) + " VS expected=" + std::to_string(b->epoch);
      if (why.empty()) continue;
      if (!ineligible.empty()) ineligible += ", ";
      ineligible += std::to_string(m.broker_id) + " (" + why + ")";
    }
    if (!ineligible.empty()) {
      refuse(ErrorCode::kIneligibleReplica, "Ineligible replicas in the new ISR " + isr_text(a.new_isr) + " of " + name +
                                                ": " + ineligible + ".");
      continue;
    }

    // Valid. The ISR and recovery state asked for, and never a leader: the
    // leader is the sender and stays in the ISR. Kafka compares ISRs as lists.
    PartitionState next = state;
    protocol::PartitionChangeRecord change;
    change.topic_id = topic->id;
    change.partition_id = a.partition;
    std::vector<int32_t> isr;
    for (const IsrMember& m : a.new_isr) isr.push_back(m.broker_id);
    if (isr != state.isr) {
      change.isr = isr;
      next.isr = isr;
    }
    if (a.leader_recovery_state != state.leader_recovery_state) {
      change.leader_recovery_state = a.leader_recovery_state;
      next.leader_recovery_state = a.leader_recovery_state;
    }
    // An ISR that now holds every target replica finishes a reassignment.
    if (complete_reassignment(next, isr, change)) {
      next.replicas = *change.replicas;
      next.isr = *change.isr;
      next.adding_replicas.clear();
      next.removing_replicas.clear();
      if (change.leader != -2) {
        next.leader = change.leader;
        ++next.leader_epoch;
      }
    }
    if (change.isr || change.leader_recovery_state != -1 || change.replicas) {
      ++next.partition_epoch;  // as MetadataImage::apply does for every PartitionChangeRecord
      records.push_back(change);
      needs_commit[reply.partitions.size() - 1] = true;
      if (earlier)
        earlier->state = next;
      else
        pending.push_back({topic, a.partition, next});
    }
    out.leader = next.leader;
    out.leader_epoch = next.leader_epoch;
    out.partition_epoch = next.partition_epoch;
    out.isr = next.isr;
    out.leader_recovery_state = next.leader_recovery_state;
  }

  if (records.empty()) return reply;
  if (OperationResult committed = commit(records); !committed.ok()) {
    // Nothing was written: the answers that depended on it fail with it.
    for (size_t i = 0; i < reply.partitions.size(); ++i)
      if (needs_commit[i]) {
        reply.partitions[i] = AlteredPartition();
        reply.partitions[i].error = committed.error;
        reply.partitions[i].message = committed.message;
      }
  }
  return reply;
}

OperationResult Controller::elect_leader(const TopicInfo& topic, int32_t partition, ElectionType type,
                                        std::vector<MetadataRecord>& records) const {
  if (partition < 0 || partition >= topic.partition_count())
    return {ErrorCode::kUnknownTopicOrPartition, "No such partition as " + partition_name(topic, partition)};
  const PartitionState& state = topic.partitions[partition];
  const bool preferred = type == ElectionType::kPreferred;
  if (state.replicas.empty())
    return {ErrorCode::kEligibleLeadersNotAvailable, "Eligible topic partition leaders are not available."};
  if (preferred ? state.leader == state.replicas.front() : state.leader >= 0)
    return {ErrorCode::kElectionNotNeeded, "Leader election not needed for topic partition."};
  protocol::PartitionChangeRecord change;
  change.topic_id = topic.id;
  change.partition_id = partition;
  if (preferred) {
    // The preferred replica; else the leader stays if it may (no change);
    // else any other that may, in replica order (Kafka's PartitionChangeBuilder).
    int32_t leader = elect_among({state.replicas.front()}, state.isr, -1);
    if (leader < 0) leader = elect_among(state.replicas, state.isr, state.leader);
    if (leader < 0 || leader == state.leader)
      return {ErrorCode::kPreferredLeaderNotAvailable, "The preferred leader was not available."};
    change.leader = leader;
  } else {
    change.leader = elect_among(state.replicas, state.isr, -1);
    if (change.leader < 0) {
      // Unclean, as asked: a live replica out of sync leads alone, recovering.
      for (int32_t r : state.replicas)
        if (const BrokerRegistration* b = image_.find_broker(r); b && !b->fenced) {
          change.leader = r;
          change.isr = std::vector<int32_t>{r};
          change.leader_recovery_state = kRecovering;
          break;
        }
    }
    if (change.leader < 0)
      return {ErrorCode::kEligibleLeadersNotAvailable, "Eligible topic partition leaders are not available."};
  }
  records.push_back(change);
  return {};
}

std::vector<Controller::TopicElectionResults> Controller::elect_leaders(ElectionType type,
                                                                        const std::optional<ElectionTargets>& targets) {
  std::vector<MetadataRecord> records;
  std::vector<TopicElectionResults> results;
  if (!targets) {
    for (const auto& [name, topic] : topics()) {
      auto& out = results.emplace_back();
      out.topic = name;
      for (int32_t p = 0; p < topic.partition_count(); ++p) {
        OperationResult r = elect_leader(topic, p, type, records);
        if (r.error != ErrorCode::kElectionNotNeeded) out.partitions.push_back({p, std::move(r)});
      }
    }
  } else {
    // A partition named twice is elected once, and both get its answer.
    std::map<std::pair<std::string_view, int32_t>, OperationResult> answered;
    for (const auto& [name, partitions] : *targets) {
      auto& out = results.emplace_back();
      out.topic = name;
      const TopicInfo* topic = find_topic(name);
      for (int32_t p : partitions) {
        auto [it, first] = answered.try_emplace({name, p});
        if (first)
          it->second = topic ? elect_leader(*topic, p, type, records)
                             : OperationResult{ErrorCode::kUnknownTopicOrPartition, "No such topic as " + name};
        out.partitions.push_back({p, it->second});
      }
    }
  }
  if (records.empty()) return results;
  if (OperationResult committed = commit(records); !committed.ok())
    for (auto& topic : results)
      for (auto& p : topic.partitions)
        if (p.result.ok()) p.result = committed;
  return results;
}

int Controller::rebalance_leaders(double imbalance_percent) {
  // Per preferred leader: the partitions it should lead, and those it does not.
  std::map<int32_t, std::pair<int, std::vector<std::pair<const TopicInfo*, int32_t>>>> by_preferred;
  for (const auto& [name, topic] : topics())
    for (int32_t p = 0; p < topic.partition_count(); ++p) {
      const PartitionState& state = topic.partitions[p];
      if (state.replicas.empty()) continue;
      auto& entry = by_preferred[state.replicas.front()];
      ++entry.first;
      if (state.leader != state.replicas.front()) entry.second.emplace_back(&topic, p);
    }
  std::vector<MetadataRecord> records;
  for (const auto& [broker, entry] : by_preferred) {
    const auto& [preferred, not_led] = entry;
    if (not_led.empty() || 100.0 * static_cast<double>(not_led.size()) / preferred <= imbalance_percent) continue;
    for (const auto& [topic, p] : not_led) {
      std::vector<MetadataRecord> one;
      // Only a move to the preferred replica itself: a partition with no
      // leader is the failover's business, not the balancer's.
      if (elect_leader(*topic, p, ElectionType::kPreferred, one).ok() &&
          std::get<protocol::PartitionChangeRecord>(one.front()).leader == broker)
        records.push_back(std::move(one.front()));
    }
  }
  if (records.empty() || !commit(records).ok()) return 0;
  return static_cast<int>(records.size());
}

namespace {

bool contains(const std::vector<int32_t>& ids, int32_t id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); }

}  // namespace

bool Controller::complete_reassignment(const PartitionState& state, const std::vector<int32_t>& isr,
                                       protocol::PartitionChangeRecord& change) const {
  if (!state.reassigning()) return false;
  const std::vector<int32_t> target = state.target_replicas();
  std::vector<int32_t> kept;  // the ISR without the replicas being removed
  for (int32_t r : isr)
    if (!contains(state.removing_replicas, r)) kept.push_back(r);
  if (kept.empty() || target.empty()) return false;
  for (int32_t r : target)
    if (!contains(kept, r)) return false;
  change.replicas = target;
  change.isr = kept;
  change.adding_replicas = std::vector<int32_t>{};
  change.removing_replicas = std::vector<int32_t>{};
  change.leader = elect_among(target, kept, state.leader);
  // Replicas leave: a new leader epoch, even for the same leader (as Kafka), so
  // that the removed replicas' fetches are fenced.
  if (state.removing_replicas.empty() && change.leader == state.leader) change.leader = -2;
  return true;
}

int32_t Controller::elect_among(const std::vector<int32_t>& replicas, const std::vector<int32_t>& isr,
                                int32_t current) const {
  auto acceptable = [&](int32_t r) {
    const BrokerRegistration* b = image_.find_broker(r);
    return b && !b->fenced && !b->in_controlled_shutdown && contains(isr, r);
  };
  if (contains(replicas, current) && acceptable(current)) return current;
  for (int32_t r : replicas)
    if (acceptable(r)) return r;
  return -1;
}

std::vector<OperationResult> Controller::alter_partition_reassignments(const std::vector<Reassignment>& reassignments,
                                                                       bool allow_replication_factor_change) {
  std::vector<OperationResult> results;
  std::vector<MetadataRecord> records;
  std::set<std::pair<std::string_view, int32_t>> seen;
  for (const Reassignment& wanted : reassignments) {
    OperationResult& result = results.emplace_back();
    const TopicInfo* topic = find_topic(wanted.topic);
    if (!topic) {
      result = {ErrorCode::kUnknownTopicOrPartition, "Unable to find a topic named " + wanted.topic + "."};
      continue;
    }
    if (wanted.partition < 0 || wanted.partition >= topic->partition_count()) {
      result = {ErrorCode::kUnknownTopicOrPartition,
                "Unable to find partition " + wanted.topic + ":" + std::to_string(wanted.partition) + "."};
      continue;
    }
    if (!seen.emplace(wanted.topic, wanted.partition).second) {
      result = {ErrorCode::kInvalidRequest, "Partition " + partition_name(*topic, wanted.partition) + " is named more than once."};
      continue;
    }
    const PartitionState& state = topic->partitions[wanted.partition];
    PartitionState next = state;
    std::vector<int32_t> isr = state.isr;
    if (!wanted.replicas) {
      // Cancel (Kafka's PartitionReassignmentRevert): the new replicas leave,
      // the others stay in the order they have.
      if (!state.reassigning()) {
        result = {ErrorCode::kNoReassignmentInProgress, ""};  // Kafka's default message: null
        continue;
      }
      std::erase_if(next.replicas, [&](int32_t r) { return contains(state.adding_replicas, r); });
      std::erase_if(isr, [&](int32_t r) { return contains(state.adding_replicas, r); });
      bool unclean = false;
      if (isr.empty()) {
        // Only new replicas were in sync: an old one leads alone, and may lack data.
        int32_t live = -1;
        for (int32_t r : next.replicas)
          if (const BrokerRegistration* b = image_.find_broker(r); b && !b->fenced && !b->in_controlled_shutdown) {
            live = r;
            break;
          }
        if (!unclean_election_allowed(*topic) || live < 0) {
          result = {ErrorCode::kInvalidReplicaAssignment, "Unable to revert partition assignment for " + wanted.topic + ":" +
                                                              std::to_string(wanted.partition) +
                                                              " because it would require an unclean leader election."};
          continue;
        }
        isr = {live};
        unclean = true;
      }
      next.adding_replicas.clear();
      next.removing_replicas.clear();
      if (unclean) next.leader_recovery_state = kRecovering;
    } else {
      const std::vector<int32_t>& target = *wanted.replicas;
      // Kafka's order of checks: empty, then each id ascending: registered, not twice.
      std::string invalid;
      if (target.empty()) invalid = "The manual partition assignment includes an empty replica list.";
      std::vector<int32_t> sorted = target;
      std::sort(sorted.begin(), sorted.end());
      for (size_t i = 0; i < sorted.size() && invalid.empty(); ++i) {
        if (!image_.find_broker(sorted[i]))
          invalid = "The manual partition assignment includes broker " + std::to_string(sorted[i]) +
                    ", but no such broker is registered.";
        else if (i > 0 && sorted[i] == sorted[i - 1])
          invalid = "The manual partition assignment includes the broker " + std::to_string(sorted[i]) + " more than once.";
      }
      if (!invalid.empty()) {
        result = {ErrorCode::kInvalidReplicaAssignment, invalid};
        continue;
      }
      const size_t current_factor = state.target_replicas().size();
      if (!allow_replication_factor_change && target.size() != current_factor) {
        result = {ErrorCode::kInvalidReplicationFactor, "The replication factor is changed from " +
                                                            std::to_string(current_factor) + " to " +
                                                            std::to_string(target.size())};
        continue;
      }
      // Kafka's PartitionReassignmentReplicas: the target in its order, then
      // the replicas leaving (ascending). Added are those new to the replicas
      // before any reassignment in progress (still copying, if it was one).
      std::vector<int32_t> before;
      for (int32_t r : state.replicas)
        if (!contains(state.adding_replicas, r)) before.push_back(r);
      next.removing_replicas.clear();
      next.adding_replicas.clear();
      for (int32_t r : state.replicas)
        if (!contains(target, r)) next.removing_replicas.push_back(r);
      for (int32_t r : target)
        if (!contains(before, r)) next.adding_replicas.push_back(r);
      std::sort(next.removing_replicas.begin(), next.removing_replicas.end());
      std::sort(next.adding_replicas.begin(), next.adding_replicas.end());
      next.replicas = target;
      next.replicas.insert(next.replicas.end(), next.removing_replicas.begin(), next.removing_replicas.end());
    }
    if (next.replicas == state.replicas && next.adding_replicas == state.adding_replicas &&
        next.removing_replicas == state.removing_replicas && isr == state.isr)
      continue;  // already so: nothing to change
    protocol::PartitionChangeRecord change;
    change.topic_id = topic->id;
    change.partition_id = wanted.partition;
    if (next.replicas != state.replicas) change.replicas = next.replicas;
    if (next.adding_replicas != state.adding_replicas) change.adding_replicas = next.adding_replicas;
    if (next.removing_replicas != state.removing_replicas) change.removing_replicas = next.removing_replicas;
    if (isr != state.isr) change.isr = isr;
    if (next.leader_recovery_state != state.leader_recovery_state) change.leader_recovery_state = next.leader_recovery_state;
    if (!complete_reassignment(next, isr, change)) {
      // A replica left (a cancel): a new leader epoch; a new leader if it was the one.
      const bool replica_left = std::any_of(state.replicas.begin(), state.replicas.end(),
                                            [&](int32_t r) { return !contains(next.replicas, r); });
      if (replica_left) change.leader = elect_among(next.replicas, isr, state.leader);
    }
    records.push_back(change);
  }
  if (records.empty()) return results;
  if (OperationResult committed = commit(records); !committed.ok())
    for (auto& r : results)
      if (r.ok()) r = committed;
  return results;
}

int64_t Controller::allocate_producer_ids(int32_t count) {
  note(Event::kAllocateProducerIds);
  const int64_t first = image_.next_producer_id();
  protocol::ProducerIdsRecord r;
  r.broker_id = options_.node_id;
  r.next_producer_id = first + count;
  OperationResult result = commit({r});
  if (!result.ok()) throw std::runtime_error(result.message);
  return first;
}

std::vector<std::vector<int32_t>> Controller::place_replicas(int32_t first, int32_t count,
                                                             int16_t replication_factor) const {
  // Brokers in an order that alternates racks (rack a's first, rack b's
  // first, ..., rack a's second, ...), as Kafka's placer orders them: replicas
  // taken consecutively from it land on different racks whenever it can.
  std::map<std::string, std::vector<int32_t>> by_rack;
  std::map<int32_t, std::string> rack_of;
  for (int32_t id : live_brokers()) {
    const BrokerRegistration* b = image_.find_broker(id);
    rack_of[id] = b && b->rack ? *b->rack : std::string();
    by_rack[rack_of[id]].push_back(id);
  }
  std::vector<int32_t> order;
  for (size_t round = 0; order.size() < rack_of.size(); ++round)
    for (const auto& [rack, ids] : by_rack)
      if (round < ids.size()) order.push_back(ids[round]);
  // Leaders go round the list. Followers are taken walking on from a start
  // shifted by one more each cycle (so each broker's followers are spread
  // too), skipping brokers already chosen and, until every rack has a
  // replica, brokers on a rack already chosen.
  const int32_t n = static_cast<int32_t>(order.size());
  std::vector<std::vector<int32_t>> placement;
  for (int32_t p = first; p < first + count; ++p) {
    std::vector<int32_t> replicas{order[p % n]};
    std::set<std::string> racks{rack_of[replicas[0]]};
    const int32_t shift = 1 + (p / n) % std::max(1, n - 1);
    int32_t next = p + shift;
    while (static_cast<int32_t>(replicas.size()) < replication_factor) {
      const bool every_rack_used = racks.size() == by_rack.size();
      for (int32_t step = 0; step < n; ++step) {
        const int32_t candidate = order[(next + step) % n];
        if (std::find(replicas.begin(), replicas.end(), candidate) != replicas.end()) continue;
        if (!every_rack_used && racks.count(rack_of[candidate])) continue;
        replicas.push_back(candidate);
        racks.insert(rack_of[candidate]);
        next += step + 1;
        break;
      }
    }
    placement.push_back(std::move(replicas));
  }
  return placement;
}

protocol::PartitionRecord Controller::new_partition(const protocol::Uuid& topic, int32_t index,
                                                    const std::vector<int32_t>& replicas) const {
  protocol::PartitionRecord r;
  r.partition_id = index;
  r.topic_id = topic;
  r.replicas = replicas;
  // Every replica of a new partition is in sync (there is nothing to copy);
  // the leader is the first live one in preference order.
  r.isr = replicas;
  const auto live = live_brokers();
  r.leader = -1;
  for (int32_t id : replicas)
    if (std::find(live.begin(), live.end(), id) != live.end()) {
      r.leader = id;
      break;
    }
  r.leader_epoch = 0;
  r.partition_epoch = 0;
  return r;
}

OperationResult Controller::create_topic(std::string_view name, int32_t partitions, int16_t replication_factor,
                                         const std::vector<std::vector<int32_t>>& assignments,
                                         const std::map<std::string, std::string>& configs, bool validate_only,
                                         const TopicInfo** created) {
  note(Event::kCreateTopic);
  if (auto reason = invalid_topic_name_reason(name)) return {ErrorCode::kInvalidTopicException, *reason};
  if (find_topic(name)) return {ErrorCode::kTopicAlreadyExists, "Topic '" + std::string(name) + "' already exists."};
  for (const auto& [existing, _] : topics())
    if (collision_key(existing) == collision_key(name))
      return {ErrorCode::kInvalidTopicException,
              "Topic '" + std::string(name) + "' collides with existing topic: " + existing};

  const std::vector<int32_t> brokers = live_brokers();
  if (!assignments.empty()) {
    if (partitions != -1 || replication_factor != -1)
      return {ErrorCode::kInvalidRequest,
              "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."};
    for (size_t p = 0; p < assignments.size(); ++p) {
      if (assignments[p].empty()) return {ErrorCode::kInvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."};
      if (assignments[p].size() != assignments[0].size())
        return {ErrorCode::kInvalidReplicaAssignment, "All partitions in the manual partition assignment must have the same number of replicas."};
      for (int32_t b : assignments[p])
        if (std::find(brokers.begin(), brokers.end(), b) == brokers.end())
          return {ErrorCode::kInvalidReplicaAssignment,
                  "The manual partition assignment includes broker " + std::to_string(b) + ", but no such broker is registered."};
    }
    partitions = static_cast<int32_t>(assignments.size());
    replication_factor = static_cast<int16_t>(assignments[0].size());
  }
  if (partitions == -1) partitions = options_.default_partitions;
  if (replication_factor == -1) replication_factor = options_.default_replication_factor;
  if (partitions <= 0) return {ErrorCode::kInvalidPartitions, "Number of partitions was set to an invalid non-positive value."};
  if (replication_factor <= 0)
    return {ErrorCode::kInvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value."};
  if (static_cast<size_t>(replication_factor) > brokers.size())
    return {ErrorCode::kInvalidReplicationFactor,
            "Unable to replicate the partition " + std::to_string(replication_factor) +
                " time(s): The target replication factor of " + std::to_string(replication_factor) +
                " cannot be reached because only " + std::to_string(brokers.size()) + " broker(s) are registered."};
  for (const auto& [key, value] : configs)
    if (auto problem = validate_topic_config(key, value)) return {ErrorCode::kInvalidConfig, *problem};
  if (validate_only) return {};

  protocol::Uuid id;
  do id = random_uuid();
  while (find_topic(id) || id.is_zero());
  const auto placement = assignments.empty() ? place_replicas(0, partitions, replication_factor) : assignments;
  std::vector<MetadataRecord> records{protocol::TopicRecord{std::string(name), id}};
  for (int32_t p = 0; p < partitions; ++p) records.push_back(new_partition(id, p, placement[p]));
  for (const auto& [key, value] : configs)
    records.push_back(protocol::ConfigRecord{kTopicResource, std::string(name), key, value});

  // What the image will hold once the records are applied, for the listeners.
  MetadataImage preview;
  for (const auto& r : records) preview.apply(r);
  const TopicInfo& topic = *preview.find_topic(name);
  size_t told = 0;
  auto undo = [&] {
    for (size_t i = 0; i < told; ++i) {
      try {
        listeners_[i]->abandon_topic(topic);
      } catch (const std::exception&) {  // nothing more to undo with
      }
    }
  };
  try {
    for (; told < listeners_.size(); ++told) listeners_[told]->prepare_topic(topic);
  } catch (const std::exception& e) {
    ++told;  // the one that threw may have opened some logs
    undo();
    return {ErrorCode::kKafkaStorageError, "Could not create the logs of topic '" + topic.name + "': " + e.what()};
  }
  if (OperationResult result = commit(records); !result.ok()) {
    undo();
    return result;
  }
  if (created) *created = find_topic(name);
  return {};
}

OperationResult Controller::delete_topic(std::string_view name) {
  note(Event::kDeleteTopic);
  const TopicInfo* found = find_topic(name);
  if (!found) return {ErrorCode::kUnknownTopicOrPartition, "This server does not host this topic-partition."};
  const TopicInfo removed = *found;
  return commit({protocol::RemoveTopicRecord{removed.id}});
}

OperationResult Controller::alter_topic_configs(std::string_view name, const std::map<std::string, std::string>& configs,
                                                bool validate_only) {
  note(Event::kAlterConfigs);
  const TopicInfo* topic = find_topic(name);
  if (!topic) return {ErrorCode::kUnknownTopicOrPartition, "The topic '" + std::string(name) + "' does not exist."};
  for (const auto& [key, value] : configs)
    if (auto problem = validate_topic_config(key, value)) return {ErrorCode::kInvalidConfig, *problem};
  if (validate_only) return {};
  // The configs sent replace the topic's overrides: set each, remove the rest.
  std::vector<MetadataRecord> records;
  for (const auto& [key, value] : configs)
    records.push_back(protocol::ConfigRecord{kTopicResource, topic->name, key, value});
  for (const auto& [key, value] : topic->configs)
    if (!configs.count(key)) records.push_back(protocol::ConfigRecord{kTopicResource, topic->name, key, std::nullopt});
  if (records.empty()) return {};
  return commit(records);
}

OperationResult Controller::alter_broker_configs(std::string_view name, const std::map<std::string, std::string>& configs,
                                                 bool validate_only) {
  note(Event::kAlterConfigs);
  if (!name.empty()) {
    int64_t id = -1;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (ec != std::errc() || end != name.data() + name.size())
      return {ErrorCode::kInvalidRequest, "Unable to parse broker name as a base 10 number."};
    if (id < 0) return {ErrorCode::kInvalidRequest, "Invalid negative broker ID."};
    // Kept under the name brokers look their own up by ("1", not "01").
    if (id > INT32_MAX || std::to_string(id) != name)
      return {ErrorCode::kInvalidRequest, "Unable to parse broker name as a base 10 number."};
    if (id != options_.node_id && !image_.find_broker(static_cast<int32_t>(id)))
      return {ErrorCode::kBrokerIdNotRegistered, "No node with id " + std::string(name) + " found."};
  }
  for (const auto& [key, value] : configs) {
    if (!find_dynamic_broker_config(key))
      return {ErrorCode::kInvalidRequest, "Cannot update these configs dynamically: " + key};
    // Kafka's brokers validate these themselves: INVALID_REQUEST, not INVALID_CONFIG.
    if (auto problem = validate_dynamic_broker_config(key, value)) return {ErrorCode::kInvalidRequest, *problem};
  }
  if (validate_only) return {};
  std::vector<MetadataRecord> records;
  const std::map<std::string, std::string> none;
  const auto* current = image_.broker_configs(name);
  if (!current) current = &none;
  for (const auto& [key, value] : configs)
    if (auto it = current->find(key); it == current->end() || it->second != value)
      records.push_back(protocol::ConfigRecord{kBrokerResource, std::string(name), key, value});
  for (const auto& [key, value] : *current)
    if (!configs.count(key)) records.push_back(protocol::ConfigRecord{kBrokerResource, std::string(name), key, std::nullopt});
  if (records.empty()) return {};
  return commit(records);
}

OperationResult Controller::alter_group_configs(std::string_view name, const std::map<std::string, std::string>& configs,
                                                bool validate_only) {
  note(Event::kAlterConfigs);
  if (name.empty()) return {ErrorCode::kInvalidRequest, "Group name must not be empty."};
  for (const auto& [key, value] : configs)
    if (auto problem = validate_group_config(key, value)) return {ErrorCode::kInvalidConfig, *problem};
  if (validate_only) return {};
  std::vector<MetadataRecord> records;
  const std::map<std::string, std::string> none;
  const auto* current = image_.group_configs(name);
  if (!current) current = &none;
  for (const auto& [key, value] : configs)
    if (auto it = current->find(key); it == current->end() || it->second != value)
      records.push_back(protocol::ConfigRecord{kGroupResource, std::string(name), key, value});
  for (const auto& [key, value] : *current)
    if (!configs.count(key)) records.push_back(protocol::ConfigRecord{kGroupResource, std::string(name), key, std::nullopt});
  if (records.empty()) return {};
  return commit(records);
}

OperationResult Controller::create_partitions(std::string_view name, int32_t new_total, bool validate_only) {
  note(Event::kCreatePartitions);
  const TopicInfo* found = find_topic(name);
  if (!found) return {ErrorCode::kUnknownTopicOrPartition, "This server does not host this topic-partition."};
  const TopicInfo& topic = *found;
  const int32_t old = topic.partition_count();
  if (new_total < old)
    return {ErrorCode::kInvalidPartitions, "The topic " + topic.name + " currently has " + std::to_string(old) +
                                               " partition(s); " + std::to_string(new_total) +
                                               " would not be an increase."};
  if (new_total == old) return {ErrorCode::kInvalidPartitions, "Topic already has " + std::to_string(old) + " partition(s)."};
  if (static_cast<size_t>(topic.replication_factor()) > live_brokers().size())
    return {ErrorCode::kInvalidReplicationFactor,
            "Unable to replicate the partition " + std::to_string(topic.replication_factor()) +
                " time(s): only " + std::to_string(live_brokers().size()) + " broker(s) are registered."};
  if (validate_only) return {};

  std::vector<MetadataRecord> records;
  const auto placement = place_replicas(old, new_total - old, topic.replication_factor());
  for (int32_t p = old; p < new_total; ++p) records.push_back(new_partition(topic.id, p, placement[p - old]));
  TopicInfo grown = topic;
  for (const auto& r : records) {
    const auto& pr = std::get<protocol::PartitionRecord>(r);
    grown.partitions.push_back({pr.replicas, pr.isr, pr.leader, pr.leader_epoch, pr.partition_epoch, 0, {}, {}});
  }
  size_t told = 0;
  auto undo = [&] {
    for (size_t i = 0; i < told; ++i) {
      try {
        listeners_[i]->abandon_partitions(topic);
      } catch (const std::exception&) {  // nothing more to undo with
      }
    }
  };
  try {
    for (; told < listeners_.size(); ++told) listeners_[told]->prepare_partitions(grown, old);
  } catch (const std::exception& e) {
    ++told;
    undo();
    return {ErrorCode::kKafkaStorageError, "Could not create the logs of the new partitions of topic '" + topic.name +
                                               "': " + e.what()};
  }
  if (OperationResult result = commit(records); !result.ok()) {
    undo();
    return result;
  }
  return {};
}

}  // namespace sluice::controller
