/* replay.c — --replay FILE: klines from canonical NDJSON, Binance WS events or
 * data.binance.vision CSV rows, laid out as dense per-symbol arrays over the
 * replayed seconds so the stream, REST and truth serve them like generated ones. */
#include "sim.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_MAX_CELLS (50LL * 1000 * 1000)

typedef struct rec { int sym; int64_t t; sim_k_t k; } rec_t;

typedef struct recs {
    rec_t *v; size_t n, cap;
    char (*names)[SIM_SYM_MAX]; int nnames, capnames;
} recs_t;

static int name_index(recs_t *r, const char *name)
{
    for (int k = 0; k < r->nnames; k++)
        if (strcmp(r->names[k], name) == 0)
            return k;
    if (r->nnames == r->capnames) {
        int nc = r->capnames ? r->capnames * 2 : 8;
        void *p = realloc(r->names, (size_t)nc * sizeof *r->names);
        if (!p)
            return -1;
        r->names = p;
        r->capnames = nc;
    }
    snprintf(r->names[r->nnames], SIM_SYM_MAX, "%s", name);
    return r->nnames++;
}

static int push(recs_t *r, const char *name, int64_t t, const sim_k_t *k)
{
    int i = name_index(r, name);
    if (i < 0)
        return -1;
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 1024;
        rec_t *p = realloc(r->v, nc * sizeof *p);
        if (!p)
            return -1;
        r->v = p;
        r->cap = nc;
    }
    r->v[r->n].sym = i;
    r->v[r->n].t = t;
    r->v[r->n].k = *k;
    r->n++;
    return 0;
}

static int jdec(json_t *o, const char *key, int64_t *out)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? sim_parse_dec(s, strlen(s), out) : -1;
}

static int jint(json_t *o, const char *key, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int parse_json(const char *line, char *name, int64_t *t, sim_k_t *k, char *why, size_t wl)
{
    json_error_t je;
    json_t *root = json_loads(line, 0, &je), *o;
    int rc = -1;
    if (!root) {
        snprintf(why, wl, "bad JSON: %.100s", je.text);
        return -1;
    }
    memset(k, 0, sizeof *k);
    if (json_object_get(root, "open_time")) { /* canonical record */
        o = root;
        const char *s = json_string_value(json_object_get(o, "symbol"));
        if (!s || jint(o, "open_time", 0, t) || jdec(o, "open", &k->o) || jdec(o, "high", &k->h) ||
            jdec(o, "low", &k->l) || jdec(o, "close", &k->c) || jdec(o, "volume", &k->v) ||
            jdec(o, "quote_volume", &k->q) || jdec(o, "taker_buy_volume", &k->V) ||
            jdec(o, "taker_buy_quote_volume", &k->Q) || jint(o, "trades", 0, &k->n) ||
            jint(o, "first_trade_id", -1, &k->f) || jint(o, "last_trade_id", -1, &k->L)) {
            snprintf(why, wl, "canonical record with missing or invalid fields");
            goto out;
        }
        snprintf(name, SIM_SYM_MAX, "%s", s);
    } else {
        o = json_object_get(root, "data") ? json_object_get(root, "data") : root;
        json_t *kk = json_object_get(o, "k");
        const char *s = json_string_value(json_object_get(kk, "s"));
        if (!kk || !s || jint(kk, "t", 0, t) || jdec(kk, "o", &k->o) || jdec(kk, "h", &k->h) ||
            jdec(kk, "l", &k->l) || jdec(kk, "c", &k->c) || jdec(kk, "v", &k->v) || jdec(kk, "q", &k->q) ||
            jdec(kk, "V", &k->V) || jdec(kk, "Q", &k->Q) || jint(kk, "n", 0, &k->n) ||
            jint(kk, "f", -1, &k->f) || jint(kk, "L", -1, &k->L)) {
            snprintf(why, wl, "not a canonical record nor a kline event");
            goto out;
        }
        if (json_is_false(json_object_get(kk, "x"))) {
            rc = 1; /* provisional: skipped, the closed one follows */
            goto out;
        }
        snprintf(name, SIM_SYM_MAX, "%s", s);
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int parse_csv(const char *line, int64_t *t, sim_k_t *k, char *why, size_t wl)
{
    const char *f[12];
    size_t fl[12];
    int n = 0;
    const char *p = line;
    while (n < 12) {
        const char *e = strchr(p, ',');
        f[n] = p;
        fl[n] = e ? (size_t)(e - p) : strcspn(p, "\r\n");
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    if (n < 11) {
        snprintf(why, wl, "CSV row with %d fields, expected 12", n);
        return -1;
    }
    char num[32];
    int64_t nt;
    memset(k, 0, sizeof *k);
    snprintf(num, sizeof num, "%.*s", (int)(fl[0] < 31 ? fl[0] : 31), f[0]);
    char *e;
    *t = strtoll(num, &e, 10);
    if (*e || !*num) {
        snprintf(why, wl, "CSV open time '%s' is not an integer", num);
        return -1;
    }
    if (*t > 100000000000000LL) /* microseconds (2025+ spot dumps) */
        *t /= 1000;
    snprintf(num, sizeof num, "%.*s", (int)(fl[8] < 31 ? fl[8] : 31), f[8]);
    nt = strtoll(num, &e, 10);
    if (*e || !*num ||
        sim_parse_dec(f[1], fl[1], &k->o) || sim_parse_dec(f[2], fl[2], &k->h) ||
        sim_parse_dec(f[3], fl[3], &k->l) || sim_parse_dec(f[4], fl[4], &k->c) ||
        sim_parse_dec(f[5], fl[5], &k->v) || sim_parse_dec(f[7], fl[7], &k->q) ||
        sim_parse_dec(f[9], fl[9], &k->V) || sim_parse_dec(f[10], fl[10], &k->Q)) {
        snprintf(why, wl, "CSV row with a non-decimal field");
        return -1;
    }
    k->n = nt;
    k->f = k->L = -1; /* dumps carry no trade ids */
    return 0;
}

int sim_replay_load(const char *path, char **symbols, int nsymbols, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "cannot open: %m");
        return -1;
    }
    recs_t r = { 0 };
    char *line = NULL, why[160], name[SIM_SYM_MAX];
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = -1;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len || line[0] == '#')
            continue;
        int64_t t;
        sim_k_t k;
        int prc;
        if (line[0] == '{') {
            prc = parse_json(line, name, &t, &k, why, sizeof why);
        } else if (line[0] >= '0' && line[0] <= '9') {
            if (nsymbols < 1) {
                snprintf(err, errlen, "line %ld: CSV rows need --symbols", lineno);
                goto out;
            }
            snprintf(name, sizeof name, "%s", symbols[0]);
            prc = parse_csv(line, &t, &k, why, sizeof why);
        } else {
            continue; /* a CSV header line */
        }
        if (prc < 0) {
            snprintf(err, errlen, "line %ld: %s", lineno, why);
            goto out;
        }
        if (prc > 0)
            continue;
        if (t % 1000 != 0) {
            snprintf(err, errlen, "line %ld: open time %lld is not on a whole second", lineno, (long long)t);
            goto out;
        }
        for (char *c = name; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
        if (push(&r, name, t, &k) < 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    if (!r.n) {
        snprintf(err, errlen, "no klines in file");
        goto out;
    }
    int64_t t0 = r.v[0].t, t1 = r.v[0].t;
    for (size_t k = 1; k < r.n; k++) {
        if (r.v[k].t < t0) t0 = r.v[k].t;
        if (r.v[k].t > t1) t1 = r.v[k].t;
    }
    int64_t n = (t1 - t0) / 1000 + 1;
    if (n * r.nnames > REPLAY_MAX_CELLS) {
        snprintf(err, errlen, "%lld seconds x %d symbols is too sparse/large to replay", (long long)n, r.nnames);
        goto out;
    }
    sim_symbol_t *syms = calloc((size_t)r.nnames, sizeof *syms);
    if (!syms) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int k = 0; k < r.nnames; k++) {
        sim_symbol_set_name(&syms[k], r.names[k]);
        syms[k].replay = calloc((size_t)n, sizeof *syms[k].replay);
        syms[k].present = calloc((size_t)n, 1);
        if (!syms[k].replay || !syms[k].present) {
            for (int j = 0; j <= k; j++) {
                free(syms[j].replay);
                free(syms[j].present);
            }
            free(syms);
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    for (size_t k = 0; k < r.n; k++) { /* a later row for the same second wins */
        int64_t s = (r.v[k].t - t0) / 1000;
        syms[r.v[k].sym].replay[s] = r.v[k].k;
        syms[r.v[k].sym].present[s] = 1;
    }
    g_sim.syms = syms;
    g_sim.nsyms = (size_t)r.nnames;
    g_sim.replay_n = n;
    g_sim.cfg.start_ms = t0;
    sim_log("info", "replaying %zu klines of %d symbols over %lld seconds from %s", r.n, r.nnames,
            (long long)n, path);
    rc = 0;
out:
    free(line);
    free(r.v);
    free(r.names);
    fclose(fp);
    return rc;
}
