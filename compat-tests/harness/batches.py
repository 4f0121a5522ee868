"""Building blocks for hostile record batches (test_hostile_batches.py): magic-2 record bodies
with any field written wrong, the five codecs as Kafka reads them (gzip, snappy-java's xerial
framing and raw snappy, LZ4 frames built by hand so every header field can lie, zstd frames with
hand-written RLE blocks), and a Produce request/answer codec that can name a topic or a partition
twice, carry a transactional id and read v8's error_message.

The batch header itself (CRC, counts) comes from test_produce_validation.batch(); this module only
makes what goes inside it."""
from __future__ import annotations

import gzip as _gzip
import struct
import zlib

from .kwire import KafkaConn, Reader, fetch_raw, frame, header_v1, i16, i32, i64, recv_frame, string, uvarint, varint

CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


# ---------------------------------------------------------------------------------------------
# Varints and record bodies

zz = varint  # signed zigzag varint, shortest encoding (kwire's; test_produce_validation.zigzag is the same)


def zz_long(n: int, nbytes: int) -> bytes:
    """The zigzag varint of n written over-long in exactly nbytes bytes (continuation bits on
    zero groups). nbytes must be at least the shortest length."""
    u = (n << 1) ^ (n >> 63)
    out = bytearray()
    for i in range(nbytes):
        b = u & 0x7F
        u >>= 7
        out.append(b | (0x80 if i < nbytes - 1 else 0))
    if u:
        raise ValueError(f"{n} does not fit in {nbytes} varint bytes")
    return bytes(out)


def body(offset_delta: int, key: bytes | None = b"k", value: bytes | None = b"v",
         headers: list[tuple[bytes, bytes | None]] = (), ts_delta: int = 0) -> bytes:
    """A well-formed record body (everything after the length varint)."""
    out = b"\x00" + zz(ts_delta) + zz(offset_delta)
    out += zz(-1) if key is None else zz(len(key)) + key
    out += zz(-1) if value is None else zz(len(value)) + value
    out += zz(len(headers))
    for hk, hv in headers:
        out += zz(len(hk)) + hk + (zz(-1) if hv is None else zz(len(hv)) + hv)
    return out


def rec(record_body: bytes, length: int | None = None, length_bytes: int | None = None) -> bytes:
    """Length-prefixed record. length overrides the length written; length_bytes writes it over-long."""
    n = len(record_body) if length is None else length
    return (zz(n) if length_bytes is None else zz_long(n, length_bytes)) + record_body


def good(offset_delta: int, key: bytes | None = b"k", value: bytes | None = b"v", headers=()) -> bytes:
    return rec(body(offset_delta, key, value, headers))


# ---------------------------------------------------------------------------------------------
# Codecs

def gzip(data: bytes, level: int = 6) -> bytes:
    return _gzip.compress(data, compresslevel=level, mtime=0)


def gzip_stream(chunks, level: int = 9) -> bytes:
    """gzip of an iterable of byte chunks, streamed through zlib (for bombs)."""
    c = zlib.compressobj(level, zlib.DEFLATED, 16 + 15)  # wbits 16+15: gzip wrapper
    out = [c.compress(ch) for ch in chunks]
    out.append(c.flush())
    return b"".join(out)


def gzip_zero_runs(parts: list[bytes | int], level: int = 9) -> bytes:
    """gzip of the concatenation of parts, where an int part stands for that many zero bytes.
    Fast for huge zero runs: each run is deflated once after a full flush (no history, byte
    aligned), so equal runs give equal compressed bytes and are reused; ~1 s for 900 MiB."""
    zero_cache: dict[int, bytes] = {}
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"]  # gzip header: deflate, mtime 0, max compression
    crc, size = 0, 0
    zeros = b""
    for part in parts:
        if isinstance(part, int):
            if part not in zero_cache:
                zc = zlib.compressobj(level, zlib.DEFLATED, -15)
                zero_cache[part] = zc.compress(bytes(part)) + zc.flush(zlib.Z_FULL_FLUSH)
            if len(zeros) != part:
                zeros = bytes(part)
            out.append(c.flush(zlib.Z_FULL_FLUSH))
            out.append(zero_cache[part])
            crc = zlib.crc32(zeros, crc)
            size += part
        else:
            out.append(c.compress(part))
            crc = zlib.crc32(part, crc)
            size += len(part)
    out.append(c.flush(zlib.Z_FINISH))
    out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(out)


SNAPPY_JAVA_MAGIC = b"\x82SNAPPY\x00"


def snappy_raw(data: bytes) -> bytes:
    import snappy
    return snappy.compress(data)


def snappy_xerial(data: bytes, block: int = 32 * 1024) -> bytes:
    """snappy-java's SnappyOutputStream framing, as Kafka writes and reads it: magic, int32 version 1,
    int32 compatible version 1, then [int32 big-endian length][raw snappy block] per block."""
    out = SNAPPY_JAVA_MAGIC + i32(1) + i32(1)
    for at in range(0, max(len(data), 1), block):
        blk = snappy_raw(data[at:at + block])
        out += i32(len(blk)) + blk
    return out


def snappy_preamble(n: int) -> bytes:
    """The uncompressed-length varint that starts a raw snappy block."""
    return uvarint(n)


_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393


def xxh32(data: bytes, seed: int = 0) -> int:
    """XXH32, enough for LZ4 frame header checksums (short inputs)."""
    m = 0xFFFFFFFF
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & m  # noqa: E731
    n, p = len(data), 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & m, (seed + _P2) & m, seed & m, (seed - _P1) & m]
        while p + 16 <= n:
            for i in range(4):
                lane = struct.unpack_from("<I", data, p + 4 * i)[0]
                v[i] = (rotl((v[i] + lane * _P2) & m, 13) * _P1) & m
            p += 16
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & m
    else:
        h = (seed + _P5) & m
    h = (h + n) & m
    while p + 4 <= n:
        h = (rotl((h + struct.unpack_from("<I", data, p)[0] * _P3) & m, 17) * _P4) & m
        p += 4
    while p < n:
        h = (rotl((h + data[p] * _P5) & m, 11) * _P1) & m
        p += 1
    h ^= h >> 15
    h = (h * _P2) & m
    h ^= h >> 13
    h = (h * _P3) & m
    h ^= h >> 16
    return h


LZ4_MAGIC = b"\x04\x22\x4d\x18"
LZ4_BLOCK_IDS = {64 << 10: 4, 256 << 10: 5, 1 << 20: 6, 4 << 20: 7}


def lz4_header(*, independent: bool = True, content_size: int | None = None, block_max: int = 64 << 10,
               block_checksum: bool = False, content_checksum: bool = False) -> bytes:
    flg = 0x40 | (0x20 if independent else 0) | (0x10 if block_checksum else 0) | \
        (0x08 if content_size is not None else 0) | (0x04 if content_checksum else 0)
    desc = bytes([flg, LZ4_BLOCK_IDS[block_max] << 4])
    if content_size is not None:
        desc += struct.pack("<Q", content_size)
    return LZ4_MAGIC + desc + bytes([(xxh32(desc) >> 8) & 0xFF])


def lz4_blocks(data: bytes, block_max: int = 64 << 10) -> bytes:
    """Independent LZ4 blocks of data (no end mark)."""
    import lz4.block
    out = b""
    for at in range(0, len(data), block_max):
        blk = lz4.block.compress(data[at:at + block_max], store_size=False)
        out += struct.pack("<I", len(blk)) + blk
    return out


def lz4_frame(data: bytes, *, content_size: int | None = None, block_max: int = 64 << 10,
              end_mark: bool = True) -> bytes:
    """An LZ4 frame with independent blocks, built by hand so the header can claim any content size."""
    return lz4_header(content_size=content_size, block_max=block_max) + lz4_blocks(data, block_max) + \
        (b"\x00\x00\x00\x00" if end_mark else b"")


def lz4_default(data: bytes, **kw) -> bytes:
    """python-lz4's lz4.frame.compress() (defaults: linked blocks, content size stored, 64 KB blocks)."""
    import lz4.frame
    return lz4.frame.compress(data, **kw)


def zstd(data: bytes, level: int = 3) -> bytes:
    import zstandard
    return zstandard.ZstdCompressor(level=level).compress(data)


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_BLOCK_MAX = 128 << 10


def zstd_header(content_size: int | None = None, window_log: int = 20) -> bytes:
    """Frame header, not single-segment (a window descriptor), no checksum, no dictionary; the
    frame content size field is 8 bytes when given."""
    if content_size is None:
        return ZSTD_MAGIC + b"\x00" + bytes([(window_log - 10) << 3])
    return ZSTD_MAGIC + b"\xc0" + bytes([(window_log - 10) << 3]) + struct.pack("<Q", content_size)


def zstd_block(kind: int, size: int, payload: bytes, last: bool = False) -> bytes:
    """kind 0 raw (payload = the bytes), 1 RLE (payload = one byte repeated size times)."""
    return (int(last) | kind << 1 | size << 3).to_bytes(3, "little") + payload


def zstd_raw_blocks(data: bytes, last: bool = False) -> bytes:
    out = b""
    chunks = [data[at:at + ZSTD_BLOCK_MAX] for at in range(0, len(data), ZSTD_BLOCK_MAX)] or [b""]
    for i, ch in enumerate(chunks):
        out += zstd_block(0, len(ch), ch, last and i == len(chunks) - 1)
    return out


def zstd_zero_blocks(n: int, last: bool = False) -> bytes:
    """RLE blocks of n zero bytes in all."""
    sizes = [ZSTD_BLOCK_MAX] * (n // ZSTD_BLOCK_MAX) + ([n % ZSTD_BLOCK_MAX] if n % ZSTD_BLOCK_MAX else [])
    return b"".join(zstd_block(1, s, b"\x00", last and i == len(sizes) - 1) for i, s in enumerate(sizes))


def compress(codec: str, data: bytes) -> bytes:
    """The payload of a `codec` batch as the Java producer writes it (lz4: independent blocks)."""
    if codec == "none":
        return data
    if codec == "gzip":
        return gzip(data)
    if codec == "snappy":
        return snappy_xerial(data)
    if codec == "lz4":
        return lz4_frame(data)
    if codec == "zstd":
        return zstd(data)
    raise ValueError(codec)


# ---------------------------------------------------------------------------------------------
# Produce with several topic/partition entries, v3..v8 (non-flexible), full answer

class ProduceAnswer:
    def __init__(self):
        self.entries: list[tuple[str, int, int, int, list, str | None]] = []  # topic, part, err, base, rec errs, msg
        self.raw_topics: list[bytes] = []

    def codes(self) -> list[tuple[str, int, int]]:
        return [(t, p, e) for t, p, e, _, _, _ in self.entries]

    def __repr__(self) -> str:
        return f"ProduceAnswer({self.entries})"


def produce_request(entries: list[tuple[str, list[tuple[int, bytes]]]], *, version: int = 7, acks: int = 1,
                    transactional_id: str | None = None, corr: int = 1, timeout_ms: int = 30000) -> bytes:
    """Produce v3..v8 (int16 strings, int32 arrays): entries = [(topic, [(partition, records)])], written
    exactly as given (a topic or partition may repeat). Returns the frame payload."""
    if not 3 <= version <= 8:
        raise ValueError("produce_request speaks v3..v8")
    out = header_v1(0, version, corr) + string(transactional_id) + i16(acks) + i32(timeout_ms) + i32(len(entries))
    for topic, parts in entries:
        out += string(topic) + i32(len(parts))
        for p, recs in parts:
            out += i32(p) + i32(len(recs)) + recs
    return out


def parse_produce(resp: bytes, version: int, corr: int) -> ProduceAnswer:
    r = Reader(resp)
    got = r.i32()
    if got != corr:
        raise ValueError(f"correlation id {got}, expected {corr}")
    ans = ProduceAnswer()
    for _ in range(r.i32()):
        raw = r.take(r.i16())
        ans.raw_topics.append(raw)
        name = raw.decode(errors="replace")
        for _ in range(r.i32()):
            p, err, base = r.i32(), r.i16(), r.i64()
            r.i64()  # log append time
            if version >= 5:
                r.i64()  # log start offset
            rec_errs, msg = [], None
            if version >= 8:
                for _ in range(r.i32()):
                    idx = r.i32()
                    rec_errs.append((idx, r.string()))
                msg = r.string()
            ans.entries.append((name, p, err, base, rec_errs, msg))
    r.i32()  # throttle
    return ans


def produce_answer(sock, entries, *, version: int = 7, acks: int = 1, transactional_id: str | None = None,
                   corr: int = 1) -> ProduceAnswer:
    """Send one Produce and read its answer. Raises ConnectionError if the broker closes instead."""
    sock.sendall(frame(produce_request(entries, version=version, acks=acks,
                                       transactional_id=transactional_id, corr=corr)))
    return parse_produce(recv_frame(sock), version, corr)


def produce_one(sock, topic: str, records: bytes, *, version: int = 7, corr: int = 1,
                transactional_id: str | None = None) -> tuple[int, str | None, list]:
    """One batch to partition 0, acks=1: (error code, error_message (v8+), record errors (v8+))."""
    ans = produce_answer(sock, [(topic, [(0, records)])], version=version, corr=corr,
                         transactional_id=transactional_id)
    assert len(ans.entries) == 1, ans
    _, p, err, _, rec_errs, msg = ans.entries[0]
    assert p == 0
    return err, msg, rec_errs


def fetch_raw_batches(bootstrap: str, topic: str, partition: int = 0, offset: int = 0,
                      max_bytes: int = 4 << 20, timeout: float = 30.0) -> list[bytes]:
    """The complete stored record batches of one partition from `offset`, each as its raw bytes."""
    with KafkaConn.to(bootstrap, timeout) as conn:
        return fetch_raw(conn, topic, partition, offset, max_bytes)


def same_batch_content(stored: bytes, sent: bytes) -> bool:
    """The stored batch carries what was sent: the same attributes, last offset delta, base timestamp,
    producer id/epoch, base sequence, count and record bytes. Base offset, partition leader epoch, CRC
    and max timestamp are the broker's to set (Kafka rewrites the max timestamp of a compressed batch
    from its records)."""
    keep = [(16, 17), (21, 35), (43, 61)]  # magic; attributes..base timestamp; producer id..count
    return len(stored) == len(sent) and all(stored[a:b] == sent[a:b] for a, b in keep) and stored[61:] == sent[61:]
