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
 *   kp-klinegen --realtime --symbols 2000 | kp-peer-feed -b HOST:PORT --topic A --peer-topic B
 */
#include <getopt.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kq.h"

#define PF_CHANNEL_MAX 128

static volatile sig_atomic_t pf_stop;
static unsigned long pf_failed; /* delivery reports with an error */

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

/* Queues one message; the peer copy carries the channel header. Retries while the local
 * queue is full (it never is at these rates, but a record must not be skipped). */
static int pf_produce(rd_kafka_t *rk, const char *topic, const char *sym, const char *line, size_t len,
                      const char *channel)
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
        rd_kafka_poll(rk, 10);
    }
}

int main(int argc, char **argv)
{
    const char *brokers = "127.0.0.1:9092", *topic = NULL, *peer = NULL, *prefix = "";
    kq_xopts_t x = {.n = 0};
    char err[512];
    static const struct option opts[] = {
        {"brokers", required_argument, 0, 'b'},        {"topic", required_argument, 0, 't'},
        {"peer-topic", required_argument, 0, 'P'},     {"channel-prefix", required_argument, 0, 'c'},
        {"kafka", required_argument, 0, 'X'},          {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "b:t:P:c:X:h", opts, NULL)) != -1) {
        switch (o) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'P': peer = optarg; break;
        case 'c': prefix = optarg; break;
        case 'X':
            if (kq_xopts_add(optarg, &x, err, sizeof err) < 0) {
                fprintf(stderr, "kp-peer-feed: -X %s: %s\n", optarg, err);
                return 2;
            }
            break;
        case 'h':
            printf("usage: kp-peer-feed [-b BROKERS] --topic T --peer-topic P [--channel-prefix S]\n"
                   "                    [-X key=value]...   < NDJSON klines\n");
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
        if (pf_produce(rk, peer_first ? peer : topic, sym, line, (size_t)n, peer_first ? channel : NULL) < 0 ||
            pf_produce(rk, peer_first ? topic : peer, sym, line, (size_t)n, peer_first ? NULL : channel) < 0) {
            rc = 1;
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    free(line);
    rd_kafka_flush(rk, 5000);
    rd_kafka_destroy(rk);
    fprintf(stderr, "kp-peer-feed: %lu records, %lu deliveries failed\n", records, pf_failed);
    return rc || pf_failed ? 1 : 0;
}
