/* gen.c — deterministic kline generation: a pure function of (seed, symbol, second, state). */
#include "sim.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>

/* splitmix64 finaliser: good avalanche, so neighbouring seconds look independent */
uint64_t sim_hash64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then mixed */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return sim_hash64(h);
}

typedef struct { uint64_t s; } rng_t;
static uint64_t rnd(rng_t *r) { r->s = sim_hash64(r->s); return r->s; }
static int64_t rnd_range(rng_t *r, int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)(rnd(r) % (uint64_t)(hi - lo + 1));
}

static int64_t pow10i(int e)
{
    int64_t p = 1;
    while (e-- > 0)
        p *= 10;
    return p;
}

/* Price tick for a price: about 5-6 significant digits, like Binance filters. */
static int64_t tick_for(int64_t price)
{
    int64_t t = 1;
    while (t * 1000000 <= price)
        t *= 10;
    return t;
}

/* Well-known symbols start near a plausible price so the demo page looks like a market;
 * any other symbol gets a seeded one. Units of 1e-8. */
static int64_t known_base(const char *name)
{
    static const struct { const char *name; int64_t price; } known[] = {
        { "BTCUSDT", 7616800000000 }, { "ETHUSDT", 301200000000 }, { "BNBUSDT", 61250000000 },
        { "SOLUSDT", 15220000000 },   { "XRPUSDT", 61230000 },     { "ADAUSDT", 45110000 },
        { "DOGEUSDT", 15234000 },     { "LTCUSDT", 8421000000 },   { "ETHBTC", 3950000 },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].name) == 0)
            return known[i].price;
    return 0;
}

static void init_state(sim_symbol_t *y)
{
    rng_t r = { y->hash ^ g_sim.cfg.seed };
    /* base price from 0.0001 to ~90000, log-uniform-ish */
    int e = (int)rnd_range(&r, 4, 12);       /* 10^4 .. 10^12 units of 1e-8 */
    int64_t base = pow10i(e) * rnd_range(&r, 1, 9);
    if (known_base(y->name))
        base = known_base(y->name);
    int64_t t = tick_for(base);
    y->cur.close = base / t * t;
    y->cur.next_trade = 1000000 + (int64_t)(rnd(&r) % 1000000000ULL);
}

static void set_names(sim_symbol_t *y, const char *name)
{
    static const char *quotes[] = { "USDT", "FDUSD", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY" };
    size_t n = strlen(name);
    snprintf(y->name, sizeof y->name, "%s", name);
    for (size_t k = 0; k < n && k < SIM_SYM_MAX - 1; k++) {
        y->name[k] = (char)toupper((unsigned char)name[k]);
        y->lname[k] = (char)tolower((unsigned char)name[k]);
    }
    y->lname[n < SIM_SYM_MAX ? n : SIM_SYM_MAX - 1] = 0;
    snprintf(y->base, sizeof y->base, "%s", y->name);
    snprintf(y->quote, sizeof y->quote, "USDT");
    for (size_t q = 0; q < sizeof quotes / sizeof quotes[0]; q++) {
        size_t ql = strlen(quotes[q]);
        if (n > ql && strcmp(y->name + n - ql, quotes[q]) == 0) {
            snprintf(y->quote, sizeof y->quote, "%s", quotes[q]);
            y->base[n - ql] = 0;
            break;
        }
    }
    y->trading = true;
    y->hash = name_hash(y->name);
}

/* Called by main after g_sim.syms holds the names (in .name). */
void sim_symbols_init_generated(void)
{
    for (size_t i = 0; i < g_sim.nsyms; i++) {
        char nm[SIM_SYM_MAX];
        snprintf(nm, sizeof nm, "%s", g_sim.syms[i].name);
        set_names(&g_sim.syms[i], nm);
        init_state(&g_sim.syms[i]);
    }
}

int sim_symbol_find(const char *name)
{
    for (size_t i = 0; i < g_sim.nsyms; i++)
        if (strcasecmp(g_sim.syms[i].name, name) == 0)
            return (int)i;
    return -1;
}

int64_t sim_open_time(int64_t s) { return g_sim.cfg.start_ms + s * 1000; }

int64_t sim_due_seconds(int64_t now_ms)
{
    if (g_sim.cfg.speed <= 0)
        return g_sim.gen_next;
    double el = (double)(now_ms - g_sim.real0_ms) * g_sim.cfg.speed / 1000.0;
    int64_t due = el < 0 ? 0 : (int64_t)el;
    if (g_sim.gen_limit >= 0 && due > g_sim.gen_limit)
        due = g_sim.gen_limit;
    return due;
}

int sim_gen_step(size_t i, int64_t s, sim_state_t *st, sim_k_t *k)
{
    sim_symbol_t *y = &g_sim.syms[i];
    if (y->replay) {
        if (s < 0 || s >= g_sim.replay_n || !y->present[s])
            return 0;
        *k = y->replay[s];
        return 1;
    }
    rng_t r = { sim_hash64(g_sim.cfg.seed ^ y->hash) ^ sim_hash64((uint64_t)s * 0x2545f4914f6cdd1dULL) };
    int64_t prev = st->close;
    memset(k, 0, sizeof *k);
    if (rnd(&r) % 10 == 0) { /* ~10% of seconds without trades */
        k->o = k->h = k->l = k->c = prev;
        k->f = k->L = -1;
        return 1;
    }
    int64_t t = tick_for(prev);
    int64_t d = rnd_range(&r, -3, 3);
    /* drift back towards the symbol's base so prices stay plausible for hours */
    if (prev < 20 * t)
        d = rnd_range(&r, 0, 3);
    int64_t c = prev + d * t;
    if (c < t)
        c = t;
    int64_t hi = (prev > c ? prev : c) + t * rnd_range(&r, 0, 2);
    int64_t lo = (prev < c ? prev : c) - t * rnd_range(&r, 0, 2);
    if (lo < t)
        lo = t;
    int64_t n = rnd_range(&r, 1, 40);
    if (rnd(&r) % 8 == 0)
        n += rnd_range(&r, 0, 160);
    /* quantity for a notional of $5..$500 per trade, in units of 1e-8 */
    __int128 notional = (__int128)rnd_range(&r, 5, 500) * SIM_SCALE * SIM_SCALE;
    int64_t qty = (int64_t)(notional / c);
    if (qty < 1)
        qty = 1;
    int64_t v = n * qty;
    int64_t vwap = lo + (hi - lo) * rnd_range(&r, 0, 100) / 100;
    int64_t q = (int64_t)((__int128)v * vwap / SIM_SCALE);
    int64_t V = (int64_t)((__int128)v * rnd_range(&r, 0, 100) / 100);
    int64_t Q = v ? (int64_t)((__int128)q * V / v) : 0;
    k->o = prev; k->h = hi; k->l = lo; k->c = c;
    k->v = v; k->q = q; k->V = V; k->Q = Q;
    k->n = n;
    k->f = st->next_trade;
    k->L = st->next_trade + n - 1;
    st->close = c;
    st->next_trade += n;
    return 1;
}

void sim_provisional(const sim_k_t *full, sim_k_t *p)
{
    *p = *full;
    int64_t n = full->n / 2;
    if (n == 0) { /* nothing traded yet in this second */
        p->h = p->l = p->c = full->o;
        p->v = p->q = p->V = p->Q = 0;
        p->n = 0;
        p->f = p->L = -1;
        return;
    }
    p->n = n;
    p->L = full->f + n - 1;
    p->c = full->o;
    p->h = full->o;
    p->l = full->o;
    p->v = full->v / 2;
    p->q = full->q / 2;
    p->V = p->v < full->V ? p->v : full->V;
    p->Q = p->q < full->Q ? p->q : full->Q;
}

static int ckpt_push(sim_symbol_t *y)
{
    if (y->nckpt == y->capckpt) {
        size_t nc = y->capckpt ? y->capckpt * 2 : 64;
        sim_state_t *p = realloc(y->ckpt, nc * sizeof *p);
        if (!p)
            return -1;
        y->ckpt = p;
        y->capckpt = nc;
    }
    y->ckpt[y->nckpt++] = y->cur;
    return 0;
}

int sim_gen_advance(char *err, size_t errlen)
{
    int64_t s = g_sim.gen_next;
    if (g_sim.gen_limit >= 0 && s >= g_sim.gen_limit)
        return 0;
    sim_k_t *row = &g_sim.ring[(size_t)(s % g_sim.ring_n) * g_sim.nsyms];
    for (size_t i = 0; i < g_sim.nsyms; i++) {
        sim_symbol_t *y = &g_sim.syms[i];
        if (s % SIM_CKPT_EVERY == 0 && !y->replay && ckpt_push(y) < 0) {
            snprintf(err, errlen, "out of memory for checkpoints");
            return -1;
        }
        if (!sim_gen_step(i, s, &y->cur, &row[i]))
            row[i].n = -1; /* replay gap marker inside the ring */
    }
    g_sim.gen_next = s + 1;
    return 1;
}

int sim_kline_get(size_t i, int64_t s, sim_k_t *k)
{
    if (s < 0 || s >= g_sim.gen_next)
        return 0;
    if (s >= g_sim.gen_next - g_sim.ring_n) {
        *k = g_sim.ring[(size_t)(s % g_sim.ring_n) * g_sim.nsyms + i];
        return k->n >= 0;
    }
    return sim_kline_range(i, s, s, NULL, k) ? 1 : 0;
}

/* With fn == NULL, arg is a sim_k_t* receiving the last kline (used by sim_kline_get). */
int sim_kline_range(size_t i, int64_t s0, int64_t s1, sim_kline_fn fn, void *arg)
{
    sim_symbol_t *y = &g_sim.syms[i];
    if (s0 < 0)
        s0 = 0;
    if (s1 >= g_sim.gen_next)
        s1 = g_sim.gen_next - 1;
    if (s0 > s1)
        return 0;
    sim_state_t st = { 0, 0 };
    int64_t s = s0;
    if (!y->replay) {
        size_t c = (size_t)(s0 / SIM_CKPT_EVERY);
        if (c >= y->nckpt)
            return 0; /* cannot happen: a checkpoint exists for every generated block */
        st = y->ckpt[c];
        s = (int64_t)c * SIM_CKPT_EVERY;
    }
    sim_k_t k;
    int found = 0;
    for (; s <= s1; s++) {
        if (!sim_gen_step(i, s, &st, &k) || s < s0)
            continue;
        if (!fn) {
            *(sim_k_t *)arg = k;
            found = 1;
            continue;
        }
        int rc = fn(arg, i, s, &k);
        if (rc)
            return rc;
    }
    return found;
}

void sim_symbol_set_name(sim_symbol_t *y, const char *name)
{
    char nm[SIM_SYM_MAX];
    snprintf(nm, sizeof nm, "%s", name);
    set_names(y, nm);
}
