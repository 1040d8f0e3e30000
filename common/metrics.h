/* metrics.h — a tiny Prometheus text endpoint for programs that have no HTTP server of
 * their own (producer, inserter, aggregator). The streamer serves /metrics itself. */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>

/* Called on the metrics thread: write Prometheus text into buf (at most len bytes),
 * return the length written. Must only read atomics / lock-protected state. */
typedef size_t (*metrics_render_fn)(char *buf, size_t len, void *ud);

/* Starts a background thread answering GET /metrics on host:port. 0 / -1. */
int  metrics_http_start(const char *host, int port, metrics_render_fn fn, void *ud,
                        char *errbuf, size_t errlen);
void metrics_http_stop(void);

/* Appends one "# HELP/# TYPE/name value" block; returns new offset. */
size_t metrics_put(char *buf, size_t len, size_t off, const char *name, const char *type,
                   const char *help, double value);

/* The process's RSS (bytes) and CPU time (user + system, seconds), from /proc/self.
 * 0, or -1 when /proc cannot be read. */
int metrics_process(double *rss_bytes, double *cpu_seconds);
/* Appends process_resident_memory_bytes and process_cpu_seconds_total (the names
 * Prometheus client libraries use), as metrics_put does. The HTTP endpoint above adds
 * them to every program's /metrics by itself. */
size_t metrics_put_process(char *buf, size_t len, size_t off);

#endif
