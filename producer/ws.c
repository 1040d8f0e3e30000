/*
 * ws.c — the WebSocket side: one lws client context, the symbols split into groups
 * of --streams-per-conn, each group served by one connection (two while one replaces
 * the other).
 *
 * A group connects to /stream?streams=<first streams>, and subscribes the streams
 * that did not fit in the URL with SUBSCRIBE requests (paced under Binance's
 * 5 messages/s per connection, pongs included).
 *
 * Replacement is make-before-break: on serverShutdown or at --max-conn-age the
 * group opens a successor; the old connection is closed only once the successor has
 * all its subscriptions confirmed and has delivered a kline. While both run, seq.c
 * drops whatever was already published, so the overlap costs nothing.
 * A connection that errors or closes is simply replaced (with backoff); the seconds
 * it missed are detected as a gap by seq.c and filled from REST.
 *
 * Everything here runs on the lws service thread, except ws_wake().
 */
#include "prod.h"
#include "attempts.h"
#include "cfg.h"
#include "log.h"
#include "sig.h"

#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_TICK_US          (100 * 1000)
#define WS_URL_STREAMS_MAX  1500   /* bytes of stream names put in the URL */
#define WS_SUB_CHUNK_MAX    4000   /* bytes of stream names per SUBSCRIBE */
#define WS_SUB_GAP_MS       300    /* SUBSCRIBE pacing: < 5 messages/s with pongs */
#define WS_BACKOFF_MIN_MS   250
#define WS_BACKOFF_MAX_MS   30000
#define WS_CONNECT_TIMEOUT  20000  /* ms from connect to first kline of a new connection */
#define WS_CATCH_UP_DELAY   5000   /* ms after start: the streams had time to show each gap */

enum ws_state { WC_IDLE = 0, WC_CONNECTING, WC_OPEN };

struct ws_group;

typedef struct ws_conn {
    struct lws *wsi;
    struct ws_group *g;
    int slot;                 /* 0 or 1 within the group */
    int serial;               /* connection number, for logs */
    enum ws_state state;
    bool retire;              /* close requested; done in WRITEABLE */
    bool got_kline;
    bool shutdown;            /* the server announced it goes away */
    int sub_next;             /* next SUBSCRIBE chunk to send */
    int sub_unacked;          /* SUBSCRIBEs sent and not yet answered */
    int64_t started_ms, opened_ms, last_rx_ms, next_sub_ms;
    char origin[24];          /* "ws:conn3" — key of dead letters */
    char *rx;                 /* message reassembly, max_frame bytes, owned */
    size_t rxlen, rxtotal;
} ws_conn_t;

typedef struct ws_group {
    int idx;
    int first, n;             /* symbols [first, first+n) of prod_syms */
    int url_n;                /* how many of them go in the URL */
    int nchunks;              /* SUBSCRIBE chunks after the URL ones */
    int *chunk_at;            /* chunk i covers [chunk_at[i], chunk_at[i+1]) (relative) */
    ws_conn_t c[2];
    int active;               /* slot serving the group, -1 none */
    int64_t next_attempt_ms;
    int64_t backoff_ms;
    int attempts;
} ws_group_t;

static struct {
    struct lws_context *ctx;
    lws_sorted_usec_list_t tick;
    ws_group_t *g;
    int ng;
    char host[256];
    char base_path[256];      /* URL path prefix without trailing '/' */
    int port;
    bool tls;
    att_window_t attempts;    /* Binance: 300 connection attempts per 5 minutes per IP */
    int serial;
    int64_t bucket_warned;
    bool closing;             /* ws_destroy: every close is ours */
    int64_t next_stale_scan;
    bool caught_up;           /* the start-up catch-up ran */
    int64_t next_backlog;     /* next refresh of the backlog gauges */
    int64_t started_mono, started_wall;
} ws;

/* The context as other threads see it (ws_wake): published only once it exists, and
 * withdrawn before it is destroyed, so a backfill worker never touches a half-made one. */
static _Atomic(struct lws_context *) ws_wake_ctx;

static void ws_stream_name(const prod_sym_t *s, char *out, size_t len)
{
    char low[KLINE_SYMBOL_MAX];
    size_t i = 0;
    for (; s->name[i] && i < sizeof low - 1; i++)
        low[i] = (char)(s->name[i] >= 'A' && s->name[i] <= 'Z' ? s->name[i] + 32 : s->name[i]);
    low[i] = '\0';
    snprintf(out, len, "%s@kline_%s", low, prod_cfg.interval);
}

/* Splits a group's streams into the URL part and SUBSCRIBE chunks. */
static int ws_group_plan(ws_group_t *g)
{
    char name[64];
    size_t used = 0;
    int i = 0;
    for (; i < g->n; i++) {
        ws_stream_name(&prod_syms[g->first + i], name, sizeof name);
        if (i > 0 && used + strlen(name) + 1 > WS_URL_STREAMS_MAX)
            break;
        used += strlen(name) + 1;
    }
    g->url_n = i;
    g->chunk_at = malloc(sizeof *g->chunk_at * (size_t)(g->n + 2)); /* owned by the group */
    if (!g->chunk_at)
        return -1;
    g->nchunks = 0;
    while (i < g->n) {
        g->chunk_at[g->nchunks++] = i;
        used = 0;
        for (; i < g->n; i++) {
            ws_stream_name(&prod_syms[g->first + i], name, sizeof name);
            if (used > 0 && used + strlen(name) + 3 > WS_SUB_CHUNK_MAX)
                break;
            used += strlen(name) + 3;
        }
    }
    g->chunk_at[g->nchunks] = g->n;
    return 0;
}

static int64_t ws_jitter(int64_t ms)
{
    return ms / 2 + rand() % (ms / 2 + 1);
}

static bool ws_take_token(int64_t now)
{
    if (att_take(&ws.attempts, now))
        return true;
    if (now - ws.bucket_warned > 10000) {
        ws.bucket_warned = now;
        log_warn("connection attempts limited: 300 per 5 minutes used up, waiting");
    }
    return false;
}

static void ws_retire(ws_conn_t *c, const char *why)
{
    if (c->state == WC_IDLE || c->retire)
        return;
    log_info("%s: closing (%s)", c->origin, why);
    c->retire = true;
    ws_group_t *g = c->g;
    if (g->active == c->slot) {
        ws_conn_t *o = &g->c[!c->slot];
        g->active = o->state == WC_OPEN && !o->retire ? o->slot : -1;
    }
    if (c->wsi) {
        lws_callback_on_writable(c->wsi);
        /* if the close handshake hangs, lws drops the socket anyway */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
    }
}

/* <base>/stream?streams=a@kline_1s/b@kline_1s... for the group's first url_n streams;
 * malloc'd, the caller frees it. NULL when memory is short. */
static char *ws_stream_path(const ws_group_t *g)
{
    size_t cap = strlen(ws.base_path) + 32 + (size_t)g->url_n * 40;
    char *path = malloc(cap);
    if (!path)
        return NULL;
    size_t o = (size_t)snprintf(path, cap, "%s/stream?streams=", ws.base_path);
    char name[64];
    for (int i = 0; i < g->url_n; i++) {
        ws_stream_name(&prod_syms[g->first + i], name, sizeof name);
        o += (size_t)snprintf(path + o, cap - o, "%s%s", i ? "/" : "", name);
    }
    return path;
}

/* Failed before any callback: treated like a connection error (backoff, next attempt). */
static void ws_connect_failed(ws_conn_t *c, int64_t now)
{
    ws_group_t *g = c->g;
    c->state = WC_IDLE;
    c->wsi = NULL;
    atomic_fetch_add(&prod_stats.connect_errors, 1);
    g->next_attempt_ms = now + ws_jitter(g->backoff_ms);
    g->backoff_ms = g->backoff_ms * 2 > WS_BACKOFF_MAX_MS ? WS_BACKOFF_MAX_MS : g->backoff_ms * 2;
}

static void ws_connect(ws_group_t *g, int slot, int64_t now)
{
    ws_conn_t *c = &g->c[slot];
    memset(c, 0, sizeof *c);
    c->g = g;
    c->slot = slot;
    c->serial = ws.serial++;
    c->state = WC_CONNECTING;
    c->started_ms = now;
    snprintf(c->origin, sizeof c->origin, "ws:conn%d", c->serial);
    if (g->attempts++ > 0)
        atomic_fetch_add(&prod_stats.reconnects, 1);

    char *path = ws_stream_path(g); /* freed below: lws copies it into the request */
    if (!path) {
        c->state = WC_IDLE;
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ws.ctx;
    ci.address = ws.host;
    ci.port = ws.port;
    ci.path = path;
    ci.host = ws.host;
    ci.origin = ws.host;
    ci.ssl_connection = ws.tls ? LCCSCF_USE_SSL : 0;
    ci.protocol = NULL;                 /* Binance wants no Sec-WebSocket-Protocol */
    ci.local_protocol_name = "kline-producer";
    ci.opaque_user_data = c;
    ci.pwsi = &c->wsi;
    log_info("%s: connecting to %s://%s:%d (group %d, %d streams, %d in SUBSCRIBE)", c->origin,
             ws.tls ? "wss" : "ws", ws.host, ws.port, g->idx, g->n, g->n - g->url_n);
    if (!lws_client_connect_via_info(&ci) && c->state == WC_CONNECTING)
        ws_connect_failed(c, now);
    free(path);
}

/* The connection is gone (closed or never opened): free it, choose what serves the
 * group now, and when the next attempt may happen. */
static void ws_gone(ws_conn_t *c, struct lws *wsi, const char *why)
{
    ws_group_t *g = c->g;
    int64_t now = cfg_mono_ms();
    /* the slot may be reused at once: later callbacks of this wsi must not find it */
    if (wsi)
        lws_set_opaque_user_data(wsi, NULL);
    if (c->state == WC_IDLE)
        return;
    bool was_healthy = c->got_kline;
    if (ws.closing)
        log_debug("%s: closed at exit", c->origin);
    else if (!c->retire)
        log_warn("%s: %s%s", c->origin, was_healthy ? "connection lost: " : "connection failed: ", why);
    else
        log_info("%s: closed", c->origin);
    if (!was_healthy)
        atomic_fetch_add(&prod_stats.connect_errors, 1);
    free(c->rx);
    c->rx = NULL;
    c->state = WC_IDLE;
    c->wsi = NULL;
    atomic_store(&stats_conn_last_rx[(g->idx * 2 + c->slot) % STATS_MAX_CONNS], 0);
    if (g->active == c->slot) {
        ws_conn_t *o = &g->c[!c->slot];
        g->active = o->state == WC_OPEN && !o->retire ? o->slot : -1;
    }
    if (was_healthy) {
        g->backoff_ms = WS_BACKOFF_MIN_MS;
        g->next_attempt_ms = now + ws_jitter(WS_BACKOFF_MIN_MS);
    } else {
        g->next_attempt_ms = now + ws_jitter(g->backoff_ms);
        g->backoff_ms = g->backoff_ms * 2 > WS_BACKOFF_MAX_MS ? WS_BACKOFF_MAX_MS : g->backoff_ms * 2;
    }
}

/* A connection is ready when every stream is subscribed and a kline came through:
 * then it takes over from the one it replaces. */
static void ws_check_ready(ws_conn_t *c)
{
    ws_group_t *g = c->g;
    if (!c->got_kline || c->sub_next < g->nchunks || c->sub_unacked > 0)
        return;
    if (g->active == c->slot)
        return;
    int old = g->active;
    g->active = c->slot;
    g->backoff_ms = WS_BACKOFF_MIN_MS;
    if (old >= 0)
        ws_retire(&g->c[old], "replaced by a newer connection");
}

static void ws_on_message(ws_conn_t *c)
{
    int64_t recv_ms = cfg_now_ms(), recv_us = cfg_mono_us();
    if (c->rxtotal > prod_cfg.max_frame) {
        char why[96];
        snprintf(why, sizeof why, "frame of %zu bytes exceeds --max-frame %zu (kept the first %zu)",
                 c->rxtotal, prod_cfg.max_frame, c->rxlen);
        atomic_fetch_add(&prod_stats.received, 1);
        pub_reject(c->rx, c->rxlen, c->origin, why);
        return;
    }
    enum msg_kind k = msg_handle(c->rx, c->rxlen, c->origin, recv_ms, recv_us);
    switch (k) {
    case MSG_KLINE:
    case MSG_SKIPPED:
        if (!c->got_kline) {
            c->got_kline = true;
            ws_check_ready(c);
        }
        break;
    case MSG_REPLY:
        if (c->sub_unacked > 0)
            c->sub_unacked--;
        ws_check_ready(c);
        break;
    case MSG_SHUTDOWN:
        if (!c->shutdown) {
            c->shutdown = true;
            atomic_fetch_add(&prod_stats.shutdowns, 1);
            log_info("%s: serverShutdown received: replacing the connection", c->origin);
        }
        break;
    case MSG_REJECTED:
        break;
    }
}

static void ws_on_receive(ws_conn_t *c, struct lws *wsi, const void *in, size_t len)
{
    int64_t now = cfg_mono_ms();
    c->last_rx_ms = now;
    atomic_store_explicit(&prod_stats.last_rx_mono_ms, now, memory_order_relaxed);
    if (lws_is_first_fragment(wsi))
        c->rxlen = c->rxtotal = 0;
    if (!c->rx && !(c->rx = malloc(prod_cfg.max_frame + 1)))
        return;
    size_t room = prod_cfg.max_frame - c->rxlen;
    size_t take = len < room ? len : room;
    memcpy(c->rx + c->rxlen, in, take);
    c->rxlen += take;
    c->rxtotal += len;
    if (lws_is_final_fragment(wsi)) {
        c->rx[c->rxlen] = '\0';
        ws_on_message(c);
        c->rxlen = c->rxtotal = 0;
    }
}

static int ws_send_subscribe(ws_conn_t *c)
{
    ws_group_t *g = c->g;
    int a = g->chunk_at[c->sub_next], b = g->chunk_at[c->sub_next + 1];
    size_t cap = LWS_PRE + 64 + (size_t)(b - a) * 44;
    unsigned char *buf = malloc(cap); /* freed below; lws_write copies what it cannot send */
    if (!buf)
        return -1;
    char *p = (char *)buf + LWS_PRE;
    size_t o = 0, room = cap - LWS_PRE;
    o += (size_t)snprintf(p + o, room - o, "{\"method\":\"SUBSCRIBE\",\"params\":[");
    char name[64];
    for (int i = a; i < b; i++) {
        ws_stream_name(&prod_syms[g->first + i], name, sizeof name);
        o += (size_t)snprintf(p + o, room - o, "%s\"%s\"", i > a ? "," : "", name);
    }
    o += (size_t)snprintf(p + o, room - o, "],\"id\":%d}", c->sub_next + 1);
    int w = lws_write(c->wsi, (unsigned char *)p, o, LWS_WRITE_TEXT);
    free(buf);
    if (w < (int)o)
        return -1;
    c->sub_next++;
    c->sub_unacked++;
    c->next_sub_ms = cfg_mono_ms() + WS_SUB_GAP_MS;
    return 0;
}

static void ws_on_established(ws_conn_t *c, struct lws *wsi)
{
    c->state = WC_OPEN;
    c->opened_ms = c->last_rx_ms = cfg_mono_ms();
    c->next_sub_ms = c->opened_ms;
    atomic_fetch_add(&prod_stats.connects, 1);
    log_info("%s: connected", c->origin);
    if (c->g->active < 0)
        c->g->active = c->slot;
    if (c->sub_next < c->g->nchunks)
        lws_callback_on_writable(wsi);
}

/* Room to send: the close of a retired connection, or the next SUBSCRIBE when due.
 * 0, or -1 to close the connection. */
static int ws_on_writeable(ws_conn_t *c, struct lws *wsi)
{
    if (c->retire) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1;
    }
    if (c->sub_next < c->g->nchunks && cfg_mono_ms() >= c->next_sub_ms && ws_send_subscribe(c) < 0) {
        log_warn("%s: cannot send SUBSCRIBE", c->origin);
        return -1;
    }
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    ws_conn_t *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c)
            ws_on_established(c, wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c && !c->retire)
            ws_on_receive(c, wsi, in, len);
        else if (c)
            c->last_rx_ms = cfg_mono_ms();
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (c && ws_on_writeable(c, wsi) < 0)
            return -1;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c)
            ws_gone(c, wsi, in ? (const char *)in : "connection error");
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c)
            ws_gone(c, wsi, "closed by the server");
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            ws_gone(c, wsi, "connection destroyed");
        break;
    default:
        break;
    }
    return 0;
}

/* The periodic look at one connection of g: pending SUBSCRIBEs, the watchdog, a
 * connection that never delivered. true when it still counts (not being closed). */
static bool ws_conn_tick(ws_group_t *g, ws_conn_t *c, int64_t now)
{
    if (c->state == WC_IDLE || c->retire)
        return false;
    if (c->state == WC_OPEN) {
        atomic_store(&stats_conn_last_rx[(g->idx * 2 + c->slot) % STATS_MAX_CONNS], c->last_rx_ms);
        if (c->sub_next < g->nchunks && now >= c->next_sub_ms)
            lws_callback_on_writable(c->wsi);
        if (now - c->last_rx_ms > prod_cfg.watchdog_ms) {
            atomic_fetch_add(&prod_stats.watchdog_fires, 1);
            char why[64];
            snprintf(why, sizeof why, "watchdog: silent for %lld ms", (long long)(now - c->last_rx_ms));
            ws_retire(c, why);
            return false;
        }
    }
    if (!c->got_kline && now - c->started_ms > WS_CONNECT_TIMEOUT + prod_cfg.watchdog_ms) {
        ws_retire(c, "no kline since connecting");
        if (c->state == WC_CONNECTING && c->wsi)
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return false;
    }
    return true;
}

static void ws_group_tick(ws_group_t *g, int64_t now)
{
    bool pending = false; /* a connection that is not being closed exists */
    for (int s = 0; s < 2; s++)
        pending |= ws_conn_tick(g, &g->c[s], now);
    if (now < g->next_attempt_ms)
        return;
    if (g->active < 0) {
        /* nothing serves the group: connect, unless an attempt is on its way */
        int slot = g->c[0].state == WC_IDLE ? 0 : g->c[1].state == WC_IDLE ? 1 : -1;
        if (!pending && slot >= 0 && ws_take_token(now))
            ws_connect(g, slot, now);
        return;
    }
    ws_conn_t *a = &g->c[g->active];
    if (g->c[!a->slot].state != WC_IDLE)
        return; /* a successor is on its way, or the previous one is closing */
    bool old = now - a->opened_ms > prod_cfg.max_conn_age_ms;
    if ((a->shutdown || old) && ws_take_token(now)) {
        if (old && !a->shutdown)
            atomic_fetch_add(&prod_stats.conn_age_renewals, 1);
        log_info("%s: opening its successor (%s)", a->origin, a->shutdown ? "serverShutdown" : "--max-conn-age");
        ws_connect(g, !a->slot, now);
    }
}

static void ws_tick(lws_sorted_usec_list_t *sul)
{
    int64_t now = cfg_mono_ms();
    for (int i = 0; i < ws.ng; i++)
        ws_group_tick(&ws.g[i], now);
    int64_t last = atomic_load(&prod_stats.last_rx_mono_ms);
    if (now - last > prod_cfg.dead_after_ms && !prod_stopping) {
        log_error("nothing received from the exchange for %lld s (--dead-after): giving up",
                  (long long)(now - last) / 1000);
        atomic_store(&prod_failed, 1);
        atomic_store(&prod_stopping, 1);
    }
    if (!ws.caught_up && now - ws.started_mono >= WS_CATCH_UP_DELAY) {
        ws.caught_up = true;
        seq_catch_up(cfg_now_ms());
    }
    if (now >= ws.next_stale_scan) {
        int64_t iv = prod_cfg.interval_ms;
        int64_t lag = iv * 5 > 60000 ? iv * 5 : 60000;
        ws.next_stale_scan = now + 5000;
        /* symbols silent since start count only once the others had time to begin */
        seq_stale_scan(lag, now - ws.started_mono > 2 * lag ? ws.started_wall - ws.started_wall % iv : PROD_NONE);
    }
    if (now >= ws.next_backlog) {
        ws.next_backlog = now + 1000;
        seq_backlog(cfg_now_ms());
    }
    pub_poll();
    stats_tick(now);
    lws_sul_schedule(ws.ctx, 0, sul, ws_tick, WS_TICK_US);
}

static void ws_lws_log(int level, const char *line)
{
    log_msg(level == LLL_ERR ? LOG_LVL_WARN : LOG_LVL_DEBUG, "lws: %s", line);
}

static const struct lws_protocols ws_protocols[] = {
    { "kline-producer", ws_callback, 0, 16384, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* The port after "host:" in the URL (lws_parse_uri would take a bad one as 0), else
 * the scheme's own. */
static int ws_url_port(const char *proto, char *errbuf, size_t errlen)
{
    const char *hp = prod_cfg.ws_url + strlen(proto) + 3;
    const char *slash = strchr(hp, '/');
    const char *colon = memchr(hp, ':', slash ? (size_t)(slash - hp) : strlen(hp));
    if (!colon) {
        ws.port = ws.tls ? 443 : 80;
        return 0;
    }
    long long p;
    char ps[16];
    size_t pl = (size_t)((slash ? slash : hp + strlen(hp)) - colon - 1);
    if (pl == 0 || pl >= sizeof ps) {
        snprintf(errbuf, errlen, "BINANCE_WS_URL %s: bad port", prod_cfg.ws_url);
        return -1;
    }
    memcpy(ps, colon + 1, pl);
    ps[pl] = '\0';
    if (cfg_parse_ll(ps, 1, 65535, &p) < 0) {
        snprintf(errbuf, errlen, "BINANCE_WS_URL %s: bad port", prod_cfg.ws_url);
        return -1;
    }
    ws.port = (int)p;
    return 0;
}

/* Keeps a base path ("wss://host/x" → "/x"), never ending in '/'; a URL given with
 * Binance's own "/ws" or "/stream" suffix means the same endpoint. */
static void ws_url_base_path(const char *path)
{
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/')
        pl--;
    if (pl >= 2 && strncmp(path + pl - 2, "ws", 2) == 0 && (pl == 2 || path[pl - 3] == '/'))
        pl = pl == 2 ? 0 : pl - 3;
    else if (pl >= 6 && strncmp(path + pl - 6, "stream", 6) == 0 && (pl == 6 || path[pl - 7] == '/'))
        pl = pl == 6 ? 0 : pl - 7;
    snprintf(ws.base_path, sizeof ws.base_path, "%s%.*s", pl ? "/" : "", (int)pl, path);
}

static int ws_parse_url(char *errbuf, size_t errlen)
{
    char tmp[512];
    const char *proto, *addr, *path;
    if (strlen(prod_cfg.ws_url) >= sizeof tmp) {
        snprintf(errbuf, errlen, "BINANCE_WS_URL too long");
        return -1;
    }
    strcpy(tmp, prod_cfg.ws_url);
    if (lws_parse_uri(tmp, &proto, &addr, &ws.port, &path)) {
        snprintf(errbuf, errlen, "BINANCE_WS_URL %s: not a URL", prod_cfg.ws_url);
        return -1;
    }
    if (strcmp(proto, "wss") != 0 && strcmp(proto, "ws") != 0) {
        snprintf(errbuf, errlen, "BINANCE_WS_URL %s: scheme must be ws:// or wss://", prod_cfg.ws_url);
        return -1;
    }
    ws.tls = strcmp(proto, "wss") == 0;
    if (ws_url_port(proto, errbuf, errlen) < 0)
        return -1;
    snprintf(ws.host, sizeof ws.host, "%s", addr);
    ws_url_base_path(path);
    return 0;
}

/* The symbols in groups of --streams-per-conn, each with its own connection(s). */
static int ws_groups_init(char *errbuf, size_t errlen)
{
    int spc = prod_cfg.streams_per_conn;
    ws.ng = (prod_nsyms + spc - 1) / spc;
    ws.g = calloc((size_t)ws.ng, sizeof *ws.g); /* owned by ws, freed in ws_destroy */
    if (!ws.g) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < ws.ng; i++) {
        ws_group_t *g = &ws.g[i];
        g->idx = i;
        g->first = i * spc;
        g->n = prod_nsyms - g->first < spc ? prod_nsyms - g->first : spc;
        g->active = -1;
        g->backoff_ms = WS_BACKOFF_MIN_MS;
        if (ws_group_plan(g) < 0) {
            snprintf(errbuf, errlen, "out of memory");
            return -1;
        }
    }
    atomic_store(&stats_nconns, ws.ng * 2 < STATS_MAX_CONNS ? ws.ng * 2 : STATS_MAX_CONNS);
    return 0;
}

static int ws_context_new(char *errbuf, size_t errlen)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = ws_protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; /* system CA store is loaded by default */
    info.max_http_header_data = 8192;                    /* room for the URL with streams */
    info.pt_serv_buf_size = 32768;
    info.fd_limit_per_thread = (unsigned)(ws.ng * 2 + 16);
    ws.ctx = lws_create_context(&info);
    if (!ws.ctx) {
        snprintf(errbuf, errlen, "lws_create_context failed");
        return -1;
    }
    atomic_store(&ws_wake_ctx, ws.ctx);
    return 0;
}

int ws_init(char *errbuf, size_t errlen)
{
    if (ws_parse_url(errbuf, errlen) < 0)
        return -1;
    int lv = LLL_ERR | (log_level_get() >= LOG_LVL_DEBUG ? LLL_WARN : 0);
    lws_set_log_level(lv, ws_lws_log);
    if (ws_groups_init(errbuf, errlen) < 0 || ws_context_new(errbuf, errlen) < 0)
        return -1;
    att_init(&ws.attempts);
    ws.started_mono = cfg_mono_ms();
    ws.started_wall = cfg_now_ms();
    atomic_store(&prod_stats.last_rx_mono_ms, cfg_mono_ms());
    log_info("%d symbols on %d connection group(s), %s://%s:%d%s", prod_nsyms, ws.ng,
             ws.tls ? "wss" : "ws", ws.host, ws.port, ws.base_path);
    return 0;
}

void ws_run(void)
{
    lws_sul_schedule(ws.ctx, 0, &ws.tick, ws_tick, 1);
    while (!sig_stop && !prod_stopping)
        if (lws_service(ws.ctx, 0) < 0)
            break;
    lws_sul_cancel(&ws.tick);
}

void ws_wake(void)
{
    struct lws_context *ctx = atomic_load(&ws_wake_ctx);
    if (ctx)
        lws_cancel_service(ctx);
}

void ws_destroy(void)
{
    ws.closing = true;
    atomic_store(&ws_wake_ctx, NULL); /* the workers were joined before (bf_stop) */
    if (ws.ctx)
        lws_context_destroy(ws.ctx); /* closes the connections; callbacks free their buffers */
    ws.ctx = NULL;
    for (int i = 0; i < ws.ng; i++)
        free(ws.g[i].chunk_at);
    free(ws.g);
    ws.g = NULL;
    ws.ng = 0;
}
