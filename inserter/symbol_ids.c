/* symbol_ids.c — kline_1s_lean stores a symbol as its integer id in kline_symbol
 * (schema/007, 012), so the direct COPY needs every id of a batch before it starts.
 * New symbols are registered in their own short statement before the batch transaction
 * (kp_symbol_ids_locked: ids are max + 1 under the checkpoint lock), and every id seen is
 * remembered here, so a live batch costs no round trip at all.
 *
 * The table is bounded: INS_SYMIDS_MAX names (the whole Binance universe eight times
 * over). A batch that would overflow it empties it first; the ids come back from the
 * database, which never changes an id once given. */
#include "ins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "pgd.h"

#define INS_SYMIDS_MAX   16384
#define INS_SYMIDS_SLOTS (2 * INS_SYMIDS_MAX) /* power of two, at most half full */

struct ins_symid_slot {
    char name[KLINE_SYMBOL_MAX];  /* "" = empty */
    int32_t id;
};

/* The one table of this process (owned by this file). */
static struct ins_symid_slot ins_symids[INS_SYMIDS_SLOTS];
static size_t ins_symids_used;

static struct ins_symid_slot *ins_symid_slot(const char *name)
{
    size_t i = (size_t)kp_fnv1a(name) & (INS_SYMIDS_SLOTS - 1);
    while (ins_symids[i].name[0] && strcmp(ins_symids[i].name, name) != 0)
        i = (i + 1) & (INS_SYMIDS_SLOTS - 1);
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
 * Returns how many. */
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
    memset(ins_symids, 0, sizeof ins_symids);
    ins_symids_used = 0;
}

int ins_symbols_ensure(PGconn *c, const ins_batch_t *b, int64_t deadline, char *errbuf,
                       size_t errlen)
{
    if (ins_symids_used + b->nrows > INS_SYMIDS_MAX)
        ins_symid_clear();
    char *lit = NULL;
    long n = ins_symid_unknown(b, &lit);
    if (n < 0)
        return snprintf(errbuf, errlen, "out of memory for symbol ids"), -1;
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
