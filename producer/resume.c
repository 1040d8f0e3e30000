/* resume.c — where did each symbol stop? The topic is the producer's durable account:
 * per symbol, klines are published in open_time order and a hole is always filled
 * (from REST) before anything newer goes out, so a symbol's newest kline in the topic
 * is exactly where it stopped, and everything after it is what is missing.
 *
 * Finding that kline: each partition is read backwards in chunks that double in size
 * (the newest chunk first). A symbol is settled by the newest chunk that holds it.
 * A partition is done once every symbol that lives in it is settled (messages are
 * keyed by symbol, and the partitioner tells which partition a symbol's key maps to),
 * or at its start, or at --resume-horizon (by message timestamp). So a symbol that
 * was mid-backfill when the last producer died, or that was left out of the list for
 * a while, resumes from its own last kline, not from the newest seconds of the others.
 * A symbol with no kline in the topic starts where the compacted <topic>.resume says
 * (the --since of a producer that died before reaching it), or else, being new, with
 * live data. */
#include "prod.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RESUME_CHUNK_MIN   2000      /* messages per partition in the first (newest) chunk */
#define RESUME_CHUNK_MAX   4000000   /* a chunk never grows past this */
#define RESUME_DEADLINE_MS 600000    /* the whole scan; past it the rest start live, loudly */
#define RESUME_PROGRESS_MS 5000

typedef int32_t (*resume_partitioner_t)(const rd_kafka_topic_t *, const void *, size_t, int32_t, void *,
                                        void *);

typedef struct resume_part {
    int64_t lo, hi;           /* watermarks at the start of the scan */
    int64_t from, to;         /* this round's chunk [from, to) */
    int64_t chunk;            /* its size */
    int unsettled;            /* symbols mapped here and not settled yet */
    bool open;                /* still being scanned */
    bool reading;             /* this round's chunk not yet read to its end */
    bool past_horizon;        /* the chunk reached messages older than the horizon */
} resume_part_t;

typedef struct resume_sym {
    int home;                 /* partition its key maps to, -1 unknown */
    bool settled;             /* found in an earlier (newer) chunk */
    bool seen;                /* found in this round's chunk */
} resume_sym_t;

typedef struct resume_scan {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    resume_part_t *p;
    resume_sym_t *s;          /* parallel to prod_syms */
    int np;
    int unsettled;            /* all symbols, for a partitioner we cannot reproduce */
    bool mapped;              /* s[].home is known */
    int64_t horizon_ts;       /* messages older than this (ms, Kafka timestamp) end a partition */
    long long scanned;
} resume_scan_t;

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

static int resume_partitions(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int *n, char *errbuf, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    int rc = -1;
    for (int attempt = 0; attempt < 10 && rc < 0; attempt++) {
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (err) {
            snprintf(errbuf, errlen, "metadata of %s: %s", prod_cfg.topic, rd_kafka_err2str(err));
        } else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
            snprintf(errbuf, errlen, "metadata of %s: %s", prod_cfg.topic,
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
    return rc;
}

/* The partitioner the producer publishes with (librdkafka's default unless -X sets
 * one), so that the scan knows where each symbol lives. NULL: not reproducible
 * (random), every partition is read until every symbol is found. */
static resume_partitioner_t resume_partitioner(void)
{
    const char *name = "consistent_random";
    for (int i = 0; i < prod_cfg.xopts.n; i++)
        if (strncmp(prod_cfg.xopts.kv[i], "partitioner=", 12) == 0)
            name = prod_cfg.xopts.kv[i] + 12;
    static const struct { const char *name; resume_partitioner_t fn; } known[] = {
        { "consistent", rd_kafka_msg_partitioner_consistent },
        { "consistent_random", rd_kafka_msg_partitioner_consistent_random },
        { "murmur2", rd_kafka_msg_partitioner_murmur2 },
        { "murmur2_random", rd_kafka_msg_partitioner_murmur2_random },
        { "fnv1a", rd_kafka_msg_partitioner_fnv1a },
        { "fnv1a_random", rd_kafka_msg_partitioner_fnv1a_random },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(known[i].name, name) == 0)
            return known[i].fn;
    return NULL;
}

static void resume_map_symbols(resume_scan_t *sc)
{
    resume_partitioner_t fn = resume_partitioner();
    sc->mapped = fn != NULL;
    sc->unsettled = prod_nsyms;
    for (int i = 0; i < prod_nsyms; i++) {
        const char *name = prod_syms[i].name;
        int home = fn ? (int)fn(sc->rkt, name, strlen(name), sc->np, NULL, NULL) : -1;
        sc->s[i].home = home >= 0 && home < sc->np ? home : -1;
        if (sc->s[i].home >= 0)
            sc->p[sc->s[i].home].unsettled++;
    }
    if (!fn)
        log_info("resume: partitioner not reproducible here: every partition is read until every symbol is found");
}

/* The next (older) chunk of each partition still open. 0 if none is left. */
static int resume_next_chunks(resume_scan_t *sc)
{
    int reading = 0;
    for (int i = 0; i < sc->np; i++) {
        resume_part_t *p = &sc->p[i];
        bool need = sc->mapped ? p->unsettled > 0 : sc->unsettled > 0;
        if (p->open && (!need || p->from <= p->lo || p->past_horizon))
            p->open = false;
        if (!p->open)
            continue;
        p->to = p->from;
        p->chunk = p->chunk ? (p->chunk * 2 > RESUME_CHUNK_MAX ? RESUME_CHUNK_MAX : p->chunk * 2)
                            : RESUME_CHUNK_MIN + 4LL * prod_nsyms / sc->np;
        p->from = p->to - p->chunk > p->lo ? p->to - p->chunk : p->lo;
        p->reading = true;
        reading++;
    }
    return reading;
}

static int resume_assign(resume_scan_t *sc, char *errbuf, size_t errlen)
{
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(sc->np);
    for (int i = 0; i < sc->np; i++)
        if (sc->p[i].reading)
            rd_kafka_topic_partition_list_add(tl, prod_cfg.topic, i)->offset = sc->p[i].from;
    rd_kafka_resp_err_t err = rd_kafka_assign(sc->rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    if (err) {
        snprintf(errbuf, errlen, "assign: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* One message of a chunk: a kline of one of our symbols not settled by a newer chunk
 * moves that symbol's resume point forward (seq_seed keeps the later). */
static void resume_take(resume_scan_t *sc, const rd_kafka_message_t *m)
{
    char name[KLINE_SYMBOL_MAX];
    if (!m->key || m->key_len == 0 || m->key_len >= sizeof name || !m->payload)
        return;
    memcpy(name, m->key, m->key_len);
    name[m->key_len] = '\0';
    prod_sym_t *s = sym_find(name);
    if (!s)
        return;
    resume_sym_t *rs = &sc->s[s - prod_syms];
    if (rs->settled)
        return;
    kline_t k;
    char why[128];
    if (kline_parse(m->payload, m->len, NULL, NULL, &k, why, sizeof why) < 0 ||
        strcmp(k.interval, prod_cfg.interval) != 0 || strcmp(k.symbol, s->name) != 0)
        return;
    rs->seen = true;
    seq_seed(s, k.open_time, k.closed);
}

/* Routes one consumed message to its partition's chunk; ends the chunk at its end. */
static void resume_on_message(resume_scan_t *sc, const rd_kafka_message_t *m)
{
    int i = m->partition;
    if (i < 0 || i >= sc->np || !sc->p[i].reading)
        return;
    resume_part_t *p = &sc->p[i];
    if (m->err) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            p->reading = false;
        else
            log_warn("resume: %s [%d]: %s", prod_cfg.topic, i, rd_kafka_message_errstr(m));
        return;
    }
    if (m->offset < p->from)
        return; /* left over from an earlier assignment */
    if (m->offset >= p->to) {
        p->reading = false;
        return;
    }
    sc->scanned++;
    resume_take(sc, m);
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    if (sc->horizon_ts > 0 && ts >= 0 && ts < sc->horizon_ts)
        p->past_horizon = true; /* this chunk is the last one read of p */
    if (m->offset >= p->to - 1)
        p->reading = false;
}

static bool resume_round_busy(const resume_scan_t *sc)
{
    for (int i = 0; i < sc->np; i++)
        if (sc->p[i].reading)
            return true;
    return false;
}

/* Symbols seen in this round's chunks are settled: no older chunk can hold a newer kline. */
static void resume_settle_round(resume_scan_t *sc)
{
    for (int i = 0; i < prod_nsyms; i++) {
        resume_sym_t *rs = &sc->s[i];
        if (!rs->seen || rs->settled)
            continue;
        rs->settled = true;
        rs->seen = false;
        sc->unsettled--;
        if (rs->home >= 0)
            sc->p[rs->home].unsettled--;
    }
}

static int resume_read_round(resume_scan_t *sc, int64_t deadline, int64_t *next_note, char *errbuf,
                             size_t errlen)
{
    if (resume_assign(sc, errbuf, errlen) < 0)
        return -1;
    while (resume_round_busy(sc)) {
        if (sig_stop) {
            snprintf(errbuf, errlen, "stopped by a signal while reading %s", prod_cfg.topic);
            return -1;
        }
        if (cfg_mono_ms() > deadline)
            return 1;
        if (cfg_mono_ms() > *next_note) {
            *next_note = cfg_mono_ms() + RESUME_PROGRESS_MS;
            log_info("resume: %lld messages read, %d of %d symbols still looked for", sc->scanned, sc->unsettled,
                     prod_nsyms);
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(sc->rk, 200);
        if (m) {
            resume_on_message(sc, m);
            rd_kafka_message_destroy(m);
        }
    }
    resume_settle_round(sc);
    return 0;
}

static int resume_init_parts(resume_scan_t *sc, char *errbuf, size_t errlen)
{
    for (int i = 0; i < sc->np; i++) {
        resume_part_t *p = &sc->p[i];
        rd_kafka_resp_err_t err = resume_watermarks(sc->rk, prod_cfg.topic, i, &p->lo, &p->hi);
        if (err) {
            snprintf(errbuf, errlen, "watermarks of %s [%d]: %s", prod_cfg.topic, i, rd_kafka_err2str(err));
            return -1;
        }
        p->from = p->hi; /* the first chunk ends at the high watermark */
        p->open = p->hi > p->lo;
    }
    return 0;
}

static int resume_scan(resume_scan_t *sc, char *errbuf, size_t errlen)
{
    if (resume_init_parts(sc, errbuf, errlen) < 0)
        return -1;
    resume_map_symbols(sc);
    int64_t t0 = cfg_mono_ms(), deadline = t0 + RESUME_DEADLINE_MS, next_note = t0 + RESUME_PROGRESS_MS;
    while (resume_next_chunks(sc) > 0) {
        int rc = resume_read_round(sc, deadline, &next_note, errbuf, errlen);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            log_warn("resume: gave up looking after %d s; %d symbols not found start with live data",
                     RESUME_DEADLINE_MS / 1000, sc->unsettled);
            break;
        }
    }
    log_info("resume: read %lld messages of %s in %lld ms", sc->scanned, prod_cfg.topic,
             (long long)(cfg_mono_ms() - t0));
    return 0;
}

/* One record of <topic>.resume for a symbol still without a kline: its owed start. */
static void resume_take_point(resume_scan_t *sc, const rd_kafka_message_t *m, int64_t *from)
{
    json_error_t jerr;
    json_t *j = m->payload ? json_loadb(m->payload, m->len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    const char *sym = json_string_value(json_object_get(j, "symbol"));
    const char *iv = json_string_value(json_object_get(j, "interval"));
    json_t *f = json_object_get(j, "from");
    prod_sym_t *s = sym ? sym_find(sym) : NULL;
    if (s && !sc->s[s - prod_syms].settled && iv && strcmp(iv, prod_cfg.interval) == 0 && json_is_integer(f))
        from[s - prod_syms] = json_integer_value(f); /* the newest record of a key wins */
    json_decref(j);
}

/* Reads the whole (compacted, small) <topic>.resume into from[] (PROD_NONE: no record). */
static int resume_read_points(resume_scan_t *sc, int64_t *from, char *errbuf, size_t errlen)
{
    int64_t lo = 0, hi = 0;
    if (!prod_cfg.resume_topic || !*prod_cfg.resume_topic ||
        rd_kafka_query_watermark_offsets(sc->rk, prod_cfg.resume_topic, 0, &lo, &hi, 10000) != 0 || hi <= lo)
        return 0; /* no such topic yet, or empty: nothing is owed */
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tl, prod_cfg.resume_topic, 0)->offset = lo;
    rd_kafka_resp_err_t err = rd_kafka_assign(sc->rk, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    if (err) {
        snprintf(errbuf, errlen, "assign %s: %s", prod_cfg.resume_topic, rd_kafka_err2str(err));
        return -1;
    }
    int64_t deadline = cfg_mono_ms() + 60000;
    for (;;) {
        if (sig_stop || cfg_mono_ms() > deadline) {
            snprintf(errbuf, errlen, "reading %s: %s", prod_cfg.resume_topic, sig_stop ? "stopped" : "timed out");
            return -1;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(sc->rk, 200);
        if (!m)
            continue;
        bool end = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || (!m->err && m->offset >= hi - 1);
        if (!m->err && strcmp(rd_kafka_topic_name(m->rkt), prod_cfg.resume_topic) == 0)
            resume_take_point(sc, m, from);
        rd_kafka_message_destroy(m);
        if (end)
            return 0;
    }
}

/* Symbols without a kline in the topic: seeded from their resume point, if any. */
static int resume_apply_points(resume_scan_t *sc, int *owed, char *errbuf, size_t errlen)
{
    *owed = 0;
    if (sc->unsettled == 0)
        return 0;
    int64_t *from = malloc(sizeof *from * (size_t)prod_nsyms);
    if (!from) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < prod_nsyms; i++)
        from[i] = PROD_NONE;
    int rc = resume_read_points(sc, from, errbuf, errlen);
    for (int i = 0; rc == 0 && i < prod_nsyms; i++)
        if (from[i] != PROD_NONE && !sc->s[i].settled) {
            seq_seed(&prod_syms[i], from[i] - prod_cfg.interval_ms, true);
            (*owed)++;
        }
    free(from);
    return rc;
}

static rd_kafka_t *resume_consumer(char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = kq_conf_new(prod_cfg.brokers, errbuf, errlen);
    if (!conf)
        return NULL;
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
        return NULL;
    }
    char rerr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rerr, sizeof rerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errlen, "resume consumer: %s", rerr);
    }
    return rk; /* owns conf */
}

static void resume_report(const resume_scan_t *sc, int owed)
{
    int found = prod_nsyms - sc->unsettled;
    if (owed > 0)
        log_info("resume: %d symbols have no kline in %s yet: from their start in %s", owed, prod_cfg.topic,
                 prod_cfg.resume_topic);
    if (found == 0 && owed == 0) {
        log_info("topic %s holds no klines of ours: starting with live data", prod_cfg.topic);
        return;
    }
    int64_t oldest = PROD_NONE;
    for (int i = 0; i < prod_nsyms; i++)
        if (sc->s[i].settled && (oldest == PROD_NONE || prod_syms[i].last_pub < oldest))
            oldest = prod_syms[i].last_pub;
    log_info("resuming %d of %d symbols from %s, each from its own last kline (oldest %lld)%s", found + owed,
             prod_nsyms, prod_cfg.topic, (long long)oldest,
             sc->unsettled > owed ? "; the others are new and start with live data" : "");
}

int resume_from_kafka(char *errbuf, size_t errlen)
{
    resume_scan_t sc = { 0 };
    int rc = -1;
    if (!(sc.rk = resume_consumer(errbuf, errlen)))
        return -1;
    sc.rkt = rd_kafka_topic_new(sc.rk, prod_cfg.topic, NULL);
    if (!sc.rkt) {
        snprintf(errbuf, errlen, "topic %s: %s", prod_cfg.topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    if (resume_partitions(sc.rk, sc.rkt, &sc.np, errbuf, errlen) < 0)
        goto out;
    sc.p = calloc((size_t)sc.np, sizeof *sc.p);
    sc.s = calloc((size_t)prod_nsyms, sizeof *sc.s);
    if (!sc.p || !sc.s) {
        snprintf(errbuf, errlen, "out of memory");
        goto out;
    }
    sc.horizon_ts = prod_cfg.resume_horizon_ms > 0 ? cfg_now_ms() - prod_cfg.resume_horizon_ms : 0;
    int owed = 0;
    if (resume_scan(&sc, errbuf, errlen) < 0 || resume_apply_points(&sc, &owed, errbuf, errlen) < 0)
        goto out;
    resume_report(&sc, owed);
    rc = 0;
out:
    free(sc.p);
    free(sc.s);
    if (sc.rkt)
        rd_kafka_topic_destroy(sc.rkt);
    rd_kafka_consumer_close(sc.rk);
    rd_kafka_destroy(sc.rk);
    return rc;
}
