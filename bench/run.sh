#!/usr/bin/env bash
# make bench: the benchmark run (see bench/README.md): the single-broker workloads (bench/run.py,
# which gets the arguments: --quick, ...), then the three-broker clusters (bench/cluster.py), share
# groups (bench/share.py) and the federation endpoint (bench/federation.py).
# Assumes `make build` has run; installs iperf3 (the loopback ceiling) if it is missing and
# makes sure the load generator and Kafka's jars are there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bench/ensure-command.sh iperf3 iperf3
# Only the load generator's target, so this never rebuilds the broker behind a caller's back.
cmake --build "${BUILD_DIR:-build}" --target sluice_loadgen >/dev/null
bash compat-tests/kafka-ref/fetch.sh >/dev/null   # cached in ~/.cache/sluice after the first time
/usr/bin/python3 bench/run.py "$@"
# Then the three-broker clusters (bench/cluster.py), share groups (bench/share.py) and the
# federation endpoint (bench/federation.py), with --quick if this run is quick.
quick_args=()
for a in "$@"; do [[ "$a" == "--quick" ]] && quick_args+=(--quick); done
/usr/bin/python3 bench/cluster.py "${quick_args[@]}"
/usr/bin/python3 bench/share.py "${quick_args[@]}"
exec /usr/bin/python3 bench/federation.py "${quick_args[@]}"
