/* kp-peer-feed — the feeder of bench_peers.sh: reads canonical kline records (NDJSON, one
 * per line, e.g. from kp-klinegen --realtime) on stdin and produces each one, in the same
 * loop, to two topics of one broker:
 *
 *   --topic T        what kline-streamer consumes: key = symbol, value = the record;
 *   --peer-topic P   what Centrifugo's Kafka consumer reads in "publication data mode":
 *                    the same key and value, plus the header centrifugo-channels = the
 *                    channel the record is published to (--channel-prefix + symbol).
 *
 * Both messages of a record are handed to librdkafka back to back (same producer, same
 * settings, so they usually travel in the same ProduceRequest) and the order alternates
 * per record, so neither server pays the Kafka hop differently. Settings are those of
 * kline-producer (acks=all, linger.ms=1, idempotent), so the hop is the pipeline's own.
 *
 * --ack-stats FILE: the time from each record's event_time to the broker's ack of its copy
 * on --topic (the Kafka timestamp, i.e. the produce call, plus librdkafka's own produce →
 * ack latency: linger, the ProduceRequest, the append), as a Prometheus histogram
 * (kp_peer_feed_stage_seconds{stage="acked"}) rewritten at most once a second, so that
 * bench_peers.sh can diff it around a window like the streamer's --stage-stamps. With it,
 * a thread of its own serves the delivery reports (every 20 ms; the main loop then never
 * polls), because librdkafka's latency is taken when the report is served and the main
 * loop waits on stdin for the next second's records.
 *
 *   kp-klinegen --realtime --symbols 2000 | kp-peer-feed -b HOST:PORT --topic A --peer-topic B
 */
#include <getopt.h>
#include <stdint.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

#include "kq.h"
#include "thread.h"

#define PF_CHANNEL_MAX 128

static volatile sig_atomic_t pf_stop;
static unsigned long pf_failed; /* delivery reports with an error */

/* --ack-stats: bucket bounds in ms (those of the streamer's stage.c), counts, sum */
static const double pf_le[] = {1,   2,   3,   4,   5,   6,   8,   10,  12,  15,  20,  25,  30,
                               40,  50,  60,  70,  80,  90,  100, 120, 140, 160, 180, 200, 250,
                               300, 350, 400, 500, 600, 800, 1000, 1500, 2000, 5000};
#define PF_NB ((int)(sizeof pf_le / sizeof pf_le[0]))
static struct {
    const char *topic; /* only its copies are timed */
    uint64_t n[PF_NB + 1], count;
    double sum_ms;
} pf_ack;

/* event_time → ack of one delivered copy: (CreateTime − event_time) + produce → ack. */
static void pf_ack_add(const rd_kafka_message_t *m)
{
    const char *p = memmem(m->payload, m->len, "\"event_time\":", 13);
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt), lat = rd_kafka_message_latency(m);
    if (!p || ts <= 0 || lat < 0)
        return;
    long long ev = strtoll(p + 13, NULL, 10);
    if (ev <= 0)
        return;
    double ms = (double)(ts - ev) + (double)lat / 1000.0;
    int b = 0;
    while (b < PF_NB && ms > pf_le[b])
        b++;
    pf_ack.n[b]++;
    pf_ack.count++;
    pf_ack.sum_ms += ms;
}

/* Rewrites FILE (through a temporary and rename, so a reader never sees half of it). */
static void pf_ack_write(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    uint64_t cum = 0;
    for (int i = 0; i <= PF_NB; i++) {
        cum += pf_ack.n[i];
        if (i < PF_NB)
            fprintf(f, "kp_peer_feed_stage_seconds_bucket{stage=\"acked\",le=\"%g\"} %llu\n", pf_le[i] / 1000.0,
                    (unsigned long long)cum);
        else
            fprintf(f, "kp_peer_feed_stage_seconds_bucket{stage=\"acked\",le=\"+Inf\"} %llu\n",
                    (unsigned long long)cum);
    }
    fprintf(f, "kp_peer_feed_stage_seconds_sum{stage=\"acked\"} %.6f\n", pf_ack.sum_ms / 1000.0);
    fprintf(f, "kp_peer_feed_stage_seconds_count{stage=\"acked\"} %llu\n", (unsigned long long)pf_ack.count);
    if (fclose(f) == 0)
        rename(tmp, path);
}

static void pf_on_signal(int s)
{
    (void)s;
    pf_stop = 1;
}

static void pf_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err && pf_failed++ < 5)
        fprintf(stderr, "kp-peer-feed: delivery failed: %s\n", rd_kafka_err2str(m->err));
    if (!m->err && pf_ack.topic && !strcmp(rd_kafka_topic_name(m->rkt), pf_ack.topic))
        pf_ack_add(m);
}

/* The record's symbol (the value of "symbol"), copied into dst; -1 if there is none. */
static int pf_symbol(const char *line, size_t len, char *dst, size_t cap)
{
    const char *p = memmem(line, len, "\"symbol\":\"", 10);
    if (!p)
        return -1;
    p += 10;
    const char *q = memchr(p, '"', len - (size_t)(p - line));
    if (!q || q == p || (size_t)(q - p) >= cap)
        return -1;
    memcpy(dst, p, (size_t)(q - p));
    dst[q - p] = '\0';
    return 0;
}

static rd_kafka_t *pf_producer(const char *brokers, const kq_xopts_t *x, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = kq_conf_new(brokers, err, errlen);
    if (!conf)
        return NULL;
    if (kq_conf_set(conf, "acks", "all", err, errlen) < 0 ||
        kq_conf_set(conf, "enable.idempotence", "true", err, errlen) < 0 ||
        kq_conf_set(conf, "linger.ms", "1", err, errlen) < 0 ||
        kq_conf_set(conf, "queue.buffering.max.messages", "1000000", err, errlen) < 0 ||
        kq_conf_apply_xopts(conf, x, err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, pf_dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;
}

struct pf_poller {
    rd_kafka_t *rk;
    const char *path;
};

static void *pf_poll_main(void *arg)
{
    const struct pf_poller *p = arg;
    time_t next = 0;
    while (!pf_stop) {
        rd_kafka_poll(p->rk, 20);
        if (time(NULL) >= next) {
            pf_ack_write(p->path);
            next = time(NULL) + 1;
        }
    }
    return NULL;
}

/* Queues one message; the peer copy carries the channel header. Retries while the local
 * queue is full (it never is at these rates, but a record must not be skipped). */
static int pf_produce(rd_kafka_t *rk, const char *topic, const char *sym, const char *line, size_t len,
                      const char *channel, bool poller)
{
    for (;;) {
        rd_kafka_resp_err_t e;
        if (channel)
            e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(sym, strlen(sym)),
                                  RD_KAFKA_V_VALUE((void *)line, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_HEADER("centrifugo-channels", channel, (ssize_t)strlen(channel)),
                                  RD_KAFKA_V_END);
        else
            e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(sym, strlen(sym)),
                                  RD_KAFKA_V_VALUE((void *)line, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "kp-peer-feed: produce to %s: %s\n", topic, rd_kafka_err2str(e));
            return -1;
        }
        if (poller)
            usleep(10 * 1000); /* the poller thread serves the reports */
        else
            rd_kafka_poll(rk, 10);
    }
}

int main(int argc, char **argv)
{
    const char *brokers = "127.0.0.1:9092", *topic = NULL, *peer = NULL, *prefix = "", *ack_stats = NULL;
    kq_xopts_t x = {.n = 0};
    char err[512];
    static const struct option opts[] = {
        {"brokers", required_argument, 0, 'b'},        {"topic", required_argument, 0, 't'},
        {"peer-topic", required_argument, 0, 'P'},     {"channel-prefix", required_argument, 0, 'c'},
        {"kafka", required_argument, 0, 'X'},          {"help", no_argument, 0, 'h'},
        {"ack-stats", required_argument, 0, 'A'},      {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "b:t:P:c:X:A:h", opts, NULL)) != -1) {
        switch (o) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'P': peer = optarg; break;
        case 'c': prefix = optarg; break;
        case 'A': ack_stats = optarg; break;
        case 'X':
            if (kq_xopts_add(optarg, &x, err, sizeof err) < 0) {
                fprintf(stderr, "kp-peer-feed: -X %s: %s\n", optarg, err);
                return 2;
            }
            break;
        case 'h':
            printf("usage: kp-peer-feed [-b BROKERS] --topic T --peer-topic P [--channel-prefix S]\n"
                   "                    [--ack-stats FILE] [-X key=value]...   < NDJSON klines\n");
            return 0;
        default: return 2;
        }
    }
    if (!topic || !peer) {
        fprintf(stderr, "kp-peer-feed: --topic and --peer-topic are required\n");
        return 2;
    }
    rd_kafka_t *rk = pf_producer(brokers, &x, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kp-peer-feed: -X %s: %s\n", optarg, err);
        return 1;
    }
    pf_ack.topic = ack_stats ? topic : NULL;
    struct pf_poller poller = {rk, ack_stats};
    pthread_t pt;
    if (ack_stats && kp_thread_create(&pt, NULL, pf_poll_main, &poller)) {
        fprintf(stderr, "kp-peer-feed: cannot start the poller thread\n");
        return 1;
    }
    signal(SIGINT, pf_on_signal);
    signal(SIGTERM, pf_on_signal);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long records = 0;
    int rc = 0;
    while (!pf_stop && (n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char sym[64], channel[PF_CHANNEL_MAX];
        if (!n || pf_symbol(line, (size_t)n, sym, sizeof sym) < 0)
            continue;
        snprintf(channel, sizeof channel, "%s%s", prefix, sym);
        /* alternate which topic gets the record first */
        bool peer_first = records++ & 1;
        bool pl = ack_stats != NULL;
        if (pf_produce(rk, peer_first ? peer : topic, sym, line, (size_t)n, peer_first ? channel : NULL, pl) < 0 ||
            pf_produce(rk, peer_first ? topic : peer, sym, line, (size_t)n, peer_first ? NULL : channel, pl) < 0) {
            rc = 1;
            break;
        }
        if (!ack_stats)
            rd_kafka_poll(rk, 0);
    }
    free(line);
    if (ack_stats) {
        pf_stop = 1;
        pthread_join(pt, NULL);
    }
    rd_kafka_flush(rk, 5000);
    rd_kafka_destroy(rk);
    fprintf(stderr, "kp-peer-feed: %lu records, %lu deliveries failed\n", records, pf_failed);
    return rc || pf_failed ? 1 : 0;
}
