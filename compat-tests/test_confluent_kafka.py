"""confluent-kafka (librdkafka bundled in the PyPI wheel): produce/consume round trips, per codec."""
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from harness import ck, kwire
from harness.data import check_partition, expected_by_partition

N = 100_000
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_100k(broker, unique_topic, codec):
    topic = unique_topic(f"ck-{codec}")
    ck.roundtrip(broker.bootstrap, topic, N, codec)
    # The broker keeps the batches as the producer compressed them.
    attrs = kwire.fetch_batch_attributes(broker.host, broker.port, topic, 0)
    kwire.assert_codec_used(attrs, codec)


def test_seek_middle(broker, unique_topic):
    topic = unique_topic("ck-seek")
    n = 3000
    ck.create_topic(broker.bootstrap, topic, 3)
    ck.produce(broker.bootstrap, topic, n)
    want = expected_by_partition(n)
    start = {0: 500, 1: 999, 2: 0}
    got = ck.consume(broker.bootstrap, topic, {p: len(want[p]) - start[p] for p in want}, start=start)
    for p in want:
        check_partition(p, got[p], want[p][start[p]:], first_offset=start[p])


def test_auto_create_on_produce(broker, unique_topic):
    topic = unique_topic("ck-auto")
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert topic not in md.topics
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "message.timeout.ms": 30000})
    delivered = []
    for i in range(10):
        p.produce(topic, value=b"v%d" % i, key=b"k%d" % i,
                  on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())))
    assert p.flush(30) == 0
    assert len(delivered) == 10 and all(e is None for e, _, _ in delivered), delivered
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic=topic, timeout=10)
    t = md.topics[topic]
    assert t.error is None and len(t.partitions) >= 1
    total = {}
    for _, part, _ in delivered:
        total[part] = total.get(part, 0) + 1
    got = ck.consume(broker.bootstrap, topic, total, timeout=30)
    assert sorted(v for p in got for _, _, v, _ in got[p]) == sorted(b"v%d" % i for i in range(10))
