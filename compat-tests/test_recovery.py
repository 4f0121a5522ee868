"""Crash recovery with a torn log tail, the same against Sluice and Kafka (both keep
partition logs as <log.dirs>/<topic>-<partition>/<base offset>.log of record batches):
after a kill -9, whatever follows the last complete, valid batch is cut and never
served, everything acknowledged before is still there, and offsets stay contiguous."""
from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer

from harness import ck
from harness.data import check_partition, expected_by_partition

N = 2000


def active_segment(data_dir: Path, topic: str) -> Path:
    segments = sorted((data_dir / f"{topic}-0").glob("*.log"))
    assert segments, f"no segment files for {topic}-0 under {data_dir}"
    return segments[-1]


def first_batch(segment: Path) -> bytes:
    data = segment.read_bytes()
    length = int.from_bytes(data[8:12], "big")
    return data[:12 + length]


# What a crash can leave after the last good batch.
TAILS = {
    # half of a batch: the write never finished
    "half-batch": lambda batch: batch[: len(batch) // 2],
    # a whole batch whose bytes did not all reach the disk (the CRC no longer matches)
    "bad-crc": lambda batch: batch[:30] + bytes(len(batch) - 30),
    # a few bytes, not even a batch header
    "stub": lambda batch: batch[:7],
}


@pytest.mark.parametrize("tail", sorted(TAILS))
def test_torn_tail_is_cut_and_offsets_continue(fresh_broker, unique_topic, tail):
    b = fresh_broker()
    topic = unique_topic("torn")
    ck.create_topic(b.bootstrap, topic, partitions=1)
    # Messages of partition 0 only, as the shared data set defines them.
    want = expected_by_partition(3 * N)[0]
    produce_partition0(b.bootstrap, topic, want)

    b.kill9()
    segment = active_segment(b.data_dir, topic)
    good_size = segment.stat().st_size
    with segment.open("ab") as f:
        f.write(TAILS[tail](first_batch(segment)))
    b.start()

    got = ck.consume(b.bootstrap, topic, {0: len(want)}, timeout=120)
    check_partition(0, got[0], want)
    # New data lands right after the last good record: no gap, no duplicate offsets.
    offsets = produce_partition0(b.bootstrap, topic, want[:5])
    assert offsets == list(range(len(want), len(want) + 5))
    assert active_segment(b.data_dir, topic).stat().st_size > good_size


def produce_partition0(bootstrap: str, topic: str, messages) -> list[int]:
    offsets: list[int] = []
    errors: list = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                  "linger.ms": 5, "message.timeout.ms": 60000, "max.in.flight.requests.per.connection": 1})
    for key, value, headers in messages:
        p.produce(topic, key=key, value=value, headers=headers, partition=0, on_delivery=on_delivery)
    assert p.flush(60) == 0
    assert not errors, errors[:3]
    return sorted(offsets)
