/* loop.c — running: the advisory lock, "roll up until idle", waiting for NOTIFY
 * kline_checkpoint with PQsocket + poll, the --once run and the --every loop that
 * survives PostgreSQL restarts. */
#include "agg.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "log.h"
#include "pgx.h"
#include "sig.h"

#define AGG_RETENTION_EVERY_MS 60000 /* loop mode: one retention pass a minute */
#define AGG_RETENTION_LOOP_BATCHES 20 /* ...of at most this many batches, so bars never wait long */
#define AGG_LOCK_RETRY_MS 5000

int agg_try_lock(PGconn *c, char *errbuf, size_t errlen)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", PGX_LOCK_AGGREGATOR);
    char err[512];
    PGresult *r = pgx_query(c, sql, 0, NULL, err, sizeof err);
    if (!r || PQntuples(r) != 1) {
        snprintf(errbuf, errlen, "advisory lock: %s", r ? "no row" : err);
        PQclear(r);
        return -1;
    }
    int got = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return got;
}

/* Frees every queued notification; returns how many there were. */
static int agg_drain_notifies(PGconn *c)
{
    int n = 0;
    PGnotify *nt;
    while ((nt = PQnotifies(c)) != NULL) {
        n++;
        PQfreemem(nt);
    }
    return n;
}

int agg_wait_notify(PGconn *c, int timeout_ms)
{
    /* Notifications that arrived while a run was busy are already buffered. */
    if (!PQconsumeInput(c))
        return -1;
    if (agg_drain_notifies(c) > 0)
        return 1;
    struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
    if (p.fd < 0)
        return -1;
    int r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    if (r == 0)
        return 0;
    /* Readable: a notification, or EOF when the server went away (consume fails). */
    if (!PQconsumeInput(c))
        return -1;
    return agg_drain_notifies(c) > 0 ? 1 : 0;
}

int agg_run_until_idle(PGconn *c, const struct agg_config *cfg, int *did_work,
                       char *errbuf, size_t errlen)
{
    int64_t t0 = cfg_mono_us();
    struct agg_tx_result res;
    *did_work = 0;
    do {
        if (agg_rollup_tx(c, cfg, &res, errbuf, errlen) < 0) {
            atomic_fetch_add_explicit(&agg_stats.run_errors, 1, memory_order_relaxed);
            return -1;
        }
        agg_stats_add_tx(&res);
        long bars = 0;
        for (int i = 0; i < AGG_MAX_INTERVALS; i++)
            bars += res.bars[i];
        if (res.checkpoints || bars || res.buckets[0])
            *did_work = 1;
        log_debug("transaction: %ld checkpoints, %ld 1m buckets, %ld bars%s", res.checkpoints,
                  res.buckets[0], bars, res.more ? " (more to do)" : "");
    } while (res.more && !sig_stop);
    agg_stats_refresh_pending(c, cfg);
    atomic_fetch_add_explicit(&agg_stats.runs, 1, memory_order_relaxed);
    atomic_store_explicit(&agg_stats.last_run_us, cfg_mono_us() - t0, memory_order_relaxed);
    return 0;
}

static void agg_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL); /* a signal cuts it short, which is what we want */
}

/* Connects (retrying with backoff until it works or a stop is requested), applies the
 * migrations (cheap when done; PostgreSQL may have been unreachable at start-up) and
 * prepares the session. Returns the connection (caller owns it: PQfinish) or NULL on stop. */
static PGconn *agg_connect_forever(const struct agg_config *cfg)
{
    char err[512];
    int backoff = 500;
    while (!sig_stop) {
        PGconn *c = pgx_connect(cfg->db_url, 30000, &sig_stop, err, sizeof err);
        if (c && pgx_migrate(c, err, sizeof err) == 0 &&
            agg_session_init(c, cfg, err, sizeof err) == 0)
            return c;
        PQfinish(c);
        if (sig_stop)
            break;
        log_warn("PostgreSQL: %s; retrying in %d ms", err, backoff);
        agg_sleep_ms(backoff);
        backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
    }
    return NULL;
}

/* Waits until deadline (monotonic ms) or a notification. -1 when the connection broke. */
static int agg_wait_until(PGconn *c, int64_t deadline)
{
    while (!sig_stop) {
        int64_t left = deadline - cfg_mono_ms();
        if (left <= 0)
            return 0;
        int r = agg_wait_notify(c, left > 1000000 ? 1000000 : (int)left);
        if (r != 0)
            return r;
    }
    return 0;
}

/* --once after connecting: migrations, session, lock, rollup, retention. Returns the exit
 * code; *ran is set when the rollup ran (there is a result to tell), *did when it did work. */
static int agg_once_on(PGconn *c, const struct agg_config *cfg, int *ran, int *did)
{
    char err[512];
    if (pgx_migrate(c, err, sizeof err) < 0 || agg_session_init(c, cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    int got = agg_try_lock(c, err, sizeof err);
    if (got < 0)
        log_error("%s", err);
    else if (!got)
        log_info("another aggregator is running; nothing to do");
    if (got <= 0)
        return got < 0;
    *ran = 1;
    if (agg_run_until_idle(c, cfg, did, err, sizeof err) < 0) {
        log_error("rollup failed (rolled back; the next run retries): %s", err);
        return 1;
    }
    if (cfg->n_retain && !sig_stop && agg_retention_run(c, cfg, 0, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    if (!sig_stop && agg_compact_run(c, cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    return 0;
}

int agg_once(const struct agg_config *cfg)
{
    char err[512];
    int ran = 0, did = 0;
    PGconn *c = pgx_connect(cfg->db_url, cfg->connect_timeout_s * 1000, &sig_stop, err, sizeof err);
    if (!c) {
        log_error("cannot connect to PostgreSQL: %s", err);
        return 1;
    }
    int rc = agg_once_on(c, cfg, &ran, &did);
    PQfinish(c); /* also releases the session advisory lock */
    if (!ran)
        return rc;
    if (rc == 0 && !did)
        log_info("nothing to do");
    else
        agg_stats_log("done");
    long long bad = atomic_load(&agg_stats.bad_state);
    if (rc == 0 && bad && cfg->strict) {
        log_error("%lld bad checkpoints found (--strict); see table rejected", bad);
        rc = 1;
    }
    return rc;
}

/* The --every loop's state. It owns the connection: PQfinish on a reconnect and at the end. */
struct agg_loop_state {
    PGconn *c;
    int have_lock, said_busy, fail_backoff;
    int64_t next_retention, next_stats, next_compact; /* monotonic ms */
};

/* Makes sure there is a working connection (reconnecting after a loss): 0, or -1 on stop. */
static int agg_loop_connect(struct agg_loop_state *s, const struct agg_config *cfg)
{
    if (s->c && !pgx_is_broken(s->c))
        return 0;
    if (s->c) {
        log_warn("PostgreSQL connection lost; reconnecting");
        atomic_fetch_add_explicit(&agg_stats.reconnects, 1, memory_order_relaxed);
        PQfinish(s->c);
    }
    s->have_lock = 0; /* a session lock dies with its session */
    s->c = agg_connect_forever(cfg);
    return s->c ? 0 : -1;
}

/* 1 when this process holds the aggregator lock; 0 when not yet (it waited: try again). */
static int agg_loop_lock(struct agg_loop_state *s)
{
    char err[512];
    if (s->have_lock)
        return 1;
    int got = agg_try_lock(s->c, err, sizeof err);
    if (got < 0) {
        log_warn("%s", err);
        agg_sleep_ms(1000);
        return 0;
    }
    if (!got) {
        atomic_fetch_add_explicit(&agg_stats.lock_busy, 1, memory_order_relaxed);
        if (!s->said_busy++)
            log_info("another aggregator is running; waiting for its lock");
        /* Checkpoint notifications wake us early too; harmless, we just retry. */
        agg_wait_until(s->c, cfg_mono_ms() + AGG_LOCK_RETRY_MS);
        return 0;
    }
    s->have_lock = 1;
    if (s->said_busy)
        log_info("took over the aggregator lock");
    s->said_busy = 0;
    return 1;
}

/* One run until idle: 0, or -1 after the failure's back-off. */
static int agg_loop_run(struct agg_loop_state *s, const struct agg_config *cfg)
{
    char err[512];
    int did;
    if (agg_run_until_idle(s->c, cfg, &did, err, sizeof err) == 0) {
        s->fail_backoff = 1000;
        return 0;
    }
    /* A lost connection is retried at once (reconnect at the loop top); any other failure
     * would most likely fail again, so back off up to 30 s. */
    log_error("rollup failed, will retry: %s", err);
    if (!pgx_is_broken(s->c)) {
        agg_sleep_ms(s->fail_backoff);
        s->fail_backoff = s->fail_backoff * 2 > 30000 ? 30000 : s->fail_backoff * 2;
    }
    return -1;
}

/* What is due after a run (retention, the stats line), then the wait for the next run:
 * the period, a NOTIFY, or the next chore, whichever comes first. */
static void agg_loop_chores_and_wait(struct agg_loop_state *s, const struct agg_config *cfg)
{
    char err[512];
    int64_t now = cfg_mono_ms();
    if (cfg->n_retain && now >= s->next_retention && !sig_stop) {
        int rr = agg_retention_run(s->c, cfg, AGG_RETENTION_LOOP_BATCHES, err, sizeof err);
        if (rr < 0)
            log_error("%s", err);
        /* Unfinished retention continues on the next tick, after the new bars. */
        s->next_retention = rr == 1 ? now : now + AGG_RETENTION_EVERY_MS;
    }
    if (now >= s->next_compact && !sig_stop) {
        if (agg_compact_run(s->c, cfg, err, sizeof err) < 0)
            log_error("%s", err);
        s->next_compact = now + AGG_RETENTION_EVERY_MS;
    }
    if (cfg->stats_interval_s > 0 && now >= s->next_stats) {
        agg_stats_log("stats");
        s->next_stats = now + (int64_t)cfg->stats_interval_s * 1000;
    }
    int64_t deadline = cfg_mono_ms() + (int64_t)cfg->every_s * 1000;
    if (cfg->stats_interval_s > 0 && s->next_stats < deadline)
        deadline = s->next_stats;
    if (cfg->n_retain && s->next_retention < deadline)
        deadline = s->next_retention;
    agg_wait_until(s->c, deadline); /* a broken connection is noticed at the loop top */
}

static void agg_loop_announce(const struct agg_config *cfg)
{
    char ivs[64] = "";
    for (int i = 0; i < cfg->n_iv; i++)
        snprintf(ivs + strlen(ivs), sizeof ivs - strlen(ivs), "%s%s", i ? "," : "", cfg->iv[i]->name);
    log_info("looping every %d s%s; intervals %s%s", cfg->every_s,
             cfg->listen ? ", woken by NOTIFY " PGX_NOTIFY_CHANNEL : "", ivs,
             cfg->n_retain ? "; retention on" : "");
}

int agg_loop(const struct agg_config *cfg)
{
    struct agg_loop_state s = {
        .fail_backoff = 1000, .next_stats = cfg_mono_ms() + (int64_t)cfg->stats_interval_s * 1000,
    };
    agg_loop_announce(cfg);
    while (!sig_stop) {
        if (agg_loop_connect(&s, cfg) < 0)
            break;
        if (agg_loop_lock(&s) && agg_loop_run(&s, cfg) == 0)
            agg_loop_chores_and_wait(&s, cfg);
    }
    PQfinish(s.c);
    agg_stats_log("stopped");
    return 0;
}
