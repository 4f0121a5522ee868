#!/bin/bash
# A local cluster to try: a controller (node 1, port 9093) and N brokers
# (nodes 2.., ports 9092, 9094, 9095, ...; admin HTTP servers on 9644 for the
# controller, 9645.. for the brokers), each a `sluice server` process with
# its data under ./cluster-data/node<id>. Topics get 3 replicas by default and
# acks=all needs 2 in sync. Ctrl-C stops them all (brokers first, each handing
# its leaderships over). Usage: scripts/dev-cluster.sh [brokers, default 3]
set -euo pipefail
brokers=${1:-3}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${SLUICE_BIN:-$here/build/bin/sluice}"
data="${CLUSTER_DATA:-./cluster-data}"
controller_port=9093
common=(--override "controller.quorum.voters=1@127.0.0.1:$controller_port"
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
"$bin" server "${common[@]}" --override process.roles=controller --override node.id=1 \
  --override "listeners=CONTROLLER://127.0.0.1:$controller_port" --override "log.dirs=$data/node1" \
  --override "admin.listeners=http://127.0.0.1:9644" &
pids+=($!)
bootstrap=()
for (( n=0; n<brokers; n++ )); do
  id=$(( n + 2 ))
  port=$(( n == 0 ? 9092 : 9093 + n ))
  "$bin" server "${common[@]}" --override process.roles=broker --override "node.id=$id" \
    --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$data/node$id" \
    --override "admin.listeners=http://127.0.0.1:$(( 9644 + id - 1 ))" &
  pids+=($!)
  bootstrap+=("127.0.0.1:$port")
done
echo "cluster of $brokers broker(s) starting; bootstrap servers: $(IFS=,; echo "${bootstrap[*]}")" >&2
wait
