/*
 * fuzz_fast.c — libFuzzer target for the two fast paths against the full codec.
 *
 *   inserter/fastparse.c  ins_parse_canonical: the canonical record, one pass
 *   producer/fastjson.c   fastjson_kline: a Binance kline event, no jansson tree
 *   common/kline.c        kline_parse: the codec, which decides everything else
 *
 * The contract of a fast path: whatever it accepts, kline_parse accepts too, giving the
 * same kline_t byte for byte (both memset the struct, so padding compares too). It may
 * refuse more — the caller then asks kline_parse — so a refusal is never a finding.
 * For the producer, a refusal must also leave the record to its general path, which
 * rejects duplicate keys like the codec: checked with fastjson_load.
 * Any disagreement aborts, and so does any undefined behaviour (UBSan, no recovery).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kline.h"
#include "ins.h"
#include "fastjson.h"

static void fuzz_die(const char *who, const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_fast: %s: %s\n  input: %.*s\n", who, what, (int)(size > 400 ? 400 : size),
            (const char *)data);
    abort();
}

/* fast accepted into *f: the codec must accept the same bytes into the same kline_t */
static void fuzz_agree(const char *who, const kline_t *f, const uint8_t *data, size_t size)
{
    kline_t s;
    char why[256];
    if (kline_parse((const char *)data, size, NULL, NULL, &s, why, sizeof why) != 0)
        fuzz_die(who, why, data, size);
    if (memcmp(f, &s, sizeof s) != 0)
        fuzz_die(who, "fields differ from kline_parse", data, size);
}

/* The producer's fallback must never take a duplicate key: an input that jansson loads
 * by default but not with JSON_REJECT_DUPLICATES has one, and fastjson_load must refuse
 * it (as kline_parse does). */
static void fuzz_fallback(const uint8_t *data, size_t size)
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
    json_t *root = fastjson_load((const char *)data, size, &jerr);
    if (root) {
        json_decref(root);
        fuzz_die("fastjson_load", "took a duplicate key", data, size);
    }
    kline_t k;
    char why[256];
    if (kline_parse((const char *)data, size, NULL, NULL, &k, why, sizeof why) == 0)
        fuzz_die("kline_parse", "took a duplicate key", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kline_t f;
    if (size > KLINE_INPUT_MAX)
        return 0;
    if (ins_parse_canonical((const char *)data, size, &f) == 0)
        fuzz_agree("ins_parse_canonical", &f, data, size);
    if (fastjson_kline((const char *)data, size, &f) == 0)
        fuzz_agree("fastjson_kline", &f, data, size);
    fuzz_fallback(data, size);
    return 0;
}
