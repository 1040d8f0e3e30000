/*
 * streamer.h — internals of kline-streamer shared by its files.
 *
 * Threads: ONE lws service thread owns every structure below except the feed queue
 * (feed.c) and the database job queue (db.c), which are the only two places where
 * another thread hands something to it (both under a mutex, followed by
 * lws_cancel_service() so LWS_CALLBACK_EVENT_WAIT_CANCELLED drains them).
 */
#ifndef STREAMER_H
#define STREAMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "buf.h"
#include "kline.h"
#include "kq.h"
#include "proto.h"

#define ST_PROG "kline-streamer"

struct st_db_job;

/* ---- configuration (opts.c: the option table fills it; read-only afterwards) ---- */
struct st_config {
    char listen_host[256];
    int port;
    const char *input;          /* NULL: Kafka; "-": NDJSON from stdin */
    const char *brokers;
    const char *topic;
    kq_xopts_t xopts;
    const char *database_url;   /* NULL: libpq PG* defaults */
    char web_root[4096];
    int sma_n;
    int stale_secs;
    int max_msg;                /* bytes per incoming client message */
    int max_rate;               /* incoming client messages per second */
    int max_subs;               /* explicit symbols per client */
    int max_clients;
    int max_symbols;            /* symbols known to the hub (placeholders from clients count) */
    int slow_client_ms;
    int queue_max;              /* distinct pending updates per client */
    long long max_pending_bytes; /* bytes a client may have queued (replies + updates) */
    int max_placeholders;       /* untraded names one client may hold */
    int catchup_secs;           /* Kafka: read back this much of every partition at start */
    char **allow_origins;       /* NULL: any origin */
    const char *tls_cert;
    const char *tls_key;
    const char *badge;          /* NULL: no badge */
    int stats_interval;
    int db_workers;
    int db_timeout_ms;          /* deadline of one query from its submission */
    int coalesce_ms;            /* feed drains at most once per window (0 = every record) */
    bool event_loop_uv;         /* libuv (epoll) instead of lws's poll() loop */
    bool event_loop_ev;         /* libev (epoll) instead */
    bool stage_stamps;          /* per-stage latency histograms on /metrics (stage.c) */
};

/* Parses argv and the environment into *c; exits 2 on a usage error, 0 after --help. */
void st_opts_parse(int argc, char **argv, struct st_config *c);

/* ---- shared, refcounted message buffers (lws thread only: refs are not atomic) ---- */
typedef struct st_msg {
    int refs;
    int64_t ev_ms;              /* --stage-stamps: event_time of the kline it carries, 0 none */
    kp_buf_t b;                 /* LWS_PRE bytes of headroom, then the payload (owned) */
} st_msg_t;

st_msg_t *st_msg_new(size_t cap);                 /* refs = 1, empty payload; NULL on OOM */
st_msg_t *st_msg_dup(const char *s, size_t len);  /* refs = 1 */
static inline char *st_msg_payload(const st_msg_t *m) { return m->b.data + LWS_PRE; }
static inline size_t st_msg_len(const st_msg_t *m) { return m->b.len - LWS_PRE; }
static inline st_msg_t *st_msg_ref(st_msg_t *m) { if (m) m->refs++; return m; }
void st_msg_unref(st_msg_t *m);                   /* frees at 0; NULL is fine */
/* Appends to a message being built; -1 when out of memory (the message is left as it was). */
int st_msg_append(st_msg_t *m, const char *s, size_t len);
int st_msg_appendf(st_msg_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same without printf's format parsing, for what every kline update carries (the
 * updates of a 2,000-symbol burst spent ~7 % of the streamer's CPU in vfprintf). A double
 * is written as printf's %.10g. */
int st_msg_puts(st_msg_t *m, const char *s);
int st_msg_put_i64(st_msg_t *m, long long v);
int st_msg_put_g10(st_msg_t *m, double v);
/* Finishes a message built with appends: rc is theirs (0 or -1); appends tail if all went
 * well. Returns m, or NULL after dropping it when anything failed. */
st_msg_t *st_msg_end(st_msg_t *m, int rc, const char *tail);
/* Empties b down to LWS_PRE bytes of headroom, where lws_write puts the frame or HTTP
 * header in front of the payload (messages, /metrics, /api/klines bodies). Any thread. */
int st_buf_headroom(kp_buf_t *b);

/* ---- indicators (indicators.c): per-symbol live 1m bar, SMA, crossover ---- */
struct st_bar {
    int64_t open_time;          /* minute start, epoch ms; 0: no bar yet */
    char open[KLINE_DEC_MAX], high[KLINE_DEC_MAX], low[KLINE_DEC_MAX], close[KLINE_DEC_MAX];
    double volume;              /* display only */
    int64_t trades;
    int seconds;                /* 1s klines folded in */
    int64_t last_second;        /* open_time of the newest second folded in */
    bool has_trades;
};

struct st_ind {
    struct st_bar bar;
    double *closes;             /* ring of the last sma_n closed bar closes (owned) */
    int n, head, count;
    int side;                   /* -1 price below SMA, +1 above, 0 unknown */
};

enum st_alert_dir { ST_ALERT_NONE = 0, ST_ALERT_BULLISH, ST_ALERT_BEARISH };

int  st_ind_init(struct st_ind *ind, int sma_n);
void st_ind_free(struct st_ind *ind);
/* Folds one 1s kline in; returns the crossover it caused (if any) in *dir with the price
 * and SMA at that moment. Older seconds than the bar's newest are ignored. */
void st_ind_update(struct st_ind *ind, const kline_t *k, enum st_alert_dir *dir,
                   double *price, double *sma);
bool st_ind_sma(const struct st_ind *ind, double *sma);   /* false until n closed bars */
/* Pre-fills the closed-bar ring from history (newest first) if no bar closed live yet and
 * the live bar is still the one starting at bar_open. */
void st_ind_seed(struct st_ind *ind, int64_t bar_open, const double *closes, int n);
/* Appends ,"bar":{...},"sma":x|null to a JSON object being built. */
int st_ind_json(const struct st_ind *ind, st_msg_t *m);

/* ---- per-client outgoing queue (outq.c, its only owner) ---- */
struct st_qnode {               /* one pending, latest-wins slot of a subscription */
    struct st_qnode *prev, *next;
    st_msg_t *msg;              /* owned reference while queued */
};

#define ST_CTL_MAX 32 /* replies in flight: a burst of --max-rate requests fits */

enum st_ctl_kind { ST_CTL_REPLY = 0, ST_CTL_SNAPSHOT, ST_CTL_FULL_SNAPSHOT };

struct st_outq {
    st_msg_t *ctl[ST_CTL_MAX];       /* replies/snapshots, sent before updates (owned refs) */
    enum st_ctl_kind ctl_kind[ST_CTL_MAX];
    int ctl_head, ctl_len;
    struct st_qnode *head, *tail;    /* pending updates, oldest first */
    int len;
    size_t bytes;                    /* payload bytes of everything queued (the bound) */
};

enum st_outq_rc { ST_OUTQ_OK = 0, ST_OUTQ_CONFLATED, ST_OUTQ_FULL, ST_OUTQ_OVER };

static inline bool st_outq_empty(const struct st_outq *q) { return !q->ctl_len && !q->head; }
/* Queues a reply; takes the caller's reference whatever the result. A full snapshot first
 * drops the snapshots still waiting (*superseded = how many); m NULL = a full snapshot the
 * sender builds when it is taken. FULL: ring full; OVER: the byte bound would be passed
 * (one message alone is always accepted). */
enum st_outq_rc st_outq_ctl(struct st_outq *q, st_msg_t *m, enum st_ctl_kind kind, size_t max_bytes,
                            int *superseded);
/* Latest-wins enqueue of an update into its slot n (takes its own reference on success). */
enum st_outq_rc st_outq_put(struct st_outq *q, struct st_qnode *n, st_msg_t *m, int max_len,
                            size_t max_bytes);
void st_outq_clear(struct st_outq *q, struct st_qnode *n);
/* Oldest reply into *m (caller's ref; NULL: build the full snapshot now); false if none. */
bool st_outq_take_ctl(struct st_outq *q, st_msg_t **m);
st_msg_t *st_outq_take(struct st_outq *q);       /* oldest update (caller's ref) or NULL */
/* Whether the next updates are worth one batch frame of at most cap bytes. */
bool st_outq_batchable(const struct st_outq *q, size_t cap);
/* Writes {"type":"batch","updates":[...]} of the oldest updates into dst (cap + 2 bytes);
 * returns its length, *n = updates taken. */
size_t st_outq_take_batch(struct st_outq *q, char *dst, size_t cap, int *n);
void st_outq_free_ctl(struct st_outq *q);
/* Everything queued goes (updates and replies): before the subscriptions holding the
 * update nodes are freed. */
void st_outq_free(struct st_outq *q);

/* ---- hub (hub.c): symbols, subscriptions, fan-out ---- */
enum st_kind { ST_KIND_KLINE = 0, ST_KIND_ALERT, ST_KIND_N };

struct st_client;
struct st_symbol;

struct st_sub {
    struct st_client *c;
    struct st_symbol *s;
    struct st_sub *s_prev, *s_next;  /* in the symbol's subscriber list */
    struct st_sub *c_prev, *c_next;  /* in the client's subscription list */
    struct st_qnode q[ST_KIND_N];    /* its update slots: linked into c->q (outq.c) while queued */
};

/* ---- subscription set (sset.c): a client's subscriptions by symbol, O(1) lookup ---- */
struct st_sset {
    struct st_sub **slot;            /* open addressing, linear probing (owned array) */
    unsigned cap;                    /* power of two, or 0 */
};

struct st_sub *st_sset_find(const struct st_sset *t, const struct st_symbol *s);
/* Adds sub (keyed by sub->s, not yet in the set) to a set holding n entries; -1 on OOM. */
int  st_sset_add(struct st_sset *t, struct st_sub *sub, int n);
void st_sset_del(struct st_sset *t, const struct st_sub *sub);   /* sub must be in the set */
void st_sset_free(struct st_sset *t);

struct st_client {
    struct lws *wsi;
    uint64_t id;
    struct st_client *prev, *next;   /* all clients */
    struct st_client *w_prev, *w_next; /* wildcard subscribers */
    bool wildcard;
    bool wild_full;                  /* wildcard and following every traded symbol */
    struct st_sub *subs;
    int nsubs;                       /* explicit + wildcard-made subscriptions */
    int nexplicit;
    int nplaceholders;               /* subscriptions to names that have not traded */
    struct st_sset sset;             /* its subscriptions by symbol (sset.c) */
    struct st_outq q;                /* what waits to be sent (outq.c) */
    int64_t wait_since_ms;           /* mono ms since the oldest unsent item waits; 0 idle */
    double tokens;                   /* rate limit bucket */
    int64_t tokens_ms;
    int strikes;
    char *rx;                        /* reassembly of a fragmented message (owned) */
    size_t rxlen;
    bool rx_drop;                    /* current message is being discarded */
    int close_code;                  /* non-zero: close at next writeable */
    char close_reason[64];
};

struct st_symbol {
    char name[KLINE_SYMBOL_MAX];
    uint64_t id;                     /* unique for the process: the subscription-set key */
    struct st_symbol *hnext;         /* hash chain */
    struct st_symbol *next, *prev;   /* all symbols, creation order (newest first) */
    bool has_data;                   /* false: a placeholder a client named before it traded */
    bool dead;                       /* unfollowed placeholder: out of the table, freed soon */
    bool stale;
    kline_t last;
    int64_t ingest_ms;               /* wall ms when the latest kline reached the streamer */
    int64_t updated_mono_ms;
    st_msg_t *msg;                   /* latest encoded update (owned ref) */
    struct st_ind ind;
    struct st_sub *subs;
    int nsubs;
};

struct st_stats {
    uint64_t klines_in, klines_ignored, klines_repeated, feed_rejected;
    uint64_t msgs_sent, frames_sent, bytes_sent, conflated, dropped, slow_closed, abuse_closed;
    uint64_t pending_closed, snapshots_superseded, placeholders_freed;
    uint64_t client_errors, connections_total, alerts;
    uint64_t http_requests, api_requests;
};

struct st_hub {
    const struct st_config *cfg;
    struct lws_context *ctx;
    struct st_symbol **htab;
    size_t hcap;
    struct st_symbol *symbols;       /* creation order (newest first) */
    int64_t next_stale_scan_ms;      /* st_hub_tick's next walk of the symbols */
    int nsymbols;                    /* in the table (dead placeholders are not) */
    int nplaceholders;               /* of which without data */
    uint64_t next_symbol_id;
    struct st_symbol *dead;          /* unlinked placeholders waiting for st_hub_reap (by hnext) */
    struct st_client *clients;
    struct st_client *wildcards;
    int nclients;
    uint64_t next_id;
    st_msg_t *alerts[32];            /* recent alerts ring (owned refs) */
    int alerts_head, alerts_len;
    int64_t latest_event_ms;         /* newest kline event_time (or ingest) seen */
    int64_t latest_ingest_ms;
    struct st_stats st;
    bool stopping;
};

extern struct st_hub st_hub;

int  st_hub_init(const struct st_config *cfg, char *errbuf, size_t errlen);
void st_hub_free(void);
/* One kline from the feed: updates state, indicators, fans out. */
void st_hub_ingest(const kline_t *k, int64_t ingest_ms);
/* Periodic: stale symbols, slow clients. */
void st_hub_tick(int64_t now_mono);
/* A finished SMA seed query (lws thread). */
void st_hub_seed_done(struct st_db_job *j);
struct st_symbol *st_hub_find(const char *name);

struct st_client *st_client_new(struct lws *wsi);
void st_client_free(struct st_client *c);      /* unsubscribes everything, frees queues */
/* Handles one complete text message from the client. */
void st_client_on_message(struct st_client *c, const char *buf, size_t len);
/* Handles a receive callback (fragments, binary, size). */
void st_client_on_receive(struct st_client *c, const void *in, size_t len);
/* Sends at most one message; returns -1 when the connection must close now. */
int  st_client_on_writeable(struct st_client *c);
/* Asks lws for a writeable callback and notes the start of waiting. */
void st_client_kick(struct st_client *c);
/* Queues an owned reply; false if it was dropped (closing, queue full, or over
 * --max-pending-bytes, which closes the client with 4009). */
bool st_client_ctl(struct st_client *c, st_msg_t *m);
bool st_client_ctl_kind(struct st_client *c, st_msg_t *m, enum st_ctl_kind kind);
/* Latest-wins update into the subscription's slot (closes the client when over a bound). */
void st_client_update(struct st_client *c, struct st_qnode *n, st_msg_t *m);
/* Marks for close with code/reason (sent at the next writeable; killed if it never comes). */
void st_client_close(struct st_client *c, int code, const char *reason);
void st_client_error(struct st_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* subscribe/unsubscribe (hub.c) */
int  st_hub_subscribe(struct st_client *c, struct st_symbol *s);  /* 1 new, 0 existed, -1 OOM */
void st_hub_unsubscribe(struct st_client *c, struct st_symbol *s);
void st_hub_unsubscribe_all(struct st_client *c);
int  st_hub_wildcard(struct st_client *c);
struct st_symbol *st_hub_symbol(const char *name, bool from_client); /* find or create */
struct st_sub *st_hub_sub(struct st_client *c, const struct st_symbol *s); /* O(1); NULL: none */
/* A placeholder that ended up with no subscriber (a failed subscribe) leaves the table. */
void st_hub_unfollowed(struct st_symbol *s);
/* Frees unfollowed placeholders; called where no symbol list walk is in progress. */
void st_hub_reap(void);
/* Builds {"type":"snapshot",...} for a client over the given symbols (NULL: all of its subs). */
st_msg_t *st_hub_snapshot(struct st_client *c, struct st_symbol **syms, int nsyms);

/* ---- stage stamps (stage.c, --stage-stamps; lws thread only) ---- */
enum st_stage { ST_STAGE_KAFKA_TS, ST_STAGE_CONSUMED, ST_STAGE_DRAINED, ST_STAGE_WRITTEN, ST_STAGE_N };
void st_stage_enable(bool on);
bool st_stage_on(void);
int64_t st_stage_now_us(void);  /* wall clock µs */
void st_stage_add(enum st_stage st, int64_t ev_ms, int64_t at_us);
/* One feed item: its Kafka timestamp (ms), consumed and drained stamps (wall µs). */
void st_stage_item(const kline_t *k, int64_t kafka_ms, int64_t consumed_us, int64_t drained_us);
void st_stage_written(const st_msg_t *m, int64_t at_us); /* m's kline reached a socket */
void st_stage_render(kp_buf_t *b);

/* ---- feed (feed.c): Kafka or stdin thread → bounded queue → lws thread ---- */
struct st_feed_item {
    kline_t k;
    int64_t ingest_ms;          /* Kafka message timestamp, or the feed's wall clock */
    int64_t consumed_us;        /* --stage-stamps: wall µs the feed thread got it, else 0 */
};

int  st_feed_start(const struct st_config *cfg, struct lws_context *ctx, char *errbuf, size_t errlen);
void st_feed_stop(void);
/* lws thread: takes up to max items (Kafka: from librdkafka's consumer queue; stdin: from
 * the feed thread's queue); returns the count and sets *more when items were left behind:
 * no wake-up comes for those, the caller must come back (lws_cancel_service). */
int  st_feed_drain(struct st_feed_item *out, int max, bool *more);
const char *st_feed_kind(void);  /* "kafka" or "stdin" */
extern _Atomic int64_t st_feed_lag;        /* Kafka messages behind high watermark; -1 n/a */
extern _Atomic uint64_t st_feed_rejected;  /* records that did not parse */
extern _Atomic uint64_t st_feed_read;      /* records read */
extern _Atomic int st_feed_state;          /* 0 starting, 1 running, 2 ended (EOF), 3 failed */

/* ---- database (db.c): worker threads with their own PGconn ---- */

struct st_db_job;
enum st_db_kind { ST_DB_API = 0, ST_DB_SEED };
int  st_db_start(const struct st_config *cfg, struct lws_context *ctx, char *errbuf, size_t errlen);
void st_db_stop(void);     /* joins the workers; jobs stay allocated (connections may cancel them) */
void st_db_cleanup(void);  /* frees every job left; after the lws context is gone */
/* Queues a query (for wsi, NULL for a seed); NULL when the queue is full. The job belongs
 * to db.c until st_db_take_done() hands it back. */
struct st_db_job *st_db_submit(enum st_db_kind kind, const struct st_db_req *req, struct lws *wsi);
enum st_db_kind st_db_job_kind(const struct st_db_job *j);
/* SEED result: closes of the bars before bar_open, newest first (owned by the job). */
int st_db_job_closes(const struct st_db_job *j, const char **symbol, int64_t *bar_open,
                     const double **closes);
/* The HTTP connection went away: the result will be thrown away. */
void st_db_cancel(struct st_db_job *j);
/* lws thread: next finished job (caller owns it, frees with st_db_job_free), or NULL. */
struct st_db_job *st_db_take_done(void);
struct lws *st_db_job_wsi(const struct st_db_job *j);
/* Gives the result to the caller (who frees body with free()); status is an HTTP code. */
void st_db_job_result(struct st_db_job *j, int *status, char **body, size_t *len);
void st_db_job_free(struct st_db_job *j);
extern _Atomic uint64_t st_db_queries, st_db_errors;

/* ---- http (http.c) ---- */
struct st_http {                /* per-HTTP-connection state (in the lws pss) */
    struct st_db_job *job;      /* pending query (owned by db.c until done) */
    char *resp;                 /* response body (owned), LWS_PRE headroom */
    size_t resp_len;
    int status;
    const char *ctype;
    bool ready;
};

int  st_http_on_request(struct lws *wsi, struct st_http *h, const char *uri);
int  st_http_on_writeable(struct lws *wsi, struct st_http *h);
void st_http_on_close(struct st_http *h);
/* Called on the lws thread when a DB job completes. */
void st_http_job_done(struct st_db_job *j);
/* ---- /metrics (prom.c) ---- */
/* lws thread: the Prometheus text in a new malloc'd buffer with LWS_PRE bytes of headroom
 * before its *len bytes (the caller frees it); NULL when out of memory. */
char *st_prom_render(size_t *len);

/* per-session data of the single lws protocol */
struct st_pss {
    struct st_client *client;   /* WebSocket connections */
    struct st_http http;        /* HTTP requests */
};

#endif
