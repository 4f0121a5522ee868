#!/usr/bin/env bash
# Runs the storage micro-benchmarks and writes bench/STORAGE.md: the table from
# Google Benchmark plus each Sluice/plain ratio. Temporary files go to $TMPDIR
# (default /tmp): run it with TMPDIR on the disk you care about.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin/sluice_storage_bench
[ -x "$bin" ] || { echo "$bin missing: run make build" >&2; exit 1; }
json=$(mktemp)
trap 'rm -f "$json"' EXIT
"$bin" --benchmark_min_time=1 --benchmark_format=json --benchmark_out="$json" --benchmark_out_format=json >/dev/null
/usr/bin/python3 - "$json" <<'PY'
import json, sys, datetime, os, platform
runs = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
def mbs(name): return runs[name]["bytes_per_second"] / 1e6
rows = []
for batch in (100, 16384):
    for flush in (0, 1):
        ours, peer = f"Append/batch:{batch}/flush:{flush}", f"PlainWrite/batch:{batch}/flush:{flush}"
        rows.append((f"append {batch} B batches" + (", fdatasync per MiB" if flush else ""), mbs(ours), "write()", mbs(peer), ">= 0.8x"))
for fetch in (65536, 1048576):
    ours, peer = f"Read/fetch:{fetch}", f"PlainRead/fetch:{fetch}"
    rows.append((f"read {fetch // 1024} KiB fetches (locate + pread)", mbs(ours), "pread()", mbs(peer), "-"))
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
out = ["# Storage micro-benchmarks", "",
       f"Run {now} on {cpu}, {os.cpu_count()} vCPU, Linux {platform.release()}; files in {os.environ.get('TMPDIR', '/tmp')}. "
       "`make bench-storage` (bench/storage.sh, bench/storage_bench.cc). MB = 10^6 bytes.", "",
       "| what | Sluice MB/s | peer | peer MB/s | ratio | target |", "|---|---|---|---|---|---|"]
for what, ours, peer, theirs, target in rows:
    out.append(f"| {what} | {ours:,.0f} | {peer} | {theirs:,.0f} | {ours / theirs:.2f} | {target} |")
open("bench/STORAGE.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
