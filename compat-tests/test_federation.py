"""The federation endpoint (issue 19, federation/): one Kafka endpoint over independent member
clusters. Sluice only (the endpoint is Sluice's own). Its members here are single-node Sluice
clusters, and in one variant member b is an Apache Kafka node: a member is any Kafka-protocol cluster.

Two members, `a` and `b`, and `sluice federation` over them; clients bootstrap from the endpoint alone:
  - topics created through it go to the least-loaded member, a split one (federation.split.clusters=2)
    to both; librdkafka (confluent-kafka), kafka-python and the Java client (idempotent producers)
    produce and read back byte for byte through the endpoint, and the bytes are where the map says,
    on the members themselves;
  - a consumer group of three members (confluent-kafka; kafka-python) reads a split topic exactly
    once; its offsets are committed on the members, and a new member resumes from them after the
    endpoint's kill -9; the admin APIs list and describe the group and describe the cluster;
  - a member killed: the other's topics go on; the dead one's partitions have no leader and a
    producer to them waits rather than fails; once it restarts, everything is there;
  - the endpoint kill -9ed and restarted: the map is intact (a split topic keeps all its partitions),
    and a producer made before the kill reconnects by itself; a creation the kill interrupted (one
    member's part made, the other's pending) is undone on both members, never adopted half;
  - CreatePartitions adds a split topic's new partitions on the member holding its last ones, where
    they are read and written like the others; Kafka's errors for a decrease or manual assignments;
  - a topic created on a member directly is adopted; bad creations get Kafka's error codes, a member's
    refusal leaves nothing behind; a deleted topic goes from every member and is not adopted back;
  - a topic moved from one member to the other through the admin API (POST /v1/topics/<t>/move) while
    a producer writes and a consumer group reads: every acknowledged record consumed exactly once at
    the offset it was acknowledged at, records deleted before the move still deleted (offsets kept
    across the switch), the group's committed offsets moved with it, the old member's copy deleted;
    then moved back (the offset bases add up); the same to and from an Apache Kafka member; an
    endpoint kill -9ed mid-copy deletes the half copy at its restart and leaves the topic whole;
  - a split topic spread to a third member (POST /v1/topics/<t>/spread) under the same load;
  - the endpoint's admin server reports each member's health (GET /v1/members, /v1/topics, readiness,
    and metrics scraped by Debian's Prometheus, every one documented in METRICS.md): a member killed
    shows as unhealthy there and in the log, and healthy again once it is back.
Every wait is bounded.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness import ck, kp, kwire
from harness.brokers import Broker
from harness.cluster import sluice_only_fixture  # noqa: F401 (fixture)
from harness.data import check_partition, expected_by_partition
from harness.federation import FederationNode
from harness.prom import Prometheus, admin_json, http_get, prom_value, wait_for
from test_java_clients import java_libs  # noqa: F401 (fixture)
from test_node_clients import node_ready  # noqa: F401 (fixture)

N = 3000


def federation_over(kinds: dict[str, str]):
    members = {name: Broker(kind) for name, kind in kinds.items()}
    node = None
    try:
        for m in members.values():
            m.start()
        node = FederationNode({name: m.bootstrap for name, m in members.items()}).start()
        yield node, members
    finally:
        if node:
            node.cleanup()
        for m in members.values():
            m.cleanup()


@pytest.fixture(name="fed")
def federation_fixture():
    yield from federation_over({"a": "sluice", "b": "sluice"})


@pytest.fixture(name="fed_kafka")
def federation_with_a_kafka_member_fixture():
    """Member b is Apache Kafka (one KRaft node): the endpoint speaks only the Kafka protocol to members."""
    yield from federation_over({"a": "sluice", "b": "kafka"})


def member_topics(bootstrap: str) -> dict[str, int]:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return {t: len(v.partitions) for t, v in md.topics.items() if not t.startswith("__")}


def create(bootstrap: str, topic: str, partitions: int, config: dict | None = None):
    """CreateTopics through `bootstrap`; returns the KafkaError, or None on success."""
    a = AdminClient({"bootstrap.servers": bootstrap})
    try:
        a.create_topics([NewTopic(topic, partitions, 1, config=config or {})], request_timeout=20)[topic].result(20)
        return None
    except Exception as e:  # KafkaException
        return e.args[0]


def roundtrip_ck(bootstrap: str, topic: str) -> None:
    ck.produce(bootstrap, topic, N, timeout=60)
    want = expected_by_partition(N)
    got = ck.consume(bootstrap, topic, {p: len(want[p]) for p in want}, timeout=60)
    for p in want:
        check_partition(p, got[p], want[p])


def test_clients_through_the_federation(fed):
    clients_scenario(*fed)


def test_with_a_kafka_member(fed_kafka):
    """The same with member b an Apache Kafka node; then a consumer group over a topic split across
    Sluice and Kafka, its offsets committed on each."""
    clients_scenario(*fed_kafka)
    configs_all_or_nothing(*fed_kafka)
    group_scenario(*fed_kafka, "confluent")
    move_between_sluice_and_kafka(*fed_kafka)


def configs_all_or_nothing(node, members):
    """A config change of the topic split over Sluice and Kafka that Kafka refuses (a key only Sluice
    knows) changes neither member: every member validates before any applies. Then one both take."""
    from harness.kadmin_wire import INVALID_CONFIG, SET, TOPIC, Conn, describe_configs, incremental_alter_configs

    def retention() -> list[str | None]:
        out = []
        for m in members.values():
            with Conn(m.bootstrap) as conn:
                err, entries = describe_configs(conn, TOPIC, "fed-split", ["retention.ms"])
                assert err == 0, err
                out.append(entries["retention.ms"].value)
        return out

    with Conn(node.bootstrap) as conn:
        [answer] = incremental_alter_configs(conn, [(TOPIC, "fed-split", [
            ("retention.ms", SET, "3600000"), ("delete.after.consumption.groups", SET, "g")])])
        assert answer.error == INVALID_CONFIG, answer
        assert retention() == ["604800000", "604800000"]
        [answer] = incremental_alter_configs(conn, [(TOPIC, "fed-split", [("retention.ms", SET, "3600000")])])
        assert answer.error == 0, answer
        assert retention() == ["3600000", "3600000"]


def move_between_sluice_and_kafka(node, members):
    """A topic moved under load between the Sluice member and the Kafka one (whichever way its
    placement makes it), and back: the mover speaks only Kafka's protocol to both."""
    from confluent_kafka import Consumer, TopicPartition
    topic, group = "fed-move-kafka", "fed-move-kafka-group"
    assert create(node.bootstrap, topic, 2) is None
    ck.wait_topic(node.bootstrap, topic, 2)
    src = "a" if topic in member_topics(members["a"].bootstrap) else "b"
    dst = "b" if src == "a" else "a"
    want: dict = {}
    entry = move_under_load(node, topic, 2, group, want, f"/v1/topics/{topic}/move?to={dst}", dst)
    assert [s["cluster"] for s in entry["placement"]] == [dst], entry
    deadline = time.monotonic() + 30
    while (answer := http_get(node.admin_port, f"/v1/topics/{topic}/move?to={src}", method="POST"))[0] != 202:
        assert answer[0] == 409 and time.monotonic() < deadline, answer  # held until the old part is deleted
        time.sleep(0.2)
    wait_move(node, topic, src)
    ends = {p: max(o for q, o in want if q == p) + 1 for p in range(2)}
    got = ck.consume(node.bootstrap, topic, {p: ends[p] for p in range(2)}, timeout=60)
    for p in range(2):
        assert [(o, k.decode()) for o, k, _, _ in got[p]] == [(o, want[(p, o)]) for o in range(ends[p])]
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(2)], timeout=15)
        assert [tp.offset for tp in committed] == [ends[p] for p in range(2)], committed
    finally:
        c.close()


def clients_scenario(node, members):
    assert create(node.bootstrap, "fed-one", 3) is None
    assert create(node.bootstrap, "fed-two", 3) is None
    assert create(node.bootstrap, "fed-split", 3, {"federation.split.clusters": "2"}) is None
    on_a, on_b = member_topics(members["a"].bootstrap), member_topics(members["b"].bootstrap)
    # The least-loaded member each time: one plain topic on each, the split one on both.
    assert {"fed-one", "fed-two"} - set(on_a) != set() and {"fed-one", "fed-two"} - set(on_b) != set()
    assert on_a.get("fed-one", 0) + on_b.get("fed-one", 0) == 3
    assert on_a["fed-split"] + on_b["fed-split"] == 3 and min(on_a["fed-split"], on_b["fed-split"]) == 1
    for topic in ("fed-one", "fed-two", "fed-split"):
        ck.wait_topic(node.bootstrap, topic, 3)
        roundtrip_ck(node.bootstrap, topic)

    # DescribeConfigs shows the split (kafka-topics.sh --describe prints it too).
    from confluent_kafka.admin import ConfigResource
    admin = AdminClient({"bootstrap.servers": node.bootstrap})  # kept: its futures fail once it is gone
    split, whole = ConfigResource("topic", "fed-split"), ConfigResource("topic", "fed-one")
    configs = admin.describe_configs([split])[split].result(20)
    assert configs["federation.split.clusters"].value == "2" and configs["federation.split.clusters"].is_read_only
    configs = admin.describe_configs([whole])[whole].result(20)
    assert configs["federation.split.clusters"].value == "1" and configs["federation.split.clusters"].is_default

    # The split topic's partitions are the members' own: federated 0.. on the first member, then the second.
    want = expected_by_partition(N)
    first, second = ("a", "b") if on_a["fed-split"] == 2 else ("b", "a")
    got_first = ck.consume(members[first].bootstrap, "fed-split", {0: len(want[0]), 1: len(want[1])}, timeout=60)
    got_second = ck.consume(members[second].bootstrap, "fed-split", {0: len(want[2])}, timeout=60)
    check_partition(0, got_first[0], want[0])
    check_partition(1, got_first[1], want[1])
    check_partition(2, got_second[0], want[2])

    # kafka-python, through the endpoint alone.
    kp.create_topic(node.bootstrap, "fed-kp", 3)
    ck.wait_topic(node.bootstrap, "fed-kp", 3)
    kp.produce(node.bootstrap, "fed-kp", N)
    got = kp.consume(node.bootstrap, "fed-kp", {p: len(want[p]) for p in want}, timeout=60)
    for p in want:
        check_partition(p, got[p], want[p])


def test_java_client_through_the_federation(fed, java_libs):
    """Apache Kafka's Java client (java/JavaCompat.java): its producer+consumer scenario (admin
    createTopics and describeTopics, an idempotent producer with InitProducerId from the endpoint,
    ListOffsets and a consumer by assign(), byte for byte), and its command-line tools scenarios
    (kafka-topics.sh --create/--list/--describe/--delete, the console producer and consumer)."""
    import os
    from test_java_clients import JAVA_DIR, run_bounded
    node, _ = fed
    log4j = f"file:{JAVA_DIR / 'log4j.properties'}"
    env = dict(os.environ, BOOTSTRAP_SERVERS=node.bootstrap, BROKER_KIND="sluice-federation",
               COMPAT_DEADLINE_S="100", COMPAT_MESSAGES="20000")
    cmd = ["java", "-Xmx512m", f"-Dlog4j.configuration={log4j}", f"-Dcompat.log4j={log4j}",
           "-cp", f"{java_libs}/*", "JavaCompat.java", "roundtrip", "cli"]
    rc, out, secs = run_bounded(cmd, env, JAVA_DIR, 130)
    print(out)
    assert rc == 0, "\n".join(out.splitlines()[-60:])


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_consumer_group_over_a_split_topic(fed, client):
    group_scenario(*fed, client)


def group_scenario(node, members, client):
    """Three members of one group read a topic split over both members exactly once; the group is
    coordinated by the endpoint, its offsets committed on the members holding the partitions. They
    outlive the endpoint: after its kill -9, a new member resumes exactly where the group was."""
    from confluent_kafka import Consumer, TopicPartition
    from harness import groups
    topic, group = "fed-grouped", f"fed-group-{client}"
    assert create(node.bootstrap, topic, 6, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 6)
    groups.scenario_three_members_share(client, node.bootstrap, topic, group, "range")

    node.kill9()
    node.start()
    ck.wait_topic(node.bootstrap, topic, 6)
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(6)], timeout=15)
    finally:
        c.close()
    assert [tp.offset for tp in committed] == [500] * 6, committed
    for name, m in members.items():  # on the members themselves, in their own numbering
        c = Consumer({"bootstrap.servers": m.bootstrap, "group.id": group})
        try:
            assert [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)] == \
                [500] * 3, name
        finally:
            c.close()
    late = groups.Member("late", client, node.bootstrap, group, topic)
    try:
        groups.wait_balanced([late], 6, 6)
        want = groups.produce_keyed(node.bootstrap, topic, 3000, 600, 6)
        groups.wait_consumed([late], want)
        groups.check_exactly_once([late], want)  # nothing before the committed offsets again
        check_group_admin(node, client, topic, group)
    finally:
        groups.close_all([late])
    check_group_deletion(node, members, topic, group)


def check_group_deletion(node, members, topic, group):
    """DeleteGroups through the endpoint, once the group has no member: its offsets go from every
    member holding them; asked again, the group is not found."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from harness import groups
    a = AdminClient({"bootstrap.servers": node.bootstrap, "socket.timeout.ms": 10000})

    def delete():
        try:
            a.delete_consumer_groups([group], request_timeout=15)[group].result(20)
            return None
        except KafkaException as e:
            return e.args[0].code()

    # The member's LeaveGroup may still be on its way: NON_EMPTY_GROUP until it is in.
    groups.wait_until(lambda: (code := delete()) is None or (code != KafkaError.NON_EMPTY_GROUP and
                                                             pytest.fail(f"DeleteGroups: {code}")), 20,
                      "DeleteGroups of the emptied group")
    for name, m in members.items():
        c = Consumer({"bootstrap.servers": m.bootstrap, "group.id": group})
        try:
            assert all(tp.offset < 0 for tp in c.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)), name
        finally:
            c.close()
    assert delete() == KafkaError.GROUP_ID_NOT_FOUND


def check_group_admin(node, client, topic, group):
    """The group as the admin APIs show it through the endpoint (ListGroups, DescribeGroups,
    DescribeCluster): one member, Stable, holding every partition of the split topic; the cluster
    is the endpoint alone."""
    from harness import groups
    if client == "kafka-python":
        from kafka import KafkaAdminClient
        a = KafkaAdminClient(bootstrap_servers=node.bootstrap, request_timeout_ms=20000)
        try:
            listed = groups.wait_until(lambda: {g["group_id"]: g for g in a.list_groups()}.get(group), 20,
                                       f"{group} in list_groups")
            assert listed["protocol_type"] == "consumer", listed
            d = a.describe_groups([group])[group]
            assert d["error"] is None and d["group_state"] == "Stable" and d["protocol_data"] == "range", d
            assert len(d["members"]) == 1, d["members"]
            cluster = a.describe_cluster()
            assert cluster["cluster_id"] == "sluice-federation" and cluster["controller_id"] == 0, cluster
            assert [(b["broker_id"], b["port"]) for b in cluster["brokers"]] == [(0, node.port)], cluster
        finally:
            a.close()
        return
    from confluent_kafka import ConsumerGroupState
    a = AdminClient({"bootstrap.servers": node.bootstrap, "socket.timeout.ms": 10000})

    def listed():
        res = a.list_consumer_groups(request_timeout=15).result(20)
        assert not res.errors, res.errors
        return {g.group_id: g for g in res.valid}.get(group)

    entry = groups.wait_until(listed, 20, f"{group} in list_consumer_groups")
    assert entry.state == ConsumerGroupState.STABLE and entry.is_simple_consumer_group is False, entry
    d = a.describe_consumer_groups([group], request_timeout=15)[group].result(20)
    assert d.state == ConsumerGroupState.STABLE and d.partition_assignor == "range", d
    with pytest.raises(Exception) as e:  # a group with a member is not deleted
        a.delete_consumer_groups([group], request_timeout=15)[group].result(20)
    assert e.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, e.value
    unknown = a.describe_consumer_groups(["fed-never-joined"], request_timeout=15)["fed-never-joined"].result(20)
    assert unknown.state == ConsumerGroupState.DEAD, unknown
    assert d.coordinator.id == 0 and d.coordinator.port == node.port, d.coordinator
    assert len(d.members) == 1, d.members
    assert sorted(tp.partition for tp in d.members[0].assignment.topic_partitions if tp.topic == topic) == \
        list(range(6)), d.members[0].assignment.topic_partitions
    cluster = a.describe_cluster(request_timeout=15).result(20)
    assert cluster.cluster_id == "sluice-federation" and cluster.controller.id == 0, cluster
    assert [(n.id, n.port) for n in cluster.nodes] == [(0, node.port)], cluster.nodes


def test_member_stopped_and_back(fed):
    node, members = fed
    assert create(node.bootstrap, "fed-live", 3) is None
    assert create(node.bootstrap, "fed-dead", 3) is None
    dead_name = "a" if "fed-dead" in member_topics(members["a"].bootstrap) else "b"
    dead = members[dead_name]
    for topic in ("fed-live", "fed-dead"):
        ck.wait_topic(node.bootstrap, topic, 3)
    ck.produce(node.bootstrap, "fed-dead", N, timeout=60)

    dead.kill9()
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    deadline = time.monotonic() + 15
    while True:  # the endpoint notices (federation.member.timeout.ms) and says so in Metadata
        t = admin.list_topics(topic="fed-dead", timeout=5).topics["fed-dead"]
        if all(p.leader == -1 and p.error is not None for p in t.partitions.values()):
            assert all(p.error.code() == KafkaError.LEADER_NOT_AVAILABLE for p in t.partitions.values())
            break
        assert time.monotonic() < deadline, f"the dead member's partitions still have leaders: {t.partitions}"
        time.sleep(0.2)
    roundtrip_ck(node.bootstrap, "fed-live")  # the other member goes on
    # A Fetch of a dead member's partition: a retriable error, and empty records, never null.
    conn = kwire.KafkaConn.to(node.bootstrap, timeout=10)
    try:
        err, size = kwire.fetch_error_and_records_size(conn, "fed-dead", 0)
        assert kwire.error_name(err).startswith("NOT_LEADER_OR_FOLLOWER") and size == 0, (kwire.error_name(err), size)
        # DeleteGroups (v1) cannot reach the dead member, which may hold the group's offsets: a
        # retriable error at once (well within the connection's 10 s), not after the retries.
        r = conn.request(42, 1, kwire.i32(1) + kwire.string("fed-any-group"), False)
        r.i32()  # throttle
        assert r.i32() == 1 and r.string() == "fed-any-group"
        assert r.i16() == 15  # COORDINATOR_NOT_AVAILABLE
    finally:
        conn.close()

    # A producer to the dead member's topic waits (retriable errors), it does not fail.
    delivered, failed = [], []
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "message.timeout.ms": 60000, "linger.ms": 5})
    for i in range(100):
        p.produce("fed-dead", key=b"late-%d" % i, value=b"v", partition=i % 3,
                  on_delivery=lambda err, msg: (failed if err else delivered).append(err or msg.offset()))
    p.flush(3)
    assert not delivered and not failed, f"delivered {len(delivered)}, failed {failed[:3]}"
    dead.start()
    assert p.flush(60) == 0
    assert len(delivered) == 100 and not failed, failed[:3]
    want = expected_by_partition(N)
    got = ck.consume(node.bootstrap, "fed-dead", {q: len(want[q]) + 100 // 3 + (1 if q < 100 % 3 else 0) for q in want},
                     timeout=60)
    for q in want:
        check_partition(q, got[q][: len(want[q])], want[q])
        assert [k for _, k, _, _ in got[q][len(want[q]):]] == [b"late-%d" % i for i in range(100) if i % 3 == q]


def test_pipelined_requests_answered_in_order(fed):
    """The endpoint reads a client's next Produce while the last is still with the members
    (client_connection.h): 24 idempotent Produce requests to a split topic, with a Metadata and an
    ApiVersions among them, sent at once on one connection without reading. Every answer comes in
    request order, each batch lands in order (a reordered one would get OUT_OF_ORDER_SEQUENCE
    from its member), and nothing else is written."""
    node, members = fed
    topic = "fed-pipelined"
    assert create(node.bootstrap, topic, 2, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 2)
    conn = kwire.KafkaConn.to(node.bootstrap)
    try:
        pid, epoch = kwire.new_producer_id(conn)
        per_batch, rounds = 5, 24
        sent = []  # (kind, correlation id, flexible)
        for i in range(rounds):
            batches = {p: kwire.record_batch([b"%d-%d-%d" % (p, i, j) for j in range(per_batch)], producer_id=pid,
                                             producer_epoch=epoch, base_sequence=i * per_batch) for p in (0, 1)}
            body, flexible = kwire.produce_body(topic, batches, acks=-1 if i % 2 else 1)
            sent.append(("produce", conn.send(0, 9, body, flexible), flexible))
            if i == 8:
                sent.append(("metadata", conn.send(3, 1, kwire.i32(1) + kwire.string(topic), False), False))
            if i == 16:
                sent.append(("api_versions", conn.send(18, 0, b"", False), False))
        produced = 0
        for kind, corr, flexible in sent:
            r = conn.answer(corr, flexible)  # raises unless it is the answer to `corr`
            if kind == "produce":
                got = kwire.produce_answer(r, topic, 9)
                assert {p: (x.error, x.base_offset) for p, x in got.items()} == \
                    {p: (0, produced * per_batch) for p in (0, 1)}, (produced, got)
                produced += 1
            elif kind == "metadata":
                assert r.i32() == 1  # the endpoint is the one broker
            else:
                assert r.i16() == 0
        assert produced == rounds
        assert kwire.list_offsets(conn, topic, [0, 1]) == {0: rounds * per_batch, 1: rounds * per_batch}
        # A frame the endpoint refuses (over socket.request.max.bytes) closes the connection, but only
        # once the Produce requests read before it are answered.
        last = []
        for i in range(rounds, rounds + 3):
            batches = {p: kwire.record_batch([b"late-%d" % i], producer_id=pid, producer_epoch=epoch,
                                             base_sequence=rounds * per_batch + i - rounds) for p in (0, 1)}
            body, flexible = kwire.produce_body(topic, batches)
            last.append(conn.send(0, 9, body, flexible))
        conn.sock.sendall(kwire.i32(200 << 20))
        for corr in last:
            got = kwire.produce_answer(conn.answer(corr, True), topic, 9)
            assert all(x.error == 0 for x in got.values()), got
        assert kwire.wait_closed(conn.sock)
    finally:
        conn.close()


def test_topic_configs_altered_through_the_endpoint(fed):
    """AlterConfigs and IncrementalAlterConfigs of a split topic change it on both members; a refused
    change, validate_only and federation.split.clusters change nothing (its current value is taken
    back, as a client that describes the configs and sends them again does; configs_all_or_nothing
    has a change one member refuses and the other would take)."""
    from harness.kadmin_wire import (DELETE, INVALID_CONFIG, INVALID_REQUEST, SET, TOPIC, Conn, alter_configs,
                                     describe_configs, incremental_alter_configs)
    node, members = fed
    topic = "fed-configs"
    assert create(node.bootstrap, topic, 2, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 2)

    def values(key: str) -> dict[str, str | None]:
        """The config on each member and through the endpoint."""
        out = {}
        for name, bootstrap in [*((n, m.bootstrap) for n, m in members.items()), ("endpoint", node.bootstrap)]:
            with Conn(bootstrap) as conn:
                err, entries = describe_configs(conn, TOPIC, topic, [key])
                assert err == 0, (name, err)
                out[name] = entries[key].value
        return out

    with Conn(node.bootstrap) as conn:
        for version in (0, 1):
            ms = str(3_600_000 + version)
            [answer] = incremental_alter_configs(conn, [(TOPIC, topic, [("retention.ms", SET, ms)])], version=version)
            assert answer.error == 0, answer
            assert values("retention.ms") == {"a": ms, "b": ms, "endpoint": ms}
        [answer] = incremental_alter_configs(conn, [(TOPIC, topic, [("retention.ms", SET, "7")])], validate_only=True)
        assert answer.error == 0, answer
        assert set(values("retention.ms").values()) == {"3600001"}
        [answer] = incremental_alter_configs(conn, [(TOPIC, topic, [("retention.ms", SET, "7"),
                                                                    ("cleanup.policy", SET, "nonsense")])])
        assert answer.error == INVALID_CONFIG, answer
        assert set(values("retention.ms").values()) == {"3600001"}
        [answer] = incremental_alter_configs(conn, [(TOPIC, topic, [("federation.split.clusters", SET, "1")])])
        assert answer.error == INVALID_CONFIG, answer
        [answer] = incremental_alter_configs(conn, [(TOPIC, topic, [("federation.split.clusters", SET, "2")])])
        assert answer.error == 0, answer
        [answer] = incremental_alter_configs(conn, [(TOPIC, topic, [("retention.ms", DELETE, None)])])
        assert answer.error == 0, answer
        assert set(values("retention.ms").values()) == {"604800000"}  # the default again
        for version in (0, 1, 2):
            [answer] = alter_configs(conn, [(TOPIC, topic, [("segment.ms", str(7_200_000 + version))])], version=version)
            assert answer.error == 0, answer
            assert set(values("segment.ms").values()) == {str(7_200_000 + version)}
        [answer] = incremental_alter_configs(conn, [(4, "1", [("log.retention.ms", SET, "1")])])
        assert answer.error == INVALID_REQUEST, answer
    # A client's own admin API, through the endpoint.
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "123456", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([res]).values():
        f.result(20)
    assert set(values("max.message.bytes").values()) == {"123456"}


def test_concurrent_changes_of_a_topic_wait_their_turn(fed):
    """Two config changes and a partition increase of one split topic, sent at once on three
    connections, three times over: each waits for the change before it (Kafka's controller serialises
    them; the endpoint refused the second with INVALID_REQUEST before), all succeed, and both members
    end with the same configs."""
    import threading
    from confluent_kafka.admin import NewPartitions
    from harness.kadmin_wire import SET, TOPIC, Conn, describe_configs, incremental_alter_configs
    node, members = fed
    topic = "fed-serial"
    assert create(node.bootstrap, topic, 2, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 2)
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    for round_ in range(3):
        barrier = threading.Barrier(3)
        results: dict[str, object] = {}

        def change(key: str, value: str) -> None:
            try:
                with Conn(node.bootstrap) as conn:
                    barrier.wait(10)
                    [answer] = incremental_alter_configs(conn, [(TOPIC, topic, [(key, SET, value)])])
                    results[key] = answer.error
            except Exception as e:  # noqa: BLE001 (reported by the assertion below)
                results[key] = repr(e)

        def grow(count: int) -> None:
            try:
                barrier.wait(10)
                admin.create_partitions([NewPartitions(topic, count)], request_timeout=30)[topic].result(30)
                results["partitions"] = 0
            except Exception as e:  # noqa: BLE001
                results["partitions"] = repr(e)

        retention, segment = str(3_600_000 + round_), str(7_200_000 + round_)
        threads = [threading.Thread(target=change, args=("retention.ms", retention)),
                   threading.Thread(target=change, args=("segment.ms", segment)),
                   threading.Thread(target=grow, args=(4 + 2 * round_,))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == {"retention.ms": 0, "segment.ms": 0, "partitions": 0}, (round_, results)
        for name, member in members.items():
            with Conn(member.bootstrap) as conn:
                err, entries = describe_configs(conn, TOPIC, topic, ["retention.ms", "segment.ms"])
                assert err == 0 and entries["retention.ms"].value == retention and \
                    entries["segment.ms"].value == segment, (name, err, entries)
    ck.wait_topic(node.bootstrap, topic, 8)


def test_offset_delete_through_the_endpoint(fed):
    """OffsetDelete of a split topic's partitions: a group's offsets go from both members that hold
    them; a group whose live members (the endpoint's) subscribe to the topic keeps them
    (GROUP_SUBSCRIBED_TO_TOPIC); a group nobody knows is GROUP_ID_NOT_FOUND."""
    from harness.kadmin_wire import Conn, offset_delete
    node, members = fed
    topic, group, live = "fed-offset-delete", "fed-od-group", "fed-od-live"
    assert create(node.bootstrap, topic, 2, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 2)
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:  # committed from outside any generation, as a consumer with assign() commits
        c.commit(offsets=[TopicPartition(topic, 0, 5), TopicPartition(topic, 1, 7)], asynchronous=False)
        assert [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=15)] == [5, 7]
    finally:
        c.close()
    subscriber = Consumer({"bootstrap.servers": node.bootstrap, "group.id": live, "enable.auto.commit": False})
    try:
        subscriber.subscribe([topic])
        deadline = time.monotonic() + 30
        while not subscriber.assignment():
            subscriber.poll(0.2)
            assert time.monotonic() < deadline, "no assignment"
        subscriber.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
        with Conn(node.bootstrap) as conn:
            assert offset_delete(conn, live, {topic: [0]}) == (0, {(topic, 0): 86})  # GROUP_SUBSCRIBED_TO_TOPIC
            assert subscriber.committed([TopicPartition(topic, 0)], timeout=15)[0].offset == 3  # kept
            assert offset_delete(conn, "fed-od-nobody", {topic: [0]}) == (69, {})  # GROUP_ID_NOT_FOUND
            assert offset_delete(conn, group, {topic: [0, 1], "fed-od-no-topic": [0]}) == \
                (0, {(topic, 0): 0, (topic, 1): 0, ("fed-od-no-topic", 0): 3})  # UNKNOWN_TOPIC_OR_PARTITION
    finally:
        subscriber.close()
    for bootstrap in (node.bootstrap, *(m.bootstrap for m in members.values())):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        try:  # gone on the endpoint and on each member (each member's partition 0 is one of the two)
            parts = [0, 1] if bootstrap == node.bootstrap else [0]
            assert [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in parts], timeout=15)] == \
                [-1001] * len(parts), bootstrap
        finally:
            c.close()


def metadata_v4_errors(node, topics: list[str], allow: bool) -> list[int]:
    """Each topic's error in a Metadata v4 answer from the endpoint (allow_auto_topic_creation as given)."""
    conn = kwire.KafkaConn.to(node.bootstrap)
    try:
        body = kwire.i32(len(topics)) + b"".join(kwire.string(t) for t in topics) + kwire.i8(1 if allow else 0)
        r = conn.request(3, 4, body, False)
        r.i32()  # throttle
        for _ in range(r.i32()):  # brokers
            r.i32(), r.string(), r.i32(), r.string()
        r.string(), r.i32()  # cluster id, controller
        errors = []
        for _ in range(r.i32()):
            errors.append(r.i16())
            r.string(), r.i8()  # name, internal
            for _ in range(r.i32()):  # partitions: error, index, leader, replicas, isr
                r.i16(), r.i32(), r.i32()
                for _ in range(2):
                    for _ in range(r.i32()):
                        r.i32()
        return errors
    finally:
        conn.close()


def metadata_v4_error(node, topic: str, allow: bool) -> int:
    return metadata_v4_errors(node, [topic], allow)[0]


def test_groups_with_only_offsets_listed_after_a_restart(fed):
    """A group whose offsets the members hold (committed through the endpoint) is listed and described
    as Empty after the endpoint restarts and knows nothing of it: once, though both members hold
    some of its offsets. One nobody knows is still Dead."""
    from confluent_kafka import ConsumerGroupState
    node, members = fed
    topic, group = "fed-offsets-only", "fed-offsets-only-group"
    assert create(node.bootstrap, topic, 2, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 2)
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 1), TopicPartition(topic, 1, 2)], asynchronous=False)
    finally:
        c.close()
    # Auto-creation (on by default, as on a Kafka broker): a topic asked for by name is made when
    # the client allows it, not otherwise; with auto.create.topics.enable=false (after the restart)
    # never.
    assert metadata_v4_error(node, "fed-auto-refused", allow=False) == 3  # UNKNOWN_TOPIC_OR_PARTITION
    assert metadata_v4_error(node, "fed-auto-made", allow=True) in (0, 5)  # made (LEADER_NOT_AVAILABLE a moment)
    ck.wait_topic(node.bootstrap, "fed-auto-made", 1)
    assert metadata_v4_error(node, "bad topic!", allow=True) == 17  # INVALID_TOPIC_EXCEPTION, as a broker
    # More than one request's worth of metadata records (a topic and its partition each): none made.
    many = [f"fed-auto-many-{i}" for i in range(5001)]
    assert set(metadata_v4_errors(node, many, allow=True)) == {3}
    assert not any(t.startswith("fed-auto-many-") for t in member_topics(node.bootstrap))
    node.extra["auto.create.topics.enable"] = "false"
    node.kill9()
    node.start()
    assert metadata_v4_error(node, "fed-auto-off", allow=True) == 3
    assert metadata_v4_error(node, "fed-auto-made", allow=True) == 0
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    res = a.list_consumer_groups(request_timeout=15).result(20)
    assert not res.errors, res.errors
    listed = [g for g in res.valid if g.group_id == group]
    assert len(listed) == 1 and listed[0].state == ConsumerGroupState.EMPTY, res.valid
    empty_only = a.list_consumer_groups(request_timeout=15, states={ConsumerGroupState.STABLE}).result(20)
    assert group not in {g.group_id for g in empty_only.valid}
    d = a.describe_consumer_groups([group, "fed-never-seen"], request_timeout=15)
    assert d[group].result(20).state == ConsumerGroupState.EMPTY
    assert d["fed-never-seen"].result(20).state == ConsumerGroupState.DEAD


@pytest.mark.parametrize("test_file", ["kafkajs.test.js", "groups.test.js"])
def test_kafkajs_through_the_federation(fed, node_ready, test_file):
    """kafkajs's own test files (compat-tests/node/test), with the endpoint as their only broker:
    produce and fetch byte for byte, admin calls, and a consumer group of three exactly once."""
    import os
    from harness.subprocs import run_bounded
    from test_node_clients import FILE_TIMEOUT, NODE_DIR
    node, _ = fed
    env = dict(os.environ, BOOTSTRAP_SERVERS=node.bootstrap, BROKER_KIND="federation",
               KAFKAJS_NO_PARTITIONER_WARNING="1", NO_COLOR="1")
    cmd = [str(node_ready), "--test", "--test-concurrency=1", "--test-reporter=spec", f"test/{test_file}"]
    rc, out, secs = run_bounded(cmd, env, NODE_DIR, FILE_TIMEOUT)
    print(out)
    assert rc == 0, f"{test_file} through the endpoint exited {rc} after {secs:.1f}s:\n" + \
        "\n".join(out.splitlines()[-150:])


def test_kcat_through_the_federation(fed):
    """kcat (librdkafka 2.0.2) produces to and consumes from a topic split over both members."""
    from test_kcat import kcat
    node, _ = fed
    topic, parts, n = "fed-kcat", 4, 2000
    assert create(node.bootstrap, topic, parts, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, parts)
    want = {p: [(f"key-{i}", f"value-{i}") for i in range(n) if i % parts == p] for p in range(parts)}
    for p in range(parts):
        kcat("-P", "-b", node.bootstrap, "-t", topic, "-p", str(p), "-K", "\t", "-z", "zstd", "-X", "acks=all",
             input="".join(f"{k}\t{v}\n" for k, v in want[p]).encode())
    out = kcat("-C", "-b", node.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p\t%o\t%k\t%s\n",
               timeout=90)
    got = {p: [] for p in range(parts)}
    for line in out.decode().splitlines():
        part, off, k, v = line.split("\t")
        got[int(part)].append((int(off), k, v))
    for p in range(parts):
        assert got[p] == [(j, k, v) for j, (k, v) in enumerate(want[p])], f"partition {p}"
    listing = json.loads(kcat("-L", "-b", node.bootstrap, "-t", topic, "-J"))
    assert [len(t["partitions"]) for t in listing["topics"]] == [parts], listing


def test_federation_kill9_and_restart(fed):
    node, members = fed
    assert create(node.bootstrap, "fed-split", 3, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, "fed-split", 3)
    delivered = []
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "message.timeout.ms": 60000, "linger.ms": 5})
    for i in range(30):
        p.produce("fed-split", value=b"before-%d" % i, partition=i % 3, on_delivery=lambda e, m: delivered.append(e))
    assert p.flush(30) == 0
    node.kill9()
    node.start()
    # The map was durable: the split topic is whole at once (an endpoint that lost its map would
    # adopt each member's part as a topic of 2 or 1 partitions).
    t = AdminClient({"bootstrap.servers": node.bootstrap}).list_topics(topic="fed-split", timeout=10).topics["fed-split"]
    assert len(t.partitions) == 3, t.partitions
    # The producer made before the kill reconnects by itself.
    for i in range(30):
        p.produce("fed-split", value=b"after-%d" % i, partition=i % 3, on_delivery=lambda e, m: delivered.append(e))
    assert p.flush(60) == 0
    assert delivered == [None] * 60
    got = ck.consume(node.bootstrap, "fed-split", {q: 20 for q in range(3)}, timeout=60)
    for q in range(3):
        assert [v for _, _, v, _ in got[q]] == [b"before-%d" % i for i in range(30) if i % 3 == q] + \
            [b"after-%d" % i for i in range(30) if i % 3 == q]


def test_adoption_and_refusals(fed):
    node, members = fed
    ck.create_topic(members["b"].bootstrap, "made-on-b", 2)
    ck.wait_topic(node.bootstrap, "made-on-b", 2)  # adopted where it is
    assert create(node.bootstrap, "made-on-b", 1).code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert create(node.bootstrap, "fed-x", 4, {"federation.split.clusters": "3"}).code() == \
        KafkaError.INVALID_REPLICATION_FACTOR  # only two members
    assert create(node.bootstrap, "fed-x", 1, {"federation.split.clusters": "2"}).code() == KafkaError.INVALID_PARTITIONS
    assert create(node.bootstrap, "fed-x", 2, {"federation.split.clusters": "zero"}).code() == KafkaError.INVALID_CONFIG
    # A member's refusal comes back whole, and nothing is left behind on the other member.
    assert create(node.bootstrap, "fed-x", 2, {"federation.split.clusters": "2", "cleanup.policy": "nonsense"}).code() == \
        KafkaError.INVALID_CONFIG
    assert "fed-x" not in member_topics(members["a"].bootstrap) and "fed-x" not in member_topics(members["b"].bootstrap)
    assert create(node.bootstrap, "fed-x", 2, {"federation.split.clusters": "2"}) is None

    # DeleteTopics: gone from both members and from the endpoint, and not adopted back.
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.delete_topics(["fed-x"], request_timeout=20)["fed-x"].result(20)
    time.sleep(1.0)  # several member metadata rounds (every 200 ms here)
    assert "fed-x" not in admin.list_topics(timeout=10).topics
    assert "fed-x" not in member_topics(members["a"].bootstrap) and "fed-x" not in member_topics(members["b"].bootstrap)
    try:
        admin.delete_topics(["fed-x"], request_timeout=20)["fed-x"].result(20)
        raise AssertionError("deleting a deleted topic succeeded")
    except Exception as e:  # KafkaException
        assert e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, e


def test_member_health_in_the_admin_api_and_metrics(fed, tmp_path):
    node, members = fed
    port = node.admin_port
    assert create(node.bootstrap, "fed-watched", 4, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, "fed-watched", 4)

    def members_view():
        return {m["name"]: m for m in admin_json(port, "/v1/members")["members"]}

    def all_healthy():
        v = members_view()
        return all(m["healthy"] for m in v.values()), v

    view = wait_for("both members healthy in /v1/members", all_healthy, 15)
    assert list(view) == list(members)
    for name, m in view.items():
        assert m["bootstrap_servers"] == members[name].bootstrap, m
        assert m["brokers"] == 1 and m["last_error"] is None and m["federated_partitions"] == 2, m
        assert m["health_checks"] > 0 and m["seconds_since_answer"] is not None, m
    topics = {t["name"]: t for t in admin_json(port, "/v1/topics")["topics"]}
    assert topics["fed-watched"]["partitions"] == 4
    assert topics["fed-watched"]["placement"] == [{"cluster": name, "partitions": 2} for name in members]
    assert http_get(port, "/v1/health/ready")[0] == 200

    # Every federation metric exposed is documented, and every documented one is exposed.
    status, _, text = http_get(port, "/metrics")
    assert status == 200
    exposed = set(re.findall(r"^(sluice_federation_[a-z_]+?)(?:_total)?(?:\{| )", text, re.M))
    exposed = {n + "_total" if f"{n}_total" in text else n for n in exposed}
    documented = set(re.findall(r"`(sluice_federation_[a-z_]+)`", (Path(__file__).parent.parent / "METRICS.md").read_text()))
    assert exposed == documented, (exposed, documented)

    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian's prometheus package; scripts/install-deps.sh test)")
    prom = Prometheus(binary, tmp_path, [f"127.0.0.1:{port}"]).start()
    try:
        def healthy_in_prometheus(name):
            return prom_value(prom, f'sluice_federation_member_healthy{{cluster="{name}"}}')

        wait_for("b healthy in Prometheus", lambda: (healthy_in_prometheus("b") == 1, None), 30)
        members["b"].kill9()
        view = wait_for("b unhealthy in /v1/members",
                        lambda: (not (v := members_view())["b"]["healthy"] and v["b"]["last_error"], v), 15)
        assert view["a"]["healthy"], view
        wait_for("b unhealthy in Prometheus", lambda: (healthy_in_prometheus("b") == 0, None), 30)
        assert healthy_in_prometheus("a") == 1
        wait_for("b's failed health checks counted", lambda: (
            (prom_value(prom, 'sluice_federation_member_health_checks_total{cluster="b",result="failed"}') or 0) > 0,
            None), 30)
        assert http_get(port, "/v1/health/ready")[0] == 200  # a still serves
        assert "member cluster b is unhealthy" in node.log_path.read_text(errors="replace")

        members["a"].kill9()  # no member left: not ready, and says why
        wait_for("not ready without a healthy member", lambda: (
            (r := http_get(port, "/v1/health/ready"))[0] == 503 and "no member cluster is healthy" in r[2], r), 15)

        members["b"].start()
        members["a"].start()
        wait_for("both healthy again in Prometheus",
                 lambda: (healthy_in_prometheus("a") == 1 and healthy_in_prometheus("b") == 1, None), 30)
        assert http_get(port, "/v1/health/ready")[0] == 200
        assert members_view()["b"]["last_error"] is None
    finally:
        prom.stop()


def test_create_partitions(fed):
    from confluent_kafka.admin import NewPartitions
    node, members = fed
    assert create(node.bootstrap, "fed-grow", 4, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, "fed-grow", 4)
    first, second = ("a", "b") if member_topics(members["a"].bootstrap).get("fed-grow") else ("b", "a")
    a = AdminClient({"bootstrap.servers": node.bootstrap})

    def raise_to(count, assignment=None):
        try:
            wanted = NewPartitions("fed-grow", count, assignment) if assignment else NewPartitions("fed-grow", count)
            a.create_partitions([wanted], request_timeout=20)["fed-grow"].result(20)
            return None
        except Exception as e:  # KafkaException
            return e.args[0]

    assert raise_to(6) is None
    # The new partitions went to the member holding the last ones; the numbering stays: 0-1 on the
    # first member, 2-5 the second's 0-3.
    assert member_topics(members[first].bootstrap)["fed-grow"] == 2
    assert member_topics(members[second].bootstrap)["fed-grow"] == 4
    ck.wait_topic(node.bootstrap, "fed-grow", 6)
    checked = a.create_partitions([NewPartitions("fed-grow", 9)], validate_only=True, request_timeout=20)
    assert checked["fed-grow"].result(20) is None  # validated by the member, nothing made
    assert member_topics(members[second].bootstrap)["fed-grow"] == 4
    err = raise_to(5)
    assert err is not None and err.code() == KafkaError.INVALID_PARTITIONS, err
    err = raise_to(6)
    assert err is not None and err.code() == KafkaError.INVALID_PARTITIONS, err
    err = raise_to(7, [[0]])
    assert err is not None and err.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, err
    missing = a.create_partitions([NewPartitions("fed-no-such-topic", 3)], request_timeout=20)["fed-no-such-topic"]
    with pytest.raises(Exception) as e:
        missing.result(20)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, e.value
    # Every partition, the new ones too, written and read through the endpoint; federated
    # partition 5 is the second member's partition 3.
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "linger.ms": 5, "message.timeout.ms": 60000})
    for i in range(600):
        p.produce("fed-grow", key=b"k%d" % i, value=b"v%d" % i, partition=i % 6)
    assert p.flush(60) == 0
    got = ck.consume(node.bootstrap, "fed-grow", {q: 100 for q in range(6)}, timeout=60)
    for q in range(6):
        assert [k for _, k, _, _ in got[q]] == [b"k%d" % i for i in range(600) if i % 6 == q], q
    direct = ck.consume(members[second].bootstrap, "fed-grow", {3: 100}, timeout=60)
    assert [k for _, k, _, _ in direct[3]] == [b"k%d" % i for i in range(600) if i % 6 == 5]
    # The map kept it: after a restart the topic still has 6 partitions.
    node.kill9()
    node.start()
    t = AdminClient({"bootstrap.servers": node.bootstrap}).list_topics(topic="fed-grow", timeout=10).topics["fed-grow"]
    assert len(t.partitions) == 6, t.partitions

    # A member that already has the partitions (made there directly, or by an attempt whose map
    # write failed) is not asked to make them again: the map catches up.
    a = AdminClient({"bootstrap.servers": node.bootstrap})
    direct = AdminClient({"bootstrap.servers": members[second].bootstrap})  # kept: its futures need it
    direct.create_partitions([NewPartitions("fed-grow", 5)], request_timeout=20)["fed-grow"].result(20)
    assert raise_to(7) is None
    ck.wait_topic(node.bootstrap, "fed-grow", 7)
    assert member_topics(members[second].bootstrap)["fed-grow"] == 5


def test_creation_interrupted_by_a_kill9_is_undone(fed):
    """A split topic half created when the endpoint is kill -9ed: member b is stopped (SIGSTOP), so
    its part waits while a's is made; the endpoint dies then. After its restart the creation is
    undone on both members (it was recorded before any member was asked), the half on a is not
    adopted as a topic of its own, and creating the topic again gives it whole."""
    import signal
    import threading
    node, members = fed
    a, b = members["a"], members["b"]
    outcome = {}
    b.proc.send_signal(signal.SIGSTOP)
    try:
        worker = threading.Thread(daemon=True, target=lambda: outcome.setdefault(
            "error", create(node.bootstrap, "fed-half", 4, {"federation.split.clusters": "2"})))
        worker.start()
        deadline = time.monotonic() + 10
        while "fed-half" not in member_topics(a.bootstrap):
            assert time.monotonic() < deadline, "member a never made its part"
            time.sleep(0.05)
        node.kill9()
    finally:
        b.proc.send_signal(signal.SIGCONT)
    worker.join(40)
    assert outcome.get("error") is not None, outcome  # the client never heard of a success
    node.start()
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    deadline = time.monotonic() + 30
    while True:
        assert "fed-half" not in admin.list_topics(timeout=10).topics, "half a topic was adopted"
        if "fed-half" not in member_topics(a.bootstrap) and "fed-half" not in member_topics(b.bootstrap):
            break
        assert time.monotonic() < deadline, "the interrupted creation was not undone on the members"
        time.sleep(0.2)
    assert "deleted the unfinished creation's or move's parts of topic fed-half" in node.log_path.read_text(errors="replace")
    deadline = time.monotonic() + 30
    while (err := create(node.bootstrap, "fed-half", 4, {"federation.split.clusters": "2"})) is not None:
        assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS and time.monotonic() < deadline, err
        time.sleep(0.5)
    ck.wait_topic(node.bootstrap, "fed-half", 4)
    assert member_topics(a.bootstrap)["fed-half"] == 2 and member_topics(b.bootstrap)["fed-half"] == 2


def wait_move(node, topic: str, to: str, timeout: float = 90.0) -> dict:
    """Until /v1/topics shows the topic's move to `to` ended; its entry. A failed move fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        entry = next((t for t in admin_json(node.admin_port, "/v1/topics")["topics"] if t["name"] == topic), None)
        move = (entry or {}).get("move", {})
        assert not move.get("state", "").startswith("failed"), move
        if move.get("state") == "done" and move.get("to") == to:
            return entry
        assert time.monotonic() < deadline, f"the move did not end: {entry}"
        time.sleep(0.2)


def move_under_load(node, topic: str, partitions: int, group: str, want: dict, post: str, to: str,
                    during=None, produce_via: str | None = None, consume_via: list[str] | None = None) -> dict:
    """A producer (acks=all, keyed, round robin over the partitions) and a group of two consumers
    (committing after every poll) through the endpoint, while POST `post` moves partitions of the
    topic to member `to`, and for a while after (the producer through `produce_via`, the consumers through
    `consume_via`: other endpoints over the same map). Checks that every record acknowledged (those in
    `want` beforehand too, which it extends) is consumed exactly once, at its offset with its key,
    and that the group never rebalanced. Returns the topic's /v1/topics entry once moved; or, with
    `during`, what `during()` returns: it is called once the move is accepted, in place of waiting
    for the move to end (a fault test's own steps)."""
    import threading
    from harness import groups
    via = consume_via or [node.bootstrap, node.bootstrap]
    consumers = [groups.Member(f"m{i}", "confluent", via[i], group, topic) for i in range(2)]
    stop = threading.Event()
    acked: dict[tuple[int, int], str] = {}
    errors: list = []
    first = max(int(k.split("-")[1]) for k in want.values()) + 1 if want else 0

    def produce():
        def on_delivery(err, m):
            if err is not None:
                errors.append(err)
            else:
                acked[(m.partition(), m.offset())] = m.key().decode()
        p = Producer({"bootstrap.servers": produce_via or node.bootstrap, "acks": "all", "linger.ms": 5,
                      "message.timeout.ms": 60000, "log_level": 3})
        deadline = time.monotonic() + 120
        for i in range(first, first + 60000):  # bounded in count and time
            if stop.is_set() or time.monotonic() > deadline:
                break
            p.produce(topic, value=b"v-%d" % i, key=b"k-%d" % i, partition=i % partitions, on_delivery=on_delivery)
            p.poll(0)
            if i % 20 == 0:
                time.sleep(0.005)
        p.flush(60)

    writer = threading.Thread(target=produce, daemon=True)
    try:
        groups.wait_balanced(consumers, partitions, None)
        groups.wait_until(lambda: all(m.owned() for m in consumers), 45, lambda: groups.describe_all(consumers))
        marks = [len(m.snapshot()) for m in consumers]
        writer.start()
        groups.wait_until(lambda: len(acked) > 500, 30, "records acknowledged before the move")
        deadline = time.monotonic() + 30
        while (answer := http_get(node.admin_port, post, method="POST"))[0] != 202:
            # 409 while an earlier move's undoing or clean-up holds the topic
            assert answer[0] == 409 and time.monotonic() < deadline, answer
            time.sleep(0.5)
        at_move = len(acked)
        entry = during() if during else wait_move(node, topic, to)
        after = len(acked)
        groups.wait_until(lambda: len(acked) > after + 500, 30, "records acknowledged after the move")
        stop.set()
        writer.join(90)
        assert not writer.is_alive()
        assert not errors, errors[:3]
        print({"acked_before_move": at_move, "acked_by_the_switch": after, "acked": len(acked),
               "move": entry["move"]})
        want.update(acked)
        groups.wait_consumed(consumers, want, timeout=60)
        groups.check_exactly_once(consumers, want)
        # The group never noticed: no rebalance from before the move to the end.
        assert not [e for m, mark in zip(consumers, marks) for e in m.rebalance_events(since=mark)], \
            groups.describe_all(consumers)
    finally:
        stop.set()
        groups.close_all(consumers)
    return entry


def check_position(node, topic: str, group: str, ends: dict[int, int], low0: int) -> None:
    """Through the endpoint: partition 0 holds [low0, ends[0]) and the group's committed offsets are the ends."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (low0, ends[0])
        committed = c.committed([TopicPartition(topic, p) for p in range(len(ends))], timeout=15)
        assert [tp.offset for tp in committed] == [ends[p] for p in range(len(ends))], committed
    finally:
        c.close()


def test_topic_moved_under_load(fed):
    """The topic moves from its member to the other (copy, catch up, switch) while a producer writes
    to it and a group of two consumers reads it, committing as it goes, all through the endpoint.
    Partition 0 lost its first 100 records to DeleteRecords before the move, so the copy begins at
    offset 100 there and the endpoint adds 100 to the new member's offsets. Checked: every record
    acknowledged before, during and after the move is consumed exactly once, with the key it was
    acknowledged with at that offset; nothing below 100 comes back; the committed offsets are the
    ends; the topic is on the new member alone, in its own numbering there."""
    from confluent_kafka import Consumer, TopicPartition
    from harness import groups
    node, members = fed
    topic, group = "fed-moving", "fed-move-group"
    assert create(node.bootstrap, topic, 3) is None
    ck.wait_topic(node.bootstrap, topic, 3)
    src = "a" if topic in member_topics(members["a"].bootstrap) else "b"
    dst = "b" if src == "a" else "a"

    # Refused: no such member, a member holding it already.
    status, _, body = http_get(node.admin_port, f"/v1/topics/{topic}/move?to=nowhere", method="POST")
    assert status == 409 and "no member cluster nowhere" in body, body
    status, _, body = http_get(node.admin_port, f"/v1/topics/{topic}/move?to={src}", method="POST")
    assert status == 409, body

    # Two rounds, so that offset 100 of partition 0 begins a batch: the copy begins there, 100 is
    # the offset base, and the new member numbers from 0.
    want = groups.produce_keyed(node.bootstrap, topic, 0, 300, 3)
    want.update(groups.produce_keyed(node.bootstrap, topic, 300, 300, 3))
    src_admin = AdminClient({"bootstrap.servers": members[src].bootstrap})  # referenced until its futures end
    deleted = src_admin.delete_records([TopicPartition(topic, 0, 100)], request_timeout=20)
    for f in deleted.values():
        f.result(20)
    want = {k: v for k, v in want.items() if not (k[0] == 0 and k[1] < 100)}

    entry = move_under_load(node, topic, 3, group, want, f"/v1/topics/{topic}/move?to={dst}", dst)
    assert [s["cluster"] for s in entry["placement"]] == [dst], entry
    assert entry["move"]["from"] == src and entry["move"]["batches_copied"] > 0, entry
    assert entry["placement"][0]["offset_bases"][0] == 100, entry
    assert not any(p == 0 and o < 100 for p, o in want)

    ends = {p: max(o for q, o in want if q == p) + 1 for p in range(3)}
    check_position(node, topic, group, ends, 100)
    deadline = time.monotonic() + 20
    while topic in member_topics(members[src].bootstrap):
        assert time.monotonic() < deadline, f"the topic is still on {src}"
        time.sleep(0.2)
    c = Consumer({"bootstrap.servers": members[dst].bootstrap, "group.id": group})
    try:  # the new member's own numbering: partition 0 from 0
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, ends[0] - 100)
    finally:
        c.close()
    # And back again: the bases add up (the new member's offsets are the old member's less its
    # log start, which were the federated ones less 100), and the group's offsets come along.
    deadline = time.monotonic() + 30
    while (answer := http_get(node.admin_port, f"/v1/topics/{topic}/move?to={src}", method="POST"))[0] != 202:
        assert answer[0] == 409 and time.monotonic() < deadline, answer  # held until the old part is deleted
        time.sleep(0.2)
    entry = wait_move(node, topic, src)
    assert [s["cluster"] for s in entry["placement"]] == [src], entry
    check_position(node, topic, group, ends, 100)
    got = ck.consume(node.bootstrap, topic, {p: ends[p] - (100 if p == 0 else 0) for p in range(3)},
                     start={0: 100}, timeout=60)
    for p in range(3):
        assert {(o, k.decode()) for o, k, _, _ in got[p]} == {(o, k) for (q, o), k in want.items() if q == p}
    # DeleteRecords through the endpoint, in the federated numbering of a moved partition (its member
    # numbers from 0 where the endpoint's clients see 100): to 150, then a no-op below the base.
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    for target, low in ((150, 150), (50, 150)):
        done = admin.delete_records([TopicPartition(topic, 0, target)], request_timeout=20)
        assert [f.result(20).low_watermark for f in done.values()] == [low]
    conn = kwire.KafkaConn.to(node.bootstrap)
    try:
        assert kwire.list_offsets(conn, topic, [0], -2) == {0: 150}
    finally:
        conn.close()
    got = ck.consume(node.bootstrap, topic, {0: ends[0] - 150}, start={0: -2}, timeout=60)  # from the earliest
    assert got[0][0][0] == 150


def test_delete_records_through_the_endpoint(fed):
    """DeleteRecords of a split topic's partitions goes to each one's member: a new log start on one,
    "up to the high watermark" (-1) on the other, and past the end refused as Kafka refuses it."""
    node, members = fed
    topic = "fed-delete-records"
    assert create(node.bootstrap, topic, 2, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 2)
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "log_level": 3})
    for i in range(200):
        p.produce(topic, key=b"k-%d" % i, value=b"v", partition=i % 2)
    assert p.flush(60) == 0
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    done = admin.delete_records([TopicPartition(topic, 0, 40), TopicPartition(topic, 1, -1)], request_timeout=20)
    assert {tp.partition: f.result(20).low_watermark for tp, f in done.items()} == {0: 40, 1: 100}
    done = admin.delete_records([TopicPartition(topic, 0, 101)], request_timeout=20)
    with pytest.raises(Exception) as refused:
        list(done.values())[0].result(20)
    assert refused.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, refused.value
    marks = []
    for m in members.values():  # each member's own partition 0 holds one federated partition
        c = Consumer({"bootstrap.servers": m.bootstrap, "group.id": "fed-delete-records-check"})
        try:
            marks.append(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10))
        finally:
            c.close()
    assert sorted(marks) == [(40, 100), (100, 100)], marks
    got = ck.consume(node.bootstrap, topic, {0: 60}, start={0: -2}, timeout=60)  # from the earliest
    assert [o for o, _, _, _ in got[0]] == list(range(40, 100))


def topic_in_small_batches(node, members, topic: str, n: int) -> tuple[str, str, dict]:
    """A topic of 2 partitions made through the endpoint, and n keyed records written to it in many
    small batches (about n/4), so that copying it takes long enough to be caught in the middle.
    Returns the member holding it, the other one, and {(partition, offset): key}."""
    assert create(node.bootstrap, topic, 2) is None
    ck.wait_topic(node.bootstrap, topic, 2)
    src = "a" if topic in member_topics(members["a"].bootstrap) else "b"
    dst = "b" if src == "a" else "a"
    p = Producer({"bootstrap.servers": node.bootstrap, "acks": "all", "linger.ms": 0, "batch.num.messages": 4,
                  "log_level": 3})
    written: dict[tuple[int, int], str] = {}

    def on_delivery(err, m):
        assert err is None, err
        written[(m.partition(), m.offset())] = m.key().decode()
    for i in range(n):
        p.produce(topic, key=b"k-%d" % i, value=b"v-%d" % i, partition=i % 2, on_delivery=on_delivery)
        if i % 200 == 0:
            p.flush(30)
    assert p.flush(60) == 0 and len(written) == n
    return src, dst, written


def test_move_interrupted_by_a_kill9_is_undone(fed):
    """The endpoint kill -9ed in the middle of a move (the copy on the new member half made: that
    member is SIGSTOPped with an append outstanding): after the restart the topic is still on its
    old member, whole and readable through the endpoint at the same offsets, and the half copy is
    deleted from the new member (the move was recorded before the copy began). Moving it again
    then works."""
    import signal
    node, members = fed
    topic = "fed-move-killed"
    n = 8000
    src, dst, _ = topic_in_small_batches(node, members, topic, n)

    status, _, body = http_get(node.admin_port, f"/v1/topics/{topic}/move?to={dst}", method="POST")
    assert status == 202, body
    stopped = False
    try:
        deadline = time.monotonic() + 30
        while True:
            # The topic has been seen missing from a snapshot here twice (unexplained, see the stop
            # note of 2026-12-07): waited for, within the same deadline, rather than failing at once.
            entry = next((t for t in admin_json(node.admin_port, "/v1/topics")["topics"] if t["name"] == topic),
                         {"name": topic, "missing": True})
            assert time.monotonic() < deadline, entry
            if entry.get("missing"):
                time.sleep(0.05)
                continue
            move = entry.get("move", {"state": "copying", "batches_copied": 0})  # shown within 0.5 s
            if move["batches_copied"] >= 20:
                break
            assert move["state"] == "copying" and time.monotonic() < deadline, entry
            time.sleep(0.01)
        members[dst].proc.send_signal(signal.SIGSTOP)
        stopped = True
        time.sleep(0.3)
        entry = next(t for t in admin_json(node.admin_port, "/v1/topics")["topics"] if t["name"] == topic)
        assert entry["move"]["state"] == "copying", entry  # caught in the middle
        # DeleteRecords is refused while the copy is under way (it could not follow a log start
        # raised behind it); to offset 0 it would delete nothing anyway.
        from harness.kadmin_wire import Conn, delete_records
        with Conn(node.bootstrap) as conn:
            assert delete_records(conn, {topic: {0: 0}}) == {(topic, 0): (60, -1)}  # REASSIGNMENT_IN_PROGRESS
        node.kill9()
    finally:
        if stopped:
            members[dst].proc.send_signal(signal.SIGCONT)
    node.start()
    deadline = time.monotonic() + 30
    while topic in member_topics(members[dst].bootstrap):
        assert time.monotonic() < deadline, f"the half copy is still on {dst}"
        time.sleep(0.2)
    entry = next(t for t in admin_json(node.admin_port, "/v1/topics")["topics"] if t["name"] == topic)
    assert [s["cluster"] for s in entry["placement"]] == [src] and "offset_bases" not in entry["placement"][0], entry
    got = ck.consume(node.bootstrap, topic, {q: n // 2 for q in range(2)}, timeout=60)
    for q in range(2):
        assert [(o, k) for o, k, _, _ in got[q]] == [(j, b"k-%d" % i) for j, i in enumerate(range(q, n, 2))]

    deadline = time.monotonic() + 30
    while (status := http_get(node.admin_port, f"/v1/topics/{topic}/move?to={dst}", method="POST")[0]) != 202:
        assert status == 409 and time.monotonic() < deadline, status  # held until the undo is done
        time.sleep(0.5)
    entry = wait_move(node, topic, dst)
    assert [s["cluster"] for s in entry["placement"]] == [dst], entry
    got = ck.consume(node.bootstrap, topic, {q: n // 2 for q in range(2)}, timeout=60)
    for q in range(2):
        assert [(o, k) for o, k, _, _ in got[q]] == [(j, b"k-%d" % i) for j, i in enumerate(range(q, n, 2))]



def topic_entry(node, topic: str) -> dict:
    return next(t for t in admin_json(node.admin_port, "/v1/topics")["topics"] if t["name"] == topic)


def wait_copying(node, topic: str, batches: int, timeout: float = 30.0) -> None:
    """Until the topic's move is copying and has copied `batches` batches. The status shows a new
    move within 0.5 s; until then it may show none, or the last one's end."""
    start = time.monotonic()
    while True:
        move = topic_entry(node, topic).get("move", {"state": "copying", "batches_copied": 0})
        if move["state"] == "copying" and move["batches_copied"] >= batches:
            return
        shown = time.monotonic() - start > 2
        assert (move["state"] == "copying" or not shown) and time.monotonic() < start + timeout, move
        time.sleep(0.01)


def test_move_under_member_faults(fed):
    """Member faults in the middle of a move, with a producer and a consumer group working through the
    endpoint all along:
    1. the new member is killed with kill -9 while the copy is being made: the move fails and says
       why, the topic stays where it was, and the half copy is deleted once that member is back;
    2. the move is made again, and this time the old member (which every client of the topic is
       using) is paused with SIGSTOP for 2 s while the copy is being made: clients and copy wait,
       and the move then completes.
    Every record acknowledged before, during and after is consumed exactly once, at its offset,
    with its key, and the group never rebalances (move_under_load's checks)."""
    import signal
    from harness import groups
    node, members = fed
    topic, group = "fed-move-faults", "fed-move-faults-group"
    src, dst, want = topic_in_small_batches(node, members, topic, 8000)

    def kill_the_new_member():
        wait_copying(node, topic, 20)
        members[dst].kill9()
        deadline = time.monotonic() + 60
        while not (move := topic_entry(node, topic)["move"])["state"].startswith("failed"):
            assert move["state"] == "copying" and time.monotonic() < deadline, move
            time.sleep(0.1)
        members[dst].start()
        deadline = time.monotonic() + 60
        while topic in member_topics(members[dst].bootstrap):
            assert time.monotonic() < deadline, f"the half copy is still on {dst}"
            time.sleep(0.2)
        return topic_entry(node, topic)

    entry = move_under_load(node, topic, 2, group, want, f"/v1/topics/{topic}/move?to={dst}", dst,
                            during=kill_the_new_member)
    assert [s["cluster"] for s in entry["placement"]] == [src], entry
    assert entry["move"]["state"].startswith("failed: ") and entry["move"]["to"] == dst, entry

    def pause_the_old_member():
        wait_copying(node, topic, 20)
        members[src].proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(2)
        finally:
            members[src].proc.send_signal(signal.SIGCONT)
        return wait_move(node, topic, dst)

    # A new group, which reads everything again: the first one's consumers are closed.
    entry = move_under_load(node, topic, 2, group + "-2", want, f"/v1/topics/{topic}/move?to={dst}", dst,
                            during=pause_the_old_member)
    assert [s["cluster"] for s in entry["placement"]] == [dst], entry
    deadline = time.monotonic() + 20
    while topic in member_topics(members[src].bootstrap):
        assert time.monotonic() < deadline, f"the topic is still on {src}"
        time.sleep(0.2)


@pytest.fixture(name="fed3")
def federation_of_three_fixture():
    yield from federation_over({"a": "sluice", "b": "sluice", "c": "sluice"})


def test_member_added_to_a_split_topic_under_load(fed3):
    """A topic of 6 split over a and b (3 each) spreads to member c (POST .../spread?to=c): the last
    partition of each of a's and b's segments moves to c, while a producer and a group of two read
    and write through the endpoint. Every acknowledged record consumed once at its offset, no
    rebalance; then the placement is a:2 c:1 b:2 c:1 (c holding partitions from two segments in
    one topic), the records are on c in its own numbering, the emptied partitions on a and b hold
    nothing, the committed offsets are the ends, and CreatePartitions still grows the topic."""
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import NewPartitions
    node, members = fed3
    topic, group = "fed-spread", "fed-spread-group"
    assert create(node.bootstrap, topic, 6, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 6)
    assert member_topics(members["a"].bootstrap)[topic] == 3 and member_topics(members["b"].bootstrap)[topic] == 3
    status, _, body = http_get(node.admin_port, f"/v1/topics/{topic}/spread?to=a", method="POST")
    assert status == 409, body  # a holds it already

    want: dict = {}
    entry = move_under_load(node, topic, 6, group, want, f"/v1/topics/{topic}/spread?to=c", "c")
    assert [(s["cluster"], s["partitions"], s.get("first_member_partition", 0)) for s in entry["placement"]] == \
        [("a", 2, 0), ("c", 1, 0), ("b", 2, 0), ("c", 1, 1)], entry
    ends = {p: max(o for q, o in want if q == p) + 1 for p in range(6)}
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": group})
    try:
        committed = c.committed([TopicPartition(topic, p) for p in range(6)], timeout=15)
        assert [tp.offset for tp in committed] == [ends[p] for p in range(6)], committed
    finally:
        c.close()
    # On c, in its own numbering (partitions 0 and 1: federated 2 and 5), from 0.
    got = ck.consume(members["c"].bootstrap, topic, {0: ends[2], 1: ends[5]}, timeout=60)
    assert [(o, k.decode()) for o, k, _, _ in got[0]] == [(o, want[(2, o)]) for o in range(ends[2])]
    assert [(o, k.decode()) for o, k, _, _ in got[1]] == [(o, want[(5, o)]) for o in range(ends[5])]
    # The partitions a and b gave up are emptied (best effort, after 2 s).
    deadline = time.monotonic() + 20
    while True:
        lows = []
        for name in ("a", "b"):
            probe = Consumer({"bootstrap.servers": members[name].bootstrap, "group.id": "probe"})
            try:
                lo, hi = probe.get_watermark_offsets(TopicPartition(topic, 2), timeout=10)
                lows.append(lo == hi)
            finally:
                probe.close()
        if all(lows):
            break
        assert time.monotonic() < deadline, "the moved partitions' records are still on a or b"
        time.sleep(0.5)
    # CreatePartitions adds to the last segment (c's, from its partition 2 on).
    deadline = time.monotonic() + 30
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    while True:
        try:
            admin.create_partitions([NewPartitions(topic, 8)], request_timeout=20)[topic].result(20)
            break
        except Exception as e:  # held until the emptying ends
            assert "being" in str(e) and time.monotonic() < deadline, e
            time.sleep(0.5)
    ck.wait_topic(node.bootstrap, topic, 8)
    assert member_topics(members["c"].bootstrap)[topic] == 4


def test_spread_interrupted_after_its_switch_finishes_its_clean_up(fed3):
    """The endpoint kill -9ed right after a spread's switch, before it emptied the partitions a and b
    gave up (it waits 2 s; a and b are SIGSTOPped meanwhile, so that it cannot have): the switch
    recorded them with the new placement, so the restarted endpoint empties them (DeleteRecords to
    their high watermark), and every record stays readable through the endpoint at its offset."""
    import signal
    from confluent_kafka import Consumer, TopicPartition
    from harness import groups
    node, members = fed3
    topic = "fed-spread-killed"
    assert create(node.bootstrap, topic, 6, {"federation.split.clusters": "2"}) is None
    ck.wait_topic(node.bootstrap, topic, 6)
    want = groups.produce_keyed(node.bootstrap, topic, 0, 600, 6)
    status, _, body = http_get(node.admin_port, f"/v1/topics/{topic}/spread?to=c", method="POST")
    assert status == 202, body
    wait_move(node, topic, "c", timeout=60)
    stopped = []
    try:
        for name in ("a", "b"):
            members[name].proc.send_signal(signal.SIGSTOP)
            stopped.append(name)
        node.kill9()
    finally:
        for name in stopped:
            members[name].proc.send_signal(signal.SIGCONT)
    log_before = node.log_path.read_text(errors="replace")
    assert f"deleted the unfinished creation's or move's parts of topic {topic}" not in log_before
    node.start()

    def emptied(name: str) -> bool:
        probe = Consumer({"bootstrap.servers": members[name].bootstrap, "group.id": "probe"})
        try:
            lo, hi = probe.get_watermark_offsets(TopicPartition(topic, 2), timeout=10)
            return lo == hi == 100
        finally:
            probe.close()
    deadline = time.monotonic() + 30
    while not (emptied("a") and emptied("b")):
        assert time.monotonic() < deadline, f"the moved partitions' records are still on a or b: {node.log_tail()}"
        time.sleep(0.5)
    restarted_log = node.log_path.read_text(errors="replace")[len(log_before):]
    assert f"deleted the unfinished creation's or move's parts of topic {topic}" in restarted_log, restarted_log
    entry = topic_entry(node, topic)
    assert [(s["cluster"], s["partitions"]) for s in entry["placement"]] == [("a", 2), ("c", 1), ("b", 2), ("c", 1)]
    got = ck.consume(node.bootstrap, topic, {p: 100 for p in range(6)}, timeout=60)
    for p in range(6):
        assert [(o, k.decode()) for o, k, _, _ in got[p]] == [(o, want[(p, o)]) for o in range(100)]


def test_move_from_a_replicated_member_keeps_its_acks1_writes():
    """Member a is a 3-broker Sluice cluster (replication factor 3), b a single node. One follower
    of the topic's partition is paused (SIGSTOP), so the leader's high watermark stands still until
    the follower leaves the ISR (replica.lag.time.max.ms, 1.5 s) while the leader acknowledges
    acks=1 writes above it. The topic is moved to b right then, and the follower resumed 1 s later:
    a copy made from what consumers can read (the high watermark) would switch without those writes
    and delete them with the old part, so the switch also waits until the copy covers what a
    acknowledged to acks=1 producers through the endpoint. Every record acknowledged, acks=all and acks=1, is read back through the
    endpoint at its offset, from b."""
    from harness import groups
    from harness.cluster import SluiceCluster
    cluster, single, node = SluiceCluster(brokers=3), Broker("sluice"), None
    try:
        cluster.start()
        single.start()
        node = FederationNode({"a": cluster.bootstrap, "b": single.bootstrap}).start()
        topic = "fed-acks1"
        cluster.create_topic(topic, 1, replication_factor=3)
        ck.wait_topic(node.bootstrap, topic, 1)
        want = groups.produce_keyed(node.bootstrap, topic, 0, 100, 1)
        leader, replicas, _ = cluster.partition_state(topic)[0]
        follower = next(r for r in replicas if r != leader)
        cluster.pause(follower)
        try:
            acked: dict[tuple[int, int], str] = {}
            p = Producer({"bootstrap.servers": node.bootstrap, "acks": "1", "linger.ms": 5, "log_level": 3})
            for i in range(100, 400):
                p.produce(topic, key=b"k-%d" % i, value=b"v-%d" % i, partition=0,
                          on_delivery=lambda err, m: acked.__setitem__((m.partition(), m.offset()), m.key().decode())
                          if err is None else None)
            assert p.flush(30) == 0 and len(acked) == 300
            status, _, body = http_get(node.admin_port, f"/v1/topics/{topic}/move?to=b", method="POST")
            assert status == 202, body
            # Long enough for a move that ignored the acks=1 writes to reach its switch (about 0.5 s),
            # short of the follower leaving the ISR. Resumed then: a move copies every group's offsets
            # at its switch, and asks every broker of the old member which groups it coordinates.
            time.sleep(1.0)
        finally:
            cluster.resume(follower)
        entry = wait_move(node, topic, "b", timeout=60)
        want.update(acked)
        assert [s["cluster"] for s in entry["placement"]] == ["b"], entry
        got = ck.consume(node.bootstrap, topic, {0: 400}, timeout=60)
        assert [(o, k.decode()) for o, k, _, _ in got[0]] == [(o, want[(0, o)]) for o in range(400)]
    finally:
        if node:
            node.cleanup()
        single.cleanup()
        cluster.cleanup()
