/*
 * sim.h — kline-sim, the simulated Binance exchange used by tests and benchmarks.
 *
 * One process, one lws service thread. The sim clock maps real time to "sim
 * seconds" (index s = 0,1,2,... → open_time = start + s*1000). Klines are a
 * pure function of (seed, symbol, second) plus a per-symbol state (last close,
 * next trade id) that is checkpointed every SIM_CKPT_EVERY seconds, so REST,
 * the stream and /truth always agree and nothing stores klines as JSON.
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct lws;
struct lws_context;

#define SIM_SYM_MAX      24      /* symbol name incl. NUL */
#define SIM_CKPT_EVERY   64      /* seconds between per-symbol state checkpoints */
#define SIM_SCALE        100000000LL /* decimals are fixed point, 8 places (Binance always sends 8) */
#define SIM_MSG_MAX      1024    /* one formatted kline event never needs more */

/* One kline in fixed point (1e-8 units). L is kept explicitly because replayed
 * data need not satisfy L = f + n - 1. */
typedef struct sim_k {
    int64_t o, h, l, c;
    int64_t v, q, V, Q;
    int64_t f, L;
    int64_t n;
} sim_k_t;

/* Random-walk state carried from one second to the next. */
typedef struct sim_state {
    int64_t close;
    int64_t next_trade;
} sim_state_t;

typedef struct sim_symbol {
    char     name[SIM_SYM_MAX];   /* upper case, e.g. BTCUSDT */
    char     lname[SIM_SYM_MAX];  /* lower case, for stream names */
    char     base[SIM_SYM_MAX];
    char     quote[8];
    bool     trading;             /* false: BREAK status in exchangeInfo, never streamed */
    uint64_t hash;                /* seeds this symbol's random walk */
    /* generation: state before second k*SIM_CKPT_EVERY is ckpt[k] */
    sim_state_t *ckpt;
    size_t   nckpt, capckpt;
    sim_state_t cur;              /* state before second g_sim.gen_next */
    /* replay: dense array over [0, replay_n) seconds, present[] marks rows */
    sim_k_t *replay;
    uint8_t *present;
} sim_symbol_t;

/* ---- global configuration and state (one service thread, so no locks) ---- */
typedef struct sim_cfg {
    char     host[128];
    int      port;
    const char *port_file;
    uint64_t seed;
    int64_t  start_ms;            /* open_time of sim second 0 */
    bool     start_given;
    double   speed;               /* sim seconds per real second; 0 = max */
    int64_t  duration;            /* sim seconds to generate; -1 unlimited */
    const char *replay;
    int      ping_interval, pong_timeout; /* seconds */
    const char *dump_truth;
    int      max_streams;
    int      msg_rate_limit;
    int64_t  max_conn_age;        /* seconds */
    int      rest_weight_limit;
    bool     provisional;
    bool     deflate;
    int      queue_secs;          /* ring depth: a client further behind is cut */
    int64_t  close_after_msgs;    /* per connection, 0 = never */
    int64_t  close_after_secs;
    int      shutdown_grace_ms;
} sim_cfg_t;

typedef struct sim_stats {
    uint64_t conns_total, conns_open, conns_refused, conns_closed_by_sim;
    uint64_t klines_sent, provisional_sent, control_sent, pings_sent, pongs_received;
    uint64_t malformed_sent, oversized_sent, duplicates_sent, reordered, shutdowns_sent;
    uint64_t overflow_closes, rate_limit_closes, pong_timeouts;
    uint64_t rest_requests, rest_429, rest_418, rest_errors;
    uint64_t ws_requests, ws_errors;
    uint64_t bytes_sent;
} sim_stats_t;

typedef struct sim_faults {
    int64_t stall_until_ms;     /* wall ms; while now < this, klines are not sent */
    int64_t refuse_until_ms;    /* wall ms; new WS connections get 503 */
    int64_t malformed, oversized, duplicate, reorder; /* pending counts */
    int64_t rest429, rest418;
    uint64_t stall_epoch;       /* bumped at the end of each stall; clients skip ahead */
    uint64_t close_epoch;       /* bumped by /control/close */
    uint64_t shutdown_epoch;    /* bumped by /control/shutdown */
    bool     close_abrupt;
} sim_faults_t;

typedef struct sim {
    sim_cfg_t    cfg;
    sim_symbol_t *syms;
    size_t       nsyms;
    size_t       ntrading;
    struct lws_context *ctx;
    /* clock */
    int64_t      real0_ms;        /* wall ms at which sim second 0 begins */
    int64_t      gen_next;        /* seconds [0, gen_next) are generated and final */
    int64_t      gen_limit;       /* stop at this many seconds (duration / replay length); -1 none */
    /* ring of recent seconds for the stream: ring[(s % ring_n) * nsyms + i] */
    sim_k_t     *ring;
    int64_t      ring_n;
    /* replay */
    int64_t      replay_n;
    sim_stats_t  st;
    sim_faults_t ft;
    volatile int stop;
} sim_t;

extern sim_t g_sim;

/* gen.c */
uint64_t sim_hash64(uint64_t x);
void sim_symbols_init_generated(void);
/* Fills *k for (symbol i, second s) given the state before s; updates *st.
 * Returns 1 if the second has a kline, 0 if not (replay gap). */
int  sim_gen_step(size_t i, int64_t s, sim_state_t *st, sim_k_t *k);
/* Advances the generator over second gen_next for every symbol (ring + checkpoints). */
int  sim_gen_advance(char *err, size_t errlen);
/* The kline of (i, s) for s < gen_next, from the ring or regenerated. 1/0 like sim_gen_step. */
int  sim_kline_get(size_t i, int64_t s, sim_k_t *k);
/* Iterates seconds [s0, s1] of symbol i in order, calling fn for each present kline;
 * stops early if fn returns non-zero (and returns that value). */
typedef int (*sim_kline_fn)(void *arg, size_t i, int64_t s, const sim_k_t *k);
int  sim_kline_range(size_t i, int64_t s0, int64_t s1, sim_kline_fn fn, void *arg);
/* Provisional (x=false) view of the kline of second s: first half of its trades. */
void sim_provisional(const sim_k_t *full, sim_k_t *prov);
void sim_symbol_set_name(sim_symbol_t *y, const char *name);
int  sim_symbol_find(const char *name); /* case-insensitive; -1 if unknown */
int64_t sim_open_time(int64_t s);
/* Sim seconds that should be complete by wall time now (realtime mode). */
int64_t sim_due_seconds(int64_t now_ms);

/* One minute of a symbol rolled up by the bar rules of docs/aggregator.md: a second
 * independent of the aggregator's SQL, for /truth?interval=1m. */
typedef struct sim_bar {
    int64_t open_ms;    /* the minute */
    sim_k_t k;          /* o/c of the first/last traded second, h/l over them, sums */
    int64_t rows;       /* seconds in the bar */
    bool traded;        /* any second with trades */
    bool overflow;      /* a sum left int64 */
} sim_bar_t;

/* fmt.c — all return the length written; buffers of SIM_MSG_MAX suffice */
int  sim_fmt_dec(char *out, int64_t v);                 /* 8 decimals */
char *sim_fmt_i64(char *out, int64_t v);                /* returns end */
int  sim_fmt_event(char *out, size_t i, int64_t s, const sim_k_t *k, bool closed,
                   int64_t E, bool combined);
int  sim_fmt_rest_row(char *out, int64_t s, const sim_k_t *k);
int  sim_fmt_canonical(char *out, size_t i, int64_t s, const sim_k_t *k);
int  sim_fmt_bar(char *out, size_t i, const sim_bar_t *b);
int  sim_parse_dec(const char *s, size_t len, int64_t *out); /* 0 / -1 */

/* replay.c */
int  sim_replay_load(const char *path, char **symbols, int nsymbols, char *err, size_t errlen);

/* ws.c */
int  sim_ws_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);
void sim_ws_kick(void);            /* make every stream connection writeable */
void sim_ws_housekeeping(int64_t now_ms);
bool sim_ws_all_have_room(void);   /* --speed max: may the generator advance? */
size_t sim_ws_count(void);
size_t sim_ws_session_size(void);
int  sim_ws_confirm(struct lws *wsi);

/* rest.c (HTTP: REST, /truth, /control) */
int  sim_http_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);
int  sim_truth_dump_file(const char *path, char *err, size_t errlen);
size_t sim_http_session_size(void);

/* faults.c */
/* Applies a control action ("stall", "refuse", ... with a query string "secs=3&n=2").
 * Writes a JSON reply into out. Returns the HTTP status. */
int  sim_control(const char *name, const char *query, char *out, size_t outlen);
int  sim_stats_json(char *out, size_t outlen);
int64_t sim_now_ms(void);

/* main.c */
void sim_log(const char *lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
