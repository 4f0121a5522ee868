#!/usr/bin/python3
"""Federation benchmark (`make bench-federation`): what the endpoint (`sluice federation`) costs next
to a direct connection, in the same run. Two single-node Sluice members, a and b, and the endpoint
over them, all on loopback; the load is bench/loadgen.c's, as in bench/run.py.

    F1  W1's load (100 B messages, acks=1, 6 partitions) to a topic on member a: directly to a,
        and through the endpoint
    F3  W3's load: that topic read back from the beginning, directly and through the endpoint
    F4  W4's load: end-to-end latency at 10,000 msg/s (linger 1 ms), directly and through the endpoint
    S1  W1's load through the endpoint to a topic split over a and b, next to a topic on a alone
Each pair runs in alternating order, `rounds` times; the figures are medians, each ratio the median of
the rounds' own (a pair runs back to back, so it shares the machine's state). The endpoint's own
CPU-seconds per workload are in federation.json. Targets (issue 19): through the endpoint at least
0.8x the direct throughput, and p99 at most 1 ms more.

    bench/federation.py            6,000,000 messages, 5 rounds (~5 minutes): writes bench/FEDERATION.md
    bench/federation.py --quick    small loads, 1 round: checks the harness only
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import MB, cpu_seconds, loadgen, machine  # noqa: E402
from harness import kwire  # noqa: E402  (run.py put compat-tests on the path)
from harness.brokers import Broker  # noqa: E402
from harness.federation import FederationNode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROFILES = {"full": dict(rounds=5, count=6_000_000, e2e_secs=15, cap=60),
            "quick": dict(rounds=1, count=50_000, e2e_secs=3, cap=30)}
PARTITIONS = 6
W1_CLIENT = ["-B", "256", "-L", "64"]  # as bench/run.py's W1


def wait_listed(bootstrap: str, topic: str, timeout: float = 20) -> None:
    """Until the endpoint's Metadata has the topic with a leader on every partition (adopted)."""
    host, port = bootstrap.split(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            parts = kwire.metadata_partitions(host, int(port), topic)
            if len(parts) == PARTITIONS and all(p["leader"] >= 0 for p in parts.values()):
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic} not listed by the endpoint")
        time.sleep(0.1)


def create(bootstrap: str, topic: str, *configs: str) -> None:
    r = loadgen(["create", "-b", bootstrap, "-t", topic, "-p", str(PARTITIONS), *[a for c in configs for a in ("-C", c)]],
                timeout=60)
    if "error" in r:
        raise RuntimeError(f"create {topic}: {r['error']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    prof = PROFILES["quick" if args.quick else "full"]
    out_dir = ROOT / "build" / "bench-federation-quick" if args.quick else ROOT / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    a, b = Broker("sluice"), Broker("sluice")
    node = None
    runs: list[dict] = []
    try:
        a.start()
        b.start()
        node = FederationNode({"a": a.bootstrap, "b": b.bootstrap}).start()
        pid = node.proc.pid
        cap = str(prof["cap"])

        def timed(bootstrap: str, *load: str, timeout: float = 180) -> dict:
            before = cpu_seconds(pid)
            r = loadgen([load[0], "-b", bootstrap, *load[1:]], timeout=timeout)
            r["endpoint_cpu_s"] = round(cpu_seconds(pid) - before, 3)
            if "error" in r:
                raise RuntimeError(r["error"])
            return r

        for n in range(prof["rounds"]):
            run: dict = {}
            paths = [("direct", a.bootstrap), ("endpoint", node.bootstrap)]
            if n % 2:
                paths.reverse()
            for path, bootstrap in paths:
                topic = f"f1-{path}-{n}"
                create(a.bootstrap, topic)  # on a; the endpoint adopts it
                wait_listed(node.bootstrap, topic)
                run[f"F1 {path}"] = timed(bootstrap, "produce", "-t", topic, "-s", "100", "-c", str(prof["count"]),
                                          "-a", "1", "-p", str(PARTITIONS), "-T", cap, *W1_CLIENT)
                run[f"F3 {path}"] = timed(bootstrap, "consume", "-t", topic, "-c", str(prof["count"]), "-T", cap)
                e2e = f"f4-{path}-{n}"
                create(a.bootstrap, e2e)
                wait_listed(node.bootstrap, e2e)
                run[f"F4 {path}"] = timed(bootstrap, "e2e", "-t", e2e, "-s", "100", "-r", "10000", "-d",
                                          str(prof["e2e_secs"]), "-w", "3", "-a", "1", "-l", "1", "-p", str(PARTITIONS),
                                          timeout=prof["e2e_secs"] + 60)
            shapes = [("one", ()), ("split", ("federation.split.clusters=2",))]
            if n % 2:
                shapes.reverse()
            for shape, configs in shapes:
                topic = f"s1-{shape}-{n}"
                if configs:
                    create(node.bootstrap, topic, *configs)
                else:
                    create(a.bootstrap, topic)
                wait_listed(node.bootstrap, topic)
                run[f"S1 {shape}"] = timed(node.bootstrap, "produce", "-t", topic, "-s", "100", "-c",
                                           str(prof["count"]), "-a", "1", "-p", str(PARTITIONS), "-T", cap, *W1_CLIENT)
            runs.append(run)
            print(json.dumps({k: {f: v.get(f) for f in ("msg_per_s", "mb_per_s", "lat_ms", "endpoint_cpu_s")}
                              for k, v in run.items()}), flush=True)
    finally:
        if node:
            node.cleanup()
        a.cleanup()
        b.cleanup()

    def med(key: str, field) -> float:
        return statistics.median(field(r[key]) for r in runs)

    rate = lambda r: r["msg_per_s"]  # noqa: E731
    rows = []
    for label, key in (("F1 produce 100 B acks=1, msg/s", "F1"), ("F3 consume, msg/s", "F3")):
        d, e = med(f"{key} direct", rate), med(f"{key} endpoint", rate)
        # The ratio is the median of each round's own (the pair ran back to back): on a shared, noisy
        # machine a round's conditions affect both of its runs.
        ratios = [rate(r[f"{key} endpoint"]) / rate(r[f"{key} direct"]) for r in runs]
        ratio = statistics.median(ratios)
        each = ", ".join(f"{x:.2f}" for x in ratios)
        rows.append(f"| {label} | {d:,.0f} | {e:,.0f} | {ratio:.2f} ({each}) | "
                    f">= 0.8x: {'met' if ratio >= 0.8 else 'NOT met'} |")
    for q, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
        d, e = med("F4 direct", lambda r: r["lat_ms"][q]), med("F4 endpoint", lambda r: r["lat_ms"][q])
        extra = statistics.median(r["F4 endpoint"]["lat_ms"][q] - r["F4 direct"]["lat_ms"][q] for r in runs)
        target = f"at most +1 ms: {'met' if extra <= 1.0 else 'NOT met'}" if q == "p99" else ""
        rows.append(f"| F4 end-to-end {name} at 10,000 msg/s, ms | {d:.3f} | {e:.3f} | {extra:+.3f} ms | {target} |")
    one, split = med("S1 one", rate), med("S1 split", rate)
    rows.append(f"| S1 produce through the endpoint, msg/s: one member / split over two | {one:,.0f} | {split:,.0f} | "
                f"{split / one:.2f} | |")
    cpu = med("F1 endpoint", lambda r: r["endpoint_cpu_s"] / max(r.get("msgs") or 1, 1) * 1e6)
    cpu3 = med("F3 endpoint", lambda r: r["endpoint_cpu_s"] / max(r.get("msgs") or 1, 1) * 1e6)
    rows.append(f"| endpoint CPU s per 10^6 messages: F1 / F3 | {cpu:.2f} | {cpu3:.2f} | | |")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (out_dir / "federation.json").write_text(json.dumps({"date": date, "machine": machine(), "profile": prof,
                                                         "runs": runs}, indent=1) + "\n")
    text = "\n".join([
        f"# Federation benchmark ({date})", "",
        "Two single-node Sluice members and `sluice federation` over them, on loopback, this machine (2 CPUs "
        "shared by the members, the endpoint and the load generator). Each pair runs in alternating order, "
        f"{prof['rounds']} round(s); medians, and ratios are the median of each round's (in brackets). Written by `bench/federation.py`; every raw figure is in "
        "`federation.json`.", "",
        "| figure | direct | through the endpoint | ratio | target |", "|---|---|---|---|---|", *rows, "",
        "Notes:", "",
        "- Direct: the load generator connects to member a; through the endpoint: to the endpoint only, which "
        "forwards each request to member a (its own connection per client connection) and merges the answers.",
        "- S1 compares two topics through the endpoint: one on member a, one split over a and b (3 partitions "
        "each). Both members run on the same 2 CPUs here, so the split shows the endpoint's fan-out cost more than "
        "the capacity a second cluster adds.", ""])
    (out_dir / "FEDERATION.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
