"""OffsetForLeaderEpoch (API 23, KIP-320) on the raw wire, v2 (classic) and v4 (flexible), on
both brokers: a single node's partition is led in epoch 0 from its creation, so the end of epoch
0 is the log end; an epoch past the leader's is undefined (-1, -1); the current leader epoch is
checked as Fetch checks it (a newer one: UNKNOWN_LEADER_EPOCH, 75), and an unknown partition gets
UNKNOWN_TOPIC_OR_PARTITION (3)."""
from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from harness import ck
from harness.kwire import KafkaConn, compact_string, i32, string, uvarint

UNKNOWN_TOPIC_OR_PARTITION = 3
UNKNOWN_LEADER_EPOCH = 75


def offset_for_leader_epoch(bootstrap: str, version: int, topic: str,
                            partitions: list[tuple[int, int, int]]) -> dict[int, tuple[int, int, int]]:
    """[(partition, current leader epoch, leader epoch)] -> {partition: (error, epoch, end offset)}."""
    flexible = version >= 4
    body = i32(-1) if version >= 3 else b""  # replica id: a consumer
    if flexible:
        body += uvarint(2) + compact_string(topic) + uvarint(len(partitions) + 1)
        for p, current, epoch in partitions:
            body += i32(p) + i32(current) + i32(epoch) + b"\x00"
        body += b"\x00" + b"\x00"
    else:
        body += i32(1) + string(topic) + i32(len(partitions))
        for p, current, epoch in partitions:
            body += i32(p) + i32(current) + i32(epoch)
    with KafkaConn.to(bootstrap) as conn:
        r = conn.request(23, version, body, flexible)
        r.i32()  # throttle
        out = {}
        topics = r.uvarint() - 1 if flexible else r.i32()
        for _ in range(topics):
            r.compact_string() if flexible else r.string()
            count = r.uvarint() - 1 if flexible else r.i32()
            for _ in range(count):
                error, partition, epoch, end = r.i16(), r.i32(), r.i32(), r.i64()
                if flexible:
                    r.skip_tags()
                out[partition] = (error, epoch, end)
            if flexible:
                r.skip_tags()
        return out


def test_end_offsets_of_epochs(broker, unique_topic):
    topic = unique_topic("ofle")
    ck.create_topic(broker.bootstrap, topic, 3)
    ck.produce(broker.bootstrap, topic, 300)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ofle"})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(2)}
    finally:
        c.close()
    assert all(end > 0 for end in ends.values())
    for version in (2, 3, 4):
        got = offset_for_leader_epoch(broker.bootstrap, version, topic, [(0, -1, 0), (1, 0, 0), (5, -1, 0)])
        assert got[0] == (0, 0, ends[0]), (version, got)
        assert got[1] == (0, 0, ends[1]), (version, got)
        assert got[5][0] == UNKNOWN_TOPIC_OR_PARTITION, (version, got)
        later = offset_for_leader_epoch(broker.bootstrap, version, topic, [(0, -1, 7), (1, 3, 0)])
        assert later[0] == (0, -1, -1), (version, later)
        assert later[1][0] == UNKNOWN_LEADER_EPOCH, (version, later)
