#!/usr/bin/env bash
# Idempotent: fetch Apache Kafka's Java client and command-line tools (kafka-clients, kafka-tools,
# kafka_2.13 and their runtime deps) from Maven Central into
#   ${SLUICE_CACHE:-$HOME/.cache/sluice}/java-compat/libs
# and print that dir. Fast (no mvn) when the cache matches pom.xml (stamp of its sha256).
set -euo pipefail
# With arguments POM CACHE_NAME: the same for another pom (java44/setup.sh: Kafka 4.4.0's jars)
# into ${SLUICE_CACHE:-$HOME/.cache/sluice}/CACHE_NAME/libs.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="${1:-$here/pom.xml}"
cache_name="${2:-java-compat}"
me="$(basename "$(dirname "$pom")")/setup.sh"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -1)"
[ -n "$version" ] || { echo "$me: no kafka.version in $pom" >&2; exit 1; }
ref_pom="$here/../kafka-ref/pom.xml"
if [ $# -eq 0 ] && [ -f "$ref_pom" ]; then
  ref="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ref_pom" | head -1)"
  [ "$ref" = "$version" ] || echo "$me: warning: client/tools $version != reference broker $ref (kafka-ref/pom.xml)" >&2
fi
dest="${SLUICE_CACHE:-$HOME/.cache/sluice}/$cache_name"
libs="$dest/libs"
stamp="$dest/.complete"
pomsum="$(sha256sum "$pom" | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pomsum" ] && [ -f "$libs/kafka-clients-$version.jar" ]; then
  echo "$libs"
  exit 0
fi

command -v mvn >/dev/null || { echo "$me: mvn not found (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "$me: java not found (JDK 17+)" >&2; exit 1; }
mkdir -p "$dest"
tmp="$(mktemp -d "$dest/libs.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "$me: fetching kafka-clients, kafka-tools, kafka_2.13 $version from Maven Central" >&2
timeout 900 mvn -B -q -f "$pom" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" >&2
for j in kafka-clients kafka-tools kafka_2.13; do
  [ -f "$tmp/$j-$version.jar" ] || { echo "$me: $j-$version.jar missing after mvn" >&2; exit 1; }
done
rm -rf "$libs"
mv "$tmp" "$libs"
trap - EXIT
echo "$pomsum" > "$stamp"
echo "$libs"
