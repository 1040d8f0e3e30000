/* test_inserter_batch.c — cmocka tests of the inserter's in-memory batch (inserter/batch.c):
 * the dedupe rule shared with the upsert, offsets per partition, dropping revoked
 * partitions, rejects kept verbatim; and fastparse.c against kline_parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../ins.h"

static kline_t mk(const char *sym, int64_t t, bool closed, const char *close)
{
    kline_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.symbol, sizeof k.symbol, "%s", sym);
    snprintf(k.interval, sizeof k.interval, "1s");
    k.open_time = t;
    k.close_time = t + 999;
    snprintf(k.close, sizeof k.close, "%s", close);
    k.closed = closed;
    return k;
}

static void provisional_never_replaces_closed(void **state)
{
    (void)state;
    ins_batch_t b;
    ins_batch_init(&b);
    kline_t p = mk("BTCUSDT", 1000, false, "1.0"), c = mk("BTCUSDT", 1000, true, "2.0");
    assert_int_equal(ins_batch_add_kline(&b, &p, INS_TOPIC_KLINES, 0, 10, 0), 0);
    assert_int_equal(ins_batch_add_kline(&b, &c, INS_TOPIC_KLINES, 0, 11, 0), 0);
    p = mk("BTCUSDT", 1000, false, "3.0");
    assert_int_equal(ins_batch_add_kline(&b, &p, INS_TOPIC_KLINES, 0, 12, 0), 0);
    assert_int_equal(b.nrows, 1);
    assert_int_equal(b.nrecords, 3);
    assert_int_equal(b.ndup, 2);
    const ins_row_t *r = ins_batch_lookup(&b, "BTCUSDT", 1000);
    assert_non_null(r);
    assert_true(r->k.closed);
    assert_string_equal(r->k.close, "2.0");
    assert_int_equal(r->off, 11); /* the offset of the record that was kept */
    /* a later closed kline (a correction) does replace the closed one */
    c = mk("BTCUSDT", 1000, true, "4.0");
    assert_int_equal(ins_batch_add_kline(&b, &c, INS_TOPIC_KLINES, 0, 13, 0), 0);
    assert_string_equal(ins_batch_lookup(&b, "BTCUSDT", 1000)->k.close, "4.0");
    ins_batch_free(&b);
}

static void many_keys_stay_distinct(void **state)
{
    (void)state;
    ins_batch_t b;
    ins_batch_init(&b);
    char sym[16];
    for (int s = 0; s < 50; s++)
        for (int t = 0; t < 400; t++) { /* 20000 keys: several rehashes */
            snprintf(sym, sizeof sym, "S%dUSDT", s);
            kline_t k = mk(sym, 1789499996000 + t * 1000, true, "1");
            assert_int_equal(ins_batch_add_kline(&b, &k, INS_TOPIC_KLINES, s % 3, s * 1000 + t, 0), 0);
        }
    assert_int_equal(b.nrows, 20000);
    assert_int_equal(b.ndup, 0);
    assert_non_null(ins_batch_lookup(&b, "S49USDT", 1789499996000 + 399 * 1000));
    assert_null(ins_batch_lookup(&b, "S49USDT", 1789499996000 + 400 * 1000));
    assert_null(ins_batch_lookup(&b, "S50USDT", 1789499996000));
    /* offsets: one range per (topic, partition) */
    assert_int_equal(b.npos, 3);
    for (size_t i = 0; i < b.npos; i++) {
        assert_int_equal(b.pos[i].topic, INS_TOPIC_KLINES);
        assert_true(b.pos[i].first <= b.pos[i].last);
    }
    ins_batch_reset(&b);
    assert_int_equal(b.nrows, 0);
    assert_null(ins_batch_lookup(&b, "S1USDT", 1789499996000));
    ins_batch_free(&b);
}

static bool drop_part1(int topic, int32_t part, void *ud)
{
    (void)ud;
    return topic == INS_TOPIC_KLINES && part == 1;
}

static void drop_removes_revoked_partitions_only(void **state)
{
    (void)state;
    ins_batch_t b;
    ins_batch_init(&b);
    kline_t a = mk("AUSDT", 1000, true, "1"), z = mk("ZUSDT", 1000, true, "1");
    assert_int_equal(ins_batch_add_kline(&b, &a, INS_TOPIC_KLINES, 0, 5, 0), 0);
    assert_int_equal(ins_batch_add_kline(&b, &z, INS_TOPIC_KLINES, 1, 7, 0), 0);
    assert_int_equal(ins_batch_add_reject(&b, "x", 1, "bad", "kafka:t/1@8", INS_TOPIC_KLINES, 1, 8), 0);
    assert_int_equal(ins_batch_add_reject(&b, "y", 1, "bad", "kafka:t.rejected/1@0", INS_TOPIC_DLQ, 1, 0), 0);
    ins_batch_drop(&b, drop_part1, NULL);
    assert_int_equal(b.nrows, 1);
    assert_non_null(ins_batch_lookup(&b, "AUSDT", 1000));
    assert_null(ins_batch_lookup(&b, "ZUSDT", 1000));
    assert_int_equal(b.nrej, 1); /* the dead letter's partition 1 is another topic's */
    assert_int_equal(b.rej[0].topic, INS_TOPIC_DLQ);
    assert_int_equal(b.npos, 2);
    assert_int_equal(b.nrecords, 2);
    ins_batch_free(&b);
}

static void rejects_keep_raw_bytes_and_printable_text(void **state)
{
    (void)state;
    ins_batch_t b;
    ins_batch_init(&b);
    const char raw[] = { '\xff', '\0', 'a', '\n' };
    assert_int_equal(ins_batch_add_reject(&b, raw, sizeof raw, "bad\tthing\xe9", "stdin:3",
                                          INS_TOPIC_NONE, -1, -1), 0);
    assert_int_equal(b.rej[0].len, sizeof raw);
    assert_memory_equal(b.rej[0].raw, raw, sizeof raw);
    assert_string_equal(b.rej[0].reason, "bad?thing?");
    assert_int_equal(b.npos, 0); /* -i records have no offsets to commit */
    assert_int_equal(b.nrecords, 1);
    ins_batch_free(&b);
}

/* A canonical record as kline_format writes it, from a WS event: the scanner must take
 * it, and give exactly what kline_parse gives. */
static void fastparse_takes_kline_format_output(void **state)
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
        assert_int_equal(ins_parse_canonical(json, (size_t)n, &b), 0);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

/* Mutated canonical records: whatever the scanner accepts, kline_parse accepts too, with
 * the same result (the scanner may refuse more: kline_parse then decides). */
static void fastparse_never_disagrees_with_kline_parse(void **state)
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
    assert_int_equal(ins_parse_canonical(base, strlen(base), &b), 0);
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
        if (ins_parse_canonical(buf, n, &b) == 0) {
            accepted++;
            if (kline_parse(buf, n, NULL, NULL, &a, why, sizeof why) != 0)
                fail_msg("scanner took what kline_parse refuses (%s): %.*s", why, (int)n, buf);
            assert_memory_equal(&a, &b, sizeof a);
        }
    }
    assert_true(accepted > 100); /* mutations inside digits keep many records valid */
}

/* Integers of 19 and 20 digits (beyond the scanner's 18) and at the int64 limits: the
 * scanner must refuse them without computing them (a signed overflow is undefined
 * behaviour, which UBSan aborts on), and kline_parse then decides. */
static void fastparse_long_numbers_are_left_to_kline_parse(void **state)
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
        int fast = ins_parse_canonical(buf, (size_t)n, &b);
        int full = kline_parse(buf, (size_t)n, NULL, NULL, &a, why, sizeof why);
        if (strlen(nums[i]) > 18 + (nums[i][0] == '-'))
            assert_int_equal(fast, -1);
        if (fast == 0) {
            assert_int_equal(full, 0);
            assert_memory_equal(&a, &b, sizeof a);
        }
    }
}

/* A reject keeps at most rej_prefix bytes, and the size and SHA-256 of all of it. */
static void rejects_keep_a_bounded_prefix_size_and_hash(void **state)
{
    (void)state;
    static const unsigned char want[32] = {
        0x84, 0xd8, 0x98, 0x77, 0xf0, 0xd4, 0x04, 0x1e, 0xfb, 0x6b, 0xf9, 0x1a, 0x16, 0xf0,
        0x24, 0x8f, 0x2f, 0xd5, 0x73, 0xe6, 0xaf, 0x05, 0xc1, 0x9f, 0x96, 0xbe, 0xdb, 0x9f,
        0x88, 0x2f, 0x78, 0x82 }; /* sha256("0123456789") */
    ins_batch_t b;
    ins_batch_init(&b);
    assert_int_equal(b.rej_prefix, INS_REJECT_PREFIX_DEFAULT);
    b.rej_prefix = 4;
    assert_int_equal(ins_batch_add_reject(&b, "0123456789", 10, "bad", "stdin:1", INS_TOPIC_NONE,
                                          -1, -1), 0);
    assert_int_equal(b.rej[0].len, 4);
    assert_memory_equal(b.rej[0].raw, "0123", 4);
    assert_int_equal(b.rej[0].size, 10);
    assert_memory_equal(b.rej[0].sha256, want, sizeof want);
    ins_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(provisional_never_replaces_closed),
        cmocka_unit_test(many_keys_stay_distinct),
        cmocka_unit_test(drop_removes_revoked_partitions_only),
        cmocka_unit_test(rejects_keep_raw_bytes_and_printable_text),
        cmocka_unit_test(rejects_keep_a_bounded_prefix_size_and_hash),
        cmocka_unit_test(fastparse_takes_kline_format_output),
        cmocka_unit_test(fastparse_never_disagrees_with_kline_parse),
        cmocka_unit_test(fastparse_long_numbers_are_left_to_kline_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
