"""A cluster's answers where Kafka decides them, run on a Sluice cluster and on an Apache Kafka
cluster laid out alike (a controller-only node and three brokers, KRaft, 2 s sessions;
harness/cluster.py and harness/kafka_cluster.py): what Metadata says of lost replicas, when acks=all
is refused, what a broker that does not lead answers, and what a client fetching under an old or
a future leader epoch gets after a failover. Both must give the same answers."""
from __future__ import annotations

import time

import pytest

from harness import kadmin_wire, kwire
from harness.cluster import SluiceCluster
from harness.kafka_cluster import KafkaCluster

# A Kafka cluster's answers are checked on every run: the Kafka side stays in make test.
pytestmark = pytest.mark.kafka_decides

NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS = 6, 19
UNKNOWN_TOPIC_OR_PARTITION, PREFERRED_LEADER_NOT_AVAILABLE, ELECTION_NOT_NEEDED = 3, 80, 84
INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, NO_REASSIGNMENT_IN_PROGRESS = 38, 39, 85


@pytest.fixture
def any_cluster(broker_kind):
    c = (SluiceCluster if broker_kind == "sluice" else KafkaCluster)(brokers=3)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()


def view(cluster, topic: str, via: int) -> dict:
    node = cluster.nodes[via]
    return kwire.metadata_partitions(node.host, node.port, topic)[0]


def wait_view(cluster, topic: str, via: int, condition, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = view(cluster, topic, via)
            if condition(v):
                return v
        except (OSError, KeyError):
            v = None
        assert time.monotonic() < deadline, f"{topic} as broker {via} sees it: {v}"
        time.sleep(0.1)


def produce_error(cluster, node_id: int, topic: str, acks: int) -> int:
    node = cluster.nodes[node_id]
    conn = kwire.KafkaConn(node.host, node.port)
    try:
        return kwire.produce(conn, topic, {0: kwire.record_batch([b"x"])}, acks=acks, timeout_ms=5000)[0].error
    finally:
        conn.close()


def test_replicas_lost_metadata_and_acks_all_refusal(any_cluster):
    c = any_cluster
    topic = "lost-replicas"
    c.create_topic(topic, 1, 3, config={"min.insync.replicas": "2"})
    leader = c.leader_of(topic, 0)
    first, second = [b for b in c.broker_ids if b != leader]
    # A broker that does not lead the partition refuses a write to it.
    assert produce_error(c, first, topic, -1) == NOT_LEADER_OR_FOLLOWER

    c.node(first).kill9()
    v = wait_view(c, topic, leader, lambda v: first not in v["isr"] and first in v["offline"])
    assert v["leader"] == leader and sorted(v["replicas"]) == sorted(c.broker_ids) and v["error"] == 0
    assert produce_error(c, leader, topic, -1) == 0  # two in sync: min.insync.replicas met

    c.node(second).kill9()
    # (The leader may drop it from the ISR for lagging before the controller fences it: wait for both.)
    v = wait_view(c, topic, leader, lambda v: v["isr"] == [leader] and sorted(v["offline"]) == sorted([first, second]))
    assert v["leader"] == leader
    # acks=all refused before the append; acks=1 still written.
    assert produce_error(c, leader, topic, -1) == NOT_ENOUGH_REPLICAS
    assert produce_error(c, leader, topic, 1) == 0

    c.node(first).start()
    v = wait_view(c, topic, leader, lambda v: first in v["isr"] and first not in v["offline"], timeout=40)
    assert produce_error(c, leader, topic, -1) == 0

    # Failover, as a client sees it: the leader dies; the one in-sync replica left leads in the
    # next leader epoch, refuses fetches under the old epoch (FENCED_LEADER_EPOCH, KIP-320) and
    # ones under an epoch it has not reached (UNKNOWN_LEADER_EPOCH), and serves the new one.
    old_epoch = v["epoch"]
    c.node(leader).kill9()
    v = wait_view(c, topic, first, lambda v: v["leader"] == first and v["epoch"] > old_epoch, timeout=30)
    node = c.nodes[first]
    with kwire.KafkaConn(node.host, node.port) as conn:
        # Kafka's broker publishes a new leader to its Metadata a moment before its replica
        # manager takes the role: until then it answers NOT_LEADER_OR_FOLLOWER, which clients retry.
        deadline = time.monotonic() + 10
        while kwire.fetch_error(conn, topic, 0, 0, v["epoch"]) == NOT_LEADER_OR_FOLLOWER and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kwire.fetch_error(conn, topic, 0, 0, old_epoch) == kwire.FENCED_LEADER_EPOCH
        assert kwire.fetch_error(conn, topic, 0, 0, v["epoch"] + 1) == kwire.UNKNOWN_LEADER_EPOCH
        assert kwire.fetch_error(conn, topic, 0, 0, v["epoch"]) == kwire.NONE


def test_elect_leaders(any_cluster):
    """ElectLeaders (kafka-leader-election.sh's request) at each version: what needs no election,
    what cannot be elected, and a preferred leader taking its partition back once in sync again."""
    c = any_cluster
    topic = "elect"
    c.create_topic(topic, 3, 3)
    preferred = {p: replicas[0] for p, (_, replicas, _) in c.partition_state(topic).items()}
    victim = preferred[0]
    via = next(b for b in c.broker_ids if b != victim)

    def elect(partitions, kind=kadmin_wire.PREFERRED, version=2):
        node = c.nodes[via]
        with kadmin_wire.Conn(f"{node.host}:{node.port}") as conn:
            return kadmin_wire.elect_leaders(conn, partitions, kind, version)

    def errors(answer):
        top, results = answer
        assert top == 0, answer
        return {key: err for key, (err, _) in results.items()}

    # Every partition has its preferred leader: nothing to elect, at every version.
    assert errors(elect({topic: [0, 1, 2, 7], "no-such-topic": [0]})) == {
        (topic, 0): ELECTION_NOT_NEEDED, (topic, 1): ELECTION_NOT_NEEDED, (topic, 2): ELECTION_NOT_NEEDED,
        (topic, 7): UNKNOWN_TOPIC_OR_PARTITION, ("no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION}
    assert elect({topic: [0, 7], "no-such-topic": [0]})[1] == {
        (topic, 0): (ELECTION_NOT_NEEDED, "Leader election not needed for topic partition."),
        (topic, 7): (UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {topic}-7"),
        ("no-such-topic", 0): (UNKNOWN_TOPIC_OR_PARTITION, "No such topic as no-such-topic")}
    assert errors(elect({topic: [0]}, version=0)) == {(topic, 0): ELECTION_NOT_NEEDED}
    assert errors(elect({topic: [0]}, kadmin_wire.UNCLEAN, version=1)) == {(topic, 0): ELECTION_NOT_NEEDED}
    # Every partition (null): those that need no election are left out; the topic is listed bare.
    assert errors(elect(None))[(topic, -1)] == 0

    # The preferred leader of partition 0 dies: it cannot be elected.
    c.node(victim).kill9()
    wait_view(c, topic, via, lambda v: v["leader"] not in (-1, victim))
    _, results = elect({topic: [0]})
    assert results[(topic, 0)] == (PREFERRED_LEADER_NOT_AVAILABLE, "The preferred leader was not available.")
    # Back and in sync: a preferred election moves the leadership to it, in a new leader epoch.
    c.node(victim).start()
    before = wait_view(c, topic, via, lambda v: victim in v["isr"], timeout=40)
    _, results = elect({topic: [0]})
    assert results[(topic, 0)] == (0, None), results
    wait_view(c, topic, via, lambda v: v["leader"] == victim and v["epoch"] > before["epoch"])
    assert errors(elect(None))[(topic, -1)] == 0


def test_partition_reassignment(any_cluster):
    """AlterPartitionReassignments and ListPartitionReassignments as kafka-reassign-partitions.sh
    sends them: Kafka's refusals and messages, a reassignment held in progress (its new replica is
    down) with the replicas Kafka lists for it, its cancellation, and moves that need no copy."""
    c = any_cluster
    topic = "reassign"
    c.create_topic(topic, 1, 2)
    leader, replicas, _ = c.partition_state(topic)[0]
    other = next(r for r in replicas if r != leader)
    spare = next(b for b in c.broker_ids if b not in replicas)

    def alter(moves, version=0, allow=True):
        node = c.nodes[leader]
        with kadmin_wire.Conn(f"{node.host}:{node.port}") as conn:
            top, results = kadmin_wire.alter_partition_reassignments(conn, moves, version,
                                                                     allow_replication_factor_change=allow)
        assert top == (0, None), top
        return results

    def listed(topics=None):
        node = c.nodes[leader]
        with kadmin_wire.Conn(f"{node.host}:{node.port}") as conn:
            err, ongoing = kadmin_wire.list_partition_reassignments(conn, topics)
        assert err == 0
        return ongoing

    assert alter({(topic, 5): [leader], ("nope", 0): [leader]}) == {
        (topic, 5): (UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find partition {topic}:5."),
        ("nope", 0): (UNKNOWN_TOPIC_OR_PARTITION, "Unable to find a topic named nope.")}
    for target, message in (([], "The manual partition assignment includes an empty replica list."),
                            ([leader, leader], f"The manual partition assignment includes the broker {leader} more than once."),
                            ([leader, 77], "The manual partition assignment includes broker 77, but no such broker is registered.")):
        assert alter({(topic, 0): target}) == {(topic, 0): (INVALID_REPLICA_ASSIGNMENT, message)}
    if not isinstance(c, KafkaCluster):  # v1 (AllowReplicationFactorChange) is Kafka 4.1's; the reference is 3.9
        assert alter({(topic, 0): [leader]}, version=1, allow=False) == {
            (topic, 0): (INVALID_REPLICATION_FACTOR, "The replication factor is changed from 2 to 1")}
    assert alter({(topic, 0): None}) == {(topic, 0): (NO_REASSIGNMENT_IN_PROGRESS, None)}
    assert listed() == {}

    # Held in progress: the new replica's broker is down (a registered broker, fenced or not, may be a target).
    c.node(spare).kill9()
    assert alter({(topic, 0): [spare, leader]}) == {(topic, 0): (0, None)}
    assert listed() == listed({topic: [0, 3]}) == {(topic, 0): ([spare, leader, other], [spare], [other])}
    assert listed({"nope": [0]}) == {}
    wait_view(c, topic, leader, lambda v: v["replicas"] == [spare, leader, other])
    # Cancelled: the new replica leaves, the others keep their order.
    assert alter({(topic, 0): None}) == {(topic, 0): (0, None)}
    assert listed() == {}
    wait_view(c, topic, leader, lambda v: v["replicas"] == [leader, other])
    # What needs no copy completes at once: a reorder (the leader stays), a shrink to an in-sync replica.
    assert alter({(topic, 0): [other, leader]}) == {(topic, 0): (0, None)}
    assert listed() == {}
    v = wait_view(c, topic, leader, lambda v: v["replicas"] == [other, leader])
    assert v["leader"] == leader
    assert alter({(topic, 0): [leader]}) == {(topic, 0): (0, None)}
    assert listed() == {}
    v = wait_view(c, topic, leader, lambda v: v["replicas"] == [leader] and v["isr"] == [leader])
    assert v["leader"] == leader


def test_describe_quorum(any_cluster):
    """DescribeQuorum (kafka-metadata-quorum.sh's request) sent to a broker, which forwards it: the
    controller leads, the brokers are observers that have the whole log, the controller's listener
    is given; another partition is unknown."""
    c = any_cluster
    c.create_topic("quorum-seen", 1, 3)  # something in the metadata log beyond the registrations
    node = c.nodes[c.broker_ids[0]]
    deadline = time.monotonic() + 20
    while True:
        with kadmin_wire.Conn(f"{node.host}:{node.port}") as conn:
            q = kadmin_wire.describe_quorum(conn)
        # Observers are listed once they have fetched, and caught up once they have everything.
        if sorted(q.observers) == sorted(c.broker_ids) and all(o[0] == q.high_watermark for o in q.observers.values()):
            break
        assert time.monotonic() < deadline, q
        time.sleep(0.2)
    assert (q.error, q.partition_error, q.leader_id) == (0, 0, 1), q
    assert q.leader_epoch >= 1 and q.high_watermark > 0, q
    assert list(q.voters) == [1] and q.voters[1][0] == q.high_watermark, q
    now_ms = time.time() * 1000
    for end, fetched, caught_up in q.observers.values():
        assert 0 < fetched <= now_ms + 1000 and 0 < caught_up <= now_ms + 1000, q
    assert [(host, port) for _, host, port in q.nodes[1]] == [("127.0.0.1", c.controller_port)], q.nodes
    with kadmin_wire.Conn(f"{node.host}:{node.port}") as conn:
        other = kadmin_wire.describe_quorum(conn, "other", 0)
        assert (other.error, other.partition_error) == (0, UNKNOWN_TOPIC_OR_PARTITION), other
