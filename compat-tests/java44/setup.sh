#!/usr/bin/env bash
# Idempotent: fetch Apache Kafka 4.4.0's Java client, command-line tools and broker
# (kafka-clients, kafka-tools, kafka_2.13 and their runtime deps, per pom.xml) from Maven Central
# into ${SLUICE_CACHE:-$HOME/.cache/sluice}/java-compat-4.4.0/libs and print that dir; the
# caching is java/setup.sh's. The same libs run the reference broker (kafka44.sh) and the
# share-group scenarios (JavaShare.java).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml" | head -1)"
exec bash "$here/../java/setup.sh" "$here/pom.xml" "java-compat-$version"
