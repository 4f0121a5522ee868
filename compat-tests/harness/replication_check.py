"""What the cluster fault tests share: a paced producer that keeps what was acknowledged, and a
checker that reads every partition back and compares (house model: check_acked in
test_restart.py). Topics have P partitions; message values are b"m%07d" % number."""
from __future__ import annotations

import os
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from .faults import scan_segment, segment_files

P = 3


class AckedProducer:
    """Produces numbered messages round-robin over the partitions from a thread, paced, and keeps
    what was acknowledged: {(partition, offset): value} and the time of each acknowledgement."""

    def __init__(self, bootstrap: str, topic: str, *, acks: str = "all", idempotent: bool = True,
                 first_number: int = 0):
        """first_number: where message numbers start (a second producer on the same topic)."""
        self.topic = topic
        self.first_number = first_number
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": acks,
                                  "enable.idempotence": idempotent, "linger.ms": 5,
                                  "message.timeout.ms": 60000, "retry.backoff.ms": 50,
                                  "topic.metadata.refresh.interval.ms": 500, "log_level": 2,
                                  # COMPAT_RDKAFKA_DEBUG=eos,broker,... : librdkafka's debug log on stderr
                                  **({"debug": os.environ["COMPAT_RDKAFKA_DEBUG"], "log_level": 7}
                                     if os.environ.get("COMPAT_RDKAFKA_DEBUG") else {})})
        self.acked: dict[tuple[int, int], bytes] = {}
        self.sent_at: dict[int, float] = {}  # message number -> when it was handed to the producer
        self.ack_times: dict[int, list[tuple[float, float]]] = {p: [] for p in range(P)}  # (sent, acknowledged)
        self.errors: list = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def on_new_topic(cls, cluster, topic: str, *, rate: int, limit: int, **options) -> "AckedProducer":
        """The fault tests' opening: `topic` created with P partitions at RF=3, and a producer
        started on it (options as for the constructor)."""
        cluster.create_topic(topic, P, 3)
        producer = cls(cluster.bootstrap, topic, **options)
        producer.start(rate=rate, limit=limit)
        return producer

    def _on_delivery(self, err, msg):
        if err is not None:
            self.errors.append(err)
            return
        self.acked[(msg.partition(), msg.offset())] = msg.value()
        self.ack_times[msg.partition()].append((self.sent_at[int(msg.value()[1:])], time.monotonic()))

    def start(self, rate: int = 400, limit: int = 20_000) -> None:
        def run():
            next_at = time.monotonic()
            while not self._stop.is_set() and self.sent < limit:
                i = self.first_number + self.sent
                try:
                    self.sent_at[i] = time.monotonic()
                    self.producer.produce(self.topic, value=b"m%07d" % i, partition=i % P, on_delivery=self._on_delivery)
                    self.sent += 1
                except BufferError:
                    pass
                self.producer.poll(0)
                next_at += 1.0 / rate
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self, flush_timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        self.producer.flush(flush_timeout)

    def first_ack_after(self, partition: int, t: float) -> float | None:
        """Seconds from `t` to the first acknowledgement of a message sent after `t` (so written
        by whoever leads after `t`)."""
        later = [acked for sent, acked in self.ack_times[partition] if sent > t]
        return min(later) - t if later else None

    def wait_acked(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} acknowledged after {timeout}s"
            time.sleep(0.05)


def read_all(bootstrap: str, topic: str, timeout: float = 60.0) -> dict[int, list[tuple[int, bytes]]]:
    """Every record of every partition, from offset 0 to the high watermark."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cluster-check", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "log_level": 2})
    try:
        ends = {}
        deadline = time.monotonic() + timeout
        for p in range(P):
            while True:
                try:
                    ends[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        c.assign([TopicPartition(topic, p, 0) for p in range(P)])
        got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(P)}
        while any(len(got[p]) < ends[p] for p in range(P)) and time.monotonic() < deadline:
            for m in c.consume(1000, timeout=1.0):
                if m.error() is None:
                    got[m.partition()].append((m.offset(), m.value()))
        return got
    finally:
        c.close()


def check_replicated(bootstrap: str, topic: str, acked: dict[tuple[int, int], bytes]) -> dict:
    """Nothing acknowledged lost or changed, no duplicates, offsets contiguous, production order
    kept within each partition. Returns the figures."""
    got = read_all(bootstrap, topic)
    stored = {}
    for p in range(P):
        offsets = [o for o, _ in got[p]]
        assert offsets == list(range(len(offsets))), f"partition {p}: offsets not contiguous"
        values = [v for _, v in got[p]]
        assert len(values) == len(set(values)), f"partition {p}: {len(values) - len(set(values))} duplicates"
        numbers = [int(v[1:]) for v in values]
        assert numbers == sorted(numbers), f"partition {p}: out of production order"
        for o, v in got[p]:
            stored[(p, o)] = v
    lost = [po for po, v in acked.items() if stored.get(po) != v]
    assert not lost, f"{len(lost)} acknowledged messages lost or changed, e.g. {lost[:5]}"
    return {"acknowledged": len(acked), "stored": len(stored), "lost": len(lost)}


def replicas_identical(cluster, topic: str, partitions: int = P, timeout: float = 30.0,
                       hosts: dict[int, list[int]] | None = None) -> dict[int, int]:
    """Every broker's copy of every partition holds the same batches, byte for byte, read from its
    segment files (clients read leaders only, so this is how a follower's copy is checked);
    `hosts` names each partition's replicas where not every broker holds one.
    Followers may lag for a moment: compared again until equal or `timeout`. Returns the batch
    count per partition."""
    deadline = time.monotonic() + timeout
    while True:
        differences, counts = [], {}
        for p in range(partitions):
            holders = hosts[p] if hosts else cluster.broker_ids
            copies = {b: [e.raw for f in segment_files(cluster.nodes[b].data_dir, topic, p) for e in scan_segment(f)[0]]
                      for b in holders}
            reference = copies[holders[0]]
            counts[p] = len(reference)
            for b, batches in copies.items():
                if batches != reference:
                    same = next((i for i, (x, y) in enumerate(zip(batches, reference)) if x != y),
                                min(len(batches), len(reference)))
                    differences.append(f"partition {p}: broker {b} has {len(batches)} batches, broker "
                                       f"{holders[0]} {len(reference)}, first difference at batch {same}")
        if not differences:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError("replicas differ: " + "; ".join(differences[:6]))
        time.sleep(0.2)
