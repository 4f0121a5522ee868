#!/bin/bash
# A local cluster to try: K controllers (nodes 1..K, ports 9093, 9193, 9293,
# ...: a quorum when K > 1) and N brokers (nodes K+1.., ports 9092, 9094,
# 9095, ...), admin HTTP servers on 9644 + id - 1, each a `sluice server`
# process with its data under ./cluster-data/node<id>. Topics get 3 replicas
# by default and acks=all needs 2 in sync. Ctrl-C stops them all (brokers
# first, each handing its leaderships over).
# Usage: scripts/dev-cluster.sh [brokers, default 3] [controllers, default 1]
set -euo pipefail
brokers=${1:-3}
controllers=${2:-1}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${SLUICE_BIN:-$here/build/bin/sluice}"
data="${CLUSTER_DATA:-./cluster-data}"
voters=()
for (( c=1; c<=controllers; c++ )); do voters+=("$c@127.0.0.1:$(( 9093 + (c - 1) * 100 ))"); done
common=(--override "controller.quorum.voters=$(IFS=,; echo "${voters[*]}")"
        --override controller.listener.names=CONTROLLER
        --override "default.replication.factor=$(( brokers < 3 ? brokers : 3 ))"
        --override "min.insync.replicas=$(( brokers < 2 ? 1 : 2 ))")
pids=()
stop() {
  for (( i=${#pids[@]}-1; i>=0; i-- )); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT
mkdir -p "$data"
for (( c=1; c<=controllers; c++ )); do
  "$bin" server "${common[@]}" --override process.roles=controller --override "node.id=$c" \
    --override "listeners=CONTROLLER://127.0.0.1:$(( 9093 + (c - 1) * 100 ))" --override "log.dirs=$data/node$c" \
    --override "admin.listeners=http://127.0.0.1:$(( 9644 + c - 1 ))" &
  pids+=($!)
done
bootstrap=()
for (( n=0; n<brokers; n++ )); do
  id=$(( n + controllers + 1 ))
  port=$(( n == 0 ? 9092 : 9093 + n ))
  "$bin" server "${common[@]}" --override process.roles=broker --override "node.id=$id" \
    --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$data/node$id" \
    --override "admin.listeners=http://127.0.0.1:$(( 9644 + id - 1 ))" &
  pids+=($!)
  bootstrap+=("127.0.0.1:$port")
done
echo "cluster of $controllers controller(s) and $brokers broker(s) starting; bootstrap servers: $(IFS=,; echo "${bootstrap[*]}")" >&2
wait
