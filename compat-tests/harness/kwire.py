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

