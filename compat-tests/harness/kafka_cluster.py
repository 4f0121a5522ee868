"""Apache Kafka as a cluster, laid out as harness/cluster.py lays out Sluice: a controller-only node
(node 1) and N broker-only nodes (2..N+1), KRaft, on loopback, one cluster id, short sessions. Where
Kafka's behaviour in a cluster is the question, the same scenario runs on both (test_cluster_compare.py).

    with KafkaCluster(brokers=3, config={"min.insync.replicas": "2"}) as c:
        ...  # the views and helpers of SluiceCluster: bootstrap, partition_state, wait_partitions, ...
"""
from __future__ import annotations

import base64
import subprocess
import tempfile
import uuid
from pathlib import Path

from .brokers import Broker, free_port
from .cluster import SluiceCluster

# As the Sluice cluster's: fencing after 2 s without a heartbeat.
KAFKA_TIMEOUTS = {"broker.session.timeout.ms": "2000", "broker.heartbeat.interval.ms": "250",
                  "replica.lag.time.max.ms": "1500", "replica.fetch.wait.max.ms": "100"}


class _KafkaNode(Broker):
    """A Kafka node whose launcher does not wait (a broker is ready only once its controller runs)
    and whose properties drop what a controller-only node must not have."""

    controller_only = False

    def _kafka_props(self) -> Path:
        path = super()._kafka_props()
        if self.controller_only:
            lines = [l for l in path.read_text().splitlines()
                     if not l.startswith(("advertised.listeners=", "inter.broker.listener.name="))]
            path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> "Broker":
        if self.running():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self._kafka_cmd()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)
        return self


class KafkaCluster(SluiceCluster):
    def __init__(self, brokers: int = 3, config: dict[str, str] | None = None):
        self.workdir = Path(tempfile.mkdtemp(prefix="compat-kafka-cluster-"))
        self.netlab = None
        self.cut_off: set[int] = set()
        self.controller_port = free_port()
        voters = f"1@127.0.0.1:{self.controller_port}"
        common = {"controller.quorum.voters": voters, "offsets.topic.replication.factor": str(min(3, brokers)),
                  "offsets.topic.num.partitions": "5", **KAFKA_TIMEOUTS, **(config or {})}
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=").replace("-", "A")
        self.nodes: dict[int, Broker] = {}
        controller = _KafkaNode("kafka", workdir=self.workdir / "node1", port=self.controller_port, extra_config={
            **common, "process.roles": "controller", "node.id": "1",
            "listeners": f"CONTROLLER://127.0.0.1:{self.controller_port}"})
        controller.controller_only = True
        controller.controller_port = self.controller_port
        self.nodes[1] = controller
        for node_id in range(2, brokers + 2):
            port = free_port()
            node = _KafkaNode("kafka", workdir=self.workdir / f"node{node_id}", port=port, extra_config={
                **common, "process.roles": "broker", "node.id": str(node_id),
                "listeners": f"PLAINTEXT://127.0.0.1:{port}"})
            node.controller_port = self.controller_port
            self.nodes[node_id] = node
        for node in self.nodes.values():  # one cluster id for all, formatted before the first start
            node.data_dir.mkdir(parents=True, exist_ok=True)
            props = node._kafka_props()
            fmt = node._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props))
            subprocess.run(fmt, check=True, capture_output=True, timeout=120, cwd=node.workdir)
        self.broker_ids = list(range(2, brokers + 2))

    def start(self) -> "KafkaCluster":
        for node in self.nodes.values():
            node.start()
        self.wait_brokers(len(self.broker_ids), timeout=120)
        return self
