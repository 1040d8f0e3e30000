/*
 * ws.c — the Binance market-data WebSocket: /ws/<stream>, /stream?streams=a/b,
 * SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY,
 * server pings, pong timeout, connection age limit, request rate limit, and
 * the stream-side fault knobs.
 *
 * Each connection keeps a cursor (second, position in its subscription list)
 * into the generator's ring of recent seconds instead of a queue of messages:
 * memory per client is constant, and a client further behind than the ring is
 * cut (Binance drops slow consumers too). Without permessage-deflate, frames
 * are built here and handed to lws in 64 KiB batches as raw bytes (one send()
 * per batch instead of one per kline); server frames are unmasked, so framing
 * is a 2-10 byte header.
 */
#include "sim.h"

#include <libwebsockets.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define WS_FLUSH_AT   (64 * 1024)
#define WS_BUDGET     (512 * 1024)      /* bytes per writeable callback, so others get a turn */
#define WS_RX_MAX     (64 * 1024)
#define WS_STREAM_MAX 64

typedef struct ws_sub {
    char name[WS_STREAM_MAX];   /* as subscribed, e.g. btcusdt@kline_1s */
    int  sym;                   /* index into g_sim.syms, -1 for unknown symbols */
} ws_sub_t;

typedef struct ws_reply {
    struct ws_reply *next;
    size_t len;
    char data[];
} ws_reply_t;

typedef struct sim_conn {
    int kind;                   /* 2 = ws (the HTTP session struct starts with kind 1) */
    struct lws *wsi;
    struct sim_conn *next, *prev;
    bool combined;
    ws_sub_t *subs;             /* owned; freed on close */
    int nsubs, capsubs;
    int64_t cur_s;              /* next second to send */
    int pos;                    /* next subscription index within cur_s */
    int64_t prov_s;             /* last second whose provisional update was sent */
    uint64_t stall_epoch, close_epoch, shutdown_epoch;
    int64_t connected_ms, last_ping_ms, last_pong_ms, close_at_ms, close_req_ms;
    bool ping_due, close_now, abrupt;
    uint16_t close_code;
    int64_t msgs;               /* klines sent on this connection */
    int64_t rate_sec; int rate_n;
    /* reorder: one kline held back until the next second of its symbol was sent */
    bool held; int held_sym; int64_t held_s; sim_k_t held_k;
    ws_reply_t *rq_head, *rq_tail;   /* owned replies waiting to be sent */
    unsigned char *obuf;        /* owned; LWS_PRE + ocap */
    size_t olen, ocap;
    char *rx; size_t rxlen;     /* owned; partial incoming message */
} sim_conn_t;

static sim_conn_t *conns;
static size_t nconns;

/* Hand-off from HTTP_CONFIRM_UPGRADE to ESTABLISHED of the same wsi: the URL is
 * parsed and validated once, while the headers are certainly available. */
static struct {
    struct lws *wsi;
    bool combined;
    ws_sub_t *subs;             /* owned until taken by ESTABLISHED */
    int nsubs;
} pending;

size_t sim_ws_count(void) { return nconns; }

/* ---- stream names ---- */

/* "btcusdt@kline_1s" → sym index (-1 unknown symbol). Returns 0, or -1 if the name
 * is not a lower-case kline_1s stream (the only kind this simulator serves). */
static int stream_parse(const char *name, size_t len, ws_sub_t *out)
{
    static const char suf[] = "@kline_1s";
    size_t sl = sizeof suf - 1;
    if (len <= sl || len >= WS_STREAM_MAX || memcmp(name + len - sl, suf, sl) != 0)
        return -1;
    char sym[SIM_SYM_MAX];
    size_t n = len - sl;
    if (n >= SIM_SYM_MAX)
        return -1;
    for (size_t k = 0; k < n; k++) {
        char ch = name[k];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            return -1;
        sym[k] = ch;
    }
    sym[n] = 0;
    memcpy(out->name, name, len);
    out->name[len] = 0;
    int i = sim_symbol_find(sym);
    out->sym = (i >= 0 && g_sim.syms[i].trading) ? i : -1;
    return 0;
}

static int subs_find(const sim_conn_t *c, const char *name)
{
    for (int k = 0; k < c->nsubs; k++)
        if (strcmp(c->subs[k].name, name) == 0)
            return k;
    return -1;
}

static int subs_add(ws_sub_t **subs, int *n, int *cap, const ws_sub_t *s)
{
    for (int k = 0; k < *n; k++)
        if (strcmp((*subs)[k].name, s->name) == 0)
            return 0;
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        ws_sub_t *p = realloc(*subs, (size_t)nc * sizeof *p);
        if (!p)
            return -1;
        *subs = p;
        *cap = nc;
    }
    (*subs)[(*n)++] = *s;
    return 0;
}

/* Splits "a/b/c" into subscriptions. 0, or -1 with reason. */
static int streams_parse_list(const char *list, ws_sub_t **subs, int *n, int *cap,
                              char *err, size_t errlen)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            ws_sub_t s;
            if (stream_parse(p, len, &s) < 0) {
                snprintf(err, errlen, "unsupported stream name '%.*s' (kline-sim serves <symbol>@kline_1s only)",
                         (int)(len > 60 ? 60 : len), p);
                return -1;
            }
            if (subs_add(subs, n, cap, &s) < 0) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            if (*n > g_sim.cfg.max_streams) {
                snprintf(err, errlen, "too many streams (max %d)", g_sim.cfg.max_streams);
                return -1;
            }
        }
        p += len;
        if (*p == '/')
            p++;
    }
    return 0;
}

/* Called from LWS_CALLBACK_HTTP_CONFIRM_UPGRADE. Returns 0 to allow the upgrade,
 * otherwise an HTTP status has been sent and the caller returns non-zero. */
int sim_ws_confirm(struct lws *wsi)
{
    char path[256], err[160];
    int n = 0, cap = 0;
    ws_sub_t *subs = NULL;
    bool combined;
    if (sim_now_ms() < g_sim.ft.refuse_until_ms) {
        g_sim.st.conns_refused++;
        lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "refused by fault knob");
        return 1;
    }
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0)
        path[0] = 0;
    if (strcmp(path, "/ws") == 0 || strcmp(path, "/ws/") == 0) {
        combined = false;
    } else if (strncmp(path, "/ws/", 4) == 0) {
        combined = false;
        if (streams_parse_list(path + 4, &subs, &n, &cap, err, sizeof err) < 0)
            goto bad;
    } else if (strcmp(path, "/stream") == 0 || strcmp(path, "/stream/") == 0) {
        combined = true;
        int alen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) + 16;
        char *args = malloc((size_t)alen);
        if (!args) {
            snprintf(err, sizeof err, "out of memory");
            goto bad;
        }
        const char *v = lws_get_urlarg_by_name(wsi, "streams=", args, alen);
        int rc = v ? streams_parse_list(v, &subs, &n, &cap, err, sizeof err) : 0;
        free(args);
        if (rc < 0)
            goto bad;
    } else {
        free(subs);
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
        return 1;
    }
    free(pending.subs); /* a previous upgrade that never reached ESTABLISHED */
    pending.wsi = wsi;
    pending.combined = combined;
    pending.subs = subs;
    pending.nsubs = n;
    return 0;
bad:
    free(subs);
    sim_log("warn", "rejecting WebSocket upgrade %s: %s", path, err);
    lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, err);
    return 1;
}

/* ---- output ---- */

static int obuf_reserve(sim_conn_t *c, size_t more)
{
    if (c->olen + more <= c->ocap)
        return 0;
    size_t nc = c->ocap ? c->ocap : WS_FLUSH_AT + 2 * SIM_MSG_MAX;
    while (nc < c->olen + more)
        nc *= 2;
    unsigned char *p = realloc(c->obuf, LWS_PRE + nc);
    if (!p)
        return -1;
    c->obuf = p;
    c->ocap = nc;
    return 0;
}

/* Appends one unmasked frame (FIN set). opcode 1 = text, 9 = ping. */
static int frame_append(sim_conn_t *c, int opcode, const char *data, size_t len)
{
    if (obuf_reserve(c, len + 10) < 0)
        return -1;
    unsigned char *p = c->obuf + LWS_PRE + c->olen;
    *p++ = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        *p++ = (unsigned char)len;
    } else if (len < 65536) {
        *p++ = 126;
        *p++ = (unsigned char)(len >> 8);
        *p++ = (unsigned char)len;
    } else {
        *p++ = 127;
        for (int k = 7; k >= 0; k--)
            *p++ = (unsigned char)((uint64_t)len >> (8 * k));
    }
    memcpy(p, data, len);
    p += len;
    c->olen = (size_t)(p - (c->obuf + LWS_PRE));
    g_sim.st.bytes_sent += len;
    return 0;
}

static int flush(sim_conn_t *c)
{
    if (!c->olen)
        return 0;
    int n = lws_write(c->wsi, c->obuf + LWS_PRE, c->olen, LWS_WRITE_RAW);
    c->olen = 0;
    return n < 0 ? -1 : 0;
}

/* One message out. With --deflate lws must frame (and compress) it, one per call. */
static int emit(sim_conn_t *c, const char *data, size_t len)
{
    if (!g_sim.cfg.deflate)
        return frame_append(c, 1, data, len);
    if (obuf_reserve(c, len) < 0)
        return -1;
    memcpy(c->obuf + LWS_PRE, data, len);
    g_sim.st.bytes_sent += len;
    return lws_write(c->wsi, c->obuf + LWS_PRE, len, LWS_WRITE_TEXT) < 0 ? -1 : 0;
}

static void reply_queue(sim_conn_t *c, const char *s, size_t len)
{
    ws_reply_t *r = malloc(sizeof *r + len);
    if (!r)
        return;
    r->next = NULL;
    r->len = len;
    memcpy(r->data, s, len);
    if (c->rq_tail)
        c->rq_tail->next = r;
    else
        c->rq_head = r;
    c->rq_tail = r;
    lws_callback_on_writable(c->wsi);
}

/* The rotating set of malformed messages sent by the malformed?n= knob. */
static int malformed_make(char *out, size_t cap, const sim_conn_t *c, size_t i, int64_t s,
                          const sim_k_t *k, const char *real, int reallen, int64_t E)
{
    static unsigned rot;
    const sim_symbol_t *y = &g_sim.syms[i];
    char inner[SIM_MSG_MAX];
    int n;
    switch (rot++ % 6) {
    case 0: /* truncated JSON */
        n = reallen / 2;
        memcpy(out, real, (size_t)n);
        return n;
    case 1: /* wrong types: times and trade count as strings, prices as numbers */
        n = snprintf(inner, sizeof inner,
                     "{\"e\":\"kline\",\"E\":%lld,\"s\":\"%s\",\"k\":{\"t\":\"%lld\",\"T\":\"%lld\",\"s\":\"%s\","
                     "\"i\":\"1s\",\"f\":%lld,\"L\":%lld,\"o\":%lld,\"c\":%lld,\"h\":%lld,\"l\":%lld,"
                     "\"v\":\"0.1\",\"n\":\"%lld\",\"x\":\"yes\",\"q\":\"0.1\",\"V\":\"0\",\"Q\":\"0\",\"B\":\"0\"}}",
                     (long long)E, y->name, (long long)sim_open_time(s), (long long)sim_open_time(s) + 999,
                     y->name, (long long)k->f, (long long)k->L, (long long)(k->o / SIM_SCALE),
                     (long long)(k->c / SIM_SCALE), (long long)(k->h / SIM_SCALE),
                     (long long)(k->l / SIM_SCALE), (long long)k->n);
        break;
    case 2: /* unknown event type */
        n = snprintf(inner, sizeof inner, "{\"e\":\"klineV2\",\"E\":%lld,\"s\":\"%s\",\"k\":{\"t\":%lld}}",
                     (long long)E, y->name, (long long)sim_open_time(s));
        break;
    case 3: /* non-decimal prices */
        n = snprintf(inner, sizeof inner,
                     "{\"e\":\"kline\",\"E\":%lld,\"s\":\"%s\",\"k\":{\"t\":%lld,\"T\":%lld,\"s\":\"%s\","
                     "\"i\":\"1s\",\"f\":-1,\"L\":-1,\"o\":\"NaN\",\"c\":\"1.5e3\",\"h\":\"1,234.5\",\"l\":\"-0.1\","
                     "\"v\":\"abc\",\"n\":0,\"x\":true,\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\",\"B\":\"0\"}}",
                     (long long)E, y->name, (long long)sim_open_time(s), (long long)sim_open_time(s) + 999,
                     y->name);
        break;
    case 4: /* not JSON at all */
        return snprintf(out, cap, "kline-sim: this is not JSON");
    default: /* JSON of the wrong shape */
        n = snprintf(inner, sizeof inner, "[1,2,3]");
        break;
    }
    if (n < 0 || (size_t)n >= sizeof inner)
        return -1;
    if (c->combined)
        return snprintf(out, cap, "{\"stream\":\"%s@kline_1s\",\"data\":%s}", y->lname, inner);
    return snprintf(out, cap, "%s", inner);
}

static int oversized_emit(sim_conn_t *c, size_t i, int64_t E)
{
    size_t pad = 1100 * 1024;
    const sim_symbol_t *y = &g_sim.syms[i];
    char *m = malloc(pad + 256);
    if (!m)
        return -1;
    int h = c->combined
        ? sprintf(m, "{\"stream\":\"%s@kline_1s\",\"data\":{\"e\":\"kline\",\"E\":%lld,\"s\":\"%s\",\"pad\":\"",
                  y->lname, (long long)E, y->name)
        : sprintf(m, "{\"e\":\"kline\",\"E\":%lld,\"s\":\"%s\",\"pad\":\"", (long long)E, y->name);
    memset(m + h, 'A', pad);
    size_t n = (size_t)h + pad;
    n += (size_t)sprintf(m + n, c->combined ? "\"}}" : "\"}");
    int rc = emit(c, m, n);
    free(m);
    g_sim.st.oversized_sent++;
    return rc;
}

static void conn_close(sim_conn_t *c, uint16_t code, bool abrupt)
{
    if (!c->close_now)
        c->close_req_ms = sim_now_ms();
    c->close_now = true;
    c->close_code = code;
    c->abrupt = abrupt;
    lws_callback_on_writable(c->wsi);
}

/* Sends one closed kline with whatever faults are pending. */
static int send_kline(sim_conn_t *c, size_t i, int64_t s, const sim_k_t *k, int64_t E)
{
    char msg[SIM_MSG_MAX];
    int n = sim_fmt_event(msg, i, s, k, true, E, c->combined);
    if (emit(c, msg, (size_t)n) < 0)
        return -1;
    g_sim.st.klines_sent++;
    c->msgs++;
    if (g_sim.ft.duplicate > 0) {
        g_sim.ft.duplicate--;
        g_sim.st.duplicates_sent++;
        if (emit(c, msg, (size_t)n) < 0)
            return -1;
    }
    if (g_sim.ft.malformed > 0) {
        char bad[2 * SIM_MSG_MAX];
        int bn = malformed_make(bad, sizeof bad, c, i, s, k, msg, n, E);
        g_sim.ft.malformed--;
        if (bn > 0 && (size_t)bn < sizeof bad) {
            g_sim.st.malformed_sent++;
            if (emit(c, bad, (size_t)bn) < 0)
                return -1;
        }
    }
    if (g_sim.ft.oversized > 0) {
        g_sim.ft.oversized--;
        if (oversized_emit(c, i, E) < 0)
            return -1;
    }
    if (g_sim.cfg.close_after_msgs > 0 && c->msgs >= g_sim.cfg.close_after_msgs)
        conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, false);
    return 0;
}

/* First subscription with a known symbol: the one the reorder knob acts on. */
static int first_sym(const sim_conn_t *c)
{
    for (int k = 0; k < c->nsubs; k++)
        if (c->subs[k].sym >= 0)
            return c->subs[k].sym;
    return -1;
}

static int send_with_reorder(sim_conn_t *c, size_t i, int64_t s, const sim_k_t *k, int64_t E)
{
    if (c->held && (int)i == c->held_sym && s > c->held_s) {
        c->held = false;
        g_sim.st.reordered++;
        if (send_kline(c, i, s, k, E) < 0)
            return -1;
        return send_kline(c, i, c->held_s, &c->held_k, E);
    }
    if (!c->held && g_sim.ft.reorder > 0 && (int)i == first_sym(c)) {
        g_sim.ft.reorder--;
        c->held = true;
        c->held_sym = (int)i;
        c->held_s = s;
        c->held_k = *k;
        return 0;
    }
    return send_kline(c, i, s, k, E);
}

static bool conn_has_klines(const sim_conn_t *c) { return first_sym(c) >= 0; }

bool sim_ws_all_have_room(void)
{
    bool any = false;
    for (sim_conn_t *c = conns; c; c = c->next) {
        if (!conn_has_klines(c) || c->close_now)
            continue;
        any = true;
        if (g_sim.gen_next - c->cur_s >= g_sim.ring_n - 1)
            return false;
    }
    return any;
}

void sim_ws_kick(void)
{
    for (sim_conn_t *c = conns; c; c = c->next)
        lws_callback_on_writable(c->wsi);
}

static int64_t mid_second_ms(int64_t s)
{
    return g_sim.real0_ms + (int64_t)(((double)s + 0.5) * 1000.0 / g_sim.cfg.speed);
}

/* Returns 1 if there is more to send right away, 0 if caught up, -1 on error. */
static int produce(sim_conn_t *c, int64_t now)
{
    size_t budget_end = g_sim.st.bytes_sent + WS_BUDGET;
    if (now < g_sim.ft.stall_until_ms)
        return 0;
    if (c->stall_epoch != g_sim.ft.stall_epoch) {
        /* the seconds that completed during the stall are lost for this connection */
        c->stall_epoch = g_sim.ft.stall_epoch;
        int64_t resume = g_sim.cfg.speed > 0 ? sim_due_seconds(g_sim.ft.stall_until_ms) : g_sim.gen_next;
        if (resume > g_sim.gen_next)
            resume = g_sim.gen_next;
        if (resume > c->cur_s) {
            c->cur_s = resume;
            c->pos = 0;
        }
    }
    for (;;) {
        if (c->cur_s >= g_sim.gen_next) {
            if (g_sim.cfg.speed > 0 || !sim_ws_all_have_room())
                break;
            char err[128];
            if (sim_gen_advance(err, sizeof err) <= 0)
                break;
            /* other connections may have been waiting for this second */
            for (sim_conn_t *o = conns; o; o = o->next)
                if (o != c)
                    lws_callback_on_writable(o->wsi);
        }
        if (c->cur_s < g_sim.gen_next - g_sim.ring_n + 1) {
            sim_log("warn", "client too slow (%lld s behind), closing", (long long)(g_sim.gen_next - c->cur_s));
            g_sim.st.overflow_closes++;
            conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, false);
            return 0;
        }
        const sim_k_t *row = &g_sim.ring[(size_t)(c->cur_s % g_sim.ring_n) * g_sim.nsyms];
        while (c->pos < c->nsubs) {
            int i = c->subs[c->pos++].sym;
            if (i < 0 || row[i].n < 0)
                continue;
            if (send_with_reorder(c, (size_t)i, c->cur_s, &row[i], now) < 0)
                return -1;
            if (c->close_now)
                return 0;
            if (g_sim.cfg.deflate)
                return 1;
            if (c->olen >= WS_FLUSH_AT) {
                if (flush(c) < 0)
                    return -1;
                if (lws_send_pipe_choked(c->wsi) || g_sim.st.bytes_sent >= budget_end)
                    return 1;
            }
        }
        c->pos = 0;
        c->cur_s++;
    }
    /* provisional (x=false) updates for the second in progress, once past its middle */
    if (g_sim.cfg.provisional && g_sim.cfg.speed > 0 && c->cur_s == g_sim.gen_next &&
        c->prov_s < g_sim.gen_next && now >= mid_second_ms(g_sim.gen_next) &&
        (g_sim.gen_limit < 0 || g_sim.gen_next < g_sim.gen_limit)) {
        c->prov_s = g_sim.gen_next;
        for (int k = 0; k < c->nsubs; k++) {
            int i = c->subs[k].sym;
            if (i < 0)
                continue;
            sim_state_t st = g_sim.syms[i].cur;
            sim_k_t full, prov;
            if (!sim_gen_step((size_t)i, g_sim.gen_next, &st, &full))
                continue;
            sim_provisional(&full, &prov);
            char msg[SIM_MSG_MAX];
            int n = sim_fmt_event(msg, (size_t)i, g_sim.gen_next, &prov, false, now, c->combined);
            if (emit(c, msg, (size_t)n) < 0)
                return -1;
            g_sim.st.provisional_sent++;
        }
    }
    return 0;
}

static int send_control(sim_conn_t *c, int64_t now)
{
    while (c->rq_head) {
        ws_reply_t *r = c->rq_head;
        int rc = emit(c, r->data, r->len);
        c->rq_head = r->next;
        if (!c->rq_head)
            c->rq_tail = NULL;
        free(r);
        g_sim.st.control_sent++;
        if (rc < 0)
            return -1;
        if (g_sim.cfg.deflate)
            return 1;
    }
    if (c->ping_due) {
        char payload[32];
        int n = snprintf(payload, sizeof payload, "%lld", (long long)now);
        c->ping_due = false;
        c->last_ping_ms = now;
        g_sim.st.pings_sent++;
        if (g_sim.cfg.deflate) {
            memcpy(c->obuf + LWS_PRE, payload, (size_t)n);
            if (lws_write(c->wsi, c->obuf + LWS_PRE, (size_t)n, LWS_WRITE_PING) < 0)
                return -1;
            return 1;
        }
        if (frame_append(c, 9, payload, (size_t)n) < 0)
            return -1;
    }
    return 0;
}

static int writeable(sim_conn_t *c)
{
    int64_t now = sim_now_ms();
    if (c->close_epoch != g_sim.ft.close_epoch) {
        c->close_epoch = g_sim.ft.close_epoch;
        c->close_now = true;
        c->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
        c->abrupt = g_sim.ft.close_abrupt;
    }
    if (c->close_now) {
        if (flush(c) < 0)
            return -1;
        g_sim.st.conns_closed_by_sim++;
        if (c->abrupt) {
            shutdown(lws_get_socket_fd(c->wsi), SHUT_RDWR);
        } else {
            lws_close_reason(c->wsi, (enum lws_close_status)c->close_code, NULL, 0);
        }
        return -1;
    }
    if (c->shutdown_epoch != g_sim.ft.shutdown_epoch) {
        char m[160];
        int n;
        c->shutdown_epoch = g_sim.ft.shutdown_epoch;
        if (c->combined)
            n = snprintf(m, sizeof m, "{\"stream\":\"!serverShutdown\",\"data\":{\"e\":\"serverShutdown\",\"E\":%lld}}",
                         (long long)now);
        else
            n = snprintf(m, sizeof m, "{\"e\":\"serverShutdown\",\"E\":%lld}", (long long)now);
        reply_queue(c, m, (size_t)n);
        g_sim.st.shutdowns_sent++;
        c->close_at_ms = now + g_sim.cfg.shutdown_grace_ms;
    }
    if (!c->obuf && obuf_reserve(c, SIM_MSG_MAX) < 0)
        return -1;
    int more = send_control(c, now);
    if (more == 0)
        more = produce(c, now);
    if (more < 0 || flush(c) < 0)
        return -1;
    if (more > 0 || c->rq_head || c->close_now)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* ---- incoming requests ---- */

static void reply_error(sim_conn_t *c, int code, const char *msg, json_t *id)
{
    json_t *o = json_pack("{s:{s:i,s:s},s:O}", "error", "code", code, "msg", msg,
                          "id", id ? id : json_null());
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        reply_queue(c, s, strlen(s));
    free(s);
    json_decref(o);
    g_sim.st.ws_errors++;
}

static void reply_result(sim_conn_t *c, json_t *result /* stolen */, json_t *id)
{
    json_t *o = json_pack("{s:o,s:O}", "result", result ? result : json_null(), "id", id);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        reply_queue(c, s, strlen(s));
    free(s);
    json_decref(o);
}

static void handle_request(sim_conn_t *c, const char *buf, size_t len)
{
    json_error_t je;
    char msg[256];
    g_sim.st.ws_requests++;
    json_t *req = json_loadb(buf, len, 0, &je);
    if (!req) {
        snprintf(msg, sizeof msg, "Invalid JSON: %s at line %d column %d", je.text, je.line, je.column);
        reply_error(c, 3, msg, NULL);
        return;
    }
    json_t *id = json_is_object(req) ? json_object_get(req, "id") : NULL;
    if (!json_is_object(req)) {
        reply_error(c, 2, "Invalid request: expected an object", NULL);
        goto out;
    }
    /* Binance accepts an unsigned integer, a string of up to 36 characters, or null */
    if (id && !(json_is_null(id) || (json_is_integer(id) && json_integer_value(id) >= 0) ||
                (json_is_string(id) && json_string_length(id) <= 36))) {
        reply_error(c, 2, "Invalid request: request ID must be an unsigned integer", NULL);
        goto out;
    }
    json_t *method = json_object_get(req, "method");
    json_t *params = json_object_get(req, "params");
    if (!method) {
        reply_error(c, 2, "Invalid request: missing field `method`", id);
        goto out;
    }
    const char *m = json_string_value(method);
    if (!m) {
        reply_error(c, 2, "Invalid request: method must be a string", id);
        goto out;
    }
    if (strcmp(m, "SUBSCRIBE") == 0 || strcmp(m, "UNSUBSCRIBE") == 0) {
        bool sub = m[0] == 'S';
        if (!json_is_array(params)) {
            reply_error(c, 2, "Invalid request: params must be an array of stream names", id);
            goto out;
        }
        size_t k;
        json_t *v;
        json_array_foreach(params, k, v) {
            ws_sub_t s;
            const char *nm = json_string_value(v);
            if (!nm || stream_parse(nm, strlen(nm), &s) < 0) {
                snprintf(msg, sizeof msg, "Invalid request: invalid stream name '%.60s' (kline-sim serves <symbol>@kline_1s only)",
                         nm ? nm : "(not a string)");
                reply_error(c, 2, msg, id);
                goto out;
            }
        }
        json_array_foreach(params, k, v) {
            ws_sub_t s;
            const char *nm = json_string_value(v);
            stream_parse(nm, strlen(nm), &s);
            if (sub) {
                if (subs_find(c, s.name) < 0 && c->nsubs >= g_sim.cfg.max_streams) {
                    snprintf(msg, sizeof msg, "Invalid request: too many streams (max %d per connection)",
                             g_sim.cfg.max_streams);
                    reply_error(c, 2, msg, id);
                    goto out;
                }
                if (subs_add(&c->subs, &c->nsubs, &c->capsubs, &s) < 0) {
                    reply_error(c, 2, "Invalid request: out of memory", id);
                    goto out;
                }
            } else {
                int at = subs_find(c, s.name);
                if (at < 0)
                    continue;
                memmove(&c->subs[at], &c->subs[at + 1], (size_t)(c->nsubs - at - 1) * sizeof c->subs[0]);
                c->nsubs--;
                if (at < c->pos)
                    c->pos--;
            }
        }
        reply_result(c, NULL, id ? id : json_null());
    } else if (strcmp(m, "LIST_SUBSCRIPTIONS") == 0) {
        json_t *arr = json_array();
        for (int k = 0; k < c->nsubs; k++)
            json_array_append_new(arr, json_string(c->subs[k].name));
        reply_result(c, arr, id ? id : json_null());
    } else if (strcmp(m, "SET_PROPERTY") == 0 || strcmp(m, "GET_PROPERTY") == 0) {
        bool set = m[0] == 'S';
        json_t *p0 = json_array_get(params, 0);
        if (!json_is_string(p0)) {
            reply_error(c, 2, "Invalid request: property name must be a string", id);
        } else if (strcmp(json_string_value(p0), "combined") != 0) {
            reply_error(c, 0, "Unknown property", id);
        } else if (!set) {
            reply_result(c, json_boolean(c->combined), id ? id : json_null());
        } else if (!json_is_boolean(json_array_get(params, 1))) {
            reply_error(c, 1, "Invalid value type: expected Boolean", id);
        } else {
            c->combined = json_is_true(json_array_get(params, 1));
            reply_result(c, NULL, id ? id : json_null());
        }
    } else {
        snprintf(msg, sizeof msg, "Invalid request: unknown variant `%.40s`, expected one of `SUBSCRIBE`, "
                 "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`", m);
        reply_error(c, 2, msg, id);
    }
out:
    json_decref(req);
}

/* Binance counts every incoming frame (requests, pings, pongs) against the limit. */
static bool rate_exceeded(sim_conn_t *c, int64_t now)
{
    int64_t sec = now / 1000;
    if (sec != c->rate_sec) {
        c->rate_sec = sec;
        c->rate_n = 0;
    }
    if (++c->rate_n > g_sim.cfg.msg_rate_limit) {
        g_sim.st.rate_limit_closes++;
        sim_log("warn", "client sent more than %d messages/s, closing", g_sim.cfg.msg_rate_limit);
        conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, false);
        return true;
    }
    return false;
}

static void conn_free(sim_conn_t *c)
{
    while (c->rq_head) {
        ws_reply_t *r = c->rq_head;
        c->rq_head = r->next;
        free(r);
    }
    c->rq_tail = NULL;
    free(c->subs);
    free(c->obuf);
    free(c->rx);
    c->subs = NULL;
    c->obuf = NULL;
    c->rx = NULL;
}

void sim_ws_housekeeping(int64_t now)
{
    const sim_cfg_t *cf = &g_sim.cfg;
    for (sim_conn_t *c = conns; c; c = c->next) {
        if (c->close_now) {
            /* a peer that reads nothing never makes us writeable, so the close
             * frame cannot go out: drop the socket instead */
            if (now - c->close_req_ms > 2000)
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
            continue;
        }
        if (cf->speed > 0 && c->cur_s < g_sim.gen_next - g_sim.ring_n + 1 && conn_has_klines(c)) {
            sim_log("warn", "client too slow (%lld s behind), closing", (long long)(g_sim.gen_next - c->cur_s));
            g_sim.st.overflow_closes++;
            conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, false);
            continue;
        }
        if (cf->ping_interval > 0 && now - c->last_ping_ms >= (int64_t)cf->ping_interval * 1000) {
            c->ping_due = true;
            c->last_ping_ms = now;
            lws_callback_on_writable(c->wsi);
        }
        if (cf->pong_timeout > 0 && now - c->last_pong_ms > (int64_t)cf->pong_timeout * 1000) {
            g_sim.st.pong_timeouts++;
            sim_log("info", "no pong for %d s, closing", cf->pong_timeout);
            conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, false);
        } else if (now - c->connected_ms >= cf->max_conn_age * 1000 ||
                   (cf->close_after_secs > 0 && now - c->connected_ms >= cf->close_after_secs * 1000)) {
            conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, false);
        } else if (c->close_at_ms && now >= c->close_at_ms) {
            conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, false);
        }
    }
}

int sim_ws_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    sim_conn_t *c = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return sim_ws_confirm(wsi);
    case LWS_CALLBACK_ESTABLISHED: {
        int64_t now = sim_now_ms();
        memset(c, 0, sizeof *c);
        c->kind = 2;
        c->wsi = wsi;
        if (pending.wsi == wsi) { /* ownership of pending.subs moves to the connection */
            c->combined = pending.combined;
            c->subs = pending.subs;
            c->nsubs = c->capsubs = pending.nsubs;
            pending.subs = NULL;
            pending.wsi = NULL;
        }
        c->cur_s = g_sim.gen_next;
        c->prov_s = g_sim.gen_next - 1;
        c->connected_ms = c->last_ping_ms = c->last_pong_ms = now;
        c->stall_epoch = g_sim.ft.stall_epoch;
        c->close_epoch = g_sim.ft.close_epoch;
        c->shutdown_epoch = g_sim.ft.shutdown_epoch;
        c->next = conns;
        if (conns)
            conns->prev = c;
        conns = c;
        nconns++;
        g_sim.st.conns_total++;
        g_sim.st.conns_open++;
        sim_log("info", "ws connection %s, %d streams (%llu open)", c->combined ? "combined" : "raw",
                c->nsubs, (unsigned long long)nconns);
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLOSED:
        if (c->kind != 2)
            return 0;
        if (c->prev)
            c->prev->next = c->next;
        else
            conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        nconns--;
        g_sim.st.conns_open--;
        conn_free(c);
        c->kind = 0;
        sim_log("info", "ws connection closed (%llu open)", (unsigned long long)nconns);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return writeable(c);
    case LWS_CALLBACK_RECEIVE_PONG:
        c->last_pong_ms = sim_now_ms();
        g_sim.st.pongs_received++;
        rate_exceeded(c, c->last_pong_ms);
        return 0;
    case LWS_CALLBACK_RECEIVE: {
        if (c->rxlen + len > WS_RX_MAX) {
            conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, false);
            return 0;
        }
        char *p = realloc(c->rx, c->rxlen + len + 1);
        if (!p)
            return -1;
        c->rx = p;
        memcpy(c->rx + c->rxlen, in, len);
        c->rxlen += len;
        if (!lws_is_final_fragment(wsi))
            return 0;
        size_t n = c->rxlen;
        c->rxlen = 0;
        if (!rate_exceeded(c, sim_now_ms()))
            handle_request(c, c->rx, n);
        return 0;
    }
    default:
        return 0;
    }
}

size_t sim_ws_session_size(void) { return sizeof(sim_conn_t); }
