/* retention.c — --retain: old 1s data goes by dropping whole hourly partitions of
 * kline_1s (schema/010): no row is deleted one by one, so there are no dead tuples and no
 * vacuum work, and a day of 2,000 symbols goes in a few statements. Everything else
 * (the rollup tables, the compact checkpoints, and kline_1s_default / kline_1s_wide_default
 * / kline_1s_legacy, the partitions that are not hourly) is deleted in short transactions of at most
 * retain_batch rows, oldest first, by primary-key range.
 *
 * Data is only dropped when nothing still needs it:
 *   an hourly partition: wholly before the cut-off, before the oldest 1m bucket still
 *             pending (any symbol) and before the oldest checkpoint not yet consumed, so
 *             every 1s row is rolled up before it goes;
 *   legacy/default rows: the same, per symbol;
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

#define AGG_DROP_LOCK_TIMEOUT_MS 5000

/* %1$s table, %2$s per-symbol guard expression (a timestamptz or NULL), %3$s the table's
 * symbol key: symbol, or symbol_id for kline_1s_default (a kline_1s_lean partition) —
 * all from fixed strings. $1 name, $2 cut-off (epoch ms), $3 batch size, $4 last consumed
 * checkpoint id. */
static const char agg_sql_retain_fmt[] =
    "WITH lim AS ("
    "  SELECT w.symbol, y.id AS symbol_id, least(to_timestamp($2::bigint / 1000.0), %2$s) AS bound"
    "  FROM aggregator_watermark w LEFT JOIN kline_symbol y ON y.symbol = w.symbol WHERE w.name = $1"
    "), victims AS ("
    "  SELECT v.%3$s, v.open_time FROM lim CROSS JOIN LATERAL ("
    "    SELECT k.%3$s, k.open_time FROM %1$s k"
    "    WHERE k.%3$s = lim.%3$s AND k.open_time < lim.bound"
    "    ORDER BY k.open_time LIMIT $3::int) v"
    "  LIMIT $3::int"
    ")"
    "DELETE FROM %1$s k USING victims v WHERE k.%3$s = v.%3$s AND k.open_time = v.open_time";

static const char agg_guard_1s[] =
    "(SELECT min(p.bucket) FROM aggregator_pending p WHERE p.name = $1 AND p.interval_s = 60"
    "   AND p.symbol = w.symbol),"
    " (SELECT min(c.first_open_time) FROM checkpoint c WHERE c.id > $4::bigint"
    "   AND c.symbol = w.symbol)";
static const char agg_guard_1m[] =
    "(SELECT min(p.bucket) FROM aggregator_pending p WHERE p.name = $1 AND p.interval_s > 60"
    "   AND p.symbol = w.symbol)";

/* %s: checkpoint_batch or checkpoint_legacy. $1 last consumed id, $2 cut-off, $3 batch. */
static const char agg_sql_retain_checkpoint_fmt[] =
    "DELETE FROM %1$s WHERE id IN (SELECT id FROM %1$s WHERE id <= $1::bigint"
    "  AND last_open_time < to_timestamp($2::bigint / 1000.0) ORDER BY id LIMIT $3::int)"
    " AND last_open_time < to_timestamp($2::bigint / 1000.0)";

/* Hourly partitions that may go: ending at or before the cut-off ($1, epoch ms) and before
 * anything not yet rolled up: the oldest pending 1m bucket of this aggregator ($2 name)
 * and the oldest checkpoint after the last one it consumed ($3). */
static const char agg_sql_droppable[] =
    "SELECT name, parent FROM kline_1s_partitions WHERE from_time + interval '1 hour' <= least("
    "  to_timestamp($1::bigint / 1000.0),"
    "  (SELECT min(bucket) FROM aggregator_pending WHERE name = $2 AND interval_s = 60),"
    "  (SELECT min(first_open_time) FROM checkpoint_ids WHERE id > $3::bigint))"
    " ORDER BY from_time";

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

/* Standalone tables named like an hourly partition whose hour ended at or before the
 * cut-off ($1, epoch ms): partitions detached by a run that stopped before its DROP
 * (agg_drop_partition). A table detached by hand for a later hour is left alone. */
static const char agg_sql_detached[] =
    "SELECT c.relname FROM pg_class c"
    " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
    "   AND NOT c.relispartition AND c.relname ~ '^kline_1s_p[0-9]{10}$'"
    "   AND to_timestamp(substr(c.relname, 11), 'YYYYMMDDHH24')::timestamp AT TIME ZONE 'UTC'"
    "       + interval '1 hour' <= to_timestamp($1::bigint / 1000.0)"
    " ORDER BY 1";

/* Time spent by one run on partitions: detaching (the rows leave kline_1s; a lock on
 * kline_1s for a catalogue change) and dropping (the files go back to the file system,
 * which takes as long as the file system needs: ~0.2 s per GB on a disk mounted with
 * online discard, for one). */
struct agg_drop_times {
    int detached, dropped;
    int64_t detach_ms, drop_ms;
};

/* DROP TABLE of a partition already detached. Only the table itself is locked, so
 * releasing its files holds up no reader or writer of kline_1s. 0 / -1 (errbuf). */
static int agg_drop_detached(PGconn *c, const char *name, struct agg_drop_times *t,
                             char *errbuf, size_t errlen)
{
    char sql[160], err[512];
    int64_t t0 = cfg_mono_ms();
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"%s\"", name);
    if (pgx_exec(c, sql, err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "retention: drop %s: %s", name, err);
        return -1;
    }
    t->drop_ms += cfg_mono_ms() - t0;
    t->dropped++;
    return 0;
}

/* One partition: DETACH in its own short transaction, then DROP. A DROP of the attached
 * partition would hold an ACCESS EXCLUSIVE lock on kline_1s until its files were
 * released; the DETACH holds it only for the catalogue change. lock_timeout keeps a long
 * reader from stalling every writer queued behind the lock: the partition then goes in a
 * later run. A stop between the two steps leaves a detached table, which the next run
 * drops (agg_sql_detached). 1 dropped, 0 skipped, -1 error. */
static int agg_drop_partition(PGconn *c, const char *name, const char *parent,
                              struct agg_drop_times *t, char *errbuf, size_t errlen)
{
    char sql[256], err[512];
    int64_t t0 = cfg_mono_ms();
    snprintf(sql, sizeof sql, "BEGIN; SET LOCAL lock_timeout = '%d ms';"
             " ALTER TABLE %s DETACH PARTITION \"%s\"; COMMIT", AGG_DROP_LOCK_TIMEOUT_MS, parent,
             name);
    if (pgx_exec(c, sql, err, sizeof err) < 0) {
        if (pgx_is_broken(c)) {
            snprintf(errbuf, errlen, "retention: detach %s: %s", name, err);
            return -1;
        }
        pgx_exec(c, "ROLLBACK", err, sizeof err);
        log_warn("retention: partition %s not dropped this time: %s", name, err);
        return 0;
    }
    t->detach_ms += cfg_mono_ms() - t0;
    t->detached++;
    if (agg_drop_detached(c, name, t, errbuf, errlen) < 0)
        return -1;
    log_info("retention: dropped partition %s", name);
    return 1;
}

/* Drops what a stopped run detached but did not drop. 0 / -1. */
static int agg_drop_leftovers(PGconn *c, const char *s_cut, struct agg_drop_times *t,
                              char *errbuf, size_t errlen)
{
    char err[512];
    const char *params[1] = { s_cut };
    PGresult *r = pgx_query(c, agg_sql_detached, 1, params, err, sizeof err);
    if (!r) {
        snprintf(errbuf, errlen, "retention: detached partitions: %s", err);
        return -1;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        log_info("retention: dropping %s, detached by an earlier run", PQgetvalue(r, i, 0));
        rc = agg_drop_detached(c, PQgetvalue(r, i, 0), t, errbuf, errlen);
    }
    PQclear(r);
    return rc;
}

/* Drops every hourly partition of kline_1s that nothing needs any more (agg_sql_droppable). */
static int agg_retain_partitions(PGconn *c, const struct agg_config *cfg, const char *s_cut,
                                 const char *s_last, char *errbuf, size_t errlen)
{
    char err[512];
    struct agg_drop_times t = { 0 };
    if (agg_drop_leftovers(c, s_cut, &t, errbuf, errlen) < 0)
        return -1;
    const char *params[3] = { s_cut, cfg->name, s_last };
    PGresult *r = pgx_query(c, agg_sql_droppable, 3, params, err, sizeof err);
    if (!r) {
        snprintf(errbuf, errlen, "retention: partitions: %s", err);
        return -1;
    }
    int rc = 0;
    for (int i = 0; rc >= 0 && i < PQntuples(r); i++) {
        rc = agg_drop_partition(c, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), &t, errbuf, errlen);
        if (rc > 0)
            atomic_fetch_add_explicit(&agg_stats.retention_partitions, 1, memory_order_relaxed);
    }
    PQclear(r);
    if (t.dropped)
        log_info("retention: %d partition%s detached in %lld ms (rows gone), %d dropped in %lld ms"
                 " (files released)", t.detached, t.detached == 1 ? "" : "s", (long long)t.detach_ms,
                 t.dropped, (long long)t.drop_ms);
    return rc < 0 ? -1 : 0;
}

/* Row by row from one table with its guard. Returns 0 done, 1 budget exhausted, -1 error. */
static int agg_retain_rows(PGconn *c, const struct agg_config *cfg, const char *table,
                           const char *guard, const char *const *params, int *budget,
                           char *errbuf, size_t errlen)
{
    char sql[4096];
    /* kline_1s_default is the lean parent's: the symbol is its id there */
    const char *key = strcmp(table, "kline_1s_default") == 0 ? "symbol_id" : "symbol";
    snprintf(sql, sizeof sql, agg_sql_retain_fmt, table, guard, key);
    /* Only the parameters the statement mentions may be sent. */
    int np = guard == agg_guard_1s ? 4 : 3;
    return agg_retain_batches(c, sql, np, params, table, cfg->retain_batch, budget, errbuf, errlen);
}

/* kline_1s: the hourly partitions, then the rows of the two other partitions, then the
 * consumed checkpoints. params: name, cut-off, batch, last consumed id. */
static int agg_retain_1s(PGconn *c, const struct agg_config *cfg, const char *const *params,
                         int archived, int *budget, char *errbuf, size_t errlen)
{
    static const char *const rowwise[] = { "kline_1s_default", "kline_1s_wide_default",
                                           "kline_1s_legacy" };
    static const char *const cptables[] = { "checkpoint_batch", "checkpoint_legacy" };
    int rc = agg_retain_partitions(c, cfg, params[1], params[3], errbuf, errlen);
    for (size_t i = 0; rc == 0 && i < sizeof rowwise / sizeof rowwise[0]; i++)
        if (pgx_relation_exists(c, rowwise[i]) == 1)
            rc = agg_retain_rows(c, cfg, rowwise[i], agg_guard_1s, params, budget, errbuf, errlen);
    if (rc == 0 && archived)
        agg_archive_retention_done();
    const char *cparams[3] = { params[3], params[1], params[2] };
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        char sql[512];
        snprintf(sql, sizeof sql, agg_sql_retain_checkpoint_fmt, cptables[i]);
        rc = agg_retain_batches(c, sql, 3, cparams, cptables[i], cfg->retain_batch, budget,
                                errbuf, errlen);
    }
    return rc;
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

/* One --retain rule until done or *budget batches are used. 0 done, 1 budget, -1 error. */
static int agg_retain_table(PGconn *c, const struct agg_config *cfg, const struct agg_retain *rt,
                            const struct agg_retain_bound *b, int *budget, char *errbuf, size_t errlen)
{
    char s_cut[24], s_batch[16], s_last[24];
    bool is_1s = strcmp(rt->key, "1s") == 0;
    int64_t cut = cfg_now_ms() - rt->keep_s * 1000;
    long long last_id = b->last_id;
    if (is_1s && b->archived) { /* only what the archive pass wrote out may go */
        cut = cut < b->cut_1s ? cut : b->cut_1s;
        last_id = b->guard_id;
    }
    snprintf(s_cut, sizeof s_cut, "%lld", (long long)cut);
    snprintf(s_batch, sizeof s_batch, "%d", cfg->retain_batch);
    snprintf(s_last, sizeof s_last, "%lld", last_id);
    const char *params[4] = { cfg->name, s_cut, s_batch, s_last };
    if (is_1s)
        return agg_retain_1s(c, cfg, params, b->archived, budget, errbuf, errlen);
    const char *guard = strcmp(rt->key, "1m") == 0 ? agg_guard_1m : "NULL";
    return agg_retain_rows(c, cfg, rt->table, guard, params, budget, errbuf, errlen);
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
