"""A controller quorum (issue 17): three controller-only nodes replicate the metadata log with
Kafka's KRaft protocol (KIP-595) and three brokers follow whichever leads. The active controller is
killed (kill -9) round after round, paused (SIGSTOP) and cut off from the network, while topics are
created, brokers fenced and unfenced, and an idempotent acks=all producer runs throughout. The checks:
every topic whose creation was acknowledged exists at the end; every controller and every broker
converges on the same metadata log end and the same image (`sluice metadata-image`, byte for byte);
nothing the producer had acknowledged is lost, changed, duplicated or reordered
(`check_replicated`). Sluice-only: Kafka's quorum is what this copies, checked for the tool's view
in test_cluster_operations.py. Figures (failover times) are printed with -s."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from confluent_kafka.admin import NewTopic

from harness import kadmin_wire, kwire, netlab
from harness.brokers import sluice_bin
from harness.cluster import SluiceCluster
from harness.replication_check import P, AckedProducer, check_replicated, read_all
from test_cluster_operations import GroupReader, kafka_tool
from test_java_clients import java_libs  # noqa: F401  (session fixture)

# Kafka's quorum timeouts, shortened (as the cluster harness shortens the broker ones): a follower
# that hears nothing from the leader for 1 s stands for election.
QUORUM = {"controller.quorum.election.timeout.ms": "500", "controller.quorum.fetch.timeout.ms": "1000",
          "controller.quorum.request.timeout.ms": "1000", "default.replication.factor": "3"}


@pytest.fixture(autouse=True)
def _sluice_only(request):
    if "sluice" not in request.config.getoption("--brokers"):
        pytest.skip("a Sluice cluster")


def describe_quorum(cluster: SluiceCluster, node_id: int, timeout: float = 3.0) -> kadmin_wire.Quorum:
    node = cluster.nodes[node_id]
    with kadmin_wire.Conn(f"{node.host}:{node.port}", timeout=timeout) as conn:
        return kadmin_wire.describe_quorum(conn)


def active_controller(cluster: SluiceCluster, timeout: float = 20.0, exclude: set[int] = frozenset()) -> int:
    """The voter that answers DescribeQuorum as leader (the others answer NOT_LEADER_OR_FOLLOWER)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        for n in cluster.controller_ids:
            if n in exclude or not cluster.nodes[n].running() or n in cluster.cut_off:
                continue
            try:
                q = describe_quorum(cluster, n, 1.0)
                if q.error == 0 and q.partition_error == 0 and q.leader_id == n:
                    return n
                last = q
            except OSError as e:
                last = e
        assert time.monotonic() < deadline, f"no controller leads after {timeout}s: {last}"
        time.sleep(0.05)


def wait_converged(cluster: SluiceCluster, timeout: float = 40.0, voters: int = 3) -> kadmin_wire.Quorum:
    """Until the leader reports every voter and every broker at its high watermark, by fetches made
    from now on (asked through a broker, which forwards to whichever leads), twice in a row."""
    since_ms = time.time() * 1000
    deadline = time.monotonic() + timeout
    seen = None
    while True:
        try:
            q = describe_quorum(cluster, cluster.broker_ids[0])
            ends = {v[0] for v in q.voters.values()} | {o[0] for o in q.observers.values()}
            fetched = [v[1] for v in q.voters.values() if v[1] != q.voters.get(q.leader_id, (0, 0))[1]]
            fetched += [o[1] for o in q.observers.values()]
            if (q.partition_error == 0 and ends == {q.high_watermark} and len(q.voters) == voters
                    and all(ms >= since_ms for ms in fetched)
                    and sorted(q.observers) == sorted(cluster.broker_ids)):
                if seen == q.high_watermark:
                    return q
                seen = q.high_watermark
            else:
                seen = None
        except OSError as e:
            q = e
        assert time.monotonic() < deadline, f"the quorum does not converge: {q}"
        time.sleep(0.3)


def metadata_image(cluster: SluiceCluster, node_id: int) -> str:
    out = subprocess.run([str(sluice_bin()), "metadata-image", str(cluster.nodes[node_id].workdir / "data")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def assert_images_identical(cluster: SluiceCluster) -> str:
    """Everything killed at once (no shutdown record written), then every node's copy of the log
    replayed: the same end offset and the same image everywhere."""
    for node in cluster.nodes.values():
        node.kill9()
    images = {n: metadata_image(cluster, n) for n in cluster.nodes}
    first = images[cluster.controller_ids[0]]
    for n, image in images.items():
        assert image == first, f"node {n}'s metadata differs from node {cluster.controller_ids[0]}'s:\n" \
                               f"{image[:400]}\n---\n{first[:400]}"
    return first


def create_acknowledged(cluster: SluiceCluster, topic: str, deadline: float, rf: int = 3) -> float:
    """Creates `topic` (RF 3) through the brokers, retrying what the client reports as retriable
    (a quorum without a leader, a broker's forward timing out) until acknowledged. Returns the time
    it took. A retry may find the topic made by an attempt whose answer was lost: that counts."""
    start = time.monotonic()
    while True:
        admin = cluster.admin()
        f = admin.create_topics([NewTopic(topic, 2, rf)], operation_timeout=10, request_timeout=15)[topic]
        try:
            f.result(20)
            return time.monotonic() - start
        except Exception as e:  # noqa: BLE001
            if "TOPIC_ALREADY_EXISTS" in str(e) or "already exists" in str(e):
                return time.monotonic() - start
            assert time.monotonic() < deadline, f"{topic} not created: {e}"
            time.sleep(0.2)


def topics_listed(cluster: SluiceCluster) -> set[str]:
    return set(cluster.admin().list_topics(timeout=10).topics)


def test_active_controller_killed_repeatedly_loses_no_metadata():
    """Six rounds: the active controller kill -9ed, a topic created while the others elect, a broker
    killed and restarted every other round (fenced, then unfenced under a new epoch), the controller
    restarted and back in the quorum; an acks=all producer throughout."""
    with SluiceCluster(brokers=3, controllers=3, config=QUORUM) as c:
        topic = "quorum-load"
        producer = AckedProducer.on_new_topic(c, topic, rate=200, limit=20_000)
        reader = GroupReader(c.bootstrap, topic, "quorum-readers")  # a consumer group throughout
        producer.wait_acked(100)
        created, failovers = [], []
        for rnd in range(6):
            leader = active_controller(c)
            c.node(leader).kill9()
            t0 = time.monotonic()
            new_leader = active_controller(c, exclude={leader})
            failovers.append(time.monotonic() - t0)
            name = f"quorum-topic-{rnd}"
            create_acknowledged(c, name, time.monotonic() + 60)
            created.append(name)
            if rnd % 2 == 1:
                broker = c.broker_ids[rnd % len(c.broker_ids)]
                c.node(broker).kill9()
                # Fenced by the new leader: it leaves Metadata's broker list.
                c.wait_brokers(len(c.broker_ids) - 1, via=c.broker_ids[(rnd + 1) % len(c.broker_ids)])
                c.node(broker).start()
                c.wait_brokers(len(c.broker_ids), via=broker)
            c.node(leader).start()
            wait_converged(c)
            assert new_leader != leader
        producer.wait_acked(len(producer.acked) + 100, timeout=60)
        producer.stop()
        assert set(created) <= topics_listed(c), (created, topics_listed(c))
        figures = check_replicated(c.bootstrap, topic, producer.acked)
        ends = {p: len(records) for p, records in read_all(c.bootstrap, topic).items()}
        reader.wait_until(ends)
        reader.close()
        for p in range(P):
            assert reader.seen[p] == set(range(ends[p])), f"partition {p}: the group saw a gap"
        q = wait_converged(c)
        print(f"\nfailover (a new leader answers) after kill -9: "
              f"{', '.join(f'{t:.2f}' for t in failovers)} s; metadata log end {q.high_watermark}; {figures}")
        image = assert_images_identical(c)
        for name in created:
            assert f"{name}".encode().hex() in image, f"{name} missing from the image"


def test_paused_leader_is_replaced_and_steps_down_when_resumed():
    """SIGSTOP on the active controller: the others elect a new one, which takes topic creations and
    broker heartbeats; on SIGCONT the old leader learns the new epoch and follows, catching up."""
    with SluiceCluster(brokers=3, controllers=3, config=QUORUM) as c:
        topic = "quorum-pause"
        producer = AckedProducer.on_new_topic(c, topic, rate=200, limit=20_000)
        producer.wait_acked(100)
        for rnd in range(2):
            leader = active_controller(c)
            c.pause(leader)
            t0 = time.monotonic()
            new_leader = active_controller(c, exclude={leader})
            failover = time.monotonic() - t0
            create_acknowledged(c, f"paused-{rnd}", time.monotonic() + 60)
            # Brokers keep their sessions with the new leader: none is fenced while the old one sleeps.
            time.sleep(2.5)
            assert kwire.metadata_broker_count(c.nodes[c.broker_ids[0]].host, c.nodes[c.broker_ids[0]].port) == 3
            c.resume(leader)
            q = wait_converged(c)
            assert q.leader_id == new_leader != leader, q
            print(f"\nround {rnd}: paused {leader}, {new_leader} leads after {failover:.2f} s")
        producer.wait_acked(len(producer.acked) + 100, timeout=60)
        producer.stop()
        assert {"paused-0", "paused-1"} <= topics_listed(c)
        check_replicated(c.bootstrap, topic, producer.acked)
        assert_images_identical(c)


def test_minority_cut_off_changes_nothing_for_clients():
    """Network namespaces (root): first a follower controller is cut off (a minority: the leader
    goes on, creations go on), then the leader itself (the other two elect a new one; the cut-off
    one resigns, since it no longer hears from a majority). Healed, both catch up."""
    if not netlab.available():
        pytest.skip("network namespaces need root and iproute2")
    lab = netlab.NetLab()
    c = SluiceCluster(brokers=3, controllers=3, config=QUORUM, netlab=lab)
    try:
        c.start()
        topic = "quorum-cut"
        producer = AckedProducer.on_new_topic(c, topic, rate=200, limit=20_000)
        producer.wait_acked(100)
        leader = active_controller(c)
        follower = next(n for n in c.controller_ids if n != leader)
        c.cut(follower)
        create_acknowledged(c, "cut-follower", time.monotonic() + 30)
        assert active_controller(c) == leader
        c.heal(follower)
        wait_converged(c)

        c.cut(leader)
        t0 = time.monotonic()
        new_leader = active_controller(c, exclude={leader})
        failover = time.monotonic() - t0
        create_acknowledged(c, "cut-leader", time.monotonic() + 60)
        # The cut-off leader resigns (it no longer hears from a majority) within 1.5 fetch
        # timeouts; it cannot be asked over the network, so its log says so.
        deadline = time.monotonic() + 10
        while "lost touch with a majority of the quorum" not in c.node(leader).log_path.read_text():
            assert time.monotonic() < deadline, "the cut-off leader did not resign"
            time.sleep(0.2)
        c.heal(leader)
        q = wait_converged(c)
        assert q.leader_id == new_leader
        producer.wait_acked(len(producer.acked) + 100, timeout=60)
        producer.stop()
        assert {"cut-follower", "cut-leader"} <= topics_listed(c)
        check_replicated(c.bootstrap, topic, producer.acked)
        print(f"\nthe cut-off leader replaced after {failover:.2f} s")
        assert_images_identical(c)
    finally:
        c.cleanup()
        lab.close()


def test_wiped_controller_rejoins_from_a_snapshot():
    """A follower controller kill -9ed and its data directory wiped: it comes back as an empty voter,
    loads the leader's snapshot (snapshots every few KB here, so the log it missed is gone), follows,
    and votes again only once caught up. Then the leader is killed: the wiped one and the third
    elect a new leader that has every topic created before."""
    config = {**QUORUM, "metadata.log.max.record.bytes.between.snapshots": "500"}
    with SluiceCluster(brokers=3, controllers=3, config=config) as c:
        topic = "quorum-wipe"
        producer = AckedProducer.on_new_topic(c, topic, rate=200, limit=20_000)
        producer.wait_acked(100)
        for i in range(6):  # enough records for snapshots past what the wiped voter will need
            create_acknowledged(c, f"before-wipe-{i}", time.monotonic() + 30)
        leader = active_controller(c)
        wiped = next(n for n in c.controller_ids if n != leader)
        c.node(wiped).kill9()
        shutil.rmtree(c.node(wiped).data_dir)
        c.node(wiped).start()
        wait_converged(c)
        log = c.node(wiped).log_path.read_text()
        assert "metadata snapshot at offset" in log, "the wiped voter should have loaded a snapshot"
        assert "has caught up with the quorum" in log

        c.node(leader).kill9()
        new_leader = active_controller(c, exclude={leader})
        create_acknowledged(c, "after-wipe", time.monotonic() + 60)
        c.node(leader).start()
        wait_converged(c)
        producer.wait_acked(len(producer.acked) + 100, timeout=60)
        producer.stop()
        assert {f"before-wipe-{i}" for i in range(6)} | {"after-wipe"} <= topics_listed(c)
        check_replicated(c.bootstrap, topic, producer.acked)
        print(f"\nwiped {wiped}; after {leader} was killed, {new_leader} leads")
        assert_images_identical(c)


def test_kafka_metadata_quorum_tool_shows_the_quorum(java_libs):  # noqa: F811
    """kafka-metadata-quorum.sh (MetadataQuorumCommand) through a broker: the leader, three voters,
    the brokers as observers, each caught up; after the leader's kill -9, the new leader in a
    later epoch, and the killed one lagging until it is back."""
    with SluiceCluster(brokers=3, controllers=3, config=QUORUM) as c:
        c.create_topic("quorum-tool", 1, 3)
        wait_converged(c)

        def status() -> dict[str, str]:
            run = kafka_tool(java_libs, "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server",
                             c.live_bootstrap(), "describe", "--status")
            assert run.returncode == 0, run.stdout + run.stderr
            return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in run.stdout.splitlines() if ":" in line)}

        def replication() -> dict[str, dict[str, str]]:
            """{node id: {column: value}}: NodeId, DirectoryId, LogEndOffset, Lag, ..., Status."""
            run = kafka_tool(java_libs, "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-server",
                             c.live_bootstrap(), "describe", "--replication")
            assert run.returncode == 0, run.stdout + run.stderr
            lines = [line.split() for line in run.stdout.splitlines() if line.strip()]
            return {row[0]: dict(zip(lines[0], row)) for row in lines[1:]}

        leader = active_controller(c)
        s = status()
        assert s["LeaderId"] == str(leader), s
        first_epoch = int(s["LeaderEpoch"])
        for n in c.controller_ids:
            assert f"CONTROLLER://127.0.0.1:{c.controller_ports[n]}" in s["CurrentVoters"], s
        assert all(f'"id": {b}' in s["CurrentObservers"] for b in c.broker_ids), s
        rows = replication()
        assert {k: v["Status"] for k, v in rows.items()} == {
            **{str(n): "Leader" if n == leader else "Follower" for n in c.controller_ids},
            **{str(b): "Observer" for b in c.broker_ids}}, rows
        hw = int(s["HighWatermark"])
        assert all(int(v["LogEndOffset"]) == hw and v["Lag"] == "0" for v in rows.values()), rows

        c.node(leader).kill9()
        new_leader = active_controller(c, exclude={leader})
        c.create_topic("quorum-tool-2", 1, 3)
        s = status()
        assert s["LeaderId"] == str(new_leader) and int(s["LeaderEpoch"]) > first_epoch, s
        rows = replication()
        assert rows[str(leader)]["Status"] == "Follower" and int(rows[str(leader)]["Lag"]) > 0, rows
        c.node(leader).start()
        wait_converged(c)
        rows = replication()
        assert rows[str(leader)]["Status"] == "Follower" and rows[str(leader)]["Lag"] == "0", rows


def test_five_voters_lose_two_and_go_on():
    """Five controllers: the leader and then a follower killed (two of five, a minority): a
    majority of three goes on electing and committing; both back, all five converge."""
    with SluiceCluster(brokers=3, controllers=5, config=QUORUM) as c:
        c.create_topic("five-0", 1, 3)
        first = active_controller(c)
        c.node(first).kill9()
        second = active_controller(c, exclude={first})
        follower = next(n for n in c.controller_ids if n not in (first, second))
        c.node(follower).kill9()
        create_acknowledged(c, "five-1", time.monotonic() + 60)
        assert active_controller(c, exclude={first, follower}) == second
        c.node(first).start()
        c.node(follower).start()
        wait_converged(c, voters=5)
        assert {"five-0", "five-1"} <= topics_listed(c)
        assert_images_identical(c)


def test_vote_requests_are_checked():
    """Vote as another cluster, for another topic, from a candidate behind the quorum's epoch, and
    to a cluster with a single controller: refused with Kafka's codes, and the quorum unmoved."""
    with SluiceCluster(brokers=1, controllers=3, config=QUORUM) as c:
        c.create_topic("vote-checks", 1, 1)
        q = wait_converged(c)
        follower = next(n for n in c.controller_ids if n != q.leader_id)
        node = c.nodes[follower]
        with kadmin_wire.Conn(f"{node.host}:{node.port}") as conn:
            assert kadmin_wire.vote(conn, "another-cluster-id-xxxx", 9, q.leader_epoch + 1, 0, 0)[0] == 104
            error, answers = kadmin_wire.vote(conn, None, 9, q.leader_epoch + 1, 0, 0, topic="other")
            assert (error, answers[0][0]) == (0, 3), answers  # UNKNOWN_TOPIC_OR_PARTITION
            # A stale candidate: no vote, and told the epoch and leader.
            other = next(n for n in c.controller_ids if n not in (follower, q.leader_id))
            error, answers = kadmin_wire.vote(conn, None, other, q.leader_epoch - 1, 0, 0)
            assert error == 0 and answers[0][1:] == (q.leader_id, q.leader_epoch, False), answers
            # A candidate in a later epoch whose log is behind: the epoch moves on, the vote is not given.
            error, answers = kadmin_wire.vote(conn, None, other, q.leader_epoch + 5, 0, 0)
            assert error == 0 and answers[0][2:] == (q.leader_epoch + 5, False), answers
        # The quorum elects again (a later epoch was seen) and goes on.
        create_acknowledged(c, "vote-checks-after", time.monotonic() + 30, rf=1)
        assert wait_converged(c).leader_epoch > q.leader_epoch + 5
        assert_images_identical(c)
    with SluiceCluster(brokers=1) as single:
        node = single.nodes[1]
        with kadmin_wire.Conn(f"{node.host}:{node.port}") as conn:
            assert kadmin_wire.vote(conn, None, 2, 5, 0, 0)[0] == 94  # INCONSISTENT_VOTER_SET: no quorum
