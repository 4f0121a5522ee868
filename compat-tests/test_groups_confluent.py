"""Consumer groups with confluent-kafka (librdkafka): membership, rebalances, member failure,
cooperative-sticky, static membership, committed offsets across broker restarts, and the group
admin API (list / describe / delete, with the NON_EMPTY_GROUP and GROUP_ID_NOT_FOUND errors).
Members run as subprocesses (harness/group_worker.py) driven by harness/groups.py."""
import time
import uuid

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from harness import ck, groups

pytestmark = pytest.mark.groups
CLIENT = "confluent"


def group_id(prefix="g"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic6(broker, unique_topic):
    t = unique_topic("grp")
    ck.create_topic(broker.bootstrap, t, 6)
    return t


def test_three_members_share_partitions_exactly_once(broker, topic6):
    groups.scenario_three_members_share(CLIENT, broker.bootstrap, topic6, group_id(), "range")


def test_killed_member_taken_over_after_session_clean_close_at_once(broker, topic6):
    times = groups.scenario_kill_and_leave(CLIENT, broker.bootstrap, topic6, group_id())
    print(f"{broker.kind}: {times}")


def test_cooperative_sticky_incremental_rebalance(broker, topic6):
    groups.scenario_cooperative(CLIENT, broker.bootstrap, topic6, group_id())


@pytest.mark.parametrize("restart", ["follower", "leader"])
def test_static_member_restart_keeps_assignment(broker, topic6, restart):
    groups.scenario_static_restart(CLIENT, broker.bootstrap, topic6, group_id(),
                                   restart="b" if restart == "follower" else "a")


# ------------------------------------------------------------------ committed offsets and restarts

def _consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": groups.SESSION_MS,
                     "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 100, "log_level": 2})


def _first_offsets(bootstrap, group, topic, partitions, timeout=60.0):
    """A new group member subscribes; returns {p: offset of the first record it gets on p}."""
    c = _consumer(bootstrap, group)
    first: dict[int, int] = {}
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(first) < partitions:
            assert time.monotonic() < deadline, f"first records: only {first} after {timeout}s"
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error():
                    if m.error().retriable() or m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                first.setdefault(m.partition(), m.offset())
        return first
    finally:
        c.close()


def _commit_in_group(bootstrap, group, topic, offsets: dict[int, int], timeout=60.0):
    """A group member subscribes, waits for its assignment, commits offsets, closes."""
    c = _consumer(bootstrap, group)
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(c.assignment()) < len(offsets):
            assert time.monotonic() < deadline, f"no assignment after {timeout}s: {c.assignment()}"
            c.consume(num_messages=1, timeout=0.3)  # drives the join; records are ignored
        while True:
            try:
                res = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                               asynchronous=False)
                break
            except KafkaException as e:
                if time.monotonic() > deadline or not e.args[0].retriable():
                    raise
                time.sleep(0.5)
        assert all(tp.error is None for tp in res), res
    finally:
        c.close()


@pytest.mark.fault_checker
def test_committed_offsets_survive_clean_and_kill9_restart(fresh_broker, unique_topic):
    b = fresh_broker()
    topic, group = unique_topic("grp-restart"), group_id()
    ck.create_topic(b.bootstrap, topic, 3)
    groups.produce_keyed(b.bootstrap, topic, 0, 300, 3)

    first = {0: 17, 1: 42, 2: 99}
    _commit_in_group(b.bootstrap, group, topic, first)
    b.restart()  # SIGTERM, same data dir and port
    got = _first_offsets(b.bootstrap, group, topic, 3)
    assert got == first, f"after a clean restart the group resumed at {got}, committed {first}"

    second = {0: 55, 1: 43, 2: 80}
    _commit_in_group(b.bootstrap, group, topic, second)
    b.kill9()
    b.start()
    got = _first_offsets(b.bootstrap, group, topic, 3)
    assert got == second, f"after kill -9 and restart the group resumed at {got}, committed {second}"


# ----------------------------------------------------------------------------------------- admin

def _admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def _listed(a) -> dict[str, object]:
    res = a.list_consumer_groups(request_timeout=15).result(20)
    assert not res.errors, res.errors
    return {g.group_id: g for g in res.valid}


def test_admin_list_describe_delete_groups(broker, topic6):
    bs = broker.bootstrap
    a = _admin(bs)
    group = group_id("adm")
    m = groups.Member("m", CLIENT, bs, group, topic6)
    try:
        groups.wait_balanced([m], 6, 6)
        want = groups.produce_keyed(bs, topic6, 0, 60, 6)
        groups.wait_consumed([m], want)

        listed = groups.wait_until(lambda: _listed(a).get(group), 20, f"{group} in list_consumer_groups")
        assert listed.is_simple_consumer_group is False
        assert listed.state == ConsumerGroupState.STABLE, listed

        d = a.describe_consumer_groups([group], request_timeout=15)[group].result(20)
        assert d.group_id == group
        assert d.state == ConsumerGroupState.STABLE, d
        assert d.partition_assignor == "range", d.partition_assignor
        assert d.is_simple_consumer_group is False
        assert len(d.members) == 1, d.members
        assigned = sorted(tp.partition for tp in d.members[0].assignment.topic_partitions
                          if tp.topic == topic6)
        assert assigned == list(range(6)), d.members[0].assignment.topic_partitions

        # A group with a member cannot be deleted.
        with pytest.raises(KafkaException) as ei:
            a.delete_consumer_groups([group], request_timeout=15)[group].result(20)
        assert ei.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, ei.value

        # Nor can one the coordinator does not know.
        unknown = group_id("never-used")
        with pytest.raises(KafkaException) as ei:
            a.delete_consumer_groups([unknown], request_timeout=15)[unknown].result(20)
        assert ei.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, ei.value

        m.close()
        groups.wait_until(
            lambda: a.describe_consumer_groups([group], request_timeout=15)[group].result(20).state
            == ConsumerGroupState.EMPTY, 20, "the group to be Empty after its only member left")
        listed = _listed(a)[group]
        assert listed.state == ConsumerGroupState.EMPTY, listed

        # Committed offsets of an Empty group are still there, and deleting the group removes them.
        offs = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(20)
        assert {tp.partition: tp.offset for tp in offs.topic_partitions if tp.topic == topic6} == \
            {p: 10 for p in range(6)}, offs.topic_partitions
        a.delete_consumer_groups([group], request_timeout=15)[group].result(20)  # raises on error
        assert group not in _listed(a)
        d = a.describe_consumer_groups([group], request_timeout=15)[group].result(20)
        assert d.state == ConsumerGroupState.DEAD, d
        assert d.members == []
    finally:
        groups.close_all([m])

