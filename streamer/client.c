/* client.c — one WebSocket client: its requests, its replies, its send loop.
 *
 * Nothing a client sends can cost more than a bounded amount of work and memory:
 * messages are capped at --max-msg bytes (reassembly buffer allocated only while a
 * fragmented message is arriving), at --max-rate per second, subscriptions at
 * --max-subs; every violation earns a strike and an error reply, too many strikes
 * close the connection with 1008. Sending: one message per writeable callback,
 * replies first, then the pending updates in arrival order. */
#include "streamer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"

#define ST_MAX_STRIKES 10
/* The close opcode of lws_write: lws 4.1 keeps it out of the public enum (it wants
 * lws_close_reason), but lws_write frames it like any control frame: 2-byte code +
 * reason, at most 125 bytes. */
#define ST_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)

struct st_client *st_client_new(struct lws *wsi)
{
    struct st_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->wsi = wsi;
    c->id = st_hub.next_id++;
    c->tokens = st_hub.cfg->max_rate;
    c->tokens_ms = cfg_mono_ms();
    c->next = st_hub.clients;
    if (st_hub.clients)
        st_hub.clients->prev = c;
    st_hub.clients = c;
    st_hub.nclients++;
    st_hub.st.connections_total++;
    return c;
}

static void st_client_drop_queues(struct st_client *c)
{
    st_outq_free(&c->q);       /* first: the update nodes live in the subscriptions */
    st_hub_unsubscribe_all(c);
}

void st_client_free(struct st_client *c)
{
    st_client_drop_queues(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        st_hub.clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    st_hub.nclients--;
    st_sset_free(&c->sset);
    free(c->rx);
    free(c);
    st_hub_reap();
}

void st_client_kick(struct st_client *c)
{
    /* wait_since_ms != 0 means a writeable callback is already requested. */
    if (c->wait_since_ms)
        return;
    c->wait_since_ms = cfg_mono_ms();
    lws_callback_on_writable(c->wsi);
}

/* Over --max-pending-bytes: the client asked for more than it reads. Its backlog is
 * thrown away and it is told so; a reconnect starts it afresh with one snapshot. */
static void st_client_over(struct st_client *c)
{
    st_hub.st.dropped++;
    st_hub.st.pending_closed++;
    log_info("client %llu: %zu bytes pending (max %lld), closing", (unsigned long long)c->id,
             c->q.bytes, st_hub.cfg->max_pending_bytes);
    st_client_close(c, 4009, "too much pending");
}

bool st_client_ctl_kind(struct st_client *c, st_msg_t *m, enum st_ctl_kind kind)
{
    if (c->close_code) {
        st_hub.st.dropped++;
        st_msg_unref(m);
        return false;
    }
    int superseded;
    enum st_outq_rc rc = st_outq_ctl(&c->q, m, kind, (size_t)st_hub.cfg->max_pending_bytes,
                                     &superseded); /* takes m */
    st_hub.st.snapshots_superseded += (uint64_t)superseded;
    if (rc == ST_OUTQ_FULL)
        st_hub.st.dropped++;
    if (rc == ST_OUTQ_OVER)
        st_client_over(c);
    if (rc != ST_OUTQ_OK)
        return false;
    st_client_kick(c);
    return true;
}

bool st_client_ctl(struct st_client *c, st_msg_t *m)
{
    return st_client_ctl_kind(c, m, ST_CTL_REPLY);
}

void st_client_update(struct st_client *c, struct st_qnode *n, st_msg_t *m)
{
    if (c->close_code)
        return;
    enum st_outq_rc rc = st_outq_put(&c->q, n, m, st_hub.cfg->queue_max,
                                     (size_t)st_hub.cfg->max_pending_bytes);
    switch (rc) {
    case ST_OUTQ_CONFLATED:
        st_hub.st.conflated++;
        return;
    case ST_OUTQ_FULL:
        st_hub.st.dropped++;
        st_hub.st.slow_closed++;
        log_info("client %llu: %d updates pending, closing as too slow", (unsigned long long)c->id,
                 c->q.len);
        st_client_close(c, 4008, "too slow");
        return;
    case ST_OUTQ_OVER:
        st_client_over(c);
        return;
    default:
        st_client_kick(c);
    }
}

void st_client_close(struct st_client *c, int code, const char *reason)
{
    if (c->close_code)
        return;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    /* Nothing more will be sent: free what was pending right away. */
    st_client_drop_queues(c);
    lws_callback_on_writable(c->wsi);
    /* A client that does not read may never become writeable: kill it anyway. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 2);
}

void st_client_error(struct st_client *c, const char *fmt, ...)
{
    char reason[200], buf[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    /* reason is always our own text (never echoes client bytes); quotes and backslashes
     * are escaped, control characters never occur in it */
    static const char head[] = "{\"type\":\"error\",\"error\":\"";
    size_t n = sizeof head - 1;
    memcpy(buf, head, n);
    for (const char *r = reason; *r; r++) {
        if (*r == '"' || *r == '\\')
            buf[n++] = '\\';
        buf[n++] = *r;
    }
    buf[n++] = '"';
    buf[n++] = '}';
    st_hub.st.client_errors++;
    st_msg_t *m = st_msg_dup(buf, n);
    if (m)
        st_client_ctl(c, m);
}

static void st_client_strike(struct st_client *c)
{
    if (++c->strikes >= ST_MAX_STRIKES && !c->close_code) {
        st_hub.st.abuse_closed++;
        log_info("client %llu: %d protocol violations, closing", (unsigned long long)c->id,
                 c->strikes);
        st_client_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many bad messages");
    }
}

/* ---------------------------------------------------------------- requests */

static st_msg_t *st_reply_list(const char *type, struct st_client *c)
{
    st_msg_t *m = st_msg_new(256);
    if (!m)
        return NULL;
    int rc = st_msg_appendf(m, "{\"type\":\"%s\",\"wildcard\":%s,\"count\":%d,\"symbols\":[", type,
                            c->wildcard ? "true" : "false", c->nsubs);
    bool first = true;
    if (!c->wildcard)
        for (struct st_sub *x = c->subs; rc == 0 && x; x = x->c_next) {
            rc = st_msg_appendf(m, "%s\"%s\"", first ? "" : ",", x->s->name);
            first = false;
        }
    return st_msg_end(m, rc, "]}");
}

/* Subscriptions this request would add, and placeholders among them (O(1) per name). */
static void st_sub_count_new(struct st_client *c, const struct st_proto_msg *req, int *fresh,
                             int *placeholders)
{
    *fresh = *placeholders = 0;
    for (int i = 0; i < req->nsymbols; i++) {
        if (!strcmp(req->symbols[i], "*"))
            continue;
        struct st_symbol *s = st_hub_find(req->symbols[i]);
        if (s && st_hub_sub(c, s))
            continue;
        (*fresh)++;
        *placeholders += !s || !s->has_data;
    }
}

/* Explicit names: find or create each symbol and subscribe; fills syms. -1 after an error
 * reply (the names before the failing one stay subscribed). */
static int st_sub_names(struct st_client *c, const struct st_proto_msg *req, struct st_symbol **syms,
                        int *nsyms)
{
    for (int i = 0; i < req->nsymbols; i++) {
        struct st_symbol *s = st_hub_symbol(req->symbols[i], true);
        if (!s) {
            st_client_error(c, "too many symbols on this server");
            return -1;
        }
        if (st_hub_subscribe(c, s) < 0) {
            st_hub_unfollowed(s);
            st_client_error(c, "out of memory");
            return -1;
        }
        syms[(*nsyms)++] = s;
    }
    return 0;
}

static void st_op_subscribe(struct st_client *c, const struct st_proto_msg *req)
{
    int max = st_hub.cfg->max_subs, maxp = st_hub.cfg->max_placeholders, nsyms = 0, fresh, ph;
    bool wild = req->wildcard;
    struct st_symbol **syms = malloc(sizeof *syms * (size_t)(req->nsymbols + 1));
    if (!syms)
        return;
    st_sub_count_new(c, req, &fresh, &ph);
    if (!wild && !c->wildcard && c->nsubs + fresh > max) {
        st_client_error(c, "too many subscriptions (max %d per connection)", max);
        goto out;
    }
    /* Names nothing has traded cost a table entry each: one connection gets a few, so its
     * churn cannot fill --max-symbols for everyone else. */
    if (!wild && c->nplaceholders + ph > maxp) {
        st_client_error(c, "too many symbols that have not traded (max %d per connection)", maxp);
        goto out;
    }
    if (wild ? st_hub_wildcard(c) < 0 : st_sub_names(c, req, syms, &nsyms) < 0) {
        if (wild)
            st_client_error(c, "out of memory");
        goto out;
    }
    /* The snapshot carries the newest update of these symbols: drop queued older ones
     * (for "*", when it is built, just before it is sent). */
    for (int i = 0; i < nsyms; i++) {
        struct st_sub *x = st_hub_sub(c, syms[i]);
        if (x)
            st_outq_clear(&c->q, &x->q[ST_KIND_KLINE]);
    }
    st_msg_t *r = st_reply_list("subscribed", c);
    if (r)
        st_client_ctl(c, r);
    if (wild) {
        st_client_ctl_kind(c, NULL, ST_CTL_FULL_SNAPSHOT);
    } else {
        st_msg_t *snap = st_hub_snapshot(c, syms, nsyms);
        if (snap)
            st_client_ctl_kind(c, snap, ST_CTL_SNAPSHOT);
    }
out:
    free(syms);
}

static void st_op_unsubscribe(struct st_client *c, const struct st_proto_msg *req)
{
    char (*names)[KLINE_SYMBOL_MAX] = req->symbols;
    for (int i = 0; i < req->nsymbols; i++) {
        if (!strcmp(names[i], "*")) {
            st_hub_unsubscribe_all(c);
            break;
        }
        struct st_symbol *s = st_hub_find(names[i]);
        if (s)
            st_hub_unsubscribe(c, s);
    }
    st_msg_t *r = st_reply_list("unsubscribed", c);
    if (r)
        st_client_ctl(c, r);
}

static void st_op_ping(struct st_client *c, const struct st_proto_msg *req)
{
    char buf[128];
    int n;
    if (req->has_id)
        n = snprintf(buf, sizeof buf, "{\"type\":\"pong\",\"time\":%lld,\"id\":%lld}",
                     (long long)cfg_now_ms(), req->id);
    else
        n = snprintf(buf, sizeof buf, "{\"type\":\"pong\",\"time\":%lld}", (long long)cfg_now_ms());
    st_msg_t *m = st_msg_dup(buf, (size_t)n);
    if (m)
        st_client_ctl(c, m);
}

static bool st_client_rate_ok(struct st_client *c)
{
    int64_t now = cfg_mono_ms();
    double rate = st_hub.cfg->max_rate;
    c->tokens += (double)(now - c->tokens_ms) * rate / 1000.0;
    if (c->tokens > rate)
        c->tokens = rate;
    c->tokens_ms = now;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}

void st_client_on_message(struct st_client *c, const char *buf, size_t len)
{
    if (c->close_code)
        return;
    if (!st_client_rate_ok(c)) {
        st_client_error(c, "rate limit exceeded (max %d messages/s)", st_hub.cfg->max_rate);
        st_client_strike(c);
        return;
    }
    struct st_proto_msg req; /* owns its symbol list until st_proto_msg_free */
    char err[200];
    if (st_proto_parse_client(buf, len, st_hub.cfg->max_subs, &req, err, sizeof err) < 0) {
        st_client_error(c, "%s", err);
        st_client_strike(c);
        return;
    }
    switch (req.op) {
    case ST_OP_SUBSCRIBE: st_op_subscribe(c, &req); break;
    case ST_OP_UNSUBSCRIBE: st_op_unsubscribe(c, &req); break;
    default: st_op_ping(c, &req); break;
    }
    st_proto_msg_free(&req);
    st_hub_reap(); /* placeholders this request stopped following */
}

void st_client_on_receive(struct st_client *c, const void *in, size_t len)
{
    struct lws *wsi = c->wsi;
    bool final = lws_is_final_fragment(wsi);
    size_t max = (size_t)st_hub.cfg->max_msg;
    bool starting = c->rxlen == 0 && !c->rx_drop && !c->rx;

    if (starting && lws_frame_is_binary(wsi)) {
        st_client_error(c, "binary frames are not accepted; send JSON text");
        st_client_strike(c);
        c->rx_drop = true;
    }
    if (!c->rx_drop && c->rxlen + len > max) {
        st_client_error(c, "message too large (max %zu bytes)", max);
        st_client_strike(c);
        c->rx_drop = true;
        free(c->rx);
        c->rx = NULL;
        c->rxlen = 0;
    }
    if (c->rx_drop) {
        if (final)
            c->rx_drop = false;
        return;
    }
    if (starting && final) {
        st_client_on_message(c, in, len); /* the common case: no copy */
        return;
    }
    if (!c->rx && !(c->rx = malloc(max))) {
        c->rx_drop = !final;
        return;
    }
    memcpy(c->rx + c->rxlen, in, len);
    c->rxlen += len;
    if (final) {
        /* the buffer is freed before handling so a client never pins max bytes while idle */
        char *buf = c->rx;
        size_t n = c->rxlen;
        c->rx = NULL;
        c->rxlen = 0;
        st_client_on_message(c, buf, n);
        free(buf);
    }
}

/* ---------------------------------------------------------------- sending */

/* A client that is behind gets its pending updates in one frame,
 * {"type":"batch","updates":[...]}, up to ST_BATCH_MAX bytes: one send() instead of
 * dozens, which is what lets one thread feed hundreds of "*" subscribers. 256 KB holds a
 * burst of ~500 symbols in one frame: at 32 KB, 500 clients x 200 symbols took three frames
 * each per burst (each a send() whose loopback delivery wakes the reader), and the third
 * waited for everyone's first two; one frame cut the streamer's CPU there by ~20 %. The
 * buffer is shared (lws thread only); lws_write copies whatever the kernel does not take,
 * so a client that stops reading holds at most one frame beyond its queue. */
#define ST_BATCH_MAX (256 * 1024)
static unsigned char st_batch_buf[LWS_PRE + ST_BATCH_MAX + 64];

/* A "*" snapshot is built when it is about to be sent, not when it is asked for: the
 * newest state then, and a client that asks again and again without reading costs one
 * queue entry, not a 0.8 KB x all-symbols copy per request. Its queued kline updates are
 * older than what it carries: they go. */
static st_msg_t *st_client_full_snapshot(struct st_client *c)
{
    for (struct st_sub *x = c->subs; x; x = x->c_next)
        st_outq_clear(&c->q, &x->q[ST_KIND_KLINE]);
    st_msg_t *m = st_hub_snapshot(c, NULL, 0);
    if (!m)
        log_warn("client %llu: out of memory building a snapshot", (unsigned long long)c->id);
    return m;
}

static int st_client_write_batch(struct st_client *c)
{
    char *p = (char *)st_batch_buf + LWS_PRE;
    int n;
    size_t len = st_outq_take_batch(&c->q, p, ST_BATCH_MAX, &n);
    if (lws_write(c->wsi, (unsigned char *)p, len, LWS_WRITE_TEXT) < (int)len)
        return -1;
    st_hub.st.msgs_sent += (uint64_t)n;
    st_hub.st.frames_sent++;
    st_hub.st.bytes_sent += len;
    return 0;
}

int st_client_on_writeable(struct st_client *c)
{
    if (c->close_code) {
        /* We write the close frame ourselves and let lws drop the connection. The lws way
         * (lws_close_reason + return -1) defers the frame to another writeable pass, and
         * on the libuv loop lws 4.1 shuts the socket down before that pass: clients saw
         * 1006 instead of 1001/1008/4008. */
        unsigned char cf[LWS_PRE + 2 + sizeof c->close_reason];
        size_t rl = strlen(c->close_reason);
        cf[LWS_PRE] = (unsigned char)(c->close_code >> 8);
        cf[LWS_PRE + 1] = (unsigned char)c->close_code;
        memcpy(cf + LWS_PRE + 2, c->close_reason, rl);
        lws_write(c->wsi, cf + LWS_PRE, 2 + rl, ST_LWS_WRITE_CLOSE);
        return -1;
    }
    st_msg_t *m = NULL; /* we own one reference to m until it is written */
    if (st_outq_take_ctl(&c->q, &m) && !m)
        m = st_client_full_snapshot(c); /* deferred to now; NULL on OOM (nothing sent) */
    else if (!m && st_outq_batchable(&c->q, ST_BATCH_MAX)) {
        if (st_client_write_batch(c) < 0)
            return -1;
    } else if (!m && !(m = st_outq_take(&c->q))) {
        c->wait_since_ms = 0;
        return 0;
    }
    if (m) {
        size_t len = st_msg_len(m);
        /* lws_write fills the frame header into the LWS_PRE headroom of the shared buffer;
         * it is identical for every client (same length, unmasked), and we are single-threaded. */
        int n = lws_write(c->wsi, (unsigned char *)st_msg_payload(m), len, LWS_WRITE_TEXT);
        if (st_stage_on())
            st_stage_written(m, st_stage_now_us());
        st_msg_unref(m);
        if (n < (int)len)
            return -1;
        st_hub.st.msgs_sent++;
        st_hub.st.frames_sent++;
        st_hub.st.bytes_sent += len;
    }
    if (!st_outq_empty(&c->q)) {
        c->wait_since_ms = cfg_mono_ms();
        lws_callback_on_writable(c->wsi);
    } else {
        c->wait_since_ms = 0;
    }
    return 0;
}
