"""Admin operations through confluent-kafka's AdminClient and kafka-python's KafkaAdminClient:
create/delete topics, create partitions, describe configs and cluster, list offsets; plus
metadata-driven auto-creation on the raw wire."""
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewPartitions, NewTopic, OffsetSpec

from harness import ck, kadmin_wire, kp, kwire

T = 30  # seconds, every admin call


def _admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def _err_code(fut):
    with pytest.raises(KafkaException) as ei:
        fut.result(T)
    return ei.value.args[0].code()


def _wait(pred, what, timeout=T):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _partition_count(a, topic):
    t = a.list_topics(topic=topic, timeout=10).topics.get(topic)
    return None if t is None or t.error is not None else len(t.partitions)


def _topic_listed(a, topic):
    return topic in a.list_topics(timeout=10).topics


def test_create_describe_delete_topic(broker, unique_topic):
    a = _admin(broker)
    topic = unique_topic("adm")
    fs = a.create_topics([NewTopic(topic, 3, 1, config={"retention.ms": "123456"})],
                         operation_timeout=T, request_timeout=T)
    fs[topic].result(T)
    ck.wait_topic(broker.bootstrap, topic, 3)
    # Creating it again: TOPIC_ALREADY_EXISTS.
    assert _err_code(a.create_topics([NewTopic(topic, 3, 1)])[topic]) == KafkaError.TOPIC_ALREADY_EXISTS
    # Topic configs: the override and a default.
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    cfg = a.describe_configs([res])[res].result(T)
    assert cfg["retention.ms"].value == "123456"
    assert cfg["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["cleanup.policy"].is_default
    # Delete, then it is gone from metadata.
    a.delete_topics([topic], operation_timeout=T, request_timeout=T)[topic].result(T)
    _wait(lambda: not _topic_listed(a, topic), f"{topic} to disappear")
    # Deleting an unknown topic: UNKNOWN_TOPIC_OR_PART.
    assert _err_code(a.delete_topics([topic])[topic]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_topic_invalid_arguments(broker, unique_topic):
    a = _admin(broker)
    t0, t3 = unique_topic("adm-p0"), unique_topic("adm-rf3")
    assert _err_code(a.create_topics([NewTopic(t0, 0, 1)])[t0]) == KafkaError.INVALID_PARTITIONS
    assert _err_code(a.create_topics([NewTopic(t3, 1, 3)])[t3]) == KafkaError.INVALID_REPLICATION_FACTOR
    assert not _topic_listed(a, t0) and not _topic_listed(a, t3)


def test_create_partitions(broker, unique_topic):
    a = _admin(broker)
    topic = unique_topic("adm-parts")
    ck.create_topic(broker.bootstrap, topic, 3)
    ck.produce(broker.bootstrap, topic, 300)
    a.create_partitions([NewPartitions(topic, 5)], operation_timeout=T, request_timeout=T)[topic].result(T)
    _wait(lambda: _partition_count(a, topic) == 5, f"{topic} to have 5 partitions")
    # Not an increase: INVALID_PARTITIONS.
    assert _err_code(a.create_partitions([NewPartitions(topic, 4)])[topic]) == KafkaError.INVALID_PARTITIONS
    # The new partitions take writes; the old data is still there.
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for part in (3, 4):
        p.produce(topic, value=b"new-%d" % part, partition=part)
    assert p.flush(T) == 0
    got = ck.consume(broker.bootstrap, topic, {0: 100, 3: 1, 4: 1}, timeout=T)
    assert [v for _, _, v, _ in got[3]] == [b"new-3"] and [v for _, _, v, _ in got[4]] == [b"new-4"]


def test_oversized_partition_requests_are_refused(broker, unique_topic):
    """Kafka's controller turns one request into at most 10,000 metadata records. CreateTopics
    over that is refused whole with POLICY_VIOLATION; CreatePartitions gives UNKNOWN_SERVER_ERROR
    to the topic that would go past it (and those after it). A count of 2^31-1 creates nothing."""
    a = _admin(broker)
    t1, t2, t3 = unique_topic("big1"), unique_topic("big2"), unique_topic("big3")

    def codes(futs):
        out = {}
        for name, fut in futs.items():
            try:
                fut.result(T)
                out[name] = 0
            except KafkaException as e:
                out[name] = e.args[0].code()
        return out

    def create(topics):
        return codes(a.create_topics(topics, validate_only=True, request_timeout=T))

    # Partitions asked for, over every topic of the request: more than 10,000 fails them all.
    assert create([NewTopic(t1, 4000, 1), NewTopic(t2, 4000, 1), NewTopic(t3, 2001, 1)]) == \
        {t1: KafkaError.POLICY_VIOLATION, t2: KafkaError.POLICY_VIOLATION, t3: KafkaError.POLICY_VIOLATION}
    # Records (topic + partitions + configs) of what would be created: 10,000 pass, 10,001 do not.
    assert create([NewTopic(t1, 9998, 1, config={"retention.ms": "1000"})]) == {t1: 0}
    assert create([NewTopic(t1, 9999, 1, config={"retention.ms": "1000"})]) == {t1: KafkaError.POLICY_VIOLATION}
    assert create([NewTopic(t1, 5000, 1), NewTopic(t2, 5000, 1)]) == \
        {t1: KafkaError.POLICY_VIOLATION, t2: KafkaError.POLICY_VIOLATION}
    # A topic that fails on its own adds no records.
    assert create([NewTopic(t1, 5000, 3), NewTopic(t2, 5000, 1)]) == {t1: KafkaError.INVALID_REPLICATION_FACTOR, t2: 0}

    ck.create_topic(broker.bootstrap, t1, 2)
    ck.create_topic(broker.bootstrap, t2, 1)
    with kadmin_wire.Conn(broker.bootstrap) as c:
        # 10,000 new partitions pass; one more does not.
        assert kadmin_wire.create_partitions(c, {t1: 10_002}, validate_only=True) == {t1: (0, None)}
        assert kadmin_wire.create_partitions(c, {t1: 10_003}, validate_only=True) == {t1: (-1, None)}
        # Counted across the request's topics (Kafka takes them in an order of its own).
        answers = kadmin_wire.create_partitions(c, {t1: 6_002, t2: 6_001}, validate_only=True)
        assert sorted(answers.values(), key=lambda a: a[0]) == [(-1, None), (0, None)]
        # For real: the largest count there is, then a topic that asks for one more.
        assert kadmin_wire.create_partitions(c, {t1: 2**31 - 1, t2: 2}) == {t1: (-1, None), t2: (-1, None)}
    assert _partition_count(a, t1) == 2 and _partition_count(a, t2) == 1
    assert 37 in kwire.api_versions(broker.host, broker.port, timeout=5)


def test_describe_cluster(broker):
    a = _admin(broker)
    dc = a.describe_cluster(request_timeout=T).result(T)
    assert dc.cluster_id
    assert [(n.id, n.host, n.port) for n in dc.nodes] == [(1, "127.0.0.1", broker.port)]
    assert dc.controller is not None and dc.controller.id == 1


def test_describe_broker_configs(broker):
    a = _admin(broker)
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    cfg = a.describe_configs([res])[res].result(T)
    assert cfg["log.dirs"].value == str(broker.data_dir)
    assert cfg["auto.create.topics.enable"].value == "true"
    for key, default in [("log.segment.bytes", "1073741824"), ("message.max.bytes", "1048588"),
                         ("socket.request.max.bytes", "104857600"), ("log.retention.hours", "168")]:
        assert cfg[key].value == default, (key, cfg[key].value)
        assert cfg[key].is_default, key


def test_dynamic_broker_configs(broker):
    """The replication throttles (kafka-reassign-partitions.sh --throttle) set, described and
    deleted at run time, for one broker and for every broker (resource name "")."""
    a = _admin(broker)
    key = "leader.replication.throttled.rate"
    SET, DELETE, INVALID_REQUEST = 0, 1, 42

    def alter(name: str, op: int, value: str | None = None):
        with kadmin_wire.Conn(broker.bootstrap) as conn:
            answer = kadmin_wire.incremental_alter_configs(conn, [(4, name, [(key, op, value)])])[0]
        return answer.error, answer.message

    def described():
        res = ConfigResource(ConfigResource.Type.BROKER, "1")
        entry = a.describe_configs([res])[res].result(T).get(key)
        return None if entry is None else (entry.value, entry.source)

    def described_soon(expected):
        # Kafka's broker applies a change when the metadata log reaches it, a moment after the answer.
        deadline = time.monotonic() + 10
        while described() != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        return described()

    before = described()
    assert alter("", SET, "2000000") == (0, None)
    assert alter("1", SET, "1000000") == (0, None)
    assert described_soon(("1000000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)) == ("1000000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert alter("1", DELETE) == (0, None)
    assert described_soon(("2000000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)) == (
        "2000000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    assert alter("", DELETE) == (0, None)
    assert described_soon(before) == before
    assert before is None  # listed only when set
    # A value that is not a number of bytes; another broker's config sent to this one.
    assert alter("1", SET, "fast") == (
        INVALID_REQUEST, f"Invalid value fast for configuration {key}: Not a number of type LONG")
    assert alter("77", SET, "1") == (INVALID_REQUEST, "Unexpected broker id, expected 1, but received 77")


@pytest.mark.parametrize("version", [1, 3, 4])
def test_describe_log_dirs(broker, unique_topic, version):
    """kafka-log-dirs.sh's request: the broker's log dir, each partition's size, its lag."""
    topic = unique_topic("logdirs")
    ck.create_topic(broker.bootstrap, topic, 3)
    ck.produce(broker.bootstrap, topic, 300)  # 100 per partition
    with kadmin_wire.Conn(broker.bootstrap) as conn:
        top, dirs = kadmin_wire.describe_log_dirs(conn, None, version)
        assert top == 0 and len(dirs) == 1, dirs
        d = dirs[0]
        assert d.error == 0 and Path(d.path).resolve() == Path(broker.data_dir).resolve(), d.path
        for p in (0, 1, 2):
            size, lag = d.partitions[(topic, p)]
            assert size > 100 * 10 and lag == 0, (p, size, lag)
        if version >= 4:
            assert d.total_bytes > d.usable_bytes > 0, d
        # Only what is asked for; a partition not held here is left out.
        _, dirs = kadmin_wire.describe_log_dirs(conn, {topic: [1, 9]}, version)
        assert set(dirs[0].partitions) == {(topic, 1)}, dirs[0].partitions


def test_list_offsets(broker, unique_topic):
    a = _admin(broker)
    topic = unique_topic("adm-offsets")
    ck.create_topic(broker.bootstrap, topic, 3)
    ck.produce(broker.bootstrap, topic, 300)  # 100 per partition
    specs = {}
    for p in range(3):
        specs[TopicPartition(topic, p, -2)] = OffsetSpec.earliest()
    res = a.list_offsets(specs, request_timeout=T)
    for tp, fut in res.items():
        assert fut.result(T).offset == 0, tp
    res = a.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(3)}, request_timeout=T)
    for tp, fut in res.items():
        assert fut.result(T).offset == 100, tp
    # The consumer's view (ListOffsets from librdkafka's consumer): watermarks.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "compat-wm"})
    try:
        for p in range(3):
            assert c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) == (0, 100)
    finally:
        c.close()
    # An empty topic: earliest == latest == 0.
    empty = unique_topic("adm-empty")
    ck.create_topic(broker.bootstrap, empty, 1)
    res = a.list_offsets({TopicPartition(empty, 0): OffsetSpec.latest()}, request_timeout=T)
    assert res[TopicPartition(empty, 0)].result(T).offset == 0


def test_kafka_python_admin(broker, unique_topic):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KPConfigResource, ConfigResourceType, NewPartitions as KPNewPartitions
    from kafka.admin import NewTopic as KPNewTopic
    topic = unique_topic("kp-adm")
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=T * 1000)
    try:
        a.create_topics([KPNewTopic(topic, 2, 1, topic_configs={"retention.ms": "654321"})], timeout_ms=T * 1000)
        _wait(lambda: topic in a.list_topics(), f"{topic} listed")
        desc = a.describe_configs([KPConfigResource(ConfigResourceType.TOPIC, topic)])
        text = repr(desc)
        assert "654321" in text, text[:2000]
        a.create_partitions({topic: KPNewPartitions(4)}, timeout_ms=T * 1000)
        _wait(lambda: _partition_count(_admin(broker), topic) == 4, f"{topic} to have 4 partitions")
        a.delete_topics([topic], timeout_ms=T * 1000)
        _wait(lambda: topic not in a.list_topics(), f"{topic} deleted")
    finally:
        a.close()


def _metadata_v4_topics(broker, topics, allow_auto_create):
    body = kwire.i32(len(topics)) + b"".join(kwire.string(t) for t in topics) + kwire.i8(1 if allow_auto_create else 0)
    with kwire.connect(broker.host, broker.port) as s:
        r = kwire.Reader(kwire.roundtrip(s, kwire.header_v1(3, 4, 31) + body))
    assert r.i32() == 31
    r.i32()  # throttle
    for _ in range(r.i32()):  # brokers: node_id, host, port, rack
        r.i32(); r.string(); r.i32(); r.string()
    r.string()  # cluster id
    r.i32()  # controller id
    out = {}
    for _ in range(r.i32()):
        err = r.i16(); name = r.string(); r.i8()  # is_internal
        nparts = r.i32()
        for _ in range(nparts):
            r.i16(); r.i32(); r.i32()  # error, partition, leader
            for _ in range(r.i32()): r.i32()  # replicas
            for _ in range(r.i32()): r.i32()  # isr
        out[name] = (err, nparts)
    return out


def test_metadata_auto_create(broker, unique_topic):
    topic = unique_topic("md-auto")
    off = unique_topic("md-noauto")
    # allow_auto_topic_creation=false: UNKNOWN_TOPIC_OR_PARTITION, nothing created.
    assert _metadata_v4_topics(broker, [off], False)[off][0] == 3
    # allow_auto_topic_creation=true: created. The first answer may already be the topic, or
    # LEADER_NOT_AVAILABLE, or (Kafka 3.9 KRaft does this) UNKNOWN_TOPIC_OR_PARTITION.
    err, _ = _metadata_v4_topics(broker, [topic], True)[topic]
    assert err in (0, 3, 5), err
    _wait(lambda: _metadata_v4_topics(broker, [topic], True)[topic] == (0, 1), f"{topic} auto-created")
    assert _metadata_v4_topics(broker, [off], False)[off][0] == 3


def test_metadata_auto_create_over_the_record_bound_creates_nothing(broker, unique_topic):
    """5,001 unknown topics of one partition each would take 10,002 metadata records, more than
    Kafka's controller takes for one request: none is created, each is UNKNOWN_TOPIC_OR_PARTITION."""
    prefix = unique_topic("md-many")
    names = [f"{prefix}-{i}" for i in range(5001)]
    assert set(_metadata_v4_topics(broker, names, True).values()) == {(3, 0)}
    time.sleep(1)  # Kafka creates asynchronously: give it the time it would take
    assert set(_metadata_v4_topics(broker, names[:20] + names[-20:], False).values()) == {(3, 0)}


# Every topic-level config Kafka 3.9 describes (TopicConfig); DescribeConfigs must list each
# one with its value and where that value comes from.
KAFKA_TOPIC_CONFIGS = [
    "cleanup.policy", "compression.type", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.downconversion.enable", "message.format.version",
    "message.timestamp.after.max.ms", "message.timestamp.before.max.ms", "message.timestamp.difference.max.ms",
    "message.timestamp.type", "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas",
    "preallocate", "remote.storage.enable", "retention.bytes", "retention.ms", "segment.bytes",
    "segment.index.bytes", "segment.jitter.ms", "segment.ms", "unclean.leader.election.enable",
]


def test_topic_configs_complete_with_defaults_and_sources(broker, unique_topic):
    a = _admin(broker)
    topic = unique_topic("allcfg")
    a.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": "1048576"})],
                    operation_timeout=T, request_timeout=T)[topic].result(T)
    # Kafka's brokers learn of a new topic after CreateTopics answers: until then, UNKNOWN_TOPIC.
    ck.wait_topic(broker.bootstrap, topic, 1)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    cfg = a.describe_configs([res])[res].result(T)
    missing = [name for name in KAFKA_TOPIC_CONFIGS if name not in cfg]
    assert not missing, f"configs not described: {missing}"
    assert cfg["segment.bytes"].value == "1048576" and cfg["segment.bytes"].source == 1  # DYNAMIC_TOPIC_CONFIG
    for name in KAFKA_TOPIC_CONFIGS:
        if name == "segment.bytes":
            continue
        assert cfg[name].source == 5, (name, cfg[name].source)  # DEFAULT_CONFIG: nothing overrides it here
        assert cfg[name].is_default, name
    for name, default in [("retention.ms", "604800000"), ("max.message.bytes", "1048588"),
                          ("cleanup.policy", "delete"), ("min.insync.replicas", "1"),
                          ("message.timestamp.type", "CreateTime"), ("retention.bytes", "-1")]:
        assert cfg[name].value == default, (name, cfg[name].value)
