/* test_producer_restparse — REST answers as the producer reads them: real Binance
 * klines, rows that are not klines, exchangeInfo filtering by status and quote asset,
 * and the rate-limit headers including hostile values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../restparse.h"

static void count_reject(void *ud, const char *raw, size_t len, const char *why)
{
    (void)raw;
    (void)len;
    assert_non_null(why);
    (*(int *)ud)++;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    return buf;
}

static void test_real_binance_page(void **state)
{
    (void)state;
    size_t len;
    /* $KP_TEST_DATA, else tests/data/binance in the tree (tests/run.sh runs from its
     * root). A missing sample fails: it is part of the repository, not optional. */
    const char *dir = getenv("KP_TEST_DATA");
    const char *root = getenv("KP_ROOT");
    char path[1024];
    if (dir && *dir)
        snprintf(path, sizeof path, "%s/rest_klines_BTCUSDT_1m_2021-10-22.json", dir);
    else
        snprintf(path, sizeof path, "%s/tests/data/binance/rest_klines_BTCUSDT_1m_2021-10-22.json",
                 root && *root ? root : ".");
    char *body = slurp(path, &len);
    if (!body)
        fail_msg("cannot open sample %s (set KP_TEST_DATA or run from the repo root)", path);
    static kline_t ks[1000];
    int nk, rej = 0;
    int64_t last = -1;
    char err[256];
    int rows = rest_parse_klines(body, len, "BTCUSDT", "1m", ks, 1000, &nk, &last, count_reject, &rej, err,
                                 sizeof err);
    assert_true(rows > 0);
    assert_int_equal(nk, rows > 1000 ? 1000 : rows);
    assert_int_equal(rej, 0);
    assert_int_equal(ks[0].source, KLINE_SRC_REST);
    assert_string_equal(ks[0].symbol, "BTCUSDT");
    assert_int_equal(last, ks[nk - 1].open_time);
    for (int i = 1; i < nk; i++)
        assert_int_equal(ks[i].open_time - ks[i - 1].open_time, 60000);
    free(body);
}

static void test_bad_rows_rejected_not_fatal(void **state)
{
    (void)state;
    const char *b = "[[1700000000000,\"1.0\",\"2.0\",\"0.5\",\"1.5\",\"10\",1700000000999,\"15\",3,\"4\",\"6\",\"0\"],"
                    "[1,\"x\"],\"junk\",{\"a\":1}]";
    kline_t ks[4];
    int nk, rej = 0;
    int64_t last = -1;
    char err[256];
    int rows = rest_parse_klines(b, strlen(b), "ETHUSDT", "1s", ks, 4, &nk, &last, count_reject, &rej, err,
                                 sizeof err);
    assert_int_equal(rows, 4);
    assert_int_equal(nk, 1);
    assert_int_equal(rej, 3);
    assert_int_equal(last, 1700000000000LL);
    assert_string_equal(ks[0].symbol, "ETHUSDT");
    /* not an array at all: an error, no klines */
    assert_int_equal(rest_parse_klines("{\"code\":-1121}", 14, "ETHUSDT", "1s", ks, 4, &nk, &last, NULL, NULL,
                                       err, sizeof err), -1);
    assert_int_equal(nk, 0);
    assert_int_equal(rest_parse_klines("[[", 2, "ETHUSDT", "1s", ks, 4, &nk, &last, NULL, NULL, err, sizeof err), -1);
    /* more rows than room: stops at max */
    const char *two = "[[1700000000000,\"1\",\"2\",\"0.5\",\"1.5\",\"10\",1700000000999,\"15\",3,\"4\",\"6\",\"0\"],"
                      "[1700000001000,\"1\",\"2\",\"0.5\",\"1.5\",\"10\",1700000001999,\"15\",3,\"4\",\"6\",\"0\"]]";
    assert_int_equal(rest_parse_klines(two, strlen(two), "ETHUSDT", "1s", ks, 1, &nk, &last, NULL, NULL, err,
                                       sizeof err), 2);
    assert_int_equal(nk, 1);
}

static void free_list(char **l)
{
    for (char **p = l; *p; p++)
        free(*p);
    free(l);
}

static void test_exchange_info_filters(void **state)
{
    (void)state;
    const char *b = "{\"symbols\":["
                    "{\"symbol\":\"BTCUSDT\",\"status\":\"TRADING\",\"quoteAsset\":\"USDT\"},"
                    "{\"symbol\":\"ETHBTC\",\"status\":\"TRADING\",\"quoteAsset\":\"BTC\"},"
                    "{\"symbol\":\"OLDUSDT\",\"status\":\"BREAK\",\"quoteAsset\":\"USDT\"},"
                    "{\"symbol\":\"\",\"status\":\"TRADING\",\"quoteAsset\":\"USDT\"},"
                    "{\"symbol\":7,\"status\":\"TRADING\"},"
                    "{\"symbol\":\"BNBBTC\",\"status\":\"TRADING\"}]}";
    char **l;
    char err[256];
    assert_int_equal(rest_parse_exchange_info(b, strlen(b), "usdt", &l, err, sizeof err), 1);
    assert_string_equal(l[0], "BTCUSDT");
    assert_null(l[1]);
    free_list(l);
    assert_int_equal(rest_parse_exchange_info(b, strlen(b), "BTC", &l, err, sizeof err), 1);
    assert_string_equal(l[0], "ETHBTC");
    free_list(l);
    assert_int_equal(rest_parse_exchange_info(b, strlen(b), NULL, &l, err, sizeof err), 3);
    free_list(l);
    assert_int_equal(rest_parse_exchange_info("{\"symbols\":{}}", 14, NULL, &l, err, sizeof err), -1);
    assert_int_equal(rest_parse_exchange_info("nope", 4, NULL, &l, err, sizeof err), -1);
}

static void test_headers(void **state)
{
    (void)state;
    long ra = -1, w = -1;
#define H(s) rest_parse_header(s, strlen(s), &ra, &w)
    assert_int_equal(H("Retry-After: 7\r\n"), 1);
    assert_int_equal(ra, 7);
    assert_int_equal(H("x-mbx-used-weight-1m:1187\r\n"), 1);
    assert_int_equal(w, 1187);
    ra = w = -1;
    /* an HTTP date, junk, a list, another header: nothing set */
    assert_int_equal(H("Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"), 0);
    assert_int_equal(H("Retry-After: -5\r\n"), 0);
    assert_int_equal(H("Retry-After: 5, 6\r\n"), 0);
    assert_int_equal(H("Retry-After-Foo: 5\r\n"), 0);
    assert_int_equal(H("X-MBX-USED-WEIGHT: 5\r\n"), 0);
    assert_int_equal(H("Retry-After"), 0);
    assert_int_equal(ra, -1);
    assert_int_equal(w, -1);
    /* huge values neither overflow nor stall the backfill for ages */
    assert_int_equal(H("Retry-After: 99999999999999999999999999999\r\n"), 1);
    assert_int_equal(ra, REST_RETRY_AFTER_MAX);
    assert_int_equal(H("X-MBX-USED-WEIGHT-1M: 99999999999999999999999999\r\n"), 1);
    assert_true(w > 6000);
    /* not NUL-terminated: only n bytes are read */
    assert_int_equal(rest_parse_header("Retry-After: 12345", 14, &ra, &w), 1);
    assert_int_equal(ra, 1);
#undef H
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_binance_page),
        cmocka_unit_test(test_bad_rows_rejected_not_fatal),
        cmocka_unit_test(test_exchange_info_filters),
        cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
