"""Sluice's command line and process life cycle (Sluice only: these are our flags,
not a Kafka scenario). Unknown keys and bad values stop the start-up with a message
naming the key; SIGTERM shuts down cleanly and the data is there after a restart."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest

from harness import ck
from harness.brokers import Broker, free_port, sluice_bin


@pytest.fixture(autouse=True)
def _sluice_only(request):
    if "sluice" not in request.config.getoption("--brokers"):
        pytest.skip("Sluice's own command line")


def run_sluice(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(sluice_bin()), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("override, key", [
    ("no.such.key=1", "no.such.key"),
    ("num.partitions=lots", "num.partitions"),
    ("num.partitions=0", "num.partitions"),
    ("auto.create.topics.enable=maybe", "auto.create.topics.enable"),
    ("listeners=127.0.0.1:9092", "listeners"),
    ("message.max.bytes=-5", "message.max.bytes"),
])
def test_bad_configuration_is_rejected_naming_the_key(tmp_path, override, key):
    res = run_sluice("server", "--override", f"log.dirs={tmp_path}", "--override", override)
    assert res.returncode == 2, res
    assert key in res.stderr, res.stderr


def test_bad_configuration_file_is_rejected(tmp_path):
    props = tmp_path / "server.properties"
    props.write_text("# a comment\nnode.id=1\nlog.retention.hourz=5\n")
    res = run_sluice("server", "--config", str(props))
    assert res.returncode == 2 and "log.retention.hourz" in res.stderr, res


def test_config_file_and_overrides(tmp_path):
    port, admin_port = free_port(), free_port()
    props = tmp_path / "server.properties"
    props.write_text(f"node.id=7\nlisteners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={tmp_path / 'data'}\n"
                     f"num.partitions=5\nadmin.listeners=http://127.0.0.1:{admin_port}\n")
    proc = subprocess.Popen([str(sluice_bin()), "server", "--config", str(props), "--override", "num.partitions=2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        bootstrap = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                md = ck.admin(bootstrap).list_topics(timeout=2)
                break
            except Exception:
                assert time.monotonic() < deadline, "broker did not come up"
                time.sleep(0.2)
        assert md.controller_id == 7 and list(md.brokers) == [7]
        md = ck.admin(bootstrap).list_topics(topic="auto-created", timeout=10)  # auto-creation
        assert len(md.topics["auto-created"].partitions) == 2  # the override won over the file
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode == 0, proc.stdout.read()


def test_sigterm_shuts_down_cleanly_and_keeps_data(tmp_path, unique_topic):
    b = Broker("sluice", workdir=tmp_path)
    b.start()
    try:
        topic = unique_topic("term")
        ck.create_topic(b.bootstrap, topic, partitions=3)
        ck.produce(b.bootstrap, topic, 3000, acks="1")
        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(20) == 0
        assert "shut down cleanly" in b.log_tail()
        b.start()
        got = ck.consume(b.bootstrap, topic, {0: 1000, 1: 1000, 2: 1000})
        assert all(len(v) == 1000 for v in got.values())
    finally:
        b.stop()


def test_usage_errors():
    assert run_sluice().returncode == 2
    assert run_sluice("frobnicate").returncode == 2
    assert run_sluice("server", "--bogus").returncode == 2
    res = run_sluice("--help")
    assert res.returncode == 0 and "sluice server" in res.stdout
