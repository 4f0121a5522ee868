"""Crash recovery with a torn log tail, the same against Sluice and Kafka (both keep
partition logs as <log.dirs>/<topic>-<partition>/<base offset>.log of record batches):
after a kill -9, whatever follows the last complete, valid batch is cut and never
served, everything acknowledged before is still there, and offsets stay contiguous."""
from __future__ import annotations

import time
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


def read_epoch_checkpoint(path: Path) -> list[tuple[int, int]]:
    """Kafka's leader-epoch-checkpoint: "0", the count, then "<epoch> <start offset>" lines."""
    lines = path.read_text().split("\n")
    assert lines[0] == "0", lines
    count = int(lines[1])
    return [tuple(int(x) for x in line.split()) for line in lines[2:2 + count]]


def test_leader_epochs_above_the_recovery_point_are_rebuilt_after_a_crash(fresh_broker, unique_topic, broker_kind):
    """The leader-epoch checkpoint is written off the network thread, ordered only before the
    next flush that moves the recovery point; so after a crash the file may lack the epochs of
    batches above the recovery point, and those are read back from the batches themselves (as
    Kafka's log recovery does). The periodic recovery-point checkpoint is held back for the whole
    test: a clean restart stores the recovery point at the end of the first messages, and the
    restarted leader's new epoch begins there; more messages, kill -9, and the epoch file is put
    back as it was before that epoch began (what a write lost in the crash leaves). After the
    restart the file must again hold both epochs where they began: the one below the recovery
    point untouched, the one above it rebuilt. Without the rebuild, or with one that started
    above the recovery point, the second epoch would begin at the log end instead."""
    if broker_kind != "sluice":
        pytest.skip("Sluice only: the same file and rule as Kafka's, but it tests Sluice's own write path")
    b = fresh_broker(extra_config={"log.flush.offset.checkpoint.interval.ms": "3600000"})
    topic = unique_topic("epochs")
    ck.create_topic(b.bootstrap, topic, partitions=1)
    want = expected_by_partition(3 * 600)[0]
    half = len(want) // 2
    produce_partition0(b.bootstrap, topic, want[:half])
    checkpoint = b.data_dir / f"{topic}-0" / "leader-epoch-checkpoint"
    first = read_epoch_checkpoint(checkpoint)
    assert first == [(0, 0)]

    b.restart()  # clean: the recovery point is stored at `half`, and leadership starts a new epoch
    produce_partition0(b.bootstrap, topic, want[half:])
    both = read_epoch_checkpoint(checkpoint)
    assert len(both) == 2 and both[0] == (0, 0) and both[1][1] == half, both

    b.kill9()
    checkpoint.write_text("0\n1\n0 0\n")  # the second epoch's write lost in the crash
    b.start()
    got = ck.consume(b.bootstrap, topic, {0: len(want)}, timeout=120)
    check_partition(0, got[0], want)
    deadline = time.monotonic() + 30
    while len(read_epoch_checkpoint(checkpoint)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert read_epoch_checkpoint(checkpoint)[:2] == both
