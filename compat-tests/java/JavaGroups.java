// Consumer-group scenarios for Apache Kafka's Java client (KafkaConsumer.subscribe, Admin).
//
// Run with Java's single-file source launcher, libs from setup.sh (see test_groups_java.py):
//   java -cp "$LIBS/*" JavaGroups.java
// Environment: BOOTSTRAP_SERVERS, BROKER_KIND, COMPAT_DEADLINE_S (whole run, default 150).
// Each member runs its own KafkaConsumer on its own thread, commits synchronously after every
// non-empty poll and records (partition, offset, key) of every record, so the checks can tell
// that nothing is skipped or consumed twice. Exit code 0 when every scenario passed.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.ConsumerGroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class JavaGroups {
    static final String BOOTSTRAP = env("BOOTSTRAP_SERVERS", "127.0.0.1:9092");
    static final String KIND = env("BROKER_KIND", "unknown");
    static final int SESSION_MS = 6000;
    static final int PARTS = 6;

    static String env(String k, String dflt) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? dflt : v;
    }

    // ------------------------------------------------------------------ tiny runner
    interface Scenario { void run() throws Exception; }
    static int passed = 0, failed = 0;

    static void scenario(String name, Scenario s) {
        long t0 = System.nanoTime();
        System.out.println("--- " + name);
        try {
            s.run();
            passed++;
            System.out.printf("ok   %s (%d ms)%n", name, (System.nanoTime() - t0) / 1_000_000);
        } catch (Throwable e) {
            failed++;
            System.out.printf("FAIL %s (%d ms): %s%n", name, (System.nanoTime() - t0) / 1_000_000, e);
            e.printStackTrace(System.out);
        }
        System.out.flush();
    }

    static void check(boolean cond, String what) { if (!cond) throw new AssertionError(what); }

    interface Probe { boolean ok() throws Exception; }

    static void eventually(long ms, Probe p, java.util.function.Supplier<String> what) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        while (!p.ok()) {
            if (System.currentTimeMillis() > deadline)
                throw new AssertionError("not reached within " + ms + " ms: " + what.get());
            Thread.sleep(50);
        }
    }

    static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        try {
            return f.get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception) throw (Exception) e.getCause();
            throw e;
        }
    }

    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 12);
    }

    // ------------------------------------------------------------------ clients
    static Admin admin() {
        Properties p = new Properties();
        p.put("bootstrap.servers", BOOTSTRAP);
        p.put("request.timeout.ms", "20000");
        p.put("default.api.timeout.ms", "30000");
        return Admin.create(p);
    }

    static void createTopic(Admin admin, String topic, int partitions) throws Exception {
        get(admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all());
        // In a cluster the other brokers learn of the topic from the metadata log a moment after the
        // controller answered (Kafka's too): until then describeTopics says it is unknown.
        eventually(20000, () -> {
            try {
                return get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic)
                    .partitions().stream().allMatch(pi -> pi.leader() != null);
            } catch (org.apache.kafka.common.errors.UnknownTopicOrPartitionException notYet) {
                return false;
            }
        }, () -> "topic " + topic + " ready");
    }

    /** Messages start..start+n-1, message i to partition i % PARTS with key "k-i"; returns {"p/o": key}. */
    static Map<String, String> produce(String topic, int start, int n) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", BOOTSTRAP);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        Map<String, String> acked = new HashMap<>();
        try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = start; i < start + n; i++)
                fs.add(prod.send(new ProducerRecord<>(topic, i % PARTS, ("k-" + i).getBytes(StandardCharsets.UTF_8),
                    ("v-" + i).getBytes(StandardCharsets.UTF_8))));
            prod.flush();
            for (int i = 0; i < n; i++) {
                RecordMetadata md = fs.get(i).get(30, TimeUnit.SECONDS);
                acked.put(md.partition() + "/" + md.offset(), "k-" + (start + i));
            }
        }
        return acked;
    }

    /** One group member: its own consumer on its own thread. */
    static final class Member {
        final String name;
        final KafkaConsumer<byte[], byte[]> consumer;
        final Set<Integer> owned = ConcurrentHashMap.newKeySet();
        final List<String> events = Collections.synchronizedList(new ArrayList<>());
        final Map<String, String> records = new ConcurrentHashMap<>();  // "p/o" -> key
        final List<String> dups = Collections.synchronizedList(new ArrayList<>());
        final AtomicBoolean stop = new AtomicBoolean();
        final Thread thread;
        volatile Throwable error;

        Member(String name, String group, String topic, String strategy, String instanceId) {
            this.name = name;
            Properties p = new Properties();
            p.put("bootstrap.servers", BOOTSTRAP);
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.CLIENT_ID_CONFIG, "compat-java-" + name);
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, String.valueOf(SESSION_MS));
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
            p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, strategy);
            p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
            p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
            if (instanceId != null) p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            consumer = new KafkaConsumer<>(p);
            thread = new Thread(() -> loop(topic), "member-" + name);
            thread.setDaemon(true);
            thread.start();
        }

        private void loop(String topic) {
            try {
                consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    public void onPartitionsRevoked(Collection<TopicPartition> ps) { change("revoke", ps, false); }
                    public void onPartitionsAssigned(Collection<TopicPartition> ps) { change("assign", ps, true); }
                    public void onPartitionsLost(Collection<TopicPartition> ps) { change("lost", ps, false); }
                });
                long deadline = System.currentTimeMillis() + 120_000;
                while (!stop.get() && System.currentTimeMillis() < deadline) {
                    ConsumerRecords<byte[], byte[]> rs = consumer.poll(Duration.ofMillis(200));
                    if (rs.isEmpty()) continue;
                    consumer.commitSync(Duration.ofSeconds(20));
                    for (ConsumerRecord<byte[], byte[]> r : rs) {
                        String k = r.partition() + "/" + r.offset();
                        if (records.put(k, new String(r.key(), StandardCharsets.UTF_8)) != null) dups.add(k);
                    }
                }
            } catch (Throwable t) {
                error = t;
            } finally {
                try { consumer.close(Duration.ofSeconds(15)); } catch (Throwable t) { if (error == null) error = t; }
            }
        }

        private void change(String what, Collection<TopicPartition> ps, boolean add) {
            if (ps.isEmpty()) return;
            List<Integer> parts = new ArrayList<>();
            for (TopicPartition tp : ps) parts.add(tp.partition());
            Collections.sort(parts);
            if (add) owned.addAll(parts); else owned.removeAll(parts);
            events.add(what + parts);
        }

        Set<Integer> owned() { return new TreeSet<>(owned); }

        void close() throws Exception {
            stop.set(true);
            thread.join(25_000);
            check(!thread.isAlive(), name + " did not close");
        }

        @Override public String toString() {
            return name + "{owned=" + owned() + ", records=" + records.size() + ", events=" + events
                + (error != null ? ", error=" + error : "") + "}";
        }
    }

    static void closeAll(List<Member> ms) {
        for (Member m : ms) try { m.close(); } catch (Throwable ignored) { }
    }

    static void waitBalanced(List<Member> ms, int each, long timeoutMs) throws Exception {
        eventually(timeoutMs, () -> {
            Set<Integer> all = new HashSet<>();
            int total = 0;
            for (Member m : ms) {
                Set<Integer> o = m.owned();
                if (o.size() != each) return false;
                total += o.size();
                all.addAll(o);
            }
            return total == PARTS && all.size() == PARTS;
        }, () -> "each member owning " + each + " of " + PARTS + ": " + ms);
    }

    static void waitConsumedExactlyOnce(List<Member> ms, Map<String, String> want) throws Exception {
        eventually(45_000, () -> {
            int n = 0;
            for (Member m : ms) for (String k : want.keySet()) if (m.records.containsKey(k)) n++;
            return n >= want.size();
        }, () -> "all " + want.size() + " records consumed: " + ms);
        Map<String, Integer> seen = new HashMap<>();
        for (Member m : ms) {
            check(m.dups.isEmpty(), m.name + " got records twice: " + m.dups);
            check(m.error == null, m.name + " failed: " + m.error);
            for (Map.Entry<String, String> e : m.records.entrySet()) {
                check(e.getValue().equals(want.get(e.getKey())), m.name + " consumed " + e + ", produced " + want.get(e.getKey()));
                seen.merge(e.getKey(), 1, Integer::sum);
            }
        }
        for (Map.Entry<String, Integer> e : seen.entrySet())
            check(e.getValue() == 1, e.getKey() + " consumed by " + e.getValue() + " members: " + ms);
        check(seen.keySet().equals(want.keySet()), "consumed " + seen.size() + " distinct records, produced " + want.size());
    }

    static final String RANGE = RangeAssignor.class.getName();
    static final String ROUNDROBIN = RoundRobinAssignor.class.getName();
    static final String COOP = CooperativeStickyAssignor.class.getName();

    // ------------------------------------------------------------------ scenarios
    static void shareAndLeave(Admin admin) throws Exception {
        String topic = unique("jgrp"), group = unique("jg");
        createTopic(admin, topic, PARTS);
        List<Member> ms = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) ms.add(new Member("m" + i, group, topic, ROUNDROBIN, null));
            waitBalanced(ms, 2, 45_000);
            Map<String, String> want = produce(topic, 0, 3000);
            waitConsumedExactlyOnce(ms, want);
            // A clean close hands over at once, well before the session timeout.
            long t0 = System.nanoTime();
            ms.get(2).close();
            want.putAll(produce(topic, 3000, 600));
            waitBalanced(ms.subList(0, 2), 3, SESSION_MS + 20_000);
            long ms_ = (System.nanoTime() - t0) / 1_000_000;
            System.out.println("    handover after close: " + ms_ + " ms");
            check(ms_ < SESSION_MS / 2, "clean close took " + ms_ + " ms to hand over (session " + SESSION_MS + " ms)");
            waitConsumedExactlyOnce(ms, want);
        } finally {
            closeAll(ms);
        }
    }

    static void cooperative(Admin admin) throws Exception {
        String topic = unique("jgrp"), group = unique("jg");
        createTopic(admin, topic, PARTS);
        List<Member> ms = new ArrayList<>();
        try {
            Member a = new Member("a", group, topic, COOP, null);
            ms.add(a);
            waitBalanced(ms, 6, 30_000);
            int mark = a.events.size();
            Member b = new Member("b", group, topic, COOP, null);
            ms.add(b);
            waitBalanced(ms, 3, 30_000);
            List<String> evs = new ArrayList<>(a.events.subList(mark, a.events.size()));
            check(evs.equals(List.of("revoke" + new ArrayList<>(b.owned()))),
                "a should revoke exactly b's 3 partitions and nothing else: " + evs + " / " + ms);
            Map<String, String> want = produce(topic, 0, 1200);
            waitConsumedExactlyOnce(ms, want);
        } finally {
            closeAll(ms);
        }
    }

    /** a joins first (the leader), then b, both static; one of them (restartLeader: a, else b) is
     *  closed (a static member sends no LeaveGroup) and restarted with the same group.instance.id:
     *  it gets its partitions back and the other sees no rebalance, even past the old session. */
    static void staticMembership(Admin admin, boolean restartLeader) throws Exception {
        String topic = unique("jgrp"), group = unique("jg");
        createTopic(admin, topic, PARTS);
        List<Member> ms = new ArrayList<>();
        try {
            Member a = new Member("a", group, topic, RANGE, group + "-a");
            ms.add(a);
            waitBalanced(ms, 6, 30_000);
            Member b = new Member("b", group, topic, RANGE, group + "-b");
            ms.add(b);
            waitBalanced(ms, 3, 30_000);
            Map<String, String> want = produce(topic, 0, 600);
            waitConsumedExactlyOnce(ms, want);
            Member victim = restartLeader ? a : b, other = restartLeader ? b : a;
            Set<Integer> vParts = victim.owned(), oParts = other.owned();
            int mark = other.events.size();
            long t0 = System.currentTimeMillis();
            victim.close();  // a static member's close sends no LeaveGroup
            Member again = new Member(victim.name + "2", group, topic, RANGE, group + "-" + victim.name);
            ms.add(again);
            eventually(SESSION_MS + 20_000, () -> again.owned().equals(vParts), () -> again.name + " to get " + vParts + " back: " + ms);
            want.putAll(produce(topic, 600, 600));
            long wait = t0 + SESSION_MS + 2000 - System.currentTimeMillis();
            if (wait > 0) Thread.sleep(wait);  // past the old session: still nothing may move
            check(other.events.size() == mark, other.name + " saw a rebalance when static " + victim.name + " restarted: " + ms);
            check(other.owned().equals(oParts) && again.owned().equals(vParts), "assignment changed: " + ms);
            check(again.events.equals(List.of("assign" + new ArrayList<>(vParts))), again.name + " events: " + again.events);
            // The restarted member resumes where its predecessor committed: every record exactly once.
            waitConsumedExactlyOnce(ms, want);
        } finally {
            closeAll(ms);
        }
    }

    static void adminGroups(Admin admin) throws Exception {
        String topic = unique("jgrp"), group = unique("jg-adm");
        createTopic(admin, topic, PARTS);
        List<Member> ms = new ArrayList<>();
        try {
            Member m = new Member("m", group, topic, RANGE, null);
            ms.add(m);
            waitBalanced(ms, 6, 30_000);
            waitConsumedExactlyOnce(ms, produce(topic, 0, 60));

            eventually(20_000, () -> get(admin.listConsumerGroups().all()).stream()
                .anyMatch(l -> l.groupId().equals(group) && l.state().orElse(null) == ConsumerGroupState.STABLE),
                () -> "group listed as Stable");
            ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            check(d.state() == ConsumerGroupState.STABLE, "state " + d);
            check(d.partitionAssignor().equals("range"), "assignor " + d);
            check(d.members().size() == 1 && d.members().iterator().next().assignment().topicPartitions().size() == PARTS, "members " + d);

            try {
                get(admin.deleteConsumerGroups(List.of(group)).all());
                throw new AssertionError("deleting a group with a member succeeded");
            } catch (GroupNotEmptyException expected) { }
            String unknown = unique("jg-never-used");
            try {
                get(admin.deleteConsumerGroups(List.of(unknown)).all());
                throw new AssertionError("deleting an unknown group succeeded");
            } catch (GroupIdNotFoundException expected) { }
            TopicPartition tp0 = new TopicPartition(topic, 0);
            try {
                get(admin.deleteConsumerGroupOffsets(group, Set.of(tp0)).all());
                throw new AssertionError("deleting offsets of a subscribed topic succeeded");
            } catch (GroupSubscribedToTopicException expected) { }
            try {
                get(admin.deleteConsumerGroupOffsets(unknown, Set.of(tp0)).all());
                throw new AssertionError("deleting offsets of an unknown group succeeded");
            } catch (GroupIdNotFoundException expected) { }

            m.close();
            eventually(20_000, () -> get(admin.describeConsumerGroups(List.of(group)).all()).get(group).state()
                == ConsumerGroupState.EMPTY, () -> "group Empty after its member left");
            Map<TopicPartition, OffsetAndMetadata> offs = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            check(offs.size() == PARTS && offs.values().stream().allMatch(o -> o.offset() == 10), "offsets " + offs);
            get(admin.deleteConsumerGroupOffsets(group, Set.of(tp0)).all());
            offs = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            check(offs.size() == PARTS - 1 && !offs.containsKey(tp0), "offsets after deleting p0: " + offs);
            get(admin.deleteConsumerGroups(List.of(group)).all());
            check(get(admin.listConsumerGroups().all()).stream().noneMatch(l -> l.groupId().equals(group)), "deleted group still listed");
            d = get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            check(d.state() == ConsumerGroupState.DEAD && d.members().isEmpty(), "deleted group described as " + d);
        } finally {
            closeAll(ms);
        }
    }

    // ------------------------------------------------------------------ main
    public static void main(String[] args) throws Exception {
        long deadlineS = Long.parseLong(env("COMPAT_DEADLINE_S", "150"));
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(deadlineS * 1000);
                System.out.println("FAIL watchdog: run exceeded " + deadlineS + " s; aborting");
                for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet())
                    if (e.getKey().getName().startsWith("member-") || e.getKey().getName().equals("main"))
                        System.out.println(e.getKey().getName() + " " + Arrays.toString(e.getValue()));
                System.out.println(passed + " passed, " + (failed + 1) + " failed");
                System.out.flush();
                Runtime.getRuntime().halt(3);
            } catch (InterruptedException ignored) { }
        });
        watchdog.setDaemon(true);
        watchdog.start();
        System.out.println("JavaGroups: broker " + KIND + " at " + BOOTSTRAP + ", kafka-clients "
            + org.apache.kafka.common.utils.AppInfoParser.getVersion());
        try (Admin admin = admin()) {
            scenario("3 members (roundrobin) share 6 partitions, exactly once; clean close hands over at once", () -> shareAndLeave(admin));
            scenario("cooperative-sticky: joining member takes 3 partitions, only those are revoked", () -> cooperative(admin));
            scenario("static membership: restarted follower gets its partitions back, no rebalance", () -> staticMembership(admin, false));
            scenario("static membership: restarted leader gets its partitions back, no rebalance", () -> staticMembership(admin, true));
            scenario("admin: list/describe/delete groups, deleteConsumerGroupOffsets, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, GROUP_SUBSCRIBED_TO_TOPIC", () -> adminGroups(admin));
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.out.flush();
        Runtime.getRuntime().halt(failed == 0 && passed > 0 ? 0 : 1);
    }
}
