"""Every client family of the suite against a Sluice cluster: a controller and three brokers
(harness/cluster.py), topics with 3 replicas unless a scenario asks otherwise (they create theirs
with one replica, which acks=all takes with the default min.insync.replicas=1). The scenarios are the
single-broker suite's own (Java's clients, its consumer groups and its command-line tools,
kafkajs, kafka-python, confluent-kafka and kcat, both on librdkafka), run here on a broker-shaped
view of the cluster whose bootstrap lists every broker, so the clients find each partition's
leader and each group's coordinator by themselves."""
from __future__ import annotations

import pytest

from harness import ck, groups, kp
from harness.cluster import SluiceCluster
# The scenarios under other names, so that pytest does not collect them here a second time.
from test_groups_java import test_java_groups as java_groups_scenario
from test_groups_kcat import test_kcat_group_consumes_once_and_resumes as kcat_group_scenario
from test_java_clients import java_libs  # noqa: F401  (session fixture)
from test_java_clients import test_java_client as java_client_scenario
from test_node_clients import node_ready  # noqa: F401  (session fixture)
from test_node_clients import test_node_client as node_client_scenario

N = 20_000


@pytest.fixture(autouse=True)
def _sluice_only(request):
    if "sluice" not in request.config.getoption("--brokers"):
        pytest.skip("a Sluice cluster")


class ClusterView:
    """What the single-broker tests use of a Broker: its kind, its bootstrap, its API versions."""

    kind = "sluice"

    def __init__(self, cluster: SluiceCluster):
        self.cluster = cluster
        first = cluster.node(cluster.broker_ids[0])
        self.host, self.port = first.host, first.port
        self.bootstrap = cluster.bootstrap

    def api_versions(self):
        return self.cluster.node(self.cluster.broker_ids[0]).api_versions()


@pytest.fixture(scope="module")
def cluster_broker():
    c = SluiceCluster(brokers=3, config={"default.replication.factor": "3"})
    try:
        c.start()
        yield ClusterView(c)
    finally:
        c.cleanup()


def test_java_clients_and_admin(cluster_broker, java_libs):  # noqa: F811
    java_client_scenario(cluster_broker, java_libs, "clients")


def test_java_command_line_tools(cluster_broker, java_libs):  # noqa: F811
    java_client_scenario(cluster_broker, java_libs, "cli")


def test_java_consumer_groups(cluster_broker, java_libs):  # noqa: F811
    java_groups_scenario(cluster_broker, java_libs)


def test_kafkajs(cluster_broker, node_ready):  # noqa: F811
    node_client_scenario(cluster_broker, node_ready, "kafkajs.test.js")


def test_kafka_python_roundtrip_and_group(cluster_broker, unique_topic):
    topic = unique_topic("kp-cluster")
    kp.roundtrip(cluster_broker.bootstrap, topic, N, "lz4")
    grouped = unique_topic("kp-cluster-grp")
    kp.create_topic(cluster_broker.bootstrap, grouped, 6)
    groups.scenario_three_members_share("kafka-python", cluster_broker.bootstrap, grouped,
                                        unique_topic("kp-group"), "roundrobin")


def test_confluent_kafka_roundtrip(cluster_broker, unique_topic):
    ck.roundtrip(cluster_broker.bootstrap, unique_topic("ck-cluster"), N, "zstd")


def test_kcat_group(cluster_broker, unique_topic):
    kcat_group_scenario(cluster_broker, unique_topic)
