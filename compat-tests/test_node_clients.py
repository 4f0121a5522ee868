"""Node.js Kafka clients (kafkajs 2.2.4, @platformatic/kafka) against each broker kind.

Each test runs one file of compat-tests/node/test/ with Node's built-in test runner, on the
Node 22 binary that node/setup.sh installs from npm, with BOOTSTRAP_SERVERS and BROKER_KIND set.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.subprocs import run_bounded

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_BIN = NODE_DIR / "node_modules" / ".bin" / "node"
FILE_TIMEOUT = 180  # seconds per test file; the files bound each step themselves too


@pytest.fixture(scope="session")
def node_ready():
    res = subprocess.run(["bash", str(NODE_DIR / "setup.sh")], capture_output=True, text=True,
                         timeout=900)
    if res.returncode != 0:
        pytest.fail(f"node/setup.sh failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return NODE_BIN


@pytest.mark.parametrize("test_file", ["kafkajs.test.js", "platformatic.test.js"])
def test_node_client(broker, node_ready, test_file):
    env = dict(os.environ, BOOTSTRAP_SERVERS=broker.bootstrap, BROKER_KIND=broker.kind,
               KAFKAJS_NO_PARTITIONER_WARNING="1", NO_COLOR="1")
    cmd = [str(node_ready), "--test", "--test-concurrency=1", "--test-reporter=spec",
           f"test/{test_file}"]
    rc, out, secs = run_bounded(cmd, env, NODE_DIR, FILE_TIMEOUT)
    print(out)
    print(f"{test_file} against {broker.kind}: exit {rc} in {secs:.1f}s")
    if rc != 0:
        tail = "\n".join(out.splitlines()[-150:])
        pytest.fail(f"{test_file} against {broker.kind} ({broker.bootstrap}) exited {rc} "
                    f"after {secs:.1f}s:\n{tail}", pytrace=False)
