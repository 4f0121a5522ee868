"""Replication under faults, on a real cluster of Sluice processes (harness/cluster.py: a
controller and three brokers on loopback). RF=3, min.insync.replicas=2, idempotent producers
with acks=all, and a checker that reads every partition back and compares it with what was
acknowledged: nothing acknowledged lost or changed, nothing duplicated, each partition in
production order. Every loop is bounded in rounds and time; the figures (acknowledged, lost,
failover times) are printed (run with -s to see them) and asserted where the guarantee is.

The guarantee under test (storage/README.md, "Replication"): a message acknowledged with
acks=all is on every in-sync replica (synced on the leader) and the ISR had at least
min.insync.replicas members, so it survives the loss of any one broker.
"""
from __future__ import annotations

import shutil
import socket
import time

import pytest
from confluent_kafka import KafkaError, Producer

from harness.cluster import SESSION_TIMEOUT_MS, SluiceCluster, rf3_cluster_fixture, sluice_only_fixture  # noqa: F401 (fixtures)
from harness.replication_check import P, AckedProducer, check_replicated, read_all, replicas_identical


def test_metadata_shows_leaders_replicas_and_isr_spread_over_brokers(cluster):
    topic = "spread"
    cluster.create_topic(topic, 6, 3)
    state = cluster.partition_state(topic)
    leaders = sorted(leader for leader, _, _ in state.values())
    assert leaders == sorted(cluster.broker_ids * 2), f"leaders not spread evenly: {state}"
    for p, (leader, replicas, isr) in state.items():
        assert sorted(replicas) == cluster.broker_ids and sorted(isr) == cluster.broker_ids
        assert leader == replicas[0]
    # Every broker tells the same story.
    for b in cluster.broker_ids:
        md = cluster.admin().list_topics(topic=topic, timeout=5)
        assert len(md.brokers) == 3


def test_leader_killed_and_restarted_repeatedly_loses_nothing_acknowledged(cluster):
    topic = "kill-leader"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=400, limit=40_000)
    failovers = []
    rounds = 6
    try:
        for r in range(rounds):
            time.sleep(1.0)
            partition = r % P
            victim = cluster.leader_of(topic, partition)
            killed_at = time.monotonic()
            cluster.node(victim).kill9()
            cluster.wait_partitions(topic, lambda s: s[partition][0] not in (-1, victim), timeout=SESSION_TIMEOUT_MS / 1000 + 10)
            time.sleep(1.0)
            failovers.append(producer.first_ack_after(partition, killed_at))
            cluster.node(victim).start()
            # Back in every ISR before the next round.
            cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)
    finally:
        producer.stop()
    figures = check_replicated(cluster.bootstrap, topic, producer.acked)
    replicas_identical(cluster, topic)
    figures.update(rounds=rounds, failover_s=[round(f, 2) if f is not None else None for f in failovers],
                   producer_errors=len(producer.errors))
    print(f"\nleader kill -9 x{rounds}: {figures}")
    assert not producer.errors, f"producer errors: {producer.errors[:3]}"
    assert figures["acknowledged"] > 2000
    # The first acknowledgement on the new leader within the session timeout + 1 s (+ the
    # producer's own metadata refresh and backoff, measured on this loaded machine).
    assert all(f is not None and f < SESSION_TIMEOUT_MS / 1000 + 4 for f in failovers), failovers


def test_leader_paused_past_session_timeout_is_fenced_and_rejoins(cluster):
    topic = "pause-leader"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=300, limit=20_000)
    try:
        time.sleep(1.0)
        victim = cluster.leader_of(topic, 0)
        cluster.pause(victim)
        state = cluster.wait_partitions(topic, lambda s: all(victim not in isr for _, _, isr in s.values()),
                                        timeout=SESSION_TIMEOUT_MS / 1000 + 10)
        assert state[0][0] != victim
        cluster.wait_brokers(2, via=[b for b in cluster.broker_ids if b != victim][0])  # fenced: not listed
        time.sleep(1.0)
        cluster.resume(victim)
        cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)
        time.sleep(0.5)
    finally:
        producer.stop()
    figures = check_replicated(cluster.bootstrap, topic, producer.acked)
    print(f"\nleader SIGSTOP past the session timeout: {figures}")
    assert not producer.errors


def test_controller_killed_produce_and_fetch_go_on(cluster):
    topic = "no-controller"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=300, limit=20_000)
    try:
        # The producer has its id (producer-id blocks come from the controller) and its leaders.
        producer.wait_acked(100)
        cluster.node(1).kill9()
        before = len(producer.acked)
        time.sleep(2.0)
        assert len(producer.acked) > before, "produce stopped without the controller"
        cluster.node(1).start()
        # Fencing works again: a broker paused now is fenced.
        victim = cluster.leader_of(topic, 1)
        cluster.pause(victim)
        cluster.wait_partitions(topic, lambda s: s[1][0] not in (-1, victim), timeout=SESSION_TIMEOUT_MS / 1000 + 15)
        cluster.resume(victim)
        cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)
    finally:
        producer.stop()
    figures = check_replicated(cluster.bootstrap, topic, producer.acked)
    print(f"\ncontroller kill -9: {figures}")
    assert not producer.errors


def test_restarted_broker_refuses_clients_until_the_controller_unfences_it(cluster):
    """Kafka's brokers open their listeners once the controller has unfenced them. A restarted
    broker's image is stale (it says it leads what it led before the kill) and may list no live
    broker at all: in one run of the kill-all test below, restarted brokers answered Metadata
    with an empty broker list, librdkafka dropped every broker it knew, and the producer never
    sent again. With the controller down, a restarted broker must refuse connections."""
    topic = "refused"
    cluster.create_topic(topic, P, 3)
    victim = cluster.broker_ids[0]
    node = cluster.node(victim)
    cluster.node(1).kill9()
    node.kill9()
    node.start(wait=False)
    refused = 0
    for _ in range(12):  # 3 s
        assert node.running(), node.log_tail()
        try:
            socket.create_connection((node.host, node.port), timeout=1.0).close()
        except ConnectionRefusedError:
            refused += 1
        time.sleep(0.25)
    assert refused == 12, f"the restarted broker accepted clients before it was unfenced ({12 - refused} of 12)"
    cluster.node(1).start()
    node.wait_ready()
    cluster.wait_brokers(3, via=victim)
    cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)


def test_two_brokers_lost_with_min_insync_two_writes_stop_rather_than_lose(cluster):
    topic = "two-down"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=300, limit=5_000)
    time.sleep(1.0)
    first = cluster.leader_of(topic, 0)
    cluster.node(first).kill9()
    cluster.wait_partitions(topic, lambda s: s[0][0] not in (-1, first), timeout=15)
    second = cluster.leader_of(topic, 0)
    cluster.node(second).kill9()
    cluster.wait_partitions(topic, lambda s: all(len(isr) == 1 for _, _, isr in s.values()), timeout=15)
    # One replica left in sync: acks=all is refused (NOT_ENOUGH_REPLICAS), nothing is acknowledged.
    acked_before = len(producer.acked)
    time.sleep(2.0)
    refused = Producer({"bootstrap.servers": cluster.live_bootstrap(), "acks": "all", "message.timeout.ms": 3000,
                        "log_level": 2})
    errors = []
    refused.produce(topic, value=b"x", partition=0, on_delivery=lambda err, m: errors.append(err))
    refused.flush(10)
    assert errors and errors[0] is not None and errors[0].code() in (
        KafkaError.NOT_ENOUGH_REPLICAS, KafkaError._MSG_TIMED_OUT), errors
    assert len(producer.acked) <= acked_before + 50  # only what was in flight when the ISR shrank
    producer._stop.set()
    # The brokers come back, catch up, and everything acknowledged is there.
    cluster.node(first).start()
    cluster.node(second).start()
    cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)
    producer.stop()
    figures = check_replicated(cluster.bootstrap, topic, producer.acked)
    print(f"\ntwo brokers lost, min.insync.replicas=2: {figures}")


def test_combined_layout_controller_node_also_a_broker():
    """Node 1 is broker and controller; a leader on another node is killed and restarted."""
    with SluiceCluster(brokers=3, combined=True,
                       config={"default.replication.factor": "3", "min.insync.replicas": "2"}) as c:
        topic = "combined"
        c.create_topic(topic, P, 3)
        state = c.partition_state(topic)
        assert sorted(leader for leader, _, _ in state.values()) == [1, 2, 3]
        producer = AckedProducer(c.bootstrap, topic)
        producer.start(rate=300, limit=10_000)
        try:
            producer.wait_acked(100)
            victim = next(leader for leader, _, _ in state.values() if leader != 1)
            c.node(victim).kill9()
            c.wait_partitions(topic, lambda s: all(leader not in (-1, victim) for leader, _, _ in s.values()),
                              timeout=SESSION_TIMEOUT_MS / 1000 + 10)
            c.node(victim).start()
            c.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)
        finally:
            producer.stop()
        figures = check_replicated(c.bootstrap, topic, producer.acked)
        print(f"\ncombined layout, a leader kill -9: {figures}")
        assert not producer.errors


def test_several_replica_fetchers_per_leader_replicate_everything():
    """num.replica.fetchers=3 (Kafka's key): each follower keeps three fetchers, three connections,
    per leader, the partitions spread over them; a leader kill -9'ed and restarted under load;
    every acknowledged message is read back and every broker's copy is byte-identical."""
    with SluiceCluster(brokers=3, config={"default.replication.factor": "3", "min.insync.replicas": "2",
                                          "num.replica.fetchers": "3"}) as c:
        topic = "fetchers"
        producer = AckedProducer.on_new_topic(c, topic, rate=300, limit=10_000)
        try:
            producer.wait_acked(300)
            victim = c.leader_of(topic, 0)
            c.node(victim).kill9()
            c.wait_partitions(topic, lambda s: s[0][0] not in (-1, victim), timeout=SESSION_TIMEOUT_MS / 1000 + 10)
            producer.wait_acked(len(producer.acked) + 300)
            c.node(victim).start()
            c.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)
            producer.wait_acked(len(producer.acked) + 300)
        finally:
            producer.stop()
        figures = check_replicated(c.bootstrap, topic, producer.acked)
        replicas_identical(c, topic)
        print(f"\nnum.replica.fetchers=3, a leader kill -9: {figures}")
        assert not producer.errors


def test_acks_1_reports_what_a_leader_kill_loses(cluster):
    topic = "acks1"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=400, limit=20_000, acks="1", idempotent=False)
    rounds = 3
    try:
        for r in range(rounds):
            time.sleep(1.0)
            victim = cluster.leader_of(topic, r % P)
            cluster.node(victim).kill9()
            cluster.wait_partitions(topic, lambda s: s[r % P][0] not in (-1, victim), timeout=15)
            cluster.node(victim).start()
            cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)
    finally:
        producer.stop()
    got = read_all(cluster.bootstrap, topic)
    stored = {(p, o): v for p in range(P) for o, v in got[p]}
    lost = [po for po, v in producer.acked.items() if stored.get(po) != v]
    # Asynchronous replication's price: reported, not failed.
    print(f"\nacks=1, leader kill -9 x{rounds}: acknowledged {len(producer.acked)}, lost {len(lost)}")


# A known liveness bug, open in issue 15: in full-suite runs (2 of 2 on a clean clone, never alone in
# 7 runs) the idempotent producer never resumed after the second kill-all: its messages timed out
# for 60 s while Metadata showed every partition led with a full ISR; nothing acknowledged was
# lost. Marked so that it keeps running and reporting (XPASS when it resumes) until it is fixed.
def test_every_node_killed_at_once_and_restarted_loses_nothing_acknowledged(cluster):
    """kill -9 of the controller and every broker together, twice, under acks=all load: each
    restarted broker recovers its logs, the controller its metadata log, and leaders are
    elected from the ISR the metadata log kept."""
    topic = "kill-all"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=300, limit=20_000)
    rounds = 2
    resumed_s = []  # after each restart: seconds until the producer had 200 more acknowledgements
    try:
        for r in range(rounds):
            if r == 0:
                producer.wait_acked(200)
            for node in cluster.nodes.values():
                node.kill9()
            restarted = time.monotonic()
            for node in cluster.nodes.values():
                node.start()
            cluster.wait_brokers(3)
            cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 and leader >= 0 for leader, _, isr in s.values()),
                                    timeout=40)
            # A stall here once came from restarted brokers answering Metadata from their stale
            # image (no live broker listed: librdkafka dropped every broker); they now refuse
            # clients until unfenced, as Kafka's do.
            target, deadline = len(producer.acked) + 200, time.monotonic() + 60
            while len(producer.acked) < target and time.monotonic() < deadline:
                time.sleep(0.05)
            resumed_s.append(round(time.monotonic() - restarted, 1) if len(producer.acked) >= target else None)
    finally:
        producer.stop()
    figures = check_replicated(cluster.bootstrap, topic, producer.acked)
    replicas_identical(cluster, topic)
    print(f"\nevery node kill -9 x{rounds}: {figures}, producing again after each restart (s): {resumed_s}, "
          f"producer errors {len(producer.errors)}")
    assert not producer.errors, f"producer errors: {producer.errors[:3]}"
    assert None not in resumed_s, f"the producer did not resume after a restart: {resumed_s}"


def test_follower_disk_wiped_resyncs_fully_before_it_can_lead(cluster):
    """A follower comes back with an empty data directory (a replaced disk): it registers as a
    new incarnation, copies every partition from the leaders, and only then rejoins the ISR; the
    leader is then killed, so the wiped broker may lead, and nothing acknowledged is lost."""
    topic = "wiped"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=300, limit=20_000)
    try:
        producer.wait_acked(500)
        victim = next(b for b in cluster.broker_ids if b != cluster.leader_of(topic, 0))
        cluster.node(victim).kill9()
        shutil.rmtree(cluster.node(victim).data_dir)
        cluster.wait_partitions(topic, lambda s: all(victim not in isr for _, _, isr in s.values()),
                                timeout=SESSION_TIMEOUT_MS / 1000 + 10)
        producer.wait_acked(len(producer.acked) + 300)
        cluster.node(victim).start()
        cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=40)
        # Partition 0's leader goes: the wiped broker is one of the two it may pass to.
        leader = cluster.leader_of(topic, 0)
        cluster.node(leader).kill9()
        cluster.wait_partitions(topic, lambda s: s[0][0] not in (-1, leader), timeout=SESSION_TIMEOUT_MS / 1000 + 10)
        cluster.node(leader).start()
        cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=40)
        producer.wait_acked(len(producer.acked) + 300)
    finally:
        producer.stop()
    figures = check_replicated(cluster.bootstrap, topic, producer.acked)
    replicas_identical(cluster, topic)  # the wiped broker's copy included
    print(f"\nfollower disk wiped: {figures}")
    assert not producer.errors, f"producer errors: {producer.errors[:3]}"


def test_leader_elected_and_lost_before_writing_rejoins_as_follower(cluster):
    """A broker elected leader takes its epoch at its log end at once, with no batch written in it;
    if it dies before writing, the next leader's log has no such epoch. Coming back, it must drop
    that epoch (the leader answers DivergingEpoch at its log end, where there is nothing to cut),
    or it fetches with it forever and never rejoins the ISR. Found by the network-cut test; here
    the first leader is killed and the second paused past its session, then resumed."""
    topic = "empty-epoch"
    cluster.create_topic(topic, P, 3)

    def produce(count: int, first_number: int) -> dict:
        producer = AckedProducer(cluster.bootstrap, topic, first_number=first_number)
        producer.start(rate=300, limit=count)
        deadline = time.monotonic() + 30
        while producer.sent < count and time.monotonic() < deadline:
            time.sleep(0.05)
        producer.stop()  # flushes
        assert len(producer.acked) == count, f"{len(producer.acked)} of {count} acknowledged"
        return producer.acked

    acked = produce(300, 0)
    first = cluster.leader_of(topic, 0)
    cluster.node(first).kill9()
    state = cluster.wait_partitions(topic, lambda s: s[0][0] not in (-1, first), timeout=SESSION_TIMEOUT_MS / 1000 + 10)
    second = state[0][0]  # leads from its log end, writes nothing
    # Paused, not killed: a restart would rebuild its epoch cache from the log and hide the bug.
    cluster.pause(second)
    cluster.wait_partitions(topic, lambda s: s[0][0] not in (-1, first, second), timeout=SESSION_TIMEOUT_MS / 1000 + 10)
    cluster.node(first).start()
    cluster.resume(second)
    cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=40)
    acked.update(produce(300, 300))
    replicas_identical(cluster, topic)
    print(f"\nleader lost before writing in its epoch: {check_replicated(cluster.bootstrap, topic, acked)}")


def test_consumers_never_read_past_the_high_watermark(cluster):
    """With a follower paused (still in the ISR until replica.lag.time.max.ms), the leader's log
    runs ahead of its high watermark: a consumer's Fetch must return no batch at or past it
    (those records are on one replica only and may yet be truncated away)."""
    import struct

    from harness.kwire import KafkaConn, i8, i32, i64, string

    topic = "hw"
    cluster.create_topic(topic, P, 3)
    leader = cluster.leader_of(topic, 0)
    follower = next(b for b in cluster.broker_ids if b != leader)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "1", "linger.ms": 0, "log_level": 2})
    for i in range(20):
        p.produce(topic, value=b"before-%d" % i, partition=0)
    assert p.flush(30) == 0
    time.sleep(0.5)  # replicated: the high watermark is at the log end
    ends = []
    cluster.pause(follower)
    try:
        for i in range(20):
            p.produce(topic, value=b"after-%d" % i, partition=0,
                      on_delivery=lambda err, msg: ends.append(msg.offset() + 1 if err is None else None))
            p.flush(5)  # one batch each
        node = cluster.node(leader)
        conn = KafkaConn(node.host, node.port)
        max_bytes = 1 << 20
        r = conn.request(1, 4, i32(-1) + i32(0) + i32(0) + i32(max_bytes) + i8(0) + i32(1) + string(topic) +
                         i32(1) + i32(0) + i64(0) + i32(max_bytes), False)
        r.i32(); r.i32(); r.string(); r.i32(); r.i32()
        assert r.i16() == 0
        high_watermark = r.i64()
        r.i64()
        for _ in range(max(r.i32(), 0)):
            r.i64(); r.i64()
        data = r.take(r.i32())
        conn.close()
    finally:
        cluster.resume(follower)
    log_end = max(e for e in ends if e is not None)
    assert high_watermark < log_end, "no window: the high watermark had reached the log end"
    last_offsets = []
    at = 0
    while at + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, at)
        last_offsets.append(base + struct.unpack_from(">i", data, at + 23)[0])
        at += 12 + length
    print(f"\nhigh watermark {high_watermark}, log end {log_end}, last offset read {max(last_offsets)}")
    assert last_offsets and max(last_offsets) < high_watermark, (high_watermark, last_offsets[-5:])
