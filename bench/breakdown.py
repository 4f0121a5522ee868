#!/usr/bin/python3
"""Where the time goes in W3 (consume) and W4 (end-to-end latency): client or broker.

    bench/breakdown.py                     Sluice and Kafka, one run each -> bench/BREAKDOWN.md
    bench/breakdown.py --brokers sluice --secs 5 --out /tmp/bd

Each broker is started fresh, warmed up as in make bench (W1's and W3's load on another topic),
and gets make bench's W1 (2,000,000 x 100 B); then W3 and W4 run while tcpdump records the
loopback traffic on the broker's port:

W3: librdkafka's consumer keeps one fetch in flight per broker and parses a whole response
before it asks for the next, so its read rate is one fetch cycle per response:

    broker     fetch request on the wire -> first byte of the response
    transfer   first -> last packet of the response
    client     last packet of the response -> the next fetch request (librdkafka parses it)

W4: each message's value starts with its scheduled send time and its sequence number, so it is
found in the capture's byte streams; with the consumer's arrival time (loadgen -D), per message:

    producer client   scheduled send time -> produce request on the wire (linger, client threads)
    broker            produce request on the wire -> fetch response on the wire carrying it
      waiting for a fetch: the consumer had no fetch parked at the broker yet
      broker only:    the rest (the broker had both the data and a parked fetch)
    consumer client   fetch response on the wire -> the message handed to the application

"On the wire" is when the packet holding the byte was captured on `lo`. The runs also record the
CPU time the hypervisor took from this VM (steal), which stalls whichever thread was running.
On Sluice, W4 also runs under `perf trace` (when perf can trace: root and tracefs), which times
every write, pwrite64, fdatasync and fsync of the broker's threads. The network thread's file
writes (segment and index appends; its fds are read from /proc at the end of the run) are where
an append can wait for the disk on the request path (a journal commit, pages under writeback):
their durations, and how many W4 messages a stall could have held up (a stall of d ms at R msg/s
holds up at most d * R / 1000 of them), set beside the broker's part of the tail.

Needs root (or CAP_NET_RAW) for tcpdump; stdlib only.
"""
from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import datetime
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (LOADGEN, PROFILES, ROOT, W4_LINGER_MS, W4_WARMUP_S, Broker, KafkaBench,  # noqa: E402
                 loadgen, steal_pct, steal_ticks)

W1_COUNT = PROFILES["full"]["w1_count"]

PARTS = ("total", "producer client", "broker", "  waiting for a fetch", "  broker only", "consumer client")


def read_packets(pcap: Path, port: int, with_payload: bool):
    """Yields (capture time ns, source port, destination port, payload) for each TCP packet with a
    payload to or from `port` (the payload as captured: cut short with a small snap length)."""
    data = pcap.read_bytes()
    nano = struct.unpack_from("<I", data)[0] == 0xA1B23C4D
    link = struct.unpack_from("<I", data, 20)[0]
    l2 = {1: 14, 113: 16, 276: 20}.get(link)
    if l2 is None:
        raise SystemExit(f"unexpected link type {link} in {pcap}")
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
        begin = ihl + (ip[ihl + 12] >> 4) * 4
        if total > begin and port in (sport, dport):
            yield (sec * 1_000_000_000 + (frac if nano else frac * 1000), sport, dport,
                   ip[begin:total] if with_payload else total - begin)


def fetch_cycles(pcap: Path, port: int) -> dict:
    """W3's fetch cycles on the connection that carried the most data to the consumer."""
    packets = list(read_packets(pcap, port, with_payload=False))
    received = collections.Counter()
    for _, sport, dport, n in packets:
        if sport == port:
            received[dport] += n
    conn = received.most_common(1)[0][0]
    events = [(t, sport == port, n) for t, sport, dport, n in packets if conn in (sport, dport)]
    cycles = []
    i = 0
    while i < len(events):
        if events[i][1]:  # a response packet without a request before it in the capture
            i += 1
            continue
        asked, j, first, last, size = events[i][0], i + 1, None, None, 0
        while j < len(events) and events[j][1]:
            first = first or events[j][0]
            last, size, j = events[j][0], size + events[j][2], j + 1
        if j < len(events) and first and size >= 100_000:  # a data-carrying response, and the next request
            cycles.append((first - asked, last - first, events[j][0] - last, size))
        i = j
    if not cycles:
        return {"cycles": 0}
    out = {"cycles": len(cycles), "mean_response_mb": sum(c[3] for c in cycles) / len(cycles) / 1e6, "ms": {}}
    for k, name in enumerate(("broker", "transfer", "client")):
        v = sorted(c[k] / 1e6 for c in cycles)
        out["ms"][name] = {"median": v[len(v) // 2], "mean": sum(v) / len(v)}
    return out


def read_streams(pcap: Path, port: int) -> dict:
    """{(src port, dst port): (bytes, [end offset of each packet], [its capture time ns])}: each TCP
    direction's payload in capture order (on loopback nothing is lost or reordered)."""
    streams: dict = collections.defaultdict(lambda: (bytearray(), [], []))
    for t, sport, dport, payload in read_packets(pcap, port, with_payload=True):
        buf, ends, times = streams[(sport, dport)]
        buf += payload
        ends.append(len(buf))
        times.append(t)
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
    rows = []  # one per message found: its time in each of PARTS
    for s, total in latency.items():
        if s not in produced or s not in fetched:
            continue
        p, f = produced[s], fetched[s]
        reqs = requests[fetch_conn[s]]
        k = bisect.bisect_right(reqs, f) - 1
        asked = max(p, reqs[k] if k >= 0 else p)  # when the broker had both the data and a fetch
        rows.append((total, p - s, f - p, asked - p, f - asked, s + total - f))

    def pct(v, q):
        return v[min(len(v) - 1, int(q * len(v)))] / 1e6
    out = {"messages": len(latency), "matched": len(rows), "ms": {},
           # the broker's own part over 1 ms: the tail a stalled network thread would make
           "broker_only_over_1ms": sum(1 for r in rows if r[4] > 1_000_000)}
    for i, name in enumerate(PARTS):
        v = sorted(r[i] for r in rows)
        out["ms"][name.strip()] = ({"p50": pct(v, 0.5), "p99": pct(v, 0.99), "p999": pct(v, 0.999),
                                    "max": v[-1] / 1e6} if v else None)
    # Of the slowest 1% of messages (by total): how their time splits on average.
    rows.sort()
    slow = rows[-max(1, len(rows) // 100):] if rows else []
    out["slowest_1pct_mean_ms"] = {p.strip(): sum(r[i] for r in slow) / len(slow) / 1e6
                                   for i, p in enumerate(PARTS)} if slow else {}
    return out


class Capture:
    """tcpdump on `lo` for one port, from start() until stop()."""

    def __init__(self, path: Path, port: int, snaplen: int):
        self.path, self.port, self.snaplen, self.proc = path, port, snaplen, None

    def __enter__(self):
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-s", str(self.snaplen), "-B", "131072", "-U", "-n",
                                      "--time-stamp-precision=nano", "-w", str(self.path), f"tcp port {self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # listening
        self.steal0 = steal_ticks()
        return self

    def __exit__(self, *exc):
        self.steal_pct = steal_pct(self.steal0, steal_ticks())
        time.sleep(0.5)
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        dropped = re.search(rb"(\d+) packets dropped by kernel", err)
        self.dropped = int(dropped.group(1)) if dropped else None


class SyscallTrace:
    """perf trace of one process's file writes and syncs, every thread, from start() until stop()."""

    SYSCALLS = "write,pwrite64,fdatasync,fsync"
    LINE = re.compile(r"\(\s*([\d.]+) ms\): [^/]*/(\d+) (\w+)\(fd: (\d+)")

    def __init__(self, path: Path, pid: int):
        self.path, self.pid, self.proc = path, pid, None

    @staticmethod
    def available() -> bool:
        return shutil.which("perf") is not None and Path("/sys/kernel/tracing/events/syscalls").is_dir()

    def __enter__(self):
        self.proc = subprocess.Popen(["perf", "trace", "-p", str(self.pid), "-e", self.SYSCALLS, "-o", str(self.path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # attached
        return self

    def __exit__(self, *exc):
        # Which file each fd is, while the broker still holds them.
        self.fds = {}
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                self.fds[int(fd.name)] = os.readlink(fd)
            except OSError:
                pass
        self.proc.send_signal(2)  # SIGINT: perf trace flushes and exits
        self.proc.communicate(timeout=30)

    def summary(self, rate: int) -> dict:
        """Durations (ms) of the network thread's (tid == pid) file writes and of every thread's syncs."""
        appends, syncs = [], []
        for line in self.path.read_text(errors="replace").splitlines():
            m = self.LINE.search(line)
            if not m:
                continue
            ms, tid, call, fd = float(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4))
            if call in ("fdatasync", "fsync"):
                syncs.append(ms)
            elif tid == self.pid and self.fds.get(fd, "").startswith("/"):  # a file, not an eventfd or socket
                appends.append(ms)

        def dist(v):
            v = sorted(v)
            if not v:
                return None
            pct = lambda q: v[min(len(v) - 1, int(q * len(v)))]  # noqa: E731
            return {"count": len(v), "p50": pct(0.5), "p99": pct(0.99), "p999": pct(0.999), "max": v[-1],
                    "over_1ms": sum(1 for x in v if x > 1), "ms_in_those": round(sum(x for x in v if x > 1), 3)}
        out = {"network_thread_file_writes_ms": dist(appends), "syncs_ms": dist(syncs)}
        if out["network_thread_file_writes_ms"]:
            out["messages_a_stall_could_hold_up"] = round(out["network_thread_file_writes_ms"]["ms_in_those"] * rate / 1000)
        return out


def run_one(kind: str, secs: float, rate: int, linger: int, work: Path) -> dict:
    broker = KafkaBench(work / kind) if kind == "kafka" else Broker("sluice", workdir=work / kind)
    broker.start()

    def lg(*args, timeout=180):
        r = loadgen([args[0], "-b", broker.bootstrap, *args[1:]], timeout)
        if "error" in r:
            raise RuntimeError(f"{args[0]}: {r['error']}")
        return r

    try:
        port = int(broker.bootstrap.rsplit(":", 1)[1])
        for t in ("w0", "wu", "w1", "w0e", "w4", "w4a"):
            lg("create", "-t", t, "-p", "1")
        lg("consume", "-t", "w0", "-T", "60")  # group coordinator set-up, as in run.py
        # The same untimed warm-up as make bench (Kafka's JIT): W1's and W3's load on another topic.
        lg("produce", "-t", "wu", "-s", "100", "-c", str(W1_COUNT), "-a", "1")
        lg("consume", "-t", "wu", "-c", str(W1_COUNT))
        out: dict = {}
        # W1, then W3 (the first read of the topic, as in make bench) with a header-only capture.
        w1 = lg("produce", "-t", "w1", "-s", "100", "-c", str(W1_COUNT), "-a", "1")
        os.sync()
        with Capture(work / f"{kind}-w3.pcap", port, 128) as cap:
            w3 = lg("consume", "-t", "w1", "-c", str(w1["msgs"]))
        out["w3"] = fetch_cycles(cap.path, port)
        out["w3"].update(msg_per_s=w3["msg_per_s"], steal_pct=cap.steal_pct, capture_dropped=cap.dropped)
        # Ten seconds of W4's own load, not measured (a fresh Kafka needs them: its first seconds at
        # 10k msg/s ran 1-2 s behind), then W4 with a full capture.
        lg("e2e", "-t", "w0e", "-s", "100", "-r", str(rate), "-d", "10", "-w", "0", "-a", "1", "-l", str(linger))
        os.sync()
        dump = work / f"{kind}.lat"
        trace = SyscallTrace(work / f"{kind}-w4.trace", broker.proc.pid) \
            if kind == "sluice" and SyscallTrace.available() else contextlib.nullcontext()
        with Capture(work / f"{kind}-w4.pcap", port, 262144) as cap, trace:
            r = lg("e2e", "-t", "w4", "-s", "100", "-r", str(rate), "-d", str(secs), "-w", str(W4_WARMUP_S),
                   "-a", "1", "-l", str(linger), "-D", str(dump), timeout=secs + W4_WARMUP_S + 60)
        out["w4"] = analyse(cap.path, dump, r["realtime_minus_monotonic_ns"], port)
        out["w4"].update(loadgen_lat_ms=r["lat_ms"], steal_pct=cap.steal_pct, capture_dropped=cap.dropped)
        if isinstance(trace, SyscallTrace):
            out["w4"]["syscalls"] = trace.summary(rate)
        # The same with acks=all: every produce waits for an fdatasync of the file the next ones
        # append to, which is when an append could wait for the disk. No capture: the load
        # generator's figures, and on Sluice the trace.
        trace = SyscallTrace(work / f"{kind}-w4all.trace", broker.proc.pid) \
            if kind == "sluice" and SyscallTrace.available() else contextlib.nullcontext()
        with trace:
            steal0 = steal_ticks()
            r = lg("e2e", "-t", "w4a", "-s", "100", "-r", str(rate), "-d", str(secs), "-w", str(W4_WARMUP_S),
                   "-a", "all", "-l", str(linger), timeout=secs + W4_WARMUP_S + 60)
        out["w4_acks_all"] = {"loadgen_lat_ms": r["lat_ms"], "steal_pct": steal_pct(steal0, steal_ticks())}
        if isinstance(trace, SyscallTrace):
            out["w4_acks_all"]["syscalls"] = trace.summary(rate)
        return out
    finally:
        broker.kill9() if kind == "kafka" else broker.stop()


def report(results: dict, args, started: str) -> str:
    lines = ["# Where the time goes in W3 and W4: client or broker", "",
             f"Run {started}: `bench/breakdown.py --secs {args.secs:g} --rate {args.rate} --linger {args.linger}` "
             "(`make bench-breakdown`). Each broker is started fresh, warmed up as in `make bench`, gets W1 "
             "(2,000,000 x 100 B, acks=1), then "
             "W3 and W4 run as in `make bench` while tcpdump records the loopback traffic; the capture costs "
             "CPU, so figures here are a little lower than `make bench`'s. Steal is the CPU time the hypervisor "
             "took from this VM during the run. Times in ms. How the parts are found: the top of "
             "`breakdown.py`.", "",
             "## W3: one fetch cycle (librdkafka has one fetch in flight and parses a whole response before "
             "asking for the next)", "",
             "| broker | msg/s | fetch cycles | MB per response | broker (request -> first byte) | "
             "transfer (first -> last packet) | client (last packet -> next request) | client share of the cycle "
             "| steal |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, r in results.items():
        w3 = r.get("w3")
        if not w3 or not w3.get("cycles"):
            lines.append(f"| {kind} | {r.get('error', 'no cycles found')} | | | | | | | |")
            continue
        ms = w3["ms"]
        cycle = sum(ms[p]["mean"] for p in ("broker", "transfer", "client"))
        cell = lambda p: f"{ms[p]['median']:.3f} median, {ms[p]['mean']:.3f} mean"  # noqa: E731
        lines.append(f"| {kind} | {w3['msg_per_s']:,.0f} | {w3['cycles']} | {w3['mean_response_mb']:.2f} | "
                     f"{cell('broker')} | {cell('transfer')} | {cell('client')} | "
                     f"{100 * ms['client']['mean'] / cycle:.0f}% | {w3['steal_pct']}% |")
    lines += ["", "With the client's part of the cycle fixed, a broker that took no time at all would read at most "
              "(cycle / client part) times faster than the broker measured.", "",
              f"## W4: one message's end-to-end time ({args.rate:,} msg/s x 100 B, acks=1, linger {args.linger} ms, "
              f"{args.secs:g} s after {W4_WARMUP_S} s of warm-up)", ""]
    for kind, r in results.items():
        w4 = r.get("w4")
        if not w4:
            lines += [f"### {kind}", "", f"failed: {r.get('error')}", ""]
            continue
        lat = w4["loadgen_lat_ms"]
        lines += [f"### {kind}", "",
                  f"{w4['matched']:,} of {w4['messages']:,} messages found in the capture "
                  f"(packets dropped by the capture: {w4['capture_dropped']}); steal {w4['steal_pct']}%; "
                  f"the load generator's own figures: p50 {lat['p50']:.3f}, p99 {lat['p99']:.3f}, "
                  f"p99.9 {lat['p999']:.3f}, max {lat['max']:.3f}.", "",
                  "| part | p50 | p99 | p99.9 | max | mean over the slowest 1% |", "|---|---|---|---|---|---|"]
        for part in PARTS:
            v = w4["ms"][part.strip()]
            slow = w4["slowest_1pct_mean_ms"].get(part.strip())
            label = part.strip() if not part.startswith("  ") else "- " + part.strip()
            lines.append(f"| {label} | {v['p50']:.3f} | {v['p99']:.3f} | {v['p999']:.3f} | {v['max']:.3f} | "
                         f"{slow:.3f} |" if v else f"| {label} | - | - | - | - | - |")
        lines.append("")
        sc = w4.get("syscalls")
        if sc:
            lines += syscall_table(sc)
            lines += [f"Messages whose broker-only part took over 1 ms: {w4['broker_only_over_1ms']:,}; "
                      f"messages the network thread's writes over 1 ms could have held up (their time x the rate): "
                      f"at most {sc.get('messages_a_stall_could_hold_up', 0):,}.", ""]
    lines += ["Percentiles of the parts do not add up to the total's: each is taken over its own "
              "distribution. The last column does add up (over the same 1% of messages).", "",
              f"## W4 with acks=all (the same load; every produce waits for an fdatasync of the file the next "
              f"ones append to)", "",
              "Not the same guarantee on both: a single Sluice node answers acks=all once the batch is synced "
              "to disk; Kafka answers once every in-sync replica has it in memory (here only itself) and "
              "leaves syncing to the OS (`flush.messages` unset), so its figure has no disk wait in it.", "",
              "| broker | p50 | p99 | p99.9 | max | steal |", "|---|---|---|---|---|---|"]
    for kind, r in results.items():
        w = r.get("w4_acks_all")
        if w:
            lat = w["loadgen_lat_ms"]
            lines.append(f"| {kind} | {lat['p50']:.3f} | {lat['p99']:.3f} | {lat['p999']:.3f} | {lat['max']:.3f} | "
                         f"{w['steal_pct']}% |")
    for kind, r in results.items():
        sc = (r.get("w4_acks_all") or {}).get("syscalls")
        if sc:
            lines += [""] + syscall_table(sc)
            lines += [f"Messages the network thread's writes over 1 ms could have held up: at most "
                      f"{sc.get('messages_a_stall_could_hold_up', 0):,}.", ""]
    return "\n".join(lines)


def syscall_table(sc: dict) -> list[str]:
    lines = ["Under `perf trace`: the network thread's file writes (appends, index entries) and every "
             "thread's syncs, in ms.", "",
             "| calls | count | p50 | p99 | p99.9 | max | over 1 ms | ms in those |", "|---|---|---|---|---|---|---|---|"]
    for label, key in (("network thread: write, pwrite64 to files", "network_thread_file_writes_ms"),
                       ("all threads: fdatasync, fsync", "syncs_ms")):
        d = sc.get(key)
        if d:
            lines.append(f"| {label} | {d['count']:,} | {d['p50']:.3f} | {d['p99']:.3f} | {d['p999']:.3f} | "
                         f"{d['max']:.3f} | {d['over_1ms']} | {d['ms_in_those']:.1f} |")
    return lines + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers", default="sluice,kafka")
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--linger", type=int, default=W4_LINGER_MS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench", help="where BREAKDOWN.md and breakdown.json go")
    args = ap.parse_args()
    if not shutil.which("tcpdump"):
        sys.exit("tcpdump is missing (bench/breakdown.sh installs it)")
    if not LOADGEN.exists():
        sys.exit(f"{LOADGEN} missing: make build")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    work = Path(tempfile.mkdtemp(prefix="sluice-breakdown-"))
    results = {}
    try:
        for kind in args.brokers.split(","):
            print(f"[breakdown] {kind}: W1, then W3 and W4 with a capture", file=sys.stderr)
            try:
                results[kind] = run_one(kind, args.secs, args.rate, args.linger, work)
            except Exception as e:  # noqa: BLE001 - report the other broker all the same
                results[kind] = {"error": repr(e)[:500]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "breakdown.json").write_text(json.dumps({"started_utc": started, "results": results}, indent=1) + "\n")
    text = report(results, args, started)
    (args.out / "BREAKDOWN.md").write_text(text)
    print(text)
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
