"""Share groups (KIP-932, issue 18) with Apache Kafka's own KafkaShareConsumer (kafka-clients
4.4.0, compat-tests/java44/JavaShare.java), against Sluice and against Apache Kafka 4.4.0 (a KRaft
single node from the same jars, java44/kafka44.sh): the same scenarios must pass on both.

  - three consumers share a 1-partition topic: every record delivered, each accepted once;
  - explicit acknowledgement: released records come back (delivery count 2), rejected ones never;
  - a consumer that stops polling while holding records: they come back after the lock duration;
  - a record released every time: delivered the delivery-count limit times, then archived;
  - Sluice only (its stated guarantee: acknowledgements are durable before they are answered):
    a consumer accepts some records and dies holding the others, the broker is kill -9ed and
    restarted, and a new consumer gets exactly the records that were not accepted;
  - Sluice only: a topic whose delete.after.consumption.groups names a share group loses its
    records as the share group's start offset passes them, and not before;
  - confluent-kafka's ShareConsumer (librdkafka 2.16, the suite's other share-group client):
    three consumers share a partition, each record delivered once; explicit release and reject;
  - kafka-share-groups.sh (Kafka 4.4.0's ShareGroupCommand): --list, --describe (offsets and
    lag), --state, --members, --reset-offsets, --delete-offsets, --delete.

Both brokers run with group.share.record.lock.duration.ms=2000 (the broker key; the group key's
minimum is 15 s). Every scenario is bounded (COMPAT_DEADLINE_S); its JSON result is printed
(-s shows it).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness.brokers import Broker, free_port
from harness.kinds import kinds_for

JAVA44 = Path(__file__).resolve().parent / "java44"
LOCK_MS = "2000"
GROUP_RESOURCE = 32  # ConfigResource.Type.GROUP


@pytest.fixture(scope="session")
def java44_libs() -> Path:
    if not shutil.which("java"):
        pytest.fail("java not found (JDK 17+ is required)")
    res = subprocess.run(["bash", str(JAVA44 / "setup.sh")], capture_output=True, text=True, timeout=960)
    if res.returncode != 0:
        pytest.fail(f"java44/setup.sh failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return Path(res.stdout.strip().splitlines()[-1])


def pytest_generate_tests(metafunc):
    if "share_kind" in metafunc.fixturenames:
        kinds = kinds_for(metafunc)  # Kafka 4.4 here, under the suite's --brokers/--kafka-runs
        metafunc.parametrize("share_kind", kinds, ids=kinds, scope="module")


class Kafka44:
    """Apache Kafka 4.4.0, one KRaft node (java44/kafka44.sh)."""

    def __init__(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="compat-kafka44-"))
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        # kafka44.sh takes its controller port from here (else from bind(0), in the ephemeral range).
        (self.workdir / "controller.port").write_text(f"{free_port()}\n")

    def start(self):
        env = {**os.environ, "KAFKA44_PROPS": f"group.share.record.lock.duration.ms={LOCK_MS}"}
        subprocess.run(["bash", str(JAVA44 / "kafka44.sh"), "start", str(self.workdir), str(self.port)],
                       check=True, timeout=120, env=env, capture_output=True)

    def cleanup(self):
        subprocess.run(["bash", str(JAVA44 / "kafka44.sh"), "stop", str(self.workdir)], timeout=60,
                       capture_output=True)
        if not os.environ.get("COMPAT_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def share_broker(share_kind, java44_libs):
    b = Kafka44() if share_kind == "kafka" else Broker("sluice", extra_config={
        "group.share.record.lock.duration.ms": LOCK_MS})
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


def java_share(libs: Path, bootstrap: str, *args: str, deadline_s: int = 90, env: dict | None = None) -> dict:
    """Runs one JavaShare scenario; its JSON result (asserting it passed its own checks). `env`:
    more environment (SHARE_ACQUIRE_MODE, ...)."""
    env = {**os.environ, "BOOTSTRAP_SERVERS": bootstrap, "COMPAT_DEADLINE_S": str(deadline_s), **(env or {})}
    run = subprocess.run(["java", "-Xmx256m", "-Dlog4j2.configurationFile=log4j2.properties", "-cp", f"{libs}/*",
                          "JavaShare.java", *args], cwd=JAVA44, env=env, capture_output=True, text=True,
                         timeout=deadline_s + 60)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from JavaShare {args}:\n{run.stdout}\n{run.stderr[-3000:]}"
    result = json.loads(lines[-1])
    print(json.dumps({k: v for k, v in result.items() if k not in ("accepted", "drained")}))
    assert run.returncode == 0 and result["ok"], f"{result.get('failures')}\n{run.stderr[-3000:]}"
    return result


def test_three_consumers_share_one_partition(share_broker, java44_libs, share_kind):
    r = java_share(java44_libs, share_broker.bootstrap, "share-three", f"t-three-{share_kind}", "g-three", "1000")
    assert r["total"] == r["distinct"] == 1000 and r["duplicates"] == 0 and r["all_delivered"]


def share_group_tool(libs: Path, bootstrap: str, *args: str) -> str:
    """kafka-share-groups.sh (ShareGroupCommand, Kafka 4.4.0's tools); its output (asserting exit 0)."""
    run = subprocess.run(["java", "-Xmx256m", f"-Dlog4j2.configurationFile={JAVA44 / 'log4j2.properties'}", "-cp",
                          f"{libs}/*", "org.apache.kafka.tools.consumer.group.ShareGroupCommand",
                          "--bootstrap-server", bootstrap, *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"ShareGroupCommand {args}: {run.returncode}\n{run.stdout}\n{run.stderr[-2000:]}"
    return run.stdout


def test_kafka_share_groups_tool(share_broker, java44_libs, share_kind):
    """kafka-share-groups.sh --list, --describe (offsets, lag), --state, --members, --reset-offsets
    --to-earliest (everything delivered again), --delete-offsets, --delete."""
    share_groups_tool_scenario(java44_libs, share_broker.bootstrap, f"t-tool-{share_kind}", "g-tool",
                               sluice_start_offsets=share_kind == "sluice")


def share_groups_tool_scenario(java44_libs: Path, bootstrap: str, topic: str, group: str,
                               sluice_start_offsets: bool = True) -> None:
    """The tool's scenario (also run against a cluster, test_share_cluster.py)."""

    class _Broker:  # what the body below reads
        pass
    share_broker = _Broker()
    share_broker.bootstrap = bootstrap
    java_share(java44_libs, share_broker.bootstrap, "share-three", topic, group, "100")
    listed = share_group_tool(java44_libs, share_broker.bootstrap, "--list")
    assert group in listed.split(), listed
    described = share_group_tool(java44_libs, share_broker.bootstrap, "--describe", "--group", group)
    print(described)
    rows = [line.split() for line in described.splitlines() if topic in line.split()]
    assert len(rows) == 1, described
    header = described.splitlines()[[i for i, l in enumerate(described.splitlines()) if "GROUP" in l][0]].split()
    row = dict(zip(header, rows[0]))
    assert row["PARTITION"] == "0" and row["LAG"] == "0", row  # everything was accepted
    if sluice_start_offsets:  # Kafka 4.4.0 showed 0 here, its coordinator's start offset lagging
        assert row["START-OFFSET"] == "100", row
    state = share_group_tool(java44_libs, share_broker.bootstrap, "--describe", "--group", group, "--state")
    assert "Empty" in state, state
    share_group_tool(java44_libs, share_broker.bootstrap, "--describe", "--group", group, "--members")
    # Back to the earliest offset: a consumer gets all 100 records again.
    reset = share_group_tool(java44_libs, share_broker.bootstrap, "--reset-offsets", "--group", group, "--topic",
                             topic, "--to-earliest", "--execute")
    print(reset)
    described = share_group_tool(java44_libs, share_broker.bootstrap, "--describe", "--group", group)
    row = dict(zip(header, [line.split() for line in described.splitlines() if topic in line.split()][0]))
    assert row["START-OFFSET"] == "0", described
    again = java_share(java44_libs, share_broker.bootstrap, "share-drain", topic, group, "100")
    assert sorted(again["drained"]) == sorted(f"k{i}" for i in range(100))
    # Its offsets for the topic deleted: --describe no longer lists the topic.
    share_group_tool(java44_libs, share_broker.bootstrap, "--delete-offsets", "--group", group, "--topic", topic)
    described = share_group_tool(java44_libs, share_broker.bootstrap, "--describe", "--group", group)
    assert not [line for line in described.splitlines() if topic in line.split()], described
    deleted = share_group_tool(java44_libs, share_broker.bootstrap, "--delete", "--group", group)
    assert "successful" in deleted, deleted
    assert group not in share_group_tool(java44_libs, share_broker.bootstrap, "--list").split()


def test_explicit_accept_release_reject(share_broker, java44_libs, share_kind):
    r = java_share(java44_libs, share_broker.bootstrap, "share-explicit", f"t-explicit-{share_kind}", "g-explicit", "100")
    assert r["accepted"] == 90 and r["released"] == 10 and r["rejected"] == 10 and r["redelivered"] == 10
    assert not r["unexpected"] and not r["wrong_delivery_count"]


def test_held_records_come_back_after_the_lock_duration(share_broker, java44_libs, share_kind):
    r = java_share(java44_libs, share_broker.bootstrap, "share-lock-timeout", f"t-lock-{share_kind}", "g-lock", "50")
    assert r["b_got_a_records"] == r["a_held"] > 0
    assert set(r["b_delivery_counts"]) == {"2"}


def test_poison_record_is_archived_at_the_delivery_limit(share_broker, java44_libs, share_kind):
    r = java_share(java44_libs, share_broker.bootstrap, "share-poison", f"t-poison-{share_kind}", "g-poison")
    assert r["delivery_counts"] == [1, 2, 3]


def test_acknowledgements_survive_kill9(java44_libs, share_kind, tmp_path):
    if share_kind != "sluice":
        pytest.skip("Sluice's durability guarantee (Kafka 4.4 on its defaults does not sync)")
    n, k = 200, 120
    b = Broker("sluice", workdir=tmp_path, extra_config={"group.share.record.lock.duration.ms": LOCK_MS})
    try:
        b.start()
        first = java_share(java44_libs, b.bootstrap, "share-accept-some", "t-durable", "g-durable", str(n), str(k))
        accepted = set(first["accepted"])
        assert len(accepted) == k
        b.kill9()
        b.start()
        rest = java_share(java44_libs, b.bootstrap, "share-drain", "t-durable", "g-durable", str(n - k))
        drained = rest["drained"]
        assert not accepted & set(drained), f"accepted records delivered again: {sorted(accepted & set(drained))[:10]}"
        assert len(drained) == len(set(drained)) == n - k
        assert accepted | set(drained) == {f"k{i}" for i in range(n)}
    finally:
        b.cleanup()


def test_share_group_consumption_releases_records(java44_libs, share_kind, tmp_path):
    if share_kind != "sluice":
        pytest.skip("delete.after.consumption.groups is Sluice's")
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    n, k = 200, 120
    b = Broker("sluice", workdir=tmp_path, extra_config={"group.share.record.lock.duration.ms": LOCK_MS,
                                                         "delete.after.consumption.check.interval.ms": "200"})
    try:
        b.start()
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("t-queue", 1, 1, config={"delete.after.consumption.groups": "g-queue",
                                                               "segment.bytes": "4096"})])["t-queue"].result(30)
        watermarks = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "watermarks"})

        def log_start() -> int:
            return watermarks.get_watermark_offsets(TopicPartition("t-queue", 0), timeout=5)[0]

        def wait_log_start(wanted: int) -> None:
            deadline = time.monotonic() + 30
            while log_start() != wanted:
                assert time.monotonic() < deadline, f"log start {log_start()}, expected {wanted}"
                time.sleep(0.2)

        # The share group accepts the first k and dies holding the rest: the log start stops at k.
        java_share(java44_libs, b.bootstrap, "share-accept-some", "t-queue", "g-queue", str(n), str(k))
        wait_log_start(k)
        time.sleep(1.0)  # five checks: the held records keep it there
        assert log_start() == k
        # Their locks expire, another member takes and accepts them: everything goes.
        java_share(java44_libs, b.bootstrap, "share-drain", "t-queue", "g-queue", str(n - k))
        wait_log_start(n)
        watermarks.close()
    finally:
        b.cleanup()


# ---------------------------------------------------------------- confluent-kafka's ShareConsumer
def _group_configs(bootstrap: str, group: str, configs: dict[str, str]) -> None:
    from harness.kadmin_wire import SET, Conn, incremental_alter_configs
    conn = Conn(bootstrap)
    try:
        answers = incremental_alter_configs(conn, [(GROUP_RESOURCE, group, [(k, SET, v) for k, v in configs.items()])])
        assert all(a.error == 0 for a in answers), answers
    finally:
        conn.close()


def _topic_with_records(bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "log_level": 2})
    for i in range(n):
        p.produce(topic, f"v{i}".encode(), key=f"k{i}".encode())
    assert p.flush(30) == 0


def _share_consumer(bootstrap: str, group: str, explicit: bool = False):
    from confluent_kafka import ShareConsumer
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "log_level": 2}
    if explicit:
        conf["share.acknowledgement.mode"] = "explicit"
    return ShareConsumer(conf)


def test_confluent_share_consumers_share_one_partition(share_broker, share_kind):
    import threading
    topic, group, n = f"py-three-{share_kind}", "py-three", 600
    _group_configs(share_broker.bootstrap, group, {"share.auto.offset.reset": "earliest"})
    _topic_with_records(share_broker.bootstrap, topic, n)
    seen: list[list[str]] = [[], [], []]
    done = threading.Event()

    def consume(k: int) -> None:
        c = _share_consumer(share_broker.bootstrap, group)
        try:
            c.subscribe([topic])
            deadline = time.monotonic() + 60
            while not done.is_set() and time.monotonic() < deadline:
                for m in c.poll(0.5):
                    if m.error() is None:
                        seen[k].append(m.key().decode())
                if len({key for s in seen for key in s}) >= n:
                    done.set()
            c.commit_sync(10)  # the last poll's records, accepted
        finally:
            c.close()

    threads = [threading.Thread(target=consume, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    every = [key for s in seen for key in s]
    print(json.dumps({"per_consumer": [len(s) for s in seen], "total": len(every), "distinct": len(set(every))}))
    assert set(every) == {f"k{i}" for i in range(n)}
    assert len(every) == n, "a record was delivered twice"


def test_confluent_explicit_release_and_reject(share_broker, share_kind):
    from confluent_kafka import AcknowledgeType
    topic, group, n = f"py-explicit-{share_kind}", "py-explicit", 100
    _group_configs(share_broker.bootstrap, group, {"share.auto.offset.reset": "earliest"})
    _topic_with_records(share_broker.bootstrap, topic, n)
    deliveries: dict[str, int] = {}
    accepted: set[str] = set()
    c = _share_consumer(share_broker.bootstrap, group, explicit=True)
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 60
        settled_at = None
        while time.monotonic() < deadline and (settled_at is None or time.monotonic() < settled_at + 3):
            messages = [m for m in c.poll(0.5) if m.error() is None]
            for m in messages:
                key = m.key().decode()
                deliveries[key] = deliveries.get(key, 0) + 1
                if key.endswith("7"):
                    c.acknowledge(m, AcknowledgeType.REJECT)
                elif key.endswith("3") and deliveries[key] == 1:
                    c.acknowledge(m, AcknowledgeType.RELEASE)
                else:
                    c.acknowledge(m, AcknowledgeType.ACCEPT)
                    accepted.add(key)
            if messages:
                c.commit_sync(10)
            if settled_at is None and len(accepted) == n - 10:
                settled_at = time.monotonic()  # 3 s more: nothing may come back
    finally:
        c.close()
    print(json.dumps({"accepted": len(accepted), "delivered": sum(deliveries.values())}))
    rejected = {f"k{i}" for i in range(n) if str(i).endswith("7")}
    released = {f"k{i}" for i in range(n) if str(i).endswith("3")}
    assert accepted == {f"k{i}" for i in range(n)} - rejected
    assert all(deliveries[k] == 1 for k in rejected), "a rejected record came back"
    assert all(deliveries[k] == 2 for k in released), "a released record did not come back exactly once"
    assert all(deliveries[k] == 1 for k in accepted - released)


# ---------------------------------------------------------------- error codes, on the wire
def _topic_id(bootstrap: str, topic: str) -> bytes:
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_topics(TopicCollection([topic]))[topic].result(30)
    tid = description.topic_id
    msb, lsb = tid.get_most_significant_bits(), tid.get_least_significant_bits()
    return (msb & (2**64 - 1)).to_bytes(8, "big") + (lsb & (2**64 - 1)).to_bytes(8, "big")


def test_share_requests_get_kafkas_error_codes(share_broker, share_kind):
    """The checks Kafka 4.4 makes on ShareGroupHeartbeat, ShareFetch and ShareAcknowledge, and
    the same codes from Sluice: bad member ids and epochs, sessions that do not exist or are at
    another epoch, acknowledgements of records not held, hostile offset ranges."""
    from harness.kadmin_wire import Conn
    from harness.share_wire import (find_coordinator, new_member_id, share_acknowledge, share_fetch,
                                    share_group_heartbeat)
    INVALID_REQUEST, UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, GROUP_ID_NOT_FOUND = 42, 25, 110, 69
    INVALID_RECORD_STATE, SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH = 121, 122, 123
    topic, group = f"wire-{share_kind}", f"wire-group-{share_kind}"
    _group_configs(share_broker.bootstrap, group, {"share.auto.offset.reset": "earliest"})
    _topic_with_records(share_broker.bootstrap, topic, 20)
    tid = _topic_id(share_broker.bootstrap, topic)
    conn = Conn(share_broker.bootstrap)
    try:
        deadline = time.monotonic() + 30
        while find_coordinator(conn, group) != 0:  # Kafka creates __consumer_offsets now
            assert time.monotonic() < deadline, "no coordinator"
            time.sleep(0.2)
        member = new_member_id()
        assert share_group_heartbeat(conn, group, "", 0, [topic]).error == INVALID_REQUEST
        assert share_group_heartbeat(conn, group, member, 0, None).error == INVALID_REQUEST
        assert share_group_heartbeat(conn, group, member, 0, []).error == INVALID_REQUEST
        assert share_group_heartbeat(conn, group, member, -2, [topic]).error == INVALID_REQUEST
        assert share_group_heartbeat(conn, group, new_member_id(), 7, None).error == GROUP_ID_NOT_FOUND
        joined = share_group_heartbeat(conn, group, member, 0, [topic])
        assert joined.error == 0 and joined.member_epoch > 0
        assert share_group_heartbeat(conn, group, new_member_id(), 7, None).error == UNKNOWN_MEMBER_ID
        assert share_group_heartbeat(conn, group, member, joined.member_epoch + 5, None).error == FENCED_MEMBER_EPOCH

        tp = (tid, 0)
        assert share_fetch(conn, None, member, 0, {tp: []}).error == INVALID_REQUEST
        assert share_fetch(conn, group, "", 0, {tp: []}).error == INVALID_REQUEST
        assert share_fetch(conn, group, "x" * 37, 0, {tp: []}).error == INVALID_REQUEST
        assert share_fetch(conn, group, member, 3, {tp: []}).error == SHARE_SESSION_NOT_FOUND
        assert share_fetch(conn, group, member, 0, {tp: [(0, 0, [1])]}).error == INVALID_REQUEST
        assert share_acknowledge(conn, group, member, 0, {tp: [(0, 0, [1])]}).error == INVALID_SHARE_SESSION_EPOCH
        assert share_acknowledge(conn, group, member, 2, {tp: [(0, 0, [1])]}).error == SHARE_SESSION_NOT_FOUND

        # A session, and records for it (Kafka initializes the share-partition after the join).
        epoch, acquired = 0, []
        deadline = time.monotonic() + 30
        while not acquired:
            assert time.monotonic() < deadline, "no records acquired"
            answer = share_fetch(conn, group, member, epoch, {tp: []}, max_wait_ms=500)
            assert answer.error == 0, answer.error
            epoch = epoch + 1
            part = answer.partitions.get(tp)
            acquired = part.acquired if part else []
        first, last, count = acquired[0]
        assert first == 0 and count == 1
        assert share_fetch(conn, group, member, epoch + 3, {tp: []}).error == INVALID_SHARE_SESSION_EPOCH
        # Acknowledging what it does not hold, or malformed batches: the partition's ack error.
        answer = share_acknowledge(conn, group, member, epoch, {tp: [(last + 1000, last + 1000, [1])]})
        epoch += 1
        assert answer.error == 0 and answer.partitions[tp].error == INVALID_REQUEST
        answer = share_acknowledge(conn, group, member, epoch, {tp: [(first, first, [9])]})
        epoch += 1
        assert answer.partitions[tp].error == INVALID_REQUEST
        answer = share_acknowledge(conn, group, member, epoch, {tp: [(last, first, [1])]} if last > first else
                                   {tp: [(first + 1, first, [1])]})
        epoch += 1
        assert answer.partitions[tp].error == INVALID_REQUEST
        # Records another member holds: INVALID_RECORD_STATE for that one.
        other = new_member_id()
        assert share_group_heartbeat(conn, group, other, 0, [topic]).error == 0
        assert share_fetch(conn, group, other, 0, {tp: []}).error == 0
        answer = share_acknowledge(conn, group, other, 1, {tp: [(first, first, [1])]})
        assert answer.error == 0 and answer.partitions[tp].error == INVALID_RECORD_STATE
        # A good one, then the session closed.
        answer = share_acknowledge(conn, group, member, epoch, {tp: [(first, last, [1])]})
        epoch += 1
        assert answer.error == 0 and answer.partitions[tp].error == 0
        answer = share_acknowledge(conn, group, member, -1, {})
        assert answer.error == 0
        assert share_fetch(conn, group, member, epoch, {tp: []}).error == SHARE_SESSION_NOT_FOUND
        left = share_group_heartbeat(conn, group, member, -1, None)
        assert left.error == 0 and left.member_epoch == -1
    finally:
        conn.close()
