"""Several federation endpoints over one map (issue 19, federation/map_log.h): the map is a log on
member `a` (federation.map.cluster) that both endpoints append to and read; each endpoint lists both
(federation.endpoints) and the consumer groups are dealt out between them. Sluice only (the endpoint
is Sluice's own); the members are single-node Sluice clusters.

  - a topic created through one endpoint is served by the other, under the same federated id, and
    what is produced through one is read back byte for byte through the other; a deletion through
    one is seen by the other, which does not adopt the members' leftovers back;
  - the same name created through both at once, round after round: exactly one creation wins, the
    other gets TOPIC_ALREADY_EXISTS, and the members hold only the winner's parts;
  - producer ids handed out by both endpoints never collide, across a restart of one of them;
  - the same with the map kept on an Apache Kafka member;
  - a topic moved between members through one endpoint while a producer writes through the other
    and a group reads through both: every acknowledged record consumed exactly once (the other
    endpoint held its writes back for the switch and said so in the map); with the other endpoint
    down the move does not switch, and the topic is writable again at once;
  - a consumer group whose members bootstrap from different endpoints meets at one coordinator and
    reads a split topic exactly once; when that endpoint is killed (kill -9), the other takes its
    groups, the members follow by themselves, and the group reads what comes next; the killed
    endpoint restarts with the map intact.
Every wait is bounded.
"""
from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from harness import ck, groups, kwire
from harness.brokers import Broker
from harness.cluster import sluice_only_fixture  # noqa: F401 (fixture)
from harness.data import check_partition, expected_by_partition
from harness.federation import FederationNode
from harness.prom import admin_json, http_get
from test_federation import create, member_topics, move_under_load

MAP_TOPIC = "__sluice_federation_map"


def shared_over(kinds: dict[str, str]):
    """Two endpoints over members of these kinds; the map is kept on member a."""
    members = {name: Broker(kind) for name, kind in kinds.items()}
    endpoints: list[FederationNode] = []
    try:
        for m in members.values():
            m.start()
        bootstraps = {name: m.bootstrap for name, m in members.items()}
        endpoints = [FederationNode(bootstraps), FederationNode(bootstraps)]
        listed = ",".join(f"{i + 1}@127.0.0.1:{e.port}" for i, e in enumerate(endpoints))
        for i, e in enumerate(endpoints):
            e.extra.update({"node.id": str(i + 1), "federation.map.cluster": "a", "federation.endpoints": listed})
        for e in endpoints:
            e.start()
        yield endpoints, members
    finally:
        for e in endpoints:
            e.cleanup()
        for m in members.values():
            m.cleanup()


@pytest.fixture(name="shared")
def shared_federation_fixture():
    yield from shared_over({"a": "sluice", "b": "sluice"})


@pytest.fixture(name="shared_on_kafka")
def shared_map_on_a_kafka_member_fixture():
    """The map's member is an Apache Kafka node: its log is kept in the Kafka protocol only."""
    yield from shared_over({"a": "kafka", "b": "sluice"})


def topic_ids(bootstrap: str, topics: list[str]) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_topics(TopicCollection(topics))
    return {t: str(f.result(20).topic_id) for t, f in described.items()}


def listed(bootstrap: str) -> dict[str, int]:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return {t: len(v.partitions) for t, v in md.topics.items()}


def wait_listed(bootstrap: str, topic: str, partitions: int | None, timeout: float = 20.0) -> None:
    """Until `bootstrap` lists the topic with that many partitions (None: does not list it)."""
    groups.wait_until(lambda: listed(bootstrap).get(topic) == partitions, timeout,
                      lambda: f"{bootstrap} to list {topic} with {partitions} partitions: {listed(bootstrap)}")


def created_at_once(topic: str, *endpoints: FederationNode) -> list[str]:
    """CreateTopics of `topic` (2 partitions) through every endpoint at the same moment: each
    outcome, "ok" or the error's name, sorted."""
    results: dict[int, object] = {}
    start = threading.Barrier(len(endpoints))

    def create_through(i, endpoint):
        start.wait(10)
        results[i] = create(endpoint.bootstrap, topic, 2)

    threads = [threading.Thread(target=create_through, args=(i, e)) for i, e in enumerate(endpoints)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted("ok" if r is None else r.name() for r in results.values())


def test_one_map_served_by_two_endpoints(shared):
    (e1, e2), members = shared
    assert create(e1.bootstrap, "shared-split", 3, {"federation.split.clusters": "2"}) is None
    wait_listed(e2.bootstrap, "shared-split", 3)
    ck.wait_topic(e2.bootstrap, "shared-split", 3)
    assert topic_ids(e1.bootstrap, ["shared-split"]) == topic_ids(e2.bootstrap, ["shared-split"])
    # Written through one endpoint, read through the other.
    ck.produce(e1.bootstrap, "shared-split", 1500, timeout=60)
    want = expected_by_partition(1500)
    got = ck.consume(e2.bootstrap, "shared-split", {p: len(want[p]) for p in want}, timeout=60)
    for p in want:
        check_partition(p, got[p], want[p])
    # Both endpoints are in Metadata; the map's own log is a member's topic, not a federated one.
    assert kwire.metadata_broker_count("127.0.0.1", e1.port) == 2
    assert MAP_TOPIC in listed(members["a"].bootstrap)
    assert MAP_TOPIC not in listed(e1.bootstrap) and MAP_TOPIC not in listed(e2.bootstrap)

    assert create(e2.bootstrap, "shared-one", 2) is None
    wait_listed(e1.bootstrap, "shared-one", 2)
    assert create(e1.bootstrap, "shared-one", 2).code() == KafkaError.TOPIC_ALREADY_EXISTS
    admin = AdminClient({"bootstrap.servers": e1.bootstrap})
    admin.delete_topics(["shared-one"], request_timeout=20)["shared-one"].result(20)
    wait_listed(e2.bootstrap, "shared-one", None)
    # The members may list it a moment longer: the other endpoint must not adopt it back.
    time.sleep(3)
    assert "shared-one" not in listed(e2.bootstrap) and "shared-one" not in listed(e1.bootstrap)
    for m in members.values():
        assert "shared-one" not in member_topics(m.bootstrap)


def test_the_same_name_created_through_both_endpoints_at_once(shared):
    (e1, e2), members = shared
    for round_ in range(8):
        topic = f"race-{round_}"
        assert created_at_once(topic, e1, e2) == ["TOPIC_ALREADY_EXISTS", "ok"], round_
        # One placement, the same through both endpoints, and only its part on the members.
        wait_listed(e1.bootstrap, topic, 2)
        wait_listed(e2.bootstrap, topic, 2)
        assert topic_ids(e1.bootstrap, [topic]) == topic_ids(e2.bootstrap, [topic])
        on_members = [name for name, m in members.items() if topic in member_topics(m.bootstrap)]
        assert len(on_members) == 1, (round_, on_members)


def test_producer_ids_never_collide_across_endpoints(shared):
    (e1, e2), _ = shared
    seen: dict[int, str] = {}

    def take(endpoint, n, label):
        with kwire.KafkaConn.to(endpoint.bootstrap) as conn:
            for _ in range(n):
                pid, epoch = kwire.new_producer_id(conn)
                assert pid not in seen, f"producer id {pid} from {label} was handed out before by {seen[pid]}"
                assert pid >= 1 << 48 and epoch == 0
                seen[pid] = label

    for round_ in range(3):
        take(e1, 50, f"endpoint 1, round {round_}")
        take(e2, 50, f"endpoint 2, round {round_}")
    e1.kill9()
    e1.start()
    take(e1, 50, "endpoint 1 after its kill -9")
    take(e2, 50, "endpoint 2 after endpoint 1's restart")
    assert len(seen) == 400


def coordinator(bootstrap: str, group: str) -> int:
    """The node FindCoordinator (v3) names for `group`."""
    with kwire.KafkaConn.to(bootstrap) as conn:
        r = conn.request(10, 3, kwire.compact_string(group) + kwire.i8(0) + b"\x00", True)
        r.i32()  # throttle
        error = r.i16()
        assert error == 0, kwire.error_name(error)
        r.compact_string()  # error message
        return r.i32()


def test_a_group_over_both_endpoints_survives_one(shared):
    (e1, e2), members = shared
    topic, group = "shared-grouped", "shared-group"
    assert create(e1.bootstrap, topic, 6, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(e2.bootstrap, topic, 6)
    owner = coordinator(e1.bootstrap, group)
    assert coordinator(e2.bootstrap, group) == owner, "both endpoints name one coordinator"
    # Members bootstrapping from different endpoints: one group, read exactly once.
    consumers = [groups.Member("m0", "confluent", e1.bootstrap, group, topic),
                 groups.Member("m1", "confluent", e2.bootstrap, group, topic),
                 groups.Member("m2", "confluent", e2.bootstrap, group, topic)]
    try:
        groups.wait_balanced(consumers, 6, 2)
        want = groups.produce_keyed(e1.bootstrap, topic, 0, 1200, 6)
        groups.wait_consumed(consumers, want)
        groups.check_exactly_once(consumers, want)
        for m in consumers:
            assert not m.errors(), f"{m.name}: {m.errors()}"

        # The coordinating endpoint killed: the other takes its groups; the members follow.
        dead, alive = (e1, e2) if owner == 1 else (e2, e1)
        dead.kill9()
        groups.wait_until(lambda: coordinator(alive.bootstrap, group) != owner, 15,
                          "the surviving endpoint to take the group")
        more = groups.produce_keyed(alive.bootstrap, topic, 1200, 600, 6)
        groups.wait_consumed(consumers, more, timeout=60)
        # Read at least once: what the group had not committed at the kill may be read again.
        for m in consumers:
            for p, o, k in m.records():
                assert {**want, **more}.get((p, o)) == k, f"{m.name} read ({p}, {o}) as {k!r}"

        # The killed endpoint comes back with the map intact and takes its groups back.
        dead.start()
        assert topic_ids(dead.bootstrap, [topic]) == topic_ids(alive.bootstrap, [topic])
        groups.wait_until(lambda: coordinator(alive.bootstrap, group) == owner, 15,
                          "the group to go back to its endpoint")
        last = groups.produce_keyed(alive.bootstrap, topic, 1800, 600, 6)
        groups.wait_consumed(consumers, last, timeout=60)
        # A coordinator that takes a group over knows nothing of it (membership is soft state, as the
        # federation README says): commits of the old generation are refused once, and the members
        # rejoin. Nothing else may go wrong.
        expected = ("UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "REBALANCE_IN_PROGRESS", "NOT_COORDINATOR")
        for m in consumers:
            unexpected = [e for e in m.errors() if not any(code in e for code in expected)]
            assert not unexpected, f"{m.name}: {unexpected}"
    finally:
        groups.close_all(consumers)
    c = Consumer({"bootstrap.servers": members["a"].bootstrap, "group.id": group})
    try:  # the group's offsets are on the members, in their own numbering
        committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        assert all(tp.offset > 0 for tp in committed), committed
    finally:
        c.close()


def test_topic_moved_while_the_other_endpoint_writes(shared):
    (e1, e2), members = shared
    topic, group = "shared-moving", "shared-move-group"
    assert create(e1.bootstrap, topic, 3) is None
    ck.wait_topic(e2.bootstrap, topic, 3)
    src = "a" if topic in member_topics(members["a"].bootstrap) else "b"
    dst = "b" if src == "a" else "a"
    want = groups.produce_keyed(e2.bootstrap, topic, 0, 300, 3)
    entry = move_under_load(e1, topic, 3, group, want, f"/v1/topics/{topic}/move?to={dst}", dst,
                            produce_via=e2.bootstrap, consume_via=[e1.bootstrap, e2.bootstrap])
    assert [s["cluster"] for s in entry["placement"]] == [dst], entry
    # The other endpoint serves the new placement from the map.
    groups.wait_until(lambda: [s["cluster"] for t in admin_json(e2.admin_port, "/v1/topics")["topics"]
                               if t["name"] == topic for s in t["placement"]] == [dst], 10,
                      "endpoint 2 to serve the moved topic from its new member")


def test_a_move_does_not_switch_without_every_endpoint(shared):
    (e1, e2), members = shared
    topic = "shared-stuck"
    assert create(e1.bootstrap, topic, 3) is None
    ck.wait_topic(e1.bootstrap, topic, 3)
    src = "a" if topic in member_topics(members["a"].bootstrap) else "b"
    dst = "b" if src == "a" else "a"
    groups.produce_keyed(e1.bootstrap, topic, 0, 300, 3)
    e2.kill9()  # it may still be forwarding writes, for all endpoint 1 knows: no switch without its word
    status, _, body = http_get(e1.admin_port, f"/v1/topics/{topic}/move?to={dst}", method="POST")
    assert status == 202, body

    def move_state():
        entry = next((t for t in admin_json(e1.admin_port, "/v1/topics")["topics"] if t["name"] == topic), {})
        return entry.get("move", {}).get("state", "")
    groups.wait_until(lambda: move_state().startswith("failed"), 45, lambda: f"the move to fail: {move_state()}")
    assert "endpoint 2" in move_state(), move_state()
    # Writable again at once through the endpoint left, and still where it was.
    groups.produce_keyed(e1.bootstrap, topic, 300, 300, 3, timeout=20)
    entry = next(t for t in admin_json(e1.admin_port, "/v1/topics")["topics"] if t["name"] == topic)
    assert [s["cluster"] for s in entry["placement"]] == [src], entry
    e2.start()
    wait_listed(e2.bootstrap, topic, 3)


def test_a_map_kept_on_an_apache_kafka_member(shared_on_kafka):
    (e1, e2), members = shared_on_kafka
    assert create(e1.bootstrap, "on-kafka", 3, {"federation.split.clusters": "2"}) is None
    wait_listed(e2.bootstrap, "on-kafka", 3)
    assert topic_ids(e1.bootstrap, ["on-kafka"]) == topic_ids(e2.bootstrap, ["on-kafka"])
    assert MAP_TOPIC in listed(members["a"].bootstrap)
    for round_ in range(3):  # the same name through both at once: one wins
        assert created_at_once(f"kafka-race-{round_}", e1, e2) == ["TOPIC_ALREADY_EXISTS", "ok"], round_
    seen = set()
    for endpoint in (e1, e2, e1):
        with kwire.KafkaConn.to(endpoint.bootstrap) as conn:
            for _ in range(20):
                pid, _ = kwire.new_producer_id(conn)
                assert pid not in seen
                seen.add(pid)
    # The endpoint restarted reads the map back from Kafka.
    e2.kill9()
    e2.start()
    assert topic_ids(e2.bootstrap, ["on-kafka"]) == topic_ids(e1.bootstrap, ["on-kafka"])
