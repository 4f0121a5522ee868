// Sluice compatibility scenarios for Apache Kafka's Java client and command-line tools.
//
// Run with Java's single-file source launcher (no build step), libs from setup.sh:
//   java -cp "$LIBS/*" JavaCompat.java <group>...      groups: clients, cli, all; roundtrip (not in all)
// Environment: BOOTSTRAP_SERVERS (host:port), BROKER_KIND (sluice|kafka, for messages only),
//   COMPAT_MESSAGES (messages per codec, default 100000), COMPAT_DEADLINE_S (whole run, default 170).
// Exit code 0 when every scenario passed; prints "N passed, N failed" last.

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class JavaCompat {
    static final String BOOTSTRAP = env("BOOTSTRAP_SERVERS", "127.0.0.1:9092");
    static final String KIND = env("BROKER_KIND", "unknown");
    static final int MESSAGES = Integer.parseInt(env("COMPAT_MESSAGES", "100000"));
    static final int PARTITIONS = 3;
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    static final Duration API_TIMEOUT = Duration.ofSeconds(20);

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

    static void check(boolean cond, String what) {
        if (!cond) throw new AssertionError(what);
    }

    static void checkEq(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual))
            throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
    }

    interface Probe { boolean ok() throws Exception; }

    static void eventually(long ms, String what, Probe p) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        Exception last = null;
        while (System.currentTimeMillis() < deadline) {
            try {
                if (p.ok()) return;
            } catch (Exception e) {
                last = e;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("not reached within " + ms + " ms: " + what + (last != null ? " (last: " + last + ")" : ""));
    }

    static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        try {
            return f.get(API_TIMEOUT.toMillis() + 5000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception) throw (Exception) e.getCause();
            throw e;
        }
    }

    static String uniqueTopic(String prefix) {
        return prefix + "-" + Long.toString(System.currentTimeMillis(), 36) + "-"
            + Integer.toHexString(new Random().nextInt(0xffffff));
    }

    // ------------------------------------------------------------------ test data
    // Message i: partition i % 3, key "key-i", a value mixing compressible text and binary bytes
    // (0..~300 bytes, some empty), and two headers.
    static byte[] key(int i) { return ("key-" + i).getBytes(StandardCharsets.UTF_8); }

    static byte[] value(int i) {
        Random r = new Random(i * 2654435761L);
        int binLen = i % 7 == 0 ? 0 : i % 61;
        StringBuilder sb = new StringBuilder();
        if (i % 13 != 0) {
            sb.append("value-").append(i).append('-');
            String pad = "abcdefghij";
            int want = 20 + i % 200;
            for (int k = 0; sb.length() < want; k++) sb.append(pad.charAt(k % pad.length()));
        }
        byte[] text = sb.toString().getBytes(StandardCharsets.UTF_8);
        byte[] out = Arrays.copyOf(text, text.length + binLen);
        for (int k = 0; k < binLen; k++) out[text.length + k] = (byte) r.nextInt(256);
        return out;
    }

    static List<Header> headers(int i) {
        return List.of(
            new RecordHeader("h-index", String.valueOf(i).getBytes(StandardCharsets.UTF_8)),
            new RecordHeader("h-bin", new byte[]{(byte) i, (byte) (i >> 8), 0, (byte) 0xff, (byte) (i >> 16)}));
    }

    static long countFor(int p) { return MESSAGES > p ? (MESSAGES - 1 - p) / PARTITIONS + 1 : 0; }

    static String diff(int i, ConsumerRecord<byte[], byte[]> r) {
        if (!Arrays.equals(key(i), r.key())) return "key differs";
        if (!Arrays.equals(value(i), r.value())) return "value differs (" + (r.value() == null ? -1 : r.value().length) + " bytes)";
        Header[] got = r.headers().toArray();
        List<Header> want = headers(i);
        if (got.length != want.size()) return got.length + " headers, expected " + want.size();
        for (int h = 0; h < got.length; h++) {
            if (!want.get(h).key().equals(got[h].key())) return "header " + h + " name " + got[h].key();
            if (!Arrays.equals(want.get(h).value(), got[h].value())) return "header " + got[h].key() + " value differs";
        }
        return null;
    }

    // ------------------------------------------------------------------ clients
    static Properties common() {
        Properties p = new Properties();
        p.put("bootstrap.servers", BOOTSTRAP);
        p.put("request.timeout.ms", "20000");
        p.put("default.api.timeout.ms", "30000");
        p.put("socket.connection.setup.timeout.ms", "5000");
        p.put("reconnect.backoff.max.ms", "1000");
        return p;
    }

    static Admin admin() {
        Properties p = common();
        p.remove("default.api.timeout.ms");
        p.put("default.api.timeout.ms", "30000");
        p.put("client.id", "sluice-compat-java-admin");
        return Admin.create(p);
    }

    static KafkaProducer<byte[], byte[]> producer(String codec) {
        Properties p = common();
        p.remove("default.api.timeout.ms");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "sluice-compat-java-producer-" + codec);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        // Idempotence stays at its default (on): the broker's producer state keeps order on retries.
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(256 * 1024));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<byte[], byte[]> consumer() {
        Properties p = common();
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "sluice-compat-java-consumer");
        // No group.id: assign() + seek only, no group coordinator involved.
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "10000");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    static void createTopic(Admin admin, String topic, int partitions, Map<String, String> configs) throws Exception {
        NewTopic nt = new NewTopic(topic, partitions, (short) 1);
        if (configs != null) nt.configs(configs);
        get(admin.createTopics(List.of(nt)).all());
        // Wait until the broker's metadata has the topic with leaders on every partition.
        eventually(15000, "leaders for " + topic, () -> {
            TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            return d.partitions().size() == partitions && d.partitions().stream().allMatch(p -> p.leader() != null);
        });
    }

    static void produceConsume(Admin admin, String codec) throws Exception {
        String topic = uniqueTopic("java-" + codec);
        createTopic(admin, topic, PARTITIONS, null);

        long t0 = System.nanoTime();
        long[] nextOffset = new long[PARTITIONS];
        AtomicReference<String> error = new AtomicReference<>();
        try (KafkaProducer<byte[], byte[]> producer = producer(codec)) {
            // Send callbacks for one partition run in send order; each record's offset must be
            // the next one of its partition.
            for (int i = 0; i < MESSAGES; i++) {
                final int p = i % PARTITIONS;
                final int idx = i;
                producer.send(new ProducerRecord<>(topic, p, key(i), value(i), headers(i)), (RecordMetadata md, Exception e) -> {
                    if (e != null) {
                        error.compareAndSet(null, "message " + idx + ": " + e);
                        return;
                    }
                    long want = nextOffset[p]++;
                    if (md.offset() != want)
                        error.compareAndSet(null, "message " + idx + " got offset " + md.offset() + ", expected " + want);
                });
            }
            producer.flush();
        }
        check(error.get() == null, "produce: " + error.get());
        long t1 = System.nanoTime();

        try (KafkaConsumer<byte[], byte[]> consumer = consumer()) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) tps.add(new TopicPartition(topic, p));
            // ListOffsets earliest/latest through the consumer.
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(tps, API_TIMEOUT);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, API_TIMEOUT);
            for (TopicPartition tp : tps) {
                checkEq(0L, begin.get(tp), "beginning offset of " + tp);
                checkEq(countFor(tp.partition()), end.get(tp), "end offset of " + tp);
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long[] nextIdx = new long[PARTITIONS];
            long[] got = new long[PARTITIONS];
            for (int p = 0; p < PARTITIONS; p++) nextIdx[p] = p;
            long total = 0;
            long deadline = System.currentTimeMillis() + 60000;
            while (total < MESSAGES) {
                check(System.currentTimeMillis() < deadline, "consume: only " + total + " of " + MESSAGES + " within 60 s, per partition " + Arrays.toString(got));
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    int p = r.partition();
                    checkEq(got[p], r.offset(), "offset in partition " + p);
                    String d = diff((int) nextIdx[p], r);
                    if (d != null) throw new AssertionError("partition " + p + " offset " + r.offset() + " (message " + nextIdx[p] + "): " + d);
                    nextIdx[p] += PARTITIONS;
                    got[p]++;
                    total++;
                }
            }
            for (int p = 0; p < PARTITIONS; p++) checkEq(countFor(p), got[p], "records read from partition " + p);
            // Nothing beyond the end.
            ConsumerRecords<byte[], byte[]> extra = consumer.poll(Duration.ofMillis(300));
            checkEq(0, extra.count(), "records after the last one");
        }
        long t2 = System.nanoTime();
        System.out.printf("[%s] java %s: produced %d in %d ms, consumed+checked in %d ms%n",
            KIND, codec, MESSAGES, (t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000);
        try {
            get(admin.deleteTopics(List.of(topic)).all());
        } catch (Exception e) {
            System.out.println("(cleanup: deleteTopics failed: " + e + ")");
        }
    }

    static void adminScenario(Admin admin) throws Exception {
        String topic = uniqueTopic("java-admin");

        DescribeClusterResult cluster = admin.describeCluster();
        Collection<Node> nodes = get(cluster.nodes());
        Node controller = get(cluster.controller());
        String clusterId = get(cluster.clusterId());
        check(!nodes.isEmpty(), "describeCluster: no nodes");
        check(clusterId != null && !clusterId.isEmpty(), "describeCluster: cluster id");
        check(controller != null, "describeCluster: controller");
        Set<Integer> ids = new HashSet<>();
        for (Node n : nodes) {
            ids.add(n.id());
            check(n.host() != null && !n.host().isEmpty() && n.port() > 0, "node " + n);
        }

        createTopic(admin, topic, 2, Map.of("retention.ms", "86400000"));
        try {
            get(admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all());
            throw new AssertionError("creating an existing topic succeeded");
        } catch (TopicExistsException expected) {
            // as Kafka does
        }
        eventually(15000, "listTopics shows " + topic, () -> get(admin.listTopics().names()).contains(topic));

        TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        checkEq(topic, d.name(), "describeTopics name");
        checkEq(2, d.partitions().size(), "describeTopics partition count");
        check(!d.isInternal(), "topic is not internal");
        for (TopicPartitionInfo pi : d.partitions()) {
            check(ids.contains(pi.leader().id()), "leader " + pi.leader() + " is a cluster node");
            checkEq(1, pi.replicas().size(), "replicas of partition " + pi.partition());
            checkEq(1, pi.isr().size(), "isr of partition " + pi.partition());
        }

        // A few records so latest offsets differ from earliest.
        try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
            for (int i = 0; i < 7; i++) producer.send(new ProducerRecord<>(topic, 0, key(i), value(i), headers(i)));
            for (int i = 0; i < 3; i++) producer.send(new ProducerRecord<>(topic, 1, key(i), value(i), headers(i)));
            producer.flush();
        }
        Map<TopicPartition, OffsetSpec> earliest = new HashMap<>(), latest = new HashMap<>();
        for (int p = 0; p < 2; p++) {
            earliest.put(new TopicPartition(topic, p), OffsetSpec.earliest());
            latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
        }
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e = get(admin.listOffsets(earliest).all());
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> l = get(admin.listOffsets(latest).all());
        checkEq(0L, e.get(new TopicPartition(topic, 0)).offset(), "earliest p0");
        checkEq(0L, e.get(new TopicPartition(topic, 1)).offset(), "earliest p1");
        checkEq(7L, l.get(new TopicPartition(topic, 0)).offset(), "latest p0");
        checkEq(3L, l.get(new TopicPartition(topic, 1)).offset(), "latest p1");

        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all());
        eventually(15000, "4 partitions after createPartitions", () ->
            get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size() == 4);
        eventually(15000, "listOffsets on the new partitions", () -> {
            Map<TopicPartition, OffsetSpec> q = new HashMap<>();
            for (int p = 2; p < 4; p++) q.put(new TopicPartition(topic, p), OffsetSpec.latest());
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> r = get(admin.listOffsets(q).all());
            return r.values().stream().allMatch(i -> i.offset() == 0L);
        });

        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config cfg = get(admin.describeConfigs(List.of(res)).all()).get(res);
        check(cfg != null, "describeConfigs returned the topic");
        ConfigEntry retention = cfg.get("retention.ms");
        check(retention != null, "retention.ms listed");
        checkEq("86400000", retention.value(), "retention.ms value");
        checkEq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source(), "retention.ms source");
        ConfigEntry cleanup = cfg.get("cleanup.policy");
        check(cleanup != null, "cleanup.policy listed (defaults are listed too)");
        checkEq("delete", cleanup.value(), "cleanup.policy value");
        check(cleanup.isDefault(), "cleanup.policy is a default");

        get(admin.deleteTopics(List.of(topic)).all());
        eventually(15000, topic + " gone after deleteTopics", () -> !get(admin.listTopics().names()).contains(topic));
    }

    static void autoCreateScenario(Admin admin) throws Exception {
        String topic = uniqueTopic("java-auto");
        check(!get(admin.listTopics().names()).contains(topic), "topic must not exist yet");
        try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
            RecordMetadata md = null;
            for (int i = 0; i < 10; i++)
                md = producer.send(new ProducerRecord<>(topic, 0, key(i), value(i), headers(i))).get(45, TimeUnit.SECONDS);
            checkEq(9L, md.offset(), "offset of the 10th record");
        }
        TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        check(d.partitions().size() >= 1, "auto-created topic has partitions");
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> l =
            get(admin.listOffsets(Map.of(new TopicPartition(topic, 0), OffsetSpec.latest())).all());
        checkEq(10L, l.get(new TopicPartition(topic, 0)).offset(), "latest offset of auto-created topic");
        // The consumer reads them back without a group.
        try (KafkaConsumer<byte[], byte[]> consumer = consumer()) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            int n = 0;
            long deadline = System.currentTimeMillis() + 20000;
            while (n < 10 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    String df = diff(n, r);
                    if (df != null) throw new AssertionError("record " + n + ": " + df);
                    n++;
                }
            }
            checkEq(10, n, "records read back");
        }
        try { get(admin.deleteTopics(List.of(topic)).all()); } catch (Exception e) { /* cleanup only */ }
    }

    // ------------------------------------------------------------------ CLI tools
    record Run(int code, String out, String err) {}

    // Runs a Kafka tool main class in a child JVM with this JVM's class path; bounded.
    static Run tool(String mainClass, List<String> args, String stdin, long timeoutS) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(new File(System.getProperty("java.home"), "bin/java").getPath());
        cmd.add("-Xmx256m");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-Xshare:auto");
        String log4j = System.getProperty("compat.log4j");
        if (log4j != null) cmd.add("-Dlog4j.configuration=" + log4j);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass);
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        File errFile = File.createTempFile("compat-tool", ".err");
        errFile.deleteOnExit();
        pb.redirectError(errFile);
        Process proc = pb.start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Thread reader = new Thread(() -> {
            try (InputStream in = proc.getInputStream()) { in.transferTo(out); } catch (Exception ignored) { }
        });
        reader.start();
        try (OutputStream os = proc.getOutputStream()) {
            if (stdin != null) os.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
        if (!proc.waitFor(timeoutS, TimeUnit.SECONDS)) {
            proc.destroyForcibly();
            proc.waitFor(10, TimeUnit.SECONDS);
            reader.join(5000);
            throw new AssertionError(mainClass + " " + args + ": timed out after " + timeoutS + " s\nstdout:\n" + out
                + "\nstderr:\n" + new String(java.nio.file.Files.readAllBytes(errFile.toPath()), StandardCharsets.UTF_8));
        }
        reader.join(5000);
        String err = new String(java.nio.file.Files.readAllBytes(errFile.toPath()), StandardCharsets.UTF_8);
        return new Run(proc.exitValue(), out.toString(StandardCharsets.UTF_8), err);
    }

    static Run okTool(String mainClass, List<String> args, String stdin, long timeoutS) throws Exception {
        Run r = tool(mainClass, args, stdin, timeoutS);
        if (r.code() != 0)
            throw new AssertionError(mainClass + " " + args + " exited " + r.code() + "\nstdout:\n" + r.out() + "\nstderr:\n" + r.err());
        return r;
    }

    static final String TOPIC_CMD = "org.apache.kafka.tools.TopicCommand";                    // kafka-tools
    static final String CONSOLE_PRODUCER = "kafka.tools.ConsoleProducer";                      // kafka_2.13 (3.9)
    static final String CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer";  // kafka-tools (3.9)

    static void topicsToolScenario() throws Exception {
        String topic = uniqueTopic("java-cli-topics");
        Run c = okTool(TOPIC_CMD, List.of("--bootstrap-server", BOOTSTRAP, "--create", "--topic", topic,
            "--partitions", "3", "--replication-factor", "1"), null, 60);
        check(c.out().contains("Created topic " + topic), "create output: " + c.out());
        eventually(20000, "topics --list shows " + topic, () -> {
            Run l = okTool(TOPIC_CMD, List.of("--bootstrap-server", BOOTSTRAP, "--list"), null, 60);
            return Arrays.asList(l.out().split("\\R")).contains(topic);
        });
        Run d = okTool(TOPIC_CMD, List.of("--bootstrap-server", BOOTSTRAP, "--describe", "--topic", topic), null, 60);
        System.out.print(d.out());
        check(d.out().contains("Topic: " + topic) && d.out().contains("PartitionCount: 3"), "describe summary: " + d.out());
        check(d.out().contains("ReplicationFactor: 1"), "describe replication factor: " + d.out());
        for (int p = 0; p < 3; p++)
            check(d.out().matches("(?s).*Topic: " + java.util.regex.Pattern.quote(topic) + "\\s+Partition: " + p + "\\s+Leader: \\d+.*"),
                "describe line for partition " + p + ": " + d.out());
        okTool(TOPIC_CMD, List.of("--bootstrap-server", BOOTSTRAP, "--delete", "--topic", topic), null, 60);
    }

    static void consoleScenario(Admin admin) throws Exception {
        String topic = uniqueTopic("java-cli-console");
        createTopic(admin, topic, 1, null);
        StringBuilder in = new StringBuilder();
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            String line = "console line " + i + " \u00e9\u00e8 " + "x".repeat(i);
            lines.add(line);
            in.append(line).append('\n');
        }
        okTool(CONSOLE_PRODUCER, List.of("--bootstrap-server", BOOTSTRAP, "--topic", topic,
            "--producer-property", "acks=all", "--producer-property", "max.block.ms=30000"), in.toString(), 90);
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> l =
            get(admin.listOffsets(Map.of(new TopicPartition(topic, 0), OffsetSpec.latest())).all());
        checkEq(100L, l.get(new TopicPartition(topic, 0)).offset(), "latest offset after console producer");
        Run r = okTool(CONSOLE_CONSUMER, List.of("--bootstrap-server", BOOTSTRAP, "--topic", topic,
            "--partition", "0", "--offset", "earliest", "--max-messages", "100", "--timeout-ms", "20000"), null, 90);
        List<String> got = Arrays.asList(r.out().split("\\R"));
        checkEq(lines, got, "console consumer output\nstderr:\n" + r.err());
        check(r.err().contains("Processed a total of 100 messages"), "consumer summary: " + r.err());
        try { get(admin.deleteTopics(List.of(topic)).all()); } catch (Exception e) { /* cleanup only */ }
    }

    // ------------------------------------------------------------------ main
    public static void main(String[] args) throws Exception {
        long deadlineS = Long.parseLong(env("COMPAT_DEADLINE_S", "170"));
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(deadlineS * 1000);
                System.out.println("FAIL watchdog: run exceeded " + deadlineS + " s; aborting");
                System.out.println(passed + " passed, " + (failed + 1) + " failed");
                System.out.flush();
                Runtime.getRuntime().halt(3);
            } catch (InterruptedException ignored) { }
        });
        watchdog.setDaemon(true);
        watchdog.start();

        Set<String> groups = new LinkedHashSet<>(args.length == 0 ? List.of("all") : Arrays.asList(args));
        boolean all = groups.contains("all");
        System.out.println("JavaCompat: broker " + KIND + " at " + BOOTSTRAP + ", kafka-clients "
            + org.apache.kafka.common.utils.AppInfoParser.getVersion() + ", groups " + groups);
        try (Admin admin = admin()) {
            if (all || groups.contains("clients")) {
                scenario("admin: describeCluster, createTopics, describeTopics, listOffsets, createPartitions, describeConfigs, deleteTopics", () -> adminScenario(admin));
                for (String codec : CODECS)
                    scenario("producer+consumer (" + codec + "): " + MESSAGES + " messages, assign+seekToBeginning, byte-identical, ordered", () -> produceConsume(admin, codec));
                scenario("auto-creation: producing to an unknown topic creates it", () -> autoCreateScenario(admin));
            }
            if (groups.contains("roundtrip")) {  // the producer+consumer scenario alone, in one codec
                scenario("producer+consumer (lz4): " + MESSAGES + " messages, assign+seekToBeginning, byte-identical, ordered", () -> produceConsume(admin, "lz4"));
            }
            if (all || groups.contains("cli")) {
                scenario("topics tool: --create, --list, --describe, --delete", JavaCompat::topicsToolScenario);
                scenario("console producer 100 lines, console consumer --partition 0 --offset earliest", () -> consoleScenario(admin));
            }
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.out.flush();
        Runtime.getRuntime().halt(failed == 0 && passed > 0 ? 0 : 1);
    }
}
