"""Checker for idempotent-producer chaos runs (test_idempotence_clients.py).

The producer writes message n (n = 0, 1, 2, ...) to partition n % partitions with the value
"<tag>:<n>", and reports for each n either an acknowledgement (delivery without error, with the
offset the broker gave) or a failure. The checker reads every partition back on the raw wire
(Fetch, straight from the broker's own port, no client library) and requires:

  * every message the producer sent was resolved: acknowledged or failed, never left pending;
  * every acknowledged message is stored exactly once, in its partition, at the offset its
    acknowledgement carried (a duplicate answered with the original offset must point at the
    original record);
  * no message is stored twice at all, acknowledged or not (a failed send may or may not have
    been written - "possibly persisted" - but never twice), and nothing foreign is stored;
  * per partition the stored messages are in production order (n increases with the offset).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .kwire import KafkaConn, fetch_batches, list_offsets


@dataclass
class Outcome:
    """What the producer reported. acked: {n: offset}; failed: {n: error text}."""
    produced: int
    acked: dict[int, int] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


@dataclass
class Report:
    stored: int
    acked: int
    failed: int
    failed_but_stored: int
    producer_ids: set
    epochs: set

    def __str__(self) -> str:
        return (f"{self.acked} acked, {self.failed} failed ({self.failed_but_stored} of them stored anyway), "
                f"{self.stored} stored; producer ids {sorted(self.producer_ids)}, epochs {sorted(self.epochs)}")


def parse_results(lines, outcome: Outcome) -> Outcome:
    """Lines 'A <n> <offset>' (acknowledged) and 'F <n> <error>' (failed), as the Java and Node
    producers write them."""
    for line in lines:
        parts = line.rstrip("\n").split(" ", 2)
        if parts[0] == "A":
            outcome.acked[int(parts[1])] = int(parts[2])
        elif parts[0] == "F":
            outcome.failed[int(parts[1])] = parts[2] if len(parts) > 2 else ""
    return outcome


def read_partition(conn: KafkaConn, topic: str, partition: int, end: int, timeout: float = 60.0):
    """[(offset, value, producer id, epoch)] of every record below `end`, in offset order."""
    out = []
    offset = 0
    deadline = time.monotonic() + timeout
    while offset < end:
        assert time.monotonic() < deadline, f"{topic}-{partition}: read stuck at {offset}/{end}"
        batches = fetch_batches(conn, topic, partition, offset, max_bytes=4 << 20)
        assert batches, f"{topic}-{partition}: empty fetch at {offset} below the end {end}"
        for b in batches:
            assert b.attributes & 7 == 0, f"compressed batch at {b.base_offset}: the checker reads plain batches"
            for i, v in enumerate(b.values):
                if b.base_offset + i >= offset:
                    out.append((b.base_offset + i, v, b.producer_id, b.producer_epoch))
            offset = b.base_offset + b.record_count
    return [r for r in out if r[0] < end]


def check(bootstrap: str, topic: str, partitions: int, tag: str, outcome: Outcome,
          allow_duplicates: bool = False) -> Report:
    """Read the topic back and assert the properties in the module docstring. With
    `allow_duplicates`, second copies are tolerated and order is judged on first copies only."""
    pending = [n for n in range(outcome.produced) if n not in outcome.acked and n not in outcome.failed]
    assert not pending, f"{len(pending)} messages neither acknowledged nor failed, e.g. {pending[:10]}"
    assert not set(outcome.acked) & set(outcome.failed), "a message both acknowledged and failed"

    where: dict[int, list[tuple[int, int]]] = {}
    order: dict[int, list[tuple[int, int]]] = {}  # partition -> [(offset, n)]
    foreign = []
    pids, epochs = set(), set()
    with KafkaConn.to(bootstrap) as conn:
        ends = list_offsets(conn, topic, list(range(partitions)))
        for p in range(partitions):
            order[p] = []
            for off, value, pid, epoch in read_partition(conn, topic, p, ends[p]):
                pids.add(pid)
                epochs.add(epoch)
                t, _, n = (value or b"").decode(errors="replace").rpartition(":")
                if t != tag or not n.isdigit():
                    foreign.append((p, off, value[:40] if value else value))
                    continue
                where.setdefault(int(n), []).append((p, off))
                order[p].append((off, int(n)))
    assert not foreign, f"{len(foreign)} records not written by this producer, e.g. {foreign[:5]}"
    dups = {n: w for n, w in where.items() if len(w) > 1}
    assert allow_duplicates or not dups, \
        f"{len(dups)} messages stored more than once, e.g. {dict(list(dups.items())[:5])}"
    if dups:
        order = {p: [(off, n) for off, n in recs if where[n][0] == (p, off)] for p, recs in order.items()}
    misplaced = [(n, w) for n, w in where.items() if w[0][0] != n % partitions]
    assert not misplaced, f"messages stored in the wrong partition: {misplaced[:5]}"
    for p, recs in order.items():
        back = [(recs[i - 1], recs[i]) for i in range(1, len(recs)) if recs[i][1] < recs[i - 1][1]]
        assert not back, f"partition {p}: {len(back)} messages stored out of production order, " \
                         f"e.g. (offset, message) pairs {back[:3]}"
    lost = [n for n in outcome.acked if n not in where]
    assert not lost, f"{len(lost)} acknowledged messages not stored, e.g. {sorted(lost)[:10]}"
    moved = [(n, outcome.acked[n], where[n][0]) for n in outcome.acked
             if where[n][0] != (n % partitions, outcome.acked[n])]
    assert not moved, f"{len(moved)} messages acknowledged at another offset than stored, e.g. {moved[:5]}"
    stray = [n for n in where if n >= outcome.produced]
    assert not stray, f"stored messages the producer never reported: {stray[:10]}"
    return Report(stored=len(where), acked=len(outcome.acked), failed=len(outcome.failed),
                  failed_but_stored=sum(1 for n in outcome.failed if n in where), producer_ids=pids, epochs=epochs)
