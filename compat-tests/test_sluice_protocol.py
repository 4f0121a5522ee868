"""Protocol decisions that are Sluice's own and differ from Kafka 3.9, so they run against
Sluice only: Produce v0-2 (old message formats) are advertised, because librdkafka before
2.11 only compresses when Produce's range covers v0, but answered with UNSUPPORTED_VERSION
as Kafka 4 does; and the ranges we advertise are the ones we serve."""
from __future__ import annotations

import pytest

from harness import ck
from harness.kwire import Reader, connect, header_v1, i16, i32, i64, parse_bootstrap, roundtrip, string

UNSUPPORTED_VERSION = 35


@pytest.fixture(autouse=True)
def _sluice_only(broker_kind):
    if broker_kind != "sluice":
        pytest.skip("Sluice's own protocol decisions")


def test_advertised_ranges(broker):
    versions = broker.api_versions()
    assert versions[0] == (0, 9)     # Produce
    assert versions[1] == (4, 12)    # Fetch
    assert versions[2] == (1, 7)     # ListOffsets
    assert versions[3] == (0, 12)    # Metadata
    assert versions[8] == (2, 9)     # OffsetCommit
    assert versions[9] == (1, 9)     # OffsetFetch
    assert versions[10] == (0, 4)    # FindCoordinator
    assert versions[11] == (0, 9)    # JoinGroup
    assert versions[12] == (0, 4)    # Heartbeat
    assert versions[13] == (0, 5)    # LeaveGroup
    assert versions[14] == (0, 5)    # SyncGroup
    assert versions[15] == (0, 5)    # DescribeGroups
    assert versions[16] == (0, 5)    # ListGroups
    assert versions[42] == (0, 2)    # DeleteGroups
    assert versions[47] == (0, 0)    # OffsetDelete
    assert versions[18] == (0, 3)    # ApiVersions
    assert versions[19] == (2, 7)    # CreateTopics
    assert versions[20] == (1, 6)    # DeleteTopics
    assert versions[32] == (1, 4)    # DescribeConfigs
    assert versions[37] == (0, 3)    # CreatePartitions
    assert versions[43] == (0, 2)    # ElectLeaders
    assert versions[60] == (0, 1)    # DescribeCluster


@pytest.mark.parametrize("version", [0, 1, 2])
def test_produce_v0_to_v2_answered_unsupported(broker, unique_topic, version):
    topic = unique_topic("old")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    # One magic-0 message: offset, size, crc, magic, attributes, key, value.
    message = i32(0) + b"\x00" + b"\x00" + i32(-1) + i32(1) + b"x"
    message_set = i64(0) + i32(len(message)) + message
    body = i16(1) + i32(5000) + i32(1) + string(topic) + i32(1) + i32(0) + i32(len(message_set)) + message_set
    host, port = parse_bootstrap(broker.bootstrap)
    with connect(host, port, 10) as s:
        r = Reader(roundtrip(s, header_v1(0, version, 3) + body))
    assert r.i32() == 3
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1
    assert r.i32() == 0 and r.i16() == UNSUPPORTED_VERSION
