"""Apache Kafka's Java client and command-line tools against each broker kind.

Runs compat-tests/java/JavaCompat.java with Java's single-file source launcher on the jars that
java/setup.sh fetches from Maven Central (kafka-clients, kafka-tools, kafka_2.13; same version
as the reference broker), with BOOTSTRAP_SERVERS and BROKER_KIND set.
  clients: producer (acks=all, no idempotence) + assign/seek consumer, 5 codecs; AdminClient;
           auto-creation on produce
  cli:     topics tool (--create/--list/--describe/--delete), console producer and consumer
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.subprocs import run_bounded

JAVA_DIR = Path(__file__).resolve().parent / "java"
# group -> (JavaCompat's own watchdog in s, our hard timeout in s)
GROUPS = {"clients": (170, 200), "cli": (110, 140)}


@pytest.fixture(scope="session")
def java_libs() -> Path:
    if not shutil.which("java"):
        pytest.fail("java not found (JDK 17+ is required)")
    res = subprocess.run(["bash", str(JAVA_DIR / "setup.sh")], capture_output=True, text=True,
                         timeout=960)
    if res.returncode != 0:
        pytest.fail(f"java/setup.sh failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return Path(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("group", list(GROUPS))
def test_java_client(broker, java_libs, group):
    watchdog, timeout = GROUPS[group]
    log4j = f"file:{JAVA_DIR / 'log4j.properties'}"
    env = dict(os.environ, BOOTSTRAP_SERVERS=broker.bootstrap, BROKER_KIND=broker.kind,
               COMPAT_DEADLINE_S=str(watchdog))
    cmd = ["java", "-Xmx512m", f"-Dlog4j.configuration={log4j}", f"-Dcompat.log4j={log4j}",
           "-cp", f"{java_libs}/*", "JavaCompat.java", group]
    rc, out, secs = run_bounded(cmd, env, JAVA_DIR, timeout)
    print(out)
    print(f"JavaCompat {group} against {broker.kind}: exit {rc} in {secs:.1f}s")
    if rc != 0:
        tail = "\n".join(out.splitlines()[-200:])
        pytest.fail(f"JavaCompat {group} against {broker.kind} ({broker.bootstrap}) exited {rc} "
                    f"after {secs:.1f}s:\n{tail}", pytrace=False)
