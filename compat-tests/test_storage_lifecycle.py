"""Segments and retention, the same against Sluice and Kafka 3.9.1 (issue 5, "Storage that holds
up"): segments roll by size (segment.bytes) and by age (segment.ms); retention deletes whole old
segments by size (retention.bytes) and by record time (retention.ms) and advances the log start
offset; the broker-level settings (log.segment.bytes, log.roll.ms, log.retention.hours,
log.retention.bytes) are the defaults of topics without overrides; retention changed at run time
takes effect; topic configs and the log start offset survive a restart; producers and consumers
keep going while retention deletes under them.

All of it runs on one broker of the kind under test started for this module with
log.retention.check.interval.ms=500 (retention runs twice a second instead of every 5 minutes)
and the broker-level settings in BROKER_CONFIG. On Kafka the session broker is stopped meanwhile
(one Kafka at a time), as fresh_broker does. The DeleteRecords / ListOffsets / config APIs
themselves are tested on the session broker in test_storage_admin.py.

Kafka 3.9.1's behaviour, measured (what the tests assert):
  - Minimums accepted for topic configs: segment.bytes 14, segment.ms 1, retention.ms -1
    (retention.bytes has none). A segment rolls before a batch that would take it past
    segment.bytes; a batch larger than segment.bytes is refused with RECORD_LIST_TOO_LARGE (18).
  - Size retention deletes the oldest segments while what remains is still >= retention.bytes:
    afterwards retention.bytes <= remaining bytes < retention.bytes + one segment; the log start
    offset is the base offset of the first remaining segment (a batch's base offset); the log end
    offset does not move; Fetch below the log start offset is OFFSET_OUT_OF_RANGE (1).
  - Time retention deletes a segment once its largest record timestamp is older than retention.ms:
    records with CreateTime an hour or days old go at the next check, a segment that also holds a
    recent record stays. When every record has expired, Kafka rolls the active segment and deletes
    it too: log start offset = log end offset, the log is empty, and appends continue at the end.
  - segment.ms: the active segment rolls at the first append that comes segment.ms after the
    segment's first record, so size retention can then delete the old segment; with the default
    segment.ms the same data stays in one (active) segment that size retention never deletes.
  - A topic without overrides describes segment.bytes / retention.bytes / retention.ms / segment.ms
    with the broker's log.segment.bytes / log.retention.bytes / log.retention.hours (in ms) /
    log.roll.ms and source STATIC_BROKER_CONFIG (4), and retention acts on them.
  - After a clean restart: dynamic topic configs and the log start offset (DeleteRecords) are kept.
"""
from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

import conftest  # the suite's conftest: the session broker registry and the storage_admin check
from harness import ck
from harness.brokers import Broker
from harness.kadmin_wire import (DEFAULT_CONFIG, DELETE, DYNAMIC_TOPIC_CONFIG, EARLIEST, LATEST, NONE,
                                 OFFSET_OUT_OF_RANGE, RECORD_LIST_TOO_LARGE, SET, STATIC_BROKER_CONFIG, TOPIC, Conn,
                                 alter_configs, delete_records, describe_configs, fetch, incremental_alter_configs,
                                 list_offsets, now_ms, produce_batch, produce_records, read_log, timed_batch,
                                 wait_for)

pytestmark = pytest.mark.storage_admin

SEGMENT = 16384          # segment.bytes of most topics here (and the broker's log.segment.bytes)
RETAIN = 50000           # retention.bytes of the size tests (and the broker's log.retention.bytes)
BROKER_CONFIG = {
    "log.retention.check.interval.ms": "500",
    "log.segment.bytes": str(SEGMENT),
    "log.retention.bytes": str(RETAIN),
    "log.retention.hours": "24",
    "log.roll.ms": "3600000",
}
# Kafka only: its log manager starts the retention task 30 s after startup unless told otherwise
# (a setting Kafka documents as "for testing only"); not a behaviour under test.
KAFKA_ONLY_CONFIG = {"log.initial.task.delay.ms": "0"}
WAIT = 30.0              # seconds: the longest any retention effect may take to show
SETTLE = 1.5             # seconds without change after which retention is taken to be done
RECORD = 1000            # bytes per record value; 4 per batch: ~4.1 KB batches, 3 to a segment
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def storage_broker(request, broker_kind):
    """One broker of the kind under test with BROKER_CONFIG for the whole module. On Sluice it is
    skipped (before starting anything) while Sluice does not advertise the storage admin APIs:
    this module-scoped fixture is set up before the function-level storage_admin check runs."""
    if broker_kind == "sluice":
        sess = request.getfixturevalue("_session_broker")
        if not sess.running():
            sess.start()
        missing = conftest.storage_admin_missing(sess)
        if missing:
            pytest.skip(f"Sluice does not advertise API keys {missing} yet (issue 5, storage that holds up)")
    else:
        sess = conftest._session_brokers.get(broker_kind)
        if sess is not None and sess.running():
            sess.stop()  # one Kafka at a time; the `broker` fixture starts it again when next used
    b = Broker(broker_kind, extra_config={**BROKER_CONFIG, **(KAFKA_ONLY_CONFIG if broker_kind == "kafka" else {})})
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


# ------------------------------------------------------------------------------------ helpers
def _offsets(c: Conn, topic: str) -> tuple[int, int]:
    """(log start offset, log end offset) by ListOffsets v7."""
    ans = list_offsets(c, topic, {0: EARLIEST}, 7)[0], list_offsets(c, topic, {0: LATEST}, 7)[0]
    assert ans[0].error == NONE and ans[1].error == NONE, ans
    return ans[0].offset, ans[1].offset


def _fill(c: Conn, topic: str, batches: int, timestamp: int | None = None, first: int = 0) -> list[int]:
    """`batches` batches of 4 records of RECORD bytes (value byte = batch number), all with
    `timestamp` (default: now); returns their base offsets."""
    return [produce_batch(c, topic, [bytes([65 + (first + i) % 26]) * RECORD] * 4,
                          None if timestamp is None else [timestamp] * 4)
            for i in range(batches)]


def _create(bootstrap: str, topic: str, **config: str) -> None:
    ck.create_topic(bootstrap, topic, partitions=1, config={k.replace("_", "."): v for k, v in config.items()})


def _settled_start(c: Conn, topic: str, ok, what: str) -> int:
    """The log start offset once ok(start) holds and it has stayed the same for SETTLE seconds
    (three retention checks: whatever retention was going to delete is gone), bounded by WAIT."""
    seen, since = [None], [0.0]

    def settled():
        start, now = _offsets(c, topic)[0], time.monotonic()
        if start != seen[0] or not ok(start):
            seen[0], since[0] = start, now
            return None
        return start if now - since[0] >= SETTLE else None
    return wait_for(settled, what, WAIT + SETTLE, 0.2)


def _check_size_retention(c: Conn, topic: str, bases: list[int], end: int, retain: int = RETAIN) -> int:
    """Wait for size retention on `topic` (filled with `bases`, log end `end`) and check what is
    left: whole segments, at least `retain` bytes, everything from the log start readable.
    Returns the log start offset."""
    start = _settled_start(c, topic, lambda s: s > 0, f"size retention on {topic}")
    log = read_log(c, topic, start)
    remaining = sum(b[2] for b in log.batches)
    assert start in bases, f"log start {start} is not a batch boundary"
    assert retain <= remaining < retain + SEGMENT, f"{remaining} bytes kept, retention.bytes={retain}"
    assert _offsets(c, topic) == (start, end)
    assert [r.offset for r in log.records] == list(range(start, end))
    assert all(r.value == bytes([65 + (r.offset // 4) % 26]) * RECORD for r in log.records)
    assert fetch(c, topic, start - 1).error == OFFSET_OUT_OF_RANGE
    assert fetch(c, topic, 0).error == OFFSET_OUT_OF_RANGE
    first = fetch(c, topic, start)
    assert first.error == NONE and first.batches[0][0] == start and first.log_start_offset == start
    return start


def _wait_configs(c: Conn, topic: str, want: dict[str, tuple[str, int | None]]) -> None:
    """Until DescribeConfigs shows each key with the (value, source) wanted, source None meaning
    any (Kafka applies config changes through its metadata log, a moment after the alter
    answered)."""
    last = {}

    def matches():
        err, entries = describe_configs(c, TOPIC, topic, sorted(want))
        if err != NONE:
            return False
        last.update({k: (e.value, e.source) for k, e in entries.items()})
        return all(k in last and last[k][0] == value and source in (None, last[k][1])
                   for k, (value, source) in want.items())
    try:
        wait_for(matches, f"{topic} configs", WAIT, 0.1)
    except AssertionError:
        raise AssertionError(f"{topic}: DescribeConfigs shows {last}, want {want}") from None


# -------------------------------------------------------------------------------------- tests
def test_retention_by_size_deletes_whole_old_segments(storage_broker, unique_topic):
    """retention.bytes=50000 with 16 KB segments and ~300 KB produced: within a bounded wait the
    log start offset moves up to a segment boundary (a batch's base offset), at least
    retention.bytes and less than one more segment is kept, the log end offset stays, Fetch below
    the log start is OFFSET_OUT_OF_RANGE and from it returns the rest intact; appends go on at the
    end."""
    topic = unique_topic("ret-size")
    _create(storage_broker.bootstrap, topic, segment_bytes=str(SEGMENT), retention_bytes=str(RETAIN), retention_ms="-1")
    with Conn(storage_broker.bootstrap) as c:
        bases = _fill(c, topic, 75)
        assert bases == list(range(0, 300, 4))
        _check_size_retention(c, topic, bases, 300)
        assert _fill(c, topic, 1, first=75) == [300]


def test_retention_by_time_goes_by_record_timestamps(storage_broker, unique_topic):
    """retention.ms=10 minutes, 16 KB segments: 20 batches with CreateTime two hours ago, then 5
    with the current time. The segments holding only old records are deleted at the next check
    (the log start offset moves to a batch boundary at most one segment's worth of old records
    before the first recent one); a segment whose largest timestamp is recent stays, and every
    recent record is still there with its timestamp."""
    topic = unique_topic("ret-time")
    _create(storage_broker.bootstrap, topic, segment_bytes=str(SEGMENT), retention_ms=str(10 * 60_000),
            retention_bytes="-1")
    old = now_ms() - 2 * HOUR_MS
    with Conn(storage_broker.bootstrap) as c:
        bases = _fill(c, topic, 20, timestamp=old)
        recent_ts = now_ms()
        bases += _fill(c, topic, 5, timestamp=recent_ts, first=20)
        first_recent = 80

        start = _settled_start(c, topic, lambda s: s > 0, f"time retention on {topic}")
        assert start in bases and first_recent - 16 <= start <= first_recent  # less than a segment of old left
        log = read_log(c, topic, start)
        assert [(r.offset, r.timestamp) for r in log.records if r.offset >= first_recent] == \
            [(o, recent_ts) for o in range(first_recent, 100)]
        assert all(r.timestamp == old for r in log.records if r.offset < first_recent)
        assert _offsets(c, topic) == (start, 100)
        assert fetch(c, topic, start - 1).error == OFFSET_OUT_OF_RANGE


def test_time_retention_expires_the_active_segment_too(storage_broker, unique_topic):
    """retention.ms=4000 with records stamped now: nothing goes before the retention time; once
    every record is older than retention.ms, all of them go, the active segment included (Kafka
    rolls it first): log start offset = log end offset, Fetch at the end answers nothing without
    error, and appends continue at the old end."""
    topic = unique_topic("ret-all")
    _create(storage_broker.bootstrap, topic, segment_bytes=str(SEGMENT), retention_ms="4000", retention_bytes="-1")
    with Conn(storage_broker.bootstrap) as c:
        t0 = time.monotonic()
        _fill(c, topic, 10)
        if time.monotonic() - t0 < 2.5:  # (a box too slow to produce 40 KB in 2.5 s proves nothing here)
            assert _offsets(c, topic) == (0, 40), "records deleted before retention.ms passed"
        wait_for(lambda: _offsets(c, topic) == (40, 40), f"every record of {topic} to expire", WAIT)
        assert fetch(c, topic, 39).error == OFFSET_OUT_OF_RANGE
        end = fetch(c, topic, 40)
        assert end.error == NONE and end.batches == [] and end.log_start_offset == 40
        assert _fill(c, topic, 1) == [40]
        assert [r.offset for r in fetch(c, topic, 40).records] == [40, 41, 42, 43]


def test_segment_ms_rolls_an_old_segment_so_retention_can_delete_it(storage_broker, unique_topic):
    """segment.ms: two topics with 1 MB segments and retention.bytes=1000 get a 4 KB batch, then
    another one 2 s later. With segment.ms=1000 the second batch starts a new segment, so size
    retention deletes the first (log start = 4); with segment.ms at its default both batches stay
    in the active segment and nothing is deleted."""
    aged, control = unique_topic("roll-aged"), unique_topic("roll-control")
    for topic, segment_ms in ((aged, "1000"), (control, "604800000")):
        _create(storage_broker.bootstrap, topic, segment_bytes="1048576", segment_ms=segment_ms,
                retention_bytes="1000", retention_ms="-1")
    with Conn(storage_broker.bootstrap) as c:
        for topic in (aged, control):
            assert _fill(c, topic, 1) == [0]
        time.sleep(2.0)
        for topic in (aged, control):
            assert _fill(c, topic, 1, first=1) == [4]
        wait_for(lambda: _offsets(c, aged) == (4, 8), f"the first segment of {aged} to go", WAIT)
        time.sleep(1.5)  # three more retention checks
        assert _offsets(c, control) == (0, 8)
        assert fetch(c, aged, 3).error == OFFSET_OUT_OF_RANGE
        assert [r.offset for r in fetch(c, aged, 4).records] == [4, 5, 6, 7]


def test_batch_larger_than_a_segment_is_refused(storage_broker, unique_topic):
    """A record batch larger than the topic's segment.bytes cannot go in any segment: Produce
    answers RECORD_LIST_TOO_LARGE (18) and nothing is appended; a batch that just fits is taken."""
    topic = unique_topic("seg-too-big")
    _create(storage_broker.bootstrap, topic, segment_bytes="2048", retention_bytes="-1")
    with Conn(storage_broker.bootstrap) as c:
        fits = timed_batch([b"f" * 1900], [now_ms()])
        too_big = timed_batch([b"b" * 2100], [now_ms()])
        assert len(fits) <= 2048 < len(too_big)
        assert produce_batch(c, topic, [b"first"]) == 0
        assert produce_records(c, topic, too_big) == (RECORD_LIST_TOO_LARGE, -1)
        assert produce_records(c, topic, fits) == (NONE, 1)
        assert _offsets(c, topic) == (0, 2)


def test_broker_level_settings_are_topic_defaults(storage_broker, unique_topic):
    """Topics without overrides take the broker's log.segment.bytes, log.retention.bytes,
    log.retention.hours and log.roll.ms: DescribeConfigs shows segment.bytes, retention.bytes and
    segment.ms with source STATIC_BROKER_CONFIG, and retention.ms in ms (whose source Kafka
    3.9.1 reports as DEFAULT_CONFIG when it comes from log.retention.hours: not asserted), and
    retention acts on them: ~300 KB is cut down by size, records two days old are deleted by
    time."""
    by_size, by_time = unique_topic("brk-size"), unique_topic("brk-time")
    for topic in (by_size, by_time):
        _create(storage_broker.bootstrap, topic)
    with Conn(storage_broker.bootstrap) as c:
        _wait_configs(c, by_size, {"segment.bytes": (str(SEGMENT), STATIC_BROKER_CONFIG),
                                   "retention.bytes": (str(RETAIN), STATIC_BROKER_CONFIG),
                                   "retention.ms": ("86400000", None),  # Kafka says DEFAULT_CONFIG (5)
                                   "segment.ms": ("3600000", STATIC_BROKER_CONFIG)})
        size_bases = _fill(c, by_size, 75)
        # ~37 KB in all (under log.retention.bytes): only time retention can delete here.
        old_bases = _fill(c, by_time, 8, timestamp=now_ms() - 48 * HOUR_MS)
        assert _fill(c, by_time, 1, first=8) == [32]
        _check_size_retention(c, by_size, size_bases, 300)

        start = _settled_start(c, by_time, lambda s: s > 0, f"time retention on {by_time}")
        assert start in old_bases + [32] and 32 - 16 <= start <= 32
        assert [r.offset for r in read_log(c, by_time, start).records] == list(range(start, 36))


def test_retention_changed_at_run_time_takes_effect(storage_broker, unique_topic):
    """Two topics with 16 KB segments and unlimited retention keep all of ~300 KB. Then
    retention.bytes=50000 is set at run time, on one with IncrementalAlterConfigs, on the other
    with the legacy AlterConfigs (which must repeat segment.bytes: it replaces the whole set):
    old segments are deleted as if the topics had been created so. Lowering retention.ms to 1 s
    afterwards deletes more."""
    inc, legacy = unique_topic("chg-inc"), unique_topic("chg-legacy")
    for topic in (inc, legacy):
        _create(storage_broker.bootstrap, topic, segment_bytes=str(SEGMENT), retention_bytes="-1", retention_ms="-1")
    with Conn(storage_broker.bootstrap) as c:
        bases = {topic: _fill(c, topic, 75) for topic in (inc, legacy)}
        time.sleep(2.0)  # four retention checks: nothing to delete yet
        assert _offsets(c, inc) == (0, 300) and _offsets(c, legacy) == (0, 300)
        ans = incremental_alter_configs(c, [(TOPIC, inc, [("retention.bytes", SET, str(RETAIN))])])
        assert [(a.error, a.resource_name) for a in ans] == [(NONE, inc)]
        ans = alter_configs(c, [(TOPIC, legacy, [("segment.bytes", str(SEGMENT)), ("retention.bytes", str(RETAIN)),
                                                 ("retention.ms", "-1")])], version=1)
        assert [(a.error, a.resource_name) for a in ans] == [(NONE, legacy)]
        starts = {topic: _check_size_retention(c, topic, bases[topic], 300) for topic in (inc, legacy)}
        ans = incremental_alter_configs(c, [(TOPIC, inc, [("retention.ms", SET, "1000")])])
        assert [(a.error, a.resource_name) for a in ans] == [(NONE, inc)]
        wait_for(lambda: _offsets(c, inc)[0] > starts[inc], f"time retention on {inc}", WAIT)


def test_produce_and_fetch_keep_going_while_retention_deletes(storage_broker, unique_topic):
    """For 10 s a producer (acks=all, ~500 KB/s) and a consumer (auto.offset.reset=earliest) work
    on a topic with 64 KB segments and retention.bytes=150000, so retention deletes segments under
    them several times a second. Every message is acknowledged, at contiguous offsets; the consumer's
    offsets only go up (a reset to earliest may skip deleted ones), it keeps receiving, and it
    reaches the last message once the producer stops; the log start offset moved meanwhile."""
    topic = unique_topic("live")
    _create(storage_broker.bootstrap, topic, segment_bytes="65536", retention_bytes="150000", retention_ms="-1")
    run_for, rate, value = 10.0, 500, b"L" * 1000
    acked: list[int] = []
    delivery_errors: list = []
    produced = [0]

    def on_delivery(err, msg):
        if err is not None:
            delivery_errors.append(err)
        else:
            acked.append(msg.offset())

    def produce_loop():
        # batch.size below segment.bytes: Kafka refuses a batch larger than a segment (see below).
        p = Producer({"bootstrap.servers": storage_broker.bootstrap, "acks": "all", "linger.ms": 5, "batch.size": 16000,
                      "enable.idempotence": False, "message.timeout.ms": 30000, "log_level": 3})
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < run_for:
            while produced[0] < elapsed * rate:
                p.produce(topic, value=value, partition=0, on_delivery=on_delivery)
                produced[0] += 1
            p.poll(0.01)
        produced.append(p.flush(30))

    cons = Consumer({"bootstrap.servers": storage_broker.bootstrap, "group.id": "compat-live",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100,
                     "log_level": 3})
    cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    producer = threading.Thread(target=produce_loop, daemon=True)
    t0 = time.monotonic()
    producer.start()
    got: list[int] = []
    errors: list = []
    longest_gap, last_msg_at = 0.0, time.monotonic()
    try:
        deadline = t0 + run_for + WAIT
        while time.monotonic() < deadline:
            msgs = cons.consume(num_messages=1000, timeout=0.2)
            now = time.monotonic()
            for m in msgs:
                if m.error():
                    errors.append(m.error())
                    continue
                got.append(m.offset())
            if any(not m.error() for m in msgs):
                if now - t0 < run_for:
                    longest_gap = max(longest_gap, now - last_msg_at)
                last_msg_at = now
            if not producer.is_alive() and got and acked and got[-1] == max(acked):
                break
    finally:
        cons.close()
    producer.join(40)
    assert not producer.is_alive()
    assert produced[1] == 0, f"{produced[1]} messages not delivered"
    assert not delivery_errors, delivery_errors[:3]
    assert len(acked) == produced[0] > rate
    assert sorted(acked) == list(range(len(acked))), "acknowledged offsets are not contiguous from 0"
    unexpected = [e for e in errors if e.code() not in (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET)]
    assert not unexpected, unexpected[:3]
    assert got and all(a < b for a, b in zip(got, got[1:])), "consumer offsets went back or repeated"
    assert got[-1] == len(acked) - 1, f"consumer stopped at {got[-1]}, last acknowledged {len(acked) - 1}"
    assert longest_gap < 8.0, f"the consumer got nothing for {longest_gap:.1f}s while the producer ran"
    with Conn(storage_broker.bootstrap) as c:
        start, end = _offsets(c, topic)
    assert 0 < start < end == len(acked), (start, end)


def test_topic_configs_and_log_start_survive_a_restart(storage_broker, unique_topic):
    """Changes made at run time are durable: after a clean restart of the broker, configs set and
    deleted with IncrementalAlterConfigs (a deleted override falls back to the broker's
    log.segment.bytes), configs replaced with AlterConfigs v2 (retention.ms back to the broker's
    log.retention.hours) and a log start offset moved by DeleteRecords are all still in effect.
    Runs last in this module: it restarts the module's broker."""
    inc, legacy, deleted = unique_topic("keep-inc"), unique_topic("keep-legacy"), unique_topic("keep-del")
    _create(storage_broker.bootstrap, inc, segment_bytes="1048576", retention_bytes="-1")
    _create(storage_broker.bootstrap, legacy, retention_ms="1234567", retention_bytes="-1")
    _create(storage_broker.bootstrap, deleted, retention_bytes="-1")
    inc_want = {"retention.ms": ("7777777", DYNAMIC_TOPIC_CONFIG), "max.message.bytes": ("500000", DYNAMIC_TOPIC_CONFIG),
                "segment.bytes": (str(SEGMENT), STATIC_BROKER_CONFIG), "retention.bytes": ("-1", DYNAMIC_TOPIC_CONFIG)}
    legacy_want = {"retention.bytes": ("123456789", DYNAMIC_TOPIC_CONFIG), "segment.ms": ("7200000", DYNAMIC_TOPIC_CONFIG),
                   "retention.ms": ("86400000", None)}
    with Conn(storage_broker.bootstrap) as c:
        ans = incremental_alter_configs(c, [(TOPIC, inc, [("retention.ms", SET, "7777777"),
                                                          ("max.message.bytes", SET, "500000"),
                                                          ("segment.bytes", DELETE, None)])])
        assert [a.error for a in ans] == [NONE]
        ans = alter_configs(c, [(TOPIC, legacy, [("retention.bytes", "123456789"), ("segment.ms", "7200000")])], version=2)
        assert [a.error for a in ans] == [NONE]
        assert _fill(c, deleted, 5) == [0, 4, 8, 12, 16]
        assert delete_records(c, {deleted: {0: 6}}) == {(deleted, 0): (NONE, 6)}
        _wait_configs(c, inc, inc_want)
        _wait_configs(c, legacy, legacy_want)

    storage_broker.restart()

    with Conn(storage_broker.bootstrap) as c:
        def ready():  # Kafka leads its partitions again a few seconds after it listens
            a = list_offsets(c, deleted, {0: EARLIEST}, 7)[0]
            return a if a.error == NONE else None
        assert wait_for(ready, f"{deleted} to be served after the restart", 60).offset == 6
        _wait_configs(c, inc, inc_want)
        _wait_configs(c, legacy, legacy_want)
        assert _offsets(c, deleted) == (6, 20)
        assert fetch(c, deleted, 5).error == OFFSET_OUT_OF_RANGE
        assert [r.offset for r in read_log(c, deleted, 6).records if r.offset >= 6] == list(range(6, 20))
        assert _fill(c, deleted, 1) == [20]
        err, entries = describe_configs(c, TOPIC, inc, ["cleanup.policy"])
        assert err == NONE and entries["cleanup.policy"].source == DEFAULT_CONFIG
