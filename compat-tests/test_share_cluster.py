"""Share groups in a cluster (issue 18): share-partition state is kept by the share coordinators in
__share_group_state (RF 3 here), so the partition leader's death loses no acknowledgement and hands
no accepted record out again. Sluice only: Kafka keeps the same topic, and its single-node side is
compared in test_share_groups.py.

A 3-broker cluster (a controller and three brokers, group.share.enable=true,
min.insync.replicas=2), a topic of 1 partition with RF 3, and Apache Kafka's KafkaShareConsumer
(kafka-clients 4.4.0, java44/JavaShare.java):
  - a consumer accepts k of n records (commitSync: answered once the share coordinator's record is
    on every in-sync replica) and dies holding the others; the partition leader is kill -9ed (and
    with it, when it was one, the share coordinator of the share-partition); once a new leader is
    elected, a new consumer gets exactly the n - k records that were not accepted: none of the
    accepted ones again, none lost (the checker reads every key back);
  - the killed broker comes back, the leadership is moved back to it by a preferred election, and
    a third consumer of the group gets nothing: the state it reads is the one the others wrote.
  - kafka-share-groups.sh against the cluster: --list, --describe (the start offsets the share
    coordinators hold), --reset-offsets --to-earliest (everything delivered again), --delete-offsets,
    --delete (the state goes from the share coordinators).
Every wait is bounded.
"""
from __future__ import annotations

import time

import pytest

from harness.cluster import SluiceCluster, sluice_only_fixture  # noqa: F401 (fixture)
from harness.kadmin_wire import Conn, elect_leaders
from test_share_groups import java44_libs, java_share, share_groups_tool_scenario  # noqa: F401 (fixture)

CONFIG = {"group.share.enable": "true", "default.replication.factor": "3", "min.insync.replicas": "2",
          "share.coordinator.state.topic.num.partitions": "3",
          "group.share.record.lock.duration.ms": "2000",
          # JVMs starting on 2 cores must not get brokers fenced by accident (the harness's 2 s).
          "broker.session.timeout.ms": "6000"}


def test_share_group_survives_leader_kill9(java44_libs):
    n, k = 300, 150
    topic, group = "t-share-kill", "g-share-kill"
    c = SluiceCluster(brokers=3, config=CONFIG)
    try:
        c.start()
        c.create_topic(topic, 1, 3)
        first = java_share(java44_libs, c.bootstrap, "share-accept-some", topic, group, str(n), str(k))
        accepted = set(first["accepted"])
        assert len(accepted) == k

        leader = c.leader_of(topic, 0)
        c.node(leader).kill9()
        c.wait_partitions(topic, lambda s: s[0][0] not in (-1, leader), timeout=30)
        rest = java_share(java44_libs, c.live_bootstrap(), "share-drain", topic, group, str(n - k))
        drained = rest["drained"]
        again = accepted & set(drained)
        assert not again, f"accepted records delivered again after the leader's kill -9: {sorted(again)[:10]}"
        assert len(drained) == len(set(drained)) == n - k, f"{len(drained)} drained, {len(set(drained))} distinct"
        assert accepted | set(drained) == {f"k{i}" for i in range(n)}

        # The old leader returns and leads again: its share-partition is read from the coordinator.
        c.node(leader).start()
        c.wait_partitions(topic, lambda s: leader in s[0][2], timeout=60)
        conn = Conn(c.live_bootstrap().split(",")[0])
        try:
            deadline = time.monotonic() + 30
            while c.leader_of(topic, 0) != c.partition_state(topic)[0][1][0]:
                assert time.monotonic() < deadline, "no preferred leader elected"
                elect_leaders(conn, {topic: [0]})
                time.sleep(0.5)
        finally:
            conn.close()
        last = java_share(java44_libs, c.live_bootstrap(), "share-drain", topic, group, "0")
        assert last["drained"] == [], f"records delivered again: {last['drained'][:10]}"
    finally:
        c.cleanup()


def test_kafka_share_groups_tool_in_a_cluster(java44_libs):
    c = SluiceCluster(brokers=3, config=CONFIG)
    try:
        c.start()
        c.create_topic("t-share-tool", 1, 3)
        share_groups_tool_scenario(java44_libs, c.bootstrap, "t-share-tool", "g-share-tool", lag_known=False)
    finally:
        c.cleanup()
