"""A Sluice cluster on loopback: a controller-only node (node 1) and N broker-only nodes (2..N+1),
each a real `sluice server` process with its own data dir, with short timeouts so that fault
tests finish in seconds: broker.session.timeout.ms 2000, heartbeats every 250 ms,
replica.lag.time.max.ms 1500, replica.fetch.wait.max.ms 100.

    with SluiceCluster(brokers=3) as c:
        c.bootstrap                 # "127.0.0.1:p2,127.0.0.1:p3,..."
        c.node(2).kill9(); c.node(2).start()
        c.pause(3); c.resume(3)     # SIGSTOP / SIGCONT
        c.cut(3); c.heal(3)         # off the network and back (SluiceCluster(netlab=NetLab()), root)
        c.block(3, 2); c.unblock(3, 2)  # node 3 cannot reach node 2, and can again (netlab)
        c.partition_state(topic)    # {p: (leader, replicas, isr)} from a live broker's Metadata
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from . import kwire
from .brokers import Broker, free_port
from .netlab import NetLab

SESSION_TIMEOUT_MS = 2000
TIMEOUTS = {
    "broker.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "broker.heartbeat.interval.ms": "250",
    "replica.lag.time.max.ms": "1500",
    "replica.fetch.wait.max.ms": "100",
    "group.initial.rebalance.delay.ms": "0",
    # Few __consumer_offsets partitions: each is a replicated log on every broker.
    "offsets.topic.num.partitions": "5",
}


class SluiceCluster:
    """combined=False: node 1 is a controller only, brokers are nodes 2..brokers+1.
    combined=True: node 1 is broker and controller (both listeners), brokers are nodes 1..brokers."""

    def __init__(self, brokers: int = 3, config: dict[str, str] | None = None, combined: bool = False,
                 netlab: NetLab | None = None, controllers: int = 1):
        """netlab: every node in a network namespace of its own (harness/netlab.py), so that
        cut(n) can take a node off the network; the caller owns the lab.
        controllers > 1: a quorum of controller-only nodes 1..controllers, brokers after them."""
        assert controllers == 1 or not combined, "combined nodes take one voter"
        self.workdir = Path(tempfile.mkdtemp(prefix="compat-cluster-"))
        self.controller_ids = list(range(1, controllers + 1))
        self.controller_ports = {n: free_port() for n in self.controller_ids}
        self.controller_port = self.controller_ports[1]
        self.netlab = netlab
        self.cut_off: set[int] = set()
        total = brokers + (0 if combined else controllers)
        hosts = {n: netlab.add_host(n + 1) for n in range(1, total + 1)} if netlab else {}

        def placed(n: int) -> dict:
            if not netlab:
                return {}
            return {"host": hosts[n], "exec_prefix": netlab.exec_prefix(n + 1)}

        host1 = hosts.get(1, "127.0.0.1")
        voters = ",".join(f"{n}@{hosts.get(n, '127.0.0.1')}:{self.controller_ports[n]}" for n in self.controller_ids)
        common = {"controller.quorum.voters": voters,
                  "controller.listener.names": "CONTROLLER", **TIMEOUTS,
                  "offsets.topic.replication.factor": str(min(3, brokers)), **(config or {})}
        if combined:
            port = free_port()
            first = Broker("sluice", workdir=self.workdir / "node1", port=port, **placed(1),
                           extra_config={**common, "process.roles": "broker,controller", "node.id": "1",
                                         "listeners": f"PLAINTEXT://{host1}:{port},"
                                                      f"CONTROLLER://{host1}:{self.controller_port}"})
        else:
            first = Broker("sluice", workdir=self.workdir / "node1", port=self.controller_port, **placed(1),
                           extra_config={**common, "process.roles": "controller", "node.id": "1",
                                         "listeners": f"CONTROLLER://{host1}:{self.controller_port}"})
        self._common, self._placed = common, placed
        self.nodes: dict[int, Broker] = {1: first}
        for n in self.controller_ids[1:]:
            host = hosts.get(n, "127.0.0.1")
            self.nodes[n] = Broker("sluice", workdir=self.workdir / f"node{n}", port=self.controller_ports[n],
                                   **placed(n),
                                   extra_config={**common, "process.roles": "controller", "node.id": str(n),
                                                 "listeners": f"CONTROLLER://{host}:{self.controller_ports[n]}"})
        start = 1 if combined else controllers + 1
        for node_id in range(max(2, start), start + brokers):
            self.nodes[node_id] = Broker("sluice", workdir=self.workdir / f"node{node_id}", **placed(node_id),
                                         extra_config={**common, "process.roles": "broker", "node.id": str(node_id)})
        self.broker_ids = list(range(start, start + brokers))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "SluiceCluster":
        for node in self.nodes.values():
            node.start()
        self.wait_brokers(len(self.broker_ids))
        return self

    def add_broker(self) -> int:
        """A new broker-only node (the next id) started and registered; returns its id."""
        node_id = max(self.nodes) + 1
        self.nodes[node_id] = Broker("sluice", workdir=self.workdir / f"node{node_id}", **self._placed(node_id),
                                     extra_config={**self._common, "process.roles": "broker", "node.id": str(node_id)})
        self.nodes[node_id].start()
        self.broker_ids.append(node_id)
        self.wait_brokers(len(self.broker_ids), via=node_id)
        return node_id

    def stop(self) -> None:
        for node_id in reversed(list(self.nodes)):
            self.resume(node_id)
            self.nodes[node_id].stop()

    def cleanup(self) -> None:
        self.stop()
        if not os.environ.get("COMPAT_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def node(self, node_id: int) -> Broker:
        return self.nodes[node_id]

    def pause(self, node_id: int) -> None:
        self.nodes[node_id].proc.send_signal(signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        proc = self.nodes[node_id].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)

    def cut(self, node_id: int) -> None:
        """Take the node off the network (netlab clusters): its process runs on, unreachable."""
        self.netlab.cut(node_id + 1)
        self.cut_off.add(node_id)

    def heal(self, node_id: int) -> None:
        self.netlab.heal(node_id + 1)
        self.cut_off.discard(node_id)

    def block(self, node_id: int, peer_id: int) -> None:
        """Node `node_id` can no longer reach node `peer_id` (netlab clusters); all else goes on."""
        self.netlab.block(node_id + 1, peer_id + 1)

    def unblock(self, node_id: int, peer_id: int) -> None:
        self.netlab.unblock(node_id + 1, peer_id + 1)

    # ------------------------------------------------------------------ views
    @property
    def bootstrap(self) -> str:
        return ",".join(self.nodes[b].bootstrap for b in self.broker_ids)

    def live_bootstrap(self) -> str:
        return ",".join(self.nodes[b].bootstrap for b in self.broker_ids
                        if self.nodes[b].running() and b not in self.cut_off)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.live_bootstrap(), "socket.timeout.ms": 5000})

    def wait_brokers(self, count: int, timeout: float = 30.0, via: int | None = None) -> None:
        """Until a broker's Metadata lists `count` brokers."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for b in ([via] if via else self.broker_ids):
                node = self.nodes[b]
                if not node.running() or b in self.cut_off:
                    continue
                try:
                    last = kwire.metadata_broker_count(node.host, node.port, 2.0)
                    if last == count:
                        return
                except Exception as e:  # not up yet
                    last = e
            time.sleep(0.1)
        raise AssertionError(f"metadata does not list {count} brokers after {timeout}s (last: {last!r})")

    def create_topic(self, topic: str, partitions: int, replication_factor: int = 3,
                     config: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        a = self.admin()
        fs = a.create_topics([NewTopic(topic, partitions, replication_factor, config=config or {})],
                             operation_timeout=timeout, request_timeout=timeout)
        fs[topic].result(timeout)
        self.wait_partitions(topic, lambda s: all(len(isr) == replication_factor and leader >= 0
                                                   for leader, _, isr in s.values()) and len(s) == partitions,
                             timeout)

    def partition_state(self, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
        md = self.admin().list_topics(topic=topic, timeout=5)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return {}
        return {p: (pm.leader, list(pm.replicas), list(pm.isrs)) for p, pm in t.partitions.items()}

    def wait_partitions(self, topic: str, condition, timeout: float = 30.0) -> dict:
        """Until `condition(partition_state(topic))` holds; returns that state."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            try:
                state = self.partition_state(topic)
                if state and condition(state):
                    return state
            except Exception as e:  # a broker going away mid-request
                state = e
            time.sleep(0.1)
        raise AssertionError(f"{topic}: condition not met after {timeout}s; last state {state!r}")

    def leader_of(self, topic: str, partition: int) -> int:
        return self.partition_state(topic)[partition][0]


# Fixtures the cluster test files share (imported into each: pytest finds them by name).
@pytest.fixture(autouse=True, name="_sluice_only")
def sluice_only_fixture(request):
    if "sluice" not in request.config.getoption("--brokers"):
        pytest.skip("a Sluice cluster (Kafka's side: a later 3-node KRaft comparison)")


@pytest.fixture(name="cluster")
def rf3_cluster_fixture():
    """Three brokers and a controller, RF=3 and min.insync.replicas=2 by default."""
    c = SluiceCluster(brokers=3, config={"default.replication.factor": "3", "min.insync.replicas": "2"})
    try:
        c.start()
        yield c
    finally:
        c.cleanup()
