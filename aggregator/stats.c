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

/* One /metrics family: a single counter or gauge, or one sample per interval. */
struct agg_metric {
    const char *name, *type, *help;
    atomic_llong *v;   /* the value, or the first of AGG_MAX_INTERVALS when per_interval */
    double scale;      /* shown = value × scale (µs and ms counters are shown in seconds) */
    bool per_interval;
};

static const struct agg_metric agg_metrics[] = {
    { "kline_aggregator_runs_total", "counter", "runs (a wake-up that rolled up everything ready)",
      &agg_stats.runs, 1, false },
    { "kline_aggregator_run_errors_total", "counter", "runs that failed (rolled back, retried)",
      &agg_stats.run_errors, 1, false },
    { "kline_aggregator_transactions_total", "counter", "rollup transactions committed",
      &agg_stats.transactions, 1, false },
    { "kline_aggregator_checkpoints_total", "counter", "inserter checkpoints consumed",
      &agg_stats.checkpoints, 1, false },
    { "kline_aggregator_bad_state_total", "counter",
      "checkpoints that do not match kline_1s (see table rejected)", &agg_stats.bad_state, 1, false },
    { "kline_aggregator_bars_written_total", "counter", "bars inserted or changed, by interval",
      agg_stats.bars, 1, true },
    { "kline_aggregator_buckets_total", "counter",
      "buckets rolled up (including unchanged and empty), by interval", agg_stats.buckets, 1, true },
    { "kline_aggregator_buckets_pending", "gauge", "buckets waiting for their watermark, all intervals",
      &agg_stats.pending, 1, false },
    { "kline_aggregator_buckets_held", "gauge",
      "pending buckets held incomplete, waiting out --incomplete-grace", &agg_stats.held, 1, false },
    { "kline_aggregator_incomplete_bars_total", "counter",
      "bars written (or left out: no rows) with fewer seconds than the interval has, after the "
      "grace; see table incomplete_bar", agg_stats.incomplete, 1, true },
    { "kline_aggregator_incomplete_resolved_total", "counter",
      "incomplete bars rewritten complete when the missing seconds arrived", agg_stats.resolved, 1, true },
    { "kline_aggregator_run_duration_seconds", "gauge", "duration of the last run",
      &agg_stats.last_run_us, 1e-6, false },
    { "kline_aggregator_lag_seconds", "gauge", "commit time minus end of the newest 1m bar, last run",
      &agg_stats.last_lag_ms, 1e-3, false },
    { "kline_aggregator_lag_max_seconds", "gauge", "largest lag seen since start",
      &agg_stats.max_lag_ms, 1e-3, false },
    { "kline_aggregator_retention_deleted_total", "counter", "rows deleted by --retain",
      &agg_stats.retention_deleted, 1, false },
    { "kline_aggregator_retention_partitions_dropped_total", "counter",
      "hourly kline_1s partitions dropped by --retain", &agg_stats.retention_partitions, 1, false },
    { "kline_aggregator_partitions_compacted_total", "counter",
      "hourly kline_1s partitions whose primary key was rebuilt (--compact-after)",
      &agg_stats.compacted, 1, false },
    { "kline_aggregator_reconnects_total", "counter", "PostgreSQL reconnects", &agg_stats.reconnects,
      1, false },
    { "kline_aggregator_lock_busy_total", "counter", "times another aggregator held the lock",
      &agg_stats.lock_busy, 1, false },
};

static double agg_metric_value(const struct agg_metric *m, int i)
{
    return (double)atomic_load_explicit(&m->v[i], memory_order_relaxed) * m->scale;
}

static size_t agg_put_family(char *b, size_t len, size_t o, const struct agg_metric *m)
{
    if (o < len) {
        int n = snprintf(b + o, len - o, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
        o = n < 0 ? o : (o + (size_t)n >= len ? len : o + (size_t)n);
    }
    for (int i = 0; i < AGG_MAX_INTERVALS; i++)
        o = agg_put_labeled(b, len, o, m->name, "interval", agg_intervals[i].name, agg_metric_value(m, i));
    return o;
}

/* Runs on the metrics thread: reads atomics only. */
static size_t agg_stats_render(char *b, size_t len, void *ud)
{
    (void)ud;
    size_t o = 0;
    for (size_t i = 0; i < sizeof agg_metrics / sizeof agg_metrics[0]; i++) {
        const struct agg_metric *m = &agg_metrics[i];
        if (m->per_interval)
            o = agg_put_family(b, len, o, m);
        else
            o = metrics_put(b, len, o, m->name, m->type, m->help, agg_metric_value(m, 0));
    }
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
             AGG_LD(held), inc, fixed, AGG_LD(bad_state), (double)AGG_LD(last_run_us) / 1e3, AGG_LD(last_lag_ms),
             AGG_LD(retention_deleted), AGG_LD(reconnects));
}
