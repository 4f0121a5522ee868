"""Consumer groups with Debian's librdkafka 2.0.2, through kcat's balanced consumer (-G):
a group member consumes every message once and commits; a later member of the same group
resumes at the committed offsets and sees only what was produced since. Against both
brokers."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from harness import ck

pytestmark = pytest.mark.groups

PARTITIONS = 6


def kcat_group(bootstrap: str, group: str, topic: str, timeout: float = 90) -> list[tuple[int, int, str]]:
    """One kcat group member that reads until every assigned partition is at its end (-e),
    committing as it goes (librdkafka's auto commit, flushed on exit)."""
    # No -o: in group mode kcat would assign at that offset and ignore the committed
    # one; auto.offset.reset only applies where the group has no committed offset.
    r = subprocess.run(["kcat", "-b", bootstrap, "-G", group, "-e", "-q", "-X", "auto.offset.reset=earliest",
                        "-X", "session.timeout.ms=6000", "-f", "%p %o %s\n", topic],
                       capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    out = []
    for line in r.stdout.decode().splitlines():
        p, o, v = line.split(" ", 2)
        out.append((int(p), int(o), v))
    return out


def produce_values(bootstrap: str, topic: str, start: int, count: int) -> None:
    for p in range(PARTITIONS):
        part = "".join(f"{i}\n" for i in range(start, start + count) if i % PARTITIONS == p).encode()
        r = subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", str(p), "-X", "acks=all"],
                           input=part, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]


def test_kcat_group_consumes_once_and_resumes(broker, unique_topic):
    topic = unique_topic("kcat-grp")
    ck.create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    group = f"kcat-{uuid.uuid4().hex[:8]}"
    produce_values(broker.bootstrap, topic, 0, 600)
    first = kcat_group(broker.bootstrap, group, topic)
    assert sorted(int(v) for _, _, v in first) == list(range(600))
    # Only what arrives after the commit is read by the next member of the group.
    produce_values(broker.bootstrap, topic, 600, 60)
    second = kcat_group(broker.bootstrap, group, topic)
    assert sorted(int(v) for _, _, v in second) == list(range(600, 660))
