// A controller's part in a quorum of several (controller.quorum.voters with
// more than one voter): Kafka's KRaft protocol (KIP-595) replicating the
// metadata log. One voter leads an epoch; the others fetch the log from it
// (Fetch of __cluster_metadata with their replica id and the epoch of their
// last record, truncating where the leader says they diverge) and the leader
// commits what a majority holds (the high watermark). A follower that hears
// nothing from its leader for controller.quorum.fetch.timeout.ms, or a voter
// that knows no leader for a randomised controller.quorum.election.timeout.ms,
// stands in the next epoch (Vote); the winner tells the others
// (BeginQuorumEpoch). A leader that stops hearing from a majority for 1.5
// fetch timeouts resigns; one shutting down says so (EndQuorumEpoch) so the
// others elect at once. The state a vote depends on (epoch, vote, leader) is
// durable before anything acts on it ("quorum/state", FORMATS.md).
//
// A voter whose disk was wiped rejoins as an empty follower: it copies the
// leader's log (or snapshot) and votes again only once it holds everything
// the leader had committed when it came back, so that it cannot help elect a
// leader that lacks what it once acknowledged (until then it votes only in a
// first election, between empty logs).
//
// The Controller acts only while this makes it leader (become_leader,
// resign); as a follower it keeps its copy of the log and applies what the
// high watermark commits. controller/README.md has the guarantees.
//
// Single-threaded: runs on the node's network thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "broker/async_event.h"
#include "broker/config.h"
#include "broker/outbound_connection.h"
#include "broker/state_writer.h"
#include "controller/controller.h"
#include "protocol/error_codes.h"

namespace sluice::broker {

class QuorumPeer {
 public:
  enum class Role { kUnattached, kFollower, kCandidate, kLeader };
  static const char* role_name(Role role);

  QuorumPeer(boost::asio::any_io_executor executor, const BrokerConfig& config, controller::Controller& controller,
             storage::StateStore& store, StateWriter& writer);
  ~QuorumPeer();

  Role role() const { return role_; }
  int32_t epoch() const { return epoch_; }
  int32_t leader_id() const { return leader_; }
  int32_t node_id() const { return self_; }
  bool is_voter(int32_t id) const;
  const std::vector<Voter>& voters() const { return voters_; }

  // Elections and following, until stop().
  boost::asio::awaitable<void> run();
  // A leader shutting down resigns and tells the other voters
  // (EndQuorumEpoch), so that they elect a new one at once.
  boost::asio::awaitable<void> resign_for_shutdown();
  void stop();

  // Vote (key 52): whether this voter gives `candidate` its vote in
  // `candidate_epoch`; `leader`/`epoch` receive what it knows after.
  struct VoteAnswer {
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    int32_t leader = -1;
    int32_t epoch = 0;
    bool granted = false;
  };
  boost::asio::awaitable<VoteAnswer> on_vote(int32_t candidate, int32_t candidate_epoch, int32_t last_epoch,
                                             int64_t last_offset);
  // BeginQuorumEpoch (key 53) and EndQuorumEpoch (key 54): a leader
  // announcing its epoch, or ending it.
  struct EpochAnswer {
    protocol::ErrorCode error = protocol::ErrorCode::kNone;
    int32_t leader = -1;
    int32_t epoch = 0;
  };
  boost::asio::awaitable<EpochAnswer> on_begin_epoch(int32_t leader, int32_t epoch);
  boost::asio::awaitable<EpochAnswer> on_end_epoch(int32_t leader, int32_t epoch);

  // The leader's side of a voter's Fetch whose epochs checked out: the voter
  // holds the leader's log below `fetch_offset`. Moves the high watermark.
  void on_voter_fetch(int32_t voter, int64_t fetch_offset, int64_t wall_now_ms);
  // A voter's progress as the leader sees it (DescribeQuorum).
  struct VoterProgress {
    int64_t log_end_offset = -1;
    int64_t last_fetch_ms = -1;       // wall clock
    int64_t last_caught_up_ms = -1;   // wall clock
    int64_t last_fetch_steady_ms = -1;
  };
  const std::map<int32_t, VoterProgress>& voter_progress() const { return progress_; }
  // Wakes coroutines waiting for the log (a follower's durable append).
  void on_log_durable();

 private:
  struct State {
    int32_t epoch = 0;
    int32_t voted_for = -1;
    int32_t leader = -1;
  };
  // The transitions: each sets the role and the durable state (written
  // before a caller that awaits persisted() goes on).
  void become_unattached(int32_t epoch);
  void become_follower(int32_t epoch, int32_t leader);
  void become_leader();
  void step_down_as_leader();
  boost::asio::awaitable<void> persisted();
  void save();

  boost::asio::awaitable<void> start_election();
  boost::asio::awaitable<void> ask_for_vote(Voter voter, int32_t epoch, std::shared_ptr<int> votes);
  boost::asio::awaitable<void> announce_epoch(int32_t epoch);
  boost::asio::awaitable<void> announce_epoch_to(Voter voter, int32_t epoch);
  boost::asio::awaitable<void> follow();
  // One fetch from the leader; false when nothing could be fetched.
  boost::asio::awaitable<bool> fetch_once(int32_t leader, int32_t epoch);
  boost::asio::awaitable<void> load_snapshot(int32_t leader, int32_t epoch, int64_t end_offset, int32_t snapshot_epoch);
  // A higher epoch (or a leader) learnt from an answer.
  void learn(int32_t epoch, int32_t leader);
  void update_high_watermark();
  OutboundConnection& requests_to(int32_t id);
  OutboundConnection& fetches_from(int32_t id);
  std::chrono::milliseconds election_timeout();
  boost::asio::awaitable<void> sleep(std::chrono::milliseconds how_long);
  // Until the log changes (a write durable, a role change) or `at_most` passes.
  boost::asio::awaitable<void> wait_for_log(std::chrono::milliseconds at_most);

  boost::asio::any_io_executor executor_;
  const BrokerConfig& config_;
  controller::Controller& controller_;
  storage::StateStore& store_;
  StateWriter& writer_;
  std::shared_ptr<StateWriter::Chain> chain_ = std::make_shared<StateWriter::Chain>();
  const int32_t self_;
  const std::vector<Voter> voters_;
  const std::string cluster_id_;
  const std::chrono::milliseconds election_timeout_;
  const std::chrono::milliseconds fetch_timeout_;
  const std::chrono::milliseconds request_timeout_;
  std::minstd_rand random_;

  Role role_ = Role::kUnattached;
  int32_t epoch_ = 0;
  int32_t voted_for_ = -1;
  int32_t leader_ = -1;
  uint64_t saves_ = 0, saved_ = 0;  // writes submitted, and done
  std::vector<AsyncEvent*> save_waiters_;
  std::vector<AsyncEvent*> log_waiters_;
  int64_t deadline_ms_ = 0;         // steady: when an unattached voter or a candidate stands (again)
  int64_t last_leader_contact_ms_ = 0;
  int64_t fetch_timeout_jitter_ms_ = 0;  // up to half an election timeout, drawn per leader followed
  int64_t leader_since_ms_ = 0;
  int64_t epoch_start_offset_ = 0;  // the leader's first record of its epoch
  std::map<int32_t, VoterProgress> progress_;
  // Started with no quorum state and an empty log, and not caught up with a
  // leader since: the cluster's first start, or a wiped disk (see on_vote).
  bool fresh_ = false;
  int64_t catch_up_target_ = -1;
  std::map<int32_t, std::unique_ptr<OutboundConnection>> requests_;
  std::map<int32_t, std::unique_ptr<OutboundConnection>> fetches_;
  bool stopping_ = false;
};

}  // namespace sluice::broker
