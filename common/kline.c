/*
 * kline.c — the kline record's codecs: parse (canonical JSON, Binance WS event,
 * REST row, data.binance.vision CSV row), validate, and format the canonical JSON.
 *
 * Design notes (why, not what):
 * - Prices and volumes are copied as the exact decimal text the exchange sent,
 *   after a syntax check; nothing here ever touches a double, so "0.00002853"
 *   stays "0.00002853" all the way to PostgreSQL numeric.
 * - Everything is parsed into a local kline_t and copied to the caller only once
 *   it has passed kline_validate, so a caller never sees a half-filled record and
 *   every record that leaves kline_parse is one kline_format can write.
 * - Duplicate JSON keys are rejected (KLINE_JSON_FLAGS): parsers disagree
 *   on which of two "h" keys wins, so a message with both is ambiguous and goes to
 *   the rejected table instead of being guessed at. jansson's check is one hash
 *   lookup per key, which it does for the insert anyway, so it costs little.
 * - Unknown keys are ignored in every JSON shape: Binance adds fields now and
 *   then, and the canonical record may grow; the fields we need are still checked.
 * - kline_format is hand-written (the producer's hot path): no allocation, no
 *   jansson, one pass.
 * - The codec does not log: callers decide what a rejection means.
 */
#include "kline.h"
#include "buf.h"
#include "kline_rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* data.binance.vision switched its spot dumps to microseconds in 2025; no
 * millisecond timestamp reaches 1e15 before the year 33658. */
#define KLINE_CSV_US_THRESHOLD INT64_C(1000000000000000)

#define KLINE_SYMBOL_LEN_MAX 20
#define KLINE_DEC_INT_MAX    20
#define KLINE_DEC_FRAC_MAX   18

static const struct kline_interval_def {
    const char *name;
    int64_t     ms; /* 0: variable length (a calendar month) */
} kline_intervals[] = {
    { "1s", INT64_C(1000) },       { "1m", INT64_C(60000) },      { "3m", INT64_C(180000) },
    { "5m", INT64_C(300000) },     { "15m", INT64_C(900000) },    { "30m", INT64_C(1800000) },
    { "1h", INT64_C(3600000) },    { "2h", INT64_C(7200000) },    { "4h", INT64_C(14400000) },
    { "6h", INT64_C(21600000) },   { "8h", INT64_C(28800000) },   { "12h", INT64_C(43200000) },
    { "1d", INT64_C(86400000) },   { "3d", INT64_C(259200000) },  { "1w", INT64_C(604800000) },
    { "1M", 0 },
};
#define KLINE_N_INTERVALS (sizeof kline_intervals / sizeof kline_intervals[0])

static int kline_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Always returns -1 so callers can `return kline_err(...)`. errbuf may be NULL. */
static int kline_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Reasons end up in logs and in a PostgreSQL text column, so any input text
 * quoted in one is reduced to printable ASCII first. */
static void kline_printable(char *dst, size_t dstlen, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (dstlen > 0)
        dst[i] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Syntax helpers                                                            */
/* ------------------------------------------------------------------------ */

static inline bool kline_is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Why s[0..n) is not a decimal, or NULL when it is one. The messages name the
 * usual suspects (exponents, NaN) because those are what a reader of the
 * rejected table will want to recognise. */
static const char *kline_dec_problem(const char *s, size_t n)
{
    if (n == 0)
        return "empty";
    size_t i = 0, int_digits = 0, frac_digits = 0;
    while (i < n && kline_is_digit((unsigned char)s[i])) {
        i++;
        int_digits++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && kline_is_digit((unsigned char)s[i])) {
            i++;
            frac_digits++;
        }
        if (i == n && frac_digits == 0)
            return "no digits after '.'";
    }
    if (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '-' || c == '+')
            return "sign not allowed";
        if (c == 'e' || c == 'E')
            return "exponent not allowed";
        if (c == 'N' || c == 'n' || c == 'I' || c == 'i')
            return "not a finite number";
        if (c == ' ' || c == '\t')
            return "whitespace not allowed";
        return "invalid character";
    }
    if (int_digits == 0)
        return "no digits before '.'";
    if (int_digits > KLINE_DEC_INT_MAX)
        return "more than 20 integer digits";
    if (frac_digits > KLINE_DEC_FRAC_MAX)
        return "more than 18 fraction digits";
    return NULL;
}

bool kline_dec_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = strnlen(s, KLINE_DEC_MAX);
    return n < KLINE_DEC_MAX && kline_dec_problem(s, n) == NULL;
}

/* Compares two decimals digit by digit: integer parts by length once leading
 * zeros are gone, then fractions as if padded with zeros. Safe (if meaningless)
 * on strings that are not decimals: it stops at each NUL. */
int kline_dec_cmp(const char *a, const char *b)
{
    while (a[0] == '0' && kline_is_digit((unsigned char)a[1]))
        a++;
    while (b[0] == '0' && kline_is_digit((unsigned char)b[1]))
        b++;
    size_t ia = 0, ib = 0;
    while (kline_is_digit((unsigned char)a[ia]))
        ia++;
    while (kline_is_digit((unsigned char)b[ib]))
        ib++;
    if (ia != ib)
        return ia < ib ? -1 : 1;
    int c = memcmp(a, b, ia);
    if (c != 0)
        return c < 0 ? -1 : 1;
    a += ia;
    b += ib;
    if (*a == '.')
        a++;
    if (*b == '.')
        b++;
    while (*a || *b) {
        unsigned char da = *a ? (unsigned char)*a : '0';
        unsigned char db = *b ? (unsigned char)*b : '0';
        if (da != db)
            return da < db ? -1 : 1;
        if (*a)
            a++;
        if (*b)
            b++;
    }
    return 0;
}

bool kline_symbol_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= KLINE_SYMBOL_LEN_MAX || !((c >= 'A' && c <= 'Z') || kline_is_digit(c)))
            return false;
    }
    return n > 0;
}

static const struct kline_interval_def *kline_interval_find(const char *s, size_t n)
{
    for (size_t i = 0; i < KLINE_N_INTERVALS; i++) {
        const char *name = kline_intervals[i].name;
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            return &kline_intervals[i];
    }
    return NULL;
}

bool kline_interval_valid(const char *s)
{
    return s && kline_interval_find(s, strnlen(s, KLINE_INTERVAL_MAX)) != NULL;
}

int64_t kline_interval_ms(const char *interval)
{
    if (!interval)
        return 0;
    const struct kline_interval_def *d =
        kline_interval_find(interval, strnlen(interval, KLINE_INTERVAL_MAX));
    return d ? d->ms : 0;
}

int kline_source_from(const char *s, size_t n, enum kline_source *out)
{
    if (n == 2 && memcmp(s, "ws", 2) == 0)
        *out = KLINE_SRC_WS;
    else if (n == 4 && memcmp(s, "rest", 4) == 0)
        *out = KLINE_SRC_REST;
    else if (n == 6 && memcmp(s, "replay", 6) == 0)
        *out = KLINE_SRC_REPLAY;
    else
        return -1;
    return 0;
}

const char *kline_source_name(enum kline_source s)
{
    switch (s) {
    case KLINE_SRC_WS:     return "ws";
    case KLINE_SRC_REST:   return "rest";
    case KLINE_SRC_REPLAY: return "replay";
    }
    return "unknown";
}

/* Copies a symbol, upper-casing it: stream names and users write "btcusdt",
 * the record is always "BTCUSDT". */
int kline_symbol_copy(const char *s, size_t n, char dst[KLINE_SYMBOL_MAX], const char *label,
                      char *errbuf, size_t errlen)
{
    if (n == 0)
        return kline_err(errbuf, errlen, "%s: empty symbol", label);
    if (n > KLINE_SYMBOL_LEN_MAX)
        return kline_err(errbuf, errlen, "%s: symbol longer than 20 characters", label);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || kline_is_digit(c)))
            return kline_err(errbuf, errlen, "%s: symbol has a character outside [A-Za-z0-9]",
                             label);
        dst[i] = (char)c;
    }
    dst[n] = '\0';
    return 0;
}

int kline_interval_copy(const char *s, size_t n, char dst[KLINE_INTERVAL_MAX],
                        const char *label, char *errbuf, size_t errlen)
{
    if (!kline_interval_find(s, n))
        return kline_err(errbuf, errlen, "%s: not a Binance kline interval (1s 1m 3m 5m 15m 30m "
                         "1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)", label);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int kline_dec_copy(const char *s, size_t n, char dst[KLINE_DEC_MAX], const char *label,
                   char *errbuf, size_t errlen)
{
    const char *why = kline_dec_problem(s, n);
    if (why)
        return kline_err(errbuf, errlen, "%s: not a decimal [0-9]{1,20}(.[0-9]{1,18}): %s",
                         label, why);
    memcpy(dst, s, n); /* n <= 39 once the syntax holds */
    dst[n] = '\0';
    return 0;
}

/* REST rows and CSV rows have no interval: infer it from the kline's length,
 * which for every fixed interval is interval_ms exactly (close_time is the last
 * millisecond of the kline). "1M" cannot be inferred; it needs the hint. */
static int kline_interval_infer(kline_t *k, char *errbuf, size_t errlen)
{
    int64_t span = k->close_time - k->open_time + 1; /* both in [0, KLINE_TIME_MAX] */
    for (size_t i = 0; i < KLINE_N_INTERVALS; i++) {
        if (kline_intervals[i].ms == span) {
            strcpy(k->interval, kline_intervals[i].name);
            return 0;
        }
    }
    return kline_err(errbuf, errlen, "no interval hint, and close_time - open_time + 1 = %lld ms "
                     "is no fixed interval", (long long)span);
}

/* Hints fill what REST and CSV rows lack. */
static int kline_apply_hints(kline_t *k, const char *symbol_hint, const char *interval_hint,
                             const char *what, char *errbuf, size_t errlen)
{
    if (!symbol_hint)
        return kline_err(errbuf, errlen, "%s carries no symbol and no symbol hint was given", what);
    if (kline_symbol_copy(symbol_hint, strnlen(symbol_hint, KLINE_SYMBOL_MAX), k->symbol,
                          "symbol hint", errbuf, errlen) < 0)
        return -1;
    if (interval_hint)
        return kline_interval_copy(interval_hint, strnlen(interval_hint, KLINE_INTERVAL_MAX),
                                   k->interval, "interval hint", errbuf, errlen);
    return kline_interval_infer(k, errbuf, errlen);
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

/* The decimal fields, for loops over "every price and volume". */
static const struct kline_dec_field {
    const char *name;
    size_t      off;
} kline_dec_fields[] = {
    { "open", offsetof(kline_t, open) },
    { "high", offsetof(kline_t, high) },
    { "low", offsetof(kline_t, low) },
    { "close", offsetof(kline_t, close) },
    { "volume", offsetof(kline_t, volume) },
    { "quote_volume", offsetof(kline_t, quote_volume) },
    { "taker_buy_volume", offsetof(kline_t, taker_buy_volume) },
    { "taker_buy_quote_volume", offsetof(kline_t, taker_buy_quote_volume) },
};
#define KLINE_N_DEC_FIELDS (sizeof kline_dec_fields / sizeof kline_dec_fields[0])

int kline_validate(const kline_t *k, char *errbuf, size_t errlen)
{
    if (!kline_symbol_valid(k->symbol))
        return kline_err(errbuf, errlen, "symbol: not [A-Z0-9]{1,20}");
    if (!kline_interval_valid(k->interval))
        return kline_err(errbuf, errlen, "interval: not a Binance kline interval");
    if (k->open_time < 0 || k->open_time > KLINE_TIME_MAX)
        return kline_err(errbuf, errlen, "open_time: %lld out of range", (long long)k->open_time);
    if (k->close_time < 0 || k->close_time > KLINE_TIME_MAX)
        return kline_err(errbuf, errlen, "close_time: %lld out of range",
                         (long long)k->close_time);
    if (k->close_time < k->open_time)
        return kline_err(errbuf, errlen, "close_time %lld before open_time %lld",
                         (long long)k->close_time, (long long)k->open_time);
    if (k->event_time < 0 || k->event_time > KLINE_TIME_MAX)
        return kline_err(errbuf, errlen, "event_time: %lld out of range",
                         (long long)k->event_time);
    for (size_t i = 0; i < KLINE_N_DEC_FIELDS; i++) {
        const char *s = (const char *)k + kline_dec_fields[i].off;
        if (!kline_dec_valid(s))
            return kline_err(errbuf, errlen, "%s: not a decimal [0-9]{1,20}(.[0-9]{1,18})",
                             kline_dec_fields[i].name);
    }
    if (k->trades < 0)
        return kline_err(errbuf, errlen, "trades: %lld is negative", (long long)k->trades);
    if (k->first_trade_id < -1 || k->last_trade_id < -1)
        return kline_err(errbuf, errlen, "first_trade_id/last_trade_id: below -1");
    if (k->first_trade_id >= 0 && k->last_trade_id >= 0 && k->last_trade_id < k->first_trade_id)
        return kline_err(errbuf, errlen, "last_trade_id %lld before first_trade_id %lld",
                         (long long)k->last_trade_id, (long long)k->first_trade_id);
    /* A zero-trade kline repeats the previous close in o/h/l/c, so these hold for it too. */
    if (kline_dec_cmp(k->high, k->low) < 0)
        return kline_err(errbuf, errlen, "high %s below low %s", k->high, k->low);
    if (kline_dec_cmp(k->open, k->low) < 0 || kline_dec_cmp(k->open, k->high) > 0)
        return kline_err(errbuf, errlen, "open %s outside [low %s, high %s]", k->open, k->low,
                         k->high);
    if (kline_dec_cmp(k->close, k->low) < 0 || kline_dec_cmp(k->close, k->high) > 0)
        return kline_err(errbuf, errlen, "close %s outside [low %s, high %s]", k->close, k->low,
                         k->high);
    if ((unsigned)k->source > (unsigned)KLINE_SRC_REPLAY)
        return kline_err(errbuf, errlen, "source: unknown value %d", (int)k->source);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* JSON (canonical record, WS event, combined wrapper, REST row)              */
/* ------------------------------------------------------------------------ */

static const char *kline_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:  return "object";
    case JSON_ARRAY:   return "array";
    case JSON_STRING:  return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL:    return "real number";
    case JSON_TRUE:    return "true";
    case JSON_FALSE:   return "false";
    case JSON_NULL:    return "null";
    }
    return "?";
}

/* A JSON value that must be a decimal string. Numbers are refused even when
 * they look right: a JSON number has already lost its exact text in jansson. */
static int kline_json_dec(const json_t *v, const char *label, char dst[KLINE_DEC_MAX],
                          char *errbuf, size_t errlen)
{
    if (!v)
        return kline_err(errbuf, errlen, "%s: missing", label);
    if (!json_is_string(v))
        return kline_err(errbuf, errlen, "%s: expected a decimal string, got %s", label,
                         kline_json_type_name(v));
    return kline_dec_copy(json_string_value(v), json_string_length(v), dst, label, errbuf,
                          errlen);
}

/* A JSON value that must be an integer in [min, max]. Reals ("1.0", "1e3")
 * are refused: an id or a time written as a real is a broken producer. */
static int kline_json_int(const json_t *v, const char *label, int64_t min, int64_t max,
                          int64_t *out, char *errbuf, size_t errlen)
{
    if (!v)
        return kline_err(errbuf, errlen, "%s: missing", label);
    if (!json_is_integer(v))
        return kline_err(errbuf, errlen, "%s: expected an integer, got %s", label,
                         kline_json_type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return kline_err(errbuf, errlen, "%s: %lld out of range [%lld, %lld]", label,
                         (long long)x, (long long)min, (long long)max);
    *out = (int64_t)x;
    return 0;
}

/* Absent → dflt; present → must be a valid integer. */
static int kline_json_int_opt(const json_t *v, const char *label, int64_t min, int64_t max,
                              int64_t dflt, int64_t *out, char *errbuf, size_t errlen)
{
    if (!v) {
        *out = dflt;
        return 0;
    }
    return kline_json_int(v, label, min, max, out, errbuf, errlen);
}

static int kline_json_bool(const json_t *v, const char *label, bool *out, char *errbuf,
                           size_t errlen)
{
    if (!v)
        return kline_err(errbuf, errlen, "%s: missing", label);
    if (!json_is_boolean(v))
        return kline_err(errbuf, errlen, "%s: expected true or false, got %s", label,
                         kline_json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

static int kline_json_string(const json_t *v, const char *label, const char **s, size_t *n,
                             char *errbuf, size_t errlen)
{
    if (!v)
        return kline_err(errbuf, errlen, "%s: missing", label);
    if (!json_is_string(v))
        return kline_err(errbuf, errlen, "%s: expected a string, got %s", label,
                         kline_json_type_name(v));
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 0;
}

static int kline_json_symbol(const json_t *v, const char *label, char dst[KLINE_SYMBOL_MAX],
                             char *errbuf, size_t errlen)
{
    const char *s;
    size_t n;
    if (kline_json_string(v, label, &s, &n, errbuf, errlen) < 0)
        return -1;
    return kline_symbol_copy(s, n, dst, label, errbuf, errlen);
}

static int kline_json_interval(const json_t *v, const char *label,
                               char dst[KLINE_INTERVAL_MAX], char *errbuf, size_t errlen)
{
    const char *s;
    size_t n;
    if (kline_json_string(v, label, &s, &n, errbuf, errlen) < 0)
        return -1;
    return kline_interval_copy(s, n, dst, label, errbuf, errlen);
}

/* Key → field maps. The label is what a reason names: the key as the input
 * spells it, plus the record's name where the key is a cryptic letter. */
struct kline_json_dec_key {
    const char *key;
    const char *label;
    size_t      off;
};

static const struct kline_json_dec_key kline_ws_dec_keys[] = {
    { "o", "k.o (open)", offsetof(kline_t, open) },
    { "h", "k.h (high)", offsetof(kline_t, high) },
    { "l", "k.l (low)", offsetof(kline_t, low) },
    { "c", "k.c (close)", offsetof(kline_t, close) },
    { "v", "k.v (volume)", offsetof(kline_t, volume) },
    { "q", "k.q (quote_volume)", offsetof(kline_t, quote_volume) },
    { "V", "k.V (taker_buy_volume)", offsetof(kline_t, taker_buy_volume) },
    { "Q", "k.Q (taker_buy_quote_volume)", offsetof(kline_t, taker_buy_quote_volume) },
};

static int kline_from_canonical(const json_t *o, kline_t *k, char *errbuf, size_t errlen)
{
    const char *src;
    size_t srclen;
    if (kline_json_symbol(json_object_get(o, "symbol"), "symbol", k->symbol, errbuf, errlen) < 0 ||
        kline_json_interval(json_object_get(o, "interval"), "interval", k->interval, errbuf,
                            errlen) < 0 ||
        kline_json_int(json_object_get(o, "open_time"), "open_time", KLINE_RANGE_TIME,
                       &k->open_time, errbuf, errlen) < 0 ||
        kline_json_int(json_object_get(o, "close_time"), "close_time", KLINE_RANGE_TIME,
                       &k->close_time, errbuf, errlen) < 0)
        return -1;
    for (size_t i = 0; i < KLINE_N_DEC_FIELDS; i++) {
        const char *name = kline_dec_fields[i].name;
        if (kline_json_dec(json_object_get(o, name), name, (char *)k + kline_dec_fields[i].off,
                           errbuf, errlen) < 0)
            return -1;
    }
    if (kline_json_int(json_object_get(o, "trades"), "trades", KLINE_RANGE_COUNT, &k->trades,
                       errbuf, errlen) < 0 ||
        kline_json_int_opt(json_object_get(o, "first_trade_id"), "first_trade_id", KLINE_RANGE_ID,
                           -1, &k->first_trade_id, errbuf, errlen) < 0 ||
        kline_json_int_opt(json_object_get(o, "last_trade_id"), "last_trade_id", KLINE_RANGE_ID,
                           -1, &k->last_trade_id, errbuf, errlen) < 0 ||
        kline_json_bool(json_object_get(o, "closed"), "closed", &k->closed, errbuf, errlen) < 0 ||
        kline_json_int_opt(json_object_get(o, "event_time"), "event_time", KLINE_RANGE_TIME, 0,
                           &k->event_time, errbuf, errlen) < 0 ||
        kline_json_string(json_object_get(o, "source"), "source", &src, &srclen, errbuf,
                          errlen) < 0)
        return -1;
    if (kline_source_from(src, srclen, &k->source) < 0)
        return kline_err(errbuf, errlen, "source: not one of ws, rest, replay");
    return 0;
}

/* {"e":"kline","E":..,"s":..,"k":{..}}. "B" (ignore) is not read; "f"/"L" may
 * be missing (some mirrors drop them) and then are -1 like a zero-trade second. */
static int kline_from_ws_event(const json_t *o, kline_t *k, char *errbuf, size_t errlen)
{
    const char *e;
    size_t elen;
    if (kline_json_string(json_object_get(o, "e"), "e", &e, &elen, errbuf, errlen) < 0)
        return -1;
    if (elen != 5 || memcmp(e, "kline", 5) != 0) {
        char shown[25];
        kline_printable(shown, sizeof shown, e, elen);
        return kline_err(errbuf, errlen, "e: not a kline event (e=\"%s\")", shown);
    }
    if (kline_json_int(json_object_get(o, "E"), "E (event_time)", KLINE_RANGE_TIME,
                       &k->event_time, errbuf, errlen) < 0)
        return -1;
    const json_t *kk = json_object_get(o, "k");
    if (!kk)
        return kline_err(errbuf, errlen, "k: missing");
    if (!json_is_object(kk))
        return kline_err(errbuf, errlen, "k: expected an object, got %s",
                         kline_json_type_name(kk));
    if (kline_json_symbol(json_object_get(kk, "s"), "k.s (symbol)", k->symbol, errbuf,
                          errlen) < 0 ||
        kline_json_interval(json_object_get(kk, "i"), "k.i (interval)", k->interval, errbuf,
                            errlen) < 0 ||
        kline_json_int(json_object_get(kk, "t"), "k.t (open_time)", KLINE_RANGE_TIME,
                       &k->open_time, errbuf, errlen) < 0 ||
        kline_json_int(json_object_get(kk, "T"), "k.T (close_time)", KLINE_RANGE_TIME,
                       &k->close_time, errbuf, errlen) < 0)
        return -1;
    for (size_t i = 0; i < sizeof kline_ws_dec_keys / sizeof kline_ws_dec_keys[0]; i++) {
        const struct kline_json_dec_key *d = &kline_ws_dec_keys[i];
        if (kline_json_dec(json_object_get(kk, d->key), d->label, (char *)k + d->off, errbuf,
                           errlen) < 0)
            return -1;
    }
    if (kline_json_int(json_object_get(kk, "n"), "k.n (trades)", KLINE_RANGE_COUNT, &k->trades,
                       errbuf, errlen) < 0 ||
        kline_json_int_opt(json_object_get(kk, "f"), "k.f (first_trade_id)", KLINE_RANGE_ID, -1,
                           &k->first_trade_id, errbuf, errlen) < 0 ||
        kline_json_int_opt(json_object_get(kk, "L"), "k.L (last_trade_id)", KLINE_RANGE_ID, -1,
                           &k->last_trade_id, errbuf, errlen) < 0 ||
        kline_json_bool(json_object_get(kk, "x"), "k.x (closed)", &k->closed, errbuf, errlen) < 0)
        return -1;
    /* The outer "s" is optional for us, but if both are there they must agree. */
    const json_t *outer = json_object_get(o, "s");
    if (outer) {
        char sym[KLINE_SYMBOL_MAX];
        if (kline_json_symbol(outer, "s", sym, errbuf, errlen) < 0)
            return -1;
        if (strcmp(sym, k->symbol) != 0)
            return kline_err(errbuf, errlen, "s (%s) and k.s (%s) disagree", sym, k->symbol);
    }
    k->source = KLINE_SRC_WS;
    return 0;
}

/* [openTime, open, high, low, close, volume, closeTime, quoteVolume, trades,
 *  takerBuyBase, takerBuyQuote, ignore]. Element 11 is unused and not checked.
 * The row carries no "closed" flag: it is set true, and a caller that asked for
 * a range reaching "now" must clear it on a row whose close_time is still in
 * the future (only the caller knows the server time). */
static int kline_from_rest_row(const json_t *a, const char *symbol_hint,
                               const char *interval_hint, kline_t *k, char *errbuf,
                               size_t errlen)
{
    static const struct {
        size_t      idx;
        const char *label;
        size_t      off;
    } decs[] = {
        { 1, "[1] (open)", offsetof(kline_t, open) },
        { 2, "[2] (high)", offsetof(kline_t, high) },
        { 3, "[3] (low)", offsetof(kline_t, low) },
        { 4, "[4] (close)", offsetof(kline_t, close) },
        { 5, "[5] (volume)", offsetof(kline_t, volume) },
        { 7, "[7] (quote_volume)", offsetof(kline_t, quote_volume) },
        { 9, "[9] (taker_buy_volume)", offsetof(kline_t, taker_buy_volume) },
        { 10, "[10] (taker_buy_quote_volume)", offsetof(kline_t, taker_buy_quote_volume) },
    };
    size_t n = json_array_size(a);
    if (n != 12 && n > 0 && json_is_array(json_array_get(a, 0)))
        return kline_err(errbuf, errlen, "an array of %zu REST rows: pass one row at a time", n);
    if (n != 12)
        return kline_err(errbuf, errlen, "REST kline row: expected 12 elements, got %zu", n);
    if (kline_json_int(json_array_get(a, 0), "[0] (open_time)", KLINE_RANGE_TIME,
                       &k->open_time, errbuf, errlen) < 0 ||
        kline_json_int(json_array_get(a, 6), "[6] (close_time)", KLINE_RANGE_TIME,
                       &k->close_time, errbuf, errlen) < 0 ||
        kline_json_int(json_array_get(a, 8), "[8] (trades)", KLINE_RANGE_COUNT, &k->trades,
                       errbuf, errlen) < 0)
        return -1;
    for (size_t i = 0; i < sizeof decs / sizeof decs[0]; i++) {
        if (kline_json_dec(json_array_get(a, decs[i].idx), decs[i].label,
                           (char *)k + decs[i].off, errbuf, errlen) < 0)
            return -1;
    }
    if (k->close_time < k->open_time)
        return kline_err(errbuf, errlen, "close_time %lld before open_time %lld",
                         (long long)k->close_time, (long long)k->open_time);
    k->first_trade_id = -1;
    k->last_trade_id = -1;
    k->closed = true;
    k->event_time = 0;
    k->source = KLINE_SRC_REST;
    return kline_apply_hints(k, symbol_hint, interval_hint, "a REST kline row", errbuf, errlen);
}

/* Fills tmp (already zeroed) from any JSON shape; no validation yet. */
static int kline_from_json_any(const json_t *root, const char *symbol_hint,
                               const char *interval_hint, kline_t *k, char *errbuf,
                               size_t errlen)
{
    if (json_is_array(root))
        return kline_from_rest_row(root, symbol_hint, interval_hint, k, errbuf, errlen);
    if (!json_is_object(root))
        return kline_err(errbuf, errlen, "expected a JSON object or array, got %s",
                         kline_json_type_name(root));
    const json_t *data = json_object_get(root, "data");
    const json_t *stream = json_object_get(root, "stream");
    if (data || stream) {
        /* Combined-stream wrapper. The stream name is not checked against the
         * payload: Binance also sends e.g. "btcusdt@kline_1s@+08:00". */
        if (!stream || !json_is_string(stream))
            return kline_err(errbuf, errlen, "stream: expected a string, got %s",
                             stream ? kline_json_type_name(stream) : "nothing");
        if (!data)
            return kline_err(errbuf, errlen, "data: missing");
        if (!json_is_object(data))
            return kline_err(errbuf, errlen, "data: expected an object, got %s",
                             kline_json_type_name(data));
        if (!json_object_get(data, "e"))
            return kline_err(errbuf, errlen, "data.e: missing (not a Binance event)");
        return kline_from_ws_event(data, k, errbuf, errlen);
    }
    if (json_object_get(root, "e"))
        return kline_from_ws_event(root, k, errbuf, errlen);
    if (json_object_get(root, "symbol"))
        return kline_from_canonical(root, k, errbuf, errlen);
    return kline_err(errbuf, errlen,
                     "JSON object is no kline (no \"e\", \"stream\" or \"symbol\" key)");
}

int kline_from_json(const json_t *root, const char *symbol_hint, const char *interval_hint,
                    kline_t *k, char *errbuf, size_t errlen)
{
    kline_t tmp;
    memset(&tmp, 0, sizeof tmp); /* zeroed so equal klines are equal bytes too */
    if (!root)
        return kline_err(errbuf, errlen, "no JSON value");
    if (kline_from_json_any(root, symbol_hint, interval_hint, &tmp, errbuf, errlen) < 0 ||
        kline_validate(&tmp, errbuf, errlen) < 0)
        return -1;
    *k = tmp;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* CSV (data.binance.vision)                                                 */
/* ------------------------------------------------------------------------ */

/* Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or n when all is well. */
static size_t kline_utf8_bad_offset(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else
            return i;
        if (n - i <= need)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t j = 2; j <= need; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xBF)
                return i;
        i += need + 1;
    }
    return n;
}

/* An unsigned integer column: [0-9]{1,19} without overflow. */
static int kline_csv_int(const char *s, size_t n, const char *label, int64_t *out,
                         char *errbuf, size_t errlen)
{
    if (n == 0)
        return kline_err(errbuf, errlen, "%s: empty", label);
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!kline_is_digit(c))
            return kline_err(errbuf, errlen, "%s: not an unsigned integer", label);
        if (x > (UINT64_C(9223372036854775807) - (c - '0')) / 10)
            return kline_err(errbuf, errlen, "%s: integer too large", label);
        x = x * 10 + (c - '0');
    }
    *out = (int64_t)x;
    return 0;
}

/* open_time/close_time: ms, or µs in the 2025+ spot dumps (truncated to ms). */
static int kline_csv_time(const char *s, size_t n, const char *label, int64_t *out,
                          char *errbuf, size_t errlen)
{
    int64_t t;
    if (kline_csv_int(s, n, label, &t, errbuf, errlen) < 0)
        return -1;
    if (t >= KLINE_CSV_US_THRESHOLD)
        t /= 1000;
    if (t > KLINE_TIME_MAX)
        return kline_err(errbuf, errlen, "%s: %lld out of range", label, (long long)t);
    *out = t;
    return 0;
}

/* Columns: open_time, open, high, low, close, volume, close_time, quote_volume,
 * count, taker_buy_volume, taker_buy_quote_volume, ignore. No quoting and no
 * header: Binance never quotes, every valid field is [0-9.] only, and a header
 * line ("open_time,...") is rejected like any other non-row. */
static int kline_csv_fill(const char *buf, size_t len, const char *symbol,
                          const char *interval, kline_t *k, char *errbuf, size_t errlen)
{
    static const struct {
        int         col; /* 0-based */
        const char *label;
        size_t      off;
    } decs[] = {
        { 1, "column 2 (open)", offsetof(kline_t, open) },
        { 2, "column 3 (high)", offsetof(kline_t, high) },
        { 3, "column 4 (low)", offsetof(kline_t, low) },
        { 4, "column 5 (close)", offsetof(kline_t, close) },
        { 5, "column 6 (volume)", offsetof(kline_t, volume) },
        { 7, "column 8 (quote_volume)", offsetof(kline_t, quote_volume) },
        { 9, "column 10 (taker_buy_volume)", offsetof(kline_t, taker_buy_volume) },
        { 10, "column 11 (taker_buy_quote_volume)", offsetof(kline_t, taker_buy_quote_volume) },
    };
    if (!buf)
        return kline_err(errbuf, errlen, "no input");
    if (len > KLINE_INPUT_MAX)
        return kline_err(errbuf, errlen, "input of %zu bytes exceeds %d", len, KLINE_INPUT_MAX);
    /* One line terminator is tolerated; callers reading with getline keep it. */
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (len == 0)
        return kline_err(errbuf, errlen, "empty CSV row");
    const char *nul = memchr(buf, '\0', len);
    if (nul)
        return kline_err(errbuf, errlen, "NUL byte at offset %zu", (size_t)(nul - buf));
    size_t bad = kline_utf8_bad_offset((const unsigned char *)buf, len);
    if (bad != len)
        return kline_err(errbuf, errlen, "invalid UTF-8 at byte %zu", bad);

    const char *col[12];
    size_t collen[12];
    int ncol = 0;
    const char *p = buf, *end = buf + len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (ncol == 12)
            return kline_err(errbuf, errlen, "CSV row: more than 12 columns");
        col[ncol] = p;
        collen[ncol] = (size_t)(stop - p);
        ncol++;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (ncol != 12)
        return kline_err(errbuf, errlen, "CSV row: expected 12 columns, got %d", ncol);

    if (kline_csv_time(col[0], collen[0], "column 1 (open_time)", &k->open_time, errbuf,
                       errlen) < 0 ||
        kline_csv_time(col[6], collen[6], "column 7 (close_time)", &k->close_time, errbuf,
                       errlen) < 0 ||
        kline_csv_int(col[8], collen[8], "column 9 (trades)", &k->trades, errbuf, errlen) < 0)
        return -1;
    for (size_t i = 0; i < sizeof decs / sizeof decs[0]; i++) {
        if (kline_dec_copy(col[decs[i].col], collen[decs[i].col], (char *)k + decs[i].off,
                           decs[i].label, errbuf, errlen) < 0)
            return -1;
    }
    /* Unused, and always "0" in real dumps. Still checked: an empty one is a
     * row cut short, and anything else (a second line, text) is not a dump row. */
    if (collen[11] == 0)
        return kline_err(errbuf, errlen, "column 12 (ignore): empty (truncated row?)");
    if (kline_dec_problem(col[11], collen[11]))
        return kline_err(errbuf, errlen, "column 12 (ignore): not a number");
    if (k->close_time < k->open_time)
        return kline_err(errbuf, errlen, "close_time %lld before open_time %lld",
                         (long long)k->close_time, (long long)k->open_time);
    k->first_trade_id = -1;
    k->last_trade_id = -1;
    k->closed = true;
    k->event_time = 0;
    k->source = KLINE_SRC_REPLAY;
    return kline_apply_hints(k, symbol, interval, "a CSV row", errbuf, errlen);
}

int kline_parse_csv(const char *buf, size_t len, const char *symbol, const char *interval,
                    kline_t *k, char *errbuf, size_t errlen)
{
    kline_t tmp;
    memset(&tmp, 0, sizeof tmp);
    if (kline_csv_fill(buf, len, symbol, interval, &tmp, errbuf, errlen) < 0 ||
        kline_validate(&tmp, errbuf, errlen) < 0)
        return -1;
    *k = tmp;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Autodetecting entry point                                                 */
/* ------------------------------------------------------------------------ */

json_t *kline_json_load(const char *buf, size_t len, json_error_t *err)
{
    return json_loadb(buf, len, KLINE_JSON_FLAGS, err);
}

/* The fast path first: the two shapes that are nearly all the traffic, read without
 * a jansson tree (kline_fast.c). It only ever accepts, and only what this function
 * would accept with the same kline_t; everything else, rejects and their reasons
 * included, is decided by the full path below. */
int kline_parse(const char *buf, size_t len, const char *symbol_hint,
                const char *interval_hint, kline_t *k, char *errbuf, size_t errlen)
{
    if (buf && len <= KLINE_INPUT_MAX && kline_parse_fast(buf, len, k) == 0)
        return 0;
    return kline_parse_full(buf, len, symbol_hint, interval_hint, k, errbuf, errlen);
}

int kline_parse_full(const char *buf, size_t len, const char *symbol_hint,
                     const char *interval_hint, kline_t *k, char *errbuf, size_t errlen)
{
    if (!buf)
        return kline_err(errbuf, errlen, "no input");
    if (len > KLINE_INPUT_MAX)
        return kline_err(errbuf, errlen, "input of %zu bytes exceeds %d", len, KLINE_INPUT_MAX);
    /* jansson would refuse a raw NUL too, but with a less useful message; and a
     * NUL is never valid in any accepted shape. */
    const char *nul = memchr(buf, '\0', len);
    if (nul)
        return kline_err(errbuf, errlen, "NUL byte at offset %zu", (size_t)(nul - buf));
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i == len)
        return kline_err(errbuf, errlen, "empty input");
    unsigned char first = (unsigned char)buf[i];
    if (kline_is_digit(first))
        return kline_parse_csv(buf + i, len - i, symbol_hint, interval_hint, k, errbuf, errlen);
    if (first != '{' && first != '[')
        return kline_err(errbuf, errlen, "unrecognised input: starts with byte 0x%02x, not "
                         "'{', '[' or a digit", first);

    json_error_t jerr;
    json_t *root = kline_json_load(buf, len, &jerr);
    if (!root) {
        char why[sizeof jerr.text];
        kline_printable(why, sizeof why, jerr.text, strnlen(jerr.text, sizeof jerr.text));
        return kline_err(errbuf, errlen, "invalid JSON at byte %d: %s", jerr.position, why);
    }
    int rc = kline_from_json(root, symbol_hint, interval_hint, k, errbuf, errlen);
    json_decref(root); /* we own root; kline_t keeps no pointer into it */
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Canonical output                                                          */
/* ------------------------------------------------------------------------ */

struct kline_out {
    char *p;
    char *end; /* one past the last byte usable for text (a NUL still fits) */
    bool  overflow;
};

static void kline_out_mem(struct kline_out *w, const char *s, size_t n)
{
    if (w->overflow || (size_t)(w->end - w->p) < n) {
        w->overflow = true;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

#define KLINE_OUT_LIT(w, lit) kline_out_mem((w), (lit), sizeof(lit) - 1)

/* Copies a string field of at most max bytes. A byte that JSON would need to
 * escape means the kline never passed kline_validate: refuse rather than write
 * broken JSON (checking costs nothing next to the copy). */
static void kline_out_field(struct kline_out *w, const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n]) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            w->overflow = true;
            return;
        }
        n++;
    }
    if (n == max) { /* not terminated inside its array */
        w->overflow = true;
        return;
    }
    kline_out_mem(w, s, n);
}

static void kline_out_i64(struct kline_out *w, int64_t v)
{
    char tmp[KP_I64_DIGITS];
    const char *q = kp_i64_decimal(v, tmp);
    kline_out_mem(w, q, (size_t)(tmp + KP_I64_DIGITS - q));
}

int kline_format(const kline_t *k, char *buf, size_t len)
{
    if (!buf || len == 0)
        return -1;
    if ((unsigned)k->source > (unsigned)KLINE_SRC_REPLAY)
        return -1;
    struct kline_out w = { buf, buf + len - 1, false }; /* keep one byte for the NUL */
    KLINE_OUT_LIT(&w, "{\"symbol\":\"");
    kline_out_field(&w, k->symbol, sizeof k->symbol);
    KLINE_OUT_LIT(&w, "\",\"interval\":\"");
    kline_out_field(&w, k->interval, sizeof k->interval);
    KLINE_OUT_LIT(&w, "\",\"open_time\":");
    kline_out_i64(&w, k->open_time);
    KLINE_OUT_LIT(&w, ",\"close_time\":");
    kline_out_i64(&w, k->close_time);
    KLINE_OUT_LIT(&w, ",\"open\":\"");
    kline_out_field(&w, k->open, sizeof k->open);
    KLINE_OUT_LIT(&w, "\",\"high\":\"");
    kline_out_field(&w, k->high, sizeof k->high);
    KLINE_OUT_LIT(&w, "\",\"low\":\"");
    kline_out_field(&w, k->low, sizeof k->low);
    KLINE_OUT_LIT(&w, "\",\"close\":\"");
    kline_out_field(&w, k->close, sizeof k->close);
    KLINE_OUT_LIT(&w, "\",\"volume\":\"");
    kline_out_field(&w, k->volume, sizeof k->volume);
    KLINE_OUT_LIT(&w, "\",\"quote_volume\":\"");
    kline_out_field(&w, k->quote_volume, sizeof k->quote_volume);
    KLINE_OUT_LIT(&w, "\",\"trades\":");
    kline_out_i64(&w, k->trades);
    KLINE_OUT_LIT(&w, ",\"taker_buy_volume\":\"");
    kline_out_field(&w, k->taker_buy_volume, sizeof k->taker_buy_volume);
    KLINE_OUT_LIT(&w, "\",\"taker_buy_quote_volume\":\"");
    kline_out_field(&w, k->taker_buy_quote_volume, sizeof k->taker_buy_quote_volume);
    KLINE_OUT_LIT(&w, "\",\"first_trade_id\":");
    kline_out_i64(&w, k->first_trade_id);
    KLINE_OUT_LIT(&w, ",\"last_trade_id\":");
    kline_out_i64(&w, k->last_trade_id);
    if (k->closed)
        KLINE_OUT_LIT(&w, ",\"closed\":true,\"event_time\":");
    else
        KLINE_OUT_LIT(&w, ",\"closed\":false,\"event_time\":");
    kline_out_i64(&w, k->event_time);
    KLINE_OUT_LIT(&w, ",\"source\":\"");
    const char *src = kline_source_name(k->source);
    kline_out_mem(&w, src, strlen(src));
    KLINE_OUT_LIT(&w, "\"}");
    if (w.overflow) {
        buf[0] = '\0'; /* never leave a half record that looks like text */
        return -1;
    }
    *w.p = '\0';
    return (int)(w.p - buf);
}
