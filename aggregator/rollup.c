/* rollup.c — one aggregator transaction, all set-based SQL:
 *   1. lock our progress row, read last_checkpoint_id;
 *   2. consume the next checkpoints: raise per-symbol watermarks, turn each checkpoint's
 *      [first_open_time, last_open_time] into pending buckets of every interval, report
 *      checkpoints that do not match kline_1s;
 *   3. per interval, ascending: take the pending buckets whose symbol's watermark reached
 *      the bucket's last second, delete them from pending, aggregate their rows (1m from
 *      kline_1s by PK range scans; coarser from kline_1m) and upsert the bars;
 *   4. advance progress, NOTIFY kline_rollup, COMMIT.
 * Everything is in one transaction, so a crash at any point loses nothing and doubles
 * nothing: the next run starts from the same progress row. */
#include "agg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgx.h"

#define AGG_BAD_LOG_MAX 20 /* bad checkpoints logged one by one per transaction */
#define AGG_SPAN_MAX "7 days" /* checkpoint ranges longer than this: buckets from rows */
#define AGG_GAP_MAX "1 day" /* gaps between checkpoints up to this long become pending buckets */
#define AGG_INCOMPLETE_LOG_MAX 20 /* incomplete bars logged one by one per interval per transaction */
#define AGG_STR_(x) #x
#define AGG_STR(x) AGG_STR_(x)

/* Runs a parameterised statement. Returns the result (caller PQclear()s it) or NULL with
 * the server's message in errbuf. */
static PGresult *agg_query(PGconn *c, const char *what, const char *sql, int n,
                           const char *const *params, char *errbuf, size_t errlen)
{
    char err[512];
    PGresult *r = pgx_query(c, sql, n, params, err, sizeof err); /* bounded: --pg-timeout-ms */
    if (!r)
        snprintf(errbuf, errlen, "%s: %s", what, err);
    return r;
}

/* A statement whose rows (if any) are not needed: 0, or -1 as agg_query. */
static int agg_command(PGconn *c, const char *what, const char *sql, int n,
                       const char *const *params, char *errbuf, size_t errlen)
{
    PGresult *r = agg_query(c, what, sql, n, params, errbuf, errlen);
    PQclear(r);
    return r ? 0 : -1;
}

int agg_session_init(PGconn *c, const struct agg_config *cfg, char *errbuf, size_t errlen)
{
    char err[512];
    /* JIT compilation costs ~0.5 s per statement here and our statements are index
     * nested loops over few rows; it only ever makes a run slower. */
    if (pgx_exec(c, "SET jit = off", err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "SET jit: %s", err);
        return -1;
    }
    if (!cfg->once && cfg->listen &&
        pgx_exec(c, "LISTEN " PGX_NOTIFY_CHANNEL, err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "LISTEN %s: %s", PGX_NOTIFY_CHANNEL, err);
        return -1;
    }
    return 0;
}

static const char agg_sql_consume[] =
    "WITH cp0 AS ("
    "  SELECT id, symbol, first_open_time AS f, last_open_time AS l, row_count"
    /* The view has one row per symbol; a compact checkpoint (one id, many symbols) is
     * taken whole: up to the id at which the count of symbol rows reaches $3, counted
     * from the bitmaps (checkpoint_ids) in id order, so nothing is expanded or sorted. */
    "  FROM checkpoint WHERE id > $2::bigint AND id <= coalesce((SELECT id FROM"
    "   (SELECT id, sum(symbols) OVER (ORDER BY id) AS upto FROM checkpoint_ids"
    "    WHERE id > $2::bigint) x WHERE upto >= $3::int LIMIT 1), 9223372036854775807)"
    "), cp AS ("
    /* s: where this checkpoint's buckets start. Normally f; but when the symbol's data had
     * only reached prev (its watermark, or an earlier checkpoint in this batch) and this
     * one starts later, the seconds in between were lost upstream: their buckets become
     * pending too, so that a minute lost as a whole is judged (and reported) like any
     * other incomplete minute instead of silently having no bar. */
    "  SELECT c.*, CASE WHEN c.prev + interval '1 s' < c.f AND c.f - c.prev <= interval '" AGG_GAP_MAX "'"
    "              THEN c.prev + interval '1 s' ELSE c.f END AS s"
    "  FROM (SELECT cp0.*, CASE WHEN cp0.f <= cp0.l THEN greatest(w.watermark,"
    "          max(cp0.l) FILTER (WHERE cp0.f <= cp0.l) OVER (PARTITION BY cp0.symbol ORDER BY cp0.id"
    "          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) END AS prev"
    "        FROM cp0 LEFT JOIN aggregator_watermark w ON w.name = $1 AND w.symbol = cp0.symbol) c"
    "), wm AS ("
    "  INSERT INTO aggregator_watermark AS w (name, symbol, watermark, first_open_time)"
    "  SELECT $1, symbol, max(l), min(f) FROM cp WHERE f <= l GROUP BY symbol"
    "  ON CONFLICT (name, symbol) DO UPDATE"
    "  SET watermark = greatest(w.watermark, excluded.watermark), updated_at = now(),"
    "      first_open_time = least(coalesce(w.first_open_time, '-infinity'), excluded.first_open_time)"
    "), touched AS ("
    "  SELECT $1::text AS name, iv AS interval_s, cp.symbol, g AS bucket"
    "  FROM cp, unnest($4::int[]) iv,"
    "       generate_series(date_bin(make_interval(secs => iv), cp.s, timestamptz 'epoch'),"
    "                       date_bin(make_interval(secs => iv), cp.l, timestamptz 'epoch'),"
    "                       make_interval(secs => iv)) g"
    "  WHERE cp.f <= cp.l AND cp.l - cp.s <= interval '" AGG_SPAN_MAX "'"
    /* A batch spanning more than that (a replay, or a corrupt checkpoint) would make
     * millions of empty buckets; take the buckets of the rows that exist instead. */
    "  UNION"
    "  SELECT $1, iv, cp.symbol, date_bin(make_interval(secs => iv), k.open_time, timestamptz 'epoch')"
    "  FROM cp JOIN kline_1s k ON k.symbol = cp.symbol AND k.open_time BETWEEN cp.f AND cp.l,"
    "       unnest($4::int[]) iv"
    "  WHERE cp.l - cp.s > interval '" AGG_SPAN_MAX "'"
    "), pend AS ("
    "  INSERT INTO aggregator_pending (name, interval_s, symbol, bucket) SELECT * FROM touched"
    "  ON CONFLICT DO NOTHING"
    "), unhold AS ("
    /* New rows in a held (incomplete) bucket: judge it again at once. Separate from the
     * insert, so that the common case (the bucket of the current minute, already
     * pending) stays a plain DO NOTHING, without a row lock per checkpoint. */
    /* Per touched bucket one probe of the partial index of held buckets (usually empty),
     * by tid like the rollup's DELETE: no join order for the planner to misjudge. */
    "  UPDATE aggregator_pending p SET held = false WHERE p.ctid = ANY (ARRAY("
    "    SELECT h.tid FROM touched t CROSS JOIN LATERAL (SELECT q.ctid AS tid FROM aggregator_pending q"
    "      WHERE q.held AND q.name = t.name AND q.symbol = t.symbol AND q.interval_s = t.interval_s"
    "        AND q.bucket = t.bucket) h))"
    "), chk AS ("
    "  SELECT cp.*, n.found,"
    "    CASE WHEN cp.f > cp.l THEN 'first_open_time is after last_open_time'"
    "         WHEN cp.row_count < 0 THEN 'negative row_count'"
    "         WHEN n.found < cp.row_count THEN 'row_count ' || cp.row_count || ' but only '"
    "              || n.found || ' rows in kline_1s between first and last open_time'"
    "    END AS reason"
    "  FROM cp CROSS JOIN LATERAL (SELECT count(*) AS found FROM kline_1s k"
    "       WHERE k.symbol = cp.symbol AND k.open_time BETWEEN cp.f AND cp.l) n"
    "), rej AS ("
    "  INSERT INTO rejected (raw, reason, origin, program)"
    "  SELECT convert_to(json_build_object('id', id, 'symbol', symbol, 'first_open_time', f,"
    "           'last_open_time', l, 'row_count', row_count, 'found', found)::text, 'UTF8'),"
    "         'bad checkpoint: ' || reason, 'checkpoint:' || id, '" AGG_PROG "'"
    "  FROM chk WHERE reason IS NOT NULL"
    ")"
    "SELECT id, symbol, reason FROM chk ORDER BY id";

/* The shared shape of every rollup. Splices (all from the fixed agg_intervals list, never
 * user text): %1$s target table, %2$s source table, %3$s row-count expression, %4$s extra
 * readiness condition. $1 name, $2 interval seconds, $3 bucket limit, $4 incomplete grace
 * seconds.
 *
 * Bar rules (= Binance's 1m kline built from trades): OHLC and trade ids come only from
 * source rows WITH trades, since a zero-trade second repeats the previous close as its
 * OHLC and would distort high/low; sums run over all rows (zero-trade rows add 0). A
 * bucket without any trade takes the close of its last row — the previous close, which
 * the zero-trade rows carry — as O=H=L=C, with trade ids -1. A bucket with no rows at
 * all (exchange maintenance) writes no bar.
 *
 * Completeness: a bucket is incomplete when it has fewer 1s rows than seconds `expected`
 * (all of them, or from the symbol's first second on for the bucket where its data
 * begins). An incomplete bucket is held (stays pending, held = true, no bar) until the
 * symbol's watermark is $4 seconds past the bucket's last second (`grace_over`); then
 * the bar is written from the rows that exist and reported in incomplete_bar. A bucket
 * judged complete resolves its report, if it has one. A bucket with no 1s rows whose bar
 * came from elsewhere (source <> 'agg', e.g. REST 1m rows) is not judged. */
static const char agg_sql_rollup_fmt[] =
    "WITH ready AS ("
    "  SELECT p.ctid AS tid, p.symbol, p.bucket,"
    "    p.bucket <= w.watermark - make_interval(secs => $2::int - 1 + $4::int) AS grace_over,"
    "    greatest(p.bucket, coalesce(w.first_open_time, '-infinity')) AS from_t"
    "  FROM aggregator_watermark w"
    "  JOIN aggregator_pending p ON p.name = w.name AND p.interval_s = $2::int"
    "       AND p.symbol = w.symbol AND p.bucket <= w.watermark - make_interval(secs => $2::int - 1)"
    "  WHERE w.name = $1 %4$s"
    /* A held bucket is not read again before its grace is over: otherwise held buckets,
     * oldest first, would fill every batch and starve the rest. */
    "    AND (NOT p.held OR p.bucket <= w.watermark - make_interval(secs => $2::int - 1 + $4::int))"
    "  ORDER BY p.bucket LIMIT $3::int"
    "), bars AS ("
    "  SELECT r.tid, r.symbol, r.bucket, r.grace_over,"
    "    ceil(extract(epoch FROM r.bucket + make_interval(secs => $2::int) - r.from_t))::int AS expected,"
    "    a.* FROM ready r CROSS JOIN LATERAL ("
    "    SELECT coalesce(%3$s, 0) AS n_rows,"
    "      (array_agg(k.open ORDER BY k.open_time) FILTER (WHERE k.trades > 0))[1] AS t_open,"
    "      max(k.high) FILTER (WHERE k.trades > 0) AS t_high,"
    "      min(k.low) FILTER (WHERE k.trades > 0) AS t_low,"
    "      (array_agg(k.close ORDER BY k.open_time DESC) FILTER (WHERE k.trades > 0))[1] AS t_close,"
    "      (array_agg(k.close ORDER BY k.open_time DESC))[1] AS last_close,"
    "      sum(k.volume) AS volume, sum(k.quote_volume) AS quote_volume, sum(k.trades) AS trades,"
    "      sum(k.taker_buy_volume) AS tbv, sum(k.taker_buy_quote_volume) AS tbqv,"
    "      (array_agg(k.first_trade_id ORDER BY k.open_time) FILTER (WHERE k.trades > 0))[1] AS ftid,"
    "      (array_agg(k.last_trade_id ORDER BY k.open_time DESC) FILTER (WHERE k.trades > 0))[1] AS ltid,"
    "      max(k.event_time) AS ev"
    "    FROM %2$s k WHERE k.symbol = r.symbol AND k.open_time >= r.bucket"
    "      AND k.open_time < r.bucket + make_interval(secs => $2::int)"
    "  ) a"
    "), judged AS ("
    "  SELECT b.*, CASE WHEN b.n_rows >= b.expected THEN false WHEN b.n_rows > 0 THEN true"
    "    ELSE NOT EXISTS (SELECT 1 FROM %1$s t WHERE t.symbol = b.symbol AND t.open_time = b.bucket"
    "                     AND t.source <> 'agg') END AS incomplete"
    "  FROM bars b"
    "), fin AS ("
    "  SELECT * FROM judged WHERE NOT incomplete OR grace_over"
    "), done AS ("
    /* By tid, not by joining on the key: the planner's row estimates for a table filled
     * earlier in this transaction are useless, and a misjudged join here went quadratic. */
    "  DELETE FROM aggregator_pending p WHERE p.ctid = ANY (ARRAY(SELECT tid FROM fin))"
    "  RETURNING 1"
    "), hold AS ("
    "  UPDATE aggregator_pending p SET held = true"
    "  WHERE p.ctid = ANY (ARRAY(SELECT tid FROM judged WHERE incomplete AND NOT grace_over))"
    "  RETURNING 1"
    "), up AS ("
    "  INSERT INTO %1$s AS t (symbol, open_time, close_time, open, high, low, close, volume,"
    "    quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id,"
    "    last_trade_id, closed, event_time, source, ingested_at, row_count)"
    "  SELECT symbol, bucket, bucket + make_interval(secs => $2::int) - interval '1 ms',"
    "    coalesce(t_open, last_close), coalesce(t_high, last_close), coalesce(t_low, last_close),"
    "    coalesce(t_close, last_close), volume, quote_volume, trades, tbv, tbqv,"
    "    coalesce(ftid, -1), coalesce(ltid, -1), true, ev, 'agg', clock_timestamp(), n_rows"
    "  FROM fin WHERE n_rows > 0"
    "  ON CONFLICT (symbol, open_time) DO UPDATE SET"
    "    close_time = excluded.close_time, open = excluded.open, high = excluded.high,"
    "    low = excluded.low, close = excluded.close, volume = excluded.volume,"
    "    quote_volume = excluded.quote_volume, trades = excluded.trades,"
    "    taker_buy_volume = excluded.taker_buy_volume,"
    "    taker_buy_quote_volume = excluded.taker_buy_quote_volume,"
    "    first_trade_id = excluded.first_trade_id, last_trade_id = excluded.last_trade_id,"
    "    closed = excluded.closed, event_time = excluded.event_time, source = excluded.source,"
    "    ingested_at = excluded.ingested_at, row_count = excluded.row_count"
    /* Re-running over unchanged data rewrites nothing (no dead tuples, ingested_at kept). */
    "  WHERE (t.close_time, t.open, t.high, t.low, t.close, t.volume, t.quote_volume, t.trades,"
    "         t.taker_buy_volume, t.taker_buy_quote_volume, t.first_trade_id, t.last_trade_id,"
    "         t.closed, t.event_time, t.source, t.row_count) IS DISTINCT FROM"
    "        (excluded.close_time, excluded.open, excluded.high, excluded.low, excluded.close,"
    "         excluded.volume, excluded.quote_volume, excluded.trades, excluded.taker_buy_volume,"
    "         excluded.taker_buy_quote_volume, excluded.first_trade_id, excluded.last_trade_id,"
    "         excluded.closed, excluded.event_time, excluded.source, excluded.row_count)"
    "  RETURNING t.open_time"
    "), rep AS ("
    /* Reported once per state: judging the same incomplete bar again (a re-run, a late
     * row that still leaves it short) changes nothing unless its count changed. */
    "  INSERT INTO incomplete_bar AS i (interval_s, symbol, open_time, row_count, expected)"
    "  SELECT $2::int, symbol, bucket, n_rows, expected FROM fin WHERE incomplete"
    "  ON CONFLICT (interval_s, symbol, open_time) DO UPDATE SET row_count = excluded.row_count,"
    "    expected = excluded.expected, updated_at = now(), resolved_at = NULL"
    "  WHERE (i.row_count, i.expected, i.resolved_at IS NULL) IS DISTINCT FROM"
    "        (excluded.row_count, excluded.expected, true)"
    "  RETURNING i.symbol, i.open_time, i.row_count, i.expected"
    "), fixed AS ("
    /* A per-bar probe of the primary key (LATERAL), whatever the table's size. */
    "  UPDATE incomplete_bar i SET resolved_at = now(), updated_at = now(), row_count = x.n_rows"
    "  FROM (SELECT f.n_rows, o.tid FROM fin f CROSS JOIN LATERAL (SELECT ctid AS tid FROM incomplete_bar"
    "          WHERE interval_s = $2::int AND symbol = f.symbol AND open_time = f.bucket"
    "            AND resolved_at IS NULL) o WHERE NOT f.incomplete) x"
    "  WHERE i.ctid = x.tid"
    "  RETURNING 1"
    ")"
    "SELECT (SELECT count(*) FROM ready), (SELECT count(*) FROM done), (SELECT count(*) FROM up),"
    "       (SELECT (extract(epoch FROM max(open_time)) * 1000)::bigint FROM up),"
    "       (SELECT count(*) FROM hold), (SELECT count(*) FROM rep), (SELECT count(*) FROM fixed),"
    "       (SELECT string_agg(symbol || ' ' || to_char(open_time AT TIME ZONE 'UTC',"
    "                 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || ' ' || row_count || ' ' || expected, chr(10))"
    "        FROM (SELECT * FROM rep ORDER BY open_time, symbol LIMIT " AGG_STR(AGG_INCOMPLETE_LOG_MAX) ") l)";

/* A coarse bucket also waits for every 1m bucket inside it, which a 1m batch limit may
 * have left for the next transaction. OFFSET 0 keeps this a per-row probe of the pending
 * PK (all four key columns); as an anti-join the planner, misled by the row estimates of
 * a table changed in this transaction, scanned every 1m bucket once per coarse bucket. */
static const char agg_sql_coarse_ready[] =
    "AND NOT EXISTS (SELECT 1 FROM aggregator_pending f WHERE f.name = $1 AND f.interval_s = 60"
    "   AND f.symbol = p.symbol AND f.bucket >= p.bucket"
    "   AND f.bucket < p.bucket + make_interval(secs => $2::int) OFFSET 0)";

/* The configured interval lengths as a PostgreSQL int[] literal: "{60,300}". */
static void agg_interval_array(const struct agg_config *cfg, char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "{");
    for (int i = 0; i < cfg->n_iv && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%d", i ? "," : "", cfg->iv[i]->seconds);
    if (o < len)
        snprintf(out + o, len - o, "}");
}

static int agg_consume(PGconn *c, const struct agg_config *cfg, long long last_id,
                       long long *new_last, struct agg_tx_result *res,
                       char *errbuf, size_t errlen)
{
    char s_last[24], s_lim[16], s_ivs[64];
    snprintf(s_last, sizeof s_last, "%lld", last_id);
    snprintf(s_lim, sizeof s_lim, "%d", cfg->batch_checkpoints);
    agg_interval_array(cfg, s_ivs, sizeof s_ivs);
    const char *params[4] = { cfg->name, s_last, s_lim, s_ivs };
    PGresult *r = agg_query(c, "consume checkpoints", agg_sql_consume, 4, params, errbuf, errlen);
    if (!r)
        return -1;
    int n = PQntuples(r);
    *new_last = last_id;
    for (int i = 0; i < n; i++) {
        long long id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (id > *new_last)
            *new_last = id;
        if (PQgetisnull(r, i, 2))
            continue;
        if (res->bad_checkpoints++ < AGG_BAD_LOG_MAX)
            log_warn("bad state: checkpoint %lld (%s): %s; rolled up from the rows that exist, "
                     "recorded in table rejected", id, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    }
    if (res->bad_checkpoints > AGG_BAD_LOG_MAX)
        log_warn("bad state: %ld more bad checkpoints in this batch (see table rejected)",
                 res->bad_checkpoints - AGG_BAD_LOG_MAX);
    res->checkpoints = n;
    if (n >= cfg->batch_checkpoints)
        res->more = 1;
    PQclear(r);
    return 0;
}

/* Logs the incomplete bars of one statement ("SYMBOL OPEN_TIME ROWS EXPECTED" lines,
 * at most AGG_INCOMPLETE_LOG_MAX of them) and a summary of the rest. */
static void agg_log_incomplete(const struct agg_interval *iv, const char *list, long reported)
{
    char sym[64], ts[32];
    int rows, expected;
    long logged = 0;
    for (const char *p = list; p && *p; logged++) {
        if (sscanf(p, "%63s %31s %d %d", sym, ts, &rows, &expected) != 4)
            break;
        if (rows > 0)
            log_warn("incomplete bar: %s %s %s has %d of %d seconds (%d missing); written with "
                     "row_count %d, recorded in table incomplete_bar", sym, iv->name, ts, rows,
                     expected, expected - rows, rows);
        else
            log_warn("incomplete bar: %s %s %s has none of its %d seconds; no bar written, "
                     "recorded in table incomplete_bar", sym, iv->name, ts, expected);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (reported > logged)
        log_warn("incomplete bar: %ld more incomplete %s bars in this transaction (see table "
                 "incomplete_bar)", reported - logged, iv->name);
}

/* Reads the one row of an interval's rollup statement into res, logs what it reported;
 * returns how many buckets it examined. */
static long agg_rollup_result(const PGresult *r, const struct agg_interval *iv, struct agg_tx_result *res)
{
    int k = iv->index;
    long examined = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    res->buckets[k] = strtol(PQgetvalue(r, 0, 1), NULL, 10);
    res->bars[k] = strtol(PQgetvalue(r, 0, 2), NULL, 10);
    if (iv->seconds == 60 && !PQgetisnull(r, 0, 3))
        res->newest_1m_ms = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    res->held[k] = strtol(PQgetvalue(r, 0, 4), NULL, 10);
    res->incomplete[k] = strtol(PQgetvalue(r, 0, 5), NULL, 10);
    res->resolved[k] = strtol(PQgetvalue(r, 0, 6), NULL, 10);
    if (res->incomplete[k])
        agg_log_incomplete(iv, PQgetisnull(r, 0, 7) ? NULL : PQgetvalue(r, 0, 7), res->incomplete[k]);
    if (res->resolved[k])
        log_info("%ld incomplete %s bars are complete now (late seconds arrived): rewritten, "
                 "marked resolved in table incomplete_bar", res->resolved[k], iv->name);
    return examined;
}

static int agg_rollup_interval(PGconn *c, const struct agg_config *cfg,
                               const struct agg_interval *iv, struct agg_tx_result *res,
                               char *errbuf, size_t errlen)
{
    char sql[12288], s_iv[16], s_lim[16], s_grace[24], what[64];
    int fine = iv->seconds == 60;
    int n = snprintf(sql, sizeof sql, agg_sql_rollup_fmt, iv->table,
                     fine ? "kline_1s" : "kline_1m",
                     fine ? "count(*)" : "sum(k.row_count)",
                     fine ? "" : agg_sql_coarse_ready);
    if (n < 0 || (size_t)n >= sizeof sql) {
        snprintf(errbuf, errlen, "rollup statement too long");
        return -1;
    }
    snprintf(s_iv, sizeof s_iv, "%d", iv->seconds);
    snprintf(s_lim, sizeof s_lim, "%d", cfg->batch_buckets);
    snprintf(s_grace, sizeof s_grace, "%" PRId64, cfg->incomplete_grace_s);
    snprintf(what, sizeof what, "roll up %s", iv->table);
    const char *params[4] = { cfg->name, s_iv, s_lim, s_grace };
    PGresult *r = agg_query(c, what, sql, 4, params, errbuf, errlen);
    if (!r)
        return -1;
    long examined = agg_rollup_result(r, iv, res);
    /* Held buckets count as examined: they leave the ready set until their grace is over,
     * so the next transaction makes progress on the rest. */
    if (examined >= cfg->batch_buckets)
        res->more = 1;
    PQclear(r);
    return 0;
}

static int agg_progress_lock(PGconn *c, const struct agg_config *cfg, long long *last_id,
                             char *errbuf, size_t errlen)
{
    const char *params[1] = { cfg->name };
    if (agg_command(c, "progress row",
                    "INSERT INTO aggregator_progress (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                    1, params, errbuf, errlen) < 0)
        return -1;
    /* The row lock also serialises two aggregators of the same name that bypassed the
     * advisory lock (e.g. an older binary): the second waits, then sees the new progress. */
    PGresult *r = agg_query(c, "progress row",
                  "SELECT last_checkpoint_id FROM aggregator_progress WHERE name = $1 FOR UPDATE",
                  1, params, errbuf, errlen);
    if (!r)
        return -1;
    *last_id = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return 0;
}

static int agg_progress_save(PGconn *c, const struct agg_config *cfg, long long last_id,
                             char *errbuf, size_t errlen)
{
    char s_last[24];
    snprintf(s_last, sizeof s_last, "%lld", last_id);
    const char *params[2] = { cfg->name, s_last };
    return agg_command(c, "save progress",
                       "UPDATE aggregator_progress SET last_checkpoint_id = $2::bigint,"
                       " updated_at = now() WHERE name = $1",
                       2, params, errbuf, errlen);
}

/* Tells listeners (the streamer, benchmarks) which bars just committed:
 * payload "<interval> <newest open_time ms>" for the 1m bars. */
static int agg_notify(PGconn *c, const struct agg_tx_result *res, char *errbuf, size_t errlen)
{
    char payload[64];
    snprintf(payload, sizeof payload, "1m %" PRId64, res->newest_1m_ms);
    const char *params[1] = { payload };
    return agg_command(c, "notify", "SELECT pg_notify('" AGG_NOTIFY_ROLLUP "', $1)", 1, params,
                       errbuf, errlen);
}

int agg_rollup_tx(PGconn *c, const struct agg_config *cfg, struct agg_tx_result *res,
                  char *errbuf, size_t errlen)
{
    char err[512];
    long long last_id = 0, new_last = 0;
    memset(res, 0, sizeof *res);
    res->newest_1m_ms = -1;
    if (pgx_exec(c, "BEGIN", err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "BEGIN: %s", err);
        return -1;
    }
    if (agg_progress_lock(c, cfg, &last_id, errbuf, errlen) < 0 ||
        agg_consume(c, cfg, last_id, &new_last, res, errbuf, errlen) < 0)
        goto fail;
    for (int i = 0; i < cfg->n_iv; i++)
        if (agg_rollup_interval(c, cfg, cfg->iv[i], res, errbuf, errlen) < 0)
            goto fail;
    if (new_last > last_id && agg_progress_save(c, cfg, new_last, errbuf, errlen) < 0)
        goto fail;
    if (res->newest_1m_ms >= 0 && agg_notify(c, res, errbuf, errlen) < 0)
        goto fail;
    if (pgx_exec(c, "COMMIT", err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "COMMIT: %s", err);
        goto fail;
    }
    return 0;
fail:
    if (!pgx_is_broken(c))
        pgx_exec(c, "ROLLBACK", err, sizeof err);
    return -1;
}
