/* loop.c — the lws service thread's loop: serving passes (libev, libuv or lws's poll()), the
 * hand-off from the feed and database threads (they wake the loop with lws_cancel_service,
 * the loop drains their queues here), the 250 ms tick and the stats line.
 * Only the lws thread runs this file, so its state needs no lock. */
#include "streamer.h"

#include <stdio.h>

#include <ev.h>
#include <uv.h>

#include "cfg.h"
#include "log.h"
#include "sig.h"

static const struct st_config *lp_cfg;
static struct lws_context *lp_ctx;
/* --event-loop uv: our own libuv loop (epoll), handed to lws as a foreign loop, so a
 * service pass costs O(ready sockets) instead of poll()'s O(all sockets). */
static uv_loop_t st_uv;
static bool st_use_uv;
/* --event-loop ev (the default): a libev loop (epoll) instead. libuv's uv_poll_start removes a
 * socket from epoll and adds it back on every change of its events (EPOLL_CTL_DEL + ADD, twice
 * per frame sent: writeable wanted, then not): ~20 % of the streamer's CPU at 1,000 clients x
 * 5 symbols (perf). libev changes the events in place (EPOLL_CTL_MOD): 15-25 % less CPU at
 * 1,000-10,000 clients in A/B runs (bench/results/latency_breakdown.md). */
static struct ev_loop *st_ev;
static lws_sorted_usec_list_t st_tick_sul;
static int64_t st_next_stats;

/* ---------------------------------------------------------------- feed / db hand-off */

static lws_sorted_usec_list_t st_drain_sul;
static bool st_drain_scheduled;
static int64_t st_last_drain_us;
static bool st_drain_backlog; /* the last drain stopped at its bound: items are waiting */

/* Records applied per wake-up at most; the rest wait for the next pass, after the writes
 * this one queued. Large enough for a whole 2,000-symbol burst: when the loop is behind,
 * everything that has arrived is applied before the writes, so a client gets its burst in
 * one batch frame instead of one frame per slice (a frame costs a send(), two epoll_ctl and
 * the peer's wake-up: most of the CPU at 1,000 clients). When the loop keeps up, a pass
 * finds only what one fetch brought, and nothing waits for the rest. */
#define ST_DRAIN_MAX 4096

static void st_drain_feed(void)
{
    static struct st_feed_item items[256]; /* lws thread only */
    st_last_drain_us = cfg_mono_us();
    int total = 0;
    do {
        int n = st_feed_drain(items, (int)(sizeof items / sizeof items[0]), &st_drain_backlog);
        int64_t at = n && st_stage_on() ? st_stage_now_us() : 0;
        for (int i = 0; i < n; i++) {
            if (at)
                st_stage_item(&items[i].k, items[i].ingest_ms, items[i].consumed_us, at);
            st_hub_ingest(&items[i].k, items[i].ingest_ms);
        }
        total += n;
    } while (st_drain_backlog && total + 256 <= ST_DRAIN_MAX);
    /* Nobody else wakes us for what is left: the feed thread sends no wake-up until the
     * queue has been emptied, librdkafka's queue event fires only when it was empty. */
    if (st_drain_backlog)
        lws_cancel_service(lp_ctx);
}

static void st_drain_timer(lws_sorted_usec_list_t *sul)
{
    st_drain_scheduled = false;
    st_drain_feed();
}

void st_loop_drain(void)
{
    /* Feed: at most one drain per --coalesce-ms; a wake-up inside the window is deferred
     * to its end (the feed sends no further wake-up meanwhile). A backlog left by the
     * previous drain is not a new trickle: it is taken on the next pass, after the writes
     * the last chunk queued, so a burst (every symbol closes its second at once) is not
     * stretched over several windows. */
    int64_t now = cfg_mono_us(), win = (int64_t)lp_cfg->coalesce_ms * 1000;
    if (st_drain_backlog || now - st_last_drain_us >= win) {
        st_drain_feed();
    } else if (!st_drain_scheduled) {
        st_drain_scheduled = true;
        lws_sul_schedule(lp_ctx, 0, &st_drain_sul, st_drain_timer, st_last_drain_us + win - now);
    }
    struct st_db_job *j;
    while ((j = st_db_take_done())) {
        if (st_db_job_kind(j) == ST_DB_SEED)
            st_hub_seed_done(j);
        else
            st_http_job_done(j);
    }
}

/* ---------------------------------------------------------------- timer, logs */

static void st_tick(lws_sorted_usec_list_t *sul)
{
    int64_t now = cfg_mono_ms();
    st_hub_tick(now);
    if (lp_cfg->stats_interval > 0 && now >= st_next_stats) {
        st_next_stats = now + (int64_t)lp_cfg->stats_interval * 1000;
        log_info("stats: clients=%d symbols=%d klines=%llu sent=%llu conflated=%llu slow_closed=%llu "
                 "rejected=%llu lag=%lld",
                 st_hub.nclients, st_hub.nsymbols, (unsigned long long)st_hub.st.klines_in,
                 (unsigned long long)st_hub.st.msgs_sent, (unsigned long long)st_hub.st.conflated,
                 (unsigned long long)st_hub.st.slow_closed,
                 (unsigned long long)atomic_load(&st_feed_rejected),
                 (long long)atomic_load(&st_feed_lag));
    }
    lws_sul_schedule(lp_ctx, 0, sul, st_tick, 250 * LWS_US_PER_MS);
}

int st_loop_init(const struct st_config *cfg, void **loop, char *errbuf, size_t errlen)
{
    lp_cfg = cfg;
    st_stage_enable(cfg->stage_stamps); /* before the feed thread starts reading the flag */
    st_use_uv = cfg->event_loop_uv;
    *loop = NULL;
    if (cfg->event_loop_ev) {
        /* no signal handling of its own: SIGINT/SIGTERM stay with sig.c */
        st_ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
        if (!st_ev) {
            snprintf(errbuf, errlen, "cannot create the libev loop");
            return -1;
        }
        *loop = st_ev;
        return 0;
    }
    if (!st_use_uv)
        return 0;
    if (uv_loop_init(&st_uv)) {
        snprintf(errbuf, errlen, "cannot create the libuv loop");
        return -1;
    }
    *loop = &st_uv;
    return 0;
}

void st_loop_start(struct lws_context *ctx)
{
    lp_ctx = ctx;
    lws_sul_schedule(lp_ctx, 0, &st_tick_sul, st_tick, 250 * LWS_US_PER_MS);
}

/* One pass: wait for events (at most until the next lws timer, <= 250 ms) and serve them. */
static int st_service_once(void)
{
    if (st_use_uv) {
        uv_run(&st_uv, UV_RUN_ONCE);
        return 0;
    }
    if (st_ev) {
        ev_run(st_ev, EVRUN_ONCE);
        return 0;
    }
    return lws_service(lp_ctx, 0);
}

void st_loop_run(void)
{
    while (!sig_stop)
        if (st_service_once() < 0)
            break;
    /* Going away: tell every client (1001) and give them a moment to receive it. */
    log_info("stopping: closing %d clients", st_hub.nclients);
    st_hub.stopping = true;
    for (struct st_client *c = st_hub.clients; c; c = c->next)
        st_client_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "going away");
    int64_t until = cfg_mono_ms() + 3000;
    while (st_hub.nclients > 0 && cfg_mono_ms() < until)
        if (st_service_once() < 0)
            break;
}

void st_loop_stop(void)
{
    if (!lp_ctx)
        return;
    lws_sul_cancel(&st_tick_sul);
    lws_sul_cancel(&st_drain_sul);
    lp_ctx = NULL;
}

void st_loop_close(void)
{
    if (st_ev) {
        ev_loop_destroy(st_ev);
        st_ev = NULL;
    }
    if (!st_use_uv)
        return;
    /* lws closes its handles asynchronously: let the loop finish them (bounded) */
    for (int i = 0; i < 1000 && uv_run(&st_uv, UV_RUN_NOWAIT); i++)
        ;
    if (uv_loop_close(&st_uv))
        log_debug("libuv loop closed with handles left");
    st_use_uv = false;
}
