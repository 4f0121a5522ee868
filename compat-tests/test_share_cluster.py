"""Share groups in a cluster (issue 18): share-partition state is kept by the share coordinators in
__share_group_state (RF 3 here), so the partition leader's death loses no acknowledgement and hands
no accepted record out again. Sluice only: Kafka keeps the same topic, and its single-node side is
compared in test_share_groups.py.

A 3-broker cluster (a controller and three brokers, group.share.enable=true,
min.insync.replicas=2), a topic of 1 partition with RF 3, and Apache Kafka's KafkaShareConsumer
(kafka-clients 4.4.0, java44/JavaShare.java):
  - a consumer accepts k of n records (commitSync: answered once the share coordinator's record is
    on every in-sync replica) and dies holding the others; the partition leader is kill -9ed (and
    with it, when it was one, the share coordinator of the share-partition); once a new leader is
    elected, a new consumer gets exactly the n - k records that were not accepted: none of the
    accepted ones again, none lost (the checker reads every key back);
  - the killed broker comes back, the leadership is moved back to it by a preferred election, and
    a third consumer of the group gets nothing: the state it reads is the one the others wrote.
  - consumption under two rounds of leader faults, kill -9 and SIGSTOP past the session timeout
    (a paused old leader that wakes up still believing it leads), checked from the consumer's own
    record of what was delivered and what the broker confirmed;
  - kafka-share-groups.sh against the cluster: --list, --describe (the start offsets the share
    coordinators hold), --reset-offsets --to-earliest (everything delivered again), --delete-offsets,
    --delete (the state goes from the share coordinators).
Every wait is bounded.
"""
from __future__ import annotations

import datetime
import time

import pytest

from harness.cluster import SluiceCluster, sluice_only_fixture  # noqa: F401 (fixture)
from harness.kadmin_wire import Conn, elect_leaders
from test_share_groups import java44_libs, java_share, share_groups_tool_scenario  # noqa: F401 (fixture)

CONFIG = {"group.share.enable": "true", "default.replication.factor": "3", "min.insync.replicas": "2",
          "share.coordinator.state.topic.num.partitions": "3",
          "group.share.record.lock.duration.ms": "2000",
          # JVMs starting on 2 cores must not get brokers fenced by accident (the harness's 2 s).
          "broker.session.timeout.ms": "6000"}


INTERNAL_TOPICS = ("__consumer_offsets", "__share_group_state")


def cluster_diagnosis(c: SluiceCluster, since: str = "", per_node: int = 15) -> str:
    """What a failure's message shows: the internal partitions' leaders and ISRs, and what the
    brokers logged about groups, share-partitions and coordinators from `since` (a UTC time,
    "2026-12-07T13:37:07") on. Short: CI shows only the start and the end of a failure's output."""
    out = []
    for internal in INTERNAL_TOPICS:
        try:
            out.append(f"{internal}: {c.partition_state(internal)}")
        except Exception as e:  # noqa: BLE001 (a diagnosis must not hide the failure)
            out.append(f"{internal}: {e!r}")
    for node_id in sorted(c.nodes):
        log = c.nodes[node_id].log_path
        if log.exists():
            wanted = [line for line in log.read_text(errors="replace").splitlines()
                      if line[:19] >= since and not line.startswith("====")
                      and any(w in line for w in ("share", "coordinat", "fenced", "ISR", "leader", "WARN", "ERROR"))]
            out.append(f"node {node_id}:\n" + "\n".join(wanted[-per_node:]))
    return "\n".join(out)


def read_until(proc, lines: list[str], wanted, what: str, timeout: float = 60) -> None:
    """Reads the consumer's stdout into `lines` until a line `wanted` accepts (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        line = proc.stdout.readline()
        assert line, f"the consumer ended early: {lines[-3:]}"
        lines.append(line)
        if wanted(line.strip()):
            return
        assert time.monotonic() < deadline, f"{what}: {lines[-3:]}"


def hold_consumer(proc, lines: list[str], then=lambda: None) -> None:
    """Asks the share-accept-under-faults consumer to stop polling once its poll or commit under way
    returns; runs `then` meanwhile; returns once it says HELD."""
    proc.stdin.write("hold\n")
    proc.stdin.flush()
    then()
    read_until(proc, lines, lambda line: line == "HELD", "the consumer did not hold")


def test_share_group_survives_leader_kill9(java44_libs):
    n, k = 300, 150
    topic, group = "t-share-kill", "g-share-kill"
    c = SluiceCluster(brokers=3, config=CONFIG)
    try:
        c.start()
        c.create_topic(topic, 1, 3)
        first = java_share(java44_libs, c.bootstrap, "share-accept-some", topic, group, str(n), str(k))
        accepted = set(first["accepted"])
        assert len(accepted) == k

        leader = c.leader_of(topic, 0)
        c.node(leader).kill9()
        c.wait_partitions(topic, lambda s: s[0][0] not in (-1, leader), timeout=30)
        rest = java_share(java44_libs, c.live_bootstrap(), "share-drain", topic, group, str(n - k))
        drained = rest["drained"]
        again = accepted & set(drained)
        assert not again, f"accepted records delivered again after the leader's kill -9: {sorted(again)[:10]}"
        assert len(drained) == len(set(drained)) == n - k, f"{len(drained)} drained, {len(set(drained))} distinct"
        assert accepted | set(drained) == {f"k{i}" for i in range(n)}

        # The old leader returns and leads again: its share-partition is read from the coordinator.
        c.node(leader).start()
        c.wait_partitions(topic, lambda s: leader in s[0][2], timeout=60)
        conn = Conn(c.live_bootstrap().split(",")[0])
        try:
            deadline = time.monotonic() + 30
            while c.leader_of(topic, 0) != c.partition_state(topic)[0][1][0]:
                assert time.monotonic() < deadline, "no preferred leader elected"
                elect_leaders(conn, {topic: [0]})
                time.sleep(0.5)
        finally:
            conn.close()
        last = java_share(java44_libs, c.live_bootstrap(), "share-drain", topic, group, "0")
        assert last["drained"] == [], f"records delivered again: {last['drained'][:10]}"
    finally:
        c.cleanup()


def test_kafka_share_groups_tool_in_a_cluster(java44_libs):
    c = SluiceCluster(brokers=3, config=CONFIG)
    try:
        c.start()
        c.create_topic("t-share-tool", 1, 3)
        share_groups_tool_scenario(java44_libs, c.bootstrap, "t-share-tool", "g-share-tool")
    finally:
        c.cleanup()


@pytest.mark.parametrize("fault", ["kill9", "pause"])
def test_share_group_under_leader_faults(java44_libs, fault):
    """Consumption goes on while the partition leader fails twice (bounded rounds: the victim comes
    back and rejoins the ISR before the next):
      - kill9: kill -9, then a restart;
      - pause: SIGSTOP past the session timeout, so that it is fenced and another leads, then
        SIGCONT. The old leader wakes up believing it still leads, with the share-partition's
        state in memory and, often, the consumer's acknowledgement sent during the pause waiting
        in its socket: the share coordinator's leader-epoch fencing (and the replication of its
        records) must keep such a write from being confirmed or from undoing the new leader's.
    Checked from the consumer's own record of events: no record is delivered after the broker
    confirmed its acceptance; every record is accepted (confirmed, or unconfirmed when a commit got
    no answer); a last consumer of the group gets only records whose acceptance was never
    confirmed, none that was."""
    import json
    import os
    import subprocess
    from test_share_groups import JAVA44
    n = 3000
    topic, group = "t-share-faults", "g-share-faults"
    c = SluiceCluster(brokers=3, config=CONFIG)
    proc = None
    try:
        c.start()
        c.create_topic(topic, 1, 3)
        # record_limit: polls of at most 50 records (not whole producer batches of hundreds), so that
        # each round finds the consumer mid-way and leaves records for the other member.
        acquire = {"SHARE_ACQUIRE_MODE": "record_limit"}
        env = {**os.environ, "BOOTSTRAP_SERVERS": c.bootstrap, "COMPAT_DEADLINE_S": "300",
               "SHARE_HOLD_MS": "150", **acquire}
        stderr = open(c.workdir / "java-consumer.log", "w")
        proc = subprocess.Popen(["java", "-Xmx256m", "-Dlog4j2.configurationFile=log4j2.properties", "-cp",
                                 f"{java44_libs}/*", "JavaShare.java", "share-accept-under-faults", topic, group,
                                 str(n)], cwd=JAVA44, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, text=True)
        lines: list[str] = []
        victims = []  # one per round
        taken: list[set[str]] = []  # pause: what another member accepted while the old leader slept, per round
        for threshold in (n // 4, n // 2):
            read_until(proc, lines, lambda line: line.startswith("PROGRESS") and int(line.split()[1]) >= threshold,
                       f"no progress to {threshold}", timeout=120)
            leader = c.leader_of(topic, 0)
            victims.append(leader)
            if fault == "kill9":
                c.node(leader).kill9()
                c.wait_partitions(topic, lambda s: s[0][0] not in (-1, leader), timeout=30)
                c.node(leader).start()
            else:
                # Every internal partition in sync first: the group's coordinator shard and its share
                # coordinator then keep a leader when the old one is fenced (with only the old leader
                # in an ISR, shrunk on a busy machine, it would stay leaderless: no unclean election).
                # The consumer holds meanwhile: on a busy machine the wait can last long enough for it
                # to accept every record left, leaving the other member below none to take (stop 33).
                hold_consumer(proc, lines)
                for internal in INTERNAL_TOPICS:
                    c.wait_partitions(internal, lambda s: all(set(isr) == set(rs) for _, rs, isr in s.values()),
                                      timeout=30)
                # Paused with a poll or commit of the consumer's under way: right after its next progress.
                proc.stdin.write("go\n")
                proc.stdin.flush()
                read_until(proc, lines, lambda line: line.startswith("PROGRESS"), "no progress after go")
                paused_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
                c.pause(leader)
                # The consumer stops polling once its poll or commit under way returns, so that the
                # other member below, slow to start on a busy machine, still finds records to take
                # (without it the consumer could take them all from the new leader first: CI, stop 32).
                hold_consumer(proc, lines, then=lambda: c.wait_partitions(
                    topic, lambda s: s[0][0] not in (-1, leader), timeout=30))
                # While the old leader sleeps with the consumer's records acquired (and, often, its
                # acknowledgement unread in the socket), another member takes records from the new one:
                # the records the sleeper held are the first it gets.
                awake = ",".join(c.node(b).bootstrap for b in c.broker_ids if b != leader)
                try:
                    other = java_share(java44_libs, awake, "share-accept-count", topic, group, "100", env=acquire)
                except AssertionError as e:
                    # The member's own account (its view of the group every 5 s) last, where CI shows it.
                    raise AssertionError(f"{cluster_diagnosis(c, paused_at)}\n{e}") from None
                taken.append(set(other["confirmed"]))
                proc.stdin.write("go\n")
                proc.stdin.flush()
                c.resume(leader)
            c.wait_partitions(topic, lambda s: leader in s[0][2], timeout=60)
        # The consumer ends once every key is accepted, by it or by the other members, or 15 s after
        # this line without a record.
        try:
            proc.stdin.write(f"others {' '.join(sorted(set().union(*taken)))}\nend\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # it has ended already
        # read(), not communicate(): that reads the pipe itself and would miss what readline() buffered.
        # The consumer halts itself at its deadline (COMPAT_DEADLINE_S).
        lines += proc.stdout.read().splitlines()
        proc.wait(timeout=30)
        results = [line for line in lines if line.startswith("{")]
        assert results, f"no result from the consumer: {lines[-5:]} {(c.workdir / 'java-consumer.log').read_text()[-3000:]}"
        result = json.loads(results[-1])
        assert result["ok"], result.get("failures")
        events = [e.split(" ", 1) for e in result["events"]]
        confirmed_at: dict[str, int] = {}
        unconfirmed: set[str] = set()
        delivered: set[str] = set()
        late = []
        for i, (kind, key) in enumerate(events):
            if kind == "A":
                confirmed_at.setdefault(key, i)
            elif kind == "U":
                unconfirmed.add(key)
            elif kind == "D":
                delivered.add(key)
                if key in confirmed_at:
                    late.append(key)
        others = set().union(*taken)
        summary = json.dumps({"fault": fault, "victims": victims, "ended": result.get("ended"),
                              "elapsed_ms": result.get("elapsed_ms"),
                              "deliveries": sum(1 for k, _ in events if k == "D"),
                              "confirmed": len(confirmed_at), "unconfirmed": len(unconfirmed - confirmed_at.keys()),
                              "taken_by_another_member": [len(t) for t in taken],
                              "taken_while_held_by_the_sleeper": [len(t & delivered) for t in taken]})
        print(summary)
        assert not late, f"delivered again after a confirmed acceptance: {late[:10]}"
        twice = others & set(confirmed_at)
        assert not twice, f"accepted by two members: {sorted(twice)[:10]}"
        everything = {f"k{i}" for i in range(n)}
        never = sorted(everything - set(confirmed_at) - unconfirmed - others, key=lambda k: int(k[1:]))
        # Short: CI shows only the start and the end of a failure's output (a set diff of 3,000 keys
        # hid everything else at stop 34). The consumer's account last.
        assert not never, (f"{len(never)} records never accepted, {never[:5]} .. {never[-5:]}; {summary}\n"
                           f"{cluster_diagnosis(c, per_node=8)}\n"
                           f"{(c.workdir / 'java-consumer.log').read_text(errors='replace')[-2500:]}")
        if fault == "kill9":
            assert sum(1 for k, _ in events if k == "D") > n, "no record was in flight at a kill: the test proved nothing"
        else:
            assert others & delivered, "the sleeper held nothing another member took: the test proved nothing"
        # Only a key whose acceptance went unconfirmed may come back (if it was not applied after all).
        last = java_share(java44_libs, c.live_bootstrap(), "share-drain", topic, group, "-1")
        assert not set(last["drained"]) & (set(confirmed_at) | others), "a confirmed acceptance undone"
        assert set(last["drained"]) <= unconfirmed
    finally:
        if proc and proc.poll() is None:
            proc.kill()
        c.cleanup()
