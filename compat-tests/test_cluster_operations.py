"""Operating a Sluice cluster with Kafka's own tools and settings (issue 17's "brokers joining,
draining and leaving"): leader elections with kafka-leader-election.sh (LeaderElectionCommand) and
automatic preferred-leader rebalancing (auto.leader.rebalance.enable), kafka-metadata-quorum.sh,
a broker added and another drained with kafka-reassign-partitions.sh (throttled), unregistered with
kafka-cluster.sh and described with kafka-log-dirs.sh, consumers reading from the follower in their
rack (KIP-392); under an acks=all producer, with everything acknowledged read back. What Kafka answers to ElectLeaders is
compared in test_cluster_compare.py; these are Sluice-only."""
from __future__ import annotations

import json
import re
import subprocess
import urllib.request
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource

from harness.brokers import free_port
from harness import kadmin_wire
from harness.cluster import SluiceCluster
from harness.faults import partition_dir
from harness.replication_check import P, AckedProducer, check_replicated, read_all, replicas_identical
from test_java_clients import java_libs  # noqa: F401  (session fixture)

JAVA_DIR = Path(__file__).resolve().parent / "java"


@pytest.fixture(autouse=True)
def _sluice_only(request):
    if "sluice" not in request.config.getoption("--brokers"):
        pytest.skip("a Sluice cluster")


def kafka_tool(libs: Path, main_class: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """One of Kafka's command-line tools (its main class, as the .sh script runs it)."""
    return subprocess.run(["java", "-Xmx256m", f"-Dlog4j.configuration=file:{JAVA_DIR / 'log4j.properties'}",
                           "-cp", f"{libs}/*", main_class, *args], capture_output=True, text=True, timeout=timeout)


def wait_for(cluster, topic: str, condition, what: str, timeout: float = 40.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = cluster.partition_state(topic)
        if condition(state):
            return state
        assert time.monotonic() < deadline, f"{what}: {state}"
        time.sleep(0.2)


def lose_and_regain_preferred_leader(cluster, topic: str) -> int:
    """Kills the preferred leader of partition 0, restarts it and waits until it is back in every
    ISR, led by others. Returns its id."""
    victim = cluster.partition_state(topic)[0][1][0]
    cluster.node(victim).kill9()
    wait_for(cluster, topic, lambda s: s[0][0] not in (-1, victim), "a new leader for partition 0")
    cluster.node(victim).start()
    wait_for(cluster, topic, lambda s: all(victim in isr for _, _, isr in s.values()), f"{victim} back in sync")
    return victim


def test_leader_election_tool(java_libs):  # noqa: F811
    with SluiceCluster(brokers=3, config={"auto.leader.rebalance.enable": "false"}) as c:
        topic = "elect-tool"
        producer = AckedProducer.on_new_topic(c, topic, rate=300, limit=20_000)
        producer.wait_acked(300)
        victim = lose_and_regain_preferred_leader(c, topic)
        time.sleep(1.5)
        assert c.partition_state(topic)[0][0] != victim, "nothing may move leadership back by itself here"

        run = kafka_tool(java_libs, "org.apache.kafka.tools.LeaderElectionCommand", "--bootstrap-server",
                         c.bootstrap, "--election-type", "PREFERRED", "--all-topic-partitions")
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"Successfully completed leader election (PREFERRED) for partitions {topic}-0" in run.stdout, run.stdout
        wait_for(c, topic, lambda s: s[0][0] == victim, "the preferred leader back", timeout=10)

        # Nothing left to elect: the tool says so for a named partition.
        run = kafka_tool(java_libs, "org.apache.kafka.tools.LeaderElectionCommand", "--bootstrap-server",
                         c.bootstrap, "--election-type", "PREFERRED", "--topic", topic, "--partition", "0")
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"Valid replica already elected for partitions {topic}-0" in run.stdout, run.stdout

        producer.wait_acked(len(producer.acked) + 300)
        producer.stop()
        assert not producer.errors, producer.errors[:5]
        figures = check_replicated(c.bootstrap, topic, producer.acked)
        replicas_identical(c, topic)
        print(f"leader election tool: {figures}")

        # kafka-metadata-quorum.sh: the controller leads, every broker observes the metadata log.
        status = kafka_tool(java_libs, "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server",
                            c.bootstrap, "describe", "--status")
        assert status.returncode == 0, status.stdout + status.stderr
        fields = dict(line.split(":", 1) for line in status.stdout.splitlines() if ":" in line)
        assert fields["LeaderId"].strip() == "1" and int(fields["LeaderEpoch"]) >= 1, status.stdout
        assert int(fields["HighWatermark"]) > 0, status.stdout
        assert f'CONTROLLER://127.0.0.1:{c.controller_port}' in fields["CurrentVoters"], status.stdout
        assert all(f'"id": {b}' in fields["CurrentObservers"] for b in c.broker_ids), status.stdout
        replication = kafka_tool(java_libs, "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server",
                                 c.bootstrap, "describe", "--replication")
        assert replication.returncode == 0, replication.stdout + replication.stderr
        rows = {line.split()[0]: line.split()[-1] for line in replication.stdout.splitlines()[1:] if line.strip()}
        assert rows == {"1": "Leader", **{str(b): "Observer" for b in c.broker_ids}}, replication.stdout


def test_automatic_preferred_leader_rebalance():
    with SluiceCluster(brokers=3, config={"leader.imbalance.check.interval.seconds": "1"}) as c:
        topic = "auto-rebalance"
        producer = AckedProducer.on_new_topic(c, topic, rate=300, limit=20_000)
        producer.wait_acked(300)
        victim = lose_and_regain_preferred_leader(c, topic)
        # Back in sync, it leads its partition again within a check interval or two.
        back = time.monotonic()
        wait_for(c, topic, lambda s: all(leader == replicas[0] for leader, replicas, _ in s.values()),
                 "every partition led by its preferred replica", timeout=15)
        print(f"auto rebalance: broker {victim} led its partition again {time.monotonic() - back:.1f} s after rejoining")
        producer.wait_acked(len(producer.acked) + 300)
        producer.stop()
        assert not producer.errors, producer.errors[:5]
        figures = check_replicated(c.bootstrap, topic, producer.acked)
        replicas_identical(c, topic)
        print(f"auto rebalance: {figures}")


class GroupReader:
    """A consumer-group member on a thread, from the earliest offset, keeping every offset it is
    given per partition (committing automatically), so that a gap shows."""

    def __init__(self, bootstrap: str, topic: str, group: str):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                                  "enable.auto.commit": True, "auto.commit.interval.ms": 200,
                                  "topic.metadata.refresh.interval.ms": 500, "log_level": 2})
        self.consumer.subscribe([topic])
        self.seen: dict[int, set[int]] = {p: set() for p in range(P)}
        self.values: dict[tuple[int, int], bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for m in self.consumer.consume(500, timeout=0.2):
                if m.error() is None:
                    self.seen[m.partition()].add(m.offset())
                    self.values[(m.partition(), m.offset())] = m.value()

    def wait_until(self, ends: dict[int, int], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while any(len(self.seen[p]) < ends[p] for p in ends):
            assert time.monotonic() < deadline, {p: (len(self.seen[p]), ends[p]) for p in ends}
            time.sleep(0.2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


def throttle_configs(cluster, topic: str) -> dict:
    """The throttle settings left on the brokers and the topic (kafka-reassign-partitions.sh)."""
    a = cluster.admin()
    resources = [ConfigResource(ConfigResource.Type.BROKER, str(b)) for b in cluster.broker_ids]
    resources.append(ConfigResource(ConfigResource.Type.TOPIC, topic))
    left = {}
    for resource in resources:  # one broker per call (librdkafka's rule)
        for res, future in a.describe_configs([resource]).items():
            for name, entry in future.result(30).items():
                if "throttled" in name and entry.value and not entry.is_default:
                    left[(res.name, name)] = entry.value
    return left


def reassign_tool(libs: Path, bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    return kafka_tool(libs, "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                      "--bootstrap-server", bootstrap, *args)


def reassign_and_verify(libs: Path, cluster, plan: dict, workdir: Path, *extra: str, timeout: float = 90.0) -> float:
    """kafka-reassign-partitions.sh --execute with `plan`, then --verify until every partition's
    reassignment is completed. Returns the seconds it took."""
    plan_file = workdir / f"plan-{time.monotonic_ns()}.json"
    plan_file.write_text(json.dumps(plan))
    started = time.monotonic()
    run = reassign_tool(libs, cluster.bootstrap, "--execute", "--reassignment-json-file", str(plan_file), *extra)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Successfully started partition reassignment" in run.stdout, run.stdout
    deadline = started + timeout
    while True:
        run = reassign_tool(libs, cluster.bootstrap, "--verify", "--reassignment-json-file", str(plan_file))
        assert run.returncode == 0, run.stdout + run.stderr
        done = [line for line in run.stdout.splitlines() if line.endswith("is completed.")]
        if len(done) == len(plan["partitions"]):
            return time.monotonic() - started
        assert time.monotonic() < deadline, run.stdout
        time.sleep(1)


def test_reassign_to_a_new_broker_and_drain_one(java_libs, tmp_path):  # noqa: F811
    """A 4th broker joins under load and takes new partitions at once; kafka-reassign-partitions.sh
    moves a partition onto it, then drains broker 2 (every replica it holds, __consumer_offsets
    included), while an acks=all producer and a consumer group run: nothing acknowledged is lost, the
    group sees no gap, and the moved replicas are byte-identical on their new brokers."""
    with SluiceCluster(brokers=3, config={"auto.leader.rebalance.enable": "false"}) as c:
        topic = "moving"
        c.create_topic(topic, P, 3)
        # 4 MB in partition 0 first (numbered below the producer's messages, padded to 1 KB), for the throttle.
        bulk = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 20, "log_level": 2})
        for i in range(4000):
            bulk.produce(topic, value=b"m%07d" % i + b" " * 992, partition=0)
            bulk.poll(0)
        assert bulk.flush(60) == 0
        producer = AckedProducer(c.bootstrap, topic, first_number=100_000)
        producer.start(rate=300, limit=40_000)
        reader = GroupReader(c.bootstrap, topic, "moving-readers")
        producer.wait_acked(500)

        new = c.add_broker()
        c.create_topic("after-join", 4, 1)
        assert new in {leader for leader, _, _ in c.partition_state("after-join").values()}

        # Partition 0 onto the new broker, in place of its leader, throttled: 4 MB to copy at 1 MB/s.
        state = c.partition_state(topic)
        leader, replicas, _ = state[0]
        target = [new] + [r for r in replicas if r != leader]
        took = reassign_and_verify(java_libs, c, {"version": 1, "partitions": [
            {"topic": topic, "partition": 0, "replicas": target}]}, tmp_path, "--throttle", "1000000")
        state = c.wait_partitions(topic, lambda s: s[0][1] == target and sorted(s[0][2]) == sorted(target))
        print(f"throttled reassignment of {topic}-0 (4 MB) onto broker {new} at 1 MB/s: {took:.1f} s; now {state[0]}")
        # The throttle held it back (the first fetch goes at once, the rest waits for the quota).
        assert took >= 2.0, took
        # --verify removed the throttles once the move was done.
        assert not throttle_configs(c, topic), throttle_configs(c, topic)
        deadline = time.monotonic() + 20
        while partition_dir(c.node(leader).data_dir, topic, 0).exists():
            assert time.monotonic() < deadline, f"broker {leader} still holds {topic}-0"
            time.sleep(0.2)

        # Drain broker 2: every partition it holds, moved by the tool's own plan.
        drained = c.broker_ids[0]
        keep = [b for b in c.broker_ids if b != drained]
        topics_file = tmp_path / "topics.json"
        topics_file.write_text(json.dumps({"version": 1, "topics": [{"topic": t} for t in (topic, "after-join", "__consumer_offsets")]}))
        run = reassign_tool(java_libs, c.bootstrap, "--generate", "--topics-to-move-json-file", str(topics_file),
                            "--broker-list", ",".join(map(str, keep)))
        assert run.returncode == 0, run.stdout + run.stderr
        proposed = json.loads(run.stdout.split("Proposed partition reassignment configuration")[1].strip().splitlines()[0])
        assert all(drained not in p["replicas"] for p in proposed["partitions"]), proposed
        refused = kafka_tool(java_libs, "org.apache.kafka.tools.ClusterTool", "unregister",
                             "--bootstrap-server", c.bootstrap, "--id", str(drained))
        # (Kafka's Admin client reports the error code only, not the broker's message.)
        assert refused.returncode != 0, refused
        assert f"Unregister broker request for broker ID {drained} failed" in refused.stdout + refused.stderr, refused
        took = reassign_and_verify(java_libs, c, proposed, tmp_path)
        print(f"drain of broker {drained}: {len(proposed['partitions'])} partitions in {took:.1f} s")
        for t in (topic, "after-join", "__consumer_offsets"):
            c.wait_partitions(t, lambda s: all(drained not in replicas and drained not in isr
                                               for _, replicas, isr in s.values()))
        # Drained: stopped, and removed for good with kafka-cluster.sh.
        c.node(drained).stop()
        run = kafka_tool(java_libs, "org.apache.kafka.tools.ClusterTool", "unregister",
                         "--bootstrap-server", c.bootstrap, "--id", str(drained))
        assert run.returncode == 0, run.stdout + run.stderr
        c.broker_ids.remove(drained)
        c.wait_brokers(len(c.broker_ids))

        producer.wait_acked(len(producer.acked) + 500)
        producer.stop()
        assert not producer.errors, producer.errors[:5]
        figures = check_replicated(c.bootstrap, topic, producer.acked)
        ends = {p: len(records) for p, records in read_all(c.bootstrap, topic).items()}
        reader.wait_until(ends)
        reader.close()
        for p in range(P):
            assert reader.seen[p] == set(range(ends[p])), f"partition {p}: the group saw a gap"
        hosts = {p: replicas for p, (_, replicas, _) in c.partition_state(topic).items()}
        replicas_identical(c, topic, hosts=hosts)
        # kafka-log-dirs.sh: every replica of each partition, the same size everywhere, and nothing
        # left on the drained broker's successors that they do not hold.
        run = kafka_tool(java_libs, "org.apache.kafka.tools.LogDirsCommand", "--describe", "--bootstrap-server",
                         c.bootstrap, "--broker-list", ",".join(map(str, c.broker_ids)))
        assert run.returncode == 0, run.stdout + run.stderr
        described = json.loads(run.stdout.strip().splitlines()[-1])
        sizes: dict[str, dict[int, int]] = {}
        for b in described["brokers"]:
            for d in b["logDirs"]:
                assert d["error"] is None, d
                for part in d["partitions"]:
                    if part["partition"].startswith(topic + "-"):
                        sizes.setdefault(part["partition"], {})[b["broker"]] = part["size"]
        for p in range(P):
            assert sorted(sizes[f"{topic}-{p}"]) == sorted(hosts[p]), (p, sizes)
            assert len(set(sizes[f"{topic}-{p}"].values())) == 1, (p, sizes)
        assert min(sizes[f"{topic}-0"].values()) > 4_000_000, sizes
        print(f"reassign and drain: {figures}, group read {sum(ends.values())} records with no gap")


def topic_bytes_out(admin_port: int, topic: str) -> float:
    """sluice_topic_bytes_out_total{topic} on one broker's /metrics: what consumers read there."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10).read().decode()
    match = re.search(r'^sluice_topic_bytes_out_total\{topic="%s"\} (\S+)$' % re.escape(topic), body, re.M)
    return float(match.group(1)) if match else 0.0


def test_consumers_read_from_the_follower_in_their_rack():
    """KIP-392: with replica.selector.class set to Kafka's rack-aware selector, a consumer with
    client.rack reads from the in-sync follower in its rack (the leader sends it there and serves
    it no records), and goes back to the leader when that follower dies."""
    c = SluiceCluster(brokers=3, config={"replica.selector.class":
                                         "org.apache.kafka.common.replica.RackAwareReplicaSelector"})
    admin_ports = {}
    for b in c.broker_ids:
        admin_ports[b] = free_port()
        c.node(b).extra_config["broker.rack"] = f"rack-{b}"
        c.node(b).extra_config["admin.listeners"] = f"http://127.0.0.1:{admin_ports[b]}"
    with c:
        topic = "near"
        c.create_topic(topic, 1, 3)
        leader, replicas, _ = c.partition_state(topic)[0]
        near = next(r for r in replicas if r != leader)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "log_level": 2})
        for i in range(1000):
            p.produce(topic, value=b"v%06d" % i, partition=0)
        assert p.flush(60) == 0

        consumer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "near-readers", "client.rack": f"rack-{near}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False,
                             "topic.metadata.refresh.interval.ms": 1000, "log_level": 2})
        try:
            consumer.subscribe([topic])
            got: list[bytes] = []

            def read_until(count: int, timeout: float) -> None:
                deadline = time.monotonic() + timeout
                while len(got) < count:
                    assert time.monotonic() < deadline, f"read {len(got)} of {count}"
                    for m in consumer.consume(500, timeout=0.5):
                        if m.error() is None:
                            got.append(m.value())

            read_until(1000, 60)
            assert got == [b"v%06d" % i for i in range(1000)]
            # Read from the follower in the consumer's rack, not from the leader (the metrics move
            # every admin refresh; the counters themselves at once).
            assert topic_bytes_out(admin_ports[near], topic) > 0
            assert topic_bytes_out(admin_ports[leader], topic) == 0
            print(f"follower fetching: broker {near} served "
                  f"{topic_bytes_out(admin_ports[near], topic):.0f} bytes, the leader {leader} none")

            # That follower dies: the consumer goes on from the leader.
            c.node(near).kill9()
            for i in range(1000, 1500):
                p.produce(topic, value=b"v%06d" % i, partition=0)
            assert p.flush(60) == 0
            read_until(1500, 90)
            assert got == [b"v%06d" % i for i in range(1500)]
            assert topic_bytes_out(admin_ports[leader], topic) > 0
        finally:
            consumer.close()


def test_reassignments_that_move_the_leader_lose_nothing():
    """Each round moves a partition's replica off its leader onto the broker that holds none of it,
    the new replica first, so that completing the move elects it (on node 1, the controller's own
    broker, it learns of it first) while an acks=all producer writes at full speed: the old leader
    must not acknowledge what the new one lacks (the joining replica counts in its high watermark
    until the change is settled). Everything acknowledged is read back."""
    rounds = 4
    with SluiceCluster(brokers=3, combined=True, config={"auto.leader.rebalance.enable": "false"}) as c:
        c.add_broker()
        topic = "leader-moves"
        producer = AckedProducer.on_new_topic(c, topic, rate=2000, limit=200_000)
        producer.wait_acked(1000)
        moves = []
        for _ in range(rounds):
            leader, replicas, _ = c.partition_state(topic)[0]
            spare = next(b for b in c.broker_ids if b not in replicas)
            target = [spare] + [r for r in replicas if r != leader]
            with kadmin_wire.Conn(c.bootstrap.split(",")[0]) as conn:
                _, results = kadmin_wire.alter_partition_reassignments(conn, {(topic, 0): target})
            assert results[(topic, 0)] == (0, None), results
            c.wait_partitions(topic, lambda s: s[0][1] == target and s[0][0] == spare, timeout=60)
            moves.append((leader, spare))
            producer.wait_acked(len(producer.acked) + 500, timeout=60)
        producer.stop()
        assert not producer.errors, producer.errors[:5]
        figures = check_replicated(c.bootstrap, topic, producer.acked)
        print(f"leader-moving reassignments {moves}: {figures}")


def test_followers_take_a_new_log_start_at_once():
    """DeleteRecords on the leader while nothing new is written: the followers, parked in their
    fetch (replica.fetch.wait.max.ms is 10 s here), are answered at once with the new log start and
    drop the records too, rather than at the end of their wait or with the next record."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient
    from harness.prom import admin_json
    c = SluiceCluster(brokers=3, config={"replica.fetch.wait.max.ms": "10000"})
    admin_ports = {}
    for b in c.broker_ids:
        admin_ports[b] = free_port()
        c.node(b).extra_config["admin.listeners"] = f"http://127.0.0.1:{admin_ports[b]}"

    def local(b: int) -> dict:
        views = [e for e in admin_json(admin_ports[b], "/v1/partitions")["partitions"]
                 if e["topic"] == "trimmed" and e["local"]]
        return views[0]["local"] if views else {}

    with c:
        c.create_topic("trimmed", 1, 3)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "log_level": 2})
        for i in range(100):
            p.produce("trimmed", value=b"v%03d" % i, partition=0)
        assert p.flush(30) == 0
        deadline = time.monotonic() + 20
        while not all(local(b).get("log_end_offset") == 100 for b in c.broker_ids):
            assert time.monotonic() < deadline, {b: local(b) for b in c.broker_ids}
            time.sleep(0.1)
        time.sleep(0.5)  # every follower parked again in its next fetch
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        done = admin.delete_records([TopicPartition("trimmed", 0, 60)], request_timeout=20)
        assert [f.result(20).low_watermark for f in done.values()] == [60]
        began = time.monotonic()
        while not all(local(b).get("log_start_offset") == 60 for b in c.broker_ids):
            assert time.monotonic() - began < 5, {b: local(b) for b in c.broker_ids}
            time.sleep(0.05)
        print(f"\nevery replica at log start 60 {time.monotonic() - began:.2f} s after DeleteRecords")
