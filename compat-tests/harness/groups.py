"""Consumer-group scenarios shared by test_groups_confluent.py and test_groups_kafka_python.py.

Every member runs in its own process (harness/group_worker.py), so a test can SIGKILL one (no
LeaveGroup) or close it cleanly; the parent reads the JSON events each member prints and checks
assignments, revocations and, through (partition, offset, key) of every record consumed, that
nothing is skipped or delivered twice. Every wait is bounded.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

COMPAT_DIR = Path(__file__).resolve().parents[1]
SESSION_MS = 6000  # Kafka's group.min.session.timeout.ms


class Member:
    """One group member process. events: the list of JSON events it printed so far."""

    def __init__(self, name: str, client: str, bootstrap: str, group: str, topic: str, *,
                 strategy: str = "range", instance_id: str | None = None,
                 session_ms: int = SESSION_MS, max_s: float = 150):
        self.name = name
        cfg = dict(client=client, bootstrap=bootstrap, group=group, topic=topic, strategy=strategy,
                   instance_id=instance_id, session_ms=session_ms, max_s=max_s)
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.group_worker", json.dumps(cfg)],
                                     cwd=COMPAT_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.events.append(ev)

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.events)

    def owned(self) -> set[int]:
        """Partitions owned after the last assign/revoke/lost event."""
        own: set[int] = set()
        for ev in self.snapshot():
            if ev["ev"] in ("assign", "revoke", "lost"):
                own = set(ev["owned"])
        return own

    def records(self) -> list[tuple[int, int, str]]:
        return [tuple(r) for ev in self.snapshot() if ev["ev"] == "msgs" for r in ev["recs"]]

    def rebalance_events(self, since: int = 0) -> list[dict]:
        """Assign/revoke/lost events with partitions in them (kafka-python also reports empty ones)."""
        return [ev for ev in self.snapshot()[since:] if ev["ev"] in ("assign", "revoke", "lost") and ev["parts"]]

    def errors(self) -> list[str]:
        return [ev["what"] for ev in self.snapshot() if ev["ev"] == "error"]

    def describe(self) -> str:
        evs = [ev for ev in self.snapshot() if ev["ev"] != "msgs"]
        n = len(self.records())
        err = "".join(self._stderr[-15:])
        return f"{self.name}: owned={sorted(self.owned())} records={n} events={evs[-12:]} stderr={err[-1500:]!r}"

    def close(self, timeout: float = 20.0) -> None:
        """Clean close (LeaveGroup for a dynamic member); waits for the process to exit."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("close\n")
                self.proc.stdin.flush()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.name} did not close within {timeout}s: {self.describe()}")

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no commit, the session must expire."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def wait_until(pred, timeout: float, what, interval: float = 0.1):
    """Poll pred() until it returns truthy; fail with what() (a str or a callable) after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what() if callable(what) else what}")
        time.sleep(interval)


def describe_all(members) -> str:
    return "\n  " + "\n  ".join(m.describe() for m in members)


def wait_balanced(members, partitions: int, per_member: int | None, timeout: float = 45.0) -> None:
    """Until the members' owned sets are disjoint, cover all partitions and (if per_member) have
    that many each."""
    def ok():
        owns = [m.owned() for m in members]
        if sum(len(o) for o in owns) != partitions or set().union(*owns) != set(range(partitions)):
            return False
        return per_member is None or all(len(o) == per_member for o in owns)
    wait_until(ok, timeout, lambda: "a balanced assignment:" + describe_all(members))


def produce_keyed(bootstrap: str, topic: str, start: int, n: int, partitions: int,
                  timeout: float = 60.0) -> dict[tuple[int, int], str]:
    """Messages start..start+n-1, message i to partition i % partitions with key "k-i".
    Returns {(partition, offset): key} from the delivery reports."""
    acked: dict[tuple[int, int], str] = {}
    errors: list = []

    def on_delivery(err, m):
        if err is not None:
            errors.append(err)
        else:
            acked[(m.partition(), m.offset())] = m.key().decode()

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 10,
                  "message.timeout.ms": int(timeout * 1000), "log_level": 3})
    for i in range(start, start + n):
        p.produce(topic, value=b"v-%d" % i, key=b"k-%d" % i, partition=i % partitions,
                  on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(timeout)
    assert left == 0 and not errors, f"produce: {left} undelivered, errors {errors[:3]}"
    assert len(acked) == n
    return acked


def wait_consumed(members, want: dict[tuple[int, int], str], timeout: float = 45.0) -> None:
    """Until every (partition, offset) in want was consumed by some member."""
    def ok():
        seen = {(p, o) for m in members for p, o, _ in m.records()}
        return all(k in seen for k in want)

    def what():
        seen = {(p, o) for m in members for p, o, _ in m.records()}
        missing = sorted(k for k in want if k not in seen)
        return f"{len(missing)} of {len(want)} records to be consumed (first missing {missing[:5]})" + \
            describe_all(members)
    wait_until(ok, timeout, what)


def check_exactly_once(members, want: dict[tuple[int, int], str]) -> None:
    """Every produced record consumed exactly once, with its key; nothing else consumed."""
    counts: dict[tuple[int, int], int] = {}
    for m in members:
        for p, o, k in m.records():
            assert want.get((p, o)) == k, f"{m.name} consumed ({p}, {o}) with key {k!r}, produced {want.get((p, o))!r}"
            counts[(p, o)] = counts.get((p, o), 0) + 1
    missing = sorted(k for k in want if k not in counts)
    dup = sorted(k for k, c in counts.items() if c > 1)
    assert not missing, f"{len(missing)} records never consumed, first {missing[:5]}"
    assert not dup, f"{len(dup)} records consumed more than once, first {dup[:5]}" + describe_all(members)


def close_all(members) -> None:
    for m in members:
        try:
            m.close(timeout=15)
        except AssertionError:
            pass
        m.kill()


# ------------------------------------------------------------------------------------- scenarios

def scenario_three_members_share(client: str, bootstrap: str, topic: str, group: str,
                                 strategy: str) -> None:
    """Three members, 6 partitions: two each once stable; every record consumed exactly once."""
    members = [Member(f"m{i}", client, bootstrap, group, topic, strategy=strategy) for i in range(3)]
    try:
        wait_balanced(members, 6, 2)
        want = produce_keyed(bootstrap, topic, 0, 3000, 6)
        wait_consumed(members, want)
        check_exactly_once(members, want)
        for m in members:
            assert not m.errors(), f"{m.name}: {m.errors()}"
    finally:
        close_all(members)


def scenario_kill_and_leave(client: str, bootstrap: str, topic: str, group: str) -> dict[str, float]:
    """SIGKILL one of three members: the two others take its partitions only once its session
    expires and resume at its committed offsets (nothing skipped, nothing twice). Then one member
    closes cleanly: the last one gets everything at once, well before the session timeout."""
    a, b, c = members = [Member(n, client, bootstrap, group, topic) for n in ("a", "b", "c")]
    times = {}
    try:
        wait_balanced(members, 6, 2)
        want = produce_keyed(bootstrap, topic, 0, 600, 6)
        wait_consumed(members, want)
        # All of batch 1 is consumed and (the worker commits before reporting) committed.
        assert all(ev["committed"] for m in members for ev in m.snapshot() if ev["ev"] == "msgs"), \
            describe_all(members)
        c_parts = c.owned()
        t0 = time.monotonic()
        c.kill()
        want.update(produce_keyed(bootstrap, topic, 600, 600, 6))
        wait_balanced([a, b], 6, 3, timeout=SESSION_MS / 1000 + 30)
        times["takeover_after_kill_s"] = takeover = time.monotonic() - t0
        # Kafka keeps a killed member until its session expires (no LeaveGroup was sent).
        assert takeover >= SESSION_MS / 1000 * 0.5, \
            f"partitions of the killed member moved after {takeover:.1f}s, before its session " \
            f"({SESSION_MS} ms) could expire" + describe_all(members)
        assert c_parts <= a.owned() | b.owned()
        wait_consumed(members, want)
        check_exactly_once(members, want)

        t1 = time.monotonic()
        b.close()
        want.update(produce_keyed(bootstrap, topic, 1200, 600, 6))
        wait_balanced([a], 6, 6, timeout=SESSION_MS / 1000 + 30)
        times["takeover_after_close_s"] = handover = time.monotonic() - t1
        assert handover < SESSION_MS / 1000 / 2, \
            f"a clean close took {handover:.1f}s to hand over (session {SESSION_MS} ms): no LeaveGroup effect?"
        wait_consumed(members, want)
        check_exactly_once(members, want)
        return times
    finally:
        close_all(members)


def scenario_cooperative(client: str, bootstrap: str, topic: str, group: str) -> None:
    """cooperative-sticky: a second member joining takes 3 of the first member's 6 partitions; the
    first member revokes only those (never its whole assignment) and keeps consuming the others."""
    a = Member("a", client, bootstrap, group, topic, strategy="cooperative-sticky")
    members = [a]
    try:
        wait_balanced([a], 6, 6)
        mark = len(a.snapshot())
        b = Member("b", client, bootstrap, group, topic, strategy="cooperative-sticky")
        members.append(b)
        wait_balanced([a, b], 6, 3)
        evs = a.rebalance_events(mark)
        revoked = [p for ev in evs if ev["ev"] == "revoke" for p in ev["parts"]]
        assert sorted(revoked) == sorted(b.owned()), \
            f"a should revoke exactly the 3 partitions b got: a's events since b joined {evs}"
        assert all(ev["owned"] for ev in evs), f"a's assignment went empty (eager revoke?): {evs}"
        assert not [ev for ev in evs if ev["ev"] == "lost"], evs
        want = produce_keyed(bootstrap, topic, 0, 1200, 6)
        wait_consumed(members, want)
        check_exactly_once(members, want)
    finally:
        close_all(members)


def scenario_static_restart(client: str, bootstrap: str, topic: str, group: str,
                            session_ms: int = 10000, restart: str = "b") -> None:
    """Static membership: a joins first (the group leader), then b; both have a group.instance.id.
    One of them (restart="b": the follower, "a": the leader) is killed and restarted within its
    session timeout; it gets its partitions back and the other sees no rebalance at all, not even
    once the old incarnation's session would have expired. Consumption resumes at the committed
    offsets."""
    kw = dict(session_ms=session_ms)
    a = Member("a", client, bootstrap, group, topic, instance_id=f"{group}-a", **kw)
    members = [a]
    try:
        wait_balanced([a], 6, 6)
        b = Member("b", client, bootstrap, group, topic, instance_id=f"{group}-b", **kw)
        members.append(b)
        wait_balanced([a, b], 6, 3)
        want = produce_keyed(bootstrap, topic, 0, 600, 6)
        wait_consumed(members, want)
        victim, other = (b, a) if restart == "b" else (a, b)
        v_parts, o_parts = victim.owned(), other.owned()
        mark = len(other.snapshot())
        t0 = time.monotonic()
        victim.kill()
        again = Member(victim.name + "2", client, bootstrap, group, topic, instance_id=f"{group}-{victim.name}", **kw)
        members.append(again)
        wait_until(lambda: again.owned() == v_parts, session_ms / 1000 + 20,
                   lambda: f"restarted static member to get {sorted(v_parts)} back" + describe_all(members))
        back = time.monotonic() - t0
        want.update(produce_keyed(bootstrap, topic, 600, 600, 6))
        wait_consumed(members, want)
        # Past the moment the first incarnation would have expired, nothing must have moved.
        time.sleep(max(0.0, t0 + session_ms / 1000 + 2 - time.monotonic()))
        assert other.rebalance_events(mark) == [], \
            f"{other.name} saw a rebalance when static {victim.name} restarted (back after {back:.1f}s)" + \
            describe_all(members)
        assert other.owned() == o_parts and again.owned() == v_parts, describe_all(members)
        assert [ev["ev"] for ev in again.rebalance_events()] == ["assign"], describe_all(members)
        want.update(produce_keyed(bootstrap, topic, 1200, 60, 6))
        wait_consumed(members, want)
        check_exactly_once(members, want)
    finally:
        close_all(members)
