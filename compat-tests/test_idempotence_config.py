"""Idempotent producer configuration (issue 6).

test_idempotence_disabled (Sluice only): `sluice.idempotence.enable=false` turns the idempotent
producer off. ApiVersions then does not list InitProducerId (API 22), and a client that sends it
anyway has its connection closed (as for every API Sluice does not advertise; Kafka closes the
connection on an unknown API key too). confluent-kafka 2.16.1 (librdkafka) with
enable.idempotence=true checks ApiVersions and raises a FATAL error from poll()/flush() at once:
_UNSUPPORTED_FEATURE (-165), "Idempotent producer not supported by any of the 1 connected
broker(s)"; every later produce() raises _FATAL (-150) and nothing is written. (Note: in
confluent-kafka 2.16.1 a Python on_delivery callback running while that fatal error is pending
fails with SystemError, so this test uses none.) With enable.idempotence=false it works.

test_producer_state_expires (both brokers, marker `idempotence`): with
producer.id.expiration.ms=2000 and producer.id.expiration.check.interval.ms=500 (Kafka 3.9 broker
configs), a producer that appended sequences 0..2 is known to the partition, so sequence 7 is
OUT_OF_ORDER_SEQUENCE_NUMBER (45); once its state has expired (2 s after the max timestamp of its
last batch, noticed at the next check), the partition no longer knows the producer id and, like
any unknown producer, it may start at any sequence: 7 is appended. Measured on Kafka 3.9.1: 45
until ~2.0-2.5 s after the last batch's timestamp, then NONE at the next offset; from then on the
partition tracks the producer from 7 (8 follows, 7 again is a duplicate, 3 is 45).
"""
from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from harness import ck, kwire
from harness.kwire import (NONE, OUT_OF_ORDER_SEQUENCE_NUMBER, KafkaConn, error_name, list_offsets,
                           new_producer_id, produce, record_batch)

INIT_PRODUCER_ID = 22
EXPIRATION_MS = 2000
CHECK_INTERVAL_MS = 500


def test_idempotence_disabled(fresh_broker, unique_topic, broker_kind):
    if broker_kind != "sluice":
        pytest.skip("sluice.idempotence.enable is Sluice's own setting")
    b = fresh_broker(extra_config={"sluice.idempotence.enable": "false"})
    apis = b.api_versions()
    assert INIT_PRODUCER_ID not in apis, f"InitProducerId advertised: {apis[INIT_PRODUCER_ID]}"
    assert 0 in apis  # Produce is still there

    # InitProducerId on the raw wire anyway: the connection is closed, the broker lives on.
    with kwire.connect(b.host, b.port) as s:
        body = kwire.compact_string(None) + kwire.i32(60000) + kwire.i64(-1) + kwire.i16(-1) + b"\x00"
        s.sendall(kwire.frame(kwire.header_v2(INIT_PRODUCER_ID, 4, 5) + body))
        assert kwire.wait_closed(s, 5.0), "InitProducerId on a broker that does not advertise it: not closed"
    assert b.running() and INIT_PRODUCER_ID not in b.api_versions()  # a new connection is served

    topic = unique_topic("noidem")
    ck.create_topic(b.bootstrap, topic, 1)

    # librdkafka: a fatal error, raised from flush(), within a few seconds; nothing written.
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "message.timeout.ms": 10000,
                  "log_level": 0})
    p.produce(topic, b"idempotent?")
    fatal = None
    t0 = time.monotonic()
    while fatal is None and time.monotonic() - t0 < 10:
        try:
            p.flush(1.0)
        except KafkaException as e:
            fatal = e.args[0]
    took = time.monotonic() - t0
    assert fatal is not None, "confluent-kafka with enable.idempotence=true reported nothing within 10 s"
    assert (fatal.code(), fatal.fatal()) == (KafkaError._UNSUPPORTED_FEATURE, True), fatal
    assert "Idempotent producer not supported" in fatal.str(), fatal.str()
    with pytest.raises(KafkaException) as later:
        p.produce(topic, b"again")
    assert later.value.args[0].code() == KafkaError._FATAL, later.value
    p.purge()
    try:
        p.close()
    except KafkaException:
        pass
    with KafkaConn.to(b.bootstrap) as c:
        assert list_offsets(c, topic, [0]) == {0: 0}

    # Without idempotence the same client produces fine.
    delivered = []
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": False, "acks": "all",
                  "message.timeout.ms": 10000})
    p.produce(topic, b"plain", on_delivery=lambda err, m: delivered.append((err, m.offset())))
    assert p.flush(15) == 0
    assert delivered == [(None, 0)], delivered
    p.close()
    print(f"\nconfluent-kafka, enable.idempotence=true on a broker without InitProducerId: {fatal.name()} "
          f"(fatal) after {took:.2f}s: {fatal.str()}")


@pytest.mark.idempotence
def test_producer_state_expires(fresh_broker, unique_topic, broker_kind):
    b = fresh_broker(extra_config={"producer.id.expiration.ms": str(EXPIRATION_MS),
                                   "producer.id.expiration.check.interval.ms": str(CHECK_INTERVAL_MS)})
    topic = unique_topic("idem-expire")
    ck.create_topic(b.bootstrap, topic, 1)
    with KafkaConn.to(b.bootstrap) as c:
        pid, epoch = new_producer_id(c)

        def send(seq: int, ts: int | None = None):
            batch = record_batch([f"{pid}:{seq}".encode()], producer_id=pid, producer_epoch=epoch,
                                 base_sequence=seq, timestamp=ts)
            return produce(c, topic, {0: batch})[0]

        last_ts = 0
        for seq in range(3):
            last_ts = int(time.time() * 1000)
            res = send(seq, last_ts)
            assert (res.error, res.base_offset) == (NONE, seq), res
        res = send(7)
        assert (error_name(res.error), res.base_offset) == (error_name(OUT_OF_ORDER_SEQUENCE_NUMBER), -1), \
            f"sequence 7 right after 0..2 (state still there): {res}"

        # Poll (bounded) until the state has expired and 7 is taken.
        answers = []
        deadline = time.monotonic() + 15
        while True:
            res = send(7)
            now_ms = int(time.time() * 1000)
            answers.append((now_ms - last_ts, error_name(res.error)))
            if res.error == NONE:
                break
            assert res.error == OUT_OF_ORDER_SEQUENCE_NUMBER, f"while waiting for expiry: {res}"
            assert time.monotonic() < deadline, \
                f"producer state did not expire within 15 s ({EXPIRATION_MS} ms configured): {answers[-3:]}"
            time.sleep(0.1)
        accepted_after = answers[-1][0]
        assert res.base_offset == 3, res
        assert accepted_after >= EXPIRATION_MS - 50, \
            f"sequence 7 accepted {accepted_after} ms after the last batch, before producer.id.expiration.ms"
        last_rejected = max([ms for ms, e in answers if e != error_name(NONE)], default=None)

        # The partition tracks the producer again, from sequence 7.
        res = send(8)
        assert (res.error, res.base_offset) == (NONE, 4), res
        res = send(7)
        assert (res.error, res.base_offset) == (NONE, 3), f"duplicate of 7: {res}"
        res = send(3)
        assert (error_name(res.error), res.base_offset) == (error_name(OUT_OF_ORDER_SEQUENCE_NUMBER), -1), res
        assert list_offsets(c, topic, [0]) == {0: 5}
    print(f"\n{broker_kind}: sequence 7 rejected (45) until {last_rejected} ms after the last batch's timestamp, "
          f"accepted at {accepted_after} ms ({len(answers)} probes)")
