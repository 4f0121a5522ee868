"""Real clients' requests, mutated: cut short, bytes changed, large or negative integers and
over-long varints written in, pieces removed. Each is sent to Sluice, which must answer or close
the connection and go on serving, without unbounded work, memory or open files. This found a
CreatePartitions whose count became 2^31-1, after which the broker created partitions until it ran
out of file descriptors.

The requests are recorded through a proxy while confluent-kafka runs admin calls, an idempotent
producer and a consumer group against the broker. Sluice only: how Kafka copes with garbage is
not what is tested here, and a mutated CreateTopics may legitimately take Kafka minutes."""
from __future__ import annotations

import os
import random
import select
import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic)

from harness import kwire
from harness.brokers import free_port
from harness.proxy import Proxy

SEED = 20261122
ROUNDS = 30            # mutations of each recorded request
CHECK_EVERY = 250      # requests between health checks
MAX_RSS_MB = 300       # what the broker may hold after all of them
MAX_FDS = 200          # open files the broker may keep once the clients are gone
T = 30


@pytest.fixture(autouse=True)
def _sluice_only(broker_kind):
    if broker_kind != "sluice":
        pytest.skip("Sluice's own robustness against mutated requests")


def _record_client_requests(px: Proxy, topic: str, group: str) -> list[bytes]:
    boot = px.address
    a = AdminClient({"bootstrap.servers": boot})
    for f in a.create_topics([NewTopic(topic, 2, 1, config={"retention.ms": "3600000"})]).values():
        f.result(T)
    p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "linger.ms": 5})
    for i in range(200):
        p.produce(topic, key=str(i).encode(), value=b"v" * (i % 50))
    assert p.flush(T) == 0
    c = Consumer({"bootstrap.servers": boot, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got, deadline = 0, time.monotonic() + T
    while got < 200 and time.monotonic() < deadline:
        m = c.poll(0.5)
        got += bool(m and not m.error())
    c.commit(asynchronous=False)
    c.committed([TopicPartition(topic, 0)], timeout=10)
    c.offsets_for_times([TopicPartition(topic, 0, int(time.time() * 1000) - 60_000)], timeout=10)
    c.close()
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    a.describe_configs([res])[res].result(T)
    inc = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([inc])[inc].result(T)
    a.create_partitions([NewPartitions(topic, 3)])[topic].result(T)
    a.list_consumer_groups().result(T)
    a.describe_consumer_groups([group])[group].result(T)
    a.delete_records([TopicPartition(topic, 0, 5)])
    time.sleep(0.5)
    return list(px.requests)


def _mutate(rng: random.Random, request: bytes) -> bytes:
    b = bytearray(request)
    head = 8  # api key, version, correlation id: test_bad_input covers mutating those
    if len(b) <= head + 1:
        return bytes(b)
    at = rng.randrange(head, len(b))
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(b[:at])
    if kind == 1:
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(head, len(b))] = rng.randrange(256)
    elif kind == 2:
        b[at:at + 4] = struct.pack(">I", rng.choice([0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x00010000, 0x0000FFFF]))
    elif kind == 3:
        b[at:at + 2] = rng.choice([b"\xff\xff", b"\x7f\xff", b"\x80\x00", b"\x00\x00"])
    elif kind == 4:
        b[at:at] = rng.choice([b"\xff\xff\xff\xff\x0f", b"\xff\xff\xff\xff\x7f", b"\x80\x80\x80\x80\x80\x01"])
    else:
        del b[at:rng.randrange(at, len(b))]
    return bytes(b)


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _healthy(broker) -> bool:
    try:
        return broker.running() and 18 in kwire.api_versions(broker.host, broker.port, timeout=10)
    except OSError:
        return False


def test_mutated_client_requests(fresh_broker, unique_topic):
    port = free_port()
    px = Proxy(port, record_requests=True)  # the broker must advertise it, or clients go around it
    broker = fresh_broker(port=port, extra_config={"advertised.listeners": f"PLAINTEXT://{px.address}"})
    topic = unique_topic("mut")
    try:
        recorded = _record_client_requests(px, topic, unique_topic("mut-group"))
        # Three of each API and version: the first, a middle one and the last.
        by_api: dict[tuple[int, int], list[bytes]] = {}
        for r in recorded:
            by_api.setdefault(struct.unpack(">hh", r[:4]), []).append(r)
        assert {0, 1, 3, 11, 14, 19, 22, 32, 37, 44} <= {api for api, _ in by_api}, sorted(by_api)
        samples = [r for rs in by_api.values() for r in dict.fromkeys([rs[0], rs[len(rs) // 2], rs[-1]])]

        # Every position of every short request once with the largest int32: a count, a size,
        # an index. Those that stay well-formed ask for 127 partitions at most (the count's
        # last byte); one request may add 10,000. (Without that bound, the count made 2^31-1
        # had the broker create ~20,000 partitions of this topic in 7 s, until it ran out of file
        # descriptors.)
        _send(broker, [r[:at] + b"\x7f\xff\xff\xff" + r[at + 4:]
                       for r in samples if len(r) <= 512 for at in range(8, len(r))])
        admin = AdminClient({"bootstrap.servers": px.address})
        assert len(admin.list_topics(topic, timeout=T).topics[topic].partitions) < 1000

        rng = random.Random(SEED)
        _send(broker, [_mutate(rng, r) for _ in range(ROUNDS) for r in samples])
    finally:
        px.close()
    assert _rss_mb(broker.proc.pid) < MAX_RSS_MB
    # Connections this side gave up on are closed; the broker must let go of them too.
    deadline = time.monotonic() + T
    while len(os.listdir(f"/proc/{broker.proc.pid}/fd")) > MAX_FDS and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(os.listdir(f"/proc/{broker.proc.pid}/fd")) <= MAX_FDS


def _send(broker, requests: list[bytes]) -> None:
    """Sends each request, reading whatever comes back; reconnects when the broker closes.
    Checks every CHECK_EVERY requests, and at the end, that the broker still serves."""
    sock, sent, last = None, 0, b""
    try:
        for last in requests:
            if sock is None:
                sock = socket.create_connection((broker.host, broker.port), timeout=T)
                sock.setblocking(False)
            try:
                sock.send(kwire.frame(last))
                select.select([sock], [], [], 0.002)
                if not sock.recv(1 << 20):  # closed, as Kafka closes on unreadable requests
                    raise ConnectionResetError
                # Answered: the connection takes the next request.
            except (BlockingIOError, OSError):
                # Closed, or no answer yet: a request may wait (a fetch or a join for as long as
                # it asks), and the ones behind it on the connection with it, as in Kafka.
                sock.close()
                sock = None
            sent += 1
            if sent % CHECK_EVERY == 0:
                assert _healthy(broker), f"after {sent} requests, the last {last.hex()}:\n{broker.log_tail()}"
    finally:
        if sock is not None:
            sock.close()
    assert _healthy(broker), f"after {sent} requests, the last {last.hex()}:\n{broker.log_tail()}"
