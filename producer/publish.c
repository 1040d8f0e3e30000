/* publish.c — the sink: Kafka (idempotent, acks=all) or NDJSON on stdout / a file.
 * Thread-safe: the main loop and the backfill workers both publish (librdkafka and
 * stdio lock internally; per-symbol order is kept by seq.c's lock). */
#include "prod.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"
#include "thread.h"
#include "takeback.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

static rd_kafka_t *pub_rk;
static rd_kafka_topic_t *pub_rkt, *pub_dlq_rkt;
/* Held from pub_resume_points to pub_close: with no handle of ours, a topic just created
 * on a cluster, whose metadata briefly shows 0 partitions, had its queued resume points
 * purged ("Broker handle destroyed"), and the backfill waited for them for ever. */
static rd_kafka_topic_t *pub_resume_rkt;
static pthread_t pub_poller;
static atomic_int pub_poller_run;
static FILE *pub_out;              /* stream mode; stdout is not closed by us */
static bool pub_out_owned;

/* pub_rk and the topic handles are replaced when a fatal error forces a new client
 * (pub_rebuild, on the poll thread, under the write lock). Every other user of the
 * handle holds the read lock, and only for one call (a produce, a 50 ms poll, a flush
 * slice), so a rebuild never waits long. Writer-preferring: busy backfill workers must
 * not starve a rebuild. */
static pthread_rwlock_t pub_lock;

enum pub_topic { PUB_T_KLINE, PUB_T_DLQ, PUB_T_RESUME };

static rd_kafka_topic_t *pub_topic(enum pub_topic t)
{
    return t == PUB_T_KLINE ? pub_rkt : t == PUB_T_DLQ ? pub_dlq_rkt : pub_resume_rkt;
}

/* Kafka mode, fixed at init: pub_rk itself is briefly NULL while a rebuild swaps it. */
static bool pub_kafka_mode;

bool pub_is_kafka(void) { return pub_kafka_mode; }

/* Resume points not yet acknowledged: the backfill waits for them (pub_resume_points). */
static atomic_int pub_points_left;
static const char pub_point_tag; /* its address marks a resume point's delivery report */
static atomic_int pub_point_retries;
#define PUB_POINT_RETRIES 1000 /* with PUB_POINT_PAUSE_US: > 1 min of an unknown partition */
#define PUB_POINT_PAUSE_US 100000

bool pub_resume_points_durable(void) { return atomic_load(&pub_points_left) == 0; }

/* The topic's metadata can lag behind its creation on a cluster: a broker that has not
 * caught up reports 0 partitions, and every produce fails at once, as a delivery report or
 * at once from producev. Those errors are waited out; any other is final. */
static bool pub_point_err_is_metadata(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
}

/* A resume point that failed is sent again (the backfill waits for every one of them);
 * the copy carries the same tag, so pub_points_left counts it when it is acknowledged.
 * This runs on the poll thread, which only serves delivery reports, so the pauses hold
 * back nothing but other reports. */
static void pub_point_retry(rd_kafka_t *rk, const rd_kafka_message_t *m)
{
    rd_kafka_resp_err_t err = m->err;
    while (!atomic_load(&prod_stopping)) {
        int n = atomic_fetch_add(&pub_point_retries, 1) + 1;
        if (n > PUB_POINT_RETRIES)
            break;
        if (n <= 10 || n % 100 == 0)
            log_warn("resume point to %s not delivered (%s): sending it again (%d)",
                     rd_kafka_topic_name(m->rkt), rd_kafka_err2str(err), n);
        if (pub_point_err_is_metadata(err))
            usleep(PUB_POINT_PAUSE_US);
        err = rd_kafka_producev(rk, RD_KAFKA_V_RKT(m->rkt), RD_KAFKA_V_KEY(m->key, m->key_len),
                                RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE((void *)&pub_point_tag), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return; /* its delivery report comes back here if it fails too */
        if (!pub_point_err_is_metadata(err))
            break;
    }
    if (atomic_load(&prod_stopping))
        return;
    log_error("resume points to %s cannot be delivered (%s): stopping", rd_kafka_topic_name(m->rkt),
              rd_kafka_err2str(err));
    atomic_store(&prod_failed, 1);
    atomic_store(&prod_stopping, 1);
}

/* A message a client in the fatal state did not deliver (purged from its queue, failed
 * in flight with the fatal error, or purged in flight by pub_rebuild): kept for the
 * next client, which produces it again. Nothing is lost; an in-flight one the broker
 * did write comes out twice, which the inserter's upsert absorbs. */
static void pub_take_back(const rd_kafka_message_t *m)
{
    const char *name = rd_kafka_topic_name(m->rkt);
    enum pub_topic t = strcmp(name, prod_cfg.topic) == 0 ? PUB_T_KLINE
                     : prod_cfg.dlq_topic && strcmp(name, prod_cfg.dlq_topic) == 0 ? PUB_T_DLQ
                     : PUB_T_RESUME;
    rd_kafka_headers_t *h = NULL, *copy = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
        copy = rd_kafka_headers_copy(h); /* the dead letter's reason; the entry owns it */
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (tb_add(t, m->key, m->key_len, m->payload, m->len, ts, m->_private, copy, t == PUB_T_KLINE) == 0)
        return;
    /* out of memory: this message is lost; say so and stop (exit 1), never silently */
    log_error("kafka: no memory to keep an undelivered message to %s: stopping", name);
    atomic_fetch_add(&prod_stats.delivery_errors, 1);
    atomic_store(&prod_failed, 1);
    atomic_store(&prod_stopping, 1);
}

/* Delivery reports run on whichever thread calls rd_kafka_poll. A failure is counted
 * and logged: with message.timeout.ms=0 librdkafka retries until delivered, so a
 * failure here means a permanent error (e.g. topic deleted, message too large). */
static void pub_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)opaque;
    if (m->err && rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        pub_take_back(m);
        return;
    }
    if (m->err && m->_private == &pub_point_tag && !atomic_load(&prod_stopping)) {
        pub_point_retry(rk, m);
        return;
    }
    if (m->err) {
        unsigned long long n = atomic_fetch_add(&prod_stats.delivery_errors, 1) + 1;
        if (n <= 10 || n % 1000 == 0)
            log_error("kafka delivery to %s failed (%llu so far): %s", rd_kafka_topic_name(m->rkt), n,
                      rd_kafka_err2str(m->err));
        return;
    }
    if (m->_private == &pub_point_tag) {
        atomic_fetch_sub(&pub_points_left, 1);
        return;
    }
    atomic_fetch_add_explicit(&prod_stats.delivered, 1, memory_order_relaxed);
    int64_t recv_us = (int64_t)(intptr_t)m->_private;
    if (recv_us > 0)
        stats_latency(cfg_mono_us() - recv_us);
}

static void pub_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    /* A fatal error is handled by the poll thread (pub_rebuild), which logs it. */
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        return;
    /* Transient (broker down, all brokers down): librdkafka reconnects and retries. */
    log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* The topic, its dead letters, and its resume points (compacted: one record per symbol
 * is all that matters, and it must outlive any retention). */
static int pub_ensure_topics(char *errbuf, size_t errlen)
{
    const int rf = prod_cfg.replication, isr = prod_cfg.min_insync;
    const kq_topic_spec_t t[3] = {
        { prod_cfg.topic, prod_cfg.partitions, rf, isr, prod_cfg.retention_ms, NULL },
        { prod_cfg.dlq_topic, prod_cfg.partitions, rf, isr, prod_cfg.retention_ms, NULL },
        { prod_cfg.resume_topic, 1, rf, isr, -1, "compact" },
    };
    for (int i = 0; i < 3; i++) {
        if (!t[i].name || !*t[i].name)
            continue;
        int64_t give_up = cfg_mono_ms() + 60000;
        while (kq_topic_ensure(pub_rk, &t[i], 10000, errbuf, errlen) < 0) {
            if (cfg_mono_ms() > give_up || prod_stopping)
                return -1;
            log_warn("%s; retrying", errbuf);
            sleep(1);
        }
    }
    return 0;
}

/* A new client (pub_rk) from the configuration; the topics are pub_topics_new's. */
static int pub_kafka_new(char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = kq_conf_new(prod_cfg.brokers, errbuf, errlen);
    if (!conf)
        return -1;
    if (kq_conf_set(conf, "enable.idempotence", "true", errbuf, errlen) < 0 ||
        kq_conf_set(conf, "acks", "all", errbuf, errlen) < 0 ||
        /* 1 ms, not 5: bench_producer.sh measured p99 receive→ack 20 ms vs 49 ms at 2,000
         * symbols and no throughput loss (batches still fill at --speed max) */
        kq_conf_set(conf, "linger.ms", "1", errbuf, errlen) < 0 ||
        /* never give up on a message: an outage holds them in the queue */
        kq_conf_set(conf, "message.timeout.ms", "0", errbuf, errlen) < 0 ||
        kq_conf_set(conf, "queue.buffering.max.messages", "1000000", errbuf, errlen) < 0 ||
        kq_conf_set(conf, "client.id", PROD_NAME, errbuf, errlen) < 0 ||
        kq_conf_apply_xopts(conf, &prod_cfg.xopts, errbuf, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, pub_on_delivery);
    rd_kafka_conf_set_error_cb(conf, pub_on_error);
    char rerr[512];
    pub_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rerr, sizeof rerr);
    if (!pub_rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errlen, "kafka producer: %s", rerr);
        return -1;
    }
    return 0; /* conf is owned by pub_rk from here on */
}

/* The topic handles of pub_rk; the resume topic's only if it was in use (a rebuild). */
static int pub_topics_new(bool with_resume, char *errbuf, size_t errlen)
{
    pub_rkt = rd_kafka_topic_new(pub_rk, prod_cfg.topic, NULL);
    if (prod_cfg.dlq_topic && *prod_cfg.dlq_topic)
        pub_dlq_rkt = rd_kafka_topic_new(pub_rk, prod_cfg.dlq_topic, NULL);
    if (with_resume)
        pub_resume_rkt = rd_kafka_topic_new(pub_rk, prod_cfg.resume_topic, NULL);
    if (!pub_rkt || (with_resume && !pub_resume_rkt)) {
        snprintf(errbuf, errlen, "topic %s: %s", prod_cfg.topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    return 0;
}

static void pub_topics_destroy(void)
{
    if (pub_rkt)
        rd_kafka_topic_destroy(pub_rkt);
    if (pub_dlq_rkt)
        rd_kafka_topic_destroy(pub_dlq_rkt);
    if (pub_resume_rkt)
        rd_kafka_topic_destroy(pub_resume_rkt);
    pub_rkt = pub_dlq_rkt = pub_resume_rkt = NULL;
}

/* Purges what the failed client still holds, queued and in flight, and serves the
 * delivery reports until it holds nothing: each failed message lands in the take-back
 * list (pub_on_delivery). Bounded: purged messages are reported at once. */
static int pub_drain(rd_kafka_t *rk)
{
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t give_up = cfg_mono_ms() + 30000;
    while (rd_kafka_outq_len(rk) > 0) {
        if (cfg_mono_ms() > give_up)
            return -1;
        rd_kafka_poll(rk, 50);
    }
    return 0;
}

/* Produces the taken-back messages again on the new client, in publishing order
 * (tb_take_all). Returns how many; a message that does not go is counted and stops
 * the producer (exit 1): never a silent loss. */
static size_t pub_requeue(void)
{
    size_t n = 0, bad = 0;
    tb_msg_t *v = tb_take_all(&n);
    for (size_t i = 0; i < n; i++) {
        tb_msg_t *e = &v[i];
        rd_kafka_topic_t *rkt = pub_topic((enum pub_topic)e->topic);
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (rkt)
            err = rd_kafka_producev(pub_rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(e->key, e->klen),
                                    RD_KAFKA_V_VALUE(e->val, e->vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_TIMESTAMP(e->ts_ms), RD_KAFKA_V_OPAQUE(e->opaque),
                                    RD_KAFKA_V_HEADERS(e->hdrs), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            e->hdrs = NULL; /* owned by the message now */
        else if (bad++ == 0)
            log_error("kafka: an undelivered message cannot go to the new client: %s", rd_kafka_err2str(err));
        tb_msg_free(e);
    }
    free(v);
    if (bad) {
        atomic_fetch_add(&prod_stats.delivery_errors, bad);
        atomic_store(&prod_failed, 1);
        atomic_store(&prod_stopping, 1);
    }
    atomic_fetch_add(&prod_stats.kafka_taken_back, n);
    return n;
}

/* Rebuilds repeating fast (a broker bug that kills every new client) are paced, not
 * spun: wait until the window allows one more. A stop ends the wait, because the
 * messages held are only delivered by a new client. */
static void pub_rebuild_pace(void)
{
    static tb_pace_t pace;
    int64_t wait = tb_pace_wait_ms(&pace, cfg_mono_ms());
    if (wait > 0)
        log_warn("kafka: %d client rebuilds within %d s: waiting %lld ms before the next", TB_PACE_BURST,
                 TB_PACE_WINDOW_MS / 1000, (long long)wait);
    int64_t until = cfg_mono_ms() + wait;
    while (cfg_mono_ms() < until && !sig_stop && !atomic_load(&prod_stopping)) {
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    tb_pace_record(&pace, cfg_mono_ms());
}

/* A client in the fatal state never produces again: take back what it did not
 * deliver, destroy it, and go on with a new one (pub_lock held for writing, so no
 * produce sees a half-built client). Per symbol the order is kept (tb_take_all); the
 * sequencing state (seq.c) is untouched, so nothing is skipped or published twice by
 * us; only Kafka may hold a double of an in-flight message. */
static void pub_rebuild(void)
{
    char why[512], err[512];
    rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(pub_rk, why, sizeof why);
    pub_rebuild_pace();
    pthread_rwlock_wrlock(&pub_lock);
    int drained = pub_drain(pub_rk);
    bool with_resume = pub_resume_rkt != NULL;
    pub_topics_destroy();
    rd_kafka_destroy(pub_rk); /* messages it still held (drain timed out) are lost */
    pub_rk = NULL;
    if (pub_kafka_new(err, sizeof err) < 0 || pub_topics_new(with_resume, err, sizeof err) < 0) {
        pthread_rwlock_unlock(&pub_lock);
        log_error("kafka fatal error (%s: %s), and no new client: %s", rd_kafka_err2name(ferr), why, err);
        atomic_store(&prod_failed, 1);
        atomic_store(&prod_stopping, 1);
        return;
    }
    size_t n = pub_requeue();
    unsigned long long k = atomic_fetch_add(&prod_stats.kafka_rebuilds, 1) + 1;
    pthread_rwlock_unlock(&pub_lock);
    log_warn("kafka fatal error (%s: %s): Kafka client rebuilt (#%llu), %zu unacknowledged messages "
             "produced again", rd_kafka_err2name(ferr), why, k, n);
    if (drained < 0) {
        log_error("kafka: the failed client did not give back every message within 30 s: stopping");
        atomic_store(&prod_failed, 1);
        atomic_store(&prod_stopping, 1);
    }
}

/* Serves delivery reports as they come, so acks are counted (and latency measured)
 * without waiting for the main loop's tick; and is the one thread that rebuilds the
 * client (only it replaces pub_rk, so it reads pub_rk without the lock). */
static void *pub_poll_thread(void *arg)
{
    (void)arg;
    while (atomic_load(&pub_poller_run) && pub_rk) { /* NULL: a rebuild failed */
        rd_kafka_poll(pub_rk, 100);
        if (rd_kafka_fatal_error(pub_rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
            pub_rebuild();
    }
    return NULL;
}

/* Test hook (docs/producer.md, "Fatal Kafka errors"): KP_TEST_KAFKA_FATAL=N[,M...]
 * forces a fatal error (rd_kafka_test_fatal_error, as librdkafka's own tests do) right
 * after the Nth, Mth... kline produced, while that kline is still queued. Unset in
 * production; nothing else reads it. */
#define PUB_TEST_MAX 32
static unsigned long long pub_test_at[PUB_TEST_MAX];
static int pub_test_n;
static atomic_int pub_test_i;
static atomic_ullong pub_test_count;

static int pub_test_parse(char *errbuf, size_t errlen)
{
    const char *v = getenv("KP_TEST_KAFKA_FATAL");
    for (const char *p = v; p && *p && pub_test_n < PUB_TEST_MAX;) {
        char *end;
        unsigned long long n = strtoull(p, &end, 10);
        if (end == p || (*end && *end != ',') || (pub_test_n && n <= pub_test_at[pub_test_n - 1])) {
            snprintf(errbuf, errlen, "KP_TEST_KAFKA_FATAL=%s: want increasing counts N[,M...]", v);
            return -1;
        }
        pub_test_at[pub_test_n++] = n;
        p = *end ? end + 1 : end;
    }
    if (pub_test_n)
        log_warn("test hook KP_TEST_KAFKA_FATAL=%s: fatal Kafka errors will be forced", v);
    return 0;
}

static void pub_test_fatal(void)
{
    int i = atomic_load(&pub_test_i);
    if (i >= pub_test_n)
        return;
    unsigned long long n = atomic_fetch_add(&pub_test_count, 1) + 1;
    if (n != pub_test_at[i])
        return; /* counts are distinct, so exactly one thread fires each */
    atomic_fetch_add(&pub_test_i, 1);
    log_warn("test hook: forcing a fatal Kafka error after kline #%llu", n);
    pthread_rwlock_rdlock(&pub_lock);
    if (pub_rk) /* NULL only after a failed rebuild */
        rd_kafka_test_fatal_error(pub_rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "KP_TEST_KAFKA_FATAL");
    pthread_rwlock_unlock(&pub_lock);
}

static int pub_lock_init(void)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&pub_lock, &a);
    pthread_rwlockattr_destroy(&a);
    return rc == 0 ? 0 : -1;
}

static int pub_kafka_init(char *errbuf, size_t errlen)
{
    if (pub_test_parse(errbuf, errlen) < 0 || pub_kafka_new(errbuf, errlen) < 0)
        return -1;
    if (pub_lock_init() < 0) {
        snprintf(errbuf, errlen, "cannot create the Kafka client lock");
        return -1;
    }
    if (pub_ensure_topics(errbuf, errlen) < 0 || pub_topics_new(false, errbuf, errlen) < 0)
        return -1;
    pub_kafka_mode = true;
    atomic_store(&pub_poller_run, 1);
    if (kp_thread_create(&pub_poller, NULL, pub_poll_thread, NULL) != 0) {
        atomic_store(&pub_poller_run, 0);
        snprintf(errbuf, errlen, "cannot start the Kafka poll thread");
        return -1;
    }
    log_info("publishing to Kafka %s topic %s (dead letters: %s)", prod_cfg.brokers, prod_cfg.topic,
             pub_dlq_rkt ? prod_cfg.dlq_topic : "off");
    return 0;
}

int pub_init(char *errbuf, size_t errlen)
{
    if (!prod_cfg.output)
        return pub_kafka_init(errbuf, errlen);
    if (strcmp(prod_cfg.output, "-") == 0) {
        pub_out = stdout;
    } else {
        pub_out = fopen(prod_cfg.output, "ae");
        if (!pub_out) {
            snprintf(errbuf, errlen, "%s: %s", prod_cfg.output, strerror(errno));
            return -1;
        }
        pub_out_owned = true;
    }
    static char obuf[1 << 16];
    setvbuf(pub_out, obuf, _IOFBF, sizeof obuf);
    return 0;
}

/* One producev on the current client, under the read lock (a rebuild swaps it). */
static rd_kafka_resp_err_t pub_produce_once(enum pub_topic t, const char *key, size_t klen, const void *val,
                                            size_t vlen, int64_t ts_ms, void *opaque, rd_kafka_headers_t *hdrs)
{
    rd_kafka_resp_err_t err;
    pthread_rwlock_rdlock(&pub_lock);
    rd_kafka_topic_t *rkt = pub_topic(t);
    if (!pub_rk || !rkt)
        err = RD_KAFKA_RESP_ERR__DESTROY; /* a rebuild failed: the producer is stopping */
    else if (hdrs)
        err = rd_kafka_producev(pub_rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, klen),
                                RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(opaque),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    else
        err = rd_kafka_producev(pub_rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, klen),
                                RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    pthread_rwlock_unlock(&pub_lock);
    return err;
}

/* Waits a little for room (queue full: serve delivery reports) or for the new client
 * (fatal: the poll thread is rebuilding it; the message is produced on the new one). */
static void pub_wait_room(rd_kafka_resp_err_t err)
{
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        atomic_fetch_add_explicit(&prod_stats.queue_full_waits, 1, memory_order_relaxed);
        pthread_rwlock_rdlock(&pub_lock);
        rd_kafka_poll(pub_rk, 50);
        pthread_rwlock_unlock(&pub_lock);
        return;
    }
    struct timespec ts = { 0, 20 * 1000000L };
    nanosleep(&ts, NULL);
}

/* One produce call; waits for room (or for a rebuilt client) instead of dropping. */
static int pub_produce(enum pub_topic t, const char *key, size_t klen, const void *val, size_t vlen,
                       int64_t ts_ms, void *opaque, rd_kafka_headers_t *hdrs)
{
    int64_t waiting_since = 0;
    for (;;) {
        rd_kafka_resp_err_t err = pub_produce_once(t, key, klen, val, vlen, ts_ms, opaque, hdrs);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0; /* hdrs now owned by the message */
        bool wait = err == RD_KAFKA_RESP_ERR__QUEUE_FULL || err == RD_KAFKA_RESP_ERR__FATAL;
        if (!wait || prod_failed) {
            log_error("kafka produce to %s: %s", rd_kafka_topic_name(pub_topic(t)), rd_kafka_err2str(err));
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            atomic_fetch_add(&prod_stats.delivery_errors, 1);
            return -1;
        }
        /* Queue full (Kafka away for long) or a client being rebuilt: wait, never drop.
         * Give up only when asked to stop and the flush budget is spent, or after
         * --dead-after. */
        int64_t now = cfg_mono_ms();
        if (!waiting_since) {
            waiting_since = now;
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                log_warn("kafka queue full: waiting for the broker");
        }
        if ((sig_stop && now - waiting_since > prod_cfg.flush_timeout_ms) ||
            now - waiting_since > prod_cfg.dead_after_ms) {
            log_error("kafka %s for %lld ms: giving up", err == RD_KAFKA_RESP_ERR__FATAL ? "client dead" : "queue full",
                      (long long)(now - waiting_since));
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            atomic_fetch_add(&prod_stats.delivery_errors, 1);
            atomic_store(&prod_failed, 1);
            atomic_store(&prod_stopping, 1);
            return -1;
        }
        pub_wait_room(err);
    }
}

int pub_kline(const kline_t *k, int64_t recv_ms, int64_t recv_us)
{
    char line[KLINE_JSON_MAX + 1];
    int n = kline_format(k, line, sizeof line - 1);
    if (n < 0) {
        log_error("kline of %s at %lld does not format", k->symbol, (long long)k->open_time);
        return -1;
    }
    atomic_fetch_add_explicit(&prod_stats.published, 1, memory_order_relaxed);
    atomic_ullong *per = k->source == KLINE_SRC_WS ? &prod_stats.published_ws
                       : k->source == KLINE_SRC_REST ? &prod_stats.published_rest
                       : &prod_stats.published_replay;
    atomic_fetch_add_explicit(per, 1, memory_order_relaxed);
    if (pub_kafka_mode) {
        int rc = pub_produce(PUB_T_KLINE, k->symbol, strlen(k->symbol), line, (size_t)n, recv_ms,
                             (void *)(intptr_t)(recv_us > 0 ? recv_us : 1), NULL);
        if (rc == 0)
            pub_test_fatal();
        return rc;
    }
    line[n++] = '\n';
    if (fwrite(line, 1, (size_t)n, pub_out) != (size_t)n) {
        if (!atomic_exchange(&prod_failed, 1))
            log_error("writing output: %s", strerror(errno));
        atomic_store(&prod_stopping, 1);
        return -1;
    }
    return 0;
}

void pub_reject(const void *raw, size_t len, const char *origin, const char *reason)
{
    unsigned long long n = atomic_fetch_add(&prod_stats.rejected, 1) + 1;
    char ex[160];
    /* Rate-limited: a flood of garbage must not become a flood of log lines. */
    if (n <= 20 || (n <= 1000 && n % 100 == 0) || n % 10000 == 0)
        log_warn("rejected message #%llu from %s: %s: %s", n, origin, reason,
                 log_excerpt(raw, len, 120, ex, sizeof ex));
    if (!pub_dlq_rkt)
        return;
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "reason", -1, reason, -1);
    /* ownership of h passes to the message on success (pub_produce frees it on failure) */
    pub_produce(PUB_T_DLQ, origin, strlen(origin), raw, len, cfg_now_ms(), NULL, h);
}

int pub_resume_points(int64_t from, char *errbuf, size_t errlen)
{
    if (!pub_kafka_mode || !prod_cfg.resume_topic || !*prod_cfg.resume_topic)
        return 0;
    /* write lock: the handle is created once, and a rebuild must see it (or not) whole */
    pthread_rwlock_wrlock(&pub_lock);
    if (!pub_resume_rkt)
        pub_resume_rkt = rd_kafka_topic_new(pub_rk, prod_cfg.resume_topic, NULL);
    bool ok = pub_resume_rkt != NULL;
    pthread_rwlock_unlock(&pub_lock);
    if (!ok) {
        snprintf(errbuf, errlen, "topic %s: %s", prod_cfg.resume_topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    int rc = 0;
    char v[160];
    atomic_store(&pub_points_left, prod_nsyms);
    for (int i = 0; i < prod_nsyms && rc == 0; i++) {
        const char *name = prod_syms[i].name;
        int n = snprintf(v, sizeof v, "{\"symbol\":\"%s\",\"interval\":\"%s\",\"from\":%lld}", name,
                         prod_cfg.interval, (long long)from);
        rc = pub_produce(PUB_T_RESUME, name, strlen(name), v, (size_t)n, cfg_now_ms(), (void *)&pub_point_tag, NULL);
    }
    if (rc < 0)
        snprintf(errbuf, errlen, "resume points: cannot produce to %s", prod_cfg.resume_topic);
    return rc;
}

void pub_poll(void)
{
    if (pub_kafka_mode)
        return; /* pub_poll_thread serves delivery reports */
    if (pub_out && fflush(pub_out) != 0) {
        if (!atomic_exchange(&prod_failed, 1))
            log_error("writing output: %s", strerror(errno));
        atomic_store(&prod_stopping, 1);
    }
}

/* Messages not yet delivered: in the client, or taken back from a failed one and not
 * produced again yet (a client in the fatal state counts as one more: its rebuild
 * is still to come). */
static int pub_kafka_flush_slice(int ms)
{
    pthread_rwlock_rdlock(&pub_lock);
    int left = (int)tb_count();
    if (pub_rk) {
        rd_kafka_flush(pub_rk, ms);
        left += rd_kafka_outq_len(pub_rk);
    }
    if (!pub_rk || rd_kafka_fatal_error(pub_rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
        left++;
    pthread_rwlock_unlock(&pub_lock);
    return left;
}

static int pub_kafka_flush(int timeout_ms)
{
    /* in slices, so a rebuild on the poll thread can take the write lock meanwhile */
    int64_t until = cfg_mono_ms() + timeout_ms;
    int left;
    while ((left = pub_kafka_flush_slice(100)) > 0 && cfg_mono_ms() < until) {
        struct timespec ts = { 0, 10 * 1000000L }; /* a dead client returns at once: no spin */
        nanosleep(&ts, NULL);
    }
    if (left > 0) {
        log_error("%d messages still undelivered after %d ms", left, timeout_ms);
        return -1;
    }
    if (prod_stats.delivery_errors) {
        log_error("%llu Kafka deliveries failed", (unsigned long long)prod_stats.delivery_errors);
        return -1;
    }
    return 0;
}

int pub_flush(int timeout_ms)
{
    if (pub_kafka_mode)
        return pub_kafka_flush(timeout_ms);
    if (pub_out && fflush(pub_out) != 0) {
        if (!atomic_exchange(&prod_failed, 1))
            log_error("writing output: %s", strerror(errno));
        return -1;
    }
    return prod_failed ? -1 : 0;
}

void pub_close(void)
{
    if (atomic_exchange(&pub_poller_run, 0))
        pthread_join(pub_poller, NULL);
    pub_topics_destroy();
    if (pub_rk)
        rd_kafka_destroy(pub_rk);
    if (pub_kafka_mode)
        pthread_rwlock_destroy(&pub_lock);
    pub_rk = NULL;
    pub_kafka_mode = false;
    size_t n = 0;
    tb_msg_t *v = tb_take_all(&n); /* left only if the process gives up: already reported */
    for (size_t i = 0; i < n; i++)
        tb_msg_free(&v[i]);
    free(v);
    if (pub_out_owned)
        fclose(pub_out);
    pub_out = NULL;
}
