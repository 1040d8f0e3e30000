/* feed.c — the feed: Kafka (every partition, from --catchup-secs back, no consumer group)
 * or NDJSON on stdin.
 *
 * Kafka: the feed thread only opens the consumer, assigns partitions and keeps the lag;
 * the lws thread takes the messages itself from librdkafka's consumer queue
 * (rd_kafka_consume_batch_queue, never blocking) and parses them. librdkafka wakes it
 * with lws_cancel_service from the queue's event callback, which fires only when the
 * queue goes from empty to non-empty, so a burst costs one wake-up, not one per record,
 * and there is no second queue and no thread hop between the fetch and the fan-out (that
 * hop, on a busy core, was ~20 ms p50 / ~50 ms p99 of a 2,000-symbol burst:
 * bench/results/latency_breakdown.md). What waits is bounded by librdkafka's own
 * prefetch limits (queued.max.messages.kbytes); when the lws thread falls behind, Kafka
 * simply lags, which /metrics shows.
 *
 * stdin: the feed thread reads and parses the lines and hands them to the lws thread
 * through a bounded queue; when it is full the thread waits, so memory never grows with
 * a burst. */
#include "streamer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "lines.h"
#include "log.h"
#include "thread.h"

#define ST_FEED_QCAP 8192
#define ST_FEED_MAX_PARTS 1024

_Atomic int64_t st_feed_lag = -1;
_Atomic uint64_t st_feed_rejected;
_Atomic uint64_t st_feed_read;
_Atomic int st_feed_state;

static struct {
    const struct st_config *cfg;
    struct lws_context *ctx;
    pthread_t thr;
    bool started;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t not_full;
    struct st_feed_item *q; /* ring of ST_FEED_QCAP items */
    int head, len;
    bool woken;             /* a wake-up is on its way: do not send another */
    _Atomic(rd_kafka_queue_t *) rkq; /* Kafka: the consumer queue the lws thread reads */
} fd_;

const char *st_feed_kind(void)
{
    return fd_.cfg && fd_.cfg->input ? "stdin" : "kafka";
}

/* Feed thread: blocks while the queue is full. Wakes the lws thread unless a wake-up is
 * already pending: the lws thread clears the flag only when it has emptied the queue, and
 * may wait --coalesce-ms before doing so, so a busy feed costs at most one service-loop
 * pass (one poll() over every connection) per window instead of one per record. */
static void st_feed_push(const kline_t *k, int64_t ingest_ms, int64_t consumed_us)
{
    pthread_mutex_lock(&fd_.mu);
    while (fd_.len == ST_FEED_QCAP && !atomic_load(&fd_.stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&fd_.not_full, &fd_.mu, &ts);
    }
    bool wake = false;
    if (fd_.len < ST_FEED_QCAP) {
        struct st_feed_item *it = &fd_.q[(fd_.head + fd_.len) % ST_FEED_QCAP];
        it->k = *k;
        it->ingest_ms = ingest_ms;
        it->consumed_us = consumed_us;
        fd_.len++;
        wake = !fd_.woken;
        fd_.woken = true;
    }
    pthread_mutex_unlock(&fd_.mu);
    if (wake)
        lws_cancel_service(fd_.ctx);
}

static int st_kafka_drain(rd_kafka_queue_t *q, struct st_feed_item *out, int max, bool *more_out);

int st_feed_drain(struct st_feed_item *out, int max, bool *more_out)
{
    rd_kafka_queue_t *q = atomic_load(&fd_.rkq);
    if (q)
        return st_kafka_drain(q, out, max, more_out);
    pthread_mutex_lock(&fd_.mu);
    int n = 0;
    while (n < max && fd_.len > 0) {
        out[n++] = fd_.q[fd_.head];
        fd_.head = (fd_.head + 1) % ST_FEED_QCAP;
        fd_.len--;
    }
    bool more = fd_.len > 0;
    if (!more)
        fd_.woken = false;
    pthread_cond_signal(&fd_.not_full);
    pthread_mutex_unlock(&fd_.mu);
    *more_out = more; /* the caller wakes itself for the rest (no wake-up comes meanwhile) */
    return n;
}

/* One record into *k; 0, or -1 when it is rejected (counted, logged). Any thread.
 * Where it came from (partition < 0: stdin) is only formatted for the log. */
static int st_feed_parse(const char *buf, size_t len, int partition, long long offset, kline_t *k)
{
    char err[256];
    atomic_fetch_add(&st_feed_read, 1);
    if (kline_parse(buf, len, NULL, NULL, k, err, sizeof err) < 0) {
        uint64_t n = atomic_fetch_add(&st_feed_rejected, 1);
        /* log the first few and then every 1000th, so junk input cannot flood stderr */
        if (n < 10 || n % 1000 == 0) {
            char ex[120], origin[64] = "stdin";
            if (partition >= 0)
                snprintf(origin, sizeof origin, "kafka:%d@%lld", partition, offset);
            log_warn("%s: rejected record (%s): %s", origin, err,
                     log_excerpt(buf, len, 80, ex, sizeof ex));
        }
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- stdin */

/* One line of stdin: a line cut at the bound (longer than any valid record) is rejected
 * without parsing; an empty line is skipped. */
static void st_feed_line(const kp_lines_t *lr, const kp_line_t *ln)
{
    if (ln->full_len > lr->max_line) {
        atomic_fetch_add(&st_feed_rejected, 1);
        log_warn("stdin: line %lld longer than %d bytes, rejected", lr->lineno, KLINE_INPUT_MAX);
    } else if (ln->full_len > 0) {
        kline_t k;
        if (st_feed_parse(ln->data, ln->len, -1, 0, &k) == 0)
            st_feed_push(&k, cfg_now_ms(), 0);
    }
}

static void st_feed_stdin(void)
{
    kp_lines_t lr;
    kp_line_t ln;
    char err[256];
    /* +1: a record of KLINE_INPUT_MAX bytes and its '\r' still fit, as before kp_lines */
    if (kp_lines_from_fd(&lr, 0, "stdin", KLINE_INPUT_MAX + 1, err, sizeof err) < 0) {
        log_error("%s", err);
        atomic_store(&st_feed_state, 3);
        return;
    }
    atomic_store(&st_feed_state, 1);
    int rc = 0;
    /* 200 ms: the stop flag is looked at that often while stdin is quiet */
    while (!atomic_load(&fd_.stop) && (rc = kp_lines_next(&lr, 200, &ln, err, sizeof err)) >= 0 && rc != 2)
        if (rc == 1)
            st_feed_line(&lr, &ln);
    if (rc < 0)
        log_error("%s", err);
    else if (rc == 2)
        log_info("stdin: end of input after %lld lines; still serving", lr.lineno);
    kp_lines_close(&lr);
    atomic_store(&st_feed_state, 2);
}

/* ---------------------------------------------------------------- Kafka */

/* Number of partitions of the topic, 0 if it does not exist (yet), -1 on error. */
static int st_kafka_partitions(rd_kafka_t *rk, rd_kafka_topic_t *rkt)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
    if (err) {
        log_warn("kafka: metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    int n = 0;
    if (md->topic_cnt == 1 && !md->topics[0].err)
        n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n > ST_FEED_MAX_PARTS ? ST_FEED_MAX_PARTS : n;
}

/* Adds partitions [from, to) to the assignment; each starts at off, or, with since_ms > 0,
 * at its first record stamped since_ms or later (the end if there is none). */
static int st_kafka_assign_more(rd_kafka_t *rk, const char *topic, int from, int to, int64_t off,
                                int64_t since_ms)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(to - from);
    for (int p = from; p < to; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = since_ms > 0 ? since_ms : off;
    if (since_ms > 0) {
        /* A broker round trip: bounded by the same 5 s as the metadata request. */
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l, 5000);
        for (int i = 0; i < l->cnt; i++)
            if (err || l->elems[i].err || l->elems[i].offset < 0)
                l->elems[i].offset = RD_KAFKA_OFFSET_END;
        if (err)
            log_warn("kafka: offsets for the catch-up window: %s; reading from the end",
                     rd_kafka_err2str(err));
    }
    rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        log_error("kafka: assign: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return -1;
    }
    return 0;
}

static void st_kafka_update_lag(rd_kafka_t *rk, const char *topic, int nparts)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    int64_t lag = 0;
    if (rd_kafka_position(rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < l->cnt; i++) {
            int64_t lo, hi;
            if (rd_kafka_get_watermark_offsets(rk, topic, l->elems[i].partition, &lo, &hi))
                continue;
            if (l->elems[i].offset >= 0 && hi > l->elems[i].offset)
                lag += hi - l->elems[i].offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    atomic_store(&st_feed_lag, lag);
}

/* The consumer, or NULL (logged). */
static rd_kafka_t *st_kafka_open(const struct st_config *cfg)
{
    char err[512];
    rd_kafka_conf_t *conf = kq_conf_new(cfg->brokers, err, sizeof err);
    /* A group.id is needed for the assignment API, but no group is ever joined (assign,
     * not subscribe) and nothing is committed: every instance sees every partition. */
    char gid[96];
    snprintf(gid, sizeof gid, "kline-streamer-%d-%lld", (int)getpid(), (long long)cfg_now_ms());
    if (!conf || kq_conf_set(conf, "group.id", gid, err, sizeof err) < 0 ||
        kq_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) < 0 ||
        kq_conf_set(conf, "enable.auto.offset.store", "false", err, sizeof err) < 0 ||
        kq_conf_set(conf, "auto.offset.reset", "latest", err, sizeof err) < 0 ||
        /* New data completes a waiting fetch at once (fetch.min.bytes=1); this only bounds
         * the empty answers. At 10 ms the broker spent ~5 % of a core on 100 empty fetches/s
         * and 2,000-symbol latency was no better (bench_e2e). */
        kq_conf_set(conf, "fetch.wait.max.ms", "100", err, sizeof err) < 0 ||
        kq_conf_set(conf, "topic.metadata.refresh.interval.ms", "10000", err, sizeof err) < 0 ||
        kq_conf_apply_xopts(conf, &cfg->xopts, err, sizeof err) < 0) {
        log_error("kafka: %s", err);
        if (conf)
            rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err); /* takes conf */
    if (!rk)
        log_error("kafka: %s", err);
    return rk;
}

/* The Kafka loop's state (feed thread only). */
struct st_kafka {
    const struct st_config *cfg;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int nparts;                 /* partitions assigned so far: [0, nparts) */
    int64_t next_meta, next_lag; /* mono ms */
    bool said_missing;
};

/* First sight: read back the last --catchup-secs of every partition, so that after a
 * (re)start every symbol has its latest kline without waiting for the next one (was: from
 * the end, and a restart had nothing until each symbol traded again). Partitions added
 * later are new, so everything in them is newer than our start: read from the beginning. */
static void st_kafka_grow(struct st_kafka *kf, int n)
{
    const struct st_config *cfg = kf->cfg;
    bool first = kf->nparts == 0;
    int64_t since = first && cfg->catchup_secs > 0 ? cfg_now_ms() - (int64_t)cfg->catchup_secs * 1000 : 0;
    int64_t off = first ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
    if (st_kafka_assign_more(kf->rk, cfg->topic, kf->nparts, n, off, since) < 0)
        return;
    if (since)
        log_info("kafka: reading %s partitions %d..%d from the last %d s", cfg->topic, kf->nparts, n - 1,
                 cfg->catchup_secs);
    else
        log_info("kafka: reading %s partitions %d..%d from the %s", cfg->topic, kf->nparts, n - 1,
                 first ? "end" : "beginning");
    kf->nparts = n;
}

/* The topic may not exist yet, or may gain partitions: re-checked periodically. */
static void st_kafka_refresh(struct st_kafka *kf, int64_t now)
{
    int n = st_kafka_partitions(kf->rk, kf->rkt);
    kf->next_meta = now + (kf->nparts ? 10000 : 1000);
    if (n == 0 && !kf->said_missing) {
        log_warn("kafka: topic %s does not exist (yet); waiting for it", kf->cfg->topic);
        kf->said_missing = true;
    }
    if (n > kf->nparts)
        st_kafka_grow(kf, n);
}

/* One consumed message into *it (lws thread); 0, or -1 for an error event or a rejected
 * record (logged). consumed_us is stamped as the lws thread takes it (--stage-stamps). */
static int st_kafka_item(const rd_kafka_message_t *msg, struct st_feed_item *it, int64_t consumed_us)
{
    if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("kafka: %s", rd_kafka_message_errstr(msg));
        return -1;
    }
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(msg, &tt);
    if (st_feed_parse(msg->payload, msg->len, (int)msg->partition, (long long)msg->offset, &it->k) < 0)
        return -1;
    it->ingest_ms = ts > 0 ? ts : cfg_now_ms();
    it->consumed_us = consumed_us;
    return 0;
}

/* lws thread: up to max records waiting in librdkafka's consumer queue, without waiting.
 * *more when it stopped at max: the queue's event fires only when it goes from empty to
 * non-empty, so the caller wakes itself for the rest. */
static int st_kafka_drain(rd_kafka_queue_t *q, struct st_feed_item *out, int max, bool *more_out)
{
    rd_kafka_message_t *msgs[256];
    int64_t at = st_stage_on() ? st_stage_now_us() : 0;
    int n = 0;
    bool full = true;
    while (full && n < max) {
        int want = max - n < 256 ? max - n : 256;
        ssize_t got = rd_kafka_consume_batch_queue(q, 0, msgs, (size_t)want);
        full = got == want;
        for (ssize_t i = 0; i < got; i++) {
            n += st_kafka_item(msgs[i], &out[n], at) == 0;
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    *more_out = full;
    return n;
}

/* librdkafka thread, when the consumer queue stops being empty: wake the lws thread (no
 * librdkafka call allowed here, and lws_cancel_service only writes to the loop's pipe). */
static void st_kafka_queue_event(rd_kafka_t *rk, void *opaque)
{
    (void)rk;
    (void)opaque;
    lws_cancel_service(fd_.ctx);
}

/* One turn of the loop: metadata and lag when due, then one message (200 ms at most). */
static void st_kafka_turn(struct st_kafka *kf)
{
    int64_t now = cfg_mono_ms();
    if (now >= kf->next_meta)
        st_kafka_refresh(kf, now);
    if (kf->nparts == 0) {
        rd_kafka_poll(kf->rk, 100);
        usleep(100 * 1000);
        return;
    }
    if (now >= kf->next_lag) {
        st_kafka_update_lag(kf->rk, kf->cfg->topic, kf->nparts);
        kf->next_lag = now + 1000;
    }
    /* the messages go to the lws thread (st_kafka_drain); this serves librdkafka's main
     * queue (errors, logs) and paces the metadata and lag checks */
    rd_kafka_poll(kf->rk, 200);
}

static void st_feed_kafka(void)
{
    struct st_kafka kf = {.cfg = fd_.cfg};
    kf.rk = st_kafka_open(fd_.cfg);
    if (!kf.rk) {
        atomic_store(&st_feed_state, 3);
        return;
    }
    kf.rkt = rd_kafka_topic_new(kf.rk, fd_.cfg->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(kf.rk);
    rd_kafka_queue_cb_event_enable(q, st_kafka_queue_event, NULL);
    atomic_store(&fd_.rkq, q);
    lws_cancel_service(fd_.ctx); /* anything queued before the callback was set */
    atomic_store(&st_feed_state, 1);
    while (!atomic_load(&fd_.stop))
        st_kafka_turn(&kf);
    /* the lws loop has ended (st_feed_stop runs after it): nobody reads the queue any more */
    atomic_store(&fd_.rkq, NULL);
    rd_kafka_queue_cb_event_enable(q, NULL, NULL);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(kf.rkt);
    rd_kafka_destroy(kf.rk);
    atomic_store(&st_feed_state, 2);
}

static void *st_feed_main(void *arg)
{
    (void)arg;
    if (fd_.cfg->input)
        st_feed_stdin();
    else
        st_feed_kafka();
    return NULL;
}

int st_feed_start(const struct st_config *cfg, struct lws_context *ctx, char *errbuf, size_t errlen)
{
    fd_.cfg = cfg;
    fd_.ctx = ctx;
    fd_.q = calloc(ST_FEED_QCAP, sizeof *fd_.q);
    if (!fd_.q) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_init(&fd_.mu, NULL);
    pthread_cond_init(&fd_.not_full, NULL);
    /* Signals go to the lws thread only: block them while the thread inherits the mask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = kp_thread_create(&fd_.thr, NULL, st_feed_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        snprintf(errbuf, errlen, "pthread_create: %s", strerror(rc));
        return -1;
    }
    fd_.started = true;
    return 0;
}

void st_feed_stop(void)
{
    if (!fd_.started)
        return;
    atomic_store(&fd_.stop, true);
    pthread_mutex_lock(&fd_.mu);
    pthread_cond_broadcast(&fd_.not_full);
    pthread_mutex_unlock(&fd_.mu);
    pthread_join(fd_.thr, NULL);
    fd_.started = false;
    free(fd_.q);
    fd_.q = NULL;
}
