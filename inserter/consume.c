/*
 * consume.c — the Kafka side: a consumer group over the klines topic and its dead-letter
 * topic, offsets committed by hand after the batch's PostgreSQL COMMIT.
 *
 * Rebalance: before partitions are given up, the batch is written and its offsets are
 * committed, so the next owner starts exactly after what is in PostgreSQL. If the batch
 * cannot be written then (PostgreSQL down), the records of the revoked partitions are
 * dropped from it without committing: the next owner reads them again from the last
 * committed offset. Both the cooperative (incremental) and the eager protocol are
 * handled; cooperative-sticky is the default, so a member joining does not stop the
 * others' partitions.
 */
#include "ins.h"
#include "cfg.h"
#include "log.h"
#include "thread.h"

#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

#define KF_DRAIN_MAX 2000 /* messages taken per poll call before checking the clock */
#define INS_DESTROY_MS 2000 /* bound on freeing the client after that */

static int kf_topic_index(const ins_kafka_t *kf, const char *name)
{
    if (strcmp(name, kf->topic) == 0)
        return INS_TOPIC_KLINES;
    if (kf->dlq && *kf->dlq && strcmp(name, kf->dlq) == 0)
        return INS_TOPIC_DLQ;
    return INS_TOPIC_NONE;
}

static const char *kf_topic_name(const ins_kafka_t *kf, int idx)
{
    return idx == INS_TOPIC_DLQ ? kf->dlq : kf->topic;
}

static void kf_log_parts(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
    char buf[512];
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && off < sizeof buf - 32; i++) {
        int n = snprintf(buf + off, sizeof buf - off, "%s%s/%" PRId32, i ? " " : "",
                         parts->elems[i].topic, parts->elems[i].partition);
        if (n < 0 || (size_t)n >= sizeof buf - off)
            break;
        off += (size_t)n;
    }
    log_info("%s %d partition(s): %s%s", what, parts->cnt, buf,
             off >= sizeof buf - 32 ? " ..." : "");
}

struct kf_revoked {
    const ins_kafka_t *kf;
    const rd_kafka_topic_partition_list_t *parts;
};

static bool kf_is_revoked(int topic, int32_t part, void *ud)
{
    const struct kf_revoked *r = ud;
    const char *name = kf_topic_name(r->kf, topic);
    return rd_kafka_topic_partition_list_find(r->parts, name, part) != NULL;
}

static void kf_revoke(ins_app_t *app, rd_kafka_topic_partition_list_t *parts)
{
    kf_log_parts("revoking", parts);
    if (app->batch.nrecords == 0 || ins_flush(app) == 0)
        return;
    /* Not written: keep nothing of these partitions; their next owner re-reads them. */
    size_t before = app->batch.nrecords;
    struct kf_revoked r = { &app->kafka, parts };
    ins_batch_drop(&app->batch, kf_is_revoked, &r);
    log_warn("partitions revoked while PostgreSQL is unavailable: %zu uncommitted records "
             "left for their next owner", before - app->batch.nrecords);
}

static void kf_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ins_app_t *app = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        kf_log_parts("assigned", parts);
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            re = rd_kafka_assign(rk, parts);
        if (app->kafka.paused) /* still waiting for PostgreSQL: these wait too */
            rd_kafka_pause_partitions(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (rd_kafka_assignment_lost(rk))
            log_warn("partitions lost (session timed out): another member may already own them");
        kf_revoke(app, parts);
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            re = rd_kafka_assign(rk, NULL);
    } else {
        log_error("rebalance failed: %s", rd_kafka_err2str(err));
        kf_revoke(app, parts);
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            re = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        log_error("rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    if (re)
        log_error("rebalance: %s", rd_kafka_err2str(re));
}

/* The consumer's configuration: our defaults, the group, then -X (applied last, so it
 * wins). The caller owns the result (rd_kafka_new takes it). */
static rd_kafka_conf_t *kf_conf(ins_app_t *app, char *errbuf, size_t errlen)
{
    const ins_opts_t *o = &app->opt;
    rd_kafka_conf_t *conf = kq_conf_new(o->brokers, errbuf, errlen);
    if (!conf)
        return NULL;
    static const char *const defaults[][2] = {
        { "client.id", INS_PROG },
        { "enable.auto.commit", "false" },       /* offsets only after the COMMIT */
        { "enable.auto.offset.store", "false" },
        { "isolation.level", "read_committed" },
        { "auto.offset.reset", "earliest" },     /* a new group starts at the beginning */
        { "partition.assignment.strategy", "cooperative-sticky" },
        { "topic.metadata.refresh.interval.ms", "1000" }, /* notice new topics soon */
        { "enable.partition.eof", "false" },
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (kq_conf_set(conf, defaults[i][0], defaults[i][1], errbuf, errlen) < 0)
            goto fail;
    /* A batch waits --flush-ms for more records anyway, so the broker may hold our fetch
     * until 1 MB is there or half of that has passed: one fetch per 2,000-symbol burst
     * instead of one per produce request (dozens). That took a third of the broker's CPU
     * out of the burst, which the producer and the streamer share the cores with
     * (bench/results/latency_breakdown.md). A backlog still comes in full fetches. */
    long long wait = o->flush_ms / 2;
    char wait_ms[24];
    snprintf(wait_ms, sizeof wait_ms, "%lld", wait < 10 ? 10 : wait > 500 ? 500 : wait);
    if (kq_conf_set(conf, "fetch.min.bytes", "1048576", errbuf, errlen) < 0 ||
        kq_conf_set(conf, "fetch.wait.max.ms", wait_ms, errbuf, errlen) < 0)
        goto fail;
    if (kq_conf_set(conf, "group.id", o->group, errbuf, errlen) < 0 ||
        kq_conf_apply_xopts(conf, &o->xopts, errbuf, errlen) < 0)
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, kf_rebalance);
    rd_kafka_conf_set_opaque(conf, app);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Subscribes to the klines topic and, unless --dlq-topic "", the dead-letter topic. */
static int kf_subscribe(ins_kafka_t *kf, char *errbuf, size_t errlen)
{
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(sub, kf->topic, RD_KAFKA_PARTITION_UA);
    if (kf->dlq && *kf->dlq)
        rd_kafka_topic_partition_list_add(sub, kf->dlq, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(kf->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (!err)
        return 0;
    snprintf(errbuf, errlen, "subscribe: %s", rd_kafka_err2str(err));
    return -1;
}

int ins_kafka_open(ins_app_t *app, char *errbuf, size_t errlen)
{
    ins_kafka_t *kf = &app->kafka;
    const ins_opts_t *o = &app->opt;
    memset(kf, 0, sizeof *kf);
    kf->topic = o->topic;
    kf->dlq = o->dlq_topic;
    rd_kafka_conf_t *conf = kf_conf(app, errbuf, errlen);
    if (!conf)
        return -1;
    char rerr[512];
    kf->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof rerr);
    if (!kf->rk) {
        snprintf(errbuf, errlen, "kafka consumer: %s", rerr);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes it only on success */
        return -1;
    }
    rd_kafka_poll_set_consumer(kf->rk);
    if (kf_subscribe(kf, errbuf, errlen) < 0) {
        rd_kafka_destroy(kf->rk);
        kf->rk = NULL;
        return -1;
    }
    log_info("consuming %s%s%s as group %s from %s", kf->topic,
             kf->dlq && *kf->dlq ? " and " : "", kf->dlq && *kf->dlq ? kf->dlq : "", o->group,
             o->brokers);
    return 0;
}

static void kf_error(ins_app_t *app, const rd_kafka_message_t *m)
{
    ins_kafka_t *kf = &app->kafka;
    if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        const char *name = m->rkt ? rd_kafka_topic_name(m->rkt) : kf->topic;
        int idx = kf_topic_index(kf, name);
        int w = idx == INS_TOPIC_DLQ ? 1 : 0;
        if (!kf->warned_missing[w])
            log_warn("topic %s does not exist yet; waiting for it to be created", name);
        else
            log_debug("topic %s still missing", name);
        kf->warned_missing[w] = true;
        return;
    }
    if (m->err != kf->last_err)
        log_warn("kafka: %s", rd_kafka_message_errstr(m));
    else
        log_debug("kafka: %s", rd_kafka_message_errstr(m));
    kf->last_err = m->err;
}

static void kf_origin(char *out, size_t outlen, const void *ctx)
{
    const rd_kafka_message_t *m = ctx;
    snprintf(out, outlen, "kafka:%s/%" PRId32 "@%" PRId64, rd_kafka_topic_name(m->rkt),
             m->partition, m->offset);
}

static void kf_take(ins_app_t *app, const rd_kafka_message_t *m, int idx)
{
    ins_kafka_t *kf = &app->kafka;
    char origin[600], where[300];
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    if (ts < 0)
        ts = 0;
    kf->warned_missing[idx == INS_TOPIC_DLQ ? 1 : 0] = false;
    const char *payload = m->payload ? m->payload : "";
    int rc;
    if (idx != INS_TOPIC_KLINES || m->len == 0) {
        kf_origin(where, sizeof where, m);
        snprintf(origin, sizeof origin, "%s", where);
    }
    if (idx == INS_TOPIC_DLQ) {
        /* A dead letter from the producer: keep its own origin (the key) and reason. */
        char reason[256] = "dead letter without a reason header", key[200];
        const void *hv;
        size_t hl;
        rd_kafka_headers_t *hdrs;
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(hdrs, "reason", &hv, &hl) == RD_KAFKA_RESP_ERR_NO_ERROR && hv)
            ins_printable(reason, sizeof reason, hv, hl);
        if (m->key && m->key_len) {
            ins_printable(key, sizeof key, m->key, m->key_len);
            snprintf(origin, sizeof origin, "%s via %s", key, where);
        }
        rc = ins_batch_add_reject(&app->batch, payload, m->len, reason, origin, idx,
                                  m->partition, m->offset);
    } else if (m->len == 0) {
        rc = ins_batch_add_reject(&app->batch, "", 0, "empty message", origin, idx,
                                  m->partition, m->offset);
    } else {
        rc = ins_take(app, payload, m->len, kf_origin, m, idx, m->partition, m->offset, ts);
    }
    if (rc < 0)
        fatal("out of memory holding a batch of %zu records", app->batch.nrecords);
}

void ins_kafka_poll(ins_app_t *app, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(app->kafka.rk, timeout_ms);
    int idx;
    for (int n = 0; m; n++) {
        if (m->err)
            kf_error(app, m);
        else if ((idx = kf_topic_index(&app->kafka, rd_kafka_topic_name(m->rkt))) != INS_TOPIC_NONE)
            kf_take(app, m, idx);
        rd_kafka_message_destroy(m);
        if (n >= KF_DRAIN_MAX || (long long)app->batch.nrecords >= app->opt.batch_rows)
            break;
        m = rd_kafka_consumer_poll(app->kafka.rk, 0);
    }
}

static void kf_pause_resume(ins_app_t *app, bool pause)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(app->kafka.rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a) {
        if (pause)
            rd_kafka_pause_partitions(app->kafka.rk, a);
        else
            rd_kafka_resume_partitions(app->kafka.rk, a);
    }
    if (a)
        rd_kafka_topic_partition_list_destroy(a);
    app->kafka.paused = pause;
}

void ins_kafka_pause(ins_app_t *app) { kf_pause_resume(app, true); }
void ins_kafka_resume(ins_app_t *app) { kf_pause_resume(app, false); }

void ins_kafka_commit(ins_app_t *app, const ins_batch_t *b)
{
    if (b->npos == 0)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)b->npos);
    for (size_t i = 0; i < b->npos; i++)
        rd_kafka_topic_partition_list_add(l, kf_topic_name(&app->kafka, b->pos[i].topic),
                                          b->pos[i].part)->offset = b->pos[i].last + 1;
    rd_kafka_resp_err_t err = rd_kafka_commit(app->kafka.rk, l, 0);
    if (err) {
        /* The rows are in PostgreSQL; a redelivery of them changes nothing there. */
        log_warn("kafka offset commit failed: %s (the batch is stored; its records may be "
                 "delivered again, harmlessly)", rd_kafka_err2str(err));
        ins_stats_commit_error();
    }
    rd_kafka_topic_partition_list_destroy(l);
}

long long ins_kafka_lag(ins_app_t *app)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    long long lag = 0;
    if (rd_kafka_assignment(app->kafka.rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR || !a)
        return 0;
    rd_kafka_position(app->kafka.rk, a);
    for (int i = 0; i < a->cnt; i++) {
        int64_t lo, hi, pos = a->elems[i].offset;
        /* cached watermarks from fetch responses: no broker round trip */
        if (pos < 0 || rd_kafka_get_watermark_offsets(app->kafka.rk, a->elems[i].topic,
                                                      a->elems[i].partition, &lo, &hi) != 0)
            continue;
        if (hi > pos)
            lag += hi - pos;
    }
    rd_kafka_topic_partition_list_destroy(a);
    return lag + (long long)app->batch.nrecords; /* consumed but not yet committed */
}

/* rd_kafka_destroy() of librdkafka 2.0.2 can wait forever for a broker thread (seen after
 * the subscribed topic was deleted under the consumer), so it runs in a thread of its
 * own and is waited for with a deadline. */
struct kf_destroyer {
    rd_kafka_t *rk;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
};

static void *kf_destroy_thread(void *arg)
{
    struct kf_destroyer *d = arg;
    /* The group was left (or given up on) already: no callback into the app from here. */
    rd_kafka_destroy_flags(d->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    pthread_mutex_lock(&d->mu);
    d->done = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* 0 when the handle is destroyed, -1 when the deadline passed first (the thread and
 * the handle are then abandoned to the process exit). */
static int kf_destroy_bounded(rd_kafka_t *rk, int timeout_ms)
{
    /* Static: an abandoned thread still uses it after we return. Called once. */
    static struct kf_destroyer d = { .mu = PTHREAD_MUTEX_INITIALIZER };
    pthread_condattr_t ca;
    pthread_t th;
    d.rk = rk;
    d.done = false;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (kp_thread_create(&th, NULL, kf_destroy_thread, &d) != 0) {
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        return 0;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d.mu);
    while (!d.done && pthread_cond_timedwait(&d.cv, &d.mu, &until) == 0)
        ;
    bool done = d.done;
    pthread_mutex_unlock(&d.mu);
    if (!done) {
        pthread_detach(th);
        return -1;
    }
    pthread_join(th, NULL);
    return 0;
}

void ins_kafka_close(ins_app_t *app)
{
    rd_kafka_t *rk = app->kafka.rk;
    if (!rk)
        return;
    /* Leaves the group: the revoke callback writes (or drops) what is left. Bounded by
     * librdkafka (roughly session.timeout.ms). Not rd_kafka_consumer_close_queue():
     * serving that queue with rd_kafka_queue_poll_callback() aborts in librdkafka 2.0.2
     * (rd_kafka_q_serve assert) when a fetched message is on it. */
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk);
    if (err)
        log_warn("kafka: leaving the group: %s", rd_kafka_err2str(err));
    if (kf_destroy_bounded(rk, INS_DESTROY_MS) < 0)
        log_warn("kafka: the client did not shut down within %d ms; exiting without waiting "
                 "for it (offsets were committed before)", INS_DESTROY_MS);
    app->kafka.rk = NULL;
}
