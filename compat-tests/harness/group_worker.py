"""A consumer-group member in its own process, for the `groups` scenarios (see harness/groups.py).

    python -m harness.group_worker '<json config>'

Config keys: client ("confluent" | "kafka-python"), bootstrap, group, topic, strategy ("range",
"roundrobin", "cooperative-sticky"), instance_id (static membership, optional), session_ms,
max_s (the process exits by itself after that long).

It subscribes, polls, commits synchronously after every non-empty poll, and prints one JSON event
per line on stdout (flushed):
    {"ev": "assign"|"revoke"|"lost", "parts": [...], "owned": [...], "t": monotonic}
    {"ev": "msgs", "recs": [[partition, offset, key], ...], "committed": bool, "t": ...}
    {"ev": "error", "what": "..."}          {"ev": "closed", "t": ...}
A line "close" on stdin closes the consumer (a clean LeaveGroup for dynamic members) and exits.
"""
from __future__ import annotations

import json
import sys
import threading
import time

cfg = json.loads(sys.argv[1])
_out_lock = threading.Lock()
_close = threading.Event()


def emit(ev: str, **kw) -> None:
    kw["ev"] = ev
    kw["t"] = time.monotonic()
    with _out_lock:
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()


def _stdin_reader() -> None:
    for line in sys.stdin:
        if line.strip() == "close":
            _close.set()
            return
    _close.set()  # parent went away


def run_confluent() -> None:
    from confluent_kafka import Consumer, KafkaException

    conf = {"bootstrap.servers": cfg["bootstrap"], "group.id": cfg["group"],
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": cfg.get("session_ms", 6000), "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": cfg.get("strategy", "range"),
            "fetch.wait.max.ms": 100, "topic.metadata.refresh.interval.ms": 2000,
            "log_level": 3}
    if cfg.get("instance_id"):
        conf["group.instance.id"] = cfg["instance_id"]
    c = Consumer(conf)
    owned: set[int] = set()

    def on_assign(_c, parts):
        owned.update(p.partition for p in parts)
        emit("assign", parts=sorted(p.partition for p in parts), owned=sorted(owned))

    def on_revoke(_c, parts):
        owned.difference_update(p.partition for p in parts)
        emit("revoke", parts=sorted(p.partition for p in parts), owned=sorted(owned))

    def on_lost(_c, parts):
        owned.difference_update(p.partition for p in parts)
        emit("lost", parts=sorted(p.partition for p in parts), owned=sorted(owned))

    c.subscribe([cfg["topic"]], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    deadline = time.monotonic() + cfg.get("max_s", 120)
    try:
        while not _close.is_set() and time.monotonic() < deadline:
            msgs = c.consume(num_messages=1000, timeout=0.2)
            recs = []
            for m in msgs:
                if m.error():
                    emit("error", what=str(m.error()))
                    continue
                recs.append([m.partition(), m.offset(), m.key().decode()])
            if recs:
                committed = True
                try:
                    c.commit(asynchronous=False)
                except KafkaException as e:
                    committed = False
                    emit("error", what=f"commit: {e}")
                emit("msgs", recs=recs, committed=committed)
    finally:
        c.close()
        emit("closed")


def run_kafka_python() -> None:
    from kafka import KafkaConsumer
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.errors import KafkaError

    from harness.kp import subscribe_with_metadata

    strategy = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
                "cooperative-sticky": CooperativeStickyAssignor}[cfg.get("strategy", "range")]
    kw = dict(bootstrap_servers=cfg["bootstrap"], group_id=cfg["group"], enable_auto_commit=False,
              auto_offset_reset="earliest", session_timeout_ms=cfg.get("session_ms", 6000),
              heartbeat_interval_ms=500, partition_assignment_strategy=[strategy],
              fetch_max_wait_ms=100, metadata_max_age_ms=2000, request_timeout_ms=30000)
    if cfg.get("instance_id"):
        kw["group_instance_id"] = cfg["instance_id"]
    c = KafkaConsumer(**kw)
    owned: set[int] = set()

    class Listener(ConsumerRebalanceListener):
        def on_partitions_assigned(self, assigned):
            owned.update(tp.partition for tp in assigned)
            emit("assign", parts=sorted(tp.partition for tp in assigned), owned=sorted(owned))

        def on_partitions_revoked(self, revoked):
            owned.difference_update(tp.partition for tp in revoked)
            emit("revoke", parts=sorted(tp.partition for tp in revoked), owned=sorted(owned))

        def on_partitions_lost(self, lost):
            owned.difference_update(tp.partition for tp in lost)
            emit("lost", parts=sorted(tp.partition for tp in lost), owned=sorted(owned))

    subscribe_with_metadata(c, cfg["topic"], listener=Listener())
    deadline = time.monotonic() + cfg.get("max_s", 120)
    try:
        while not _close.is_set() and time.monotonic() < deadline:
            batches = c.poll(timeout_ms=200, max_records=1000)
            recs = [[tp.partition, m.offset, m.key.decode()] for tp, ms in batches.items() for m in ms]
            if recs:
                committed = True
                try:
                    c.commit()
                except KafkaError as e:
                    committed = False
                    emit("error", what=f"commit: {e!r}")
                emit("msgs", recs=recs, committed=committed)
    finally:
        c.close()
        emit("closed")


if __name__ == "__main__":
    threading.Thread(target=_stdin_reader, daemon=True).start()
    emit("started")
    try:
        {"confluent": run_confluent, "kafka-python": run_kafka_python}[cfg["client"]]()
    except Exception as e:  # report, then fail the process
        emit("error", what=f"fatal: {e!r}")
        raise
