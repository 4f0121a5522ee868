"""kafka-python (pure Python client): produce/consume round trips, per codec."""
import pytest
from kafka import KafkaAdminClient, KafkaProducer

from harness import kp, kwire
from harness.data import check_partition, expected_by_partition

N = 100_000
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_100k(broker, unique_topic, codec):
    topic = unique_topic(f"kp-{codec}")
    kp.roundtrip(broker.bootstrap, topic, N, None if codec == "none" else codec)
    attrs = kwire.fetch_batch_attributes(broker.host, broker.port, topic, 0)
    kwire.assert_codec_used(attrs, codec)


def test_seek_middle(broker, unique_topic):
    topic = unique_topic("kp-seek")
    n = 3000
    kp.create_topic(broker.bootstrap, topic, 3)
    kp.produce(broker.bootstrap, topic, n)
    want = expected_by_partition(n)
    start = {0: 1, 1: 500, 2: 999}
    got = kp.consume(broker.bootstrap, topic, {p: len(want[p]) - start[p] for p in want}, start=start)
    for p in want:
        check_partition(p, got[p], want[p][start[p]:], first_offset=start[p])


def test_auto_create_on_produce(broker, unique_topic):
    topic = unique_topic("kp-auto")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", max_block_ms=30000)
    try:
        metas = [p.send(topic, key=b"k%d" % i, value=b"v%d" % i).get(timeout=30) for i in range(10)]
    finally:
        p.close(timeout=10)
    assert all(m.topic == topic for m in metas)
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert topic in a.list_topics()
    finally:
        a.close()
    counts = {}
    for m in metas:
        counts[m.partition] = counts.get(m.partition, 0) + 1
    got = kp.consume(broker.bootstrap, topic, counts, timeout=30)
    assert sorted(v for q in got for _, _, v, _ in got[q]) == sorted(b"v%d" % i for i in range(10))
