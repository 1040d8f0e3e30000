/* Unit tests of streamer/indicators.c: the live 1m bar, the SMA of closed bars, crossovers,
 * seeding. cmocka, TAP via tests/run.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../streamer.h"

#define T0 1789499940000LL /* a minute boundary */

static kline_t kl(int64_t open_time, const char *o, const char *h, const char *l, const char *c,
                  int64_t trades)
{
    kline_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.symbol, sizeof k.symbol, "BTCUSDT");
    snprintf(k.interval, sizeof k.interval, "1s");
    k.open_time = open_time;
    k.close_time = open_time + 999;
    snprintf(k.open, sizeof k.open, "%s", o);
    snprintf(k.high, sizeof k.high, "%s", h);
    snprintf(k.low, sizeof k.low, "%s", l);
    snprintf(k.close, sizeof k.close, "%s", c);
    snprintf(k.volume, sizeof k.volume, "%s", trades ? "1.5" : "0");
    k.trades = trades;
    return k;
}

static enum st_alert_dir feed(struct st_ind *ind, kline_t k)
{
    enum st_alert_dir dir;
    double px, sma;
    st_ind_update(ind, &k, &dir, &px, &sma);
    return dir;
}

/* a whole minute at one flat price */
static void minute(struct st_ind *ind, int64_t start, const char *px)
{
    for (int s = 0; s < 60; s++)
        feed(ind, kl(start + s * 1000, px, px, px, px, 1));
}

static void test_bar_ohlc_from_traded_seconds(void **state)
{
    (void)state;
    struct st_ind ind;
    assert_int_equal(st_ind_init(&ind, 3), 0);
    /* a zero-trade second first: flat at its close, replaced by the first traded second */
    feed(&ind, kl(T0, "100.0", "100.0", "100.0", "100.0", 0));
    assert_string_equal(ind.bar.open, "100.0");
    feed(&ind, kl(T0 + 1000, "101.5", "103.25", "99.75", "102.0", 5));
    feed(&ind, kl(T0 + 2000, "102.0", "102.5", "98.5", "101.0", 3));
    feed(&ind, kl(T0 + 3000, "101.0", "101.0", "101.0", "101.0", 0)); /* no trades: ignored for OHLC */
    assert_string_equal(ind.bar.open, "101.5");
    assert_string_equal(ind.bar.high, "103.25");
    assert_string_equal(ind.bar.low, "98.5");
    assert_string_equal(ind.bar.close, "101.0");
    assert_int_equal(ind.bar.trades, 8);
    assert_int_equal(ind.bar.seconds, 4);
    assert_int_equal(ind.bar.open_time, T0);
    /* a repeated second refines but does not count twice; an older second is ignored */
    feed(&ind, kl(T0 + 3000, "101.0", "104.0", "101.0", "103.0", 2));
    assert_string_equal(ind.bar.high, "104.0");
    assert_string_equal(ind.bar.close, "103.0");
    assert_int_equal(ind.bar.seconds, 4);
    feed(&ind, kl(T0 + 1000, "1.0", "999.0", "0.5", "1.0", 9));
    assert_string_equal(ind.bar.high, "104.0");
    assert_string_equal(ind.bar.low, "98.5");
    st_ind_free(&ind);
}

static void test_sma_and_crossovers(void **state)
{
    (void)state;
    struct st_ind ind;
    double sma;
    assert_int_equal(st_ind_init(&ind, 3), 0);
    minute(&ind, T0, "10.0");
    minute(&ind, T0 + 60000, "20.0");
    assert_false(st_ind_sma(&ind, &sma)); /* only one closed bar */
    minute(&ind, T0 + 120000, "30.0");
    /* the fourth minute's first second closes the third bar: SMA(10,20,30) = 20 */
    assert_int_equal(feed(&ind, kl(T0 + 180000, "25.0", "25.0", "25.0", "25.0", 1)), ST_ALERT_NONE);
    assert_true(st_ind_sma(&ind, &sma));
    assert_true(sma > 19.999 && sma < 20.001);
    /* above (25 > 20) was the first side seen: no alert; then down through it: bearish */
    assert_int_equal(feed(&ind, kl(T0 + 181000, "25.0", "25.0", "15.0", "15.0", 1)), ST_ALERT_BEARISH);
    /* touching the SMA is not a cross, and does not reset the side */
    assert_int_equal(feed(&ind, kl(T0 + 182000, "15.0", "20.0", "15.0", "20.0", 1)), ST_ALERT_NONE);
    assert_int_equal(feed(&ind, kl(T0 + 183000, "20.0", "21.0", "20.0", "21.0", 1)), ST_ALERT_BULLISH);
    assert_int_equal(feed(&ind, kl(T0 + 184000, "21.0", "22.0", "21.0", "22.0", 1)), ST_ALERT_NONE);
    /* an older minute does not reopen */
    assert_int_equal(feed(&ind, kl(T0 + 60000, "1.0", "1.0", "1.0", "1.0", 1)), ST_ALERT_NONE);
    assert_int_equal(ind.bar.open_time, T0 + 180000);
    st_ind_free(&ind);
}

static void test_seed(void **state)
{
    (void)state;
    struct st_ind ind;
    double sma;
    assert_int_equal(st_ind_init(&ind, 3), 0);
    feed(&ind, kl(T0, "50.0", "50.0", "50.0", "50.0", 1));
    const double newest_first[4] = {30.0, 20.0, 10.0, 999.0};
    st_ind_seed(&ind, T0 - 60000, newest_first, 4); /* wrong bar: ignored */
    assert_false(st_ind_sma(&ind, &sma));
    st_ind_seed(&ind, T0, newest_first, 4); /* only the newest 3 count */
    assert_true(st_ind_sma(&ind, &sma));
    assert_true(sma > 19.999 && sma < 20.001);
    /* the next bar close pushes out the oldest seeded close (10): (20 + 30 + 50) / 3 */
    feed(&ind, kl(T0 + 60000, "50.0", "50.0", "50.0", "50.0", 1));
    assert_true(st_ind_sma(&ind, &sma));
    assert_true(sma > 33.333 && sma < 33.334);
    st_ind_free(&ind);
}

static void test_json(void **state)
{
    (void)state;
    struct st_ind ind;
    assert_int_equal(st_ind_init(&ind, 2), 0);
    st_msg_t *m = st_msg_new(16);
    assert_non_null(m);
    assert_int_equal(st_ind_json(&ind, m), 0);
    assert_string_equal(st_msg_payload(m), ",\"bar\":null,\"sma\":null,\"sma_n\":2");
    st_msg_unref(m);
    feed(&ind, kl(T0 + 5000, "1.50000000", "2.00000000", "1.25000000", "1.75000000", 4));
    m = st_msg_new(16);
    assert_int_equal(st_ind_json(&ind, m), 0);
    json_error_t err;
    char wrapped[1024];
    snprintf(wrapped, sizeof wrapped, "{\"x\":1%s}", st_msg_payload(m));
    json_t *o = json_loads(wrapped, 0, &err);
    assert_non_null(o);
    json_t *bar = json_object_get(o, "bar");
    assert_string_equal(json_string_value(json_object_get(bar, "high")), "2.00000000");
    assert_int_equal(json_integer_value(json_object_get(bar, "open_time")), T0);
    assert_int_equal(json_integer_value(json_object_get(bar, "close_time")), T0 + 59999);
    assert_true(json_is_null(json_object_get(o, "sma")));
    json_decref(o);
    st_msg_unref(m);
    st_ind_free(&ind);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bar_ohlc_from_traded_seconds),
        cmocka_unit_test(test_sma_and_crossovers),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
