#!/usr/bin/python3
"""Cluster benchmark (`make bench-cluster`): three brokers on loopback, RF=3, min.insync.replicas=2,
6 partitions, 1 KiB values, Sluice next to Apache Kafka in the same run, one cluster at a time:

    C1  produce acks=all, RF=3: MB/s, and every cluster process's CPU-seconds per GB
    C2  produce acks=1, RF=3: MB/s
    C3  end-to-end at 10,000 msg/s, acks=all, RF=3, producer and consumer at once: p50/p99/p99.9,
        with librdkafka's default linger (5 ms), and (C3b) with linger 1 ms
    C4  Sluice only: produce acks=all on an RF=1 topic of the same cluster (the 0.7x target's base)
    C5  a controlled stop: SIGTERM to the leader of partition 0, then the time until a surviving
        broker's Metadata shows every partition it led on another broker

Sluice runs as a controller and three broker processes (harness/cluster.py's layout); Kafka as
three combined KRaft nodes (broker and controller, Kafka 3.9 from Maven Central, stock heap and
threads). Each repetition starts both fresh, Kafka's first; the figures are medians over the
repetitions. Sluice syncs the leader's copy before an acks=all answer; Kafka, on its defaults,
does not. Stdlib only, like run.py, whose helpers it reuses.

    bench/cluster.py                  two repetitions (~8 minutes): writes bench/CLUSTER.md, cluster.json
    bench/cluster.py --quick          tiny workloads, one repetition: checks the harness only
    bench/cluster.py --systems sluice --workloads C1,C4
                                      a partial run (build/bench-cluster-partial/), e.g. while tuning
"""
from __future__ import annotations

import argparse
import base64
import datetime
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (LOADGEN, MB, Broker, children_cpu, cpu_seconds, dd_new_file, free_port, loadgen, machine,  # noqa: E402
                 steal_pct, steal_ticks)
from harness import kwire  # noqa: E402  (run.py put compat-tests on the path)

PROFILES = {
    "full": dict(reps=2, c1_count=400_000, c3_rate=10_000, c3_secs=20, cap=120),
    "quick": dict(reps=1, c1_count=20_000, c3_rate=2_000, c3_secs=3, cap=60),
}
SYSTEMS = ("kafka", "sluice")  # in the order they run
WORKLOADS = ("C1", "C2", "C3", "C3b", "C4", "C5")
VALUE = 1024
PARTITIONS = 6
COMMON = {"default.replication.factor": "3", "min.insync.replicas": "2", "offsets.topic.replication.factor": "3",
          "num.partitions": "6"}


class SluiceBenchCluster:
    """A controller (node 1) and three broker-only nodes (2-4), production timeouts."""
    kind = "sluice"

    def __init__(self, work: Path):
        self.controller_port = free_port()
        voters = {"controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
                  "controller.listener.names": "CONTROLLER", **COMMON}
        self.nodes = {1: Broker("sluice", workdir=work / "node1", port=self.controller_port,
                                extra_config={**voters, "process.roles": "controller", "node.id": "1",
                                              "listeners": f"CONTROLLER://127.0.0.1:{self.controller_port}"})}
        for n in (2, 3, 4):
            self.nodes[n] = Broker("sluice", workdir=work / f"node{n}",
                                   extra_config={**voters, "process.roles": "broker", "node.id": str(n)})
        self.brokers = [2, 3, 4]

    def start(self):
        for node in self.nodes.values():
            node.start()
        wait_brokers(self.nodes[2], 3)

    def stop(self):
        for node in reversed(list(self.nodes.values())):
            node.stop()


class KafkaNode(Broker):
    """One combined KRaft node of a three-node Kafka, with Kafka's stock heap and threads."""

    def _java(self, main: str, *args: str) -> list[str]:
        cmd = [a for a in super()._java(main, *args) if not a.startswith(("-Xm", "-XX:"))]
        return cmd[:1] + ["-Xmx1G", "-Xms1G", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                          "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent"] + cmd[1:]

    def launch(self) -> None:
        """Start without waiting: a node is ready only once a quorum of its peers runs too."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = self._kafka_cmd()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)


class KafkaBenchCluster:
    kind = "kafka"

    def __init__(self, work: Path):
        ports = {n: (free_port(), free_port()) for n in (1, 2, 3)}
        voters = ",".join(f"{n}@127.0.0.1:{c}" for n, (_, c) in ports.items())
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=").replace("-", "A")
        self.nodes = {}
        for n, (port, ctrl) in ports.items():
            node = KafkaNode("kafka", workdir=work / f"kafka{n}", port=port, extra_config={
                **COMMON, "node.id": str(n), "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
                "transaction.state.log.replication.factor": "3", "transaction.state.log.min.isr": "2",
                "num.network.threads": "3", "num.io.threads": "8", "log.cleaner.enable": "true"})
            node.controller_port = ctrl
            # The same cluster id on every node: formatted here, so the launcher does not make its own.
            node.data_dir.mkdir(parents=True, exist_ok=True)
            props = node._kafka_props()
            fmt = node._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props))
            subprocess.run(fmt, check=True, capture_output=True, timeout=120, cwd=node.workdir)
            self.nodes[n] = node
        self.brokers = [1, 2, 3]

    def start(self):
        for node in self.nodes.values():
            node.launch()
        for node in self.nodes.values():
            node._wait_ready(120)
        wait_brokers(self.nodes[1], 3)

    def stop(self):
        for node in self.nodes.values():
            node.stop()


def wait_brokers(node: Broker, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if kwire.metadata_broker_count(node.host, node.port, 2.0) == count:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{count} brokers not registered after {timeout}s")


def cluster_cpu(cluster) -> float:
    return sum(cpu_seconds(n.proc.pid) for n in cluster.nodes.values() if n.proc and n.proc.poll() is None)


def page_cache_write_cost(work: Path, mib: int = 1024) -> float | None:
    """CPU-seconds per GB this machine spends writing a new file (dd, 1 MiB writes, then
    fdatasync): the kernel's cost of taking bytes into fresh page cache, which every copy of
    every replica pays, whichever broker writes it."""
    try:
        _, cpu = dd_new_file(work / "page-cache-write-test", mib)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"dd failed, no page-cache figure: {e}", file=sys.stderr)
        return None
    return round(cpu / (mib * 1024 * 1024) * 1e9, 3)


def controlled_stop(cluster, topic: str) -> dict:
    """SIGTERM to partition 0's leader; seconds until another broker's Metadata shows each
    partition it led under a new leader (the clients' view of the hand-over)."""
    first = cluster.nodes[cluster.brokers[0]]
    view = kwire.metadata_leader_epochs(first.host, first.port, topic)
    victim_id = view[0][0]
    led = [p for p, (leader, _, _) in view.items() if leader == victim_id]
    victim = cluster.nodes[victim_id]
    observer = next(cluster.nodes[b] for b in cluster.brokers if b != victim_id)
    t0 = time.monotonic()
    victim.proc.send_signal(signal.SIGTERM)
    moved = None
    while time.monotonic() - t0 < 30:
        try:
            now = kwire.metadata_leader_epochs(observer.host, observer.port, topic)
            if all(now[p][0] not in (-1, victim_id) for p in led):
                moved = time.monotonic() - t0
                break
        except OSError:
            pass
        time.sleep(0.01)
    victim.proc.wait(60)
    return {"victim": victim_id, "partitions_led": len(led),
            "leadership_moved_s": round(moved, 3) if moved is not None else None,
            "process_exited_s": round(time.monotonic() - t0, 3)}


def run_cluster(cluster, prof: dict, progress, workloads: set[str]) -> dict:
    res: dict = {}
    t = time.monotonic()
    cluster.start()
    res["start_seconds"] = round(time.monotonic() - t, 1)
    boot = ",".join(cluster.nodes[b].bootstrap for b in cluster.brokers)
    cap = prof["cap"]

    def create(topic: str, rf: int = 3):
        configs = [] if rf == 3 else ["-C", "min.insync.replicas=1"]  # acks=all on one replica
        r = loadgen(["create", "-b", boot, "-t", topic, "-p", str(PARTITIONS), "-F", str(rf), *configs], cap)
        if "error" in r:
            raise RuntimeError(f"create {topic}: {r['error']}")
        time.sleep(1.0)  # followers fetch once before the timed load starts

    def timed(name: str, args: list[str]) -> dict | None:
        if name not in workloads:
            return None
        progress(f"{cluster.kind}: {name}")
        subprocess.run(["sync"])
        time.sleep(0.3)
        cpu0, steal0, client0 = cluster_cpu(cluster), steal_ticks(), children_cpu()
        r = loadgen([args[0], "-b", boot, *args[1:]], cap + prof["c3_secs"] + 60)
        # Read before cluster_cpu(), whose poll() would reap (and count here) a node that died.
        r["loadgen_cpu_s"] = round(children_cpu() - client0, 3)
        r["cluster_cpu_s"] = round(cluster_cpu(cluster) - cpu0, 3)
        r["steal_pct"] = steal_pct(steal0, steal_ticks())
        res[name] = r
        return r

    try:
        for topic in ("warm", "c1", "c2", "c3", "c3b"):
            create(topic)
        if cluster.kind == "sluice":
            create("c4", rf=1)
        progress(f"{cluster.kind}: warm-up (not timed)")
        loadgen(["produce", "-b", boot, "-t", "warm", "-s", str(VALUE), "-c", str(prof["c1_count"] // 2),
                 "-a", "all", "-T", str(cap)], cap + 60)
        loadgen(["consume", "-b", boot, "-t", "warm", "-c", "1", "-T", str(cap)], cap + 60)  # the group coordinator
        produce = ["-s", str(VALUE), "-c", str(prof["c1_count"]), "-T", str(cap), "-l", "5"]
        timed("C1", ["produce", "-t", "c1", "-a", "all", *produce])
        timed("C2", ["produce", "-t", "c2", "-a", "1", *produce])
        for name, topic, linger in (("C3", "c3", "5"), ("C3b", "c3b", "1")):
            timed(name, ["e2e", "-t", topic, "-s", str(VALUE), "-r", str(prof["c3_rate"]), "-d", str(prof["c3_secs"]),
                         "-w", "3", "-a", "all", "-l", linger])
        if cluster.kind == "sluice":
            timed("C4", ["produce", "-t", "c4", "-a", "all", *produce])
        if "C5" in workloads:
            progress(f"{cluster.kind}: C5 controlled stop")
            res["C5"] = controlled_stop(cluster, "c1")
    finally:
        cluster.stop()
    return res


def median(values: list) -> float | None:
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def figures(runs: list[dict], kind: str) -> dict:
    rs = [r[kind] for r in runs if kind in r]

    def m(get):
        out = []
        for r in rs:
            try:
                out.append(get(r))
            except (KeyError, TypeError, ZeroDivisionError):
                pass
        return median(out)
    return {
        "C1 acks=all RF=3 MB/s": m(lambda r: r["C1"]["mb_per_s"]),
        "C1 cluster CPU s per GB": m(lambda r: r["C1"]["cluster_cpu_s"] / r["C1"]["bytes"] * 1e9),
        "C2 acks=1 RF=3 MB/s": m(lambda r: r["C2"]["mb_per_s"]),
        "C3 e2e p50 ms": m(lambda r: r["C3"]["lat_ms"]["p50"]),
        "C3 e2e p99 ms": m(lambda r: r["C3"]["lat_ms"]["p99"]),
        "C3 e2e p99.9 ms": m(lambda r: r["C3"]["lat_ms"]["p999"]),
        "C3b e2e p50 ms, linger 1 ms": m(lambda r: r["C3b"]["lat_ms"]["p50"]),
        "C3b e2e p99 ms, linger 1 ms": m(lambda r: r["C3b"]["lat_ms"]["p99"]),
        "C4 acks=all RF=1 MB/s": m(lambda r: r["C4"]["mb_per_s"]),
        "C4 cluster CPU s per GB": m(lambda r: r["C4"]["cluster_cpu_s"] / r["C4"]["bytes"] * 1e9),
        "C1 load generator CPU s per GB": m(lambda r: r["C1"]["loadgen_cpu_s"] / r["C1"]["bytes"] * 1e9),
        "C4 load generator CPU s per GB": m(lambda r: r["C4"]["loadgen_cpu_s"] / r["C4"]["bytes"] * 1e9),
        "C5 controlled stop, leadership moved s": m(lambda r: r["C5"]["leadership_moved_s"]),
    }


def ceiling_note(data: dict, s: dict) -> str:
    """C1 and C4 as CPU budgets: the brokers' and the load generator's CPU-seconds per GB on the
    machine's CPUs, and what RF=3's brokers would have to cost for the 0.7x target."""
    write = median([r.get("page_cache_write_cpu_s_per_gb") for r in data["runs"]])
    c1, c4 = s["C1 cluster CPU s per GB"], s["C4 cluster CPU s per GB"]
    g1, g4 = s["C1 load generator CPU s per GB"], s["C4 load generator CPU s per GB"]
    c4_mb = s["C4 acks=all RF=1 MB/s"]
    cpus = data["machine"].get("cpus")
    if not all(isinstance(v, (int, float)) for v in (write, c1, c4, g1, g4, c4_mb, cpus)):
        return "- The CPU budget of C1 and C4 could not be computed (a figure is missing)."
    need = cpus / (0.7 * c4_mb / 1000) - g1
    return (f"- CPU budget: per GB produced, C1 cost the brokers {c1:.2f} and the load generator {g1:.2f} "
            f"CPU-seconds, C4 {c4:.2f} and {g4:.2f}; on {cpus} CPUs that allows at most "
            f"{cpus / (c1 + g1) * 1000:.0f} and {cpus / (c4 + g4) * 1000:.0f} MB/s. For C1 to reach 0.7x C4 "
            f"here, RF=3's brokers would have to cost at most {need:.2f} s per GB. Writing a new file costs "
            f"{write:.2f} s per GB on this machine (dd, in this run; it includes dd's own reads of /dev/zero): "
            f"RF=3's three copies take {3 * write:.2f} s of the brokers' {c1:.2f} s per GB before any network or "
            f"Kafka work. The budget takes the CPUs as wholly available; steal (below) takes part of them.")


def write_report(out: Path, data: dict) -> None:
    s, k = figures(data["runs"], "sluice"), figures(data["runs"], "kafka")
    lines = [f"# Cluster benchmark ({data['date']}, {data['profile']} profile, {len(data['runs'])} repetition(s))", "",
             "Three brokers on loopback, RF=3, min.insync.replicas=2, 6 partitions, 1 KiB values; Sluice (a "
             "controller and three brokers) and Kafka 3.9 (three combined KRaft nodes, stock heap and threads) "
             "one after the other on this machine; medians over the repetitions. Written by `bench/cluster.py`; "
             "every raw figure is in `cluster.json`.", "",
             "| figure | Sluice | Kafka | Sluice / Kafka | target |", "|---|---|---|---|---|"]

    def fmt(v):
        return "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")
    targets = {"C1 acks=all RF=3 MB/s": lambda: f">= 2x Kafka: {'met' if s[c1] and k[c1] and s[c1] >= 2 * k[c1] else 'not met'}; "
                                                f">= 0.7x Sluice RF=1 ({fmt(s['C4 acks=all RF=1 MB/s'])} MB/s): "
                                                f"{'met' if s[c1] and s['C4 acks=all RF=1 MB/s'] and s[c1] >= 0.7 * s['C4 acks=all RF=1 MB/s'] else 'not met'}",
               "C3 e2e p99 ms": lambda: f"<= 0.5x Kafka: {'met' if s[p99] and k[p99] and s[p99] <= 0.5 * k[p99] else 'not met'}",
               "C5 controlled stop, leadership moved s": lambda: f"< 1 s: {'met' if s[c5] is not None and s[c5] < 1 else 'not met'}"}
    c1, p99, c5 = "C1 acks=all RF=3 MB/s", "C3 e2e p99 ms", "C5 controlled stop, leadership moved s"
    for name in s:
        ratio = s[name] / k[name] if s[name] and k[name] else None
        lines.append(f"| {name} | {fmt(s[name])} | {fmt(k[name])} | {fmt(ratio)} | {targets.get(name, lambda: '')()} |")
    lines += ["", "Notes:", "",
              "- Sluice syncs the leader's copy (fdatasync, group commit) before an acks=all answer; Kafka on its "
              "defaults does not sync at all. Neither syncs followers before answering.",
              "- C3 is acks=all with librdkafka's default linger (5 ms), C3b with linger 1 ms; latency is from each "
              "message's scheduled send time to its receipt by the consumer (no coordinated omission), after 3 s of "
              "warm-up. At linger 1 ms the producer pipelines a request per partition leader every millisecond. "
              "Kafka answers a connection's requests one after the other, each after its replication: they arrive "
              "faster than they are answered and the queue grows for the whole run. Sluice reads and appends a "
              "connection's next Produce while the previous one waits for its sync and replicas (answers still in "
              "order), so the waits overlap.",
              "- C1 against C4: RF=3 writes every byte three times and moves it over loopback twice more, so its "
              "cluster CPU per GB is several times RF=1's. Both share the machine's CPUs with the load generator "
              "(one librdkafka producer); the budget below says what each used.",
              "- C5 is measured from the SIGTERM to the first Metadata answer of another broker that shows every "
              "partition of the stopped broker under a new leader (polled every 10 ms).",
              ceiling_note(data, s),
              f"- Steal (CPU the hypervisor gave elsewhere) per workload is in `cluster.json`; machine: "
              f"{data['machine'].get('cpus', '?')} CPUs."]
    (out / "CLUSTER.md").write_text("\n".join(lines) + "\n")
    (out / "cluster.json").write_text(json.dumps(data, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None,
                    help="report folder (default: bench/; build/bench-cluster-quick or -partial with --quick, "
                         "--systems or --workloads)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="which clusters to run, e.g. sluice (a partial run)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="which workloads to run, e.g. C1,C4")
    args = ap.parse_args()
    prof = PROFILES["quick" if args.quick else "full"]
    asked_systems, workloads = set(args.systems.split(",")), set(args.workloads.split(","))
    unknown = (asked_systems - set(SYSTEMS)) | (workloads - set(WORKLOADS))
    if unknown:
        ap.error(f"unknown system or workload: {', '.join(sorted(unknown))}")
    systems = [k for k in SYSTEMS if k in asked_systems]
    partial = systems != list(SYSTEMS) or workloads != set(WORKLOADS)
    build_dir = Path(__file__).resolve().parents[1] / "build"
    out = args.out or (build_dir / "bench-cluster-quick" if args.quick
                       else build_dir / "bench-cluster-partial" if partial else Path(__file__).resolve().parent)
    out.mkdir(parents=True, exist_ok=True)
    if not LOADGEN.exists():
        print(f"no load generator at {LOADGEN}: run `make build`", file=sys.stderr)
        return 2

    def progress(msg: str):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    runs = []
    for rep in range(prof["reps"]):
        with tempfile.TemporaryDirectory(prefix="bench-cluster-dd-") as work:
            run = {"page_cache_write_cpu_s_per_gb": page_cache_write_cost(Path(work), 256 if args.quick else 1024)}
        for kind in systems:
            with tempfile.TemporaryDirectory(prefix=f"bench-cluster-{kind}-") as work:
                cluster = KafkaBenchCluster(Path(work)) if kind == "kafka" else SluiceBenchCluster(Path(work))
                progress(f"repetition {rep + 1}: {kind}")
                try:
                    run[kind] = run_cluster(cluster, prof, progress, workloads)
                except Exception as e:  # reported, the run goes on
                    run[kind] = {"error": str(e)}
                    progress(f"{kind} FAILED: {e}")
        runs.append(run)
    data = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "profile": "quick" if args.quick else "full", "machine": machine(), "runs": runs}
    write_report(out, data)
    print((out / "CLUSTER.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
