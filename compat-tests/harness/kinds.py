"""Which broker kinds a test runs against: --brokers, narrowed for Kafka.

A test's Kafka run checks that the test asks for Kafka's behaviour; Kafka (pinned) does not
change between runs, so that check is needed when the test changes, not on every run:
  --kafka-runs=all       (default) every test runs against Kafka too;
  --kafka-runs=deciding  (make test) only tests marked kafka_decides: the 3-node cluster
                         comparisons (test_cluster_compare.py), whose Kafka cluster's answers
                         are checked on every run (issue 15 asks for them in make test);
  fault_checker tests    run against Kafka only with --kafka-fault-runs, whatever --kafka-runs says.
`make compat-test-kafka` runs the whole suite's Kafka side (--brokers=kafka --kafka-fault-runs).
"""
from __future__ import annotations

import pytest

from .brokers import KINDS


def broker_kinds(config) -> list[str]:
    """The kinds --brokers names (a usage error for an unknown one)."""
    kinds = [k.strip() for k in config.getoption("--brokers").split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise pytest.UsageError(f"--brokers: unknown kind(s) {bad}; known: {list(KINDS)}")
    return kinds


def kinds_for(metafunc) -> list[str]:
    """The kinds this test function runs against."""
    config, definition = metafunc.config, metafunc.definition
    kinds = broker_kinds(config)
    if "kafka" not in kinds:
        return kinds
    if definition.get_closest_marker("fault_checker") is not None:
        keep_kafka = config.getoption("--kafka-fault-runs")
    else:
        keep_kafka = (config.getoption("--kafka-runs") == "all"
                      or definition.get_closest_marker("kafka_decides") is not None)
    return kinds if keep_kafka else [k for k in kinds if k != "kafka"]
