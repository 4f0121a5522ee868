"""Network cuts on a real cluster: every Sluice node in a network namespace of its own, joined by a
bridge (harness/netlab.py; needs root), so that a node can be taken off the network while its
process runs on, unlike kill -9 (gone) or SIGSTOP (frozen). RF=3, min.insync.replicas=2,
idempotent acks=all producers and the checker of test_cluster_faults.py: nothing acknowledged
lost or changed, no duplicates, production order. Bounded rounds; figures printed with -s.

What a cut broker must get right that a killed one need not: it keeps running with a stale view
(it may still believe it leads), so on healing it must learn it was fenced, register again, take
the new leaders' logs (truncating anything only it had) and come back into the ISR by fetching.
"""
from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import time

import pytest

from harness import kwire, netlab
from harness.brokers import free_port
from harness.cluster import SESSION_TIMEOUT_MS, SluiceCluster, sluice_only_fixture  # noqa: F401 (fixture)
from harness.replication_check import P, AckedProducer, check_replicated, read_all, replicas_identical


@pytest.fixture
def cluster():
    if not netlab.available():
        pytest.skip("network namespaces need root and iproute2")
    lab = netlab.NetLab()
    c = SluiceCluster(brokers=3, config={"default.replication.factor": "3", "min.insync.replicas": "2"},
                      netlab=lab)
    try:
        c.start()
        yield c
    finally:
        c.cleanup()
        lab.close()


def wait_all_in_sync(cluster: SluiceCluster, topic: str, timeout: float = 40.0) -> None:
    """Until every broker says the same: each partition led, with all three in its ISR. (Asking one
    broker is not enough: one just healed answers from its view of before the cut.)"""
    deadline = time.monotonic() + timeout
    while True:
        try:
            views = [kwire.metadata_leader_epochs(cluster.nodes[b].host, cluster.nodes[b].port, topic)
                     for b in cluster.broker_ids]
            if all(view == views[0] for view in views) and \
                    all(leader >= 0 and len(isr) == 3 for leader, _, isr in views[0].values()):
                return
        except OSError as e:  # a broker not answering yet
            views = e
        assert time.monotonic() < deadline, f"{topic}: not all in sync after {timeout}s: {views}"
        time.sleep(0.1)


def test_broker_cut_off_and_healed_repeatedly_loses_nothing_acknowledged(cluster):
    topic = "cut"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=300, limit=30_000)
    rounds, figures = 3, []
    try:
        for r in range(rounds):
            producer.wait_acked(len(producer.acked) + 200)
            victim = cluster.leader_of(topic, r % P)  # it leads one partition and follows the others
            cut_at = time.monotonic()
            cluster.cut(victim)
            # The others go on without it: it leaves every ISR and its partition gets a new leader.
            cluster.wait_partitions(topic, lambda s: all(victim not in isr and leader not in (-1, victim)
                                                         for leader, _, isr in s.values()),
                                    timeout=SESSION_TIMEOUT_MS / 1000 + 15)
            moved_s = time.monotonic() - cut_at
            acked_before = len(producer.acked)
            time.sleep(1.5)
            acked_while_cut = len(producer.acked) - acked_before
            healed_at = time.monotonic()
            cluster.heal(victim)
            wait_all_in_sync(cluster, topic)
            figures.append({"victim": victim, "isr_and_leader_moved_s": round(moved_s, 2),
                            "acked_in_1.5s_while_cut": acked_while_cut,
                            "back_in_sync_s": round(time.monotonic() - healed_at, 2)})
            assert acked_while_cut > 0, "acks=all stopped although two replicas of three were in sync"
    finally:
        producer.stop()
    result = check_replicated(cluster.bootstrap, topic, producer.acked)
    print(f"\nbroker cut off x{rounds}: {result}, {figures}, producer errors {len(producer.errors)}")
    assert not producer.errors, f"producer errors: {producer.errors[:3]}"
    replicas_identical(cluster, topic)  # the healed brokers hold what the others hold


def test_controller_cut_off_clients_go_on_and_fencing_resumes(cluster):
    """Without the controller the brokers go on with what they know: produce and fetch go on.
    The controller, hearing no heartbeat, fences every broker (as Kafka's lone controller would);
    when it is back the brokers are unfenced, leaders elected and the ISRs grow back, with
    nothing acknowledged lost; then a broker cut off is fenced as usual."""
    topic = "no-controller"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=300, limit=20_000)
    try:
        # Acknowledgements first: a new idempotent producer needs the controller (producer ids).
        producer.wait_acked(200)
        node = cluster.nodes[cluster.broker_ids[0]]
        epochs_before = {p: e for p, (_, e, _) in kwire.metadata_leader_epochs(node.host, node.port, topic).items()}
        cluster.cut(1)
        acked_before = len(producer.acked)
        time.sleep(SESSION_TIMEOUT_MS / 1000 + 1.5)  # past a session: brokers cannot heartbeat
        assert len(producer.acked) > acked_before, "produce stopped while the controller was away"
        assert all(len(isr) == 3 for _, _, isr in cluster.partition_state(topic).values())
        healed_at = time.monotonic()
        cluster.heal(1)
        # The fencing reaches every broker (new leader epochs everywhere), then all is in sync again.
        deadline = time.monotonic() + 30
        while True:
            views = [kwire.metadata_leader_epochs(cluster.nodes[b].host, cluster.nodes[b].port, topic)
                     for b in cluster.broker_ids]
            if all(len(isr) == 3 and leader >= 0 and epoch > epochs_before[p]
                   for view in views for p, (leader, epoch, isr) in view.items()):
                break
            assert time.monotonic() < deadline, f"not recovered after the controller returned: {views}"
            time.sleep(0.1)
        recovered_s = time.monotonic() - healed_at
        victim = cluster.leader_of(topic, 0)
        cluster.cut(victim)
        cluster.wait_partitions(topic, lambda s: s[0][0] not in (-1, victim), timeout=SESSION_TIMEOUT_MS / 1000 + 15)
        cluster.heal(victim)
        wait_all_in_sync(cluster, topic)
    finally:
        producer.stop()
    result = check_replicated(cluster.bootstrap, topic, producer.acked)
    replicas_identical(cluster, topic)
    print(f"\ncontroller cut off: {result}; all in sync again {recovered_s:.2f} s after it returned")
    assert not producer.errors, f"producer errors: {producer.errors[:3]}"


# A producer that runs inside a cut-off node's namespace (so only that node is reachable to it),
# writing for `seconds` with the given acks, and printing what was acknowledged as JSON.
ISOLATED_PRODUCER = r"""
import json, sys, time
from confluent_kafka import Producer
bootstrap, topic, partition, acks, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
acked, errors = [], []
def done(err, msg):
    (errors if err else acked).append(str(err) if err else [msg.offset(), msg.value().decode()])
p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "message.timeout.ms": int(seconds * 1000),
              "request.timeout.ms": 2000, "log_level": 0})
end, i = time.monotonic() + seconds, 0
while time.monotonic() < end:
    p.produce(topic, value=f"isolated-{acks}-{i}".encode(), partition=partition, on_delivery=done)
    p.poll(0.02)
    i += 1
p.flush(seconds + 5)
print(json.dumps({"sent": i, "acked": acked, "errors": len(errors)}))
"""


def test_leader_cut_off_with_its_clients_acks_all_never_acknowledged_there(cluster):
    """The split brain: the leader is cut off from the controller and the other brokers but a
    producer in its own namespace still reaches it. It cannot shrink its ISR (AlterPartition goes
    to the controller), so its high watermark stands still: acks=all writes there are never
    acknowledged, while the majority side elects a new leader and goes on. acks=1 writes the old
    leader acknowledged are lost when it returns and truncates to the new leader's log (Kafka's
    documented acks=1 window: counted, not failed). Afterwards every broker holds the same log."""
    topic = "split"
    producer = AckedProducer.on_new_topic(cluster, topic, rate=300, limit=20_000)
    try:
        producer.wait_acked(200)
        victim = cluster.leader_of(topic, 0)
        cluster.cut(victim)
        runs = {}
        for acks in ("all", "1"):
            out = subprocess.run(cluster.netlab.exec_prefix(victim + 1) +
                                 [sys.executable, "-c", ISOLATED_PRODUCER, cluster.nodes[victim].bootstrap, topic,
                                  "0", acks, "3"],
                                 capture_output=True, text=True, timeout=60)
            runs[acks] = json.loads(out.stdout.strip().splitlines()[-1])
        cluster.wait_partitions(topic, lambda s: s[0][0] not in (-1, victim), timeout=SESSION_TIMEOUT_MS / 1000 + 15)
        cluster.heal(victim)
        wait_all_in_sync(cluster, topic)
    finally:
        producer.stop()
    result = check_replicated(cluster.bootstrap, topic, producer.acked)
    kept = {v for _, v in read_all(cluster.bootstrap, topic)[0]}
    isolated_acked = {value.encode() for _, value in runs["1"]["acked"]}
    print(f"\nsplit brain: majority side {result}; isolated acks=all: sent {runs['all']['sent']}, "
          f"acknowledged {len(runs['all']['acked'])}; isolated acks=1: sent {runs['1']['sent']}, "
          f"acknowledged {len(isolated_acked)}, of which kept {len(isolated_acked & kept)}")
    assert not runs["all"]["acked"], f"the cut-off leader acknowledged acks=all writes: {runs['all']['acked'][:3]}"
    assert runs["all"]["sent"] > 0 and runs["1"]["sent"] > 0
    # Every broker, the healed one included (its acks=1 tail truncated), holds the same log.
    replicas_identical(cluster, topic)


def test_restarted_broker_is_not_taken_back_into_the_isr_on_its_old_incarnations_progress():
    """KIP-903's case. A follower in sync is killed, loses its disk and comes back as a new
    incarnation (new broker epoch) within replica.lag.time.max.ms, so the leader's memory of the
    old incarnation's fetches still says "caught up". It is cut off from the leader (not from the
    controller, so it registers and is unfenced): the leader must not take it back into the ISR on
    that old progress, or an empty replica would count as in sync and could be elected. Once it can
    fetch again it copies everything and rejoins; nothing acknowledged is lost."""
    if not netlab.available():
        pytest.skip("network namespaces need root and iproute2")
    lab = netlab.NetLab()
    # A long lag time keeps the old incarnation's last fetch recent enough to count.
    cluster = SluiceCluster(brokers=3, config={"default.replication.factor": "3", "min.insync.replicas": "2",
                                               "replica.lag.time.max.ms": "30000"}, netlab=lab)
    try:
        cluster.start()
        topic = "incarnations"
        cluster.create_topic(topic, P, 3)
        producer = AckedProducer(cluster.bootstrap, topic)
        producer.start(rate=300, limit=300)
        deadline = time.monotonic() + 30
        while producer.sent < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        producer.stop()  # flushes: the followers have everything, and the producer is idle
        assert len(producer.acked) == 300, f"{len(producer.acked)} of 300 acknowledged"
        leader = cluster.leader_of(topic, 0)  # partition 0 is watched; the victim follows it
        victim = next(b for b in cluster.broker_ids if b != leader)
        cluster.node(victim).kill9()
        shutil.rmtree(cluster.node(victim).data_dir)
        cluster.wait_partitions(topic, lambda s: victim not in s[0][2], timeout=SESSION_TIMEOUT_MS / 1000 + 10)
        cluster.block(victim, leader)
        cluster.node(victim).start()  # ready once the controller has unfenced it
        cluster.wait_brokers(3)
        isr_seen = []
        for _ in range(30):  # 3 s: thirty of the leader's ISR checks
            isr_seen.append(cluster.partition_state(topic)[0][2])
            time.sleep(0.1)
        assert all(victim not in isr for isr in isr_seen), \
            f"broker {victim} was taken back into the ISR with an empty log: {isr_seen}"
        cluster.unblock(victim, leader)
        cluster.wait_partitions(topic, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), timeout=30)
        replicas_identical(cluster, topic)
        result = check_replicated(cluster.bootstrap, topic, producer.acked)
        print(f"\nnew incarnation kept out of the ISR until it fetched: {result}")
    finally:
        cluster.cleanup()
        lab.close()


def test_broker_the_controller_cannot_hear_is_not_ready_until_it_is_heard_again():
    """The admin server's readiness (/v1/health/ready) for a load balancer: a broker cut off from
    the controller alone (it still serves clients and its peers) is fenced there after
    broker.session.timeout.ms, which it cannot learn, since its heartbeats go unanswered. Once no
    heartbeat has been answered for that long it reports itself not ready (503 and the reason);
    the others stay ready; when it reaches the controller again it is ready again."""
    if not netlab.available():
        pytest.skip("network namespaces need root and iproute2")
    lab = netlab.NetLab()
    cluster = SluiceCluster(brokers=3, config={"admin.refresh.interval.ms": "200"}, netlab=lab)
    ports = {}
    for node_id, node in cluster.nodes.items():
        ports[node_id] = free_port()
        node.extra_config["admin.listeners"] = f"http://{node.host}:{ports[node_id]}"

    def readiness(node_id: int) -> tuple[int, str]:
        conn = http.client.HTTPConnection(cluster.node(node_id).host, ports[node_id], timeout=5)
        try:
            conn.request("GET", "/v1/health/ready")
            res = conn.getresponse()
            return res.status, res.read().decode()
        finally:
            conn.close()

    def wait_readiness(node_id: int, status: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            got, body = readiness(node_id)
            if got == status:
                return body
            assert time.monotonic() < deadline, f"node {node_id}: readiness {got} {body}, expected {status}"
            time.sleep(0.2)

    try:
        cluster.start()
        for b in cluster.broker_ids:
            wait_readiness(b, 200, 15)
        victim = cluster.broker_ids[-1]
        cluster.block(victim, 1)  # node 1 is the controller
        body = wait_readiness(victim, 503, SESSION_TIMEOUT_MS / 1000 + 10)
        assert "controller" in json.loads(body)["reason"], body
        for b in cluster.broker_ids[:-1]:
            assert readiness(b)[0] == 200, f"node {b} should stay ready"
        cluster.unblock(victim, 1)
        wait_readiness(victim, 200, 30)
    finally:
        cluster.cleanup()
        lab.close()
