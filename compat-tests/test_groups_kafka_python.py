"""Consumer groups with kafka-python: membership (roundrobin), member failure and clean leave,
cooperative-sticky, static membership, committed offsets across a kill -9 of the broker, and the
admin API (list_groups / describe_groups / delete_groups / delete_group_offsets, with the
NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND and GROUP_SUBSCRIBED_TO_TOPIC errors).
Members run as subprocesses (harness/group_worker.py) driven by harness/groups.py."""
import time
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka import errors as Errors
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from harness import groups, kp

pytestmark = pytest.mark.groups
CLIENT = "kafka-python"


def group_id(prefix="kp"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic6(broker, unique_topic):
    t = unique_topic("grp")
    kp.create_topic(broker.bootstrap, t, 6)
    return t


def test_three_members_share_partitions_exactly_once(broker, topic6):
    groups.scenario_three_members_share(CLIENT, broker.bootstrap, topic6, group_id(), "roundrobin")


def test_killed_member_taken_over_after_session_clean_close_at_once(broker, topic6):
    times = groups.scenario_kill_and_leave(CLIENT, broker.bootstrap, topic6, group_id())
    print(f"{broker.kind}: {times}")


def test_cooperative_sticky_incremental_rebalance(broker, topic6):
    groups.scenario_cooperative(CLIENT, broker.bootstrap, topic6, group_id())


def test_static_member_restart_keeps_assignment(broker, topic6):
    groups.scenario_static_restart(CLIENT, broker.bootstrap, topic6, group_id())


# ------------------------------------------------------------------ committed offsets and restarts

def _consumer(bootstrap, group, topic):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=groups.SESSION_MS,
                      heartbeat_interval_ms=500, fetch_max_wait_ms=100, request_timeout_ms=30000)
    kp.subscribe_with_metadata(c, topic)
    return c


def test_committed_offsets_survive_kill9(fresh_broker, unique_topic):
    b = fresh_broker()
    topic, group = unique_topic("grp-restart"), group_id()
    kp.create_topic(b.bootstrap, topic, 3)
    groups.produce_keyed(b.bootstrap, topic, 0, 300, 3)
    committed = {0: 21, 1: 64, 2: 3}

    c = _consumer(b.bootstrap, group, topic)
    try:
        deadline = time.monotonic() + 60
        while len(c.assignment()) < 3:
            assert time.monotonic() < deadline, f"no assignment: {c.assignment()}"
            c.poll(timeout_ms=300, max_records=1)
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in committed.items()})
    finally:
        c.close()

    b.kill9()
    b.start()

    c = _consumer(b.bootstrap, group, topic)
    first: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 90
        while len(first) < 3:
            assert time.monotonic() < deadline, f"first records after restart: only {first}"
            for tp, msgs in c.poll(timeout_ms=500, max_records=500).items():
                if msgs:
                    first.setdefault(tp.partition, msgs[0].offset)
        for p, o in committed.items():
            assert c.committed(TopicPartition(topic, p)) == o
    finally:
        c.close()
    assert first == committed, f"after kill -9 the group resumed at {first}, committed {committed}"


# ----------------------------------------------------------------------------------------- admin

def test_admin_list_describe_delete_groups_and_offsets(broker, topic6):
    bs = broker.bootstrap
    a = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=20000)
    group = group_id("kp-adm")
    m = groups.Member("m", CLIENT, bs, group, topic6)
    try:
        groups.wait_balanced([m], 6, 6)
        want = groups.produce_keyed(bs, topic6, 0, 60, 6)
        groups.wait_consumed([m], want)

        listed = groups.wait_until(lambda: {g["group_id"]: g for g in a.list_groups()}.get(group), 20,
                                   f"{group} in list_groups")
        print("list_groups entry:", listed)
        assert listed["protocol_type"] == "consumer", listed

        d = a.describe_groups([group])[group]
        print("describe_groups:", d)
        assert d["error"] is None and d["group_state"] == "Stable", d
        assert d["protocol_type"] == "consumer" and d["protocol_data"] == "range", d
        assert len(d["members"]) == 1, d["members"]

        # Not while the group has a member, nor for an unknown group.
        res = dict(a.delete_groups([group]))
        print("delete_groups non-empty:", res)
        assert errname(res[group]) == "NonEmptyGroupError", res
        unknown = group_id("kp-never-used")
        res = dict(a.delete_groups([unknown]))
        assert errname(res[unknown]) == "GroupIdNotFoundError", res

        # Offsets of a topic the live member subscribes to cannot be deleted.
        tp0 = TopicPartition(topic6, 0)
        res = a.delete_group_offsets(group, [tp0])
        print("delete_group_offsets while subscribed:", res)
        assert errname(res[tp0]) == "GroupSubscribedToTopicError", res
        with pytest.raises(Errors.GroupIdNotFoundError):
            a.delete_group_offsets(unknown, [tp0])

        m.close()
        groups.wait_until(lambda: a.describe_groups([group])[group]["group_state"] == "Empty", 20,
                          "the group to be Empty after its only member left")
        offs = a.list_group_offsets({group: None})[group]
        assert {tp.partition: om.offset for tp, om in offs.items() if tp.topic == topic6} == \
            {p: 10 for p in range(6)}, offs

        res = a.delete_group_offsets(group, [tp0])
        assert errname(res[tp0]) == "NoError", res
        left = kafka_committed(bs, group, topic6)
        assert left == {p: 10 for p in range(1, 6)}, left

        assert errname(dict(a.delete_groups([group]))[group]) in ("NoError", "OK")
        assert group not in {g["group_id"] for g in a.list_groups()}
        d = a.describe_groups([group])[group]
        print("describe_groups after delete:", d)
        assert d["group_state"] == "Dead" and d["members"] == [], d
        assert kafka_committed(bs, group, topic6) == {}
    finally:
        groups.close_all([m])
        a.close()


def errname(e) -> str:
    """kafka-python reports errors as classes in some results and as their names in others."""
    return e if isinstance(e, str) else e.__name__


def kafka_committed(bootstrap, group, topic) -> dict[int, int]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        out = {}
        for p in range(6):
            o = c.committed(TopicPartition(topic, p))
            if o is not None:
                out[p] = o
        return out
    finally:
        c.close()
