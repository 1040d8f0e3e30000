/*
 * rest.c — HTTP on the stream port: Binance REST (/api/v3/klines, exchangeInfo,
 * ping, time), the truth (/truth, --dump-truth) and the test controls (/control/...).
 *
 * Every response carries a Content-Length; big truth bodies are produced in
 * chunks from the deterministic generator (a length pass first, then the body),
 * so nothing proportional to the run length is ever held in memory.
 */
#include "sim.h"

#include <libwebsockets.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HTTP_CHUNK      (64 * 1024)
#define TRUTH_SECS      96            /* seconds per symbol per truth chunk */

typedef struct http_sess {
    int kind;                   /* 1 = http (the ws struct starts with kind 2) */
    unsigned char *body;        /* owned: LWS_PRE + len bytes (static bodies) */
    size_t len, off;
    bool truth;                 /* body produced by the truth iterator */
    bool bars;                  /* ... as 1m bars (interval=1m) */
    int ti, tlast;              /* position in the sorted symbol index */
    int64_t ts, s0, s1;         /* next second; inclusive range */
    unsigned char *chunk;       /* owned: LWS_PRE + chunk capacity */
    size_t clen, coff, ccap;
    size_t remaining;           /* truth bytes still to send */
} http_sess_t;

size_t sim_http_session_size(void) { return sizeof(http_sess_t); }

/* ---- symbols sorted by name (the truth's order) ---- */
static int *sorted;
static int sym_cmp(const void *a, const void *b)
{
    return strcmp(g_sim.syms[*(const int *)a].name, g_sim.syms[*(const int *)b].name);
}
static const int *sorted_syms(void)
{
    if (!sorted) {
        sorted = malloc(g_sim.nsyms * sizeof *sorted);
        if (!sorted)
            return NULL;
        for (size_t i = 0; i < g_sim.nsyms; i++)
            sorted[i] = (int)i;
        qsort(sorted, g_sim.nsyms, sizeof *sorted, sym_cmp);
    }
    return sorted;
}

/* Symbols listed in exchangeInfo with status BREAK: valid names, never traded. */
static const char *break_syms[][3] = {
    { "HALTAUSDT", "HALTA", "USDT" },
    { "HALTBBTC", "HALTB", "BTC" },
};

static bool is_break_symbol(const char *name)
{
    for (size_t k = 0; k < sizeof break_syms / sizeof break_syms[0]; k++)
        if (strcasecmp(break_syms[k][0], name) == 0)
            return true;
    return false;
}

/* ---- request weight: per calendar minute, as Binance counts X-MBX-USED-WEIGHT-1M
 * ("weight used in the current minute"): the count starts again at every minute ---- */
static struct { int64_t minute; int w; } weight;

static int weight_used(int64_t now_ms)
{
    return weight.minute == now_ms / 60000 ? weight.w : 0;
}

static void weight_add(int64_t now_ms, int w)
{
    int64_t minute = now_ms / 60000;
    if (weight.minute != minute) {
        weight.minute = minute;
        weight.w = 0;
    }
    weight.w += w;
}

/* Seconds until the count starts again. */
static int weight_retry_after(int64_t now_ms)
{
    return (int)((60000 - now_ms % 60000 + 999) / 1000);
}

/* ---- growing string buffer with LWS_PRE headroom ---- */
typedef struct sbuf { unsigned char *p; size_t len, cap; bool oom; } sbuf_t;

static void sb_reserve(sbuf_t *b, size_t more)
{
    if (b->oom || b->len + more <= b->cap)
        return;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + more)
        nc *= 2;
    unsigned char *p = realloc(b->p, LWS_PRE + nc);
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p;
    b->cap = nc;
}

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + LWS_PRE + b->len, s, n);
    b->len += n;
}

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ---- responses ---- */

/* Frees the response being sent (a body, or a truth chunk buffer); the session stays. */
static void sess_free_response(http_sess_t *h)
{
    free(h->body);
    free(h->chunk);
    h->body = h->chunk = NULL;
}

static void sess_reset(http_sess_t *h)
{
    sess_free_response(h);
    memset(h, 0, sizeof *h);
    h->kind = 1;
}

/* Sends the headers; the body follows from HTTP_WRITEABLE. Takes ownership of b->p. */
static int respond(struct lws *wsi, http_sess_t *h, unsigned status, const char *ctype,
                   sbuf_t *b, size_t truth_len, bool with_weight, int retry_after)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr;
    char v[32];
    size_t len = h->truth ? truth_len : b->len;
    if (!h->truth) {
        h->body = b->p;
        h->len = b->len;
        b->p = NULL;
    }
    if (lws_add_http_common_headers(wsi, status, ctype, len, &p, end))
        return -1;
    if (with_weight) {
        snprintf(v, sizeof v, "%d", weight_used(sim_now_ms()));
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"x-mbx-used-weight-1m:",
                                        (const unsigned char *)v, (int)strlen(v), &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"x-mbx-used-weight:",
                                        (const unsigned char *)v, (int)strlen(v), &p, end))
            return -1;
    }
    if (retry_after > 0) {
        snprintf(v, sizeof v, "%d", retry_after);
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                        (const unsigned char *)v, (int)strlen(v), &p, end))
            return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    h->remaining = len;
    if (len == 0) {
        /* no WRITEABLE will come to free it (an empty truth range still has a chunk) */
        sess_free_response(h);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int respond_json(struct lws *wsi, http_sess_t *h, unsigned status, const char *json,
                        bool with_weight, int retry_after)
{
    sbuf_t b = { 0 };
    sb_add(&b, json, strlen(json));
    if (b.oom)
        return -1;
    int rc = respond(wsi, h, status, "application/json;charset=UTF-8", &b, 0, with_weight, retry_after);
    free(b.p);
    return rc;
}

static int binance_error(struct lws *wsi, http_sess_t *h, unsigned status, int code, const char *msg)
{
    char j[512];
    snprintf(j, sizeof j, "{\"code\":%d,\"msg\":\"%s\"}", code, msg);
    g_sim.st.rest_errors++;
    return respond_json(wsi, h, status, j, true, 0);
}

/* ---- argument helpers ---- */

static bool arg(struct lws *wsi, const char *name, char *out, size_t outlen)
{
    char key[64], buf[512];
    snprintf(key, sizeof key, "%s=", name);
    const char *v = lws_get_urlarg_by_name(wsi, key, buf, (int)sizeof buf);
    if (!v)
        return false;
    snprintf(out, outlen, "%s", v);
    return true;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *e;
    if (!*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || *e)
        return -1;
    *out = v;
    return 0;
}

/* floor division for possibly negative ms offsets */
static int64_t fdiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* ---- /api/v3/klines ---- */

typedef struct rows_ctx { sbuf_t *b; int n; } rows_ctx_t;

static int row_cb(void *arg_, size_t i, int64_t s, const sim_k_t *k)
{
    rows_ctx_t *r = arg_;
    char row[SIM_MSG_MAX];
    int n = sim_fmt_rest_row(row, s, k);
    if (r->n++)
        sb_add(r->b, ",", 1);
    sb_add(r->b, row, (size_t)n);
    return 0;
}

static bool present(int i, int64_t s)
{
    sim_symbol_t *y = &g_sim.syms[i];
    if (y->replay)
        return s >= 0 && s < g_sim.replay_n && y->present[s];
    return true;
}

static int api_klines(struct lws *wsi, http_sess_t *h)
{
    char sym[64], iv[16], a[64];
    int64_t st = 0, et = 0, limit = 500;
    bool has_st, has_et;
    int64_t now = sim_now_ms();
    g_sim.st.rest_requests++;
    if (g_sim.ft.rest418 > 0) {
        g_sim.ft.rest418--;
        g_sim.st.rest_418++;
        char j[256];
        snprintf(j, sizeof j, "{\"code\":-1003,\"msg\":\"Way too many requests; IP(127.0.0.1) banned until %lld. "
                 "Please use the websocket for live updates to avoid bans.\"}", (long long)(now + 2000));
        return respond_json(wsi, h, 418, j, true, 2);
    }
    if (g_sim.ft.rest429 > 0) {
        g_sim.ft.rest429--;
        g_sim.st.rest_429++;
        return respond_json(wsi, h, 429, "{\"code\":-1003,\"msg\":\"Too much request weight used; current limit is "
                            "6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to "
                            "avoid polling the API.\"}", true, 1);
    }
    weight_add(now, 2);
    if (weight_used(now) > g_sim.cfg.rest_weight_limit) {
        char j[256];
        g_sim.st.rest_429++;
        snprintf(j, sizeof j, "{\"code\":-1003,\"msg\":\"Too much request weight used; current limit is %d "
                 "request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling "
                 "the API.\"}", g_sim.cfg.rest_weight_limit);
        return respond_json(wsi, h, 429, j, true, weight_retry_after(now));
    }
    if (!arg(wsi, "symbol", sym, sizeof sym) || !*sym)
        return binance_error(wsi, h, 400, -1102,
                             "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
    if (!arg(wsi, "interval", iv, sizeof iv) || !*iv)
        return binance_error(wsi, h, 400, -1102,
                             "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.");
    int i = sim_symbol_find(sym);
    bool brk = is_break_symbol(sym);
    if (i < 0 && !brk)
        return binance_error(wsi, h, 400, -1121, "Invalid symbol.");
    if (strcmp(iv, "1s") != 0)
        return binance_error(wsi, h, 400, -1120, "Invalid interval.");
    has_st = arg(wsi, "startTime", a, sizeof a);
    if (has_st && parse_i64(a, &st) < 0)
        return binance_error(wsi, h, 400, -1100,
                             "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'.");
    has_et = arg(wsi, "endTime", a, sizeof a);
    if (has_et && parse_i64(a, &et) < 0)
        return binance_error(wsi, h, 400, -1100,
                             "Illegal characters found in parameter 'endTime'; legal range is '^[0-9]{1,20}$'.");
    if (arg(wsi, "limit", a, sizeof a) && parse_i64(a, &limit) < 0)
        return binance_error(wsi, h, 400, -1100,
                             "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.");
    if (limit <= 0)
        limit = 500;
    if (limit > 1000)
        limit = 1000; /* Binance caps rather than rejects */
    if (has_st && has_et && st > et)
        return binance_error(wsi, h, 400, -1128, "Combination of optional parameters invalid.");

    sbuf_t b = { 0 };
    sb_add(&b, "[", 1);
    if (i >= 0 && g_sim.gen_next > 0) {
        int64_t start = g_sim.cfg.start_ms;
        int64_t s0 = 0, s1 = g_sim.gen_next - 1;
        if (has_st) {
            int64_t c = fdiv(st - start + 999, 1000); /* first open_time >= startTime */
            if (c > s0)
                s0 = c;
        }
        if (has_et) {
            int64_t c = fdiv(et - start, 1000);       /* last open_time <= endTime */
            if (c < s1)
                s1 = c;
        }
        if (!has_st && s1 >= s0) {
            /* without startTime Binance returns the newest `limit` klines up to endTime */
            int64_t cnt = 0, s = s1;
            for (; s >= s0 && cnt < limit; s--)
                cnt += present(i, s);
            s0 = s + 1;
        }
        if (s1 >= s0) {
            /* at most `limit` present seconds from s0 */
            int64_t cnt = 0, s = s0;
            for (; s <= s1 && cnt < limit; s++)
                cnt += present(i, s);
            rows_ctx_t r = { &b, 0 };
            sim_kline_range((size_t)i, s0, s - 1, row_cb, &r);
        }
    }
    sb_add(&b, "]", 1);
    if (b.oom) {
        free(b.p);
        return -1;
    }
    int rc = respond(wsi, h, 200, "application/json;charset=UTF-8", &b, 0, true, 0);
    free(b.p);
    return rc;
}

static int api_exchange_info(struct lws *wsi, http_sess_t *h)
{
    char one[64];
    bool filter = arg(wsi, "symbol", one, sizeof one);
    int64_t now = sim_now_ms();
    weight_add(now, 20);
    g_sim.st.rest_requests++;
    if (filter && sim_symbol_find(one) < 0 && !is_break_symbol(one))
        return binance_error(wsi, h, 400, -1121, "Invalid symbol.");
    sbuf_t b = { 0 };
    sb_printf(&b, "{\"timezone\":\"UTC\",\"serverTime\":%lld,\"rateLimits\":[{\"rateLimitType\":\"REQUEST_WEIGHT\","
              "\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":%d},{\"rateLimitType\":\"RAW_REQUESTS\","
              "\"interval\":\"MINUTE\",\"intervalNum\":5,\"limit\":61000}],\"exchangeFilters\":[],\"symbols\":[",
              (long long)now, g_sim.cfg.rest_weight_limit);
    int n = 0;
    const int *ord = sorted_syms();
    for (size_t k = 0; ord && k < g_sim.nsyms; k++) {
        const sim_symbol_t *y = &g_sim.syms[ord[k]];
        if (filter && strcasecmp(y->name, one) != 0)
            continue;
        sb_printf(&b, "%s{\"symbol\":\"%s\",\"status\":\"%s\",\"baseAsset\":\"%s\",\"baseAssetPrecision\":8,"
                  "\"quoteAsset\":\"%s\",\"quotePrecision\":8,\"quoteAssetPrecision\":8,"
                  "\"orderTypes\":[\"LIMIT\",\"MARKET\"],\"isSpotTradingAllowed\":true,\"permissions\":[\"SPOT\"]}",
                  n++ ? "," : "", y->name, y->trading ? "TRADING" : "BREAK", y->base, y->quote);
    }
    for (size_t k = 0; k < sizeof break_syms / sizeof break_syms[0]; k++) {
        if (filter && strcasecmp(break_syms[k][0], one) != 0)
            continue;
        sb_printf(&b, "%s{\"symbol\":\"%s\",\"status\":\"BREAK\",\"baseAsset\":\"%s\",\"baseAssetPrecision\":8,"
                  "\"quoteAsset\":\"%s\",\"quotePrecision\":8,\"quoteAssetPrecision\":8,"
                  "\"orderTypes\":[\"LIMIT\",\"MARKET\"],\"isSpotTradingAllowed\":true,\"permissions\":[\"SPOT\"]}",
                  n++ ? "," : "", break_syms[k][0], break_syms[k][1], break_syms[k][2]);
    }
    sb_add(&b, "]}", 2);
    if (b.oom) {
        free(b.p);
        return -1;
    }
    int rc = respond(wsi, h, 200, "application/json;charset=UTF-8", &b, 0, true, 0);
    free(b.p);
    return rc;
}

/* ---- truth ---- */

typedef struct truth_ctx { unsigned char *out; size_t len; size_t total; } truth_ctx_t;

static void truth_put(truth_ctx_t *t, char *line, int n)
{
    line[n++] = '\n';
    if (t->out)
        memcpy(t->out + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->total += (size_t)n;
}

static int truth_line(void *arg_, size_t i, int64_t s, const sim_k_t *k)
{
    char line[SIM_MSG_MAX];
    truth_put(arg_, line, sim_fmt_canonical(line, i, s, k));
    return 0;
}

static bool bar_add_overflows(int64_t *sum, int64_t v)
{
    return __builtin_add_overflow(*sum, v, sum);
}

/* Adds second s to the bar by docs/aggregator.md: OHLC and trade ids from the seconds
 * that traded (a bar without trades keeps its first second's open), volumes summed. */
static int truth_bar_add(void *arg_, size_t i, int64_t s, const sim_k_t *k)
{
    sim_bar_t *b = arg_;
    sim_k_t *a = &b->k;
    if (b->rows++ == 0) {
        b->open_ms = sim_open_time(s) / 60000 * 60000;
        *a = (sim_k_t){ .o = k->o, .h = k->o, .l = k->o, .c = k->o, .f = -1, .L = -1 };
    }
    b->overflow |= bar_add_overflows(&a->v, k->v) | bar_add_overflows(&a->q, k->q) |
                   bar_add_overflows(&a->V, k->V) | bar_add_overflows(&a->Q, k->Q) |
                   bar_add_overflows(&a->n, k->n);
    if (k->n <= 0)
        return 0;
    if (!b->traded) {
        a->o = k->o, a->h = k->h, a->l = k->l, a->f = k->f;
        b->traded = true;
    }
    a->h = k->h > a->h ? k->h : a->h;
    a->l = k->l < a->l ? k->l : a->l;
    a->c = k->c, a->L = k->L;
    return 0;
}

/* The last second of the minute that second s is in (the sim may start mid-minute). */
static int64_t minute_last_second(int64_t s)
{
    int64_t m = sim_open_time(s) / 60000 * 60000;
    return fdiv(m + 60000 - g_sim.cfg.start_ms + 999, 1000) - 1;
}

/* Seconds [s0, e] of symbol i into t: lines, or (bars) the bar of the minute they are in. */
static void truth_span(truth_ctx_t *t, bool bars, size_t i, int64_t s0, int64_t e)
{
    if (!bars) {
        sim_kline_range(i, s0, e, truth_line, t);
        return;
    }
    sim_bar_t b = { 0 };
    sim_kline_range(i, s0, e, truth_bar_add, &b);
    char line[SIM_MSG_MAX];
    if (b.rows)
        truth_put(t, line, sim_fmt_bar(line, i, &b));
}

/* Where the span that starts at ts ends: TRUTH_SECS on, or the end of its minute. */
static int64_t truth_span_end(bool bars, int64_t ts, int64_t s1)
{
    int64_t e = bars ? minute_last_second(ts) : ts + TRUTH_SECS - 1;
    return e < s1 ? e : s1;
}

/* Resolves symbol/from/to into a symbol range of the sorted index and a second range. */
static int truth_range(const char *sym, bool has_from, int64_t from, bool has_to, int64_t to,
                       int *first, int *last, int64_t *s0, int64_t *s1)
{
    const int *ord = sorted_syms();
    if (!ord)
        return -1;
    *first = 0;
    *last = (int)g_sim.nsyms - 1;
    if (sym && *sym) {
        int i = sim_symbol_find(sym);
        if (i < 0)
            return -1;
        for (size_t k = 0; k < g_sim.nsyms; k++)
            if (ord[k] == i)
                *first = *last = (int)k;
    }
    *s0 = 0;
    *s1 = g_sim.gen_next - 1;
    if (has_from) {
        int64_t c = fdiv(from - g_sim.cfg.start_ms + 999, 1000);
        if (c > *s0)
            *s0 = c;
    }
    if (has_to) {
        int64_t c = fdiv(to - g_sim.cfg.start_ms, 1000);
        if (c < *s1)
            *s1 = c;
    }
    return 0;
}

static size_t truth_length(bool bars, int first, int last, int64_t s0, int64_t s1)
{
    truth_ctx_t t = { NULL, 0, 0 };
    const int *ord = sorted_syms();
    for (int k = first; k <= last && s1 >= s0; k++)
        for (int64_t ts = s0, e; ts <= s1; ts = e + 1) {
            e = truth_span_end(bars, ts, s1);
            truth_span(&t, bars, (size_t)ord[k], ts, e);
        }
    return t.total;
}

/* Fills h->chunk with the next lines; returns bytes (0 at the end). */
static size_t truth_fill(http_sess_t *h)
{
    const int *ord = sorted_syms();
    truth_ctx_t t = { h->chunk + LWS_PRE, 0, 0 };
    while (h->ti <= h->tlast && t.len < HTTP_CHUNK && h->s1 >= h->s0) {
        int64_t e = truth_span_end(h->bars, h->ts, h->s1);
        truth_span(&t, h->bars, (size_t)ord[h->ti], h->ts, e);
        h->ts = e + 1;
        if (h->ts > h->s1) {
            h->ti++;
            h->ts = h->s0;
        }
    }
    return t.len;
}

static int truth_request(struct lws *wsi, http_sess_t *h)
{
    char sym[64] = "", a[64];
    int64_t from = 0, to = 0;
    bool hf = arg(wsi, "from", a, sizeof a);
    if (hf && parse_i64(a, &from) < 0)
        return binance_error(wsi, h, 400, -1100, "Illegal characters found in parameter 'from'.");
    bool ht = arg(wsi, "to", a, sizeof a);
    if (ht && parse_i64(a, &to) < 0)
        return binance_error(wsi, h, 400, -1100, "Illegal characters found in parameter 'to'.");
    arg(wsi, "symbol", sym, sizeof sym);
    if (arg(wsi, "interval", a, sizeof a) && strcmp(a, "1s") != 0) {
        if (strcmp(a, "1m") != 0)
            return binance_error(wsi, h, 400, -1120, "Invalid interval: the truth has 1s and 1m.");
        h->bars = true;
    }
    if (truth_range(sym, hf, from, ht, to, &h->ti, &h->tlast, &h->s0, &h->s1) < 0)
        return binance_error(wsi, h, 400, -1121, "Invalid symbol.");
    h->ts = h->s0;
    h->ccap = HTTP_CHUNK + TRUTH_SECS * SIM_MSG_MAX;
    h->chunk = malloc(LWS_PRE + h->ccap);
    if (!h->chunk)
        return -1;
    h->truth = true;
    size_t len = truth_length(h->bars, h->ti, h->tlast, h->s0, h->s1);
    return respond(wsi, h, 200, "application/x-ndjson", NULL, len, false, 0);
}

int sim_truth_dump_file(const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    const int *ord = sorted_syms();
    unsigned char *buf = malloc(HTTP_CHUNK + TRUTH_SECS * SIM_MSG_MAX);
    if (!ord || !buf) {
        fclose(f);
        free(buf);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t k = 0; k < g_sim.nsyms; k++) {
        for (int64_t s = 0; s < g_sim.gen_next; s += TRUTH_SECS) {
            truth_ctx_t t = { buf, 0, 0 };
            sim_kline_range((size_t)ord[k], s, s + TRUTH_SECS - 1, truth_line, &t);
            if (t.len && fwrite(buf, 1, t.len, f) != t.len)
                break;
        }
    }
    free(buf);
    if (ferror(f) | fclose(f) || rename(tmp, path) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- control ---- */

static int control_request(struct lws *wsi, http_sess_t *h, const char *name)
{
    char q[2048] = "", frag[512], out[8192];
    size_t ql = 0;
    for (int n = 0; lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, n) >= 0; n++) {
        int w = snprintf(q + ql, sizeof q - ql, "%s%s", ql ? "&" : "", frag);
        if (w < 0 || (size_t)w >= sizeof q - ql)
            break;
        ql += (size_t)w;
    }
    int status = sim_control(name, q, out, sizeof out);
    return respond_json(wsi, h, (unsigned)status, out, false, 0);
}

/* ---- dispatch ---- */

static int http_request(struct lws *wsi, http_sess_t *h, const char *path)
{
    if (strcmp(path, "/api/v3/klines") == 0)
        return api_klines(wsi, h);
    if (strcmp(path, "/api/v3/exchangeInfo") == 0)
        return api_exchange_info(wsi, h);
    if (strcmp(path, "/api/v3/ping") == 0) {
        weight_add(sim_now_ms(), 1);
        g_sim.st.rest_requests++;
        return respond_json(wsi, h, 200, "{}", true, 0);
    }
    if (strcmp(path, "/api/v3/time") == 0) {
        char j[64];
        weight_add(sim_now_ms(), 1);
        g_sim.st.rest_requests++;
        snprintf(j, sizeof j, "{\"serverTime\":%lld}", (long long)sim_now_ms());
        return respond_json(wsi, h, 200, j, true, 0);
    }
    if (strcmp(path, "/truth") == 0)
        return truth_request(wsi, h);
    if (strncmp(path, "/control/", 9) == 0)
        return control_request(wsi, h, path + 9);
    return respond_json(wsi, h, 404, "{\"code\":-1000,\"msg\":\"Not found.\"}", false, 0);
}

static int http_writeable(struct lws *wsi, http_sess_t *h)
{
    unsigned char *p;
    size_t n;
    if (h->remaining == 0)
        return 0; /* a spurious wake-up (e.g. kicks meant for stream connections) */
    if (h->truth) {
        if (h->coff == h->clen) {
            h->clen = truth_fill(h);
            h->coff = 0;
        }
        p = h->chunk + LWS_PRE + h->coff;
        n = h->clen - h->coff;
        if (n > h->remaining)
            n = h->remaining; /* cannot happen unless the truth grew since the length pass */
    } else {
        p = h->body + LWS_PRE + h->off;
        n = h->len - h->off;
    }
    if (n > HTTP_CHUNK)
        n = HTTP_CHUNK;
    if (n == 0) { /* truth shrank: should not happen; end the response */
        return -1;
    }
    bool last = n == h->remaining;
    if (lws_write(wsi, p, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1;
    h->remaining -= n;
    if (h->truth)
        h->coff += n;
    else
        h->off += n;
    if (last) {
        sess_free_response(h);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

int sim_http_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    http_sess_t *h = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        char path[256];
        snprintf(path, sizeof path, "%.*s", (int)(len < 255 ? len : 255), (const char *)in);
        if (!in || !len)
            snprintf(path, sizeof path, "/");
        sess_reset(h);
        /* a truth body covers the seconds generated when it was requested; generated
         * seconds never change, so its length pass and its chunks agree */
        return http_request(wsi, h, path) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (h->kind != 1)
            return 0;
        return http_writeable(wsi, h);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL: /* end of a transaction: lws says free its allocations here */
        if (h && h->kind == 1) {
            sess_free_response(h);
            memset(h, 0, sizeof *h);
        }
        return 0;
    default:
        return 0;
    }
}
