"""Fault-injection helpers: record batches built with a fast CRC-32C, raw Fetch that keeps each
batch's bytes (to check its CRC), a bounded read of a whole partition, segment-file scanning and
damage (Sluice and Kafka both keep a partition as <log.dirs>/<topic>-<partition>/<20-digit base
offset>.log of 12-byte-framed record batches), and a tmpfs mount for full-disk tests.

Layout of one log entry (= one record batch, magic 2), as stored and as fetched:
    0 base offset (8) | 8 length (4) | 12 partition leader epoch (4) | 16 magic (1) | 17 crc (4)
    21 attributes (2) | 23 last offset delta (4) | 27 first timestamp (8) | 35 max timestamp (8)
    43 producer id (8) | 51 producer epoch (2) | 53 base sequence (4) | 57 record count (4) | 61 records
The CRC-32C covers bytes 21 .. end of the entry.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from . import kwire
from .kwire import KafkaConn, i8, i16, i32, i64, string

try:  # pinned in requirements.txt; the pure-Python one is ~100x slower
    from crc32c import crc32c as _crc32c
except ImportError:  # pragma: no cover
    _crc32c = kwire.crc32c

ENTRY_HEADER = 61  # bytes before the first record
KAFKA_STORAGE_ERROR = 56


def crc32c(data: bytes) -> int:
    return _crc32c(data)


def record_batch(values: list[bytes], *, producer_id: int = -1, producer_epoch: int = -1,
                 base_sequence: int = -1, timestamp: int | None = None) -> bytes:
    """kwire.record_batch with a fast CRC: an uncompressed magic-2 batch of keyless records."""
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    recs = b"".join(kwire.record(i, v) for i, v in enumerate(values))
    after_crc = (i16(0) + i32(len(values) - 1) + i64(ts) + i64(ts) + i64(producer_id) + i16(producer_epoch) +
                 i32(base_sequence) + i32(len(values)) + recs)
    body = i32(-1) + i8(2) + struct.pack(">I", crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(body)) + body


class Entry:
    """One framed record batch: where it is, its offsets, whether its CRC matches, its values."""

    def __init__(self, raw: bytes, position: int = -1):
        self.raw, self.position = raw, position
        self.base_offset = struct.unpack(">q", raw[0:8])[0]
        self.magic = raw[16]
        self.crc = struct.unpack(">I", raw[17:21])[0]
        self.attributes = struct.unpack(">h", raw[21:23])[0]
        self.last_offset_delta = struct.unpack(">i", raw[23:27])[0]
        self.record_count = struct.unpack(">i", raw[57:61])[0]

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def crc_ok(self) -> bool:
        return self.magic == 2 and crc32c(self.raw[21:]) == self.crc

    def values(self) -> list[bytes | None]:
        """The records' values (uncompressed batches only)."""
        if self.attributes & 7:
            raise ValueError(f"batch at {self.base_offset} is compressed (attributes {self.attributes})")
        return kwire._decode_records(self.raw[ENTRY_HEADER:], self.record_count)

    def records(self) -> list[tuple[int, bytes | None]]:
        """[(offset, value)] assuming offsets base .. base+count-1 (what our producers write)."""
        return [(self.base_offset + i, v) for i, v in enumerate(self.values())]

    def __repr__(self) -> str:
        return (f"Entry(base={self.base_offset}, last={self.last_offset}, n={self.record_count}, "
                f"pos={self.position}, len={len(self.raw)}, crc_ok={self.crc_ok})")


def split_entries(data: bytes, start_position: int = 0) -> tuple[list[Entry], int]:
    """The complete entries at the front of `data` (a Fetch records blob or a segment file), and
    the number of bytes after them (a partial entry, or anything that does not frame as one)."""
    out: list[Entry] = []
    pos = 0
    while len(data) - pos >= 12:
        length = struct.unpack(">i", data[pos + 8:pos + 12])[0]
        if length < ENTRY_HEADER - 12 or pos + 12 + length > len(data):
            break
        out.append(Entry(data[pos:pos + 12 + length], start_position + pos))
        pos += 12 + length
    return out, len(data) - pos


# ---------------------------------------------------------------------------------------- fetch
def fetch_entries(conn: KafkaConn, topic: str, partition: int, offset: int = 0,
                  max_bytes: int = 4 << 20) -> tuple[int, int, list[Entry]]:
    """Fetch v4 (read_uncommitted, no wait) of one partition from `offset`.
    Returns (error code, high watermark, complete entries with their raw bytes)."""
    body = (i32(-1) + i32(0) + i32(0) + i32(max_bytes) + i8(0) +
            i32(1) + string(topic) + i32(1) + i32(partition) + i64(offset) + i32(max_bytes))
    r = conn.request(1, 4, body, False)
    r.i32()  # throttle
    if r.i32() != 1 or r.string() != topic or r.i32() != 1 or r.i32() != partition:
        raise ValueError("unexpected Fetch answer layout")
    err = r.i16()
    hw = r.i64()
    r.i64()  # last stable offset
    for _ in range(max(r.i32(), 0)):
        r.i64(); r.i64()
    n = r.i32()
    entries, _ = split_entries(r.take(n) if n > 0 else b"")
    return err, hw, entries


def read_partition(conn: KafkaConn, topic: str, partition: int, start: int = 0, *,
                   timeout: float = 60.0, max_fetches: int = 100_000) -> tuple[int, list[Entry]]:
    """Fetch from `start` until the high watermark (bounded in time and count). Returns
    (high watermark, entries in the order served). Entries wholly below the requested offset are
    dropped; fetching goes on at the entry after the last one served, so a broker that skips over
    a gap shows it as a jump in base offsets (the caller checks contiguity)."""
    deadline = time.monotonic() + timeout
    out: list[Entry] = []
    at = start
    hw = -1
    for _ in range(max_fetches):
        assert time.monotonic() < deadline, f"reading {topic}-{partition} took over {timeout}s (at {at}, hw {hw})"
        err, hw, entries = fetch_entries(conn, topic, partition, at)
        if err:
            raise AssertionError(f"Fetch {topic}-{partition} at {at}: {kwire.error_name(err)}")
        entries = [e for e in entries if e.last_offset >= at]
        if not entries:
            assert at >= hw, f"Fetch {topic}-{partition} at {at} returned nothing below the high watermark {hw}"
            return hw, out
        out.extend(entries)
        at = entries[-1].next_offset
        if at >= hw:
            return hw, out
    raise AssertionError(f"reading {topic}-{partition}: more than {max_fetches} fetches")


def check_log(entries: list[Entry], start: int = 0) -> dict[int, bytes | None]:
    """Every entry's CRC is valid and offsets are contiguous from `start` (no gap, no overlap).
    Returns {offset: value}."""
    bad = [e for e in entries if not e.crc_ok]
    assert not bad, f"{len(bad)} batches served with a wrong CRC, first {bad[0]}"
    at = start
    values: dict[int, bytes | None] = {}
    for e in entries:
        assert e.base_offset == at, f"batch at offset {e.base_offset}, expected {at} (gap or overlap): {e}"
        assert e.record_count == e.last_offset_delta + 1, e
        for off, v in e.records():
            values[off] = v
        at = e.next_offset
    return values


def retry_produce(bootstrap: str, topic: str, batches: dict[int, bytes], timeout: float = 60.0,
                  retriable=(kwire.NOT_LEADER_OR_FOLLOWER, kwire.UNKNOWN_TOPIC_OR_PARTITION)) -> dict:
    """Produce (acks=-1) on a new connection, retried while the broker is not listening yet or
    answers a not-yet-leader error for every partition (nothing appended). {partition: PartResult}."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with KafkaConn.to(bootstrap, timeout=30) as c:
                res = kwire.produce(c, topic, batches)
            if not all(r.error in retriable for r in res.values()):
                return res
        except OSError as e:
            res = e
        assert time.monotonic() < deadline, f"produce to {topic} kept failing: {res!r}"
        time.sleep(0.2)


def log_end(bootstrap: str, topic: str, partitions: list[int], timeout: float = 60.0) -> dict[int, int]:
    """ListOffsets latest, retried (bounded) while a restarted broker is not leader yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with KafkaConn.to(bootstrap, timeout=30) as c:
                return kwire.list_offsets(c, topic, partitions)
        except (OSError, ValueError) as e:
            assert time.monotonic() < deadline, f"ListOffsets {topic}: {e!r}"
            time.sleep(0.2)


# ------------------------------------------------------------------------------ segment files
def partition_dir(data_dir: Path, topic: str, partition: int) -> Path:
    return Path(data_dir) / f"{topic}-{partition}"


def segment_files(data_dir: Path, topic: str, partition: int) -> list[Path]:
    """The partition's segment files, oldest first (names are 20-digit base offsets)."""
    d = partition_dir(data_dir, topic, partition)
    segs = sorted(p for p in d.glob("*.log") if len(p.stem) == 20 and p.stem.isdigit())
    assert segs, f"no segment files in {d}"
    return segs


def scan_segment(path: Path) -> tuple[list[Entry], int]:
    """The entries in a segment file, and the number of bytes after the last complete one."""
    return split_entries(Path(path).read_bytes())


def flip_byte(path: Path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        b = f.read(1)
        f.seek(position)
        f.write(bytes([b[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


# ------------------------------------------------------------------------------------- tmpfs
def tmpfs_unavailable() -> str | None:
    """Why a tmpfs cannot be mounted here (None if it can)."""
    if os.geteuid() != 0:
        return "needs root to mount a small tmpfs for the data directory"
    if not shutil.which("mount") or not shutil.which("umount"):
        return "mount/umount not found"
    probe = Path(tempfile.mkdtemp(prefix="compat-tmpfs-probe-"))
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return f"cannot mount a tmpfs: {r.stderr.strip()}"
        subprocess.run(["umount", str(probe)], capture_output=True, timeout=10)
        return None
    finally:
        shutil.rmtree(probe, ignore_errors=True)


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int):
    """Mount a tmpfs of size_mb MB at `path` (created if needed); unmount on exit."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
                   check=True, capture_output=True, timeout=10)
    try:
        yield path
    finally:
        r = subprocess.run(["umount", str(path)], capture_output=True, timeout=10)
        if r.returncode != 0:  # something still holds a file: detach it anyway
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# ------------------------------------------------------------------------ committed offsets
def _group_consumer(bootstrap: str, group: str):
    from confluent_kafka import Consumer
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "log_level": 2})


def _coordinator_retriable() -> set:
    from confluent_kafka import KafkaError
    # What Kafka answers while it creates or loads its offsets topic (after start, after a restart).
    return {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
            KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT, KafkaError._TRANSPORT}


def commit_offsets(bootstrap: str, group: str, topic: str, offsets: dict[int, int], timeout: float = 60.0) -> None:
    """confluent-kafka commit(asynchronous=False) of {partition: offset} for `group` (no membership),
    retried (bounded) while the coordinator is not ready. Raises on any other error."""
    from confluent_kafka import KafkaException, TopicPartition
    c = _group_consumer(bootstrap, group)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                res = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                               asynchronous=False)
                bad = [tp for tp in res if tp.error is not None]
                assert not bad, f"commit errors: {bad}"
                return
            except KafkaException as e:
                if e.args[0].code() not in _coordinator_retriable() or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        c.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: list[int],
                      timeout: float = 60.0) -> dict[int, int]:
    """{partition: committed offset} (-1001 = none) read back with confluent-kafka committed()."""
    from confluent_kafka import KafkaException, TopicPartition
    c = _group_consumer(bootstrap, group)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                res = c.committed([TopicPartition(topic, p) for p in partitions], timeout=15)
                bad = [tp for tp in res if tp.error is not None]
                assert not bad, f"committed() errors: {bad}"
                return {tp.partition: tp.offset for tp in res}
            except KafkaException as e:
                if e.args[0].code() not in _coordinator_retriable() or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        c.close()
