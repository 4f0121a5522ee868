#!/usr/bin/env bash
# make bench-breakdown: where the time goes in W3 and W4, Sluice next to Kafka (bench/breakdown.py,
# writes bench/BREAKDOWN.md). Installs tcpdump if it is missing; arguments go to breakdown.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash bench/ensure-command.sh tcpdump tcpdump
cmake --build "${BUILD_DIR:-build}" --target sluice_loadgen >/dev/null
bash compat-tests/kafka-ref/fetch.sh >/dev/null
exec /usr/bin/python3 bench/breakdown.py "$@"
