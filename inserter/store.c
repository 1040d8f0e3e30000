/*
 * store.c — one PostgreSQL transaction per batch.
 *
 *   BEGIN
 *   COPY ins_rej FROM STDIN; INSERT INTO rejected ... WHERE NOT EXISTS <same origin, raw>
 *   COPY ins_stage FROM STDIN      -- the batch's klines, deduplicated (batch.c), sorted
 *   INSERT INTO kline_1s SELECT ... FROM ins_stage ON CONFLICT DO UPDATE ... WHERE
 *     <incoming wins> RETURNING symbol, open_time, inserted?   -- the rows it changed
 *   SELECT pg_advisory_xact_lock(PGX_LOCK_CHECKPOINT)
 *   COPY checkpoint FROM STDIN     -- per (symbol, partition): what this transaction changed
 *   NOTIFY kline_checkpoint; COMMIT
 *
 * Fast path first: while batches are all new (live data, a first load), the rows are
 * COPYed straight into kline_1s under a savepoint instead of staging + upsert, which is
 * about the cost of a plain COPY. A single existing key fails that COPY with
 * unique_violation: the savepoint is rolled back and the same transaction goes on with
 * the staging + upsert path above, and later batches use that path until one is all new
 * again. Either path ends with the same rows and checkpoints.
 *
 * The checkpoint rows are aggregated here from the RETURNING rows (each looked up in the
 * batch for its partition and offset) rather than with a join in SQL: the server has
 * less to do, and it is the bottleneck.
 *
 * Why replaying a batch is always harmless (after a crash between COMMIT and the Kafka
 * offset commit, after a COMMIT whose outcome the connection loss hid, or after a
 * consumer group's offsets were reset):
 * - the upsert's WHERE clause updates a row only when the incoming kline should win:
 *   closed over provisional, or same closed flag with different values; a redelivered
 *   identical kline, or a provisional one arriving after the closed one, changes nothing;
 * - checkpoint rows describe only the rows this transaction inserted or updated (from
 *   RETURNING), so a replay writes no checkpoint for rows already stored and no two
 *   checkpoints of a (symbol, partition) cover the same offsets;
 * - a rejected input is stored once per (origin, raw) (index in 003_inserter.sql).
 *
 * Every call runs on a non-blocking connection with one deadline for the whole
 * transaction (--pg-timeout-ms): a PostgreSQL that hangs (stopped, network gone) costs one
 * timeout, then the connection is dropped and the batch retried, instead of blocking the
 * consumer until Kafka evicts it from the group.
 */
#include "ins.h"
#include "cfg.h"
#include "log.h"
#include "pgx.h"
#include "sig.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Output buffer for COPY text, reused across batches (owned by this file). */
static struct {
    char *p;
    size_t len, cap;
} st_buf;

/* Pointers into the batch, reused across batches (owned by this file). */
static struct {
    const ins_row_t **p;
    size_t cap;
} st_idx;

static int st_reserve(size_t more)
{
    if (st_buf.len + more <= st_buf.cap)
        return 0;
    size_t nc = st_buf.cap ? st_buf.cap : 1 << 20;
    while (nc < st_buf.len + more)
        nc *= 2;
    char *np = realloc(st_buf.p, nc);
    if (!np)
        return -1;
    st_buf.p = np;
    st_buf.cap = nc;
    return 0;
}

static void st_put(const char *s, size_t n)
{
    memcpy(st_buf.p + st_buf.len, s, n);
    st_buf.len += n;
}

static void st_puts(const char *s)
{
    st_put(s, strlen(s));
}

static void st_put_i64(int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[n++] = '-';
    while (n)
        st_buf.p[st_buf.len++] = tmp[--n];
}

/* COPY text escaping for values that may hold tabs, newlines or backslashes. */
static void st_put_text(const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': st_put("\\\\", 2); break;
        case '\t': st_put("\\t", 2); break;
        case '\n': st_put("\\n", 2); break;
        case '\r': st_put("\\r", 2); break;
        default: st_buf.p[st_buf.len++] = *s;
        }
    }
}

/* ---- non-blocking libpq with one deadline ---- */

static void st_conn_err(ins_store_t *s, const char *what, char *errbuf, size_t errlen)
{
    const char *m = s->conn ? PQerrorMessage(s->conn) : "not connected";
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    snprintf(errbuf, errlen, "%s: %.*s", what, (int)n, n ? m : "connection lost");
}

/* Waits until the socket is readable (or writable when want_write). 0, or -1 on timeout. */
static int st_wait(ins_store_t *s, bool want_write, int64_t deadline, char *errbuf, size_t errlen)
{
    struct pollfd p = { .fd = PQsocket(s->conn), .events = POLLIN | (want_write ? POLLOUT : 0) };
    for (;;) {
        int64_t left = deadline - cfg_mono_ms();
        if (left <= 0) {
            snprintf(errbuf, errlen, "no answer from PostgreSQL within %d ms", s->op_timeout_ms);
            return -1;
        }
        int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR) {
            snprintf(errbuf, errlen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

static int st_flush_out(ins_store_t *s, int64_t deadline, char *errbuf, size_t errlen)
{
    for (;;) {
        int r = PQflush(s->conn);
        if (r == 0)
            return 0;
        if (r < 0) {
            st_conn_err(s, "send", errbuf, errlen);
            return -1;
        }
        if (st_wait(s, true, deadline, errbuf, errlen) < 0)
            return -1;
        /* libpq asks us to read while we wait to write, or the server may stall on us */
        if (!PQconsumeInput(s->conn)) {
            st_conn_err(s, "receive", errbuf, errlen);
            return -1;
        }
    }
}

/* Next result of the current command, or NULL (and *failed) on timeout / lost link.
 * NULL with !*failed is libpq's "no more results". */
static PGresult *st_next(ins_store_t *s, int64_t deadline, bool *failed, char *errbuf, size_t errlen)
{
    *failed = false;
    while (PQisBusy(s->conn)) {
        if (st_wait(s, false, deadline, errbuf, errlen) < 0 || !PQconsumeInput(s->conn)) {
            if (!*errbuf)
                st_conn_err(s, "receive", errbuf, errlen);
            *failed = true;
            return NULL;
        }
    }
    return PQgetResult(s->conn);
}

static char st_sqlstate[6]; /* of the last statement that failed in the server */

static void st_res_err(PGresult *r, char *errbuf, size_t errlen)
{
    const char *m = PQresultErrorMessage(r);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(st_sqlstate, sizeof st_sqlstate, "%s", state ? state : "");
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        n--;
    snprintf(errbuf, errlen, "%.*s (SQLSTATE %s)", (int)n, m, state ? state : "?");
}

/* Drains the results of a command. Keeps the first row-returning result in *keep (caller
 * PQclears it) when keep is non-NULL. 0 if every statement succeeded. */
static int st_drain(ins_store_t *s, int64_t deadline, PGresult **keep, char *errbuf, size_t errlen)
{
    int rc = 0;
    bool failed;
    PGresult *r;
    while ((r = st_next(s, deadline, &failed, errbuf, errlen)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK && keep && !*keep) {
            *keep = r; /* handed to the caller */
            continue;
        }
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && rc == 0) {
            st_res_err(r, errbuf, errlen);
            rc = -1;
        }
        PQclear(r);
    }
    if (failed) {
        if (keep && *keep) {
            PQclear(*keep);
            *keep = NULL;
        }
        return -1;
    }
    return rc;
}

/* Runs one or more ';'-separated statements (simple query protocol). */
static int st_run(ins_store_t *s, const char *sql, int64_t deadline, PGresult **keep,
                  char *errbuf, size_t errlen)
{
    if (!PQsendQuery(s->conn, sql)) {
        st_conn_err(s, "send", errbuf, errlen);
        return -1;
    }
    if (st_flush_out(s, deadline, errbuf, errlen) < 0)
        return -1;
    return st_drain(s, deadline, keep, errbuf, errlen);
}

/* COPY <sql> FROM STDIN with the text in st_buf. */
static int st_copy(ins_store_t *s, const char *sql, int64_t deadline, char *errbuf, size_t errlen)
{
    if (!PQsendQuery(s->conn, sql)) {
        st_conn_err(s, "send", errbuf, errlen);
        return -1;
    }
    if (st_flush_out(s, deadline, errbuf, errlen) < 0)
        return -1;
    bool failed;
    PGresult *r = st_next(s, deadline, &failed, errbuf, errlen);
    if (!r) {
        if (!failed)
            snprintf(errbuf, errlen, "COPY: no result");
        return -1;
    }
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        st_res_err(r, errbuf, errlen);
        PQclear(r);
        char scratch[256] = "";
        st_drain(s, deadline, NULL, scratch, sizeof scratch); /* the first error is the one */
        return -1;
    }
    PQclear(r);
    size_t off = 0;
    while (off < st_buf.len) {
        size_t n = st_buf.len - off > (1 << 16) ? (1 << 16) : st_buf.len - off;
        int pr = PQputCopyData(s->conn, st_buf.p + off, (int)n);
        if (pr < 0) {
            st_conn_err(s, "COPY", errbuf, errlen);
            return -1;
        }
        if (pr == 0) { /* libpq's buffer is full: push it out, then retry */
            if (st_flush_out(s, deadline, errbuf, errlen) < 0)
                return -1;
            continue;
        }
        off += n;
    }
    int er;
    while ((er = PQputCopyEnd(s->conn, NULL)) == 0)
        if (st_flush_out(s, deadline, errbuf, errlen) < 0)
            return -1;
    if (er < 0) {
        st_conn_err(s, "COPY end", errbuf, errlen);
        return -1;
    }
    if (st_flush_out(s, deadline, errbuf, errlen) < 0)
        return -1;
    return st_drain(s, deadline, NULL, errbuf, errlen);
}

/* ---- connection ---- */

static const char st_setup_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS ins_stage ("
    " symbol text, open_ms bigint, close_ms bigint, open numeric, high numeric, low numeric,"
    " close numeric, volume numeric, quote_volume numeric, trades bigint,"
    " taker_buy_volume numeric, taker_buy_quote_volume numeric, first_trade_id bigint,"
    " last_trade_id bigint, closed boolean, event_ms bigint, source text,"
    " kpart integer, koff bigint) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS ins_rej (raw bytea, reason text, origin text)"
    " ON COMMIT DELETE ROWS";

/* Connection-level set-up: the temporary tables live as long as the session. */
static int st_setup(ins_store_t *s, char *errbuf, size_t errlen)
{
    char err[512];
    if (pgx_exec(s->conn, st_setup_sql, err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "session set-up: %s", err);
        return -1;
    }
    const char *app = PQparameterStatus(s->conn, "application_name");
    if ((!app || !*app) &&
        pgx_exec(s->conn, "SET application_name = '" INS_PROG "'", err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "session set-up: %s", err);
        return -1;
    }
    if (PQsetnonblocking(s->conn, 1) != 0) {
        st_conn_err(s, "non-blocking mode", errbuf, errlen);
        return -1;
    }
    return 0;
}

static void st_drop(ins_store_t *s)
{
    PQfinish(s->conn); /* NULL-safe */
    s->conn = NULL;
}

/* One connection attempt (the caller paces retries so it keeps serving Kafka). */
static int st_reconnect(ins_store_t *s, char *errbuf, size_t errlen)
{
    s->conn = pgx_connect(s->url, 0, NULL, errbuf, errlen);
    if (!s->conn)
        return -1;
    if (st_setup(s, errbuf, errlen) < 0) {
        st_drop(s);
        return -1;
    }
    if (s->ever_connected)
        ins_stats_reconnect();
    s->ever_connected = true;
    return 0;
}

int ins_store_open(ins_store_t *s, const char *url, int op_timeout_ms, int timeout_ms,
                   char *errbuf, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->url = url;
    s->direct_ok = true;
    s->op_timeout_ms = op_timeout_ms;
    s->conn = pgx_connect(url, timeout_ms, (volatile int *)&sig_stop, errbuf, errlen);
    if (!s->conn)
        return -1;
    if (pgx_migrate(s->conn, errbuf, errlen) < 0 || st_setup(s, errbuf, errlen) < 0) {
        st_drop(s);
        return -1;
    }
    s->ever_connected = true;
    return 0;
}

void ins_store_close(ins_store_t *s)
{
    st_drop(s);
    free(st_buf.p);
    memset(&st_buf, 0, sizeof st_buf);
    free(st_idx.p);
    memset(&st_idx, 0, sizeof st_idx);
}

/* ---- the batch transaction ---- */

static int st_row_cmp(const void *pa, const void *pb)
{
    const ins_row_t *a = *(const ins_row_t *const *)pa, *b = *(const ins_row_t *const *)pb;
    int c = strcmp(a->k.symbol, b->k.symbol);
    if (c)
        return c;
    return a->k.open_time < b->k.open_time ? -1 : a->k.open_time > b->k.open_time;
}

/* Sort order for checkpoint grouping: (symbol, partition, open_time). */
static int st_cp_cmp(const void *pa, const void *pb)
{
    const ins_row_t *a = *(const ins_row_t *const *)pa, *b = *(const ins_row_t *const *)pb;
    int c = strcmp(a->k.symbol, b->k.symbol);
    if (c)
        return c;
    if (a->part != b->part)
        return a->part < b->part ? -1 : 1;
    return a->k.open_time < b->k.open_time ? -1 : a->k.open_time > b->k.open_time;
}

static int st_idx_reserve(size_t n)
{
    if (n <= st_idx.cap)
        return 0;
    const ins_row_t **np = realloc(st_idx.p, n * sizeof *np);
    if (!np)
        return -1;
    st_idx.p = np;
    st_idx.cap = n;
    return 0;
}

/* timestamptz text "YYYY-MM-DD HH:MM:SS.mmm+00". The rows of a batch share a handful of
 * seconds: the calendar part is computed once per distinct second. */
static void st_put_ts(int64_t ms)
{
    static int64_t cached_sec = INT64_MIN;
    static char cached[80]; /* 19 used: kline_validate bounds times to year 9999 */
    int64_t sec = ms / 1000;
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(cached, sizeof cached, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = sec;
    }
    int m = (int)(ms % 1000);
    char frac[8] = { '.', (char)('0' + m / 100), (char)('0' + m / 10 % 10), (char)('0' + m % 10),
                     '+', '0', '0', 0 };
    st_put(cached, 19);
    st_put(frac, 7);
}

/* COPY text of the batch's rows, sorted by (symbol, open_time). direct: for kline_1s
 * itself (timestamps as text); otherwise for ins_stage (epoch ms, partition, offset). */
static int st_build_rows(const ins_batch_t *b, bool direct)
{
    /* 8 decimals of at most KLINE_DEC_MAX, the symbol, 8 integers, flags and tabs */
    size_t per_row = 8 * KLINE_DEC_MAX + KLINE_SYMBOL_MAX + 8 * 21 + 64;
    st_buf.len = 0;
    if (st_reserve(b->nrows * per_row) < 0 || st_idx_reserve(b->nrows) < 0)
        return -1;
    for (size_t i = 0; i < b->nrows; i++)
        st_idx.p[i] = &b->rows[i];
    qsort(st_idx.p, b->nrows, sizeof *st_idx.p, st_row_cmp);
    for (size_t i = 0; i < b->nrows; i++) {
        const ins_row_t *r = st_idx.p[i];
        const kline_t *k = &r->k;
        /* Every field passed kline_validate: no tab, newline or backslash to escape. */
        st_puts(k->symbol); st_put("\t", 1);
        if (direct) {
            st_put_ts(k->open_time); st_put("\t", 1);
            st_put_ts(k->close_time); st_put("\t", 1);
        } else {
            st_put_i64(k->open_time); st_put("\t", 1);
            st_put_i64(k->close_time); st_put("\t", 1);
        }
        st_puts(k->open); st_put("\t", 1);
        st_puts(k->high); st_put("\t", 1);
        st_puts(k->low); st_put("\t", 1);
        st_puts(k->close); st_put("\t", 1);
        st_puts(k->volume); st_put("\t", 1);
        st_puts(k->quote_volume); st_put("\t", 1);
        st_put_i64(k->trades); st_put("\t", 1);
        st_puts(k->taker_buy_volume); st_put("\t", 1);
        st_puts(k->taker_buy_quote_volume); st_put("\t", 1);
        st_put_i64(k->first_trade_id); st_put("\t", 1);
        st_put_i64(k->last_trade_id); st_put("\t", 1);
        st_put(k->closed ? "t\t" : "f\t", 2);
        if (k->event_time <= 0)
            st_put("\\N", 2);
        else if (direct)
            st_put_ts(k->event_time);
        else
            st_put_i64(k->event_time);
        st_put("\t", 1);
        st_puts(kline_source_name(k->source));
        if (direct) {
            st_put("\n", 1);
        } else if (r->part >= 0) {
            st_put("\t", 1);
            st_put_i64(r->part); st_put("\t", 1);
            st_put_i64(r->off); st_put("\n", 1);
        } else {
            st_put("\t\\N\t\\N\n", 7);
        }
    }
    return 0;
}

static int st_build_rejects(const ins_batch_t *b)
{
    static const char hex[] = "0123456789abcdef";
    size_t need = 0;
    for (size_t i = 0; i < b->nrej; i++)
        need += 2 * b->rej[i].len + 2 * (sizeof b->rej[i].reason + sizeof b->rej[i].origin) + 8;
    st_buf.len = 0;
    if (st_reserve(need) < 0)
        return -1;
    for (size_t i = 0; i < b->nrej; i++) {
        const ins_reject_t *r = &b->rej[i];
        st_put("\\\\x", 3); /* bytea hex input; the backslash itself escaped for COPY */
        const unsigned char *p = (const unsigned char *)r->raw;
        for (size_t j = 0; j < r->len; j++) {
            st_buf.p[st_buf.len++] = hex[p[j] >> 4];
            st_buf.p[st_buf.len++] = hex[p[j] & 15];
        }
        st_put("\t", 1);
        st_put_text(r->reason);
        st_put("\t", 1);
        st_put_text(r->origin);
        st_put("\n", 1);
    }
    return 0;
}

#define ST_TS(col) "'epoch'::timestamptz + " col " * interval '1 millisecond'"

static const char st_upsert_sql[] =
    "INSERT INTO kline_1s AS k (symbol, open_time, close_time, open, high, low, close,"
    "  volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume,"
    "  first_trade_id, last_trade_id, closed, event_time, source)"
    " SELECT symbol, " ST_TS("open_ms") ", " ST_TS("close_ms") ", open, high, low, close,"
    "  volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume,"
    "  first_trade_id, last_trade_id, closed, " ST_TS("event_ms") ", source"
    /* no ORDER BY: st_build_rows wrote the rows sorted by (symbol, open_time), which a
     * scan of the fresh staging table returns as they are; concurrent inserters thus
     * lock rows in one order, and the index sees each symbol's keys in a run */
    " FROM ins_stage"
    " ON CONFLICT (symbol, open_time) DO UPDATE SET"
    "  close_time = EXCLUDED.close_time, open = EXCLUDED.open, high = EXCLUDED.high,"
    "  low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume,"
    "  quote_volume = EXCLUDED.quote_volume, trades = EXCLUDED.trades,"
    "  taker_buy_volume = EXCLUDED.taker_buy_volume,"
    "  taker_buy_quote_volume = EXCLUDED.taker_buy_quote_volume,"
    "  first_trade_id = EXCLUDED.first_trade_id, last_trade_id = EXCLUDED.last_trade_id,"
    "  closed = EXCLUDED.closed, event_time = EXCLUDED.event_time, source = EXCLUDED.source,"
    "  ingested_at = now()"
    /* The incoming row wins when it closes a provisional row, or when it has the same
     * closed flag and different market data. event_time and source are left out of the
     * comparison: the same closed second from WS and from REST is the same kline. */
    " WHERE (EXCLUDED.closed AND NOT k.closed)"
    "  OR (EXCLUDED.closed = k.closed AND"
    "   (k.close_time, k.open, k.high, k.low, k.close, k.volume, k.quote_volume, k.trades,"
    "    k.taker_buy_volume, k.taker_buy_quote_volume, k.first_trade_id, k.last_trade_id)"
    "   IS DISTINCT FROM"
    "   (EXCLUDED.close_time, EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close,"
    "    EXCLUDED.volume, EXCLUDED.quote_volume, EXCLUDED.trades, EXCLUDED.taker_buy_volume,"
    "    EXCLUDED.taker_buy_quote_volume, EXCLUDED.first_trade_id, EXCLUDED.last_trade_id))"
    " RETURNING k.symbol, (extract(epoch FROM k.open_time) * 1000)::bigint, k.xmax = 0";

static const char st_rejected_sql[] =
    "INSERT INTO rejected (raw, reason, origin, program)"
    " SELECT r.raw, r.reason, r.origin, '" INS_PROG "' FROM ins_rej r"
    " WHERE NOT EXISTS (SELECT 1 FROM rejected x WHERE x.origin = r.origin AND x.raw = r.raw)"
    " RETURNING 1";

static void st_put_cp(const ins_row_t *first, const ins_row_t *last, int64_t off_lo,
                      int64_t off_hi, long long rows, const char *topic)
{
    st_puts(first->k.symbol); st_put("\t", 1);
    st_put_ts(first->k.open_time); st_put("\t", 1);
    st_put_ts(last->k.open_time); st_put("\t", 1);
    st_put_i64(rows); st_put("\t", 1);
    if (first->part >= 0) {
        st_put_text(topic); st_put("\t", 1);
        st_put_i64(first->part); st_put("\t", 1);
        st_put_i64(off_lo); st_put("\t", 1);
        st_put_i64(off_hi); st_put("\n", 1);
    } else {
        st_put("\\N\t\\N\t\\N\t\\N\n", 12);
    }
}

/* The rows the upsert changed (its RETURNING rows), looked up in the batch, into
 * st_idx.p[0..n). *inserted counts the new ones. */
static int st_changed_rows(const ins_batch_t *b, PGresult *r, long long *inserted,
                           char *errbuf, size_t errlen)
{
    int n = PQntuples(r);
    *inserted = 0;
    if (st_idx_reserve((size_t)n + 1) < 0) {
        snprintf(errbuf, errlen, "out of memory for checkpoint rows");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *sym = PQgetvalue(r, i, 0);
        const ins_row_t *row = ins_batch_lookup(b, sym, strtoll(PQgetvalue(r, i, 1), NULL, 10));
        if (!row) {
            snprintf(errbuf, errlen, "upsert returned %s/%s, which is not in the batch", sym,
                     PQgetvalue(r, i, 1));
            return -1;
        }
        st_idx.p[i] = row;
        *inserted += PQgetvalue(r, i, 2)[0] == 't';
    }
    return 0;
}

/* COPY text of the checkpoint rows for the changed rows st_idx.p[0..n): one per
 * (symbol, partition). Returns their number, -1 on ENOMEM. */
static long long st_build_checkpoints(size_t n, const char *topic)
{
    long long ncp = 0;
    qsort(st_idx.p, n, sizeof *st_idx.p, st_cp_cmp);
    st_buf.len = 0;
    if (st_reserve(n * (KLINE_SYMBOL_MAX + 2 * 32 + 4 * 21 + strlen(topic) * 2 + 16)) < 0)
        return -1;
    for (size_t i = 0; i < n;) {
        const ins_row_t *first = st_idx.p[i];
        int64_t lo = first->off, hi = first->off;
        size_t j = i + 1;
        for (; j < n && st_idx.p[j]->part == first->part &&
               strcmp(st_idx.p[j]->k.symbol, first->k.symbol) == 0; j++) {
            if (st_idx.p[j]->off < lo)
                lo = st_idx.p[j]->off;
            if (st_idx.p[j]->off > hi)
                hi = st_idx.p[j]->off;
        }
        st_put_cp(first, st_idx.p[j - 1], lo, hi, (long long)(j - i), topic);
        ncp++;
        i = j;
    }
    return ncp;
}

#define ST_KLINE_COLS "symbol, open_time, close_time, open, high, low, close, volume," \
    " quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id," \
    " last_trade_id, closed, event_time, source"

/* The fast path: the batch COPYed straight into kline_1s, under a savepoint. It works
 * when every row is new (the common case: live data, a first load); one existing key
 * makes it fail with unique_violation, and the batch takes the upsert path instead.
 * 1 = done (every row inserted), 0 = conflict (savepoint rolled back), -1 = error. */
static int st_direct(ins_store_t *s, const ins_batch_t *b, int64_t deadline,
                     char *errbuf, size_t errlen)
{
    if (st_build_rows(b, true) < 0) {
        snprintf(errbuf, errlen, "out of memory for COPY data");
        return -1;
    }
    if (st_run(s, "SAVEPOINT ins_direct", deadline, NULL, errbuf, errlen) < 0)
        return -1;
    st_sqlstate[0] = '\0';
    if (st_copy(s, "COPY kline_1s (" ST_KLINE_COLS ") FROM STDIN", deadline, errbuf, errlen) == 0)
        return st_run(s, "RELEASE SAVEPOINT ins_direct", deadline, NULL, errbuf, errlen) < 0 ? -1 : 1;
    if (strcmp(st_sqlstate, "23505") != 0 || PQstatus(s->conn) != CONNECTION_OK)
        return -1;
    if (st_run(s, "ROLLBACK TO SAVEPOINT ins_direct", deadline, NULL, errbuf, errlen) < 0)
        return -1;
    return 0;
}

static int st_tx(ins_store_t *s, const ins_batch_t *b, const char *topic, int64_t deadline,
                 ins_result_t *res, char *errbuf, size_t errlen)
{
    PGresult *r = NULL;
    long long changed = 0, inserted = 0, ncp = 0, rej_new = 0;
    if (st_run(s, "BEGIN", deadline, NULL, errbuf, errlen) < 0)
        return -1;
    if (b->nrej) {
        if (st_build_rejects(b) < 0) {
            snprintf(errbuf, errlen, "out of memory for COPY data");
            return -1;
        }
        if (st_copy(s, "COPY ins_rej FROM STDIN", deadline, errbuf, errlen) < 0 ||
            st_run(s, st_rejected_sql, deadline, &r, errbuf, errlen) < 0)
            return -1;
        rej_new = r ? PQntuples(r) : 0;
        PQclear(r);
        r = NULL;
    }
    if (b->nrows) {
        int direct = s->direct_ok ? st_direct(s, b, deadline, errbuf, errlen) : 0;
        if (direct < 0)
            return -1;
        if (direct == 1) {
            changed = inserted = (long long)b->nrows; /* st_idx.p holds every row */
            res->direct = true;
        } else {
            if (st_build_rows(b, false) < 0) {
                snprintf(errbuf, errlen, "out of memory for COPY data");
                return -1;
            }
            if (st_copy(s, "COPY ins_stage FROM STDIN", deadline, errbuf, errlen) < 0 ||
                st_run(s, st_upsert_sql, deadline, &r, errbuf, errlen) < 0)
                return -1;
            changed = r ? PQntuples(r) : 0;
            int rc = changed ? st_changed_rows(b, r, &inserted, errbuf, errlen) : 0;
            PQclear(r);
            r = NULL;
            if (rc < 0)
                return -1;
        }
        if (changed > 0 && (ncp = st_build_checkpoints((size_t)changed, topic ? topic : "")) < 0) {
            snprintf(errbuf, errlen, "out of memory for checkpoint rows");
            return -1;
        }
    }
    if (ncp > 0) {
        /* The lock is taken as late as possible: it serialises every inserter's tail so
         * checkpoint ids follow commit order (DEVELOPING.md "Decisions"). The checkpoint
         * rows are the last statement before COMMIT. */
        char lock[96];
        snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", PGX_LOCK_CHECKPOINT);
        if (st_run(s, lock, deadline, NULL, errbuf, errlen) < 0 ||
            st_copy(s, "COPY checkpoint (symbol, first_open_time, last_open_time, row_count,"
                       " kafka_topic, kafka_partition, first_offset, last_offset) FROM STDIN",
                    deadline, errbuf, errlen) < 0 ||
            st_run(s, "NOTIFY " PGX_NOTIFY_CHANNEL "; COMMIT", deadline, NULL, errbuf, errlen) < 0)
            return -1;
    } else if (st_run(s, "COMMIT", deadline, NULL, errbuf, errlen) < 0) {
        return -1;
    }
    res->inserted = inserted;
    res->updated = changed - inserted;
    res->unchanged = (long long)b->nrows - changed;
    res->rejected_new = rej_new;
    res->checkpoints = ncp;
    /* Try the direct COPY again as soon as a batch is all new; stay on the upsert while
     * batches meet existing rows (a replay), where the direct attempt would only fail. */
    s->direct_ok = inserted == (long long)b->nrows;
    return 0;
}

int ins_store_probe(ins_store_t *s, char *errbuf, size_t errlen)
{
    errbuf[0] = '\0';
    if (!s->conn)
        return st_reconnect(s, errbuf, errlen);
    if (st_run(s, "SELECT 1", cfg_mono_ms() + s->op_timeout_ms, NULL, errbuf, errlen) == 0)
        return 0;
    st_drop(s);
    return -1;
}

int ins_store_write(ins_store_t *s, const ins_batch_t *b, const char *topic,
                    ins_result_t *res, char *errbuf, size_t errlen)
{
    memset(res, 0, sizeof *res);
    errbuf[0] = '\0';
    if (!s->conn && st_reconnect(s, errbuf, errlen) < 0)
        return -1;
    int64_t deadline = cfg_mono_ms() + s->op_timeout_ms;
    if (st_tx(s, b, topic, deadline, res, errbuf, errlen) == 0)
        return 0;
    ins_stats_pg_error();
    /* Roll back if the link still works; anything else means the session is gone
     * (or hangs): drop it, the next attempt reconnects and replays the batch. */
    char err2[256];
    if (PQstatus(s->conn) != CONNECTION_OK || PQtransactionStatus(s->conn) == PQTRANS_ACTIVE ||
        st_run(s, "ROLLBACK", cfg_mono_ms() + 5000, NULL, err2, sizeof err2) < 0)
        st_drop(s);
    return -1;
}
