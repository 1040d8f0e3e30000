/*
 * fastparse.c — a scanner for the one input shape that dominates: the canonical record
 * exactly as kline_format writes it (keys in its order, no whitespace, no escapes).
 *
 * Why: kline_parse builds a jansson object per message (allocations, a hash per key),
 * which was most of the inserter's CPU; the scanner reads the same bytes in one pass.
 * It never decides alone: anything it does not recognise to the letter — another key
 * order, whitespace, an escape, a missing optional key, a number it would have to
 * think about, a kline kline_validate refuses — returns -1 and the caller hands the
 * input to kline_parse, which accepts or rejects it with its own reason. For what the
 * scanner does accept, kline_parse gives the same kline_t, byte for byte (tested in
 * inserter/test/test_inserter_batch.c against kline_parse on mutated records).
 */
#include "ins.h"

#include <string.h>

/* Same bound as kline.c's (9999-12-31T23:59:59.999Z); beyond it kline_parse decides. */
#define FP_TIME_MAX INT64_C(253402300799999)

typedef struct fp {
    const char *p, *end;
} fp_t;

static bool fp_lit(fp_t *f, const char *lit, size_t n)
{
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, lit, n) != 0)
        return false;
    f->p += n;
    return true;
}

#define FP_LIT(f, s) fp_lit((f), (s), sizeof(s) - 1)

/* A JSON string of printable ASCII without '"' or '\\' (so no escapes), copied into
 * dst (size cap, NUL-terminated). */
static bool fp_str(fp_t *f, char *dst, size_t cap)
{
    if (f->p >= f->end || *f->p != '"')
        return false;
    const char *s = ++f->p;
    while (f->p < f->end && *f->p != '"') {
        unsigned char c = (unsigned char)*f->p;
        if (c < 0x20 || c >= 0x7f || c == '\\')
            return false;
        f->p++;
    }
    if (f->p >= f->end)
        return false;
    size_t n = (size_t)(f->p - s);
    f->p++; /* closing quote */
    if (n >= cap)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* A JSON integer, -?(0|[1-9][0-9]*), at most 18 digits. The length is checked before a
 * digit is added, so 19 or more digits are refused without being computed (10^18 - 1
 * fits an int64_t; 19 nines would overflow it, which is undefined behaviour). */
static bool fp_int(fp_t *f, int64_t *out)
{
    bool neg = false;
    if (f->p < f->end && *f->p == '-') {
        neg = true;
        f->p++;
    }
    const char *s = f->p;
    int64_t v = 0;
    while (f->p < f->end && *f->p >= '0' && *f->p <= '9') {
        if (f->p - s >= 18)
            return false;
        v = v * 10 + (*f->p++ - '0');
    }
    size_t n = (size_t)(f->p - s);
    if (n == 0 || (n > 1 && *s == '0') || (neg && v == 0))
        return false;
    *out = neg ? -v : v;
    return true;
}

static bool fp_range(fp_t *f, int64_t min, int64_t max, int64_t *out)
{
    return fp_int(f, out) && *out >= min && *out <= max;
}

static bool fp_dec(fp_t *f, char dst[KLINE_DEC_MAX])
{
    return fp_str(f, dst, KLINE_DEC_MAX) && kline_dec_valid(dst);
}

int ins_parse_canonical(const char *buf, size_t len, kline_t *k)
{
    fp_t f = { buf, buf + len };
    kline_t t;
    char src[8];
    memset(&t, 0, sizeof t); /* as kline_parse: equal klines are equal bytes */
    bool ok =
        FP_LIT(&f, "{\"symbol\":") && fp_str(&f, t.symbol, KLINE_SYMBOL_MAX) &&
        kline_symbol_valid(t.symbol) &&
        FP_LIT(&f, ",\"interval\":") && fp_str(&f, t.interval, KLINE_INTERVAL_MAX) &&
        kline_interval_valid(t.interval) &&
        FP_LIT(&f, ",\"open_time\":") && fp_range(&f, 0, FP_TIME_MAX, &t.open_time) &&
        FP_LIT(&f, ",\"close_time\":") && fp_range(&f, 0, FP_TIME_MAX, &t.close_time) &&
        FP_LIT(&f, ",\"open\":") && fp_dec(&f, t.open) &&
        FP_LIT(&f, ",\"high\":") && fp_dec(&f, t.high) &&
        FP_LIT(&f, ",\"low\":") && fp_dec(&f, t.low) &&
        FP_LIT(&f, ",\"close\":") && fp_dec(&f, t.close) &&
        FP_LIT(&f, ",\"volume\":") && fp_dec(&f, t.volume) &&
        FP_LIT(&f, ",\"quote_volume\":") && fp_dec(&f, t.quote_volume) &&
        FP_LIT(&f, ",\"trades\":") && fp_range(&f, 0, INT64_MAX, &t.trades) &&
        FP_LIT(&f, ",\"taker_buy_volume\":") && fp_dec(&f, t.taker_buy_volume) &&
        FP_LIT(&f, ",\"taker_buy_quote_volume\":") && fp_dec(&f, t.taker_buy_quote_volume) &&
        FP_LIT(&f, ",\"first_trade_id\":") && fp_range(&f, -1, INT64_MAX, &t.first_trade_id) &&
        FP_LIT(&f, ",\"last_trade_id\":") && fp_range(&f, -1, INT64_MAX, &t.last_trade_id) &&
        FP_LIT(&f, ",\"closed\":");
    if (!ok)
        return -1;
    if (FP_LIT(&f, "true"))
        t.closed = true;
    else if (!FP_LIT(&f, "false"))
        return -1;
    if (!FP_LIT(&f, ",\"event_time\":") || !fp_range(&f, 0, FP_TIME_MAX, &t.event_time) ||
        !FP_LIT(&f, ",\"source\":") || !fp_str(&f, src, sizeof src) || !FP_LIT(&f, "}") ||
        f.p != f.end)
        return -1;
    if (strcmp(src, "ws") == 0)
        t.source = KLINE_SRC_WS;
    else if (strcmp(src, "rest") == 0)
        t.source = KLINE_SRC_REST;
    else if (strcmp(src, "replay") == 0)
        t.source = KLINE_SRC_REPLAY;
    else
        return -1;
    char why[8];
    if (kline_validate(&t, why, sizeof why) < 0)
        return -1;
    *k = t;
    return 0;
}
