// Share-group (KIP-932) scenarios with Apache Kafka 4.4.0's KafkaShareConsumer.
//
// Run with Java's single-file source launcher (no build step), libs from setup.sh:
//   java -Dlog4j2.configurationFile=log4j2.properties -cp "$LIBS/*" JavaShare.java <scenario> <args>
//
//   share-three        <topic> <group> <n>   three implicit-ack consumers share n records
//   share-explicit     <topic> <group> <n>   ACCEPT / RELEASE (values ending in 3) / REJECT (ending in 7)
//   share-lock-timeout <topic> <group> <n>   records held by an abandoned consumer come back after the lock
//   share-poison       <topic> <group>       a record released every time is delivered 3 times, then never
//
// Environment: BOOTSTRAP_SERVERS (host:port, default 127.0.0.1:9092), COMPAT_DEADLINE_S (halt after
// it, default 120). Each scenario first sets the group config share.auto.offset.reset=earliest with
// Admin.incrementalAlterConfigs (ConfigResource.Type.GROUP), creates the topic (1 partition) if
// missing and produces keys "k<i>", values "v<i>".
// Output: "FAIL <scenario>: <reason>" lines for failed checks, then one line of JSON (always last).
// Exit 0 if every check passed, 1 otherwise (also when the deadline is reached).

import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

@SuppressWarnings("unchecked")
public class JavaShare {
    static final String BOOTSTRAP = env("BOOTSTRAP_SERVERS", "127.0.0.1:9092");
    static final long DEADLINE_S = Long.parseLong(env("COMPAT_DEADLINE_S", "120"));
    static final long T0 = System.nanoTime();
    static final Duration API_TIMEOUT = Duration.ofSeconds(20);
    static final Duration POLL = Duration.ofMillis(500);

    static final Map<String, Object> result = Collections.synchronizedMap(new LinkedHashMap<>());
    static final List<String> failures = Collections.synchronizedList(new ArrayList<>());
    static String scenario = "?";

    static String env(String k, String dflt) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? dflt : v;
    }

    static long elapsedMs() { return (System.nanoTime() - T0) / 1_000_000; }

    /** Milliseconds left before the whole-run deadline, minus a margin for closing and reporting. */
    static long budgetMs(long wanted) {
        return Math.max(1000, Math.min(wanted, DEADLINE_S * 1000 - elapsedMs() - 15_000));
    }

    static void check(boolean cond, String what) {
        if (!cond) failures.add(what);
    }

    static void log(String msg) {
        System.err.printf("[JavaShare %6d ms] %s%n", elapsedMs(), msg);
    }

    // ------------------------------------------------------------------ JSON (one line)
    static String json(Object o) {
        StringBuilder sb = new StringBuilder();
        json(sb, o);
        return sb.toString();
    }

    static void json(StringBuilder sb, Object o) {
        if (o == null) sb.append("null");
        else if (o instanceof Boolean || o instanceof Integer || o instanceof Long || o instanceof Short)
            sb.append(o);
        else if (o instanceof Number) sb.append(((Number) o).doubleValue());
        else if (o instanceof Map) {
            sb.append('{');
            boolean first = true;
            synchronized (o) {
                for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                    if (!first) sb.append(',');
                    first = false;
                    json(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    json(sb, e.getValue());
                }
            }
            sb.append('}');
        } else if (o instanceof Collection) {
            sb.append('[');
            boolean first = true;
            synchronized (o) {
                for (Object x : (Collection<?>) o) {
                    if (!first) sb.append(',');
                    first = false;
                    json(sb, x);
                }
            }
            sb.append(']');
        } else {
            String s = String.valueOf(o);
            sb.append('"');
            for (char c : s.toCharArray()) {
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                        else sb.append(c);
                }
            }
            sb.append('"');
        }
    }

    static synchronized void finish(boolean deadline) {
        if (deadline) failures.add("deadline of " + DEADLINE_S + " s (COMPAT_DEADLINE_S) reached");
        result.put("elapsed_ms", elapsedMs());
        result.put("ok", failures.isEmpty());
        result.put("failures", new ArrayList<>(failures));
        for (String f : failures) System.out.println("FAIL " + scenario + ": " + f);
        System.out.println(json(result));
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(failures.isEmpty() ? 0 : 1);
    }

    static String err(Throwable e) {
        Throwable c = e;
        while ((c instanceof ExecutionException || c instanceof CompletionException) && c.getCause() != null)
            c = c.getCause();
        return c.getClass().getSimpleName() + ": " + c.getMessage();
    }

    // ------------------------------------------------------------------ clients
    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20000);
        return Admin.create(p);
    }

    /** Sets each group config on its own (one refused name does not hide the others) and reads them back. */
    static Map<String, Object> setGroupConfigs(Admin admin, String group, LinkedHashMap<String, String> configs) {
        ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : configs.entrySet()) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("value", e.getValue());
            try {
                admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                        new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SET))))
                        .all().get(API_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                r.put("set", "ok");
            } catch (Exception ex) {
                r.put("set", err(ex));
            }
            out.put(e.getKey(), r);
        }
        try {
            Config described = admin.describeConfigs(List.of(res)).all()
                    .get(API_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).get(res);
            for (Map.Entry<String, String> e : configs.entrySet()) {
                ConfigEntry ce = described.get(e.getKey());
                @SuppressWarnings("unchecked")
                Map<String, Object> r = (Map<String, Object>) out.get(e.getKey());
                r.put("described", ce == null ? null : ce.value());
                r.put("source", ce == null ? null : String.valueOf(ce.source()));
            }
        } catch (Exception ex) {
            out.put("describe_error", err(ex));
        }
        log("group configs for " + group + ": " + json(out));
        return out;
    }

    static boolean setOk(Map<String, Object> cfg, String name) {
        Object r = cfg.get(name);
        return r instanceof Map && "ok".equals(((Map<?, ?>) r).get("set"));
    }

    static void ensureTopic(Admin admin, String topic) throws Exception {
        try {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all()
                    .get(API_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            result.put("topic_created", true);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) throw e;
            result.put("topic_created", false);
        }
        long until = System.currentTimeMillis() + 15000;
        while (true) {
            try {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                        .get(API_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).get(topic);
                result.put("partitions", d.partitions().size());
                if (d.partitions().size() != 1) failures.add("topic " + topic + " has " + d.partitions().size() + " partitions, expected 1");
                if (d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) return;
            } catch (ExecutionException e) {
                if (System.currentTimeMillis() > until) throw e;
            }
            if (System.currentTimeMillis() > until) throw new IllegalStateException("topic " + topic + " has no leader after 15 s");
            Thread.sleep(200);
        }
    }

    static void produce(String topic, int n) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) fs.add(prod.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)));
            prod.flush();
            long lo = Long.MAX_VALUE, hi = -1;
            for (var f : fs) {
                RecordMetadata md = f.get(30, TimeUnit.SECONDS);
                lo = Math.min(lo, md.offset());
                hi = Math.max(hi, md.offset());
            }
            result.put("produced", n);
            result.put("produced_offsets", n == 0 ? List.of() : List.of(lo, hi));
        }
        log("produced " + n + " records to " + topic);
    }

    static KafkaShareConsumer<String, String> shareConsumer(String group, String clientId, boolean explicit,
                                                            Integer maxPollRecords) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        if (explicit) p.put(ConsumerConfig.SHARE_ACKNOWLEDGEMENT_MODE_CONFIG, "explicit");
        if (maxPollRecords != null) p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, maxPollRecords);
        // record_limit: at most max.poll.records acquired per fetch (the default hands out whole
        // producer batches): a test that steps through the records in small polls sets it.
        String acquireMode = env("SHARE_ACQUIRE_MODE", "");
        if (!acquireMode.isEmpty()) p.put(ConsumerConfig.SHARE_ACQUIRE_MODE_CONFIG, acquireMode);
        return new KafkaShareConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    static int dc(ConsumerRecord<?, ?> r) {
        return r.deliveryCount().map(Short::intValue).orElse(-1);
    }

    /** commitSync, errors per partition as strings (empty when all were accepted). */
    static List<String> commit(KafkaShareConsumer<String, String> c) {
        List<String> errs = new ArrayList<>();
        Map<TopicIdPartition, Optional<KafkaException>> res = c.commitSync(Duration.ofSeconds(10));
        for (var e : res.entrySet())
            e.getValue().ifPresent(ex -> errs.add(e.getKey() + ": " + err(ex)));
        return errs;
    }

    static void prepare(Admin admin, String topic, String group, int n, LinkedHashMap<String, String> extraGroupConfigs)
            throws Exception {
        LinkedHashMap<String, String> cfgs = new LinkedHashMap<>();
        cfgs.put("share.auto.offset.reset", "earliest");
        cfgs.putAll(extraGroupConfigs);
        Map<String, Object> cfg = setGroupConfigs(admin, group, cfgs);
        result.put("group_configs", cfg);
        check(setOk(cfg, "share.auto.offset.reset"),
                "group config share.auto.offset.reset=earliest not accepted: " + cfg.get("share.auto.offset.reset"));
        ensureTopic(admin, topic);
        produce(topic, n);
    }

    // ------------------------------------------------------------------ share-three
    static void shareThree(String topic, String group, int n) throws Exception {
        try (Admin admin = admin()) {
            prepare(admin, topic, group, n, new LinkedHashMap<>());
        }
        // SHARE_MAX_POLL_RECORDS: optional max.poll.records for the three consumers (default: the client's).
        String mp = env("SHARE_MAX_POLL_RECORDS", "");
        Integer maxPoll = mp.isEmpty() ? null : Integer.valueOf(mp);
        result.put("max_poll_records", maxPoll);
        ConcurrentHashMap<String, AtomicInteger> seen = new ConcurrentHashMap<>();
        AtomicInteger distinct = new AtomicInteger();
        AtomicInteger redelivered = new AtomicInteger();
        AtomicInteger maxDc = new AtomicInteger();
        List<String> ackErrors = Collections.synchronizedList(new ArrayList<>());
        List<String> bad = Collections.synchronizedList(new ArrayList<>());
        int[] perConsumer = new int[3];
        long[] firstRecordMs = new long[]{-1, -1, -1};
        long until = System.currentTimeMillis() + budgetMs(60_000);
        Thread[] ts = new Thread[3];
        for (int ci = 0; ci < 3; ci++) {
            final int me = ci;
            ts[ci] = new Thread(() -> {
                KafkaShareConsumer<String, String> c = shareConsumer(group, "share-three-" + me, false, maxPoll);
                c.setAcknowledgementCommitCallback((offsets, ex) -> {
                    if (ex != null) ackErrors.add("consumer " + me + ": " + err(ex) + " " + offsets);
                });
                try {
                    c.subscribe(List.of(topic));
                    while (distinct.get() < n && System.currentTimeMillis() < until) {
                        ConsumerRecords<String, String> recs = c.poll(POLL);
                        for (ConsumerRecord<String, String> r : recs) {
                            if (firstRecordMs[me] < 0) firstRecordMs[me] = elapsedMs();
                            perConsumer[me]++;
                            if (!r.value().equals("v" + r.key().substring(1)) || !r.key().startsWith("k"))
                                bad.add(r.key() + "=" + r.value());
                            int d = dc(r);
                            maxDc.accumulateAndGet(d, Math::max);
                            if (d != 1) redelivered.incrementAndGet();
                            if (seen.computeIfAbsent(r.key(), k -> new AtomicInteger()).incrementAndGet() == 1)
                                distinct.incrementAndGet();
                        }
                    }
                    // Implicit mode: what the last poll returned is accepted by the next
                    // commitSync/poll/close; commit it now rather than leave it to close().
                    for (String e : commit(c)) ackErrors.add("consumer " + me + " commitSync: " + e);
                } catch (Throwable e) {
                    failures.add("consumer " + me + ": " + err(e));
                } finally {
                    try { c.close(Duration.ofSeconds(10)); } catch (Throwable e) { failures.add("consumer " + me + " close: " + err(e)); }
                }
            }, "share-three-" + ci);
            ts[ci].start();
        }
        for (Thread t : ts) t.join(budgetMs(90_000));
        int total = 0;
        for (int x : perConsumer) total += x;
        int dups = 0;
        List<String> dupKeys = new ArrayList<>();
        for (var e : seen.entrySet()) {
            if (e.getValue().get() > 1) {
                dups += e.getValue().get() - 1;
                if (dupKeys.size() < 20) dupKeys.add(e.getKey() + "x" + e.getValue().get());
            }
        }
        List<String> missing = new ArrayList<>();
        for (int i = 0; i < n && missing.size() < 20; i++) if (!seen.containsKey("k" + i)) missing.add("k" + i);
        int withRecords = 0;
        for (int x : perConsumer) if (x > 0) withRecords++;
        result.put("per_consumer", List.of(perConsumer[0], perConsumer[1], perConsumer[2]));
        result.put("first_record_ms", List.of(firstRecordMs[0], firstRecordMs[1], firstRecordMs[2]));
        result.put("consumers_with_records", withRecords);
        result.put("total", total);
        result.put("distinct", seen.size());
        result.put("duplicates", dups);
        result.put("duplicate_keys", dupKeys);
        result.put("redelivered", redelivered.get());
        result.put("max_delivery_count", maxDc.get());
        result.put("all_delivered", seen.size() == n && missing.isEmpty());
        result.put("missing", missing);
        result.put("ack_errors", ackErrors);
        check(seen.size() == n, "distinct records " + seen.size() + " != " + n + " (missing e.g. " + missing + ")");
        check(dups == 0, dups + " records delivered (and accepted) more than once: " + dupKeys);
        check(bad.isEmpty(), "records with wrong key/value: " + bad);
        check(ackErrors.isEmpty(), "acknowledgement errors: " + ackErrors);
    }

    // ------------------------------------------------------------------ share-explicit
    static void shareExplicit(String topic, String group, int n) throws Exception {
        try (Admin admin = admin()) {
            prepare(admin, topic, group, n, new LinkedHashMap<>());
        }
        int expectReleased = 0, expectRejected = 0;
        for (int i = 0; i < n; i++) {
            if (("v" + i).endsWith("3")) expectReleased++;
            else if (("v" + i).endsWith("7")) expectRejected++;
        }
        Set<String> accepted = new HashSet<>(), released = new HashSet<>(), rejected = new HashSet<>();
        int acceptedFirst = 0, redelivered = 0;
        List<String> unexpected = new ArrayList<>();
        List<String> wrongCount = new ArrayList<>();
        List<String> commitErrors = new ArrayList<>();
        long settledAt = -1;
        KafkaShareConsumer<String, String> c = shareConsumer(group, "share-explicit", true, null);
        try {
            c.subscribe(List.of(topic));
            long until = System.currentTimeMillis() + budgetMs(60_000);
            long quietUntil = Long.MAX_VALUE;   // once everything is settled: poll 3 s more
            while (System.currentTimeMillis() < Math.min(until, quietUntil)) {
                ConsumerRecords<String, String> recs = c.poll(POLL);
                for (ConsumerRecord<String, String> r : recs) {
                    String k = r.key(), v = r.value();
                    int d = dc(r);
                    if (accepted.contains(k) || rejected.contains(k)) {
                        unexpected.add(k + "(" + v + ",dc=" + d + ",after " + (accepted.contains(k) ? "ACCEPT" : "REJECT") + ")");
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                    } else if (v.endsWith("7")) {
                        if (d != 1) wrongCount.add(k + " dc=" + d + " (expected 1)");
                        c.acknowledge(r, AcknowledgeType.REJECT);
                        rejected.add(k);
                    } else if (v.endsWith("3") && !released.contains(k)) {
                        if (d != 1) wrongCount.add(k + " dc=" + d + " (expected 1)");
                        c.acknowledge(r, AcknowledgeType.RELEASE);
                        released.add(k);
                    } else if (v.endsWith("3")) {
                        if (d != 2) wrongCount.add(k + " dc=" + d + " (expected 2)");
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                        accepted.add(k);
                        redelivered++;
                    } else {
                        if (d != 1) wrongCount.add(k + " dc=" + d + " (expected 1)");
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                        accepted.add(k);
                        acceptedFirst++;
                    }
                }
                if (!recs.isEmpty()) commitErrors.addAll(commit(c));
                if (settledAt < 0 && accepted.size() + rejected.size() == n) {
                    settledAt = elapsedMs();
                    quietUntil = System.currentTimeMillis() + 3000;
                    log("all " + n + " records settled; polling 3 s more");
                }
            }
        } finally {
            try { c.close(Duration.ofSeconds(10)); } catch (Throwable e) { failures.add("close: " + err(e)); }
        }
        result.put("accepted", accepted.size());
        result.put("accepted_first_delivery", acceptedFirst);
        result.put("released", released.size());
        result.put("rejected", rejected.size());
        result.put("redelivered", redelivered);
        result.put("unexpected", unexpected);
        result.put("wrong_delivery_count", wrongCount);
        result.put("commit_errors", commitErrors);
        result.put("settled_ms", settledAt);
        check(accepted.size() + rejected.size() == n, "settled " + (accepted.size() + rejected.size()) + " of " + n + " records");
        check(released.size() == expectReleased, "released " + released.size() + ", expected " + expectReleased);
        check(redelivered == expectReleased, "released records redelivered " + redelivered + ", expected " + expectReleased);
        check(rejected.size() == expectRejected, "rejected " + rejected.size() + ", expected " + expectRejected);
        check(acceptedFirst == n - expectReleased - expectRejected,
                "accepted at first delivery " + acceptedFirst + ", expected " + (n - expectReleased - expectRejected));
        check(unexpected.isEmpty(), "records came back after ACCEPT/REJECT: " + unexpected);
        check(wrongCount.isEmpty(), "wrong delivery counts: " + wrongCount);
        check(commitErrors.isEmpty(), "commitSync errors: " + commitErrors);
    }

    // ------------------------------------------------------------------ share-lock-timeout
    static void shareLockTimeout(String topic, String group, int n) throws Exception {
        long lockMs = Long.parseLong(env("SHARE_LOCK_MS", "2000"));
        try (Admin admin = admin()) {
            LinkedHashMap<String, String> extra = new LinkedHashMap<>();
            extra.put("share.record.lock.duration.ms", String.valueOf(lockMs));
            prepare(admin, topic, group, n, extra);
            result.put("group_config_lock_duration_accepted", setOk((Map<String, Object>) result.get("group_configs"), "share.record.lock.duration.ms"));
        }
        // Consumer A: explicit mode, one non-empty poll, never acknowledged, never polled again.
        KafkaShareConsumer<String, String> a = shareConsumer(group, "share-lock-A", true, null);
        KafkaShareConsumer<String, String> b = null;
        Map<String, Long> held = new LinkedHashMap<>();   // key -> offset
        long heldAt;
        try {
            a.subscribe(List.of(topic));
            long until = System.currentTimeMillis() + budgetMs(30_000);
            ConsumerRecords<String, String> got = ConsumerRecords.empty();
            while (got.isEmpty() && System.currentTimeMillis() < until) got = a.poll(POLL);
            heldAt = System.nanoTime();
            for (ConsumerRecord<String, String> r : got) held.put(r.key(), r.offset());
            result.put("a_held", held.size());
            result.put("a_acquisition_lock_timeout_ms", a.acquisitionLockTimeoutMs().map(x -> (Object) x).orElse(null));
            log("consumer A holds " + held.size() + " records (lock " + a.acquisitionLockTimeoutMs() + " ms); abandoning it");
            if (held.isEmpty()) {
                failures.add("consumer A got no records");
                return;
            }
            Integer effLock = a.acquisitionLockTimeoutMs().orElse(null);
            long expectLock = effLock != null ? effLock : lockMs;
            result.put("effective_lock_ms", expectLock);
            // Consumer B: same group, explicit ACCEPT of everything.
            b = shareConsumer(group, "share-lock-B", true, null);
            b.subscribe(List.of(topic));
            Map<String, Integer> bCounts = new LinkedHashMap<>();    // A's keys: delivery count seen by B
            List<Long> bAfterMs = new ArrayList<>();                  // A's keys: ms after A's poll
            Set<String> others = new HashSet<>();
            List<String> twice = new ArrayList<>();
            long bUntil = System.currentTimeMillis() + budgetMs(Math.max(30_000, 2 * expectLock + 20_000));
            while (System.currentTimeMillis() < bUntil && (bCounts.size() < held.size() || others.size() < n - held.size())) {
                ConsumerRecords<String, String> recs = b.poll(POLL);
                for (ConsumerRecord<String, String> r : recs) {
                    long after = (System.nanoTime() - heldAt) / 1_000_000;
                    if (held.containsKey(r.key())) {
                        if (bCounts.containsKey(r.key())) twice.add(r.key());
                        bCounts.put(r.key(), dc(r));
                        bAfterMs.add(after);
                    } else if (!others.add(r.key())) twice.add(r.key());
                    b.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                if (!recs.isEmpty()) {
                    List<String> errs = commit(b);
                    if (!errs.isEmpty()) failures.add("B commitSync: " + errs);
                }
            }
            Map<Integer, Integer> hist = new TreeMap<>();
            for (int d : bCounts.values()) hist.merge(d, 1, Integer::sum);
            long minAfter = bAfterMs.stream().mapToLong(x -> x).min().orElse(-1);
            long maxAfter = bAfterMs.stream().mapToLong(x -> x).max().orElse(-1);
            result.put("b_got_a_records", bCounts.size());
            result.put("b_delivery_counts", hist);
            result.put("b_other_records", others.size());
            result.put("b_first_a_record_after_ms", minAfter);
            result.put("b_last_a_record_after_ms", maxAfter);
            result.put("b_seen_twice", twice);
            check(bCounts.size() == held.size(), "B got " + bCounts.size() + " of the " + held.size() + " records A held");
            check(hist.keySet().equals(Set.of(2)), "delivery counts of A's records at B: " + hist + " (expected all 2)");
            check(others.size() == n - held.size(), "B got " + others.size() + " of the " + (n - held.size()) + " records A never held");
            check(minAfter < 0 || minAfter >= expectLock - 500,
                    "B got one of A's records " + minAfter + " ms after A's poll, before the lock (" + expectLock + " ms) ran out");
            check(twice.isEmpty(), "B saw records twice: " + twice);
        } finally {
            if (b != null) try { b.close(Duration.ofSeconds(10)); } catch (Throwable e) { failures.add("B close: " + err(e)); }
            // A dies only now: closing it earlier would release its records at once.
            try { a.close(Duration.ofSeconds(5)); } catch (Throwable e) { result.put("a_close_error", err(e)); }
        }
    }

    // ------------------------------------------------------------------ share-poison
    static void sharePoison(String topic, String group) throws Exception {
        int limit = Integer.parseInt(env("SHARE_DELIVERY_LIMIT", "3"));
        try (Admin admin = admin()) {
            LinkedHashMap<String, String> extra = new LinkedHashMap<>();
            extra.put("share.delivery.count.limit", String.valueOf(limit));
            prepare(admin, topic, group, 1, extra);
            result.put("group_config_delivery_limit_accepted", setOk((Map<String, Object>) result.get("group_configs"), "share.delivery.count.limit"));
        }
        List<Integer> counts = new ArrayList<>();
        List<Long> atMs = new ArrayList<>();
        List<String> commitErrors = new ArrayList<>();
        KafkaShareConsumer<String, String> c = shareConsumer(group, "share-poison", true, null);
        try {
            c.subscribe(List.of(topic));
            long until = System.currentTimeMillis() + budgetMs(45_000);
            long quietUntil = Long.MAX_VALUE;
            while (System.currentTimeMillis() < Math.min(until, quietUntil)) {
                ConsumerRecords<String, String> recs = c.poll(POLL);
                for (ConsumerRecord<String, String> r : recs) {
                    counts.add(dc(r));
                    atMs.add(elapsedMs());
                    c.acknowledge(r, AcknowledgeType.RELEASE);
                }
                if (!recs.isEmpty()) commitErrors.addAll(commit(c));
                if (counts.size() >= limit && quietUntil == Long.MAX_VALUE) {
                    quietUntil = System.currentTimeMillis() + 5000;
                    log("delivered " + counts.size() + " times; polling 5 s more");
                }
            }
        } finally {
            try { c.close(Duration.ofSeconds(10)); } catch (Throwable e) { failures.add("close: " + err(e)); }
        }
        List<Integer> expected = new ArrayList<>();
        for (int i = 1; i <= limit; i++) expected.add(i);
        result.put("deliveries", counts.size());
        result.put("delivery_counts", counts);
        result.put("delivered_at_ms", atMs);
        result.put("commit_errors", commitErrors);
        check(counts.equals(expected), "delivery counts " + counts + ", expected " + expected);
        check(commitErrors.isEmpty(), "commitSync errors: " + commitErrors);
    }

    // ------------------------------------------------------------------ share-accept-some / share-drain
    /** Produces n records; one explicit-mode consumer ACCEPTs the first k it gets (commitSync: the
     *  broker answers once the acknowledgements are durable), holds the rest unacknowledged, and the
     *  process then halts without closing the consumer (a consumer that dies holding locks). The
     *  accepted keys are in the JSON. With the broker killed and restarted next, share-drain shows
     *  what came back. */
    static void shareAcceptSome(String topic, String group, int n, int k) throws Exception {
        try (Admin admin = admin()) {
            prepare(admin, topic, group, n, new LinkedHashMap<>());
        }
        List<String> accepted = new ArrayList<>();
        int held = 0;
        List<String> commitErrors = new ArrayList<>();
        KafkaShareConsumer<String, String> c = shareConsumer(group, "share-accept-some", true, null);
        c.subscribe(List.of(topic));
        long until = System.currentTimeMillis() + budgetMs(45_000);
        while (accepted.size() < k && System.currentTimeMillis() < until) {
            ConsumerRecords<String, String> recs = c.poll(POLL);
            for (ConsumerRecord<String, String> r : recs) {
                if (accepted.size() < k) {
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                    accepted.add(r.key());
                } else {
                    held++;  // left acquired: neither acknowledged nor released
                }
            }
            if (!recs.isEmpty()) commitErrors.addAll(commit(c));
        }
        result.put("accepted", accepted);
        result.put("held", held);
        result.put("commit_errors", commitErrors);
        check(accepted.size() == k, "accepted " + accepted.size() + " of " + k);
        check(commitErrors.isEmpty(), "commitSync errors: " + commitErrors);
        // No close: finish() halts the JVM with the consumer's locks still held.
    }

    /** An implicit-mode consumer of the group reads until it has `expected` records and then 3 s
     *  more (nothing else may come), or the deadline; every key it got is in the JSON. A negative
     *  `expected` reads until 3 s pass without a record and leaves the count to the caller. */
    static void shareDrain(String topic, String group, int expected) throws Exception {
        List<String> keys = new ArrayList<>();
        KafkaShareConsumer<String, String> c = shareConsumer(group, "share-drain", false, null);
        try {
            c.subscribe(List.of(topic));
            long until = System.currentTimeMillis() + budgetMs(60_000);
            long quietUntil = Long.MAX_VALUE;
            while (System.currentTimeMillis() < Math.min(until, quietUntil)) {
                boolean got = false;
                for (ConsumerRecord<String, String> r : c.poll(POLL)) { keys.add(r.key()); got = true; }
                if (expected < 0 && (got || quietUntil == Long.MAX_VALUE)) quietUntil = System.currentTimeMillis() + 3000;
                else if (keys.size() >= expected && quietUntil == Long.MAX_VALUE) quietUntil = System.currentTimeMillis() + 3000;
            }
        } finally {
            try { c.close(Duration.ofSeconds(10)); } catch (Throwable e) { failures.add("close: " + err(e)); }
        }
        result.put("drained", keys);
        if (expected >= 0) check(keys.size() == expected, "drained " + keys.size() + " records, expected " + expected);
    }

    // ------------------------------------------------------------------ share-accept-under-faults
    /** Produces n records; one explicit-mode consumer (max.poll.records 50) ACCEPTs everything it
     *  gets, committing after every poll (SHARE_HOLD_MS after it), until every key is accepted or
     *  the deadline, while the test kills brokers. Prints "PROGRESS <accepted>" lines on stdout as it
     *  goes, so the test knows when to strike. Lines on stdin steer it: "hold" stops polling (after
     *  the poll or commit under way) until "go", so that another member alone takes what is
     *  available; "others k.. k.." names keys another member accepted; "end" ends it once every key
     *  is accepted by it (confirmed or not) or another member, or 15 s pass without a record.
     *  The JSON has why it ended ("ended") and the order of events: "D k" a delivery, "A k" an
     *  acceptance the broker confirmed (commitSync answered without error), "U k" one it did not
     *  confirm (an error or no answer: the acknowledgement may or may not have been applied). */
    static void shareAcceptUnderFaults(String topic, String group, int n) throws Exception {
        try (Admin admin = admin()) {
            prepare(admin, topic, group, n, new LinkedHashMap<>());
        }
        List<String> events = new ArrayList<>();
        java.util.Set<String> confirmed = new java.util.HashSet<>();
        java.util.Set<String> unconfirmed = new java.util.HashSet<>();
        long holdMs = Long.parseLong(env("SHARE_HOLD_MS", "0"));
        KafkaShareConsumer<String, String> c = shareConsumer(group, "share-accept-under-faults", true, 50);
        String ended = "every key confirmed";
        try {
            c.subscribe(List.of(topic));
            long until = System.currentTimeMillis() + budgetMs(270_000);
            // Other consumers may take some records (the test's own, during a fault): once the test
            // writes "end" on stdin, the consumer ends after 15 s without a record (a busy machine
            // can hold a poll a few seconds while the leadership settles after the last fault).
            long endIfIdleFrom = Long.MAX_VALUE;
            long lastRecord = System.currentTimeMillis();
            long lastReport = lastRecord;
            java.util.concurrent.atomic.AtomicBoolean held = new java.util.concurrent.atomic.AtomicBoolean(false);
            java.util.concurrent.atomic.AtomicBoolean endAsked = new java.util.concurrent.atomic.AtomicBoolean(false);
            java.util.Set<String> others = java.util.concurrent.ConcurrentHashMap.newKeySet();
            Thread steering = new Thread(() -> {
                try (java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in))) {
                    for (String line; (line = in.readLine()) != null; ) {
                        if (line.startsWith("others ")) {
                            for (String k : line.substring(7).trim().split(" ")) if (!k.isEmpty()) others.add(k);
                            continue;
                        }
                        switch (line.trim()) {
                            case "hold" -> held.set(true);
                            case "go" -> held.set(false);
                            default -> endAsked.set(true);
                        }
                    }
                } catch (java.io.IOException e) {
                    endAsked.set(true);
                }
            });
            steering.setDaemon(true);
            steering.start();
            // Until every key is confirmed: a key whose acceptance went unconfirmed (its broker died
            // with the commit in flight) comes back unless the acceptance was applied after all.
            while (confirmed.size() < n) {
                if (System.currentTimeMillis() >= until) {
                    ended = "its time budget (" + (budgetMs(270_000) / 1000) + " s left of COMPAT_DEADLINE_S)";
                    break;
                }
                if (endIfIdleFrom == Long.MAX_VALUE && endAsked.get()) endIfIdleFrom = System.currentTimeMillis();
                if (endAsked.get() && settled(n, confirmed, unconfirmed, others)) {
                    ended = "every key confirmed, unconfirmed or another member's";
                    break;
                }
                if (System.currentTimeMillis() - endIfIdleFrom > 15_000) {
                    ended = "15 s without a record after \"end\"";
                    break;
                }
                long now = System.currentTimeMillis();
                if (now - lastRecord > 5000 && now - lastReport > 5000 && !held.get()) {  // for a failure's message
                    log("confirmed " + confirmed.size() + ", none delivered in the last " + (now - lastRecord) / 1000
                        + " s; " + groupView(group));
                    lastReport = now;
                }
                if (held.get()) {
                    System.out.println("HELD");
                    System.out.flush();
                    while (held.get() && System.currentTimeMillis() < until) Thread.sleep(50);
                    lastRecord = System.currentTimeMillis();  // a hold is not a stall
                    continue;
                }
                ConsumerRecords<String, String> recs;
                try {
                    recs = c.poll(POLL);
                } catch (KafkaException e) {  // a broker going away mid-request: poll again
                    log("poll: " + err(e));
                    continue;
                }
                if (!recs.isEmpty()) lastRecord = System.currentTimeMillis();
                if (!recs.isEmpty() && endIfIdleFrom != Long.MAX_VALUE) endIfIdleFrom = System.currentTimeMillis();
                List<String> keys = new ArrayList<>();
                for (ConsumerRecord<String, String> r : recs) {
                    events.add("D " + r.key());
                    keys.add(r.key());
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
                if (keys.isEmpty()) continue;
                // Holding the records a moment before committing: a broker killed meanwhile leaves
                // them acquired on a dead leader, the case that matters.
                Thread.sleep(holdMs);
                List<String> errs;
                try {
                    errs = commit(c);
                } catch (KafkaException e) {
                    errs = List.of(err(e));
                }
                for (String k : keys) {
                    events.add((errs.isEmpty() ? "A " : "U ") + k);
                    if (errs.isEmpty()) { confirmed.add(k); unconfirmed.remove(k); } else if (!confirmed.contains(k)) unconfirmed.add(k);
                }
                if (!errs.isEmpty()) log("commit errors: " + errs);
                System.out.println("PROGRESS " + confirmed.size());
                System.out.flush();
            }
        } finally {
            try { c.close(Duration.ofSeconds(10)); } catch (Throwable e) { log("close: " + err(e)); }
        }
        result.put("events", events);
        result.put("ended", ended);
        result.put("confirmed", confirmed.size());
        result.put("unconfirmed", unconfirmed.size());
    }

    /** Whether each of k0..k(n-1) is accepted by this consumer (confirmed or not) or by another member. */
    static boolean settled(int n, java.util.Set<String> confirmed, java.util.Set<String> unconfirmed,
                           java.util.Set<String> others) {
        if (confirmed.size() + unconfirmed.size() + others.size() < n) return false;
        for (int i = 0; i < n; i++) {
            String k = "k" + i;
            if (!confirmed.contains(k) && !unconfirmed.contains(k) && !others.contains(k)) return false;
        }
        return true;
    }

    // ------------------------------------------------------------------ share-accept-count
    /** Another member of an existing group (nothing produced): ACCEPTs what it gets, committing
     *  after every poll, until m acceptances are confirmed, or 5 s pass without a record once some
     *  are (the group's other members may hold the rest), or 60 s. Records past the m-th are
     *  RELEASEd (a poll may bring a whole producer batch): they stay for the group's other members.
     *  "confirmed" lists the accepted ones; at least one must be. */
    static void shareAcceptCount(String topic, String group, int m) throws Exception {
        List<String> confirmed = new ArrayList<>();
        KafkaShareConsumer<String, String> c = shareConsumer(group, "share-accept-count", true, 50);
        try {
            c.subscribe(List.of(topic));
            long until = System.currentTimeMillis() + budgetMs(60_000);
            long lastRecord = System.currentTimeMillis();
            long lastReport = lastRecord;
            while (confirmed.size() < m && System.currentTimeMillis() < until) {
                if (!confirmed.isEmpty() && System.currentTimeMillis() - lastRecord > 5000) break;
                if (System.currentTimeMillis() - lastReport > 5000) {  // what a failure's message shows
                    log("confirmed " + confirmed.size() + " so far, none in the last 5 s; " + groupView(group));
                    lastReport = System.currentTimeMillis();
                }
                List<String> keys = new ArrayList<>();
                int polled = 0;
                for (ConsumerRecord<String, String> r : c.poll(POLL)) {
                    polled++;
                    if (confirmed.size() + keys.size() < m) {
                        keys.add(r.key());
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                    } else {
                        c.acknowledge(r, AcknowledgeType.RELEASE);
                    }
                }
                if (polled == 0) continue;
                lastRecord = System.currentTimeMillis();
                List<String> errs = commit(c);
                if (errs.isEmpty()) confirmed.addAll(keys); else log("commit errors: " + errs);
            }
        } finally {
            try { c.close(Duration.ofSeconds(10)); } catch (Throwable e) { log("close: " + err(e)); }
        }
        result.put("confirmed", confirmed);
        check(!confirmed.isEmpty(), "confirmed none of the " + m + " wanted");
    }

    /** One line on the group as its coordinator describes it (members, their assignments and epochs)
     *  and its share-partitions' start offsets and lag: for a failure's message. Bounded (2 s a call). */
    static String groupView(String group) {
        try (Admin admin = admin()) {
            StringBuilder out = new StringBuilder();
            ShareGroupDescription d = admin.describeShareGroups(List.of(group)).all().get(2, TimeUnit.SECONDS).get(group);
            out.append("group ").append(d.groupState()).append(" epoch ").append(d.groupEpoch())
               .append(" coordinator ").append(d.coordinator() == null ? "?" : d.coordinator().id()).append(" members");
            for (ShareMemberDescription m : d.members())
                out.append(" [").append(m.clientId()).append(" e").append(m.memberEpoch()).append(' ')
                   .append(m.assignment().topicPartitions()).append(']');
            Map<String, ListShareGroupOffsetsSpec> spec = Map.of(group, new ListShareGroupOffsetsSpec());
            out.append("; offsets ").append(admin.listShareGroupOffsets(spec).all().get(2, TimeUnit.SECONDS).get(group));
            return out.toString();
        } catch (Exception e) {
            return "group not described: " + err(e);
        }
    }

    // ------------------------------------------------------------------ share-bench
    /** Throughput: n records produced first, then `consumers` implicit-mode consumers of one share
     *  group take them all; the clock runs from the first record any of them receives until every
     *  record was delivered and each consumer's last acknowledgements are committed (commitSync).
     *  Reports records/s acknowledged and the consumers' spread. */
    static long processCpuNs() {
        java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean sun ? sun.getProcessCpuTime() : 0;
    }

    static void shareBench(String topic, String group, int n, int consumers) throws Exception {
        try (Admin admin = admin()) {
            prepare(admin, topic, group, n, new LinkedHashMap<>());
        }
        AtomicInteger delivered = new AtomicInteger();
        Map<String, Double> clientMetrics = new HashMap<>();
        java.util.concurrent.atomic.AtomicLong firstNs = new java.util.concurrent.atomic.AtomicLong(0);
        java.util.concurrent.atomic.AtomicLong firstCpuNs = new java.util.concurrent.atomic.AtomicLong(0);
        int[] per = new int[consumers];
        long until = System.currentTimeMillis() + budgetMs(110_000);
        Thread[] ts = new Thread[consumers];
        for (int ci = 0; ci < consumers; ci++) {
            final int me = ci;
            ts[ci] = new Thread(() -> {
                KafkaShareConsumer<String, String> c = shareConsumer(group, "share-bench-" + me, false, null);
                try {
                    c.subscribe(List.of(topic));
                    while (delivered.get() < n && System.currentTimeMillis() < until) {
                        int got = c.poll(Duration.ofMillis(200)).count();
                        if (got > 0) {
                            if (firstNs.compareAndSet(0, System.nanoTime())) firstCpuNs.set(processCpuNs());
                            per[me] += got;
                            delivered.addAndGet(got);
                        }
                    }
                    c.commitSync(Duration.ofSeconds(30));  // the last poll's records, accepted
                    // The client's own view of its fetches (requests, records and bytes per answer),
                    // summed over the consumers: what makes a client work harder against one broker.
                    synchronized (clientMetrics) {
                        for (var m : c.metrics().entrySet()) {
                            String name = m.getKey().name();
                            if (!m.getKey().group().contains("share") || !(name.endsWith("-total") || name.endsWith("-avg")))
                                continue;
                            if (m.getValue().metricValue() instanceof Double v && Double.isFinite(v))
                                clientMetrics.merge(name, name.endsWith("-avg") ? v / consumers : v, Double::sum);
                        }
                    }
                } catch (Throwable e) {
                    failures.add("consumer " + me + ": " + err(e));
                } finally {
                    try { c.close(Duration.ofSeconds(10)); } catch (Throwable e) { /* measured already */ }
                }
            });
        }
        for (Thread t : ts) t.start();
        long[] doneNs = new long[1];
        for (Thread t : ts) t.join();
        doneNs[0] = System.nanoTime();
        double seconds = (doneNs[0] - firstNs.get()) / 1e9;
        // The consumers' own CPU over the same window: with one partition on a small machine the
        // clients can be the limit, and this says how much of it they took.
        result.put("client_cpu_s", (processCpuNs() - firstCpuNs.get()) / 1e9);
        result.put("consumers", consumers);
        result.put("delivered", delivered.get());
        List<Integer> perList = new ArrayList<>();
        for (int x : per) perList.add(x);
        result.put("per_consumer", perList);
        result.put("seconds", seconds);
        result.put("records_per_s", delivered.get() / seconds);
        result.put("client_metrics", new java.util.TreeMap<>(clientMetrics));
        check(delivered.get() == n, "delivered " + delivered.get() + " of " + n);
    }

    // ------------------------------------------------------------------ main
    /** Without -Dlog4j2.configurationFile, log4j2's default writes errors to stdout: use the
     *  same quiet configuration as log4j2.properties (warnings to stderr) instead. */
    static void quietLogging() {
        if (System.getProperty("log4j2.configurationFile") != null) return;
        try {
            java.nio.file.Path f = java.nio.file.Files.createTempFile("javashare-log4j2", ".properties");
            f.toFile().deleteOnExit();
            java.nio.file.Files.writeString(f, String.join("\n",
                    "status = warn",
                    "appender.stderr.type = Console",
                    "appender.stderr.name = STDERR",
                    "appender.stderr.target = SYSTEM_ERR",
                    "appender.stderr.layout.type = PatternLayout",
                    "appender.stderr.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = warn",
                    "rootLogger.appenderRef.stderr.ref = STDERR", ""));
            System.setProperty("log4j2.configurationFile", f.toString());
        } catch (Exception e) {
            System.err.println("JavaShare: no log config: " + e);
        }
    }

    public static void main(String[] args) {
        quietLogging();
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(DEADLINE_S * 1000);
            } catch (InterruptedException e) {
                return;
            }
            finish(true);
        }, "deadline");
        watchdog.setDaemon(true);
        watchdog.start();
        scenario = args.length > 0 ? args[0] : "?";
        result.put("scenario", scenario);
        result.put("bootstrap", BOOTSTRAP);
        try {
            switch (scenario) {
                case "share-three":
                    need(args, 4);
                    put(args);
                    shareThree(args[1], args[2], Integer.parseInt(args[3]));
                    break;
                case "share-explicit":
                    need(args, 4);
                    put(args);
                    shareExplicit(args[1], args[2], Integer.parseInt(args[3]));
                    break;
                case "share-lock-timeout":
                    need(args, 4);
                    put(args);
                    shareLockTimeout(args[1], args[2], Integer.parseInt(args[3]));
                    break;
                case "share-poison":
                    need(args, 3);
                    put(args);
                    sharePoison(args[1], args[2]);
                    break;
                case "share-accept-some":
                    need(args, 5);
                    put(args);
                    shareAcceptSome(args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]));
                    break;
                case "share-bench":
                    need(args, 5);
                    put(args);
                    shareBench(args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]));
                    break;
                case "share-accept-under-faults":
                    need(args, 4);
                    put(args);
                    shareAcceptUnderFaults(args[1], args[2], Integer.parseInt(args[3]));
                    break;
                case "share-accept-count":
                    need(args, 4);
                    put(args);
                    shareAcceptCount(args[1], args[2], Integer.parseInt(args[3]));
                    break;
                case "share-drain":
                    need(args, 4);
                    put(args);
                    shareDrain(args[1], args[2], Integer.parseInt(args[3]));
                    break;
                default:
                    System.err.println("usage: JavaShare.java share-three|share-explicit|share-lock-timeout <topic> <group> <n>\n"
                            + "       JavaShare.java share-poison <topic> <group>\n"
                            + "       JavaShare.java share-accept-some <topic> <group> <n> <k>\n"
                            + "       JavaShare.java share-drain <topic> <group> <expected>\n"
                            + "       JavaShare.java share-accept-count <topic> <group> <m>");
                    failures.add("unknown scenario " + scenario);
            }
        } catch (Throwable e) {
            failures.add("exception: " + err(e));
            e.printStackTrace(System.err);
        }
        finish(false);
    }

    static void need(String[] args, int k) {
        if (args.length != k) throw new IllegalArgumentException(args[0] + " takes " + (k - 1) + " arguments");
    }

    static void put(String[] args) {
        result.put("topic", args[1]);
        result.put("group", args[2]);
        if (args.length > 3) result.put("n", Integer.parseInt(args[3]));
    }
}
