"""Consumer groups with the Node clients: node/test/groups.test.js (kafkajs 2.2.4) and
node/test/groups-platformatic.test.js (@platformatic/kafka), run by Node's
test runner like test_node_clients.py."""
from __future__ import annotations

import os

import pytest

from harness.subprocs import run_bounded
from test_node_clients import NODE_DIR, node_ready  # noqa: F401  (session fixture)

pytestmark = pytest.mark.groups
FILE_TIMEOUT = 180


@pytest.mark.parametrize("test_file", ["groups.test.js", "groups-platformatic.test.js"])
def test_node_groups(broker, node_ready, test_file):  # noqa: F811
    env = dict(os.environ, BOOTSTRAP_SERVERS=broker.bootstrap, BROKER_KIND=broker.kind,
               KAFKAJS_NO_PARTITIONER_WARNING="1", NO_COLOR="1")
    cmd = [str(node_ready), "--test", "--test-concurrency=1", "--test-reporter=spec", f"test/{test_file}"]
    rc, out, secs = run_bounded(cmd, env, NODE_DIR, FILE_TIMEOUT)
    print(out)
    print(f"{test_file} against {broker.kind}: exit {rc} in {secs:.1f}s")
    if rc != 0:
        tail = "\n".join(out.splitlines()[-150:])
        pytest.fail(f"{test_file} against {broker.kind} ({broker.bootstrap}) exited {rc} after {secs:.1f}s:\n{tail}",
                    pytrace=False)
