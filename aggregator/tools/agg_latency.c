/* agg_latency.c — kp-agg-latency: measures, against a running kline-aggregator, the time
 * from "a minute's last second committed (+ NOTIFY kline_checkpoint)" to "its 1m bar
 * committed" (the aggregator's NOTIFY kline_rollup), as the inserter would see it.
 *
 *   kp-agg-latency -d URL [--samples N] [--symbols M] [--start-ms MS]
 *
 * Per sample (one synthetic minute): one transaction with seconds 0..58 of M symbols and
 * their checkpoints (untimed), then one with second 59 (timed from its COMMIT returning).
 * Prints one line per sample and a summary line "latency_ms p50=.. p90=.. p99=.. max=..". */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>

#include "opt.h"
#include "pgx.h"

static int64_t lat_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One statement through the deadline driver (pgx, like the programs). 0 / -1 (said on stderr). */
static int lat_exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    char err[512];
    PGresult *r = pgx_query(c, sql, n, params, err, sizeof err);
    if (!r)
        fprintf(stderr, "kp-agg-latency: %s\n", err);
    PQclear(r);
    return r ? 0 : -1;
}

/* $1 symbols, $2 minute start (epoch s), $3 first second, $4 last second of the minute. */
/* Straight into kline_1s_lean, as the inserter writes (schema/012), the symbols'
 * ids registered on the way (this tool is the only writer). */
static const char lat_sql_rows[] =
    "INSERT INTO kline_1s_lean (symbol_id, open_time, open, high, low, close, volume,"
    " quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id,"
    " flags, event_ms)"
    " SELECT y.id, to_timestamp($2::bigint + e),"
    "  100, 101, 99, 100.5, 1, 100, 3, 0.5, 50, e * 10, 1, 1000"
    " FROM kp_symbol_ids(ARRAY(SELECT 'L' || lpad(s::text, 5, '0')"
    "                          FROM generate_series(1, $1::int) s)) y,"
    "  generate_series($3::int, $4::int) e";
static const char lat_sql_cps[] =
    "INSERT INTO checkpoint (symbol, first_open_time, last_open_time, row_count)"
    " SELECT 'L' || lpad(s::text, 5, '0'), to_timestamp($2::bigint + $3::int),"
    "  to_timestamp($2::bigint + $4::int), $4::int - $3::int + 1"
    " FROM generate_series(1, $1::int) s";

/* One inserter-like transaction: rows, checkpoints, NOTIFY, COMMIT. */
static int lat_batch(PGconn *c, int symbols, long long minute_s, int from, int to)
{
    char s_sym[16], s_min[24], s_from[8], s_to[8];
    snprintf(s_sym, sizeof s_sym, "%d", symbols);
    snprintf(s_min, sizeof s_min, "%lld", minute_s);
    snprintf(s_from, sizeof s_from, "%d", from);
    snprintf(s_to, sizeof s_to, "%d", to);
    const char *p[4] = { s_sym, s_min, s_from, s_to };
    if (lat_exec(c, "BEGIN", 0, NULL) < 0 || lat_exec(c, lat_sql_rows, 4, p) < 0)
        return -1;
    /* As the inserter: checkpoint ids in commit order. */
    char lock[64];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", PGX_LOCK_CHECKPOINT);
    if (lat_exec(c, lock, 0, NULL) < 0 ||
        lat_exec(c, lat_sql_cps, 4, p) < 0 || lat_exec(c, "NOTIFY " PGX_NOTIFY_CHANNEL, 0, NULL) < 0)
        return -1;
    return lat_exec(c, "COMMIT", 0, NULL);
}

/* Waits for "1m <ms>" on kline_rollup with ms >= want_ms. 0 ok, -1 timeout/error. */
static int lat_wait_bar(PGconn *c, long long want_ms, int timeout_ms)
{
    int64_t deadline = lat_now_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        if (!PQconsumeInput(c))
            return -1;
        PGnotify *n;
        int hit = 0;
        while ((n = PQnotifies(c)) != NULL) {
            long long ms = -1;
            if (sscanf(n->extra, "1m %lld", &ms) == 1 && ms >= want_ms)
                hit = 1;
            PQfreemem(n);
        }
        if (hit)
            return 0;
        int64_t left = (deadline - lat_now_us()) / 1000;
        if (left <= 0)
            return -1;
        struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
        poll(&pfd, 1, (int)left);
    }
}

static int lat_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct {
    const char *url;
    int samples, symbols;
    long long start_ms;
} lat_o;

static const kp_opt_t lat_opts[] = {
    { KP_OPT_STR, "database-url", 'd', "URL", "DATABASE_URL", NULL, "libpq URI or conninfo", .dest = &lat_o.url },
    { KP_OPT_INT, "samples", 'n', "N", NULL, "50", "synthetic minutes to time", KP_OPT_INT_DEST(lat_o.samples),
      .min = 1, .max = 100000 },
    { KP_OPT_INT, "symbols", 's', "M", NULL, "100", "symbols per minute", KP_OPT_INT_DEST(lat_o.symbols),
      .min = 1, .max = 100000 },
    /* any minute boundary the test data does not use */
    { KP_OPT_INT, "start-ms", 't', "MS", NULL, "1800000000000", "first minute, epoch ms on a minute boundary",
      KP_OPT_INT_DEST(lat_o.start_ms), .min = 0, .max = 4102444800000LL },
    { KP_OPT_END },
};

static const kp_opt_prog_t lat_prog = {
    .name = "kp-agg-latency",
    .summary = "last second of a minute committed → its 1m bar committed, against a running aggregator",
    .synopsis = "usage: kp-agg-latency -d URL [--samples N] [--symbols M] [--start-ms MS]\n",
    .epilog = "Exit codes: 0 measured, 1 database error or no bar within 30 s, 2 usage error.\n",
    .opts = lat_opts,
};

/* Times one synthetic minute: *ms from its last second's COMMIT to its bar's NOTIFY. 0 / -1. */
static int lat_sample(PGconn *w, PGconn *l, int i, double *ms)
{
    long long minute_s = lat_o.start_ms / 1000 + (long long)i * 60;
    if (lat_batch(w, lat_o.symbols, minute_s, 0, 58) < 0)
        return -1;
    int64_t t0 = lat_now_us();
    if (lat_batch(w, lat_o.symbols, minute_s, 59, 59) < 0)
        return -1;
    int64_t t1 = lat_now_us(); /* COMMIT returned: the inserter's view */
    if (lat_wait_bar(l, minute_s * 1000, 30000) < 0) {
        fprintf(stderr, "kp-agg-latency: no bar for minute %lld within 30 s\n", minute_s);
        return -1;
    }
    *ms = (double)(lat_now_us() - t1) / 1000.0;
    printf("sample %d: last second committed in %.1f ms, bar %.1f ms after commit\n", i,
           (double)(t1 - t0) / 1000.0, *ms);
    return 0;
}

static void lat_summary(double *lat, int got)
{
    if (got <= 0)
        return;
    qsort(lat, (size_t)got, sizeof *lat, lat_cmp);
#define Q(p) lat[(int)((p) * (got - 1) + 0.5)]
    printf("latency_ms samples=%d p50=%.1f p90=%.1f p99=%.1f max=%.1f\n", got, Q(0.5), Q(0.9),
           Q(0.99), lat[got - 1]);
#undef Q
}

int main(int argc, char **argv)
{
    char err[512];
    kp_opt_parse(&lat_prog, argc, argv, false);
    if (lat_o.start_ms % 60000)
        kp_opt_usage_error(&lat_prog, "--start-ms %lld is not on a minute", lat_o.start_ms);
    /* Both owned here (PQfinish at the end): w writes like an inserter, l LISTENs. */
    PGconn *w = pgx_connect(lat_o.url, 0, NULL, err, sizeof err);
    PGconn *l = w ? pgx_connect(lat_o.url, 0, NULL, err, sizeof err) : NULL;
    double *lat = calloc((size_t)lat_o.samples, sizeof *lat);
    int rc = 0, got = 0;
    if (!l)
        fprintf(stderr, "kp-agg-latency: connect: %s\n", err);
    if (!l || !lat || lat_exec(l, "LISTEN kline_rollup", 0, NULL) < 0)
        rc = 1;
    for (int i = 0; i < lat_o.samples && rc == 0; i++) {
        if (lat_sample(w, l, i, &lat[got]) < 0)
            rc = 1;
        else
            got++;
    }
    lat_summary(lat, got);
    free(lat);
    PQfinish(w);
    PQfinish(l);
    return rc;
}
