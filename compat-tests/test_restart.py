"""Durability across a crash: produce with acks=all, kill -9 the broker (once after a flush, once
in the middle of producing), restart it on the same data dir and port, and consume back every
acknowledged message at the offset it was acknowledged with."""
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from harness import ck
from harness.data import all_messages

P = 3


def watermarks(bootstrap, topic, timeout=60.0):
    """{p: (low, high)}, retrying while the restarted broker is still taking leadership
    (Kafka answers NOT_LEADER_OR_FOLLOWER for a few seconds after it starts listening)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-restart", "log_level": 2})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in range(P)}
            except KafkaException:  # NOT_LEADER_FOR_PARTITION etc.: librdkafka doesn't flag them retriable
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        c.close()


def produce_acked(bootstrap, topic, msgs, *, kill_after=None, broker=None, timeout=60.0):
    """Produce msgs [(i, partition, key, value, headers)] with acks=all. Returns the acknowledged
    ones as {(partition, offset): (key, value)}. With kill_after=N, kill -9 the broker as soon as
    N messages are acknowledged (while the rest are still being produced)."""
    acked = {}
    errors = []

    def on_delivery(err, m):
        if err is None:
            acked[(m.partition(), m.offset())] = (m.key(), m.value())
        else:
            errors.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "batch.num.messages": 500, "message.timeout.ms": 5000 if kill_after else 60000,
                  "retries": 0 if kill_after else 2147483647, "reconnect.backoff.max.ms": 1000,
                  "log_level": 2})
    killed = False
    deadline = time.monotonic() + timeout
    for _, part, k, v, h in msgs:
        while True:
            try:
                p.produce(topic, value=v, key=k, partition=part, headers=h, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        if kill_after and not killed and len(acked) >= kill_after:
            broker.kill9()
            killed = True
        assert time.monotonic() < deadline, "produce took too long"
    if kill_after and not killed:
        while len(acked) < kill_after and time.monotonic() < deadline:
            p.poll(0.05)
        broker.kill9()
        killed = True
    left = p.flush(30)
    assert left == 0, f"{left} messages neither delivered nor failed"
    if not kill_after:
        assert not errors, errors[:3]
        assert len(acked) == len(msgs)
    return acked


def check_acked(bootstrap, topic, acked):
    ck.wait_topic(bootstrap, topic, P, timeout=60)
    wm = watermarks(bootstrap, topic)
    for (p, off) in acked:
        assert wm[p][0] == 0 and off < wm[p][1], f"acked p{p}@{off} beyond high watermark {wm[p]}"
    got = ck.consume(bootstrap, topic, {p: wm[p][1] for p in range(P)}, timeout=90)
    stored = {}
    for p in range(P):
        offs = [o for o, _, _, _ in got[p]]
        assert offs == list(range(wm[p][1])), f"partition {p}: offsets not contiguous"
        for o, k, v, _ in got[p]:
            stored[(p, o)] = (k, v)
    missing = [po for po in acked if stored.get(po) != acked[po]]
    assert not missing, f"{len(missing)} acknowledged messages lost or changed, e.g. {missing[:5]}"
    return wm


@pytest.mark.fault_checker
def test_kill9_restart_keeps_acknowledged(fresh_broker, unique_topic):
    b = fresh_broker()
    topic = unique_topic("restart")
    ck.create_topic(b.bootstrap, topic, P)
    msgs = [(i, *m) for i, m in enumerate(all_messages(60_000))]

    # 1. 20,000 messages, all acknowledged (flush), then kill -9.
    acked = produce_acked(b.bootstrap, topic, msgs[:20_000])
    b.kill9()
    b.restart()
    wm1 = check_acked(b.bootstrap, topic, acked)
    assert sum(hw for _, hw in wm1.values()) == 20_000

    # 2. kill -9 in the middle of producing 40,000 more; everything acknowledged survives.
    acked2 = produce_acked(b.bootstrap, topic, msgs[20_000:], kill_after=5_000, broker=b)
    assert len(acked2) >= 5_000
    b.restart()
    acked.update(acked2)
    wm2 = check_acked(b.bootstrap, topic, acked)

    # 3. The log continues after the recovered end: new messages get the next offsets.
    more = produce_acked(b.bootstrap, topic, msgs[:300])
    for (p, off) in more:
        assert off >= wm2[p][1], f"new message p{p}@{off} overwrote recovered data (hw {wm2[p][1]})"
    acked.update(more)

    # 4. A clean restart (SIGTERM) keeps everything too.
    b.restart()
    check_acked(b.bootstrap, topic, acked)
