"""Idempotent producer on the raw wire (issue 6): InitProducerId and the per-partition producer
state a broker keeps for Produce requests whose record batches carry a producer id, epoch and
base sequence.

Every expected answer below was measured on Apache Kafka 3.9.1 with the same bytes (see the
suite README): a test that fails on Kafka is a wrong test. What Kafka 3.9.1 does, in short:

  * InitProducerId without a transactional id (v0..v4) hands out a new producer id with epoch 0,
    every call a different id. With producer_id/producer_epoch set (v3+, KIP-360) it still hands
    out a NEW id with epoch 0: an idempotent (non-transactional) producer bumps its epoch itself,
    by sending the next epoch starting at sequence 0. Only one of the two set: INVALID_REQUEST.
  * In-order batches are appended. A batch with the same producer id, epoch, base sequence and
    last sequence as one of the producer's last five batches on the partition is a duplicate:
    error NONE, the ORIGINAL base offset, log_append_time = the original batch's max timestamp,
    nothing appended. Anything else out of order (a gap, a repeat of an older batch, the same
    base sequence with another record count): OUT_OF_ORDER_SEQUENCE_NUMBER (45).
  * An epoch lower than the partition's current one for that producer: INVALID_PRODUCER_EPOCH (47)
    (even for a duplicate). A higher epoch must start at sequence 0, else 45.
  * A producer id the partition has no state for (never handed out, or new on this partition)
    is accepted with ANY first sequence (KIP-360 removed UNKNOWN_PRODUCER_ID here) and tracked
    from then on.
  * Sequences are int32 and wrap: after 2147483647 comes 0; a batch whose last sequence passes
    2147483647 wraps too.
  * Producer state is per partition; errors are per partition within one request.

Kafka 3.9 KRaft answers InitProducerId with COORDINATOR_LOAD_IN_PROGRESS (14) for a few seconds
after it starts (until its first block of producer ids arrives), so kwire.new_producer_id retries
that one error, bounded.
"""
from __future__ import annotations

import time

import pytest

from harness import ck
from harness.kwire import (INVALID_PRODUCER_EPOCH, INVALID_REQUEST, NONE, OUT_OF_ORDER_SEQUENCE_NUMBER,
                           KafkaConn, error_name, fetch_batches, init_producer_id, list_offsets,
                           new_producer_id, produce, record_batch)

pytestmark = pytest.mark.idempotence

INT32_MAX = 2**31 - 1


@pytest.fixture
def conn(broker):
    with KafkaConn.to(broker.bootstrap) as c:
        yield c


def create_serving_topic(bootstrap: str, conn: KafkaConn, topic: str, partitions: int) -> None:
    """Create the topic, then wait until its leader answers ListOffsets on every partition: Kafka's
    metadata names a leader before that broker has taken the partition over, and a Produce sent in
    between is answered NOT_LEADER_OR_FOLLOWER (seen on Kafka 3.9.1 in CI, 2026-11-22)."""
    ck.create_topic(bootstrap, topic, partitions=partitions)
    deadline = time.monotonic() + 30
    while True:
        try:
            list_offsets(conn, topic, list(range(partitions)))
            return
        except Exception:  # noqa: BLE001 - a partition error; raised again below if it persists
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def topic(broker, conn, unique_topic):
    t = unique_topic("idem")
    create_serving_topic(broker.bootstrap, conn, t, 1)
    return t


class Producer:
    """One idempotent producer talking raw Produce: sends batches with explicit sequences."""

    def __init__(self, conn: KafkaConn, topic: str, producer_id: int | None = None):
        """A new producer id from InitProducerId, or `producer_id` (epoch 0) as given."""
        self.conn, self.topic = conn, topic
        self.pid, self.epoch = new_producer_id(conn) if producer_id is None else (producer_id, 0)

    def batch(self, seq: int, n: int = 1, *, epoch: int | None = None, tag: str = "",
              timestamp: int | None = None) -> bytes:
        values = [f"{self.pid}:{seq + i}{tag}".encode() for i in range(n)]
        return record_batch(values, producer_id=self.pid, base_sequence=seq, timestamp=timestamp,
                            producer_epoch=self.epoch if epoch is None else epoch)

    def send(self, seq: int, n: int = 1, *, partition: int = 0, version: int = 9, **kw):
        """Produce one batch of n records starting at sequence seq; the partition's PartResult."""
        return produce(self.conn, self.topic, {partition: self.batch(seq, n, **kw)}, version=version)[partition]


def log_end(conn, topic, partition=0) -> int:
    return list_offsets(conn, topic, [partition])[partition]


def stored(conn, topic, partition=0) -> list[tuple]:
    """Every stored batch as (base offset, record count, producer id, epoch, base sequence, values)."""
    return [(b.base_offset, b.record_count, b.producer_id, b.producer_epoch, b.base_sequence, b.values)
            for b in fetch_batches(conn, topic, partition)]


def assert_rejected(res, error: int):
    """Kafka answers a rejected batch with the error, base offset -1 and log_append_time -1."""
    assert (error_name(res.error), res.base_offset, res.log_append_time) == (error_name(error), -1, -1), res


def test_init_producer_id_all_versions(conn):
    """InitProducerId v0..v4 without a transactional id (v0-1 non-flexible, v2+ flexible): each answers
    NONE with a fresh producer id >= 0 and epoch 0, and no two calls return the same id."""
    pids = []
    for version in range(5):
        pid, epoch = new_producer_id(conn, version)
        assert pid >= 0 and epoch == 0, (version, pid, epoch)
        pids.append(pid)
    pid, epoch = new_producer_id(conn, 4)
    pids.append(pid)
    assert len(set(pids)) == len(pids), pids
    # transaction_timeout_ms means nothing without a transactional id: any value is fine.
    for timeout_ms in (0, INT32_MAX):
        assert new_producer_id(conn, 4, transaction_timeout_ms=timeout_ms)[1] == 0


def test_init_producer_id_with_current_id_gives_a_new_id(conn):
    """KIP-360 lets v3+ send the current producer id and epoch. Without a transactional id Kafka
    does not bump the epoch on the broker side: it hands out a NEW producer id with epoch 0 (an
    idempotent producer bumps its epoch itself, see test_new_epoch_starts_at_sequence_zero).
    An id the broker never handed out gets the same treatment. Setting only one of the two fields
    is INVALID_REQUEST (42)."""
    pid, epoch = new_producer_id(conn, 4)
    for version in (3, 4):
        new_pid, new_epoch = new_producer_id(conn, version, producer_id=pid, producer_epoch=epoch)
        assert new_pid != pid and new_pid >= 0 and new_epoch == 0, (version, pid, new_pid, new_epoch)
    new_pid, new_epoch = new_producer_id(conn, 4, producer_id=pid + 10_000_000, producer_epoch=5)
    assert new_pid >= 0 and new_epoch == 0
    for version in (3, 4):
        for p, e in ((pid, -1), (-1, 3)):
            err, got_pid, got_epoch = init_producer_id(conn, version, producer_id=p, producer_epoch=e)
            assert (error_name(err), got_pid, got_epoch) == (error_name(INVALID_REQUEST), -1, -1), (version, p, e)


@pytest.mark.parametrize("version", [3, 7, 9])
def test_in_order_batches_append_at_consecutive_offsets(conn, topic, version):
    """Sequences 0..N in order, in batches of 1..4 records, land at consecutive offsets, and the
    stored batches keep the producer id, epoch and base sequence they were sent with."""
    p = Producer(conn, topic)
    seq = 0
    expect = []
    for n in (1, 3, 2, 4, 1, 1, 2):
        res = p.send(seq, n, version=version)
        assert res.error == NONE and res.base_offset == seq, (seq, res)
        assert res.log_append_time == -1  # CreateTime topic
        expect.append((seq, n, p.pid, 0, seq, [f"{p.pid}:{seq + i}".encode() for i in range(n)]))
        seq += n
    assert log_end(conn, topic) == seq
    assert stored(conn, topic) == expect


def test_duplicate_of_one_of_last_five_batches(conn, topic):
    """A retry of any of the last five batches (same producer id, epoch, base sequence, record
    count) is answered NONE with the ORIGINAL base offset, and log_append_time = the original
    batch's max timestamp, in Produce v3, v7 and v9, and nothing is appended, not even when other
    writers appended in between or when the retry's records differ (Kafka matches sequence
    ranges, not payloads)."""
    p = Producer(conn, topic)
    now = int(time.time() * 1000)
    originals = {}  # seq -> (base offset, timestamp)
    seq = 0
    for i, n in enumerate((2, 1, 3, 1, 2, 1, 2)):  # seven batches; the last five start at 3, 6, 7, 9, 10
        ts = now - 1000 + i
        res = p.send(seq, n, timestamp=ts)
        assert res.error == NONE, res
        originals[seq] = (res.base_offset, n, ts)
        # A non-idempotent writer in between: duplicates must not answer from the log end.
        assert produce(conn, topic, {0: record_batch([b"plain"])})[0].error == NONE
        seq += n
    end = log_end(conn, topic)
    before = stored(conn, topic)
    last_five = sorted(originals)[-5:]
    assert last_five == [3, 6, 7, 9, 10]
    for version in (9, 7, 3):
        for s in (last_five[-1], last_five[0], last_five[2], last_five[1], last_five[3]):
            base, n, ts = originals[s]
            res = p.send(s, n, version=version, timestamp=now + 5000, tag="-retry")
            assert (error_name(res.error), res.base_offset, res.log_append_time) == (error_name(NONE), base, ts), \
                (version, s, res)
            if version >= 5:
                assert res.log_start_offset == 0
    assert log_end(conn, topic) == end
    assert stored(conn, topic) == before
    # The state did not move: the next sequence is still the one after the last batch.
    res = p.send(seq)
    assert res.error == NONE and res.base_offset == end, res


def test_duplicate_older_than_five_batches_is_out_of_order(conn, topic):
    """A retry of a batch more than five batches back is not recognised as a duplicate: Kafka
    answers OUT_OF_ORDER_SEQUENCE_NUMBER (45), not DUPLICATE_SEQUENCE_NUMBER (46), and appends
    nothing. The same base sequence with another record count is not a duplicate either (45)."""
    p = Producer(conn, topic)
    for s in range(7):  # batches of one record: seq 0..6, the last five are 2..6
        assert p.send(s).error == NONE
    for s in (1, 0):
        for version in (9, 7, 3):
            assert_rejected(p.send(s, version=version), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert_rejected(p.send(4, 2), OUT_OF_ORDER_SEQUENCE_NUMBER)   # 4..5 vs stored 4..4
    assert_rejected(p.send(6, 3), OUT_OF_ORDER_SEQUENCE_NUMBER)   # last batch, more records
    assert log_end(conn, topic) == 7
    assert [b[4] for b in stored(conn, topic)] == list(range(7))
    assert p.send(7).base_offset == 7


@pytest.mark.parametrize("version", [3, 7, 9])
def test_sequence_gap_is_out_of_order(conn, topic, version):
    """A batch whose base sequence skips ahead gets OUT_OF_ORDER_SEQUENCE_NUMBER (45) and is not
    appended; the producer's state does not move, so the expected sequence is still accepted."""
    p = Producer(conn, topic)
    assert p.send(0, 2, version=version).error == NONE
    for s in (3, 4, 1000, INT32_MAX):
        assert_rejected(p.send(s, version=version), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert log_end(conn, topic) == 2
    res = p.send(2, version=version)
    assert res.error == NONE and res.base_offset == 2, res
    assert [b[4] for b in stored(conn, topic)] == [0, 2]


def test_new_epoch_starts_at_sequence_zero(conn, topic):
    """An idempotent producer bumps its epoch by sending epoch+1 (KIP-360, client side): the
    first batch of a higher epoch must have sequence 0, else OUT_OF_ORDER_SEQUENCE_NUMBER (45);
    with 0 it is appended and sequences go on from there. A later epoch may skip numbers."""
    p = Producer(conn, topic)
    for s in range(3):
        assert p.send(s).error == NONE
    for s in (3, 5, 1):
        assert_rejected(p.send(s, epoch=1), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert log_end(conn, topic) == 3
    res = p.send(0, epoch=1)
    assert res.error == NONE and res.base_offset == 3, res
    assert p.send(1, 2, epoch=1).base_offset == 4
    assert_rejected(p.send(5, epoch=1), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert_rejected(p.send(2, epoch=3), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert p.send(0, epoch=3).base_offset == 6
    assert [(b[3], b[4]) for b in stored(conn, topic)] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (3, 0)]


def test_stale_epoch_is_invalid_producer_epoch(conn, topic):
    """Once a partition has seen epoch 1 of a producer, any batch of epoch 0 (in sequence, a
    duplicate of an epoch-0 batch, or sequence 0) gets INVALID_PRODUCER_EPOCH (47) - not
    PRODUCER_FENCED (90) - in Produce v3, v7 and v9, and nothing is appended."""
    p = Producer(conn, topic)
    for s in range(3):
        assert p.send(s).error == NONE
    assert p.send(0, epoch=1).error == NONE
    for version in (9, 7, 3):
        for s in (3, 2, 0):
            assert_rejected(p.send(s, epoch=0, version=version), INVALID_PRODUCER_EPOCH)
    assert_rejected(p.send(1, epoch=-1), INVALID_PRODUCER_EPOCH)
    assert log_end(conn, topic) == 4
    assert p.send(1, epoch=1).base_offset == 4  # epoch 1 goes on undisturbed


def test_unknown_producer_id_any_first_sequence(conn, topic):
    """A producer id the broker never handed out, and a handed-out id new to the partition, are
    accepted with sequence 0 and with a first sequence > 0 alike (no UNKNOWN_PRODUCER_ID since
    KIP-360); from then on the partition tracks them like any other producer."""
    unknown0 = Producer(conn, topic, producer_id=7_000_000_000_001)
    unknown5 = Producer(conn, topic, producer_id=7_000_000_000_002)
    handed_out = Producer(conn, topic)

    assert unknown0.send(0).base_offset == 0
    assert unknown5.send(5).base_offset == 1
    assert handed_out.send(42).base_offset == 2
    assert_rejected(unknown0.send(2), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert_rejected(unknown5.send(7), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert_rejected(handed_out.send(0), OUT_OF_ORDER_SEQUENCE_NUMBER)
    res = unknown5.send(5)
    assert (res.error, res.base_offset) == (NONE, 1), res  # a duplicate now
    assert unknown0.send(1).base_offset == 3
    assert unknown5.send(6).base_offset == 4
    assert handed_out.send(43).base_offset == 5
    assert log_end(conn, topic) == 6


def test_sequence_wraps_after_int32_max(conn, topic):
    """Sequences are int32 and wrap to 0: a batch of 3 starting at 2147483646 ends at sequence 0
    (accepted, its duplicate recognised) and is followed by 1; a batch ending at exactly
    2147483647 is followed by 0."""
    p = Producer(conn, topic)
    assert p.send(INT32_MAX - 1, 3).base_offset == 0
    assert p.send(INT32_MAX - 1, 3).base_offset == 0  # duplicate
    assert_rejected(p.send(0), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert_rejected(p.send(INT32_MAX), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert p.send(1).base_offset == 3

    q = Producer(conn, topic)
    assert q.send(INT32_MAX - 2, 3).base_offset == 4  # ends at exactly 2147483647
    assert_rejected(q.send(1), OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert q.send(0, 2).base_offset == 7
    assert log_end(conn, topic) == 9


def test_sequences_are_per_partition(broker, conn, unique_topic):
    """Producer state is kept per partition: the same producer starts at 0 on each partition and
    a gap on one does not affect another; one Produce request carrying several partitions gets
    an answer (and an error) per partition."""
    topic = unique_topic("idem3")
    create_serving_topic(broker.bootstrap, conn, topic, 3)
    p = Producer(conn, topic)

    def send_many(seqs: dict[int, tuple[int, int]]):
        return produce(conn, topic, {part: p.batch(s, n) for part, (s, n) in seqs.items()})

    res = send_many({0: (0, 2), 1: (0, 1), 2: (0, 3)})
    assert {k: (r.error, r.base_offset) for k, r in res.items()} == {0: (0, 0), 1: (0, 0), 2: (0, 0)}
    res = send_many({0: (2, 1), 1: (5, 1), 2: (3, 1)})  # partition 1 has a gap
    assert (res[0].error, res[0].base_offset) == (NONE, 2)
    assert_rejected(res[1], OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert (res[2].error, res[2].base_offset) == (NONE, 3)
    res = send_many({0: (2, 1), 1: (1, 1)})  # a duplicate on 0, the next sequence on 1
    assert {k: (r.error, r.base_offset) for k, r in res.items()} == {0: (0, 2), 1: (0, 1)}
    assert p.send(0, partition=2, epoch=1).base_offset == 4  # an epoch bump on 2 only ...
    assert p.send(2, partition=1).base_offset == 2            # ... leaves 1 at epoch 0
    assert list_offsets(conn, topic, [0, 1, 2]) == {0: 3, 1: 3, 2: 5}
