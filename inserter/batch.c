/*
 * batch.c — the records of one batch, deduplicated in memory.
 *
 * Why dedupe here: INSERT ... ON CONFLICT DO UPDATE refuses to touch the same row twice
 * in one statement, and the exchange does resend a second (provisional then closed, or
 * the same closed kline twice). The rule is the one the upsert applies in the database:
 * a later record wins, except that a provisional kline never replaces a closed one.
 */
#include "ins.h"
#include "cfg.h"
#include "hash.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

void ins_batch_init(ins_batch_t *b)
{
    memset(b, 0, sizeof *b);
    b->rej_prefix = INS_REJECT_PREFIX_DEFAULT;
}

void ins_batch_reset(ins_batch_t *b)
{
    for (size_t i = 0; i < b->nrej; i++)
        free(b->rej[i].raw);
    b->nrows = b->nrej = b->npos = b->nrecords = b->ndup = 0;
    b->started_ms = 0;
    b->minute_end = false;
    if (b->slots)
        memset(b->slots, 0, b->nslots * sizeof *b->slots);
}

void ins_batch_free(ins_batch_t *b)
{
    size_t prefix = b->rej_prefix;
    ins_batch_reset(b);
    free(b->rows);
    free(b->slots);
    free(b->rej);
    free(b->pos);
    memset(b, 0, sizeof *b);
    b->rej_prefix = prefix; /* reusable after free, as after init */
}

void ins_printable(char *dst, size_t dstlen, const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t n = 0;
    if (dstlen == 0)
        return;
    for (size_t i = 0; i < len && n + 1 < dstlen; i++)
        dst[n++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    dst[n] = '\0';
}

static uint64_t batch_hash(const char *symbol, int64_t open_time)
{
    uint64_t h = kp_fnv1a(symbol);
    h ^= (uint64_t)open_time;
    h *= 0x9e3779b97f4a7c15ULL; /* spread the time bits over the high bits too */
    return h ^ (h >> 29);
}

/* Returns the slot of (symbol, open_time): its row, or the empty slot to use. */
static size_t batch_find(const ins_batch_t *b, const char *symbol, int64_t open_time)
{
    size_t mask = b->nslots - 1;
    size_t i = (size_t)batch_hash(symbol, open_time) & mask;
    for (;;) {
        uint32_t s = b->slots[i];
        if (s == 0)
            return i;
        const kline_t *k = &b->rows[s - 1].k;
        if (k->open_time == open_time && strcmp(k->symbol, symbol) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

const ins_row_t *ins_batch_lookup(const ins_batch_t *b, const char *symbol, int64_t open_time)
{
    if (b->nslots == 0)
        return NULL;
    uint32_t slot = b->slots[batch_find(b, symbol, open_time)];
    return slot ? &b->rows[slot - 1] : NULL;
}

static void batch_reindex(ins_batch_t *b)
{
    memset(b->slots, 0, b->nslots * sizeof *b->slots);
    for (size_t r = 0; r < b->nrows; r++) {
        size_t i = batch_find(b, b->rows[r].k.symbol, b->rows[r].k.open_time);
        b->slots[i] = (uint32_t)(r + 1);
    }
}

static int batch_rehash(ins_batch_t *b, size_t nslots)
{
    uint32_t *ns = calloc(nslots, sizeof *ns);
    if (!ns)
        return -1;
    free(b->slots);
    b->slots = ns;
    b->nslots = nslots;
    batch_reindex(b);
    return 0;
}

static int batch_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *na = realloc(*arr, nc * elem);
    if (!na)
        return -1;
    *arr = na;
    *cap = nc;
    return 0;
}

static int batch_note_offset(ins_batch_t *b, int topic, int32_t part, int64_t off)
{
    if (topic == INS_TOPIC_NONE)
        return 0;
    for (size_t i = 0; i < b->npos; i++) {
        ins_pos_t *p = &b->pos[i];
        if (p->topic == topic && p->part == part) {
            if (off < p->first)
                p->first = off;
            if (off > p->last)
                p->last = off;
            return 0;
        }
    }
    if (batch_grow((void **)&b->pos, &b->cappos, b->npos + 1, sizeof *b->pos) < 0)
        return -1;
    b->pos[b->npos++] = (ins_pos_t){ .topic = topic, .part = part, .first = off, .last = off };
    return 0;
}

/* Arms the batch's age clock on its first record (--flush-ms counts from there). */
static void batch_started(ins_batch_t *b)
{
    if (b->nrecords == 0)
        b->started_ms = cfg_mono_ms();
}

int ins_batch_add_kline(ins_batch_t *b, const kline_t *k, int topic, int32_t part,
                        int64_t off, int64_t ts_ms)
{
    if (batch_note_offset(b, topic, part, off) < 0)
        return -1;
    if (b->nslots < 2 * (b->nrows + 1) + 16 && batch_rehash(b, b->nslots ? b->nslots * 2 : 8192) < 0)
        return -1;
    size_t i = batch_find(b, k->symbol, k->open_time);
    batch_started(b);
    b->nrecords++;
    ins_row_t rec = { .k = *k, .part = part, .off = off, .ts_ms = ts_ms };
    if (b->slots[i]) {
        ins_row_t *old = &b->rows[b->slots[i] - 1];
        b->ndup++;
        if (!(old->k.closed && !k->closed))
            *old = rec;
        return 0;
    }
    if (batch_grow((void **)&b->rows, &b->caprows, b->nrows + 1, sizeof *b->rows) < 0)
        return -1;
    b->rows[b->nrows++] = rec;
    b->slots[i] = (uint32_t)b->nrows;
    return 0;
}

int ins_batch_add_reject(ins_batch_t *b, const void *raw, size_t len, const char *reason,
                         const char *origin, int topic, int32_t part, int64_t off)
{
    if (batch_note_offset(b, topic, part, off) < 0 ||
        batch_grow((void **)&b->rej, &b->caprej, b->nrej + 1, sizeof *b->rej) < 0)
        return -1;
    ins_reject_t *r = &b->rej[b->nrej];
    size_t keep = len < b->rej_prefix ? len : b->rej_prefix;
    unsigned int mdlen = 0;
    if (!EVP_Digest(raw, len, r->sha256, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof r->sha256)
        return -1;
    r->raw = malloc(keep ? keep : 1); /* owned by the batch until ins_batch_reset */
    if (!r->raw)
        return -1;
    if (keep)
        memcpy(r->raw, raw, keep);
    r->len = keep;
    r->size = (int64_t)len;
    ins_printable(r->reason, sizeof r->reason, reason, strlen(reason));
    ins_printable(r->origin, sizeof r->origin, origin, strlen(origin));
    r->topic = topic;
    r->part = part;
    b->nrej++;
    batch_started(b);
    b->nrecords++;
    return 0;
}

void ins_batch_drop(ins_batch_t *b, bool (*drop)(int topic, int32_t part, void *ud), void *ud)
{
    size_t w = 0, dropped = 0;
    for (size_t r = 0; r < b->nrows; r++) {
        /* Rows only ever come from the klines topic (or from -i, never dropped). */
        if (b->rows[r].part >= 0 && drop(INS_TOPIC_KLINES, b->rows[r].part, ud)) {
            dropped++;
            continue;
        }
        b->rows[w++] = b->rows[r];
    }
    b->nrows = w;
    w = 0;
    for (size_t r = 0; r < b->nrej; r++) {
        if (b->rej[r].topic != INS_TOPIC_NONE && drop(b->rej[r].topic, b->rej[r].part, ud)) {
            free(b->rej[r].raw);
            dropped++;
            continue;
        }
        b->rej[w++] = b->rej[r];
    }
    b->nrej = w;
    w = 0;
    for (size_t p = 0; p < b->npos; p++)
        if (!drop(b->pos[p].topic, b->pos[p].part, ud))
            b->pos[w++] = b->pos[p];
    b->npos = w;
    /* Duplicates merged away are not tracked per partition: count what is left. */
    b->nrecords = b->nrecords > dropped ? b->nrecords - dropped : 0;
    if (b->nrows + b->nrej == 0)
        b->nrecords = b->ndup = 0;
    if (b->nslots)
        batch_reindex(b);
}
