/* gen.c — deterministic kline generation: a pure function of (seed, symbol, second, state). */
#include "sim.h"
#include "hash.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <math.h>

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
    /* FNV-1a from this file's historic basis (see hash.h), then mixed: the seeds,
     * and so every simulated market, stay the ones runs and tests know. */
    return sim_hash64(kp_fnv1a_from(UINT64_C(1469598103934665603), s));
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

/* Quantity step (LOT_SIZE): the largest power of ten worth at most about one US dollar
 * (0.00001 BTC, 0.0001 ETH, 1 DOGE), at most 1. */
static int64_t step_for(int64_t price, double quote_usd)
{
    double usd = (double)price * quote_usd;
    int64_t s = 1;
    while (s < SIM_SCALE && (double)s * 10 * usd <= (double)SIM_SCALE * SIM_SCALE)
        s *= 10;
    return s;
}

/* Well-known symbols start near a plausible price, with a plausible volatility and
 * turnover, so the demo page looks like a market; any other symbol gets seeded ones.
 * price in units of 1e-8, vol annualised, turnover in quote units per second. */
typedef struct { const char *name; int64_t price; double vol, turnover; } known_t;
static const known_t *known_find(const char *name)
{
    static const known_t known[] = {
        { "BTCUSDT", 7616800000000, 0.55, 18000 }, { "ETHUSDT", 301200000000, 0.70, 9000 },
        { "BNBUSDT", 61250000000, 0.50, 1500 },    { "SOLUSDT", 15220000000, 0.95, 4000 },
        { "XRPUSDT", 61230000, 0.85, 2500 },       { "ADAUSDT", 45110000, 0.90, 600 },
        { "DOGEUSDT", 15234000, 1.10, 1500 },      { "LTCUSDT", 8421000000, 0.75, 400 },
        { "ETHBTC", 3950000, 0.45, 0.6 },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].name) == 0)
            return &known[i];
    return NULL;
}

/* US dollars per unit of a quote currency (roughly: for lot sizes and turnover). */
static double quote_usd(const char *quote)
{
    static const struct { const char *q; double usd; } px[] = {
        { "BTC", 76000 }, { "ETH", 3000 }, { "BNB", 610 }, { "EUR", 1.08 }, { "TRY", 0.029 },
    };
    for (size_t i = 0; i < sizeof px / sizeof px[0]; i++)
        if (strcmp(quote, px[i].q) == 0)
            return px[i].usd;
    return 1.0;
}

/*
 * Price model (see README.md "Price and volume model"). The log price around the
 * symbol's base is a sum of GEN_OCTAVES octaves of seeded value noise, octave j with
 * nodes every 2^j seconds, amplitude ∝ sqrt(2^j) (so increments scale like a random
 * walk's up to 2^(GEN_OCTAVES-1) s ≈ 97 days, beyond which the price reverts), the
 * octaves up to 64 s scaled by a burst factor that changes per minute. It is a pure
 * function of (seed, symbol, absolute second): the stream, REST, /truth and a second
 * sim started later with the same seed all agree on the price of a given second, so
 * history loaded from one sim joins the live prices of another without a jump.
 */
#define GEN_OCTAVES     24
#define GEN_FAST_OCT    7          /* octaves 0..6 (1..64 s) follow the burst factor */
#define GEN_SECS_YEAR   31557600.0
#define GEN_OCT_VAR     0.88       /* sqrt(long-horizon variance per second) / amp, measured */

typedef struct {
    uint64_t key;      /* seeds everything of this symbol */
    double   base;     /* price level the noise is around, units of 1e-8 */
    double   amp;      /* octave amplitude, from the annualised volatility */
    double   rate;     /* mean turnover per second, quote units of 1e-8 */
    double   trade;    /* mean notional of one trade, same units */
    int64_t  tick, step;
} gen_param_t;

static gen_param_t *g_par;           /* [g_sim.nsyms], constant after start-up */
static double g_oct_scale[GEN_OCTAVES];

/* Triangular in [-1, 1] (variance 1/6) from one hash. */
static double tri(uint64_t h)
{
    return (double)(h >> 32) / 4294967296.0 + (double)(h & 0xffffffffu) / 4294967296.0 - 1.0;
}
static double unit(uint64_t h) { return (double)(h >> 11) / 9007199254740992.0; } /* [0,1) */

static double node(uint64_t key, int j, uint64_t k)
{
    return tri(sim_hash64(key ^ (((k << 5) | (uint64_t)j) * 0x9e3779b97f4a7c15ULL)));
}

/* Volatility multiplier at second u: per minute 88 % calm (1), 9 % active (2.2),
 * 3 % burst (5), linear between minutes so the price does not jump at the edge. */
static double regime(uint64_t key, uint64_t minute)
{
    uint64_t h = sim_hash64(key ^ 0xb0b5b0b5b0b5ULL ^ minute * 0xd1b54a32d192ed03ULL) % 1000;
    return h < 30 ? 5.0 : h < 120 ? 2.2 : 1.0;
}
static double burst_at(uint64_t key, uint64_t u)
{
    double f = (double)(u % 60) / 60.0;
    return regime(key, u / 60) * (1 - f) + regime(key, u / 60 + 1) * f;
}

static double log_dev(const gen_param_t *p, uint64_t u)
{
    double fast = 0, slow = 0;
    for (int j = 0; j < GEN_OCTAVES; j++) {
        uint64_t k = u >> j;
        double f = (double)(u & ((1ULL << j) - 1)) / (double)(1ULL << j);
        double v = node(p->key, j, k) * (1 - f) + (f > 0 ? node(p->key, j, k + 1) * f : 0);
        if (j < GEN_FAST_OCT)
            fast += v * g_oct_scale[j];
        else
            slow += v * g_oct_scale[j];
    }
    return p->amp * (fast * burst_at(p->key, u) + slow);
}

/* The traded price at the boundary that starts second u, on the symbol's tick. */
static int64_t price_at(const gen_param_t *p, uint64_t u)
{
    double ticks = p->base * exp(log_dev(p, u)) / (double)p->tick;
    int64_t c = (int64_t)llround(ticks) * p->tick;
    return c < p->tick ? p->tick : c;
}

static void init_params(sim_symbol_t *y, gen_param_t *p)
{
    rng_t r = { y->hash ^ g_sim.cfg.seed };
    /* base price from 0.0001 to ~90000, log-uniform-ish (same draws as ever: same bases) */
    int e = (int)rnd_range(&r, 4, 12);       /* 10^4 .. 10^12 units of 1e-8 */
    int64_t base = pow10i(e) * rnd_range(&r, 1, 9);
    y->cur.next_trade = 1000000 + (int64_t)(rnd(&r) % 1000000000ULL);
    double vol = 0.40 + 0.80 * unit(rnd(&r));
    double usd = 20.0 * pow(150.0, unit(rnd(&r)));  /* $20 .. $3,000 per second */
    double turnover = usd / quote_usd(y->quote);
    const known_t *kn = known_find(y->name);
    if (kn) {
        base = kn->price;
        vol = kn->vol;
        turnover = kn->turnover;
    }
    p->key = sim_hash64(g_sim.cfg.seed ^ y->hash);
    p->tick = tick_for(base);
    p->step = step_for(base, quote_usd(y->quote));
    p->base = (double)(base / p->tick * p->tick);
    p->amp = vol / sqrt(GEN_SECS_YEAR) / GEN_OCT_VAR;
    p->rate = turnover * (double)SIM_SCALE;
    p->trade = p->rate / (10 + 20 * unit(rnd(&r)));
    if (p->trade < 15.0 * SIM_SCALE / quote_usd(y->quote))
        p->trade = 15.0 * SIM_SCALE / quote_usd(y->quote);
    /* the first second opens at the model's price and its trade ids depend on the time;
     * close 0 = "not known yet", because the start time is set after this runs
     * (sim_gen_step fills both in, the same way for a checkpoint as for the live state) */
    y->cur.close = 0;
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
    }
    /* owned by this file for the life of the process (read on every kline) */
    g_par = calloc(g_sim.nsyms ? g_sim.nsyms : 1, sizeof *g_par);
    if (!g_par) {
        fprintf(stderr, "kline-sim: out of memory for %zu symbols\n", g_sim.nsyms);
        exit(1);
    }
    for (int j = 0; j < GEN_OCTAVES; j++)
        g_oct_scale[j] = sqrt((double)(1ULL << j));
    for (size_t i = 0; i < g_sim.nsyms; i++)
        init_params(&g_sim.syms[i], &g_par[i]);
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

/* High and low: the open/close range plus an intra-second wiggle of about one
 * second's volatility (larger in a burst), on the tick. */
static void gen_range(const gen_param_t *p, rng_t *r, double sig, sim_k_t *k)
{
    double px = (double)k->c;
    int64_t up = (int64_t)(px * sig * 1.5 * pow(unit(rnd(r)), 2) / (double)p->tick) * p->tick;
    int64_t dn = (int64_t)(px * sig * 1.5 * pow(unit(rnd(r)), 2) / (double)p->tick) * p->tick;
    k->h = (k->o > k->c ? k->o : k->c) + up;
    k->l = (k->o < k->c ? k->o : k->c) - dn;
    if (k->l < p->tick)
        k->l = p->tick;
}

/* Turnover follows the burst factor and the size of the move, times log-normal noise;
 * quantities on the step; taker buys lean the way the price went. */
static void gen_volume(const gen_param_t *p, rng_t *r, double m, double move, sim_k_t *k)
{
    double z = tri(rnd(r)) * 2.45;                     /* ~N(0,1) */
    double notional = p->rate * pow(m, 1.5) * (0.55 + 0.45 * (move < 4 ? move : 4)) * exp(0.8 * z - 0.32);
    int64_t n = 1 + (int64_t)(notional / p->trade * (0.5 + unit(rnd(r))));
    k->n = n < 20000 ? n : 20000;
    int64_t v = (int64_t)(notional / (double)k->c * (double)SIM_SCALE / (double)p->step) * p->step;
    k->v = v < p->step ? p->step : v;
    int64_t vwap = k->l + (int64_t)((double)(k->h - k->l) * unit(rnd(r)));
    k->q = (int64_t)((__int128)k->v * vwap / SIM_SCALE);
    double lean = k->c > k->o ? 0.5 : k->c < k->o ? 0.1 : 0.3;
    k->V = (int64_t)((double)k->v * (lean + 0.4 * unit(rnd(r))) / (double)p->step) * p->step;
    k->Q = (int64_t)((__int128)k->q * k->V / k->v);
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
    const gen_param_t *p = &g_par[i];
    int64_t ot = sim_open_time(s);
    uint64_t u = (uint64_t)(ot >= 0 ? ot / 1000 : 0);  /* absolute second: the model's clock */
    rng_t r = { p->key ^ sim_hash64(u * 0x2545f4914f6cdd1dULL) };
    if (st->close == 0) { /* first second (see init_params) */
        st->close = price_at(p, u);
        /* trade ids grow with time too (100 per second, more than a symbol averages), so
         * a sim started later with the same seed continues the ids of an earlier one */
        st->next_trade += (int64_t)u * 100;
    }
    memset(k, 0, sizeof *k);
    k->o = k->h = k->l = k->c = st->close;
    if (rnd(&r) % 10 == 0) { /* ~10% of seconds without trades */
        k->f = k->L = -1;
        return 1;
    }
    double m = burst_at(p->key, u);
    double sig = p->amp * GEN_OCT_VAR * 1.33 * m;       /* about one second's volatility */
    k->c = price_at(p, u + 1);
    gen_range(p, &r, sig, k);
    gen_volume(p, &r, m, fabs(log((double)k->c / (double)k->o)) / sig, k);
    k->f = st->next_trade;
    k->L = st->next_trade + k->n - 1;
    st->close = k->c;
    st->next_trade += k->n;
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
