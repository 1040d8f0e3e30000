/* e2e_probe.c — kp-e2e-probe: end-to-end latency samples from PostgreSQL's side, for
 * bench/bench_e2e.sh.
 *
 *   kp-e2e-probe -d URL --secs S [-o FILE]
 *
 * LISTENs on kline_checkpoint (the inserter NOTIFYs in every batch transaction) and
 * kline_rollup (the aggregator, in every transaction that wrote 1m bars). PostgreSQL
 * delivers a notification when the sending transaction commits, so the wall-clock
 * moment the probe reads one is that commit + local socket delivery (well under a
 * millisecond; the probe does nothing else while waiting).
 *
 *   a <ms>  per 1s row of a committed batch: notification time − the row's event_time
 *           (the exchange's E = its wall-clock send time). Rows without an event_time
 *           (REST backfill) are skipped.
 *   c <ms>  per 1m bar committed: notification time − the end of the bar's minute.
 *
 * One sample per line to FILE (default stdout); a summary line on stderr at the end.
 * The time stamp is taken when the notification is read, BEFORE the query that finds
 * the new rows: a batch that commits in between is stamped a little early (by at most
 * the time between reading and querying, microseconds), never late. */
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>

#define PROBE_MINUTES 64 /* minutes of bars tracked at once (a ring) */

static double probe_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int64_t probe_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static PGresult *probe_query(PGconn *c, const char *sql, const char *p1)
{
    const char *params[1] = { p1 };
    PGresult *r = PQexecParams(c, sql, p1 ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "kp-e2e-probe: %s", PQerrorMessage(c));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Rows of the checkpoints above *last_id: one "a" sample each; advances *last_id. */
static long probe_rows(PGconn *c, long long *last_id, double stamp, FILE *out)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", *last_id);
    PGresult *r = probe_query(c,
        "SELECT (SELECT max(id) FROM checkpoint WHERE id > $1::bigint),"
        " (extract(epoch FROM k.event_time) * 1000)::float8"
        " FROM checkpoint cp JOIN kline_1s k ON k.symbol = cp.symbol"
        "  AND k.open_time BETWEEN cp.first_open_time AND cp.last_open_time"
        " WHERE cp.id > $1::bigint AND k.event_time > 'epoch'::timestamptz", id);
    if (!r)
        return -1;
    long n = PQntuples(r);
    for (long i = 0; i < n; i++) {
        if (i == 0 && !PQgetisnull(r, 0, 0))
            *last_id = atoll(PQgetvalue(r, 0, 0));
        fprintf(out, "a %.3f\n", stamp - atof(PQgetvalue(r, i, 1)));
    }
    PQclear(r);
    if (n == 0) { /* checkpoints of REST rows only: still advance */
        r = probe_query(c, "SELECT coalesce(max(id), $1::bigint) FROM checkpoint", id);
        if (r) {
            *last_id = atoll(PQgetvalue(r, 0, 0));
            PQclear(r);
        }
    }
    return n;
}

/* 1m bars per minute seen so far: new ones since the last look get this stamp. */
static struct {
    long long minute_ms[PROBE_MINUTES];
    long seen[PROBE_MINUTES];
} probe_bars;

static long probe_bars_new(PGconn *c, double stamp, FILE *out)
{
    PGresult *r = probe_query(c,
        "SELECT (extract(epoch FROM open_time) * 1000)::bigint, count(*) FROM kline_1m"
        " WHERE open_time > now() - interval '30 minutes' GROUP BY 1", NULL);
    if (!r)
        return -1;
    long total = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        long long m = atoll(PQgetvalue(r, i, 0));
        long cnt = atol(PQgetvalue(r, i, 1));
        int slot = (int)((m / 60000) % PROBE_MINUTES);
        if (probe_bars.minute_ms[slot] != m) {
            probe_bars.minute_ms[slot] = m;
            probe_bars.seen[slot] = 0;
        }
        for (long k = probe_bars.seen[slot]; out && k < cnt; k++)
            fprintf(out, "c %.3f\n", stamp - (double)(m + 60000));
        if (cnt > probe_bars.seen[slot]) {
            total += cnt - probe_bars.seen[slot];
            probe_bars.seen[slot] = cnt;
        }
    }
    PQclear(r);
    return total;
}

int main(int argc, char **argv)
{
    const char *url = getenv("DATABASE_URL"), *outpath = NULL;
    int secs = 60;
    static const struct option opts[] = {
        { "database-url", required_argument, NULL, 'd' },
        { "secs", required_argument, NULL, 's' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "d:s:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': url = optarg; break;
        case 's': secs = atoi(optarg); break;
        case 'o': outpath = optarg; break;
        case 'h':
            printf("usage: kp-e2e-probe -d URL --secs S [-o FILE]\n");
            return 0;
        default:
            fprintf(stderr, "usage: kp-e2e-probe -d URL --secs S [-o FILE]\n");
            return 2;
        }
    }
    FILE *out = outpath ? fopen(outpath, "w") : stdout;
    if (!out) {
        perror(outpath);
        return 1;
    }
    PGconn *c = PQconnectdb(url ? url : "");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "kp-e2e-probe: %s", PQerrorMessage(c));
        return 1;
    }
    PGresult *r = probe_query(c, "LISTEN kline_checkpoint", NULL);
    if (r)
        PQclear(r);
    r = probe_query(c, "LISTEN kline_rollup", NULL);
    if (r)
        PQclear(r);
    /* start from what is there: only batches committed from now on are samples */
    long long last_id = 0;
    r = probe_query(c, "SELECT coalesce(max(id), 0) FROM checkpoint", NULL);
    if (!r)
        return 1;
    last_id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    probe_bars_new(c, 0, NULL); /* bars already there are not samples */

    long na = 0, nc = 0, nnotify = 0;
    int64_t end = probe_mono_ms() + (int64_t)secs * 1000;
    while (probe_mono_ms() < end) {
        struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
        int left = (int)(end - probe_mono_ms());
        if (poll(&pfd, 1, left > 0 ? left : 0) <= 0)
            continue;
        double stamp = probe_wall_ms();
        if (!PQconsumeInput(c)) {
            fprintf(stderr, "kp-e2e-probe: %s", PQerrorMessage(c));
            return 1;
        }
        int rows = 0, bars = 0;
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            rows |= !strcmp(n->relname, "kline_checkpoint");
            bars |= !strcmp(n->relname, "kline_rollup");
            nnotify++;
            PQfreemem(n);
        }
        if (rows) {
            long k = probe_rows(c, &last_id, stamp, out);
            na += k > 0 ? k : 0;
        }
        if (bars) {
            long k = probe_bars_new(c, stamp, out);
            nc += k > 0 ? k : 0;
        }
    }
    fprintf(stderr, "kp-e2e-probe: %ld notifications, %ld row samples, %ld bar samples\n", nnotify, na, nc);
    if (out != stdout)
        fclose(out);
    PQfinish(c);
    return 0;
}
