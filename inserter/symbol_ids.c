/* symbol_ids.c — kline_1s_lean stores a symbol as its integer id in kline_symbol
 * (schema/007, 012), so the direct COPY needs every id of a batch before it starts.
 * New symbols are registered in their own short statement before the batch transaction
 * (kp_symbol_ids_locked: ids are max + 1 under the checkpoint lock), and every id seen is
 * remembered here, so a live batch costs no round trip at all.
 *
 * The table is bounded: room for INS_SYMIDS_MIN names (the whole Binance universe eight
 * times over) or for one batch's worth if --batch-rows is larger, so a batch always fits
 * in an empty table. A batch that finds it full empties it and starts again; the ids come
 * back from the database, which never changes an id once given. calloc'd: the slots cost
 * memory as names land in them (all of it, ~1 MB at the default, once emptied).
 *
 * KP_TEST_SYMBOL_IDS=N (tests only; nothing else reads it) lowers INS_SYMIDS_MIN to N, so
 * a test can fill the table with a few dozen symbols. */
#include "ins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "pgd.h"

#define INS_SYMIDS_MIN 16384

struct ins_symid_slot {
    char name[KLINE_SYMBOL_MAX];  /* "" = empty */
    int32_t id;
};

/* The one table of this process (owned by this file; ins_symbols_init/_free). */
static struct ins_symid_slot *ins_symids;
static size_t ins_symids_slots;  /* power of two, at least twice ins_symids_cap */
static size_t ins_symids_cap;
static size_t ins_symids_used;

int ins_symbols_init(long long batch_rows, char *errbuf, size_t errlen)
{
    long long cap = INS_SYMIDS_MIN;
    const char *t = getenv("KP_TEST_SYMBOL_IDS");
    if (t && (cap = strtoll(t, NULL, 10)) < 1)
        return snprintf(errbuf, errlen, "KP_TEST_SYMBOL_IDS=%s: want a count", t), -1;
    ins_symids_cap = (size_t)(cap > batch_rows ? cap : batch_rows);
    for (ins_symids_slots = 16; ins_symids_slots < 2 * ins_symids_cap;)
        ins_symids_slots *= 2;
    ins_symids = calloc(ins_symids_slots, sizeof *ins_symids);
    if (!ins_symids)
        return snprintf(errbuf, errlen, "out of memory for %zu symbol ids", ins_symids_cap), -1;
    return 0;
}

void ins_symbols_free(void)
{
    free(ins_symids);
    ins_symids = NULL;
    ins_symids_used = 0;
}

static struct ins_symid_slot *ins_symid_slot(const char *name)
{
    size_t i = (size_t)kp_fnv1a(name) & (ins_symids_slots - 1);
    while (ins_symids[i].name[0] && strcmp(ins_symids[i].name, name) != 0)
        i = (i + 1) & (ins_symids_slots - 1);
    return &ins_symids[i];
}

int32_t ins_symbol_id(const char *name)
{
    const struct ins_symid_slot *s = ins_symid_slot(name);
    return s->name[0] ? s->id : -1;
}

static void ins_symid_put(const char *name, int32_t id)
{
    struct ins_symid_slot *s = ins_symid_slot(name);
    if (!s->name[0]) {
        snprintf(s->name, sizeof s->name, "%s", name);
        ins_symids_used++;
    }
    s->id = id;
}

/* The batch's symbols without an id yet, each once, as a text[] literal in *lit (malloc'd,
 * the caller frees it). Symbols are [A-Z0-9] (kline_validate), so nothing needs quoting.
 * Returns how many; -1 out of memory, -2 the table filled up (and holds placeholders). */
static long ins_symid_unknown(const ins_batch_t *b, char **lit)
{
    char *p = *lit = malloc(b->nrows * (KLINE_SYMBOL_MAX + 1) + 3);
    long n = 0;
    if (!p)
        return -1;
    *p++ = '{';
    for (size_t i = 0; i < b->nrows; i++) {
        const char *sym = b->rows[i].k.symbol;
        struct ins_symid_slot *s = ins_symid_slot(sym);
        if (s->name[0])
            continue;
        if (ins_symids_used == ins_symids_cap)
            return -2;
        ins_symid_put(sym, -1); /* once in the literal; the id comes from the reply */
        p += sprintf(p, "%s%s", n++ ? "," : "", sym);
    }
    *p++ = '}';
    *p = '\0';
    return n;
}

/* Stores the ids of the reply; every asked symbol must be in it. 0 / -1. */
static int ins_symid_take(PGresult *r, long asked, char *errbuf, size_t errlen)
{
    for (int i = 0; i < PQntuples(r); i++)
        ins_symid_put(PQgetvalue(r, i, 0), (int32_t)strtol(PQgetvalue(r, i, 1), NULL, 10));
    if (PQntuples(r) != asked)
        return snprintf(errbuf, errlen, "symbol ids: asked for %ld, got %d", asked, PQntuples(r)), -1;
    return 0;
}

/* Forgets every id: open addressing has no cheap removal of one entry, and the ids come
 * back from the database with the next batch. */
static void ins_symid_clear(void)
{
    memset(ins_symids, 0, ins_symids_slots * sizeof *ins_symids);
    ins_symids_used = 0;
}

/* ins_symid_unknown, after emptying the table once if the batch does not fit in what is
 * left of it (it always fits in an empty one: ins_symids_cap >= --batch-rows). */
static long ins_symid_unknown_fit(const ins_batch_t *b, char **lit)
{
    long n = ins_symid_unknown(b, lit);
    if (n != -2)
        return n;
    log_info("symbol ids: all %zu slots taken, forgetting them", ins_symids_cap);
    free(*lit);
    ins_symid_clear();
    return ins_symid_unknown(b, lit);
}

int ins_symbols_ensure(PGconn *c, const ins_batch_t *b, int64_t deadline, char *errbuf,
                       size_t errlen)
{
    char *lit = NULL;
    long n = ins_symid_unknown_fit(b, &lit);
    if (n < 0) {
        free(lit);
        ins_symid_clear(); /* no placeholder may stay */
        if (n == -2)
            return snprintf(errbuf, errlen, "symbol ids: more than %zu symbols in one batch",
                             ins_symids_cap), -1;
        return snprintf(errbuf, errlen, "out of memory for symbol ids"), -1;
    }
    int rc = 0;
    if (n > 0) {
        const char *params[1] = { lit };
        PGresult *r = pgd_query(c, "SELECT symbol, id FROM kp_symbol_ids_locked($1::text[])", 1,
                                params, deadline, errbuf, errlen);
        rc = r ? ins_symid_take(r, n, errbuf, errlen) : -1;
        PQclear(r);
        if (rc < 0)
            ins_symid_clear(); /* the placeholders of this batch must not stay */
        else
            log_debug("symbol ids: %ld new", n);
    }
    free(lit);
    return rc;
}
