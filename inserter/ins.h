/*
 * ins.h — kline-inserter internals shared by its files (not a public API).
 *
 *   main.c     set-up, one of the two loops, tear-down
 *   opts.c     the option table (--help, man page, environment) and cross-option checks
 *   loop.c     the Kafka loop and the -i loop: flush by size or age, periodic work, shutdown
 *   batch.c    accumulate records: dedupe by (symbol, open_time), rejects, offsets
 *   store.c    one PostgreSQL transaction per batch: COPY + upsert + rejected + checkpoint
 *   consume.c  Kafka consumer group: subscribe, rebalance, pause/resume, offset commit
 *   input.c    NDJSON from stdin or a file (-i)
 *   flush.c    write a batch, commit offsets, PostgreSQL outage state (pause, backoff)
 *   stats.c    counters, histograms, Prometheus text, periodic stats line
 */
#ifndef INS_H
#define INS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "kline.h"
#include "kq.h"
#include "lines.h"

#define INS_PROG "kline-inserter"

/* Where a record came from. Kafka records name a topic by index (the klines topic or
 * the dead-letter topic); records from -i have no topic and no partition. */
enum { INS_TOPIC_NONE = -1, INS_TOPIC_KLINES = 0, INS_TOPIC_DLQ = 1 };

typedef struct ins_opts {
    const char *brokers;
    const char *topic;
    const char *dlq_topic;      /* "" = do not consume dead letters */
    const char *group;
    const char *db_url;
    const char *input;          /* NULL = Kafka; "-" = stdin; else a file */
    const char *symbol_hint;    /* for REST/CSV rows on -i, which carry no symbol */
    long long batch_rows;
    int64_t flush_ms;
    int64_t pg_timeout_ms;      /* bound on one batch transaction */
    int64_t connect_timeout_ms; /* start-up wait for PostgreSQL */
    int64_t pg_connect_timeout_ms; /* bound on one connection attempt */
    long long rejected_prefix;  /* bytes of a rejected input stored */
    int64_t stats_interval_ms;  /* 0 = no stats line */
    const char *metrics_host;   /* NULL = every interface */
    int metrics_port;
    int log_level;
    kq_xopts_t xopts;
} ins_opts_t;

/* ---- opts.c ---- */

/* Command line > environment > defaults into *o; a usage error exits 2 (after printing
 * the reason and the synopsis), --help and --version exit 0. The strings point into
 * argv, environ or the option table: they live as long as the process. */
void ins_opts_parse(int argc, char **argv, ins_opts_t *o);

/* ---- loop.c ---- */

struct ins_app;
/* Consume Kafka until a stop signal, then write what is in hand. The exit code. */
int ins_loop_kafka(struct ins_app *app);
/* Read -i until its end (or a stop signal), then write what is in hand. The exit code. */
int ins_loop_input(struct ins_app *app);

/* ---- batch.c ---- */

typedef struct ins_row {
    kline_t k;
    int32_t part;   /* Kafka partition of the record kept, -1 for -i */
    int64_t off;    /* its offset, -1 for -i */
    int64_t ts_ms;  /* its Kafka timestamp (epoch ms), 0 when unknown */
} ins_row_t;

/* Default bound on the bytes of a rejected input stored in rejected.raw (--rejected-prefix):
 * junk of any size costs at most this much memory and storage; its size and SHA-256 are kept. */
#define INS_REJECT_PREFIX_DEFAULT (64 * 1024)

typedef struct ins_reject {
    char  *raw;          /* owned copy of the input's first len bytes, freed by ins_batch_reset */
    size_t len;          /* bytes held: at most the batch's rej_prefix */
    int64_t size;        /* bytes of the whole input */
    unsigned char sha256[32]; /* of the whole input: the redelivery dedupe key with origin */
    char   reason[256];  /* printable ASCII */
    char   origin[320];  /* printable ASCII */
    int    topic;
    int32_t part;
} ins_reject_t;

/* Consumed offset range of one (topic, partition) in the current batch. */
typedef struct ins_pos {
    int     topic;
    int32_t part;
    int64_t first, last;
} ins_pos_t;

typedef struct ins_batch {
    ins_row_t *rows;      /* deduplicated: one per (symbol, open_time) */
    size_t nrows, caprows;
    uint32_t *slots;      /* open addressing: row index + 1, 0 = empty */
    size_t nslots;        /* power of two, > 2 * nrows */
    ins_reject_t *rej;
    size_t nrej, caprej;
    ins_pos_t *pos;
    size_t npos, cappos;
    size_t nrecords;      /* every record taken in: rows, duplicates, rejects */
    size_t ndup;          /* records merged into an existing row */
    int64_t started_ms;   /* monotonic time of the first record */
    bool minute_end;      /* holds the closed last second of a live minute: write now */
    size_t rej_prefix;    /* bytes of a rejected input kept (INS_REJECT_PREFIX_DEFAULT) */
} ins_batch_t;

void ins_batch_init(ins_batch_t *b);
void ins_batch_free(ins_batch_t *b);
void ins_batch_reset(ins_batch_t *b);
/* Adds a parsed kline; a second record for the same (symbol, open_time) replaces the
 * first unless that would put a provisional kline over a closed one. 0, -1 on ENOMEM. */
int ins_batch_add_kline(ins_batch_t *b, const kline_t *k, int topic, int32_t part,
                        int64_t off, int64_t ts_ms);
/* The row of (symbol, open_time), or NULL. */
const ins_row_t *ins_batch_lookup(const ins_batch_t *b, const char *symbol, int64_t open_time);
/* Adds a rejected input: its first rej_prefix bytes are copied, its size and SHA-256
 * computed from all of it. 0, -1 on ENOMEM. */
int ins_batch_add_reject(ins_batch_t *b, const void *raw, size_t len, const char *reason,
                         const char *origin, int topic, int32_t part, int64_t off);
/* Removes every record of the partitions for which drop(topic, part, ud) is true
 * (partitions revoked while their records could not be written). */
void ins_batch_drop(ins_batch_t *b, bool (*drop)(int topic, int32_t part, void *ud), void *ud);
/* Copies s into dst (size dstlen) with every byte outside printable ASCII as '?'. */
void ins_printable(char *dst, size_t dstlen, const void *s, size_t len);

/* ---- store.c ---- */

typedef struct ins_store {
    const char *url;
    PGconn *conn;          /* owned; NULL while disconnected */
    int op_timeout_ms;
    bool ever_connected;
    bool direct_ok;        /* try COPY straight into kline_1s_lean first (see store.c) */
    int64_t wide_cut_ms;   /* an upgraded database: kline_1s_wide holds the hours before it;
                            * INT64_MIN when there is no kline_1s_wide */
} ins_store_t;

typedef struct ins_result {
    long long inserted, updated, unchanged;
    long long rejected_new;    /* rejected rows actually stored (redelivered ones are not) */
    long long checkpoints;
    bool direct;               /* written by the direct COPY, not the upsert */
} ins_result_t;

/* Start-up: connect (retrying up to timeout_ms) and apply the migrations. */
int ins_store_open(ins_store_t *s, const char *url, int op_timeout_ms, int timeout_ms,
                   char *errbuf, size_t errlen);
/* Writes the batch in one transaction. 0 = committed. -1 = not committed or outcome
 * unknown (the connection is then dropped; the next call reconnects). Retrying the
 * same batch is always safe: see store.c. topic names the klines topic for checkpoints. */
int ins_store_write(ins_store_t *s, const ins_batch_t *b, const char *topic,
                    ins_result_t *res, char *errbuf, size_t errlen);
/* Is PostgreSQL usable (reconnecting if needed)? 0 / -1 with the reason. */
int ins_store_probe(ins_store_t *s, char *errbuf, size_t errlen);
void ins_store_close(ins_store_t *s);

/* ---- partition.c ---- */

/* Makes sure every hour of the batch, and the next wall-clock hour, has its kline_1s
 * partition. Runs outside a transaction. -1 only when the connection is gone; any other
 * failure is logged and the rows land in kline_1s_default. */
int ins_partition_ensure(PGconn *c, const ins_batch_t *b, int64_t deadline, char *errbuf,
                         size_t errlen);

/* ---- copybin.c ---- */

/* PostgreSQL's binary COPY: the header and trailer (each fits INS_COPYBIN_HEADER_MAX),
 * and one kline_1s_lean row of INS_STORE_LEAN_COLS (fits INS_COPYBIN_ROW_MAX). They
 * return the bytes written to out. */
#define INS_COPYBIN_HEADER_MAX 19
#define INS_COPYBIN_ROW_MAX    320
size_t ins_copybin_header(unsigned char *out);
size_t ins_copybin_trailer(unsigned char *out);
size_t ins_copybin_lean(unsigned char *out, const kline_t *k, int32_t symbol_id);

/* ---- symbol_ids.c ---- */

/* The table of ids, room for at least one batch of batch_rows records. 0 / -1 (errbuf). */
int ins_symbols_init(long long batch_rows, char *errbuf, size_t errlen);
void ins_symbols_free(void);

/* Makes sure every symbol of the batch has its kline_symbol id at hand (registering new
 * ones). Runs outside a transaction. 0 / -1 (errbuf): the batch cannot be written yet. */
int ins_symbols_ensure(PGconn *c, const ins_batch_t *b, int64_t deadline, char *errbuf,
                       size_t errlen);
/* The id of a symbol ins_symbols_ensure has seen, -1 for another. */
int32_t ins_symbol_id(const char *name);

/* ---- stats.c ---- */

void ins_stats_batch(const ins_result_t *r, size_t nrecords, size_t ndup, size_t nrej,
                     int64_t latency_us);
void ins_stats_e2e(int64_t ms);          /* one row: Kafka timestamp → committed */
void ins_stats_reconnect(void);
void ins_stats_pg_error(void);
void ins_stats_commit_error(void);
void ins_stats_set_lag(long long lag);
void ins_stats_set_pending(long long n);
void ins_stats_set_pg_up(bool up);
/* /metrics on host:port (host NULL = every interface). */
int  ins_stats_start_http(const char *host, int port, char *errbuf, size_t errlen);
void ins_stats_stop_http(void);
void ins_stats_log(void);                /* the periodic one-line summary */

/* ---- consume.c ---- */

struct ins_app;

typedef struct ins_kafka {
    rd_kafka_t *rk;
    const char *topic, *dlq;
    bool paused;          /* partitions paused while PostgreSQL is unavailable */
    bool warned_missing[2];
    rd_kafka_resp_err_t last_err;
} ins_kafka_t;

int  ins_kafka_open(struct ins_app *app, char *errbuf, size_t errlen);
/* Polls once (serves rebalances and heartbeats) and adds what arrives to the batch. */
void ins_kafka_poll(struct ins_app *app, int timeout_ms);
void ins_kafka_pause(struct ins_app *app);
void ins_kafka_resume(struct ins_app *app);
/* Commits offset+1 of every partition in the batch (synchronous). */
void ins_kafka_commit(struct ins_app *app, const ins_batch_t *b);
long long ins_kafka_lag(struct ins_app *app);
void ins_kafka_close(struct ins_app *app);

/* ---- input.c ---- */

typedef struct ins_input {
    kp_lines_t lines;     /* owned: the bounded line reader (common/lines.h) */
    const char *name;     /* "-" or the path, for the origin of rejects */
    bool eof;             /* the reader said end of input */
} ins_input_t;

int  ins_input_open(ins_input_t *in, const char *name, char *errbuf, size_t errlen);
/* Waits up to timeout_ms for input and adds every complete line to the batch.
 * Returns 1 at end of input (after the last line), 0 otherwise, -1 on a read error. */
int  ins_input_poll(struct ins_app *app, int timeout_ms);
void ins_input_close(ins_input_t *in);

/* ---- flush.c ---- */

typedef struct ins_app {
    ins_opts_t opt;
    ins_batch_t batch;
    ins_store_t store;
    ins_kafka_t kafka;
    ins_input_t input;
    bool kafka_mode;
    bool pg_down;          /* last write failed: consumption paused, retrying */
    int64_t retry_at_ms;   /* monotonic: no write attempt before this */
    int backoff_ms;
} ins_app_t;

/* Writes the origin of a record (for `rejected`) into out; called only for rejects, as
 * formatting it for every record showed in profiles. */
typedef void (*ins_origin_fn)(char *out, size_t outlen, const void *ctx);
/* Parses one input record and adds it to the batch as a row or as a reject. 0, -1 ENOMEM. */
int  ins_take(ins_app_t *app, const char *buf, size_t len, ins_origin_fn origin,
              const void *origin_ctx, int topic, int32_t part, int64_t off, int64_t ts_ms);
/* True when the batch should be written now (full or old enough, and not backing off). */
bool ins_flush_due(ins_app_t *app, int64_t now_ms);
/* Milliseconds until ins_flush_due may turn true (capped by cap_ms). */
int  ins_flush_wait_ms(ins_app_t *app, int64_t now_ms, int cap_ms);
/* Writes the batch, commits its offsets, resets it. 0 on success, -1 if it is kept
 * for a later retry (consumption paused, backoff armed, state change logged). */
int  ins_flush(ins_app_t *app);

#endif
