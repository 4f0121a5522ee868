"""Monitoring end to end (Sluice only; METRICS.md): a real Prometheus scrapes every node of a
3-broker cluster, every query of every Grafana dashboard (grafana/dashboards/*.json) returns
series, and what the metrics and the admin JSON views say agrees with what the cluster is.

Why: metric families that exist only on paper, dashboards that query names the broker does not
export (or partition-level series, which are off by default), a lag that is off by a partition,
a fenced broker that does not show: each of these leaves an operator with an empty or wrong panel
on the day it matters. Unit tests of the exposition format cannot see them; only a real scraper,
the real dashboards and a real failure can.

One module-scoped cluster (harness/cluster.py: controller-only node 1, brokers 2, 3, 4), each node
with its admin server on a free port (`admin.listeners`) and `admin.refresh.interval.ms=500`;
`metrics.partition.level` left at its default (off). The load, made once:
  - topic `monitored` (3 partitions, RF 3, min.insync.replicas 2), 3000 records with acks=all
    (1000 per partition; the end offsets are read back from the brokers, not assumed);
  - a second CreateTopics of it (TOPIC_ALREADY_EXISTS), so that sluice_request_errors_total has
    a series whatever else happens;
  - group `lagging-group`: a subscribed consumer reads some records, commits the explicit offsets
    LAGGING_COMMITS (less than it read, or more: explicit offsets, so the lag is known exactly)
    and leaves: the group is Empty with lag L = sum(end offsets) - sum(LAGGING_COMMITS);
  - group `caught-up-group`: commits the end offsets without joining: lag 0.
Prometheus (Debian's `prometheus`; the tests that need it skip without it) scrapes every node's
/metrics every second as job `sluice`. The broker-loss test runs last: it kill -9s node 3 (not
the controller), checks what Prometheus and the admin views show, starts it again and waits until
the cluster is healthy. Every wait is bounded; the whole module takes well under 2 minutes.

The admin JSON views this test expects (METRICS.md names the views, not their fields):

  GET /v1/brokers     {"brokers": [{"id": 2, "rack": null, "fenced": false, "state": "running",
                        "endpoints": [{"listener": "PLAINTEXT", "host": "127.0.0.1", "port": 1234}]}]}
                      (a fenced broker is listed with "fenced": true)
  GET /v1/topics      {"topics": [{"name": "t", "id": "base64-or-uuid-string", "partitions": 3,
                        "replication_factor": 3, "configs": {}}]}
  GET /v1/partitions  {"partitions": [{"topic": "t", "partition": 0, "leader": 2, "leader_epoch": 0,
                        "replicas": [2, 3, 4], "isr": [2, 3, 4],
                        "local": {"leader": true, "high_watermark": 10, "log_start_offset": 0,
                                  "log_end_offset": 10, "size_bytes": 1234}}]}
                      ("local" is null where the node holds no replica, e.g. on a controller-only node)
  GET /v1/groups      {"groups": [{"group": "g", "state": "Empty", "protocol_type": "consumer",
                        "members": [{"member_id": "...", "client_id": "...", "client_host": "...",
                                     "group_instance_id": null}],
                        "offsets": [{"topic": "t", "partition": 0, "committed_offset": 5,
                                     "end_offset": 10, "lag": 5}]}]}
                      (only the groups this node coordinates; "end_offset"/"lag" null when unknown)
  GET /v1/controller  {"active_controller_id": 1, "node_id": 2, "is_active_controller": false,
                        "metadata_offset": 123, "registered_brokers": 3, "fenced_brokers": 0}
                      (registered_brokers / fenced_brokers from this node's metadata image)
  GET /v1/health/ready  200 on every live node once it serves (the controller-only node included)

All answer 200 with Content-Type application/json on every node, the controller-only one included.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from harness import ck
from harness.brokers import PROJECT_ROOT, free_port
from harness.cluster import SluiceCluster
from harness.prom import (JOB, Prometheus, admin_json, http_get, prom_by, prom_query, prom_series, prom_value,
                          result_series, wait_for)

TOPIC = "monitored"
PARTITIONS = 3
RECORDS = 3000  # harness/data.py puts record i in partition i % 3: 1000 each
LAGGING_GROUP = "lagging-group"
CAUGHT_UP_GROUP = "caught-up-group"
LAGGING_COMMITS = {0: 100, 1: 250, 2: 400}  # lag 900 + 750 + 600 = 2250 with 1000 per partition
LAGGING_READS = 300  # records the lagging consumer reads before it commits
CONTROLLER = 1
BROKERS = (2, 3, 4)
KILLED = 3  # a broker, not the controller
OFFSETS_PARTITIONS = 5  # harness/cluster.py's offsets.topic.num.partitions
REFRESH_MS = 500  # admin.refresh.interval.ms

DASHBOARDS_DIR = PROJECT_ROOT / "grafana" / "dashboards"
METRICS_MD = PROJECT_ROOT / "METRICS.md"

# Grafana's built-in variables, as the dashboard queries are run here.
BUILTIN_VARIABLES = {
    "__rate_interval": "1m", "__rate_interval_ms": "60000",
    "__interval": "15s", "__interval_ms": "15000",
    "__range": "1m", "__range_s": "60", "__range_ms": "60000",
}
# ${name}, ${name:format}, ${name.field}, [[name]], [[name:format]], $name (Grafana's syntaxes).
VARIABLE_RE = re.compile(r"\$\{(\w+)(?:\.[^}:]*)?(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")

# Metric families and their types (METRICS.md), by where they must appear (as `# TYPE` lines of
# /metrics). Families whose series appear on an event are checked where the load guarantees one.
EVERY_NODE_FAMILIES = {
    "sluice_requests_total": "counter",
    "sluice_request_seconds": "histogram",
    "sluice_requests_queued": "gauge",
    "sluice_requests_in_flight": "gauge",
    "sluice_network_received_bytes_total": "counter",
    "sluice_network_sent_bytes_total": "counter",
    "sluice_connections_open": "gauge",
    "sluice_connections_created_total": "counter",
    "sluice_node_info": "gauge",
    "sluice_controller_active": "gauge",
    "sluice_metadata_offset": "gauge",
    "sluice_metadata_records_applied_total": "counter",
    "sluice_fsync_seconds": "histogram",
    "sluice_segment_roll_seconds": "histogram",
    "sluice_log_segments": "gauge",
    "sluice_log_dir_used_bytes": "gauge",
    "sluice_log_dir_free_bytes": "gauge",
    "sluice_log_dir_total_bytes": "gauge",
    "sluice_retention_deleted_segments_total": "counter",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
BROKER_FAMILIES = {
    "sluice_topic_log_bytes": "gauge",
    "sluice_topic_partitions": "gauge",
    "sluice_partitions": "gauge",
    "sluice_partitions_led": "gauge",
    "sluice_under_replicated_partitions": "gauge",
    "sluice_under_min_isr_partitions": "gauge",
    "sluice_isr_shrinks_total": "counter",
    "sluice_isr_expands_total": "counter",
    "sluice_leader_elections_total": "counter",
    "sluice_replica_max_lag_records": "gauge",
    "sluice_replica_max_lag_seconds": "gauge",
    "sluice_groups": "gauge",
    "sluice_group_rebalances_total": "counter",
}
# On at least one broker: per-topic counters appear where the topic is led or read, request
# errors on the first one (the load makes a TOPIC_ALREADY_EXISTS), per-group gauges on the
# groups' coordinator.
SOME_BROKER_FAMILIES = {
    "sluice_group_members": "gauge",
    "sluice_group_state": "gauge",
    "sluice_group_committed_offset": "gauge",
    "sluice_group_lag": "gauge",
    "sluice_topic_bytes_in_total": "counter",
    "sluice_topic_records_in_total": "counter",
    "sluice_topic_bytes_out_total": "counter",
    "sluice_topic_records_out_total": "counter",
    "sluice_request_errors_total": "counter",
}
# On the active controller (METRICS.md: "active controller only"; other nodes may show 0 or nothing).
CONTROLLER_FAMILIES = {
    "sluice_controller_registered_brokers": "gauge",
    "sluice_controller_fenced_brokers": "gauge",
    "sluice_offline_partitions": "gauge",
    "sluice_controller_events_total": "counter",
}
PARTITION_LEVEL_RE = re.compile(r"^(sluice_partition_\w+|sluice_group_partition_lag)\b")


@pytest.fixture(autouse=True, scope="module")
def _sluice_only(request):
    # Module scope: it must run before the module-scoped cluster below, not after it.
    if "sluice" not in request.config.getoption("--brokers"):
        pytest.skip("the admin HTTP server, its metrics and the dashboards are Sluice's")


# ---------------------------------------------------------------------------------- helpers
def offsets_partition(group: str) -> int:
    """The group's __consumer_offsets partition (Kafka's abs(String.hashCode) % partitions)."""
    h = 0
    for unit in group:
        h = (31 * h + ord(unit)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return 0 if h == -(1 << 31) else abs(h) % OFFSETS_PARTITIONS


def spec_metric_names() -> set[str]:
    """The sample names METRICS.md defines (histograms with their _bucket/_sum/_count)."""
    text = METRICS_MD.read_text()
    names = set(re.findall(r"`((?:sluice|process)_[a-z0-9_]+)`", text))
    for hist in ("sluice_request_seconds", "sluice_fsync_seconds", "sluice_segment_roll_seconds"):
        names |= {hist + suffix for suffix in ("_bucket", "_sum", "_count")}
    return names


# --------------------------------------------------------------------------------- fixtures
@dataclass
class Monitored:
    cluster: SluiceCluster
    admin_ports: dict[int, int]  # node id -> admin port
    end_offsets: dict[int, int]  # TOPIC's high watermarks after the load
    lagging_read: int  # records the lagging consumer read (records_out counts at least these)

    @property
    def expected_lag(self) -> int:
        return sum(self.end_offsets[p] - LAGGING_COMMITS[p] for p in range(PARTITIONS))

    def target(self, node_id: int) -> str:
        return f"127.0.0.1:{self.admin_ports[node_id]}"

    def node_of_target(self, instance: str) -> int:
        return {self.target(n): n for n in self.admin_ports}[instance]


def commit_offsets(c: Consumer, offsets: dict[int, int], timeout: float = 30.0) -> None:
    """Commit explicit offsets of TOPIC, retrying (bounded) while the coordinator is not there yet."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = c.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                              asynchronous=False)
            if all(tp.error is None for tp in result):
                return
            last = [tp.error for tp in result]
        except KafkaException as e:
            last = e
        time.sleep(0.3)
    raise AssertionError(f"commit {offsets}: not acknowledged within {timeout:.0f} s; last: {last}")


def read_part_and_commit(bootstrap: str, timeout: float = 60.0) -> int:
    """LAGGING_GROUP: subscribe, read at least LAGGING_READS records, commit LAGGING_COMMITS, leave."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": LAGGING_GROUP, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000, "fetch.wait.max.ms": 100,
                  "client.id": "monitoring-test", "log_level": 2})
    read = 0
    try:
        c.subscribe([TOPIC])
        deadline = time.monotonic() + timeout
        while read < LAGGING_READS or len(c.assignment()) < PARTITIONS:
            assert time.monotonic() < deadline, \
                f"{LAGGING_GROUP}: read {read} records, assignment {c.assignment()} after {timeout:.0f} s"
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error() is None:
                    read += 1
        commit_offsets(c, LAGGING_COMMITS)
    finally:
        c.close()  # LeaveGroup: the group goes Empty and keeps its offsets
    return read


@pytest.fixture(scope="module")
def monitored():
    cluster = SluiceCluster(brokers=len(BROKERS), config={
        "default.replication.factor": "3", "min.insync.replicas": "2",
        "admin.refresh.interval.ms": str(REFRESH_MS)})
    # Broker._sluice_cmd() turns extra_config into --override flags at every start(), after its
    # own "admin.listeners=" (off): a port per node here turns each node's admin server on.
    admin_ports = {}
    for node_id, node in cluster.nodes.items():
        admin_ports[node_id] = free_port()
        node.extra_config["admin.listeners"] = f"http://127.0.0.1:{admin_ports[node_id]}"
    try:
        assert sorted(admin_ports) == [CONTROLLER, *BROKERS]
        cluster.start()
        cluster.create_topic(TOPIC, PARTITIONS, 3)
        # A request error on purpose: sluice_request_errors_total has a series whatever else happens.
        a = cluster.admin()
        fs = a.create_topics([NewTopic(TOPIC, PARTITIONS, 3)], operation_timeout=15, request_timeout=15)
        with pytest.raises(KafkaException) as again:
            fs[TOPIC].result(20)
        assert again.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, again.value
        ck.produce(cluster.bootstrap, TOPIC, RECORDS, acks="all", timeout=90)
        lagging_read = read_part_and_commit(cluster.bootstrap)
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": CAUGHT_UP_GROUP,
                      "enable.auto.commit": False, "socket.timeout.ms": 5000, "log_level": 2})
        try:
            end_offsets = {p: c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10, cached=False)[1]
                           for p in range(PARTITIONS)}
            commit_offsets(c, end_offsets)  # without joining (generation -1): lag 0
        finally:
            c.close()
        assert sum(end_offsets.values()) >= RECORDS, end_offsets
        assert all(end_offsets[p] >= LAGGING_COMMITS[p] for p in range(PARTITIONS)), end_offsets
        # The admin views and state metrics are up to admin.refresh.interval.ms behind the load.
        time.sleep(3 * REFRESH_MS / 1000)
        yield Monitored(cluster, admin_ports, end_offsets, lagging_read)
    finally:
        cluster.cleanup()


@pytest.fixture(scope="module")
def prometheus(monitored, tmp_path_factory):
    binary = shutil.which("prometheus")
    if not binary:
        pytest.skip("prometheus not installed (Debian's prometheus package; scripts/install-deps.sh test)")
    prom = Prometheus(binary, tmp_path_factory.mktemp("prometheus"),
                      [monitored.target(n) for n in sorted(monitored.admin_ports)])
    try:
        prom.start()
        targets = len(monitored.admin_ports)

        def scraped_twice():
            up = prom_by(prom, f'up{{job="{JOB}"}}', "instance")
            scrapes = prom_by(prom, f'count_over_time(up{{job="{JOB}"}}[1m])', "instance")
            done = len(up) == targets and all(v == 1 for v in up.values()) and \
                len(scrapes) == targets and all(v >= 2 for v in scrapes.values())
            return done, {"up": up, "scrapes": scrapes}

        try:
            wait_for("every target up and scraped twice", scraped_twice, 30)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- prometheus log ---\n{prom.log_tail()}") from None
        yield prom
    finally:
        prom.stop()


# ------------------------------------------------------------------------ admin JSON views
def test_admin_views_answer_on_every_node(monitored):
    """Health, brokers, topics and controller views on every node, before any fault."""
    cluster = monitored.cluster
    for node_id, port in sorted(monitored.admin_ports.items()):
        def ready():
            status, _, body = http_get(port, "/v1/health/ready")
            return status == 200, (status, body)

        wait_for(f"node {node_id} /v1/health/ready", ready, 15)
        for path in ("/v1/brokers", "/v1/topics", "/v1/partitions", "/v1/groups", "/v1/controller"):
            admin_json(port, path)  # 200 with JSON

        def brokers_view():
            brokers = admin_json(port, "/v1/brokers")["brokers"]
            by_id = {b["id"]: b for b in brokers}
            done = sorted(by_id) == list(BROKERS) and all(b["fenced"] is False for b in brokers)
            return done, brokers

        brokers = wait_for(f"node {node_id} /v1/brokers: {list(BROKERS)}, none fenced", brokers_view, 15)
        for b in brokers:
            assert b["rack"] is None and isinstance(b["state"], str), b
            plaintext = [e for e in b["endpoints"] if e["listener"] == "PLAINTEXT"]
            assert [(e["host"], e["port"]) for e in plaintext] == \
                [(cluster.node(b["id"]).host, cluster.node(b["id"]).port)], b

        def topics_view():
            topics = {t["name"]: t for t in admin_json(port, "/v1/topics")["topics"]}
            return TOPIC in topics, topics

        # The views are up to admin.refresh.interval.ms behind.
        t = wait_for(f"node {node_id} /v1/topics lists {TOPIC}", topics_view, 15)[TOPIC]
        assert (t["partitions"], t["replication_factor"]) == (PARTITIONS, 3), t
        assert isinstance(t["id"], str) and t["id"], t
        assert isinstance(t["configs"], dict), t

        def controller_view():
            view = admin_json(port, "/v1/controller")
            return (view["registered_brokers"], view["fenced_brokers"]) == (len(BROKERS), 0), view

        view = wait_for(f"node {node_id} /v1/controller: 3 registered, 0 fenced", controller_view, 15)
        assert view["active_controller_id"] == CONTROLLER, view
        assert view["node_id"] == node_id, view
        assert view["is_active_controller"] is (node_id == CONTROLLER), view
        assert isinstance(view["metadata_offset"], int) and view["metadata_offset"] > 0, view

    # A topic id is the same everywhere.
    ids = {n: {t["name"]: t["id"] for t in admin_json(p, "/v1/topics")["topics"]}[TOPIC]
           for n, p in monitored.admin_ports.items()}
    assert len(set(ids.values())) == 1, ids


def test_partitions_view_matches_metadata(monitored):
    """/v1/partitions on every node: leader, replicas, ISR as Metadata says; the local replica's
    offsets where the node holds one (every broker, RF 3), none on the controller-only node."""
    cluster = monitored.cluster

    def consistent():
        metadata = cluster.partition_state(TOPIC)
        if sorted(metadata) != list(range(PARTITIONS)):
            return False, f"Metadata: {metadata}"
        problems = []
        epochs: dict[int, set] = {p: set() for p in range(PARTITIONS)}
        for node_id, port in sorted(monitored.admin_ports.items()):
            view = {e["partition"]: e for e in admin_json(port, "/v1/partitions")["partitions"]
                    if e["topic"] == TOPIC}
            if sorted(view) != list(range(PARTITIONS)):
                problems.append(f"node {node_id}: partitions {sorted(view)}")
                continue
            for p, (leader, replicas, isr) in metadata.items():
                e = view[p]
                epochs[p].add(e["leader_epoch"])
                if (e["leader"], e["replicas"], sorted(e["isr"])) != (leader, replicas, sorted(isr)):
                    problems.append(f"node {node_id} p{p}: view {e['leader'], e['replicas'], e['isr']} "
                                    f"!= metadata {leader, replicas, isr}")
                local = e["local"]
                if node_id == CONTROLLER:
                    if local is not None:
                        problems.append(f"node {node_id} p{p}: local {local}, expected null (no replica)")
                    continue
                end = monitored.end_offsets[p]
                want = {"leader": leader == node_id, "high_watermark": end, "log_start_offset": 0,
                        "log_end_offset": end}
                got = None if local is None else {k: local.get(k) for k in want}
                if got != want or not (local.get("size_bytes") or 0) > 0:
                    problems.append(f"node {node_id} p{p}: local {local}, expected {want} and size_bytes > 0")
        problems += [f"p{p}: leader epochs differ between nodes: {e}" for p, e in epochs.items() if len(e) > 1]
        return not problems, problems

    wait_for("/v1/partitions consistent with Metadata on every node", consistent, 20)


def test_group_views_show_the_lag(monitored):
    """/v1/groups: only the coordinator (the leader of the group's __consumer_offsets partition)
    lists the group; committed offsets, end offsets and lag per partition as committed."""
    cluster = monitored.cluster
    end = monitored.end_offsets
    want_lagging = {p: (LAGGING_COMMITS[p], end[p], end[p] - LAGGING_COMMITS[p]) for p in range(PARTITIONS)}
    want_caught_up = {p: (end[p], end[p], 0) for p in range(PARTITIONS)}

    def views():
        listing: dict[str, list[tuple[int, dict]]] = {}
        for node_id, port in sorted(monitored.admin_ports.items()):
            for g in admin_json(port, "/v1/groups")["groups"]:
                listing.setdefault(g["group"], []).append((node_id, g))
        problems = []
        for group, want in ((LAGGING_GROUP, want_lagging), (CAUGHT_UP_GROUP, want_caught_up)):
            where = listing.get(group, [])
            if len(where) != 1:
                problems.append(f"{group}: listed by nodes {[n for n, _ in where]}, expected exactly one")
                continue
            node_id, g = where[0]
            got = {o["partition"]: (o["committed_offset"], o["end_offset"], o["lag"])
                   for o in g["offsets"] if o["topic"] == TOPIC}
            if got != want:
                problems.append(f"{group} on node {node_id}: offsets {got}, expected {want}")
            if g["state"] != "Empty" or g["members"] != []:
                problems.append(f"{group} on node {node_id}: state {g['state']}, members {g['members']}")
        return not problems, (problems, listing)

    problems, listing = wait_for("/v1/groups shows both groups' offsets and lag", views, 20)
    node_id, g = listing[LAGGING_GROUP][0]
    assert g["protocol_type"] == "consumer", g  # it joined as a subscribed consumer
    coordinator = cluster.leader_of("__consumer_offsets", offsets_partition(LAGGING_GROUP))
    assert node_id == coordinator, f"{LAGGING_GROUP} listed by node {node_id}, coordinator is {coordinator}"
    assert sum(o["lag"] for o in g["offsets"]) == monitored.expected_lag
    assert admin_json(monitored.admin_ports[CONTROLLER], "/v1/groups")["groups"] == []


# ------------------------------------------------------------------------------ /metrics
def test_lag_of_partitions_the_coordinator_holds_no_replica_of(monitored):
    """A topic with one replica per partition, spread over the three brokers: the group's
    coordinator holds at most one of them, and asks the other partitions' leaders for their end
    offsets (ListOffsets). Lag is exact for all three, in the view and in the metric."""
    cluster = monitored.cluster
    topic, group = "single-replica", "remote-lag-group"
    # min.insync.replicas=1: with the cluster's 2 a single replica would commit nothing (KIP-966).
    cluster.create_topic(topic, PARTITIONS, 1, config={"min.insync.replicas": "1"})
    ck.produce(cluster.bootstrap, topic, 300, acks="all", timeout=60)
    committed = {0: 10, 1: 20, 2: 30}
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "socket.timeout.ms": 5000, "log_level": 2})
    try:
        end = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
               for p in range(PARTITIONS)}
        deadline = time.monotonic() + 30
        while True:
            result = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()],
                              asynchronous=False)
            if all(tp.error is None for tp in result):
                break
            assert time.monotonic() < deadline, result
            time.sleep(0.3)
    finally:
        c.close()
    leaders = {p: cluster.leader_of(topic, p) for p in range(PARTITIONS)}
    coordinator = cluster.leader_of("__consumer_offsets", offsets_partition(group))
    assert sum(1 for leader in leaders.values() if leader != coordinator) >= 2, (leaders, coordinator)
    want = {p: (committed[p], end[p], end[p] - committed[p]) for p in range(PARTITIONS)}

    def view():
        groups = {g["group"]: g for g in admin_json(monitored.admin_ports[coordinator], "/v1/groups")["groups"]}
        got = {o["partition"]: (o["committed_offset"], o["end_offset"], o["lag"])
               for o in groups.get(group, {}).get("offsets", [])}
        return got == want, got

    wait_for(f"{group} on node {coordinator}: lag of partitions led by {leaders}", view, 20)
    text = http_get(monitored.admin_ports[coordinator], "/metrics")[2]
    line = f'sluice_group_lag{{group="{group}",topic="{topic}"}} '
    values = [float(l[len(line):]) for l in text.splitlines() if l.startswith(line)]
    assert values == [sum(end.values()) - sum(committed.values())], values
    # Gone again: a single-replica partition would go offline when the last test kills a broker.
    admin = cluster.admin()
    admin.delete_topics([topic], operation_timeout=15, request_timeout=15)[topic].result(20)


def test_metrics_pass_promtool_and_name_the_families(monitored):
    """`promtool check metrics` accepts every node's /metrics; the families METRICS.md lists are
    there with their types, by role; no per-partition series with metrics.partition.level off."""
    promtool = shutil.which("promtool")
    failures = []
    broker_types: dict[str, set] = {}
    for node_id, port in sorted(monitored.admin_ports.items()):
        status, headers, text = http_get(port, "/metrics")
        assert status == 200, f"node {node_id} /metrics: {status}"
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
        if promtool:
            check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                                   text=True, timeout=30)
            if check.returncode != 0:
                failures.append(f"node {node_id}: promtool check metrics exit {check.returncode}:\n"
                                f"{check.stdout}{check.stderr}")
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        want = dict(EVERY_NODE_FAMILIES)
        if node_id in BROKERS:
            want.update(BROKER_FAMILIES)
            for name, kind in types.items():
                broker_types.setdefault(name, set()).add(kind)
        if node_id == CONTROLLER:
            want.update(CONTROLLER_FAMILIES)
        wrong = {name: (types.get(name), kind) for name, kind in want.items() if types.get(name) != kind}
        if wrong:
            failures.append(f"node {node_id}: families missing or of another type (got, want): {wrong}")
        partition_level = sorted({m.group(1) for line in text.splitlines() if (m := PARTITION_LEVEL_RE.match(line))})
        if partition_level:
            failures.append(f"node {node_id}: per-partition series with metrics.partition.level off: {partition_level}")
    wrong = {name: broker_types.get(name) for name, kind in SOME_BROKER_FAMILIES.items()
             if broker_types.get(name) != {kind}}
    if wrong:
        failures.append(f"families on no broker, or of another type (got): {wrong}")
    assert not failures, "\n".join(failures)
    if not promtool:
        pytest.skip("promtool not installed (Debian's prometheus package): families checked, promtool not run")


# ---------------------------------------------------------------------------- Prometheus
def test_prometheus_sees_every_node(monitored, prometheus):
    """Every node is a target that is up; sluice_node_info names its node and role."""
    up = prom_by(prometheus, f'up{{job="{JOB}"}}', "instance")
    assert up == {monitored.target(n): 1.0 for n in monitored.admin_ports}, up
    info = {labels["instance"]: labels for labels, _ in prom_series(prometheus, "sluice_node_info")}
    assert sorted(info) == sorted(monitored.target(n) for n in monitored.admin_ports), info
    for instance, labels in info.items():
        node_id = monitored.node_of_target(instance)
        assert labels.get("node_id") == str(node_id), labels
        assert ("controller" if node_id == CONTROLLER else "broker") in labels.get("roles", ""), labels
        assert labels.get("cluster_id"), f"a cluster_id label: {labels}"
    assert prom_value(prometheus, "sum(sluice_controller_active)") == 1
    assert prom_by(prometheus, "sluice_controller_active == 1", "instance") == {monitored.target(CONTROLLER): 1.0}
    assert prom_value(prometheus, "sum(sluice_controller_fenced_brokers)") == 0
    assert prom_value(prometheus, "sum(sluice_controller_registered_brokers)") == len(BROKERS)
    # Per-partition series are off by default.
    assert prom_series(prometheus, '{__name__=~"sluice_partition_.+|sluice_group_partition_lag"}') == []


def test_topic_series_match_the_load(monitored, prometheus):
    total = sum(monitored.end_offsets.values())
    topic = f'topic="{TOPIC}"'

    def settled():
        got = {
            "records_in": prom_value(prometheus, f"sum(sluice_topic_records_in_total{{{topic}}})"),
            "partitions": prom_by(prometheus, f"sluice_topic_partitions{{{topic}}}", "instance"),
            "log_bytes": prom_by(prometheus, f"sluice_topic_log_bytes{{{topic}}}", "instance"),
            "records_out": prom_value(prometheus, f"sum(sluice_topic_records_out_total{{{topic}}})"),
            "under_replicated": prom_value(prometheus, "sum(sluice_under_replicated_partitions)"),
            "partitions_led": prom_value(prometheus, "sum(sluice_partitions_led)"),
        }
        brokers = {monitored.target(b) for b in BROKERS}
        # Each partition of every topic (other tests' too) is led by one broker.
        every_partition = sum(t["partitions"] for t in admin_json(monitored.admin_ports[CONTROLLER], "/v1/topics")["topics"])
        # Every node with the broker role shows the partition count (others may too: the same value).
        done = (got["records_in"] == total
                and brokers <= set(got["partitions"]) and set(got["partitions"].values()) == {PARTITIONS}
                and set(got["log_bytes"]) == brokers and all(v > 0 for v in got["log_bytes"].values())
                and (got["records_out"] or 0) >= monitored.lagging_read
                and got["under_replicated"] == 0
                and got["partitions_led"] == every_partition)
        return done, got

    got = wait_for(f"topic series: {total} records in, 3 partitions on every broker, all replicated", settled, 20)
    # An acks=all produce is answered after its leader's group commit: those syncs made (at least)
    # one copy of the topic durable; flushed bytes count it (half of it: other topics' logs share
    # the syncs and segments are counted as they grow, so no exact figure is claimed).
    one_copy = sum(got["log_bytes"].values()) / len(BROKERS)
    flushed = prom_value(prometheus, "sum(sluice_flushed_bytes_total)")
    assert flushed is not None and flushed >= one_copy / 2, (flushed, one_copy)
    # The deliberate second CreateTopics is counted once by the broker that answered the client
    # (and once more by the controller, which answered that broker's forwarded request).
    broker_targets = "|".join(monitored.target(b) for b in BROKERS)
    assert prom_value(prometheus, 'sum(sluice_request_errors_total{api="CreateTopics",'
                                  f'error="TOPIC_ALREADY_EXISTS",instance=~"{broker_targets}"}})') == 1
    assert prom_value(prometheus, 'sum(sluice_request_errors_total{api="CreateTopics",'
                                  f'error="TOPIC_ALREADY_EXISTS",instance="{monitored.target(1)}"}})') == 1


def test_group_lag_in_prometheus(monitored, prometheus):
    """sluice_group_lag is exactly the lag the commits left, on the coordinator only."""
    lag = monitored.expected_lag
    committed = sum(LAGGING_COMMITS.values())
    coordinator = monitored.cluster.leader_of("__consumer_offsets", offsets_partition(LAGGING_GROUP))
    g = f'group="{LAGGING_GROUP}"'

    def settled():
        got = {
            "lag": prom_value(prometheus, f"sum(sluice_group_lag{{{g}}})"),
            "lag_by_topic": prom_by(prometheus, f"sum by (topic) (sluice_group_lag{{{g}}})", "topic"),
            "committed_by_topic": prom_by(prometheus, f"sum by (topic) (sluice_group_committed_offset{{{g}}})",
                                          "topic"),
            "instances": sorted(prom_by(prometheus, f"sluice_group_lag{{{g}}}", "instance")),
            "caught_up_lag": prom_by(prometheus, f'sluice_group_lag{{group="{CAUGHT_UP_GROUP}"}}', "topic"),
            "state": prom_by(prometheus, f"sluice_group_state{{{g}}} == 1", "state"),
            "members": prom_value(prometheus, f"sum(sluice_group_members{{{g}}})"),
        }
        done = (got["lag"] == lag and got["lag_by_topic"] == {TOPIC: float(lag)}
                and got["committed_by_topic"] == {TOPIC: float(committed)}
                and got["instances"] == [monitored.target(coordinator)]
                and got["caught_up_lag"] == {TOPIC: 0.0}
                and got["state"] == {"Empty": 1.0} and got["members"] == 0)
        return done, got

    wait_for(f"{LAGGING_GROUP} lag {lag} (committed {committed}) in Prometheus", settled, 30)
    assert prom_value(prometheus, 'sum(sluice_groups{state="Empty"})') >= 2
    assert prom_value(prometheus, "sum(sluice_group_rebalances_total)") >= 1


# ----------------------------------------------------------------------------- dashboards
def iter_panels(panels: list) -> list[dict]:
    """Every panel, rows' nested panels included."""
    out = []
    for panel in panels or []:
        out.append(panel)
        out += iter_panels(panel.get("panels"))
    return out


def dashboard_panels(dash: dict) -> list[dict]:
    return iter_panels(dash.get("panels")) + iter_panels([p for row in dash.get("rows") or []
                                                          for p in row.get("panels") or []])


def dashboard_variables(dash: dict) -> dict[str, dict]:
    return {v["name"]: v for v in (dash.get("templating") or {}).get("list") or [] if v.get("name")}


def substitute(expr: str, variables: dict[str, dict]) -> tuple[str, list[str]]:
    """The expression as this test runs it: built-ins as in BUILTIN_VARIABLES, the dashboard's own
    variables `.*` (interval variables 1m, constants their value); returns the names used but not
    defined (Grafana would leave those in the query as written). $1 and the like stay."""
    undefined: list[str] = []

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        if name.startswith("__"):
            return ".*"
        if name[0].isdigit():
            return m.group(0)  # a label_replace() replacement, not a variable
        var = variables.get(name)
        if var is None:
            undefined.append(name)
            return ".*"
        if var.get("type") == "interval":
            return "1m"
        if var.get("type") == "constant":
            return str(var.get("query", ""))
        return ".*"

    return VARIABLE_RE.sub(repl, expr), undefined


def variable_query(var: dict) -> str | None:
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query")
    return q if isinstance(q, str) and q.strip() else None


def load_dashboards() -> list[tuple[str, dict | None, str | None]]:
    out = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            out.append((path.name, data.get("dashboard", data), None))  # an API export wraps it
        except (OSError, ValueError) as e:
            out.append((path.name, None, f"{type(e).__name__}: {e}"))
    return out


def test_every_dashboard_query_returns_series(monitored, prometheus):
    """Every target expr of every panel of every dashboard, variables substituted, succeeds in
    Prometheus with at least one series; every label_values() variable has values (our group and
    topic among them). Failures are collected and reported together."""
    dashboards = load_dashboards()
    assert dashboards, f"no dashboards in {DASHBOARDS_DIR}"
    known = spec_metric_names()
    failures: list[str] = []
    queries: list[tuple[str, str, str, list[str]]] = []  # (where, expr, expr as run, names not in METRICS.md)
    for name, dash, error in dashboards:
        if dash is None:
            failures.append(f"{name}: not JSON: {error}")
            continue
        variables = dashboard_variables(dash)
        exprs = 0
        for panel in dashboard_panels(dash):
            for target in panel.get("targets") or []:
                expr = target.get("expr")
                if not isinstance(expr, str) or not expr.strip():
                    continue
                exprs += 1
                where = f"{name} / panel {panel.get('title')!r} / ref {target.get('refId')}"
                ran, undefined = substitute(expr, variables)
                if undefined:
                    failures.append(f"{where}: uses undefined variable(s) {undefined}: {expr}")
                unknown = sorted({m for m in re.findall(r"\b((?:sluice|process)_[a-z0-9_]+)\b", ran)
                                  if m not in known})
                queries.append((where, expr, ran, unknown))
        if exprs == 0:
            failures.append(f"{name}: no panel has a PromQL expr")
        for var in variables.values():
            q = variable_query(var)
            if var.get("type") != "query" or not q:
                continue
            q, _ = substitute(q, variables)
            where = f"{name} / variable {var['name']!r}"
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q, re.S)
            if m:
                expr, label = f"group by ({m.group(2)}) ({m.group(1)})", m.group(2)
            elif (m := re.fullmatch(r"\s*query_result\((.*)\)\s*", q, re.S)):
                expr, label = m.group(1), None
            else:
                continue  # label_values(label) alone, metrics(): nothing to query here
            answer = prom_query(prometheus, expr)
            if answer.get("status") != "success" or not result_series(answer):
                failures.append(f"{where}: {q!r} has no values: {answer}")
                continue
            values = {labels.get(label) for labels, _ in result_series(answer)} if label else set()
            expected = {"group": LAGGING_GROUP, "topic": TOPIC}.get(label)
            if expected and label == var["name"] and expected not in values:
                failures.append(f"{where}: {q!r} values {sorted(values)} lack {expected!r}")

    # Rates need two points in their range, state gauges a refresh: retry what fails, bounded.
    pending = {i: None for i in range(len(queries))}
    deadline = time.monotonic() + 20
    while True:
        for i in list(pending):
            answer = prom_query(prometheus, queries[i][2])
            if answer.get("status") == "success" and result_series(answer):
                del pending[i]
            else:
                pending[i] = answer
        bad_syntax_only = all(a.get("errorType") == "bad_data" for a in pending.values())
        if not pending or bad_syntax_only or time.monotonic() >= deadline:
            break
        time.sleep(1)
    for i, answer in pending.items():
        where, expr, ran, unknown = queries[i]
        result = (f"error {answer.get('errorType')}: {answer.get('error')}" if answer.get("status") != "success"
                  else "no series (partition-level series are off; a panel of a healthy cluster should "
                       "show 0, not nothing)")
        if unknown:
            result += f"; names not in METRICS.md: {unknown}"
        failures.append(f"{where}:\n    expr: {expr}\n    ran:  {ran}\n    result: {result}")
    print(f"\n{len(dashboards)} dashboards, {len(queries)} queries, {len(failures)} failures")
    assert not failures, f"{len(failures)} dashboard problem(s):\n" + "\n".join(failures)


# ------------------------------------------------------------------------ a broker lost (last)
def test_a_lost_broker_shows_and_recovers(monitored, prometheus):
    """kill -9 node 3: Prometheus sees the target down, under-replicated partitions and one fenced
    broker, with still one active controller; the admin views agree. Then node 3 comes back and
    everything returns to healthy (the module's cluster ends as it started)."""
    cluster = monitored.cluster
    ups = f'count(up{{job="{JOB}"}} == 1)'
    all_up = len(monitored.admin_ports)

    def healthy():
        got = {"up": prom_value(prometheus, ups),
               "under_replicated": prom_value(prometheus, "sum(sluice_under_replicated_partitions)"),
               "fenced": prom_value(prometheus, "sum(sluice_controller_fenced_brokers)")}
        return got == {"up": all_up, "under_replicated": 0, "fenced": 0}, got

    wait_for("a healthy cluster before the kill", healthy, 20)
    # ISR counters of the brokers that stay up (the killed one's start again from 0).
    survivors = f'instance!="{monitored.target(KILLED)}"'
    shrinks = f"sum(sluice_isr_shrinks_total{{{survivors}}})"
    expands = f"sum(sluice_isr_expands_total{{{survivors}}})"
    shrinks_before = prom_value(prometheus, shrinks) or 0
    offsets_state = cluster.partition_state("__consumer_offsets")
    states = list(cluster.partition_state(TOPIC).values()) + list(offsets_state.values())
    # Each partition a survivor leads with node 3 in its ISR shrinks once, counted by its leader.
    shrinks_expected = sum(1 for leader, _, isr in states if leader != KILLED and KILLED in isr)
    led_elsewhere = shrinks_expected > 0

    cluster.node(KILLED).kill9()
    try:
        def degraded():
            got = {"up": prom_value(prometheus, ups),
                   "under_replicated": prom_value(prometheus, "sum(sluice_under_replicated_partitions)"),
                   "fenced": prom_value(prometheus, "sum(sluice_controller_fenced_brokers)")}
            done = got["up"] == all_up - 1 and (got["under_replicated"] or 0) > 0 and got["fenced"] == 1
            return done, got

        wait_for(f"node {KILLED} down, partitions under-replicated, one broker fenced", degraded, 30)
        assert prom_value(prometheus, "sum(sluice_controller_active)") == 1
        assert prom_by(prometheus, f'up{{job="{JOB}"}} == 0', "instance") == {monitored.target(KILLED): 0.0}
        assert prom_value(prometheus, "sum(sluice_offline_partitions)") == 0  # RF 3: every partition has a leader
        # ISR 2 >= min.insync 2 (a slow survivor may drop out for a moment on a loaded machine).
        wait_for("no partition under min.insync.replicas",
                 lambda: ((v := prom_value(prometheus, "sum(sluice_under_min_isr_partitions)")) == 0, v), 15)
        if led_elsewhere:
            wait_for(f"sluice_isr_shrinks_total grows by {shrinks_expected} on the brokers that stayed up",
                     lambda: ((v := prom_value(prometheus, shrinks) or 0) >= shrinks_before + shrinks_expected, v),
                     10)
        expands_before = prom_value(prometheus, expands) or 0

        # The admin views agree: the controller counts one fenced broker, every live broker lists it fenced.
        def controller_counts_it():
            view = admin_json(monitored.admin_ports[CONTROLLER], "/v1/controller")
            return (view["registered_brokers"], view["fenced_brokers"]) == (len(BROKERS), 1), view

        wait_for("/v1/controller on the controller: 3 registered, 1 fenced", controller_counts_it, 15)
        for b in BROKERS:
            if b == KILLED:
                continue
            port = monitored.admin_ports[b]

            def fenced_listed():
                brokers = {x["id"]: x["fenced"] for x in admin_json(port, "/v1/brokers")["brokers"]}
                return brokers == {x: x == KILLED for x in BROKERS}, brokers

            wait_for(f"node {b} /v1/brokers lists node {KILLED} fenced", fenced_listed, 15)
            assert http_get(port, "/v1/health/ready")[0] == 200, f"node {b} not ready while node {KILLED} is down"
    finally:
        cluster.node(KILLED).start()  # waits until it answers (unfenced)

    cluster.wait_partitions(TOPIC, lambda s: all(len(isr) == 3 for _, _, isr in s.values()), 45)
    wait_for("a healthy cluster after the restart", healthy, 45)
    # Node 3 back in the ISR of everything the others lead: each of those ISRs grew, counted by its leader.
    expands_expected = sum(1 for leader, _, _ in list(cluster.partition_state(TOPIC).values()) +
                           list(cluster.partition_state("__consumer_offsets").values()) if leader != KILLED)
    wait_for(f"sluice_isr_expands_total grows by {expands_expected} on the brokers that stayed up",
             lambda: ((v := prom_value(prometheus, expands) or 0) >= expands_before + expands_expected, v), 10)
    wait_for(f"node {KILLED} /v1/health/ready",
             lambda: (http_get(monitored.admin_ports[KILLED], "/v1/health/ready")[0] == 200, None), 15)
    assert prom_value(prometheus, "sum(sluice_controller_active)") == 1
