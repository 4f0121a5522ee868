#!/usr/bin/env bash
# make bench: the benchmark run (see bench/README.md). Arguments go to bench/run.py (--quick, ...).
# Assumes `make build` has run; installs iperf3 (the loopback ceiling) if it is missing and
# makes sure the load generator and Kafka's jars are there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bench/ensure-command.sh iperf3 iperf3
# Only the load generator's target, so this never rebuilds the broker behind a caller's back.
cmake --build "${BUILD_DIR:-build}" --target sluice_loadgen >/dev/null
bash compat-tests/kafka-ref/fetch.sh >/dev/null   # cached in ~/.cache/sluice after the first time
exec /usr/bin/python3 bench/run.py "$@"
