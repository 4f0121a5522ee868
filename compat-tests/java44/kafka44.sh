#!/usr/bin/env bash
# Apache Kafka 4.4.0 as a single KRaft node (broker+controller) from the jars setup.sh fetches:
# the share-group (KIP-932) reference for JavaShare.java.
#
#   compat-tests/java44/kafka44.sh start <workdir> <port>   # format (once) + start, wait until up
#   compat-tests/java44/kafka44.sh stop  <workdir>          # SIGTERM, bounded wait, then SIGKILL
#
# start writes <workdir>/server.properties and log4j2.properties, formats <workdir>/data with a
# random cluster id (first start only), starts kafka.Kafka in the background (pid in
# <workdir>/kafka.pid, output in <workdir>/broker.log) with PLAINTEXT on 127.0.0.1:<port> and the
# controller on a free port, and returns once the broker logs "Kafka Server started" (60 s max).
# Share groups need no switch in 4.4: a cluster formatted at 4.4-IV2 gets share.version=2.
# Extra broker properties: KAFKA44_PROPS="key=value key=value" (appended, later wins).
# Defaults lowered for the scenarios: record lock 2000 ms (min 1000), delivery limit 5 (min 2).
# The workdir is left in place by stop: remove it yourself.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { echo "usage: $0 start <workdir> <port> | stop <workdir>" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1"; work="$2"

stop() {
  local pidf="$work/kafka.pid"
  [ -f "$pidf" ] || { echo "kafka44.sh: no $pidf (not started?)" >&2; return 0; }
  local pid; pid="$(cat "$pidf")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "kafka44.sh: pid $pid still running after 30 s, SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidf"
  echo "kafka44.sh: stopped (pid $pid)" >&2
}

start() {
  local port="$1"
  local libs; libs="$("$here/setup.sh")"
  mkdir -p "$work/data"
  work="$(cd "$work" && pwd)"
  if [ -f "$work/kafka.pid" ] && kill -0 "$(cat "$work/kafka.pid")" 2>/dev/null; then
    echo "kafka44.sh: already running (pid $(cat "$work/kafka.pid"))" >&2; return 0
  fi
  local cport
  if [ -f "$work/controller.port" ]; then cport="$(cat "$work/controller.port")"; else
    cport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    echo "$cport" > "$work/controller.port"
  fi
  cat > "$work/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$work/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=3
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
# Share groups (KIP-932). Ranges in 4.4: record lock [1000..3600000] and between the min/max
# below; group config share.record.lock.duration.ms is held to group.share.{min,max}.record.lock.duration.ms.
group.share.min.record.lock.duration.ms=1000
group.share.record.lock.duration.ms=2000
# delivery limit [2..10]; group config share.delivery.count.limit held to [min..max] (2..10).
group.share.delivery.count.limit=5
group.share.min.delivery.count.limit=2
PROPS
  for kv in ${KAFKA44_PROPS:-}; do echo "$kv" >> "$work/server.properties"; done
  cat > "$work/log4j2.properties" <<'LOG'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = OUT
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = info
LOG
  local java=(java -Xmx512m -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
              "-Dlog4j2.configurationFile=$work/log4j2.properties" "-Dkafka.logs.dir=$work/logs"
              -cp "$libs/*")
  if [ ! -f "$work/data/meta.properties" ]; then
    local cid
    cid="$(python3 -c 'import base64,uuid
while True:
    c=base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not c.startswith("-"): print(c); break')"
    timeout 120 "${java[@]}" kafka.tools.StorageTool format -t "$cid" -c "$work/server.properties" \
      > "$work/format.log" 2>&1 || { echo "kafka44.sh: storage format failed:" >&2; cat "$work/format.log" >&2; exit 1; }
    echo "kafka44.sh: formatted $work/data (cluster id $cid)" >&2
  fi
  local mark; mark=$(( $( [ -f "$work/broker.log" ] && wc -l < "$work/broker.log" || echo 0 ) ))
  echo "==== start $(date +%T)" >> "$work/broker.log"
  setsid nohup "${java[@]}" kafka.Kafka "$work/server.properties" >> "$work/broker.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$work/kafka.pid"
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "kafka44.sh: kafka exited during start-up:" >&2; tail -n 40 "$work/broker.log" >&2; rm -f "$work/kafka.pid"; exit 1
    fi
    if tail -n +"$((mark + 1))" "$work/broker.log" | grep -q "Kafka Server started"; then
      echo "kafka44.sh: Kafka 4.4.0 up on 127.0.0.1:$port (controller $cport, pid $pid, log $work/broker.log)" >&2
      echo "127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  echo "kafka44.sh: not up after 60 s:" >&2; tail -n 40 "$work/broker.log" >&2
  work="$work" stop; exit 1
}

case "$cmd" in
  start) [ $# -eq 3 ] || usage; start "$3" ;;
  stop)  stop ;;
  *) usage ;;
esac
