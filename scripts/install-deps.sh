#!/usr/bin/env bash
# Installs the Debian packages Sluice needs that are missing, and nothing else.
#   scripts/install-deps.sh build   what building and running the broker needs (make run)
#   scripts/install-deps.sh fuzz    that, plus clang and libFuzzer (make fuzz)
#   scripts/install-deps.sh test    build and fuzz, plus what the tests and benchmarks need
# Runs apt-get only when something is missing, so it is fast on a ready machine.
set -euo pipefail

mode="${1:-build}"
# What the broker needs to build (CMake with SLUICE_TESTS=OFF) and run.
build_packages=(
  g++ make cmake ninja-build ccache pkg-config python3
  libboost-dev liblmdb-dev zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev
  prometheus-cpp-dev               # the metrics of the admin server (broker/metrics.cc)
)
fuzz_packages=(
  clang libclang-rt-14-dev         # clang 14 with libFuzzer and the sanitizer runtimes (fuzz/)
)
test_packages=(
  # The rest of the CMake tree (SLUICE_TESTS=ON): unit tests, the librdkafka
  # programs of compat-tests/ and bench/, the storage micro-benchmarks.
  libgtest-dev librdkafka-dev libbenchmark-dev
  libtcmalloc-minimal4             # the benchmark load generator's allocator (bench/CMakeLists.txt)
  prometheus                       # promtool, and the Prometheus that scrapes a cluster (compat-tests/test_monitoring.py)
  iperf3                           # the loopback ceiling bench/run.py measures
  kcat                             # kcat (on librdkafka 2.0.2) for compat tests
  python3-venv                     # Python clients live in a venv from PyPI
  openjdk-17-jdk-headless maven    # Apache Kafka (reference broker) and its Java client
  nodejs npm                       # kafkajs and @platformatic/kafka
)

wanted=("${build_packages[@]}")
if [ "$mode" = fuzz ] || [ "$mode" = test ]; then wanted+=("${fuzz_packages[@]}"); fi
if [ "$mode" = test ]; then wanted+=("${test_packages[@]}"); fi

missing=()
for p in "${wanted[@]}"; do
  # A tool already on PATH from elsewhere (e.g. node, java) counts as present.
  case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    openjdk-17-jdk-headless) command -v javac >/dev/null && continue ;;
    maven) command -v mvn >/dev/null && continue ;;
  esac
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
