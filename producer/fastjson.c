/* fastjson.c — the hot path: a Binance kline event (raw or combined) parsed straight
 * into a kline_t, without building a jansson tree (which costs ~half the CPU of a
 * message in allocations). It accepts only the plain shape the exchange sends:
 * no escapes, no floats, no arrays, no unknown nested values. Anything else returns
 * -1 and the caller takes the general path (jansson + kline_from_json), which also
 * produces the reject reasons. A kline accepted here passes kline_validate, and is
 * the same bytes kline_from_json would produce (tests compare with the truth). */
#include "fastjson.h"

#include <string.h>

typedef struct fj {
    const char *p, *end;
} fj_t;

static void fj_ws(fj_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int fj_lit(fj_t *j, char c)
{
    fj_ws(j);
    if (j->p >= j->end || *j->p != c)
        return -1;
    j->p++;
    return 0;
}

/* A string of printable ASCII without escapes; returns its bytes (not NUL-ended). */
static int fj_str(fj_t *j, const char **s, size_t *n)
{
    if (fj_lit(j, '"') < 0)
        return -1;
    const char *b = j->p;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c == '\\' || c < 0x20 || c >= 0x7f)
            return -1;
        j->p++;
    }
    if (j->p >= j->end)
        return -1;
    *s = b;
    *n = (size_t)(j->p - b);
    j->p++;
    return 0;
}

static int fj_int(fj_t *j, int64_t *out)
{
    fj_ws(j);
    bool neg = false;
    if (j->p < j->end && *j->p == '-') {
        neg = true;
        j->p++;
    }
    const char *b = j->p;
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*j->p - '0');
        j->p++;
    }
    size_t nd = (size_t)(j->p - b);
    if (nd == 0 || nd > 18 || (nd > 1 && *b == '0'))
        return -1; /* 18 digits: no overflow; leading zeros are not JSON */
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return -1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static int fj_bool(fj_t *j, bool *out)
{
    fj_ws(j);
    if (j->end - j->p >= 4 && memcmp(j->p, "true", 4) == 0) {
        j->p += 4;
        *out = true;
        return 0;
    }
    if (j->end - j->p >= 5 && memcmp(j->p, "false", 5) == 0) {
        j->p += 5;
        *out = false;
        return 0;
    }
    return -1;
}

/* Skips a scalar of an unknown key (string, integer, true/false/null). */
static int fj_skip(fj_t *j)
{
    fj_ws(j);
    if (j->p >= j->end)
        return -1;
    const char *s;
    size_t n;
    int64_t i;
    bool b;
    if (*j->p == '"')
        return fj_str(j, &s, &n);
    if (*j->p == 't' || *j->p == 'f')
        return fj_bool(j, &b);
    if (j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4;
        return 0;
    }
    return fj_int(j, &i);
}

static int fj_copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

#define FJ_KEY(s, n, lit) ((n) == sizeof(lit) - 1 && memcmp((s), (lit), sizeof(lit) - 1) == 0)

/* Bits of the fields seen in "k". */
enum { F_t = 1, F_T = 2, F_s = 4, F_i = 8, F_o = 16, F_c = 32, F_h = 64, F_l = 128, F_v = 256,
       F_n = 512, F_x = 1024, F_q = 2048, F_V = 4096, F_Q = 8192, F_ALL = 16383,
       F_f = 16384, F_L = 32768, F_B = 65536 };

static int fj_kline(fj_t *j, kline_t *k)
{
    unsigned seen = 0;
    if (fj_lit(j, '{') < 0)
        return -1;
    for (;;) {
        const char *key, *s;
        size_t kn, n;
        if (fj_str(j, &key, &kn) < 0 || fj_lit(j, ':') < 0)
            return -1;
        int rc = 0;
        if (kn != 1) {
            return -1; /* not a key Binance sends: the codec decides */
        } else {
            char *dec = NULL;
            unsigned bit = 0;
            switch (key[0]) {
            case 't': rc = fj_int(j, &k->open_time); bit = F_t; break;
            case 'T': rc = fj_int(j, &k->close_time); bit = F_T; break;
            case 'f': rc = fj_int(j, &k->first_trade_id); bit = F_f; break;
            case 'L': rc = fj_int(j, &k->last_trade_id); bit = F_L; break;
            case 'B': rc = fj_skip(j); bit = F_B; break;
            case 'n': rc = fj_int(j, &k->trades); bit = F_n; break;
            case 'x': rc = fj_bool(j, &k->closed); bit = F_x; break;
            case 's':
                rc = fj_str(j, &s, &n) < 0 ? -1 : fj_copy(k->symbol, sizeof k->symbol, s, n);
                bit = F_s;
                break;
            case 'i':
                rc = fj_str(j, &s, &n) < 0 ? -1 : fj_copy(k->interval, sizeof k->interval, s, n);
                bit = F_i;
                break;
            case 'o': dec = k->open; bit = F_o; break;
            case 'c': dec = k->close; bit = F_c; break;
            case 'h': dec = k->high; bit = F_h; break;
            case 'l': dec = k->low; bit = F_l; break;
            case 'v': dec = k->volume; bit = F_v; break;
            case 'q': dec = k->quote_volume; bit = F_q; break;
            case 'V': dec = k->taker_buy_volume; bit = F_V; break;
            case 'Q': dec = k->taker_buy_quote_volume; bit = F_Q; break;
            default: return -1;
            }
            if (dec) {
                rc = fj_str(j, &s, &n) < 0 ? -1 : fj_copy(dec, KLINE_DEC_MAX, s, n);
                if (rc == 0 && !kline_dec_valid(dec))
                    rc = -1;
            }
            if (seen & bit)
                return -1; /* a key twice: the codec rejects that */
            seen |= bit;
        }
        if (rc < 0)
            return -1;
        fj_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (fj_lit(j, '}') < 0)
            return -1;
        break;
    }
    return (seen & F_ALL) == F_ALL ? 0 : -1;
}

/* The event object: "e":"kline", "E", "s", "k". */
static int fj_event(fj_t *j, kline_t *k)
{
    bool have_e = false, have_E = false, have_k = false;
    char outer[KLINE_SYMBOL_MAX] = "";
    if (fj_lit(j, '{') < 0)
        return -1;
    for (;;) {
        const char *key, *s;
        size_t kn, n;
        if (fj_str(j, &key, &kn) < 0 || fj_lit(j, ':') < 0)
            return -1;
        int rc;
        if ((FJ_KEY(key, kn, "e") && have_e) || (FJ_KEY(key, kn, "E") && have_E) ||
            (FJ_KEY(key, kn, "k") && have_k) || (FJ_KEY(key, kn, "s") && outer[0]))
            return -1; /* a key twice */
        if (FJ_KEY(key, kn, "e")) {
            rc = fj_str(j, &s, &n);
            if (rc == 0 && !(n == 5 && memcmp(s, "kline", 5) == 0))
                rc = -1; /* other events: the general path decides */
            have_e = true;
        } else if (FJ_KEY(key, kn, "E")) {
            rc = fj_int(j, &k->event_time);
            have_E = true;
        } else if (FJ_KEY(key, kn, "s")) {
            rc = fj_str(j, &s, &n) < 0 ? -1 : fj_copy(outer, sizeof outer, s, n);
        } else if (FJ_KEY(key, kn, "k")) {
            rc = fj_kline(j, k);
            have_k = true;
        } else {
            return -1; /* not a key of a kline event */
        }
        if (rc < 0)
            return -1;
        fj_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (fj_lit(j, '}') < 0)
            return -1;
        break;
    }
    if (!have_e || !have_E || !have_k || k->event_time < 0)
        return -1;
    return outer[0] && strcmp(outer, k->symbol) != 0 ? -1 : 0;
}

int fastjson_kline(const char *buf, size_t len, kline_t *out)
{
    kline_t k;
    memset(&k, 0, sizeof k); /* same bytes as kline_from_json's result */
    k.first_trade_id = k.last_trade_id = -1;
    fj_t j = { buf, buf + len };
    fj_ws(&j);
    /* combined: {"stream":"...","data":{event}}; raw: {event} */
    fj_t look = j;
    const char *key;
    size_t kn;
    if (fj_lit(&look, '{') < 0 || fj_str(&look, &key, &kn) < 0)
        return -1;
    if (FJ_KEY(key, kn, "stream")) {
        const char *s;
        size_t n;
        j = look;
        if (fj_lit(&j, ':') < 0 || fj_str(&j, &s, &n) < 0 || fj_lit(&j, ',') < 0 ||
            fj_str(&j, &key, &kn) < 0 || !FJ_KEY(key, kn, "data") || fj_lit(&j, ':') < 0 ||
            fj_event(&j, &k) < 0 || fj_lit(&j, '}') < 0)
            return -1;
    } else if (fj_event(&j, &k) < 0) {
        return -1;
    }
    fj_ws(&j);
    if (j.p != j.end)
        return -1;
    char why[8];
    if (k.open_time < 0 || k.close_time < 0 || k.trades < 0 || k.first_trade_id < -1 ||
        k.last_trade_id < -1 || kline_validate(&k, why, sizeof why) < 0)
        return -1;
    k.source = KLINE_SRC_WS;
    *out = k;
    return 0;
}

json_t *fastjson_load(const char *buf, size_t len, json_error_t *err)
{
    return json_loadb(buf, len, JSON_REJECT_DUPLICATES, err);
}
