/* publish.c — the sink: Kafka (idempotent, acks=all) or NDJSON on stdout / a file.
 * Thread-safe: the main loop and the backfill workers both publish (librdkafka and
 * stdio lock internally; per-symbol order is kept by seq.c's lock). */
#include "prod.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"
#include "thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

bool pub_is_kafka(void) { return pub_rk != NULL; }

/* Resume points not yet acknowledged: the backfill waits for them (pub_resume_points). */
static atomic_int pub_points_left;
static const char pub_point_tag; /* its address marks a resume point's delivery report */
static atomic_int pub_point_retries;
#define PUB_POINT_RETRIES 100

bool pub_resume_points_durable(void) { return atomic_load(&pub_points_left) == 0; }

/* Delivery reports run on whichever thread calls rd_kafka_poll. A failure is counted
 * and logged: with message.timeout.ms=0 librdkafka retries until delivered, so a
 * failure here means a permanent error (e.g. topic deleted, message too large). */
/* A resume point that failed is sent again (the backfill waits for every one of them);
 * the copy carries the same tag, so pub_points_left counts it when it is acknowledged. */
static void pub_point_retry(rd_kafka_t *rk, const rd_kafka_message_t *m)
{
    int n = atomic_fetch_add(&pub_point_retries, 1) + 1;
    log_warn("resume point to %s not delivered (%s): sending it again (%d)", rd_kafka_topic_name(m->rkt),
             rd_kafka_err2str(m->err), n);
    if (n <= PUB_POINT_RETRIES &&
        rd_kafka_producev(rk, RD_KAFKA_V_RKT(m->rkt), RD_KAFKA_V_KEY(m->key, m->key_len),
                          RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_OPAQUE((void *)&pub_point_tag), RD_KAFKA_V_END) == 0)
        return;
    log_error("resume points to %s cannot be delivered: stopping", rd_kafka_topic_name(m->rkt));
    atomic_store(&prod_failed, 1);
    atomic_store(&prod_stopping, 1);
}

static void pub_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)opaque;
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
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        log_error("kafka fatal error: %s", why);
        atomic_store(&prod_failed, 1);
        atomic_store(&prod_stopping, 1);
        return;
    }
    /* Transient (broker down, all brokers down): librdkafka reconnects and retries. */
    log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Serves delivery reports as they come, so acks are counted (and latency measured)
 * without waiting for the main loop's tick. */
static void *pub_poll_thread(void *arg)
{
    (void)arg;
    while (atomic_load(&pub_poller_run))
        rd_kafka_poll(pub_rk, 100);
    return NULL;
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

static int pub_kafka_init(char *errbuf, size_t errlen)
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
    /* conf is owned by pub_rk from here on */
    if (pub_ensure_topics(errbuf, errlen) < 0)
        return -1;
    pub_rkt = rd_kafka_topic_new(pub_rk, prod_cfg.topic, NULL);
    if (prod_cfg.dlq_topic && *prod_cfg.dlq_topic)
        pub_dlq_rkt = rd_kafka_topic_new(pub_rk, prod_cfg.dlq_topic, NULL);
    if (!pub_rkt) {
        snprintf(errbuf, errlen, "topic %s: %s", prod_cfg.topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
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

/* One produce call; waits for room instead of dropping. */
static int pub_produce(rd_kafka_topic_t *rkt, const char *key, size_t klen, const void *val,
                       size_t vlen, int64_t ts_ms, void *opaque, rd_kafka_headers_t *hdrs)
{
    int64_t waiting_since = 0;
    for (;;) {
        rd_kafka_resp_err_t err;
        if (hdrs)
            err = rd_kafka_producev(pub_rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(opaque),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(pub_rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0; /* hdrs now owned by the message */
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || prod_failed) {
            log_error("kafka produce to %s: %s", rd_kafka_topic_name(rkt), rd_kafka_err2str(err));
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            atomic_fetch_add(&prod_stats.delivery_errors, 1);
            return -1;
        }
        /* Queue full (Kafka away for long): wait for room, never drop. Give up only
         * when asked to stop and the flush budget is spent, or after --dead-after. */
        int64_t now = cfg_mono_ms();
        if (!waiting_since) {
            waiting_since = now;
            log_warn("kafka queue full: waiting for the broker");
        }
        if ((sig_stop && now - waiting_since > prod_cfg.flush_timeout_ms) ||
            now - waiting_since > prod_cfg.dead_after_ms) {
            log_error("kafka queue full for %lld ms: giving up", (long long)(now - waiting_since));
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            atomic_fetch_add(&prod_stats.delivery_errors, 1);
            atomic_store(&prod_failed, 1);
            atomic_store(&prod_stopping, 1);
            return -1;
        }
        atomic_fetch_add_explicit(&prod_stats.queue_full_waits, 1, memory_order_relaxed);
        rd_kafka_poll(pub_rk, 50);
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
    if (pub_rk)
        return pub_produce(pub_rkt, k->symbol, strlen(k->symbol), line, (size_t)n, recv_ms,
                           (void *)(intptr_t)(recv_us > 0 ? recv_us : 1), NULL);
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
    pub_produce(pub_dlq_rkt, origin, strlen(origin), raw, len, cfg_now_ms(), NULL, h);
}

int pub_resume_points(int64_t from, char *errbuf, size_t errlen)
{
    if (!pub_rk || !prod_cfg.resume_topic || !*prod_cfg.resume_topic)
        return 0;
    if (!pub_resume_rkt)
        pub_resume_rkt = rd_kafka_topic_new(pub_rk, prod_cfg.resume_topic, NULL);
    rd_kafka_topic_t *rkt = pub_resume_rkt;
    if (!rkt) {
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
        rc = pub_produce(rkt, name, strlen(name), v, (size_t)n, cfg_now_ms(), (void *)&pub_point_tag, NULL);
    }
    if (rc < 0)
        snprintf(errbuf, errlen, "resume points: cannot produce to %s", prod_cfg.resume_topic);
    return rc;
}

void pub_poll(void)
{
    if (pub_rk)
        return; /* pub_poll_thread serves delivery reports */
    if (pub_out && fflush(pub_out) != 0) {
        if (!atomic_exchange(&prod_failed, 1))
            log_error("writing output: %s", strerror(errno));
        atomic_store(&prod_stopping, 1);
    }
}

int pub_flush(int timeout_ms)
{
    if (pub_rk) {
        rd_kafka_flush(pub_rk, timeout_ms);
        int left = rd_kafka_outq_len(pub_rk);
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
    if (pub_rkt)
        rd_kafka_topic_destroy(pub_rkt);
    if (pub_dlq_rkt)
        rd_kafka_topic_destroy(pub_dlq_rkt);
    if (pub_resume_rkt)
        rd_kafka_topic_destroy(pub_resume_rkt);
    pub_resume_rkt = NULL;
    if (pub_rk)
        rd_kafka_destroy(pub_rk);
    pub_rk = NULL;
    pub_rkt = pub_dlq_rkt = NULL;
    if (pub_out_owned)
        fclose(pub_out);
    pub_out = NULL;
}
