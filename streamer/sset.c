/* sset.c — a client's subscriptions keyed by symbol: an open-addressing hash set (linear
 * probing, at most half full, backward-shift deletion so there are no tombstones). "Does
 * this client follow X" is O(1); it used to walk the client's list, so a repeated ["*"]
 * at 2,000 symbols cost 2,000 x 2,000 steps. The set holds pointers it does not own. */
#include "streamer.h"

#include <stdlib.h>

/* Symbol ids are sequential: a multiplicative hash spreads them over the table. */
static unsigned st_sset_home(const struct st_sset *t, const struct st_symbol *s)
{
    return (unsigned)((s->id * 0x9E3779B97F4A7C15ULL) >> 32) & (t->cap - 1);
}

struct st_sub *st_sset_find(const struct st_sset *t, const struct st_symbol *s)
{
    if (!t->cap)
        return NULL;
    for (unsigned i = st_sset_home(t, s);; i = (i + 1) & (t->cap - 1)) {
        struct st_sub *x = t->slot[i];
        if (!x || x->s == s)
            return x; /* never full, so an empty slot ends every probe */
    }
}

static void st_sset_insert(struct st_sset *t, struct st_sub *sub)
{
    unsigned i = st_sset_home(t, sub->s);
    while (t->slot[i])
        i = (i + 1) & (t->cap - 1);
    t->slot[i] = sub;
}

int st_sset_add(struct st_sset *t, struct st_sub *sub, int n)
{
    if ((unsigned)(n + 1) * 2 > t->cap) {
        struct st_sset g = {calloc(t->cap ? t->cap * 2 : 16, sizeof *g.slot), t->cap ? t->cap * 2 : 16};
        if (!g.slot)
            return -1;
        for (unsigned i = 0; i < t->cap; i++)
            if (t->slot[i])
                st_sset_insert(&g, t->slot[i]);
        free(t->slot);
        *t = g;
    }
    st_sset_insert(t, sub);
    return 0;
}

void st_sset_del(struct st_sset *t, const struct st_sub *sub)
{
    unsigned mask = t->cap - 1, i = st_sset_home(t, sub->s);
    while (t->slot[i] != sub)
        i = (i + 1) & mask;
    /* Pull later entries of the probe run back into the hole unless that would put one
     * before its home slot (cyclically): then lookups still find everything. */
    for (unsigned j = (i + 1) & mask; t->slot[j]; j = (j + 1) & mask) {
        unsigned home = st_sset_home(t, t->slot[j]->s);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->slot[i] = t->slot[j];
            i = j;
        }
    }
    t->slot[i] = NULL;
}

void st_sset_free(struct st_sset *t)
{
    free(t->slot);
    t->slot = NULL;
    t->cap = 0;
}
