/* proto.c — parsing and validation of what clients send: WebSocket messages and the
 * /api/klines query string. Pure functions (no I/O, no global state) so they can be
 * fuzzed and unit-tested alone; client.c and http.c act on the results.
 *
 * Every input is handled by length, never by NUL termination, so an embedded NUL
 * (a %00 or a raw byte) can only make a value invalid, never shorten it into a valid one. */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static int st_proto_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int st_proto_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---------------------------------------------------------------- /api/klines */

static const struct {
    const char *interval, *table;
    bool rollup;
} st_proto_tables[] = {
    {"1s", "kline_1s", false}, {"1m", "kline_1m", true}, {"5m", "kline_5m", true},
    {"15m", "kline_15m", true}, {"1h", "kline_1h", true}, {"4h", "kline_4h", true},
    {"1d", "kline_1d", true},
};
#define ST_PROTO_NTABLES (sizeof st_proto_tables / sizeof st_proto_tables[0])

const char *st_proto_interval_table(const char *interval, bool *rollup)
{
    for (size_t i = 0; interval && i < ST_PROTO_NTABLES; i++)
        if (!strcmp(st_proto_tables[i].interval, interval)) {
            if (rollup)
                *rollup = st_proto_tables[i].rollup;
            return st_proto_tables[i].table;
        }
    return NULL;
}

/* Decimal digits only (no sign, no blanks: strtoll's leniency is not wanted on a
 * public endpoint), value in [min, max]. */
static int st_proto_uint(const char *s, size_t n, long long min, long long max, long long *out)
{
    if (n == 0)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (v > (max - d) / 10) /* v * 10 + d would pass max (and never overflows) */
            return -1;
        v = v * 10 + d;
    }
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

static bool st_proto_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && !memcmp(s, lit, n);
}

/* Parser state over the arguments of one query. */
struct st_kq {
    struct st_db_req *req;
    bool seen[5];
    bool has_symbol;
    int nargs;
};

#define ST_PROTO_ERR_ARGS "too many or too long query parameters"

static int st_kq_symbol(struct st_kq *q, const char *v, size_t vlen, char *err, size_t errlen)
{
    struct st_db_req *req = q->req;
    if (vlen == 0 || vlen > ST_PROTO_SYMBOL_LEN || vlen >= sizeof req->symbol)
        return st_proto_err(err, errlen, "symbol must be 1-20 letters or digits");
    for (size_t j = 0; j < vlen; j++) {
        char c = v[j];
        c = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return st_proto_err(err, errlen, "symbol must be 1-20 letters or digits");
        req->symbol[j] = c;
    }
    req->symbol[vlen] = '\0';
    q->has_symbol = true;
    return 0;
}

static int st_kq_interval(struct st_kq *q, const char *v, size_t vlen, char *err, size_t errlen)
{
    for (size_t k = 0; k < ST_PROTO_NTABLES; k++)
        if (st_proto_is(v, vlen, st_proto_tables[k].interval)) {
            snprintf(q->req->interval, sizeof q->req->interval, "%s", st_proto_tables[k].interval);
            return 0;
        }
    return st_proto_err(err, errlen, "interval must be one of 1s, 1m, 5m, 15m, 1h, 4h, 1d");
}

static int st_kq_ms(const char *v, size_t vlen, const char *name, int64_t *out, char *err, size_t errlen)
{
    long long x;
    if (st_proto_uint(v, vlen, 0, ST_PROTO_TIME_MAX, &x) < 0)
        return st_proto_err(err, errlen, "%s must be epoch milliseconds", name);
    *out = x;
    return 0;
}

static int st_kq_from(struct st_kq *q, const char *v, size_t vlen, char *err, size_t errlen)
{
    q->req->has_from = true; /* a refused value ends the parse anyway */
    return st_kq_ms(v, vlen, "from", &q->req->from, err, errlen);
}

static int st_kq_to(struct st_kq *q, const char *v, size_t vlen, char *err, size_t errlen)
{
    return st_kq_ms(v, vlen, "to", &q->req->to, err, errlen);
}

static int st_kq_limit(struct st_kq *q, const char *v, size_t vlen, char *err, size_t errlen)
{
    long long x;
    if (st_proto_uint(v, vlen, 1, ST_PROTO_LIMIT_ASK_MAX, &x) < 0)
        return st_proto_err(err, errlen, "limit must be an integer from 1 to 5000");
    /* larger asks are capped, not refused */
    q->req->limit = x > ST_PROTO_LIMIT_MAX ? ST_PROTO_LIMIT_MAX : (int)x;
    return 0;
}

/* The parameters /api/klines knows, each at its index in st_kq.seen. */
static const struct {
    const char *name;
    int (*parse)(struct st_kq *q, const char *v, size_t vlen, char *err, size_t errlen);
} st_kq_params[5] = {
    {"symbol", st_kq_symbol}, {"interval", st_kq_interval}, {"from", st_kq_from},
    {"to", st_kq_to}, {"limit", st_kq_limit},
};

static int st_kq_arg(struct st_kq *q, const char *a, size_t len, char *err, size_t errlen)
{
    if (q->nargs++ >= ST_PROTO_QUERY_ARGS || len > ST_PROTO_QUERY_ARG_LEN)
        return st_proto_err(err, errlen, ST_PROTO_ERR_ARGS);
    const char *eq = memchr(a, '=', len);
    if (!eq)
        return st_proto_err(err, errlen, "query parameters must be name=value");
    size_t nlen = (size_t)(eq - a);
    int which = -1;
    for (int k = 0; k < 5; k++)
        if (st_proto_is(a, nlen, st_kq_params[k].name))
            which = k;
    if (which < 0)
        return st_proto_err(err, errlen,
                            "unknown query parameter (allowed: symbol, interval, from, to, limit)");
    if (q->seen[which])
        return st_proto_err(err, errlen, "a query parameter is repeated");
    q->seen[which] = true;
    return st_kq_params[which].parse(q, eq + 1, len - nlen - 1, err, errlen);
}

static void st_kq_init(struct st_kq *q, struct st_db_req *out)
{
    memset(q, 0, sizeof *q);
    memset(out, 0, sizeof *out);
    snprintf(out->interval, sizeof out->interval, "1m");
    out->from = 0;
    out->to = ST_PROTO_TIME_MAX;
    out->limit = ST_PROTO_LIMIT_DEFAULT;
    q->req = out;
}

static int st_kq_finish(struct st_kq *q, char *err, size_t errlen)
{
    if (!q->has_symbol)
        return st_proto_err(err, errlen, "symbol is required");
    if (q->req->from > q->req->to)
        return st_proto_err(err, errlen, "from must not be after to");
    return 0;
}

int st_proto_parse_klines_args(const char *const *args, const size_t *lens, int n,
                               struct st_db_req *out, char *err, size_t errlen)
{
    struct st_kq q;
    st_kq_init(&q, out);
    for (int i = 0; i < n; i++)
        if (st_kq_arg(&q, args[i], lens[i], err, errlen) < 0)
            return -1;
    return st_kq_finish(&q, err, errlen);
}

static int st_proto_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int st_proto_parse_klines_query(const char *qs, size_t len, struct st_db_req *out, char *err,
                                size_t errlen)
{
    struct st_kq q;
    st_kq_init(&q, out);
    char arg[ST_PROTO_QUERY_ARG_LEN + 1];
    size_t i = 0;
    while (i < len) {
        size_t n = 0;
        for (; i < len && qs[i] != '&'; i++) {
            char c = qs[i];
            if (c == '%') {
                int hi = i + 2 < len ? st_proto_hex(qs[i + 1]) : -1;
                int lo = hi >= 0 ? st_proto_hex(qs[i + 2]) : -1;
                if (lo < 0)
                    return st_proto_err(err, errlen, "bad percent-encoding in the query string");
                c = (char)(hi << 4 | lo);
                i += 2;
            } else if (c == '+') {
                c = ' ';
            }
            /* one byte over the limit is enough for st_kq_arg to refuse it */
            if (n > ST_PROTO_QUERY_ARG_LEN)
                return st_proto_err(err, errlen, ST_PROTO_ERR_ARGS);
            arg[n++] = c;
        }
        i++; /* the '&' (or one past the end) */
        /* "a=1&&b=2" and a trailing '&' carry nothing: skipped rather than refused */
        if (n && st_kq_arg(&q, arg, n, err, errlen) < 0)
            return -1;
    }
    return st_kq_finish(&q, err, errlen);
}

/* ---------------------------------------------------------------- client messages */

#define ST_PROTO_ERR_SYMBOL "symbol #%zu is not a symbol ([A-Za-z0-9]{1,20} or \"*\")"

static int st_proto_symbols(json_t *req, int max, struct st_proto_msg *out, char *err,
                            size_t errlen)
{
    json_t *arr = json_object_get(req, "symbols");
    if (!json_is_array(arr))
        return st_proto_err(err, errlen, "\"symbols\" must be an array of strings");
    size_t n = json_array_size(arr);
    if (max < 0 || n > (size_t)max)
        return st_proto_err(err, errlen, "too many symbols in one request (max %d)", max);
    out->symbols = malloc(sizeof *out->symbols * (n ? n : 1));
    if (!out->symbols)
        return st_proto_err(err, errlen, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        size_t len = s ? json_string_length(v) : 0;
        if (!s || len == 0 || len > ST_PROTO_SYMBOL_LEN)
            return st_proto_err(err, errlen, ST_PROTO_ERR_SYMBOL, i + 1);
        char *d = out->symbols[out->nsymbols];
        bool star = len == 1 && s[0] == '*';
        for (size_t j = 0; j < len && !star; j++) {
            char c = s[j];
            c = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
            if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
                return st_proto_err(err, errlen, ST_PROTO_ERR_SYMBOL, i + 1);
            d[j] = c;
        }
        if (star)
            d[0] = '*';
        d[len] = '\0';
        out->wildcard |= star;
        out->nsymbols++;
    }
    return 0;
}

int st_proto_parse_client(const char *buf, size_t len, int max_symbols, struct st_proto_msg *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    /* jansson validates UTF-8, refuses \u0000 and bounds nesting depth */
    json_t *req = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (!json_is_object(req)) {
        st_proto_err(err, errlen, "malformed message: expected a JSON object with an \"op\"");
        goto out;
    }
    const char *op = json_string_value(json_object_get(req, "op"));
    if (!op) {
        st_proto_err(err, errlen, "missing \"op\" (subscribe, unsubscribe or ping)");
    } else if (!strcmp(op, "subscribe") || !strcmp(op, "unsubscribe")) {
        out->op = op[0] == 's' ? ST_OP_SUBSCRIBE : ST_OP_UNSUBSCRIBE;
        rc = st_proto_symbols(req, max_symbols, out, err, errlen);
    } else if (!strcmp(op, "ping")) {
        out->op = ST_OP_PING;
        json_t *id = json_object_get(req, "id");
        if (json_is_integer(id)) {
            out->has_id = true;
            out->id = (long long)json_integer_value(id);
        }
        rc = 0;
    } else {
        st_proto_err(err, errlen, "unknown op (expected subscribe, unsubscribe or ping)");
    }
out:
    json_decref(req);
    if (rc < 0)
        st_proto_msg_free(out);
    return rc;
}

void st_proto_msg_free(struct st_proto_msg *m)
{
    free(m->symbols);
    memset(m, 0, sizeof *m);
}
