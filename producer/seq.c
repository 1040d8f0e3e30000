/* seq.c — per symbol: publish each second once and in order, hold live klines while
 * REST fills a gap, then let them through.
 *
 * One mutex guards every prod_sym_t field below and is held across pub_kline so
 * that the order of publication equals the order of decisions. The main thread
 * takes it once per live kline (uncontended: ~20 ns); workers take it per page. */
#include "prod.h"
#include "cfg.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SEQ_HELD_TOTAL_MAX 32768   /* all symbols together: about 13 MB of kline_t */

static pthread_mutex_t seq_mu = PTHREAD_MUTEX_INITIALIZER;
static int seq_held_total;

void seq_init(void) { seq_held_total = 0; }

/* Is k news for s? open_time ahead, or the closed version of a provisional one. */
static bool seq_is_new(const prod_sym_t *s, const kline_t *k)
{
    if (s->last_pub == PROD_NONE || k->open_time > s->last_pub)
        return true;
    return k->open_time == s->last_pub && !s->last_closed;
}

/* Does k continue s without a hole? The next second after a closed one, or a newer
 * state of the same second. After a provisional kline the next second only follows
 * once that second's closed kline was published: otherwise it was lost on the way
 * and REST must supply it. */
static bool seq_follows(const prod_sym_t *s, const kline_t *k)
{
    if (s->last_pub == PROD_NONE)
        return true;
    if (k->open_time == s->last_pub)
        return !s->last_closed;
    return s->last_closed && k->open_time == s->last_pub + prod_cfg.interval_ms;
}

/* First second of the hole after s's last kline. */
static int64_t seq_hole_from(const prod_sym_t *s)
{
    return s->last_closed ? s->last_pub + prod_cfg.interval_ms : s->last_pub;
}

static void seq_publish(prod_sym_t *s, const kline_t *k, int64_t recv_ms, int64_t recv_us)
{
    if (pub_kline(k, recv_ms, recv_us) == 0 || !pub_is_kafka()) {
        s->last_pub = k->open_time;
        s->last_closed = k->closed;
    }
}

/* Holds k until the gap before it is filled. Bounded: past the caps the kline is not
 * kept, only remembered in pending_max, and REST fetches it later with the rest. */
static void seq_hold(prod_sym_t *s, const kline_t *k, int64_t recv_ms, int64_t recv_us)
{
    if (s->nheld == s->capheld) {
        int cap = s->capheld ? s->capheld * 2 : 8;
        if (cap > prod_cfg.buffer_per_symbol)
            cap = prod_cfg.buffer_per_symbol;
        prod_held_t *nh = s->nheld < cap && seq_held_total < SEQ_HELD_TOTAL_MAX
                        ? realloc(s->held, sizeof *nh * (size_t)cap) : NULL;
        if (!nh) {
            /* a real kline replaces a clock's guess: the exchange is provably there, and
             * anything newer live klines will show */
            if (s->pending_max == PROD_NONE || s->pending_guess || k->open_time > s->pending_max) {
                s->pending_max = k->open_time;
                s->pending_guess = false;
            }
            atomic_fetch_add_explicit(&prod_stats.held_overflow, 1, memory_order_relaxed);
            return;
        }
        s->held = nh; /* owned by s until the backfill ends (seq_next_gap frees it) */
        s->capheld = cap;
    }
    prod_held_t *h = &s->held[s->nheld++];
    h->k = *k;
    h->recv_ms = recv_ms;
    h->recv_us = recv_us;
    seq_held_total++;
    atomic_fetch_add_explicit(&prod_stats.held, 1, memory_order_relaxed);
}

void seq_live(prod_sym_t *s, const kline_t *k, int64_t recv_ms, int64_t recv_us)
{
    pthread_mutex_lock(&seq_mu);
    if (s->backfilling) {
        if (seq_is_new(s, k))
            seq_hold(s, k, recv_ms, recv_us);
        else
            atomic_fetch_add_explicit(&prod_stats.duplicates, 1, memory_order_relaxed);
    } else if (!seq_is_new(s, k)) {
        atomic_fetch_add_explicit(&prod_stats.duplicates, 1, memory_order_relaxed);
    } else if (seq_follows(s, k)) {
        seq_publish(s, k, recv_ms, recv_us);
    } else {
        /* seconds missing between last_pub and k: REST first, k after */
        s->backfilling = true;
        s->pending_max = PROD_NONE;
        s->pending_guess = false;
        seq_hold(s, k, recv_ms, recv_us);
        pthread_mutex_unlock(&seq_mu);
        log_debug("%s: gap after %lld, live %lld: backfilling", s->name, (long long)s->last_pub,
                  (long long)k->open_time);
        bf_enqueue(s);
        return;
    }
    pthread_mutex_unlock(&seq_mu);
}

void seq_rest(prod_sym_t *s, const kline_t *ks, int n)
{
    int64_t recv_ms = cfg_now_ms(), recv_us = cfg_mono_us();
    pthread_mutex_lock(&seq_mu);
    for (int i = 0; i < n; i++)
        if (seq_is_new(s, &ks[i]))
            seq_publish(s, &ks[i], recv_ms, recv_us);
    pthread_mutex_unlock(&seq_mu);
}

static void seq_sort_held(prod_sym_t *s)
{
    /* insertion sort: held klines arrive nearly in order */
    for (int i = 1; i < s->nheld; i++) {
        prod_held_t t = s->held[i];
        int j = i - 1;
        while (j >= 0 && s->held[j].k.open_time > t.k.open_time) {
            s->held[j + 1] = s->held[j];
            j--;
        }
        s->held[j + 1] = t;
    }
}

int seq_next_gap(prod_sym_t *s, int64_t *from, int64_t *to, bool *proven)
{
    int64_t iv = prod_cfg.interval_ms;
    int rc;
    pthread_mutex_lock(&seq_mu);
    seq_sort_held(s);
    int i = 0;
    for (; i < s->nheld; i++) {
        prod_held_t *h = &s->held[i];
        if (!seq_is_new(s, &h->k)) {
            atomic_fetch_add_explicit(&prod_stats.duplicates, 1, memory_order_relaxed);
            continue;
        }
        if (!seq_follows(s, &h->k))
            break; /* still a hole before this one */
        seq_publish(s, &h->k, h->recv_ms, h->recv_us);
    }
    if (i > 0) {
        seq_held_total -= i;
        memmove(s->held, s->held + i, sizeof *s->held * (size_t)(s->nheld - i));
        s->nheld -= i;
    }
    if (s->nheld > 0) {
        *from = seq_hole_from(s);
        *to = s->held[0].k.open_time - iv;
        if (*to < *from)
            *to = *from; /* the lost closed kline of the last (provisional) second */
        *proven = true; /* held[0] came from the exchange */
        rc = 1;
    } else if (s->pending_max != PROD_NONE &&
               (s->last_pub == PROD_NONE || s->pending_max > s->last_pub ||
                (s->pending_max == s->last_pub && !s->last_closed))) {
        *from = s->last_pub == PROD_NONE ? s->pending_max : seq_hole_from(s);
        *to = s->pending_max;
        *proven = !s->pending_guess;
        rc = 1;
    } else {
        s->backfilling = false;
        s->pending_max = PROD_NONE;
        s->pending_guess = false;
        free(s->held); /* the symbol is live again; it owns no buffer until the next gap */
        s->held = NULL;
        s->capheld = 0;
        rc = 0;
    }
    pthread_mutex_unlock(&seq_mu);
    return rc;
}

void seq_skip_to(prod_sym_t *s, int64_t open_time)
{
    pthread_mutex_lock(&seq_mu);
    if (s->last_pub == PROD_NONE || open_time > s->last_pub ||
        (open_time == s->last_pub && !s->last_closed)) {
        if (s->last_pub != PROD_NONE)
            atomic_fetch_add(&prod_stats.rest_missing,
                             (unsigned long long)((open_time - seq_hole_from(s)) / prod_cfg.interval_ms + 1));
        s->last_pub = open_time;
        s->last_closed = true;
    }
    pthread_mutex_unlock(&seq_mu);
}

void seq_gap_done(prod_sym_t *s, int64_t to, bool proven, int64_t newest)
{
    if (proven) {
        seq_skip_to(s, to);
        return;
    }
    /* Seconds missing inside what REST covered are the exchange's own holes (maintenance):
     * skip them. Beyond its newest row the exchange may just be behind our clock (NTP
     * skew, REST lagging the stream); skipping there would turn every live kline up to
     * `to` into a "duplicate" and lose it. */
    if (newest != PROD_NONE)
        seq_skip_to(s, newest < to ? newest : to);
    pthread_mutex_lock(&seq_mu);
    if (s->pending_guess && s->pending_max != PROD_NONE && s->pending_max <= to) {
        s->pending_max = PROD_NONE;
        s->pending_guess = false;
    }
    pthread_mutex_unlock(&seq_mu);
}

void seq_seed(prod_sym_t *s, int64_t open_time, bool closed)
{
    pthread_mutex_lock(&seq_mu);
    if (s->last_pub == PROD_NONE || open_time > s->last_pub) {
        s->last_pub = open_time;
        s->last_closed = closed;
    }
    pthread_mutex_unlock(&seq_mu);
}

void seq_request(prod_sym_t *s, int64_t to)
{
    pthread_mutex_lock(&seq_mu);
    bool start = !s->backfilling;
    s->backfilling = true;
    if (s->pending_max == PROD_NONE || to > s->pending_max) {
        s->pending_max = to;
        s->pending_guess = true; /* our clock's idea of the exchange's last closed second */
    }
    pthread_mutex_unlock(&seq_mu);
    if (start)
        bf_enqueue(s);
}

int seq_stale_scan(int64_t lag_ms, int64_t none_from)
{
    int n = 0;
    pthread_mutex_lock(&seq_mu);
    int64_t newest = PROD_NONE;
    for (int i = 0; i < prod_nsyms; i++)
        if (prod_syms[i].last_pub != PROD_NONE && prod_syms[i].last_pub > newest)
            newest = prod_syms[i].last_pub;
    for (int i = 0; newest != PROD_NONE && i < prod_nsyms; i++) {
        prod_sym_t *s = &prod_syms[i];
        if (s->backfilling || (s->last_pub != PROD_NONE && s->last_pub >= newest - lag_ms) ||
            (s->last_pub == PROD_NONE && (none_from == PROD_NONE || none_from >= newest)))
            continue;
        /* REST may have had nothing (a halted symbol): since only what REST returned is
         * skipped, ask again only once the others moved on by another lag, not every scan */
        if (s->stale_mark != PROD_NONE && newest < s->stale_mark + lag_ms)
            continue;
        s->stale_mark = newest;
        log_warn("%s: no kline since %lld while others reached %lld: fetching from REST", s->name,
                 (long long)s->last_pub, (long long)newest);
        if (s->last_pub == PROD_NONE) {
            s->last_pub = none_from - prod_cfg.interval_ms; /* never delivered: from our start */
            s->last_closed = true;
        }
        s->backfilling = true;
        s->pending_max = newest;
        /* newest is another symbol's kline: this symbol's REST may not be there yet */
        s->pending_guess = true;
        bf_enqueue(s); /* takes only the queue's own lock */
        n++;
    }
    pthread_mutex_unlock(&seq_mu);
    return n;
}

/* The start-up catch-up: every symbol still behind our clock's last closed second gets
 * a job up to there. Run a few seconds after the streams opened, so that a symbol whose
 * live klines already arrived has its gap exactly (one REST request from its last kline
 * to its first live one) instead of a guessed catch-up plus a second request for the
 * seconds between the guess and the stream. That end is only a guess (seq_request marks
 * it so): seconds past the newest row REST returns are not skipped, because the
 * exchange's clock may be behind ours. */
int seq_catch_up(int64_t now_ms)
{
    int64_t iv = prod_cfg.interval_ms;
    int64_t to = now_ms - now_ms % iv - 2 * iv;
    int n = 0;
    for (int i = 0; i < prod_nsyms; i++) {
        prod_sym_t *s = &prod_syms[i];
        pthread_mutex_lock(&seq_mu);
        bool behind = !s->backfilling && s->last_pub != PROD_NONE && s->last_pub < to;
        pthread_mutex_unlock(&seq_mu);
        if (behind) {
            seq_request(s, to);
            n++;
        }
    }
    if (n)
        log_info("catching up %d symbols from REST up to %lld", n, (long long)to);
    return n;
}

/* Where the exchange is: our clock's last closed second, or the newest second any
 * symbol reached or any held/pending kline shows, whichever is later (an exchange whose
 * clock runs ahead of ours, such as an accelerated simulation, is still "now"). */
static int64_t seq_exchange_now(int64_t now_ms)
{
    int64_t iv = prod_cfg.interval_ms, newest = now_ms - now_ms % iv - iv;
    for (int i = 0; i < prod_nsyms; i++) {
        const prod_sym_t *s = &prod_syms[i];
        if (s->last_pub != PROD_NONE && s->last_pub > newest)
            newest = s->last_pub;
        if (s->nheld > 0 && s->held[s->nheld - 1].k.open_time > newest)
            newest = s->held[s->nheld - 1].k.open_time;
        if (s->pending_max != PROD_NONE && !s->pending_guess && s->pending_max > newest)
            newest = s->pending_max;
    }
    return newest;
}

void seq_backlog(int64_t now_ms)
{
    int64_t iv = prod_cfg.interval_ms;
    long long nsym = 0, owed = 0;
    int64_t oldest = 0;
    pthread_mutex_lock(&seq_mu);
    int64_t upto = seq_exchange_now(now_ms);
    for (int i = 0; i < prod_nsyms; i++) {
        const prod_sym_t *s = &prod_syms[i];
        if (!s->backfilling || s->last_pub == PROD_NONE)
            continue;
        int64_t from = seq_hole_from(s);
        nsym++;
        if (from <= upto)
            owed += (upto - from) / iv + 1;
        if (!oldest || from < oldest)
            oldest = from;
    }
    pthread_mutex_unlock(&seq_mu);
    atomic_store(&prod_stats.backlog_symbols, nsym);
    atomic_store(&prod_stats.backlog_klines, owed);
    /* as an age: how far the oldest owed second lies behind where the exchange is */
    atomic_store(&prod_stats.backlog_oldest_ms, oldest ? upto - oldest : 0);
    if (owed > atomic_load(&prod_stats.backlog_peak))
        atomic_store(&prod_stats.backlog_peak, owed);
}
