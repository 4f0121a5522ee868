#include "broker/quorum_peer.h"

#include <algorithm>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "broker/log.h"
#include "broker/steady_clock.h"
#include "controller/metadata_log.h"
#include "protocol/messages/begin_quorum_epoch_request.h"
#include "protocol/messages/begin_quorum_epoch_response.h"
#include "protocol/messages/end_quorum_epoch_request.h"
#include "protocol/messages/end_quorum_epoch_response.h"
#include "protocol/messages/fetch_request.h"
#include "protocol/messages/fetch_response.h"
#include "protocol/messages/fetch_snapshot_request.h"
#include "protocol/messages/fetch_snapshot_response.h"
#include "protocol/messages/vote_request.h"
#include "protocol/messages/vote_response.h"
#include "protocol/record_batch.h"
#include "protocol/wire.h"

namespace sluice::broker {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using protocol::ErrorCode;

constexpr std::string_view kStateKey = "quorum/state";
// Versions voters speak to each other.
constexpr int16_t kVoteVersion = 1;
constexpr int16_t kBeginEpochVersion = 1;
constexpr int16_t kEndEpochVersion = 1;
constexpr int16_t kFetchVersion = 12;
constexpr int16_t kFetchSnapshotVersion = 0;
constexpr int32_t kFetchBytes = 8 << 20;

// The one partition the quorum's requests name: __cluster_metadata-0.
template <typename Request>
auto& metadata_partition(Request& request) {
  auto& topic = request.topics.emplace_back();
  topic.topic_name = std::string(controller::kMetadataTopic);
  auto& partition = topic.partitions.emplace_back();
  partition.partition_index = 0;
  return partition;
}

// Logs a failure to reach another voter at most every 5 s per kind.
void report(const char* what, const std::exception& e) {
  static std::map<const char*, int64_t> last_ms;
  auto [it, fresh] = last_ms.try_emplace(what, INT64_MIN / 2);
  if (steady_now_ms() - it->second < 5000) return;
  it->second = steady_now_ms();
  SLUICE_LOG(kWarn, what << ": " << e.what() << " (retrying)");
}

}  // namespace

const char* QuorumPeer::role_name(Role role) {
  switch (role) {
    case Role::kUnattached: return "unattached";
    case Role::kFollower: return "follower";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "unknown";
}

QuorumPeer::QuorumPeer(asio::any_io_executor executor, const BrokerConfig& config, controller::Controller& controller,
                       storage::StateStore& store, StateWriter& writer)
    : executor_(executor),
      config_(config),
      controller_(controller),
      store_(store),
      writer_(writer),
      self_(config.node_id()),
      voters_(config.controller_quorum_voters()),
      cluster_id_(controller.cluster_id()),
      election_timeout_(config.get_int("controller.quorum.election.timeout.ms")),
      fetch_timeout_(config.get_int("controller.quorum.fetch.timeout.ms")),
      request_timeout_(config.get_int("controller.quorum.request.timeout.ms")),
      random_(static_cast<uint32_t>(steady_now_ms() * 7919 + self_)) {
  if (auto stored = store_.get(kStateKey)) {
    protocol::Reader r(*stored);
    epoch_ = r.read_int32();
    voted_for_ = r.read_int32();
    // The leader it knew in that epoch: it follows it again (and so never
    // votes again in an epoch that has a leader). A leader that restarts does
    // not lead again in its epoch: it stands in the next one.
    leader_ = r.read_int32();
    // Itself (it led that epoch: voted_for_ already keeps it from voting in
    // it), or a node no longer among the voters: no leader to follow.
    if (leader_ == self_ || !is_voter(leader_)) leader_ = -1;
    fresh_ = r.remaining() >= 4 && r.read_int32() == 0;
  } else {
    // Nothing here: the cluster's first start, or a controller whose disk was wiped.
    fresh_ = controller_.log().empty();
  }
  // A log written in later epochs than the state says (a single controller's
  // data grown into a quorum) starts past them.
  if (controller_.log().last_epoch() > epoch_) {
    epoch_ = controller_.log().last_epoch();
    voted_for_ = -1;
    leader_ = -1;
  }
  deadline_ms_ = steady_now_ms() + election_timeout().count();
  if (leader_ >= 0) {
    role_ = Role::kFollower;
    last_leader_contact_ms_ = steady_now_ms();
    fetch_timeout_jitter_ms_ = static_cast<int64_t>(random_() % static_cast<uint32_t>(election_timeout_.count() / 2 + 1));
  }
  controller_.set_quorum_epoch(epoch_);
}

QuorumPeer::~QuorumPeer() = default;

bool QuorumPeer::is_voter(int32_t id) const {
  return std::any_of(voters_.begin(), voters_.end(), [&](const Voter& v) { return v.id == id; });
}

std::chrono::milliseconds QuorumPeer::election_timeout() {
  // Randomised in [T, 2T): voters that time out together rarely stand together.
  const auto t = election_timeout_.count();
  return std::chrono::milliseconds(t + static_cast<int64_t>(random_() % static_cast<uint32_t>(std::max<int64_t>(t, 1))));
}

asio::awaitable<void> QuorumPeer::wait_for_log(std::chrono::milliseconds at_most) {
  AsyncEvent changed(executor_);
  log_waiters_.push_back(&changed);
  co_await changed.wait_until(std::chrono::steady_clock::now() + at_most);
  std::erase(log_waiters_, &changed);
}

asio::awaitable<void> QuorumPeer::sleep(std::chrono::milliseconds how_long) {
  asio::steady_timer timer(executor_, how_long);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

OutboundConnection& QuorumPeer::requests_to(int32_t id) {
  auto& c = requests_[id];
  if (!c)
    for (const auto& v : voters_)
      if (v.id == id)
        c = std::make_unique<OutboundConnection>(executor_, v.host, v.port, "controller-" + std::to_string(self_));
  return *c;
}

OutboundConnection& QuorumPeer::fetches_from(int32_t id) {
  auto& c = fetches_[id];
  if (!c)
    for (const auto& v : voters_)
      if (v.id == id)
        c = std::make_unique<OutboundConnection>(executor_, v.host, v.port, "controller-" + std::to_string(self_) + "-fetch");
  return *c;
}

// ---- durable state ----

void QuorumPeer::save() {
  protocol::Writer w;
  w.write_int32(epoch_);
  w.write_int32(voted_for_);
  w.write_int32(leader_);
  w.write_int32(fresh_ ? 0 : 1);  // caught up with a leader since its data was empty
  const uint64_t n = ++saves_;
  writer_.apply({{std::string(kStateKey), std::move(w.buffer())}},
                [this, n](bool ok) {
                  if (!ok) throw std::runtime_error("could not write the quorum state");
                  saved_ = std::max(saved_, n);
                  for (AsyncEvent* e : std::exchange(save_waiters_, {})) e->set();
                },
                chain_);
}

asio::awaitable<void> QuorumPeer::persisted() {
  const uint64_t wanted = saves_;
  while (saved_ < wanted) {
    AsyncEvent done(executor_);
    save_waiters_.push_back(&done);
    co_await done.wait_until(std::chrono::steady_clock::now() + 1s);
    std::erase(save_waiters_, &done);
  }
}

// ---- transitions ----

void QuorumPeer::step_down_as_leader() {
  if (role_ != Role::kLeader) return;
  controller_.resign();
  progress_.clear();
  SLUICE_LOG(kInfo, "controller " << self_ << " is no longer the quorum leader (epoch " << epoch_ << ")");
}

void QuorumPeer::become_unattached(int32_t epoch) {
  step_down_as_leader();
  if (epoch > epoch_) voted_for_ = -1;
  epoch_ = epoch;
  leader_ = -1;
  role_ = Role::kUnattached;
  deadline_ms_ = steady_now_ms() + election_timeout().count();
  save();
}

void QuorumPeer::become_follower(int32_t epoch, int32_t leader) {
  step_down_as_leader();
  // A fetch still waiting on an old leader (paused, say) must not hold up the
  // new one (leader_ may no longer name it: a vote or a candidacy cleared it).
  for (auto& [id, connection] : fetches_)
    if (id != leader) connection->close();
  if (epoch > epoch_) voted_for_ = -1;
  const bool changed = leader_ != leader || epoch_ != epoch;
  epoch_ = epoch;
  leader_ = leader;
  role_ = Role::kFollower;
  last_leader_contact_ms_ = steady_now_ms();
  // Followers that lose the leader together should not all stand at once (a split vote).
  fetch_timeout_jitter_ms_ = static_cast<int64_t>(random_() % static_cast<uint32_t>(election_timeout_.count() / 2 + 1));
  controller_.set_quorum_epoch(epoch);
  if (changed) SLUICE_LOG(kInfo, "controller " << self_ << " follows controller " << leader << " in epoch " << epoch);
  save();
  on_log_durable();  // the fetch loop may be waiting
}

void QuorumPeer::learn(int32_t epoch, int32_t leader) {
  if (epoch < epoch_) return;
  if (epoch == epoch_ && (leader < 0 || leader == leader_ || role_ == Role::kLeader)) return;
  if (leader >= 0 && leader != self_)
    become_follower(epoch, leader);
  else if (epoch > epoch_)
    become_unattached(epoch);
}

void QuorumPeer::become_leader() {
  if (controller_.log().durable_end_offset() != controller_.log().end_offset() ||
      controller_.log().durable_snapshot_offset() != controller_.log().snapshot_offset()) {
    // Cannot happen while candidates append nothing; if it did, the tail
    // could not be read back: stand again rather than lead without it.
    SLUICE_LOG(kError, "controller " << self_ << " won epoch " << epoch_ << " with its log not durable: standing again");
    role_ = Role::kUnattached;
    deadline_ms_ = steady_now_ms() + election_timeout().count();
    return;
  }
  fresh_ = false;
  role_ = Role::kLeader;
  leader_ = self_;
  leader_since_ms_ = steady_now_ms();
  progress_.clear();
  save();
  epoch_start_offset_ = controller_.log().end_offset();
  controller_.become_leader(epoch_);
  controller_.renew_all_sessions(steady_now_ms());
  SLUICE_LOG(kInfo, "controller " << self_ << " leads the quorum in epoch " << epoch_ << " (log end "
                                   << controller_.log().end_offset() << ", committed " << controller_.committed_offset()
                                   << ")");
  asio::co_spawn(executor_, announce_epoch(epoch_), asio::detached);
}

// ---- the loops ----

asio::awaitable<void> QuorumPeer::run() {
  SLUICE_LOG(kInfo, "controller " << self_ << " joins a quorum of " << voters_.size() << " voters in epoch " << epoch_);
  asio::co_spawn(executor_, follow(), asio::detached);
  while (!stopping_) {
    co_await sleep(std::chrono::milliseconds(std::clamp<int64_t>(election_timeout_.count() / 10, 5, 50)));
    const int64_t now = steady_now_ms();
    switch (role_) {
      case Role::kUnattached:
      case Role::kCandidate:
        if (now >= deadline_ms_) co_await start_election();
        break;
      case Role::kFollower:
        if (now - last_leader_contact_ms_ > fetch_timeout_.count() + fetch_timeout_jitter_ms_) {
          SLUICE_LOG(kWarn, "controller " << self_ << " has not heard from leader " << leader_ << " for "
                                          << fetch_timeout_.count() << " ms: standing for election");
          co_await start_election();
        }
        break;
      case Role::kLeader: {
        // Check quorum: a leader a majority no longer fetches from may be cut off from
        // them (they elect another): it resigns rather than hold brokers that cannot commit.
        const int64_t window = fetch_timeout_.count() * 3 / 2;
        if (now - leader_since_ms_ < window) break;
        size_t in_touch = 1;
        for (const auto& [id, p] : progress_)
          if (p.last_fetch_steady_ms >= 0 && now - p.last_fetch_steady_ms <= window) ++in_touch;
        if (in_touch < voters_.size() / 2 + 1) {
          SLUICE_LOG(kWarn, "controller " << self_ << " lost touch with a majority of the quorum: resigning epoch " << epoch_);
          step_down_as_leader();
          role_ = Role::kUnattached;
          leader_ = -1;
          deadline_ms_ = now + election_timeout().count();
          save();
        }
        break;
      }
    }
  }
}

asio::awaitable<void> QuorumPeer::start_election() {
  step_down_as_leader();
  role_ = Role::kCandidate;
  ++epoch_;
  voted_for_ = self_;
  leader_ = -1;
  const int32_t epoch = epoch_;
  deadline_ms_ = steady_now_ms() + election_timeout().count();
  save();
  co_await persisted();
  // Votes are asked with the whole log durable: what a vote promises is on disk.
  while (controller_.log().durable_end_offset() != controller_.log().end_offset() && role_ == Role::kCandidate) {
    co_await wait_for_log(100ms);
  }
  if (role_ != Role::kCandidate || epoch_ != epoch) co_return;
  SLUICE_LOG(kInfo, "controller " << self_ << " stands for election in epoch " << epoch << " (log end "
                                  << controller_.log().end_offset() << ", last epoch " << controller_.log().last_epoch()
                                  << ")");
  auto votes = std::make_shared<int>(1);
  if (voters_.size() == 1) {
    become_leader();
    co_return;
  }
  for (const auto& v : voters_)
    if (v.id != self_) asio::co_spawn(executor_, ask_for_vote(v, epoch, votes), asio::detached);
}

asio::awaitable<void> QuorumPeer::ask_for_vote(Voter voter, int32_t epoch, std::shared_ptr<int> votes) {
  protocol::VoteRequest request;
  request.cluster_id = cluster_id_;
  request.voter_id = voter.id;
  auto& p = metadata_partition(request);
  p.replica_epoch = epoch;
  p.replica_id = self_;
  p.last_offset_epoch = controller_.log().last_epoch();
  p.last_offset = controller_.log().end_offset();
  try {
    auto reply = co_await requests_to(voter.id).call<protocol::VoteResponse>(request, kVoteVersion, request_timeout_);
    if (reply.body.error_code != 0 || reply.body.topics.empty() || reply.body.topics[0].partitions.empty()) co_return;
    const auto& answer = reply.body.topics[0].partitions[0];
    // A later epoch, or a leader already elected in this one: follow it
    // rather than stand again (and unseat it).
    if (answer.leader_epoch > epoch_ || (answer.leader_epoch == epoch_ && answer.leader_id >= 0)) {
      learn(answer.leader_epoch, answer.leader_id);
      co_return;
    }
    if (answer.error_code != 0 || !answer.vote_granted) co_return;
    if (role_ != Role::kCandidate || epoch_ != epoch) co_return;
    if (++*votes >= static_cast<int>(voters_.size() / 2 + 1)) become_leader();
  } catch (const std::exception& e) {
    report("asking a voter for its vote failed", e);
  }
}

asio::awaitable<void> QuorumPeer::announce_epoch(int32_t epoch) {
  // To every voter at once: one that is paused or cut off must not delay the
  // others, whose election timers run since they voted.
  for (const auto& v : voters_)
    if (v.id != self_) asio::co_spawn(executor_, announce_epoch_to(v, epoch), asio::detached);
  co_return;
}

asio::awaitable<void> QuorumPeer::announce_epoch_to(Voter voter, int32_t epoch) {
  // Until it has fetched in this epoch (or the epoch is over): a voter that
  // missed the announcement would otherwise stand for election.
  while (!stopping_ && role_ == Role::kLeader && epoch_ == epoch && !progress_.contains(voter.id)) {
    protocol::BeginQuorumEpochRequest request;
    request.cluster_id = cluster_id_;
    request.voter_id = voter.id;
    auto& p = metadata_partition(request);
    p.leader_id = self_;
    p.leader_epoch = epoch;
    for (const auto& me : voters_)
      if (me.id == self_) {
        const auto names = config_.controller_listener_names();
        request.leader_endpoints.push_back({names.empty() ? "CONTROLLER" : names.front(), me.host, me.port});
      }
    try {
      auto reply = co_await requests_to(voter.id).call<protocol::BeginQuorumEpochResponse>(request, kBeginEpochVersion,
                                                                                           request_timeout_);
      if (!reply.body.topics.empty() && !reply.body.topics[0].partitions.empty()) {
        const auto& answer = reply.body.topics[0].partitions[0];
        if (answer.leader_epoch > epoch_) learn(answer.leader_epoch, answer.leader_id);
        if (answer.error_code == 0) co_return;  // it follows: its fetches keep it so
      }
    } catch (const std::exception& e) {
      report("announcing the quorum epoch failed", e);
    }
    co_await sleep(std::min<std::chrono::milliseconds>(election_timeout_, 500ms));
  }
}

asio::awaitable<void> QuorumPeer::follow() {
  while (!stopping_) {
    if (role_ != Role::kFollower || leader_ < 0) {
      co_await wait_for_log(50ms);
      continue;
    }
    const int32_t leader = leader_, epoch = epoch_;
    bool ok = false;
    try {
      ok = co_await fetch_once(leader, epoch);
    } catch (const std::exception& e) {
      report("fetching the metadata log from the quorum leader failed", e);
    }
    // After a failure, a pause before trying again, unless there is a new leader to try.
    if (!ok && leader_ == leader && epoch_ == epoch)
      co_await sleep(std::min<std::chrono::milliseconds>(fetch_timeout_ / 4, 200ms));
  }
}

asio::awaitable<bool> QuorumPeer::fetch_once(int32_t leader, int32_t epoch) {
  const controller::MetadataLog& log = controller_.log();
  protocol::FetchRequest request;
  request.cluster_id = cluster_id_;
  request.replica_id = self_;
  request.max_wait_ms = static_cast<int32_t>(std::min<int64_t>(fetch_timeout_.count() / 2, 500));
  request.min_bytes = 1;
  request.max_bytes = kFetchBytes;
  auto& topic = request.topics.emplace_back();
  topic.topic = std::string(controller::kMetadataTopic);
  auto& partition = topic.partitions.emplace_back();
  partition.partition = 0;
  partition.current_leader_epoch = epoch;
  partition.fetch_offset = log.end_offset();
  partition.last_fetched_epoch = log.last_epoch();
  partition.partition_max_bytes = kFetchBytes;
  const int64_t fetched_from = log.end_offset();
  auto reply = co_await fetches_from(leader).call<protocol::FetchResponse>(
      request, kFetchVersion, request_timeout_ + std::chrono::milliseconds(request.max_wait_ms));
  if (role_ != Role::kFollower || leader_ != leader || epoch_ != epoch) co_return true;  // moved on meanwhile
  if (reply.body.responses.empty() || reply.body.responses[0].partitions.empty()) co_return false;
  const auto& data = reply.body.responses[0].partitions[0];
  if (data.current_leader.leader_epoch > epoch_) {
    learn(data.current_leader.leader_epoch, data.current_leader.leader_id);
    co_return true;
  }
  if (data.error_code != 0) co_return false;
  last_leader_contact_ms_ = steady_now_ms();
  if (data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0) {
    // Our log differs from the leader's after the end of that epoch: drop
    // what follows, and fetch again from there.
    const auto [local_epoch, local_end] = log.end_offset_for_epoch(data.diverging_epoch.epoch);
    int64_t to = std::min(data.diverging_epoch.end_offset, local_epoch < 0 ? log.snapshot_offset() : local_end);
    to = std::max(to, log.snapshot_offset());
    SLUICE_LOG(kInfo, "controller " << self_ << " truncates its metadata log from " << log.end_offset() << " to " << to
                                    << " (diverged from leader " << leader << " after epoch "
                                    << data.diverging_epoch.epoch << ")");
    controller_.truncate_replicated(to);
    co_return true;
  }
  if (data.snapshot_id.end_offset >= 0) {
    co_await load_snapshot(leader, epoch, data.snapshot_id.end_offset, data.snapshot_id.epoch);
    co_return true;
  }
  if (data.records && !data.records->bytes().empty()) {
    // One batch per epoch run: each batch's records are appended in its epoch.
    for (const auto& run : controller::split_fetched_records(data.records->bytes(), fetched_from))
      controller_.append_replicated(run.records, run.epoch);
    // What we tell the leader we hold (our next fetch offset) must be on disk.
    while (log.durable_end_offset() < log.end_offset() && !stopping_) {
      co_await wait_for_log(100ms);
    }
  }
  if (data.high_watermark >= 0) controller_.set_high_watermark(data.high_watermark);
  if (fresh_ && data.high_watermark >= 0) {
    // A voter that started empty holds everything committed once it reaches
    // the high watermark the leader first gave it: from then on it may vote.
    if (catch_up_target_ < 0) catch_up_target_ = data.high_watermark;
    if (log.end_offset() >= catch_up_target_ && log.durable_end_offset() == log.end_offset()) {
      fresh_ = false;
      save();
      SLUICE_LOG(kInfo, "controller " << self_ << " has caught up with the quorum (offset " << log.end_offset()
                                      << "): it may vote again");
    }
  }
  co_return true;
}

asio::awaitable<void> QuorumPeer::load_snapshot(int32_t leader, int32_t epoch, int64_t end_offset,
                                                int32_t snapshot_epoch) {
  protocol::FetchSnapshotRequest request;
  request.cluster_id = cluster_id_;
  request.replica_id = self_;
  auto& st = request.topics.emplace_back();
  st.name = std::string(controller::kMetadataTopic);
  auto& sp = st.partitions.emplace_back();
  sp.partition = 0;
  sp.current_leader_epoch = epoch;
  sp.snapshot_id = {end_offset, snapshot_epoch};
  auto reply = co_await fetches_from(leader).call<protocol::FetchSnapshotResponse>(request, kFetchSnapshotVersion,
                                                                                  request_timeout_);
  if (role_ != Role::kFollower || leader_ != leader || epoch_ != epoch) co_return;
  if (reply.body.topics.empty() || reply.body.topics[0].partitions.empty() ||
      reply.body.topics[0].partitions[0].error_code != 0)
    co_return;  // replaced meanwhile: the next fetch points at the new one
  const auto& data = reply.body.topics[0].partitions[0];
  std::vector<std::string> records;
  if (data.unaligned_records)
    protocol::visit_record_values(data.unaligned_records->bytes(),
                                  [&](int64_t, std::optional<std::string_view> v) { records.emplace_back(v.value_or("")); });
  SLUICE_LOG(kInfo, "controller " << self_ << " loads leader " << leader << "'s metadata snapshot at offset " << end_offset);
  controller_.install_replicated_snapshot(end_offset, snapshot_epoch, records);
}

// ---- the leader's side ----

void QuorumPeer::on_voter_fetch(int32_t voter, int64_t fetch_offset, int64_t wall_now) {
  if (role_ != Role::kLeader || voter == self_) return;
  VoterProgress& p = progress_[voter];
  p.log_end_offset = fetch_offset;
  p.last_fetch_ms = wall_now;
  p.last_fetch_steady_ms = steady_now_ms();
  if (fetch_offset >= controller_.log().durable_end_offset()) p.last_caught_up_ms = wall_now;
  update_high_watermark();
}

void QuorumPeer::update_high_watermark() {
  if (role_ != Role::kLeader) return;
  std::vector<int64_t> offsets{controller_.log().durable_end_offset()};
  for (const auto& v : voters_)
    if (v.id != self_) {
      auto it = progress_.find(v.id);
      offsets.push_back(it == progress_.end() ? -1 : it->second.log_end_offset);
    }
  std::sort(offsets.begin(), offsets.end(), std::greater<>());
  const int64_t majority_holds = offsets[voters_.size() / 2];
  // Raft's rule: only a record of the leader's own epoch commits by count
  // (and with it everything before it).
  if (majority_holds > epoch_start_offset_) controller_.set_high_watermark(majority_holds);
}

void QuorumPeer::on_log_durable() {
  for (AsyncEvent* e : std::exchange(log_waiters_, {})) e->set();
  update_high_watermark();
}

// ---- answering the other voters ----

asio::awaitable<QuorumPeer::VoteAnswer> QuorumPeer::on_vote(int32_t candidate, int32_t candidate_epoch,
                                                            int32_t last_epoch, int64_t last_offset) {
  VoteAnswer answer;
  if (!is_voter(candidate)) {
    answer.error = ErrorCode::kInconsistentVoterSet;
  } else if (candidate_epoch > epoch_) {
    become_unattached(candidate_epoch);
  }
  if (answer.error == ErrorCode::kNone && candidate_epoch == epoch_) {
    const controller::MetadataLog& log = controller_.log();
    const bool log_ok = last_epoch > log.last_epoch() || (last_epoch == log.last_epoch() && last_offset >= log.end_offset());
    const bool free = (voted_for_ < 0 || voted_for_ == candidate) && leader_ < 0 && role_ != Role::kLeader;
    // A voter that started empty and has not caught up may have lost a vote
    // or records it acknowledged before (a wiped disk): it votes only for a
    // candidate with an empty log too (the cluster's first election).
    const bool may_vote = (!fresh_ || last_offset == 0) && !stopping_;
    if (log_ok && free && !may_vote)
      SLUICE_LOG(kInfo, "controller " << self_ << " started empty and has not caught up yet: no vote for "
                                      << candidate << " in epoch " << candidate_epoch);
    if (log_ok && free && may_vote) {
      voted_for_ = candidate;
      deadline_ms_ = steady_now_ms() + election_timeout().count();
      save();
      answer.granted = true;
    }
  }
  co_await persisted();
  answer.leader = leader_;
  answer.epoch = epoch_;
  // Granted in this epoch only if nothing moved on while the vote was written.
  answer.granted = answer.granted && epoch_ == candidate_epoch && voted_for_ == candidate;
  co_return answer;
}

asio::awaitable<QuorumPeer::EpochAnswer> QuorumPeer::on_begin_epoch(int32_t leader, int32_t epoch) {
  EpochAnswer answer;
  if (!is_voter(leader)) {
    answer.error = ErrorCode::kInconsistentVoterSet;
  } else if (epoch < epoch_) {
    answer.error = ErrorCode::kFencedLeaderEpoch;
  } else if (leader != self_) {
    learn(epoch, leader);
    co_await persisted();
  }
  answer.leader = leader_;
  answer.epoch = epoch_;
  co_return answer;
}

asio::awaitable<QuorumPeer::EpochAnswer> QuorumPeer::on_end_epoch(int32_t leader, int32_t epoch) {
  EpochAnswer answer;
  if (epoch < epoch_) {
    answer.error = ErrorCode::kFencedLeaderEpoch;
  } else if (epoch == epoch_ && leader == leader_ && leader != self_) {
    // The leader is going away: stand soon (in the next epoch), not after a
    // whole fetch timeout. leader_ stays: this epoch had one, so no vote in it.
    role_ = Role::kUnattached;
    deadline_ms_ = steady_now_ms() + static_cast<int64_t>(random_() % 200);
    save();
    co_await persisted();
  } else if (epoch > epoch_) {
    become_unattached(epoch);
    co_await persisted();
  }
  answer.leader = leader_;
  answer.epoch = epoch_;
  co_return answer;
}

asio::awaitable<void> QuorumPeer::resign_for_shutdown() {
  stopping_ = true;  // no more votes given or asked for
  if (role_ != Role::kLeader) co_return;
  const int32_t epoch = epoch_;
  step_down_as_leader();
  role_ = Role::kUnattached;
  leader_ = -1;
  deadline_ms_ = INT64_MAX;
  save();
  // To every voter at once, for at most 500 ms: a voter that does not hear
  // it learns by its fetch timeout instead.
  auto pending = std::make_shared<size_t>(0);
  auto all_told = std::make_shared<AsyncEvent>(executor_);
  for (const auto& v : voters_) {
    if (v.id == self_) continue;
    ++*pending;
    asio::co_spawn(
        executor_,
        [this, v, epoch, pending, all_told]() -> asio::awaitable<void> {
          protocol::EndQuorumEpochRequest request;
          request.cluster_id = cluster_id_;
          auto& p = metadata_partition(request);
          p.leader_id = self_;
          p.leader_epoch = epoch;
          try {
            co_await requests_to(v.id).call<protocol::EndQuorumEpochResponse>(request, kEndEpochVersion, 500ms);
          } catch (const std::exception&) {
          }
          if (--*pending == 0) all_told->set();
        },
        asio::detached);
  }
  if (*pending > 0) co_await all_told->wait_until(std::chrono::steady_clock::now() + 600ms);
  co_await persisted();
}

void QuorumPeer::stop() {
  stopping_ = true;
  for (auto& [id, c] : requests_) c->close();
  for (auto& [id, c] : fetches_) c->close();
}

}  // namespace sluice::broker
