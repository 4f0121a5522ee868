#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (fuzz/README.md):

  fuzz/corpus/request_decode/   request frames (no size prefix) of every API in
                                protocol/schema, at its lowest, highest and
                                flexible-boundary versions, every field filled;
                                plus a few hostile ones
  fuzz/corpus/frame_reader/     one control byte (frame_reader_fuzzer.cc) + the
                                reads of a connection: request frames in reads of
                                every size, bad and lying sizes, a 1.5 MiB frame
  fuzz/corpus/record_batch/     one control byte (record_batch_fuzzer.cc) + a
                                Produce partition's records: valid batches of
                                every codec, hostile records, garbage and
                                size-lying compressed payloads, small bombs

Deterministic. Standard library only: the codecs' frame formats are written
by hand (gzip uses zlib), which also gives seeds whose compressed payload is
transparent to the fuzzer (zstd raw blocks, lz4 uncompressed blocks, snappy
literals). When python-snappy, lz4 and zstandard can be imported (run it with
compat-tests/.venv/bin/python), it adds batches compressed by those libraries
(files named *-lib-*); the committed corpus was written that way.

Usage: fuzz/make_seeds.py [OUT_DIR]   (default: fuzz/corpus next to this script)
The script owns OUT_DIR/request_decode, OUT_DIR/frame_reader and
OUT_DIR/record_batch: it empties and rewrites them.
"""
import gzip
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "protocol", "codegen"))
import generate  # noqa: E402  (the protocol generator's schema parser)
sys.path.insert(0, os.path.join(ROOT, "compat-tests"))
from harness.batches import xxh32  # noqa: E402  (standard library only, like kwire)
from harness.kwire import crc32c, uvarint  # noqa: E402

MAX_SEED = 64 * 1024

# --------------------------------------------------------------------------- primitives


def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def u32(v): return struct.pack(">I", v)
def i64(v): return struct.pack(">q", v)
def le32(v): return struct.pack("<I", v)
def le64(v): return struct.pack("<Q", v)


def varint(v):  # zig-zag, 32-bit
    return uvarint(((v << 1) ^ (v >> 31)) & 0xFFFFFFFF)


def varlong(v):  # zig-zag, 64-bit
    return uvarint(((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)


def gzip_compress(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def snappy_raw(data, claimed_length=None):
    """A raw snappy block: runs of a byte become one literal and offset-1 copies,
    the rest literals (a valid, simple encoder)."""
    out = bytearray(uvarint(len(data) if claimed_length is None else claimed_length))

    def literal(chunk):
        for at in range(0, len(chunk), 65536):
            piece = chunk[at:at + 65536]
            n = len(piece) - 1
            if n < 60:
                out.append(n << 2)
            elif n < 256:
                out.extend((60 << 2, n))
            else:
                out.append(61 << 2)
                out.extend(struct.pack("<H", n))
            out.extend(piece)

    i, lit_start = 0, 0
    while i < len(data):
        j = i
        while j < len(data) and data[j] == data[i]:
            j += 1
        if j - i >= 8:
            literal(data[lit_start:i + 1])
            left = j - i - 1
            while left:
                n = min(64, left)
                out.append(((n - 1) << 2) | 2)
                out.extend(struct.pack("<H", 1))
                left -= n
            lit_start = j
        i = j
    literal(data[lit_start:])
    return bytes(out)


SNAPPY_JAVA_MAGIC = b"\x82SNAPPY\x00"


def snappy_java(blocks):
    """snappy-java (xerial) framing around raw snappy blocks, as Kafka's Java client writes it."""
    return SNAPPY_JAVA_MAGIC + i32(1) + i32(1) + b"".join(i32(len(b)) + b for b in blocks)


def snappy_java_compress(data, block=32 * 1024):
    return snappy_java([snappy_raw(data[i:i + block]) for i in range(0, max(len(data), 1), block)])


def lz4_rle_block(byte, n):
    """An LZ4 block of n (>= 13) copies of `byte`: one literal, one offset-1
    match, the five literals the format wants at the end."""
    match = n - 6
    out = bytearray()
    ml = match - 4
    out.append((1 << 4) | min(ml, 15))
    out.append(byte)
    out.extend(struct.pack("<H", 1))
    if ml >= 15:
        ml -= 15
        while ml >= 255:
            out.append(255)
            ml -= 255
        out.append(ml)
    out.append(5 << 4)
    out.extend(bytes([byte]) * 5)
    return bytes(out)


def lz4_frame(blocks, content_size=None, block_checksum=False, content_checksum=None, bd=0x70):
    """An LZ4 frame. blocks: list of (data, compressed) with data the block's bytes
    as stored; compressed False marks an uncompressed block. content_checksum: the
    original bytes to checksum, or None."""
    flg = 0x40 | 0x20  # version 01, independent blocks
    if block_checksum:
        flg |= 0x10
    if content_size is not None:
        flg |= 0x08
    if content_checksum is not None:
        flg |= 0x04
    desc = bytes([flg, bd]) + (le64(content_size) if content_size is not None else b"")
    out = bytearray(le32(0x184D2204) + desc + bytes([(xxh32(desc) >> 8) & 0xFF]))
    for data, compressed in blocks:
        out += le32(len(data) | (0 if compressed else 0x80000000)) + data
        if block_checksum:
            out += le32(xxh32(data))
    out += le32(0)
    if content_checksum is not None:
        out += le32(xxh32(content_checksum))
    return bytes(out)


def lz4_compress(data, **kw):
    """Uncompressed LZ4 blocks (at most 4 MiB each) in a frame."""
    return lz4_frame([(data[i:i + (4 << 20)], False) for i in range(0, len(data), 4 << 20)] or [(b"", False)], **kw)


def zstd_frame(blocks, content_size=None, single_segment=False, window_log=17):
    """A zstd frame of raw/RLE blocks. blocks: list of ("raw", bytes) or ("rle", byte, n)."""
    fcs_flag, fcs = 0, b""
    if content_size is not None:
        if single_segment and content_size < 256:
            fcs_flag, fcs = 0, bytes([content_size])
        elif 256 <= content_size < 65536 + 256:
            fcs_flag, fcs = 1, struct.pack("<H", content_size - 256)
        elif content_size < (1 << 32):
            fcs_flag, fcs = 2, struct.pack("<I", content_size)
        else:
            fcs_flag, fcs = 3, le64(content_size)
    fhd = (fcs_flag << 6) | (0x20 if single_segment else 0)
    out = bytearray(le32(0xFD2FB528) + bytes([fhd]))
    if not single_segment:
        out.append((window_log - 10) << 3)
    out += fcs
    for k, b in enumerate(blocks):
        last = 1 if k == len(blocks) - 1 else 0
        if b[0] == "raw":
            out += struct.pack("<I", (len(b[1]) << 3) | last)[:3] + b[1]
        else:
            out += struct.pack("<I", (b[2] << 3) | (1 << 1) | last)[:3] + bytes([b[1]])
    return bytes(out)


def zstd_compress(data, **kw):
    """Raw zstd blocks of at most 128 KiB, with the content size."""
    blocks = [("raw", data[i:i + (128 << 10)]) for i in range(0, len(data), 128 << 10)] or [("raw", b"")]
    kw.setdefault("content_size", len(data))
    return zstd_frame(blocks, **kw)


CODECS = {1: ("gzip", gzip_compress), 2: ("snappy", snappy_java_compress), 3: ("lz4", lz4_compress),
          4: ("zstd", zstd_compress)}

# --------------------------------------------------------------------------- records and batches


def record_body(offset_delta, key=b"k", value=b"v", headers=(), ts_delta=0, attrs=0):
    def blob(b):
        return varint(-1) if b is None else varint(len(b)) + b
    out = bytes([attrs]) + varlong(ts_delta) + varint(offset_delta) + blob(key) + blob(value)
    out += varint(len(headers)) + b"".join(varint(len(k)) + k + blob(v) for k, v in headers)
    return out


def record(offset_delta, **kw):
    body = record_body(offset_delta, **kw)
    return varint(len(body)) + body


def raw_record(body):
    return varint(len(body)) + body


def simple_records(n, value_size=8, headers=()):
    return b"".join(record(i, key=b"key-%d" % i, value=bytes((i + j) & 0xFF for j in range(value_size)),
                           headers=headers, ts_delta=i) for i in range(n))


def big_record_prefix(value_len):
    """The bytes of a one-record body up to its value (null key, value_len bytes of
    value, then one byte for the header count follows the value)."""
    body_len = len(b"\x00\x00\x00" + varint(-1) + varint(value_len)) + value_len + 1
    return varint(body_len) + b"\x00\x00\x00" + varint(-1) + varint(value_len)


BASE_TS = 1_700_000_000_000


def batch(payload, count, compression=0, compress=True, base_offset=0, last_offset_delta=None,
          producer_id=-1, producer_epoch=-1, base_sequence=-1, attrs_extra=0, magic=2, crc=None,
          batch_length_delta=0):
    """A record batch v2 around `payload` (the records; compressed here when
    compression != 0 and compress is True)."""
    if compression and compress:
        payload = CODECS[compression][1](payload)
    lod = count - 1 if last_offset_delta is None else last_offset_delta
    after_crc = (i16(compression | attrs_extra) + i32(lod) + i64(BASE_TS) + i64(BASE_TS + max(lod, 0)) +
                 i64(producer_id) + i16(producer_epoch) + i32(base_sequence) + i32(count) + payload)
    length = 4 + 1 + 4 + len(after_crc) + batch_length_delta
    return (i64(base_offset) + i32(length) + i32(-1) + bytes([magic & 0xFF]) +
            u32(crc32c(after_crc) if crc is None else crc) + after_crc)

# --------------------------------------------------------------------------- record_batch corpus

FIXUP, NULL, SMALL_BOUND = 0x80, 0x40, 0x20


def control(version=9, fixup=True, small_bound=False):
    return bytes([(FIXUP if fixup else 0) | (SMALL_BOUND if small_bound else 0) | (version - 3)])


def record_batch_seeds():
    seeds = {}

    def put(name, b, version=9, fixup=True):
        # Bombs and the larger valid batches are also checked with the small bound.
        small = name.startswith("bomb-") or name.endswith("-40")
        data = control(version, fixup, small) + b
        assert len(data) <= MAX_SEED, (name, len(data))
        assert name not in seeds, name
        seeds[name] = data

    # Valid uncompressed batches.
    put("valid-none-1", batch(record(0), 1))
    put("valid-none-3-headers", batch(simple_records(3, headers=((b"h1", b"x"), (b"h2", None))), 3))
    put("valid-none-null-key-value", batch(record(0, key=None, value=None) + record(1, key=b"", value=b""), 2))
    put("valid-none-50", batch(simple_records(50, value_size=20), 50))
    put("valid-none-300-byte-value", batch(record(0, value=b"x" * 300), 1))
    put("valid-none-idempotent", batch(simple_records(2), 2, producer_id=1000, producer_epoch=0, base_sequence=0))
    put("valid-none-transactional", batch(simple_records(2), 2, producer_id=1000, producer_epoch=3,
                                          base_sequence=7, attrs_extra=0x10))
    put("valid-none-log-append-time", batch(simple_records(2), 2, attrs_extra=0x08))
    put("valid-none-v3-raw", batch(simple_records(3), 3), version=3, fixup=False)
    put("valid-none-v9-raw", batch(simple_records(3), 3), fixup=False)
    seeds["null-records"] = bytes([NULL | 6])
    put("control-batch", batch(record(0, key=b"\x00\x00\x00\x00", value=b"\x00\x00\x00\x00\x00\x00"), 1,
                               producer_id=5, producer_epoch=0, base_sequence=0, attrs_extra=0x30))
    put("empty", b"")
    put("header-only", batch(b"", 0, last_offset_delta=-1))

    # Valid batches of every codec (hand-written frames).
    recs3 = simple_records(3, headers=((b"h", b"v"),))
    recs40 = simple_records(40, value_size=100)
    for codec, (cname, _) in CODECS.items():
        put("valid-%s-3" % cname, batch(recs3, 3, codec))
        put("valid-%s-40" % cname, batch(recs40, 40, codec))
        put("valid-%s-3-raw" % cname, batch(recs3, 3, codec), fixup=False)
    put("valid-zstd-3-produce-v6", batch(recs3, 3, 4), version=6)  # zstd below Produce v7
    put("valid-zstd-3-produce-v7", batch(recs3, 3, 4), version=7)
    put("valid-snappy-raw-block", batch(snappy_raw(recs3), 3, 2, compress=False))
    put("valid-snappy-java-2-blocks", batch(snappy_java([snappy_raw(recs40[:2000]), snappy_raw(recs40[2000:])]),
                                            40, 2, compress=False))
    put("valid-lz4-checksums-content-size", batch(lz4_compress(recs40, content_size=len(recs40), block_checksum=True,
                                                               content_checksum=recs40), 40, 3, compress=False))
    put("valid-lz4-compressed-block", batch(lz4_frame([(big_record_prefix(64), False), (lz4_rle_block(0x61, 64), True),
                                                       (varint(0), False)]), 1, 3, compress=False))
    put("valid-zstd-single-segment", batch(zstd_compress(recs3, single_segment=True), 3, 4, compress=False))
    put("valid-zstd-no-content-size", batch(zstd_frame([("raw", recs3)]), 3, 4, compress=False))
    put("valid-zstd-rle-block", batch(zstd_frame([("raw", recs3[:10]), ("rle", recs3[10], 1), ("raw", recs3[11:])]),
                                      3, 4, compress=False))
    put("valid-gzip-2-members", batch(gzip_compress(recs3[:20]) + gzip_compress(recs3[20:]), 3, 1, compress=False))

    # Hostile records, each in an otherwise consistent batch (valid CRC), uncompressed and in zstd.
    hostile = {
        "key-length-1000-in-6-byte-record": raw_record(b"\x00\x00\x00" + varint(1000) + b"\x00"),
        "key-length-minus-7": raw_record(b"\x00\x00\x00" + varint(-7) + varint(1) + b"v" + varint(0)),
        "value-length-2p30": raw_record(b"\x00\x00\x00" + varint(-1) + varint(1 << 30) + b"vvvv" + varint(0)),
        "header-count-int32-max": raw_record(b"\x00\x00\x00" + varint(-1) + varint(1) + b"v" + varint(0x7FFFFFFF)),
        "header-count-minus-3": raw_record(b"\x00\x00\x00" + varint(-1) + varint(1) + b"v" + varint(-3)),
        "header-key-length-10-byte-varint": raw_record(b"\x00\x00\x00" + varint(-1) + varint(1) + b"v" + varint(1) +
                                                       b"\x82\x80\x80\x80\x80\x80\x80\x80\x80\x00" + b"hk" +
                                                       varint(0)),
        "header-key-length-10-byte-varint-huge": raw_record(b"\x00\x00\x00" + varint(-1) + varint(1) + b"v" +
                                                            varint(1) + b"\xfe" + b"\xff" * 8 + b"\x01" + b"hk" +
                                                            varint(0)),
        "record-5-trailing-bytes": raw_record(record_body(0) + b"\x01\x02\x03\x04\x05"),
        "record-length-negative": varint(-5) + record_body(0),
        "record-length-zero": varint(0) + record_body(0),
        "record-length-past-batch": varint(200) + record_body(0),
        "record-length-10-byte-varint": b"\xff" * 9 + b"\x01" + record_body(0),
        "timestamp-delta-10-byte-varlong": raw_record(b"\x00" + b"\xff" * 9 + b"\x01" + varint(0) + varint(-1) +
                                                      varint(0) + varint(0)),
        "offset-delta-wrong": record(5),
        "header-value-length-minus-9": raw_record(b"\x00\x00\x00" + varint(-1) + varint(0) + varint(1) + varint(1) +
                                                  b"h" + varint(-9)),
        "header-key-null": raw_record(b"\x00\x00\x00" + varint(-1) + varint(0) + varint(1) + varint(-1) + varint(0)),
        "value-truncated": raw_record(b"\x00\x00\x00" + varint(-1) + varint(10) + b"abc"),
    }
    for name, recs in hostile.items():
        put("hostile-none-" + name, batch(recs, 1))
        put("hostile-zstd-" + name, batch(recs, 1, 4))
    put("hostile-none-3-records-count-7", batch(simple_records(3), 7))
    put("hostile-gzip-3-records-count-7", batch(simple_records(3), 7, 1))  # the brief's case
    put("hostile-gzip-3-records-count-2", batch(simple_records(3), 2, 1))
    put("hostile-zstd-count-int32-max", batch(simple_records(3), 0x7FFFFFFF, 4))
    put("hostile-zstd-count-negative", batch(simple_records(3), -1, 4, last_offset_delta=-2))
    put("hostile-lz4-trailing-garbage-after-records", batch(simple_records(3) + b"\x00\x01\x02\x03\x04", 3, 3))

    # Garbage compressed payloads.
    rnd = random.Random(14)
    for codec, (cname, comp) in CODECS.items():
        put("garbage-%s-random" % cname, batch(bytes(rnd.randrange(256) for _ in range(300)), 3, codec, compress=False))
        good = comp(recs40)
        put("garbage-%s-truncated" % cname, batch(good[:len(good) // 2], 40, codec, compress=False))
        flipped = bytearray(good)
        for k in range(len(flipped) // 3, len(flipped), max(1, len(flipped) // 7)):
            flipped[k] ^= 0x5A
        put("garbage-%s-flipped" % cname, batch(bytes(flipped), 40, codec, compress=False))
        put("garbage-%s-empty" % cname, batch(b"", 1, codec, compress=False))
    put("garbage-snappy-java-magic-only", batch(SNAPPY_JAVA_MAGIC, 1, 2, compress=False))
    put("garbage-snappy-java-header-only", batch(SNAPPY_JAVA_MAGIC + i32(1) + i32(1), 1, 2, compress=False))
    put("garbage-snappy-java-negative-block", batch(snappy_java([]) + i32(-5) + b"abc", 1, 2, compress=False))
    put("garbage-snappy-raw-bad-copy-offset", batch(uvarint(20) + bytes([(19 << 2) | 2]) + struct.pack("<H", 9),
                                                   1, 2, compress=False))
    put("garbage-lz4-bad-header-checksum", batch(lz4_compress(recs3)[:6] + b"\x00" + lz4_compress(recs3)[7:], 3, 3,
                                                 compress=False))
    put("garbage-lz4-legacy-frame", batch(le32(0x184C2102) + le32(len(recs3)) + recs3, 3, 3, compress=False))
    put("garbage-zstd-skippable-frame", batch(le32(0x184D2A50) + le32(4) + b"skip" + zstd_compress(recs3), 3, 4,
                                              compress=False))
    put("garbage-zstd-reserved-block-type", batch(zstd_frame([("raw", recs3)])[:-len(recs3) - 3] +
                                                  struct.pack("<I", (len(recs3) << 3) | 6 | 1)[:3] + recs3,
                                                  3, 4, compress=False))
    put("garbage-gzip-bad-trailer-crc", batch(gzip_compress(recs3)[:-8] + b"\x00" * 8, 3, 1, compress=False))
    put("garbage-unknown-codec-5", batch(recs3, 3, 5, compress=False))
    put("garbage-unknown-codec-7", batch(recs3, 3, 7, compress=False))

    # Size liars: the payload claims far more than it holds.
    put("liar-zstd-content-size-2p40", batch(zstd_frame([("raw", recs3)], content_size=1 << 40), 3, 4, compress=False))
    put("liar-zstd-single-segment-2p40", batch(zstd_frame([("raw", recs3)], content_size=1 << 40,
                                                          single_segment=True), 3, 4, compress=False))
    put("liar-zstd-window-2p41", batch(zstd_frame([("raw", recs3)], window_log=41), 3, 4, compress=False))
    put("liar-lz4-content-size-2p40", batch(lz4_compress(recs3, content_size=1 << 40), 3, 3, compress=False))
    put("liar-lz4-block-size-2p31-1", batch(le32(0x184D2204) + lz4_compress(recs3)[4:7] + le32(0x7FFFFFFF) + recs3,
                                            3, 3, compress=False))
    put("liar-snappy-java-block-2p32-1", batch(snappy_java([]) + u32(0xFFFFFFFF) + snappy_raw(recs3), 3, 2,
                                               compress=False))
    put("liar-snappy-java-block-2p31-1", batch(snappy_java([]) + u32(0x7FFFFFFF) + snappy_raw(recs3), 3, 2,
                                               compress=False))
    put("liar-snappy-java-inner-1gib", batch(snappy_java([snappy_raw(recs3, claimed_length=1 << 30)]), 3, 2,
                                             compress=False))
    put("liar-snappy-raw-1gib", batch(snappy_raw(recs3, claimed_length=1 << 30), 3, 2, compress=False))
    put("liar-snappy-raw-4gib", batch(snappy_raw(recs3, claimed_length=(1 << 32) - 1), 3, 2, compress=False))
    liar_gzip = bytearray(gzip_compress(recs3))
    liar_gzip[-4:] = b"\xff\xff\xff\xff"  # ISIZE: 4 GiB - 1 (the CRC then fails too)
    put("liar-gzip-isize-4gib", batch(bytes(liar_gzip), 3, 1, compress=False))

    # Small bombs: a few KiB that decompress to a lot (a record with a big value
    # of zeros, so the structure is valid as far as it goes).
    zstd_value = 256 << 20
    blocks = [("raw", big_record_prefix(zstd_value))] + [("rle", 0, 128 << 10)] * (zstd_value >> 17) + \
        [("raw", varint(0))]
    put("bomb-zstd-256mib-record", batch(zstd_frame(blocks, content_size=None), 1, 4, compress=False))
    put("bomb-zstd-1gib-zeros", batch(zstd_frame([("rle", 0, 128 << 10)] * 8192), 1, 4, compress=False))
    lz4_value = 8 << 20
    put("bomb-lz4-8mib-record", batch(lz4_frame([(big_record_prefix(lz4_value), False)] +
                                                [(lz4_rle_block(0, 4 << 20), True)] * 2 + [(varint(0), False)]),
                                      1, 3, compress=False))
    put("bomb-gzip-32mib-record", batch(big_record_prefix(32 << 20) + bytes(32 << 20) + varint(0), 1, 1))
    snappy_value = 1 << 20
    put("bomb-snappy-java-1mib-record", batch(big_record_prefix(snappy_value) + bytes(snappy_value) + varint(0), 1, 2))
    put("bomb-snappy-raw-1mib-record", batch(snappy_raw(big_record_prefix(snappy_value) + bytes(snappy_value) +
                                                        varint(0)), 1, 2, compress=False))
    put("bomb-gzip-zeros-many-members", batch(gzip_compress(bytes(1 << 20)) * 8, 1, 1, compress=False))

    # Batches compressed by the real libraries, when they can be imported.
    for name, data in library_payloads(recs3, recs40).items():
        codec, count = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[name.split("-")[0]], \
            3 if name.endswith("-3") else 40
        put("valid-%s" % name.replace("-", "-lib-", 1), batch(data, count, codec, compress=False))
    return seeds


def library_payloads(recs3, recs40):
    out = {}
    try:
        import lz4.frame as lz4f
        import snappy
        import zstandard
    except ImportError as e:
        print("make_seeds.py: %s: skipping the library-compressed seeds (run with compat-tests/.venv/bin/python)"
              % e, file=sys.stderr)
        return out
    for recs, n in ((recs3, 3), (recs40, 40)):
        out["snappy-raw-%d" % n] = snappy.compress(recs)
        out["snappy-java-%d" % n] = snappy_java([snappy.compress(recs)])
        out["lz4-%d" % n] = lz4f.compress(recs, content_checksum=True, block_linked=False, store_size=True)
        out["lz4-linked-%d" % n] = lz4f.compress(recs, block_linked=True, block_checksum=True)
        out["zstd-%d" % n] = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(recs)
        out["zstd-level19-%d" % n] = zstandard.ZstdCompressor(level=19).compress(recs)
    return out

# --------------------------------------------------------------------------- request_decode corpus


class Encoder:
    """Encodes a message of a schema at a version with every field filled."""

    def __init__(self, msg, nulls=False, records=b""):
        self.msg = msg
        self.structs = generate.Gen(msg).struct_defs
        self.nulls = nulls
        self.records = records

    def flex(self, f, v):
        return self.msg.flexible.contains(v) and (f.flexible is None or f.flexible.contains(v))

    def fields(self, fields, v):
        out, tagged = bytearray(), []
        for f in fields:
            if not f.versions.contains(v):
                continue
            if f.tagged.contains(v):
                tagged.append(f)
            else:
                out += self.field(f, v)
        if self.msg.flexible.contains(v):
            tagged.sort(key=lambda f: f.tag)
            out += uvarint(len(tagged))
            for f in tagged:
                data = self.field(f, v)
                out += uvarint(f.tag) + uvarint(len(data)) + data
        return bytes(out)

    def null(self, f, v):
        fl = self.flex(f, v)
        if f.is_array:
            return uvarint(0) if fl else i32(-1)
        if f.base == "string":
            return uvarint(0) if fl else i16(-1)
        return uvarint(0) if fl else i32(-1)

    def field(self, f, v):
        if self.nulls and f.nullable.contains(v):
            return self.null(f, v)
        fl = self.flex(f, v)
        if f.is_array:
            return (uvarint(2) if fl else i32(1)) + self.value(f, v, f.base)
        return self.value(f, v, f.base)

    def value(self, f, v, base):
        fl = self.flex(f, v)
        if base in ("int8", "int16", "int32", "int64", "uint16", "uint32"):
            fmt = {"int8": ">b", "int16": ">h", "int32": ">i", "int64": ">q", "uint16": ">H", "uint32": ">I"}[base]
            return struct.pack(fmt, 1)
        if base == "float64":
            return struct.pack(">d", 1.5)
        if base == "bool":
            return b"\x01"
        if base == "uuid":
            return bytes(range(1, 17))
        if base == "string":
            s = f.cpp.rstrip("_").replace("_", "-").encode()[:12]
            return (uvarint(len(s) + 1) if fl else i16(len(s))) + s
        if base in ("bytes", "records"):
            b = self.records if base == "records" else b"\x00\x01\x00\x00"
            return (uvarint(len(b) + 1) if fl else i32(len(b))) + b
        return self.fields(self.structs[base], v)


def request_header(key, version, flexible, correlation_id=7, client_id=b"fuzz-seed"):
    h = i16(key) + i16(version) + i32(correlation_id) + i16(len(client_id)) + client_id
    return h + (b"\x00" if flexible else b"")


def request_seeds():
    seeds = {}
    msgs = []
    for name in sorted(os.listdir(os.path.join(ROOT, "protocol", "schema"))):
        if name.endswith(".schema"):
            m = generate.parse_schema(os.path.join(ROOT, "protocol", "schema", name))
            if m.kind == "request":
                msgs.append(m)
    recs = simple_records(2, headers=((b"h", b"v"),))
    plain_batch = batch(recs, 2)
    for m in sorted(msgs, key=lambda m: m.api_key):
        lo, hi, ff = m.versions.lo, m.versions.hi, m.first_flexible
        versions = sorted({v for v in (lo, hi, ff - 1, ff) if lo <= v <= hi})
        api = m.name[:-len("Request")] if m.name.endswith("Request") else m.name
        for v in versions:
            flexible = m.flexible.contains(v)
            for nulls in (False, True):
                body = Encoder(m, nulls=nulls, records=plain_batch).fields(m.fields, v)
                if nulls and body == Encoder(m, records=plain_batch).fields(m.fields, v):
                    continue
                name = "%02d-%s-v%d%s" % (m.api_key, generate.snake(api).rstrip("_").replace("_", "-"), v,
                                          "-nulls" if nulls else "")
                seeds[name] = request_header(m.api_key, v, flexible) + body
    produce = next(m for m in msgs if m.api_key == 0)
    for codec, cname in ((1, "gzip"), (4, "zstd"), (2, "snappy"), (3, "lz4")):
        for v in (7, 9):
            b = batch(recs, 2, codec)
            seeds["00-produce-v%d-%s" % (v, cname)] = (request_header(0, v, v >= 9) +
                                                      Encoder(produce, records=b).fields(produce.fields, v))
    # A few hostile frames (from compat-tests/test_bad_input.py's table).
    seeds["03-metadata-v1-topics-minus-5"] = request_header(3, 1, False) + i32(-5)
    seeds["03-metadata-v0-topics-null"] = request_header(3, 0, False) + i32(-1)
    seeds["03-metadata-v1-topics-int32-max"] = request_header(3, 1, False) + i32(0x7FFFFFFF) + i16(1) + b"t"
    seeds["18-api-versions-v0-client-id-minus-2"] = i16(18) + i16(0) + i32(1) + i16(-2)
    seeds["18-api-versions-v3-trailing"] = request_header(18, 3, True) + b"\x02a\x021\x00" + b"trailing"
    seeds["19-create-topics-v5-compact-count-huge"] = request_header(19, 5, True) + b"\xff\xff\xff\xff\x0f"
    seeds["01-fetch-v12-garbage"] = request_header(1, 12, True) + b"\x02\x01\x00\x00\x00"
    seeds["short-header"] = i16(3) + i16(1) + i16(0)
    for name, data in seeds.items():
        assert len(data) <= MAX_SEED, name
    return seeds

# --------------------------------------------------------------------------- frame_reader corpus

MAX_FRAME = {16: 0, 1000: 1, 70000: 2, 3 << 20: 3, 104857600: 4}  # control byte per socket.request.max.bytes


def fr_chunks(data, size=240):
    """data as reads of at most `size` (<= 240) bytes each."""
    return b"".join(bytes([len(data[i:i + size]) - 1]) + data[i:i + size] for i in range(0, len(data), size))


def fr_filler(units, byte=0x41):
    """units * 16 KiB copies of byte, as reads of up to 256 KiB."""
    out = b""
    while units:
        n = min(units, 16)
        out += bytes([0xEF + n, byte])
        units -= n
    return out


def frame_reader_seeds(requests):
    seeds = {}
    frames = [i32(len(r)) + r for r in requests]
    three = b"".join(frames[:3])
    big = MAX_FRAME[104857600]
    seeds["three-frames-one-read"] = bytes([big]) + fr_chunks(three)
    seeds["three-frames-1-byte-reads"] = bytes([big]) + fr_chunks(three, 1)
    seeds["three-frames-3-byte-reads"] = bytes([big]) + fr_chunks(three, 3)
    seeds["three-frames-7-byte-reads"] = bytes([big]) + fr_chunks(three, 7)
    seeds["frames-of-every-api"] = bytes([big]) + fr_chunks(b"".join(frames))
    seeds["size-0"] = bytes([big]) + fr_chunks(i32(0) + frames[0])
    seeds["size-exactly-max-1000"] = bytes([MAX_FRAME[1000]]) + fr_chunks(i32(1000) + bytes(range(256)) * 3 +
                                                                         bytes(232) + frames[0])
    seeds["size-max-plus-1"] = bytes([MAX_FRAME[1000]]) + fr_chunks(i32(1001) + bytes(8))
    seeds["size-minus-1"] = bytes([big]) + fr_chunks(frames[0] + i32(-1) + bytes(8))
    seeds["size-int32-min"] = bytes([big]) + fr_chunks(i32(-0x80000000))
    seeds["size-over-100mib"] = bytes([big]) + fr_chunks(i32(104857601) + bytes(4))
    seeds["claims-1mib-sends-4"] = bytes([big]) + fr_chunks(i32(1 << 20) + b"abcd")
    seeds["claims-100mib-sends-64kib"] = bytes([big]) + fr_chunks(i32(104857600)) + fr_filler(4)
    seeds["size-in-pieces-then-frame"] = bytes([MAX_FRAME[70000]]) + fr_chunks(i32(5) + b"hello" + i32(3) + b"abc", 2)
    # A 1.5 MiB frame (grows the buffer past 1 MiB), then a small one: the buffer is given back.
    seeds["frame-1.5mib-then-small"] = bytes([MAX_FRAME[3 << 20]]) + fr_chunks(i32(96 * (16 << 10))) + \
        fr_filler(96) + fr_chunks(frames[0])
    seeds["frame-70000-exactly-max"] = bytes([MAX_FRAME[70000]]) + fr_chunks(i32(70000)) + fr_filler(4, 0) + \
        fr_chunks(bytes(70000 - 4 * (16 << 10)))
    seeds["frame-16-bytes-max-16"] = bytes([MAX_FRAME[16]]) + fr_chunks(i32(16) + bytes(range(16)) + i32(17))
    for name, data in seeds.items():
        assert len(data) <= MAX_SEED, name
    return seeds

# --------------------------------------------------------------------------- main


def write_corpus(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for old in os.listdir(directory):
        os.remove(os.path.join(directory, old))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(directory, name), "wb") as fh:
            fh.write(data)
    print("%s: %d files, %d bytes" % (directory, len(seeds), sum(map(len, seeds.values()))))


def main(argv):
    out = argv[1] if len(argv) > 1 else os.path.join(HERE, "corpus")
    requests = request_seeds()
    write_corpus(os.path.join(out, "request_decode"), requests)
    write_corpus(os.path.join(out, "frame_reader"),
                 frame_reader_seeds([requests[k] for k in sorted(requests) if not k.startswith(("short", "18-api-versions-v0-client"))]))
    write_corpus(os.path.join(out, "record_batch"), record_batch_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
