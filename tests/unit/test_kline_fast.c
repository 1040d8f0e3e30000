/* test_kline_fast — the codec's fast first attempt (kline_parse_fast, common/kline_fast.c)
 * against its full path (kline_parse_full, and kline_json_load + kline_from_json, the
 * producer's fallback): whatever the fast path accepts, the full path accepts too, with
 * identical bytes; the real Binance samples and kline_format's records take the fast
 * path; random damage never makes it accept something the full path rejects; duplicate
 * keys are refused on both. (Formerly test_producer_fastjson and the fastparse tests of
 * test_inserter_batch.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kline.h"
#include "kline_rules.h"

static char *samples[64];
static int nsamples;

/* fast ⇒ slow, with the same result. Returns 1 if the fast path accepted. */
static int agree(const char *buf, size_t len)
{
    kline_t f, s;
    char why[256];
    int fr = kline_parse_fast(buf, len, &f);
    int sr = kline_parse_full(buf, len, NULL, NULL, &s, why, sizeof why);
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
        assert_int_equal(kline_parse_fast(not_fast[i], strlen(not_fast[i]), &k), -1);
    /* an escaped character is legal JSON: the codec path handles it, same result */
    const char *esc = "{\"e\":\"kline\",\"E\":1789499997024,\"s\":\"BTCUSDT\",\"k\":{\"t\":1789499996000,"
                      "\"T\":1789499996999,\"s\":\"BTC\\u0055SDT\",\"i\":\"1s\",\"f\":1,\"L\":2,\"o\":\"1.0\","
                      "\"c\":\"1.0\",\"h\":\"1.0\",\"l\":\"1.0\",\"v\":\"1\",\"n\":2,\"x\":true,\"q\":\"1\","
                      "\"V\":\"0\",\"Q\":\"0\",\"B\":\"0\"}}";
    assert_int_equal(kline_parse_fast(esc, strlen(esc), &k), -1);
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
 * the producer falls back to (kline_json_load + kline_from_json) must refuse it too, not take
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
        assert_int_equal(kline_parse_fast(dups[i], n, &k), -1);
        assert_int_not_equal(kline_parse(dups[i], n, NULL, NULL, &k, why, sizeof why), 0);
        json_t *root = kline_json_load(dups[i], n, &jerr);
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
    json_t *root = kline_json_load(ok, strlen(ok), &jerr);
    kline_t k;
    char why[256];
    assert_non_null(root);
    if (kline_from_json(root, NULL, NULL, &k, why, sizeof why) != 0)
        fail_msg("control record refused: %s", why);
    json_decref(root);
}

/* A canonical record as kline_format writes it, from a WS event: the scanner must take
 * it, and give exactly what the full path gives. */
static void canonical_kline_format_output_takes_fast_path(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "{\"e\":\"kline\",\"E\":1789499997024,\"s\":\"BTCUSDT\",\"k\":{\"t\":1789499996000,"
        "\"T\":1789499996999,\"s\":\"BTCUSDT\",\"i\":\"1s\",\"f\":6684854486,\"L\":6684854599,"
        "\"o\":\"76168.36000000\",\"c\":\"76175.97000000\",\"h\":\"76175.97000000\","
        "\"l\":\"76168.36000000\",\"v\":\"0.18974000\",\"n\":114,\"x\":true,"
        "\"q\":\"14452.26191960\",\"V\":\"0.08558000\",\"Q\":\"6518.56313820\",\"B\":\"0\"}}",
        "[1789499996000,\"1.00000000\",\"1.00000000\",\"1.00000000\",\"1.00000000\",\"0.00000000\","
        "1789499996999,\"0.00000000\",0,\"0.00000000\",\"0.00000000\",\"0\"]",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        kline_t a, b;
        char why[256], json[KLINE_JSON_MAX];
        assert_int_equal(kline_parse(inputs[i], strlen(inputs[i]), "ETHBTC", "1s", &a, why,
                                     sizeof why), 0);
        int n = kline_format(&a, json, sizeof json);
        assert_true(n > 0);
        assert_int_equal(kline_parse_fast(json, (size_t)n, &b), 0);
        assert_memory_equal(&a, &b, sizeof a);
        assert_int_equal(kline_parse_full(json, (size_t)n, NULL, NULL, &b, why, sizeof why), 0);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

/* Mutated canonical records: whatever the scanner accepts, the full path accepts too, with
 * the same result (the scanner may refuse more: the full path then decides). */
static void canonical_fast_never_disagrees_with_full(void **state)
{
    (void)state;
    static const char base[] =
        "{\"symbol\":\"BTCUSDT\",\"interval\":\"1s\",\"open_time\":1789499996000,"
        "\"close_time\":1789499996999,\"open\":\"76168.36000000\",\"high\":\"76175.97000000\","
        "\"low\":\"76168.36000000\",\"close\":\"76175.97000000\",\"volume\":\"0.18974000\","
        "\"quote_volume\":\"14452.26191960\",\"trades\":114,\"taker_buy_volume\":\"0.08558000\","
        "\"taker_buy_quote_volume\":\"6518.56313820\",\"first_trade_id\":6684854486,"
        "\"last_trade_id\":6684854599,\"closed\":true,\"event_time\":1789499997024,"
        "\"source\":\"ws\"}";
    static const char alphabet[] = "0123456789-.,:\"{} aAzZ\\\x7f\xc3" "e+";
    kline_t a, b;
    char why[256], buf[sizeof base + 8];
    assert_int_equal(kline_parse_fast(base, strlen(base), &b), 0);
    unsigned seed = 12345;
    int accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = strlen(base);
        memcpy(buf, base, n + 1);
        for (int m = 0; m < 1 + iter % 3; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % n;
            int op = (int)((seed >> 4) % 3);
            char c = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
            if (op == 0) {
                buf[pos] = c;
            } else if (op == 1 && n > 1) { /* delete */
                memmove(buf + pos, buf + pos + 1, n - pos);
                n--;
            } else if (n + 1 < sizeof buf) { /* insert */
                memmove(buf + pos + 1, buf + pos, n - pos + 1);
                buf[pos] = c;
                n++;
            }
        }
        if (kline_parse_fast(buf, n, &b) == 0) {
            accepted++;
            if (kline_parse_full(buf, n, NULL, NULL, &a, why, sizeof why) != 0)
                fail_msg("scanner took what the full path refuses (%s): %.*s", why, (int)n, buf);
            assert_memory_equal(&a, &b, sizeof a);
        }
    }
    assert_true(accepted > 100); /* mutations inside digits keep many records valid */
}

/* Integers of 19 and 20 digits (beyond the scanner's 18) and at the int64 limits: the
 * scanner must refuse them without computing them (a signed overflow is undefined
 * behaviour, which UBSan aborts on), and the full path then decides. */
static void canonical_long_numbers_are_left_to_full(void **state)
{
    (void)state;
    static const char *const nums[] = {
        "9223372036854775807", "9223372036854775808", "9999999999999999999",
        "-9223372036854775808", "-9999999999999999999", "99999999999999999999",
        "18446744073709551616", "100000000000000000000000000000", "999999999999999999",
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char buf[1024];
        int n = snprintf(buf, sizeof buf,
            "{\"symbol\":\"BTCUSDT\",\"interval\":\"1s\",\"open_time\":1789499996000,"
            "\"close_time\":1789499996999,\"open\":\"1\",\"high\":\"1\",\"low\":\"1\","
            "\"close\":\"1\",\"volume\":\"0\",\"quote_volume\":\"0\",\"trades\":%s,"
            "\"taker_buy_volume\":\"0\",\"taker_buy_quote_volume\":\"0\","
            "\"first_trade_id\":%s,\"last_trade_id\":%s,\"closed\":true,"
            "\"event_time\":1789499997024,\"source\":\"ws\"}", nums[i], nums[i], nums[i]);
        kline_t a, b;
        char why[256];
        int fast = kline_parse_fast(buf, (size_t)n, &b);
        int full = kline_parse_full(buf, (size_t)n, NULL, NULL, &a, why, sizeof why);
        if (strlen(nums[i]) > 18 + (nums[i][0] == '-'))
            assert_int_equal(fast, -1);
        if (fast == 0) {
            assert_int_equal(full, 0);
            assert_memory_equal(&a, &b, sizeof a);
        }
    }
}

/* The fast path reads a field by the full path's rules, not by rules of its own: a
 * lower-case symbol is upper-cased on both (it used to leave the fast path), and a field
 * out of the full path's range (a trade id below -1, a time past 9999) is left to it. */
static void fast_path_shares_the_field_rules(void **state)
{
    (void)state;
    static const char fmt[] =
        "{\"e\":\"kline\",\"E\":%s,\"s\":\"%s\",\"k\":{\"t\":0,\"T\":999,\"s\":\"%s\","
        "\"i\":\"1s\",\"f\":%s,\"L\":-1,\"o\":\"1\",\"c\":\"1\",\"h\":\"1\",\"l\":\"1\","
        "\"v\":\"0\",\"n\":0,\"x\":true,\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\"}}";
    char buf[1024];
    kline_t f, s;
    char why[256];
    snprintf(buf, sizeof buf, fmt, "1", "btcUSDT", "BTCusdt", "-1");
    assert_int_equal(kline_parse_fast(buf, strlen(buf), &f), 0);
    assert_string_equal(f.symbol, "BTCUSDT");
    assert_int_equal(agree(buf, strlen(buf)), 1);
    assert_int_equal(kline_parse_full(buf, strlen(buf), NULL, NULL, &s, why, sizeof why), 0);
    assert_memory_equal(&f, &s, sizeof f);
    snprintf(buf, sizeof buf, fmt, "1", "BTCUSDT", "BTCUSDT", "-2");
    assert_int_equal(kline_parse_fast(buf, strlen(buf), &f), -1);
    assert_int_not_equal(kline_parse(buf, strlen(buf), NULL, NULL, &s, why, sizeof why), 0);
    assert_non_null(strstr(why, "k.f (first_trade_id)"));
    snprintf(buf, sizeof buf, fmt, "253402300800000", "BTCUSDT", "BTCUSDT", "-1");
    assert_int_equal(kline_parse_fast(buf, strlen(buf), &f), -1);
    assert_int_not_equal(kline_parse(buf, strlen(buf), NULL, NULL, &s, why, sizeof why), 0);
    assert_non_null(strstr(why, "E (event_time)"));
    snprintf(buf, sizeof buf, fmt, "1", "BTCUSDT", "ETHUSDT", "-1"); /* s and k.s disagree */
    assert_int_equal(kline_parse_fast(buf, strlen(buf), &f), -1);
    assert_int_not_equal(kline_parse(buf, strlen(buf), NULL, NULL, &s, why, sizeof why), 0);
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
        cmocka_unit_test(canonical_kline_format_output_takes_fast_path),
        cmocka_unit_test(canonical_fast_never_disagrees_with_full),
        cmocka_unit_test(canonical_long_numbers_are_left_to_full),
        cmocka_unit_test(fast_path_shares_the_field_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
