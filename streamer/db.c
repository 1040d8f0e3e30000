/* db.c — /api/klines queries, run by worker threads that each own a PGconn, so the lws
 * service loop never waits on PostgreSQL. A job goes: lws thread (st_db_submit) → pending
 * queue → worker → done queue → lws_cancel_service → lws thread (st_db_take_done).
 * Response bodies are malloc'd with LWS_PRE bytes of headroom so lws_write can use them.
 *
 * Every job has a deadline, --db-timeout-ms (STREAMER_DB_TIMEOUT_MS, default 10000) after it was submitted,
 * that bounds its wait in the queue, the connect and the query together (common/pgd.c):
 * a database that stops answering gets the client a 503 in time, never a hung request,
 * and a worker that gave up drops its connection and reconnects for the next job. */
#include "streamer.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "cfg.h"
#include "log.h"
#include "pgd.h"
#include "thread.h"

#define ST_DB_MAX_PENDING 256
#define ST_DB_MAX_WORKERS 8
/* The largest answer: headroom, brackets, and ST_PROTO_LIMIT_MAX rows with their commas. */
#define ST_DB_BODY_MAX (LWS_PRE + 2 + (size_t)ST_PROTO_LIMIT_MAX * (KLINE_JSON_MAX + 64 + 1))

_Atomic uint64_t st_db_queries, st_db_errors;

struct st_db_job {
    enum st_db_kind kind;
    struct st_db_req req;       /* SEED: symbol, to = the live bar's start, limit = SMA length */
    double *closes;             /* SEED result, newest first (owned) */
    int nclose;
    struct lws *wsi;
    int64_t deadline;           /* monotonic ms: answer by then, whatever PostgreSQL does */
    bool cancelled;
    int status;
    kp_buf_t body;              /* LWS_PRE bytes of headroom, then the JSON (bounded: ST_DB_BODY_MAX) */
    struct st_db_job *next;
};

static struct {
    const struct st_config *cfg;
    struct lws_context *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct st_db_job *pend_head, *pend_tail, *done_head, *done_tail;
    int npending;
    bool stop;
    volatile sig_atomic_t stop_flag; /* the driver's: cuts waits short once stopping */
    int timeout_ms;
    pthread_t thr[ST_DB_MAX_WORKERS];
    int nthr;
} db_;


/* ---------------------------------------------------------------- bodies */

static int st_body_append(struct st_db_job *j, const char *s, size_t n)
{
    return kp_buf_append(&j->body, s, n);
}

static void st_job_fail(struct st_db_job *j, int status, const char *msg)
{
    char buf[300];
    int n = snprintf(buf, sizeof buf, "{\"error\":\"%s\"}", msg);
    j->status = status;
    if (st_buf_headroom(&j->body) < 0 || st_body_append(j, buf, (size_t)n) < 0)
        j->status = 500;
}

/* ---------------------------------------------------------------- query */

static int st_row_dec(PGresult *r, int row, int col, char dst[KLINE_DEC_MAX])
{
    const char *v = PQgetvalue(r, row, col);
    size_t n = strlen(v);
    if (n >= KLINE_DEC_MAX)
        return -1;
    memcpy(dst, v, n + 1);
    return 0;
}

static long long st_row_ll(PGresult *r, int row, int col, long long def)
{
    if (PQgetisnull(r, row, col))
        return def;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int st_row_json(struct st_db_job *j, PGresult *r, int row, bool rollup, bool comma)
{
    kline_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.symbol, sizeof k.symbol, "%s", PQgetvalue(r, row, 0));
    snprintf(k.interval, sizeof k.interval, "%s", j->req.interval);
    k.open_time = st_row_ll(r, row, 1, 0);
    k.close_time = st_row_ll(r, row, 2, 0);
    if (st_row_dec(r, row, 3, k.open) || st_row_dec(r, row, 4, k.high) ||
        st_row_dec(r, row, 5, k.low) || st_row_dec(r, row, 6, k.close) ||
        st_row_dec(r, row, 7, k.volume) || st_row_dec(r, row, 8, k.quote_volume) ||
        st_row_dec(r, row, 10, k.taker_buy_volume) || st_row_dec(r, row, 11, k.taker_buy_quote_volume))
        return -1;
    k.trades = st_row_ll(r, row, 9, 0);
    k.first_trade_id = st_row_ll(r, row, 12, -1);
    k.last_trade_id = st_row_ll(r, row, 13, -1);
    k.closed = !strcmp(PQgetvalue(r, row, 14), "t");
    k.event_time = st_row_ll(r, row, 15, 0);
    const char *src = PQgetvalue(r, row, 16);
    k.source = !strcmp(src, "rest") ? KLINE_SRC_REST : !strcmp(src, "replay") ? KLINE_SRC_REPLAY : KLINE_SRC_WS;
    char buf[KLINE_JSON_MAX + 64];
    int n = kline_format(&k, buf, KLINE_JSON_MAX);
    if (n < 2)
        return -1;
    if (rollup) /* splice row_count in before the closing brace */
        n = (n - 1) + snprintf(buf + n - 1, sizeof buf - (size_t)(n - 1), ",\"row_count\":%lld}",
                               st_row_ll(r, row, 17, 0));
    if (comma && st_body_append(j, ",", 1) < 0)
        return -1;
    return st_body_append(j, buf, (size_t)n);
}

/* Epoch ms (a parameter) as a timestamptz by immutable functions only, so that the planner
 * prunes kline_1s's hourly partitions itself. ('epoch'::timestamptz + interval is only
 * stable: every partition was planned, then pruned by the executor; 7.5-20 ms of planning
 * per /api request at 49 partitions, 1.2-1.4 ms this way.) */
#define ST_DB_TS(param) "(timestamp 'epoch' + " param "::bigint * interval '1 millisecond')" \
                        " AT TIME ZONE 'UTC'"

/* The SMA of a symbol the streamer just saw needs N closed 1m bars; take them from the
 * aggregator's table so alerts work from the first minute (best effort: errors are ignored). */
static void st_db_seed(PGconn *pg, struct st_db_job *j)
{
    char to[24], lim[16];
    snprintf(to, sizeof to, "%lld", (long long)j->req.to);
    snprintf(lim, sizeof lim, "%d", j->req.limit);
    const char *params[3] = {j->req.symbol, to, lim};
    char err[512];
    PGresult *r = pgd_query(pg,
                            "SELECT close::float8 FROM kline_1m WHERE symbol = $1"
                            " AND open_time < " ST_DB_TS("$2")
                            " ORDER BY open_time DESC LIMIT $3::int",
                            3, params, j->deadline, err, sizeof err);
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK) {
        int n = PQntuples(r);
        j->closes = n ? calloc((size_t)n, sizeof *j->closes) : NULL;
        for (int i = 0; j->closes && i < n; i++)
            j->closes[j->nclose++] = strtod(PQgetvalue(r, i, 0), NULL);
    } else {
        log_debug("sma seed %s: %s", j->req.symbol, err);
    }
    PQclear(r);
}

/* The table name comes from proto.c's allow-list, never from the request; every value is a
 * parameter. Without "from" the newest rows are wanted (DESC, reversed by st_db_rows). */
static void st_db_klines_sql(const struct st_db_job *j, const char *table, bool rollup, char *sql,
                             size_t len)
{
    snprintf(sql, len,
             "SELECT symbol, (extract(epoch FROM open_time)*1000)::bigint, %s,"
             " open::text, high::text, low::text,"
             " close::text, volume::text, quote_volume::text, trades, taker_buy_volume::text,"
             " taker_buy_quote_volume::text, first_trade_id, last_trade_id, closed,"
             " (extract(epoch FROM event_time)*1000)::bigint, source%s"
             " FROM %s WHERE symbol = $1"
             " AND open_time >= " ST_DB_TS("$2") " AND open_time <= " ST_DB_TS("$3")
             " ORDER BY open_time %s LIMIT $4::int",
             /* kline_1s stores no close_time: it is always the second's last ms */
             rollup ? "(extract(epoch FROM close_time)*1000)::bigint"
                    : "(extract(epoch FROM open_time)*1000)::bigint + 999",
             rollup ? ", row_count" : "", table, j->req.has_from ? "ASC" : "DESC");
}

/* A failed query: the answer says which of the known causes it was. */
static void st_db_failed(PGconn *pg, struct st_db_job *j, const PGresult *r, const char *err)
{
    const char *state = pgd_last_sqlstate();
    log_warn("api/klines: %s", r ? "not a row set" : err);
    atomic_fetch_add(&st_db_errors, 1);
    if (!strcmp(state, "42P01"))
        st_job_fail(j, 503, "the table for this interval does not exist (migrations not applied?)");
    else if (!strcmp(state, "57014"))
        st_job_fail(j, 503, "query timed out");
    else if (pgd_abandoned(pg))
        st_job_fail(j, 503, "database did not answer in time");
    else
        st_job_fail(j, 503, "database query failed");
}

/* The rows as a JSON array, oldest first. */
static void st_db_rows(struct st_db_job *j, PGresult *r, bool rollup)
{
    int rows = PQntuples(r);
    int rc = st_buf_headroom(&j->body);
    if (rc == 0)
        rc = st_body_append(j, "[", 1);
    for (int i = 0; rc == 0 && i < rows; i++) {
        int row = j->req.has_from ? i : rows - 1 - i;
        rc = st_row_json(j, r, row, rollup, i > 0);
    }
    if (rc == 0)
        rc = st_body_append(j, "]", 1);
    if (rc < 0)
        st_job_fail(j, 500, "cannot encode result");
    else
        j->status = 200;
}

static void st_db_run(PGconn *pg, struct st_db_job *j)
{
    if (j->kind == ST_DB_SEED) {
        st_db_seed(pg, j);
        return;
    }
    bool rollup = false;
    const char *table = st_proto_interval_table(j->req.interval, &rollup);
    if (!table) {
        st_job_fail(j, 400, "unknown interval");
        return;
    }
    char sql[1024], from[24], to[24], lim[16], err[512];
    st_db_klines_sql(j, table, rollup, sql, sizeof sql);
    snprintf(from, sizeof from, "%lld", (long long)j->req.from);
    snprintf(to, sizeof to, "%lld", (long long)j->req.to);
    snprintf(lim, sizeof lim, "%d", j->req.limit);
    const char *params[4] = {j->req.symbol, from, to, lim};
    atomic_fetch_add(&st_db_queries, 1);
    PGresult *r = pgd_query(pg, sql, 4, params, j->deadline, err, sizeof err);
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
        st_db_rows(j, r, rollup);
    else
        st_db_failed(pg, j, r, err);
    PQclear(r);
}

/* ---------------------------------------------------------------- workers */

/* (Re)connects when needed and no retry is pending; bounded by the job's deadline.
 * statement_timeout lets the server give up first (a clean 57014) when it is alive. */
static void st_db_connect(PGconn **pg, const struct st_db_job *j, int64_t *retry_at,
                          int64_t *warn_at)
{
    char err[512], sql[64];
    if (*pg && pgd_abandoned(*pg)) {
        PQfinish(*pg); /* broken, or a query it gave up on is still in flight */
        *pg = NULL;
    }
    if (*pg || cfg_mono_ms() < *retry_at)
        return;
    *pg = pgd_connect(db_.cfg->database_url, j->deadline, err, sizeof err);
    if (!*pg) {
        if (cfg_mono_ms() >= *warn_at) { /* once a minute is enough */
            log_warn("api/klines: cannot connect to PostgreSQL: %s", err);
            *warn_at = cfg_mono_ms() + 60000;
        }
        *retry_at = cfg_mono_ms() + 1000; /* answer 503 at once meanwhile */
        return;
    }
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", db_.timeout_ms);
    if (pgd_run(*pg, sql, j->deadline, NULL, err, sizeof err) < 0)
        log_warn("api/klines: %s", err);
}

/* One job on the worker's connection *pg (owned by the worker). */
static void st_db_serve(PGconn **pg, struct st_db_job *j, int64_t *retry_at, int64_t *warn_at)
{
    if (j->kind == ST_DB_SEED && !*pg && cfg_mono_ms() < *retry_at)
        return; /* no database right now: seeds are optional, skip quietly */
    if (cfg_mono_ms() >= j->deadline) { /* waited in the queue behind a hung database */
        if (j->kind == ST_DB_API)
            st_job_fail(j, 503, "database did not answer in time");
        return;
    }
    st_db_connect(pg, j, retry_at, warn_at);
    if (*pg && !pgd_abandoned(*pg))
        st_db_run(*pg, j);
    else if (j->kind == ST_DB_API)
        st_job_fail(j, 503, "database unavailable");
}

static void *st_db_worker(void *arg)
{
    (void)arg;
    PGconn *pg = NULL;
    int64_t retry_at = 0, warn_at = 0;
    pthread_mutex_lock(&db_.mu);
    for (;;) {
        while (!db_.stop && !db_.pend_head)
            pthread_cond_wait(&db_.cv, &db_.mu);
        if (db_.stop)
            break;
        struct st_db_job *j = db_.pend_head;
        db_.pend_head = j->next;
        if (!db_.pend_head)
            db_.pend_tail = NULL;
        db_.npending--;
        bool cancelled = j->cancelled;
        pthread_mutex_unlock(&db_.mu);

        if (!cancelled)
            st_db_serve(&pg, j, &retry_at, &warn_at);

        pthread_mutex_lock(&db_.mu);
        j->next = NULL;
        if (db_.done_tail)
            db_.done_tail->next = j;
        else
            db_.done_head = j;
        db_.done_tail = j;
        if (db_.ctx) /* NULL once the server is shutting down */
            lws_cancel_service(db_.ctx);
    }
    pthread_mutex_unlock(&db_.mu);
    if (pg)
        PQfinish(pg);
    return NULL;
}

int st_db_start(const struct st_config *cfg, struct lws_context *ctx, char *errbuf, size_t errlen)
{
    db_.cfg = cfg;
    db_.ctx = ctx;
    db_.timeout_ms = cfg->db_timeout_ms;
    db_.stop_flag = 0;
    pgd_set_stop_flag(&db_.stop_flag);
    pthread_mutex_init(&db_.mu, NULL);
    pthread_cond_init(&db_.cv, NULL);
    int n = cfg->db_workers < 1 ? 1 : cfg->db_workers > ST_DB_MAX_WORKERS ? ST_DB_MAX_WORKERS : cfg->db_workers;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < n; i++) {
        int rc = kp_thread_create(&db_.thr[i], NULL, st_db_worker, NULL);
        if (rc) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            snprintf(errbuf, errlen, "pthread_create: %s", strerror(rc));
            return -1;
        }
        db_.nthr++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

static void st_db_free_list(struct st_db_job *j)
{
    while (j) {
        struct st_db_job *n = j->next;
        st_db_job_free(j);
        j = n;
    }
}

void st_db_stop(void)
{
    pthread_mutex_lock(&db_.mu);
    db_.stop = true;
    db_.stop_flag = 1; /* a worker waiting on PostgreSQL gives up within PGD_STOP_GRACE_MS */
    db_.ctx = NULL;
    pthread_cond_broadcast(&db_.cv);
    pthread_mutex_unlock(&db_.mu);
    for (int i = 0; i < db_.nthr; i++)
        pthread_join(db_.thr[i], NULL);
    db_.nthr = 0;
}

void st_db_cleanup(void)
{
    st_db_free_list(db_.pend_head);
    st_db_free_list(db_.done_head);
    db_.pend_head = db_.pend_tail = db_.done_head = db_.done_tail = NULL;
}

struct st_db_job *st_db_submit(enum st_db_kind kind, const struct st_db_req *req, struct lws *wsi)
{
    struct st_db_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->kind = kind;
    j->req = *req;
    j->wsi = wsi;
    kp_buf_init(&j->body, ST_DB_BODY_MAX);
    j->deadline = cfg_mono_ms() + db_.timeout_ms;
    pthread_mutex_lock(&db_.mu);
    /* Seeds are bounded by the number of symbols; only API requests can be refused. */
    if ((kind == ST_DB_API && db_.npending >= ST_DB_MAX_PENDING) || db_.stop || db_.nthr == 0) {
        pthread_mutex_unlock(&db_.mu);
        free(j);
        return NULL;
    }
    if (db_.pend_tail)
        db_.pend_tail->next = j;
    else
        db_.pend_head = j;
    db_.pend_tail = j;
    db_.npending++;
    pthread_cond_signal(&db_.cv);
    pthread_mutex_unlock(&db_.mu);
    return j;
}

void st_db_cancel(struct st_db_job *j)
{
    pthread_mutex_lock(&db_.mu);
    j->cancelled = true;
    j->wsi = NULL;
    pthread_mutex_unlock(&db_.mu);
}

struct st_db_job *st_db_take_done(void)
{
    for (;;) {
        pthread_mutex_lock(&db_.mu);
        struct st_db_job *j = db_.done_head;
        if (j) {
            db_.done_head = j->next;
            if (!db_.done_head)
                db_.done_tail = NULL;
            j->next = NULL;
        }
        pthread_mutex_unlock(&db_.mu);
        if (!j || !j->cancelled)
            return j;
        st_db_job_free(j); /* its connection went away */
    }
}

struct lws *st_db_job_wsi(const struct st_db_job *j)
{
    return j->wsi;
}

enum st_db_kind st_db_job_kind(const struct st_db_job *j)
{
    return j->kind;
}

int st_db_job_closes(const struct st_db_job *j, const char **symbol, int64_t *bar_open,
                     const double **closes)
{
    *symbol = j->req.symbol;
    *bar_open = j->req.to;
    *closes = j->closes;
    return j->nclose;
}

void st_db_job_result(struct st_db_job *j, int *status, char **body, size_t *len)
{
    *status = j->status ? j->status : 500;
    size_t n = 0;
    *body = kp_buf_take(&j->body, &n); /* ownership passes to the caller */
    *len = n >= LWS_PRE ? n - LWS_PRE : 0;
}

void st_db_job_free(struct st_db_job *j)
{
    if (!j)
        return;
    kp_buf_free(&j->body);
    free(j->closes);
    free(j);
}
