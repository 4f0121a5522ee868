"""The admin HTTP server (admin.listeners; Sluice only, Kafka has none): health for load balancers
and orchestrators, Prometheus metrics that `promtool check metrics` accepts, and 4xx answers as
JSON for anything else. Each test starts its own broker with the admin server on a free port."""
from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import time

import pytest

from harness import ck
from harness.brokers import Broker, free_port


@pytest.fixture(autouse=True)
def _sluice_only(request):
    if "sluice" not in request.config.getoption("--brokers"):
        pytest.skip("the admin HTTP server is Sluice's")


def get(port: int, path: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read().decode()
    finally:
        conn.close()


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one series in a text exposition (labels as written, e.g. 'api="Produce"')."""
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    raise AssertionError(f"{prefix!r} not in the metrics:\n{text[:2000]}")


def requests_of(text: str, api: str) -> float:
    """sluice_requests_total of one API, summed over its versions."""
    prefix = f'sluice_requests_total{{api="{api}",version="'
    return sum(float(line.split(" ")[-1]) for line in text.splitlines() if line.startswith(prefix))


@pytest.fixture
def broker(tmp_path):
    admin_port = free_port()
    b = Broker("sluice", workdir=tmp_path, extra_config={"admin.listeners": f"http://127.0.0.1:{admin_port}"})
    b.admin_port = admin_port
    b.start()
    yield b
    b.stop()


def test_health_endpoints(broker):
    status, headers, body = get(broker.admin_port, "/v1/health/live")
    assert (status, json.loads(body)) == (200, {"status": "live"})
    assert headers["Content-Type"] == "application/json"
    status, _, body = get(broker.admin_port, "/v1/health/ready")
    assert (status, json.loads(body)) == (200, {"status": "ready"})  # a single node serves at once


def test_metrics_count_requests_and_pass_promtool(broker, unique_topic):
    topic = unique_topic("metrics")
    ck.create_topic(broker.bootstrap, topic, partitions=3)  # ck.produce writes to 3
    ck.produce(broker.bootstrap, topic, 50, acks="1")
    status, headers, text = get(broker.admin_port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert requests_of(text, "Produce") >= 1
    assert requests_of(text, "Metadata") >= 1
    assert requests_of(text, "CreateTopics") == 1
    # By version: the one the client chose (librdkafka 2.0.2 sends ApiVersions v3, then v3 again).
    assert metric(text, "sluice_requests_total", 'api="ApiVersions",version="3"') >= 1
    assert 'api="DeleteRecords"' not in text  # a series appears with its first request
    assert metric(text, "sluice_connections_created_total") >= 2
    assert metric(text, "sluice_connections_open") >= 0
    # Every Produce answered is in each phase's histogram; its +Inf bucket holds them all.
    produced = metric(text, "sluice_request_seconds_count", 'api="Produce",phase="handling"')
    assert produced >= 1
    assert metric(text, "sluice_request_seconds_bucket", 'api="Produce",phase="send",le="+Inf"') == produced
    assert metric(text, "sluice_request_seconds_sum", 'api="Produce",phase="queue"') >= 0
    # Counters only grow.
    ck.produce(broker.bootstrap, topic, 50, acks="1")
    later = get(broker.admin_port, "/metrics")[2]
    assert requests_of(later, "Produce") > requests_of(text, "Produce")
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing (Debian's prometheus package; scripts/install-deps.sh test installs it)"
    check = subprocess.run([promtool, "check", "metrics"], input=later, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_bad_paths_methods_and_sizes_get_4xx_json(broker):
    status, _, body = get(broker.admin_port, "/no/such/path")
    assert status == 404 and json.loads(body) == {"error": "not found"}
    status, headers, body = get(broker.admin_port, "/metrics", method="POST")
    assert status == 405 and headers["Allow"] == "GET" and "error" in json.loads(body)
    status, _, body = get(broker.admin_port, "/metrics", headers={"X-Padding": "x" * 20_000})
    assert status == 413 and "error" in json.loads(body)
    # Not HTTP at all: the connection is closed, and the server goes on.
    with socket.create_connection(("127.0.0.1", broker.admin_port), timeout=5) as s:
        s.sendall(b"\x00\x01\x02 garbage\r\n\r\n")
        s.settimeout(5)
        try:
            s.recv(4096)  # closed (or an error answer): either way the server goes on
        except OSError:
            pass
    assert get(broker.admin_port, "/v1/health/live")[0] == 200


def test_connections_are_bounded_and_do_not_stall_the_kafka_listener(broker, unique_topic):
    """Idle connections past the bound are closed at once; the Kafka listener is unaffected."""
    idle = [socket.create_connection(("127.0.0.1", broker.admin_port), timeout=5) for _ in range(40)]
    try:
        time.sleep(0.5)
        closed = 0
        for s in idle:
            s.settimeout(0.2)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except socket.timeout:
                pass
        assert closed >= 40 - 16, f"only {closed} of 40 connections past the bound of 16 were closed"
        topic = unique_topic("stall")
        ck.create_topic(broker.bootstrap, topic, partitions=3)  # ck.produce writes to 3
        ck.produce(broker.bootstrap, topic, 10, acks="1")
    finally:
        for s in idle:
            s.close()


def test_a_broker_waiting_for_its_controller_is_not_ready(tmp_path):
    """A broker-only node whose controller does not answer is live but not ready, with the reason."""
    admin_port = free_port()
    b = Broker("sluice", workdir=tmp_path, extra_config={
        "process.roles": "broker", "node.id": "2", "controller.quorum.voters": f"1@127.0.0.1:{free_port()}",
        "controller.listener.names": "CONTROLLER", "admin.listeners": f"http://127.0.0.1:{admin_port}"})
    b.start(wait=False)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _, body = get(admin_port, "/v1/health/ready")
                break
            except OSError:
                assert time.monotonic() < deadline, "the admin server did not come up"
                time.sleep(0.1)
        assert status == 503
        assert json.loads(body) == {"status": "not ready", "reason": "waiting for the controller to unfence this broker"}
        assert get(admin_port, "/v1/health/live")[0] == 200
    finally:
        b.stop()


def test_a_taken_admin_port_stops_start_up_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        b = Broker("sluice", workdir=tmp_path, extra_config={"admin.listeners": f"http://127.0.0.1:{port}"})
        b.start(wait=False)
        try:
            assert b.proc.wait(20) == 1
            assert "admin.listeners" in b.log_tail()
        finally:
            b.stop()


def test_partition_level_and_process_metrics(tmp_path, unique_topic):
    """metrics.partition.level=true adds a series per partition, with the partition's own figures;
    the process and log-dir gauges describe this process and its disk."""
    admin_port = free_port()
    b = Broker("sluice", workdir=tmp_path, extra_config={"admin.listeners": f"http://127.0.0.1:{admin_port}",
                                                         "metrics.partition.level": "true",
                                                         "admin.refresh.interval.ms": "100"})
    b.start()
    try:
        topic = unique_topic("per-partition")
        ck.create_topic(b.bootstrap, topic, partitions=3)
        ck.produce(b.bootstrap, topic, 60, acks="all")  # ck.produce spreads them over the 3

        def per_partition(text: str, name: str) -> dict[int, float]:
            out = {}
            for line in text.splitlines():
                prefix = f'{name}{{partition="'
                if line.startswith(prefix) and f'topic="{topic}"' in line:
                    out[int(line[len(prefix):].split('"')[0])] = float(line.split(" ")[-1])
            return out

        deadline = time.monotonic() + 10
        while True:
            text = get(admin_port, "/metrics")[2]
            ends = per_partition(text, "sluice_partition_log_end_offset")
            if sum(ends.values()) == 60 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert sorted(ends) == [0, 1, 2] and sum(ends.values()) == 60, ends
        assert per_partition(text, "sluice_partition_high_watermark") == ends  # a single replica
        assert per_partition(text, "sluice_partition_log_start_offset") == {0: 0, 1: 0, 2: 0}
        assert per_partition(text, "sluice_partition_leader") == {0: 1, 1: 1, 2: 1}
        assert per_partition(text, "sluice_partition_in_sync_replicas") == {0: 1, 1: 1, 2: 1}
        assert all(v > 0 for v in per_partition(text, "sluice_partition_log_bytes").values())
        assert metric(text, "sluice_topic_records_in_total", f'topic="{topic}"') == 60
        assert metric(text, "sluice_flushed_bytes_total") > 0  # acks=all: synced before answered
        assert metric(text, "sluice_fsync_seconds_count") > 0
        # Segment rolls are timed: a topic of 200-byte segments, one 100-byte record at a time.
        before = metric(text, "sluice_segment_roll_seconds_count")
        rolled = unique_topic("rolled")
        ck.create_topic(b.bootstrap, rolled, partitions=1, config={"segment.bytes": "200"})
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0})
        for _ in range(4):
            p.produce(rolled, b"x" * 100, partition=0)
            assert p.flush(10) == 0
        text = get(admin_port, "/metrics")[2]
        assert metric(text, "sluice_segment_roll_seconds_count") >= before + 2
        assert metric(text, "sluice_segment_roll_seconds_sum") > 0
        # This process: its memory, descriptors, start and CPU.
        assert metric(text, "process_resident_memory_bytes") > 1 << 20
        assert 5 < metric(text, "process_open_fds") <= metric(text, "process_max_fds")
        assert time.time() - 3600 < metric(text, "process_start_time_seconds") <= time.time()
        assert metric(text, "process_cpu_seconds_total") >= 0
        data_dir = str(b.data_dir)  # as the broker names it (absolute, not resolved)
        free = metric(text, "sluice_log_dir_free_bytes", f'dir="{data_dir}"')
        assert 0 < free <= metric(text, "sluice_log_dir_total_bytes", f'dir="{data_dir}"')
        assert metric(text, "sluice_log_dir_used_bytes", f'dir="{data_dir}"') >= \
            sum(per_partition(text, "sluice_partition_log_bytes").values())
    finally:
        b.stop()
