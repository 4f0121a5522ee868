// Apache Kafka's Java Admin client on the storage admin APIs (driven by ../test_storage_admin.py,
// not run on its own): listOffsets (earliest, latest, forTimestamp, maxTimestamp), deleteRecords
// (low watermark; OffsetOutOfRangeException beyond the high watermark), incrementalAlterConfigs
// (SET, APPEND, DELETE) seen through describeConfigs.
//
// Environment: BOOTSTRAP_SERVERS, TOPIC (one partition, 12 records at offsets 0..11 whose
// timestamps are BASE_TS + 1000 * offset, except offset 7: BASE_TS + 50000), BASE_TS.
// Prints "ok <step>" per step; on the first failure "FAIL <step>: <why>" and exit 1.

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;

public class JavaStorageAdmin {
    static String step = "start";

    static void check(boolean cond, String why) {
        if (!cond) {
            System.out.println("FAIL " + step + ": " + why);
            System.out.flush();
            System.exit(1);
        }
    }

    static void ok() { System.out.println("ok " + step); }

    public static void main(String[] args) throws Exception {
        String topic = System.getenv("TOPIC");
        long base = Long.parseLong(System.getenv("BASE_TS"));
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv("BOOTSTRAP_SERVERS"));
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 20000);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin admin = Admin.create(props)) {
            step = "listOffsets";
            check(offset(admin, tp, OffsetSpec.earliest()).offset() == 0, "earliest != 0");
            check(offset(admin, tp, OffsetSpec.latest()).offset() == 12, "latest != 12");
            ListOffsetsResult.ListOffsetsResultInfo at = offset(admin, tp, OffsetSpec.forTimestamp(base + 4500));
            check(at.offset() == 5 && at.timestamp() == base + 5000, "forTimestamp(base+4500): " + at);
            at = offset(admin, tp, OffsetSpec.forTimestamp(base + 8000));
            check(at.offset() == 7 && at.timestamp() == base + 50000, "forTimestamp(base+8000): " + at);
            at = offset(admin, tp, OffsetSpec.forTimestamp(base + 60000));
            check(at.offset() == -1, "forTimestamp beyond all: " + at);
            at = offset(admin, tp, OffsetSpec.maxTimestamp());
            check(at.offset() == 7 && at.timestamp() == base + 50000, "maxTimestamp: " + at);
            ok();

            step = "deleteRecords";
            DeletedRecords dr = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(6)))
                    .lowWatermarks().get(tp).get();
            check(dr.lowWatermark() == 6, "low watermark " + dr.lowWatermark());
            check(offset(admin, tp, OffsetSpec.earliest()).offset() == 6, "earliest after deleteRecords");
            try {
                admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(13))).lowWatermarks().get(tp).get();
                check(false, "no error beyond the high watermark");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof OffsetOutOfRangeException, "beyond the high watermark: " + e.getCause());
            }
            ok();

            step = "incrementalAlterConfigs";
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                    .all().get();
            waitFor(admin, res, "retention.ms", "3600000", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
            waitFor(admin, res, "cleanup.policy", "delete,compact", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
            admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE))))
                    .all().get();
            waitFor(admin, res, "retention.ms", "604800000", ConfigEntry.ConfigSource.DEFAULT_CONFIG);
            ok();
        }
        System.out.println("all ok");
    }

    static ListOffsetsResult.ListOffsetsResultInfo offset(Admin admin, TopicPartition tp, OffsetSpec spec)
            throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get();
    }

    // Config changes reach DescribeConfigs a moment after the alter answered (Kafka's metadata log).
    static void waitFor(Admin admin, ConfigResource res, String key, String value, ConfigEntry.ConfigSource source)
            throws Exception {
        ConfigEntry last = null;
        for (int i = 0; i < 150; i++) {
            last = admin.describeConfigs(List.of(res)).all().get().get(res).get(key);
            if (last != null && value.equals(last.value()) && last.source() == source) return;
            Thread.sleep(200);
        }
        check(false, key + " is " + last + ", want " + value + " (" + source + ")");
    }
}
