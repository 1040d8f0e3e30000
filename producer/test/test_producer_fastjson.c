/* test_producer_fastjson — the producer's allocation-free kline parser must agree with
 * the general codec: whatever it accepts, kline_parse accepts too, with identical
 * bytes; the real Binance samples take the fast path; and random damage never makes
 * it accept something the codec rejects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kline.h"
#include "../fastjson.h"

static char *samples[64];
static int nsamples;

/* fast ⇒ slow, with the same result. Returns 1 if the fast path accepted. */
static int agree(const char *buf, size_t len)
{
    kline_t f, s;
    char why[256];
    int fr = fastjson_kline(buf, len, &f);
    int sr = kline_parse(buf, len, NULL, NULL, &s, why, sizeof why);
    if (fr == 0) {
        if (sr != 0)
            fail_msg("fast path accepted what the codec rejects (%s): %.*s", why, (int)len, buf);
        if (memcmp(&f, &s, sizeof f) != 0)
            fail_msg("fast path and codec differ on: %.*s", (int)len, buf);
        return 1;
    }
    return 0;
}

static void test_real_samples_take_fast_path(void **state)
{
    (void)state;
    assert_true(nsamples >= 3);
    for (int i = 0; i < nsamples; i++) {
        size_t n = strlen(samples[i]);
        if (strstr(samples[i], "\"e\":\"kline\""))
            assert_int_equal(agree(samples[i], n), 1);
        else
            agree(samples[i], n);
    }
}

static void test_shapes_left_to_the_codec(void **state)
{
    (void)state;
    kline_t k;
    const char *not_fast[] = {
        "{\"e\":\"serverShutdown\",\"E\":1}",
        "{\"stream\":\"!serverShutdown\",\"data\":{\"e\":\"serverShutdown\",\"E\":1}}",
        "{\"result\":null,\"id\":1}",
        "[1,2,3]",
        "",
        "{",
        "{\"e\":\"kline\",\"E\":1.5,\"k\":{}}",
        "{\"e\":\"kline\",\"E\":01,\"k\":{}}",
    };
    for (size_t i = 0; i < sizeof not_fast / sizeof not_fast[0]; i++)
        assert_int_equal(fastjson_kline(not_fast[i], strlen(not_fast[i]), &k), -1);
    /* an escaped character is legal JSON: the codec path handles it, same result */
    const char *esc = "{\"e\":\"kline\",\"E\":1789499997024,\"s\":\"BTCUSDT\",\"k\":{\"t\":1789499996000,"
                      "\"T\":1789499996999,\"s\":\"BTC\\u0055SDT\",\"i\":\"1s\",\"f\":1,\"L\":2,\"o\":\"1.0\","
                      "\"c\":\"1.0\",\"h\":\"1.0\",\"l\":\"1.0\",\"v\":\"1\",\"n\":2,\"x\":true,\"q\":\"1\","
                      "\"V\":\"0\",\"Q\":\"0\",\"B\":\"0\"}}";
    assert_int_equal(fastjson_kline(esc, strlen(esc), &k), -1);
    char why[128];
    assert_int_equal(kline_parse(esc, strlen(esc), NULL, NULL, &k, why, sizeof why), 0);
}

static void test_random_damage_never_accepted_wrongly(void **state)
{
    (void)state;
    static const char junk[] = "\"\\{}[],:01-.eE tfnx\x01\xc3\xff";
    char buf[4096];
    unsigned seed = 12345;
    int fast = 0;
    for (int i = 0; i < nsamples; i++) {
        size_t n0 = strlen(samples[i]);
        if (n0 >= sizeof buf - 8)
            continue;
        for (int r = 0; r < 20000; r++) {
            memcpy(buf, samples[i], n0);
            size_t n = n0;
            int edits = 1 + (int)(rand_r(&seed) % 3);
            for (int e = 0; e < edits && n > 1; e++) {
                size_t at = (size_t)rand_r(&seed) % n;
                switch (rand_r(&seed) % 4) {
                case 0: buf[at] = junk[rand_r(&seed) % (sizeof junk - 1)]; break;
                case 1: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;
                case 2: memmove(buf + at + 1, buf + at, n - at); buf[at] = junk[rand_r(&seed) % (sizeof junk - 1)]; n++; break;
                case 3: buf[at] = (char)('0' + rand_r(&seed) % 10); break;
                }
            }
            fast += agree(buf, n);
        }
    }
    print_message("# %d damaged messages still took the fast path (all agreed)\n", fast);
}

static int load_samples(void)
{
    const char *root = getenv("KP_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/binance/ws_kline_samples.jsonl", root && *root ? root : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (nsamples < 64 && (n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n > 0)
            samples[nsamples++] = strdup(line);
    }
    free(line);
    fclose(f);
    return 0;
}

/* A key twice, in the event or in its "k": the fast path refuses it, and the general path
 * msg.c falls back to (fastjson_load + kline_from_json) must refuse it too, not take
 * the last value (jansson's default). */
static void test_duplicate_keys_rejected_on_both_paths(void **state)
{
    (void)state;
    static const char *const dups[] = {
        "{\"e\":\"kline\",\"E\":1,\"s\":\"BTCUSDT\",\"k\":{\"t\":0,\"T\":999,\"s\":\"BTCUSDT\","
        "\"i\":\"1s\",\"o\":\"1\",\"c\":\"1\",\"c\":\"2\",\"h\":\"2\",\"l\":\"1\",\"v\":\"0\","
        "\"n\":0,\"x\":true,\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\"}}",
        "{\"e\":\"kline\",\"E\":1,\"E\":2,\"s\":\"BTCUSDT\",\"k\":{\"t\":0,\"T\":999,\"s\":\"BTCUSDT\","
        "\"i\":\"1s\",\"o\":\"1\",\"c\":\"1\",\"h\":\"1\",\"l\":\"1\",\"v\":\"0\","
        "\"n\":0,\"x\":true,\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\"}}",
        /* whitespace and an unknown key keep it off the fast path */
        "{ \"e\":\"kline\", \"E\":1, \"s\":\"BTCUSDT\", \"k\":{\"t\":0,\"T\":999,\"s\":\"BTCUSDT\","
        "\"i\":\"1s\",\"o\":\"1\",\"c\":\"1\",\"h\":\"1\",\"l\":\"1\",\"v\":\"0\",\"v\":\"5\","
        "\"n\":0,\"x\":true,\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\",\"zz\":1}}",
        "{\"stream\":\"btcusdt@kline_1s\",\"stream\":\"x\",\"data\":{\"e\":\"kline\",\"E\":1,"
        "\"s\":\"BTCUSDT\",\"k\":{\"t\":0,\"T\":999,\"s\":\"BTCUSDT\",\"i\":\"1s\",\"o\":\"1\","
        "\"c\":\"1\",\"h\":\"1\",\"l\":\"1\",\"v\":\"0\",\"n\":0,\"x\":true,\"q\":\"0\","
        "\"V\":\"0\",\"Q\":\"0\"}}}",
    };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        kline_t k;
        char why[256];
        json_error_t jerr;
        size_t n = strlen(dups[i]);
        assert_int_equal(fastjson_kline(dups[i], n, &k), -1);
        assert_int_not_equal(kline_parse(dups[i], n, NULL, NULL, &k, why, sizeof why), 0);
        json_t *root = fastjson_load(dups[i], n, &jerr);
        int accepted = root && kline_from_json(root, NULL, NULL, &k, why, sizeof why) == 0;
        json_decref(root);
        if (accepted)
            fail_msg("the general path took a duplicate key: %s", dups[i]);
    }
    /* the same records without the duplicate are accepted by the general path */
    json_error_t jerr;
    const char *ok = "{ \"e\":\"kline\", \"E\":1, \"s\":\"BTCUSDT\", \"k\":{\"t\":0,\"T\":999,"
        "\"s\":\"BTCUSDT\",\"i\":\"1s\",\"o\":\"1\",\"c\":\"1\",\"h\":\"1\",\"l\":\"1\",\"v\":\"0\","
        "\"n\":0,\"x\":true,\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\",\"zz\":1}}";
    json_t *root = fastjson_load(ok, strlen(ok), &jerr);
    kline_t k;
    char why[256];
    assert_non_null(root);
    if (kline_from_json(root, NULL, NULL, &k, why, sizeof why) != 0)
        fail_msg("control record refused: %s", why);
    json_decref(root);
}

int main(void)
{
    if (load_samples() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_samples_take_fast_path),
        cmocka_unit_test(test_shapes_left_to_the_codec),
        cmocka_unit_test(test_random_damage_never_accepted_wrongly),
        cmocka_unit_test(test_duplicate_keys_rejected_on_both_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
