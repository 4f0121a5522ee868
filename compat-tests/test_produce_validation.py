"""Record batch checks on Produce, on the wire, against both brokers: hand-built magic-2
batches with one defect each must get the error code Kafka gives, and a good batch
must still be accepted on the same connection."""
from __future__ import annotations

import struct

import pytest

from harness import ck
from harness.kwire import Reader, compact_string, connect, header_v1, header_v2, i16, i32, parse_bootstrap, roundtrip, string, uvarint


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def zigzag(n: int) -> bytes:
    return uvarint((n << 1) ^ (n >> 63))


def record(i: int, value: bytes | None = None) -> bytes:
    key = b"k%d" % i
    value = b"value-%d" % i if value is None else value
    body = (b"\x00" + zigzag(i) + zigzag(i) + zigzag(len(key)) + key + zigzag(len(value)) + value + zigzag(0))
    return zigzag(len(body)) + body


def batch(count: int = 3, *, base_offset: int = 0, magic: int = 2, attributes: int = 0,
          producer_id: int = -1, base_sequence: int = -1, claimed_count: int | None = None,
          corrupt_crc: bool = False, records: bytes | None = None) -> bytes:
    records = b"".join(record(i) for i in range(count)) if records is None else records
    claimed = count if claimed_count is None else claimed_count
    after_crc = (struct.pack(">hiqqqhii", attributes, claimed - 1, 1000, 1000 + count - 1,
                             producer_id, 0 if producer_id >= 0 else -1, base_sequence, claimed) + records)
    crc = crc32c(after_crc) ^ (1 if corrupt_crc else 0)
    body = struct.pack(">ibI", -1, magic, crc) + after_crc
    return struct.pack(">qi", base_offset, len(body)) + body


def produce(s, topic: str, records: bytes, version: int = 7, corr: int = 1) -> int:
    """Produce `records` to partition 0 with acks=1; returns the partition's error code."""
    if version >= 9:
        body = (compact_string(None) + i16(1) + i32(30000) + uvarint(2) + compact_string(topic) + uvarint(2) +
                i32(0) + uvarint(len(records) + 1) + records + b"\x00" + b"\x00" + b"\x00")
        r = Reader(roundtrip(s, header_v2(0, version, corr) + body))
        assert r.i32() == corr
        r.skip_tags()
        assert r.uvarint() == 2 and r.compact_string() == topic and r.uvarint() == 2
    else:
        body = string(None) + i16(1) + i32(30000) + i32(1) + string(topic) + i32(1) + i32(0) + i32(len(records)) + records
        r = Reader(roundtrip(s, header_v1(0, version, corr) + body))
        assert r.i32() == corr
        assert r.i32() == 1 and r.string() == topic and r.i32() == 1
    assert r.i32() == 0
    return r.i16()


CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, INVALID_RECORD, UNSUPPORTED_COMPRESSION_TYPE = 2, 10, 87, 76

CASES = {
    "bad-crc": (lambda: batch(corrupt_crc=True), CORRUPT_MESSAGE),
    "non-zero-base-offset": (lambda: batch(base_offset=5), INVALID_RECORD),
    "two-batches": (lambda: batch() + batch(), INVALID_RECORD),
    "magic-1": (lambda: batch(magic=1), INVALID_RECORD),
    "control-batch": (lambda: batch(attributes=0x20), INVALID_RECORD),
    "producer-id-without-sequence": (lambda: batch(producer_id=1234, base_sequence=-1), INVALID_RECORD),
    "count-larger-than-records": (lambda: batch(3, claimed_count=4), INVALID_RECORD),
    "empty": (lambda: b"", INVALID_RECORD),
    "too-large": (lambda: batch(1, records=record(0, value=b"x" * 1_100_000)), MESSAGE_TOO_LARGE),
}


@pytest.fixture
def topic(broker, unique_topic):
    t = unique_topic("validate")
    ck.create_topic(broker.bootstrap, t, partitions=1)
    return t


@pytest.mark.parametrize("case", sorted(CASES))
def test_defective_batch_gets_kafkas_error(broker, topic, case):
    make, expected = CASES[case]
    host, port = parse_bootstrap(broker.bootstrap)
    with connect(host, port, 30) as s:
        assert produce(s, topic, make(), corr=1) == expected
        # The connection stays usable and a good batch is accepted.
        assert produce(s, topic, batch(), corr=2) == 0


def test_zstd_needs_produce_v7(broker, topic):
    host, port = parse_bootstrap(broker.bootstrap)
    # The records are not valid zstd: the version check comes before decompression.
    zstd = batch(1, attributes=4, records=b"\x28\xb5\x2f\xfd" + bytes(20))
    with connect(host, port, 30) as s:
        assert produce(s, topic, zstd, version=6, corr=1) == UNSUPPORTED_COMPRESSION_TYPE


def test_good_batch_flexible_version(broker, topic):
    host, port = parse_bootstrap(broker.bootstrap)
    with connect(host, port, 30) as s:
        assert produce(s, topic, batch(), version=9, corr=1) == 0
        assert produce(s, topic, batch(corrupt_crc=True), version=9, corr=2) == CORRUPT_MESSAGE
