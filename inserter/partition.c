/* partition.c — kline_1s has one partition per UTC hour (schema/010_partition.sql). Before a
 * batch is written, every hour it touches gets its partition, and so does the next wall
 * clock hour, so the partition for live data exists before its first second arrives and
 * no user ever creates one by hand.
 *
 * kline_1s_ensure() does the work in the database (one creator at a time, rows waiting in
 * kline_1s_default moved in). This file only remembers which hours it has already seen
 * ensured, so that a live batch costs no round trip at all. A row whose partition could
 * not be made still lands, in kline_1s_default, so a failure here never blocks a batch. */
#include "ins.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cfg.h"
#include "log.h"
#include "pgd.h"

#define INS_PART_KNOWN 64          /* hours remembered: live data needs 2, a replay more */
#define INS_PART_TEXT_MAX 24       /* one hour in the array literal: 20 digits + comma */

static int64_t ins_part_known[INS_PART_KNOWN];
static size_t ins_part_nknown, ins_part_next;

static bool ins_part_is_known(int64_t hour)
{
    for (size_t i = 0; i < ins_part_nknown; i++)
        if (ins_part_known[i] == hour)
            return true;
    return false;
}

static void ins_part_remember(int64_t hour)
{
    ins_part_known[ins_part_next] = hour;
    ins_part_next = (ins_part_next + 1) % INS_PART_KNOWN;
    if (ins_part_nknown < INS_PART_KNOWN)
        ins_part_nknown++;
}

static int ins_part_cmp(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

static int64_t ins_part_hour(int64_t ms)
{
    int64_t s = ms / 1000 - (ms % 1000 < 0);
    return s - ((s % 3600) + 3600) % 3600;
}

/* The distinct hours of the batch (and the next wall-clock hour) not yet known, sorted,
 * into hours[0..return). hours has room for b->nrows + 1. */
static size_t ins_part_unknown(const ins_batch_t *b, int64_t *hours)
{
    size_t n = 0, u = 0;
    for (size_t i = 0; i < b->nrows; i++)
        hours[n++] = ins_part_hour(b->rows[i].k.open_time);
    hours[n++] = ins_part_hour(cfg_now_ms()) + 3600;
    qsort(hours, n, sizeof *hours, ins_part_cmp);
    for (size_t i = 0; i < n; i++)
        if ((u == 0 || hours[i] != hours[u - 1]) && !ins_part_is_known(hours[i]))
            hours[u++] = hours[i];
    return u;
}

/* Sends the hours to kline_1s_ensure(). 0 done, -1 failed (errbuf). */
static int ins_part_send(PGconn *c, const int64_t *hours, size_t n, int64_t deadline,
                         char *errbuf, size_t errlen)
{
    char *lit = malloc(n * INS_PART_TEXT_MAX + 3), *p = lit;
    if (!lit)
        return snprintf(errbuf, errlen, "out of memory for partition hours"), -1;
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%" PRId64, i ? "," : "", hours[i]);
    *p++ = '}';
    *p = '\0';
    const char *params[1] = { lit };
    PGresult *r = pgd_query(c, "SELECT kline_1s_ensure($1::bigint[])", 1, params, deadline,
                            errbuf, errlen);
    free(lit);
    if (!r)
        return -1;
    int made = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (made > 0)
        log_info("kline_1s: created %d hourly partition%s", made, made == 1 ? "" : "s");
    return 0;
}

int ins_partition_ensure(PGconn *c, const ins_batch_t *b, int64_t deadline, char *errbuf,
                         size_t errlen)
{
    int64_t *hours = malloc((b->nrows + 1) * sizeof *hours);
    if (!hours)
        return snprintf(errbuf, errlen, "out of memory for partition hours"), -1;
    size_t n = ins_part_unknown(b, hours);
    char err[512];
    int rc = 0;
    if (n && ins_part_send(c, hours, n, deadline, err, sizeof err) < 0) {
        if (pgd_abandoned(c)) {
            snprintf(errbuf, errlen, "partitions: %s", err);
            rc = -1;
        } else {
            /* the rows still land, in kline_1s_default; the next batch tries again */
            log_warn("kline_1s partitions for this batch not created: %s", err);
            n = 0;
        }
    }
    for (size_t i = 0; i < n; i++)
        ins_part_remember(hours[i]);
    free(hours);
    return rc;
}
