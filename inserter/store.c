/*
 * store.c — one PostgreSQL transaction per batch.
 *
 *   BEGIN
 *   COPY ins_rej FROM STDIN; INSERT INTO rejected ... WHERE NOT EXISTS <same origin, raw>
 *   COPY ins_stage FROM STDIN      -- the batch's klines, deduplicated (batch.c), sorted
 *   INSERT INTO kline_1s_lean SELECT ... FROM ins_stage ON CONFLICT DO UPDATE ... WHERE
 *     <incoming wins> RETURNING symbol, open_time, inserted?   -- the rows it changed
 *     (and the same into kline_1s_wide for rows before its cut-off, in an upgraded
 *     database: schema/012)
 *   SELECT pg_advisory_xact_lock(PGX_LOCK_CHECKPOINT)
 *   COPY checkpoint FROM STDIN     -- per (symbol, partition): what this transaction changed
 *   NOTIFY kline_checkpoint; COMMIT
 *
 * kline_1s is a view (schema/012); the rows go to kline_1s_lean, the symbol as its id
 * (symbol_ids.c), last_trade_id left out, closed and source in flags, the event time as
 * an offset from open_time.
 *
 * Fast path first: while batches are all new (live data, a first load), the rows are
 * COPYed straight into kline_1s_lean under a savepoint instead of staging + upsert, which is
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
 * - a rejected input is stored once per (origin, SHA-256 and size of its bytes) (index in
 *   003_inserter.sql; only a bounded prefix of it is stored, 005_rejected.sql).
 *
 * Every call runs on a non-blocking connection with one deadline for the whole
 * transaction (--pg-timeout-ms): a PostgreSQL that hangs (stopped, network gone) costs one
 * timeout, then the connection is dropped and the batch retried, instead of blocking the
 * consumer until Kafka evicts it from the group.
 */
#include "ins.h"
#include "cfg.h"
#include "log.h"
#include "pgd.h"
#include "pgx.h"
#include "sig.h"
#include "buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bound on the COPY text of one batch: the largest batch of rows (1,000,000 × ~600 bytes)
 * fits several times; past it the batch fails like any ENOMEM and is retried. */
#define INS_STORE_COPY_MAX ((size_t)4 << 30)

/* COPY text, reused across batches (owned by this file; freed by ins_store_close). Every
 * builder reserves the room it needs first, so the appends after that cannot fail. */
static kp_buf_t ins_store_copy_buf = { .max = INS_STORE_COPY_MAX };

/* Pointers into the batch, reused across batches (owned by this file). */
static struct {
    const ins_row_t **p;
    size_t cap;
} ins_store_idx;

static int ins_store_reserve(size_t more)
{
    return kp_buf_reserve(&ins_store_copy_buf, more);
}

/* The hot path of every batch (some 35 fields a row): inline while the reserved room
 * lasts, which it always does (the builders reserve first); kp_buf_append otherwise. */
static void ins_store_put(const char *s, size_t n)
{
    kp_buf_t *b = &ins_store_copy_buf;
    if (b->len + n >= b->cap) {
        (void)kp_buf_append(b, s, n);
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0'; /* kp_buf's invariant */
}

static void ins_store_puts(const char *s)
{
    ins_store_put(s, strlen(s));
}

static void ins_store_putc(char c)
{
    ins_store_put(&c, 1);
}

static void ins_store_put_i64(int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[sizeof tmp - 1 - n++] = '-';
    ins_store_put(tmp + sizeof tmp - n, (size_t)n);
}

/* COPY text escaping for values that may hold tabs, newlines or backslashes. */
static void ins_store_put_text(const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': ins_store_put("\\\\", 2); break;
        case '\t': ins_store_put("\\t", 2); break;
        case '\n': ins_store_put("\\n", 2); break;
        case '\r': ins_store_put("\\r", 2); break;
        default: ins_store_putc(*s);
        }
    }
}

/* ---- the deadline driver (common/pgd.c) on this store's connection ---- */

static int ins_store_run(ins_store_t *s, const char *sql, int64_t deadline, PGresult **keep,
                         char *errbuf, size_t errlen)
{
    return pgd_run(s->conn, sql, deadline, keep, errbuf, errlen);
}

/* COPY <sql> FROM STDIN with the data in ins_store_copy_buf. */
static int ins_store_copy(ins_store_t *s, const char *sql, int64_t deadline, char *errbuf,
                          size_t errlen)
{
    return pgd_copy_in(s->conn, sql, ins_store_copy_buf.data, ins_store_copy_buf.len, deadline,
                       errbuf, errlen);
}

/* ---- connection ---- */

static const char ins_store_setup_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS ins_stage ("
    " symbol text, sid integer, open_ms bigint, open numeric, high numeric, low numeric,"
    " close numeric, volume numeric, quote_volume numeric, trades bigint,"
    " taker_buy_volume numeric, taker_buy_quote_volume numeric, first_trade_id bigint,"
    " last_trade_id bigint, closed boolean, event_ms bigint, source text,"
    " kpart integer, koff bigint) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS ins_cp (symbol text, first_open_time timestamptz,"
    " last_open_time timestamptz, row_count integer, kafka_topic text, kafka_partition integer,"
    " first_offset bigint, last_offset bigint) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS ins_rej (raw bytea, raw_size bigint, raw_sha256 bytea,"
    " reason text, origin text)"
    " ON COMMIT DELETE ROWS";

/* The cut-off of kline_1s_wide, the table an upgraded database keeps its old hours in
 * (schema/012); a new database has none. */
static int ins_store_wide_cut(ins_store_t *s, char *errbuf, size_t errlen)
{
    char err[512];
    PGresult *r = pgx_query(s->conn, "SELECT (extract(epoch FROM max(cut)) * 1000)::bigint"
                            " FROM kline_1s_wide_bound", 0, NULL, err, sizeof err);
    if (!r)
        return snprintf(errbuf, errlen, "session set-up: %s", err), -1;
    s->wide_cut_ms = PQgetisnull(r, 0, 0) ? INT64_MIN : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

/* Connection-level set-up: the temporary tables live as long as the session. */
static int ins_store_setup(ins_store_t *s, char *errbuf, size_t errlen)
{
    char err[512];
    if (pgx_exec(s->conn, ins_store_setup_sql, err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "session set-up: %s", err);
        return -1;
    }
    if (ins_store_wide_cut(s, errbuf, errlen) < 0)
        return -1;
    const char *app = PQparameterStatus(s->conn, "application_name");
    if ((!app || !*app) &&
        pgx_exec(s->conn, "SET application_name = '" INS_PROG "'", err, sizeof err) < 0) {
        snprintf(errbuf, errlen, "session set-up: %s", err);
        return -1;
    }
    return 0;
}

static void ins_store_drop(ins_store_t *s)
{
    PQfinish(s->conn); /* NULL-safe */
    s->conn = NULL;
}

/* One connection attempt, bounded by the connect timeout (the caller paces retries so it
 * keeps serving Kafka). */
static int ins_store_reconnect(ins_store_t *s, char *errbuf, size_t errlen)
{
    s->conn = pgx_connect(s->url, 0, NULL, errbuf, errlen);
    if (!s->conn)
        return -1;
    if (ins_store_setup(s, errbuf, errlen) < 0) {
        ins_store_drop(s);
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
    if (pgx_migrate(s->conn, errbuf, errlen) < 0 || ins_store_setup(s, errbuf, errlen) < 0) {
        ins_store_drop(s);
        return -1;
    }
    s->ever_connected = true;
    return 0;
}

void ins_store_close(ins_store_t *s)
{
    ins_store_drop(s);
    kp_buf_free(&ins_store_copy_buf);
    free(ins_store_idx.p);
    memset(&ins_store_idx, 0, sizeof ins_store_idx);
}

/* ---- the batch transaction ---- */

static int ins_store_row_cmp(const void *pa, const void *pb)
{
    const ins_row_t *a = *(const ins_row_t *const *)pa, *b = *(const ins_row_t *const *)pb;
    int c = strcmp(a->k.symbol, b->k.symbol);
    if (c)
        return c;
    return a->k.open_time < b->k.open_time ? -1 : a->k.open_time > b->k.open_time;
}

/* Sort order for checkpoint grouping: (symbol, partition, open_time). */
static int ins_store_cp_cmp(const void *pa, const void *pb)
{
    const ins_row_t *a = *(const ins_row_t *const *)pa, *b = *(const ins_row_t *const *)pb;
    int c = strcmp(a->k.symbol, b->k.symbol);
    if (c)
        return c;
    if (a->part != b->part)
        return a->part < b->part ? -1 : 1;
    return a->k.open_time < b->k.open_time ? -1 : a->k.open_time > b->k.open_time;
}

static int ins_store_idx_reserve(size_t n)
{
    if (n <= ins_store_idx.cap)
        return 0;
    const ins_row_t **np = realloc(ins_store_idx.p, n * sizeof *np);
    if (!np)
        return -1;
    ins_store_idx.p = np;
    ins_store_idx.cap = n;
    return 0;
}

/* timestamptz text "YYYY-MM-DD HH:MM:SS.mmm+00". The rows of a batch share a handful of
 * seconds: the calendar part is computed once per distinct second. */
static void ins_store_put_ts(int64_t ms)
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
    ins_store_put(cached, 19);
    ins_store_put(frac, 7);
}

/* One row of the direct COPY into kline_1s_lean, binary (copybin.c, INS_STORE_LEAN_COLS).
 * Every field passed kline_validate and ins_storable: trades and the event offset fit 32
 * bits, last_trade_id is derived. */
static void ins_store_put_lean(const ins_row_t *r)
{
    unsigned char row[INS_COPYBIN_ROW_MAX];
    ins_store_put((const char *)row, ins_copybin_lean(row, &r->k, ins_symbol_id(r->k.symbol)));
}

/* One row of COPY text for ins_stage (the upsert path): every field as the record has it,
 * times in epoch ms, with the symbol's id and the Kafka partition and offset. */
static void ins_store_put_stage(const ins_row_t *r)
{
    const kline_t *k = &r->k;
    const char *dec[] = { k->open, k->high, k->low, k->close, k->volume, k->quote_volume };
    ins_store_puts(k->symbol); ins_store_putc('\t');
    ins_store_put_i64(ins_symbol_id(k->symbol)); ins_store_putc('\t');
    ins_store_put_i64(k->open_time); ins_store_putc('\t');
    for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
        ins_store_puts(dec[i]); ins_store_putc('\t');
    }
    ins_store_put_i64(k->trades); ins_store_putc('\t');
    ins_store_puts(k->taker_buy_volume); ins_store_putc('\t');
    ins_store_puts(k->taker_buy_quote_volume); ins_store_putc('\t');
    ins_store_put_i64(k->first_trade_id); ins_store_putc('\t');
    ins_store_put_i64(k->last_trade_id); ins_store_putc('\t');
    ins_store_put(k->closed ? "t\t" : "f\t", 2);
    if (k->event_time <= 0)
        ins_store_put("\\N", 2);
    else
        ins_store_put_i64(k->event_time);
    ins_store_putc('\t');
    ins_store_puts(kline_source_name(k->source));
    if (r->part >= 0) {
        ins_store_putc('\t'); ins_store_put_i64(r->part);
        ins_store_putc('\t'); ins_store_put_i64(r->off); ins_store_putc('\n');
    } else {
        ins_store_put("\t\\N\t\\N\n", 7);
    }
}

/* COPY data of the batch's rows, sorted by (symbol, open_time): binary for kline_1s_lean
 * (direct), text for ins_stage. */
static int ins_store_build_rows(const ins_batch_t *b, bool direct)
{
    /* 8 decimals of at most KLINE_DEC_MAX, the symbol, 8 integers, flags and tabs; a
     * binary row is smaller */
    size_t per_row = 8 * KLINE_DEC_MAX + KLINE_SYMBOL_MAX + 8 * 21 + 64;
    unsigned char frame[INS_COPYBIN_HEADER_MAX];
    kp_buf_reset(&ins_store_copy_buf);
    if (ins_store_reserve(b->nrows * per_row + sizeof frame) < 0 ||
        ins_store_idx_reserve(b->nrows) < 0)
        return -1;
    for (size_t i = 0; i < b->nrows; i++)
        ins_store_idx.p[i] = &b->rows[i];
    qsort(ins_store_idx.p, b->nrows, sizeof *ins_store_idx.p, ins_store_row_cmp);
    if (direct)
        ins_store_put((const char *)frame, ins_copybin_header(frame));
    for (size_t i = 0; i < b->nrows; i++) {
        if (direct)
            ins_store_put_lean(ins_store_idx.p[i]);
        else
            ins_store_put_stage(ins_store_idx.p[i]);
    }
    if (direct)
        ins_store_put((const char *)frame, ins_copybin_trailer(frame));
    return 0;
}

/* bytea hex input; the backslash itself escaped for COPY */
static void ins_store_put_bytea(const void *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = s;
    ins_store_put("\\\\x", 3);
    for (size_t j = 0; j < n; j++) {
        char two[2] = { hex[p[j] >> 4], hex[p[j] & 15] };
        ins_store_put(two, 2);
    }
}

/* COPY text of the rejects: the prefix batch.c kept (bounded), size, SHA-256, reason, origin. */
static int ins_store_build_rejects(const ins_batch_t *b)
{
    size_t need = 0;
    for (size_t i = 0; i < b->nrej; i++)
        need += 2 * b->rej[i].len + 2 * (sizeof b->rej[i].reason + sizeof b->rej[i].origin) +
                2 * sizeof b->rej[i].sha256 + 40;
    kp_buf_reset(&ins_store_copy_buf);
    if (ins_store_reserve(need) < 0)
        return -1;
    for (size_t i = 0; i < b->nrej; i++) {
        const ins_reject_t *r = &b->rej[i];
        ins_store_put_bytea(r->raw, r->len);
        ins_store_put("\t", 1);
        ins_store_put_i64(r->size);
        ins_store_put("\t", 1);
        ins_store_put_bytea(r->sha256, sizeof r->sha256);
        ins_store_put("\t", 1);
        ins_store_put_text(r->reason);
        ins_store_put("\t", 1);
        ins_store_put_text(r->origin);
        ins_store_put("\n", 1);
    }
    return 0;
}

#define INS_STORE_TS(col) "'epoch'::timestamptz + " col " * interval '1 millisecond'"

/* The upsert into kline_1s_lean; %s: nothing, or the condition that keeps the rows of
 * kline_1s_wide's hours out (an upgraded database). */
static const char ins_store_upsert_lean_fmt[] =
    "WITH up AS (INSERT INTO kline_1s_lean AS k (symbol_id, open_time, open, high, low, close,"
    "  volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume,"
    "  first_trade_id, flags, event_ms)"
    " SELECT sid, " INS_STORE_TS("open_ms") ","
    "  open, high, low, close,"
    "  volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume,"
    "  first_trade_id, kp_kline_flags(closed, source), event_ms - open_ms"
    /* no ORDER BY: ins_store_build_rows wrote the rows sorted by (symbol, open_time), which a
     * scan of the fresh staging table returns as they are; concurrent inserters thus
     * lock rows in one order, and the index sees each symbol's keys in a run */
    " FROM ins_stage%s"
    " ON CONFLICT (symbol_id, open_time) DO UPDATE SET"
    "  open = EXCLUDED.open, high = EXCLUDED.high,"
    "  low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume,"
    "  quote_volume = EXCLUDED.quote_volume, trades = EXCLUDED.trades,"
    "  taker_buy_volume = EXCLUDED.taker_buy_volume,"
    "  taker_buy_quote_volume = EXCLUDED.taker_buy_quote_volume,"
    "  first_trade_id = EXCLUDED.first_trade_id, flags = EXCLUDED.flags,"
    "  event_ms = EXCLUDED.event_ms"
    /* The incoming row wins when it closes a provisional row, or when it has the same
     * closed flag and different market data. event_time and source are left out of the
     * comparison: the same closed second from WS and from REST is the same kline.
     * last_trade_id follows from first_trade_id and trades. */
    " WHERE (EXCLUDED.flags & 1 = 1 AND k.flags & 1 = 0)"
    "  OR (EXCLUDED.flags & 1 = k.flags & 1 AND"
    "   (k.open, k.high, k.low, k.close, k.volume, k.quote_volume, k.trades,"
    "    k.taker_buy_volume, k.taker_buy_quote_volume, k.first_trade_id)"
    "   IS DISTINCT FROM"
    "   (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close,"
    "    EXCLUDED.volume, EXCLUDED.quote_volume, EXCLUDED.trades, EXCLUDED.taker_buy_volume,"
    "    EXCLUDED.taker_buy_quote_volume, EXCLUDED.first_trade_id))"
    " RETURNING k.symbol_id, (extract(epoch FROM k.open_time) * 1000)::bigint AS ms,"
    "  k.xmax = 0 AS fresh)"
    /* the name, for the lookup in the batch (a subquery in RETURNING cannot sit beside
     * the system column xmax) */
    " SELECT y.symbol, up.ms, up.fresh FROM up JOIN kline_symbol y ON y.id = up.symbol_id";

/* The same for the rows of kline_1s_wide's hours, in its old types; %lld: the cut-off. */
static const char ins_store_upsert_wide_fmt[] =
    "INSERT INTO kline_1s_wide AS k (symbol, open_time, open, high, low, close,"
    "  volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume,"
    "  first_trade_id, last_trade_id, closed, event_time, source)"
    " SELECT symbol, " INS_STORE_TS("open_ms") ","
    "  open, high, low, close,"
    "  volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume,"
    "  first_trade_id, last_trade_id, closed, " INS_STORE_TS("event_ms") ", source"
    " FROM ins_stage WHERE open_ms < %lld"
    " ON CONFLICT (symbol, open_time) DO UPDATE SET"
    "  open = EXCLUDED.open, high = EXCLUDED.high,"
    "  low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume,"
    "  quote_volume = EXCLUDED.quote_volume, trades = EXCLUDED.trades,"
    "  taker_buy_volume = EXCLUDED.taker_buy_volume,"
    "  taker_buy_quote_volume = EXCLUDED.taker_buy_quote_volume,"
    "  first_trade_id = EXCLUDED.first_trade_id, last_trade_id = EXCLUDED.last_trade_id,"
    "  closed = EXCLUDED.closed, event_time = EXCLUDED.event_time, source = EXCLUDED.source"
    " WHERE (EXCLUDED.closed AND NOT k.closed)"
    "  OR (EXCLUDED.closed = k.closed AND"
    "   (k.open, k.high, k.low, k.close, k.volume, k.quote_volume, k.trades,"
    "    k.taker_buy_volume, k.taker_buy_quote_volume, k.first_trade_id, k.last_trade_id)"
    "   IS DISTINCT FROM"
    "   (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close,"
    "    EXCLUDED.volume, EXCLUDED.quote_volume, EXCLUDED.trades, EXCLUDED.taker_buy_volume,"
    "    EXCLUDED.taker_buy_quote_volume, EXCLUDED.first_trade_id, EXCLUDED.last_trade_id))"
    " RETURNING k.symbol, (extract(epoch FROM k.open_time) * 1000)::bigint, k.xmax = 0";

static const char ins_store_rejected_sql[] =
    "INSERT INTO rejected (raw, raw_size, raw_sha256, reason, origin, program)"
    " SELECT r.raw, r.raw_size, r.raw_sha256, r.reason, r.origin, '" INS_PROG "' FROM ins_rej r"
    /* same origin and same bytes (hash and size of the whole input): a redelivery */
    " WHERE NOT EXISTS (SELECT 1 FROM rejected x WHERE x.origin = r.origin"
    "  AND x.raw_sha256 = r.raw_sha256 AND x.raw_size = r.raw_size)"
    " RETURNING 1";

static void ins_store_put_cp(const ins_row_t *first, const ins_row_t *last, int64_t off_lo,
                             int64_t off_hi, long long rows, const char *topic)
{
    ins_store_puts(first->k.symbol); ins_store_put("\t", 1);
    ins_store_put_ts(first->k.open_time); ins_store_put("\t", 1);
    ins_store_put_ts(last->k.open_time); ins_store_put("\t", 1);
    ins_store_put_i64(rows); ins_store_put("\t", 1);
    if (first->part >= 0) {
        ins_store_put_text(topic); ins_store_put("\t", 1);
        ins_store_put_i64(first->part); ins_store_put("\t", 1);
        ins_store_put_i64(off_lo); ins_store_put("\t", 1);
        ins_store_put_i64(off_hi); ins_store_put("\n", 1);
    } else {
        ins_store_put("\\N\t\\N\t\\N\t\\N\n", 12);
    }
}

/* The rows an upsert changed (its RETURNING rows), looked up in the batch, into
 * ins_store_idx.p[base..base + n). *inserted counts the new ones. */
static int ins_store_changed_rows(const ins_batch_t *b, PGresult *r, size_t base,
                                  long long *inserted, char *errbuf, size_t errlen)
{
    int n = PQntuples(r);
    if (ins_store_idx_reserve(base + (size_t)n + 1) < 0) {
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
        ins_store_idx.p[base + (size_t)i] = row;
        *inserted += PQgetvalue(r, i, 2)[0] == 't';
    }
    return 0;
}

/* COPY text of the checkpoint rows for the changed rows ins_store_idx.p[0..n): one per
 * (symbol, partition). Returns their number, -1 on ENOMEM. */
static long long ins_store_build_checkpoints(size_t n, const char *topic)
{
    long long ncp = 0;
    qsort(ins_store_idx.p, n, sizeof *ins_store_idx.p, ins_store_cp_cmp);
    kp_buf_reset(&ins_store_copy_buf);
    if (ins_store_reserve(n * (KLINE_SYMBOL_MAX + 2 * 32 + 4 * 21 + strlen(topic) * 2 + 16)) < 0)
        return -1;
    for (size_t i = 0; i < n;) {
        const ins_row_t *first = ins_store_idx.p[i];
        int64_t lo = first->off, hi = first->off;
        size_t j = i + 1;
        for (; j < n && ins_store_idx.p[j]->part == first->part &&
             strcmp(ins_store_idx.p[j]->k.symbol, first->k.symbol) == 0; j++) {
            if (ins_store_idx.p[j]->off < lo)
                lo = ins_store_idx.p[j]->off;
            if (ins_store_idx.p[j]->off > hi)
                hi = ins_store_idx.p[j]->off;
        }
        ins_store_put_cp(first, ins_store_idx.p[j - 1], lo, hi, (long long)(j - i), topic);
        ncp++;
        i = j;
    }
    return ncp;
}

/* The columns of ins_store_put_lean, in its order. */
#define INS_STORE_LEAN_COLS "symbol_id, open_time, open, high, low, close, volume," \
    " quote_volume, taker_buy_volume, taker_buy_quote_volume, trades, first_trade_id," \
    " flags, event_ms"

/* The earliest open_time of the batch (which has rows). */
static int64_t ins_store_min_open(const ins_batch_t *b)
{
    int64_t t = INT64_MAX;
    for (size_t i = 0; i < b->nrows; i++)
        if (b->rows[i].k.open_time < t)
            t = b->rows[i].k.open_time;
    return t;
}

/* The fast path: the batch COPYed straight into kline_1s_lean, under a savepoint. It works
 * when every row is new (the common case: live data, a first load); one existing key
 * makes it fail with unique_violation, and the batch takes the upsert path instead.
 * 1 = done (every row inserted), 0 = conflict (savepoint rolled back), -1 = error. */
static int ins_store_direct(ins_store_t *s, const ins_batch_t *b, int64_t deadline, char *errbuf,
                            size_t errlen)
{
    if (ins_store_build_rows(b, true) < 0) {
        snprintf(errbuf, errlen, "out of memory for COPY data");
        return -1;
    }
    if (ins_store_run(s, "SAVEPOINT ins_direct", deadline, NULL, errbuf, errlen) < 0)
        return -1;
    if (ins_store_copy(s, "COPY kline_1s_lean (" INS_STORE_LEAN_COLS ") FROM STDIN (FORMAT binary)",
                       deadline, errbuf, errlen) == 0)
        return ins_store_run(s, "RELEASE SAVEPOINT ins_direct", deadline, NULL, errbuf,
                             errlen) < 0 ? -1 : 1;
    if (strcmp(pgd_last_sqlstate(), "23505") != 0 || pgd_abandoned(s->conn))
        return -1;
    if (ins_store_run(s, "ROLLBACK TO SAVEPOINT ins_direct", deadline, NULL, errbuf, errlen) < 0)
        return -1;
    return 0;
}

/* Step 1: the rejects, each stored once per (origin, bytes). *stored = rows new to `rejected`. */
static int ins_store_tx_rejects(ins_store_t *s, const ins_batch_t *b, int64_t deadline,
                                long long *stored, char *errbuf, size_t errlen)
{
    PGresult *r = NULL;
    if (ins_store_build_rejects(b) < 0) {
        snprintf(errbuf, errlen, "out of memory for COPY data");
        return -1;
    }
    if (ins_store_copy(s, "COPY ins_rej FROM STDIN", deadline, errbuf, errlen) < 0 ||
        ins_store_run(s, ins_store_rejected_sql, deadline, &r, errbuf, errlen) < 0)
        return -1;
    *stored = r ? PQntuples(r) : 0;
    PQclear(r);
    return 0;
}

/* One upsert statement; its changed rows appended to ins_store_idx.p from *changed. */
static int ins_store_upsert_one(ins_store_t *s, const ins_batch_t *b, const char *sql,
                                int64_t deadline, long long *changed, long long *inserted,
                                char *errbuf, size_t errlen)
{
    PGresult *r = NULL;
    if (ins_store_run(s, sql, deadline, &r, errbuf, errlen) < 0)
        return -1;
    int n = r ? PQntuples(r) : 0;
    int rc = n ? ins_store_changed_rows(b, r, (size_t)*changed, inserted, errbuf, errlen) : 0;
    *changed += n;
    PQclear(r);
    return rc;
}

/* Step 3 (the direct COPY met an existing row, or the batch has rows of kline_1s_wide's
 * hours): staging table + upsert. The rows it changed end up in
 * ins_store_idx.p[0..*changed), *inserted of them new. */
static int ins_store_tx_upsert(ins_store_t *s, const ins_batch_t *b, bool wide_rows,
                               int64_t deadline, long long *changed, long long *inserted,
                               char *errbuf, size_t errlen)
{
    char sql[sizeof ins_store_upsert_wide_fmt + 64], cond[64] = "";
    *changed = *inserted = 0;
    if (ins_store_build_rows(b, false) < 0) {
        snprintf(errbuf, errlen, "out of memory for COPY data");
        return -1;
    }
    if (ins_store_copy(s, "COPY ins_stage FROM STDIN", deadline, errbuf, errlen) < 0)
        return -1;
    if (s->wide_cut_ms != INT64_MIN)
        snprintf(cond, sizeof cond, " WHERE open_ms >= %lld", (long long)s->wide_cut_ms);
    snprintf(sql, sizeof sql, ins_store_upsert_lean_fmt, cond);
    if (ins_store_upsert_one(s, b, sql, deadline, changed, inserted, errbuf, errlen) < 0)
        return -1;
    if (!wide_rows)
        return 0;
    snprintf(sql, sizeof sql, ins_store_upsert_wide_fmt, (long long)s->wide_cut_ms);
    return ins_store_upsert_one(s, b, sql, deadline, changed, inserted, errbuf, errlen);
}

/* Steps 2-3: the rows, direct COPY first (see the top of this file), and the checkpoint
 * COPY text for those changed (in ins_store_copy_buf, *ncp rows). */
static int ins_store_tx_rows(ins_store_t *s, const ins_batch_t *b, const char *topic,
                             int64_t deadline, ins_result_t *res, long long *ncp, char *errbuf,
                             size_t errlen)
{
    long long changed = 0, inserted = 0;
    /* INT64_MIN (no kline_1s_wide) is below every open_time */
    bool wide_rows = ins_store_min_open(b) < s->wide_cut_ms;
    int direct = s->direct_ok && !wide_rows ? ins_store_direct(s, b, deadline, errbuf, errlen) : 0;
    if (direct < 0)
        return -1;
    if (direct == 1) {
        changed = inserted = (long long)b->nrows; /* ins_store_idx.p holds every row */
        res->direct = true;
    } else if (ins_store_tx_upsert(s, b, wide_rows, deadline, &changed, &inserted, errbuf,
                                   errlen) < 0) {
        return -1;
    }
    if (changed > 0 &&
        (*ncp = ins_store_build_checkpoints((size_t)changed, topic ? topic : "")) < 0) {
        snprintf(errbuf, errlen, "out of memory for checkpoint rows");
        return -1;
    }
    res->inserted = inserted;
    res->updated = changed - inserted;
    res->unchanged = (long long)b->nrows - changed;
    return 0;
}

/* The per-symbol checkpoint rows (ins_cp) as compact rows: one per group of symbols that
 * share partition, first, last and row count, the symbols as a bitmap of their ids
 * (schema/007). In live mode that is one row per Kafka partition per batch. */
static const char ins_store_checkpoint_sql[] =
    "INSERT INTO checkpoint_batch (first_open_time, last_open_time, row_count, kafka_topic,"
    " kafka_partition, first_offset, last_offset, symbols)"
    " SELECT c.first_open_time, c.last_open_time, c.row_count, c.kafka_topic, c.kafka_partition,"
    "  min(c.first_offset), max(c.last_offset), kp_symbol_bits(array_agg(i.id))"
    " FROM ins_cp c JOIN kp_symbol_ids(ARRAY(SELECT DISTINCT symbol FROM ins_cp)) i"
    "  USING (symbol)"
    " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 5";

/* Step 4: the checkpoint rows (if any) and COMMIT. */
static int ins_store_tx_commit(ins_store_t *s, long long ncp, int64_t deadline, char *errbuf,
                               size_t errlen)
{
    if (ncp == 0)
        return ins_store_run(s, "COMMIT", deadline, NULL, errbuf, errlen);
    /* The lock is taken as late as possible: it serialises every inserter's tail so
     * checkpoint ids follow commit order (DEVELOPING.md "Decisions"). The checkpoint
     * rows are the last statement before COMMIT. */
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", PGX_LOCK_CHECKPOINT);
    if (ins_store_run(s, lock, deadline, NULL, errbuf, errlen) < 0 ||
        ins_store_copy(s, "COPY ins_cp FROM STDIN", deadline, errbuf, errlen) < 0 ||
        ins_store_run(s, ins_store_checkpoint_sql, deadline, NULL, errbuf, errlen) < 0)
        return -1;
    return ins_store_run(s, "NOTIFY " PGX_NOTIFY_CHANNEL "; COMMIT", deadline, NULL, errbuf,
                         errlen);
}

static int ins_store_tx(ins_store_t *s, const ins_batch_t *b, const char *topic, int64_t deadline,
                        ins_result_t *res, char *errbuf, size_t errlen)
{
    long long ncp = 0;
    if (b->nrows && (ins_partition_ensure(s->conn, b, deadline, errbuf, errlen) < 0 ||
                     ins_symbols_ensure(s->conn, b, deadline, errbuf, errlen) < 0))
        return -1;
    if (ins_store_run(s, "BEGIN", deadline, NULL, errbuf, errlen) < 0)
        return -1;
    if (b->nrej && ins_store_tx_rejects(s, b, deadline, &res->rejected_new, errbuf, errlen) < 0)
        return -1;
    if (b->nrows && ins_store_tx_rows(s, b, topic, deadline, res, &ncp, errbuf, errlen) < 0)
        return -1;
    if (ins_store_tx_commit(s, ncp, deadline, errbuf, errlen) < 0)
        return -1;
    res->checkpoints = ncp;
    /* Try the direct COPY again as soon as a batch is all new; stay on the upsert while
     * batches meet existing rows (a replay), where the direct attempt would only fail. */
    s->direct_ok = res->inserted == (long long)b->nrows;
    return 0;
}

int ins_store_probe(ins_store_t *s, char *errbuf, size_t errlen)
{
    errbuf[0] = '\0';
    if (!s->conn)
        return ins_store_reconnect(s, errbuf, errlen);
    if (ins_store_run(s, "SELECT 1", pgd_deadline(s->op_timeout_ms), NULL, errbuf, errlen) == 0)
        return 0;
    ins_store_drop(s);
    return -1;
}

int ins_store_write(ins_store_t *s, const ins_batch_t *b, const char *topic,
                    ins_result_t *res, char *errbuf, size_t errlen)
{
    memset(res, 0, sizeof *res);
    errbuf[0] = '\0';
    if (!s->conn && ins_store_reconnect(s, errbuf, errlen) < 0)
        return -1;
    int64_t deadline = pgd_deadline(s->op_timeout_ms);
    if (ins_store_tx(s, b, topic, deadline, res, errbuf, errlen) == 0)
        return 0;
    ins_stats_pg_error();
    /* Roll back if the link still works; anything else means the session is gone
     * (or hangs): drop it, the next attempt reconnects and replays the batch. */
    char err2[256];
    if (pgd_abandoned(s->conn) ||
        ins_store_run(s, "ROLLBACK", pgd_deadline(5000), NULL, err2, sizeof err2) < 0)
        ins_store_drop(s);
    return -1;
}
