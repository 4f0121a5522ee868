"""Connections: what they may cost the broker, and the limits on them, each on a broker of its own.

Kafka 3.9.1 (measured in this harness, the first test runs on both brokers):
- max.connections.per.ip=4: connections from 127.0.0.1 past the limit are accepted and closed at
  once, before they can send anything; once one closes, a new one is served. Kafka counts its own
  broker's connection to its controller listener against the limit, so fewer than 4 of the test's
  are served there (Sluice: exactly 4).
- connections.max.idle.ms=2000: a connection that has been answered and then sends nothing is
  closed after about two seconds; one that sends a request every 0.5 s stays open.

Sluice only (Kafka spends its heap or its threads differently, nothing to compare):
- a frame header claiming 1 MiB followed by 4 bytes costs the broker what it has read, not the
  claimed size: 1,200 such connections stay far under 150 MB of RSS (1.3 GB before the fix);
- at max.connections further connections wait in the listen backlog until one closes (as Kafka);
- under a low open-file limit the broker keeps a quarter of it for its own files: connections past
  the rest wait without the accept loop spinning or flooding the log, and a topic whose logs cannot
  be opened is refused whole (KAFKA_STORAGE_ERROR) and leaves nothing behind;
- when the broker's own files take more than that quarter and accept() itself fails with EMFILE,
  the accept loop backs off (no spinning core, at most one log line a second) and serves again
  once descriptors are free.
"""
from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from harness import kwire as w
from harness.brokers import Broker

KAFKA_STORAGE_ERROR = 56


def answers(s: socket.socket, corr: int = 1, timeout: float = 10.0) -> bool:
    """Sends ApiVersions v0; True if the broker answers it, False if it closed the connection."""
    s.settimeout(timeout)
    try:
        s.sendall(w.frame(w.api_versions_request(corr)))
        resp = w.recv_frame(s)
    except (ConnectionError, OSError):
        return False
    return struct.unpack(">i", resp[:4])[0] == corr


def no_answer_within(s: socket.socket, seconds: float) -> bool:
    """Sends ApiVersions v0; True if nothing at all comes back (nor a close) within `seconds`."""
    s.sendall(w.frame(w.api_versions_request(7)))
    s.settimeout(seconds)
    try:
        s.recv(1)  # an answer, or b"" for a close
        return False
    except socket.timeout:
        return True


def test_connections_per_address_and_idle_connections(fresh_broker, broker_kind):
    limit = 4
    b = fresh_broker(extra_config={"max.connections.per.ip": str(limit), "connections.max.idle.ms": "2000"})
    served = []
    try:
        # Connections are served until the limit; the next one is closed at once. Kafka counts its own
        # connections from 127.0.0.1 too (its broker's connection to its controller listener).
        for attempt in range(limit + 1):
            s = w.connect(b.host, b.port)
            if not answers(s, corr=attempt + 1):
                s.close()
                break
            served.append(s)
        if broker_kind == "sluice":
            assert len(served) == limit
        else:
            assert limit - 2 <= len(served) < limit + 1
        assert len(served) < limit + 1, "no connection was refused"
        served.pop().close()
        time.sleep(0.5)  # the broker learns of the close
        again = w.connect(b.host, b.port)
        served.append(again)
        assert answers(again)

        # Idle: one connection is left silent, another sends a request every 0.5 s.
        silent, busy = served[0], served[1]
        assert answers(silent) and answers(busy)
        start = time.monotonic()
        while time.monotonic() - start < 6:
            assert answers(busy, corr=9), f"a busy connection was closed after {time.monotonic() - start:.1f} s"
            time.sleep(0.5)
        assert w.wait_closed(silent, 10), "an idle connection was not closed"
    finally:
        for s in served:
            s.close()


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def sluice_only(broker_kind):
    if broker_kind != "sluice":
        pytest.skip("Sluice only: the broker's own memory and file descriptors")


def test_claimed_frame_sizes_cost_nothing(sluice_only, fresh_broker):
    b = fresh_broker()
    before = rss_mb(b.proc.pid)
    claimers = []
    try:
        for _ in range(1200):
            s = w.connect(b.host, b.port)
            s.sendall(struct.pack(">i", 1 << 20) + b"abcd")  # claims 1 MiB, sends 4 bytes of it
            claimers.append(s)
        time.sleep(1)
        grown = rss_mb(b.proc.pid) - before
        assert grown < 150, f"RSS grew by {grown:.0f} MB for 1,200 connections that sent 8 bytes each"
        with w.connect(b.host, b.port) as s:
            assert answers(s)
    finally:
        for s in claimers:
            s.close()


def test_max_connections_wait_in_the_backlog(sluice_only, fresh_broker):
    b = fresh_broker(extra_config={"max.connections": "3"})
    held = [w.connect(b.host, b.port) for _ in range(3)]
    try:
        assert all(answers(s) for s in held)
        waiting = w.connect(b.host, b.port)  # the kernel completes the handshake; the broker waits
        held.append(waiting)
        assert no_answer_within(waiting, 1.5)
        held.pop(0).close()
        waiting.settimeout(10)
        resp = w.recv_frame(waiting)  # the request sent while it waited is answered now
        assert struct.unpack(">i", resp[:4])[0] == 7
    finally:
        for s in held:
            s.close()


class FileLimitedSluice(Broker):
    """A Sluice whose open-file limit (soft and hard) is 256."""

    def _sluice_cmd(self) -> list[str]:
        return ["prlimit", "--nofile=256:256", "--", *super()._sluice_cmd()]


@pytest.fixture
def file_limited(sluice_only, tmp_path):
    """A started FileLimitedSluice, and a list for the test's connections: both closed after it."""
    b = FileLimitedSluice("sluice", workdir=tmp_path)
    b.start()
    conns: list[socket.socket] = []
    try:
        yield b, conns
    finally:
        for s in conns:
            s.close()
        b.cleanup()


def open_waiting(b: Broker, conns: list[socket.socket], n: int) -> None:
    """Opens n connections without sending anything (the kernel completes the handshakes)."""
    for _ in range(n):
        s = socket.socket()
        s.connect((b.host, b.port))
        conns.append(s)


def create_topic(s: socket.socket, name: str, partitions: int, corr: int) -> int:
    """CreateTopics v2 on the raw wire; the topic's error code."""
    body = w.i32(1) + w.string(name) + w.i32(partitions) + w.i16(1) + w.i32(0) + w.i32(0) + w.i32(30000) + b"\x00"
    r = w.Reader(w.roundtrip(s, w.header_v1(19, 2, corr) + body))
    assert r.i32() == corr
    r.i32()  # throttle
    assert r.i32() == 1 and r.string() == name
    return r.i16()


def topic_exists(s: socket.socket, name: str, corr: int) -> bool:
    """Metadata v4 for the one topic, without auto-creation: False when the broker does not know it."""
    r = w.Reader(w.roundtrip(s, w.header_v1(3, 4, corr) + w.i32(1) + w.string(name) + b"\x00"))
    assert r.i32() == corr
    r.i32()  # throttle
    for _ in range(r.i32()):  # brokers
        r.i32(), r.string(), r.i32(), r.string()
    r.string()  # cluster id
    r.i32()  # controller
    assert r.i32() == 1
    return r.i16() == 0


def test_open_file_limit(file_limited):
    b, conns = file_limited
    admin = w.connect(b.host, b.port)
    conns.append(admin)
    assert answers(admin)
    # 300 more: past what the limit leaves for connections (256 less a quarter kept for files).
    open_waiting(b, conns, 300)
    time.sleep(1)
    cpu = cpu_seconds(b.proc.pid)
    time.sleep(2)
    assert cpu_seconds(b.proc.pid) - cpu < 0.5, "the broker spins while connections wait"
    lines = b.log_path.read_text().count("\n")
    assert lines < 60, f"the broker wrote {lines} log lines"
    assert no_answer_within(conns[-1], 1.0)

    # Its own files still open: a small topic is created; one whose logs need more descriptors
    # than are left is refused whole and leaves nothing behind.
    assert create_topic(admin, "fits", 10, 2) == 0
    assert create_topic(admin, "too-many", 150, 3) == KAFKA_STORAGE_ERROR
    assert not topic_exists(admin, "too-many", 4)
    # Its directories are renamed away at once and deleted in the background, as a deletion's.
    deadline = time.monotonic() + 10
    while any(p.name.startswith("too-many-") for p in b.data_dir.iterdir()):
        assert time.monotonic() < deadline, sorted(p.name for p in b.data_dir.iterdir())
        time.sleep(0.1)

    for s in conns[1:-1]:
        s.close()
    last = conns[-1]
    last.settimeout(10)
    assert struct.unpack(">i", w.recv_frame(last)[:4])[0] == 7  # answered once there is room
    assert create_topic(admin, "too-many", 150, 5) == 0
    assert topic_exists(admin, "too-many", 6)


def test_accept_backs_off_when_descriptors_run_out(file_limited):
    """The broker's own files take more than the quarter kept for them (a topic of 100 partitions
    under a 256-descriptor limit), so accept() itself fails with EMFILE: the accept loop backs off
    instead of spinning, logs at most once a second, and serves again once descriptors free up."""
    b, conns = file_limited
    with w.connect(b.host, b.port) as admin:
        assert create_topic(admin, "files", 100, 1) == 0
    open_waiting(b, conns, 300)
    time.sleep(1)
    cpu = cpu_seconds(b.proc.pid)
    time.sleep(3)
    assert cpu_seconds(b.proc.pid) - cpu < 0.5, "the accept loop spins on EMFILE"
    log = b.log_path.read_text()
    assert "accept failed: Too many open files" in log
    assert log.count("accept failed") <= 8, "accept failures are not rate-limited"
    for s in conns:
        s.close()
    conns.clear()
    time.sleep(1.5)  # the back-off is at most a second
    with w.connect(b.host, b.port) as s:
        assert answers(s)
