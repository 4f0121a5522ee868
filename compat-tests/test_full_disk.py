"""A full disk (issue 5, storage that holds up), Sluice only.

The broker's data directory is a 24 MB tmpfs (mounted by the test: needs root; skipped
otherwise), of which a 4 MB filler file takes part. Raw Produce v9 requests (acks=-1, 3
partitions, 16 records of 1 KB per partition) go on until the disk is full. Then:
  * Produce answers KAFKA_STORAGE_ERROR (56) per partition - every request is answered within a
    few seconds, the process stays up;
  * everything acknowledged before is fetchable with valid CRCs at contiguous offsets, nothing
    unacknowledged is stored, Fetch and ListOffsets (earliest, latest) keep working;
  * with the last free pages filled too, a 1-record Produce is answered, and an offset commit (the
    broker's LMDB state store lives on the same disk) gets an answer and the broker stays up
    (what it answers is printed: success or an error code);
  * once space is freed (the filler deleted) Produce succeeds again WITHOUT a restart, at offsets
    contiguous after the last acknowledged one;
  * after a clean restart all acknowledged data is still there.

Not run against Kafka: Kafka 3.9 treats an IOException on a log directory as a failed disk, takes
the directory offline for good and, when it was its only one, shuts down - the opposite of
"writes resume by themselves".
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from harness import ck, faults, kwire
from harness.kwire import NONE, KafkaConn, i32, i64, string

SIZE_MB = 24
FILLER_MB = 4
P = 3
PER_BATCH = 16
RECORD = 1024
ANSWER_WITHIN = 5.0          # seconds, for every request while the disk is full
MAX_REQUESTS = 2000          # 24 MB / 48 KB per request is ~500


@pytest.fixture
def small_disk(broker_kind):
    if broker_kind != "sluice":
        pytest.skip("Sluice only: Kafka takes a log directory offline after a write error (and, with its only "
                    "one gone, shuts down)")
    reason = faults.tmpfs_unavailable()
    if reason:
        pytest.skip(f"no small filesystem for the data directory: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="compat-sluice-fulldisk-"))
    try:
        with faults.tmpfs(workdir / "data", SIZE_MB) as data:
            yield workdir, data
    finally:
        if not os.environ.get("COMPAT_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


def values_for(tag: str, p: int, start: int) -> list[bytes]:
    return [f"{tag}-p{p}-{start + i:07d}-".encode().ljust(RECORD, b"#") for i in range(PER_BATCH)]


def offset_commit_raw(bootstrap: str, group: str, topic: str, offsets: dict[int, int], timeout: float) -> str:
    """OffsetCommit v2 (no membership: generation -1) on a new connection. Returns "answered
    {partition: error code}", "closed" (the broker closed the connection) or "no answer"."""
    body = string(group) + i32(-1) + string("") + i64(-1) + i32(1) + string(topic) + i32(len(offsets))
    for p, o in offsets.items():
        body += i32(p) + i64(o) + string(None)
    try:
        with KafkaConn.to(bootstrap, timeout=timeout) as c:
            r = c.request(8, 2, body, False)
            errors = {}
            for _ in range(r.i32()):
                r.string()
                for _ in range(r.i32()):
                    p = r.i32()
                    errors[p] = r.i16()
            return f"answered {errors}"
    except TimeoutError:
        return "no answer"
    except (ConnectionError, OSError, ValueError):
        return "closed"


def read_checked(b, topic: str, acked: dict[tuple[int, int], bytes]) -> dict[int, int]:
    """Every acknowledged record at its offset, valid CRCs, contiguous offsets; {p: log end}."""
    ends = {}
    with KafkaConn.to(b.bootstrap, timeout=15) as c:
        for p in range(P):
            hw, entries = faults.read_partition(c, topic, p, timeout=60)
            stored = faults.check_log(entries)
            lost = sorted(o for (pp, o), v in acked.items() if pp == p and stored.get(o) != v)
            assert not lost, f"partition {p}: acknowledged records lost or changed at offsets {lost[:5]}"
            assert hw == len(stored), (p, hw, len(stored))
            ends[p] = hw
    return ends


def test_full_disk_answers_storage_error_and_recovers(small_disk, fresh_broker, unique_topic):
    workdir, data = small_disk
    filler = data / "compat-filler.bin"
    with open(filler, "wb") as f:
        for _ in range(FILLER_MB):
            f.write(b"\xa5" * (1 << 20))
    b = fresh_broker(workdir=workdir)
    topic = unique_topic("full")
    group = unique_topic("full-group")
    try:
        ck.create_topic(b.bootstrap, topic, P)
        faults.commit_offsets(b.bootstrap, group, topic, {p: 0 for p in range(P)})

        # 1. Fill the disk.
        acked: dict[tuple[int, int], bytes] = {}
        n = {p: 0 for p in range(P)}
        full_answers = 0
        slowest = 0.0
        after_full = []
        t0 = time.monotonic()
        with KafkaConn.to(b.bootstrap, timeout=ANSWER_WITHIN + 5) as c:
            for i in range(MAX_REQUESTS):
                assert time.monotonic() - t0 < 180, f"filling took too long ({i} requests)"
                vals = {p: values_for("fill", p, n[p]) for p in range(P)}
                t = time.monotonic()
                res = kwire.produce(c, topic, {p: faults.record_batch(v) for p, v in vals.items()}, acks=-1)
                took = time.monotonic() - t
                slowest = max(slowest, took)
                assert took < ANSWER_WITHIN, f"request {i} answered after {took:.1f}s"
                for p, r in res.items():
                    assert r.error in (NONE, faults.KAFKA_STORAGE_ERROR), f"request {i}, partition {p}: {r}"
                    if r.error == NONE:
                        acked.update({(p, r.base_offset + j): v for j, v in enumerate(vals[p])})
                        n[p] += PER_BATCH
                    else:
                        assert r.base_offset == -1, r
                if all(r.error == faults.KAFKA_STORAGE_ERROR for r in res.values()):
                    full_answers += 1
                    after_full.append({p: r.error for p, r in res.items()})
                    if full_answers >= 5:
                        break
                elif full_answers:
                    after_full.append({p: r.error for p, r in res.items()})
            else:
                pytest.fail(f"the disk never filled up after {MAX_REQUESTS} requests ({len(acked)} records acked)")
        print(f"\nfull after {len(acked)} acknowledged records ({len(acked) * RECORD >> 20} MB), "
              f"{faults.free_bytes(data)} bytes free, slowest answer {slowest:.2f}s; answers once full: {after_full}")
        assert b.running(), f"broker died on a full disk:\n{b.log_tail()}"

        # 2. While full: reads work, nothing unacknowledged is stored.
        assert 0 in b.api_versions()  # a new connection is answered
        acked_end = {p: max([o for (pp, o) in acked if pp == p], default=-1) + 1 for p in range(P)}
        ends = read_checked(b, topic, acked)
        assert ends == acked_end, f"log ends {ends} while full, last acknowledged ends {acked_end}"
        with KafkaConn.to(b.bootstrap, timeout=ANSWER_WITHIN + 5) as c:
            assert kwire.list_offsets(c, topic, list(range(P)), -1) == ends
            assert kwire.list_offsets(c, topic, list(range(P)), -2) == {p: 0 for p in range(P)}

        # 3. Not a byte left: the last pages too (a small record, an offset commit).
        topper = data / "compat-topper.bin"
        with open(topper, "wb", buffering=0) as f:
            for _ in range(SIZE_MB * 1024):
                try:
                    f.write(b"\x5a" * 1024)
                except OSError:
                    break
        assert faults.free_bytes(data) == 0, faults.free_bytes(data)
        # A 1-record batch may still fit in the unused end of the segment file's last page (tmpfs
        # allocates whole pages); either way it is answered, and if acknowledged it is kept.
        with KafkaConn.to(b.bootstrap, timeout=ANSWER_WITHIN + 5) as c:
            res = kwire.produce(c, topic, {0: faults.record_batch([b"tiny"])}, acks=-1)[0]
        assert (res.error, res.base_offset) in ((faults.KAFKA_STORAGE_ERROR, -1), (NONE, ends[0])), res
        print(f"1-record batch on the full disk: {res}")
        if res.error == NONE:
            acked[(0, ends[0])] = b"tiny"
            ends[0] += 1

        # An offset commit on the full disk: the broker stays up and answers it - success, or an error
        # code per partition (Kafka maps a failed write of its offsets log to NOT_COORDINATOR);
        # checked at the end, after the rest of the scenario.
        t = time.monotonic()
        raw_commit = offset_commit_raw(b.bootstrap, group, topic, {p: ends[p] for p in range(P)}, ANSWER_WITHIN)
        try:
            faults.commit_offsets(b.bootstrap, group, topic, {p: ends[p] for p in range(P)}, timeout=5)
            client_commit = "committed"
        except KafkaException as e:
            client_commit = f"error {e.args[0].code()} {e.args[0].name()}"
        commit_s = time.monotonic() - t
        print(f"offset commit on the full disk: raw OffsetCommit v2 {raw_commit}; confluent-kafka commit(): "
              f"{client_commit} ({commit_s:.1f}s)")
        assert b.running(), f"broker died committing offsets on a full disk:\n{b.log_tail()}"
        committed_while_full = faults.committed_offsets(b.bootstrap, group, topic, list(range(P)), timeout=15)
        assert committed_while_full in ({p: 0 for p in range(P)}, ends), committed_while_full

        # 4. Space again: writes resume by themselves, right after the last acknowledged offsets.
        filler.unlink()
        topper.unlink()
        resumed_after = None
        t = time.monotonic()
        with KafkaConn.to(b.bootstrap, timeout=ANSWER_WITHIN + 5) as c:
            for attempt in range(100):
                vals = {p: values_for("again", p, n[p]) for p in range(P)}
                res = kwire.produce(c, topic, {p: faults.record_batch(v) for p, v in vals.items()}, acks=-1)
                if all(r.error == NONE for r in res.values()):
                    resumed_after = (attempt, time.monotonic() - t)
                    break
                assert all(r.error in (NONE, faults.KAFKA_STORAGE_ERROR) for r in res.values()), res
                assert time.monotonic() - t < 10, f"writes did not resume within 10 s of freeing space: {res}"
                time.sleep(0.1)
            assert resumed_after is not None, "writes did not resume"
            for p, r in res.items():
                assert r.base_offset == ends[p], f"partition {p}: first write after the full disk at {r.base_offset}, " \
                                                 f"log end was {ends[p]}"
                acked.update({(p, r.base_offset + j): v for j, v in enumerate(vals[p])})
                n[p] += PER_BATCH
            for _ in range(10):
                vals = {p: values_for("again", p, n[p]) for p in range(P)}
                res = kwire.produce(c, topic, {p: faults.record_batch(v) for p, v in vals.items()}, acks=-1)
                for p, r in res.items():
                    assert r.error == NONE, res
                    acked.update({(p, r.base_offset + j): v for j, v in enumerate(vals[p])})
                    n[p] += PER_BATCH
        print(f"writes resumed on attempt {resumed_after[0]} after {resumed_after[1]:.2f}s")
        ends = read_checked(b, topic, acked)
        assert ends == {p: max(o for (pp, o) in acked if pp == p) + 1 for p in range(P)}
        faults.commit_offsets(b.bootstrap, group, topic, {p: ends[p] for p in range(P)})

        # 5. A clean restart keeps it all.
        b.restart()
        assert read_checked(b, topic, acked) == ends
        assert faults.committed_offsets(b.bootstrap, group, topic, list(range(P))) == ends
        print("broker log lines about the full disk:\n" + "\n".join(
            ln for ln in b.log_path.read_text(errors="replace").splitlines() if " ERROR " in ln or " WARN " in ln)[-3000:])
        assert raw_commit.startswith("answered"), \
            f"OffsetCommit on a full disk: {raw_commit} (expected an answer, with an error code per partition)"
    finally:
        b.stop()
