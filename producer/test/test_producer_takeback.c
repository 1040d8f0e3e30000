/* test_producer_takeback — what a failed Kafka client gives back is produced again in
 * each symbol's publishing order, whatever order the delivery reports came in; and
 * rebuilds are paced (at most TB_PACE_BURST a minute), on a simulated clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kline.h"
#include "../takeback.h"

/* A canonical kline of sym at open_time t (the value the producer sends). */
static int fmt_kline(const char *sym, int64_t t, bool closed, char *buf, size_t len)
{
    kline_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.symbol, sizeof k.symbol, "%s", sym);
    snprintf(k.interval, sizeof k.interval, "1s");
    k.open_time = t;
    k.close_time = t + 999;
    strcpy(k.open, "1");
    strcpy(k.high, "1");
    strcpy(k.low, "1");
    strcpy(k.close, "1");
    strcpy(k.volume, "0");
    strcpy(k.quote_volume, "0");
    strcpy(k.taker_buy_volume, "0");
    strcpy(k.taker_buy_quote_volume, "0");
    k.first_trade_id = k.last_trade_id = -1;
    k.closed = closed;
    return kline_format(&k, buf, len);
}

static void add_kline(const char *sym, int64_t t, bool closed)
{
    char v[KLINE_JSON_MAX];
    int n = fmt_kline(sym, t, closed, v, sizeof v);
    assert_true(n > 0);
    assert_int_equal(tb_add(0, sym, strlen(sym), v, (size_t)n, t, (void *)(intptr_t)t, NULL, true), 0);
}

/* After a fatal error the purged queue (newer) is reported before the in-flight requests
 * (older): the list restores open_time order per key, provisional before closed. */
static void test_order_restored(void **state)
{
    (void)state;
    add_kline("BBB", 5000, true);   /* queued, reported first */
    add_kline("AAA", 3000, true);
    add_kline("BBB", 4000, true);
    add_kline("BBB", 3000, true);   /* in flight, reported last */
    add_kline("AAA", 2000, true);
    add_kline("AAA", 2000, false);  /* provisional of the same second, reported after */
    assert_int_equal(tb_count(), 6);
    size_t n = 0;
    tb_msg_t *v = tb_take_all(&n);
    assert_int_equal(n, 6);
    assert_int_equal(tb_count(), 0);
    const char *keys[] = { "AAA", "AAA", "AAA", "BBB", "BBB", "BBB" };
    const int64_t ts[] = { 2000, 2000, 3000, 3000, 4000, 5000 };
    for (size_t i = 0; i < n; i++) {
        assert_memory_equal(v[i].key, keys[i], 3);
        assert_int_equal(v[i].open_time, ts[i]);
        assert_int_equal((intptr_t)v[i].opaque, ts[i]); /* the delivery opaque is kept */
        assert_int_equal(v[i].ts_ms, ts[i]);
        tb_msg_free(&v[i]);
    }
    assert_false(v[0].closed == v[1].closed);
    free(v);
}

/* Bytes are copied (the delivery report's buffer is gone after the callback), headers
 * are the entry's; a value that is not a kline keeps its arrival order. */
static void test_copies_and_headers(void **state)
{
    (void)state;
    char raw[] = "not json";
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "reason", -1, "bad", -1);
    assert_int_equal(tb_add(1, "ws", 2, raw, sizeof raw - 1, 7, NULL, h, false), 0);
    assert_int_equal(tb_add(1, "ws", 2, "second", 6, 8, NULL, NULL, false), 0);
    memset(raw, 'x', sizeof raw - 1);
    size_t n = 0;
    tb_msg_t *v = tb_take_all(&n);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].val, "not json");
    assert_string_equal(v[1].val, "second");
    const void *val;
    size_t len;
    assert_int_equal(rd_kafka_header_get_last(v[0].hdrs, "reason", &val, &len), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_memory_equal(val, "bad", 3);
    for (size_t i = 0; i < n; i++)
        tb_msg_free(&v[i]);
    free(v);
}

/* TB_PACE_BURST rebuilds go at once; the next waits until the first is a window old. */
static void test_pace(void **state)
{
    (void)state;
    tb_pace_t p;
    memset(&p, 0, sizeof p);
    int64_t t0 = 1000;
    for (int i = 0; i < TB_PACE_BURST; i++) {
        assert_int_equal(tb_pace_wait_ms(&p, t0 + i), 0);
        tb_pace_record(&p, t0 + i);
    }
    assert_int_equal(tb_pace_wait_ms(&p, t0 + 10), TB_PACE_WINDOW_MS - 10);
    assert_int_equal(tb_pace_wait_ms(&p, t0 + TB_PACE_WINDOW_MS), 0);
    tb_pace_record(&p, t0 + TB_PACE_WINDOW_MS);
    /* the second of the burst is now the oldest */
    assert_int_equal(tb_pace_wait_ms(&p, t0 + TB_PACE_WINDOW_MS), 1);
    /* a client that dies at once, for ever: never more than TB_PACE_BURST a minute */
    int64_t now = t0 + TB_PACE_WINDOW_MS, done = 0, start = now;
    while (now < start + 10 * TB_PACE_WINDOW_MS) {
        now += tb_pace_wait_ms(&p, now);
        tb_pace_record(&p, now);
        done++;
        now += 1; /* the rebuild itself */
    }
    assert_true(done <= 10 * TB_PACE_BURST + 1);
    assert_true(done >= 10 * TB_PACE_BURST - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_restored),
        cmocka_unit_test(test_copies_and_headers),
        cmocka_unit_test(test_pace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
