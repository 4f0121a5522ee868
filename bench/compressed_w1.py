#!/usr/bin/python3
"""W1 with compression: what opening compressed batches to check their records costs.

    bench/compressed_w1.py --before BIN [--reps 3] [--rounds 3] [--count 2000000]

W1 exactly as `make bench` runs it (2,000,000 x 100 B to 1 partition, acks=1, librdkafka's default
linger, 256 messages per produce call; the values are incompressible, so the codecs do honest
work), uncompressed and with the producer compressing with lz4 and with zstd, against three brokers started fresh
in turn (the order rotated each repetition): Sluice as built now (build/bin/sluice), Sluice as built
from an earlier commit (--before, e.g. one that stored compressed batches unopened), and Apache
Kafka (the benchmark's stock-settings 3.9.1, which opens every compressed batch too). Each
repetition warms the broker up with one untimed W1 per codec, then runs `rounds` W1s per codec,
each to a fresh topic. Figures are medians over all rounds: msg/s and broker CPU seconds per 10^6
messages (the broker's own cost, which the client's share of the two cores does not blur).
Writes bench/COMPRESSED.md and bench/compressed.json. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: loadgen, CPU and steal readings, Kafka's stock settings)

CODECS = ("none", "lz4", "zstd")  # none: what checking every record costs W1 itself


def git_describe(binary: Path) -> str:
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h"], capture_output=True, text=True)
    return out.stdout.strip()


def run_one(kind: str, binary: Path | None, work: Path, args, progress) -> dict:
    """One broker, fresh: an untimed warm-up W1 per codec, then `rounds` timed W1s per codec."""
    if binary is not None:
        os.environ["SLUICE_BIN"] = str(binary)
    broker = bench.KafkaBench(work / "kafka") if kind == "kafka" else bench.Broker("sluice", workdir=work / kind)
    broker.start()
    out: dict = {c: [] for c in CODECS}
    try:
        pid, b = broker.proc.pid, broker.bootstrap
        cap = str(args.cap)
        for codec in CODECS:
            for n in range(args.rounds + 1):
                topic = f"w1-{codec}-{n}"
                bench.loadgen(["create", "-b", b, "-t", topic, "-p", "1"], args.cap + 60)
                os.sync()
                time.sleep(0.3)
                progress(f"{kind}: W1 {codec} {'warm-up' if n == 0 else f'round {n}/{args.rounds}'}")
                t0, steal0, cpu0 = time.monotonic(), bench.steal_ticks(), bench.cpu_seconds(pid)
                r = bench.loadgen(["produce", "-b", b, "-t", topic, "-s", "100", "-c", str(args.count), "-a", "1",
                                   "-z", codec, "-T", cap, *bench.W1_CLIENT], args.cap + 60)
                if n == 0:
                    continue  # warm-up (Kafka's JIT, every broker's page cache)
                r["broker_cpu_s"] = round(bench.cpu_seconds(pid) - cpu0, 3)
                r["steal_pct"] = bench.steal_pct(steal0, bench.steal_ticks())
                r["wall_s"] = round(time.monotonic() - t0, 2)
                out[codec].append(r)
    finally:
        broker.stop()
        broker.cleanup()
    return out


def median_of(runs: list[dict], get) -> float | None:
    values = [get(r) for r in runs if "error" not in r]
    return statistics.median(values) if values else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="the earlier Sluice binary")
    ap.add_argument("--before-label", default="before", help="what the earlier binary is (a commit)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=2_000_000)
    ap.add_argument("--cap", type=int, default=60, help="seconds one W1 may take")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    now = Path(__file__).resolve().parents[1] / "build" / "bin" / "sluice"
    brokers = [("sluice", now), ("sluice-before", args.before.resolve()), ("kafka", None)]
    progress = bench.Progress()
    results: dict = {name: {c: [] for c in CODECS} for name, _ in brokers}
    with tempfile.TemporaryDirectory(prefix="sluice-compressed-w1-") as tmp:
        for rep in range(args.reps):
            order = brokers[rep % len(brokers):] + brokers[:rep % len(brokers)]
            for name, binary in order:
                kind = "kafka" if name == "kafka" else name
                got = run_one(kind, binary, Path(tmp) / f"rep{rep}", args, lambda m: progress(f"rep {rep + 1}: {m}"))
                for c in CODECS:
                    results[name][c] += got[c]
    progress.done()

    rows = []
    for c in CODECS:
        for name, _ in brokers:
            runs = results[name][c]
            msgs = median_of(runs, lambda r: r["msg_per_s"])
            cpu = median_of(runs, lambda r: r["broker_cpu_s"] / r["msgs"] * 1e6)
            rows.append((c, name, msgs, cpu, len([r for r in runs if "error" not in r]),
                         max((r.get("steal_pct", 0) for r in runs), default=0)))
    label = {"sluice": f"Sluice {git_describe(now)} (opens compressed batches)",
             "sluice-before": f"Sluice {args.before_label} (stored them unopened)", "kafka": "Kafka 3.9.1"}
    lines = [
        "# W1 with compression (bench/compressed_w1.py)",
        "",
        f"Made {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {args.reps} repetitions x {args.rounds} rounds "
        f"of {args.count:,} x 100 B (incompressible values) per codec and broker, medians over all rounds.",
        "",
        "| codec | broker | msg/s | broker CPU-s per 10^6 msgs | rounds | max steal % |",
        "|---|---|---|---|---|---|",
    ]
    for c, name, msgs, cpu, n, steal in rows:
        lines.append(f"| {c} | {label[name]} | {msgs:,.0f} | {cpu:.3f} | {n} | {steal} |" if msgs is not None else
                     f"| {c} | {label[name]} | failed | - | 0 | - |")
    for c in CODECS:
        now_m = next(r for r in rows if r[0] == c and r[1] == "sluice")
        before_m = next(r for r in rows if r[0] == c and r[1] == "sluice-before")
        kafka_m = next(r for r in rows if r[0] == c and r[1] == "kafka")
        ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "n/a"  # noqa: E731
        lines.append("")
        lines.append(f"{c}: Sluice now / before {ratio(now_m[2], before_m[2])} msg/s, "
                     f"{ratio(now_m[3], before_m[3])} broker CPU per message; Sluice now / Kafka "
                     f"{ratio(now_m[2], kafka_m[2])} msg/s, {ratio(now_m[3], kafka_m[3])} broker CPU per message.")
    (args.out / "COMPRESSED.md").write_text("\n".join(lines) + "\n")
    (args.out / "compressed.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                          "results": results}, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
