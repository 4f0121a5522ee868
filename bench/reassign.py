#!/usr/bin/python3
"""Reassignment benchmark (`make bench-reassign`): how fast a partition's replica moves to a broker
that holds none of it, unthrottled and under kafka-reassign-partitions.sh's throttle, Sluice next
to Apache Kafka in the same run (bench/cluster.py's clusters: Sluice's controller and three
brokers, Kafka's three combined KRaft nodes).

    R1  one partition of DATA_MB, RF=2, moved to the third broker (the follower replaced): seconds
        from the AlterPartitionReassignments answer to no reassignment listed; MB/s; the cluster's
        CPU-seconds for it
    R2  the same move back (the replaced broker deleted its copy: a full copy again) under a
        throttle of THROTTLE_MB MB/s (leader.replication.throttled.rate and
        follower.replication.throttled.rate on every broker, *.replication.throttled.replicas=*
        on the topic): the rate reached, which should be at most the throttle

Requests go out raw (compat-tests/harness/kadmin_wire.py), as the tool sends them.

    bench/reassign.py                  one repetition (~3 minutes): writes bench/REASSIGN.md, reassign.json
    bench/reassign.py --quick          small data: checks the harness only
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import KafkaBenchCluster, SluiceBenchCluster, cluster_cpu  # noqa: E402
from run import MB, loadgen, machine  # noqa: E402
from harness import kadmin_wire, kwire  # noqa: E402  (run.py put compat-tests on the path)

PROFILES = {"full": dict(data_mb=300, throttle_mb=20), "quick": dict(data_mb=20, throttle_mb=5)}
VALUE = 1024
TOPIC = "moved"


def conn(node) -> kadmin_wire.Conn:
    return kadmin_wire.Conn(f"{node.host}:{node.port}")


def replicas_of(cluster) -> tuple[int, list[int]]:
    node = cluster.nodes[cluster.brokers[0]]
    p = kwire.metadata_partitions(node.host, node.port, TOPIC)[0]
    return p["leader"], p["replicas"]


def move(cluster, target: list[int], timeout: float = 600) -> float:
    """Seconds from the reassignment's answer until none is listed."""
    leader, _ = replicas_of(cluster)
    with conn(cluster.nodes[leader]) as c:
        _, results = kadmin_wire.alter_partition_reassignments(c, {(TOPIC, 0): target})
        if results[(TOPIC, 0)][0] != 0:
            raise RuntimeError(f"reassignment refused: {results}")
        t0 = time.monotonic()
        while kadmin_wire.list_partition_reassignments(c)[1]:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"reassignment not done after {timeout}s")
            time.sleep(0.05)
        return time.monotonic() - t0


def throttle(cluster, bytes_per_s: int) -> None:
    for b in cluster.brokers:
        with conn(cluster.nodes[b]) as c:
            answer = kadmin_wire.incremental_alter_configs(c, [(4, str(b), [
                ("leader.replication.throttled.rate", 0, str(bytes_per_s)),
                ("follower.replication.throttled.rate", 0, str(bytes_per_s))])])
            if answer[0].error != 0:
                raise RuntimeError(f"broker {b} throttle: {answer[0]}")
    with conn(cluster.nodes[cluster.brokers[0]]) as c:
        answer = kadmin_wire.incremental_alter_configs(c, [(2, TOPIC, [
            ("leader.replication.throttled.replicas", 0, "*"), ("follower.replication.throttled.replicas", 0, "*")])])
        if answer[0].error != 0:
            raise RuntimeError(f"topic throttle: {answer[0]}")


def run_cluster(cluster, prof: dict, progress) -> dict:
    res: dict = {}
    cluster.start()
    boot = ",".join(cluster.nodes[b].bootstrap for b in cluster.brokers)
    try:
        r = loadgen(["create", "-b", boot, "-t", TOPIC, "-p", "1", "-F", "2", "-C", "min.insync.replicas=1"], 60)
        if "error" in r:
            raise RuntimeError(f"create: {r['error']}")
        time.sleep(1.0)
        count = int(prof["data_mb"] * MB) // VALUE
        progress(f"{cluster.kind}: writing {prof['data_mb']} MB")
        r = loadgen(["produce", "-b", boot, "-t", TOPIC, "-s", str(VALUE), "-c", str(count), "-a", "all",
                     "-T", "300"], 360)
        if "error" in r:
            raise RuntimeError(f"produce: {r['error']}")
        time.sleep(2.0)  # the follower has everything
        leader, replicas = replicas_of(cluster)
        replaced = next(r for r in replicas if r != leader)
        spare = next(b for b in cluster.brokers if b not in replicas)
        data_mb = count * VALUE / MB
        for name, target, limit in (("R1", [leader, spare], None), ("R2", [leader, replaced], prof["throttle_mb"])):
            if limit:
                throttle(cluster, int(limit * MB))
            progress(f"{cluster.kind}: {name} {replicas} -> {target}" + (f" at {limit} MB/s" if limit else ""))
            cpu0 = cluster_cpu(cluster)
            seconds = move(cluster, target)
            res[name] = {"data_mb": round(data_mb, 1), "seconds": round(seconds, 2),
                         "mb_per_s": round(data_mb / seconds, 1), "throttle_mb_per_s": limit,
                         "cluster_cpu_s": round(cluster_cpu(cluster) - cpu0, 2)}
            replicas = target
    finally:
        cluster.stop()
    return res


def write_report(out: Path, data: dict) -> None:
    (out / "reassign.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [f"# Reassignment benchmark ({data['date']}, profile {data['profile']})", "",
             "`bench/reassign.py`: one partition of 1 KiB records, RF=2, its follower replaced by the broker "
             "that holds none of it (R1, unthrottled), then moved back under a throttle (R2). Seconds from the "
             "AlterPartitionReassignments answer until ListPartitionReassignments lists nothing.", "",
             "| run | broker | MB | seconds | MB/s | throttle MB/s | cluster CPU s |", "|---|---|---|---|---|---|---|"]
    for kind in ("kafka", "sluice"):
        r = data["runs"].get(kind, {})
        if "error" in r:
            lines.append(f"| - | {kind} | error: {r['error']} | | | | |")
            continue
        for name in ("R1", "R2"):
            f = r.get(name)
            if f:
                lines.append(f"| {name} | {kind} | {f['data_mb']} | {f['seconds']} | {f['mb_per_s']} | "
                             f"{f['throttle_mb_per_s'] or '-'} | {f['cluster_cpu_s']} |")
    lines += ["", f"Machine: {data['machine']}", ""]
    (out / "REASSIGN.md").write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    prof = PROFILES["quick" if args.quick else "full"]
    out = args.out or (Path(__file__).resolve().parents[1] / "build" / "bench-reassign-quick" if args.quick
                       else Path(__file__).resolve().parent)
    out.mkdir(parents=True, exist_ok=True)

    def progress(msg: str):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    runs = {}
    for kind in ("kafka", "sluice"):
        with tempfile.TemporaryDirectory(prefix=f"bench-reassign-{kind}-") as work:
            cluster = KafkaBenchCluster(Path(work)) if kind == "kafka" else SluiceBenchCluster(Path(work))
            try:
                runs[kind] = run_cluster(cluster, prof, progress)
            except Exception as e:  # reported, the run goes on
                runs[kind] = {"error": str(e)}
                progress(f"{kind} FAILED: {e}")
    data = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "profile": "quick" if args.quick else "full", "machine": machine(), "runs": runs}
    write_report(out, data)
    print((out / "REASSIGN.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
