/* backfill.c — REST gap filling on worker threads, so the WebSocket loop never waits
 * on HTTP. A symbol with a gap is queued once (seq.c sets backfilling first); a worker
 * fetches the gap page by page (limit 1000, paging by startTime) and hands each page
 * to seq_rest, then asks seq_next_gap whether held live klines now follow on.
 *
 * Rate limits are shared by all workers: a 429/418 Retry-After pauses everyone, and
 * so does X-MBX-USED-WEIGHT-1M near --rest-weight-limit (until the next minute). */
#include "prod.h"
#include "rest.h"
#include "restparse.h"
#include "cfg.h"
#include "log.h"
#include "thread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BF_PAGE 1000
#define BF_MAX_WORKERS 16
#define BF_TAIL_TRIES 2        /* re-asks for a gap's missing tail before skipping it */
#define BF_TAIL_WAIT_MS 1000

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    prod_sym_t **q;          /* ring of nsyms entries: a symbol is queued at most once */
    int qhead, qlen, qcap;
    int busy;                /* jobs being worked on */
    int64_t paused_until;    /* wall ms; all workers wait until then */
    pthread_t th[BF_MAX_WORKERS];
    int nth;
} bf = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

void bf_enqueue(prod_sym_t *s)
{
    pthread_mutex_lock(&bf.mu);
    if (bf.qlen < bf.qcap) {
        bf.q[(bf.qhead + bf.qlen++) % bf.qcap] = s;
        atomic_fetch_add_explicit(&prod_stats.backfill_jobs, 1, memory_order_relaxed);
    } else {
        log_error("%s: backfill queue full (cannot happen: one slot per symbol)", s->name);
    }
    pthread_cond_signal(&bf.cv);
    pthread_mutex_unlock(&bf.mu);
}

int bf_idle(void)
{
    pthread_mutex_lock(&bf.mu);
    int idle = bf.qlen == 0 && bf.busy == 0;
    pthread_mutex_unlock(&bf.mu);
    return idle;
}

/* Sleeps up to ms, waking early when the program stops. 0 slept, -1 stopping. */
static int bf_nap(int64_t ms)
{
    int64_t end = cfg_mono_ms() + ms;
    while (!prod_stopping) {
        int64_t left = end - cfg_mono_ms();
        if (left <= 0)
            return 0;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (left > 100 ? 100 : left) * 1000000L };
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int bf_wait_allowed(void)
{
    for (;;) {
        pthread_mutex_lock(&bf.mu);
        int64_t wait = bf.paused_until - cfg_now_ms();
        pthread_mutex_unlock(&bf.mu);
        if (wait <= 0)
            return prod_stopping ? -1 : 0;
        if (bf_nap(wait) < 0)
            return -1;
    }
}

static void bf_pause(int64_t until_wall_ms)
{
    pthread_mutex_lock(&bf.mu);
    if (until_wall_ms > bf.paused_until)
        bf.paused_until = until_wall_ms;
    pthread_mutex_unlock(&bf.mu);
}

/* A REST row that is not a kline goes to the dead letters, like a bad live frame. */
static void bf_reject(void *ud, const char *raw, size_t len, const char *why)
{
    const prod_sym_t *s = ud;
    char origin[48];
    snprintf(origin, sizeof origin, "rest:%s", s->name);
    pub_reject(raw, len, origin, why);
}

/* Near --rest-weight-limit (90 %): every worker waits for the next minute's budget. */
static void bf_mind_weight(const rest_resp_t *r)
{
    if (r->used_weight < 0 || r->used_weight * 10 < (long)prod_cfg.rest_weight_limit * 9)
        return;
    int64_t now = cfg_now_ms();
    log_info("REST weight %ld of %d used: pausing until the next minute", r->used_weight,
             prod_cfg.rest_weight_limit);
    bf_pause(now - now % 60000 + 60000 + 100);
}

#define BF_AGAIN (-2) /* rate limited: the same page again, after the pause */

/* One page of s from start (at most to). Returns the rows REST sent (>= 0; *nk klines
 * handed on, *last_open the newest row), BF_AGAIN, or -1 with the reason in err. */
static int bf_page(CURL *h, rest_resp_t *r, kline_t *ks, prod_sym_t *s, int64_t start, int64_t to, int *nk,
                   int64_t *last_open, char *err, size_t errlen)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/api/v3/klines?symbol=%s&interval=%s&startTime=%lld&endTime=%lld&limit=%d",
             prod_cfg.rest_url, s->name, prod_cfg.interval, (long long)start, (long long)to, BF_PAGE);
    atomic_fetch_add_explicit(&prod_stats.rest_requests, 1, memory_order_relaxed);
    if (rest_get(h, url, r, 30000, err, errlen) < 0)
        return -1;
    bf_mind_weight(r);
    if (r->status == 429 || r->status == 418) {
        atomic_fetch_add_explicit(&prod_stats.rest_429, 1, memory_order_relaxed);
        long ra = r->retry_after_s > 0 ? r->retry_after_s : 1;
        log_warn("REST %ld for %s: pausing %ld s (Retry-After)", r->status, s->name, ra);
        bf_pause(cfg_now_ms() + ra * 1000);
        return BF_AGAIN;
    }
    if (r->status == 200)
        return rest_parse_klines(kp_buf_str(&r->body), r->body.len, s->name, prod_cfg.interval, ks, BF_PAGE, nk,
                                 last_open, bf_reject, s, err, errlen);
    snprintf(err, errlen, "GET %s: HTTP %ld", url, r->status);
    return -1;
}

/* The retry policy after a failed page (failures in a row so far, backoff in ms).
 * 1: give the range up; 0: try again (after a nap); -1: stopping. */
static int bf_failed(const rest_resp_t *r, const prod_sym_t *s, int64_t start, int64_t to, const char *err,
                     int failures, int64_t *backoff)
{
    atomic_fetch_add_explicit(&prod_stats.rest_errors, 1, memory_order_relaxed);
    /* A 4xx (bad symbol, bad range) will not heal by retrying: after a few tries the gap
     * is given up, loudly, so one bad symbol cannot hold a worker forever. (A transport
     * error leaves status 0.) */
    if (r->status >= 400 && r->status < 500 && failures >= 3) {
        log_error("backfill %s %lld..%lld: %s; giving up on this range", s->name, (long long)start,
                  (long long)to, err);
        atomic_fetch_add(&prod_stats.rest_giveups, 1);
        return 1;
    }
    if (failures <= 3 || failures % 20 == 0)
        log_warn("backfill %s: %s (attempt %d, next in %lld ms)", s->name, err, failures, (long long)*backoff);
    if (bf_nap(*backoff / 2 + rand() % (*backoff / 2 + 1)) < 0)
        return -1;
    *backoff = *backoff * 2 > 30000 ? 30000 : *backoff * 2;
    return 0;
}

/* Fetches open_time [from, to] of s into seq_rest; *newest = the newest open_time REST
 * returned (left alone if none). 0 done, -1 stopping. */
static int bf_fetch(CURL *h, rest_resp_t *r, kline_t *ks, prod_sym_t *s, int64_t from, int64_t to,
                    int64_t *newest)
{
    int64_t start = from, backoff = 250;
    int failures = 0;
    char err[1200];
    while (start <= to) {
        if (bf_wait_allowed() < 0)
            return -1;
        int nk = 0;
        int64_t last_open = start;
        int rows = bf_page(h, r, ks, s, start, to, &nk, &last_open, err, sizeof err);
        if (rows == BF_AGAIN)
            continue;
        if (rows < 0) {
            int f = bf_failed(r, s, start, to, err, ++failures, &backoff);
            if (f != 0)
                return f > 0 ? 0 : -1;
            continue;
        }
        failures = 0;
        backoff = 250;
        if (nk > 0) {
            seq_rest(s, ks, nk);
            if (*newest == PROD_NONE || last_open > *newest)
                *newest = last_open;
        }
        if (rows < BF_PAGE || last_open + prod_cfg.interval_ms <= start)
            break;
        start = last_open + prod_cfg.interval_ms;
    }
    return 0;
}

static void bf_job(CURL *h, rest_resp_t *r, kline_t *ks, prod_sym_t *s)
{
    int64_t from, to, tail_to = PROD_NONE;
    bool proven;
    int tail_tries = 0;
    while (seq_next_gap(s, &from, &to, &proven)) {
        int64_t newest = PROD_NONE;
        if (from <= to) {
            log_debug("backfill %s: %lld..%lld%s", s->name, (long long)from, (long long)to,
                      proven ? "" : " (open end)");
            if (bf_fetch(h, r, ks, s, from, to, &newest) < 0)
                return; /* stopping: the symbol stays marked, nothing more to do */
        }
        /* REST can lag the stream by a moment: when the end of a gap a live kline just
         * closed is not in REST yet, ask again shortly before calling it missing. */
        if (proven && from <= to && (newest == PROD_NONE || newest < to)) {
            if (to != tail_to) {
                tail_to = to;
                tail_tries = 0;
            }
            if (tail_tries++ < BF_TAIL_TRIES) {
                if (bf_nap(BF_TAIL_WAIT_MS) < 0)
                    return;
                continue;
            }
        }
        /* Whatever REST did not have in [from, to] the exchange does not have either, if
         * the exchange is known to have got past `to`. */
        seq_gap_done(s, to, proven, newest);
    }
}

/* The next queued symbol, waiting for one; NULL when the program stops. Called and
 * returns with bf.mu held; the job counts as busy until bf_job_done. */
static prod_sym_t *bf_take_job(void)
{
    while (!prod_stopping) {
        if (bf.qlen == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&bf.cv, &bf.mu, &ts);
            continue;
        }
        prod_sym_t *s = bf.q[bf.qhead];
        bf.qhead = (bf.qhead + 1) % bf.qcap;
        bf.qlen--;
        bf.busy++;
        return s;
    }
    return NULL;
}

/* With bf.mu held. */
static void bf_job_done(void)
{
    bf.busy--;
    if (bf.qlen == 0 && bf.busy == 0)
        ws_wake(); /* batch mode waits for idleness */
}

static void *bf_worker(void *arg)
{
    (void)arg;
    CURL *h = curl_easy_init();
    rest_resp_t r; /* this worker's answer buffer, freed when it ends */
    rest_resp_init(&r);
    kline_t *ks = malloc(sizeof *ks * BF_PAGE); /* one page, owned by this worker */
    if (!h || !ks) {
        log_error("backfill worker: out of memory");
        atomic_store(&prod_failed, 1);
        atomic_store(&prod_stopping, 1);
        ws_wake();
    }
    /* nothing is published from REST before the resume points that describe it are
     * durable (a kill -9 in between would otherwise forget where a symbol starts) */
    while (!prod_stopping && !pub_resume_points_durable())
        bf_nap(20);
    pthread_mutex_lock(&bf.mu);
    for (prod_sym_t *s; (s = bf_take_job());) {
        pthread_mutex_unlock(&bf.mu);
        bf_job(h, &r, ks, s);
        pthread_mutex_lock(&bf.mu);
        bf_job_done();
    }
    pthread_mutex_unlock(&bf.mu);
    free(ks);
    rest_resp_free(&r);
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

int bf_start(char *errbuf, size_t errlen)
{
    bf.qcap = prod_nsyms;
    bf.q = calloc((size_t)bf.qcap, sizeof *bf.q);
    if (!bf.q) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    int n = prod_cfg.rest_workers;
    if (n > BF_MAX_WORKERS)
        n = BF_MAX_WORKERS;
    for (int i = 0; i < n; i++) {
        if (kp_thread_create(&bf.th[i], NULL, bf_worker, NULL) != 0) {
            snprintf(errbuf, errlen, "cannot start backfill worker %d", i);
            return -1;
        }
        bf.nth++;
    }
    return 0;
}

void bf_stop(void)
{
    atomic_store(&prod_stopping, 1);
    pthread_mutex_lock(&bf.mu);
    pthread_cond_broadcast(&bf.cv);
    pthread_mutex_unlock(&bf.mu);
    for (int i = 0; i < bf.nth; i++)
        pthread_join(bf.th[i], NULL);
    bf.nth = 0;
    free(bf.q);
    bf.q = NULL;
}
