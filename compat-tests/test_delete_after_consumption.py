"""Delete after consumption (issue 18): a topic whose config `delete.after.consumption.groups`
lists groups keeps its records only until every listed group has consumed them. The partition
leader moves the log start offset up to the lowest committed offset of the listed groups (never
past the high watermark) and deletes the segments below it; followers follow the new log start.
Sluice only: Kafka has no such config (its nearest, DeleteRecords, is what the leader applies).

What is checked, with real processes and real clients (confluent-kafka):
  - a 3-broker cluster, RF=3: two consumer groups and a share group (Kafka's KafkaShareConsumer)
    consuming at different speeds; nothing goes before the slow one and the share group consume;
    then data goes only behind the slowest, on the leader and on both
    followers (segment files on disk); a group not listed that committed below the new log start
    gets OFFSET_OUT_OF_RANGE and its auto.offset.reset; a commit past the end releases only up to
    the high watermark; a full restart keeps the new log start;
  - one node: a listed group that never consumes holds everything (normal retention still
    applies); the queue depth per topic and group in /v1/queues and as sluice_queue_depth;
    DescribeConfigs shows the config with its documentation.
Every wait is bounded; the check runs every 200 ms here (delete.after.consumption.check.interval.ms).
"""
from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness.brokers import Broker, free_port
from harness.cluster import SluiceCluster, sluice_only_fixture  # noqa: F401 (fixture)
from harness.kadmin_wire import SET, TOPIC, Conn, describe_configs, incremental_alter_configs, wait_for
from test_share_groups import java44_libs, java_share  # noqa: F401 (fixture)

GROUP = 32  # ConfigResource.Type.GROUP

CHECK_MS = "200"
GROUPS_KEY = "delete.after.consumption.groups"
SEGMENT = 16384     # segment.bytes of the queue topics: many segments, so deletion shows on disk
VALUE = b"v" * 200  # ~270 bytes a record on disk: ~60 records a segment
WAIT = 30.0


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "batch.num.messages": 20, "log_level": 2})
    failed = []
    for i in range(per_partition):
        for part in range(partitions):
            p.produce(topic, VALUE, key=f"{part}-{i}".encode(), partition=part,
                      on_delivery=lambda err, _msg: err and failed.append(err))
        p.poll(0)
    assert p.flush(WAIT) == 0 and not failed, failed


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commits without joining (generation -1), retrying while the coordinator is being set up."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "socket.timeout.ms": 5000, "log_level": 2})
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                got = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
                if all(tp.error is None for tp in got):
                    return
                last = [tp.error for tp in got]
            except KafkaException as e:
                last = e
            assert time.monotonic() < deadline, f"commit of {group} failed: {last}"
            time.sleep(0.2)
    finally:
        c.close()


def consume_all(bootstrap: str, group: str, topic: str, expected: int) -> dict[int, int]:
    """A subscribed consumer of `group` reads `expected` records and commits; returns the first
    offset it read on each partition."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "log_level": 2})
    first: dict[int, int] = {}
    got = 0
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + WAIT
        while got < expected and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            first.setdefault(m.partition(), m.offset())
            got += 1
        assert got == expected, f"{group} read {got} of {expected}"
        c.commit(asynchronous=False)
    finally:
        c.close()
    return first


def low_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks", "log_level": 2})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[0] for p in range(partitions)}
    finally:
        c.close()


def segment_bases(data_dir: Path, topic: str, partition: int) -> list[int]:
    return sorted(int(f.stem) for f in (data_dir / f"{topic}-{partition}").glob("*.log"))


def released_on_disk(bases: list[int], log_start: int) -> bool:
    """Every segment wholly below the log start is gone, and the first one left holds it."""
    return bool(bases) and bases[0] <= log_start and (len(bases) == 1 or bases[1] > log_start)


def wait_low_watermarks(bootstrap: str, topic: str, wanted: dict[int, int]) -> None:
    wait_for(lambda: low_watermarks(bootstrap, topic, len(wanted)) == wanted,
             f"{topic}'s log start offsets to become {wanted}", WAIT)


# ------------------------------------------------------------------------------------ cluster
def test_consumed_records_go_behind_the_slowest_group_on_every_replica(java44_libs):
    topic, partitions, per_partition = "jobs", 3, 600
    cluster = SluiceCluster(brokers=3, config={"default.replication.factor": "3", "min.insync.replicas": "2",
                                               "delete.after.consumption.check.interval.ms": CHECK_MS,
                                               "group.share.enable": "true",
                                               "share.coordinator.state.topic.num.partitions": "3"})
    try:
        cluster.start()
        cluster.create_topic(topic, partitions, 3, config={GROUPS_KEY: "fast,slow,queue", "segment.bytes": str(SEGMENT)})
        produce(cluster.bootstrap, topic, partitions, per_partition)
        # A group not listed commits early: it is not waited for, and will find its offset deleted.
        commit(cluster.bootstrap, "audit", topic, {0: 10})

        # Nothing is consumed by the listed groups yet: everything stays.
        time.sleep(1.0)  # five checks
        assert low_watermarks(cluster.bootstrap, topic, partitions) == {p: 0 for p in range(partitions)}

        # The fast group reads everything; the slow one has not started: still everything stays.
        first = consume_all(cluster.bootstrap, "fast", topic, partitions * per_partition)
        assert first == {p: 0 for p in range(partitions)}
        time.sleep(1.0)
        assert low_watermarks(cluster.bootstrap, topic, partitions) == {p: 0 for p in range(partitions)}

        # The slow group gets partway; the share group "queue" has consumed nothing: still everything stays.
        slow = {0: 250, 1: 100, 2: 0}
        commit(cluster.bootstrap, "slow", topic, slow)
        time.sleep(1.0)
        assert low_watermarks(cluster.bootstrap, topic, partitions) == {p: 0 for p in range(partitions)}

        # The share group takes and accepts everything (Kafka's KafkaShareConsumer; its state with the
        # share coordinators): records go behind the slowest, the slow consumer group, and only behind it.
        conn = Conn(cluster.bootstrap.split(",")[0])
        try:
            answers = incremental_alter_configs(conn, [(GROUP, "queue", [("share.auto.offset.reset", SET, "earliest")])])
            assert all(a.error == 0 for a in answers), answers
        finally:
            conn.close()
        java_share(java44_libs, cluster.bootstrap, "share-drain", topic, "queue", str(partitions * per_partition))
        wait_low_watermarks(cluster.bootstrap, topic, slow)
        for p, start in slow.items():
            for node_id in cluster.broker_ids:
                data_dir = cluster.node(node_id).data_dir
                bases = wait_for(lambda: (b := segment_bases(data_dir, topic, p)) and released_on_disk(b, start) and b,
                                 f"node {node_id}'s {topic}-{p} to drop the segments below {start}", WAIT)
                if start > SEGMENT // 270:
                    assert bases[0] > 0, (node_id, p, bases)  # whole segments did go

        # The unlisted group's offset 10 is gone: OFFSET_OUT_OF_RANGE, then auto.offset.reset.
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "audit", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "log_level": 2})
        try:
            c.assign([TopicPartition(topic, 0)])  # from the committed offset, 10
            m = wait_for(lambda: (m := c.poll(0.5)) is not None and not m.error() and m,
                         "audit's first record after the reset", WAIT)
            assert m.offset() == 250
        finally:
            c.close()

        # A commit past the end releases only up to the high watermark.
        commit(cluster.bootstrap, "slow", topic, {p: 10**9 for p in range(partitions)})
        wait_low_watermarks(cluster.bootstrap, topic, {p: per_partition for p in range(partitions)})

        # A full restart keeps the new log start on every replica.
        cluster.stop()
        cluster.start()
        cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()))
        wait_low_watermarks(cluster.bootstrap, topic, {p: per_partition for p in range(partitions)})
        for p in range(partitions):
            for node_id in cluster.broker_ids:
                assert released_on_disk(segment_bases(cluster.node(node_id).data_dir, topic, p), per_partition)
    finally:
        cluster.cleanup()


# ------------------------------------------------------------------------------------ one node
def http_get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        assert res.status == 200, (path, res.status)
        return res.read().decode()
    finally:
        conn.close()


def metric(text: str, name: str, labels: str = "") -> float:
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    raise AssertionError(f"{prefix!r} not in the metrics:\n{text[:3000]}")


@pytest.fixture
def node(tmp_path):
    admin_port = free_port()
    b = Broker("sluice", workdir=tmp_path, extra_config={
        "admin.listeners": f"http://127.0.0.1:{admin_port}", "admin.refresh.interval.ms": "200",
        "delete.after.consumption.check.interval.ms": CHECK_MS, "log.retention.check.interval.ms": "200"})
    b.admin_port = admin_port
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


def test_queue_depth_and_a_group_that_never_consumes(node):
    bootstrap = node.bootstrap
    conn = Conn(bootstrap)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = admin.create_topics(
        [NewTopic("q", 1, 1, config={GROUPS_KEY: " a, b ", "segment.bytes": str(SEGMENT)}),
         NewTopic("keep", 1, 1, config={GROUPS_KEY: "never", "segment.bytes": str(SEGMENT)})])
    for future in created.values():
        future.result(WAIT)
    produce(bootstrap, "q", 1, 100)
    produce(bootstrap, "keep", 1, 300)

    # DescribeConfigs: the topic's value, and the documentation when asked for.
    err, entries = describe_configs(conn, TOPIC, "q", [GROUPS_KEY], version=3, include_documentation=True)
    assert err == 0 and entries[GROUPS_KEY].value == " a, b " and entries[GROUPS_KEY].source == 1
    assert "consum" in (entries[GROUPS_KEY].documentation or "")
    err, entries = describe_configs(conn, TOPIC, "keep", None, version=4)
    assert err == 0 and GROUPS_KEY in entries

    commit(bootstrap, "a", "q", {0: 60})
    commit(bootstrap, "b", "q", {0: 30})
    wait_low_watermarks(bootstrap, "q", {0: 30})

    def queue_rows():
        rows = json.loads(http_get(node.admin_port, "/v1/queues"))["queues"]
        return {(r["topic"], r["group"]): r for r in rows}

    rows = wait_for(lambda: (r := queue_rows()) and r.get(("q", "b"), {}).get("depth") == 70 and r, "queue depths", WAIT)
    assert rows[("q", "a")]["consumed_offset"] == 60 and rows[("q", "a")]["depth"] == 40
    assert rows[("q", "b")]["consumed_offset"] == 30 and rows[("q", "b")]["log_start_offset"] == 30
    assert rows[("keep", "never")]["consumed_offset"] is None and rows[("keep", "never")]["depth"] == 300
    metrics = http_get(node.admin_port, "/metrics")
    assert metric(metrics, "sluice_queue_depth", 'group="b",topic="q"') == 70
    assert metric(metrics, "sluice_queue_depth", 'group="never",topic="keep"') == 300
    assert metric(metrics, "sluice_queue_releases_total") == 1  # a's commit alone released nothing

    # Another group reads all of "keep": the listed group that never consumes holds everything...
    consume_all(bootstrap, "other", "keep", 300)
    time.sleep(1.0)  # five checks
    assert low_watermarks(bootstrap, "keep", 1) == {0: 0}
    # ...up to normal retention, which still applies.
    answers = incremental_alter_configs(conn, [(TOPIC, "keep", [("retention.bytes", SET, str(2 * SEGMENT))])])
    assert all(a.error == 0 for a in answers), answers
    wait_for(lambda: low_watermarks(bootstrap, "keep", 1)[0] > 0, "retention of keep", WAIT)
    conn.close()
