/* hub.c — symbol state, subscriptions and fan-out. Runs only on the lws service thread.
 *
 * Each update is encoded once into a refcounted st_msg_t; every subscriber's pending
 * slot for that symbol takes a reference. A slot that already holds an unsent update
 * is overwritten (latest wins), so a client's queue never holds more than one update
 * per (symbol, kind) — memory stays bounded however slow it reads. */
#include "streamer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "hash.h"
#include "log.h"

struct st_hub st_hub;

/* ---------------------------------------------------------------- symbols */

int st_hub_init(const struct st_config *cfg, char *errbuf, size_t errlen)
{
    memset(&st_hub, 0, sizeof st_hub);
    st_hub.cfg = cfg;
    st_hub.hcap = 1024;
    while (st_hub.hcap < (size_t)cfg->max_symbols)
        st_hub.hcap *= 2;
    st_hub.htab = calloc(st_hub.hcap, sizeof *st_hub.htab);
    if (!st_hub.htab) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    st_hub.next_id = 1;
    return 0;
}

struct st_symbol *st_hub_find(const char *name)
{
    for (struct st_symbol *s = st_hub.htab[(size_t)kp_fnv1a(name) & (st_hub.hcap - 1)]; s; s = s->hnext)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

struct st_symbol *st_hub_symbol(const char *name, bool from_client)
{
    struct st_symbol *s = st_hub_find(name);
    if (s)
        return s;
    /* The feed is trusted and may exceed the cap; clients cannot grow the table past it. */
    if (from_client && st_hub.nsymbols >= st_hub.cfg->max_symbols)
        return NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (st_ind_init(&s->ind, st_hub.cfg->sma_n) < 0) {
        free(s);
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    s->id = ++st_hub.next_symbol_id;
    size_t b = (size_t)kp_fnv1a(name) & (st_hub.hcap - 1);
    s->hnext = st_hub.htab[b];
    st_hub.htab[b] = s;
    s->next = st_hub.symbols;
    if (st_hub.symbols)
        st_hub.symbols->prev = s;
    st_hub.symbols = s;
    st_hub.nsymbols++;
    st_hub.nplaceholders++; /* until its first kline (st_symbol_traded) */
    return s;
}

/* A placeholder nobody follows any more leaves the table at once (so its slot counts no
 * more against --max-symbols), but stays in the all-symbols list until st_hub_reap: a walk
 * of that list may be in progress (a fan-out that closed a slow client got us here). */
static void st_symbol_kill(struct st_symbol *s)
{
    struct st_symbol **pp = &st_hub.htab[(size_t)kp_fnv1a(s->name) & (st_hub.hcap - 1)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    s->dead = true;
    s->hnext = st_hub.dead;
    st_hub.dead = s;
    st_hub.nsymbols--;
    st_hub.nplaceholders--;
    st_hub.st.placeholders_freed++;
}

static void st_symbol_free(struct st_symbol *s)
{
    st_msg_unref(s->msg);
    st_ind_free(&s->ind);
    free(s);
}

void st_hub_reap(void)
{
    while (st_hub.dead) {
        struct st_symbol *s = st_hub.dead;
        st_hub.dead = s->hnext;
        if (s->prev)
            s->prev->next = s->next;
        else
            st_hub.symbols = s->next;
        if (s->next)
            s->next->prev = s->prev;
        st_symbol_free(s);
    }
}

/* ---------------------------------------------------------------- subscription sets */

struct st_sub *st_hub_sub(struct st_client *c, const struct st_symbol *s)
{
    return st_sset_find(&c->sset, s);
}

/* ---------------------------------------------------------------- subscriptions */

int st_hub_subscribe(struct st_client *c, struct st_symbol *s)
{
    if (st_hub_sub(c, s))
        return 0;
    struct st_sub *sub = calloc(1, sizeof *sub);
    if (!sub)
        return -1;
    sub->c = c;
    sub->s = s;
    if (st_sset_add(&c->sset, sub, c->nsubs) < 0) {
        free(sub);
        return -1;
    }
    sub->s_next = s->subs;
    if (s->subs)
        s->subs->s_prev = sub;
    s->subs = sub;
    s->nsubs++;
    sub->c_next = c->subs;
    if (c->subs)
        c->subs->c_prev = sub;
    c->subs = sub;
    c->nsubs++;
    c->nplaceholders += !s->has_data;
    return 1;
}

static void st_sub_free(struct st_sub *sub)
{
    struct st_client *c = sub->c;
    struct st_symbol *s = sub->s;
    for (int k = 0; k < ST_KIND_N; k++)
        st_outq_clear(&c->q, &sub->q[k]); /* the queue lets go of the slot before it is freed */
    st_sset_del(&c->sset, sub);
    if (sub->s_prev)
        sub->s_prev->s_next = sub->s_next;
    else
        s->subs = sub->s_next;
    if (sub->s_next)
        sub->s_next->s_prev = sub->s_prev;
    s->nsubs--;
    if (sub->c_prev)
        sub->c_prev->c_next = sub->c_next;
    else
        c->subs = sub->c_next;
    if (sub->c_next)
        sub->c_next->c_prev = sub->c_prev;
    c->nsubs--;
    c->nplaceholders -= !s->has_data;
    free(sub);
    if (!s->has_data && !s->nsubs)
        st_symbol_kill(s);
}

void st_hub_unfollowed(struct st_symbol *s)
{
    if (!s->has_data && !s->nsubs && !s->dead)
        st_symbol_kill(s);
}

void st_hub_unsubscribe(struct st_client *c, struct st_symbol *s)
{
    struct st_sub *x = st_hub_sub(c, s);
    if (!x)
        return;
    c->wild_full = false; /* a later ["*"] must add it back */
    st_sub_free(x);
}

static void st_hub_wildcard_off(struct st_client *c)
{
    if (!c->wildcard)
        return;
    if (c->w_prev)
        c->w_prev->w_next = c->w_next;
    else
        st_hub.wildcards = c->w_next;
    if (c->w_next)
        c->w_next->w_prev = c->w_prev;
    c->w_prev = c->w_next = NULL;
    c->wildcard = false;
    c->wild_full = false;
}

void st_hub_unsubscribe_all(struct st_client *c)
{
    st_hub_wildcard_off(c);
    while (c->subs)
        st_sub_free(c->subs);
    c->nexplicit = 0;
    st_sset_free(&c->sset);
}

int st_hub_wildcard(struct st_client *c)
{
    /* Already following every traded symbol (new ones join at their first kline): O(1). */
    if (c->wild_full)
        return 0;
    if (!c->wildcard) {
        c->wildcard = true;
        c->w_prev = NULL;
        c->w_next = st_hub.wildcards;
        if (st_hub.wildcards)
            st_hub.wildcards->w_prev = c;
        st_hub.wildcards = c;
    }
    /* Placeholders are not followed by "*": only names that traded. */
    for (struct st_symbol *s = st_hub.symbols; s; s = s->next)
        if (s->has_data && st_hub_subscribe(c, s) < 0)
            return -1;
    c->wild_full = true;
    return 0;
}

/* A placeholder's first kline: it is a real symbol now, and "*" subscribers follow it. */
static void st_symbol_traded(struct st_symbol *s)
{
    for (struct st_sub *x = s->subs; x; x = x->s_next)
        x->c->nplaceholders--;
    st_hub.nplaceholders--;
    s->has_data = true;
    for (struct st_client *c = st_hub.wildcards; c; c = c->w_next)
        if (st_hub_subscribe(c, s) < 0)
            log_warn("client %llu: out of memory following %s", (unsigned long long)c->id, s->name);
}

/* ---------------------------------------------------------------- snapshot */

static int st_snap_add(st_msg_t *m, struct st_symbol *s, bool *first)
{
    if (!s->has_data || s->stale || !s->msg)
        return 0;
    if (!*first && st_msg_append(m, ",", 1) < 0)
        return -1;
    *first = false;
    return st_msg_append(m, st_msg_payload(s->msg), st_msg_len(s->msg));
}

static bool st_client_has(struct st_client *c, const char *sym)
{
    struct st_symbol *s = st_hub_find(sym);
    return s && st_hub_sub(c, s);
}

/* Bytes the updates of a snapshot take, so it is allocated once: at 2,000 symbols growing
 * it by doubling copied ~1.6 MB more per snapshot. */
static size_t st_snap_size(struct st_client *c, struct st_symbol **syms, int nsyms)
{
    size_t n = 1024;
    if (syms) {
        for (int i = 0; i < nsyms; i++)
            n += syms[i]->msg ? st_msg_len(syms[i]->msg) + 1 : 0;
    } else {
        for (struct st_sub *x = c->subs; x; x = x->c_next)
            n += x->s->msg ? st_msg_len(x->s->msg) + 1 : 0;
    }
    return n;
}

st_msg_t *st_hub_snapshot(struct st_client *c, struct st_symbol **syms, int nsyms)
{
    st_msg_t *m = st_msg_new(st_snap_size(c, syms, nsyms));
    if (!m)
        return NULL;
    bool first = true;
    int rc = st_msg_appendf(m, "{\"type\":\"snapshot\",\"time\":%lld,\"updates\":[",
                            (long long)cfg_now_ms());
    if (syms) {
        for (int i = 0; rc == 0 && i < nsyms; i++)
            rc = st_snap_add(m, syms[i], &first);
    } else {
        for (struct st_sub *x = c->subs; rc == 0 && x; x = x->c_next)
            rc = st_snap_add(m, x->s, &first);
    }
    /* Recent alerts of the symbols the client follows, oldest first. */
    if (rc == 0)
        rc = st_msg_append(m, "],\"alerts\":[", 12);
    first = true;
    int cap = (int)(sizeof st_hub.alerts / sizeof st_hub.alerts[0]);
    for (int i = 0; rc == 0 && i < st_hub.alerts_len; i++) {
        st_msg_t *a = st_hub.alerts[(st_hub.alerts_head + cap - st_hub.alerts_len + i) % cap];
        /* The alert payload starts with {"type":"alert","symbol":"NAME" */
        const char *p = strstr(st_msg_payload(a), "\"symbol\":\"");
        char sym[KLINE_SYMBOL_MAX] = "";
        if (p && sscanf(p + 10, "%23[A-Z0-9]", sym) == 1 && (c->wildcard || st_client_has(c, sym))) {
            if (!first)
                rc = st_msg_append(m, ",", 1);
            first = false;
            if (rc == 0)
                rc = st_msg_append(m, st_msg_payload(a), st_msg_len(a));
        }
    }
    return st_msg_end(m, rc, "]}");
}

/* ---------------------------------------------------------------- ingest */

static st_msg_t *st_encode_update(struct st_symbol *s)
{
    char kj[KLINE_JSON_MAX];
    int kn = kline_format(&s->last, kj, sizeof kj);
    if (kn < 0)
        return NULL;
    st_msg_t *m = st_msg_new((size_t)kn + 512);
    if (!m)
        return NULL;
    int rc = st_msg_puts(m, "{\"type\":\"kline\",\"symbol\":\"");
    rc |= st_msg_puts(m, s->name);
    rc |= st_msg_puts(m, "\",\"kline\":");
    rc |= st_msg_append(m, kj, (size_t)kn);
    rc |= st_ind_json(&s->ind, m);
    rc |= st_msg_puts(m, ",\"ingest_time\":");
    rc |= st_msg_put_i64(m, s->ingest_ms);
    rc |= st_msg_puts(m, "}");
    if (rc < 0) {
        st_msg_unref(m);
        return NULL;
    }
    return m;
}

static void st_fanout(struct st_symbol *s, enum st_kind kind, st_msg_t *m)
{
    /* st_sub_put may close a slow client, which frees that client's subscriptions
     * (only its own, one per symbol), so take the next link first. */
    for (struct st_sub *x = s->subs, *nx; x; x = nx) {
        nx = x->s_next;
        st_client_update(x->c, &x->q[kind], m);
    }
}

static void st_hub_alert(struct st_symbol *s, enum st_alert_dir dir, double price, double sma)
{
    st_msg_t *m = st_msg_new(256);
    if (!m)
        return;
    if (st_msg_appendf(m,
                       "{\"type\":\"alert\",\"symbol\":\"%s\",\"direction\":\"%s\","
                       "\"price\":%.10g,\"sma\":%.10g,\"time\":%lld,\"sma_n\":%d}",
                       s->name, dir == ST_ALERT_BULLISH ? "bullish" : "bearish", price, sma,
                       (long long)s->last.open_time, st_hub.cfg->sma_n) < 0) {
        st_msg_unref(m);
        return;
    }
    st_hub.st.alerts++;
    int cap = (int)(sizeof st_hub.alerts / sizeof st_hub.alerts[0]);
    if (st_hub.alerts_len == cap)
        st_msg_unref(st_hub.alerts[st_hub.alerts_head]);
    else
        st_hub.alerts_len++;
    st_hub.alerts[st_hub.alerts_head] = m; /* the ring takes the creation reference */
    st_hub.alerts_head = (st_hub.alerts_head + 1) % cap;
    st_fanout(s, ST_KIND_ALERT, m);
}

/* The same bar again: a hot-standby producer pair (or a rebuilt Kafka client) puts two
 * copies of a kline in the topic. Equal in every market field and in closed, it would
 * push the same bar to every browser again (only ingest_time differs), so it is dropped.
 * source, event_time and trade ids are not compared: they tell which path (WebSocket or
 * REST) the copy took, not what the bar is, and the latest copy of a bar keeps the
 * first one's. */
static bool st_hub_repeat(const kline_t *a, const kline_t *b)
{
    return a->open_time == b->open_time && a->close_time == b->close_time && a->closed == b->closed &&
           a->trades == b->trades && !strcmp(a->interval, b->interval) && !strcmp(a->open, b->open) &&
           !strcmp(a->high, b->high) && !strcmp(a->low, b->low) && !strcmp(a->close, b->close) &&
           !strcmp(a->volume, b->volume) && !strcmp(a->quote_volume, b->quote_volume) &&
           !strcmp(a->taker_buy_volume, b->taker_buy_volume) &&
           !strcmp(a->taker_buy_quote_volume, b->taker_buy_quote_volume);
}

void st_hub_ingest(const kline_t *k, int64_t ingest_ms)
{
    struct st_symbol *s = st_hub_symbol(k->symbol, false);
    if (!s) {
        st_hub.st.klines_ignored++;
        return;
    }
    /* Latest wins by open_time: replays or reordered partitions never move a price back. */
    if (s->has_data && k->open_time < s->last.open_time) {
        st_hub.st.klines_ignored++;
        return;
    }
    /* (a stale symbol is pushed again: its clients were told "stale" and wait for data) */
    if (s->has_data && !s->stale && st_hub_repeat(k, &s->last)) {
        st_hub.st.klines_repeated++;
        s->updated_mono_ms = cfg_mono_ms(); /* the feed still carries it: not stale */
        return;
    }
    st_hub.st.klines_in++;
    bool first = !s->has_data;
    if (first)
        st_symbol_traded(s);
    s->last = *k;
    s->stale = false;
    s->ingest_ms = ingest_ms;
    s->updated_mono_ms = cfg_mono_ms();
    int64_t ev = k->event_time ? k->event_time : ingest_ms;
    if (ev > st_hub.latest_event_ms)
        st_hub.latest_event_ms = ev;
    if (ingest_ms > st_hub.latest_ingest_ms)
        st_hub.latest_ingest_ms = ingest_ms;

    enum st_alert_dir dir = ST_ALERT_NONE;
    double price = 0, sma = 0;
    if (!strcmp(k->interval, "1s"))
        st_ind_update(&s->ind, k, &dir, &price, &sma);

    if (first && !strcmp(k->interval, "1s")) {
        /* history for the SMA, so alerts work before N bars have closed live */
        struct st_db_req req;
        memset(&req, 0, sizeof req);
        snprintf(req.symbol, sizeof req.symbol, "%s", s->name);
        req.to = s->ind.bar.open_time;
        req.limit = st_hub.cfg->sma_n;
        struct st_db_job *j = st_db_submit(ST_DB_SEED, &req, NULL);
        (void)j; /* owned by db.c until st_hub_seed_done gets it back */
    }

    st_msg_t *m = st_encode_update(s);
    if (!m) {
        log_warn("%s: cannot encode update (out of memory)", s->name);
        return;
    }
    m->ev_ms = st_stage_on() ? k->event_time : 0;
    st_msg_unref(s->msg);
    s->msg = m; /* the symbol keeps the creation reference; slots take their own */
    st_fanout(s, ST_KIND_KLINE, m);
    if (dir != ST_ALERT_NONE)
        st_hub_alert(s, dir, price, sma);
}

void st_hub_seed_done(struct st_db_job *j)
{
    const char *name;
    int64_t bar_open;
    const double *closes;
    int n = st_db_job_closes(j, &name, &bar_open, &closes);
    struct st_symbol *s = n > 0 ? st_hub_find(name) : NULL;
    if (s && s->ind.count == 0) {
        st_ind_seed(&s->ind, bar_open, closes, n);
        log_debug("%s: SMA seeded with %d closed 1m bars from the database", name, n);
        /* re-encode the latest update so snapshots and subscribers see the SMA now */
        st_msg_t *m = st_encode_update(s);
        if (m) {
            st_msg_unref(s->msg);
            s->msg = m;
            st_fanout(s, ST_KIND_KLINE, m);
        }
    }
    st_db_job_free(j);
}

/* ---------------------------------------------------------------- periodic */

static void st_hub_scan_stale(int64_t now, int64_t stale_ms)
{
    for (struct st_symbol *s = st_hub.symbols; s; s = s->next) {
        if (!s->has_data || s->stale || now - s->updated_mono_ms < stale_ms)
            continue;
        s->stale = true;
        log_info("%s: no update for %d s, marked stale", s->name, st_hub.cfg->stale_secs);
        char buf[96];
        int n = snprintf(buf, sizeof buf, "{\"type\":\"stale\",\"symbol\":\"%s\"}", s->name);
        st_msg_t *m = st_msg_dup(buf, (size_t)n);
        if (!m)
            continue;
        st_fanout(s, ST_KIND_KLINE, m);
        st_msg_unref(m);
    }
}

void st_hub_tick(int64_t now)
{
    int64_t stale_ms = (int64_t)st_hub.cfg->stale_secs * 1000;
    /* staleness is counted in seconds: a walk of every symbol once a second is enough (at
     * every 250 ms tick, the walk of 2,000 was ~3 % of the streamer's CPU) */
    if (now >= st_hub.next_stale_scan_ms) {
        st_hub.next_stale_scan_ms = now + 1000;
        st_hub_scan_stale(now, stale_ms);
    }
    for (struct st_client *c = st_hub.clients; c; c = c->next) {
        if (c->close_code || !c->wait_since_ms)
            continue;
        if (now - c->wait_since_ms > st_hub.cfg->slow_client_ms) {
            st_hub.st.slow_closed++;
            log_info("client %llu: no progress for %lld ms with %d updates pending, closing as too slow",
                     (unsigned long long)c->id, (long long)(now - c->wait_since_ms), c->q.len);
            st_client_close(c, 4008, "too slow");
        }
    }
    st_hub_reap(); /* placeholders of clients closed during a fan-out */
}

void st_hub_free(void)
{
    while (st_hub.clients)
        st_client_free(st_hub.clients);
    st_hub_reap();
    struct st_symbol *s = st_hub.symbols;
    while (s) {
        struct st_symbol *n = s->next;
        st_symbol_free(s);
        s = n;
    }
    int cap = (int)(sizeof st_hub.alerts / sizeof st_hub.alerts[0]);
    for (int i = 0; i < st_hub.alerts_len; i++)
        st_msg_unref(st_hub.alerts[(st_hub.alerts_head + cap - 1 - i) % cap]);
    free(st_hub.htab);
    memset(&st_hub, 0, sizeof st_hub);
}
