"""kafka-python helpers (bounded in time)."""
from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kafka.admin import KafkaAdminClient, NewTopic

from .ck import wait_topic
from .data import all_messages, check_partition, expected_by_partition


def create_topic(bootstrap: str, topic: str, partitions: int = 3, timeout: float = 30.0) -> None:
    """Create the topic and wait until metadata shows it with a leader on every partition: Kafka
    answers CreateTopics before its metadata cache has the topic, and a kafka-python consumer that
    joins a group in that window gets an empty assignment (once seen stuck there for 45 s)."""
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        a.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=int(timeout * 1000))
    finally:
        a.close()
    wait_topic(bootstrap, topic, partitions, timeout)


def subscribe_with_metadata(consumer: KafkaConsumer, topic: str, listener=None, timeout: float = 30.0) -> None:
    """subscribe(), then wait for a metadata response fetched after it that has the topic, before
    the first poll() joins the group. kafka-python 3.0.12's coordinator fills its partition
    snapshot only from metadata updates that arrive after subscribe(); a member that joins (and,
    as leader, assigns) before one arrives rejoins when it does, and that rejoin can be abandoned
    halfway: no assignment, heartbeats off, expelled after session.timeout.ms (seen against Kafka
    3.9.1 in CI; the client lacks the fix Java got in KAFKA-9815). topics() always asks the broker."""
    consumer.subscribe([topic], listener=listener)
    deadline = time.monotonic() + timeout
    while not (topic in consumer.topics() and consumer.partitions_for_topic(topic)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no partitions for {topic} in metadata after {timeout:g} s")
        time.sleep(0.1)


def produce(bootstrap: str, topic: str, n: int, *, compression: str | None = None, acks="all",
            timeout: float = 180.0) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, compression_type=compression, acks=acks,
                      linger_ms=20, batch_size=256 * 1024,
                      request_timeout_ms=30000, max_block_ms=30000)  # idempotent: kafka-python 3's default
    try:
        futures = []
        for part, k, v, h in all_messages(n):
            futures.append(p.send(topic, value=v, key=k, headers=h, partition=part))
        p.flush(timeout=timeout)
        for f in futures:
            f.get(timeout=1)  # raises the delivery error, if any
    finally:
        p.close(timeout=10)


def consume(bootstrap: str, topic: str, counts: dict[int, int], *, start: dict[int, int] | None = None,
            timeout: float = 180.0) -> dict[int, list]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="none", fetch_max_wait_ms=100,
                      max_partition_fetch_bytes=4 << 20, request_timeout_ms=30000)
    start = start or {}
    got: dict[int, list] = {p: [] for p in counts}
    try:
        tps = [TopicPartition(topic, p) for p in counts]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, start.get(tp.partition, 0))
        deadline = time.monotonic() + timeout
        while any(len(got[p]) < counts[p] for p in counts):
            assert time.monotonic() < deadline, \
                "consume timed out: " + ", ".join(f"{p}: {len(got[p])}/{counts[p]}" for p in counts)
            for tp, msgs in c.poll(timeout_ms=500, max_records=10000).items():
                for m in msgs:
                    got[tp.partition].append((m.offset, m.key, m.value, m.headers))
    finally:
        c.close()
    return got


def roundtrip(bootstrap: str, topic: str, n: int, compression: str | None) -> None:
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, n, compression=compression)
    want = expected_by_partition(n)
    got = consume(bootstrap, topic, {p: len(want[p]) for p in want})
    for p in want:
        check_partition(p, got[p], want[p])
