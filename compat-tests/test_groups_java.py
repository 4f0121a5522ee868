"""Consumer groups with Apache Kafka's Java client: compat-tests/java/JavaGroups.java (subscribe
with roundrobin / cooperative-sticky / static membership, clean leave, Admin group API), run with
Java's single-file source launcher on the jars java/setup.sh fetches."""
from __future__ import annotations

import os

import pytest

from harness.subprocs import run_bounded
from test_java_clients import JAVA_DIR, java_libs  # noqa: F401  (session fixture)

pytestmark = pytest.mark.groups
WATCHDOG, TIMEOUT = 150, 180


def test_java_groups(broker, java_libs):  # noqa: F811
    log4j = f"file:{JAVA_DIR / 'log4j.properties'}"
    env = dict(os.environ, BOOTSTRAP_SERVERS=broker.bootstrap, BROKER_KIND=broker.kind,
               COMPAT_DEADLINE_S=str(WATCHDOG))
    cmd = ["java", "-Xmx512m", f"-Dlog4j.configuration={log4j}", "-cp", f"{java_libs}/*", "JavaGroups.java"]
    rc, out, secs = run_bounded(cmd, env, JAVA_DIR, TIMEOUT)
    print(out)
    print(f"JavaGroups against {broker.kind}: exit {rc} in {secs:.1f}s")
    if rc != 0:
        tail = "\n".join(out.splitlines()[-200:])
        pytest.fail(f"JavaGroups against {broker.kind} ({broker.bootstrap}) exited {rc} after {secs:.1f}s:\n{tail}",
                    pytrace=False)
