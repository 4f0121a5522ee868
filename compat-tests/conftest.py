"""pytest fixtures for the compatibility suite.

Fixtures (contract shared with the other client-family wrappers: keep it):
  broker        the Broker under test (.kind "sluice"|"kafka", .bootstrap "127.0.0.1:PORT",
                .data_dir); one process per kind for the whole session, parametrized over
                --brokers (default "sluice,kafka", or env COMPAT_BROKERS), narrowed by
                --kafka-runs and --kafka-fault-runs (harness/kinds.py).
  broker_kind   the kind string of the current parametrization.
  fresh_broker  factory: fresh_broker() -> a new, started Broker of the current kind with its own
                data dir, for tests that kill/restart; stopped and removed after the test.
                While it runs, the session broker of the same kind is stopped (only one Kafka
                at a time on a 2-core box) and started again, lazily, by the next `broker` use.
  unique_topic  factory: unique_topic("prefix") -> "prefix-<uuid hex>".
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.brokers import Broker  # noqa: E402
from harness.kinds import kinds_for  # noqa: E402

_session_brokers: dict[str, Broker] = {}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "groups: needs consumer-group membership (JoinGroup and friends); skipped on a Sluice "
                   "that does not advertise JoinGroup yet, always run on Kafka")
    config.addinivalue_line(
        "markers", "idempotence: needs the idempotent producer (InitProducerId and producer state); skipped "
                   "on a Sluice that does not advertise InitProducerId (API 22) yet, always run on Kafka")
    config.addinivalue_line(
        "markers", "storage_admin: needs segment retention and the storage admin APIs (DeleteRecords, "
                   "IncrementalAlterConfigs); skipped on a Sluice that does not advertise DeleteRecords (API 21) "
                   "and IncrementalAlterConfigs (API 44) yet, always run on Kafka")
    config.addinivalue_line(
        "markers", "kafka_decides: a 3-node cluster comparison: its Kafka run is part of `make test` "
                   "(--kafka-runs=deciding) too, so a Kafka cluster's answers are checked on every run")
    config.addinivalue_line(
        "markers", "fault_checker: a fault test (kill -9, chaos) whose Kafka run checks the test's checker, "
                   "not a behaviour Sluice must copy; it runs against Kafka only with --kafka-fault-runs "
                   "(or COMPAT_KAFKA_FAULT_RUNS=1), to keep `make test` short. Run it there after changing "
                   "the test.")


@pytest.fixture(autouse=True)
def _needs_groups(request):
    """A `groups` test runs on Sluice only once Sluice serves JoinGroup (API 11): the check asks the
    broker itself, so the tests turn on by themselves when the coordinator lands."""
    if request.node.get_closest_marker("groups") is None or "broker_kind" not in request.fixturenames:
        return
    if request.getfixturevalue("broker_kind") != "sluice":
        return
    b = request.getfixturevalue("broker")
    if 11 not in b.api_versions():
        pytest.skip("Sluice does not serve consumer-group membership yet (issue 4)")


@pytest.fixture(autouse=True)
def _needs_idempotence(request):
    """An `idempotence` test runs on Sluice only once Sluice advertises InitProducerId (API 22) in
    ApiVersions: asked of the broker itself (the session broker, on the same binary a fresh_broker
    would run), so the tests turn on by themselves when the idempotent producer lands."""
    if request.node.get_closest_marker("idempotence") is None or "broker_kind" not in request.fixturenames:
        return
    if request.getfixturevalue("broker_kind") != "sluice":
        return
    b = request.getfixturevalue("broker")
    if 22 not in b.api_versions():
        pytest.skip("Sluice does not serve InitProducerId yet (issue 6, idempotent producer)")


STORAGE_ADMIN_APIS = (21, 44)  # DeleteRecords, IncrementalAlterConfigs


def storage_admin_missing(b: Broker) -> list[int]:
    """The storage admin API keys the broker does not advertise in ApiVersions."""
    apis = b.api_versions()
    return [k for k in STORAGE_ADMIN_APIS if k not in apis]


@pytest.fixture(autouse=True)
def _needs_storage_admin(request):
    """A `storage_admin` test runs on Sluice only once Sluice advertises DeleteRecords (API 21) and
    IncrementalAlterConfigs (API 44): asked of the session broker (same binary as any other broker
    the test starts), so the tests turn on by themselves when issue 5's storage work lands."""
    if request.node.get_closest_marker("storage_admin") is None or "broker_kind" not in request.fixturenames:
        return
    if request.getfixturevalue("broker_kind") != "sluice":
        return
    missing = storage_admin_missing(request.getfixturevalue("broker"))
    if missing:
        pytest.skip(f"Sluice does not advertise API keys {missing} yet (issue 5, storage that holds up)")


def pytest_addoption(parser):
    parser.addoption("--brokers", action="store",
                     default=os.environ.get("COMPAT_BROKERS", "sluice,kafka"),
                     help="comma-separated broker kinds to run against: sluice,kafka")
    parser.addoption("--kafka-runs", choices=("all", "deciding"),
                     default=os.environ.get("COMPAT_KAFKA_RUNS", "all"),
                     help="all: every test also runs against Kafka (checks that the test asks for Kafka's "
                          "behaviour); deciding: only tests marked kafka_decides do (make test)")
    parser.addoption("--kafka-fault-runs", action="store_true",
                     default=os.environ.get("COMPAT_KAFKA_FAULT_RUNS", "") not in ("", "0"),
                     help="also run the fault_checker tests against Kafka")


def pytest_generate_tests(metafunc):
    if "broker_kind" in metafunc.fixturenames:
        kinds = kinds_for(metafunc)
        metafunc.parametrize("broker_kind", kinds, ids=kinds, scope="session")


@pytest.fixture(scope="session")
def _session_broker(broker_kind):
    b = Broker(broker_kind)
    _session_brokers[broker_kind] = b
    try:
        b.start()
        yield b
    finally:
        _session_brokers.pop(broker_kind, None)
        b.cleanup()


@pytest.fixture
def broker(_session_broker):
    if not _session_broker.running():
        _session_broker.start()  # stopped by a fresh_broker user, or killed by a test
    return _session_broker


@pytest.fixture
def fresh_broker(broker_kind):
    made: list[Broker] = []

    def make(**kwargs) -> Broker:
        sess = _session_brokers.get(broker_kind)
        if broker_kind == "kafka" and sess is not None and sess.running():
            sess.stop()
        b = Broker(broker_kind, **kwargs)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.cleanup()


@pytest.fixture
def unique_topic():
    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"
    return make
