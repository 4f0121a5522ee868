"""Hostile record batches and request strings on the raw wire, against both brokers. Every expected
answer below was measured on Apache Kafka 3.9.1 (KRaft, single node, this harness: JVM -Xmx768m), and
the tests assert Kafka's exact answers for both brokers.

Each batch case produces, on one connection, to partition 0 of a fresh 1-partition topic (acks=1,
Produce v7): a valid batch A (3 records), the hostile batch, a valid batch B (3 records). The hostile
batch must get Kafka's error code; A and B must be accepted (Kafka closed the connection in no case).
A refused batch is sent again with Produce v8, which must give the same code with a null
error_message and no record_errors (Kafka 3.9.1 gives no message for any of these). Then: the high
watermark is 6 plus the records of the hostile batch if it was accepted; an accepted hostile batch
is stored as sent (raw Fetch: same header fields and record bytes); a confluent-kafka consumer
(librdkafka 2.16, assign from offset 0, read_committed) reads A, the accepted records and B in one
pass, or, where librdkafka cannot read Kafka's accepted batch ("librdkafka" column), A from offset 0
and B from its offset.

Codes: 0 NONE, -1 UNKNOWN_SERVER_ERROR, 87 INVALID_RECORD, 53 TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
error_message (Produce v8) is null in every row; the connection stays open in every row.

Records inside an UNCOMPRESSED batch (good record, bad record at offset delta 1, good record(s)):

| case                               | Kafka 3.9.1                         | librdkafka 2.16 consumer          |
|------------------------------------|-------------------------------------|-----------------------------------|
| key length 1000 in a 6-byte record, 1,200 more bytes of records follow | 87 | -                     |
| key length -7                      | 0, appended (read as a null key; stored as sent, -7) | stops at the bad record: delivers offset 3, never offset 4, grows its fetch size to 1 GiB and later reports _AUTO_OFFSET_RESET |
| value length 2^30                  | 87                                  | -                                 |
| header count INT32_MAX             | 87 (fast, no allocation)            | -                                 |
| header count -3                    | 87                                  | -                                 |
| header key length as a 10-byte varint (value 3) | 87                     | -                                 |
| 5 trailing bytes in a record       | 87                                  | -                                 |
| header key length -2               | 87                                  | -                                 |
| header value length -5             | 0, appended (read as a null value)  | reads key/value, headers() = None (Java would give [("hdr", null)]) |
| record length as a 6-byte varint   | -1 (IllegalArgumentException "Varint is too long") | -                      |
| record length as a 5-byte over-long varint | 0, appended                 | reads it                          |

COMPRESSED batches (attributes codec; payload 3 records unless said):

| case                                  | gzip | snappy | lz4 | zstd |
|---------------------------------------|------|--------|-----|------|
| valid (Java-producer framing; lz4: independent blocks) | 0 | 0 | 0 | 0 |
| garbage payload (64 bytes)            | -1   | -1     | -1  | -1   |
| truncated payload (last 7 bytes cut)  | -1   | -1     | -1  | -1   |
| valid payload, header claims 7 records (last offset delta 6), has 3 | 87 | 87 | 87 | 87 |
| key length 1000 inside (5 records)    | 87   | 87     | 87  | 87   |

Codec-specific (Kafka's exception in its log, for the reader):

| case | Kafka 3.9.1 | librdkafka |
|---|---|---|
| gzip: ISIZE trailer 2^32-1 | -1 (Corrupt GZIP trailer) | - |
| gzip bomb: 900 records of 1 MiB zero values (900 MiB), 941 KB compressed | 0, appended, 0.7 s | reads it, but takes ~13 s to decompress it |
| gzip bomb: 1 record then 900 MiB of zeros, count 1 | 87 at once (reads one byte past the record: "records still remaining") | - |
| snappy: raw snappy block, no snappy-java framing | 0, appended (snappy-java falls back to a raw block) | reads it |
| snappy: raw block whose preamble claims 1 GiB | -1 (OutOfMemoryError: Java heap space, in 0.2 s; Kafka lives on) | - |
| snappy: raw block whose preamble claims 2^32-1 | -1 (NegativeArraySizeException) | - |
| snappy: framed, block preamble claims 2^32-1 | -1 (NegativeArraySizeException) | - |
| snappy: framed, block preamble claims 1 GiB | -1 (OutOfMemoryError) | - |
| snappy: framed, chunk length 2^31-1 | -1 (SnappyError: chunkSize greater than 536,870,912) | - |
| lz4: python-lz4 lz4.frame.compress() defaults (one block, content size stored) | 0, appended | reads it |
| lz4: content size field claims 2^40, data valid | 0, appended (Kafka skips the field) | cannot read: _BAD_COMPRESSION "Invalid compressed data" (liblz4 checks the size: python-lz4 refuses the frame too) |
| lz4: content size 2^40 and the data cut short | -1 (Stream ended prematurely) | - |
| lz4: linked blocks (python-lz4 defaults on 40 KB+, several blocks) | -1 ("Dependent block stream is unsupported") | - |
| lz4 bomb: 64 records of 1 MiB zero values, 4 MiB blocks, 264 KB | 0, appended | reads it |
| lz4 bomb: 1 record then 64 MiB of zeros, count 1 | 87 | - |
| zstd: frame content size 2^40, 3 records in a last raw block | -1 (ZstdIOException: Data corruption detected) | - |
| zstd bomb: 4 GiB of zeros (RLE blocks), count 1 | 87 at once | - |
| zstd bomb: 1 record then 4 GiB of zeros (RLE), count 1 | 87 at once | - |
| zstd bomb: 4096 records of 1 MiB zero values (4 GiB, RLE blocks), 213 KB | 0, appended, 0.5 s | cannot read: _BAD_COMPRESSION (librdkafka caps zstd output at receive.message.max.bytes) |

Kafka's -1 answers are Java exceptions that are not InvalidRecordException (KafkaException "Failed to
decompress record stream", IOException, OutOfMemoryError, ...); decompression errors and
decompressed-but-malformed records are thus told apart: the first get -1, the second 87.

Other requests:

| case | Kafka 3.9.1 |
|---|---|
| Produce v7, transactional_id null, a transactional batch (attributes 0x10, producer id -1) | 53 for every partition of the request (a non-transactional batch in the same request too); nothing appended; connection open |
| Produce v7, transactional_id "x" (or ""), transactional batch with producer id -1 | 0, appended as sent (attributes 0x10 kept); read_committed consumers read it |
| (not asserted) transactional_id "x", producer id 1234, sequence 0 | 19 NOT_ENOUGH_REPLICAS, message "Unable to verify the partition has been added to the transaction. Underlying error: COORDINATOR_NOT_AVAILABLE" |
| Fetch v11 / v12, isolation_level 2, 7 or -1 | answered: top-level error -1, each partition error -1, high watermark -1, last stable offset -1, no records; the connection stays open. isolation_level 0 and 1: normal answers |
| non-UTF-8 names (Metadata v0, DeleteTopics v1, ListOffsets v2, DescribeGroups v0) | answered with the name decoded by Java's UTF-8 decoder and re-encoded: each malformed sequence becomes U+FFFD (EF BF BD): ff fe -> 2, e2 82 (truncated) -> 1, c0 af (overlong) -> 2, ed a0 80 (surrogate) -> 1 (Python's decoder gives 3), f4 90 80 80 (> U+10FFFF) -> 4. Metadata v0: 17 INVALID_TOPIC_EXCEPTION, not created; DeleteTopics v1 and ListOffsets v2: 3 UNKNOWN_TOPIC_OR_PARTITION; DescribeGroups v0: 0 with state "Dead"; FindCoordinator v0: 0 and the broker |
| Produce naming partition 0 twice in one topic entry (batches X then Y), or the topic twice | one answer entry for the partition; only the LAST batch (Y) is appended; X is dropped silently. X bad (CRC) and Y good: 0, Y appended; X good and Y bad: 2 CORRUPT_MESSAGE, nothing appended |

SLUICE_STRICTER: where Kafka stores a batch that consumers cannot read, Sluice refuses it (the
`sluice` column of the cases; the tests assert Kafka's answer on Kafka and Sluice's on Sluice):
key length -7 and header value length -5 (INVALID_RECORD: librdkafka stops on the first for good and
drops the headers of the second), an LZ4 frame whose content size is false (UNKNOWN_SERVER_ERROR, as
for any stream that does not decompress: librdkafka cannot open it), and batches that expand to more
than socket.request.max.bytes (100 MiB by default) when decompressed (MESSAGE_TOO_LARGE: the 900 MiB
gzip batch takes librdkafka 13 s to open, the 4 GiB zstd one it refuses). Sluice stops decompressing
at the bound, so a bomb costs it at most that much work and a fixed amount of memory.

Run time against Kafka: about 35 s once Kafka is up, 17 s of it the 900 MiB gzip bomb (librdkafka
decompressing it)."""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from harness import batches as hb
from harness import ck
from harness import kwire as w
from harness.batches import body, good, rec, zz, zz_long
from test_produce_validation import batch, produce

MiB = 1 << 20
NONE, UNKNOWN_SERVER_ERROR, CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION, MESSAGE_TOO_LARGE = 0, -1, 2, 3, 10
INVALID_TOPIC_EXCEPTION, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_RECORD = 17, 53, 87


def recs(prefix: bytes, n: int) -> list[bytes]:
    return [good(i, b"%s-key-%d" % (prefix.lower(), i), b"%s-%d" % (prefix, i)) for i in range(n)]


def kv(prefix: bytes, n: int) -> list[tuple[bytes, bytes]]:
    return [(b"%s-key-%d" % (prefix.lower(), i), b"%s-%d" % (prefix, i)) for i in range(n)]


BATCH_A = batch(3, records=b"".join(recs(b"A", 3)))
BATCH_B = batch(3, records=b"".join(recs(b"B", 3)))


class Case(NamedTuple):
    make: Callable[[], bytes]        # the whole hostile record batch
    code: int                        # Kafka's answer
    appended: int = 0                # records appended when Kafka accepts it
    kv: Callable[[], list] | None = None  # their (key, value), for the consumer check
    ck_reads: bool = True            # librdkafka can read the accepted batch
    # Sluice's answer where it refuses what Kafka stores but consumers cannot read (or read only at
    # great cost): see SLUICE_STRICTER below. None: Kafka's answer.
    sluice: int | None = None

    def expected(self, kind: str) -> int:
        return self.sluice if kind == "sluice" and self.sluice is not None else self.code


# ---- records inside an uncompressed batch --------------------------------------------------------

def _bad_at_1(bad_body: bytes, *, tail: int = 1, length_bytes: int | None = None, big_tail: bool = False) -> bytes:
    """A good record, the bad one (offset delta 1), then `tail` good records."""
    tail_recs = [good(2 + i, b"t%d" % i, (b"x" * 400) if big_tail else b"tail-%d" % i) for i in range(tail)]
    records = [good(0, b"g0", b"first"), rec(bad_body, length_bytes=length_bytes)] + tail_recs
    return batch(len(records), records=b"".join(records))


HDR = b"\x00" + zz(0) + zz(1)  # attributes, timestamp delta, offset delta 1
KV = zz(1) + b"k" + zz(1) + b"v"  # key "k", value "v"

PLAIN = {
    # 6 bytes: attributes, ts delta, offset delta, key length 1000 (2 bytes), 1 key byte; 3 records of 400+ follow
    "key-length-1000": Case(lambda: _bad_at_1(HDR + zz(1000) + b"k", tail=3, big_tail=True), INVALID_RECORD),
    "key-length-minus-7": Case(lambda: _bad_at_1(HDR + zz(-7) + zz(3) + b"val" + zz(0)), NONE, 3,
                               lambda: [(b"g0", b"first"), (None, b"val"), (b"t0", b"tail-0")], ck_reads=False,
                               sluice=INVALID_RECORD),
    "value-length-2^30": Case(lambda: _bad_at_1(HDR + zz(1) + b"k" + zz(1 << 30) + b"abc" + zz(0)), INVALID_RECORD),
    "header-count-int32-max": Case(lambda: _bad_at_1(HDR + KV + zz(2**31 - 1) + zz(1) + b"h" + zz(1) + b"v"),
                                   INVALID_RECORD),
    "header-count-minus-3": Case(lambda: _bad_at_1(HDR + KV + zz(-3)), INVALID_RECORD),
    "header-key-length-10-byte-varint": Case(lambda: _bad_at_1(HDR + KV + zz(1) + zz_long(3, 10) + b"hdr" +
                                                               zz(1) + b"v"), INVALID_RECORD),
    "trailing-5-bytes-in-record": Case(lambda: _bad_at_1(body(1, b"k", b"v") + b"\x00" * 5), INVALID_RECORD),
    "header-key-length-minus-2": Case(lambda: _bad_at_1(HDR + KV + zz(1) + zz(-2) + zz(1) + b"v"), INVALID_RECORD),
    "header-value-length-minus-5": Case(lambda: _bad_at_1(HDR + KV + zz(1) + zz(3) + b"hdr" + zz(-5)), NONE, 3,
                                        lambda: [(b"g0", b"first"), (b"k", b"v"), (b"t0", b"tail-0")],
                                        sluice=INVALID_RECORD),
    "record-length-6-byte-varint": Case(lambda: _bad_at_1(body(1, b"k", b"v"), length_bytes=6), UNKNOWN_SERVER_ERROR),
    "record-length-5-byte-varint": Case(lambda: _bad_at_1(body(1, b"k", b"v"), length_bytes=5), NONE, 3,
                                        lambda: [(b"g0", b"first"), (b"k", b"v"), (b"t0", b"tail-0")]),
}


# ---- compressed batches --------------------------------------------------------------------------

def _three() -> bytes:
    return b"".join(recs(b"C", 3))


def _kv3() -> list:
    return kv(b"C", 3)


def _zbatch(codec: str, payload: bytes, count: int = 3, claimed: int | None = None) -> bytes:
    return batch(count, attributes=hb.CODEC_IDS[codec], records=payload, claimed_count=claimed)


GARBAGE = bytes((i * 37 + 11) & 0xFF for i in range(64))


def _bad_key_inside() -> bytes:
    """The key-length-1000 record among 4 good ones, as the decompressed records (count 5)."""
    return b"".join([good(0, b"g0", b"first"), rec(HDR + zz(1000) + b"k")] +
                    [good(2 + i, b"t%d" % i, b"x" * 400) for i in range(3)])


def _snappy_block_lying(n: int) -> bytes:
    """The raw snappy block of the three records with a preamble that claims n uncompressed bytes."""
    real, pre = hb.snappy_raw(_three()), hb.snappy_preamble(len(_three()))
    assert real.startswith(pre)
    return hb.snappy_preamble(n) + real[len(pre):]


def _xerial(block: bytes, length: int | None = None) -> bytes:
    return hb.SNAPPY_JAVA_MAGIC + w.i32(1) + w.i32(1) + w.i32(len(block) if length is None else length) + block


def _zero_record(i: int, value_size: int) -> list:
    """Keyless record i whose value is value_size zero bytes: [prefix bytes, number of zeros], the
    zeros including the record's trailing header count (0)."""
    head = b"\x00" + zz(0) + zz(i) + zz(-1) + zz(value_size)
    return [zz(len(head) + value_size + 1) + head, value_size + 1]


def _zero_kv(n: int) -> Callable[[], list]:
    return lambda: [(None, bytes(MiB))] * n


GZIP_BOMB_RECORDS = 900
LZ4_BOMB_RECORDS = 64
ZSTD_BOMB_RECORDS = 4096


def gzip_bomb_records() -> bytes:
    return hb.gzip_zero_runs([p for i in range(GZIP_BOMB_RECORDS) for p in _zero_record(i, MiB)])


def gzip_bomb_tail() -> bytes:
    return hb.gzip_zero_runs([good(0, b"bomb", b"first")] + [MiB] * 900)


def _lz4_zero_records(n: int) -> bytes:
    return b"".join(p + bytes(z) for i in range(n) for p, z in [_zero_record(i, MiB)])


def zstd_bomb_records() -> bytes:
    out = [hb.zstd_header()]
    for i in range(ZSTD_BOMB_RECORDS):
        prefix, zeros = _zero_record(i, MiB)
        out.append(hb.zstd_raw_blocks(prefix))
        out.append(hb.zstd_zero_blocks(zeros, last=i == ZSTD_BOMB_RECORDS - 1))
    return b"".join(out)


def codec_cases(codec: str) -> dict[str, Case]:
    z = lambda payload, **kw: (lambda: _zbatch(codec, payload(), **kw))  # noqa: E731
    c = {
        "valid": Case(z(lambda: hb.compress(codec, _three())), NONE, 3, _kv3),
        "garbage": Case(z(lambda: GARBAGE), UNKNOWN_SERVER_ERROR),
        "truncated": Case(z(lambda: hb.compress(codec, _three())[:-7]), UNKNOWN_SERVER_ERROR),
        "claims-7-records-has-3": Case(z(lambda: hb.compress(codec, _three()), claimed=7), INVALID_RECORD),
        "key-length-1000-inside": Case(z(lambda: hb.compress(codec, _bad_key_inside()), count=5), INVALID_RECORD),
    }
    if codec == "gzip":
        c["isize-2^32-1"] = Case(z(lambda: hb.gzip(_three())[:-4] + b"\xff\xff\xff\xff"), UNKNOWN_SERVER_ERROR)
        c["bomb-900MiB-in-1MiB-records"] = Case(z(gzip_bomb_records, count=GZIP_BOMB_RECORDS), NONE,
                                                GZIP_BOMB_RECORDS, _zero_kv(GZIP_BOMB_RECORDS),
                                                sluice=MESSAGE_TOO_LARGE)
        c["bomb-1-record-then-900MiB-zeros"] = Case(z(gzip_bomb_tail, count=1), INVALID_RECORD)
    if codec == "snappy":
        c["raw-block-unframed"] = Case(z(lambda: hb.snappy_raw(_three())), NONE, 3, _kv3)
        c["raw-preamble-1GiB"] = Case(z(lambda: _snappy_block_lying(1 << 30)), UNKNOWN_SERVER_ERROR)
        c["raw-preamble-2^32-1"] = Case(z(lambda: _snappy_block_lying(2**32 - 1)), UNKNOWN_SERVER_ERROR)
        c["framed-preamble-2^32-1"] = Case(z(lambda: _xerial(_snappy_block_lying(2**32 - 1))), UNKNOWN_SERVER_ERROR)
        c["framed-preamble-1GiB"] = Case(z(lambda: _xerial(_snappy_block_lying(1 << 30))), UNKNOWN_SERVER_ERROR)
        c["framed-chunk-length-2^31-1"] = Case(z(lambda: _xerial(hb.snappy_raw(_three()), 2**31 - 1)),
                                               UNKNOWN_SERVER_ERROR)
    if codec == "lz4":
        c["python-lz4-defaults"] = Case(z(lambda: hb.lz4_default(_three())), NONE, 3, _kv3)
        c["content-size-2^40"] = Case(z(lambda: hb.lz4_frame(_three(), content_size=1 << 40)), NONE, 3, _kv3,
                                      ck_reads=False, sluice=UNKNOWN_SERVER_ERROR)
        c["content-size-2^40-truncated"] = Case(
            z(lambda: hb.lz4_frame(_three(), content_size=1 << 40, end_mark=False)[:-5]), UNKNOWN_SERVER_ERROR)
        c["linked-blocks"] = Case(z(lambda: hb.lz4_default(
            b"".join(good(i, b"k%d" % i, (b"linked-%d-" % i) * 400) for i in range(40))), count=40),
            UNKNOWN_SERVER_ERROR)
        c["bomb-64MiB-in-1MiB-records"] = Case(
            z(lambda: hb.lz4_frame(_lz4_zero_records(LZ4_BOMB_RECORDS), block_max=4 * MiB), count=LZ4_BOMB_RECORDS),
            NONE, LZ4_BOMB_RECORDS, _zero_kv(LZ4_BOMB_RECORDS))
        c["bomb-1-record-then-64MiB-zeros"] = Case(
            z(lambda: hb.lz4_frame(good(0, b"bomb", b"first") + bytes(64 * MiB), block_max=4 * MiB), count=1),
            INVALID_RECORD)
    if codec == "zstd":
        c["content-size-2^40"] = Case(z(lambda: hb.zstd_header(1 << 40) + hb.zstd_raw_blocks(_three(), last=True)),
                                      UNKNOWN_SERVER_ERROR)
        c["bomb-4GiB-zeros"] = Case(z(lambda: hb.zstd_header() + hb.zstd_zero_blocks(4 << 30, last=True), count=1),
                                    INVALID_RECORD)
        c["bomb-1-record-then-4GiB-zeros"] = Case(
            z(lambda: hb.zstd_header() + hb.zstd_raw_blocks(good(0, b"bomb", b"first")) +
              hb.zstd_zero_blocks(4 << 30, last=True), count=1), INVALID_RECORD)
        c["bomb-4GiB-in-1MiB-records"] = Case(z(zstd_bomb_records, count=ZSTD_BOMB_RECORDS), NONE,
                                              ZSTD_BOMB_RECORDS, _zero_kv(ZSTD_BOMB_RECORDS), ck_reads=False,
                                              sluice=MESSAGE_TOO_LARGE)
    return c


CODECS = ("gzip", "snappy", "lz4", "zstd")
COMPRESSED = {f"{codec}/{name}": case for codec in CODECS for name, case in codec_cases(codec).items()}


# ---- checks --------------------------------------------------------------------------------------

def new_topic(broker, name: str, partitions: int = 1, timeout: float = 30.0) -> str:
    """Create the topic and wait until the broker serves every partition as leader: Kafka's metadata
    can list a leader a moment before its ReplicaManager leads the partition (a Produce right after
    CreateTopics was once answered NOT_LEADER_OR_FOLLOWER); ListOffsets asks the same thing.
    retention.ms=-1: the batches carry timestamps from 1970 (test_produce_validation.batch), and a
    retention check between the produce and the fetch deleted a whole log once (Kafka, in CI)."""
    ck.create_topic(broker.bootstrap, name, partitions=partitions, config={"retention.ms": "-1"})
    deadline = time.monotonic() + timeout
    while True:
        try:
            with w.KafkaConn.to(broker.bootstrap) as c:
                w.list_offsets(c, name, list(range(partitions)))
            return name
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def topic(broker, unique_topic):
    return new_topic(broker, unique_topic("hostile"))


def ck_read(bootstrap: str, topic: str, start: int, n: int, timeout: float = 30.0) -> list[tuple]:
    """confluent-kafka (default read_committed), assign partition 0 at `start`, the first n messages
    as (offset, key, value). Consumer errors before the n-th message fail the test."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-assign", "enable.auto.commit": False,
                  "enable.auto.offset.store": False, "auto.offset.reset": "error", "fetch.wait.max.ms": 100})
    got: list[tuple] = []
    try:
        c.assign([TopicPartition(topic, 0, start)])
        deadline = time.monotonic() + timeout
        while len(got) < n:
            assert time.monotonic() < deadline, f"{topic}: read {len(got)}/{n} messages from offset {start}"
            for m in c.consume(num_messages=n - len(got), timeout=0.5):
                if m.error():
                    raise KafkaException(m.error())
                got.append((m.offset(), m.key(), summary(m.value())))
    finally:
        c.close()
    return got[:n]


def summary(value: bytes | None):
    """Values over 4 KiB compare as ("zeros", length) or ("bytes", length, hash), to keep a bomb's
    900 MiB out of Python's lists."""
    if value is None or len(value) <= 4096:
        return value
    return ("zeros", len(value)) if value.count(0) == len(value) else ("bytes", len(value), hash(value))


def high_watermark(bootstrap: str, topic: str) -> int:
    with w.KafkaConn.to(bootstrap) as c:
        return w.list_offsets(c, topic, [0])[0]


def produce_around(broker, topic: str, hostile: bytes, version: int = 7) -> int:
    """A, the hostile batch, B on one connection; returns the hostile batch's error code."""
    with w.connect(broker.host, broker.port, 120) as s:
        assert produce(s, topic, BATCH_A, corr=1) == NONE
        code = produce(s, topic, hostile, version=version, corr=2)
        assert produce(s, topic, BATCH_B, corr=3) == NONE, "B refused after the hostile batch"
    return code


def check_log(broker, topic: str, case: Case, hostile: bytes) -> None:
    """High watermark; an accepted hostile batch stored as sent; confluent-kafka reads A, B and the
    accepted records in one pass from offset 0, or, when librdkafka cannot read the accepted batch,
    A from 0 and B from its offset."""
    appended = case.appended if case.expected(broker.kind) == NONE else 0
    assert high_watermark(broker.bootstrap, topic) == 6 + appended
    if appended:
        stored = hb.fetch_raw_batches(broker.bootstrap, topic, 0, 3)
        assert len(stored) >= 1 and w.Reader(stored[0]).i64() == 3
        assert hb.same_batch_content(stored[0], hostile), "the accepted batch is not stored as sent"
    a, b = kv(b"A", 3), kv(b"B", 3)
    if not appended or case.ck_reads:
        want = a + ([(k, summary(v)) for k, v in case.kv()] if appended else []) + b
        # librdkafka takes ~13 s to decompress the 900 MiB gzip batch (Kafka validates it in 0.7 s)
        got = ck_read(broker.bootstrap, topic, 0, len(want), 30 + len(hostile) / 20_000)
        assert got == [(i, k, v) for i, (k, v) in enumerate(want)]
    else:
        assert ck_read(broker.bootstrap, topic, 0, 3) == [(i, k, v) for i, (k, v) in enumerate(a)]
        assert ck_read(broker.bootstrap, topic, 3 + appended, 3) == \
            [(3 + appended + i, k, v) for i, (k, v) in enumerate(b)]


def run_case(broker, topic: str, case: Case) -> None:
    hostile = case.make()
    assert len(hostile) < 1_000_000
    code = produce_around(broker, topic, hostile)
    want = case.expected(broker.kind)
    assert code == want, f"error {code}, expected {want} (Kafka answers {case.code})"
    if want != NONE:
        # Produce v8 carries error_message and record_errors: Kafka sets neither for these (Sluice
        # says why where it is stricter than Kafka).
        with w.connect(broker.host, broker.port, 120) as s:
            got = hb.produce_one(s, topic, hostile, version=8, corr=4)
            if want == case.code:
                assert got == (want, None, [])
            else:
                assert (got[0], got[2]) == (want, [])
    check_log(broker, topic, case, hostile)


@pytest.mark.parametrize("name", list(PLAIN))
def test_bad_record_in_uncompressed_batch(broker, topic, name):
    run_case(broker, topic, PLAIN[name])


@pytest.mark.parametrize("name", list(COMPRESSED))
def test_compressed_batch(broker, topic, name):
    run_case(broker, topic, COMPRESSED[name])


# ---- transactional batches -----------------------------------------------------------------------

def test_transactional_batch_without_transactional_id(broker, unique_topic):
    """No transactional id and a transactional batch: TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every
    partition of the request, a non-transactional batch in the same request included; nothing is
    appended and the connection stays open."""
    t = new_topic(broker, unique_topic("hostile-txn"), 2)
    txn = batch(3, attributes=0x10)  # producer id -1
    with w.connect(broker.host, broker.port, 30) as s:
        ans = hb.produce_answer(s, [(t, [(0, txn)])], version=7, corr=1)
        assert ans.codes() == [(t, 0, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)]
        ans = hb.produce_answer(s, [(t, [(0, BATCH_A), (1, txn)])], version=7, corr=2)
        assert sorted(ans.codes()) == [(t, 0, 53), (t, 1, 53)]
        ans = hb.produce_answer(s, [(t, [(1, batch(3, attributes=0x10, producer_id=1234, base_sequence=0))])],
                                version=8, corr=3)
        assert [(e[2], e[5]) for e in ans.entries] == [(TRANSACTIONAL_ID_AUTHORIZATION_FAILED, None)]
        assert produce(s, t, BATCH_B, corr=4) == NONE
    with w.KafkaConn.to(broker.bootstrap) as c:
        assert w.list_offsets(c, t, [0, 1]) == {0: 3, 1: 0}


@pytest.mark.parametrize("tid", ["x", ""])
def test_transactional_batch_with_id_and_no_producer_id(broker, topic, tid):
    """A transactional id and a transactional batch without a producer id: appended as sent, and a
    read_committed consumer (librdkafka's default) reads it."""
    txn = batch(3, attributes=0x10, records=b"".join(recs(b"T", 3)))
    with w.connect(broker.host, broker.port, 30) as s:
        assert produce(s, topic, BATCH_A, corr=1) == NONE
        assert hb.produce_one(s, topic, txn, transactional_id=tid, corr=2) == (NONE, None, [])
        assert produce(s, topic, BATCH_B, corr=3) == NONE
    assert high_watermark(broker.bootstrap, topic) == 9
    stored = hb.fetch_raw_batches(broker.bootstrap, topic, 0, 3)
    assert hb.same_batch_content(stored[0], txn)
    want = kv(b"A", 3) + kv(b"T", 3) + kv(b"B", 3)
    assert ck_read(broker.bootstrap, topic, 0, 9) == [(i, k, v) for i, (k, v) in enumerate(want)]


# ---- Fetch isolation level -----------------------------------------------------------------------

def _fetch(s, topic: str, isolation: int, version: int) -> tuple[int, list]:
    """Fetch v11 (int16 strings) or v12 (flexible, with last_fetched_epoch) of partition 0 from offset 0.
    Returns (top-level error, [(partition, error, high watermark, last stable offset, records length)])."""
    flexible = version >= 12
    arr = (lambda n: w.uvarint(n + 1)) if flexible else w.i32
    st = w.compact_string if flexible else w.string
    tags = b"\x00" if flexible else b""
    body = (w.i32(-1) + w.i32(100) + w.i32(1) + w.i32(1 << 20) + w.i8(isolation) + w.i32(0) + w.i32(-1) +
            arr(1) + st(topic) + arr(1) + w.i32(0) + w.i32(-1) + w.i64(0) + (w.i32(-1) if flexible else b"") +
            w.i64(-1) + w.i32(1 << 20) + tags +
            tags + arr(0) + st("") + tags)
    hdr = (w.header_v2 if flexible else w.header_v1)(1, version, 31)
    r = w.Reader(w.roundtrip(s, hdr + body))
    assert r.i32() == 31
    if flexible:
        r.skip_tags()
    r.i32()  # throttle
    top = r.i16()
    r.i32()  # session id
    rarr = (lambda: r.uvarint() - 1) if flexible else r.i32
    rstr = r.compact_string if flexible else r.string
    parts = []
    for _ in range(rarr()):
        assert rstr() == topic
        for _ in range(rarr()):
            p, err, hwm, lso = r.i32(), r.i16(), r.i64(), r.i64()
            r.i64()  # log start offset
            for _ in range(max(rarr(), 0)):  # aborted transactions (nullable)
                r.i64(); r.i64()
            r.i32()  # preferred read replica
            n = (r.uvarint() - 1) if flexible else r.i32()
            r.take(max(n, 0))
            if flexible:
                r.skip_tags()
            parts.append((p, err, hwm, lso, max(n, 0)))
        if flexible:
            r.skip_tags()
    return top, parts


@pytest.mark.parametrize("version", [11, 12])
def test_fetch_isolation_level(broker, topic, version):
    """Isolation levels other than 0 and 1 are answered (not a closed connection) with
    UNKNOWN_SERVER_ERROR at the top and for each partition, high watermark and LSO -1, no records;
    the connection then serves the next request."""
    with w.connect(broker.host, broker.port, 30) as s:
        assert produce(s, topic, BATCH_A, corr=1) == NONE
    with w.connect(broker.host, broker.port, 30) as s:
        for iso in (0, 1):
            top, parts = _fetch(s, topic, iso, version)
            assert top == NONE and [p[:4] for p in parts] == [(0, NONE, 3, 3)] and parts[0][4] > 0
        for iso in (2, 7, -1):
            top, parts = _fetch(s, topic, iso, version)
            assert (top, parts) == (UNKNOWN_SERVER_ERROR, [(0, UNKNOWN_SERVER_ERROR, -1, -1, 0)]), iso
        corr, err, _ = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request(40)))
        assert (corr, err) == (40, NONE)


# ---- strings that are not UTF-8 ------------------------------------------------------------------

FFFD = "\ufffd".encode()
# bad sequence -> how many U+FFFD Kafka (Java's UTF-8 decoder) puts in its place
BAD_UTF8 = {b"\xff\xfe": 2, b"\xe2\x82": 1, b"\xc0\xaf": 2, b"\xed\xa0\x80": 1, b"\xf4\x90\x80\x80": 4}


def _raw_str(b: bytes) -> bytes:
    return w.i16(len(b)) + b


def _rstr(r: w.Reader) -> bytes:
    return r.take(r.i16())


def _all_topic_names(s) -> list[bytes]:
    r = w.Reader(w.roundtrip(s, w.header_v1(3, 1, 8) + w.i32(-1)))  # Metadata v1, all topics
    assert r.i32() == 8
    for _ in range(r.i32()):
        r.i32(); _rstr(r); r.i32(); r.string()
    r.i32()  # controller
    names = []
    for _ in range(r.i32()):
        r.i16(); names.append(_rstr(r)); r.i8()
        for _ in range(r.i32()):
            r.i16(); r.i32(); r.i32()
            [r.i32() for _ in range(r.i32())]
            [r.i32() for _ in range(r.i32())]
    return names


@pytest.mark.parametrize("seq", list(BAD_UTF8), ids=lambda b: b.hex())
def test_non_utf8_names_are_echoed_with_replacement_characters(broker, seq):
    name = b"t" + seq + b"opic"
    echoed = b"t" + FFFD * BAD_UTF8[seq] + b"opic"
    with w.connect(broker.host, broker.port, 30) as s:
        # Metadata v0 (auto-creation on): INVALID_TOPIC_EXCEPTION, not created
        r = w.Reader(w.roundtrip(s, w.header_v1(3, 0, 1) + w.i32(1) + _raw_str(name)))
        assert r.i32() == 1
        for _ in range(r.i32()):
            r.i32(); _rstr(r); r.i32()
        assert r.i32() == 1
        assert (r.i16(), _rstr(r), r.i32()) == (INVALID_TOPIC_EXCEPTION, echoed, 0)
        assert echoed not in _all_topic_names(s) and name not in _all_topic_names(s)
        # DeleteTopics v1
        r = w.Reader(w.roundtrip(s, w.header_v1(20, 1, 2) + w.i32(1) + _raw_str(name) + w.i32(5000)))
        assert r.i32() == 2
        r.i32()
        assert r.i32() == 1 and (_rstr(r), r.i16()) == (echoed, UNKNOWN_TOPIC_OR_PARTITION)
        # ListOffsets v2
        r = w.Reader(w.roundtrip(s, w.header_v1(2, 2, 3) + w.i32(-1) + w.i8(0) + w.i32(1) + _raw_str(name) +
                                 w.i32(1) + w.i32(0) + w.i64(-1)))
        assert r.i32() == 3
        r.i32()
        assert r.i32() == 1 and _rstr(r) == echoed
        assert r.i32() == 1 and (r.i32(), r.i16(), r.i64(), r.i64()) == (0, UNKNOWN_TOPIC_OR_PARTITION, -1, -1)
        # FindCoordinator v0 (the key is not echoed): this broker
        r = w.Reader(w.roundtrip(s, w.header_v1(10, 0, 4) + _raw_str(name)))
        assert r.i32() == 4
        assert (r.i16(), r.i32(), r.string(), r.i32())[0::2] == (NONE, broker.host)
        # DescribeGroups v0: unknown group, state Dead
        r = w.Reader(w.roundtrip(s, w.header_v1(15, 0, 5) + w.i32(1) + _raw_str(name)))
        assert r.i32() == 5
        assert r.i32() == 1
        assert (r.i16(), _rstr(r), _rstr(r), _rstr(r), _rstr(r), r.i32()) == (NONE, echoed, b"Dead", b"", b"", 0)


# ---- a partition named twice in one Produce ------------------------------------------------------

X = batch(2, records=b"".join(recs(b"X", 2)))
Y = batch(3, records=b"".join(recs(b"Y", 3)))
BAD = batch(corrupt_crc=True)

TWICE = {
    "same-partition-twice": (lambda t: [(t, [(0, X), (0, Y)])], NONE, b"Y"),
    "same-topic-twice": (lambda t: [(t, [(0, X)]), (t, [(0, Y)])], NONE, b"Y"),
    "first-bad-then-good": (lambda t: [(t, [(0, BAD), (0, Y)])], NONE, b"Y"),
    "first-good-then-bad": (lambda t: [(t, [(0, X), (0, BAD)])], CORRUPT_MESSAGE, None),
}


@pytest.mark.parametrize("name", list(TWICE))
def test_partition_named_twice_in_one_produce(broker, topic, name):
    """Kafka keeps the last entry for a partition: one answer entry, only the last batch appended."""
    entries, code, appended = TWICE[name]
    with w.connect(broker.host, broker.port, 30) as s:
        ans = hb.produce_answer(s, entries(topic), version=7, corr=1)
    assert [(t, p, e, base) for t, p, e, base, _, _ in ans.entries] == \
        [(topic, 0, code, 0 if code == NONE else -1)]
    n = 3 if appended else 0
    assert high_watermark(broker.bootstrap, topic) == n
    if appended:
        assert ck_read(broker.bootstrap, topic, 0, 3) == [(i, k, v) for i, (k, v) in enumerate(kv(appended, 3))]


def test_partition_named_twice_with_another_partition(broker, unique_topic):
    """Partition 0 twice around partition 1 of the same topic: one entry for each partition."""
    t = new_topic(broker, unique_topic("hostile-twice"), 2)
    with w.connect(broker.host, broker.port, 30) as s:
        ans = hb.produce_answer(s, [(t, [(0, X), (1, X), (0, Y)])], version=7, corr=1)
    assert sorted(ans.codes()) == [(t, 0, NONE), (t, 1, NONE)]
    with w.KafkaConn.to(broker.bootstrap) as c:
        assert w.list_offsets(c, t, [0, 1]) == {0: 3, 1: 2}
