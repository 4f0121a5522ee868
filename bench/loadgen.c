/*
 * sluice_loadgen: the benchmark load generator (librdkafka C API), in the spirit of
 * librdkafka's rdkafka_performance. One run = one workload; the result is ONE line of JSON on
 * stdout (human-readable notes go to stderr). bench/run.py drives it.
 *
 *   sluice_loadgen produce -b BOOT -t TOPIC [-s SIZE] [-c COUNT | -d SECS] [-a ACKS] [-l LINGER_MS]
 *                          [-z CODEC] [-p PARTITIONS] [-r MSGS_PER_S] [-n PRODUCERS] [-T MAX_SECS]
 *                          [-L EVERY] [-B BATCH] [-X key=value ...]
 *   sluice_loadgen consume -b BOOT -t TOPIC [-c COUNT] [-R] [-T MAX_SECS] [-X key=value ...]
 *   sluice_loadgen e2e     -b BOOT -t TOPIC [-s SIZE] -r MSGS_PER_S -d SECS [-w WARMUP_SECS]
 *                          [-a ACKS] [-l LINGER_MS] [-p PARTITIONS] [-D DUMP_FILE]
 *   sluice_loadgen create  -b BOOT -t TOPIC -p PARTITIONS [-F REPLICATION_FACTOR] [-C key=value ...]
 *   sluice_loadgen mock    [-t TOPIC:PARTITIONS ...]
 *
 * produce  COUNT messages (or for SECS) of SIZE bytes, message i to partition i % PARTITIONS,
 *          from PRODUCERS independent producer instances (threads), each with its own
 *          connection. Throughput counts acknowledged bytes from the first send to the last
 *          delivery report (with -d: acknowledged within the window, over the window; the rest
 *          is still waited for, so its latencies count); latency is send() -> delivery report,
 *          for every message, or with -L for every EVERYth (a throughput run need not pay two
 *          clock reads per message). -B (unpaced runs only): BATCH messages per
 *          rd_kafka_produce_batch() call, each such run to one partition in turn.
 * consume  every partition of TOPIC from the beginning with assign() (no group rebalance in
 *          the timed read), until COUNT messages or end of every partition. -R: at the end of
 *          a partition, start it again from its log start (until COUNT): for the mock cluster,
 *          which keeps only the last ~5 MB of each partition.
 * e2e      a paced producer (RATE msg/s) and a consumer in one process. Each value carries its
 *          *scheduled* send time (CLOCK_MONOTONIC, same process), so a stalled send counts
 *          against the broker instead of hiding (no coordinated omission). Messages scheduled
 *          in the first WARMUP seconds are not counted. -D writes one line per counted message,
 *          "<scheduled send time> <latency>" in ns (CLOCK_MONOTONIC); the JSON line then also
 *          gives realtime_minus_monotonic_ns, so the times can be matched with a packet capture
 *          (bench/breakdown.py).
 * create   CreateTopics (replication factor 1 or -F, optional topic configs), then wait until
 *          metadata shows every partition with a leader.
 * mock     librdkafka's in-memory mock cluster (rd_kafka_mock_cluster_new, one broker) with
 *          the given topics; prints "BOOTSTRAP host:port" and serves until stdin closes.
 *
 * MB means 10^6 bytes throughout.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------------------------ */
static const char *mode, *bootstrap, *topic, *codec = "none", *acks = "1";
static long msg_size = 100, count = 0, linger_ms = 5, producers = 1;
static long latency_every = 1; /* produce -L: time every Nth message */
static long enqueue_batch = 1;  /* produce -B: messages per rd_kafka_produce_batch() call */
static int partitions = 0; /* 0 = ask the broker's metadata */
static int replication_factor = 1; /* create -F */
static double duration = 0, max_secs = 600, rate = 0, warmup = 1;
static const char *dump_path; /* e2e -D */
static const char *xprops[64], *topic_cfgs[64], *mock_topics[64];
static int n_xprops, n_topic_cfgs, n_mock_topics;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "sluice_loadgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
static double now_s(void) { return now_ns() / 1e9; }

static void sleep_until_ns(int64_t t) {
  struct timespec ts = {t / 1000000000, t % 1000000000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/* ---- latency samples (microseconds) -------------------------------------------------------- */
typedef struct {
  uint32_t *v;
  size_t n, cap;
} samples_t;

static void samples_add(samples_t *s, int64_t ns) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 65536;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v) die("out of memory");
  }
  int64_t us = ns / 1000;
  s->v[s->n++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Prints "lat_ms":{...} (nearest-rank percentiles). Sorts in place. */
static void print_latency(samples_t *s) {
  if (s->n == 0) {
    printf("\"lat_ms\":null");
    return;
  }
  qsort(s->v, s->n, sizeof *s->v, cmp_u32);
  double q[] = {0.50, 0.99, 0.999};
  const char *name[] = {"p50", "p99", "p999"};
  printf("\"lat_ms\":{\"samples\":%zu", s->n);
  for (int i = 0; i < 3; i++) {
    size_t k = (size_t)(q[i] * s->n);
    if (k >= s->n) k = s->n - 1;
    printf(",\"%s\":%.3f", name[i], s->v[k] / 1000.0);
  }
  printf(",\"max\":%.3f}", s->v[s->n - 1] / 1000.0);
}

static void json_string(const char *str) {
  putchar('"');
  for (const char *p = str; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    putchar((unsigned char)*p < 0x20 ? ' ' : *p);
  }
  putchar('"');
}

/* ---- client configuration ------------------------------------------------------------------ */
static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
  char err[512];
  if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) die("config %s=%s: %s", k, v, err);
}

static void apply_xprops(rd_kafka_conf_t *conf) {
  for (int i = 0; i < n_xprops; i++) {
    char kv[512];
    snprintf(kv, sizeof kv, "%s", xprops[i]);
    char *eq = strchr(kv, '=');
    if (!eq) die("-X wants key=value, got %s", xprops[i]);
    *eq = 0;
    conf_set(conf, kv, eq + 1);
  }
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
  char err[512];
  conf_set(conf, "bootstrap.servers", bootstrap);
  conf_set(conf, "client.id", "sluice-loadgen");
  apply_xprops(conf); /* last, so -X overrides the defaults above and in each mode */
  rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) die("rd_kafka_new: %s", err);
  return rk;
}

/* Partition count from metadata (also opens the connection before any timer starts). */
static int topic_partitions(rd_kafka_t *rk, const char *t, double timeout_s) {
  double deadline = now_s() + timeout_s;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, t, NULL);
  for (;;) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    int n = -1;
    if (!err && md->topic_cnt == 1 && !md->topics[0].err) {
      n = md->topics[0].partition_cnt;
      for (int i = 0; i < md->topics[0].partition_cnt; i++)
        if (md->topics[0].partitions[i].leader < 0) n = -1; /* not every leader elected yet */
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (n > 0) {
      rd_kafka_topic_destroy(rkt);
      return n;
    }
    if (now_s() > deadline) die("topic %s: no usable metadata after %.0f s (%s)", t, timeout_s, rd_kafka_err2str(err));
    usleep(100 * 1000);
  }
}

/* ---- produce ------------------------------------------------------------------------------- */
typedef struct {
  int id;
  pthread_t thread;
  long to_send; /* 0 = until the duration is over */
  long sent, acked, errors;
  int64_t first_send, last_ack;
  char first_error[256];
  samples_t lat;
  int capped;
  int64_t end;      /* end of the measurement: last ack (count mode) or end of the window */
  long in_window;   /* acknowledged by the end of the measurement */
} producer_t;

static unsigned char *payload; /* shared, read-only: sent without copying */
static pthread_barrier_t ready; /* all producers start sending at the same moment */
static int64_t run_deadline_ns;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  producer_t *p = opaque;
  if (m->err) {
    if (p->errors++ == 0) snprintf(p->first_error, sizeof p->first_error, "%s", rd_kafka_err2str(m->err));
    return;
  }
  p->acked++;
  /* The clock is read for timed messages and for the last report (the end of a counted run). */
  int last = p->to_send > 0 && p->acked + p->errors == p->to_send;
  if (m->_private || last) {
    int64_t t = now_ns();
    p->last_ack = t;
    if (m->_private) samples_add(&p->lat, t - (int64_t)(intptr_t)m->_private);
  }
}

/* Unpaced sending with -B: runs of enqueue_batch messages, each run to one partition (run k to
 * partition (k + id) % nparts), each enqueued by one rd_kafka_produce_batch() call: one lock of
 * the partition's queue per run instead of per message. */
static void produce_in_batches(producer_t *p, rd_kafka_t *rk, rd_kafka_topic_t *rkt, int nparts, int64_t stop) {
  rd_kafka_message_t *msgs = calloc((size_t)enqueue_batch, sizeof *msgs);
  if (!msgs) die("out of memory");
  for (long i = 0, run = 0; p->to_send == 0 || i < p->to_send; run++) {
    int64_t t = now_ns();
    if (t >= stop) break;
    if (t >= run_deadline_ns) {
      p->capped = 1;
      break;
    }
    long n = enqueue_batch;
    if (p->to_send > 0 && p->to_send - i < n) n = p->to_send - i;
    int32_t part = (int32_t)((run + p->id) % nparts);
    for (long k = 0; k < n; k++) {
      msgs[k] = (rd_kafka_message_t){.payload = payload, .len = (size_t)msg_size,
                                     ._private = (i + k) % latency_every == 0 ? (void *)(intptr_t)t : NULL};
    }
    long left = n;
    while (left > 0) {
      int queued = rd_kafka_produce_batch(rkt, part, 0, msgs, (int)left);
      if (queued == left) break;
      /* The ones that failed (QUEUE_FULL: the client's queue is at its limit) are tried again
       * once delivery reports have freed room; any other error ends the run. */
      long kept = 0;
      for (long k = 0; k < left; k++) {
        if (!msgs[k].err) continue;
        if (msgs[k].err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce: %s", rd_kafka_err2str(msgs[k].err));
        msgs[kept] = msgs[k];
        msgs[kept++].err = 0;
      }
      left = kept;
      rd_kafka_poll(rk, 1);
      int64_t t2 = now_ns();
      if (t2 >= stop || t2 >= run_deadline_ns) {
        p->capped |= t2 >= run_deadline_ns;
        p->sent += n - left;
        free(msgs);
        return;
      }
    }
    p->sent += n;
    i += n;
    rd_kafka_poll(rk, 0);
  }
  free(msgs);
}

static void *producer_run(void *arg) {
  producer_t *p = arg;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char buf[32];
  conf_set(conf, "acks", acks);
  snprintf(buf, sizeof buf, "%ld", linger_ms);
  conf_set(conf, "linger.ms", buf);
  conf_set(conf, "compression.type", codec);
  /* A deep local queue so the client is never the bottleneck; QUEUE_FULL is handled anyway. */
  conf_set(conf, "queue.buffering.max.messages", "1000000");
  conf_set(conf, "queue.buffering.max.kbytes", "1048576");
  conf_set(conf, "message.timeout.ms", "120000");
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_opaque(conf, p);
  rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, conf);
  /* Metadata first: connects and learns the leaders before the clock starts. */
  int nparts = topic_partitions(rk, topic, 30);
  if (partitions > 0 && partitions < nparts) nparts = partitions;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  pthread_barrier_wait(&ready);

  /* Pacing: each producer sends its share of the rate on a fixed schedule. */
  double my_rate = rate > 0 ? rate / producers : 0;
  int64_t start = now_ns(), stop = duration > 0 ? start + (int64_t)(duration * 1e9) : INT64_MAX;
  p->first_send = start;
  if (enqueue_batch > 1 && my_rate <= 0) {
    produce_in_batches(p, rk, rkt, nparts, stop);
    goto sent;
  }
  for (long i = 0; p->to_send == 0 || i < p->to_send; i++) {
    /* The clock is read for timed messages, for pacing, and every 64th message for the limits:
     * at millions of messages a second, two clock reads per message were 15% of this process. */
    int timed = i % latency_every == 0;
    int64_t t = 0;
    if (timed || my_rate > 0 || (i & 63) == 0) {
      t = now_ns();
      if (t >= stop) break;
      if (t >= run_deadline_ns) {
        p->capped = 1;
        break;
      }
    }
    if (my_rate > 0) {
      int64_t due = start + (int64_t)(i / my_rate * 1e9);
      if (due > t) {
        rd_kafka_poll(rk, 0);
        sleep_until_ns(due);
        t = now_ns();
      }
    }
    int32_t part = (int32_t)((i + p->id) % nparts);
    int queued = 1;
    void *send_time = timed ? (void *)(intptr_t)t : NULL;
    while (rd_kafka_produce(rkt, part, 0, payload, (size_t)msg_size, NULL, 0, send_time) == -1) {
      rd_kafka_resp_err_t err = rd_kafka_last_error();
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce: %s", rd_kafka_err2str(err));
      rd_kafka_poll(rk, 1); /* serves delivery reports, which frees queue space */
      int64_t t2 = now_ns();
      if (t2 >= stop || t2 >= run_deadline_ns) {
        p->capped |= t2 >= run_deadline_ns;
        queued = 0;
        break;
      }
    }
    if (!queued) break;
    p->sent++;
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
sent:
  if (duration > 0) {
    /* Duration mode: throughput is what was acknowledged within the window; the messages still
     * queued then are waited for below all the same, so that their (longest) latencies count. */
    rd_kafka_poll(rk, 0);
    p->end = now_ns();
    p->in_window = p->acked;
  }
  /* Wait for every delivery report, bounded by the run's hard limit. */
  while (rd_kafka_outq_len(rk) > 0) {
    int64_t left_ms = (run_deadline_ns - now_ns()) / 1000000;
    if (left_ms <= 0) {
      p->capped = 1;
      rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(rk, 100);
      break;
    }
    rd_kafka_flush(rk, (int)(left_ms < 1000 ? left_ms : 1000));
  }
  if (duration <= 0) {
    p->end = p->last_ack;
    p->in_window = p->acked;
  }
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  return NULL;
}

static void cmd_produce(void) {
  payload = malloc((size_t)msg_size + 1);
  uint32_t x = 2463534242u; /* xorshift: incompressible values, so codecs do honest work */
  for (long i = 0; i < msg_size; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    payload[i] = (unsigned char)x;
  }
  if (count <= 0 && duration <= 0) die("produce needs -c COUNT or -d SECS");
  run_deadline_ns = now_ns() + (int64_t)(max_secs * 1e9);
  producer_t *ps = calloc((size_t)producers, sizeof *ps);
  pthread_barrier_init(&ready, NULL, (unsigned)producers);
  for (long i = 0; i < producers; i++) {
    ps[i].id = (int)i;
    ps[i].to_send = count > 0 ? count / producers + (i < count % producers) : 0;
    if (pthread_create(&ps[i].thread, NULL, producer_run, &ps[i])) die("pthread_create");
  }
  long sent = 0, acked = 0, errors = 0, in_window = 0;
  int capped = 0;
  int64_t first = INT64_MAX, last = 0;
  samples_t all = {0};
  const char *first_error = "";
  for (long i = 0; i < producers; i++) {
    pthread_join(ps[i].thread, NULL);
    producer_t *p = &ps[i];
    sent += p->sent, acked += p->acked, errors += p->errors, capped |= p->capped;
    in_window += p->in_window;
    if (p->first_send < first) first = p->first_send;
    if (p->end > last) last = p->end;
    if (!*first_error && p->errors) first_error = p->first_error;
    for (size_t k = 0; k < p->lat.n; k++) samples_add(&all, (int64_t)p->lat.v[k] * 1000);
  }
  double secs = last > first ? (last - first) / 1e9 : 0;
  double bytes = (double)in_window * msg_size;
  printf("{\"mode\":\"produce\",\"topic\":");
  json_string(topic);
  printf(",\"producers\":%ld,\"size\":%ld,\"acks\":\"%s\",\"sent\":%ld,\"msgs\":%ld,\"bytes\":%.0f,"
         "\"in_window\":%ld,\"seconds\":%.3f,\"msg_per_s\":%.1f,\"mb_per_s\":%.2f,\"errors\":%ld,\"first_error\":",
         producers, msg_size, acks, sent, acked, bytes, in_window, secs, secs > 0 ? in_window / secs : 0,
         secs > 0 ? bytes / secs / 1e6 : 0, errors);
  json_string(first_error);
  printf(",\"capped\":%s,\"latency_every\":%ld,", capped ? "true" : "false", latency_every);
  print_latency(&all);
  printf("}\n");
}

/* ---- consume ------------------------------------------------------------------------------- */
static rd_kafka_t *new_consumer(void) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  /* group.id only because librdkafka wants one; offsets come from assign(), none are committed. */
  conf_set(conf, "group.id", "sluice-bench");
  conf_set(conf, "enable.auto.commit", "false");
  conf_set(conf, "enable.auto.offset.store", "false");
  conf_set(conf, "enable.partition.eof", "true");
  conf_set(conf, "auto.offset.reset", "earliest");
  rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(rk);
  return rk;
}

static int assign_all(rd_kafka_t *rk) {
  int n = topic_partitions(rk, topic, 30);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, topic, i)->offset = 0; /* explicit: fresh topics start at 0 */
  rd_kafka_resp_err_t err = rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  if (err) die("assign: %s", rd_kafka_err2str(err));
  return n;
}

/* Polls until every assigned partition has reported end-of-partition once: the fetchers are
 * running. (With a group.id librdkafka starts fetching only after it has found the group
 * coordinator, which on a fresh Kafka means creating __consumer_offsets: seconds.) */
static void wait_fetching(rd_kafka_t *rk, int n, double timeout_s) {
  double deadline = now_s() + timeout_s;
  int eofs = 0;
  while (eofs < n) {
    if (now_s() > deadline) die("consumer not fetching after %.0f s", timeout_s);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) eofs++;
    else if (!m->err) die("wait_fetching: topic %s is not empty", topic);
    rd_kafka_message_destroy(m);
  }
}

static int rewind_at_eof; /* -R */

static void cmd_consume(void) {
  rd_kafka_t *rk = new_consumer();
  int n = assign_all(rk);
  /* The clock starts at the first message, so connection and coordinator set-up (which
   * differs between brokers and has nothing to do with reading) is not counted. */
  double deadline = now_s() + max_secs, start = 0, last = 0;
  long msgs = 0, errors = 0;
  double bytes = 0;
  int eofs = 0, capped = 0;
  char first_error[256] = "";
  /* Messages are taken from the consumer queue in batches (like rdkafka_performance's batch
   * mode) and the clock is read once per batch: the per-message cost of the load generator
   * itself stays small next to librdkafka's, so the figure says more about the broker. */
  rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
  enum { kBatch = 1024 };
  rd_kafka_message_t *batch[kBatch];
  while (count <= 0 || msgs < count) {
    double now = now_s();
    if (now > deadline) {
      capped = 1;
      break;
    }
    /* The call waits until it has them all or the timeout passes: ask for no more than are
     * still wanted, and keep the timeout short (the end of a partition, and -R's rewinds). */
    const size_t want = count > 0 && count - msgs < kBatch ? (size_t)(count - msgs) : kBatch;
    ssize_t got = rd_kafka_consume_batch_queue(queue, 10, batch, want);
    if (got < 0) die("consume_batch_queue: %s", rd_kafka_err2str(rd_kafka_last_error()));
    if (got == 0) continue;
    int stop = 0;
    long before = msgs;
    for (ssize_t k = 0; k < got; k++) {
      rd_kafka_message_t *m = batch[k];
      if (stop) {
        rd_kafka_message_destroy(m);
        continue;
      }
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (rewind_at_eof && count > 0) {
          /* -R: read the partition again from its log start (for a broker that keeps only a
           * tail: librdkafka's mock cluster keeps ~5 MB per partition). */
          rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
          rd_kafka_topic_partition_list_add(l, topic, m->partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
          rd_kafka_error_t *e = rd_kafka_seek_partitions(rk, l, 5000);
          if (e) die("seek: %s", rd_kafka_error_string(e));
          rd_kafka_topic_partition_list_destroy(l);
        } else if (count <= 0 && ++eofs >= n) { /* with -c the count decides */
          stop = 1;
        }
      } else if (m->err) {
        if (errors++ == 0) snprintf(first_error, sizeof first_error, "%s", rd_kafka_message_errstr(m));
      } else if (count <= 0 || msgs < count) {
        msgs++;
        bytes += m->len;
      }
      rd_kafka_message_destroy(m);
    }
    if (msgs > before) {
      last = now_s();
      if (before == 0) start = last - 1e-6; /* the clock starts at the first message */
    }
    if (stop) break;
  }
  rd_kafka_queue_destroy(queue);
  double secs = last - start;
  printf("{\"mode\":\"consume\",\"topic\":");
  json_string(topic);
  printf(",\"partitions\":%d,\"msgs\":%ld,\"bytes\":%.0f,\"seconds\":%.3f,\"msg_per_s\":%.1f,"
         "\"mb_per_s\":%.2f,\"errors\":%ld,\"first_error\":",
         n, msgs, bytes, secs, secs > 0 ? msgs / secs : 0, secs > 0 ? bytes / secs / 1e6 : 0, errors);
  json_string(first_error);
  printf(",\"rewound\":%s,\"capped\":%s}\n", rewind_at_eof ? "true" : "false", capped ? "true" : "false");
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

/* ---- end-to-end latency -------------------------------------------------------------------- */
typedef struct {
  rd_kafka_t *rk;
  FILE *dump;              /* -D: every counted message's scheduled time and latency */
  int64_t measure_from;    /* scheduled send times before this are warm-up */
  volatile long expected;  /* set by the producer when it is done; -1 until then */
  volatile int stop;
  long received, errors;
  samples_t lat;
} e2e_t;

static void *e2e_consumer(void *arg) {
  e2e_t *e = arg;
  while (!e->stop && (e->expected < 0 || e->received < e->expected)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(e->rk, 100);
    if (!m) continue;
    int64_t t = now_ns();
    if (!m->err && m->len >= 8) {
      int64_t sched;
      memcpy(&sched, m->payload, 8);
      e->received++;
      if (sched >= e->measure_from) {
        samples_add(&e->lat, t - sched);
        if (e->dump) fprintf(e->dump, "%" PRId64 " %" PRId64 "\n", sched, t - sched);
      }
    } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      e->errors++;
    }
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

static void cmd_e2e(void) {
  if (rate <= 0 || duration <= 0) die("e2e needs -r RATE and -d SECS");
  if (msg_size < 8) msg_size = 8;
  e2e_t e = {.expected = -1};
  if (dump_path && !(e.dump = fopen(dump_path, "w"))) die("-D %s: %s", dump_path, strerror(errno));
  e.rk = new_consumer();
  wait_fetching(e.rk, assign_all(e.rk), 60); /* so the first messages measure the broker, not set-up */
  pthread_t ct;
  if (pthread_create(&ct, NULL, e2e_consumer, &e)) die("pthread_create");

  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char buf[32];
  conf_set(conf, "acks", acks);
  snprintf(buf, sizeof buf, "%ld", linger_ms);
  conf_set(conf, "linger.ms", buf);
  rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, conf);
  int nparts = topic_partitions(rk, topic, 30);
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  unsigned char *val = calloc(1, (size_t)msg_size);
  int64_t start = now_ns(), total = (long)((warmup + duration) * rate);
  e.measure_from = start + (int64_t)(warmup * 1e9);
  long sent = 0;
  for (long i = 0; i < total; i++) {
    int64_t due = start + (int64_t)(i / rate * 1e9);
    if (due > now_ns()) {
      rd_kafka_poll(rk, 0);
      sleep_until_ns(due);
    }
    memcpy(val, &due, 8);
    if (msg_size >= 16) memcpy(val + 8, &i, 8); /* sequence number, for eyeballing dumps */
    while (rd_kafka_produce(rkt, (int32_t)(i % nparts), RD_KAFKA_MSG_F_COPY, val, (size_t)msg_size, NULL, 0, NULL) == -1) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
      rd_kafka_poll(rk, 1);
    }
    sent++;
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 30000);
  e.expected = sent;
  /* Give stragglers up to 10 s, then stop: a lost message shows up as received < sent. */
  int64_t give_up = now_ns() + 10 * (int64_t)1000000000;
  while (e.received < sent && now_ns() < give_up) usleep(10000);
  e.stop = 1;
  pthread_join(ct, NULL);
  printf("{\"mode\":\"e2e\",\"topic\":");
  json_string(topic);
  printf(",\"rate\":%.0f,\"seconds\":%.1f,\"warmup\":%.1f,\"size\":%ld,\"sent\":%ld,\"received\":%ld,\"errors\":%ld,",
         rate, duration, warmup, msg_size, sent, e.received, e.errors);
  if (e.dump) {
    fclose(e.dump);
    /* Both clocks read back to back (the middle of two monotonic reads), to map -D's times
     * onto a packet capture's wall-clock timestamps. */
    struct timespec m1, r, m2;
    clock_gettime(CLOCK_MONOTONIC, &m1);
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m2);
    int64_t mono = ((int64_t)m1.tv_sec * 1000000000 + m1.tv_nsec + (int64_t)m2.tv_sec * 1000000000 + m2.tv_nsec) / 2;
    printf("\"realtime_minus_monotonic_ns\":%" PRId64 ",", (int64_t)r.tv_sec * 1000000000 + r.tv_nsec - mono);
  }
  print_latency(&e.lat);
  printf("}\n");
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  rd_kafka_consumer_close(e.rk);
  rd_kafka_destroy(e.rk);
}

/* ---- create -------------------------------------------------------------------------------- */
static void cmd_create(void) {
  if (partitions <= 0) die("create needs -p PARTITIONS");
  rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
  double start = now_s();
  char err[512];
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, replication_factor, err, sizeof err);
  if (!nt) die("NewTopic: %s", err);
  for (int i = 0; i < n_topic_cfgs; i++) {
    char kv[512];
    snprintf(kv, sizeof kv, "%s", topic_cfgs[i]);
    char *eq = strchr(kv, '=');
    if (!eq) die("-C wants key=value, got %s", topic_cfgs[i]);
    *eq = 0;
    if (rd_kafka_NewTopic_set_config(nt, kv, eq + 1)) die("topic config %s", topic_cfgs[i]);
  }
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opts, 60000, err, sizeof err);
  rd_kafka_AdminOptions_set_request_timeout(opts, 90000, err, sizeof err);
  rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 95000);
  if (!ev) die("CreateTopics: no answer");
  if (rd_kafka_event_error(ev)) die("CreateTopics: %s", rd_kafka_event_error_string(ev));
  size_t n;
  const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  for (size_t i = 0; i < n; i++)
    if (rd_kafka_topic_result_error(res[i]))
      die("CreateTopics %s: %s", rd_kafka_topic_result_name(res[i]), rd_kafka_topic_result_error_string(res[i]));
  rd_kafka_event_destroy(ev);
  int got = topic_partitions(rk, topic, 60);
  if (got != partitions) die("topic %s has %d partitions, wanted %d", topic, got, partitions);
  printf("{\"mode\":\"create\",\"topic\":");
  json_string(topic);
  printf(",\"partitions\":%d,\"seconds\":%.3f}\n", got, now_s() - start);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
}

/* ---- mock cluster -------------------------------------------------------------------------- */
static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static void cmd_mock(void) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_set(conf, "log_level", "3"); /* no "no bootstrap.servers" chatter */
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err); /* the mock's host handle */
  if (!rk) die("rd_kafka_new: %s", err);
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
  if (!mc) die("rd_kafka_mock_cluster_new failed");
  for (int i = 0; i < n_mock_topics; i++) {
    char spec[256];
    snprintf(spec, sizeof spec, "%s", mock_topics[i]);
    char *colon = strrchr(spec, ':');
    if (!colon) die("mock -t wants TOPIC:PARTITIONS, got %s", mock_topics[i]);
    *colon = 0;
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, spec, atoi(colon + 1), 1);
    if (e) die("mock topic %s: %s", spec, rd_kafka_err2str(e));
  }
  printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  /* Serve until the driver closes our stdin (or kills us): the mock runs in its own thread. */
  char b[64];
  while (!got_signal && read(0, b, sizeof b) > 0) {
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
}

/* ---- main ---------------------------------------------------------------------------------- */
static void usage(void) {
  fprintf(stderr, "usage: sluice_loadgen produce|consume|e2e|create|mock [options] (see the top of bench/loadgen.c)\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  mode = argv[1];
  int opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "b:t:s:c:d:a:l:z:p:r:n:T:w:X:C:RD:L:B:F:")) != -1) {
    switch (opt) {
      case 'b': bootstrap = optarg; break;
      case 't':
        topic = optarg;
        if (n_mock_topics < 64) mock_topics[n_mock_topics++] = optarg;
        break;
      case 's': msg_size = atol(optarg); break;
      case 'c': count = atol(optarg); break;
      case 'd': duration = atof(optarg); break;
      case 'a': acks = optarg; break;
      case 'l': linger_ms = atol(optarg); break;
      case 'z': codec = optarg; break;
      case 'p': partitions = atoi(optarg); break;
      case 'r': rate = atof(optarg); break;
      case 'n': producers = atol(optarg); break;
      case 'T': max_secs = atof(optarg); break;
      case 'w': warmup = atof(optarg); break;
      case 'X': if (n_xprops < 64) xprops[n_xprops++] = optarg; break;
      case 'R': rewind_at_eof = 1; break;
      case 'D': dump_path = optarg; break;
      case 'B': enqueue_batch = atol(optarg) > 0 ? atol(optarg) : 1; break;
      case 'F': replication_factor = atoi(optarg); break;
      case 'L': latency_every = atol(optarg) > 0 ? atol(optarg) : 1; break;
      case 'C': if (n_topic_cfgs < 64) topic_cfgs[n_topic_cfgs++] = optarg; break;
      default: usage();
    }
  }
  if (producers < 1) producers = 1;
  if (strcmp(mode, "mock") == 0) {
    cmd_mock();
    return 0;
  }
  if (!bootstrap || !topic) die("-b BOOTSTRAP and -t TOPIC are required");
  if (strcmp(mode, "produce") == 0) cmd_produce();
  else if (strcmp(mode, "consume") == 0) cmd_consume();
  else if (strcmp(mode, "e2e") == 0) cmd_e2e();
  else if (strcmp(mode, "create") == 0) cmd_create();
  else usage();
  fflush(stdout);
  return 0;
}
