/* test_inserter_batch.c — cmocka tests of the inserter's in-memory batch (inserter/batch.c):
 * the dedupe rule shared with the upsert, offsets per partition, dropping revoked
 * partitions, rejects kept verbatim. (The canonical scanner's tests moved with it into the
 * codec: tests/unit/test_kline_fast.c.) */
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
