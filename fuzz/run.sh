#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/README.md): for each target, first every saved
# regression input of fuzz/regressions/<target>/ once, then libFuzzer for
# SECONDS over the committed seeds (fuzz/corpus/<target>/) plus the inputs
# earlier runs found (BUILD_DIR/fuzz-corpus/<target>/, not committed).
# Fails if any target crashes, leaks, times out or allocates too much; the
# input that did it is copied to fuzz/regressions/<target>/ and its report is
# printed.
#
#   fuzz/run.sh [-b BUILD_DIR] [-s SECONDS] [TARGET...]
#     BUILD_DIR  where the fuzzers were built (default build-fuzz; bin/<target>_fuzzer)
#     SECONDS    fuzzing time per target (default 60)
#     TARGET     request_decode, frame_reader, record_batch (default: all three)
# FUZZ_ARGS in the environment: more libFuzzer flags, after (and so over) ours,
# e.g. FUZZ_ARGS="-malloc_limit_mb=256 -jobs=2".
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="$root/build-fuzz"
seconds=60
while getopts "b:s:" opt; do
  case "$opt" in
    b) build="$(cd "$OPTARG" && pwd)" ;;
    s) seconds="$OPTARG" ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(request_decode frame_reader record_batch)

# The most one allocation may take (libFuzzer -malloc_limit_mb). Inputs are at
# most ~64 KiB: 64 MB is far beyond what decoding a request that size needs,
# or what the frame reader's buffer may grow to (twice the at most 2 MiB read).
# Compressed records are checked streaming, in pieces of a few hundred KiB
# (protocol/compression.h), except for two buffers a codec sizes from its
# input within the output bound: a raw snappy block (at most ~21x its size)
# and zstd's window, up to 2^27 bytes (Kafka's consumers' limit) under the
# default 100 MiB bound: 134.6 MB with zstd's block buffers. More is a size
# taken from the input unchecked.
declare -A malloc_limit=([request_decode]=64 [frame_reader]=64 [record_batch]=160)
common=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
# Halt on the first report of either sanitizer, with symbolized stacks.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:symbolize=1}"

failed=()
for t in "${targets[@]}"; do
  bin="$build/bin/${t}_fuzzer"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin not built (make build-fuzz)" >&2
    exit 2
  fi
  seeds="$here/corpus/$t"
  regressions="$here/regressions/$t"
  work="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  logs="$build/fuzz-logs"
  mkdir -p "$work" "$artifacts" "$logs"
  opts=("${common[@]}" -malloc_limit_mb="${malloc_limit[$t]:-2048}")
  # shellcheck disable=SC2206
  opts+=(${FUZZ_ARGS:-})

  # 1. Regression inputs, each run once.
  mapfile -t inputs < <(find "$regressions" -type f ! -name '*.md' 2>/dev/null | sort)
  if [ ${#inputs[@]} -gt 0 ]; then
    if ! "$bin" "${opts[@]}" "${inputs[@]}" >"$logs/$t-regressions.log" 2>&1; then
      echo "fuzz: $t: a regression input fails again:" >&2
      grep -E "^Running:|_fuzzer: |ERROR|SUMMARY|runtime error|^    #" "$logs/$t-regressions.log" | head -60 >&2
      failed+=("$t (regressions)")
      continue
    fi
    echo "fuzz: $t: ${#inputs[@]} regression inputs pass"
  fi

  # 2. Fuzzing. New inputs go to the first directory (the work corpus).
  rm -f "$artifacts"/*
  start=$(date +%s)
  "$bin" "${opts[@]}" -max_total_time="$seconds" -artifact_prefix="$artifacts/" "$work" "$seeds" \
    >"$logs/$t.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  stats=$(grep -E "^#[0-9]+\s+DONE" "$logs/$t.log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "fuzz: $t: clean after ${took}s: ${stats:-"(no stats)"}"
    continue
  fi
  failed+=("$t")
  echo "fuzz: $t: FAILED (exit $rc) after ${took}s; log: $logs/$t.log" >&2
  mkdir -p "$regressions"
  for a in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
    [ -f "$a" ] || continue
    cp "$a" "$regressions/"
    echo "fuzz: $t: input saved as ${regressions#"$root"/}/$(basename "$a")" >&2
  done
  grep -E -B2 -A40 "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|ALARM|out-of-memory|malloc\(" \
    "$logs/$t.log" | head -80 >&2
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
