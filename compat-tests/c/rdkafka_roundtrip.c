/*
 * rdkafka_roundtrip: librdkafka (C API) round trip for the Sluice compatibility suite.
 *
 *   rdkafka_roundtrip -b BOOTSTRAP -t TOPIC [-n COUNT] [-p PARTITIONS] [-z CODEC] [-c] [-T SECONDS]
 *
 *   -c        create the topic first (CreateTopics via the admin API) and wait for its metadata
 *   -z CODEC  none|gzip|snappy|lz4|zstd (compression.type)
 *
 * Produces COUNT messages with keys and headers (message i goes to partition i % PARTITIONS,
 * acks=all), then consumes every partition from offset 0 with assign() (no consumer group is
 * joined), checks each message byte for byte against the generator, order and contiguous offsets
 * per partition, then re-assigns one partition at a middle offset (seek) and checks that message.
 * Exit status 0 on success; everything is bounded by -T seconds (default 120).
 */
#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *bootstrap = NULL, *topic = NULL, *codec = "none";
static long count = 10000;
static int partitions = 3, create_topic = 0, timeout_s = 120;
static double deadline;
static long delivered_ok = 0, delivery_errors = 0;
static char first_delivery_error[512];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rdkafka_roundtrip: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static int remaining_ms(void) {
  double left = deadline - now();
  if (left <= 0) die("timed out after %d s", timeout_s);
  return (int)(left * 1000);
}

/* ---- deterministic messages ------------------------------------------------------------- */
typedef struct {
  char key[32];
  size_t key_len;
  unsigned char value[512];
  size_t value_len;
  char idx[24];
  size_t idx_len;
  unsigned char bin[16];
  size_t bin_len;
} msg_t;

static void make_msg(long i, msg_t *m) {
  m->key_len = (size_t)snprintf(m->key, sizeof m->key, "key-%ld", i);
  m->idx_len = (size_t)snprintf(m->idx, sizeof m->idx, "%ld", i);
  size_t n = 0;
  if (i % 13 != 0) {
    n = (size_t)snprintf((char *)m->value, sizeof m->value, "value-%ld-", i);
    size_t text_len = 20 + (size_t)(i % 200);
    for (size_t k = 0; n < text_len; k++) m->value[n++] = (unsigned char)("abcdefghij"[k % 10]);
  }
  uint32_t x = (uint32_t)(i * 2654435761u) | 1u; /* xorshift32: binary bytes, all values occur */
  size_t bin_len = (i % 7 == 0) ? 0 : (size_t)(i % 97);
  for (size_t k = 0; k < bin_len; k++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    m->value[n++] = (unsigned char)(x & 0xff);
  }
  m->value_len = n;
  m->bin_len = (size_t)(i % 16);
  for (size_t k = 0; k < m->bin_len; k++) m->bin[k] = (unsigned char)((i >> (k % 8)) ^ (k * 37));
}

/* ---- admin ------------------------------------------------------------------------------- */
static void wait_metadata(rd_kafka_t *rk) {
  while (1) {
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    rd_kafka_topic_destroy(rkt);
    int ready = 0;
    if (!err && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt == partitions) {
      ready = 1;
      for (int p = 0; p < md->topics[0].partition_cnt; p++)
        if (md->topics[0].partitions[p].leader < 0 || md->topics[0].partitions[p].err) ready = 0;
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (ready) return;
    remaining_ms();
    usleep(200 * 1000);
  }
}

static void do_create(rd_kafka_t *rk) {
  char err[512];
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof err);
  if (!nt) die("NewTopic: %s", err);
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opt, 30000, err, sizeof err);
  rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, remaining_ms());
  if (!ev) die("CreateTopics: no result");
  if (rd_kafka_event_error(ev)) die("CreateTopics: %s", rd_kafka_event_error_string(ev));
  const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
  size_t n = 0;
  const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
  if (n != 1) die("CreateTopics: %zu results", n);
  if (rd_kafka_topic_result_error(tr[0]))
    die("CreateTopics %s: %s", topic, rd_kafka_topic_result_error_string(tr[0]));
  rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opt);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  wait_metadata(rk);
}

/* ---- produce ----------------------------------------------------------------------------- */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk; (void)opaque;
  if (m->err) {
    if (delivery_errors++ == 0)
      snprintf(first_delivery_error, sizeof first_delivery_error, "%s", rd_kafka_err2str(m->err));
  } else {
    delivered_ok++;
  }
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
  char err[512];
  if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) die("config %s=%s: %s", k, v, err);
}

static rd_kafka_t *new_producer(void) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_set(conf, "bootstrap.servers", bootstrap);
  conf_set(conf, "compression.type", codec);
  conf_set(conf, "acks", "all");
  conf_set(conf, "linger.ms", "20");
  conf_set(conf, "batch.num.messages", "10000");
  conf_set(conf, "queue.buffering.max.messages", "200000");
  char tmo[32];
  snprintf(tmo, sizeof tmo, "%d", timeout_s * 1000);
  conf_set(conf, "message.timeout.ms", tmo);
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die("producer: %s", err);
  return rk;
}

static void produce_all(rd_kafka_t *rk) {
  msg_t m;
  for (long i = 0; i < count; i++) {
    make_msg(i, &m);
    while (1) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)(i % partitions)),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m.key, m.key_len),
          RD_KAFKA_V_VALUE(m.value, m.value_len), RD_KAFKA_V_HEADER("h-index", m.idx, (ssize_t)m.idx_len),
          RD_KAFKA_V_HEADER("h-bin", m.bin, (ssize_t)m.bin_len), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("producev #%ld: %s", i, rd_kafka_err2str(err));
      rd_kafka_poll(rk, 50);
      remaining_ms();
    }
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_resp_err_t err = rd_kafka_flush(rk, remaining_ms());
  if (err) die("flush: %s (%d still queued)", rd_kafka_err2str(err), rd_kafka_outq_len(rk));
  if (delivery_errors) die("%ld delivery errors, first: %s", delivery_errors, first_delivery_error);
  if (delivered_ok != count) die("delivered %ld of %ld", delivered_ok, count);
}

/* ---- consume ----------------------------------------------------------------------------- */
static rd_kafka_t *new_consumer(void) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_set(conf, "bootstrap.servers", bootstrap);
  conf_set(conf, "group.id", "compat-rdkafka-c");
  conf_set(conf, "enable.auto.commit", "false");
  conf_set(conf, "enable.auto.offset.store", "false");
  conf_set(conf, "auto.offset.reset", "error");
  conf_set(conf, "fetch.wait.max.ms", "100");
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) die("consumer: %s", err);
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

static void check_msg(const rd_kafka_message_t *rm, long i) {
  msg_t m;
  make_msg(i, &m);
  if (rm->key_len != m.key_len || memcmp(rm->key, m.key, m.key_len))
    die("p%d@%" PRId64 ": key mismatch (want %s)", rm->partition, rm->offset, m.key);
  if (rm->len != m.value_len || (m.value_len && memcmp(rm->payload, m.value, m.value_len)))
    die("p%d@%" PRId64 ": value mismatch (len %zu, want %zu)", rm->partition, rm->offset, rm->len, m.value_len);
  rd_kafka_headers_t *hdrs = NULL;
  if (rd_kafka_message_headers(rm, &hdrs)) die("p%d@%" PRId64 ": no headers", rm->partition, rm->offset);
  if (rd_kafka_header_cnt(hdrs) != 2) die("p%d@%" PRId64 ": %zu headers", rm->partition, rm->offset, rd_kafka_header_cnt(hdrs));
  const void *v;
  size_t sz;
  if (rd_kafka_header_get_last(hdrs, "h-index", &v, &sz) || sz != m.idx_len || memcmp(v, m.idx, sz))
    die("p%d@%" PRId64 ": header h-index mismatch", rm->partition, rm->offset);
  if (rd_kafka_header_get_last(hdrs, "h-bin", &v, &sz) || sz != m.bin_len || (sz && memcmp(v, m.bin, sz)))
    die("p%d@%" PRId64 ": header h-bin mismatch", rm->partition, rm->offset);
}

static void assign_from(rd_kafka_t *rk, int only_partition, int64_t offset) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; p++)
    if (only_partition < 0 || p == only_partition) rd_kafka_topic_partition_list_add(l, topic, p)->offset = offset;
  rd_kafka_resp_err_t err = rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (err) die("assign: %s", rd_kafka_err2str(err));
}

static void consume_all(rd_kafka_t *rk) {
  long *next = calloc((size_t)partitions, sizeof *next); /* next expected offset per partition */
  long *want = calloc((size_t)partitions, sizeof *want);
  for (int p = 0; p < partitions; p++) want[p] = count / partitions + (p < count % partitions ? 1 : 0);
  long total = 0;
  assign_from(rk, -1, 0);
  while (total < count) {
    rd_kafka_message_t *rm = rd_kafka_consumer_poll(rk, 500);
    if (!rm) { remaining_ms(); continue; }
    if (rm->err) {
      if (rm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) { rd_kafka_message_destroy(rm); continue; }
      die("consume: %s", rd_kafka_message_errstr(rm));
    }
    int p = rm->partition;
    if (p < 0 || p >= partitions) die("message from partition %d", p);
    if (rm->offset != next[p]) die("p%d: offset %" PRId64 ", want %ld (order/gap)", p, rm->offset, next[p]);
    if (next[p] >= want[p]) die("p%d: more messages than produced", p);
    check_msg(rm, next[p] * partitions + p);
    next[p]++;
    total++;
    rd_kafka_message_destroy(rm);
    if ((total & 1023) == 0) remaining_ms();
  }
  /* seek: re-assign partition 0 at a middle offset and check that message */
  int64_t mid = want[0] / 2;
  assign_from(rk, 0, mid);
  while (1) {
    rd_kafka_message_t *rm = rd_kafka_consumer_poll(rk, 500);
    if (!rm) { remaining_ms(); continue; }
    if (rm->err) {
      if (rm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) { rd_kafka_message_destroy(rm); continue; }
      die("consume after seek: %s", rd_kafka_message_errstr(rm));
    }
    if (rm->partition != 0 || rm->offset != mid) die("after seek: got p%d@%" PRId64 ", want p0@%" PRId64, rm->partition, rm->offset, mid);
    check_msg(rm, mid * partitions);
    rd_kafka_message_destroy(rm);
    break;
  }
  free(next);
  free(want);
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "b:t:n:p:z:cT:")) != -1) {
    switch (opt) {
      case 'b': bootstrap = optarg; break;
      case 't': topic = optarg; break;
      case 'n': count = atol(optarg); break;
      case 'p': partitions = atoi(optarg); break;
      case 'z': codec = optarg; break;
      case 'c': create_topic = 1; break;
      case 'T': timeout_s = atoi(optarg); break;
      default:
        fprintf(stderr, "usage: %s -b BOOTSTRAP -t TOPIC [-n COUNT] [-p PARTITIONS] [-z CODEC] [-c] [-T SECONDS]\n", argv[0]);
        return 2;
    }
  }
  if (!bootstrap || !topic || count < 1 || partitions < 1 || timeout_s < 1) {
    fprintf(stderr, "rdkafka_roundtrip: -b and -t are required; -n, -p, -T must be positive\n");
    return 2;
  }
  deadline = now() + timeout_s;
  double t0 = now();
  rd_kafka_t *prod = new_producer();
  if (create_topic) do_create(prod);
  produce_all(prod);
  double t1 = now();
  rd_kafka_destroy(prod);
  rd_kafka_t *cons = new_consumer();
  consume_all(cons);
  rd_kafka_consumer_close(cons);
  rd_kafka_destroy(cons);
  printf("OK librdkafka %s topic=%s codec=%s count=%ld partitions=%d produce=%.2fs consume=%.2fs\n",
         rd_kafka_version_str(), topic, codec, count, partitions, t1 - t0, now() - t1);
  return 0;
}
