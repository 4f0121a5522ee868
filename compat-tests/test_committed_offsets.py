"""Committed offsets of consumers that assign partitions themselves (no group
membership): OffsetCommit and OffsetFetch through real clients and on the wire,
durable across a clean restart and a kill -9; against both brokers."""
from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from kafka.structs import OffsetAndMetadata

from harness import ck
from harness.kwire import Reader, connect, header_v1, i16, i32, i64, parse_bootstrap, roundtrip, string

NONE, UNKNOWN_TOPIC_OR_PARTITION, ILLEGAL_GENERATION, OFFSET_METADATA_TOO_LARGE = 0, 3, 22, 12


def consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})


# Coordinator errors clients are expected to retry: Kafka answers them while it loads
# its offsets topic after first use.
RETRIABLE = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
             KafkaError.COORDINATOR_NOT_AVAILABLE}


def commit(bootstrap: str, group: str, offsets: list[TopicPartition], timeout: float = 60) -> list[TopicPartition]:
    c = consumer(bootstrap, group)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return c.commit(offsets=offsets, asynchronous=False)
            except KafkaException as e:
                if e.args[0].code() not in RETRIABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        c.close()


def committed(bootstrap: str, group: str, partitions: list[TopicPartition],
              timeout: float = 60) -> dict[int, tuple[int, str]]:
    c = consumer(bootstrap, group)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return {tp.partition: (tp.offset, tp.metadata) for tp in c.committed(partitions, timeout=30)}
            except KafkaException as e:
                if e.args[0].code() not in RETRIABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        c.close()


def test_commit_and_fetch_with_metadata(broker, unique_topic):
    topic = unique_topic("commit")
    ck.create_topic(broker.bootstrap, topic, partitions=3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    result = commit(broker.bootstrap, group, [TopicPartition(topic, 0, 10, metadata="first"),
                                              TopicPartition(topic, 1, 20),
                                              TopicPartition(topic, 2, 0, metadata="x" * 100)])
    assert all(tp.error is None for tp in result), result
    got = committed(broker.bootstrap, group, [TopicPartition(topic, p) for p in range(3)])
    assert got[0] == (10, "first") and got[1][0] == 20 and got[2] == (0, "x" * 100)
    # A later commit replaces the earlier one; other groups are separate.
    commit(broker.bootstrap, group, [TopicPartition(topic, 0, 15)])
    assert committed(broker.bootstrap, group, [TopicPartition(topic, 0)])[0][0] == 15
    assert committed(broker.bootstrap, "someone-else", [TopicPartition(topic, 0)])[0][0] < 0


def test_admin_lists_group_offsets(broker, unique_topic):
    topic = unique_topic("admin-offsets")
    ck.create_topic(broker.bootstrap, topic, partitions=2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    commit(broker.bootstrap, group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)])
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=30)
    listed = futures[group].result(30)
    assert sorted((tp.topic, tp.partition, tp.offset) for tp in listed.topic_partitions) == \
        [(topic, 0, 3), (topic, 1, 4)]


def test_kafka_python_commit_and_committed(broker, unique_topic):
    topic = unique_topic("kp-commit")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False,
                      request_timeout_ms=30000)
    try:
        tp = KpTopicPartition(topic, 0)
        c.assign([tp])
        c.commit({tp: OffsetAndMetadata(42, "kp", -1)})
        assert c.committed(tp) == 42
    finally:
        c.close()


def test_offsets_survive_restart_and_kill9(fresh_broker, unique_topic):
    b = fresh_broker()
    topic = unique_topic("durable")
    ck.create_topic(b.bootstrap, topic, partitions=2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    commit(b.bootstrap, group, [TopicPartition(topic, 0, 7, metadata="m0"), TopicPartition(topic, 1, 9)])
    b.restart()
    assert committed(b.bootstrap, group, [TopicPartition(topic, 0)])[0] == (7, "m0")
    commit(b.bootstrap, group, [TopicPartition(topic, 1, 11)])
    b.kill9()
    b.start()
    got = committed(b.bootstrap, group, [TopicPartition(topic, p) for p in range(2)])
    assert got[0] == (7, "m0") and got[1][0] == 11


COORDINATOR_ERRORS = {14, 15, 16}  # load in progress, not available, not coordinator


def retrying(call, timeout: float = 60.0):
    """Repeats a raw request while the coordinator is not ready (Kafka, right after first use)."""
    deadline = time.monotonic() + timeout
    while True:
        result = call()
        error = result if isinstance(result, int) else result[-1]
        if error not in COORDINATOR_ERRORS or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def offset_commit_v2(bootstrap: str, group: str, generation: int, member: str, topic: str, partition: int,
                     offset: int, metadata: str = "") -> int:
    return retrying(lambda: _offset_commit_v2(bootstrap, group, generation, member, topic, partition, offset, metadata))


def _offset_commit_v2(bootstrap: str, group: str, generation: int, member: str, topic: str, partition: int,
                      offset: int, metadata: str) -> int:
    body = (string(group) + i32(generation) + string(member) + i64(-1) +
            i32(1) + string(topic) + i32(1) + i32(partition) + i64(offset) + string(metadata))
    host, port = parse_bootstrap(bootstrap)
    with connect(host, port, 10) as s:
        r = Reader(roundtrip(s, header_v1(8, 2, 5) + body))
    assert r.i32() == 5
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1
    assert r.i32() == partition
    return r.i16()


def offset_fetch_v2(bootstrap: str, group: str, topic: str, partition: int) -> tuple[int, str, int]:
    """(offset, metadata, error); the error is the partition's, or the top-level one (v2+)."""
    def call():
        body = string(group) + i32(1) + string(topic) + i32(1) + i32(partition)
        host, port = parse_bootstrap(bootstrap)
        with connect(host, port, 10) as s:
            r = Reader(roundtrip(s, header_v1(9, 2, 6) + body))
        assert r.i32() == 6
        if r.i32() == 0:  # no topics: only the top-level error says why
            return -1, "", r.i16()
        assert r.string() == topic and r.i32() == 1
        assert r.i32() == partition
        offset, metadata, error = r.i64(), r.string(), r.i16()
        top_level = r.i16()
        return offset, metadata, error or top_level
    return retrying(call)


def test_commit_errors_on_the_wire(broker, unique_topic):
    topic = unique_topic("wire-commit")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    group = f"g-{uuid.uuid4().hex[:8]}"
    # Nothing committed yet: offset -1, empty metadata, no error.
    assert offset_fetch_v2(broker.bootstrap, group, topic, 0) == (-1, "", NONE)
    assert offset_commit_v2(broker.bootstrap, group, -1, "", "no-such-topic-" + group, 0, 5) == UNKNOWN_TOPIC_OR_PARTITION
    assert offset_commit_v2(broker.bootstrap, group, -1, "", topic, 7, 5) == UNKNOWN_TOPIC_OR_PARTITION
    # A generation of a group the coordinator does not know.
    assert offset_commit_v2(broker.bootstrap, group, 3, "member-1", topic, 0, 5) == ILLEGAL_GENERATION
    assert offset_commit_v2(broker.bootstrap, group, -1, "", topic, 0, 5, "m" * 5000) == OFFSET_METADATA_TOO_LARGE
    assert offset_commit_v2(broker.bootstrap, group, -1, "", topic, 0, 5, "ok") == NONE
    assert offset_fetch_v2(broker.bootstrap, group, topic, 0) == (5, "ok", NONE)
    # The empty group id is allowed for offsets (Kafka keeps it for old clients).
    assert offset_commit_v2(broker.bootstrap, "", -1, "", topic, 0, 1) == NONE
