/* compact.c — --compact-after: rebuild the primary key of each hourly kline_1s partition
 * once, when its hour is over.
 *
 * Why: while an hour is live, 2,000 symbols append to 2,000 places of its B-tree. A page
 * that splits keeps its left half for ever, because nothing sorts before the newest
 * second of a symbol, so the live index ends about half full (~52 B per row instead of
 * ~30). A partition whose hour is past takes almost no writes, so one rebuild packs it
 * to the B-tree's fillfactor for the rest of its life. REINDEX CONCURRENTLY lets reads
 * and writes of that hour go on (a late row still lands). One partition per run bounds
 * the time a run spends here. A partition done is recorded in kline_1s_compacted. */
#include "agg.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "pgd.h"
#include "pgx.h"

#define AGG_COMPACT_TIMEOUT_MS (30 * 60 * 1000) /* one hour of 2,000 symbols: ~10-60 s */

/* The oldest hourly partition that ended at least `after` ($1, seconds) before now ($2,
 * epoch ms: the aggregator's clock, so that an accelerated test run with KP_TEST_CLOCK
 * compacts by its simulated time) and is not done. */
static const char agg_sql_next_compact[] =
    "SELECT p.name FROM kline_1s_partitions p"
    " WHERE p.from_time + interval '1 hour' + make_interval(secs => $1::bigint)"
    "       <= to_timestamp($2::bigint / 1000.0)"
    "   AND NOT EXISTS (SELECT 1 FROM kline_1s_compacted c WHERE c.name = p.name)"
    " ORDER BY p.from_time LIMIT 1";

/* A REINDEX CONCURRENTLY that was cut off leaves an invalid index (NAME_ccnew); it costs
 * every write to the partition until it is gone. */
static void agg_compact_clean(PGconn *c, const char *name)
{
    char sql[256], err[256];
    snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS \"%s_pkey_ccnew\"", name);
    if (pgx_exec(c, sql, err, sizeof err) < 0)
        log_warn("compact: %s: %s", sql, err);
}

static int agg_compact_one(PGconn *c, const char *name, char *errbuf, size_t errlen)
{
    char sql[256], err[512];
    const char *params[1] = { name };
    agg_compact_clean(c, name);
    snprintf(sql, sizeof sql, "REINDEX INDEX CONCURRENTLY \"%s_pkey\"", name);
    int64_t t0 = cfg_mono_ms();
    if (pgd_run(c, sql, pgd_deadline(AGG_COMPACT_TIMEOUT_MS), NULL, err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "compact %s: %s", name, err);
        if (!pgx_is_broken(c))
            agg_compact_clean(c, name);
        return -1;
    }
    PGresult *r = pgx_query(c, "INSERT INTO kline_1s_compacted (name) VALUES ($1) ON CONFLICT DO NOTHING",
                            1, params, err, sizeof err);
    if (!r)
        return snprintf(errbuf, errlen, "compact %s: %s", name, err), -1;
    PQclear(r);
    log_info("compact: rebuilt the primary key of %s in %lld ms", name, (long long)(cfg_mono_ms() - t0));
    atomic_fetch_add_explicit(&agg_stats.compacted, 1, memory_order_relaxed);
    return 0;
}

int agg_compact_run(PGconn *c, const struct agg_config *cfg, char *errbuf, size_t errlen)
{
    char s_after[24], s_now[24], err[512];
    if (cfg->compact_after_s <= 0)
        return 0;
    snprintf(s_after, sizeof s_after, "%lld", (long long)cfg->compact_after_s);
    snprintf(s_now, sizeof s_now, "%lld", (long long)cfg_now_ms());
    const char *params[2] = { s_after, s_now };
    PGresult *r = pgx_query(c, agg_sql_next_compact, 2, params, err, sizeof err);
    if (!r)
        return snprintf(errbuf, errlen, "compact: %s", err), -1;
    int rc = PQntuples(r) ? agg_compact_one(c, PQgetvalue(r, 0, 0), errbuf, errlen) : 0;
    PQclear(r);
    return rc;
}
