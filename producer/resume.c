/* resume.c — where did we stop? Reads the tail of every partition of the topic with a
 * temporary consumer and takes, per symbol, the newest open_time found. Messages are
 * keyed by symbol, so each symbol lives in one partition; the tail read covers several
 * seconds of every symbol on it. Symbols not found there resume from the oldest
 * position found, so a newly added symbol gets a short backfill, not none. */
#include "prod.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RESUME_TIMEOUT_MS 60000

/* A topic created a moment ago (by us, at start-up) may not have its partition leaders
 * elected yet: those answers are transient, so ask again for a while before giving up. */
static rd_kafka_resp_err_t resume_watermarks(rd_kafka_t *rk, const char *topic, int partition,
                                             int64_t *lo, int64_t *hi)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt < 30; attempt++) {
        err = rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi, 10000);
        if (err != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
            err != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
            err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
            err != RD_KAFKA_RESP_ERR__TRANSPORT &&
            err != RD_KAFKA_RESP_ERR__TIMED_OUT)
            return err;
        if (sig_stop)
            return err;
        struct timespec ts = { 0, 500 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return err;
}

static int resume_partitions(rd_kafka_t *rk, const char *topic, int *n, char *errbuf, size_t errlen)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int rc = -1;
    for (int attempt = 0; attempt < 10 && rc < 0; attempt++) {
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (err) {
            snprintf(errbuf, errlen, "metadata of %s: %s", topic, rd_kafka_err2str(err));
        } else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
            snprintf(errbuf, errlen, "metadata of %s: %s", topic,
                     md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "no such topic");
        } else {
            *n = md->topics[0].partition_cnt;
            rc = 0;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        md = NULL;
        if (rc < 0)
            usleep(500000);
    }
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static void resume_take(const rd_kafka_message_t *m, int64_t *oldest, int *found)
{
    kline_t k;
    char why[128];
    if (!m->payload || kline_parse(m->payload, m->len, NULL, NULL, &k, why, sizeof why) < 0)
        return;
    if (strcmp(k.interval, prod_cfg.interval) != 0)
        return;
    prod_sym_t *s = sym_find(k.symbol);
    if (!s)
        return;
    if (s->last_pub == PROD_NONE)
        (*found)++;
    seq_seed(s, k.open_time, k.closed);
    if (*oldest == PROD_NONE || k.open_time < *oldest)
        *oldest = k.open_time;
}

int resume_from_kafka(char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = kq_conf_new(prod_cfg.brokers, errbuf, errlen);
    if (!conf)
        return -1;
    char gid[64];
    snprintf(gid, sizeof gid, "kline-producer-resume-%d", (int)getpid());
    if (kq_conf_set(conf, "group.id", gid, errbuf, errlen) < 0 ||
        kq_conf_set(conf, "enable.auto.commit", "false", errbuf, errlen) < 0 ||
        kq_conf_set(conf, "enable.partition.eof", "true", errbuf, errlen) < 0 ||
        kq_conf_set(conf, "auto.offset.reset", "earliest", errbuf, errlen) < 0 ||
        /* -X carries connection settings (security.protocol, sasl.*) the reader needs
         * too; producer-only keys only draw a warning from librdkafka */
        kq_conf_apply_xopts(conf, &prod_cfg.xopts, errbuf, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    char rerr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof rerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errlen, "resume consumer: %s", rerr);
        return -1;
    }
    int np = 0, rc = -1;
    rd_kafka_topic_partition_list_t *tl = NULL;
    int64_t *hi = NULL;
    if (resume_partitions(rk, prod_cfg.topic, &np, errbuf, errlen) < 0)
        goto out;
    hi = calloc((size_t)np, sizeof *hi);
    tl = rd_kafka_topic_partition_list_new(np);
    int64_t window = 4LL * prod_nsyms / np + 1000;
    int open = 0;
    for (int p = 0; p < np; p++) {
        int64_t lo = 0, h = 0;
        rd_kafka_resp_err_t err = resume_watermarks(rk, prod_cfg.topic, p, &lo, &h);
        if (err) {
            snprintf(errbuf, errlen, "watermarks of %s [%d]: %s", prod_cfg.topic, p, rd_kafka_err2str(err));
            goto out;
        }
        hi[p] = h;
        if (h <= lo) {
            hi[p] = -1; /* empty: nothing to read */
            continue;
        }
        rd_kafka_topic_partition_list_add(tl, prod_cfg.topic, p)->offset = h - window > lo ? h - window : lo;
        open++;
    }
    int64_t oldest = PROD_NONE;
    int found = 0;
    if (open > 0) {
        rd_kafka_resp_err_t err = rd_kafka_assign(rk, tl);
        if (err) {
            snprintf(errbuf, errlen, "assign: %s", rd_kafka_err2str(err));
            goto out;
        }
        int64_t deadline = cfg_mono_ms() + RESUME_TIMEOUT_MS;
        while (open > 0) {
            if (cfg_mono_ms() > deadline || sig_stop) {
                snprintf(errbuf, errlen, "reading the tail of %s took too long", prod_cfg.topic);
                goto out;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
            if (!m)
                continue;
            int p = m->partition;
            if (p >= 0 && p < np && hi[p] >= 0) {
                if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                    resume_take(m, &oldest, &found);
                else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    log_warn("resume: %s [%d]: %s", prod_cfg.topic, p, rd_kafka_message_errstr(m));
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->offset >= hi[p] - 1) {
                    hi[p] = -1;
                    open--;
                }
            }
            rd_kafka_message_destroy(m);
        }
    }
    if (found > 0 && found < prod_nsyms)
        for (int i = 0; i < prod_nsyms; i++)
            if (prod_syms[i].last_pub == PROD_NONE)
                seq_seed(&prod_syms[i], oldest, true);
    if (found > 0)
        log_info("resuming %d of %d symbols from %s (oldest %lld); the others from %lld", found, prod_nsyms,
                 prod_cfg.topic, (long long)oldest, (long long)oldest);
    else
        log_info("topic %s holds no klines of ours: starting with live data", prod_cfg.topic);
    rc = 0;
out:
    if (tl)
        rd_kafka_topic_partition_list_destroy(tl);
    free(hi);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
