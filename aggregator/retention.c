/* retention.c — --retain: delete old rows in short transactions of at most retain_batch
 * rows (row locks only, never a table lock), oldest first, by primary-key range.
 *
 * A row is only deleted when nothing still needs it:
 *   kline_1s: not in a 1m bucket still pending and not covered by a checkpoint not yet
 *             consumed (per symbol), so every 1s row is rolled up before it goes;
 *   kline_1m: not inside a coarse bucket still pending (coarse bars are built from it);
 *   checkpoint: consumed and ending before the 1s retention horizon.
 * With --archive, the 1s rows about to go are archived first (archive.c), and the 1s
 * deletion is bounded by what that pass archived. */
#include "agg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "pgx.h"

/* %1$s table, %2$s per-symbol guard expression (a timestamptz or NULL) — both from fixed
 * strings. $1 name, $2 cut-off (epoch ms), $3 batch size, $4 last consumed checkpoint id. */
static const char agg_sql_retain_fmt[] =
    "WITH lim AS ("
    "  SELECT w.symbol, least(to_timestamp($2::bigint / 1000.0), %2$s) AS bound"
    "  FROM aggregator_watermark w WHERE w.name = $1"
    "), victims AS ("
    "  SELECT v.symbol, v.open_time FROM lim CROSS JOIN LATERAL ("
    "    SELECT k.symbol, k.open_time FROM %1$s k"
    "    WHERE k.symbol = lim.symbol AND k.open_time < lim.bound"
    "    ORDER BY k.open_time LIMIT $3::int) v"
    "  LIMIT $3::int"
    ")"
    "DELETE FROM %1$s k USING victims v WHERE k.symbol = v.symbol AND k.open_time = v.open_time";

static const char agg_guard_1s[] =
    "(SELECT min(p.bucket) FROM aggregator_pending p WHERE p.name = $1 AND p.interval_s = 60"
    "   AND p.symbol = w.symbol),"
    " (SELECT min(c.first_open_time) FROM checkpoint c WHERE c.id > $4::bigint"
    "   AND c.symbol = w.symbol)";
static const char agg_guard_1m[] =
    "(SELECT min(p.bucket) FROM aggregator_pending p WHERE p.name = $1 AND p.interval_s > 60"
    "   AND p.symbol = w.symbol)";

static const char agg_sql_retain_checkpoint[] =
    "DELETE FROM checkpoint WHERE id IN (SELECT id FROM checkpoint WHERE id <= $1::bigint"
    "  AND last_open_time < to_timestamp($2::bigint / 1000.0) ORDER BY id LIMIT $3::int)";

/* Runs one DELETE batch in its own (autocommit) transaction; returns rows deleted or -1. */
static long agg_retain_batch(PGconn *c, const char *sql, int n, const char *const *params,
                             const char *what, char *errbuf, size_t errlen)
{
    char err[512];
    PGresult *r = pgx_query(c, sql, n, params, err, sizeof err);
    if (!r) {
        snprintf(errbuf, errlen, "retention %s: %s", what, err);
        return -1;
    }
    long n_del = strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return n_del;
}

static int agg_last_consumed(PGconn *c, const struct agg_config *cfg, long long *id,
                             char *errbuf, size_t errlen)
{
    const char *params[1] = { cfg->name };
    char err[512];
    PGresult *r = pgx_query(c, "SELECT last_checkpoint_id FROM aggregator_progress WHERE name = $1",
                            1, params, err, sizeof err);
    if (!r) {
        snprintf(errbuf, errlen, "retention: progress: %s", err);
        return -1;
    }
    *id = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return 0;
}

/* Runs one batched DELETE until a batch comes back short or the budget (< 0: no limit) is
 * used up. Returns 0 done, 1 budget exhausted, -1 error. */
static int agg_retain_batches(PGconn *c, const char *sql, int np, const char *const *params,
                              const char *what, int batch, int *budget, char *errbuf, size_t errlen)
{
    for (;;) {
        if (*budget == 0)
            return 1;
        long n = agg_retain_batch(c, sql, np, params, what, errbuf, errlen);
        if (n < 0)
            return -1;
        if (*budget > 0)
            (*budget)--;
        atomic_fetch_add_explicit(&agg_stats.retention_deleted, n, memory_order_relaxed);
        if (n > 0)
            log_debug("retention: deleted %ld rows from %s", n, what);
        if (n < batch)
            return 0;
    }
}

/* What the deletions of one run may take: the last consumed checkpoint; with --archive,
 * for kline_1s, the archived bound and the checkpoint id the archive saw. */
struct agg_retain_bound {
    long long last_id;
    int archived;
    int64_t cut_1s;
    long long guard_id;
};

/* --archive: the 1s rows about to go are archived first (before any table is touched, so
 * a failed archive deletes nothing). 0 / -1. */
static int agg_retain_archive(PGconn *c, const struct agg_config *cfg, struct agg_retain_bound *b,
                              char *errbuf, size_t errlen)
{
    const struct agg_retain *rt = NULL;
    for (int i = 0; i < cfg->n_retain; i++)
        if (strcmp(cfg->retain[i].key, "1s") == 0)
            rt = &cfg->retain[i];
    if (!cfg->archive_dir || !rt)
        return 0;
    b->cut_1s = cfg_now_ms() - rt->keep_s * 1000;
    b->guard_id = b->last_id;
    if (agg_archive_before_retention(c, cfg, &b->cut_1s, &b->guard_id, errbuf, errlen) < 0)
        return -1;
    b->archived = 1;
    return 0;
}

/* Deletes from one table (and, after kline_1s, the checkpoints nothing needs any more)
 * until done or *budget batches are used. Returns 0 done, 1 budget exhausted, -1 error. */
static int agg_retain_table(PGconn *c, const struct agg_config *cfg, const struct agg_retain *rt,
                            const struct agg_retain_bound *b, int *budget, char *errbuf, size_t errlen)
{
    char sql[4096], s_cut[24], s_batch[16], s_last[24];
    const char *guard = strcmp(rt->key, "1s") == 0 ? agg_guard_1s
                      : strcmp(rt->key, "1m") == 0 ? agg_guard_1m : "NULL";
    int64_t cut = cfg_now_ms() - rt->keep_s * 1000;
    long long last_id = b->last_id;
    if (guard == agg_guard_1s && b->archived) {
        cut = cut < b->cut_1s ? cut : b->cut_1s;
        last_id = b->guard_id;
    }
    snprintf(sql, sizeof sql, agg_sql_retain_fmt, rt->table, guard);
    snprintf(s_cut, sizeof s_cut, "%lld", (long long)cut);
    snprintf(s_batch, sizeof s_batch, "%d", cfg->retain_batch);
    snprintf(s_last, sizeof s_last, "%lld", last_id);
    const char *params[4] = { cfg->name, s_cut, s_batch, s_last };
    /* Only the parameters the statement mentions may be sent. */
    int np = guard == agg_guard_1s ? 4 : 3;
    int rc = agg_retain_batches(c, sql, np, params, rt->table, cfg->retain_batch, budget, errbuf, errlen);
    if (rc != 0 || strcmp(rt->key, "1s") != 0)
        return rc;
    if (b->archived)
        agg_archive_retention_done();
    const char *cparams[3] = { s_last, s_cut, s_batch };
    return agg_retain_batches(c, agg_sql_retain_checkpoint, 3, cparams, "checkpoint", cfg->retain_batch,
                              budget, errbuf, errlen);
}

int agg_retention_run(PGconn *c, const struct agg_config *cfg, int max_batches,
                      char *errbuf, size_t errlen)
{
    char err[256];
    char sql[96];
    if (cfg->n_retain == 0)
        return 0;
    /* Retention may one day run from another program too; one at a time per database. */
    snprintf(sql, sizeof sql, "SELECT 1 WHERE pg_try_advisory_lock(%lld)", PGX_LOCK_RETENTION);
    PGresult *r = pgx_query(c, sql, 0, NULL, err, sizeof err);
    if (!r) {
        snprintf(errbuf, errlen, "retention lock: %s", err);
        return -1;
    }
    int got = PQntuples(r) == 1;
    PQclear(r);
    if (!got) {
        log_debug("retention: another process holds the retention lock; skipped");
        return 0;
    }
    int budget = max_batches > 0 ? max_batches : -1;
    struct agg_retain_bound b = { 0 };
    int rc = agg_last_consumed(c, cfg, &b.last_id, errbuf, errlen);
    if (rc == 0)
        rc = agg_retain_archive(c, cfg, &b, errbuf, errlen);
    for (int i = 0; rc == 0 && i < cfg->n_retain; i++)
        rc = agg_retain_table(c, cfg, &cfg->retain[i], &b, &budget, errbuf, errlen);
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", PGX_LOCK_RETENTION);
    if (!pgx_is_broken(c))
        pgx_exec(c, sql, err, sizeof err);
    return rc;
}
