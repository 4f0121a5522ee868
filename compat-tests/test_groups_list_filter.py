"""ListGroups with a state filter (v4+), through confluent-kafka's admin client: a group with a
live member is listed as Stable and not as Empty; after the member leaves it is Empty.
Against both brokers."""
from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import ConsumerGroupState, Consumer
from confluent_kafka.admin import AdminClient

from harness import ck

pytestmark = pytest.mark.groups


def listed(bootstrap: str, states: set) -> set[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    result = admin.list_consumer_groups(states=states, request_timeout=30).result(30)
    return {g.group_id for g in result.valid}


def wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_list_groups_by_state(broker, unique_topic):
    topic = unique_topic("list-state")
    ck.create_topic(broker.bootstrap, topic, partitions=2)
    group = f"state-{uuid.uuid4().hex[:8]}"
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "session.timeout.ms": 6000})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 30
        while not c.assignment():
            assert time.monotonic() < deadline, "no assignment"
            c.poll(0.2)
        wait_for(lambda: group in listed(broker.bootstrap, {ConsumerGroupState.STABLE}), "the group to be Stable")
        assert group not in listed(broker.bootstrap, {ConsumerGroupState.EMPTY})
    finally:
        c.close()
    wait_for(lambda: group in listed(broker.bootstrap, {ConsumerGroupState.EMPTY}), "the group to be Empty")
    assert group not in listed(broker.bootstrap, {ConsumerGroupState.STABLE})
