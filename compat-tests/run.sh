#!/usr/bin/env bash
# Runs the compatibility suite against Sluice and Apache Kafka (make compat-test passes
# --kafka-runs=deciding, make compat-test-kafka --brokers=kafka; harness/kinds.py).
# The client toolchains (Python venv, npm packages, Kafka jars) are set up on
# first use and cached; extra arguments go to pytest (e.g. --brokers=sluice -k kcat).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
cd "$here"
exec "$here/.venv/bin/python" -m pytest "$@"
