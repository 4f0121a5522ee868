"""Raw Kafka wire helpers for the storage-lifecycle and admin tests (no client library): record batches
with per-record timestamps, Produce of one batch, ListOffsets v0..v9, DeleteRecords v0..v2,
IncrementalAlterConfigs v0..v1, AlterConfigs v0..v2, CreatePartitions v0..v3, DescribeConfigs v1..v4 and a Fetch v5
that reports the partition's error, high watermark and log start offset with every record's
offset and timestamp. Field layouts follow Kafka's JSON message schemas (flexible versions use
compact strings/arrays and tagged fields)."""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

from .kwire import (KafkaConn, Reader, compact_string, connect, crc32c, header_v1, header_v2, i8, i16, i32, i64,
                    parse_bootstrap, roundtrip, string, uvarint, varint)

# Error codes (Kafka's protocol documentation).
NONE = 0
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
RECORD_LIST_TOO_LARGE = 18
UNSUPPORTED_VERSION = 35
INVALID_CONFIG = 40
INVALID_REQUEST = 42
POLICY_VIOLATION = 44

# ListOffsets special timestamps.
LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3  # v7+

# Config resources, operations and sources.
TOPIC = 2
BROKER = 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
DYNAMIC_TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5


# --------------------------------------------------------------------------------- encoding
def _str(s: str | None, flexible: bool) -> bytes:
    return compact_string(s) if flexible else string(s)


def _array_len(n: int, flexible: bool) -> bytes:
    return uvarint(n + 1) if flexible else i32(n)


def _tags(flexible: bool) -> bytes:
    return b"\x00" if flexible else b""


def _read_str(r: Reader, flexible: bool) -> str | None:
    return r.compact_string() if flexible else r.string()


def _read_len(r: Reader, flexible: bool) -> int:
    return r.uvarint() - 1 if flexible else r.i32()


def now_ms() -> int:
    return int(time.time() * 1000)


class Conn(KafkaConn):
    """kwire's raw connection, opened from a bootstrap address."""

    def __init__(self, bootstrap: str, timeout: float = 30.0):
        super().__init__(*parse_bootstrap(bootstrap), timeout=timeout)


_varint = varint  # signed zigzag varint (record fields), as kwire writes it


def _record(offset_delta: int, timestamp_delta: int, value: bytes) -> bytes:
    body = b"\x00" + _varint(timestamp_delta) + _varint(offset_delta) + _varint(-1)  # attrs, deltas, no key
    body += _varint(len(value)) + value + _varint(0)  # value, no headers
    return _varint(len(body)) + body


# ---------------------------------------------------------------------------- record batches
def timed_batch(values: list[bytes], timestamps: list[int]) -> bytes:
    """An uncompressed magic-2 batch (base offset 0, no producer id) whose i-th record carries
    values[i] with CreateTime timestamps[i]. The batch's first timestamp is timestamps[0]; the
    others are deltas from it (negative ones too: records may be out of time order), and the max
    timestamp is the largest."""
    if not values or len(values) != len(timestamps):
        raise ValueError("one timestamp per value, at least one record")
    base = timestamps[0]
    recs = b"".join(_record(i, ts - base, v) for i, (v, ts) in enumerate(zip(values, timestamps)))
    after_crc = (i16(0) + i32(len(values) - 1) + i64(base) + i64(max(timestamps)) + i64(-1) + i16(-1) +
                 i32(-1) + i32(len(values)) + recs)
    body = i32(-1) + i8(2) + struct.pack(">I", crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(body)) + body


def produce_records(conn: Conn, topic: str, records: bytes, partition: int = 0) -> tuple[int, int]:
    """Produce v7 (acks=-1) of `records` (record batch bytes) to one partition: (error, base offset)."""
    body = (string(None) + i16(-1) + i32(30000) + i32(1) + string(topic) + i32(1) + i32(partition) +
            i32(len(records)) + records)
    r = conn.request(0, 7, body, False)
    if r.i32() != 1 or r.string() != topic or r.i32() != 1 or r.i32() != partition:
        raise ValueError("unexpected Produce answer layout")
    return r.i16(), r.i64()


# Answers a new topic may give for a moment after CreateTopics returned (Kafka's leader is not
# set up everywhere yet): LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION.
_NOT_READY = (3, 5, 6)


def produce_batch(conn: Conn, topic: str, values: list[bytes], timestamps: list[int] | None = None,
                  partition: int = 0, ready_timeout: float = 15.0) -> int:
    """Produce one batch (Produce v7, acks=-1) to topic/partition; returns its base offset.
    Retries (bounded) while the partition is not ready yet; raises on any other error."""
    ts = timestamps if timestamps is not None else [now_ms()] * len(values)
    recs = timed_batch(values, ts)
    deadline = time.monotonic() + ready_timeout
    while True:
        err, base = produce_records(conn, topic, recs, partition)
        if err == NONE:
            return base
        if err not in _NOT_READY or time.monotonic() > deadline:
            raise AssertionError(f"Produce to {topic}-{partition}: error {err}")
        time.sleep(0.2)


# ----------------------------------------------------------------------------------- ListOffsets
@dataclass
class OffsetAnswer:
    error: int
    timestamp: int = -1
    offset: int = -1
    leader_epoch: int = -1
    old_style_offsets: list[int] = field(default_factory=list)  # v0 only


def list_offsets(conn: Conn, topic: str, partitions: dict[int, int], version: int = 7,
                 isolation_level: int = 0, max_num_offsets: int = 1) -> dict[int, OffsetAnswer]:
    """ListOffsets (API 2) v0..v9 for {partition: timestamp} of one topic; {partition: answer}."""
    flexible = version >= 6
    body = i32(-1)
    if version >= 2:
        body += i8(isolation_level)
    body += _array_len(1, flexible) + _str(topic, flexible) + _array_len(len(partitions), flexible)
    for p, ts in partitions.items():
        body += i32(p)
        if version >= 4:
            body += i32(-1)  # current leader epoch: unknown
        body += i64(ts)
        if version == 0:
            body += i32(max_num_offsets)
        body += _tags(flexible)
    body += _tags(flexible) + _tags(flexible)  # topic tags, request tags
    r = conn.request(2, version, body, flexible)
    if version >= 2:
        r.i32()  # throttle
    out: dict[int, OffsetAnswer] = {}
    for _ in range(_read_len(r, flexible)):
        name = _read_str(r, flexible)
        if name != topic:
            raise ValueError(f"ListOffsets answer for {name!r}")
        for _ in range(_read_len(r, flexible)):
            p = r.i32()
            a = OffsetAnswer(r.i16())
            if version == 0:
                a.old_style_offsets = [r.i64() for _ in range(r.i32())]
            else:
                a.timestamp, a.offset = r.i64(), r.i64()
            if version >= 4:
                a.leader_epoch = r.i32()
            if flexible:
                r.skip_tags()
            out[p] = a
        if flexible:
            r.skip_tags()
    return out


def offset_at(conn: Conn, topic: str, timestamp: int, partition: int = 0, version: int = 7) -> int:
    """The offset ListOffsets answers for one partition and timestamp (raises on an error)."""
    a = list_offsets(conn, topic, {partition: timestamp}, version)[partition]
    if a.error != NONE:
        raise AssertionError(f"ListOffsets v{version} {topic}-{partition} ts={timestamp}: error {a.error}")
    return a.offset


# --------------------------------------------------------------------------------- DeleteRecords
def delete_records(conn: Conn, offsets: dict[str, dict[int, int]], version: int = 2,
                   timeout_ms: int = 30000) -> dict[tuple[str, int], tuple[int, int]]:
    """DeleteRecords (API 21) v0..v2: {topic: {partition: offset}} ->
    {(topic, partition): (error, low_watermark)}."""
    flexible = version >= 2
    body = _array_len(len(offsets), flexible)
    for topic, parts in offsets.items():
        body += _str(topic, flexible) + _array_len(len(parts), flexible)
        for p, off in parts.items():
            body += i32(p) + i64(off) + _tags(flexible)
        body += _tags(flexible)
    body += i32(timeout_ms) + _tags(flexible)
    r = conn.request(21, version, body, flexible)
    r.i32()  # throttle
    out = {}
    for _ in range(_read_len(r, flexible)):
        topic = _read_str(r, flexible)
        for _ in range(_read_len(r, flexible)):
            p, low, err = r.i32(), r.i64(), r.i16()
            if flexible:
                r.skip_tags()
            out[(topic, p)] = (err, low)
        if flexible:
            r.skip_tags()
    return out


def offset_delete(conn: Conn, group: str, partitions: dict[str, list[int]]) -> tuple[int, dict[tuple[str, int], int]]:
    """OffsetDelete (API 47) v0, to the group's coordinator: (error, {(topic, partition): error})."""
    body = string(group) + i32(len(partitions))
    for topic, parts in partitions.items():
        body += string(topic) + i32(len(parts)) + b"".join(i32(p) for p in parts)
    r = conn.request(47, 0, body, False)
    error = r.i16()
    r.i32()  # throttle
    out = {}
    for _ in range(r.i32()):
        topic = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(topic, p)] = r.i16()
    return error, out


# ------------------------------------------------------------------------------ CreatePartitions
def create_partitions(conn: Conn, counts: dict[str, int], validate_only: bool = False, version: int = 3,
                      timeout_ms: int = 30000) -> dict[str, tuple[int, str | None]]:
    """CreatePartitions (API 37) v0..v3 with no manual assignments: {topic: new total count} ->
    {topic: (error, message)}. Raw, so counts no client would send can be sent."""
    flexible = version >= 2
    body = _array_len(len(counts), flexible)
    for topic, count in counts.items():
        body += _str(topic, flexible) + i32(count) + (uvarint(0) if flexible else i32(-1)) + _tags(flexible)
    body += i32(timeout_ms) + i8(1 if validate_only else 0) + _tags(flexible)
    r = conn.request(37, version, body, flexible)
    r.i32()  # throttle
    out = {}
    for _ in range(_read_len(r, flexible)):
        topic, err, msg = _read_str(r, flexible), r.i16(), _read_str(r, flexible)
        if flexible:
            r.skip_tags()
        out[topic] = (err, msg)
    return out


def create_topics(conn: Conn, topics: list[tuple[str, int, int]], timeout_ms: int = 30000,
                  validate_only: bool = False) -> dict[str, tuple[int, str | None]]:
    """CreateTopics (API 19) v7, no assignments or configs: [(name, partitions, replication factor)]
    -> {name: (error, message)}."""
    body = _array_len(len(topics), True)
    for name, partitions, rf in topics:
        body += _str(name, True) + i32(partitions) + i16(rf) + uvarint(1) + uvarint(1) + _tags(True)
    body += i32(timeout_ms) + i8(1 if validate_only else 0) + _tags(True)
    r = conn.request(19, 7, body, True)
    r.i32()  # throttle
    out = {}
    for _ in range(_read_len(r, True)):
        name = _read_str(r, True)
        r.take(16)  # topic id
        err, msg = r.i16(), _read_str(r, True)
        r.i32(), r.i16()  # partitions, replication factor
        for _ in range(max(0, _read_len(r, True))):  # configs (nullable)
            _read_str(r, True), _read_str(r, True), r.i8(), r.i8(), r.i8()
            r.skip_tags()
        r.skip_tags()
        out[name] = (err, msg)
    return out


def vote(conn: Conn, cluster_id: str | None, candidate: int, epoch: int, last_epoch: int, last_offset: int,
         topic: str = "__cluster_metadata", voter_id: int = -1) -> tuple[int, list[tuple[int, int, int, bool]]]:
    """Vote (API 52) v1, as a candidate of a controller quorum sends it: (error, [(partition error,
    leader id, leader epoch, granted)])."""
    body = _str(cluster_id, True) + i32(voter_id) + _array_len(1, True) + _str(topic, True) + _array_len(1, True)
    body += i32(0) + i32(epoch) + i32(candidate) + bytes(16) + bytes(16) + i32(last_epoch) + i64(last_offset)
    body += _tags(True) + _tags(True) + _tags(True)
    r = conn.request(52, 1, body, True)
    error, answers = r.i16(), []
    for _ in range(_read_len(r, True)):
        _read_str(r, True)
        for _ in range(_read_len(r, True)):
            r.i32()
            answers.append((r.i16(), r.i32(), r.i32(), r.i8() != 0))
            r.skip_tags()
        r.skip_tags()
    return error, answers


# ---------------------------------------------------------------------------------- ElectLeaders
PREFERRED, UNCLEAN = 0, 1


def elect_leaders(conn: Conn, partitions: dict[str, list[int]] | None, election_type: int = PREFERRED,
                  version: int = 2, timeout_ms: int = 30000) -> tuple[int, dict[tuple[str, int], tuple[int, str | None]]]:
    """ElectLeaders (API 43) v0..v2; partitions None asks for every partition. ->
    (top-level error, 0 before v1; {(topic, partition): (error, message)}); a topic answered with
    no partitions appears as (topic, -1)."""
    flexible = version >= 2
    body = i8(election_type) if version >= 1 else b""
    if partitions is None:
        body += uvarint(0) if flexible else i32(-1)
    else:
        body += _array_len(len(partitions), flexible)
        for topic, parts in partitions.items():
            body += _str(topic, flexible) + _array_len(len(parts), flexible)
            body += b"".join(i32(p) for p in parts) + _tags(flexible)
    body += i32(timeout_ms) + _tags(flexible)
    r = conn.request(43, version, body, flexible)
    r.i32()  # throttle
    top = r.i16() if version >= 1 else 0
    out = {}
    for _ in range(_read_len(r, flexible)):
        topic = _read_str(r, flexible)
        count = _read_len(r, flexible)
        if count == 0:
            out[(topic, -1)] = (0, None)
        for _ in range(count):
            p, err, msg = r.i32(), r.i16(), _read_str(r, flexible)
            if flexible:
                r.skip_tags()
            out[(topic, p)] = (err, msg)
        if flexible:
            r.skip_tags()
    return top, out


# ------------------------------------------------------------------- Partition reassignments
def alter_partition_reassignments(conn: Conn, moves: dict[tuple[str, int], list[int] | None],
                                  version: int = 0, timeout_ms: int = 30000,
                                  allow_replication_factor_change: bool = True
                                  ) -> tuple[tuple[int, str | None], dict[tuple[str, int], tuple[int, str | None]]]:
    """AlterPartitionReassignments (API 45) v0..v1: {(topic, partition): target replicas, or None to
    cancel} -> ((top-level error, message), {(topic, partition): (error, message)})."""
    by_topic: dict[str, list[tuple[int, list[int] | None]]] = {}
    for (topic, p), replicas in moves.items():
        by_topic.setdefault(topic, []).append((p, replicas))
    body = i32(timeout_ms) + (i8(1 if allow_replication_factor_change else 0) if version >= 1 else b"")
    body += _array_len(len(by_topic), True)
    for topic, parts in by_topic.items():
        body += _str(topic, True) + _array_len(len(parts), True)
        for p, replicas in parts:
            body += i32(p)
            body += uvarint(0) if replicas is None else _array_len(len(replicas), True) + b"".join(i32(r) for r in replicas)
            body += _tags(True)
        body += _tags(True)
    body += _tags(True)
    r = conn.request(45, version, body, True)
    r.i32()  # throttle
    if version >= 1:
        r.i8()  # AllowReplicationFactorChange, echoed
    top = (r.i16(), _read_str(r, True))
    out = {}
    for _ in range(_read_len(r, True)):
        topic = _read_str(r, True)
        for _ in range(_read_len(r, True)):
            p, err, msg = r.i32(), r.i16(), _read_str(r, True)
            r.skip_tags()
            out[(topic, p)] = (err, msg)
        r.skip_tags()
    return top, out


def list_partition_reassignments(conn: Conn, topics: dict[str, list[int]] | None = None, timeout_ms: int = 30000
                                 ) -> tuple[int, dict[tuple[str, int], tuple[list[int], list[int], list[int]]]]:
    """ListPartitionReassignments (API 46) v0: topics None lists all. -> (error,
    {(topic, partition): (replicas, adding, removing)})."""
    body = i32(timeout_ms)
    if topics is None:
        body += uvarint(0)
    else:
        body += _array_len(len(topics), True)
        for topic, parts in topics.items():
            body += _str(topic, True) + _array_len(len(parts), True) + b"".join(i32(p) for p in parts) + _tags(True)
    body += _tags(True)
    r = conn.request(46, 0, body, True)
    r.i32()  # throttle
    err = r.i16()
    _read_str(r, True)
    out = {}
    for _ in range(_read_len(r, True)):
        topic = _read_str(r, True)
        for _ in range(_read_len(r, True)):
            p = r.i32()
            lists = []
            for _ in range(3):
                lists.append([r.i32() for _ in range(_read_len(r, True))])
            r.skip_tags()
            out[(topic, p)] = tuple(lists)
        r.skip_tags()
    return err, out


# ------------------------------------------------------------------------------- DescribeQuorum
@dataclass
class Quorum:
    error: int
    partition_error: int
    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: dict[int, tuple[int, int, int]]     # id -> (log end offset, last fetch ms, last caught up ms)
    observers: dict[int, tuple[int, int, int]]
    nodes: dict[int, list[tuple[str, str, int]]]  # v2: id -> [(listener, host, port)]


def describe_quorum(conn: Conn, topic: str = "__cluster_metadata", partition: int = 0, version: int = 2) -> Quorum:
    """DescribeQuorum (API 55) v0..v2 for one topic partition."""
    body = _array_len(1, True) + _str(topic, True) + _array_len(1, True) + i32(partition) + _tags(True) + _tags(True)
    body += _tags(True)
    r = conn.request(55, version, body, True)
    error = r.i16()
    if version >= 2:
        _read_str(r, True)
    q = Quorum(error, -1, -1, -1, -1, {}, {}, {})

    def replicas() -> dict[int, tuple[int, int, int]]:
        out = {}
        for _ in range(_read_len(r, True)):
            rid = r.i32()
            if version >= 2:
                r.take(16)  # directory id
            end = r.i64()
            fetch = caught_up = -1
            if version >= 1:
                fetch, caught_up = r.i64(), r.i64()
            r.skip_tags()
            out[rid] = (end, fetch, caught_up)
        return out

    for _ in range(_read_len(r, True)):
        _read_str(r, True)
        for _ in range(_read_len(r, True)):
            r.i32()
            q.partition_error = r.i16()
            if version >= 2:
                _read_str(r, True)
            q.leader_id, q.leader_epoch, q.high_watermark = r.i32(), r.i32(), r.i64()
            q.voters = replicas()
            q.observers = replicas()
            r.skip_tags()
        r.skip_tags()
    if version >= 2:
        for _ in range(_read_len(r, True)):
            node = r.i32()
            listeners = []
            for _ in range(_read_len(r, True)):
                name, host, port = _read_str(r, True), _read_str(r, True), struct.unpack(">H", r.take(2))[0]
                r.skip_tags()
                listeners.append((name, host, port))
            r.skip_tags()
            q.nodes[node] = listeners
    return q


# ------------------------------------------------------------------------------- DescribeLogDirs
@dataclass
class LogDir:
    error: int
    path: str
    partitions: dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> (size, offset lag)
    total_bytes: int
    usable_bytes: int


def describe_log_dirs(conn: Conn, topics: dict[str, list[int]] | None = None, version: int = 4) -> tuple[int, list[LogDir]]:
    """DescribeLogDirs (API 35) v1..v4: topics None asks for every partition. ->
    (top-level error, 0 before v3; the broker's log dirs)."""
    flexible = version >= 2
    if topics is None:
        body = uvarint(0) if flexible else i32(-1)
    else:
        body = _array_len(len(topics), flexible)
        for topic, parts in topics.items():
            body += _str(topic, flexible) + _array_len(len(parts), flexible) + b"".join(i32(p) for p in parts)
            body += _tags(flexible)
    body += _tags(flexible)
    r = conn.request(35, version, body, flexible)
    r.i32()  # throttle
    top = r.i16() if version >= 3 else 0
    dirs = []
    for _ in range(_read_len(r, flexible)):
        err, path = r.i16(), _read_str(r, flexible)
        partitions = {}
        for _ in range(_read_len(r, flexible)):
            name = _read_str(r, flexible)
            for _ in range(_read_len(r, flexible)):
                index, size, lag, _future = r.i32(), r.i64(), r.i64(), r.i8()
                if flexible:
                    r.skip_tags()
                partitions[(name, index)] = (size, lag)
            if flexible:
                r.skip_tags()
        total = usable = -1
        if version >= 4:
            total, usable = r.i64(), r.i64()
        if flexible:
            r.skip_tags()
        dirs.append(LogDir(err, path, partitions, total, usable))
    return top, dirs


# ----------------------------------------------------------------------- Alter / Describe configs
@dataclass
class AlterAnswer:
    error: int
    message: str | None
    resource_type: int
    resource_name: str


def _alter_answers(r: Reader, flexible: bool) -> list[AlterAnswer]:
    r.i32()  # throttle
    out = []
    for _ in range(_read_len(r, flexible)):
        err = r.i16()
        msg = _read_str(r, flexible)
        rtype = r.i8()
        name = _read_str(r, flexible)
        if flexible:
            r.skip_tags()
        out.append(AlterAnswer(err, msg, rtype, name))
    return out


def incremental_alter_configs(conn: Conn, resources: list[tuple[int, str, list[tuple[str, int, str | None]]]],
                              validate_only: bool = False, version: int = 1) -> list[AlterAnswer]:
    """IncrementalAlterConfigs (API 44) v0..v1: [(resource_type, name, [(key, op, value)])]."""
    flexible = version >= 1
    body = _array_len(len(resources), flexible)
    for rtype, name, configs in resources:
        body += i8(rtype) + _str(name, flexible) + _array_len(len(configs), flexible)
        for key, op, value in configs:
            body += _str(key, flexible) + i8(op) + _str(value, flexible) + _tags(flexible)
        body += _tags(flexible)
    body += i8(1 if validate_only else 0) + _tags(flexible)
    return _alter_answers(conn.request(44, version, body, flexible), flexible)


def alter_configs(conn: Conn, resources: list[tuple[int, str, list[tuple[str, str | None]]]],
                  validate_only: bool = False, version: int = 2) -> list[AlterAnswer]:
    """AlterConfigs (API 33) v0..v2: [(resource_type, name, [(key, value)])]; the listed configs
    become the resource's whole set of overrides."""
    flexible = version >= 2
    body = _array_len(len(resources), flexible)
    for rtype, name, configs in resources:
        body += i8(rtype) + _str(name, flexible) + _array_len(len(configs), flexible)
        for key, value in configs:
            body += _str(key, flexible) + _str(value, flexible) + _tags(flexible)
        body += _tags(flexible)
    body += i8(1 if validate_only else 0) + _tags(flexible)
    return _alter_answers(conn.request(33, version, body, flexible), flexible)


@dataclass
class ConfigEntry:
    value: str | None
    read_only: bool
    source: int
    sensitive: bool
    documentation: str | None = None  # v3+, when asked for


def describe_configs(conn: Conn, resource_type: int, name: str, keys: list[str] | None = None,
                     version: int = 4, include_documentation: bool = False) -> tuple[int, dict[str, ConfigEntry]]:
    """DescribeConfigs (API 32) v1..v4 of one resource: (error, {config name: entry})."""
    if not 1 <= version <= 4:
        raise ValueError("describe_configs() speaks v1..v4")
    flexible = version >= 4
    body = _array_len(1, flexible) + i8(resource_type) + _str(name, flexible)
    if keys is None:
        body += uvarint(0) if flexible else i32(-1)
    else:
        body += _array_len(len(keys), flexible) + b"".join(_str(k, flexible) for k in keys)
    body += _tags(flexible) + i8(0)  # include_synonyms
    if version >= 3:
        body += i8(1 if include_documentation else 0)
    body += _tags(flexible)
    r = conn.request(32, version, body, flexible)
    r.i32()  # throttle
    if _read_len(r, flexible) != 1:
        raise ValueError("DescribeConfigs: expected one result")
    err = r.i16()
    _read_str(r, flexible)  # error message
    r.i8()
    _read_str(r, flexible)
    entries = {}
    for _ in range(_read_len(r, flexible)):
        key = _read_str(r, flexible)
        value = _read_str(r, flexible)
        read_only = bool(r.i8())
        source = r.i8()
        sensitive = bool(r.i8())
        for _ in range(max(_read_len(r, flexible), 0)):  # synonyms
            _read_str(r, flexible); _read_str(r, flexible); r.i8()
            if flexible:
                r.skip_tags()
        documentation = None
        if version >= 3:
            r.i8()  # config type
            documentation = _read_str(r, flexible)
        if flexible:
            r.skip_tags()
        entries[key] = ConfigEntry(value, read_only, source, sensitive, documentation)
    return err, entries


# ----------------------------------------------------------------------------------------- Fetch
@dataclass
class FetchedRecord:
    offset: int
    timestamp: int
    value: bytes | None


@dataclass
class FetchAnswer:
    error: int
    high_watermark: int
    log_start_offset: int
    batches: list[tuple[int, int, int]]  # (base offset, last offset, size in bytes with the 12-byte prefix)
    records: list[FetchedRecord]

    @property
    def batch_bases(self) -> list[int]:
        return [b[0] for b in self.batches]


def _svarint(r: Reader) -> int:
    u = r.uvarint()
    return (u >> 1) ^ -(u & 1)


def fetch(conn: Conn, topic: str, offset: int, partition: int = 0, max_bytes: int = 1 << 20) -> FetchAnswer:
    """Fetch v5 (read_uncommitted, no wait) of one partition from `offset`: the partition's
    error, high watermark, log start offset, the base offset and size of every complete batch and
    every record of the uncompressed ones (offset, CreateTime timestamp, value). Like Kafka's, the
    answer may stop at the end of a segment: call again from the next offset."""
    body = (i32(-1) + i32(0) + i32(0) + i32(max_bytes) + i8(0) + i32(1) + string(topic) + i32(1) +
            i32(partition) + i64(offset) + i64(-1) + i32(max_bytes))
    r = conn.request(1, 5, body, False)
    r.i32()  # throttle
    if r.i32() != 1 or r.string() != topic or r.i32() != 1 or r.i32() != partition:
        raise ValueError("unexpected Fetch answer layout")
    err, hw = r.i16(), r.i64()
    r.i64()  # last stable offset
    log_start = r.i64()
    for _ in range(max(r.i32(), 0)):  # aborted transactions
        r.i64(); r.i64()
    size = r.i32()
    data = Reader(r.take(size) if size > 0 else b"")
    batches, recs = [], []
    while len(data.rest()) >= 61:
        base = data.i64()
        blen = data.i32()
        if blen > len(data.rest()):
            break  # partial batch at the end
        b = Reader(data.take(blen))
        b.i32(); b.i8(); b.i32()  # leader epoch, magic, crc
        attrs = b.i16()
        last_delta = b.i32()
        first_ts = b.i64()
        b.i64()  # max timestamp
        b.i64(); b.i16(); b.i32()  # producer id, epoch, base sequence
        count = b.i32()
        batches.append((base, base + last_delta, 12 + blen))
        if attrs & 7 or attrs & 0x20:
            continue  # compressed or control: headers only
        for _ in range(count):
            rec = Reader(b.take(_svarint(b)))
            rec.i8()
            ts_delta, off_delta = _svarint(rec), _svarint(rec)
            klen = _svarint(rec)
            if klen >= 0:
                rec.take(klen)
            vlen = _svarint(rec)
            recs.append(FetchedRecord(base + off_delta, first_ts + ts_delta, None if vlen < 0 else rec.take(vlen)))
    return FetchAnswer(err, hw, log_start, batches, recs)


def wait_for(pred, what: str, timeout: float, interval: float = 0.25):
    """Call pred() until it returns something truthy (returned) or timeout seconds pass (raises)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def read_log(conn: Conn, topic: str, start: int, partition: int = 0, max_fetches: int = 2000) -> FetchAnswer:
    """Every batch and record from `start` up to the high watermark, over as many fetches as it
    takes (bounded). The answer's error is the first fetch's; batches and records are joined; an
    error (or nothing) on a later fetch raises."""
    first = fetch(conn, topic, start, partition)
    if first.error != NONE:
        return first
    out = FetchAnswer(NONE, first.high_watermark, first.log_start_offset, list(first.batches), list(first.records))
    offset = out.batches[-1][1] + 1 if out.batches else start
    for _ in range(max_fetches):
        if offset >= out.high_watermark:
            return out
        a = fetch(conn, topic, offset, partition)
        if a.error != NONE or not a.batches:
            raise AssertionError(f"Fetch {topic}-{partition} at {offset} (high watermark "
                                 f"{out.high_watermark}): error {a.error}, {len(a.batches)} batches")
        out.batches += a.batches
        out.records += a.records
        out.high_watermark = a.high_watermark
        offset = a.batches[-1][1] + 1
    raise AssertionError(f"{topic}-{partition}: not read to the end in {max_fetches} fetches")
