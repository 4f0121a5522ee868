#!/usr/bin/python3
"""Controller quorum benchmark (`make bench-quorum`): three controller-only nodes and three
brokers on loopback, Sluice next to Apache Kafka (KRaft, Kafka 3.9 from Maven Central, stock heap)
in the same run, one cluster at a time, both on Kafka's default quorum timeouts
(controller.quorum.election.timeout.ms 1000, controller.quorum.fetch.timeout.ms 2000):

    Q1  metadata change latency: CreateTopics (1 partition, RF=3) sent one at a time to a broker,
        which forwards it to the active controller; p50/p99 ms until the answer (a change is
        answered once a majority of voters has it on disk), and the controllers' CPU-seconds
    Q2  failover: the active controller kill -9ed; seconds until a CreateTopics through a broker
        succeeds again (retried every 100 ms); the controller restarted and back in sync before
        the next round
    Q3  the controllers' resident memory (VmRSS, MB) after Q1 and Q2

Requests go out raw (compat-tests/harness/kadmin_wire.py), as the tools send them.

    bench/quorum.py                  Q1 60 topics, Q2 4 rounds (~4 minutes): writes bench/QUORUM.md, quorum.json
    bench/quorum.py --quick          Q1 10 topics, Q2 1 round: checks the harness only
"""
from __future__ import annotations

import argparse
import base64
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import KafkaNode, wait_brokers  # noqa: E402
from run import Broker, cpu_seconds, free_port, machine, rss_mb  # noqa: E402
from harness import kadmin_wire  # noqa: E402  (run.py put compat-tests on the path)

PROFILES = {"full": dict(topics=60, rounds=4), "quick": dict(topics=10, rounds=1)}
COMMON = {"default.replication.factor": "3", "min.insync.replicas": "2", "offsets.topic.replication.factor": "3",
          "controller.listener.names": "CONTROLLER"}
CONTROLLERS, BROKERS = (1, 2, 3), (4, 5, 6)


class QuorumCluster:
    """Three controller-only nodes (1-3) and three broker-only nodes (4-6)."""

    def __init__(self, kind: str, work: Path):
        self.kind = kind
        self.ports = {n: free_port() for n in CONTROLLERS + BROKERS}
        voters = ",".join(f"{n}@127.0.0.1:{self.ports[n]}" for n in CONTROLLERS)
        common = {**COMMON, "controller.quorum.voters": voters}
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=").replace("-", "A")
        self.nodes: dict[int, Broker] = {}
        for n in CONTROLLERS + BROKERS:
            controller = n in CONTROLLERS
            config = {**common, "node.id": str(n), "process.roles": "controller" if controller else "broker",
                      "listeners": f"{'CONTROLLER' if controller else 'PLAINTEXT'}://127.0.0.1:{self.ports[n]}"}
            if kind == "kafka":
                node = KafkaNode("kafka", workdir=work / f"kafka{n}", port=self.ports[n], extra_config=config)
                node.controller_port = self.ports[1]
                node.data_dir.mkdir(parents=True, exist_ok=True)
                props = node._kafka_props()
                if controller:  # what a controller-only Kafka node must not have
                    lines = [l for l in props.read_text().splitlines()
                             if not l.startswith(("advertised.listeners=", "inter.broker.listener.name="))]
                    props.write_text("\n".join(lines) + "\n")
                fmt = node._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props))
                subprocess.run(fmt, check=True, capture_output=True, timeout=120, cwd=node.workdir)
            else:
                node = Broker("sluice", workdir=work / f"sluice{n}", port=self.ports[n], extra_config=config)
            self.nodes[n] = node

    def launch(self, n: int) -> None:
        node = self.nodes[n]
        if self.kind == "kafka":
            node.launch()  # a Kafka node is ready only once a quorum of its peers runs
        else:
            node.start()

    def start(self) -> None:
        for n in self.nodes:
            self.launch(n)
        wait_brokers(self.nodes[BROKERS[0]], len(BROKERS), timeout=180)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def broker_conn(self) -> kadmin_wire.Conn:
        for b in BROKERS:
            node = self.nodes[b]
            try:
                return kadmin_wire.Conn(f"127.0.0.1:{node.port}", timeout=20)
            except OSError:
                continue
        raise RuntimeError("no broker answers")

    def quorum(self) -> kadmin_wire.Quorum:
        with self.broker_conn() as c:
            return kadmin_wire.describe_quorum(c)

    def controllers_cpu(self) -> float:
        return sum(cpu_seconds(self.nodes[n].proc.pid) for n in CONTROLLERS if self.nodes[n].proc)


def create(cluster: QuorumCluster, topic: str) -> int:
    with cluster.broker_conn() as c:
        return kadmin_wire.create_topics(c, [(topic, 1, 3)], timeout_ms=15_000)[topic][0]


def wait_in_sync(cluster: QuorumCluster, timeout: float = 120) -> kadmin_wire.Quorum:
    """Until the leader reports all three voters at its high watermark."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            q = cluster.quorum()
            if q.partition_error == 0 and len(q.voters) == 3 and {v[0] for v in q.voters.values()} == {q.high_watermark}:
                return q
        except (OSError, RuntimeError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the quorum did not come back in sync")
        time.sleep(0.2)


def run_one(cluster: QuorumCluster, prof: dict) -> dict:
    res: dict = {}
    wait_in_sync(cluster)
    cpu0 = cluster.controllers_cpu()
    latencies = []
    for i in range(prof["topics"]):
        t0 = time.monotonic()
        code = create(cluster, f"q1-{i}")
        latencies.append((time.monotonic() - t0) * 1000)
        if code != 0:
            raise RuntimeError(f"CreateTopics failed with {code}")
    latencies.sort()
    res["q1_p50_ms"] = round(statistics.median(latencies), 1)
    res["q1_p99_ms"] = round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
    res["q1_controllers_cpu_s"] = round(cluster.controllers_cpu() - cpu0, 2)

    failovers = []
    for r in range(prof["rounds"]):
        leader = wait_in_sync(cluster).leader_id
        cluster.nodes[leader].kill9()
        t0 = time.monotonic()
        while True:
            try:
                if create(cluster, f"q2-{r}") in (0, 36):  # created (36: by an attempt whose answer was lost)
                    break
            except (OSError, RuntimeError):
                pass
            if time.monotonic() - t0 > 120:
                raise RuntimeError("no controller took over in 120 s")
            time.sleep(0.1)
        failovers.append(round(time.monotonic() - t0, 2))
        cluster.launch(leader)
    wait_in_sync(cluster)
    res["q2_failover_s"] = failovers
    res["q2_failover_median_s"] = round(statistics.median(failovers), 2)
    res["q3_controller_rss_mb"] = [round(rss_mb(cluster.nodes[n].proc.pid) or 0, 1) for n in CONTROLLERS]
    return res


def write_report(out: Path, data: dict) -> None:
    s, k = data["sluice"], data["kafka"]

    def row(name, key, fmt="{}"):
        return f"| {name} | {fmt.format(s.get(key))} | {fmt.format(k.get(key))} |"

    lines = [
        "# Controller quorum: Sluice next to Kafka",
        "",
        f"`bench/quorum.py`, {data['date']}, {data['machine']['cpus']} CPUs ({data['machine']['cpu']}), "
        f"load average {data['machine']['loadavg_at_start']:.2f} at start. Three controller-only nodes and three "
        "brokers on loopback, each product on its own, Kafka's default quorum timeouts for both "
        "(election 1000 ms, fetch 2000 ms). Kafka 3.9.1 (KRaft), stock 1 GB heaps.",
        "",
        "| | Sluice | Kafka |",
        "|---|---|---|",
        row(f"Q1 CreateTopics p50, ms ({data['profile']['topics']} one at a time)", "q1_p50_ms"),
        row("Q1 CreateTopics p99, ms", "q1_p99_ms"),
        row("Q1 controllers' CPU-seconds", "q1_controllers_cpu_s"),
        row(f"Q2 failover after kill -9 of the active controller, s (median of {data['profile']['rounds']})",
            "q2_failover_median_s"),
        row("Q2 each round, s", "q2_failover_s"),
        row("Q3 controllers' RSS, MB", "q3_controller_rss_mb"),
        "",
        "Q1 is answered once a majority of voters holds the change on disk (Sluice syncs each "
        "voter's copy before it counts; Kafka's figure includes its controller's append linger). Q2 is bounded by "
        "the fetch timeout a follower waits before standing, plus an election.",
    ]
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args()
    prof = PROFILES["quick" if args.quick else "full"]
    data = {"date": datetime.date.today().isoformat(), "machine": machine(), "profile": prof}
    for kind in ("kafka", "sluice"):
        with tempfile.TemporaryDirectory(prefix=f"bench-quorum-{kind}-") as work:
            cluster = QuorumCluster(kind, Path(work))
            try:
                cluster.start()
                data[kind] = run_one(cluster, prof)
            finally:
                cluster.stop()
        print(kind, json.dumps(data[kind]), flush=True)
    out = Path(args.out)
    if not args.quick:
        (out / "quorum.json").write_text(json.dumps(data, indent=2) + "\n")
        write_report(out / "QUORUM.md", data)
    else:
        print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
