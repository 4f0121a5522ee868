"""Operating a Sluice cluster with Kafka's own tools and settings (issue 17's "brokers joining,
draining and leaving"): leader elections with kafka-leader-election.sh (LeaderElectionCommand) and
automatic preferred-leader rebalancing (auto.leader.rebalance.enable), each while an acks=all
producer runs, with everything acknowledged read back. What Kafka answers to ElectLeaders is
compared in test_cluster_compare.py; these are Sluice-only."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from harness.cluster import SluiceCluster
from harness.replication_check import AckedProducer, check_replicated, replicas_identical
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
