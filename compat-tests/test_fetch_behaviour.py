"""Fetch semantics on the wire (raw Fetch v4), the same against Sluice and Kafka:
the long poll waits for min_bytes up to max_wait_ms and wakes as soon as data arrives,
a fetch from the middle of a batch returns that whole batch, and byte limits never
stop a consumer (the first batch comes back whatever its size, KIP-74)."""
from __future__ import annotations

import threading
import time

from confluent_kafka import Producer

from harness import ck
from harness.kwire import Reader, connect, header_v1, i8, i32, i64, parse_bootstrap, roundtrip, string


def fetch_v4(bootstrap: str, topic: str, offset: int, *, max_wait_ms: int = 100, min_bytes: int = 1,
             max_bytes: int = 1 << 20, partition_max_bytes: int = 1 << 20, timeout: float = 30.0):
    """One Fetch v4 of partition 0. Returns (error, high_watermark, records bytes)."""
    host, port = parse_bootstrap(bootstrap)
    body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0) +
            i32(1) + string(topic) + i32(1) + i32(0) + i64(offset) + i32(partition_max_bytes))
    with connect(host, port, timeout) as s:
        r = Reader(roundtrip(s, header_v1(1, 4, 7) + body))
    assert r.i32() == 7
    r.i32()  # throttle
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1
    assert r.i32() == 0
    error = r.i16()
    high_watermark = r.i64()
    r.i64()  # last stable offset
    for _ in range(max(r.i32(), 0)):
        r.i64(), r.i64()
    size = r.i32()
    return error, high_watermark, r.take(size) if size > 0 else b""


def complete_batches(records: bytes) -> list[tuple[int, int, int]]:
    """(base offset, last offset, size) of each complete batch; a cut-off tail is ignored,
    as clients ignore it."""
    out = []
    r = Reader(records)
    while len(r.rest()) >= 61:
        base = r.i64()
        length = r.i32()
        if length > len(r.rest()):
            break
        batch = r.take(length)
        last_delta = int.from_bytes(batch[11:15], "big", signed=True)
        out.append((base, base + last_delta, 12 + length))
    return out


def produce_batch(bootstrap: str, topic: str, n: int, size: int = 100) -> None:
    """n messages that go out as one batch (one flush, generous linger)."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1000, "batch.num.messages": 100000,
                  "acks": "all", "enable.idempotence": False})
    for i in range(n):
        p.produce(topic, value=b"v" * size, key=str(i).encode(), partition=0)
    assert p.flush(30) == 0


def test_long_poll_waits_then_returns_empty(broker, unique_topic):
    topic = unique_topic("poll-empty")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    t0 = time.monotonic()
    error, hw, records = fetch_v4(broker.bootstrap, topic, 0, max_wait_ms=800)
    elapsed = time.monotonic() - t0
    assert error == 0 and hw == 0 and records == b""
    assert 0.6 <= elapsed < 5.0, f"an empty long poll took {elapsed:.2f}s for max_wait_ms=800"


def test_long_poll_wakes_when_data_arrives(broker, unique_topic):
    topic = unique_topic("poll-wake")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    result = {}

    def poll():
        t0 = time.monotonic()
        result["fetch"] = fetch_v4(broker.bootstrap, topic, 0, max_wait_ms=20000, min_bytes=1)
        result["elapsed"] = time.monotonic() - t0

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(1.0)
    produce_batch(broker.bootstrap, topic, 1)
    waiter.join(30)
    assert not waiter.is_alive()
    error, hw, records = result["fetch"]
    assert error == 0 and hw == 1
    assert complete_batches(records)[0][0] == 0
    assert result["elapsed"] < 10.0, f"the poll returned after {result['elapsed']:.2f}s, not when data arrived"


def test_fetch_inside_a_batch_returns_the_whole_batch(broker, unique_topic):
    topic = unique_topic("mid-batch")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    produce_batch(broker.bootstrap, topic, 10)
    error, hw, records = fetch_v4(broker.bootstrap, topic, 0)
    batches = complete_batches(records)
    assert error == 0 and hw == 10
    holding_5 = [b for b in batches if b[0] <= 5 <= b[1]][0]
    error, _, records = fetch_v4(broker.bootstrap, topic, 5)
    assert error == 0
    assert complete_batches(records)[0] == holding_5


def test_limits_return_at_least_the_first_batch(broker, unique_topic):
    topic = unique_topic("limits")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    produce_batch(broker.bootstrap, topic, 20, size=200)  # one batch of ~4 KiB
    produce_batch(broker.bootstrap, topic, 20, size=200)
    error, hw, everything = fetch_v4(broker.bootstrap, topic, 0)
    batches = complete_batches(everything)
    assert error == 0 and hw == 40 and len(batches) >= 2
    first = batches[0]
    # A limit smaller than the first batch still returns that batch, whole (KIP-74) ...
    for limits in ({"partition_max_bytes": 1}, {"max_bytes": 1}):
        error, _, records = fetch_v4(broker.bootstrap, topic, 0, **limits)
        assert error == 0
        assert complete_batches(records) == [first], limits
    # ... and a limit between one and two batches returns one complete batch.
    error, _, records = fetch_v4(broker.bootstrap, topic, 0, partition_max_bytes=first[2] + 10)
    assert error == 0 and complete_batches(records) == [first]
    assert len(records) <= first[2] + 10


def test_offset_out_of_range(broker, unique_topic):
    topic = unique_topic("range")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    produce_batch(broker.bootstrap, topic, 3)
    error, hw, records = fetch_v4(broker.bootstrap, topic, 4)
    assert error == 1 and records == b""  # OFFSET_OUT_OF_RANGE
    error, hw, records = fetch_v4(broker.bootstrap, topic, 3, max_wait_ms=10)
    assert error == 0 and hw == 3 and records == b""  # at the end: nothing yet, no error


def batch_crc_ok(batch: bytes) -> bool:
    """A v2 batch's CRC-32C (over everything after the crc field) matches."""
    from harness.kwire import crc32c
    return int.from_bytes(batch[17:21], "big") == crc32c(batch[21:])


def test_fetch_spanning_many_segments_returns_every_batch_intact(fresh_broker, unique_topic):
    """With small segments, fetching from offset 0 until the high watermark returns every batch
    once, in order, with offsets contiguous and CRCs intact. (Sluice answers one fetch with the
    parts of several segment files, sent straight from the page cache; Kafka stops each fetch at
    a segment's end, so it takes several.)"""
    b = fresh_broker(extra_config={"log.segment.bytes": "65536"})
    topic = unique_topic("segments")
    ck.create_topic(b.bootstrap, topic, partitions=1)
    for _ in range(40):
        produce_batch(b.bootstrap, topic, 10, size=1000)  # ~10 KB per batch, 6 per segment
    expected_base = 0
    for _ in range(100):  # bounded: at most one fetch per batch
        if expected_base >= 400:
            break
        error, hw, records = fetch_v4(b.bootstrap, topic, expected_base, max_bytes=8 << 20,
                                      partition_max_bytes=8 << 20)
        assert error == 0 and hw == 400
        batches = complete_batches(records)
        assert batches, f"no complete batch from offset {expected_base}"
        at = 0
        for base, last, size in batches:
            assert base == expected_base and batch_crc_ok(records[at:at + size])
            expected_base = last + 1
            at += size
    assert expected_base == 400


def test_consumer_closing_mid_response_does_not_hurt_the_broker(broker, unique_topic):
    """Clients that send a large fetch and hang up (with a reset) before reading the answer:
    the broker drops those connections and goes on serving everybody else."""
    import socket
    import struct
    from harness.kwire import frame, parse_bootstrap
    topic = unique_topic("hangup")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    for _ in range(4):
        produce_batch(broker.bootstrap, topic, 1000, size=1000)  # ~1 MB per batch
    host, port = parse_bootstrap(broker.bootstrap)
    body = (i32(-1) + i32(100) + i32(1) + i32(64 << 20) + i8(0) +
            i32(1) + string(topic) + i32(1) + i32(0) + i64(0) + i32(64 << 20))
    for i in range(20):
        with connect(host, port, 10) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            s.sendall(frame(header_v1(1, 4, i) + body))
            if i % 2:
                s.recv(1000)  # some read the start of the answer first
    error, hw, records = fetch_v4(broker.bootstrap, topic, 0, max_bytes=8 << 20, partition_max_bytes=8 << 20)
    batches = complete_batches(records)
    assert error == 0 and hw == 4000
    assert [b[0] for b in batches] == [0] + [b[1] + 1 for b in batches[:-1]] and batches[-1][1] == 3999
