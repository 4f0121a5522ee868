#!/usr/bin/python3
"""Where W4's end-to-end latency goes: the producer client, the broker, the consumer client.

    bench/e2e_breakdown.py                     Sluice and Kafka, one 10 s run each -> bench/LATENCY.md
    bench/e2e_breakdown.py --brokers sluice --secs 5 --out /tmp/lat

Runs W4's workload (`sluice_loadgen e2e`: paced producer and consumer in one process, acks=1)
against a fresh broker while tcpdump records the loopback traffic on the broker's port. Each
message's value starts with its scheduled send time and its sequence number, so it can be found
in the byte streams of the capture; with the consumer's arrival time (loadgen -D) that gives,
per message:

    producer client   scheduled send time -> produce request on the wire (linger, client threads)
    broker            produce request on the wire -> fetch response on the wire carrying it
      of which waiting for a fetch: the consumer had no fetch parked at the broker yet
      broker only:    the rest (the broker had both the data and a parked fetch)
    consumer client   fetch response on the wire -> the message handed to the application

"On the wire" is when the packet holding the message's last byte was captured on `lo`. The run
also records the CPU time the hypervisor took from this VM (steal), which shows up as stalls
of any thread. Needs root (or CAP_NET_RAW) for tcpdump; stdlib only.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import datetime
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (LOADGEN, ROOT, W4_LINGER_MS, W4_WARMUP_S, Broker, KafkaBench, loadgen,  # noqa: E402
                 steal_pct, steal_ticks)

PARTS = ("total", "producer client", "broker", "  waiting for a fetch", "  broker only", "consumer client")


def read_streams(pcap: Path, port: int) -> dict:
    """{(src port, dst port): (bytes, [end offset of each packet], [its capture time ns])}: each TCP
    direction's payload in capture order (on loopback nothing is lost or reordered)."""
    data = pcap.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    nano = magic == 0xA1B23C4D
    link = struct.unpack_from("<I", data, 20)[0]
    l2 = {1: 14, 113: 16, 276: 20}.get(link)
    if l2 is None:
        raise SystemExit(f"unexpected link type {link} in {pcap}")
    streams: dict = collections.defaultdict(lambda: (bytearray(), [], []))
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from("<IIII", data, pos)
        pkt = data[pos + 16: pos + 16 + caplen]
        pos += 16 + caplen
        ip = pkt[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        sport, dport = struct.unpack_from(">HH", ip, ihl)
        payload = ip[ihl + (ip[ihl + 12] >> 4) * 4: total]
        if not payload or port not in (sport, dport):
            continue
        buf, ends, times = streams[(sport, dport)]
        buf += payload
        ends.append(len(buf))
        times.append(sec * 1_000_000_000 + (frac if nano else frac * 1000))
    return streams


def find_messages(streams: dict, scheduled: set[int], offset_ns: int) -> dict:
    """{(src, dst): {scheduled time: monotonic time of the packet that completed it}}. A value
    begins with its scheduled time (8 bytes LE) and its sequence number (8 bytes LE, < 2^32)."""
    highs = {struct.pack("<Q", s)[4:] for s in scheduled}
    pattern = re.compile(b"(.{4})(" + b"|".join(re.escape(h) for h in highs) + b").{4}\x00\x00\x00\x00", re.S)
    found: dict = {}
    for key, (buf, ends, times) in streams.items():
        seen = {}
        for m in pattern.finditer(buf):
            s = struct.unpack("<Q", m.group(1) + m.group(2))[0]
            if s in scheduled and s not in seen:
                seen[s] = times[bisect.bisect_left(ends, m.end())] - offset_ns
        if seen:
            found[key] = seen
    return found


def analyse(pcap: Path, dump: Path, offset_ns: int, port: int) -> dict:
    latency = {}
    for line in dump.read_text().splitlines():
        s, d = line.split()
        latency[int(s)] = int(d)
    streams = read_streams(pcap, port)
    found = find_messages(streams, set(latency), offset_ns)
    produced: dict = {}
    fetched: dict = {}
    fetch_conn: dict = {}
    for (src, dst), seen in found.items():
        target = produced if dst == port else fetched
        for s, t in seen.items():
            if s not in target or t < target[s]:
                target[s] = t
                if dst != port:
                    fetch_conn[s] = dst
    # The consumer's requests: packets it sent on the connection that carried the data back.
    requests = {c: [t - offset_ns for t in streams[(c, port)][2]] for c in set(fetch_conn.values())}
    parts: dict = {p: [] for p in PARTS}
    for s, total in latency.items():
        if s not in produced or s not in fetched:
            continue
        p, f = produced[s], fetched[s]
        reqs = requests[fetch_conn[s]]
        k = bisect.bisect_right(reqs, f) - 1
        asked = max(p, reqs[k] if k >= 0 else p)  # when the broker had both the data and a fetch
        for name, v in zip(PARTS, (total, p - s, f - p, asked - p, f - asked, s + total - f)):
            parts[name].append(v)
    def pct(v, q):
        return v[min(len(v) - 1, int(q * len(v)))] / 1e6
    out = {"messages": len(latency), "matched": len(parts["total"]), "ms": {}}
    for name, v in parts.items():
        v.sort()
        out["ms"][name.strip()] = ({"p50": pct(v, 0.5), "p99": pct(v, 0.99), "p999": pct(v, 0.999),
                                    "max": v[-1] / 1e6} if v else None)
    # Of the slowest 1% of messages: how their time splits on average.
    rows = sorted(zip(*(parts[p] for p in PARTS)))
    slow = rows[-max(1, len(rows) // 100):] if rows else []
    out["slowest_1pct_mean_ms"] = {p.strip(): sum(r[i] for r in slow) / len(slow) / 1e6
                                   for i, p in enumerate(PARTS)} if slow else {}
    return out


def run_one(kind: str, secs: float, rate: int, linger: int, work: Path) -> dict:
    broker = KafkaBench(work / kind) if kind == "kafka" else Broker("sluice", workdir=work / kind)
    broker.start()
    try:
        b = broker.bootstrap
        port = int(b.rsplit(":", 1)[1])
        for t in ("w0", "w4"):
            r = loadgen(["create", "-b", b, "-t", t, "-p", "1"], 120)
            if "error" in r:
                raise RuntimeError(r["error"])
        loadgen(["consume", "-b", b, "-t", "w0", "-T", "60"], 120)  # group coordinator set-up (as run.py)
        pcap, dump = work / f"{kind}.pcap", work / f"{kind}.lat"
        cap = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "262144", "-B", "131072", "-U", "-n",
                                "--time-stamp-precision=nano", "-w", str(pcap), f"tcp port {port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # tcpdump is listening
        steal0 = steal_ticks()
        r = loadgen(["e2e", "-b", b, "-t", "w4", "-s", "100", "-r", str(rate), "-d", str(secs),
                     "-w", str(W4_WARMUP_S), "-a", "1", "-l", str(linger), "-D", str(dump)], secs + W4_WARMUP_S + 60)
        steal1 = steal_ticks()
        time.sleep(0.5)
        cap.terminate()
        _, err = cap.communicate(timeout=30)
        if "error" in r:
            raise RuntimeError(r["error"])
        dropped = re.search(rb"(\d+) packets dropped by kernel", err)
        out = analyse(pcap, dump, r["realtime_minus_monotonic_ns"], port)
        out["loadgen_lat_ms"] = r["lat_ms"]
        out["capture_dropped"] = int(dropped.group(1)) if dropped else None
        out["steal_pct"] = steal_pct(steal0, steal1)
        return out
    finally:
        broker.kill9() if kind == "kafka" else broker.stop()


def report(results: dict, args, started: str) -> str:
    lines = ["# Where the end-to-end latency goes (W4's workload)", "",
             f"Run {started}, `bench/e2e_breakdown.py --secs {args.secs:g} --rate {args.rate} --linger {args.linger}`: "
             f"{args.rate:,} msg/s x 100 B, acks=1, linger {args.linger} ms, for {args.secs:g} s after "
             f"{W4_WARMUP_S} s of warm-up, while tcpdump records the loopback traffic. Each message is found in the "
             "capture, which splits its end-to-end time into the producer client (scheduled send time to the "
             "produce request on the wire), the broker (produce request on the wire to the fetch response "
             "carrying it) and the consumer client (fetch response on the wire to the application). The "
             "broker's part is split again: waiting for the consumer's next fetch (the previous fetch response "
             "was still being handled by the client) and the broker's own time (it had the data and a parked "
             "fetch). Times in ms; steal is CPU time the hypervisor took from this VM during the run. "
             "The capture costs CPU, so these runs are a little slower than `make bench`'s W4.", ""]
    for kind, r in results.items():
        if "error" in r:
            lines += [f"## {kind}", "", f"failed: {r['error']}", ""]
            continue
        lat = r["loadgen_lat_ms"]
        lines += [f"## {kind}", "",
                  f"{r['matched']:,} of {r['messages']:,} messages found in the capture "
                  f"(packets dropped by the capture: {r['capture_dropped']}); steal {r['steal_pct']}% of CPU time; "
                  f"the load generator's own figures: p50 {lat['p50']:.3f}, p99 {lat['p99']:.3f}, "
                  f"p99.9 {lat['p999']:.3f}, max {lat['max']:.3f}.", "",
                  "| part | p50 | p99 | p99.9 | max | mean over the slowest 1% |", "|---|---|---|---|---|---|"]
        for part in PARTS:
            v = r["ms"][part.strip()]
            slow = r["slowest_1pct_mean_ms"].get(part.strip())
            label = part.strip() if not part.startswith("  ") else "- " + part.strip()
            lines.append(f"| {label} | {v['p50']:.3f} | {v['p99']:.3f} | {v['p999']:.3f} | {v['max']:.3f} | "
                         f"{slow:.3f} |" if v else f"| {label} | - | - | - | - | - |")
        lines.append("")
    lines += ["Percentiles of the parts do not add up to the total's: each is taken over its own "
              "distribution. The last column does add up (over the same 1% of messages).", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", default="sluice,kafka")
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--linger", type=int, default=W4_LINGER_MS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench", help="where LATENCY.md and latency.json go")
    args = ap.parse_args()
    if not shutil.which("tcpdump"):
        sys.exit("tcpdump is missing (bench/latency.sh installs it)")
    if not LOADGEN.exists():
        sys.exit(f"{LOADGEN} missing: make build")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    work = Path(tempfile.mkdtemp(prefix="sluice-latency-"))
    results = {}
    try:
        for kind in args.brokers.split(","):
            print(f"[e2e_breakdown] {kind}: {args.secs:g} s at {args.rate:,} msg/s with a capture", file=sys.stderr)
            try:
                results[kind] = run_one(kind, args.secs, args.rate, args.linger, work)
            except Exception as e:  # noqa: BLE001 - report the other broker all the same
                results[kind] = {"error": repr(e)[:500]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps({"started_utc": started, "results": results}, indent=1) + "\n")
    text = report(results, args, started)
    (args.out / "LATENCY.md").write_text(text)
    print(text)
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
