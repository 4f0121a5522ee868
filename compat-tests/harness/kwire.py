"""Minimal raw Kafka wire helpers (no client library): framing, request header v1,
and just enough decoding for ApiVersions / Metadata probes and bad-input tests."""
from __future__ import annotations

import socket
import struct
import time


def i8(v: int) -> bytes: return struct.pack(">b", v)
def i16(v: int) -> bytes: return struct.pack(">h", v)
def i32(v: int) -> bytes: return struct.pack(">i", v)
def i64(v: int) -> bytes: return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    """Non-compact (int16 length) nullable string."""
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def header_v1(api_key: int, api_version: int, corr: int, client_id: str | None = "sluice-compat") -> bytes:
    return i16(api_key) + i16(api_version) + i32(corr) + string(client_id)


def header_v2(api_key: int, api_version: int, corr: int, client_id: str | None = "sluice-compat") -> bytes:
    return header_v1(api_key, api_version, corr, client_id) + b"\x00"  # empty tagged fields


def frame(payload: bytes) -> bytes:
    return i32(len(payload)) + payload


class Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.p = 0

    def take(self, n: int) -> bytes:
        if self.p + n > len(self.d):
            raise ValueError(f"short read: need {n} at {self.p}, have {len(self.d) - self.p}")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self) -> int: return struct.unpack(">b", self.take(1))[0]
    def i16(self) -> int: return struct.unpack(">h", self.take(2))[0]
    def i32(self) -> int: return struct.unpack(">i", self.take(4))[0]
    def i64(self) -> int: return struct.unpack(">q", self.take(8))[0]

    def uvarint(self) -> int:
        shift = v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def string(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def compact_string(self) -> str | None:
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def rest(self) -> bytes:
        return self.d[self.p:]


def connect(host: str, port: int, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    host, port = bootstrap.rsplit(":", 1)
    return host, int(port)


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)}/{n} bytes")
        buf += chunk
    return bytes(buf)


def recv_frame(s: socket.socket, max_size: int = 64 << 20) -> bytes:
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    if size < 0 or size > max_size:
        raise ValueError(f"bad response size {size}")
    return recv_exact(s, size)


def roundtrip(s: socket.socket, payload: bytes) -> bytes:
    s.sendall(frame(payload))
    return recv_frame(s)


def api_versions_request(corr: int = 1, version: int = 0, client_id: str | None = "sluice-compat") -> bytes:
    if version >= 3:
        return header_v2(18, version, corr, client_id) + compact_string("sluice-compat") + compact_string("1.0") + b"\x00"
    return header_v1(18, version, corr, client_id)


def parse_api_versions_v0(resp: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """Response header v0 + ApiVersions v0 body. Returns (corr, error, {key: (min, max)})."""
    r = Reader(resp)
    corr = r.i32()
    err = r.i16()
    n = r.i32()
    apis = {}
    for _ in range(max(n, 0)):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    return corr, err, apis


def api_versions(host: str, port: int, timeout: float = 5.0) -> dict[int, tuple[int, int]]:
    """Open a connection, send ApiVersions v0, return the API ranges; raise on any failure."""
    with connect(host, port, timeout) as s:
        corr, err, apis = parse_api_versions_v0(roundtrip(s, api_versions_request(corr=7)))
        if corr != 7:
            raise ValueError(f"correlation id mismatch: {corr}")
        if err != 0:
            raise ValueError(f"ApiVersions error {err}")
        return apis


def metadata_broker_count(host: str, port: int, timeout: float = 5.0) -> int:
    """Metadata v1 with an empty topic list; returns the number of brokers listed."""
    with connect(host, port, timeout) as s:
        resp = roundtrip(s, header_v1(3, 1, 9) + i32(0))
        r = Reader(resp)
        if r.i32() != 9:
            raise ValueError("correlation id mismatch")
        return r.i32()


def metadata_partitions(host: str, port: int, topic: str, timeout: float = 5.0) -> dict[int, dict]:
    """Metadata v7 for one topic, as this broker sees it: {partition: {error, leader, epoch, replicas,
    isr, offline}}."""
    with connect(host, port, timeout) as s:
        resp = roundtrip(s, header_v1(3, 7, 11) + i32(1) + string(topic) + i8(0))
    r = Reader(resp)
    if r.i32() != 11:
        raise ValueError("correlation id mismatch")
    r.i32()  # throttle
    for _ in range(r.i32()):  # brokers
        r.i32(); r.string(); r.i32(); r.string()
    r.string(); r.i32()  # cluster id, controller
    out = {}
    for _ in range(r.i32()):
        r.i16(); r.string(); r.i8()
        for _ in range(r.i32()):
            error, index, leader, epoch = r.i16(), r.i32(), r.i32(), r.i32()
            replicas = [r.i32() for _ in range(r.i32())]
            isr = [r.i32() for _ in range(r.i32())]
            offline = [r.i32() for _ in range(r.i32())]
            out[index] = {"error": error, "leader": leader, "epoch": epoch, "replicas": replicas, "isr": isr,
                          "offline": offline}
    return out


def metadata_leader_epochs(host: str, port: int, topic: str, timeout: float = 5.0) -> dict[int, tuple[int, int, list[int]]]:
    """Metadata v7 for one topic: {partition: (leader, leader epoch, isr)} as this broker sees it."""
    return {p: (x["leader"], x["epoch"], x["isr"]) for p, x in metadata_partitions(host, port, topic, timeout).items()}


def wait_closed(s: socket.socket, timeout: float = 5.0) -> bool:
    """True if the peer closes (EOF/reset) within timeout, False if it stays open silently.
    Raises if data arrives (caller expected none)."""
    deadline = time.monotonic() + timeout
    s.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not d:
            return True
        raise AssertionError(f"unexpected data from server: {d[:64]!r}")
    return False


CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def fetch_batch_attributes(host: str, port: int, topic: str, partition: int, offset: int = 0,
                           max_bytes: int = 1 << 20, timeout: float = 10.0) -> list[int]:
    """Raw Fetch v4 of one partition; returns the attributes of each complete record batch
    (attributes & 7 is the compression codec, as stored by the broker)."""
    body = (i32(-1) + i32(100) + i32(1) + i32(max_bytes) + i8(0) +
            i32(1) + string(topic) + i32(1) + i32(partition) + i64(offset) + i32(max_bytes))
    with connect(host, port, timeout) as s:
        r = Reader(roundtrip(s, header_v1(1, 4, 21) + body))
    assert r.i32() == 21
    r.i32()  # throttle
    assert r.i32() == 1
    r.string()
    assert r.i32() == 1
    r.i32()
    err = r.i16()
    if err:
        raise ValueError(f"fetch error {err}")
    r.i64(); r.i64()
    n_aborted = r.i32()
    for _ in range(max(n_aborted, 0)):
        r.i64(); r.i64()
    records = Reader(r.take(r.i32()))
    attrs = []
    while len(records.rest()) >= 61:
        records.i64()
        blen = records.i32()
        if blen > len(records.rest()):
            break  # partial batch at the end of the response
        batch = Reader(records.take(blen))
        batch.i32()  # leader epoch
        magic = batch.i8()
        assert magic == 2, f"magic {magic}"
        batch.i32()  # crc
        attrs.append(batch.i16())
    return attrs


def assert_codec_used(attrs: list[int], codec: str) -> None:
    """The stored batches were compressed with `codec` as sent. A producer may send a batch
    uncompressed when compression would not make it smaller (librdkafka does, for small batches
    of random bytes), so uncompressed batches may appear beside it, but no other codec, and
    the codec must be there (librdkafka < 2.11 silently stops compressing when the broker's
    Produce range does not cover v0)."""
    used = {a & 7 for a in attrs}
    want = CODECS[codec]
    assert attrs and want in used and used <= {0, want}, (codec, attrs[:20])



# ---------------------------------------------------------------------------------------------
# Idempotent producer helpers: magic-2 record batches with producer fields, InitProducerId,
# Produce (v3..v9) with per-partition results, ListOffsets v1, and a Fetch v4 that decodes the
# batch headers (and uncompressed records) it gets back.

# Kafka error codes used by the idempotence tests (names as in Kafka's protocol documentation).
NONE = 0
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
COORDINATOR_LOAD_IN_PROGRESS = 14
INVALID_REQUEST = 42
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
DUPLICATE_SEQUENCE_NUMBER = 46
INVALID_PRODUCER_EPOCH = 47
UNKNOWN_PRODUCER_ID = 59
INVALID_RECORD = 87
PRODUCER_FENCED = 90
ERROR_NAMES = {
    NONE: "NONE", CORRUPT_MESSAGE: "CORRUPT_MESSAGE", UNKNOWN_TOPIC_OR_PARTITION: "UNKNOWN_TOPIC_OR_PARTITION",
    NOT_LEADER_OR_FOLLOWER: "NOT_LEADER_OR_FOLLOWER", COORDINATOR_LOAD_IN_PROGRESS: "COORDINATOR_LOAD_IN_PROGRESS",
    INVALID_REQUEST: "INVALID_REQUEST",
    OUT_OF_ORDER_SEQUENCE_NUMBER: "OUT_OF_ORDER_SEQUENCE_NUMBER",
    DUPLICATE_SEQUENCE_NUMBER: "DUPLICATE_SEQUENCE_NUMBER", INVALID_PRODUCER_EPOCH: "INVALID_PRODUCER_EPOCH",
    UNKNOWN_PRODUCER_ID: "UNKNOWN_PRODUCER_ID", INVALID_RECORD: "INVALID_RECORD", PRODUCER_FENCED: "PRODUCER_FENCED",
}


def error_name(code: int) -> str:
    return f"{ERROR_NAMES.get(code, 'error')}({code})"


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as a record batch carries it (over attributes .. end of batch)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(n: int) -> bytes:
    """Signed zigzag varint (record fields)."""
    return uvarint((n << 1) ^ (n >> 63))


def record(offset_delta: int, value: bytes | None, key: bytes | None = None, timestamp_delta: int = 0) -> bytes:
    """One magic-2 record without headers."""
    body = b"\x00" + varint(timestamp_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(0)  # headers
    return varint(len(body)) + body


def record_batch(values: list[bytes], *, producer_id: int = -1, producer_epoch: int = -1,
                 base_sequence: int = -1, timestamp: int | None = None, attributes: int = 0,
                 last_offset_delta: int | None = None) -> bytes:
    """An uncompressed magic-2 record batch of len(values) records (keyless), base offset 0.
    last_offset_delta defaults to len(values) - 1 (override only to build defective batches)."""
    if not values:
        raise ValueError("a batch needs at least one record")
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    recs = b"".join(record(i, v) for i, v in enumerate(values))
    lod = len(values) - 1 if last_offset_delta is None else last_offset_delta
    after_crc = (i16(attributes) + i32(lod) + i64(ts) + i64(ts) + i64(producer_id) + i16(producer_epoch) +
                 i32(base_sequence) + i32(len(values)) + recs)
    body = i32(-1) + i8(2) + struct.pack(">I", crc32c(after_crc)) + after_crc  # leader epoch, magic, crc
    return i64(0) + i32(len(body)) + body


class KafkaConn:
    """One raw connection with running correlation ids; request() returns a Reader positioned
    after the response header (v0, or v1 with tagged fields for flexible versions)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0):
        self.sock = connect(host, port, timeout)
        self.corr = 100

    @classmethod
    def to(cls, bootstrap: str, timeout: float = 30.0) -> "KafkaConn":
        return cls(*parse_bootstrap(bootstrap), timeout=timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, api_key: int, version: int, body: bytes, flexible: bool) -> Reader:
        return self.answer(self.send(api_key, version, body, flexible), flexible)

    def send(self, api_key: int, version: int, body: bytes, flexible: bool) -> int:
        """Sends a request without waiting for its answer (pipelining); returns its correlation id."""
        self.corr += 1
        hdr = (header_v2 if flexible else header_v1)(api_key, version, self.corr)
        self.sock.sendall(frame(hdr + body))
        return self.corr

    def answer(self, corr: int, flexible: bool) -> Reader:
        """The next answer on the connection, which must be the one to request `corr`."""
        r = Reader(recv_frame(self.sock))
        got = r.i32()
        if got != corr:
            raise ValueError(f"correlation id {got}, expected {corr}")
        if flexible:
            r.skip_tags()
        return r


def init_producer_id(conn: KafkaConn, version: int = 4, *, transactional_id: str | None = None,
                     transaction_timeout_ms: int = 60000, producer_id: int = -1,
                     producer_epoch: int = -1) -> tuple[int, int, int]:
    """InitProducerId (API 22) v0..v4 (v2+ flexible, v3+ carries producer_id/epoch).
    Returns (error_code, producer_id, producer_epoch)."""
    flexible = version >= 2
    body = (compact_string if flexible else string)(transactional_id) + i32(transaction_timeout_ms)
    if version >= 3:
        body += i64(producer_id) + i16(producer_epoch)
    if flexible:
        body += b"\x00"
    r = conn.request(22, version, body, flexible)
    r.i32()  # throttle
    err, pid, epoch = r.i16(), r.i64(), r.i16()
    if flexible:
        r.skip_tags()
    return err, pid, epoch


def new_producer_id(conn: KafkaConn, version: int = 4, timeout: float = 30.0, **kwargs) -> tuple[int, int]:
    """InitProducerId without a transactional id, retried while the broker answers
    COORDINATOR_LOAD_IN_PROGRESS (Kafka 3.9 KRaft does until its first block of producer ids
    arrives from the controller, a few seconds after start). Returns (producer_id, epoch)."""
    deadline = time.monotonic() + timeout
    while True:
        err, pid, epoch = init_producer_id(conn, version, **kwargs)
        if err != COORDINATOR_LOAD_IN_PROGRESS or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if err != NONE:
        raise AssertionError(f"InitProducerId v{version}: {error_name(err)}")
    return pid, epoch


class PartResult:
    """One partition's Produce answer."""

    def __init__(self, error: int, base_offset: int, log_append_time: int = -1, log_start_offset: int = -1,
                 error_message: str | None = None, record_errors: list | None = None):
        self.error, self.base_offset = error, base_offset
        self.log_append_time, self.log_start_offset = log_append_time, log_start_offset
        self.error_message, self.record_errors = error_message, record_errors or []

    def __repr__(self) -> str:
        return (f"PartResult({error_name(self.error)}, base_offset={self.base_offset}, "
                f"log_start_offset={self.log_start_offset}, msg={self.error_message!r})")


def produce(conn: KafkaConn, topic: str, batches: dict[int, bytes], *, version: int = 9, acks: int = -1,
            timeout_ms: int = 30000) -> dict[int, PartResult]:
    """Produce (API 0) v3..v9 of one batch per partition ({partition: batch bytes}) to one topic.
    Returns {partition: PartResult}."""
    body, flexible = produce_body(topic, batches, version=version, acks=acks, timeout_ms=timeout_ms)
    return produce_answer(conn.request(0, version, body, flexible), topic, version)


def produce_body(topic: str, batches: dict[int, bytes], *, version: int = 9, acks: int = -1,
                 timeout_ms: int = 30000) -> tuple[bytes, bool]:
    """A Produce v3..v9 request's body (see produce()) and whether the version is flexible."""
    if not 3 <= version <= 9:
        raise ValueError("produce() speaks v3..v9")
    flexible = version >= 9
    if flexible:
        body = compact_string(None) + i16(acks) + i32(timeout_ms) + uvarint(2) + compact_string(topic)
        body += uvarint(len(batches) + 1)
        for p, recs in batches.items():
            body += i32(p) + uvarint(len(recs) + 1) + recs + b"\x00"
        body += b"\x00" + b"\x00"  # topic tags, request tags
    else:
        body = string(None) + i16(acks) + i32(timeout_ms) + i32(1) + string(topic) + i32(len(batches))
        for p, recs in batches.items():
            body += i32(p) + i32(len(recs)) + recs
    return body, flexible


def produce_answer(r: Reader, topic: str, version: int) -> dict[int, PartResult]:
    """A Produce answer's partitions (see produce())."""
    flexible = version >= 9
    out: dict[int, PartResult] = {}
    n_topics = r.uvarint() - 1 if flexible else r.i32()
    for _ in range(n_topics):
        name = r.compact_string() if flexible else r.string()
        if name != topic:
            raise ValueError(f"answer for topic {name!r}, expected {topic!r}")
        for _ in range(r.uvarint() - 1 if flexible else r.i32()):
            p, err, base = r.i32(), r.i16(), r.i64()
            res = PartResult(err, base)
            if version >= 2:
                res.log_append_time = r.i64()
            if version >= 5:
                res.log_start_offset = r.i64()
            if version >= 8:
                for _ in range(r.uvarint() - 1 if flexible else r.i32()):
                    idx = r.i32()
                    msg = r.compact_string() if flexible else r.string()
                    res.record_errors.append((idx, msg))
                    if flexible:
                        r.skip_tags()
                res.error_message = r.compact_string() if flexible else r.string()
            if flexible:
                r.skip_tags()
            out[p] = res
        if flexible:
            r.skip_tags()
    r.i32()  # throttle
    return out


def list_offsets(conn: KafkaConn, topic: str, partitions: list[int], timestamp: int = -1) -> dict[int, int]:
    """ListOffsets v1: {partition: offset} for timestamp -1 (latest = log end offset) or -2 (earliest).
    Raises on a partition error."""
    body = i32(-1) + i32(1) + string(topic) + i32(len(partitions))
    for p in partitions:
        body += i32(p) + i64(timestamp)
    r = conn.request(2, 1, body, False)
    out = {}
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p, err = r.i32(), r.i16()
            r.i64()  # timestamp
            off = r.i64()
            if err:
                raise ValueError(f"ListOffsets {topic}-{p}: {error_name(err)}")
            out[p] = off
    return out


class FetchedBatch:
    """Header fields of a stored record batch, and its records' values (uncompressed batches)."""

    def __init__(self, base_offset: int, last_offset_delta: int, attributes: int, producer_id: int,
                 producer_epoch: int, base_sequence: int, record_count: int, values: list[bytes | None]):
        self.base_offset, self.last_offset_delta, self.attributes = base_offset, last_offset_delta, attributes
        self.producer_id, self.producer_epoch, self.base_sequence = producer_id, producer_epoch, base_sequence
        self.record_count, self.values = record_count, values

    def __repr__(self) -> str:
        return (f"FetchedBatch(base_offset={self.base_offset}, n={self.record_count}, pid={self.producer_id}, "
                f"epoch={self.producer_epoch}, base_seq={self.base_sequence})")


def _svarint(r: Reader) -> int:
    u = r.uvarint()
    return (u >> 1) ^ -(u & 1)


def _decode_records(data: bytes, count: int) -> list[bytes | None]:
    """The values of `count` uncompressed magic-2 records."""
    outer = Reader(data)
    values = []
    for _ in range(count):
        rec = Reader(outer.take(_svarint(outer)))
        rec.i8()  # attributes
        _svarint(rec); _svarint(rec)  # timestamp delta, offset delta
        klen = _svarint(rec)
        if klen >= 0:
            rec.take(klen)
        vlen = _svarint(rec)
        values.append(None if vlen < 0 else rec.take(vlen))
    return values


def fetch_raw(conn: KafkaConn, topic: str, partition: int, offset: int = 0,
              max_bytes: int = 1 << 20) -> list[bytes]:
    """Fetch v4 (read_uncommitted, no wait) of one partition from `offset`: the complete stored record
    batches, each as its raw bytes (base offset, length, header, records), undecoded."""
    body = (i32(-1) + i32(0) + i32(0) + i32(max_bytes) + i8(0) +
            i32(1) + string(topic) + i32(1) + i32(partition) + i64(offset) + i32(max_bytes))
    r = conn.request(1, 4, body, False)
    r.i32()  # throttle
    if r.i32() != 1 or r.string() != topic or r.i32() != 1 or r.i32() != partition:
        raise ValueError("unexpected Fetch answer layout")
    err = r.i16()
    if err:
        raise ValueError(f"Fetch {topic}-{partition}: {error_name(err)}")
    r.i64(); r.i64()  # high watermark, last stable offset
    for _ in range(max(r.i32(), 0)):  # aborted transactions
        r.i64(); r.i64()
    data = r.take(r.i32())
    out, at = [], 0
    while at + 12 <= len(data):
        n = struct.unpack_from(">i", data, at + 8)[0]
        if at + 12 + n > len(data):
            break  # partial batch at the end
        out.append(data[at:at + 12 + n])
        at += 12 + n
    return out


def fetch_error_and_records_size(conn: KafkaConn, topic: str, partition: int, offset: int = 0) -> tuple[int, int]:
    """Fetch v4 of one partition, no wait: its error code and the size its records field claims (-1
    for null: Kafka never sends that, and librdkafka fails the whole answer on it)."""
    body = (i32(-1) + i32(0) + i32(0) + i32(1 << 20) + i8(0) +
            i32(1) + string(topic) + i32(1) + i32(partition) + i64(offset) + i32(1 << 20))
    r = conn.request(1, 4, body, False)
    r.i32()  # throttle
    if r.i32() != 1 or r.string() != topic or r.i32() != 1 or r.i32() != partition:
        raise ValueError("unexpected Fetch answer layout")
    err = r.i16()
    r.i64(); r.i64()  # high watermark, last stable offset
    for _ in range(max(r.i32(), 0)):  # aborted transactions
        r.i64(); r.i64()
    return err, r.i32()


def fetch_error(conn: KafkaConn, topic: str, partition: int, offset: int, current_leader_epoch: int) -> int:
    """Fetch v9 (KIP-320: the client's current leader epoch) of one partition, no wait; the
    partition's error code."""
    body = (i32(-1) + i32(0) + i32(0) + i32(1 << 20) + i8(0) + i32(0) + i32(-1) +
            i32(1) + string(topic) + i32(1) + i32(partition) + i32(current_leader_epoch) + i64(offset) + i64(-1) +
            i32(1 << 20) + i32(0))  # no forgotten topics
    r = conn.request(1, 9, body, False)
    r.i32(); r.i16(); r.i32()  # throttle, error, session id
    if r.i32() != 1 or r.string() != topic or r.i32() != 1 or r.i32() != partition:
        raise ValueError("unexpected Fetch answer layout")
    return r.i16()


def fetch_batches(conn: KafkaConn, topic: str, partition: int, offset: int = 0,
                  max_bytes: int = 1 << 20) -> list[FetchedBatch]:
    """Fetch v4 (read_uncommitted, no wait) of one partition from `offset`; the complete batches."""
    out = []
    for raw in fetch_raw(conn, topic, partition, offset, max_bytes):
        if len(raw) < 61:
            break  # too short for a batch header
        b = Reader(raw)
        base = b.i64()
        b.i32()  # batch length
        b.i32()  # partition leader epoch
        if b.i8() != 2:
            raise ValueError("magic != 2")
        b.i32()  # crc
        attrs, lod = b.i16(), b.i32()
        b.i64(); b.i64()  # timestamps
        pid, epoch, seq, count = b.i64(), b.i16(), b.i32(), b.i32()
        values = _decode_records(b.rest(), count) if attrs & 7 == 0 and not attrs & 0x20 else []
        out.append(FetchedBatch(base, lod, attrs, pid, epoch, seq, count, values))
    return out
