/*
 * prod.h — what the parts of kline-producer share: configuration, the per-symbol
 * state, and the entry points of each concern (one .c file each).
 *
 * Threads: the main thread runs the lws service loop (every WebSocket connection,
 * the periodic tick, publishing live klines). REST backfill runs on worker threads
 * (backfill.c). The per-symbol sequencing state is guarded by one mutex (seq.c); the
 * counters are atomics (stats.c).
 */
#ifndef PROD_H
#define PROD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kline.h"
#include "kq.h"

#define PROD_NAME "kline-producer"
#define PROD_NONE INT64_MIN           /* "no open_time yet" */

typedef struct prod_shard { int k, n; } prod_shard_t;

typedef struct prod_cfg {
    const char *brokers;
    const char *topic;
    const char *dlq_topic;            /* NULL or "" = dead letters off */
    const char *resume_topic;         /* <topic>.resume: where --since told us to start */
    const char *output;               /* NULL = Kafka; "-" = stdout; else a file path */
    char **symbols;                   /* upper case, NULL-terminated (cfg_split_list) */
    int nsymbols;
    bool all_symbols;
    const char *quote_asset;
    const char *interval;
    int64_t interval_ms;
    const char *ws_url;
    const char *rest_url;
    int streams_per_conn;
    int partitions, replication, min_insync; /* 0: automatic (kq_topic_spec_t) */
    prod_shard_t shard; /* --shard K/N: this producer follows the symbols of shard K */
    long long retention_ms;
    int64_t max_conn_age_ms;
    long long watchdog_ms, dead_after_ms;  /* long long: written by the option table's INT */
    int rest_weight_limit;
    int rest_workers;
    size_t max_frame;
    bool provisional;
    int flush_timeout_ms;
    int metrics_port;
    const char *metrics_host;         /* NULL = every local address */
    int stats_interval;
    int64_t since_ms;                 /* PROD_NONE = not given */
    int64_t resume_horizon_ms;        /* how far back resume looks; 0 = the whole topic */
    bool backfill_mode;
    int64_t bf_from, bf_to;           /* --backfill, open_time range, both inclusive */
    bool bf_to_now;                   /* TO was "now" or omitted */
    const char *replay;
    double replay_speed;
    int buffer_per_symbol;            /* live klines held per symbol while it backfills */
    kq_xopts_t xopts;
} prod_cfg_t;

extern prod_cfg_t prod_cfg;

/* Set by any part that hit an unrecoverable runtime error (stdout closed, Kafka
 * dead connection, a Kafka client that cannot be rebuilt): the main loop stops and the
 * process exits 1. A Kafka fatal error alone does not stop it (publish.c rebuilds). */
extern atomic_int prod_failed;
/* Set when the workers and the loop must stop (signal, failure, end of a batch mode). */
extern atomic_int prod_stopping;

/* ---- symbols.c: the symbol table ---- */

/* A live kline held back while its symbol backfills, with its receive times. */
typedef struct prod_held {
    kline_t k;
    int64_t recv_ms, recv_us;
} prod_held_t;

typedef struct prod_sym {
    char name[KLINE_SYMBOL_MAX];      /* upper case */
    int64_t last_pub;                 /* open_time of the last kline published, PROD_NONE */
    bool last_closed;                 /* was that kline closed (x=true)? */
    bool backfilling;                 /* a REST job owns the gap; live klines are held */
    int64_t pending_max;              /* newest live open_time not held (buffer full) */
    bool pending_guess;               /* pending_max is our clock's guess (start-up catch-up,
                                       * stale scan), not a kline the exchange sent: never skip
                                       * past what REST returned for it */
    int64_t stale_mark;               /* newest kline of any symbol when the silent-symbol
                                       * scan last fetched this one (PROD_NONE: never) */
    prod_held_t *held;                /* malloc'd while backfilling, freed when done */
    int nheld, capheld;
} prod_sym_t;

extern prod_sym_t *prod_syms;
extern int prod_nsyms;

/* Builds the table from names (any case). 0 / -1 with errbuf. */
int  sym_table_init(char **names, int n, char *errbuf, size_t errlen);
void sym_table_free(void);
/* Lookup by exact upper-case name; NULL if not ours. */
prod_sym_t *sym_find(const char *name);
/* GET {rest}/api/v3/exchangeInfo → trading symbols (optionally one quote asset).
 * *out is a cfg_split_list-style list the caller frees with cfg_list_free. */
int  sym_fetch_all(const char *rest_url, const char *quote_asset, char ***out,
                   char *errbuf, size_t errlen);

/* ---- publish.c: the sink (Kafka or NDJSON on a stream) ---- */
int  pub_init(char *errbuf, size_t errlen);
/* Publishes one kline (value = kline_format, key = symbol, timestamp = recv_ms).
 * Never drops: a full queue is polled until there is room. 0 / -1 (sink dead). */
int  pub_kline(const kline_t *k, int64_t recv_ms, int64_t recv_us);
/* Dead letter: raw bytes verbatim, key = origin, header reason (Kafka), or a log line. */
void pub_reject(const void *raw, size_t len, const char *origin, const char *reason);
/* Serves delivery reports and pushes out buffered output; cheap, call often. */
void pub_poll(void);
/* Waits for outstanding deliveries (bounded). 0 all delivered and none failed, -1 else. */
int  pub_flush(int timeout_ms);
void pub_close(void);
bool pub_is_kafka(void);
/* Records, per symbol, that everything from `from` on is owed (start with --since), in
 * the compacted <topic>.resume: a producer that dies before a symbol's first kline is
 * out still hands that symbol's start to the next one. Asynchronous: the streams open
 * at once, and the backfill waits until Kafka acknowledged every record. */
int  pub_resume_points(int64_t from, char *errbuf, size_t errlen);
bool pub_resume_points_durable(void);

/* ---- seq.c: per-symbol order, dedupe, gap detection ---- */
void seq_init(void);
/* A live (WebSocket) kline of a symbol of ours. */
void seq_live(prod_sym_t *s, const kline_t *k, int64_t recv_ms, int64_t recv_us);
/* Called by a backfill worker: REST klines of s (in order), published if new. */
void seq_rest(prod_sym_t *s, const kline_t *ks, int n);
/* Called by a backfill worker when a fetch is done: publishes held klines that now
 * follow on, and returns 1 with the next gap [*from, *to] to fetch, or 0 when the
 * symbol is live again. *proven: the exchange showed data at or after *to (a live
 * kline), so seconds REST lacks in the gap are truly missing; false when *to is only a
 * guess from a clock. */
int  seq_next_gap(prod_sym_t *s, int64_t *from, int64_t *to, bool *proven);
/* Skip a gap REST could not fill (the exchange has no klines there). */
void seq_skip_to(prod_sym_t *s, int64_t open_time);
/* A fetch of [.., to] is done; newest = newest open_time REST returned (PROD_NONE if
 * none). A proven gap is skipped up to `to`; a guessed one only up to newest (the
 * exchange may simply not be there yet: live klines will show the rest), and the
 * guess is dropped so the job ends or moves on to held live klines. */
void seq_gap_done(prod_sym_t *s, int64_t to, bool proven, int64_t newest);
/* Seeds last_pub (start-up resume). Keeps the later of the two. */
void seq_seed(prod_sym_t *s, int64_t open_time, bool closed);
/* Starts a backfill job for s from last_pub + 1 interval up to `to` (start-up, --since). */
void seq_request(prod_sym_t *s, int64_t to);
/* Start-up catch-up of every symbol behind our clock (ws.c calls it once, shortly after
 * the streams opened). Returns how many. */
int  seq_catch_up(int64_t now_ms);
/* Fills the backlog gauges of prod_stats: what is still owed, by our clock. */
void seq_backlog(int64_t now_ms);
/* A symbol whose stream went silent while others kept publishing shows no gap by
 * itself: backfill every symbol more than lag_ms behind the newest. A symbol that
 * never delivered is fetched from none_from (aligned open_time; PROD_NONE = leave it).
 * Returns how many. */
int  seq_stale_scan(int64_t lag_ms, int64_t none_from);

/* ---- backfill.c: REST worker threads ---- */
int  bf_start(char *errbuf, size_t errlen);   /* starts the workers */
void bf_enqueue(prod_sym_t *s);               /* s->backfilling was just set */
void bf_stop(void);                           /* joins the workers */
int  bf_idle(void);                           /* 1 if no job is queued or running */

/* ---- ws.c: the WebSocket connections ---- */
int  ws_init(char *errbuf, size_t errlen);
/* Runs the service loop until prod_stopping / a signal. */
void ws_run(void);
void ws_wake(void);                           /* lws_cancel_service, any thread */
void ws_destroy(void);

/* ---- msg.c: one exchange message ---- */
enum msg_kind { MSG_KLINE, MSG_REPLY, MSG_SHUTDOWN, MSG_REJECTED, MSG_SKIPPED };
enum msg_kind msg_handle(const char *buf, size_t len, const char *origin,
                         int64_t recv_ms, int64_t recv_us);

/* ---- resume.c: where each symbol stopped, from the topic ---- */
int  resume_from_kafka(char *errbuf, size_t errlen);

/* ---- replay.c ---- */
/* --replay PATH: a file (plain or gzip), '-' (stdin) or a directory of data.binance.vision
 * files. 0, -1 failure, -2 usage error (errbuf). */
int  replay_run(const char *path, char *errbuf, size_t errlen);

/* ---- replay_files.c: gzip input, file names, archive directories ---- */
struct kp_line;
typedef struct replay_gz replay_gz_t;
/* The file starts with the gzip magic bytes. */
bool replay_is_gzip(const char *path);
/* Lines of a gzip file, each held to max_line bytes like kp_lines (kp_lines_next's
 * results: 1 a line, 2 the end, -1 error; a file cut short is an error). */
replay_gz_t *replay_gz_open(const char *path, size_t max_line, char *errbuf, size_t errlen);
int  replay_gz_next(replay_gz_t *g, struct kp_line *ln, char *errbuf, size_t errlen);
long long replay_gz_lineno(const replay_gz_t *g);
void replay_gz_close(replay_gz_t *g);
/* A data.binance.vision name, SYMBOL-INTERVAL-YYYY-MM[-DD].csv[.gz] (any directory
 * before it): true, with the symbol and the interval copied out. */
bool replay_name_parse(const char *path, char *sym, size_t symlen, char *interval, size_t ivlen);
/* The files with such names in dir and its subdirectories (one level: DIR/SYMBOL/...),
 * sorted by path (so by symbol, then date): a NULL-terminated list (replay_list_free), its
 * length as the result, -1 on error. */
int  replay_dir_list(const char *dir, char ***list, char *errbuf, size_t errlen);
void replay_list_free(char **list);

/* ---- stats.c ---- */
#define STATS_LAT_BUCKETS 128
typedef struct prod_stats {
    atomic_ullong received, published, published_ws, published_rest, published_replay;
    atomic_ullong rejected, duplicates, provisional_skipped, replies;
    atomic_ullong reconnects, connects, connect_errors, shutdowns, watchdog_fires, conn_age_renewals;
    atomic_ullong backfill_jobs, backfilled, rest_missing, rest_requests, rest_429, rest_errors, rest_giveups;
    atomic_ullong delivered, delivery_errors, queue_full_waits;
    atomic_ullong kafka_rebuilds, kafka_taken_back; /* publish.c: fatal errors survived */
    atomic_ullong held, held_overflow;
    atomic_llong  last_rx_mono_ms;            /* any connection */
    atomic_llong  backlog_symbols;            /* symbols with a gap not filled yet (gauge) */
    atomic_llong  backlog_klines;             /* seconds owed: their gaps up to our clock (gauge) */
    atomic_llong  backlog_oldest_ms;          /* oldest owed second, ms behind the exchange (gauge) */
    atomic_llong  backlog_peak;               /* highest backlog_klines seen */
    atomic_ullong lat_hist[128];              /* receive → ack, log-linear µs buckets (stats.c) */
} prod_stats_t;
extern prod_stats_t prod_stats;

void stats_latency(int64_t us);
/* p in (0,1): upper bound in µs of the bucket holding that quantile; 0 if none. */
int64_t stats_latency_quantile(double p);
int  stats_start(char *errbuf, size_t errlen); /* metrics endpoint, if configured */
void stats_tick(int64_t now_mono_ms);          /* periodic stats line, backlog warning */
void stats_stop(void);
void stats_log_line(void);
/* Per-connection gauges, filled by ws.c (read by the metrics thread). */
#define STATS_MAX_CONNS 64
extern atomic_llong stats_conn_last_rx[STATS_MAX_CONNS]; /* mono ms, 0 = not open */
extern atomic_int stats_nconns;

#endif
