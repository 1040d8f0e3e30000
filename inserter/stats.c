/*
 * stats.c — counters and histograms of kline-inserter, served as Prometheus text on
 * --metrics-port and summarised in the periodic stats line.
 *
 * The main thread writes, the metrics thread reads: everything here is a relaxed
 * atomic, which is all a scrape needs (each number is consistent on its own).
 */
#include "ins.h"
#include "log.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

/* Upper bounds in milliseconds; the last bucket is +Inf. */
static const double ins_stats_bounds_ms[] = { 1, 2.5, 5, 10, 25, 50, 75, 100, 150, 200, 300, 500,
                                       750, 1000, 1500, 2000, 3000, 5000, 10000, 30000, 60000 };
#define INS_STATS_NB (sizeof ins_stats_bounds_ms / sizeof ins_stats_bounds_ms[0])

typedef struct ins_stats_hist {
    atomic_llong bucket[INS_STATS_NB + 1];
    atomic_llong count;
    atomic_llong sum_us;
} ins_stats_hist_t;

static struct {
    atomic_llong inserted, updated, unchanged, deduped, rejected, rejected_stored;
    atomic_llong records, batches, direct_batches, checkpoints;
    atomic_llong reconnects, pg_errors, commit_errors;
    atomic_llong lag, pending, pg_up;
    ins_stats_hist_t batch_lat, e2e_lat;
} ins_stats_v = { .pg_up = 1 };

#define INS_STATS_ADD(field, v) \
    atomic_fetch_add_explicit(&ins_stats_v.field, (v), memory_order_relaxed)
#define INS_STATS_SET(field, v) \
    atomic_store_explicit(&ins_stats_v.field, (v), memory_order_relaxed)
#define INS_STATS_GET(field) \
    ((long long)atomic_load_explicit(&ins_stats_v.field, memory_order_relaxed))

static void ins_stats_observe(ins_stats_hist_t *h, int64_t us)
{
    double ms = (double)us / 1000.0;
    size_t i = 0;
    while (i < INS_STATS_NB && ms > ins_stats_bounds_ms[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

/* Quantile by linear interpolation inside the bucket (as Prometheus does); ms. */
static double ins_stats_quantile(ins_stats_hist_t *h, double q)
{
    long long n = atomic_load_explicit(&h->count, memory_order_relaxed);
    if (n == 0)
        return 0;
    double rank = q * (double)n, cum = 0, lo = 0;
    for (size_t i = 0; i <= INS_STATS_NB; i++) {
        long long c = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        double hi = ins_stats_bounds_ms[i < INS_STATS_NB ? i : INS_STATS_NB - 1];
        if (c > 0 && cum + (double)c >= rank)
            return lo + (hi - lo) * ((rank - cum) / (double)c);
        cum += (double)c;
        lo = hi;
    }
    return ins_stats_bounds_ms[INS_STATS_NB - 1];
}

void ins_stats_batch(const ins_result_t *r, size_t nrecords, size_t ndup, size_t nrej,
                     int64_t latency_us)
{
    INS_STATS_ADD(inserted, r->inserted);
    INS_STATS_ADD(updated, r->updated);
    INS_STATS_ADD(unchanged, r->unchanged);
    INS_STATS_ADD(deduped, (long long)ndup);
    INS_STATS_ADD(rejected, (long long)nrej);
    INS_STATS_ADD(rejected_stored, r->rejected_new);
    INS_STATS_ADD(records, (long long)nrecords);
    INS_STATS_ADD(checkpoints, r->checkpoints);
    INS_STATS_ADD(batches, 1);
    if (r->direct)
        INS_STATS_ADD(direct_batches, 1);
    ins_stats_observe(&ins_stats_v.batch_lat, latency_us);
}

void ins_stats_e2e(int64_t ms)
{
    ins_stats_observe(&ins_stats_v.e2e_lat, (ms < 0 ? 0 : ms) * 1000);
}

void ins_stats_reconnect(void) { INS_STATS_ADD(reconnects, 1); }
void ins_stats_pg_error(void) { INS_STATS_ADD(pg_errors, 1); }
void ins_stats_commit_error(void) { INS_STATS_ADD(commit_errors, 1); }
void ins_stats_set_lag(long long lag) { INS_STATS_SET(lag, lag); }
void ins_stats_set_pending(long long n) { INS_STATS_SET(pending, n); }
void ins_stats_set_pg_up(bool up) { INS_STATS_SET(pg_up, up); }

static size_t ins_stats_printf(char *buf, size_t len, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t ins_stats_printf(char *buf, size_t len, size_t off, const char *fmt, ...)
{
    if (off >= len)
        return len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + off, len - off, fmt, ap);
    va_end(ap);
    if (n < 0)
        return off;
    return off + (size_t)n >= len ? len : off + (size_t)n;
}

static size_t ins_stats_put_hist(char *buf, size_t len, size_t off, const char *name,
                                 const char *help, ins_stats_hist_t *h)
{
    off = ins_stats_printf(buf, len, off, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    long long cum = 0;
    for (size_t i = 0; i <= INS_STATS_NB; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < INS_STATS_NB)
            off = ins_stats_printf(buf, len, off, "%s_bucket{le=\"%g\"} %lld\n", name,
                                   ins_stats_bounds_ms[i] / 1000.0, cum);
        else
            off = ins_stats_printf(buf, len, off, "%s_bucket{le=\"+Inf\"} %lld\n", name, cum);
    }
    off = ins_stats_printf(buf, len, off, "%s_sum %.6f\n%s_count %lld\n", name,
                           (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6,
                           name, (long long)atomic_load_explicit(&h->count, memory_order_relaxed));
    return off;
}

/* The single-number series of /metrics, in the order served. */
static const struct ins_stats_metric {
    const char *name, *type, *help;
    atomic_llong *v;
} ins_stats_metrics[] = {
    { "kline_inserter_rejected_total", "counter",
      "Records rejected (unparseable, invalid, dead letters).", &ins_stats_v.rejected },
    { "kline_inserter_rejected_stored_total", "counter",
      "Rejected records newly stored in the rejected table.", &ins_stats_v.rejected_stored },
    { "kline_inserter_records_total", "counter",
      "Records consumed and committed (rows, duplicates, rejects).", &ins_stats_v.records },
    { "kline_inserter_batches_total", "counter", "Batches committed.", &ins_stats_v.batches },
    { "kline_inserter_direct_batches_total", "counter",
      "Batches written by COPY straight into kline_1s (all rows new).",
      &ins_stats_v.direct_batches },
    { "kline_inserter_checkpoints_total", "counter", "Checkpoint rows written.",
      &ins_stats_v.checkpoints },
    { "kline_inserter_pg_reconnects_total", "counter",
      "PostgreSQL reconnections after a lost connection.", &ins_stats_v.reconnects },
    { "kline_inserter_pg_errors_total", "counter", "Batch transactions that failed (retried).",
      &ins_stats_v.pg_errors },
    { "kline_inserter_kafka_commit_errors_total", "counter",
      "Kafka offset commits that failed (the batch is redelivered, harmlessly).",
      &ins_stats_v.commit_errors },
    { "kline_inserter_consumer_lag", "gauge",
      "Messages in Kafka not yet committed to PostgreSQL (assigned partitions).",
      &ins_stats_v.lag },
    { "kline_inserter_batch_pending", "gauge", "Records in the batch being built or retried.",
      &ins_stats_v.pending },
    { "kline_inserter_pg_up", "gauge",
      "1 while PostgreSQL accepts batches, 0 while paused and retrying.", &ins_stats_v.pg_up },
};

static size_t ins_stats_render(char *buf, size_t len, void *ud)
{
    (void)ud;
    size_t off = ins_stats_printf(buf, len, 0,
        "# HELP kline_inserter_rows_total Klines written, by outcome of the upsert.\n"
        "# TYPE kline_inserter_rows_total counter\n"
        "kline_inserter_rows_total{result=\"inserted\"} %lld\n"
        "kline_inserter_rows_total{result=\"updated\"} %lld\n"
        "kline_inserter_rows_total{result=\"unchanged\"} %lld\n"
        "kline_inserter_rows_total{result=\"deduplicated\"} %lld\n",
        INS_STATS_GET(inserted), INS_STATS_GET(updated), INS_STATS_GET(unchanged),
        INS_STATS_GET(deduped));
    for (size_t i = 0; i < sizeof ins_stats_metrics / sizeof ins_stats_metrics[0]; i++) {
        const struct ins_stats_metric *m = &ins_stats_metrics[i];
        off = metrics_put(buf, len, off, m->name, m->type, m->help,
                          (double)atomic_load_explicit(m->v, memory_order_relaxed));
    }
    off = ins_stats_put_hist(buf, len, off, "kline_inserter_batch_seconds",
                             "Time to write one batch (COPY to COMMIT).", &ins_stats_v.batch_lat);
    return ins_stats_put_hist(buf, len, off, "kline_inserter_e2e_seconds",
                              "Kafka message timestamp to committed row, per row.",
                              &ins_stats_v.e2e_lat);
}

int ins_stats_start_http(const char *host, int port, char *errbuf, size_t errlen)
{
    return metrics_http_start(host, port, ins_stats_render, NULL, errbuf, errlen);
}

void ins_stats_stop_http(void)
{
    metrics_http_stop();
}

void ins_stats_log(void)
{
    log_info("stats: batches=%lld direct=%lld records=%lld inserted=%lld updated=%lld "
             "unchanged=%lld deduplicated=%lld rejected=%lld checkpoints=%lld lag=%lld "
             "pending=%lld batch_p50_ms=%.1f batch_p99_ms=%.1f e2e_p50_ms=%.1f e2e_p99_ms=%.1f "
             "pg_reconnects=%lld pg_errors=%lld",
             INS_STATS_GET(batches), INS_STATS_GET(direct_batches), INS_STATS_GET(records),
             INS_STATS_GET(inserted), INS_STATS_GET(updated), INS_STATS_GET(unchanged),
             INS_STATS_GET(deduped), INS_STATS_GET(rejected), INS_STATS_GET(checkpoints),
             INS_STATS_GET(lag), INS_STATS_GET(pending),
             ins_stats_quantile(&ins_stats_v.batch_lat, 0.5),
             ins_stats_quantile(&ins_stats_v.batch_lat, 0.99),
             ins_stats_quantile(&ins_stats_v.e2e_lat, 0.5),
             ins_stats_quantile(&ins_stats_v.e2e_lat, 0.99), INS_STATS_GET(reconnects),
             INS_STATS_GET(pg_errors));
}
