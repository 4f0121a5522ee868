#!/usr/bin/env bash
# Fetch Apache Kafka's broker jars (and runtime deps) from Maven Central via mvn
# into ${SLUICE_CACHE:-$HOME/.cache/sluice}/kafka-<version>/libs and print that dir.
# Idempotent: a complete cache (stamp file present) is reused without touching mvn.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -1)"
[ -n "$version" ] || { echo "fetch.sh: no kafka.version in $pom" >&2; exit 1; }
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
dest="$cache/kafka-$version"
libs="$dest/libs"
stamp="$dest/.complete"
pomsum="$(sha256sum "$pom" | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pomsum" ] && [ -f "$libs/kafka_2.13-$version.jar" ]; then
  echo "$libs"
  exit 0
fi

command -v mvn >/dev/null || { echo "fetch.sh: mvn not found (apt-get install maven)" >&2; exit 1; }
mkdir -p "$dest"
tmp="$(mktemp -d "$dest/libs.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: fetching org.apache.kafka:kafka_2.13:$version from Maven Central" >&2
timeout 900 mvn -B -q -f "$pom" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
[ -f "$tmp/kafka_2.13-$version.jar" ] || { echo "fetch.sh: kafka jar missing after mvn" >&2; exit 1; }
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "$pomsum" > "$stamp"
echo "$libs"
