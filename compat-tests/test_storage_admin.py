"""Storage admin APIs on the session broker, the same against Sluice and Kafka 3.9.1 (issue 5):
DeleteRecords v0..v2, ListOffsets v1..v7 by timestamp / earliest / latest / max timestamp,
IncrementalAlterConfigs v0..v1 and AlterConfigs v0..v2 on topic configs as DescribeConfigs then
shows them; plus the same operations through confluent-kafka's and kafka-python's admin clients.
Retention, segment rolling and persistence across a restart are in test_storage_lifecycle.py.

Kafka 3.9.1's answers, measured (what the tests assert):
  DeleteRecords  offset N inside the log: low watermark N (need not be a batch boundary); ListOffsets
                 earliest and Fetch's log_start_offset say N; Fetch below N: OFFSET_OUT_OF_RANGE (1);
                 N below the current low watermark (or equal): no-op, error 0, the current low watermark;
                 -1: the high watermark; N > high watermark, or a negative N other than -1:
                 OFFSET_OUT_OF_RANGE (1) with low watermark -1; unknown partition or topic:
                 UNKNOWN_TOPIC_OR_PARTITION (3) with low watermark -1; results per partition.
  ListOffsets    timestamp t (v1+): the first offset, in log order, whose record timestamp >= t, and
                 that record's timestamp (across segments, inside batches, never below the log start
                 offset); t beyond every record: offset -1, timestamp -1, error 0; -2/-1: log start
                 offset / log end offset with timestamp -1; -3 (max timestamp): v7 gives the offset
                 and timestamp of the record with the largest timestamp, v1..v6 give
                 UNSUPPORTED_VERSION (35) for that partition; on an empty partition -3 and any
                 timestamp give offset -1, timestamp -1.
                 Not asserted (Kafka quirks): a timestamp lookup searches only the first segment
                 whose largest timestamp reaches the target, so while a segment lying wholly below
                 the log start offset (after DeleteRecords) is still on disk, lookups that land in it
                 answer -1; and -3 keeps answering a record below the log start offset after
                 DeleteRecords. v0 (Sluice serves v1+) answers old_style_offsets of segment base
                 offsets chosen by file mtime, e.g. [] for a timestamp between records.
  Incremental-   SET / DELETE / APPEND / SUBTRACT per key; sources DYNAMIC_TOPIC_CONFIG (1) after SET,
  AlterConfigs   DEFAULT_CONFIG (5) after DELETE; DELETE of an unset key, APPEND of a present list
                 item and SUBTRACT of an absent one: error 0, nothing changes; invalid value, value
                 below the minimum (segment.bytes 13 < 14, segment.ms 0 < 1, retention.ms -2 < -1),
                 unknown enum, APPEND/SUBTRACT on a non-list key, unknown or broker-only config name:
                 INVALID_CONFIG (40) with an error message; null value for SET or a key twice in one
                 resource: INVALID_REQUEST (42); unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3), also
                 with validate_only; one invalid key fails the whole resource (nothing applied), other
                 resources in the request are independent; validate_only changes nothing.
  AlterConfigs   the listed configs become the topic's whole set of overrides (others back to
                 DEFAULT_CONFIG; an empty list clears them all); errors as above.
  Kafka applies config changes through its metadata log: DescribeConfigs may show the old value for
  a moment after the alter answered, so the tests poll (bounded) for the new one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, OffsetSpec

from harness import ck
from harness.kadmin_wire import (APPEND, DEFAULT_CONFIG, DELETE, DYNAMIC_TOPIC_CONFIG, EARLIEST, INVALID_CONFIG,
                                 INVALID_REQUEST, LATEST, MAX_TIMESTAMP, NONE, OFFSET_OUT_OF_RANGE, SET, SUBTRACT,
                                 TOPIC, UNKNOWN_TOPIC_OR_PARTITION, UNSUPPORTED_VERSION, AlterAnswer, Conn,
                                 alter_configs, delete_records, describe_configs, fetch, incremental_alter_configs,
                                 list_offsets, now_ms, produce_batch, read_log, wait_for)
from harness.subprocs import run_bounded

pytestmark = pytest.mark.storage_admin

T = 30.0  # seconds: every admin call and every wait
LIST_OFFSETS_VERSIONS = range(1, 8)  # what both brokers serve (Kafka 0..9, Sluice 1..7)


def _batches_of_four(conn: Conn, topic: str, n: int, partition: int = 0) -> list[int]:
    """n batches of 4 records (offsets 4i..4i+3); returns the base offsets."""
    return [produce_batch(conn, topic, [b"r%d-%d" % (i, j) for j in range(4)], partition=partition)
            for i in range(n)]


def _earliest_latest(conn: Conn, topic: str, version: int, partition: int = 0) -> tuple[int, int]:
    ans = list_offsets(conn, topic, {partition: EARLIEST}, version)[partition]
    assert ans.error == NONE, (version, ans)
    end = list_offsets(conn, topic, {partition: LATEST}, version)[partition]
    assert end.error == NONE, (version, end)
    return ans.offset, end.offset


# ----------------------------------------------------------------------------------- DeleteRecords
@pytest.mark.parametrize("version", [0, 1, 2])
def test_delete_records(broker, unique_topic, version):
    """DeleteRecords v0/v1/v2 (v2 flexible): deleting before offset N makes N the low watermark,
    which ListOffsets earliest (every version) and Fetch's log start offset report; Fetch below it
    is OFFSET_OUT_OF_RANGE; moving it back down is a no-op answering the current low watermark;
    -1 means the high watermark; beyond the high watermark, or another negative offset, is
    OFFSET_OUT_OF_RANGE; unknown topics and partitions get UNKNOWN_TOPIC_OR_PARTITION, each
    partition answered on its own; producing carries on after everything was deleted."""
    topic = unique_topic(f"delrec-v{version}")
    ck.create_topic(broker.bootstrap, topic, partitions=2)
    with Conn(broker.bootstrap) as c:
        assert _batches_of_four(c, topic, 5) == [0, 4, 8, 12, 16]

        # Inside the batch 4..7: the low watermark need not be a batch boundary.
        assert delete_records(c, {topic: {0: 6}}, version) == {(topic, 0): (NONE, 6)}
        for v in LIST_OFFSETS_VERSIONS:
            assert _earliest_latest(c, topic, v) == (6, 20), v
        assert fetch(c, topic, 5).error == OFFSET_OUT_OF_RANGE
        assert fetch(c, topic, 0).error == OFFSET_OUT_OF_RANGE
        at6 = fetch(c, topic, 6)
        assert at6.error == NONE and at6.log_start_offset == 6 and at6.high_watermark == 20
        assert at6.batches[0][0] <= 6 <= at6.batches[0][1]  # the batch holding offset 6, whole
        assert [r.offset for r in read_log(c, topic, 6).records if r.offset >= 6] == list(range(6, 20))

        # Lower or equal: nothing moves back, the answer is the current low watermark.
        assert delete_records(c, {topic: {0: 3}}, version) == {(topic, 0): (NONE, 6)}
        assert delete_records(c, {topic: {0: 6}}, version) == {(topic, 0): (NONE, 6)}
        # Beyond the high watermark, or a negative offset other than -1: OFFSET_OUT_OF_RANGE.
        assert delete_records(c, {topic: {0: 21}}, version) == {(topic, 0): (OFFSET_OUT_OF_RANGE, -1)}
        assert delete_records(c, {topic: {0: -2}}, version) == {(topic, 0): (OFFSET_OUT_OF_RANGE, -1)}
        assert _earliest_latest(c, topic, 7) == (6, 20)
        # Up to the high watermark exactly, then -1 (= the high watermark) on an emptied log.
        assert delete_records(c, {topic: {0: 12}}, version) == {(topic, 0): (NONE, 12)}
        assert delete_records(c, {topic: {0: -1}}, version) == {(topic, 0): (NONE, 20)}
        assert _earliest_latest(c, topic, 7) == (20, 20)
        assert fetch(c, topic, 19).error == OFFSET_OUT_OF_RANGE
        empty = fetch(c, topic, 20)
        assert empty.error == NONE and empty.batches == [] and empty.log_start_offset == 20

        # The empty partition 1: 0 and -1 are its high watermark; 1 is beyond it.
        assert delete_records(c, {topic: {1: 0}}, version) == {(topic, 1): (NONE, 0)}
        assert delete_records(c, {topic: {1: -1}}, version) == {(topic, 1): (NONE, 0)}
        assert delete_records(c, {topic: {1: 1}}, version) == {(topic, 1): (OFFSET_OUT_OF_RANGE, -1)}

        # Unknown partition and topic, beside a good partition in the same request.
        missing = unique_topic("delrec-missing")
        assert delete_records(c, {topic: {0: 20, 7: 1}, missing: {0: 0}}, version) == {
            (topic, 0): (NONE, 20), (topic, 7): (UNKNOWN_TOPIC_OR_PARTITION, -1),
            (missing, 0): (UNKNOWN_TOPIC_OR_PARTITION, -1)}

        # Appends go on at the old end, readable from the new log start.
        assert produce_batch(c, topic, [b"after"]) == 20
        after = fetch(c, topic, 20)
        assert after.error == NONE and [(r.offset, r.value) for r in after.records] == [(20, b"after")]
        assert _earliest_latest(c, topic, 7) == (20, 21)


def test_delete_records_confluent_kafka(broker, unique_topic):
    """confluent-kafka's AdminClient.delete_records: the low watermark comes back per partition,
    the consumer's watermarks follow, and an offset beyond the high watermark fails with
    OFFSET_OUT_OF_RANGE."""
    topic = unique_topic("delrec-ck")
    ck.create_topic(broker.bootstrap, topic, partitions=2)
    with Conn(broker.bootstrap) as c:
        _batches_of_four(c, topic, 3, partition=0)
        _batches_of_four(c, topic, 2, partition=1)
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = a.delete_records([TopicPartition(topic, 0, 5), TopicPartition(topic, 1, -1)],
                          request_timeout=T, operation_timeout=T)
    got = {tp.partition: f.result(T).low_watermark for tp, f in fs.items()}
    assert got == {0: 5, 1: 8}
    fs = a.delete_records([TopicPartition(topic, 0, 13)], request_timeout=T, operation_timeout=T)
    with pytest.raises(KafkaException) as ei:
        list(fs.values())[0].result(T)
    assert ei.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "compat-delrec"})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (5, 12)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10) == (8, 8)
    finally:
        c.close()


def test_delete_records_kafka_python(broker, unique_topic):
    """kafka-python's KafkaAdminClient.delete_records: the low watermark per partition, and
    OffsetOutOfRangeError for an offset beyond the high watermark."""
    from kafka import KafkaAdminClient
    from kafka.errors import OffsetOutOfRangeError
    from kafka.structs import TopicPartition as KPTopicPartition
    topic = unique_topic("delrec-kp")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    tp = KPTopicPartition(topic, 0)
    with Conn(broker.bootstrap) as c:
        _batches_of_four(c, topic, 3)
        a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=int(T * 1000))
        try:
            res = a.delete_records({tp: 7}, timeout_ms=int(T * 1000))
            assert res[tp]["low_watermark"] == 7 and res[tp]["error_code"] == NONE, res
            with pytest.raises(OffsetOutOfRangeError):
                a.delete_records({tp: 13}, timeout_ms=int(T * 1000))
        finally:
            a.close()
        assert _earliest_latest(c, topic, 7) == (7, 12)


# ----------------------------------------------------------------------------------- ListOffsets
def test_list_offsets_by_timestamp_across_segments(broker, unique_topic):
    """ListOffsets v1..v7 by timestamp over 8 batches of 5 records with distinct, increasing
    timestamps, in 2 KB segments (several segments, several batches each): for a record's exact
    timestamp, and for one between it and the previous record's, the answer is that record's
    offset and timestamp; before every record, the first record; beyond every record, offset -1
    and timestamp -1 without error. After DeleteRecords the answers never go below the new log
    start offset. Earliest and latest carry timestamp -1."""
    topic = unique_topic("lo-ts")
    ck.create_topic(broker.bootstrap, topic, partitions=1, config={"segment.bytes": "2048"})
    base_ts = now_ms() - 3_600_000
    ts = [base_ts + 1000 * i for i in range(40)]
    with Conn(broker.bootstrap) as c:
        for b in range(8):
            produce_batch(c, topic, [b"%03d" % i + b"." * 150 for i in range(5 * b, 5 * b + 5)], ts[5 * b:5 * b + 5])
        stored = read_log(c, topic, 0)
        assert [(r.offset, r.timestamp) for r in stored.records] == list(enumerate(ts))
        for v in LIST_OFFSETS_VERSIONS:
            def at(t):
                a = list_offsets(c, topic, {0: t}, v)[0]
                assert a.error == NONE, (v, t, a)
                return a.offset, a.timestamp
            for i in (0, 1, 4, 5, 13, 24, 31, 39):
                assert at(ts[i]) == (i, ts[i]), (v, i)
                assert at(ts[i] - 500) == (i, ts[i]), (v, i)
            assert at(base_ts - 10_000) == (0, ts[0]), v
            assert at(ts[-1] + 1) == (-1, -1), v
            assert at(now_ms() + 3_600_000) == (-1, -1), v
            assert at(EARLIEST) == (0, -1) and at(LATEST) == (40, -1), v

        # Inside the first batch (so inside the first segment: see the module docstring on what
        # Kafka answers when a whole segment lies below the log start offset).
        assert delete_records(c, {topic: {0: 3}}) == {(topic, 0): (NONE, 3)}
        for v in LIST_OFFSETS_VERSIONS:
            offsets = list_offsets(c, topic, {0: base_ts - 10_000}, v)[0]
            assert (offsets.error, offsets.offset, offsets.timestamp) == (NONE, 3, ts[3]), v
            assert list_offsets(c, topic, {0: ts[1]}, v)[0].offset == 3, v
            assert list_offsets(c, topic, {0: ts[20]}, v)[0].offset == 20, v
            assert list_offsets(c, topic, {0: EARLIEST}, v)[0].offset == 3, v


def test_list_offsets_max_timestamp_and_out_of_order_records(broker, unique_topic):
    """Records whose timestamps are not in offset order (a record from the future in the middle of
    the log, one from the past inside a batch): timestamp lookups answer the first offset, in log
    order, whose timestamp reaches the target; MAX_TIMESTAMP (-3) on v7 answers the offset and
    timestamp of the record with the largest timestamp, while v1..v6 answer UNSUPPORTED_VERSION
    for that partition. On an empty partition, -3 and a timestamp lookup answer -1/-1."""
    topic = unique_topic("lo-max")
    ck.create_topic(broker.bootstrap, topic, partitions=2, config={"segment.bytes": "1024"})
    base_ts = now_ms() - 3_600_000
    ts = [base_ts + 1000 * i for i in range(30)]
    ts[17] = base_ts + 100_000  # largest of all, in the middle of the log
    ts[22] = base_ts + 500      # older than everything after offset 0
    with Conn(broker.bootstrap) as c:
        for b in range(6):
            produce_batch(c, topic, [b"v%02d" % i + b"." * 100 for i in range(5 * b, 5 * b + 5)], ts[5 * b:5 * b + 5])

        def at(t, v=7, p=0):
            a = list_offsets(c, topic, {p: t}, v)[p]
            return a.error, a.offset, a.timestamp

        assert at(MAX_TIMESTAMP) == (NONE, 17, ts[17])
        for v in range(1, 7):
            assert at(MAX_TIMESTAMP, v)[0] == UNSUPPORTED_VERSION, v
        assert at(ts[16] + 1) == (NONE, 17, ts[17])   # 17 comes first in log order, though 18 is closer in time
        assert at(ts[20]) == (NONE, 17, ts[17])
        assert at(ts[17] - 1) == (NONE, 17, ts[17])
        assert at(ts[17] + 1) == (NONE, -1, -1)
        assert at(base_ts + 400) == (NONE, 1, ts[1])    # 22's older timestamp is never the first to reach it
        assert at(base_ts + 1) == (NONE, 1, ts[1])
        assert at(base_ts) == (NONE, 0, ts[0])
        # The empty partition 1.
        assert at(MAX_TIMESTAMP, 7, 1) == (NONE, -1, -1)
        assert at(base_ts, 7, 1) == (NONE, -1, -1)
        assert at(EARLIEST, 7, 1) == (NONE, 0, -1) and at(LATEST, 7, 1) == (NONE, 0, -1)


def test_list_offsets_confluent_kafka(broker, unique_topic):
    """confluent-kafka's AdminClient.list_offsets with OffsetSpec.for_timestamp, max_timestamp,
    earliest and latest, and the consumer's offsets_for_times, on records with known timestamps;
    after DeleteRecords, earliest is the new low watermark."""
    topic = unique_topic("lo-ck")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    base_ts = now_ms() - 3_600_000
    ts = [base_ts + 1000 * i for i in range(12)]
    ts[7] = base_ts + 50_000
    with Conn(broker.bootstrap) as c:
        for b in range(3):
            produce_batch(c, topic, [b"x%d" % i for i in range(4 * b, 4 * b + 4)], ts[4 * b:4 * b + 4])
        assert delete_records(c, {topic: {0: 2}}) == {(topic, 0): (NONE, 2)}
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    tp = TopicPartition(topic, 0)

    def offset_for(spec):
        return a.list_offsets({tp: spec}, request_timeout=T)[tp].result(T)

    assert offset_for(OffsetSpec.earliest()).offset == 2
    assert offset_for(OffsetSpec.latest()).offset == 12
    assert offset_for(OffsetSpec.for_timestamp(ts[4] - 500)).offset == 4
    assert offset_for(OffsetSpec.for_timestamp(ts[0])).offset == 2
    mx = offset_for(OffsetSpec.max_timestamp())
    assert (mx.offset, mx.timestamp) == (7, ts[7])
    cons = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "compat-lo"})
    try:
        got = cons.offsets_for_times([TopicPartition(topic, 0, ts[9])], timeout=10)
        assert got[0].offset == 7  # 7's timestamp is past ts[9] and 7 comes first
        got = cons.offsets_for_times([TopicPartition(topic, 0, ts[7] + 1)], timeout=10)
        assert got[0].offset == -1  # librdkafka's OFFSET_END: nothing that late
    finally:
        cons.close()


# ----------------------------------------------------------------------- topic configs at run time
def _describe(conn: Conn, topic: str, keys: list[str]) -> dict[str, tuple[str | None, int]]:
    err, entries = describe_configs(conn, TOPIC, topic, keys)
    assert err == NONE
    return {k: (e.value, e.source) for k, e in entries.items()}


def _wait_configs(conn: Conn, topic: str, want: dict[str, tuple[str, int]]) -> None:
    """Until DescribeConfigs shows every key with the (value, source) wanted (bounded)."""
    keys = sorted(want)
    last = {}

    def matches():
        last.update(_describe(conn, topic, keys))
        return all(last.get(k) == v for k, v in want.items())
    try:
        wait_for(matches, f"{topic} configs {want}", T, 0.1)
    except AssertionError:
        raise AssertionError(f"{topic}: DescribeConfigs shows {last}, want {want}") from None


def _ok(answers: list[AlterAnswer], topic: str) -> None:
    assert [(a.error, a.message, a.resource_type, a.resource_name) for a in answers] == [(NONE, None, TOPIC, topic)]


def _failed(answers: list[AlterAnswer], topic: str, code: int) -> None:
    assert len(answers) == 1 and answers[0].resource_name == topic and answers[0].resource_type == TOPIC
    assert answers[0].error == code, answers
    assert answers[0].message, f"error {code} without an error message"


DEFAULTS = {"retention.ms": "604800000", "segment.bytes": "1073741824", "retention.bytes": "-1",
            "cleanup.policy": "delete", "max.message.bytes": "1048588", "segment.ms": "604800000"}


@pytest.mark.parametrize("version", [0, 1])
def test_incremental_alter_configs_operations(broker, unique_topic, version):
    """IncrementalAlterConfigs v0/v1 (v1 flexible) on a topic: SET shows in DescribeConfigs as
    DYNAMIC_TOPIC_CONFIG while other overrides stay; DELETE goes back to the default
    (DEFAULT_CONFIG), and deleting an unset key is fine; APPEND and SUBTRACT edit a list config
    (cleanup.policy) item by item, without duplicates, and subtracting an absent item changes
    nothing."""
    topic = unique_topic(f"iac-v{version}")
    ck.create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "123456", "max.message.bytes": "200000"})

    def alter(*ops):
        _ok(incremental_alter_configs(c, [(TOPIC, topic, list(ops))], version=version), topic)

    with Conn(broker.bootstrap) as c:
        alter(("retention.ms", SET, "3600000"), ("segment.bytes", SET, "1048576"))
        _wait_configs(c, topic, {"retention.ms": ("3600000", DYNAMIC_TOPIC_CONFIG),
                                 "segment.bytes": ("1048576", DYNAMIC_TOPIC_CONFIG),
                                 "max.message.bytes": ("200000", DYNAMIC_TOPIC_CONFIG),
                                 "retention.bytes": (DEFAULTS["retention.bytes"], DEFAULT_CONFIG)})
        alter(("retention.ms", DELETE, None), ("retention.bytes", DELETE, None))
        _wait_configs(c, topic, {"retention.ms": (DEFAULTS["retention.ms"], DEFAULT_CONFIG),
                                 "retention.bytes": (DEFAULTS["retention.bytes"], DEFAULT_CONFIG),
                                 "segment.bytes": ("1048576", DYNAMIC_TOPIC_CONFIG)})
        alter(("cleanup.policy", APPEND, "compact"))
        _wait_configs(c, topic, {"cleanup.policy": ("delete,compact", DYNAMIC_TOPIC_CONFIG)})
        alter(("cleanup.policy", APPEND, "compact"))
        alter(("cleanup.policy", SUBTRACT, "delete"))
        _wait_configs(c, topic, {"cleanup.policy": ("compact", DYNAMIC_TOPIC_CONFIG)})
        alter(("cleanup.policy", SUBTRACT, "delete"))
        alter(("cleanup.policy", APPEND, "delete"))
        _wait_configs(c, topic, {"cleanup.policy": ("compact,delete", DYNAMIC_TOPIC_CONFIG)})
        alter(("cleanup.policy", DELETE, None), ("segment.bytes", DELETE, None), ("max.message.bytes", DELETE, None))
        _wait_configs(c, topic, {k: (DEFAULTS[k], DEFAULT_CONFIG)
                                 for k in ("cleanup.policy", "segment.bytes", "max.message.bytes", "retention.ms")})


@pytest.mark.parametrize("version", [0, 1])
def test_incremental_alter_configs_errors(broker, unique_topic, version):
    """IncrementalAlterConfigs v0/v1 refusals: values that do not parse, fall below Kafka's minimum
    (segment.bytes 14, segment.ms 1, retention.ms -1 are the lowest accepted), name no topic config,
    or APPEND to a non-list config: INVALID_CONFIG with a message; a null SET value or a key twice:
    INVALID_REQUEST; an unknown topic: UNKNOWN_TOPIC_OR_PARTITION. A refused resource changes
    nothing, not even its valid keys; validate_only checks and changes nothing; resources in one
    request are answered independently."""
    topic = unique_topic(f"iac-err-v{version}")
    ck.create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "123456"})

    def iac(ops, validate_only=False, name=topic):
        return incremental_alter_configs(c, [(TOPIC, name, ops)], validate_only, version)

    with Conn(broker.bootstrap) as c:
        for ops in ([("retention.ms", SET, "abc")],
                    [("segment.bytes", SET, "13")],
                    [("segment.ms", SET, "0")],
                    [("retention.ms", SET, "-2")],
                    [("cleanup.policy", SET, "shred")],
                    [("retention.ms", APPEND, "5")],
                    [("retention.ms", SUBTRACT, "5")],
                    [("no.such.config", SET, "1")],
                    [("log.retention.ms", SET, "1")],  # a broker config, not a topic config
                    [("segment.bytes", SET, "20000"), ("retention.ms", SET, "x")]):
            _failed(iac(ops), topic, INVALID_CONFIG)
            _failed(iac(ops, validate_only=True), topic, INVALID_CONFIG)
        _failed(iac([("retention.ms", SET, None)]), topic, INVALID_REQUEST)
        _failed(iac([("retention.ms", SET, "7"), ("retention.ms", SET, "8")]), topic, INVALID_REQUEST)
        missing = unique_topic("iac-missing")
        _failed(iac([("retention.ms", SET, "1000")], name=missing), missing, UNKNOWN_TOPIC_OR_PARTITION)
        _failed(iac([("retention.ms", SET, "1000")], True, missing), missing, UNKNOWN_TOPIC_OR_PARTITION)
        _ok(iac([("retention.ms", SET, "999")], validate_only=True), topic)
        # Two resources: each answered on its own, the good one applied.
        answers = incremental_alter_configs(c, [(TOPIC, topic, [("retention.bytes", SET, "777777")]),
                                               (TOPIC, missing, [("retention.ms", SET, "1")])], False, version)
        assert [(a.resource_name, a.error) for a in answers] == [(topic, NONE), (missing, UNKNOWN_TOPIC_OR_PARTITION)]
        # Changes are applied in order, so once retention.bytes shows, every refused or validate-only
        # change before it would show too: none did.
        _wait_configs(c, topic, {"retention.bytes": ("777777", DYNAMIC_TOPIC_CONFIG),
                                 "retention.ms": ("123456", DYNAMIC_TOPIC_CONFIG),
                                 "segment.bytes": (DEFAULTS["segment.bytes"], DEFAULT_CONFIG),
                                 "segment.ms": (DEFAULTS["segment.ms"], DEFAULT_CONFIG),
                                 "cleanup.policy": ("delete", DEFAULT_CONFIG)})
        # The lowest values Kafka accepts.
        _ok(iac([("segment.bytes", SET, "14"), ("segment.ms", SET, "1"), ("retention.ms", SET, "-1")]), topic)
        _wait_configs(c, topic, {"segment.bytes": ("14", DYNAMIC_TOPIC_CONFIG), "segment.ms": ("1", DYNAMIC_TOPIC_CONFIG),
                                 "retention.ms": ("-1", DYNAMIC_TOPIC_CONFIG)})
        err, _ = describe_configs(c, TOPIC, missing)
        assert err == UNKNOWN_TOPIC_OR_PARTITION


@pytest.mark.parametrize("version", [0, 1, 2])
def test_alter_configs_replaces_the_whole_set(broker, unique_topic, version):
    """The legacy AlterConfigs v0/v1/v2 (v2 flexible): the configs in the request become the
    topic's whole set of overrides; every override not listed goes back to its default, and an
    empty list clears them all. Refusals as for IncrementalAlterConfigs (INVALID_CONFIG with a
    message, INVALID_REQUEST for a null value, UNKNOWN_TOPIC_OR_PARTITION), and validate_only
    changes nothing."""
    topic = unique_topic(f"ac-v{version}")
    ck.create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "123456", "max.message.bytes": "200000"})

    def ac(configs, validate_only=False, name=topic):
        return alter_configs(c, [(TOPIC, name, configs)], validate_only, version)

    with Conn(broker.bootstrap) as c:
        _wait_configs(c, topic, {"retention.ms": ("123456", DYNAMIC_TOPIC_CONFIG),
                                 "max.message.bytes": ("200000", DYNAMIC_TOPIC_CONFIG)})
        _ok(ac([("segment.bytes", "1048576")]), topic)
        _wait_configs(c, topic, {"segment.bytes": ("1048576", DYNAMIC_TOPIC_CONFIG),
                                 "retention.ms": (DEFAULTS["retention.ms"], DEFAULT_CONFIG),
                                 "max.message.bytes": (DEFAULTS["max.message.bytes"], DEFAULT_CONFIG)})
        _ok(ac([("retention.ms", "3600000"), ("cleanup.policy", "compact,delete")]), topic)
        _wait_configs(c, topic, {"retention.ms": ("3600000", DYNAMIC_TOPIC_CONFIG),
                                 "cleanup.policy": ("compact,delete", DYNAMIC_TOPIC_CONFIG),
                                 "segment.bytes": (DEFAULTS["segment.bytes"], DEFAULT_CONFIG)})
        _failed(ac([("retention.ms", "abc")]), topic, INVALID_CONFIG)
        _failed(ac([("no.such.config", "1")]), topic, INVALID_CONFIG)
        _failed(ac([("retention.ms", None)]), topic, INVALID_REQUEST)
        missing = unique_topic("ac-missing")
        _failed(ac([("retention.ms", "1000")], name=missing), missing, UNKNOWN_TOPIC_OR_PARTITION)
        _ok(ac([("retention.ms", "5555")], validate_only=True), topic)
        _ok(ac([("retention.ms", "3600000"), ("cleanup.policy", "compact,delete"), ("retention.bytes", "777777")]), topic)
        _wait_configs(c, topic, {"retention.ms": ("3600000", DYNAMIC_TOPIC_CONFIG),
                                 "cleanup.policy": ("compact,delete", DYNAMIC_TOPIC_CONFIG),
                                 "retention.bytes": ("777777", DYNAMIC_TOPIC_CONFIG)})
        _ok(ac([]), topic)
        _wait_configs(c, topic, {k: (DEFAULTS[k], DEFAULT_CONFIG)
                                 for k in ("retention.ms", "cleanup.policy", "retention.bytes", "segment.bytes")})


def test_configs_confluent_kafka(broker, unique_topic):
    """confluent-kafka's AdminClient: incremental_alter_configs (SET, DELETE, APPEND, SUBTRACT),
    the legacy alter_configs (whole set), describe_configs showing value and source; an invalid
    value fails with INVALID_CONFIG and validate_only changes nothing."""
    topic = unique_topic("cfg-ck")
    ck.create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "123456"})
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)

    def incremental(entries, validate_only=False):
        r = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
        return a.incremental_alter_configs([r], request_timeout=T, validate_only=validate_only)[r]

    def shows(want):
        def check():
            cfg = a.describe_configs([res], request_timeout=T)[res].result(T)
            return all((cfg[k].value, cfg[k].source) == v for k, v in want.items())
        wait_for(check, f"{topic} configs {want}", T)

    incremental([ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
                 ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
                 ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND)]).result(T)
    shows({"segment.bytes": ("1048576", DYNAMIC_TOPIC_CONFIG), "retention.ms": (DEFAULTS["retention.ms"], DEFAULT_CONFIG),
           "cleanup.policy": ("delete,compact", DYNAMIC_TOPIC_CONFIG)})
    incremental([ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)]).result(T)
    shows({"cleanup.policy": ("compact", DYNAMIC_TOPIC_CONFIG)})
    with pytest.raises(KafkaException) as ei:
        incremental([ConfigEntry("retention.ms", "abc", incremental_operation=AlterConfigOpType.SET)]).result(T)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    incremental([ConfigEntry("retention.ms", "5555", incremental_operation=AlterConfigOpType.SET)],
                validate_only=True).result(T)
    # Legacy AlterConfigs: the whole set becomes {retention.bytes}.
    legacy = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.bytes": "888888"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # confluent-kafka deprecates alter_configs
        fut = a.alter_configs([legacy], request_timeout=T)[legacy]
    fut.result(T)
    shows({"retention.bytes": ("888888", DYNAMIC_TOPIC_CONFIG), "retention.ms": (DEFAULTS["retention.ms"], DEFAULT_CONFIG),
           "segment.bytes": (DEFAULTS["segment.bytes"], DEFAULT_CONFIG),
           "cleanup.policy": (DEFAULTS["cleanup.policy"], DEFAULT_CONFIG)})


def test_configs_kafka_python(broker, unique_topic):
    """kafka-python's KafkaAdminClient.alter_configs, incremental (SET and DELETE) and legacy
    (which kafka-python turns into a read-modify-write of the topic's dynamic configs)."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KPConfigResource, ConfigResourceType
    topic = unique_topic("cfg-kp")
    ck.create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "123456"})
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=int(T * 1000))
    try:
        with Conn(broker.bootstrap) as c:
            a.alter_configs([KPConfigResource(ConfigResourceType.TOPIC, topic,
                                              configs={"segment.bytes": ("SET", "1048576"),
                                                       "retention.ms": ("DELETE", None)})], incremental=True)
            _wait_configs(c, topic, {"segment.bytes": ("1048576", DYNAMIC_TOPIC_CONFIG),
                                     "retention.ms": (DEFAULTS["retention.ms"], DEFAULT_CONFIG)})
            # Legacy AlterConfigs: kafka-python first reads the topic's dynamic configs and sends
            # them along (so segment.bytes stays), which works only if DescribeConfigs tells
            # dynamic overrides from defaults.
            a.alter_configs([KPConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": "999999"})],
                            incremental=False)
            _wait_configs(c, topic, {"retention.bytes": ("999999", DYNAMIC_TOPIC_CONFIG),
                                     "segment.bytes": ("1048576", DYNAMIC_TOPIC_CONFIG),
                                     "retention.ms": (DEFAULTS["retention.ms"], DEFAULT_CONFIG)})
    finally:
        a.close()


# --------------------------------------------------------------------------------- Java Admin
JAVA_DIR = Path(__file__).resolve().parent / "java"


@pytest.fixture(scope="module")
def java_libs() -> Path:
    if not shutil.which("java"):
        pytest.fail("java not found (JDK 17+ is required)")
    res = subprocess.run(["bash", str(JAVA_DIR / "setup.sh")], capture_output=True, text=True, timeout=960)
    if res.returncode != 0:
        pytest.fail(f"java/setup.sh failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return Path(res.stdout.strip().splitlines()[-1])


def test_java_admin(broker, unique_topic, java_libs):
    """Apache Kafka's Java Admin client (3.9.1, java/JavaStorageAdmin.java): listOffsets earliest,
    latest, forTimestamp (inside the log, past an out-of-order record, beyond it all) and
    maxTimestamp; deleteRecords (low watermark, OffsetOutOfRangeException beyond the high
    watermark); incrementalAlterConfigs SET / APPEND / DELETE seen through describeConfigs."""
    topic = unique_topic("java-storage")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    base_ts = now_ms() - 3_600_000
    ts = [base_ts + 1000 * i for i in range(12)]
    ts[7] = base_ts + 50_000
    with Conn(broker.bootstrap) as c:
        for b in range(3):
            produce_batch(c, topic, [b"j%d" % i for i in range(4 * b, 4 * b + 4)], ts[4 * b:4 * b + 4])
    log4j = f"file:{JAVA_DIR / 'log4j.properties'}"
    env = dict(os.environ, BOOTSTRAP_SERVERS=broker.bootstrap, TOPIC=topic, BASE_TS=str(base_ts))
    cmd = ["java", "-Xmx256m", f"-Dlog4j.configuration={log4j}", "-cp", f"{java_libs}/*", "JavaStorageAdmin.java"]
    rc, out, secs = run_bounded(cmd, env, JAVA_DIR, 120)
    print(out)
    assert rc == 0 and "all ok" in out, f"JavaStorageAdmin exited {rc} after {secs:.1f}s:\n{out[-4000:]}"
