/*
 * fuzz_fast.c — libFuzzer target for the codec's two decoders together:
 *
 *   common/kline_fast.c  kline_parse_fast: the fast first attempt (canonical record,
 *                        Binance WS kline event), no jansson tree
 *   common/kline.c       kline_parse_full: the full jansson path, which decides the rest
 *
 * Each input goes to both; any disagreement aborts, and so does undefined behaviour
 * (UBSan, no recovery):
 *   - the fast path accepts ⇒ the full path accepts, with the same kline_t byte for
 *     byte (both memset the struct, so padding compares too), and kline_parse (fast then
 *     full) gives that result;
 *   - the full path accepts ⇒ kline_parse gives the same kline_t; it rejects ⇒ kline_parse
 *     rejects too (a refusal of the fast path alone is never a finding: it defers);
 *   - the full path accepts ⇒ the canonical record kline_format writes of it reads back
 *     as the same kline_t on both paths, and takes the fast path unless an integer in it
 *     has more than the fast path's 18 digits (a trade count or id of 10^18 or more);
 *   - a duplicate key (an input jansson loads by default but not with
 *     JSON_REJECT_DUPLICATES) is refused by kline_json_load, the producer's fallback,
 *     and by kline_parse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kline.h"
#include "kline_rules.h"

static void fuzz_die(const char *what, const void *data, size_t size)
{
    fprintf(stderr, "fuzz_fast: %s\n  input: %.*s\n", what, (int)(size > 400 ? 400 : size),
            (const char *)data);
    abort();
}

static void fuzz_same(const char *what, const kline_t *a, const kline_t *b, const void *data,
                      size_t size)
{
    if (memcmp(a, b, sizeof *a) != 0)
        fuzz_die(what, data, size);
}

/* The canonical record of a kline the full path took: fast and full read it back alike. */
static void fuzz_round_trip(const kline_t *full)
{
    char json[KLINE_JSON_MAX], why[256];
    kline_t f, s;
    int n = kline_format(full, json, sizeof json);
    if (n < 0)
        fuzz_die("kline_format refused a parsed kline", json, 0);
    const int64_t big = INT64_C(1000000000000000000); /* 19 digits: the full path's */
    bool short_ints = full->trades < big && full->first_trade_id < big &&
                      full->last_trade_id < big; /* times are < 10^15 */
    if (kline_parse_full(json, (size_t)n, NULL, NULL, &s, why, sizeof why) != 0)
        fuzz_die(why, json, (size_t)n);
    fuzz_same("canonical record: not the kline it was written from", &s, full, json, (size_t)n);
    if (kline_parse_fast(json, (size_t)n, &f) == 0)
        fuzz_same("canonical record: fast and full differ", &f, &s, json, (size_t)n);
    else if (short_ints)
        fuzz_die("kline_format's record left the fast path", json, (size_t)n);
}

static void fuzz_duplicates(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *lax = json_loadb((const char *)data, size, 0, &jerr);
    if (!lax)
        return;
    json_decref(lax);
    json_t *strict = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (strict) {
        json_decref(strict);
        return;
    }
    json_t *root = kline_json_load((const char *)data, size, &jerr);
    if (root) {
        json_decref(root);
        fuzz_die("kline_json_load took a duplicate key", data, size);
    }
    kline_t k;
    char why[256];
    if (kline_parse((const char *)data, size, NULL, NULL, &k, why, sizeof why) == 0)
        fuzz_die("kline_parse took a duplicate key", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    kline_t f, s, p;
    char why[256], why2[256];
    if (size > KLINE_INPUT_MAX)
        return 0;
    int fast = kline_parse_fast(buf, size, &f);
    int full = kline_parse_full(buf, size, NULL, NULL, &s, why, sizeof why);
    int both = kline_parse(buf, size, NULL, NULL, &p, why2, sizeof why2);
    if (fast == 0 && full != 0)
        fuzz_die("the fast path took what the full path rejects", data, size);
    if (both != full)
        fuzz_die("kline_parse and the full path disagree on accept/reject", data, size);
    if (fast == 0)
        fuzz_same("fast and full paths differ", &f, &s, data, size);
    if (full == 0) {
        fuzz_same("kline_parse and the full path differ", &p, &s, data, size);
        fuzz_round_trip(&s);
    }
    fuzz_duplicates(data, size);
    return 0;
}
