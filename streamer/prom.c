/* prom.c — the Prometheus text of /metrics (lws thread: it reads the hub without a lock).
 * The counters of struct st_stats are a table; the rest are gauges read where they live. */
#include "streamer.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "cfg.h"
#include "metrics.h"

/* Best effort beyond this: the page is cut (at a line: appends past the bound change
 * nothing), never a crash or an unbounded allocation. ~70 bytes per subscribed symbol. */
#define ST_PROM_MAX (64u << 20)

struct st_prom_stat {
    const char *name, *help;
    size_t off; /* of a uint64_t counter in struct st_stats */
};

#define ST_PROM_STAT(name, field, help) { "kline_streamer_" name, help, offsetof(struct st_stats, field) }

static const struct st_prom_stat st_prom_stats[] = {
    ST_PROM_STAT("connections_total", connections_total, "WebSocket connections accepted."),
    ST_PROM_STAT("messages_sent_total", msgs_sent,
                 "Messages sent to clients (updates inside a batch frame count one each)."),
    ST_PROM_STAT("frames_sent_total", frames_sent, "WebSocket frames sent to clients."),
    ST_PROM_STAT("bytes_sent_total", bytes_sent, "WebSocket payload bytes sent."),
    ST_PROM_STAT("conflated_total", conflated,
                 "Pending updates replaced by a newer one for the same symbol (latest wins)."),
    ST_PROM_STAT("dropped_total", dropped,
                 "Messages not queued (client closing, reply queue full, queue over --queue-max)."),
    ST_PROM_STAT("slow_clients_closed_total", slow_closed, "Clients closed as too slow (4008)."),
    ST_PROM_STAT("pending_bytes_closed_total", pending_closed,
                 "Clients closed for more than --max-pending-bytes queued (4009)."),
    ST_PROM_STAT("snapshots_superseded_total", snapshots_superseded,
                 "Unsent snapshots dropped because a newer full (\"*\") snapshot replaced them."),
    ST_PROM_STAT("abusive_clients_closed_total", abuse_closed,
                 "Clients closed after too many bad messages (1008)."),
    ST_PROM_STAT("client_errors_total", client_errors, "Error replies sent to clients."),
    ST_PROM_STAT("klines_total", klines_in, "Klines applied from the feed."),
    ST_PROM_STAT("klines_ignored_total", klines_ignored, "Klines older than the symbol's latest."),
    ST_PROM_STAT("klines_repeated_total", klines_repeated,
                 "Klines equal to the symbol's latest (a second producer's copy), not pushed again."),
    ST_PROM_STAT("alerts_total", alerts, "SMA crossover alerts raised."),
    ST_PROM_STAT("api_requests_total", api_requests, "/api/klines requests accepted."),
    ST_PROM_STAT("placeholders_freed_total", placeholders_freed,
                 "Placeholders removed when their last subscriber left."),
};

/* One family of one sample, in a single append so that a cut page never ends mid-line. */
static void st_prom_put(kp_buf_t *b, const char *name, const char *type, const char *help,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void st_prom_put(kp_buf_t *b, const char *name, const char *type, const char *help,
                        const char *fmt, ...)
{
    char v[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    kp_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type, name, v);
}

static void st_prom_counters(kp_buf_t *b)
{
    const char *base = (const char *)&st_hub.st;
    for (size_t i = 0; i < sizeof st_prom_stats / sizeof st_prom_stats[0]; i++) {
        const struct st_prom_stat *r = &st_prom_stats[i];
        st_prom_put(b, r->name, "counter", r->help, "%llu",
                    (unsigned long long)*(const uint64_t *)(base + r->off));
    }
    /* written by other threads: atomics of their own */
    st_prom_put(b, "kline_streamer_feed_rejected_total", "counter", "Feed records that did not parse.",
                "%llu", (unsigned long long)atomic_load(&st_feed_rejected));
    st_prom_put(b, "kline_streamer_db_errors_total", "counter", "/api/klines queries that failed.", "%llu",
                (unsigned long long)atomic_load(&st_db_errors));
}

static void st_prom_gauges(kp_buf_t *b)
{
    int64_t now = cfg_now_ms();
    st_prom_put(b, "kline_streamer_connections", "gauge", "Open WebSocket connections.", "%d",
                st_hub.nclients);
    st_prom_put(b, "kline_streamer_kafka_lag", "gauge", "Kafka messages behind the high watermarks (-1 n/a).",
                "%lld", (long long)atomic_load(&st_feed_lag));
    st_prom_put(b, "kline_streamer_latest_kline_age_seconds", "gauge",
                "Seconds since the newest kline's event time (-1 before the first).", "%.3f",
                st_hub.latest_event_ms ? (double)(now - st_hub.latest_event_ms) / 1000.0 : -1.0);
    st_prom_put(b, "kline_streamer_symbols", "gauge", "Symbols known.", "%d", st_hub.nsymbols);
    st_prom_put(b, "kline_streamer_placeholder_symbols", "gauge",
                "Symbols clients follow that have not traded yet (count against --max-symbols).", "%d",
                st_hub.nplaceholders);
}

static void st_prom_process(kp_buf_t *b)
{
    double rss, cpu;
    if (metrics_process(&rss, &cpu) < 0)
        return;
    st_prom_put(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "%.0f", rss);
    st_prom_put(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
                "%.2f", cpu);
}

char *st_prom_render(size_t *len)
{
    kp_buf_t b;
    kp_buf_init(&b, ST_PROM_MAX);
    if (st_buf_headroom(&b) < 0)
        return NULL;
    st_prom_gauges(&b);
    st_prom_counters(&b);
    st_prom_process(&b);
    st_stage_render(&b);
    kp_buf_puts(&b, "# HELP kline_streamer_subscriptions Subscribed clients per symbol.\n"
                    "# TYPE kline_streamer_subscriptions gauge\n");
    for (struct st_symbol *y = st_hub.symbols; y; y = y->next)
        if (y->nsubs)
            kp_buf_printf(&b, "kline_streamer_subscriptions{symbol=\"%s\"} %d\n", y->name, y->nsubs);
    size_t n;
    char *p = kp_buf_take(&b, &n); /* the caller owns it (st_http_send) */
    *len = n - LWS_PRE;
    return p;
}
