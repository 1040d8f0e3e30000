/* stats.c — counters, the receive→ack latency histogram, /metrics and the stats line. */
#include "prod.h"
#include "cfg.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>

prod_stats_t prod_stats;
atomic_llong stats_conn_last_rx[STATS_MAX_CONNS];
atomic_int stats_nconns;

static int64_t stats_next_line_ms, stats_next_backlog_ms;

#define STATS_BACKLOG_WARN_MS 10000   /* behind for longer than this: say so, every 10 s */

/* Log-linear buckets: exact below 8 µs, then 4 per power of two (±12.5%). */
static int stats_lat_bucket(int64_t us)
{
    if (us < 8)
        return us < 0 ? 0 : (int)us;
    int e = 63 - __builtin_clzll((unsigned long long)us);
    int idx = 8 + (e - 3) * 4 + (int)((us >> (e - 2)) & 3);
    return idx < STATS_LAT_BUCKETS ? idx : STATS_LAT_BUCKETS - 1;
}

static int64_t stats_lat_upper(int idx)
{
    if (idx < 8)
        return idx + 1;
    int e = (idx - 8) / 4 + 3, sub = (idx - 8) % 4;
    return (int64_t)(4 + sub + 1) << (e - 2);
}

void stats_latency(int64_t us)
{
    atomic_fetch_add_explicit(&prod_stats.lat_hist[stats_lat_bucket(us)], 1, memory_order_relaxed);
}

int64_t stats_latency_quantile(double p)
{
    unsigned long long tot = 0, acc = 0;
    for (int i = 0; i < STATS_LAT_BUCKETS; i++)
        tot += prod_stats.lat_hist[i];
    if (!tot)
        return 0;
    for (int i = 0; i < STATS_LAT_BUCKETS; i++) {
        acc += prod_stats.lat_hist[i];
        if ((double)acc >= p * (double)tot)
            return stats_lat_upper(i);
    }
    return stats_lat_upper(STATS_LAT_BUCKETS - 1);
}

#define C(x) ((double)atomic_load_explicit(&prod_stats.x, memory_order_relaxed))

static size_t stats_render(char *b, size_t len, void *ud)
{
    size_t o = 0;
    o = metrics_put(b, len, o, "kline_producer_received_total", "counter", "exchange messages received", C(received));
    o = metrics_put(b, len, o, "kline_producer_published_total", "counter", "klines published (all sources)", C(published));
    o = metrics_put(b, len, o, "kline_producer_published_ws_total", "counter", "live klines published", C(published_ws));
    o = metrics_put(b, len, o, "kline_producer_backfilled_total", "counter", "klines published from REST backfill", C(published_rest));
    o = metrics_put(b, len, o, "kline_producer_replayed_total", "counter", "klines published from --replay", C(published_replay));
    o = metrics_put(b, len, o, "kline_producer_rejected_total", "counter", "bad exchange messages (dead-lettered)", C(rejected));
    o = metrics_put(b, len, o, "kline_producer_duplicates_total", "counter", "klines not republished (already published)", C(duplicates));
    o = metrics_put(b, len, o, "kline_producer_provisional_skipped_total", "counter", "x=false klines skipped", C(provisional_skipped));
    o = metrics_put(b, len, o, "kline_producer_reconnects_total", "counter", "WebSocket reconnects", C(reconnects));
    o = metrics_put(b, len, o, "kline_producer_connect_errors_total", "counter", "failed WebSocket connection attempts", C(connect_errors));
    o = metrics_put(b, len, o, "kline_producer_server_shutdowns_total", "counter", "serverShutdown events", C(shutdowns));
    o = metrics_put(b, len, o, "kline_producer_watchdog_total", "counter", "silent connections replaced", C(watchdog_fires));
    o = metrics_put(b, len, o, "kline_producer_backfill_jobs_total", "counter", "gaps sent to REST backfill", C(backfill_jobs));
    o = metrics_put(b, len, o, "kline_producer_rest_requests_total", "counter", "REST requests", C(rest_requests));
    o = metrics_put(b, len, o, "kline_producer_rest_429_total", "counter", "REST 429/418 answers", C(rest_429));
    o = metrics_put(b, len, o, "kline_producer_rest_errors_total", "counter", "REST transport/HTTP errors", C(rest_errors));
    o = metrics_put(b, len, o, "kline_producer_rest_missing_total", "counter", "seconds REST had no kline for", C(rest_missing));
    o = metrics_put(b, len, o, "kline_producer_rest_giveups_total", "counter", "backfill ranges abandoned after 4xx answers", C(rest_giveups));
    o = metrics_put(b, len, o, "kline_producer_delivered_total", "counter", "Kafka deliveries acknowledged", C(delivered));
    o = metrics_put(b, len, o, "kline_producer_delivery_errors_total", "counter", "Kafka deliveries failed", C(delivery_errors));
    o = metrics_put(b, len, o, "kline_producer_queue_full_waits_total", "counter", "waits for room in the Kafka queue", C(queue_full_waits));
    o = metrics_put(b, len, o, "kline_producer_kafka_rebuilds_total", "counter", "Kafka clients rebuilt after a fatal error", C(kafka_rebuilds));
    o = metrics_put(b, len, o, "kline_producer_kafka_taken_back_total", "counter", "unacknowledged messages produced again on a rebuilt client", C(kafka_taken_back));
    o = metrics_put(b, len, o, "kline_producer_held_total", "counter", "live klines held during a backfill", C(held));
    o = metrics_put(b, len, o, "kline_producer_backlog_symbols", "gauge", "symbols with a gap not yet filled", C(backlog_symbols));
    o = metrics_put(b, len, o, "kline_producer_backlog_klines", "gauge", "seconds still owed to the topic (gaps up to now)", C(backlog_klines));
    o = metrics_put(b, len, o, "kline_producer_backlog_peak_klines", "gauge", "highest backlog since start", C(backlog_peak));
    o = metrics_put(b, len, o, "kline_producer_backlog_oldest_seconds", "gauge",
                    "how far the oldest second still owed lies behind the exchange (0 = none)",
                    (double)atomic_load(&prod_stats.backlog_oldest_ms) / 1000.0);
    o = metrics_put(b, len, o, "kline_producer_latency_p50_us", "gauge", "receive to Kafka ack, p50 (bucket bound)", (double)stats_latency_quantile(0.5));
    o = metrics_put(b, len, o, "kline_producer_latency_p99_us", "gauge", "receive to Kafka ack, p99 (bucket bound)", (double)stats_latency_quantile(0.99));
    int64_t now = cfg_mono_ms();
    int n = atomic_load(&stats_nconns);
    if (o < len) {
        int w = snprintf(b + o, len - o, "# HELP kline_producer_last_message_age_seconds seconds since a connection slot last received\n"
                                         "# TYPE kline_producer_last_message_age_seconds gauge\n");
        o = (w > 0 && o + (size_t)w < len) ? o + (size_t)w : len;
    }
    for (int i = 0; i < n && i < STATS_MAX_CONNS && o < len; i++) {
        long long t = atomic_load(&stats_conn_last_rx[i]);
        int w = snprintf(b + o, len - o, "kline_producer_last_message_age_seconds{conn=\"%d\"} %.3f\n",
                         i, t ? (double)(now - t) / 1000.0 : -1.0);
        o = (w > 0 && o + (size_t)w < len) ? o + (size_t)w : len;
    }
    return o;
}

int stats_start(char *errbuf, size_t errlen)
{
    stats_next_line_ms = cfg_mono_ms() + (int64_t)prod_cfg.stats_interval * 1000;
    if (prod_cfg.metrics_port <= 0)
        return 0;
    return metrics_http_start(prod_cfg.metrics_host, prod_cfg.metrics_port, stats_render, NULL, errbuf, errlen);
}

void stats_log_line(void)
{
    log_info("stats: received=%.0f published=%.0f (ws=%.0f rest=%.0f replay=%.0f) rejected=%.0f dup=%.0f "
             "reconnects=%.0f backfill_jobs=%.0f rest_requests=%.0f rest_429=%.0f delivered=%.0f "
             "delivery_errors=%.0f backlog=%.0f backlog_peak=%.0f latency_p50<%lldus p99<%lldus",
             C(received), C(published), C(published_ws), C(published_rest), C(published_replay),
             C(rejected), C(duplicates), C(reconnects), C(backfill_jobs), C(rest_requests), C(rest_429),
             C(delivered), C(delivery_errors), C(backlog_klines), C(backlog_peak),
             (long long)stats_latency_quantile(0.5),
             (long long)stats_latency_quantile(0.99));
}

/* A producer that cannot keep up says so: the backlog, how old its oldest second is. */
static void stats_backlog_warn(int64_t now)
{
    int64_t age = atomic_load(&prod_stats.backlog_oldest_ms);
    if (now < stats_next_backlog_ms || age < STATS_BACKLOG_WARN_MS)
        return;
    stats_next_backlog_ms = now + STATS_BACKLOG_WARN_MS;
    log_warn("behind: %lld symbols backfilling, %lld seconds owed (peak %lld), oldest owed second %lld s behind the exchange, "
             "%.0f REST requests so far", (long long)atomic_load(&prod_stats.backlog_symbols),
             (long long)atomic_load(&prod_stats.backlog_klines), (long long)atomic_load(&prod_stats.backlog_peak),
             (long long)(age / 1000), C(rest_requests));
}

void stats_tick(int64_t now)
{
    stats_backlog_warn(now);
    if (prod_cfg.stats_interval <= 0 || now < stats_next_line_ms)
        return;
    stats_next_line_ms = now + (int64_t)prod_cfg.stats_interval * 1000;
    stats_log_line();
}

void stats_stop(void)
{
    metrics_http_stop();
}
