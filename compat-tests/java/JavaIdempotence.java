// Idempotent producer under chaos, with Apache Kafka's Java producer at its DEFAULT settings
// (3.x defaults: enable.idempotence=true, acks=all, retries=MAX, max.in.flight=5,
// delivery.timeout.ms=120000). Driven by compat-tests/test_idempotence_clients.py, which breaks
// connections and kill -9's the broker meanwhile, then checks what was stored.
//
// Run with Java's single-file source launcher on the libs from setup.sh:
//   java -cp "$LIBS/*" JavaIdempotence.java
// Environment:
//   BOOTSTRAP_SERVERS  host:port            TOPIC         existing topic
//   PARTITIONS         partition count      TAG           value prefix of this run
//   STOP_FILE          stop producing when this file exists
//   RESULT_FILE        where to write "A <n> <offset>" / "F <n> <error>" per message
//   RATE               messages per second (default 2000)
//   COMPAT_DEADLINE_S  halt (exit 3) after this many seconds, whatever happens (default 150)
// Message n goes to partition n % PARTITIONS with the value "<TAG>:<n>".
// Exit code 0 when the producer closed normally and every message got a callback.

import java.io.BufferedWriter;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class JavaIdempotence {
    static String env(String k, String dflt) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? dflt : v;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = env("BOOTSTRAP_SERVERS", "127.0.0.1:9092");
        String topic = env("TOPIC", "");
        int partitions = Integer.parseInt(env("PARTITIONS", "3"));
        String tag = env("TAG", "java");
        File stopFile = new File(env("STOP_FILE", "stop"));
        File resultFile = new File(env("RESULT_FILE", "result.txt"));
        int rate = Integer.parseInt(env("RATE", "2000"));
        long deadlineS = Long.parseLong(env("COMPAT_DEADLINE_S", "150"));
        if (topic.isEmpty()) throw new IllegalArgumentException("TOPIC not set");

        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(deadlineS * 1000);
                System.out.println("JavaIdempotence: deadline of " + deadlineS + " s reached, halting");
                System.out.flush();
                Runtime.getRuntime().halt(3);
            } catch (InterruptedException e) { /* done in time */ }
        });
        watchdog.setDaemon(true);
        watchdog.start();

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "sluice-compat-idempotence");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        // Nothing else: the defaults are the point of this scenario.

        Map<Integer, Long> acked = new ConcurrentHashMap<>();
        Map<Integer, String> failed = new ConcurrentHashMap<>();
        AtomicLong callbacks = new AtomicLong();
        int n = 0;
        long t0 = System.nanoTime();
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props);
        try {
            // Pace to RATE: every 10 ms catch up with rate * elapsed.
            while (!stopFile.exists()) {
                long due = (System.nanoTime() - t0) / 1_000_000L * rate / 1000;
                while (n < due) {
                    final int i = n++;
                    byte[] value = (tag + ":" + i).getBytes(StandardCharsets.UTF_8);
                    try {
                        producer.send(new ProducerRecord<>(topic, i % partitions, null, value), (md, e) -> {
                            if (e == null) acked.put(i, md.offset());
                            else failed.put(i, e.getClass().getSimpleName() + ": " + e.getMessage());
                            callbacks.incrementAndGet();
                        });
                    } catch (Exception e) {  // send() itself failed (e.g. buffer full for max.block.ms)
                        failed.put(i, "send: " + e);
                        callbacks.incrementAndGet();
                    }
                }
                Thread.sleep(10);
            }
            System.out.println("JavaIdempotence: stop file seen after " + n + " messages; flushing");
            producer.flush();
        } finally {
            producer.close(Duration.ofSeconds(30));
        }

        try (BufferedWriter w = Files.newBufferedWriter(resultFile.toPath(), StandardCharsets.UTF_8)) {
            w.write("N " + n + "\n");
            for (int i = 0; i < n; i++) {
                Long off = acked.get(i);
                if (off != null) w.write("A " + i + " " + off + "\n");
                String err = failed.get(i);
                if (err != null) w.write("F " + i + " " + err.replace('\n', ' ') + "\n");
            }
        }
        Map<String, Integer> kinds = new TreeMap<>();
        for (String e : failed.values()) kinds.merge(e.split(":")[0], 1, Integer::sum);
        System.out.printf("JavaIdempotence: produced %d, acked %d, failed %d %s, callbacks %d%n",
            n, acked.size(), failed.size(), kinds, callbacks.get());
        System.exit(callbacks.get() == n ? 0 : 2);
    }
}
