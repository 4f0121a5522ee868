"""Framing rules (CLIENTS.md §0), against both brokers: requests written back to back on
one connection are answered in the order they were sent, Produce with acks=0 gets no
response at all (the next response on the wire is the next request's), and ApiVersions
answers use response header v0 even for the flexible v3."""
from __future__ import annotations

from harness import ck
from harness.kwire import (KafkaConn, Reader, compact_string, connect, fetch_batches, frame, header_v1, header_v2, i16,
                           i32, i64, new_producer_id, parse_bootstrap, record_batch, recv_frame, string)
from test_produce_validation import batch


def test_pipelined_requests_answered_in_order_and_acks0_unanswered(broker, unique_topic):
    topic = unique_topic("framing")
    ck.create_topic(broker.bootstrap, topic, partitions=1)
    records = batch(2)
    produce_acks0 = (header_v1(0, 7, 102) + string(None) + i16(0) + i32(5000) + i32(1) + string(topic) +
                     i32(1) + i32(0) + i32(len(records)) + records)
    metadata_v1 = header_v1(3, 1, 101) + i32(1) + string(topic)
    api_versions_v3 = header_v2(18, 3, 103) + compact_string("sluice-compat") + compact_string("1.0") + b"\x00"
    list_offsets_v1 = (header_v1(2, 1, 104) + i32(-1) + i32(1) + string(topic) + i32(1) + i32(0) + i64(-1))
    host, port = parse_bootstrap(broker.bootstrap)
    with connect(host, port, 20) as s:
        s.sendall(b"".join(frame(p) for p in (metadata_v1, produce_acks0, api_versions_v3, list_offsets_v1)))
        correlation_ids = []
        responses = []
        for _ in range(3):
            resp = recv_frame(s)
            correlation_ids.append(int.from_bytes(resp[:4], "big"))
            responses.append(resp)
    assert correlation_ids == [101, 103, 104]
    # ApiVersions v3: header v0 (no tag byte after the correlation id), then error_code 0.
    r = Reader(responses[1][4:])
    assert r.i16() == 0
    # The acks=0 produce did land: ListOffsets latest says 2.
    r = Reader(responses[2][4:])
    assert r.i32() == 1 and r.string() == topic and r.i32() == 1
    assert r.i32() == 0 and r.i16() == 0
    r.i64()  # timestamp
    assert r.i64() == 2


def test_pipelined_idempotent_produces_keep_their_order(broker, unique_topic):
    """Forty acks=all Produce requests of one idempotent producer written back to back, with
    Metadata and ListOffsets between them, before any answer is read (librdkafka keeps up to
    five in flight; Sluice handles the next Produce while the previous one waits for its sync):
    every answer comes in order and without error, each partition's base offsets follow the
    order the requests were sent in, and the log holds the batches in sequence order."""
    topic = unique_topic("pipelined")
    ck.create_topic(broker.bootstrap, topic, partitions=2)
    host, port = parse_bootstrap(broker.bootstrap)
    with KafkaConn.to(broker.bootstrap) as conn:
        pid, epoch = new_producer_id(conn)
    requests, expected = [], []
    sequence = {0: 0, 1: 0}
    for i in range(40):
        p = i % 2
        records = record_batch([b"m%03d-%d" % (i, k) for k in range(3)], producer_id=pid, producer_epoch=epoch,
                               base_sequence=sequence[p])
        sequence[p] += 3
        corr = 1000 + len(requests)
        requests.append(header_v1(0, 7, corr) + string(None) + i16(-1) + i32(30000) + i32(1) + string(topic) +
                        i32(1) + i32(p) + i32(len(records)) + records)
        expected.append(("produce", corr, p))
        if i % 10 == 5:
            corr = 1000 + len(requests)
            requests.append(header_v1(3, 1, corr) + i32(1) + string(topic))
            expected.append(("metadata", corr, None))
    with connect(host, port, 30) as s:
        s.sendall(b"".join(frame(r) for r in requests))
        answers = [recv_frame(s) for _ in expected]
    assert [int.from_bytes(a[:4], "big") for a in answers] == [corr for _, corr, _ in expected]
    offsets = {0: [], 1: []}
    for (kind, _, p), answer in zip(expected, answers):
        if kind != "produce":
            continue
        r = Reader(answer[4:])
        assert r.i32() == 1 and r.string() == topic and r.i32() == 1
        assert r.i32() == p
        assert r.i16() == 0, "a pipelined produce failed"
        offsets[p].append(r.i64())
    for p in (0, 1):
        assert offsets[p] == [3 * k for k in range(20)], offsets[p]
    with KafkaConn.to(broker.bootstrap) as conn:
        for p in (0, 1):
            batches = fetch_batches(conn, topic, p)
            assert [b.base_sequence for b in batches] == [3 * k for k in range(20)]
            assert [b.base_offset for b in batches] == [3 * k for k in range(20)]
