/* kp-wsload — many WebSocket clients of kline-streamer in one process (one lws context),
 * for benchmarks: connects N clients, subscribes each to K symbols, measures delivery
 * latency (receipt − the kline's event_time, wall clock) and message rates, and prints
 * one JSON summary line on stdout.
 *
 *   kp-wsload --port P -n 10000 --symbols A,B,... --per-client 2 --duration 30
 *   kp-wsload --port P -n 500 --all --duration 20
 *   kp-wsload --port P -n 10000 --idle --duration 10      (connect only, never subscribe)
 *
 * --proto centrifugo (raw engine): the same clients against Centrifugo's bidirectional JSON
 * protocol (connect command, then one subscribe command per symbol, the symbol being the
 * channel; server pings "{}" answered with "{}"), for bench_peers.sh.
 * --grace S: count by the record's event_time instead of the receipt time: every update
 * whose event_time falls in the measured window (aligned to .500 of a second, so it holds
 * exactly --duration bursts) and arrives before window end + S; the report then has
 * "expected" (clients x distinct symbols x seconds x --rate) and "delivered_pct".
 * --samples FILE [--sample-every N] [--sample-label L]: raw latency samples, "L ms" lines.
 *
 * --engine lws (default) uses the libwebsockets client. --engine raw is a minimal RFC 6455
 * client on epoll, for throughput runs: the lws 4.1 client parses frames byte by byte and
 * polls every socket on each pass, so at 100,000 messages/s on a shared 2-core machine it,
 * not the server, would be what is measured.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cfg.h"

#define WL_HIST_US 10 /* histogram bucket: 10 µs */
#define WL_HIST_N 6000000 /* up to 60 s (pages never touched cost nothing) */
#define KP_WL_CHAN_MAX 64 /* longest channel (symbol) name sent */

static struct {
    const char *host;
    int port;
    int n, per_client, all, idle, concurrency;
    int duration, warmup, pace_us, raw;
    int centrifugo;     /* --proto centrifugo */
    const char *path;   /* request path (default /ws, or /connection/websocket) */
    int grace;          /* -1: window by receipt time (default); else seconds after the window */
    int rate;           /* klines per symbol per second, for "expected" */
    FILE *samples;
    long sample_every;
    const char *sample_label;
    uint64_t sample_seen, sub_errors, pings;
    char **symbols;
    int nsym;
    /* state */
    struct lws_context *ctx;
    int started, connected, failed, closed, inflight;
    int64_t t_start, t_measure, t_end;
    uint64_t msgs, msgs_measured, bytes, klines, other;
    uint32_t *hist;
    uint64_t hist_n;
    double lat_max;
    volatile sig_atomic_t stop;
    lws_sorted_usec_list_t sul;
} wl;

struct wl_pss {
    int idx;
    int subscribed;
};

static int64_t wl_now_us(void)
{
    struct timespec ts; /* wall clock: compared with the feed's stamps */
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Is an update with this event_time (ms) received at now_us part of the measurement? */
static bool wl_in_window(long long ev, int64_t now_us)
{
    /* t_measure is 0 until every client is connected: the connect storm is warm-up */
    if (!wl.t_measure)
        return false;
    if (wl.grace < 0)
        return now_us / 1000 >= wl.t_measure;
    return ev >= wl.t_measure && ev < wl.t_end;
}

/* Accounts every update in p..end: each (one, or several in a batch frame or a Centrifugo
 * frame) carries one "event_time". */
static void wl_updates(const char *p, const char *end, int64_t now_us)
{
    for (const char *e = p; (e = memmem(e, (size_t)(end - e), "\"event_time\":", 13)); e += 13) {
        wl.klines++;
        long long ev = atoll(e + 13);
        if (ev <= 0 || !wl_in_window(ev, now_us))
            continue;
        double lat_ms = (double)(now_us - ev * 1000) / 1000.0;
        if (lat_ms < 0)
            lat_ms = 0;
        long b = (long)(lat_ms * 1000.0 / WL_HIST_US);
        if (b >= WL_HIST_N)
            b = WL_HIST_N - 1;
        wl.hist[b]++;
        wl.hist_n++;
        wl.msgs_measured++;
        if (lat_ms > wl.lat_max)
            wl.lat_max = lat_ms;
        if (wl.samples && wl.sample_seen++ % (uint64_t)wl.sample_every == 0)
            fprintf(wl.samples, "%s %.3f\n", wl.sample_label, lat_ms);
    }
}

static void wl_record(const char *p, size_t len)
{
    wl.msgs++;
    wl.bytes += len;
    int64_t now_us = wl_now_us();
    bool batch = len > 20 && !memcmp(p, "{\"type\":\"batch\"", 15);
    if (len < 20 || (!batch && memcmp(p, "{\"type\":\"kline\"", 15))) {
        wl.other++;
        return;
    }
    wl_updates(p, p + len, now_us);
}

static double wl_pct(double q)
{
    if (!wl.hist_n)
        return -1;
    uint64_t want = (uint64_t)(q * (double)wl.hist_n);
    uint64_t acc = 0;
    for (long i = 0; i < WL_HIST_N; i++) {
        acc += wl.hist[i];
        if (acc > want)
            return (double)(i + 1) * WL_HIST_US / 1000.0;
    }
    return wl.lat_max;
}

static int wl_subscribe(struct lws *wsi, struct wl_pss *pss)
{
    char buf[LWS_PRE + 4096];
    char *p = buf + LWS_PRE;
    int n;
    if (wl.all) {
        n = snprintf(p, 4000, "{\"op\":\"subscribe\",\"symbols\":[\"*\"]}");
    } else {
        n = snprintf(p, 4000, "{\"op\":\"subscribe\",\"symbols\":[");
        for (int k = 0; k < wl.per_client && n < 3900; k++)
            n += snprintf(p + n, (size_t)(4000 - n), "%s\"%s\"", k ? "," : "",
                          wl.symbols[(pss->idx * wl.per_client + k) % wl.nsym]);
        n += snprintf(p + n, (size_t)(4000 - n), "]}");
    }
    pss->subscribed = 1;
    return lws_write(wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_TEXT) < n ? -1 : 0;
}

static void wl_connect_more(void);

static int wl_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct wl_pss *pss = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        wl.connected++;
        wl.inflight--;
        if (!wl.idle)
            lws_callback_on_writable(wsi);
        wl_connect_more();
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        wl.failed++;
        wl.inflight--;
        if (wl.failed <= 5)
            fprintf(stderr, "kp-wsload: connect failed: %s\n", in ? (const char *)in : "?");
        wl_connect_more();
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (pss && !pss->subscribed)
            return wl_subscribe(wsi, pss);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi))
            wl_record(in, len);
        else if (lws_is_final_fragment(wsi))
            wl.msgs++; /* large snapshot, counted but not parsed */
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        wl.closed++;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols wl_protocols[] = {
    {"kp-wsload", wl_cb, sizeof(struct wl_pss), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void wl_connect_more(void)
{
    while (wl.started < wl.n && wl.inflight < wl.concurrency && !wl.stop) {
        struct lws_client_connect_info ci;
        memset(&ci, 0, sizeof ci);
        ci.context = wl.ctx;
        ci.address = wl.host;
        ci.port = wl.port;
        ci.path = "/ws";
        ci.host = wl.host;
        ci.origin = wl.host;
        ci.protocol = NULL;
        ci.local_protocol_name = "kp-wsload";
        struct wl_pss *pss = calloc(1, sizeof *pss); /* freed at exit; lws does not own it */
        pss->idx = wl.started;
        ci.userdata = pss;
        wl.started++;
        wl.inflight++;
        if (!lws_client_connect_via_info(&ci)) {
            wl.failed++;
            wl.inflight--;
        }
    }
}

static void wl_tick(lws_sorted_usec_list_t *sul)
{
    wl_connect_more();
    lws_sul_schedule(wl.ctx, 0, sul, wl_tick, 100 * LWS_US_PER_MS);
}

static void wl_on_signal(int s)
{
    (void)s;
    wl.stop = 1;
}

static size_t wl_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = (size_t)atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

/* Every client is connected (or failed) at now (ms): the measured window starts after the
 * warm-up; by event time it starts at .500 of a second, so it holds exactly --duration
 * bursts of a feed that writes at whole seconds. */
static void wl_window(int64_t now)
{
    wl.t_measure = now + wl.warmup * 1000;
    if (wl.grace >= 0)
        wl.t_measure = (wl.t_measure / 1000 + 1) * 1000 + 500;
    wl.t_end = wl.t_measure + (int64_t)wl.duration * 1000;
    fprintf(stderr, "kp-wsload: %d connected, %d failed in %lld ms\n", wl.connected, wl.failed,
            (long long)(now - wl.t_start));
}

/* ---------------------------------------------------------------- raw engine */

struct wr_conn {
    int fd;
    int idx;
    int state;          /* 0 connecting, 1 handshake sent, 2 open, 3 closed */
    char *buf;          /* unparsed input (owned) */
    size_t len, cap;
};

#define WR_CF_CONNECT "{\"id\":1,\"connect\":{}}"
#define WR_FRAME_MAX 65535 /* client frames use the 16-bit length at most */

static int wr_send_frame(int fd, const char *payload, size_t n)
{
    /* client frames are masked; a zero key leaves the payload as it is */
    unsigned char hdr[8];
    size_t h = 0;
    if (n > WR_FRAME_MAX)
        return -1;
    hdr[h++] = 0x81;
    if (n < 126) {
        hdr[h++] = (unsigned char)(0x80 | n);
    } else {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(n >> 8);
        hdr[h++] = (unsigned char)n;
    }
    memset(hdr + h, 0, 4);
    h += 4;
    char out[4200], *o = h + n > sizeof out ? malloc(h + n) : out;
    if (!o)
        return -1;
    memcpy(o, hdr, h);
    memcpy(o + h, payload, n);
    int rc = send(fd, o, h + n, MSG_NOSIGNAL) == (ssize_t)(h + n) ? 0 : -1;
    if (o != out)
        free(o);
    return rc;
}

/* The k-th symbol client idx follows (distinct for k < nsym). */
static const char *wr_symbol(int idx, int k) { return wl.symbols[(idx * wl.per_client + k) % wl.nsym]; }

static int wr_subscribe(struct wr_conn *c)
{
    char p[4000];
    int n;
    if (wl.all) {
        n = snprintf(p, sizeof p, "{\"op\":\"subscribe\",\"symbols\":[\"*\"]}");
    } else {
        n = snprintf(p, sizeof p, "{\"op\":\"subscribe\",\"symbols\":[");
        for (int k = 0; k < wl.per_client && n < 3900; k++)
            n += snprintf(p + n, sizeof p - (size_t)n, "%s\"%s\"", k ? "," : "", wr_symbol(c->idx, k));
        n += snprintf(p + n, sizeof p - (size_t)n, "]}");
    }
    return wr_send_frame(c->fd, p, (size_t)n);
}

/* Centrifugo: one frame of newline-separated subscribe commands, one per channel (= symbol),
 * sent once the connect reply is in. --all means every symbol given. */
static int wr_cf_subscribe(struct wr_conn *c)
{
    int k_n = wl.all ? wl.nsym : wl.per_client;
    size_t cap = (size_t)k_n * (KP_WL_CHAN_MAX + 48) + 1, n = 0;
    char *p = malloc(cap);
    if (!p)
        return -1;
    for (int k = 0; k < k_n; k++)
        n += (size_t)snprintf(p + n, cap - n, "%s{\"id\":%d,\"subscribe\":{\"channel\":\"%.*s\"}}", k ? "\n" : "",
                              k + 2, KP_WL_CHAN_MAX, wl.all ? wl.symbols[k] : wr_symbol(c->idx, k));
    int rc = wr_send_frame(c->fd, p, n);
    free(p);
    return rc;
}

/* One Centrifugo frame: replies ({"id":1,...} connect, others subscribe), pushes
 * ({"push":...}) and pings ({}), newline-separated when the server batches them. */
static int wr_cf_frame(struct wr_conn *c, const char *p, size_t len)
{
    wl.msgs++;
    wl.bytes += len;
    int64_t now_us = wl_now_us();
    const char *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        if (n == 2 && !memcmp(p, "{}", 2)) {
            wl.pings++;
            if (wr_send_frame(c->fd, "{}", 2) < 0)
                return -1;
        } else if (n > 8 && !memcmp(p, "{\"push\":", 8)) {
            wl_updates(p, e, now_us);
        } else if (n > 6 && !memcmp(p, "{\"id\":", 6)) {
            if (memmem(p, n, "\"error\":", 8)) {
                if (wl.sub_errors++ < 3)
                    fprintf(stderr, "kp-wsload: centrifugo: %.*s\n", (int)(n > 200 ? 200 : n), p);
            } else if (n > 8 && !memcmp(p, "{\"id\":1,", 8) && !wl.idle && wr_cf_subscribe(c) < 0) {
                return -1;
            }
        } else {
            wl.other++;
        }
        p = e + 1;
    }
    return 0;
}

/* Parses complete frames at the front of c->buf; returns -1 when the connection ends. */
static int wr_parse(struct wr_conn *c)
{
    size_t off = 0;
    while (c->len - off >= 2) {
        unsigned char *b = (unsigned char *)c->buf + off;
        int op = b[0] & 0x0f;
        uint64_t n = b[1] & 0x7f;
        size_t h = 2;
        if (n == 126) {
            if (c->len - off < 4)
                break;
            n = ((uint64_t)b[2] << 8) | b[3];
            h = 4;
        } else if (n == 127) {
            if (c->len - off < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | b[2 + i];
            h = 10;
        }
        if (c->len - off < h + n)
            break;
        if ((op == 1 || op == 0) && wl.centrifugo) {
            if (wr_cf_frame(c, (const char *)b + h, (size_t)n) < 0)
                return -1;
        } else if (op == 1 || op == 0) {
            wl_record((const char *)b + h, (size_t)n);
        }
        else if (op == 8)
            return -1;
        off += h + (size_t)n;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return 0;
}

static int wr_read(struct wr_conn *c)
{
    for (;;) {
        if (c->cap - c->len < 16384) {
            size_t cap = c->cap ? c->cap * 2 : 32768;
            char *nb = realloc(c->buf, cap);
            if (!nb)
                return -1;
            c->buf = nb;
            c->cap = cap;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
        if (c->state == 1) {
            char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end)
                continue;
            if (c->len < 12 || memcmp(c->buf + 9, "101", 3))
                return -1;
            size_t hl = (size_t)(end + 4 - c->buf);
            memmove(c->buf, c->buf + hl, c->len - hl);
            c->len -= hl;
            c->state = 2;
            wl.connected++;
            wl.inflight--;
            if (wl.centrifugo ? wr_send_frame(c->fd, WR_CF_CONNECT, strlen(WR_CF_CONNECT)) < 0
                              : !wl.idle && wr_subscribe(c) < 0)
                return -1;
        }
        if (c->state == 2 && wr_parse(c) < 0)
            return -1;
        /* an idle connection keeps no buffer */
        if (c->len == 0 && c->cap > 32768) {
            free(c->buf);
            c->buf = NULL;
            c->cap = 0;
        }
    }
    if (c->len == 0 && c->buf) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    return 0;
}

static int wr_run(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct wr_conn *conns = calloc((size_t)wl.n, sizeof *conns);
    if (ep < 0 || !conns)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)wl.port);
    inet_pton(AF_INET, wl.host, &sa.sin_addr);
    char req[512];
    int reqlen = snprintf(req, sizeof req,
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: a2xpbmVwaXBlLWxvYWQtMQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                          wl.path, wl.host, wl.port);
    struct epoll_event evs[1024];
    int64_t all_at = 0;
    wl.t_start = cfg_now_ms();
    while (!wl.stop) {
        while (wl.started < wl.n && wl.inflight < wl.concurrency) {
            struct wr_conn *c = &conns[wl.started];
            c->idx = wl.started++;
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            int one = 1;
            setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)) {
                wl.failed++;
                c->state = 3;
                if (c->fd >= 0)
                    close(c->fd);
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            wl.inflight++;
        }
        int n = epoll_wait(ep, evs, 1024, 50);
        for (int i = 0; i < n; i++) {
            struct wr_conn *c = evs[i].data.ptr;
            if (c->state == 0 && (evs[i].events & EPOLLOUT)) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err || send(c->fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
                    wl.failed++;
                    wl.inflight--;
                    c->state = 3;
                    close(c->fd);
                    continue;
                }
                c->state = 1;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->state >= 1 && c->state < 3 &&
                wr_read(c) < 0) {
                if (c->state == 1) {
                    wl.failed++;
                    wl.inflight--;
                } else {
                    wl.closed++;
                }
                c->state = 3;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
            }
        }
        int64_t now = cfg_now_ms();
        if (!all_at && wl.connected + wl.failed >= wl.n) {
            all_at = now;
            wl_window(now);
        }
        if (!all_at && now - wl.t_start > 120000)
            break;
        if (all_at && now >= wl.t_end + (wl.grace > 0 ? wl.grace * 1000 : 0))
            break;
    }
    for (int i = 0; i < wl.started; i++) {
        if (conns[i].state != 3)
            close(conns[i].fd);
        free(conns[i].buf);
    }
    free(conns);
    close(ep);
    return 0;
}

/* Updates the clients should have had in the window: each client's distinct symbols,
 * --rate per second; clients that failed or were cut off count too. */
static double wl_expected(void)
{
    int k = wl.all ? wl.nsym : wl.per_client < wl.nsym ? wl.per_client : wl.nsym;
    return (double)wl.n * k * wl.duration * wl.rate;
}

static void wl_report(void)
{
    double secs = wl.t_end > wl.t_measure ? (double)(wl.t_end - wl.t_measure) / 1000.0 : 1.0;
    printf("{\"clients\":%d,\"connected\":%d,\"failed\":%d,\"closed\":%d,\"messages\":%llu,"
           "\"klines\":%llu,\"measured\":%llu,\"msgs_per_sec\":%.0f,\"p50_ms\":%.2f,\"p90_ms\":%.2f,"
           "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"client_rss_kb\":%zu,\"engine\":\"%s\",\"proto\":\"%s\","
           "\"sub_errors\":%llu,\"pings\":%llu",
           wl.n, wl.connected, wl.failed, wl.closed, (unsigned long long)wl.msgs,
           (unsigned long long)wl.klines, (unsigned long long)wl.msgs_measured,
           (double)wl.msgs_measured / secs, wl_pct(0.50), wl_pct(0.90), wl_pct(0.99), wl.lat_max,
           wl_rss_kb(), wl.raw ? "raw" : "lws", wl.centrifugo ? "centrifugo" : "streamer",
           (unsigned long long)wl.sub_errors, (unsigned long long)wl.pings);
    if (wl.grace >= 0)
        printf(",\"expected\":%.0f,\"delivered_pct\":%.2f", wl_expected(),
               wl_expected() > 0 ? 100.0 * (double)wl.msgs_measured / wl_expected() : 0.0);
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    wl.host = "127.0.0.1";
    wl.n = 1;
    wl.per_client = 2;
    wl.duration = 10;
    wl.warmup = 2;
    wl.concurrency = 256;
    wl.pace_us = 1000;
    wl.grace = -1;
    wl.rate = 1;
    wl.sample_every = 1;
    wl.sample_label = "x";
    const char *syms = "BTCUSDT,ETHUSDT", *samples = NULL;
    static const struct option opts[] = {
        {"host", required_argument, 0, 'H'},     {"port", required_argument, 0, 'p'},
        {"clients", required_argument, 0, 'n'},  {"symbols", required_argument, 0, 's'},
        {"per-client", required_argument, 0, 'k'}, {"all", no_argument, 0, 'a'},
        {"idle", no_argument, 0, 'i'},           {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'},   {"concurrency", required_argument, 0, 'c'},
        {"pace-us", required_argument, 0, 'P'},
        {"engine", required_argument, 0, 'E'},
        {"proto", required_argument, 0, 'R'},    {"path", required_argument, 0, 'A'},
        {"grace", required_argument, 0, 'g'},    {"rate", required_argument, 0, 'r'},
        {"samples", required_argument, 0, 'S'},  {"sample-every", required_argument, 0, 'N'},
        {"sample-label", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "H:p:n:s:k:aid:w:c:P:E:R:A:g:r:S:N:L:h", opts, NULL)) != -1) {
        switch (o) {
        case 'H': wl.host = optarg; break;
        case 'p': wl.port = atoi(optarg); break;
        case 'n': wl.n = atoi(optarg); break;
        case 's': syms = optarg; break;
        case 'k': wl.per_client = atoi(optarg); break;
        case 'a': wl.all = 1; break;
        case 'i': wl.idle = 1; break;
        case 'd': wl.duration = atoi(optarg); break;
        case 'w': wl.warmup = atoi(optarg); break;
        case 'c': wl.concurrency = atoi(optarg); break;
        case 'P': wl.pace_us = atoi(optarg); break;
        case 'E': wl.raw = !strcmp(optarg, "raw"); break;
        case 'R': wl.centrifugo = !strcmp(optarg, "centrifugo"); break;
        case 'A': wl.path = optarg; break;
        case 'g': wl.grace = atoi(optarg); break;
        case 'r': wl.rate = atoi(optarg); break;
        case 'S': samples = optarg; break;
        case 'N': wl.sample_every = atol(optarg) > 0 ? atol(optarg) : 1; break;
        case 'L': wl.sample_label = optarg; break;
        case 'h':
            printf("usage: kp-wsload --port P [-n CLIENTS] [--symbols A,B] [--per-client K | --all | --idle]\n"
                   "                 [--duration S (after all connected)] [--warmup S] [--concurrency C]\n"
                   "                 [--pace-us US (sleep after each service pass, default 1000)]\n"
                   "                 [--engine lws|raw] [--proto streamer|centrifugo (raw only)] [--path P]\n"
                   "                 [--grace S (window by event_time, then S more seconds)] [--rate R]\n"
                   "                 [--samples FILE [--sample-every N] [--sample-label L]]\n");
            return 0;
        default: return 2;
        }
    }
    if (wl.port <= 0 || wl.n <= 0 || (wl.centrifugo && !wl.raw))
        return 2;
    if (!wl.path)
        wl.path = wl.centrifugo ? "/connection/websocket" : "/ws";
    if (samples && !(wl.samples = fopen(samples, "w"))) {
        perror(samples);
        return 2;
    }
    wl.nsym = cfg_split_list(syms, &wl.symbols);
    if (wl.nsym <= 0)
        return 2;
    wl.hist = calloc(WL_HIST_N, sizeof *wl.hist);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGINT, wl_on_signal);
    signal(SIGTERM, wl_on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (wl.raw) {
        int rc = wr_run();
        wl_report();
        if (wl.samples)
            fclose(wl.samples);
        cfg_list_free(wl.symbols);
        free(wl.hist);
        return rc < 0 ? 1 : 0;
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = wl_protocols;
    /* no fd_limit_per_thread: lws would then find connections by a linear scan */
    info.timeout_secs = 30;
    wl.ctx = lws_create_context(&info);
    if (!wl.ctx) {
        fprintf(stderr, "kp-wsload: lws context failed\n");
        return 1;
    }
    wl.t_start = cfg_now_ms();
    lws_sul_schedule(wl.ctx, 0, &wl.sul, wl_tick, 1);
    int64_t all_at = 0;
    while (!wl.stop) {
        lws_service(wl.ctx, 0);
        /* Let events pile up a little: one poll() over 10,000 sockets per millisecond at
         * most, so the client measures the server, not its own poll() (adds <= 1 ms). */
        if (wl.pace_us)
            usleep((useconds_t)wl.pace_us);
        int64_t now = cfg_now_ms();
        if (!all_at && wl.connected + wl.failed >= wl.n) {
            all_at = now;
            wl_window(now);
        }
        if (!all_at && now - wl.t_start > 120000)
            break; /* could not connect everyone in 2 minutes */
        if (all_at && now >= wl.t_end)
            break;
    }
    wl_report();
    lws_context_destroy(wl.ctx);
    cfg_list_free(wl.symbols);
    free(wl.hist);
    return 0;
}
