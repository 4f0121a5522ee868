"""A cluster's answers where Kafka decides them, run on a Sluice cluster and on an Apache Kafka
cluster laid out alike (a controller-only node and three brokers, KRaft, 2 s sessions;
harness/cluster.py and harness/kafka_cluster.py): what Metadata says of lost replicas, when acks=all
is refused, what a broker that does not lead answers, and what a client fetching under an old or
a future leader epoch gets after a failover. Both must give the same answers."""
from __future__ import annotations

import time

import pytest

from harness import kwire
from harness.cluster import SluiceCluster
from harness.kafka_cluster import KafkaCluster

NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS = 6, 19


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
