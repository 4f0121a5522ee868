#!/usr/bin/env bash
# Idempotent: fetch Apache Kafka 4.4.0's Java client, command-line tools and broker
# (kafka-clients, kafka-tools, kafka_2.13 and their runtime deps) from Maven Central into
#   ${SLUICE_CACHE:-$HOME/.cache/sluice}/java-compat-<version>/libs
# and print that dir. Fast (no mvn) when the cache matches pom.xml (stamp of its sha256).
# The same libs run the reference broker (kafka44.sh) and the share-group scenarios (JavaShare.java).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -1)"
[ -n "$version" ] || { echo "java44/setup.sh: no kafka.version in $pom" >&2; exit 1; }
dest="${SLUICE_CACHE:-$HOME/.cache/sluice}/java-compat-$version"
libs="$dest/libs"
stamp="$dest/.complete"
pomsum="$(sha256sum "$pom" | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pomsum" ] && [ -f "$libs/kafka-clients-$version.jar" ]; then
  echo "$libs"
  exit 0
fi

command -v mvn >/dev/null || { echo "java44/setup.sh: mvn not found (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "java44/setup.sh: java not found (JDK 17+)" >&2; exit 1; }
mkdir -p "$dest"
tmp="$(mktemp -d "$dest/libs.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "java44/setup.sh: fetching kafka-clients, kafka-tools, kafka_2.13 $version from Maven Central" >&2
timeout 900 mvn -B -q -f "$pom" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
for j in kafka-clients kafka-tools kafka_2.13; do
  [ -f "$tmp/$j-$version.jar" ] || { echo "java44/setup.sh: $j-$version.jar missing after mvn" >&2; exit 1; }
done
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "$pomsum" > "$stamp"
echo "$libs"
