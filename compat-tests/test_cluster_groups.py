"""Consumer groups on a real cluster of Sluice processes (harness/cluster.py: a controller and
three brokers on loopback): committed offsets live in the replicated __consumer_offsets topic,
and a group's coordinator is the leader of the group's partition of it.

The guarantee under test (broker/README.md, "Groups in a cluster"): an offset commit that was
acknowledged is on every in-sync replica of its __consumer_offsets partition, so the loss of the
coordinator loses no acknowledged commit: the next coordinator serves it (or a later one).
Every loop is bounded in rounds and time; the figures are printed (run with -s to see them).
"""
from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from harness.cluster import SluiceCluster, rf3_cluster_fixture, sluice_only_fixture  # noqa: F401 (fixtures)

OFFSETS_PARTITIONS = 5  # harness/cluster.py's offsets.topic.num.partitions


def offsets_partition(group: str) -> int:
    """Kafka's mapping: abs(group.hashCode()) % partitions (Java String.hashCode)."""
    h = 0
    for unit in group.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(unit)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return 0 if h == -(1 << 31) else abs(h) % OFFSETS_PARTITIONS


def committer(bootstrap: str, group: str) -> Consumer:
    # Commits without joining (generation -1), as an admin tool or a consumer with assign() does.
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "socket.timeout.ms": 5000, "log_level": 2})


def commit(c: Consumer, topic: str, offsets: dict[int, int]) -> bool:
    """True when the commit was acknowledged for every partition."""
    try:
        result = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    except KafkaException:
        return False
    return all(tp.error is None for tp in result)


def committed(c: Consumer, topic: str, partitions: int, timeout: float = 30.0) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=5)
            if all(tp.error is None for tp in got):
                return {tp.partition: tp.offset for tp in got}
            last = [tp.error for tp in got]
        except KafkaException as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"committed offsets not readable: {last}")


def test_acknowledged_commits_survive_coordinator_kills(cluster):
    topic, group, partitions = "orders", "billing", 3
    cluster.create_topic(topic, partitions)
    c = committer(cluster.bootstrap, group)
    try:
        # The first commit creates __consumer_offsets (COORDINATOR_NOT_AVAILABLE until it has leaders).
        deadline = time.monotonic() + 30
        while not commit(c, topic, {p: 0 for p in range(partitions)}):
            assert time.monotonic() < deadline, "no coordinator for the group"
            time.sleep(0.2)
        offsets_topic = cluster.partition_state("__consumer_offsets")
        assert len(offsets_topic) == OFFSETS_PARTITIONS
        assert all(len(replicas) == 3 for _, replicas, _ in offsets_topic.values())
        shard = offsets_partition(group)
        cluster.wait_partitions("__consumer_offsets", lambda s: len(s[shard][2]) == 3)

        acked = {p: 0 for p in range(partitions)}
        coordinators, failed_commits, rounds = [], 0, 3
        next_offset = 1
        for _ in range(rounds):
            coordinator = cluster.leader_of("__consumer_offsets", shard)
            coordinators.append(coordinator)
            # Commit for a while, then kill the coordinator without warning while commits go on.
            for _ in range(40):
                wanted = {p: next_offset + p for p in range(partitions)}
                next_offset += 10
                if commit(c, topic, wanted):
                    acked.update(wanted)
                else:
                    failed_commits += 1
            cluster.node(coordinator).kill9()
            end = time.monotonic() + 15
            while time.monotonic() < end:
                wanted = {p: next_offset + p for p in range(partitions)}
                next_offset += 10
                if commit(c, topic, wanted):
                    acked.update(wanted)
                    break  # a new coordinator took over
                failed_commits += 1
                time.sleep(0.1)
            else:
                raise AssertionError("no coordinator took over within 15 s")
            got = committed(c, topic, partitions)
            # Nothing acknowledged lost: what the coordinator serves is at least what was acknowledged
            # (commits go up, so "at least" is "exactly" unless a failed one was stored after all).
            assert all(got[p] >= acked[p] for p in range(partitions)), (got, acked)
            assert cluster.leader_of("__consumer_offsets", shard) != coordinator
            cluster.node(coordinator).start()
            cluster.wait_partitions("__consumer_offsets", lambda s: len(s[shard][2]) == 3)
        print(f"\ncoordinators killed: {coordinators}; acknowledged up to {acked}; "
              f"commits refused during failovers: {failed_commits}")
        assert len(set(coordinators)) >= 2
    finally:
        c.close()


def test_group_keeps_its_offsets_when_its_coordinator_dies(cluster):
    """A subscribed consumer commits as it goes; the coordinator dies; a new member of the group
    starts where the group was, not from the beginning (auto.offset.reset=earliest would show it)."""
    topic, group, partitions, count = "events", "readers", 3, 3000
    cluster.create_topic(topic, partitions)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5, "log_level": 2})
    for i in range(count):
        p.produce(topic, value=b"%06d" % i, partition=i % partitions)
    assert p.flush(60) == 0

    def consume(limit: int, timeout: float) -> list[bytes]:
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "session.timeout.ms": 6000, "log_level": 2})
        c.subscribe([topic])
        seen: list[bytes] = []
        deadline = time.monotonic() + timeout
        try:
            while len(seen) < limit and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is None or m.error():
                    continue
                seen.append(m.value())
                if len(seen) % 100 == 0 or len(seen) == limit:
                    c.commit(asynchronous=False)
        finally:
            c.close()
        return seen

    first = consume(count // 2, 60)
    assert len(first) == count // 2
    shard = offsets_partition(group)
    coordinator = cluster.leader_of("__consumer_offsets", shard)
    cluster.node(coordinator).kill9()
    cluster.wait_partitions("__consumer_offsets", lambda s: s[shard][0] not in (-1, coordinator))
    second = consume(count - len(first), 90)
    # Together they read everything exactly once: the second member started at the group's
    # committed offsets, which the new coordinator had.
    assert len(second) == count - len(first)
    assert sorted(first + second) == [b"%06d" % i for i in range(count)]
    cluster.node(coordinator).start()


def test_offsets_topic_is_internal_and_clients_cannot_write_it(cluster):
    c = committer(cluster.bootstrap, "g")
    try:
        deadline = time.monotonic() + 30
        cluster.create_topic("t", 1)
        while not commit(c, "t", {0: 5}):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        c.close()
    md = cluster.admin().list_topics(timeout=10)
    assert "__consumer_offsets" in md.topics
    errors = []
    p = Producer({"bootstrap.servers": cluster.bootstrap, "log_level": 2, "message.timeout.ms": 10000})
    p.produce("__consumer_offsets", value=b"x", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    # Kafka answers INVALID_TOPIC_EXCEPTION: "Cannot append to internal topic".
    assert len(errors) == 1 and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors


def test_offsets_partitions_are_compacted_and_replicas_follow():
    """Small segments (offsets.topic.segment.bytes 4 KiB) and a cleaner pass every 300 ms: after
    many commits the group's partition starts past its old records on every replica, and a new
    coordinator still serves the last acknowledged commit."""
    c = SluiceCluster(brokers=3, config={"default.replication.factor": "3", "min.insync.replicas": "2",
                                         "offsets.topic.segment.bytes": "4096", "log.cleaner.backoff.ms": "300"})
    try:
        c.start()
        topic, group, partitions = "t", "compacted", 2
        c.create_topic(topic, partitions)
        shard = offsets_partition(group)
        committing = committer(c.bootstrap, group)
        reader = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "reader", "log_level": 2})
        try:
            acked, deadline = {}, time.monotonic() + 30
            for i in range(300):
                wanted = {p: i * 10 + p for p in range(partitions)}
                if commit(committing, topic, wanted):
                    acked.update(wanted)
                else:
                    assert time.monotonic() < deadline
            assert acked == {p: 2990 + p for p in range(partitions)}
            low = high = 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                low, high = reader.get_watermark_offsets(TopicPartition("__consumer_offsets", shard), timeout=5)
                if low > 0:
                    break
                time.sleep(0.3)
            print(f"\n__consumer_offsets-{shard}: log start {low}, end {high} after 300 commits of {partitions}")
            assert low > 0, "the partition was never compacted"
            coordinator = c.leader_of("__consumer_offsets", shard)
            # Every replica follows the new log start: a follower learns it from its next fetch
            # answer (up to replica.fetch.wait.max.ms later; killing the leader before then raced it,
            # stop 34's clean-clone run), and drops the segments below it (checked on disk).
            replicas = c.partition_state("__consumer_offsets")[shard][1]
            deadline = time.monotonic() + 20
            while True:
                first_segment = {r: min((int(f.stem) for f in (c.node(r).data_dir / f"__consumer_offsets-{shard}")
                                         .glob("*.log")), default=0) for r in replicas}
                if all(base > 0 for base in first_segment.values()):
                    break
                assert time.monotonic() < deadline, f"a replica kept the compacted records: {first_segment}"
                time.sleep(0.2)
            c.node(coordinator).kill9()
            c.wait_partitions("__consumer_offsets", lambda s: s[shard][0] not in (-1, coordinator))
            # The new leader, a follower until now, follows the log start too.
            # (A new client: the first one keeps asking the dead leader for a while.)
            fresh = Consumer({"bootstrap.servers": c.live_bootstrap(), "group.id": "reader", "log_level": 2})
            new_low, _ = fresh.get_watermark_offsets(TopicPartition("__consumer_offsets", shard), timeout=10)
            fresh.close()
            assert new_low > 0
            assert committed(committing, topic, partitions) == acked
        finally:
            committing.close()
            reader.close()
    finally:
        c.cleanup()
