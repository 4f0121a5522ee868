"""confluent-kafka helpers (bounded in time)."""
from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .data import all_messages, check_partition, expected_by_partition


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap: str, topic: str, partitions: int = 3, config: dict | None = None,
                 timeout: float = 30.0) -> None:
    a = admin(bootstrap)  # keep a reference: the futures fail if the client is destroyed
    fs = a.create_topics([NewTopic(topic, partitions, 1, config=config or {})],
                         operation_timeout=timeout, request_timeout=timeout)
    fs[topic].result(timeout)
    wait_topic(bootstrap, topic, partitions, timeout)


def wait_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0) -> None:
    """Until metadata shows the topic with all partitions having a leader."""
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = a.list_topics(topic=topic, timeout=5)
        t = md.topics.get(topic)
        last = t
        if t is not None and t.error is None and len(t.partitions) == partitions and \
                all(pm.leader >= 0 and pm.error is None for pm in t.partitions.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"topic {topic} not ready with {partitions} partitions: {last!r}")


def produce(bootstrap: str, topic: str, n: int, *, compression: str = "none", acks: str = "all",
            timeout: float = 120.0, extra: dict | None = None) -> None:
    errors: list = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)

    conf = {"bootstrap.servers": bootstrap, "compression.type": compression, "acks": acks,
            "linger.ms": 20, "batch.num.messages": 10000, "queue.buffering.max.messages": 200000,
            "message.timeout.ms": int(timeout * 1000)}
    conf.update(extra or {})
    p = Producer(conf)
    deadline = time.monotonic() + timeout
    for part, k, v, h in all_messages(n):
        while True:
            try:
                p.produce(topic, value=v, key=k, partition=part, headers=h, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
                assert time.monotonic() < deadline, "producer queue stuck"
        p.poll(0)
    left = p.flush(max(1.0, deadline - time.monotonic()))
    assert left == 0, f"{left} messages not delivered within {timeout}s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"


def consume(bootstrap: str, topic: str, counts: dict[int, int], *, start: dict[int, int] | None = None,
            timeout: float = 120.0) -> dict[int, list]:
    """assign() each partition at start[p] (default 0) and read counts[p] messages.
    Returns {p: [(offset, key, value, headers)]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-assign",
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "auto.offset.reset": "error", "fetch.wait.max.ms": 100})
    start = start or {}
    got: dict[int, list] = {p: [] for p in counts}
    try:
        c.assign([TopicPartition(topic, p, start.get(p, 0)) for p in counts])
        deadline = time.monotonic() + timeout
        while any(len(got[p]) < counts[p] for p in counts):
            assert time.monotonic() < deadline, \
                f"consume timed out: {{p: got}} = {{{', '.join(f'{p}: {len(got[p])}/{counts[p]}' for p in counts)}}}"
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                got[m.partition()].append((m.offset(), m.key(), m.value(), m.headers()))
    finally:
        c.close()
    return got


def roundtrip(bootstrap: str, topic: str, n: int, compression: str) -> None:
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, n, compression=compression)
    want = expected_by_partition(n)
    got = consume(bootstrap, topic, {p: len(want[p]) for p in want})
    for p in want:
        check_partition(p, got[p], want[p])
