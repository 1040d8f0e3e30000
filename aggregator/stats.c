/* stats.c — counters, the Prometheus /metrics page and the periodic stats line. */
#include "agg.h"

#include <stdio.h>
#include <stdlib.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "pgx.h"

struct agg_stats agg_stats;

#define AGG_LD(x) atomic_load_explicit(&agg_stats.x, memory_order_relaxed)
#define AGG_ADD(x, v) atomic_fetch_add_explicit(&agg_stats.x, (v), memory_order_relaxed)

void agg_stats_add_tx(const struct agg_tx_result *r)
{
    AGG_ADD(transactions, 1);
    AGG_ADD(checkpoints, r->checkpoints);
    AGG_ADD(bad_state, r->bad_checkpoints);
    for (int i = 0; i < AGG_MAX_INTERVALS; i++) {
        AGG_ADD(buckets[i], r->buckets[i]);
        AGG_ADD(bars[i], r->bars[i]);
        AGG_ADD(incomplete[i], r->incomplete[i]);
        AGG_ADD(resolved[i], r->resolved[i]);
    }
    if (r->newest_1m_ms >= 0) {
        /* Only meaningful for live data; a backfill of old minutes shows as a big lag,
         * which is the truth about that bar. */
        long long lag = (long long)(cfg_now_ms() - (r->newest_1m_ms + 60000));
        atomic_store_explicit(&agg_stats.last_lag_ms, lag, memory_order_relaxed);
        if (lag > AGG_LD(max_lag_ms))
            atomic_store_explicit(&agg_stats.max_lag_ms, lag, memory_order_relaxed);
    }
}

void agg_stats_refresh_pending(PGconn *c, const struct agg_config *cfg)
{
    const char *params[1] = { cfg->name };
    char err[256];
    PGresult *r = pgx_query(c, "SELECT count(*), count(*) FILTER (WHERE held)"
                            " FROM aggregator_pending WHERE name = $1", 1, params, err, sizeof err);
    if (r && PQntuples(r) == 1) {
        atomic_store_explicit(&agg_stats.pending, strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                              memory_order_relaxed);
        atomic_store_explicit(&agg_stats.held, strtoll(PQgetvalue(r, 0, 1), NULL, 10),
                              memory_order_relaxed);
    }
    PQclear(r);
}

/* Appends one sample with a label; HELP/TYPE are written by the caller once per family. */
static size_t agg_put_labeled(char *b, size_t len, size_t o, const char *name,
                              const char *label, const char *value, double v)
{
    if (o >= len)
        return o;
    int n = snprintf(b + o, len - o, "%s{%s=\"%s\"} %.17g\n", name, label, value, v);
    if (n < 0)
        return o;
    return o + (size_t)n >= len ? len : o + (size_t)n;
}

static size_t agg_put_family(char *b, size_t len, size_t o, const char *name,
                             const char *help, atomic_llong *arr)
{
    if (o < len) {
        int n = snprintf(b + o, len - o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
        o = n < 0 ? o : (o + (size_t)n >= len ? len : o + (size_t)n);
    }
    for (int i = 0; i < AGG_MAX_INTERVALS; i++)
        o = agg_put_labeled(b, len, o, name, "interval", agg_intervals[i].name,
                            (double)atomic_load_explicit(&arr[i], memory_order_relaxed));
    return o;
}

#define AGG_D(x) ((double)AGG_LD(x))

static size_t agg_stats_render(char *b, size_t len, void *ud)
{
    (void)ud;
    size_t o = 0;
    o = metrics_put(b, len, o, "kline_aggregator_runs_total", "counter",
                    "runs (a wake-up that rolled up everything ready)", AGG_D(runs));
    o = metrics_put(b, len, o, "kline_aggregator_run_errors_total", "counter",
                    "runs that failed (rolled back, retried)", AGG_D(run_errors));
    o = metrics_put(b, len, o, "kline_aggregator_transactions_total", "counter",
                    "rollup transactions committed", AGG_D(transactions));
    o = metrics_put(b, len, o, "kline_aggregator_checkpoints_total", "counter",
                    "inserter checkpoints consumed", AGG_D(checkpoints));
    o = metrics_put(b, len, o, "kline_aggregator_bad_state_total", "counter",
                    "checkpoints that do not match kline_1s (see table rejected)", AGG_D(bad_state));
    o = agg_put_family(b, len, o, "kline_aggregator_bars_written_total",
                       "bars inserted or changed, by interval", agg_stats.bars);
    o = agg_put_family(b, len, o, "kline_aggregator_buckets_total",
                       "buckets rolled up (including unchanged and empty), by interval", agg_stats.buckets);
    o = metrics_put(b, len, o, "kline_aggregator_buckets_pending", "gauge",
                    "buckets waiting for their watermark, all intervals", AGG_D(pending));
    o = metrics_put(b, len, o, "kline_aggregator_buckets_held", "gauge",
                    "pending buckets held incomplete, waiting out --incomplete-grace", AGG_D(held));
    o = agg_put_family(b, len, o, "kline_aggregator_incomplete_bars_total",
                       "bars written (or left out: no rows) with fewer seconds than the interval "
                       "has, after the grace; see table incomplete_bar", agg_stats.incomplete);
    o = agg_put_family(b, len, o, "kline_aggregator_incomplete_resolved_total",
                       "incomplete bars rewritten complete when the missing seconds arrived",
                       agg_stats.resolved);
    o = metrics_put(b, len, o, "kline_aggregator_run_duration_seconds", "gauge",
                    "duration of the last run", AGG_D(last_run_us) / 1e6);
    o = metrics_put(b, len, o, "kline_aggregator_lag_seconds", "gauge",
                    "commit time minus end of the newest 1m bar, last run", AGG_D(last_lag_ms) / 1e3);
    o = metrics_put(b, len, o, "kline_aggregator_lag_max_seconds", "gauge",
                    "largest lag seen since start", AGG_D(max_lag_ms) / 1e3);
    o = metrics_put(b, len, o, "kline_aggregator_retention_deleted_total", "counter",
                    "rows deleted by --retain", AGG_D(retention_deleted));
    o = metrics_put(b, len, o, "kline_aggregator_reconnects_total", "counter",
                    "PostgreSQL reconnects", AGG_D(reconnects));
    o = metrics_put(b, len, o, "kline_aggregator_lock_busy_total", "counter",
                    "times another aggregator held the lock", AGG_D(lock_busy));
    return o;
}

int agg_stats_metrics_start(const struct agg_config *cfg, char *errbuf, size_t errlen)
{
    if (cfg->metrics_port <= 0)
        return 0;
    return metrics_http_start(cfg->metrics_host, cfg->metrics_port, agg_stats_render, NULL,
                              errbuf, errlen);
}

void agg_stats_log(const char *what)
{
    char iv[256];
    size_t o = 0;
    iv[0] = '\0';
    for (int i = 0; i < AGG_MAX_INTERVALS && o < sizeof iv; i++) {
        long long bars = atomic_load_explicit(&agg_stats.bars[i], memory_order_relaxed);
        if (bars || i == 0)
            o += (size_t)snprintf(iv + o, sizeof iv - o, " bars_%s=%lld", agg_intervals[i].name, bars);
    }
    long long inc = 0, fixed = 0;
    for (int i = 0; i < AGG_MAX_INTERVALS; i++) {
        inc += atomic_load_explicit(&agg_stats.incomplete[i], memory_order_relaxed);
        fixed += atomic_load_explicit(&agg_stats.resolved[i], memory_order_relaxed);
    }
    log_info("%s: runs=%lld tx=%lld checkpoints=%lld%s pending=%lld held=%lld incomplete=%lld "
             "resolved=%lld bad_state=%lld last_run_ms=%.1f lag_ms=%lld retention_deleted=%lld "
             "reconnects=%lld",
             what, AGG_LD(runs), AGG_LD(transactions), AGG_LD(checkpoints), iv, AGG_LD(pending),
             AGG_LD(held), inc, fixed, AGG_LD(bad_state), AGG_D(last_run_us) / 1e3, AGG_LD(last_lag_ms),
             AGG_LD(retention_deleted), AGG_LD(reconnects));
}
