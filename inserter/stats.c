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
static const double st_bounds_ms[] = { 1, 2.5, 5, 10, 25, 50, 75, 100, 150, 200, 300, 500,
                                       750, 1000, 1500, 2000, 3000, 5000, 10000, 30000, 60000 };
#define ST_NB (sizeof st_bounds_ms / sizeof st_bounds_ms[0])

typedef struct st_hist {
    atomic_llong bucket[ST_NB + 1];
    atomic_llong count;
    atomic_llong sum_us;
} st_hist_t;

static struct {
    atomic_llong inserted, updated, unchanged, deduped, rejected, rejected_stored;
    atomic_llong records, batches, direct_batches, checkpoints, reconnects, pg_errors, commit_errors;
    atomic_llong lag, pending;
    atomic_int pg_up;
    st_hist_t batch_lat, e2e_lat;
} st = { .pg_up = 1 };

#define ST_ADD(field, v) atomic_fetch_add_explicit(&st.field, (v), memory_order_relaxed)
#define ST_GET(field) atomic_load_explicit(&st.field, memory_order_relaxed)

static void st_observe(st_hist_t *h, int64_t us)
{
    double ms = (double)us / 1000.0;
    size_t i = 0;
    while (i < ST_NB && ms > st_bounds_ms[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

/* Quantile by linear interpolation inside the bucket (as Prometheus does); ms. */
static double st_quantile(st_hist_t *h, double q)
{
    long long n = atomic_load_explicit(&h->count, memory_order_relaxed);
    if (n == 0)
        return 0;
    double rank = q * (double)n, cum = 0, lo = 0;
    for (size_t i = 0; i <= ST_NB; i++) {
        long long c = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        double hi = i < ST_NB ? st_bounds_ms[i] : st_bounds_ms[ST_NB - 1];
        if (c > 0 && cum + (double)c >= rank)
            return lo + (hi - lo) * ((rank - cum) / (double)c);
        cum += (double)c;
        lo = hi;
    }
    return st_bounds_ms[ST_NB - 1];
}

void ins_stats_batch(const ins_result_t *r, size_t nrecords, size_t ndup, size_t nrej,
                     int64_t latency_us)
{
    ST_ADD(inserted, r->inserted);
    ST_ADD(updated, r->updated);
    ST_ADD(unchanged, r->unchanged);
    ST_ADD(deduped, (long long)ndup);
    ST_ADD(rejected, (long long)nrej);
    ST_ADD(rejected_stored, r->rejected_new);
    ST_ADD(records, (long long)nrecords);
    ST_ADD(checkpoints, r->checkpoints);
    ST_ADD(batches, 1);
    if (r->direct)
        ST_ADD(direct_batches, 1);
    st_observe(&st.batch_lat, latency_us);
}

void ins_stats_e2e(int64_t ms)
{
    st_observe(&st.e2e_lat, (ms < 0 ? 0 : ms) * 1000);
}

void ins_stats_reconnect(void) { ST_ADD(reconnects, 1); }
void ins_stats_pg_error(void) { ST_ADD(pg_errors, 1); }
void ins_stats_commit_error(void) { ST_ADD(commit_errors, 1); }
void ins_stats_set_lag(long long lag) { atomic_store_explicit(&st.lag, lag, memory_order_relaxed); }
void ins_stats_set_pending(long long n) { atomic_store_explicit(&st.pending, n, memory_order_relaxed); }
void ins_stats_set_pg_up(bool up) { atomic_store_explicit(&st.pg_up, up, memory_order_relaxed); }

static size_t st_printf(char *buf, size_t len, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t st_printf(char *buf, size_t len, size_t off, const char *fmt, ...)
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

static size_t st_put_hist(char *buf, size_t len, size_t off, const char *name,
                          const char *help, st_hist_t *h)
{
    off = st_printf(buf, len, off, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    long long cum = 0;
    for (size_t i = 0; i <= ST_NB; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < ST_NB)
            off = st_printf(buf, len, off, "%s_bucket{le=\"%g\"} %lld\n", name,
                            st_bounds_ms[i] / 1000.0, cum);
        else
            off = st_printf(buf, len, off, "%s_bucket{le=\"+Inf\"} %lld\n", name, cum);
    }
    off = st_printf(buf, len, off, "%s_sum %.6f\n%s_count %lld\n", name,
                    (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
                    (long long)atomic_load_explicit(&h->count, memory_order_relaxed));
    return off;
}

static size_t st_render(char *buf, size_t len, void *ud)
{
    (void)ud;
    size_t off = 0;
    off = st_printf(buf, len, off,
                    "# HELP kline_inserter_rows_total Klines written, by outcome of the upsert.\n"
                    "# TYPE kline_inserter_rows_total counter\n"
                    "kline_inserter_rows_total{result=\"inserted\"} %lld\n"
                    "kline_inserter_rows_total{result=\"updated\"} %lld\n"
                    "kline_inserter_rows_total{result=\"unchanged\"} %lld\n"
                    "kline_inserter_rows_total{result=\"deduplicated\"} %lld\n",
                    (long long)ST_GET(inserted), (long long)ST_GET(updated),
                    (long long)ST_GET(unchanged), (long long)ST_GET(deduped));
    off = metrics_put(buf, len, off, "kline_inserter_rejected_total", "counter",
                      "Records rejected (unparseable, invalid, dead letters).",
                      (double)ST_GET(rejected));
    off = metrics_put(buf, len, off, "kline_inserter_rejected_stored_total", "counter",
                      "Rejected records newly stored in the rejected table.",
                      (double)ST_GET(rejected_stored));
    off = metrics_put(buf, len, off, "kline_inserter_records_total", "counter",
                      "Records consumed and committed (rows, duplicates, rejects).",
                      (double)ST_GET(records));
    off = metrics_put(buf, len, off, "kline_inserter_batches_total", "counter",
                      "Batches committed.", (double)ST_GET(batches));
    off = metrics_put(buf, len, off, "kline_inserter_direct_batches_total", "counter",
                      "Batches written by COPY straight into kline_1s (all rows new).",
                      (double)ST_GET(direct_batches));
    off = metrics_put(buf, len, off, "kline_inserter_checkpoints_total", "counter",
                      "Checkpoint rows written.", (double)ST_GET(checkpoints));
    off = metrics_put(buf, len, off, "kline_inserter_pg_reconnects_total", "counter",
                      "PostgreSQL reconnections after a lost connection.",
                      (double)ST_GET(reconnects));
    off = metrics_put(buf, len, off, "kline_inserter_pg_errors_total", "counter",
                      "Batch transactions that failed (retried).", (double)ST_GET(pg_errors));
    off = metrics_put(buf, len, off, "kline_inserter_kafka_commit_errors_total", "counter",
                      "Kafka offset commits that failed (the batch is redelivered, harmlessly).",
                      (double)ST_GET(commit_errors));
    off = metrics_put(buf, len, off, "kline_inserter_consumer_lag", "gauge",
                      "Messages in Kafka not yet committed to PostgreSQL (assigned partitions).",
                      (double)ST_GET(lag));
    off = metrics_put(buf, len, off, "kline_inserter_batch_pending", "gauge",
                      "Records in the batch being built or retried.", (double)ST_GET(pending));
    off = metrics_put(buf, len, off, "kline_inserter_pg_up", "gauge",
                      "1 while PostgreSQL accepts batches, 0 while paused and retrying.",
                      (double)atomic_load_explicit(&st.pg_up, memory_order_relaxed));
    off = st_put_hist(buf, len, off, "kline_inserter_batch_seconds",
                      "Time to write one batch (COPY to COMMIT).", &st.batch_lat);
    off = st_put_hist(buf, len, off, "kline_inserter_e2e_seconds",
                      "Kafka message timestamp to committed row, per row.", &st.e2e_lat);
    return off;
}

int ins_stats_start_http(const char *host, int port, char *errbuf, size_t errlen)
{
    return metrics_http_start(host, port, st_render, NULL, errbuf, errlen);
}

void ins_stats_stop_http(void)
{
    metrics_http_stop();
}

void ins_stats_log(void)
{
    log_info("stats: batches=%lld direct=%lld records=%lld inserted=%lld updated=%lld unchanged=%lld "
             "deduplicated=%lld rejected=%lld checkpoints=%lld lag=%lld pending=%lld "
             "batch_p50_ms=%.1f batch_p99_ms=%.1f e2e_p50_ms=%.1f e2e_p99_ms=%.1f "
             "pg_reconnects=%lld pg_errors=%lld",
             (long long)ST_GET(batches), (long long)ST_GET(direct_batches), (long long)ST_GET(records), (long long)ST_GET(inserted),
             (long long)ST_GET(updated), (long long)ST_GET(unchanged), (long long)ST_GET(deduped),
             (long long)ST_GET(rejected), (long long)ST_GET(checkpoints), (long long)ST_GET(lag),
             (long long)ST_GET(pending), st_quantile(&st.batch_lat, 0.5),
             st_quantile(&st.batch_lat, 0.99), st_quantile(&st.e2e_lat, 0.5),
             st_quantile(&st.e2e_lat, 0.99), (long long)ST_GET(reconnects),
             (long long)ST_GET(pg_errors));
}
