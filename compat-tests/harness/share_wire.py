"""Share-group requests on the wire (KIP-932), for tests that check error codes exactly:
ShareGroupHeartbeat v1, ShareFetch v1 and ShareAcknowledge v1 (all flexible)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from .kadmin_wire import Conn, _array_len, _read_len, _str
from .kwire import i8, i16, i32, i64, uvarint


@dataclass
class HeartbeatAnswer:
    error: int
    member_epoch: int
    assignment: dict[bytes, list[int]] | None  # topic id -> partitions; None when not sent


def share_group_heartbeat(conn: Conn, group: str, member: str, epoch: int,
                          topics: list[str] | None = None) -> HeartbeatAnswer:
    body = _str(group, True) + _str(member, True) + i32(epoch) + _str(None, True)  # rack id null
    body += uvarint(0) if topics is None else _array_len(len(topics), True) + b"".join(_str(t, True) for t in topics)
    body += b"\x00"
    r = conn.request(76, 1, body, True)
    r.i32()
    error = r.i16()
    r.compact_string()  # message
    r.compact_string()  # member id
    member_epoch = r.i32()
    r.i32()  # heartbeat interval
    assignment = None
    if r.i8() >= 0:
        assignment = {}
        for _ in range(_read_len(r, True)):
            topic_id = r.take(16)
            assignment[topic_id] = [r.i32() for _ in range(_read_len(r, True))]
            r.skip_tags()
        r.skip_tags()
    r.skip_tags()
    return HeartbeatAnswer(error, member_epoch, assignment)


# Acknowledgement batches: (first offset, last offset, [types])
Acks = list[tuple[int, int, list[int]]]


@dataclass
class SharePartitionAnswer:
    partition: int
    error: int
    ack_error: int
    records: bytes | None
    acquired: list[tuple[int, int, int]] = field(default_factory=list)  # (first, last, delivery count)


@dataclass
class ShareAnswer:
    error: int
    partitions: dict[tuple[bytes, int], SharePartitionAnswer]


def _ack_batches(acks: Acks) -> bytes:
    out = _array_len(len(acks), True)
    for first, last, types in acks:
        out += i64(first) + i64(last) + _array_len(len(types), True) + b"".join(i8(t) for t in types) + b"\x00"
    return out


def _partition_answers(r, fetch: bool) -> dict[tuple[bytes, int], SharePartitionAnswer]:
    out = {}
    for _ in range(_read_len(r, True)):
        topic_id = r.take(16)
        for _ in range(_read_len(r, True)):
            p = r.i32()
            error = r.i16()
            r.compact_string()
            ack_error, records, acquired = error, None, []
            if fetch:
                ack_error = r.i16()
                r.compact_string()
            r.i32(), r.i32()  # current leader
            r.skip_tags()
            if fetch:
                n = r.uvarint()
                records = r.take(n - 1) if n > 0 else None
                for _ in range(_read_len(r, True)):
                    acquired.append((r.i64(), r.i64(), r.i16()))
                    r.skip_tags()
            r.skip_tags()
            out[(topic_id, p)] = SharePartitionAnswer(p, error, ack_error, records, acquired)
        r.skip_tags()
    return out


def share_fetch(conn: Conn, group: str | None, member: str | None, epoch: int,
                partitions: dict[tuple[bytes, int], Acks], max_wait_ms: int = 0, max_records: int = 500) -> ShareAnswer:
    by_topic: dict[bytes, list[tuple[int, Acks]]] = {}
    for (topic_id, p), acks in partitions.items():
        by_topic.setdefault(topic_id, []).append((p, acks))
    body = _str(group, True) + _str(member, True) + i32(epoch) + i32(max_wait_ms) + i32(1) + i32(1 << 20)
    body += i32(max_records) + i32(max_records)  # max records, batch size
    body += _array_len(len(by_topic), True)
    for topic_id, parts in by_topic.items():
        body += topic_id + _array_len(len(parts), True)
        for p, acks in parts:
            body += i32(p) + _ack_batches(acks) + b"\x00"
        body += b"\x00"
    body += _array_len(0, True) + b"\x00"  # forgotten topics
    r = conn.request(78, 1, body, True)
    r.i32()
    error = r.i16()
    r.compact_string()
    r.i32()  # acquisition lock timeout
    return ShareAnswer(error, _partition_answers(r, True))


def share_acknowledge(conn: Conn, group: str | None, member: str | None, epoch: int,
                      partitions: dict[tuple[bytes, int], Acks]) -> ShareAnswer:
    by_topic: dict[bytes, list[tuple[int, Acks]]] = {}
    for (topic_id, p), acks in partitions.items():
        by_topic.setdefault(topic_id, []).append((p, acks))
    body = _str(group, True) + _str(member, True) + i32(epoch) + _array_len(len(by_topic), True)
    for topic_id, parts in by_topic.items():
        body += topic_id + _array_len(len(parts), True)
        for p, acks in parts:
            body += i32(p) + _ack_batches(acks) + b"\x00"
        body += b"\x00"
    body += b"\x00"
    r = conn.request(79, 1, body, True)
    r.i32()
    error = r.i16()
    r.compact_string()
    return ShareAnswer(error, _partition_answers(r, False))


def new_member_id() -> str:
    return str(uuid.uuid4())


def find_coordinator(conn: Conn, group: str) -> int:
    """FindCoordinator v4 for a group (creates __consumer_offsets on Kafka); the error code."""
    body = i8(0) + _array_len(1, True) + _str(group, True) + b"\x00"
    r = conn.request(10, 4, body, True)
    r.i32()
    assert _read_len(r, True) == 1
    r.compact_string()
    r.i32()
    r.compact_string()
    r.i32()
    return r.i16()
