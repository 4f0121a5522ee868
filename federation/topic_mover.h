// Moving a federated topic's partitions from one member cluster to another,
// or spreading a split topic to one more member: copy, catch up, switch
// (issue 19). Started from the admin server (POST /v1/topics/<topic>/move?
// to=<cluster>[&from=<cluster>], /v1/topics/<topic>/spread?to=<cluster>) and
// run in the background on the endpoint's thread; its progress is in
// GET /v1/topics.
//
//   1. The move is recorded in the map as a creation on the new member
//      (FederationStore::begin_creation), so a kill -9 before the switch has
//      the copy deleted at the next start. The topic is created there with
//      the same partition count and the old member's topic configs.
//   2. Each partition's batches are copied from its log start on the old
//      member (Fetch) to the new one (Produce, one batch per partition per
//      request, as it came, producer ids and sequences included), and the
//      new member's offsets checked against the old ones: the copy of the
//      old member's offset o is at o - base, base being the log start the
//      copy began at. Clients go on reading and writing on the old member.
//   3. Once the copy has nearly caught up, the switch: Produce and
//      OffsetCommit for the segment are answered with retriable errors
//      (NOT_LEADER_OR_FOLLOWER, COORDINATOR_LOAD_IN_PROGRESS), the Produce
//      requests already forwarded are waited for, the rest is copied until
//      the old member's latest offsets stay put, and every group's committed
//      offsets for the topic are copied over (less the base).
//   4. The map is rewritten durably: the partitions are on the new member,
//      with the bases (placement.h), so a client's offsets name the same
//      records before and after. Then the old member's topic is deleted where
//      it keeps no partition of the topic (recorded in the same transaction,
//      so a stop in between finishes it at the next start); where it keeps
//      some (a spread), the moved partitions are emptied instead.
// A move is a list of moved partitions ("legs"), from one member (a move) or
// from every member holding the topic (a spread); the new member's partition
// i is the i-th.
// Any failure before the switch ends the move: the copy is deleted and the
// topic stays where it was. What a move refuses: a topic whose batches are
// not contiguous (compacted, or written in transactions), since the copy
// could not keep its offsets.
#pragma once

#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace sluice::federation {

class Federation;
class MemberLinks;

// Starts moving `topic`'s segment on member `from` (empty: the topic's only
// segment) to member `to`; "" if it started, else why not (the topic is not
// placed, or is being changed; `to` is unknown, unhealthy or holds it).
std::string start_topic_move(Federation& federation, const std::string& topic, std::string from, const std::string& to);

// Adds member `to` to `topic`: from each segment, its last n / (members + 1)
// partitions are moved there (a topic of 12 over a and b ends with 4 on each
// of a, b and `to`), so that its messages spread over one member more. The
// partitions keep their federated numbers; the members they leave keep them,
// emptied (DeleteRecords), as Kafka cannot delete a partition. "" if it
// started, else why not (as start_topic_move, or too few partitions).
std::string start_topic_spread(Federation& federation, const std::string& topic, const std::string& to);

// Deletes what a move left on its old members, as recorded with its switch
// (left_part() in federation_store.h): the topic on a member named alone, and the
// records of a member partition named with it (DeleteRecords to the high
// watermark). True once all of it is gone (a member no longer configured has
// nothing to delete); false if a member did not answer or refused: asked
// again later.
boost::asio::awaitable<bool> delete_left_parts(Federation& federation, MemberLinks& links, std::string topic,
                                               std::vector<std::string> parts);

}  // namespace sluice::federation
