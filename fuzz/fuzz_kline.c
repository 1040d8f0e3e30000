/*
 * fuzz_kline.c — libFuzzer target for the kline codec (common/kline.c).
 *
 * For every input: kline_parse without hints, with upper- and lower-case hints
 * and with only a symbol hint, and kline_parse_csv directly. Whatever parses
 * must survive kline_format → kline_parse unchanged and format to the same text
 * again; any difference aborts. Inputs containing '|' also exercise
 * kline_dec_cmp on the two sides against a slow reference comparison.
 *
 * Built by `make fuzz` (fuzz/module.mk) with clang and the codec sources
 * compiled in directly, so the codec is instrumented (jansson is not).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kline.h"

static void fuzz_die(const char *what, const kline_t *k, const char *text)
{
    fprintf(stderr, "fuzz_kline: %s\n", what);
    if (text)
        fprintf(stderr, "  text: %s\n", text);
    if (k)
        fprintf(stderr, "  symbol=%s interval=%s open_time=%lld close_time=%lld\n", k->symbol,
                k->interval, (long long)k->open_time, (long long)k->close_time);
    abort();
}

static void fuzz_same(const kline_t *a, const kline_t *b, const char *text)
{
    if (strcmp(a->symbol, b->symbol) || strcmp(a->interval, b->interval) ||
        a->open_time != b->open_time || a->close_time != b->close_time ||
        strcmp(a->open, b->open) || strcmp(a->high, b->high) || strcmp(a->low, b->low) ||
        strcmp(a->close, b->close) || strcmp(a->volume, b->volume) ||
        strcmp(a->quote_volume, b->quote_volume) || a->trades != b->trades ||
        strcmp(a->taker_buy_volume, b->taker_buy_volume) ||
        strcmp(a->taker_buy_quote_volume, b->taker_buy_quote_volume) ||
        a->first_trade_id != b->first_trade_id || a->last_trade_id != b->last_trade_id ||
        a->closed != b->closed || a->event_time != b->event_time || a->source != b->source)
        fuzz_die("round trip changed a field", a, text);
    /* Both were zeroed before filling: equal klines are equal bytes. */
    if (memcmp(a, b, sizeof *a) != 0)
        fuzz_die("round trip changed bytes (padding or string tails)", a, text);
}

static void fuzz_roundtrip(const kline_t *k)
{
    char err[256];
    if (kline_validate(k, err, sizeof err) != 0)
        fuzz_die("kline_parse returned a kline that kline_validate refuses", k, err);
    char text[KLINE_JSON_MAX], text2[KLINE_JSON_MAX];
    int n = kline_format(k, text, sizeof text);
    if (n <= 0 || (size_t)n != strlen(text))
        fuzz_die("kline_format failed on a parsed kline", k, NULL);
    kline_t back;
    if (kline_parse(text, (size_t)n, NULL, NULL, &back, err, sizeof err) != 0)
        fuzz_die(err, k, text);
    fuzz_same(k, &back, text);
    int n2 = kline_format(&back, text2, sizeof text2);
    if (n2 != n || memcmp(text, text2, (size_t)n) != 0)
        fuzz_die("formatting twice differs", k, text);
}

/* Is the first non-blank byte '{' (a self-describing record that ignores hints)? */
static int fuzz_is_object(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    return i < len && buf[i] == '{';
}

static int fuzz_same_symbol(const char *upper, const char *hint)
{
    size_t i = 0;
    for (; hint[i]; i++) {
        char h = hint[i];
        if (h >= 'a' && h <= 'z')
            h = (char)(h - 'a' + 'A');
        if (upper[i] != h)
            return 0;
    }
    return upper[i] == '\0';
}

static void fuzz_parse(const char *buf, size_t len, const char *sh, const char *ih)
{
    kline_t k;
    char err[128];
    err[0] = '\0';
    if (kline_parse(buf, len, sh, ih, &k, err, sizeof err) == 0) {
        fuzz_roundtrip(&k);
        if (sh && !fuzz_is_object(buf, len) && !fuzz_same_symbol(k.symbol, sh))
            fuzz_die("REST/CSV row did not take the symbol hint", &k, NULL);
    } else if (err[0] == '\0') {
        fuzz_die("rejected without a reason", NULL, NULL);
    }
}

/* Reference for kline_dec_cmp: strip leading integer zeros and trailing
 * fraction zeros, then compare lengths and bytes. Only for valid decimals. */
static int fuzz_dec_ref(const char *a, const char *b)
{
    char na[KLINE_DEC_MAX], nb[KLINE_DEC_MAX];
    const char *src[2] = { a, b };
    char *dst[2] = { na, nb };
    size_t ilen[2];
    for (int i = 0; i < 2; i++) {
        const char *s = src[i];
        while (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
            s++;
        strcpy(dst[i], s);
        char *dot = strchr(dst[i], '.');
        if (dot) {
            char *end = dst[i] + strlen(dst[i]);
            while (end > dot + 1 && end[-1] == '0')
                *--end = '\0';
            if (end == dot + 1)
                *dot = '\0';
        }
        ilen[i] = strcspn(dst[i], ".");
    }
    if (ilen[0] != ilen[1])
        return ilen[0] < ilen[1] ? -1 : 1;
    int c = strcmp(na, nb); /* same integer length: '.' < digits keeps "1" < "1.5" */
    return (c > 0) - (c < 0);
}

static void fuzz_dec(const uint8_t *data, size_t size)
{
    const uint8_t *bar = memchr(data, '|', size);
    if (!bar)
        return;
    size_t la = (size_t)(bar - data), lb = size - la - 1;
    if (la >= KLINE_DEC_MAX || lb >= KLINE_DEC_MAX)
        return;
    char a[KLINE_DEC_MAX], b[KLINE_DEC_MAX];
    memcpy(a, data, la);
    a[la] = '\0';
    memcpy(b, bar + 1, lb);
    b[lb] = '\0';
    /* Must not crash on anything; must be exact on valid decimals. */
    int c = kline_dec_cmp(a, b);
    int r = kline_dec_cmp(b, a);
    if (!kline_dec_valid(a) || !kline_dec_valid(b))
        return;
    c = (c > 0) - (c < 0);
    r = (r > 0) - (r < 0);
    if (c != -r)
        fuzz_die("kline_dec_cmp not antisymmetric", NULL, a);
    if (c != fuzz_dec_ref(a, b))
        fuzz_die("kline_dec_cmp disagrees with the reference", NULL, a);
    if (kline_dec_cmp(a, a) != 0)
        fuzz_die("kline_dec_cmp(a, a) != 0", NULL, a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, so ASan catches any read past len (the codec
     * must never rely on a NUL after the input). */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    fuzz_parse(buf, size, NULL, NULL);
    fuzz_parse(buf, size, "BTCUSDT", "1s");
    fuzz_parse(buf, size, "adabtc", "1m");
    fuzz_parse(buf, size, "ETHUSDT", NULL);

    kline_t k;
    char err[128];
    if (kline_parse_csv(buf, size, "BTCUSDT", NULL, &k, err, sizeof err) == 0)
        fuzz_roundtrip(&k);

    fuzz_dec(data, size);
    free(buf);
    return 0;
}
