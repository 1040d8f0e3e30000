/*
 * kline_fast.c — the codec's fast first attempt (kline_parse_fast): the two inputs that
 * are nearly all the traffic, read in one pass straight into a kline_t, without the
 * jansson tree that costs about half the CPU of a message in allocations and hashing:
 *
 *   - a Binance WS kline event, raw {"e":"kline",..} or combined {"stream":..,"data":..},
 *     keys in any order, whitespace allowed (the producer's input);
 *   - the canonical record, keys in kline_format's order, no whitespace between a key
 *     and the comma before it (the inserter's input).
 *
 * It never rejects. Anything it does not read to the letter — an escape, a non-ASCII
 * byte, an unknown or repeated key, a real number, more than 18 digits, another event
 * — returns -1 and the full path (kline.c) decides, with its reason. Each field it does
 * read goes through the rules of kline_rules.h, the ones the full path applies, and the
 * result through kline_validate, so what it accepts is the kline_t kline_parse_full
 * gives, byte for byte (fuzz/fuzz_fast.c and tests/unit/test_kline_fast.c check that).
 */
#include "kline.h"
#include "kline_rules.h"

#include <string.h>

typedef struct kline_fast {
    const char *p, *end;
} kline_fast_t;

/* What a value is read as. */
enum { KF_SYM, KF_IVL, KF_DEC, KF_INT, KF_BOOL, KF_SRC, KF_SKIP };

/* One field: where it goes and what it may hold. */
typedef struct kline_fast_field {
    unsigned char type;
    unsigned short off; /* into kline_t */
    int64_t min, max;   /* KF_INT */
} kline_fast_field_t;

#define KF_F(type, field) { (type), offsetof(kline_t, field), 0, 0 }
#define KF_I(field, range) { KF_INT, offsetof(kline_t, field), range }

/* The lexer's small functions are forced inline: a call per token was ~5 % of the
 * instructions of a message next to the scanners they replaced (kp-parse-bench). */
#define KF_INLINE static inline __attribute__((always_inline))

/* JSON's whitespace, which is also jansson's. */
KF_INLINE void kline_fast_ws(kline_fast_t *f)
{
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
        f->p++;
}

KF_INLINE bool kline_fast_char(kline_fast_t *f, char c)
{
    if (f->p < f->end && *f->p == c) { /* the usual case: no whitespace */
        f->p++;
        return true;
    }
    kline_fast_ws(f);
    if (f->p >= f->end || *f->p != c)
        return false;
    f->p++;
    return true;
}

/* Exactly these bytes, no whitespace first (the canonical record's "key": parts). */
KF_INLINE bool kline_fast_lit(kline_fast_t *f, const char *lit, size_t n)
{
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, lit, n) != 0)
        return false;
    f->p += n;
    return true;
}

/* A string of printable ASCII without escapes: its bytes, not NUL-terminated. Such a
 * string is the same text in jansson, so the field rules see the same bytes. */
KF_INLINE bool kline_fast_str(kline_fast_t *f, const char **s, size_t *n)
{
    if (!kline_fast_char(f, '"'))
        return false;
    const char *b = f->p, *p = b, *end = f->end; /* locals: kept in registers */
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c == '\\' || c < 0x20 || c >= 0x7f)
            return false;
    }
    if (p >= end)
        return false;
    *s = b;
    *n = (size_t)(p - b);
    f->p = p + 1;
    return true;
}

/* A JSON integer -?(0|[1-9][0-9]*) of at most 18 digits, in [min, max]. The length is
 * checked before a digit is added, so 19 or more are left to jansson without being
 * computed (19 nines overflow an int64_t: undefined behaviour). */
KF_INLINE bool kline_fast_int(kline_fast_t *f, int64_t min, int64_t max, int64_t *out)
{
    kline_fast_ws(f);
    const char *p = f->p, *end = f->end;
    bool neg = p < end && *p == '-';
    if (neg)
        p++;
    const char *b = p;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - b >= 18)
            return false;
        v = v * 10 + (*p++ - '0');
    }
    size_t nd = (size_t)(p - b);
    if (nd == 0 || (nd > 1 && *b == '0'))
        return false; /* leading zeros are not JSON */
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
        return false; /* a real: the full path names it */
    f->p = p;
    v = neg ? -v : v;
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool kline_fast_bool(kline_fast_t *f, bool *out)
{
    kline_fast_ws(f);
    if (kline_fast_lit(f, "true", 4)) {
        *out = true;
        return true;
    }
    if (kline_fast_lit(f, "false", 5)) {
        *out = false;
        return true;
    }
    return false;
}

/* A scalar whose value is not used (string, integer, true, false, null). */
static bool kline_fast_skip(kline_fast_t *f)
{
    const char *s;
    size_t n;
    int64_t i;
    bool b;
    kline_fast_ws(f);
    if (f->p >= f->end)
        return false;
    if (*f->p == '"')
        return kline_fast_str(f, &s, &n);
    if (*f->p == 't' || *f->p == 'f')
        return kline_fast_bool(f, &b);
    if (kline_fast_lit(f, "null", 4))
        return true;
    return kline_fast_int(f, INT64_MIN + 1, INT64_MAX, &i);
}

/* One value into k as d says, by the rules of kline_rules.h. */
static bool kline_fast_value(kline_fast_t *f, const kline_fast_field_t *d, kline_t *k)
{
    char *dst = (char *)k + d->off;
    const char *s;
    size_t n;
    switch (d->type) {
    case KF_SYM:
        return kline_fast_str(f, &s, &n) && kline_symbol_copy(s, n, dst, "", NULL, 0) == 0;
    case KF_IVL:
        return kline_fast_str(f, &s, &n) && kline_interval_copy(s, n, dst, "", NULL, 0) == 0;
    case KF_DEC:
        return kline_fast_str(f, &s, &n) && kline_dec_copy(s, n, dst, "", NULL, 0) == 0;
    case KF_INT:
        return kline_fast_int(f, d->min, d->max, (int64_t *)(void *)dst);
    case KF_BOOL:
        return kline_fast_bool(f, (bool *)(void *)dst);
    case KF_SRC:
        return kline_fast_str(f, &s, &n) &&
               kline_source_from(s, n, (enum kline_source *)(void *)dst) == 0;
    default:
        return kline_fast_skip(f);
    }
}

/* After a member: true and *more when a ',' follows, true and !*more at '}'. */
KF_INLINE bool kline_fast_next(kline_fast_t *f, bool *more)
{
    *more = kline_fast_char(f, ',');
    return *more || kline_fast_char(f, '}');
}

/* ---------------------------------------------------------------- canonical record */

/* kline_format's keys in its order, each with the bytes that lead to its value. */
static const struct {
    const char *lit;
    unsigned char len;
    kline_fast_field_t d;
} kline_fast_canon[] = {
#define KF_KEY(first, key) first "\"" key "\":", sizeof(first "\"" key "\":") - 1
    { KF_KEY("{", "symbol"), KF_F(KF_SYM, symbol) },
    { KF_KEY(",", "interval"), KF_F(KF_IVL, interval) },
    { KF_KEY(",", "open_time"), KF_I(open_time, KLINE_RANGE_TIME) },
    { KF_KEY(",", "close_time"), KF_I(close_time, KLINE_RANGE_TIME) },
    { KF_KEY(",", "open"), KF_F(KF_DEC, open) },
    { KF_KEY(",", "high"), KF_F(KF_DEC, high) },
    { KF_KEY(",", "low"), KF_F(KF_DEC, low) },
    { KF_KEY(",", "close"), KF_F(KF_DEC, close) },
    { KF_KEY(",", "volume"), KF_F(KF_DEC, volume) },
    { KF_KEY(",", "quote_volume"), KF_F(KF_DEC, quote_volume) },
    { KF_KEY(",", "trades"), KF_I(trades, KLINE_RANGE_COUNT) },
    { KF_KEY(",", "taker_buy_volume"), KF_F(KF_DEC, taker_buy_volume) },
    { KF_KEY(",", "taker_buy_quote_volume"), KF_F(KF_DEC, taker_buy_quote_volume) },
    { KF_KEY(",", "first_trade_id"), KF_I(first_trade_id, KLINE_RANGE_ID) },
    { KF_KEY(",", "last_trade_id"), KF_I(last_trade_id, KLINE_RANGE_ID) },
    { KF_KEY(",", "closed"), KF_F(KF_BOOL, closed) },
    { KF_KEY(",", "event_time"), KF_I(event_time, KLINE_RANGE_TIME) },
    { KF_KEY(",", "source"), KF_F(KF_SRC, source) },
#undef KF_KEY
};

static bool kline_fast_canonical(kline_fast_t *f, kline_t *k)
{
    for (size_t i = 0; i < sizeof kline_fast_canon / sizeof kline_fast_canon[0]; i++) {
        if (!kline_fast_lit(f, kline_fast_canon[i].lit, kline_fast_canon[i].len) ||
            !kline_fast_value(f, &kline_fast_canon[i].d, k))
            return false;
    }
    return kline_fast_char(f, '}');
}

/* ---------------------------------------------------------------- WS kline event */

/* The keys of "k", in the order of kline_fast_ws_key; each has its bit in "seen". */
static const struct {
    unsigned bit;
    kline_fast_field_t d;
} kline_fast_ws_keys[] = {
    { 1u << 1, KF_I(open_time, KLINE_RANGE_TIME) },       /* t */
    { 1u << 2, KF_I(close_time, KLINE_RANGE_TIME) },      /* T */
    { 1u << 3, KF_F(KF_SYM, symbol) },                    /* s */
    { 1u << 4, KF_F(KF_IVL, interval) },                  /* i */
    { 1u << 5, KF_F(KF_DEC, open) },                      /* o */
    { 1u << 6, KF_F(KF_DEC, close) },                     /* c */
    { 1u << 7, KF_F(KF_DEC, high) },                      /* h */
    { 1u << 8, KF_F(KF_DEC, low) },                       /* l */
    { 1u << 9, KF_F(KF_DEC, volume) },                    /* v */
    { 1u << 10, KF_I(trades, KLINE_RANGE_COUNT) },        /* n */
    { 1u << 11, KF_F(KF_BOOL, closed) },                  /* x */
    { 1u << 12, KF_F(KF_DEC, quote_volume) },             /* q */
    { 1u << 13, KF_F(KF_DEC, taker_buy_volume) },         /* V */
    { 1u << 14, KF_F(KF_DEC, taker_buy_quote_volume) },   /* Q */
    { 1u << 15, KF_I(first_trade_id, KLINE_RANGE_ID) },   /* f: optional */
    { 1u << 16, KF_I(last_trade_id, KLINE_RANGE_ID) },    /* L: optional */
    { 1u << 17, { KF_SKIP, 0, 0, 0 } },                   /* B: ignored */
};
#define KF_WS_REQUIRED 0x7ffeu /* t .. Q */

/* The row of kline_fast_ws_keys for a key letter, -1 for any other. */
static int kline_fast_ws_key(char c)
{
    switch (c) {
    case 't': return 0;
    case 'T': return 1;
    case 's': return 2;
    case 'i': return 3;
    case 'o': return 4;
    case 'c': return 5;
    case 'h': return 6;
    case 'l': return 7;
    case 'v': return 8;
    case 'n': return 9;
    case 'x': return 10;
    case 'q': return 11;
    case 'V': return 12;
    case 'Q': return 13;
    case 'f': return 14;
    case 'L': return 15;
    case 'B': return 16;
    default: return -1;
    }
}

/* The "k" object. */
static bool kline_fast_kobj(kline_fast_t *f, kline_t *k)
{
    unsigned seen = 0;
    bool more = true;
    if (!kline_fast_char(f, '{'))
        return false;
    while (more) {
        const char *key;
        size_t kn;
        if (!kline_fast_str(f, &key, &kn) || kn != 1 || !kline_fast_char(f, ':'))
            return false;
        int i = kline_fast_ws_key(key[0]);
        if (i < 0 || (seen & kline_fast_ws_keys[i].bit))
            return false; /* unknown, or a key twice: the full path decides */
        seen |= kline_fast_ws_keys[i].bit;
        if (!kline_fast_value(f, &kline_fast_ws_keys[i].d, k) || !kline_fast_next(f, &more))
            return false;
    }
    return (seen & KF_WS_REQUIRED) == KF_WS_REQUIRED;
}

#define KF_IS(s, n, lit) ((n) == sizeof(lit) - 1 && memcmp((s), (lit), sizeof(lit) - 1) == 0)

/* The event object: "e":"kline", "E", an optional outer "s" that must match "k"'s, "k". */
static bool kline_fast_event(kline_fast_t *f, kline_t *k)
{
    static const kline_fast_field_t event_time = KF_I(event_time, KLINE_RANGE_TIME);
    bool have_e = false, have_E = false, have_s = false, have_k = false, more = true, ok;
    char outer[KLINE_SYMBOL_MAX];
    if (!kline_fast_char(f, '{'))
        return false;
    while (more) {
        const char *key, *s;
        size_t kn, n;
        if (!kline_fast_str(f, &key, &kn) || !kline_fast_char(f, ':'))
            return false;
        if (KF_IS(key, kn, "e") && !have_e) {
            ok = have_e = kline_fast_str(f, &s, &n) && KF_IS(s, n, "kline");
        } else if (KF_IS(key, kn, "E") && !have_E) {
            ok = have_E = kline_fast_value(f, &event_time, k);
        } else if (KF_IS(key, kn, "s") && !have_s) {
            ok = have_s = kline_fast_str(f, &s, &n) &&
                          kline_symbol_copy(s, n, outer, "", NULL, 0) == 0;
        } else if (KF_IS(key, kn, "k") && !have_k) {
            ok = have_k = kline_fast_kobj(f, k);
        } else {
            return false; /* another key, or one twice */
        }
        if (!ok || !kline_fast_next(f, &more))
            return false;
    }
    return have_e && have_E && have_k && (!have_s || strcmp(outer, k->symbol) == 0);
}

/* {"stream":"..","data":{event}}, in this order (the exchange's). */
static bool kline_fast_combined(kline_fast_t *f, kline_t *k)
{
    const char *s;
    size_t n;
    return kline_fast_char(f, '{') && kline_fast_str(f, &s, &n) && KF_IS(s, n, "stream") &&
           kline_fast_char(f, ':') && kline_fast_str(f, &s, &n) && kline_fast_char(f, ',') &&
           kline_fast_str(f, &s, &n) && KF_IS(s, n, "data") && kline_fast_char(f, ':') &&
           kline_fast_event(f, k) && kline_fast_char(f, '}');
}

/* Which shape, from the first key: canonical, combined wrapper, or a raw event. */
static bool kline_fast_any(kline_fast_t *f, kline_t *k)
{
    kline_fast_t look = *f;
    const char *key;
    size_t kn;
    if (kline_fast_lit(&look, "{\"symbol\":", 10))
        return kline_fast_canonical(f, k); /* its table starts with these bytes */
    if (!kline_fast_char(&look, '{') || !kline_fast_str(&look, &key, &kn))
        return false;
    k->source = KLINE_SRC_WS;
    if (KF_IS(key, kn, "stream"))
        return kline_fast_combined(f, k);
    return kline_fast_event(f, k);
}

int kline_parse_fast(const char *buf, size_t len, kline_t *out)
{
    kline_t k;
    memset(&k, 0, sizeof k); /* as the full path: equal klines are equal bytes */
    k.first_trade_id = k.last_trade_id = -1;
    kline_fast_t f = { buf, buf + len };
    kline_fast_ws(&f);
    if (!kline_fast_any(&f, &k))
        return -1;
    kline_fast_ws(&f);
    if (f.p != f.end || kline_validate(&k, NULL, 0) < 0)
        return -1;
    *out = k;
    return 0;
}
