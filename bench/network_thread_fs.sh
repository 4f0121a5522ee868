#!/usr/bin/env bash
# network_thread_fs.sh [SLUICE_BINARY ...]: the file-system calls a single-node broker's network
# thread makes under a write load (sluice_loadgen produce, 1000 B, acks=1, 10 s, 16 MiB segments so
# that it rolls often), traced with strace -f -T: per call, how many, their total and longest time.
# Several binaries (an older build beside this one) run one after another in the same run.
# The network thread is the process's main thread. Writes nothing; prints a table per binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/ensure-command.sh strace strace
[ $# -gt 0 ] || set -- build/bin/sluice
loadgen=build/bin/sluice_loadgen
for bin in "$@"; do
  dir=$(mktemp -d /tmp/sluice-fs-XXXXXX)
  "$bin" server --override log.dirs="$dir/data" --override listeners=PLAINTEXT://127.0.0.1:19092 \
    --override admin.listeners= --override log.segment.bytes=16777216 > "$dir/broker.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do "$loadgen" create -b 127.0.0.1:19092 -t fs -p 1 >/dev/null 2>&1 && break; sleep 0.2; done
  strace -f -T -e trace=openat,ftruncate,fallocate,pwrite64,fdatasync,fsync,rename,unlink -p "$pid" \
    -o "$dir/strace.txt" 2>/dev/null &
  tracer=$!
  sleep 1
  rate=$("$loadgen" produce -b 127.0.0.1:19092 -t fs -s 1000 -d 10 -a 1 -L 64 2>/dev/null |
         /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['mb_per_s'])")
  kill "$tracer"; wait "$tracer" 2>/dev/null || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$bin: $rate MB/s traced; network thread's file-system calls:"
  grep "^$pid " "$dir/strace.txt" | grep -v "resumed\|unfinished" |
    awk '{split($2, a, "("); t = $NF; gsub(/[<>]/, "", t); n[a[1]]++; s[a[1]] += t; if (t > m[a[1]]) m[a[1]] = t}
         END {for (c in n) printf "  %-10s %6d calls, %.3f s in all, longest %.1f ms\n", c, n[c], s[c], m[c] * 1000}'
  rm -rf "$dir"
done
